"""``bioheat sweep plan SWEEP --out DIR``: one resolved, validated case per run, and a manifest.

Layout of a sweep folder::

    DIR/sweep.toml               the sweep file as planned (copy)
    DIR/manifest.json            design, parameters, samples (index -> run id, values), run ids
    DIR/manifest.csv             the same samples as a table
    DIR/runs/<run_id>/case.toml  the resolved case of the run (bioheat run reads it as it is)

Each design point is the base case with the sweep's fixed ``set`` items, ``output.fields``
(false unless the sweep file says ``fields = true``) and the point's values applied as
``--set`` overrides, then validated exactly as ``bioheat run --set`` does. Every point is
validated before anything is written: one invalid point rejects the plan, naming the point's
values and the key. A parameter that does not change the resolved case (e.g. the properties
of a tissue no region uses) is rejected too: a sweep over it would silently vary nothing.

The run id is the first 16 hex digits of the resolved case's sha256 (``Case.hash``), so
planning twice gives the same ids, and design points that resolve to the same case (possible
in Morris trajectories) share one run.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import tomli_w

from ..config import CaseError
from ..case_loader import load_case
from .spec import SweepError, SweepSpec, load_spec

RUN_ID_DIGITS = 16
MANIFEST = "manifest.json"


def toml_value(value: Any) -> str:
    """A value as inline TOML text for a --set item (floats round-trip exactly; tables inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise SweepError(f"value {value!r}: cannot be written as TOML")


def overrides_for(spec: SweepSpec, values: dict[str, Any]) -> list[str]:
    items = list(spec.fixed)
    items.append(f"output.fields={'true' if spec.fields else 'false'}")
    items += [f"{path}={toml_value(v)}" for path, v in values.items()]
    return items


def _case(spec: SweepSpec, values: dict[str, Any]):
    return load_case(spec.base, overrides_for(spec, values))


def _describe(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in values.items())


def plan_cases(spec: SweepSpec) -> tuple[list[dict[str, Any]], dict[str, dict], Any]:
    """Validate every design point. Returns (samples, {run_id: resolved case dict}, unit numbers).

    samples: [{"index", "run_id", "values"}] in design order. Raises SweepError naming the first
    invalid points (at most five are listed) and every parameter without effect."""
    try:
        base = _case(spec, {})
    except CaseError as err:
        raise SweepError(f"{spec.path}: base case with the sweep's fixed settings is invalid:\n{err}") from None
    points, unit = spec.design_points()
    samples: list[dict[str, Any]] = []
    cases: dict[str, dict] = {}
    errors: list[str] = []
    for i, values in enumerate(points):
        try:
            case = _case(spec, values)
        except CaseError as err:
            errors.append(f"  point {i} ({_describe(values)}):\n    " + str(err).replace("\n", "\n    "))
            continue
        run_id = case.hash()[:RUN_ID_DIGITS]
        if run_id not in cases:
            cases[run_id] = case.resolved_dict()
        samples.append({"index": i, "run_id": run_id, "values": values})
    if errors:
        shown = "\n".join(errors[:5])
        more = f"\n  ... and {len(errors) - 5} more" if len(errors) > 5 else ""
        raise SweepError(f"{spec.path}: {len(errors)} of {len(points)} design points are invalid cases:\n{shown}{more}")
    # every parameter must change the resolved case: vary it alone from the first point
    first = points[0]
    base_hash = None
    for p in spec.parameters:
        others = [pt[p.path] for pt in points if pt[p.path] != first[p.path]]
        if not others and p.values is not None and len(p.values) > 1:
            others = [v for v in p.values if v != first[p.path]]
        if not others:
            raise SweepError(f"{spec.path}: parameter {p.path!r} takes a single value ({first[p.path]!r}) in this design")
        if base_hash is None:
            base_hash = _case(spec, first).hash()
        try:
            changed = _case(spec, dict(first, **{p.path: others[0]})).hash()
        except CaseError as err:
            raise SweepError(f"{spec.path}: parameter {p.path!r} = {others[0]!r}:\n{err}") from None
        if changed == base_hash:
            raise SweepError(
                f"{spec.path}: parameter {p.path!r} does not change the resolved case (from {first[p.path]!r} to "
                f"{others[0]!r} gives the same case): is the key used by this case, e.g. a tissue that a region uses?"
            )
    del base
    return samples, cases, unit


def scalar_or_json(v: Any) -> Any:
    return v if isinstance(v, (int, float, str, bool)) else json.dumps(v)


def plan(spec_path: str | Path, out: str | Path, *, force: bool = False) -> dict[str, Any]:
    """Plan a sweep into ``out``. Returns the manifest.

    An existing plan in ``out`` is kept when it has the same run ids (results of complete runs
    stay); a different plan is refused unless ``force`` (which removes the old run folders
    that the new plan does not have)."""
    spec = load_spec(spec_path)
    samples, cases, unit = plan_cases(spec)
    out = Path(out)
    run_ids = list(dict.fromkeys(s["run_id"] for s in samples))
    manifest = {
        "format": "spine-litt sweep manifest 1",
        "name": spec.name,
        "sweep_file": str(spec.path),
        "base_case": str(spec.base),
        "design": spec.design,
        "samples_requested": spec.samples,
        "seed": spec.seed,
        "levels": spec.levels,
        "fixed_overrides": spec.fixed,
        "fields": spec.fields,
        "parameters": [p.describe() for p in spec.parameters],
        "executor": spec.executor,
        "outputs": spec.outputs,
        "samples": [dict(s, unit=list(map(float, unit[s["index"]])) if unit is not None else None) for s in samples],
        "run_ids": run_ids,
    }
    old_path = out / MANIFEST
    if old_path.exists():
        old = json.loads(old_path.read_text())
        if old.get("run_ids") != run_ids and not force:
            raise SweepError(
                f"--out {out}: holds a different sweep plan ({len(old.get('run_ids', []))} runs, "
                f"now {len(run_ids)}); use another folder or --force to replace it"
            )
        for stale in set(old.get("run_ids", [])) - set(run_ids):
            shutil.rmtree(out / "runs" / stale, ignore_errors=True)
    elif out.exists() and any(out.iterdir()) and not force:
        raise SweepError(f"--out {out}: folder exists, is not empty and holds no sweep plan (use another folder)")
    (out / "runs").mkdir(parents=True, exist_ok=True)
    for rid, resolved in cases.items():
        d = out / "runs" / rid
        d.mkdir(exist_ok=True)
        text = tomli_w.dumps(resolved)
        target = d / "case.toml"
        if not target.exists() or target.read_text() != text:
            tmp = d / ".case.toml.tmp"
            tmp.write_text(text)
            tmp.replace(target)
    shutil.copyfile(spec.path, out / "sweep.toml")
    _write_atomic(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    with open(out / ".manifest.csv.tmp", "w", newline="") as fh:
        w = csv.writer(fh)
        paths = [p.path for p in spec.parameters]
        w.writerow(["index", "run_id", *paths])
        for s in samples:
            w.writerow([s["index"], s["run_id"], *(scalar_or_json(s["values"][p]) for p in paths)])
    (out / ".manifest.csv.tmp").replace(out / "manifest.csv")
    return manifest


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of a planned sweep folder. Raises SweepError when there is none."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise SweepError(f"{folder}: no {MANIFEST} (plan the sweep first: bioheat sweep plan SWEEP --out {folder})")
    return json.loads(path.read_text())
