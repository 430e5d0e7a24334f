"""Reading a case: TOML file -> overrides -> referenced files -> validated :class:`Case`.

- :func:`load_case`: a case file (``bioheat run|validate|mesh``), with ``--set`` overrides;
- :func:`parse_case`: a case already read into a dict (tests, ``bioheat reproduce``, sweeps),
  with the folder its relative paths are resolved from.

Both read every applicator's ``schedule_csv`` into its ``schedule`` the same way (confined to
the case's folder or a data folder, :mod:`solver.inputs`), so no path validates a case whose
CSV was not read. Errors are :class:`solver.errors.CaseError` naming the key, the value and
what is allowed (:mod:`solver.case_errors`). No FEM stack is imported, except for a
``kind = "file"`` geometry, whose mesh file is read to check the case against its groups
(:mod:`solver.file_checks`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import inputs
from .case_errors import validate
from .config import Case, FileGeometry
from .errors import CaseError, shorten
from .file_checks import file_problems
from .overrides import OverrideError, apply_overrides


def parse_case(data: dict[str, Any], source: str = "<case>", case_dir: str | Path = ".") -> Case:
    """Validate the case table ``data`` (not modified); relative paths (``geometry.path``,
    ``schedule_csv``) are resolved from ``case_dir``. ``source`` heads the error messages.
    Raises CaseError listing every problem."""
    data = dict(data)
    data["case_dir"] = str(case_dir)
    read_schedule_csvs(data, Path(case_dir), source)
    return validate(Case, data, source)


def load_case(path: str | Path, overrides: list[str] | None = None) -> Case:
    """Read and validate a TOML case file. Raises CaseError with a readable message.

    ``overrides``: ``KEY=VALUE`` items (``bioheat run --set``, see solver.overrides) applied to
    the file's data before validation, so they are checked like values typed in the file.
    Referenced files (after the overrides, so an override cannot escape) must lie in the case's
    folder or a data folder (:mod:`solver.inputs`). A mesh file is checked against the case
    (collective over COMM_WORLD: :func:`solver.file_checks.file_problems`)."""
    path = Path(path)
    source = shorten(path, 120)
    if not path.is_file():
        raise CaseError(f"{source}: case file not found")
    data = inputs.read_case_toml(path)
    try:
        data = apply_overrides(data, overrides)
    except OverrideError as err:
        raise CaseError(f"{source}: {shorten(str(err), 300)}") from None
    geometry = data.get("geometry")
    if isinstance(geometry, dict) and geometry.get("kind") == "file" and "path" in geometry:
        inputs.confine(geometry["path"], path.resolve().parent, "geometry.path", source)
    case = parse_case(data, source=source, case_dir=path.resolve().parent)
    if isinstance(case.geometry, FileGeometry):
        errors, warnings = file_problems(case)
        if errors:
            lines = [f"{source}: invalid case ({len(errors)} problem(s))"] + [f"  {e}" for e in errors]
            raise CaseError("\n".join(lines))
        case._file_warnings = list(warnings)
    return case


def read_schedule_csvs(data: dict[str, Any], case_dir: Path, source: str) -> None:
    """Inline every applicator's schedule_csv (columns time_s, power_W; relative to
    ``case_dir``) as its schedule. ``data["applicator"]`` is replaced by copies, so the
    caller's tables are not changed. An applicator that also has power_W is left to the
    schema (which refuses it naming both keys)."""
    applicators = data.get("applicator")
    if not isinstance(applicators, list):
        return  # none, or the wrong type (the schema reports it)
    applicators = [dict(ap) if isinstance(ap, dict) else ap for ap in applicators]
    data["applicator"] = applicators
    folder = Path(case_dir).resolve()
    for i, ap in enumerate(applicators):
        if not isinstance(ap, dict) or not ap.get("schedule_csv") or ap.get("power_W") is not None:
            continue
        key = f"applicator[{i}].schedule_csv"
        if not isinstance(ap["schedule_csv"], str):
            continue  # the schema names the wrong type
        csv_path = inputs.confine(ap["schedule_csv"], folder, key, source)
        if ap.get("schedule") is not None:
            raise CaseError(f"{source}: applicator[{i}]: give schedule or schedule_csv, not both")
        ap["schedule"] = inputs.read_schedule_csv(csv_path, f"{key} = '{shorten(ap['schedule_csv'], 100)}'", source)
