"""Thermal damage integrals (docs/MODEL.md section 3): Arrhenius Omega and CEM43 dose.

Both are integrated step by step with a rule that is exact when the temperature varies
linearly in time over the step (as the time-discrete solution does between two levels),
not with a left or right sum: a rising temperature is neither under- nor over-dosed.

Pure numpy functions of nodal temperature arrays (C); no mesh needed.
"""

from __future__ import annotations

import math

import numpy as np

GAS_CONSTANT_J_PER_MOLK = 8.314462618
KELVIN = 273.15

# Arrhenius parameter sets of docs/MODEL.md section 3: (A in 1/s, E_a in J/mol).
ARRHENIUS_SETS = {
    "henriques": (3.1e98, 6.28e5),  # Henriques (skin); default of the MD Anderson LITT code
    "liver": (7.39e39, 2.577e5),  # widely used in RF/MW liver models
    "artery": (5.6e63, 4.3e5),  # Agah, Pearce, Welch
}

_EULER_GAMMA = 0.5772156649015329


def _scaled_e1(x: np.ndarray) -> np.ndarray:
    """g(x) = exp(x) E1(x) for x > 0, E1 the exponential integral (to ~1e-15 relative).

    x >= 1: continued fraction (modified Lentz); x < 1: power series of E1."""
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    big = x >= 1.0
    every = bool(big.all())  # the usual case (x = E_a / (R T) is about 100 to 250): no gathers
    if every or np.any(big):
        xb = x if every else x[big]
        # E1(x) = exp(-x) * 1/(x + 1 - 1^2/(x + 3 - 2^2/(x + 5 - ...)))
        tiny = 1e-300
        b = xb + 1.0
        c = np.full_like(xb, 1.0 / tiny)
        d = 1.0 / b
        h = d.copy()
        delta = np.empty_like(xb)
        for i in range(1, 200):  # in place, the same operations as b += 2, d = 1/(an d + b), ...
            an = -float(i * i)
            b += 2.0
            np.multiply(d, an, out=d)
            d += b
            np.divide(1.0, d, out=d)
            np.divide(an, c, out=c)
            c += b
            np.multiply(c, d, out=delta)
            h *= delta
            delta -= 1.0
            if np.all(np.abs(delta, out=delta) < 4e-16):
                break
        if every:
            return h
        out[big] = h
    if np.any(~big):
        xs = x[~big]
        term = np.ones_like(xs)
        total = np.zeros_like(xs)
        for k in range(1, 40):
            term = term * (-xs) / k
            total += term / k
        e1 = -_EULER_GAMMA - np.log(xs) - total
        out[~big] = np.exp(xs) * e1
    return out


# Above this x = E_a / (R T), 1 - x g(x) is summed from its asymptotic series
# sum_{k>=1} (-1)^(k+1) k! / x^k (SERIES_TERMS terms; the error is below the first omitted
# term: 21! / 60^20 = 1.4e-16 relative at x = 60) rather than as 1 - x g(x) from the continued
# fraction, which loses about log10(x) digits to the cancellation: measured against a 50-digit
# evaluation over x in [60, 400], 2.3e-16 against 1.7e-13 relative
# (tests/unit/test_dose_kernels.py). Every tissue below about 150 C has x >= 60 (E_a >= 2e5 J/mol).
SERIES_MIN_X = 60.0
SERIES_TERMS = 20


def _one_minus_x_scaled_e1(x: np.ndarray) -> np.ndarray:
    """1 - x exp(x) E1(x) for x > 0 (the factor of the Arrhenius antiderivative)."""
    x = np.asarray(x, dtype=float)
    series = x >= SERIES_MIN_X
    if bool(series.all()):  # the usual case: no gathers
        s = 1.0 / x
        r = np.ones_like(x)
        for k in range(SERIES_TERMS, 1, -1):  # s (1 - 2 s (1 - 3 s (1 - ...)))
            r *= -k * s
            r += 1.0
        return s * r
    out = np.empty_like(x)
    if np.any(series):
        out[series] = _one_minus_x_scaled_e1(x[series])
    xr = x[~series]
    out[~series] = 1.0 - xr * _scaled_e1(xr)
    return out


def arrhenius_rate(T_C, A_per_s: float, Ea_J_per_mol: float) -> np.ndarray:
    """Damage rate A exp(-E_a / (R T)) in 1/s, T in C."""
    T = np.asarray(T_C, dtype=float) + KELVIN
    return A_per_s * np.exp(-Ea_J_per_mol / (GAS_CONSTANT_J_PER_MOLK * T))


def arrhenius_increment(T0_C, T1_C, dt_s: float, A_per_s: float, Ea_J_per_mol: float) -> np.ndarray:
    """Integral of A exp(-E_a/(R T(t))) dt over a step where T goes linearly from T0 to T1.

    With a = E_a / R and x = a / T: the antiderivative in T of exp(-a/T) is
    F(T) = T exp(-x) (1 - x g(x)), g = exp(x) E1(x), so the increment is
    A dt (F(T1) - F(T0)) / (T1 - T0). Where |T1 - T0| < 0.02 K that difference would cancel;
    there Simpson's rule is used, whose relative error (a |T1 - T0| / T^2)^4 / 2880 is below
    2e-11 (the rate changes by less than 1.5 % over such a step). A and E_a may be per node.
    """
    T0 = np.asarray(T0_C, dtype=float) + KELVIN
    T1 = np.asarray(T1_C, dtype=float) + KELVIN
    a = np.asarray(Ea_J_per_mol, dtype=float) / GAS_CONSTANT_J_PER_MOLK
    A_arr = np.asarray(A_per_s, dtype=float)
    T0, T1, a, A_arr = np.broadcast_arrays(T0, T1, a, A_arr)
    far = np.abs(T1 - T0) >= 0.02
    near = ~far
    out = np.empty(T0.shape)
    if np.any(near):  # Simpson (three exponentials) where the exact form would cancel
        an, t0, t1 = a[near], T0[near], T1[near]
        out[near] = (dt_s / 6.0) * A_arr[near] * (np.exp(-an / t0) + 4.0 * np.exp(-2.0 * an / (t0 + t1)) + np.exp(-an / t1))
    if np.any(far):
        af, t0, t1 = a[far], T0[far], T1[far]

        def F(T):
            x = af / T
            return T * np.exp(-x) * _one_minus_x_scaled_e1(x)

        out[far] = A_arr[far] * dt_s * (F(t1) - F(t0)) / (t1 - t0)
    return out


# CEM43 saturates here (minutes; about 1.9 million years at 43 C). Thresholds in use are
# 240 min (ablation) and a few minutes (safety), so a capped dose still compares correctly
# with every threshold, and no dose overflows to inf however hot a node gets (a point source
# reaches thousands of C at its node, where R^(43 - T) exceeds the largest double).
CEM43_CAP_MIN = 1.0e12
_LOG_CEM43_CAP = math.log(CEM43_CAP_MIN)


def _log_sinhc(u: np.ndarray) -> np.ndarray:
    """log(sinh(u) / u), without overflow for large |u|."""
    a = np.abs(u)
    small = a < 1e-4
    safe = np.where(small, 1.0, a)
    big = safe + np.log1p(-np.exp(-2.0 * np.minimum(safe, 300.0))) - np.log(2.0 * safe)  # no underflow
    return np.where(small, a * a / 6.0, big)


def cem43_log_increment(T0_C, T1_C, dt_s: float) -> np.ndarray:
    """Natural log of the CEM43 minutes accumulated over a step with T linear from T0 to T1 (C).

    Sapareto-Dewey: dCEM = R^(43 - T) dt / 60, R = 0.5 at or above 43 C and 0.25 below.
    With T linear in t and R fixed, R^(43 - T(t)) is an exponential in t, so the integral is
    exactly dt R^(43 - T_mid) sinh(u) / u with u = (T1 - T0) ln(R) / 2. A step crossing 43 C
    is split at the crossing, each piece with its own R. Computed in log space: finite for
    any finite temperatures."""
    T0 = np.asarray(T0_C, dtype=float)
    T1 = np.asarray(T1_C, dtype=float)
    T0, T1 = np.broadcast_arrays(T0, T1)
    log_minutes = math.log(dt_s / 60.0)

    def log_piece(Ta, Tb, log_frac, lnR):
        u = 0.5 * (Tb - Ta) * lnR
        return log_minutes + log_frac + (43.0 - 0.5 * (Ta + Tb)) * lnR + _log_sinhc(u)

    ln_lo, ln_hi = math.log(0.25), math.log(0.5)
    lo = np.minimum(T0, T1)
    hi = np.maximum(T0, T1)
    above = lo >= 43.0
    out = np.array(log_piece(T0, T1, 0.0, np.where(above, ln_hi, ln_lo)))
    cross = (lo < 43.0) & (hi > 43.0)
    if np.any(cross):
        a, b = T0[cross], T1[cross]
        s = (43.0 - a) / (b - a)  # time fraction at which T = 43, in (0, 1)
        rising = a < b
        p1 = log_piece(a, np.full_like(a, 43.0), np.log(s), np.where(rising, ln_lo, ln_hi))
        p2 = log_piece(np.full_like(b, 43.0), b, np.log1p(-s), np.where(rising, ln_hi, ln_lo))
        out[cross] = np.logaddexp(p1, p2)
    return out


def cem43_increment(T0_C, T1_C, dt_s: float) -> np.ndarray:
    """CEM43 minutes accumulated over a step with T linear from T0 to T1 (C), saturated at
    CEM43_CAP_MIN (see cem43_log_increment for the rule)."""
    return np.minimum(np.exp(np.minimum(cem43_log_increment(T0_C, T1_C, dt_s), _LOG_CEM43_CAP + 1.0)), CEM43_CAP_MIN)


def cem43_increment_capped(dose_min, T0_C, T1_C, dt_s: float) -> np.ndarray:
    """``dose_min`` (CEM43 minutes so far) plus the step's increment, saturated at
    CEM43_CAP_MIN. Returns a new array."""
    return np.minimum(np.asarray(dose_min) + cem43_increment(T0_C, T1_C, dt_s), CEM43_CAP_MIN)


def damage_fraction(omega) -> np.ndarray:
    """Fraction d in [0, 1) by which properties move from native to coagulated values:
    d = Omega / (ln 2 + Omega) (MD Anderson LITT code): d = 1/2 at Omega = ln 2."""
    omega = np.asarray(omega, dtype=float)
    return omega / (math.log(2.0) + omega)


def time_to_omega(T_C: float, omega: float, A_per_s: float, Ea_J_per_mol: float) -> float:
    """Seconds at constant T (C) until Omega reaches ``omega``."""
    return omega / float(arrhenius_rate(T_C, A_per_s, Ea_J_per_mol))


def time_to_cem43(T_C: float, dose_min: float) -> float:
    """Seconds at constant T (C) until CEM43 reaches ``dose_min`` minutes."""
    R = 0.5 if T_C >= 43.0 else 0.25
    return dose_min * 60.0 / R ** (43.0 - T_C)
