"""Damage integrals against closed forms and against fine quadrature (no mesh)."""

import math

import numpy as np
import pytest

from solver.damage import (
    ARRHENIUS_SETS,
    _scaled_e1,
    arrhenius_increment,
    arrhenius_rate,
    cem43_increment,
    damage_fraction,
    time_to_cem43,
    time_to_omega,
)

A, EA = ARRHENIUS_SETS["henriques"]


def _fine(f, t0, t1, n=200001):
    """Composite Simpson with n points: error ~ (dt/n)^4 f'''' , negligible here."""
    t = np.linspace(t0, t1, n)
    y = f(t)
    h = (t1 - t0) / (n - 1)
    return h / 3 * (y[0] + y[-1] + 4 * y[1:-1:2].sum() + 2 * y[2:-1:2].sum())


def test_scaled_e1_against_series_and_asymptotics():
    # x = 1: e * E1(1) = e * 0.21938393439552027 (Abramowitz-Stegun table)
    assert _scaled_e1(np.array([1.0]))[0] == pytest.approx(math.e * 0.21938393439552027, rel=1e-14)
    assert _scaled_e1(np.array([0.5]))[0] == pytest.approx(math.exp(0.5) * 0.5597735947761608, rel=1e-13)
    x = np.array([200.0])  # asymptotic series 1/x (1 - 1/x + 2/x^2 - 6/x^3 + 24/x^4)
    asym = 1 / x * (1 - 1 / x + 2 / x**2 - 6 / x**3 + 24 / x**4 - 120 / x**5)
    assert _scaled_e1(x)[0] == pytest.approx(asym[0], rel=1e-12)


@pytest.mark.parametrize("T", [55.0, 60.0])
def test_constant_temperature_time_to_omega_one(T):
    """At constant T the increment is rate * dt; summing steps reaches Omega = 1 exactly at
    t = 1 / rate (Henriques: 55 C -> about 0.78 h... computed, 60 C -> seconds)."""
    t1 = time_to_omega(T, 1.0, A, EA)
    assert t1 == pytest.approx(1.0 / (A * math.exp(-EA / (8.314462618 * (T + 273.15)))), rel=1e-14)
    n = 50
    omega = sum(arrhenius_increment(T, T, t1 / n, A, EA) for _ in range(n))
    assert omega == pytest.approx(1.0, rel=1e-12)


def test_cem43_48C_reaches_240_min_in_7_5_minutes():
    assert time_to_cem43(48.0, 240.0) == pytest.approx(7.5 * 60.0, rel=1e-14)
    dose = sum(cem43_increment(48.0, 48.0, 10.0) for _ in range(45))
    assert dose == pytest.approx(240.0, rel=1e-12)
    assert cem43_increment(41.0, 41.0, 60.0) == pytest.approx(0.25**2, rel=1e-12)


@pytest.mark.parametrize("T0, T1", [(40.0, 62.0), (62.0, 45.0), (50.0, 50.04), (37.0, 37.2)])
def test_arrhenius_linear_ramp_exact(T0, T1):
    dt = 30.0
    ref = _fine(lambda t: arrhenius_rate(T0 + (T1 - T0) * t / dt, A, EA), 0.0, dt)
    got = arrhenius_increment(T0, T1, dt, A, EA)
    assert got == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize("T0, T1", [(40.0, 50.0), (50.0, 40.0), (44.0, 47.0), (30.0, 42.9), (43.0, 43.0)])
def test_cem43_linear_ramp_exact_including_the_43C_kink(T0, T1):
    dt = 60.0
    R = lambda T: np.where(T >= 43.0, 0.5, 0.25)  # noqa: E731
    ref = _fine(lambda t: R(T0 + (T1 - T0) * t / dt) ** (43.0 - (T0 + (T1 - T0) * t / dt)), 0.0, dt) / 60.0
    got = cem43_increment(T0, T1, dt)
    assert got == pytest.approx(ref, rel=1e-7)  # Simpson across the kink limits the reference


def test_exact_rule_is_dt_independent_while_left_sum_converges_at_order_one():
    """A ramp 40 -> 65 C over 100 s: the exact rule gives the same total for any step count;
    a left Riemann sum converges to it at order 1 in dt."""
    T = lambda t: 40.0 + 0.25 * t  # noqa: E731
    totals, left_errors, dts = [], [], []
    for n in (80, 160, 320, 640):
        t = np.linspace(0.0, 100.0, n + 1)
        dt = 100.0 / n
        totals.append(float(np.sum(arrhenius_increment(T(t[:-1]), T(t[1:]), dt, A, EA))))
        left = float(np.sum(arrhenius_rate(T(t[:-1]), A, EA) * dt))
        left_errors.append(left)
        dts.append(dt)
    assert max(totals) - min(totals) <= 1e-10 * totals[0]
    errs = np.abs(np.array(left_errors) - totals[0])
    orders = np.log(errs[:-1] / errs[1:]) / np.log(2.0)
    assert abs(orders[-1] - 1.0) < 0.05 and np.all(np.diff(np.abs(orders - 1.0)) < 0), orders


def test_damage_fraction():
    assert damage_fraction(0.0) == 0.0
    assert damage_fraction(math.log(2.0)) == pytest.approx(0.5)
    assert 0.99 < damage_fraction(100.0) < 1.0


def test_cem43_stays_finite_and_saturates_without_warnings():
    """A point-source node at 2200 C: R^(43 - T) = 2^2157 overflows a double. The log-space
    rule gives the capped dose, with no numpy warning, for constant, rising and falling T."""
    import warnings

    from solver.damage import CEM43_CAP_MIN, cem43_increment_capped, cem43_log_increment

    T0 = np.array([37.0, 2200.0, 37.0, 2200.0, 5000.0])
    T1 = np.array([2200.0, 2200.0, 45.0, 60.0, 5000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # underflow to 0 (a term negligible in a sum) is harmless and numpy never reports it
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            log_inc = cem43_log_increment(T0, T1, 1.0)
            dose = cem43_increment_capped(np.zeros(5), T0, T1, 1.0)
    assert np.all(np.isfinite(log_inc)) and np.all(np.isfinite(dose))
    # constant 2200 C: log of (1/60) 2^(2200 - 43), exactly
    assert log_inc[1] == pytest.approx(math.log(1.0 / 60.0) + (2200.0 - 43.0) * math.log(2.0), rel=1e-14)
    assert dose[1] == CEM43_CAP_MIN and dose[0] == CEM43_CAP_MIN and dose[4] == CEM43_CAP_MIN
    # below the cap the log-space rule is the linear-ramp rule
    assert dose[2] == pytest.approx(cem43_increment(37.0, 45.0, 1.0), rel=1e-13)
    assert cem43_increment_capped(np.array([CEM43_CAP_MIN]), 50.0, 50.0, 1.0)[0] == CEM43_CAP_MIN
