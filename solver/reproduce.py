"""``bioheat reproduce DIR``: re-run the resolved case recorded in a result folder into a new
folder and compare the metrics (tolerances in :mod:`solver.provenance`). Collective."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from .errors import OutputError, collective_check, shorten


def _read_record(folder: Path) -> tuple[dict, dict, dict]:
    from .inputs import read_case_toml
    from .outdir import is_tool_folder

    if not folder.is_dir() or not is_tool_folder(folder):
        raise OutputError(f"{shorten(folder, 120)}: not a result folder of bioheat run")
    if not (folder / "case.toml").is_file():
        raise OutputError(f"{shorten(folder, 120)}: no case.toml (the resolved case) to re-run")
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        prov_path = folder / "provenance.json"
        prov = json.loads(prov_path.read_text(encoding="utf-8")) if prov_path.is_file() else {}
    except (OSError, ValueError) as err:
        raise OutputError(f"{shorten(folder, 120)}: summary.json or provenance.json unreadable ({type(err).__name__})") from None
    data = read_case_toml(folder / "case.toml")
    return summary, prov, data


def reproduce(folder: Path, out: Path | None, progress: bool = True) -> tuple[bool, list[str]]:
    """Re-run and compare. Returns (metrics agree, report lines). Raises OutputError /
    CaseError when DIR is not a result folder or its case cannot be re-run."""
    from mpi4py import MPI

    from .case_loader import parse_case
    from .provenance import compare_metrics, referenced_files, reproduce_tolerances
    from .simulation import run_case

    comm = MPI.COMM_WORLD
    folder = Path(folder)
    summary, prov, data = collective_check(comm, lambda: _read_record(folder))
    # the schedule CSVs are inlined in the resolved case; its relative paths (mesh file) are
    # relative to the original case folder
    for ap in data.get("applicator", []) or []:
        if isinstance(ap, dict):
            ap.pop("schedule_csv", None)
    case_dir = prov.get("case_dir") or str(folder)
    case = parse_case(data, source=str(folder / "case.toml"), case_dir=case_dir)
    lines: list[str] = []
    if case.hash() != summary.get("case_hash"):
        lines.append(f"note: the re-read case hashes to {case.hash()[:12]}, the run recorded "
                     f"{str(summary.get('case_hash'))[:12]}")
    recorded = prov.get("referenced_files", {})
    now = referenced_files(case) if comm.rank == 0 else {}
    for key, entry in recorded.items():
        if key in now and now[key].get("sha256") != entry.get("sha256"):
            lines.append(f"note: {key} ({entry.get('path')}) changed since the run (sha256 differs)")
    if out is None:
        stamp = comm.bcast(datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"), root=0)  # same on every rank
        out = folder.parent / f"{folder.name}-reproduce-{stamp}"
    new = run_case(case, out, overwrite=False, comm=comm, progress=progress)
    tol_K, tol_rel = reproduce_tolerances(case.solver.rtol)  # the algebraic error of the solves
    diffs = compare_metrics(summary, {k: v for k, v in new.items() if k != "output_dir"}, tol_K, tol_rel)
    if "mesh_cache" in recorded and comm.rank == 0:
        new_prov = json.loads((Path(new["output_dir"]) / "provenance.json").read_text())
        got = new_prov.get("referenced_files", {}).get("mesh_cache", {}).get("sha256")
        if got is not None and got != recorded["mesh_cache"].get("sha256"):
            lines.append("note: the cached mesh differs from the one the run used (sha256)")
    lines.append(f"re-run in {new['output_dir']} ({new['ranks']} rank(s); original: {summary.get('ranks')})")
    if diffs:
        lines.append(f"NOT reproduced: {len(diffs)} metric(s) differ beyond {tol_K:g} K / "
                     f"{tol_rel:g} relative:")
        lines += ["  " + d for d in diffs[:30]]
        if len(diffs) > 30:
            lines.append(f"  ... and {len(diffs) - 30} more")
        return False, lines
    lines.append(f"reproduced: every metric of summary.json agrees within {tol_K:g} K "
                 f"(temperatures) / {tol_rel:g} relative (others), from solver.rtol {case.solver.rtol:g}")
    return True, lines
