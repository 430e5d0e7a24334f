"""The compiled zone kernel (solver.dose_kernels) against the numpy dose formulas of
solver.damage, point by point, and the factor 1 - x exp(x) E1(x) of the Arrhenius
antiderivative against a 50-digit evaluation."""

from __future__ import annotations

from decimal import Decimal, getcontext
from pathlib import Path

import numpy as np
import pytest

from solver import damage
from solver import dose_kernels as zk

A, EA = 7.39e39, 2.577e5  # 1/s, J/mol (a typical tissue set; any positive pair will do)


def one_minus_x_g_50_digits(x: float) -> Decimal:
    """1 - x exp(x) E1(x) in 50 digits: E1 from its continued fraction evaluated backwards
    (x >= 1, where 400 terms converge) or from its power series (x < 1)."""
    getcontext().prec = 50
    xd = Decimal(x)
    if x >= 1.0:
        f = Decimal(0)
        for i in range(400, 0, -1):
            f = Decimal(i * i) / (xd + 2 * i + 1 - f)
        return 1 - xd / (xd + 1 - f)
    gamma = Decimal("0.57721566490153286060651209008240243104215933593992")
    term, total = Decimal(1), Decimal(0)
    for k in range(1, 80):
        term = term * (-xd) / k
        total += term / k
    e1 = -gamma - xd.ln() - total
    return 1 - xd * xd.exp() * e1


@pytest.mark.parametrize("lo,hi,tol", [(60.0, 400.0, 1e-15), (1.0, 60.0, 1e-12), (0.05, 1.0, 1e-12)])
def test_antiderivative_factor_against_50_digits(lo, hi, tol):
    for x in np.linspace(lo, hi, 157):
        ref = one_minus_x_g_50_digits(float(x))
        for value in (zk.one_minus_x_scaled_e1(float(x)), float(damage._one_minus_x_scaled_e1(np.array([x]))[0])):
            assert abs((Decimal(value) - ref) / ref) < tol, (x, value)


def temperature_pairs(rng, n=20000):
    t0 = rng.uniform(37.0, 120.0, n)
    steps = np.concatenate([rng.uniform(-0.019, 0.019, n // 4), rng.uniform(-3.0, 3.0, n // 4),
                            rng.uniform(-30.0, 30.0, n // 4), np.zeros(n - 3 * (n // 4))])
    t1 = t0 + rng.permutation(steps)
    # edges: exactly 43 C, crossing 43 C both ways, the Simpson switch at |dT| = 0.02 K
    edge0 = np.array([43.0, 42.0, 44.0, 43.0, 50.0, 50.0, 50.0, 400.0, 1500.0])
    edge1 = np.array([43.0, 44.0, 42.0, 50.0, 50.02, 50.0199999, 49.98, 420.0, 1600.0])
    return np.concatenate([t0, edge0]), np.concatenate([t1, edge1])


def test_arrhenius_kernel_equals_numpy():
    t0, t1 = temperature_pairs(np.random.default_rng(1))
    for a, ea in ((A, EA), (3.1e98, 6.28e5), (1.0e10, 8.0e4)):  # the last reaches x < 60 (CF path)
        ref = damage.arrhenius_increment(t0, t1, 1.0, a, ea)
        got = np.array([zk.arrhenius_increment(u, v, 1.0, a, ea) for u, v in zip(t0, t1)])
        assert np.all(np.isfinite(got))
        # the two differ by rounding only (per-point vs whole-array stopping of the continued
        # fraction where x < 60: 1e-13), amplified by the difference F(T1) - F(T0), whose
        # terms cancel to a part x |T1 - T0| / T >= 0.02 x / T (Simpson below): at most ~1e-10
        assert np.allclose(got, ref, rtol=1e-10, atol=0.0), np.max(np.abs(got - ref) / ref)


def test_cem43_kernel_equals_numpy():
    t0, t1 = temperature_pairs(np.random.default_rng(2))
    prior = np.random.default_rng(3).uniform(0.0, 500.0, len(t0))
    prior[-1] = damage.CEM43_CAP_MIN
    ref = damage.cem43_increment_capped(prior, t0, t1, 2.0)
    got = np.array([zk.cem43_increment_capped(d, u, v, np.log(2.0 / 60.0)) for d, u, v in zip(prior, t0, t1)])
    # computed in log space: a log of up to ~30 rounded differently (1e-15 absolute) gives
    # ~3e-14 relative after exp; 1e-12 leaves room, a wrong formula is off by orders more
    assert np.allclose(got, ref, rtol=1e-12, atol=0.0), np.max(np.abs(got - ref) / ref)
    assert got.max() == damage.CEM43_CAP_MIN  # 1500 C: saturated, finite


@pytest.mark.parametrize("kind", [zk.DOSE_NONE, zk.DOSE_OMEGA, zk.DOSE_CEM43])
def test_zone_step_equals_numpy_update(kind):
    """One step on a random small 'mesh' (P1, 4 dofs per cell, 5 points) against the update
    written with numpy: T at points from the basis, stale cells from the start values, dose
    only above the cell's floor, running maximum, T_prev updated."""
    rng = np.random.default_rng(4)
    n_cells, n_dofs, npts = 50, 40, 5
    cell_dofs = rng.integers(0, n_dofs, (n_cells, 4)).astype(np.int32)
    phi = rng.dirichlet(np.ones(4), npts).T.copy()  # (4, points), columns sum to 1
    T_start, T_end = rng.uniform(40, 70, n_dofs), rng.uniform(40, 70, n_dofs)
    T_prev = rng.uniform(40, 70, (n_cells, npts))
    T_max = T_prev + rng.uniform(0, 5, (n_cells, npts))
    dose = rng.uniform(0, 1, (n_cells, npts)) if kind != zk.DOSE_NONE else zk.empty_dose()
    floor = rng.uniform(45, 60, n_cells)
    A_c, Ea_c = np.full(n_cells, A), np.full(n_cells, EA)
    cells = np.sort(rng.choice(n_cells, 30, replace=False))
    stale = rng.random(30) < 0.4

    ref_prev, ref_max, ref_dose = T_prev.copy(), T_max.copy(), dose.copy()
    ref_prev[cells[stale]] = T_start[cell_dofs[cells[stale]]] @ phi
    T1 = T_end[cell_dofs[cells]] @ phi
    T0 = ref_prev[cells]
    on = np.maximum(T0, T1) > floor[cells, None]
    if kind == zk.DOSE_OMEGA:
        rows = ref_dose[cells]
        rows[on] += damage.arrhenius_increment(T0[on], T1[on], 1.0, A, EA)
        ref_dose[cells] = rows
    elif kind == zk.DOSE_CEM43:
        rows = ref_dose[cells]
        rows[on] = damage.cem43_increment_capped(rows[on], T0[on], T1[on], 1.0)
        ref_dose[cells] = rows
    ref_max[cells] = np.maximum(ref_max[cells], T1)
    ref_prev[cells] = T1

    rate = np.full((n_cells, npts), -1.0) if kind == zk.DOSE_OMEGA else zk.empty_dose()
    zk.zone_step(cells, stale, cell_dofs, phi, T_end, T_start, T_prev, T_max, dose, rate, kind, floor, A_c, Ea_c, 1.0)
    assert np.allclose(T_prev, ref_prev, rtol=1e-15, atol=1e-13)
    assert np.allclose(T_max, ref_max, rtol=1e-15, atol=1e-13)
    if kind != zk.DOSE_NONE:
        assert np.allclose(dose, ref_dose, rtol=1e-11, atol=0.0)
        untouched = np.setdiff1d(np.arange(n_cells), cells)
        assert np.array_equal(dose[untouched], ref_dose[untouched])


def test_nodal_dose_step_equals_numpy():
    t0, t1 = temperature_pairs(np.random.default_rng(5))
    n = len(t0)
    A_n, Ea_n = np.full(n, A), np.full(n, EA)
    omega, cem43 = np.random.default_rng(6).uniform(0, 2, n), np.random.default_rng(7).uniform(0, 300, n)
    T_max = np.maximum(t0, 60.0)
    ref_omega = omega + damage.arrhenius_increment(t0, t1, 1.5, A, EA)
    ref_cem = damage.cem43_increment_capped(cem43, t0, t1, 1.5)
    ref_max = np.maximum(T_max, t1)
    zk.nodal_dose_step(t0, t1, 1.5, A_n, Ea_n, omega, cem43, T_max, np.full(n, -1.0))
    assert np.allclose(omega, ref_omega, rtol=1e-10, atol=0.0)
    assert np.allclose(cem43, ref_cem, rtol=1e-12, atol=0.0)
    assert np.array_equal(T_max, ref_max)


def test_time_above_closed_form():
    """Time (s) above 43 C within a 2 s step, T linear: below, above, crossing up and down
    (at 1/4 and 3/4 of the step), touching the level, constant at the level."""
    T0 = np.array([40.0, 44.0, 42.0, 44.0, 41.0, 43.0, 43.0, 45.0])
    T1 = np.array([42.0, 50.0, 46.0, 40.0, 43.0, 43.0, 47.0, 43.0])
    expected = np.array([0.0, 2.0, 2.0 * 3 / 4, 2.0 * 1 / 4, 0.0, 2.0, 2.0, 2.0])
    acc = np.ones(len(T0))
    zk.add_time_above(T0, T1, 43.0, 2.0, acc)
    assert np.allclose(acc - 1.0, expected, rtol=0, atol=1e-15)


def test_rate_cache_is_bitwise_neutral():
    """The kept exp(-E_a / (R T_prev)) (rate_prev) changes no bit of Omega: three steps with the
    cache carried over equal three steps with it reset before each."""
    rng = np.random.default_rng(8)
    n_cells, n_dofs, npts = 40, 30, 5
    cell_dofs = rng.integers(0, n_dofs, (n_cells, 4)).astype(np.int32)
    phi = rng.dirichlet(np.ones(4), npts).T.copy()
    states = [rng.uniform(50, 80, n_dofs) for _ in range(4)]
    states[2][:5] = states[1][:5] + 0.01  # some points take the Simpson branch
    floor = np.full(n_cells, 55.0)
    A_c, Ea_c = np.full(n_cells, A), np.full(n_cells, EA)
    cells = np.arange(n_cells)
    results = []
    for keep in (True, False):
        T_prev = states[0][cell_dofs] @ phi
        T_max, omega = T_prev.copy(), np.zeros((n_cells, npts))
        rate = np.full((n_cells, npts), -1.0)
        for k in range(1, 4):
            if not keep:
                rate.fill(-1.0)
            zk.zone_step(cells, np.zeros(n_cells, bool), cell_dofs, phi, states[k], states[k - 1], T_prev, T_max,
                         omega, rate, zk.DOSE_OMEGA, floor, A_c, Ea_c, 1.0)
        assert (rate > 0).any() and (rate == -1.0).any()  # used, and unknown below the floor
        results.append(omega)
    assert np.array_equal(results[0], results[1])
    assert results[0].max() > 0


def test_nodal_rate_cache_is_bitwise_neutral():
    rng = np.random.default_rng(9)
    n = 500
    temps = [rng.uniform(37, 90, n)]
    for _ in range(3):
        temps.append(temps[-1] + rng.choice([0.0, 0.005, 0.5, -2.0], n))
    out = []
    for keep in (True, False):
        omega, cem43, T_max, rate = np.zeros(n), np.zeros(n), temps[0].copy(), np.full(n, -1.0)
        for k in range(1, 4):
            if not keep:
                rate.fill(-1.0)
            zk.nodal_dose_step(temps[k - 1], temps[k], 1.0, np.full(n, A), np.full(n, EA), omega, cem43, T_max, rate)
        out.append(omega)
    assert np.array_equal(out[0], out[1]) and out[0].max() > 0


def test_damaged_compiled_cache_is_recompiled(tmp_path):
    """A truncated file in the compiled-code cache (numba) costs a recompilation and a warning,
    not the run: fresh interpreters with the cache in tmp_path (NUMBA_CACHE_DIR)."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np, warnings; warnings.simplefilter('always')\n"
        "from solver import dose_kernels as zk\n"
        "n = 4; om, cem, tm, r = np.zeros(n), np.zeros(n), np.zeros(n), np.full(n, -1.0)\n"
        "zk.call(zk.nodal_dose_step, np.full(n, 50.0), np.full(n, 60.0), 1.0, np.full(n, 7.39e39),\n"
        "        np.full(n, 2.577e5), om, cem, tm, r)\n"
        "print(repr(float(om[0])), repr(float(cem[0])))\n"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), PYTHONPATH=str(Path(__file__).resolve().parents[2]))

    def run():
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)

    first = run()
    assert first.returncode == 0, first.stderr
    damaged = list(tmp_path.rglob("*nodal_dose_step*.nbc"))
    assert damaged
    for f in damaged:
        f.write_bytes(f.read_bytes()[:100])
    second = run()
    assert second.returncode == 0, second.stderr
    assert "unreadable" in second.stderr and "compiling it again" in second.stderr
    assert second.stdout == first.stdout  # the same numbers
    third = run()  # the cache was written again
    assert third.returncode == 0 and "unreadable" not in third.stderr and third.stdout == first.stdout
