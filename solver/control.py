"""The safety-point control loop ([[monitor]] high/low limits, [control]): switches the laser
off or pauses it through the run state's laser gate."""

from __future__ import annotations

from .config import CaseError
from .probes import PointOutsideMesh, evaluate, locate


class ControlLoop:
    """Safety points as in the clinical system: the laser switches off (stop) or pauses when a
    monitor exceeds its high limit, checked after every step, so the laser is off from the
    next step on (within one step of the crossing). Optionally ends the dose once every target
    (low limit) is reached."""

    def __init__(self, run):
        self.p = run  # solver.coupler.Coupler: its laser, T and state (laser gate, power log)
        case = run.case
        self.monitors = case.monitor
        self.events: list[dict] = []
        self.stopped = False
        self.paused_by: set[str] = set()
        self.reached: dict[str, float] = {}
        self.located = None
        if self.monitors:
            try:
                self.located = locate(run.mesh, [m.position_m for m in self.monitors])
            except PointOutsideMesh as err:
                i = err.indices[0]
                raise CaseError(
                    f"monitor[{i}].position_m = {list(self.monitors[i].position_m)} "
                    f"('{self.monitors[i].name}') lies outside the mesh"
                ) from None

    def after_step(self, t: float) -> None:
        if self.located is None or self.p.laser is None:
            return
        values = evaluate(self.p.T, self.located)
        for m, v in zip(self.monitors, values):
            if m.high_limit_C is not None and v > m.high_limit_C and not self.stopped:
                if m.action == "stop":
                    self.stopped = True
                    self._event(t, m.name, v, m.high_limit_C, "laser stopped for the rest of the dose")
                elif m.name not in self.paused_by:
                    self.paused_by.add(m.name)
                    self._event(t, m.name, v, m.high_limit_C, "laser paused")
            if m.name in self.paused_by:
                resume = m.resume_below_C if m.resume_below_C is not None else m.high_limit_C - 2.0
                if v < resume:
                    self.paused_by.discard(m.name)
                    self._event(t, m.name, v, resume, "laser resumed")
            if m.low_limit_C is not None and v >= m.low_limit_C and m.name not in self.reached:
                self.reached[m.name] = t
                self._event(t, m.name, v, m.low_limit_C, "target reached")
        targets = [m.name for m in self.monitors if m.low_limit_C is not None]
        if (
            self.p.case.control.stop_when_targets_reached
            and targets
            and all(n in self.reached for n in targets)
            and not self.stopped
        ):
            self.stopped = True
            self._event(t, "all targets", None, None, "dose ended: every target reached")
        self.p.state.laser_gate = 0.0 if (self.stopped or self.paused_by) else 1.0

    def _event(self, t, name, value, limit, what) -> None:
        self.events.append(
            {
                "time_s": t,
                "monitor": name,
                "temperature_C": None if value is None else float(value),  # null: no single reading
                "limit_C": None if limit is None else float(limit),
                "event": what,
            }
        )

    def summary(self) -> dict:
        log = self.p.state.power_log
        return {
            "events": self.events,
            "requested_energy_J": float(sum(r * (t1 - t0) for t0, t1, r, _ in log)),
            "delivered_energy_J": float(sum(d * (t1 - t0) for t0, t1, _, d in log)),
            "targets_reached_s": self.reached,
        }
