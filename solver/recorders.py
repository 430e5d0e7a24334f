"""What a run records while it steps: objects with ``start(t)`` (before the first step of a
fresh run), ``after_step(n, t)`` (after every step, in list order; a steady run calls it once
with n = 0) and ``finalise(summary, folder)`` (after the loop: summary entries and files).
They read the run (solver.coupler.Coupler) and keep their series in its RunState, so a
checkpoint holds them. Collective unless stated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import compat  # noqa: F401  (import order)
from dolfinx import fem

from .metrics import compute as damage_metrics
from .output import FieldWriter, Progress, write_probes_csv
from .probes import evaluate
from .sampling import write_report_data


class Recorder:
    def start(self, t: float) -> None:
        pass

    def after_step(self, n: int, t: float) -> None:
        pass

    def finalise(self, summary: dict, folder: Path) -> None:
        pass

    def close(self) -> None:
        """Release files (also when the loop failed)."""


class PeakRecorder(Recorder):
    """The temperature watch's checks (100 C, the ceiling) and the running maximum (C, where, when)."""

    def __init__(self, run):
        self.state, self.watch = run.state, run.state.watch

    def start(self, t: float) -> None:
        self._track(t, *self.watch.max_temperature())

    def after_step(self, n: int, t: float) -> None:
        self._track(t, *self.watch.check(n, t))  # check gathers the peak once per step

    def _track(self, t: float, value: float, where) -> None:
        if value > self.state.peak["value"]:
            self.state.peak.update(value=value, where=where, time=t)

    def finalise(self, summary: dict, folder: Path) -> None:
        peak = self.state.peak
        summary.update({
            "max_temperature_C": peak["value"],
            "max_temperature_location_m": peak["where"],
            "max_temperature_time_s": peak["time"],
            "final_max_temperature_C": self.watch.max_temperature()[0],
        })


class CriticalRegionsRecorder(Recorder):
    """Critical regions' maxima and dose (solver.metrics.CriticalTracker; transient runs), the
    damage metrics and the report data (report_data.npz, critical.csv; every run)."""

    def __init__(self, run, region_nodes):
        self.run, self.region_nodes = run, region_nodes

    def after_step(self, n: int, t: float) -> None:
        if self.run.state.critical is not None:
            self.run.state.critical.update(t)

    def finalise(self, summary: dict, folder: Path) -> None:
        if self.run.dose is not None:
            summary["damage"] = damage_metrics(self.run, self.run.state.critical, self.region_nodes)
            summary["safety"] = summary["damage"].pop("safety")
        write_report_data(self.run, folder, self.region_nodes, self.run.state.recorder)


class ControlRecorder(Recorder):
    """The safety-point control loop, after every step (sets the laser gate for the next)."""

    def __init__(self, run):
        self.control = run.state.control

    def after_step(self, n: int, t: float) -> None:
        self.control.after_step(t)


class OutputRecorder(Recorder):
    """Probe rows (every ``every`` steps and the last) and field frames (every
    ``every_field`` steps and the last): probes.csv and fields/."""

    def __init__(self, run, probes, probe_names: list[str], folder: Path, every: int, every_field: int, n_steps: int):
        self.run, self.probes, self.probe_names = run, probes, probe_names
        self.every, self.every_field, self.n_steps = every, every_field, n_steps
        st, laser, dose = run.state, run.laser, run.dose
        fields = [run.T]
        self.probe_fields = [("", run.T)]  # (column suffix, function); temperature: the bare name
        if laser is not None:
            self.phi = fem.Function(run.V, name="fluence_rate_W_per_m2")
            self.heat = fem.Function(run.V, name="laser_heat_W_per_m3")
            fields += [self.phi, self.heat]
            self.probe_fields += [("fluence_W_per_m2", self.phi), ("laser_heat_W_per_m3", self.heat)]
        if dose is not None:
            fields += [dose.omega, dose.cem43, dose.T_max]
            self.probe_fields += [("omega", dose.omega), ("cem43", dose.cem43)]
        case = run.case
        self.writer = FieldWriter(folder / "fields", fields, case.output.field_format) if case.output.fields else None
        self.state = st

    def start(self, t: float) -> None:
        self._record(t, True, True)

    def after_step(self, n: int, t: float) -> None:
        last = n == self.n_steps
        self._record(t, n % self.every == 0 or last, n % self.every_field == 0 or last)

    def _record(self, t: float, probe_row: bool, field_frame: bool) -> None:
        run, st, laser = self.run, self.state, self.run.laser
        if laser is not None and (probe_row or field_frame):
            laser.combine(t, self.phi, self.heat, st.laser_gate)
        if probe_row:
            st.times.append(t)
            if st.recorder is not None:
                st.recorder.record(t)
            if self.probes is None:
                st.rows.append(np.zeros(0))
            else:
                cols = [evaluate(f, self.probes) for _, f in self.probe_fields]
                exact = laser.point_values(t, self.probes, st.laser_gate) if laser is not None else None
                if exact is not None:  # kernel light: the closed form, not its interpolant
                    cols[1], cols[2] = exact
                st.rows.append(np.stack(cols, axis=1).reshape(-1))  # per probe: T, then the others
        if field_frame and self.writer is not None:
            self.writer.write(t)

    def columns(self) -> list[str]:
        return [f"{n}.{suffix}" if suffix else n for n in self.probe_names for suffix, _ in self.probe_fields]

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def finalise(self, summary: dict, folder: Path) -> None:
        columns, st = self.columns(), self.state
        if self.run.comm.rank == 0:
            write_probes_csv(folder / "probes.csv", columns, st.times, st.rows)
        summary["final_probe_temperatures_C"] = (
            {n: float(v) for n, v in zip(columns, st.rows[-1]) if "." not in n} if st.rows else {}
        )


class ProgressRecorder(Recorder):
    """The progress line on rank 0 (solver.output.Progress)."""

    def __init__(self, run, n_steps: int, dt: float, enabled: bool):
        self.state = run.state
        self.bar = Progress(run.comm, n_steps, n_steps * dt, enabled=enabled)

    def after_step(self, n: int, t: float) -> None:
        self.bar.update(n, t, f"Tmax {self.state.peak['value']:.2f} C")

    def close(self) -> None:
        self.bar.close()


class CheckpointRecorder(Recorder):
    """Checkpoints (solver.checkpoint.Checkpointer) by step count, wall time and on signals."""

    def __init__(self, run, ckpt):
        self.state, self.ckpt = run.state, ckpt

    def after_step(self, n: int, t: float) -> None:
        self.ckpt.after_step(n, t, self.state)

    def finalise(self, summary: dict, folder: Path) -> None:
        summary["checkpoint"] = self.ckpt.summary()


class PowerRecorder(Recorder):
    """power.csv (requested and delivered laser power per step) and the control summary."""

    def __init__(self, run):
        self.run = run

    def finalise(self, summary: dict, folder: Path) -> None:
        summary["control"] = self.run.state.control.summary()
        if self.run.comm.rank == 0:
            write_power_csv(folder / "power.csv", self.run.state.power_log)


def write_power_csv(path: Path, log) -> None:
    """Requested and delivered laser power (mean over each step, W) against the step's end time."""
    import csv

    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["time_s", "requested_power_W", "delivered_power_W"])
        for t0, t1, req, got in log:
            w.writerow([f"{t1:.9g}", f"{req:.9g}", f"{got:.9g}"])
