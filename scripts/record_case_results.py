"""Run every shipped case and record the numbers of its summary.json (the reference for
tests/integration/test_refactor_reference.py).

    .venv/bin/python scripts/record_case_results.py --out tests/data/case_results_reference.json
    .venv/bin/python scripts/record_case_results.py --only demo_tumour_heating --out /tmp/x.json

Cases: cases/*.toml, cases/spine/*.toml and cases/verification/*.toml (not the sweeps), and
the VARIANTS below (shipped cases with --set overrides). Each
is run in this process (serial) into a temporary folder; every finite number of summary.json
is kept except timings, iteration counts, ranks, versions, mesh sizes (those are the mesh's,
not the physics') and the locations of maxima (ties in symmetric cases are broken by the
partition). Re-record after a change that is meant to alter results (e.g. new anatomy).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASE_GLOBS = ("cases/*.toml", "cases/spine/*.toml", "cases/verification/*.toml")

# Variants of shipped cases (key, case file, --set overrides) that exercise paths the shipped
# cases do not: coagulation with k(T) and light re-solves; Crank-Nicolson with its damped start.
# The variants keep the catheter wall at the coolant temperature (as when they were first
# recorded): with the convective default (issue 14) 15 W with coagulation passes the 150 C ceiling.
VARIANTS = (
    ("variants/laser_coagulation_kT_light_refresh", "cases/laser_980nm_15W_muscle.toml",
     ["applicator[0].cooling='fixed_temperature'", "coagulation.enabled=true", "coagulation.temperature_dependent_conductivity=true",
      "coagulation.scattering_factor=4.0", "coagulation.optical_refresh_tolerance=0.25"]),
    ("variants/laser_crank_nicolson", "cases/laser_980nm_15W_muscle.toml", ["applicator[0].cooling='fixed_temperature'", "time.scheme='crank_nicolson'"]),
)

# summary keys (dotted prefixes) that are not physics results
NOT_RECORDED = (
    "wall_time_s", "mesh_time_s", "setup_time_s", "solve_time_s", "time_per_step_s",
    "krylov_iterations", "ranks", "versions", "checkpoint", "output_dir",
)


def shipped_cases() -> list[Path]:
    """Every shipped case file, relative to the project root, in a stable order."""
    out: list[Path] = []
    for pattern in CASE_GLOBS:
        out += sorted(ROOT.glob(pattern))
    return [p.relative_to(ROOT) for p in out]


def case_key(path: Path) -> str:
    """The reference key of a case file: its path under cases/ without .toml."""
    return str(path.relative_to("cases").with_suffix(""))


def flatten(prefix: str, value, out: dict[str, float]) -> None:
    """Every number of a JSON value under a dotted key (lists indexed [i]); booleans as 0/1."""
    if value is None or isinstance(value, str):
        return
    if isinstance(value, bool):
        out[prefix] = float(value)
    elif isinstance(value, (int, float)):
        out[prefix] = float(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            flatten(f"{prefix}[{i}]", v, out)


def recorded_numbers(summary: dict) -> dict[str, float]:
    """The summary's physics numbers (see the module docstring for what is left out)."""
    flat: dict[str, float] = {}
    flatten("", summary, flat)
    keep = {}
    for key, x in flat.items():
        if any(key == s or key.startswith(s + ".") or key.startswith(s + "[") for s in NOT_RECORDED):
            continue
        last = key.rsplit(".", 1)[-1]
        if "location_m" in last or last.startswith("where") or key.startswith("mesh."):
            continue
        if not math.isfinite(x):
            raise ValueError(f"{key} = {x} is not finite")
        keep[key] = x
    return keep


def all_runs() -> list[tuple[str, Path, list[str]]]:
    """(key, case file, overrides) of every recorded run: the shipped cases, then VARIANTS."""
    return [(case_key(p), p, []) for p in shipped_cases()] + [(k, Path(p), list(o)) for k, p, o in VARIANTS]


def run_one(path: Path, folder: Path, overrides: list[str] | None = None) -> dict[str, float]:
    """Run one case file (with --set overrides) serially into ``folder`` and return its recorded numbers."""
    from mpi4py import MPI

    from solver.case_loader import load_case
    from solver.simulation import run_case

    case = load_case(ROOT / path, overrides or None)
    summary = run_case(case, folder, overwrite=False, comm=MPI.COMM_SELF, progress=False)
    return recorded_numbers(summary)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--only", action="append", default=[], help="case key(s) to run (default: all)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="record-cases-") as tmp:
        for key, path, overrides in all_runs():
            if args.only and key not in args.only:
                continue
            print(f"running {key} ...", flush=True)
            results[key] = run_one(path, Path(tmp) / key.replace("/", "_"), overrides)
    Path(args.out).write_text(json.dumps(results, indent=1, sort_keys=True, allow_nan=False) + "\n")
    print(f"wrote {args.out}: {len(results)} cases")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
