"""Damped start-up of Crank-Nicolson after a discontinuity (Rannacher time stepping).

Crank-Nicolson (theta = 1/2) is second order on smooth intervals but only A-stable: the
high-frequency error components that a jump puts into the solution (an initial temperature
that does not match a Dirichlet surface, a power switched on or off, an applicator moved to
a new position) are multiplied by about -1 every step and decay slowly, so a node next to
the jump oscillates (falls while heating). Rannacher (Numer. Math. 43, 1984) replaces the
first steps after the jump by backward-Euler steps of half the size, which damp those
components strongly (L-stable). A fixed number of such steps keeps the scheme's second order
on the smooth intervals: each damped step adds a local error O(dt^2), and their number does
not grow as dt falls (tests/verification/test_mms.py measures the order with it).

Here every step that contains a discontinuity, and the step after it, is taken as two
backward-Euler half steps (``DAMPED_STEPS`` = 2 steps, i.e. four half steps; the designed
case tests/data/cn_step.toml needs both to heat monotonically). Discontinuities are:

- t = 0 (the start);
- jumps of a step-interpolated power schedule (sources and applicators), and segments of a
  linear schedule shorter than one step (a ramp the time step cannot resolve is a jump);
- applicator moves (the start of every pull-back position after t = 0);
- monitor actions of the safety loop (laser stopped, paused or resumed: any change of the
  laser gate between two steps).

A backward-Euler half step needs no new operator: (2 M / dt + K) = 2 (M / dt + K / 2), so
it solves with the Crank-Nicolson operator A and a right-hand side M / dt T^n + F / 2
(``BioheatProblem`` keeps M / dt, assembled once, for it).
"""

from __future__ import annotations

from .config import Case

DAMPED_STEPS = 2  # steps (of two backward-Euler half steps each) after every discontinuity


def schedule_jumps(schedule, interpolation: str, dt_s: float) -> list[float]:
    """Times (s) where a power schedule [[time_s, power_W], ...] jumps: with step
    interpolation every point whose power differs from the previous one; with linear
    interpolation the start of every segment shorter than ``dt_s`` with a change of power."""
    if not schedule:
        return []
    out = []
    for (t0, p0), (t1, p1) in zip(schedule, schedule[1:]):
        if p1 == p0:
            continue
        if interpolation == "step":
            out.append(float(t1))
        elif t1 - t0 < dt_s:
            out.append(float(t0))
    return out


def discontinuity_times(case: Case) -> list[float]:
    """Sorted times (s) > 0 known from the case at which the forcing jumps (the start and the
    safety loop's actions are handled by ``DampedStart``)."""
    dt = case.time.dt_s
    times: set[float] = set()
    for item in list(case.source) + list(case.applicator):
        times.update(schedule_jumps(item.schedule, item.interpolation, dt))
    for ap in case.applicator:
        times.update(start for start, _ in ap.positions()[1:])
    return sorted(t for t in times if t > 0.0)


class DampedStart:
    """Decides, step by step, whether a Crank-Nicolson step is replaced by two backward-Euler
    half steps. ``damp(t_old, t_new, laser_gate)`` is called once per step, in order."""

    def __init__(self, case: Case):
        self.events = discontinuity_times(case)
        self.tolerance_s = 1e-9 * case.time.dt_s  # t = n dt is rounded; an event at t_n belongs to [t_n, t_n+1)
        self.remaining = DAMPED_STEPS  # the start is a discontinuity
        self.gate = 1.0
        self.damped_steps = 0

    def damp(self, t_old: float, t_new: float, laser_gate: float = 1.0) -> bool:
        """True if the step [t_old, t_new) (s) is to be damped."""
        tol = self.tolerance_s
        if laser_gate != self.gate or any(t_old - tol <= e < t_new - tol for e in self.events):
            self.remaining = DAMPED_STEPS
        self.gate = laser_gate
        if self.remaining > 0:
            self.remaining -= 1
            self.damped_steps += 1
            return True
        return False
