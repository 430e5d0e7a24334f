"""Sweep files, designs, planning and the statistics of the analysis (no FEM solve)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from solver.sweep.analyze import clopper_pearson_interval, safety_index, wilson_interval
from solver.sweep.plan import plan, plan_cases
from solver.sweep.spec import SweepError, load_spec

DATA = Path(__file__).resolve().parents[1] / "data" / "sweep"
TINY = DATA / "tiny_case.toml"


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    p = tmp_path / name
    p.write_text(f'base = "{TINY}"\n' + text)
    return p


GRID = """
design = "grid"
[[parameter]]
path = "applicator[0].power_W"
values = [4.0, 10.0]
[[parameter]]
path = "tissues.muscle.conductivity_W_per_mK"
start = 0.4
stop = 0.6
num = 3
"""


def test_grid_is_the_cartesian_product(tmp_path):
    spec = load_spec(write(tmp_path, GRID))
    points, unit = spec.design_points()
    assert unit is None and len(points) == 6
    assert [p["tissues.muscle.conductivity_W_per_mK"] for p in points[:3]] == pytest.approx([0.4, 0.5, 0.6])
    assert {p["applicator[0].power_W"] for p in points} == {4.0, 10.0}


def test_plan_is_stable_and_writes_resolved_cases(tmp_path):
    spec = write(tmp_path, GRID)
    m1 = plan(spec, tmp_path / "a")
    m2 = plan(spec, tmp_path / "b")
    assert m1["run_ids"] == m2["run_ids"] and len(set(m1["run_ids"])) == 6
    # planning again into the same folder keeps it; the run id is the resolved case's hash
    assert plan(spec, tmp_path / "a")["run_ids"] == m1["run_ids"]
    from solver.case_loader import load_case

    for rid in m1["run_ids"]:
        case = load_case(tmp_path / "a" / "runs" / rid / "case.toml")
        assert case.hash().startswith(rid)
        assert case.output.fields is False  # sweeps write no fields unless asked
    rows = (tmp_path / "a" / "manifest.csv").read_text().splitlines()
    assert rows[0] == "index,run_id,applicator[0].power_W,tissues.muscle.conductivity_W_per_mK"
    assert len(rows) == 7


def test_invalid_value_is_rejected_before_anything_is_written(tmp_path):
    spec = write(tmp_path, """
[[parameter]]
path = "applicator[0].power_W"
values = [4.0, -1.0]
""")
    with pytest.raises(SweepError) as err:
        plan(spec, tmp_path / "out")
    msg = str(err.value)
    assert "1 of 2 design points" in msg and "applicator[0].power_W=-1.0" in msg and "applicator[0].power_W" in msg
    assert not (tmp_path / "out").exists()


def test_unknown_key_and_unused_tissue_are_rejected(tmp_path):
    spec = write(tmp_path, """
[[parameter]]
path = "applicator[0].powr_W"
values = [4.0, 5.0]
""")
    with pytest.raises(SweepError, match=r"powr_W.*unknown key"):
        plan_cases(load_spec(spec))
    spec = write(tmp_path, """
[[parameter]]
path = "tissues.fat.conductivity_W_per_mK"
values = [0.2, 0.4]
""")
    # refused by the case itself: a tissue table no region uses (before the sweep's own no-op check)
    with pytest.raises(SweepError, match=r"tissues.fat: no region uses this tissue"):
        plan_cases(load_spec(spec))
    spec = write(tmp_path, """
[[parameter]]
path = "applicator[3].power_W"
values = [4.0, 5.0]
""")
    with pytest.raises(SweepError, match=r"applicator has 1 entry, no index 3"):
        plan_cases(load_spec(spec))


@pytest.mark.parametrize(
    "text, match",
    [
        ('design = "lhs"\nsamples = 4\n[[parameter]]\npath = "a.b"\nstart = 1\nstop = 2\nnum = 2\n',
         r"start/stop/num is a grid range"),
        ('[[parameter]]\npath = "a.b"\ndistribution = "uniform"\nlow = 1\nhigh = 2\n', r"needs a sampled design"),
        ('design = "lhs"\nsamples = 4\n[[parameter]]\npath = "a.b"\ndistribution = "beta"\n',
         r"distribution \(a.b\) = 'beta': allowed uniform, normal, truncnormal, lognormal"),
        ('design = "lhs"\nsamples = 4\n[[parameter]]\npath = "a.b"\ndistribution = "uniform"\nlow = 2\nhigh = 1\n',
         r"low = 2.0 must be below high = 1.0"),
        ('design = "sobol"\nsamples = 6\n[[parameter]]\npath = "a.b"\nvalues = [1, 2]\n', r"power of two"),
        ('design = "grid"\n[[parameter]]\npath = "a..b"\nvalues = [1]\n', r"parameter\[0\].path = 'a..b'"),
        ('design = "grid"\nsamplez = 3\n[[parameter]]\npath = "a.b"\nvalues = [1]\n', r"unknown key\(s\) \['samplez'\]"),
        ('[[parameter]]\npath = "a.b"\nvalues = [1]\nstart = 1\n', r"exactly one of"),
    ],
)
def test_bad_sweep_files(tmp_path, text, match):
    with pytest.raises(SweepError, match=match):
        load_spec(write(tmp_path, text))


def test_sampled_designs_are_seeded_and_map_through_the_inverse_cdf(tmp_path):
    text = """
design = "lhs"
samples = 20
seed = 7
[[parameter]]
path = "p.uniform"
distribution = "uniform"
low = 2.0
high = 4.0
[[parameter]]
path = "p.trunc"
distribution = "truncnormal"
mean = 1.0
std = 1.0
low = 0.5
high = 1.2
[[parameter]]
path = "p.logn"
distribution = "lognormal"
median = 3.0
sigma_log = 0.5
"""
    spec = load_spec(write(tmp_path, text))
    a, ua = spec.design_points()
    b, ub = spec.design_points()
    assert a == b
    # Latin hypercube: every column has exactly one point in each of the 20 strata
    for j in range(3):
        assert sorted(np.floor(ua[:, j] * 20).astype(int)) == list(range(20))
    u = ua[:, 0]
    assert [p["p.uniform"] for p in a] == pytest.approx(2.0 + 2.0 * u, rel=1e-14)
    assert all(0.5 <= p["p.trunc"] <= 1.2 for p in a)
    from scipy.stats import norm

    x = np.array([p["p.logn"] for p in a])
    assert np.log(x) == pytest.approx(math.log(3.0) + 0.5 * norm.ppf(ua[:, 2]), rel=1e-12)


def test_sobol_and_morris_sizes(tmp_path):
    params = "".join(
        f'[[parameter]]\npath = "p.x{i}"\ndistribution = "uniform"\nlow = 0.0\nhigh = 1.0\n' for i in range(3)
    )
    sob = load_spec(write(tmp_path, 'design = "sobol"\nsamples = 8\n' + params))
    assert len(sob.design_points()[0]) == 8 * (3 + 2)
    mor = load_spec(write(tmp_path, 'design = "morris"\nsamples = 4\nlevels = 4\n' + params, "m.toml"))
    pts, unit = mor.design_points()
    assert len(pts) == 4 * (3 + 1)
    assert set(np.round(unit.ravel() * 3, 12)) <= {0.0, 1.0, 2.0, 3.0}


def test_binomial_intervals_against_tabulated_values():
    # Wilson (1927) closed form; Clopper-Pearson for k = 0 is 1 - (alpha/2)^(1/n) in closed form
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.27753, abs=5e-6)
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == pytest.approx((0.23659, 0.76341), abs=5e-6)
    lo, hi = clopper_pearson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 10), rel=1e-10)
    lo, hi = clopper_pearson_interval(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 10), rel=1e-10)
    lo, hi = clopper_pearson_interval(3, 32)
    assert lo < wilson_interval(3, 32)[0] and hi > wilson_interval(3, 32)[1]  # exact interval is wider here


def test_safety_index_is_negative_exactly_when_the_verdict_passes():
    import pandas as pd

    df = pd.DataFrame({
        "dura_max_temperature_C": [44.0, 45.5, 44.9, 30.0],
        "dura_max_cem43_min": [1.0, 1.0, 7.0, 0.0],
        "spinal_cord_max_temperature_C": [40.0, 40.0, 40.0, 46.0],
        "spinal_cord_max_cem43_min": [0.1, 0.1, 0.1, 0.5],
        "limit_temperature_C": 45.0,
        "limit_cem43_min": 6.0,
    })
    g = safety_index(df)
    assert list(g < 0) == [True, False, False, False]
    assert g[0] == pytest.approx(max(-1.0, math.log10(1 / 6), -5.0, math.log10(0.1 / 6)))


def test_manifest_is_strict_json(tmp_path):
    spec = write(tmp_path, 'design = "random"\nsamples = 3\nseed = 2\n[[parameter]]\npath = "applicator[0].power_W"\n'
                 'distribution = "uniform"\nlow = 4.0\nhigh = 6.0\n')
    plan(spec, tmp_path / "out")
    m = json.loads((tmp_path / "out" / "manifest.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert len(m["samples"]) == 3 and all(4.0 <= s["values"]["applicator[0].power_W"] <= 6.0 for s in m["samples"])


# --------------------------------------------------------------------------- analysis of known functions
def _fake_results(folder: Path, f) -> None:
    """Mark every planned run done with metrics y = f(values) (no solve): the analysis must
    recover the closed-form indices of f."""
    from solver.sweep.plan import read_manifest

    m = read_manifest(folder)
    for s in m["samples"]:
        d = folder / "runs" / s["run_id"]
        y = f(s["values"])
        metrics = {"dura_max_temperature_C": y, "dura_max_cem43_min": 1.0, "limit_temperature_C": 45.0,
                   "limit_cem43_min": 6.0, "safe": bool(y < 45.0), "verdict": "PASS" if y < 45.0 else "FAIL"}
        rec = {"run_id": s["run_id"], "metrics": metrics,
               "timing": {"wall_time_s": 1.0, "solve_time_s": 0.5, "overhead_s": 0.5}}
        (d / "done.json").write_text(json.dumps(rec))


LINEAR = lambda v: 40.0 + v["applicator[0].power_W"] + 5.0 * v["tissues.muscle.conductivity_W_per_mK"]  # noqa: E731
TWO_UNIFORM = """
[[parameter]]
path = "applicator[0].power_W"
distribution = "uniform"
low = 4.0
high = 6.0
[[parameter]]
path = "tissues.muscle.conductivity_W_per_mK"
distribution = "uniform"
low = 0.4
high = 0.6
"""


def test_sobol_indices_of_a_linear_function(tmp_path):
    # y = P + 5 k, P ~ U(4, 6), k ~ U(0.4, 0.6): Var = 4/12 + 25 * 0.04/12, S1 = ST = (0.8, 0.2)
    from solver.sweep.analyze import analyze

    spec = write(tmp_path, 'design = "sobol"\nsamples = 64\nseed = 3\n' + TWO_UNIFORM)
    plan(spec, tmp_path / "sob")
    _fake_results(tmp_path / "sob", LINEAR)
    r = analyze(tmp_path / "sob", outputs=["dura_max_temperature_C"], say=lambda s: None)["result"]
    s = r["sensitivity"]["dura_max_temperature_C"]
    for path, exact in (("applicator[0].power_W", 0.8), ("tissues.muscle.conductivity_W_per_mK", 0.2)):
        for key in ("S1", "ST"):
            assert abs(s[path][key] - exact) < max(3 * s[path][key + "_conf"], 0.02), (path, key, s[path])
    assert (tmp_path / "sob" / "analysis" / "sobol_dura_max_temperature_C.png").exists()


def test_morris_elementary_effects_of_a_linear_function(tmp_path):
    # exact elementary effects per unit quantile range: dy/du = 2 (P: range 2), 1 (k: 5 * 0.2)
    from solver.sweep.analyze import analyze

    spec = write(tmp_path, 'design = "morris"\nsamples = 6\nseed = 1\n' + TWO_UNIFORM)
    plan(spec, tmp_path / "mor")
    _fake_results(tmp_path / "mor", LINEAR)
    r = analyze(tmp_path / "mor", outputs=["dura_max_temperature_C"], say=lambda s: None)["result"]
    s = r["sensitivity"]["dura_max_temperature_C"]
    assert s["applicator[0].power_W"]["mu_star"] == pytest.approx(2.0, rel=1e-5)
    assert s["tissues.muscle.conductivity_W_per_mK"]["mu_star"] == pytest.approx(1.0, rel=1e-5)
    assert s["applicator[0].power_W"]["sigma"] == pytest.approx(0.0, abs=1e-5)


def test_probability_of_unsafe_from_a_latin_hypercube(tmp_path):
    # y = P + 5 k + 37.5 is unsafe (>= 45) iff P + 5 k >= 7.5, a line through the centre of the
    # uniform box and symmetric about it: the exact probability is 1/2
    from solver.sweep.analyze import analyze

    spec = write(tmp_path, 'design = "lhs"\nsamples = 40\nseed = 5\n' + TWO_UNIFORM)
    plan(spec, tmp_path / "lhs")
    _fake_results(tmp_path / "lhs", lambda v: LINEAR(v) - 2.5)  # unsafe iff P + 5 k >= 7.5: half the box
    out = analyze(tmp_path / "lhs", outputs=["dura_max_temperature_C"], say=lambda s: None)
    u = out["result"]["unsafe"]
    k = u["unsafe"]
    assert u["n"] == 40 and u["p_unsafe"] == k / 40
    lo, hi = u["wilson_95"]
    assert lo < 0.5 < hi and tuple(u["wilson_95"]) == pytest.approx(wilson_interval(k, 40))
    drivers = out["result"]["statistics"]["dura_max_temperature_C"]["drivers"]
    assert list(drivers)[0] == "applicator[0].power_W"  # the larger share of the variance
    names = {p.name for p in out["figures"]}
    assert {"distribution.png", "safety_map.png", "vs_dura_max_temperature_C.png"} <= names


@pytest.mark.parametrize("value", [1.0, 0.1 + 0.2, 1e-5, 3, True, "kernel", 'a "quoted" s',
                                   [[0.0, 6.0], [120.0, 0.0]], [{"name": "p", "position_m": [0.5, 0.0, 0.0]}]])
def test_values_reach_the_case_exactly_as_planned(value):
    from solver.overrides import parse_value
    from solver.sweep.plan import toml_value

    assert parse_value(toml_value(value)) == value
