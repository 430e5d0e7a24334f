"""Sweep files: which case keys vary, how, and with which design.

A sweep file is TOML::

    base = "../spine/T8_track.toml"     # the base case, relative to this file
    design = "grid"                      # grid | random | lhs | sobol | morris
    samples = 32                         # random, lhs: number of runs; sobol: base sample N
                                         #   (N (d + 2) runs, d parameters); morris: trajectories
                                         #   (r (d + 1) runs)
    seed = 1                             # random, lhs, sobol, morris (default 0)
    levels = 4                           # morris: grid levels (default 4)
    fields = false                       # write temperature fields per run (default false)
    set = ["time.end_time_s=60"]         # fixed --set overrides for every run

    [[parameter]]
    path = "applicator[0].schedule[0][1]"   # a --set path (see solver.overrides)
    label = "power (W)"                      # optional, for tables and plots
    values = [4.0, 6.0, 8.0]                 # a list ...
    # start = 0.006, stop = 0.010, num = 3   # ... or a range (numpy.linspace), grid only
    # distribution = "uniform", low, high    # ... or a distribution (sampled designs):
    #   "normal" mean, std; "truncnormal" mean, std, low, high;
    #   "lognormal" median, sigma_log (standard deviation of ln x)

    [executor]                            # defaults for `bioheat sweep run` (command line wins)
    concurrent = 2                        # local: runs at the same time
    ranks_per_run = 1                     # local, slurm: MPI ranks per run
    groups = 2                            # mpi: rank groups
    [executor.slurm]
    partition = "compute"
    time = "00:30:00"
    runs_per_task = 1
    sbatch = ["--mem-per-cpu=2G"]

Designs: ``grid`` is the Cartesian product of lists and ranges; ``random`` draws independent
uniform numbers (numpy default_rng(seed)); ``lhs`` is scipy.stats.qmc.LatinHypercube(seed);
``sobol`` is SALib's Saltelli/Sobol sampling (first and total order, no second order);
``morris`` is SALib's Morris trajectories. Sampled designs draw unit numbers u in [0, 1] and map
them through each parameter's inverse CDF (clipped to [1e-6, 1 - 1e-6] so that normal and
lognormal tails stay finite); a ``values`` list is then a discrete uniform choice.

Pure Python plus numpy/scipy/SALib; no FEM imports. Errors are SweepError (a CaseError: exit
code 2) naming the file and the key.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import CaseError
from ..overrides import OverrideError, parse_path

DESIGNS = ("grid", "random", "lhs", "sobol", "morris")
SAMPLED = ("random", "lhs", "sobol", "morris")
DISTRIBUTIONS = {
    "uniform": ("low", "high"),
    "normal": ("mean", "std"),
    "truncnormal": ("mean", "std", "low", "high"),
    "lognormal": ("median", "sigma_log"),
}
U_CLIP = 1e-6
_TOP_KEYS = {"base", "design", "samples", "seed", "levels", "fields", "set", "parameter", "executor", "name",
             "description", "outputs"}
_EXECUTOR_KEYS = {"concurrent", "ranks_per_run", "groups", "slurm"}
_SLURM_KEYS = {"partition", "time", "runs_per_task", "sbatch", "launcher", "max_parallel"}


class SweepError(CaseError):
    """An invalid sweep file or sweep folder (exit code 2); the message names the key."""


@dataclass
class Parameter:
    """One varied case key. Exactly one of values / range / distribution is set."""

    path: str
    label: str
    values: list[Any] | None = None
    distribution: str | None = None
    args: dict[str, float] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "distribution" if self.distribution else "values"

    def ppf(self, u: np.ndarray) -> list[Any]:
        """Values at unit numbers u (inverse CDF; discrete uniform choice for a list)."""
        u = np.clip(np.asarray(u, dtype=float), U_CLIP, 1.0 - U_CLIP)
        if self.values is not None:
            idx = np.minimum((u * len(self.values)).astype(int), len(self.values) - 1)
            return [self.values[i] for i in idx]
        from scipy import stats

        a = self.args
        if self.distribution == "uniform":
            x = a["low"] + u * (a["high"] - a["low"])
        elif self.distribution == "normal":
            x = stats.norm.ppf(u, loc=a["mean"], scale=a["std"])
        elif self.distribution == "truncnormal":
            lo, hi = (a["low"] - a["mean"]) / a["std"], (a["high"] - a["mean"]) / a["std"]
            x = stats.truncnorm.ppf(u, lo, hi, loc=a["mean"], scale=a["std"])
        else:  # lognormal
            x = np.exp(math.log(a["median"]) + a["sigma_log"] * stats.norm.ppf(u))
        return [float(v) for v in x]

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.path, "label": self.label}
        if self.values is not None:
            d["values"] = self.values
        else:
            d["distribution"] = self.distribution
            d.update(self.args)
        return d


@dataclass
class SweepSpec:
    path: Path
    name: str
    base: Path
    design: str
    parameters: list[Parameter]
    samples: int | None
    seed: int
    levels: int
    fields: bool
    fixed: list[str]
    executor: dict[str, Any]
    outputs: list[str]
    raw: dict[str, Any]

    def salib_problem(self) -> dict[str, Any]:
        """SALib problem on the unit cube (the design's own coordinates)."""
        return {
            "num_vars": len(self.parameters),
            "names": [p.path for p in self.parameters],
            "bounds": [[0.0, 1.0]] * len(self.parameters),
        }

    def unit_samples(self) -> np.ndarray:
        """(n, d) unit numbers of a sampled design (deterministic for a given seed)."""
        d = len(self.parameters)
        n = self.samples
        if self.design == "random":
            return np.random.default_rng(self.seed).random((n, d))
        if self.design == "lhs":
            from scipy.stats import qmc

            return qmc.LatinHypercube(d=d, seed=self.seed).random(n)
        if self.design == "sobol":
            from SALib.sample import sobol

            return sobol.sample(self.salib_problem(), n, calc_second_order=False, seed=self.seed)
        if self.design == "morris":
            from SALib.sample import morris

            return morris.sample(self.salib_problem(), n, num_levels=self.levels, seed=self.seed)
        raise AssertionError(self.design)

    def design_points(self) -> tuple[list[dict[str, Any]], np.ndarray | None]:
        """Every run's parameter values {path: value} in design order, and the unit numbers
        (None for a grid)."""
        if self.design == "grid":
            import itertools

            lists = [p.values for p in self.parameters]
            return [dict(zip([p.path for p in self.parameters], combo)) for combo in itertools.product(*lists)], None
        u = self.unit_samples()
        cols = [p.ppf(u[:, j]) for j, p in enumerate(self.parameters)]
        points = [{p.path: cols[j][i] for j, p in enumerate(self.parameters)} for i in range(u.shape[0])]
        return points, u


def _number(src: str, key: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SweepError(f"{src}: {key} = {value!r}: expected a finite number")
    if positive and value <= 0:
        raise SweepError(f"{src}: {key} = {value!r}: must be > 0")
    return float(value)


def _parameter(src: str, i: int, d: dict[str, Any], design: str) -> Parameter:
    where = f"parameter[{i}]"
    if not isinstance(d, dict):
        raise SweepError(f"{src}: {where}: expected a table with path = ... and values / start, stop, num / distribution")
    path = d.get("path")
    if not isinstance(path, str):
        raise SweepError(f"{src}: {where}.path: missing (a --set key such as applicator[0].power_W)")
    try:
        parse_path(path)
    except OverrideError as err:
        raise SweepError(f"{src}: {where}.path = {path!r}: {err}") from None
    label = d.get("label", path)
    if not isinstance(label, str):
        raise SweepError(f"{src}: {where}.label = {label!r}: expected a string")
    has_values, has_range, has_dist = "values" in d, "start" in d or "stop" in d or "num" in d, "distribution" in d
    if has_values + has_range + has_dist != 1:
        raise SweepError(
            f"{src}: {where} ({path}): give exactly one of values = [...], start/stop/num, or distribution = ..."
        )
    allowed = {"path", "label"}
    if has_values:
        allowed |= {"values"}
        values = d["values"]
        if not isinstance(values, list) or not values:
            raise SweepError(f"{src}: {where}.values ({path}) = {values!r}: expected a non-empty list")
        p = Parameter(path, label, values=list(values))
    elif has_range:
        allowed |= {"start", "stop", "num"}
        if design != "grid":
            raise SweepError(
                f"{src}: {where} ({path}): start/stop/num is a grid range; design '{design}' samples, "
                "use distribution = \"uniform\" with low/high"
            )
        for k in ("start", "stop", "num"):
            if k not in d:
                raise SweepError(f"{src}: {where}.{k} ({path}): missing (a range needs start, stop and num)")
        start = _number(src, f"{where}.start", d["start"])
        stop = _number(src, f"{where}.stop", d["stop"])
        num = d["num"]
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise SweepError(f"{src}: {where}.num ({path}) = {num!r}: expected an integer >= 1")
        p = Parameter(path, label, values=[float(v) for v in np.linspace(start, stop, num)])
    else:
        dist = d["distribution"]
        if dist not in DISTRIBUTIONS:
            raise SweepError(
                f"{src}: {where}.distribution ({path}) = {dist!r}: allowed {', '.join(DISTRIBUTIONS)}"
            )
        if design == "grid":
            raise SweepError(
                f"{src}: {where} ({path}): a distribution needs a sampled design ({', '.join(SAMPLED)}); "
                "a grid takes values = [...] or start/stop/num"
            )
        names = DISTRIBUTIONS[dist]
        allowed |= {"distribution", *names}
        args = {}
        for k in names:
            if k not in d:
                raise SweepError(f"{src}: {where}.{k} ({path}): missing ('{dist}' needs {', '.join(names)})")
            args[k] = _number(src, f"{where}.{k}", d[k], positive=k in ("std", "sigma_log", "median"))
        if "low" in args and not args["low"] < args["high"]:
            raise SweepError(f"{src}: {where} ({path}): low = {args['low']!r} must be below high = {args['high']!r}")
        if dist == "truncnormal" and not args["low"] <= args["mean"] <= args["high"]:
            raise SweepError(f"{src}: {where} ({path}): mean = {args['mean']!r} must lie in [low, high]")
        p = Parameter(path, label, distribution=dist, args=args)
    extra = set(d) - allowed
    if extra:
        raise SweepError(f"{src}: {where} ({path}): unknown key(s) {sorted(extra)}; allowed {sorted(allowed)}")
    return p


def load_spec(path: str | Path) -> SweepSpec:
    """Read and check a sweep file. Raises SweepError naming the key (the cases themselves are
    validated when the sweep is planned, see solver.sweep.plan)."""
    path = Path(path)
    src = str(path)
    if not path.is_file():
        raise SweepError(f"{src}: sweep file not found")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise SweepError(f"{src}: not valid TOML: {err}") from None
    extra = set(raw) - _TOP_KEYS
    if extra:
        raise SweepError(f"{src}: unknown key(s) {sorted(extra)}; allowed {sorted(_TOP_KEYS)}")
    if "base" not in raw or not isinstance(raw["base"], str):
        raise SweepError(f"{src}: base: missing (the base case file, relative to the sweep file)")
    base = (path.resolve().parent / raw["base"]).resolve()
    if not base.is_file():
        raise SweepError(f"{src}: base = {raw['base']!r}: case file not found ({base})")
    design = raw.get("design", "grid")
    if design not in DESIGNS:
        raise SweepError(f"{src}: design = {design!r}: allowed {', '.join(DESIGNS)}")
    samples = raw.get("samples")
    if design in SAMPLED:
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise SweepError(f"{src}: samples = {samples!r}: design '{design}' needs an integer samples >= 1")
        if design == "sobol" and samples & (samples - 1):
            raise SweepError(f"{src}: samples = {samples}: Sobol sampling needs a power of two (e.g. 8, 16, 32)")
    elif samples is not None:
        raise SweepError(f"{src}: samples = {samples!r}: a grid has no samples (its size is the product of the lists)")
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SweepError(f"{src}: seed = {seed!r}: expected an integer >= 0")
    levels = raw.get("levels", 4)
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
        raise SweepError(f"{src}: levels = {levels!r}: expected an integer >= 2 (Morris grid levels)")
    fields = raw.get("fields", False)
    if not isinstance(fields, bool):
        raise SweepError(f"{src}: fields = {fields!r}: expected true or false")
    fixed = raw.get("set", [])
    if not isinstance(fixed, list) or not all(isinstance(s, str) and "=" in s for s in fixed):
        raise SweepError(f"{src}: set = {fixed!r}: expected a list of \"KEY=VALUE\" strings")
    params_raw = raw.get("parameter", [])
    if not isinstance(params_raw, list) or not params_raw:
        raise SweepError(f"{src}: no [[parameter]] tables (at least one parameter must vary)")
    params = [_parameter(src, i, d, design) for i, d in enumerate(params_raw)]
    seen: set[str] = set()
    for p in params:
        if p.path in seen:
            raise SweepError(f"{src}: parameter path {p.path!r} appears twice")
        seen.add(p.path)
    if design in ("sobol", "morris") and len(params) < 2:
        raise SweepError(f"{src}: design '{design}' needs at least two parameters")
    executor = raw.get("executor", {})
    if not isinstance(executor, dict) or set(executor) - _EXECUTOR_KEYS:
        raise SweepError(f"{src}: [executor]: unknown key(s) {sorted(set(executor) - _EXECUTOR_KEYS)}; "
                         f"allowed {sorted(_EXECUTOR_KEYS)}")
    for k in ("concurrent", "ranks_per_run", "groups"):
        v = executor.get(k, 1)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise SweepError(f"{src}: executor.{k} = {v!r}: expected an integer >= 1")
    slurm = executor.get("slurm", {})
    if not isinstance(slurm, dict) or set(slurm) - _SLURM_KEYS:
        raise SweepError(f"{src}: [executor.slurm]: unknown key(s) {sorted(set(slurm) - _SLURM_KEYS)}; "
                         f"allowed {sorted(_SLURM_KEYS)}")
    outputs = raw.get("outputs", [])
    if not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs):
        raise SweepError(f"{src}: outputs = {outputs!r}: expected a list of result-table column names")
    name = raw.get("name", path.stem)
    return SweepSpec(path.resolve(), str(name), base, design, params, samples, seed, levels, fields,
                     list(fixed), executor, outputs, raw)
