"""Compiled per-point kernels of the dose update: the ablation zone's time step
(solver.zone.ZoneSampler) and the nodal dose fields (solver.dose.DoseTracker).

The zone integrates the dose at 14 quadrature points of every heated cell every step (about
a million points at the fine T8 mesh). Written as whole-array numpy operations this was the
largest part of the time step (gathers, scatters and about 60 passes over the arrays for the
exponential integral); here one compiled loop (numba, cached on disk after the first
compilation) does per cell: T at the points from the nodal values, the dose increment of
every point above its floor, the running maximum and the stored start-of-step values.

The formulas are those of solver.damage (exact integrals for T linear in time over a step),
point by point: :func:`arrhenius_increment` and :func:`cem43_increment_capped` equal
``damage.arrhenius_increment`` and ``damage.cem43_increment_capped`` to rounding (asserted in
tests/unit/test_dose_kernels.py on random and edge-case temperatures).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .damage import CEM43_CAP_MIN, GAS_CONSTANT_J_PER_MOLK, KELVIN, SERIES_MIN_X, SERIES_TERMS

_EULER_GAMMA = 0.5772156649015329
_LOG_CEM43_CAP = math.log(CEM43_CAP_MIN)
_LN_LO = math.log(0.25)  # R below 43 C (Sapareto-Dewey)
_LN_HI = math.log(0.5)  # R at or above 43 C

DOSE_NONE, DOSE_OMEGA, DOSE_CEM43 = 0, 1, 2


@njit(cache=True)
def scaled_e1(x: float) -> float:
    """g(x) = exp(x) E1(x) for x > 0 (as damage._scaled_e1): continued fraction (modified
    Lentz) for x >= 1, the power series of E1 below."""
    if x >= 1.0:
        tiny = 1e-300
        b = x + 1.0
        c = 1.0 / tiny
        d = 1.0 / b
        h = d
        for i in range(1, 200):
            an = -float(i * i)
            b += 2.0
            d = 1.0 / (an * d + b)
            c = b + an / c
            delta = c * d
            h *= delta
            if abs(delta - 1.0) < 4e-16:
                break
        return h
    term = 1.0
    total = 0.0
    for k in range(1, 40):
        term = term * (-x) / k
        total += term / k
    return math.exp(x) * (-_EULER_GAMMA - math.log(x) - total)


@njit(cache=True)
def one_minus_x_scaled_e1(x: float) -> float:
    """1 - x exp(x) E1(x) for x > 0: the asymptotic series (Horner form) for x >= SERIES_MIN_X,
    through scaled_e1 below (as damage._one_minus_x_scaled_e1; see there for the error)."""
    if x >= SERIES_MIN_X:
        s = 1.0 / x
        r = 1.0
        for k in range(SERIES_TERMS, 1, -1):  # s (1 - 2 s (1 - 3 s (1 - ...)))
            r = 1.0 - k * s * r
        return s * r
    return 1.0 - x * scaled_e1(x)


@njit(cache=True)
def _antiderivative(T: float, a: float) -> float:
    """F(T) = T exp(-a/T) (1 - x g(x)), x = a / T: d/dT F = exp(-a/T)."""
    x = a / T
    return T * math.exp(-x) * one_minus_x_scaled_e1(x)


@njit(cache=True)
def arrhenius_increment(t0_C: float, t1_C: float, dt: float, A: float, Ea: float) -> float:
    """Omega gathered over a step with T linear from t0 to t1 (C): A int exp(-E_a/(R T)) dt,
    exact through the antiderivative, Simpson where |t1 - t0| < 0.02 K (see
    damage.arrhenius_increment for the error bounds)."""
    T0 = t0_C + KELVIN
    T1 = t1_C + KELVIN
    a = Ea / GAS_CONSTANT_J_PER_MOLK
    if abs(T1 - T0) < 0.02:
        return (dt / 6.0) * A * (math.exp(-a / T0) + 4.0 * math.exp(-2.0 * a / (T0 + T1)) + math.exp(-a / T1))
    return A * dt * (_antiderivative(T1, a) - _antiderivative(T0, a)) / (T1 - T0)


@njit(cache=True)
def _log_sinhc(u: float) -> float:
    a = abs(u)
    if a < 1e-4:
        return a * a / 6.0
    return a + math.log1p(-math.exp(-2.0 * min(a, 300.0))) - math.log(2.0 * a)


@njit(cache=True)
def _log_piece(Ta: float, Tb: float, log_frac: float, lnR: float, log_minutes: float) -> float:
    u = 0.5 * (Tb - Ta) * lnR
    return log_minutes + log_frac + (43.0 - 0.5 * (Ta + Tb)) * lnR + _log_sinhc(u)


@njit(cache=True)
def cem43_log_increment(t0: float, t1: float, dt: float) -> float:
    """log of the CEM43 minutes of a step with T linear from t0 to t1 (C), split at 43 C (as
    damage.cem43_log_increment)."""
    log_minutes = math.log(dt / 60.0)
    lo = min(t0, t1)
    hi = max(t0, t1)
    if lo < 43.0 and hi > 43.0:
        s = (43.0 - t0) / (t1 - t0)
        rising = t0 < t1
        p1 = _log_piece(t0, 43.0, math.log(s), _LN_LO if rising else _LN_HI, log_minutes)
        p2 = _log_piece(43.0, t1, math.log1p(-s), _LN_HI if rising else _LN_LO, log_minutes)
        m = max(p1, p2)
        return m + math.log1p(math.exp(-abs(p1 - p2)))  # logaddexp
    return _log_piece(t0, t1, 0.0, _LN_HI if lo >= 43.0 else _LN_LO, log_minutes)


@njit(cache=True)
def cem43_increment_capped(dose: float, t0: float, t1: float, dt: float) -> float:
    """dose (min) plus the step's CEM43, saturated at CEM43_CAP_MIN."""
    inc = min(math.exp(min(cem43_log_increment(t0, t1, dt), _LOG_CEM43_CAP + 1.0)), CEM43_CAP_MIN)
    return min(dose + inc, CEM43_CAP_MIN)


@njit(cache=True)
def zone_step(cells, stale, cell_dofs, phi, T_nodal, T_prev_nodal, T_prev, T_max, dose, kind, floor, A, Ea, dt):
    """Advance the zone over one step on the given owned cells, in place.

    cells (n,) int: cell rows to update; stale (n,) bool: T_prev of that cell is not valid
    (the cell was not updated last step) and is evaluated from T_prev_nodal; cell_dofs
    (cells, k) local dofs; phi (k, points) the basis at the points; T_nodal, T_prev_nodal
    (dofs,) C at the step's end and start; T_prev, T_max, dose (cells, points) C, C and
    Omega / CEM43 min (dose unused when kind == DOSE_NONE); floor (cells,) C: a point's dose
    is integrated when max(T0, T1) exceeds its cell's floor; A (cells,) 1/s, Ea (cells,)
    J/mol; dt s."""
    k, npts = phi.shape
    for i in range(cells.shape[0]):
        c = cells[i]
        if stale[i]:
            for p in range(npts):
                s = 0.0
                for j in range(k):
                    s += T_prev_nodal[cell_dofs[c, j]] * phi[j, p]
                T_prev[c, p] = s
        for p in range(npts):
            t1 = 0.0
            for j in range(k):
                t1 += T_nodal[cell_dofs[c, j]] * phi[j, p]
            t0 = T_prev[c, p]
            if kind != DOSE_NONE and max(t0, t1) > floor[c]:
                if kind == DOSE_OMEGA:
                    dose[c, p] += arrhenius_increment(t0, t1, dt, A[c], Ea[c])
                else:
                    dose[c, p] = cem43_increment_capped(dose[c, p], t0, t1, dt)
            if t1 > T_max[c, p]:
                T_max[c, p] = t1
            T_prev[c, p] = t1


@njit(cache=True)
def nodal_dose_step(T0, T1, dt, A, Ea, omega, cem43, T_max):
    """The nodal dose fields over one step, in place: T0, T1 (n,) C at the step's start and
    end; A (n,) 1/s, Ea (n,) J/mol; omega (n,) Arrhenius Omega, cem43 (n,) min, T_max (n,) C."""
    for i in range(T0.shape[0]):
        t0, t1 = T0[i], T1[i]
        omega[i] += arrhenius_increment(t0, t1, dt, A[i], Ea[i])
        cem43[i] = cem43_increment_capped(cem43[i], t0, t1, dt)
        if t1 > T_max[i]:
            T_max[i] = t1


@njit(cache=True)
def add_time_above(T0, T1, level, dt, acc):
    """acc (n,) += the time (s) within the step that T, linear from T0 to T1 (C), spends above
    ``level`` (C)."""
    for i in range(T0.shape[0]):
        lo, hi = min(T0[i], T1[i]), max(T0[i], T1[i])
        if lo >= level:
            acc[i] += dt
        elif hi > level:
            acc[i] += dt * ((hi - level) / (hi - lo))


def empty_dose() -> np.ndarray:
    """The dose argument of zone_step when no dose is tracked (kind DOSE_NONE)."""
    return np.zeros((0, 0))
