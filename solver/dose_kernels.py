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
import traceback
import warnings

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
        # terms by x: the truncation error (N+1)! / x^N relative stays below 2e-16 (x >= 60,
        # N = 20: 1.4e-16; x >= 120, N = 15: 1.4e-18; x >= 200, N = 12: 1.5e-18), and the
        # usual Henriques range (x = 200-240 at 45-100 C) takes 12 terms instead of 20
        n = 12 if x >= 200.0 else 15 if x >= 120.0 else SERIES_TERMS
        s = 1.0 / x
        r = 1.0
        for k in range(n, 1, -1):  # s (1 - 2 s (1 - 3 s (1 - ...)))
            r = 1.0 - k * s * r
        return s * r
    return 1.0 - x * scaled_e1(x)


@njit(cache=True)
def _increment_from_rates(T0: float, T1: float, r0: float, r1: float, dt: float, A: float, a: float) -> float:
    """A int exp(-a/T(t)) dt over a step, T linear from T0 to T1 (K), given the rates' exponentials
    r0 = exp(-a/T0), r1 = exp(-a/T1) (a = E_a / R, K): Simpson where |T1 - T0| < 0.02 K, else the
    antiderivative F(T) = T exp(-a/T) (1 - x g(x)), x = a / T."""
    if abs(T1 - T0) < 0.02:
        return (dt / 6.0) * A * (r0 + 4.0 * math.exp(-2.0 * a / (T0 + T1)) + r1)
    F1 = T1 * r1 * one_minus_x_scaled_e1(a / T1)
    F0 = T0 * r0 * one_minus_x_scaled_e1(a / T0)
    return A * dt * (F1 - F0) / (T1 - T0)


@njit(cache=True)
def arrhenius_increment(t0_C: float, t1_C: float, dt: float, A: float, Ea: float) -> float:
    """Omega gathered over a step with T linear from t0 to t1 (C): A int exp(-E_a/(R T)) dt,
    exact through the antiderivative, Simpson where |t1 - t0| < 0.02 K (see
    damage.arrhenius_increment for the error bounds)."""
    T0 = t0_C + KELVIN
    T1 = t1_C + KELVIN
    a = Ea / GAS_CONSTANT_J_PER_MOLK
    return _increment_from_rates(T0, T1, math.exp(-a / T0), math.exp(-a / T1), dt, A, a)


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
def cem43_log_increment(t0: float, t1: float, log_minutes: float) -> float:
    """log of the CEM43 minutes of a step with T linear from t0 to t1 (C), split at 43 C (as
    damage.cem43_log_increment); log_minutes = log(dt / 60), dt the step (s), computed once by
    the caller."""
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
def cem43_increment_capped(dose: float, t0: float, t1: float, log_minutes: float) -> float:
    """dose (min) plus the step's CEM43, saturated at CEM43_CAP_MIN; log_minutes = log(dt / 60)
    (dt in s)."""
    inc = min(math.exp(min(cem43_log_increment(t0, t1, log_minutes), _LOG_CEM43_CAP + 1.0)), CEM43_CAP_MIN)
    return min(dose + inc, CEM43_CAP_MIN)


@njit(cache=True)
def zone_step(cells, stale, cell_dofs, phi, T_nodal, T_prev_nodal, T_prev, T_max, dose, rate_prev, kind, floor, A,
              Ea, dt):
    """Advance the zone over one step on the given owned cells, in place.

    cells (n,) int: cell rows to update; stale (n,) bool: T_prev of that cell is not valid
    (the cell was not updated last step) and is evaluated from T_prev_nodal; cell_dofs
    (cells, k) local dofs; phi (k, points) the basis at the points; T_nodal, T_prev_nodal
    (dofs,) C at the step's end and start; T_prev, T_max, dose (cells, points) C, C and
    Omega / CEM43 min (dose unused when kind == DOSE_NONE); rate_prev (cells, points) (omega
    only): exp(-E_a / (R T_prev)) kept from the last step where the point was dosed, -1 where
    not known (computed then); it saves one of the step's exponentials per point and leaves the
    result bitwise that of arrhenius_increment (the same exp of the same number); floor (cells,) C: a point's dose
    is integrated when max(T0, T1) exceeds its cell's floor; A (cells,) 1/s, Ea (cells,)
    J/mol; dt s."""
    k, npts = phi.shape
    log_minutes = math.log(dt / 60.0)
    for i in range(cells.shape[0]):
        c = cells[i]
        if stale[i]:
            for p in range(npts):
                s = 0.0
                for j in range(k):
                    s += T_prev_nodal[cell_dofs[c, j]] * phi[j, p]
                T_prev[c, p] = s
                if kind == DOSE_OMEGA:
                    rate_prev[c, p] = -1.0
        a = Ea[c] / GAS_CONSTANT_J_PER_MOLK
        for p in range(npts):
            t1 = 0.0
            for j in range(k):
                t1 += T_nodal[cell_dofs[c, j]] * phi[j, p]
            t0 = T_prev[c, p]
            if kind != DOSE_NONE and max(t0, t1) > floor[c]:
                if kind == DOSE_OMEGA:
                    T0 = t0 + KELVIN
                    T1 = t1 + KELVIN
                    r0 = rate_prev[c, p]
                    if r0 < 0.0:
                        r0 = math.exp(-a / T0)
                    r1 = math.exp(-a / T1)
                    dose[c, p] += _increment_from_rates(T0, T1, r0, r1, dt, A[c], a)
                    rate_prev[c, p] = r1
                else:
                    dose[c, p] = cem43_increment_capped(dose[c, p], t0, t1, log_minutes)
            elif kind == DOSE_OMEGA:
                rate_prev[c, p] = -1.0
            if t1 > T_max[c, p]:
                T_max[c, p] = t1
            T_prev[c, p] = t1


@njit(cache=True)
def nodal_dose_step(T0, T1, dt, A, Ea, omega, cem43, T_max, rate_prev):
    """The nodal dose fields over one step, in place: T0, T1 (n,) C at the step's start and
    end; A (n,) 1/s, Ea (n,) J/mol; omega (n,) Arrhenius Omega, cem43 (n,) min, T_max (n,) C;
    rate_prev (n,): exp(-E_a / (R T0)) from the last step (-1: not known), replaced by that of
    T1 (bitwise-neutral, as in zone_step)."""
    log_minutes = math.log(dt / 60.0)
    for i in range(T0.shape[0]):
        t0, t1 = T0[i], T1[i]
        a = Ea[i] / GAS_CONSTANT_J_PER_MOLK
        K0 = t0 + KELVIN
        K1 = t1 + KELVIN
        r0 = rate_prev[i]
        if r0 < 0.0:
            r0 = math.exp(-a / K0)
        r1 = math.exp(-a / K1)
        omega[i] += _increment_from_rates(K0, K1, r0, r1, dt, A[i], a)
        rate_prev[i] = r1
        cem43[i] = cem43_increment_capped(cem43[i], t0, t1, log_minutes)
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


def call(kernel, *args):
    """``kernel(*args)``, recovering from a damaged on-disk cache of compiled code (a truncated
    or foreign file in __pycache__): numba raises while loading it, before the kernel runs; the
    cache index is then cleared (or, if it cannot be written, caching turned off for this
    process), the kernel compiled again (a few seconds) and a RuntimeWarning says so. Any other
    error propagates unchanged."""
    try:
        return kernel(*args)
    except Exception as err:  # noqa: BLE001 - re-raised unless it came from numba's cache loader
        frames = traceback.extract_tb(err.__traceback__)
        if not any("numba" in f.filename and "caching" in f.filename for f in frames):
            raise
        try:
            kernel._cache.flush()
        except OSError:
            from numba.core.caching import NullCache

            kernel._cache = NullCache()
        warnings.warn(f"compiled-code cache of {kernel.__name__} unreadable ({type(err).__name__}: {err}); "
                      "compiling it again", RuntimeWarning, stacklevel=2)
        return kernel(*args)


def empty_dose() -> np.ndarray:
    """The dose argument of zone_step when no dose is tracked (kind DOSE_NONE)."""
    return np.zeros((0, 0))
