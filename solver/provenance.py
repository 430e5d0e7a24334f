"""What reproduces a result: ``DIR/provenance.json``.

Recorded: the case file's path and folder, the resolved case's hash (the resolved case itself is
``DIR/case.toml``), the sha256 of every referenced file's content (``geometry.path`` mesh,
applicator ``schedule_csv`` files, the cached gmsh mesh the run used), the project version and
git commit with a dirty flag (null outside a git checkout), Python / DOLFINx / PETSc / MPI /
mpi4py / gmsh / numpy versions, ranks, the solver options as applied (KSP and PC types), host,
command line, and start / end times (UTC, ISO 8601).

``bioheat reproduce DIR`` (:func:`solver.cli.cmd_reproduce`) re-runs ``DIR/case.toml`` into a
new folder and compares the metrics with :func:`compare_metrics`.
"""

from __future__ import annotations

import math
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .inputs import sha256_file  # noqa: F401  (re-exported)

from . import __version__

# Metrics compared by `bioheat reproduce`: temperatures to TEMPERATURE_TOL_K absolute, other
# metrics to RELATIVE_TOL relative, each at least ALGEBRAIC_TOL_PER_RTOL x solver.rtol. A re-run
# on the same ranks agrees to round-off; on other rank counts partitioning changes the Krylov
# iterates within rtol, and so the answer within the algebraic error: measured on T8 (180
# steps) about 2300 x rtol in K for T and max T (docs/PERFORMANCE.md, 2.3e-5 K at rtol 1e-8),
# and a dose (Omega, CEM43) moves by about 0.7 / K of that relatively; two runs may differ by
# twice it, so 1e4 x rtol: 1e-4 (K and relative) at the default rtol 1e-8, 1e-6 at rtol 1e-10.
TEMPERATURE_TOL_K = 1e-6
RELATIVE_TOL = 1e-6
ALGEBRAIC_TOL_PER_RTOL = 1e4
# the light solves' relative energy imbalance, compared absolutely (1 -> 2 ranks: 2.7e-11 -> 1.3e-10)
LIGHT_IMBALANCE_TOL = 1e-8


def reproduce_tolerances(rtol: float) -> tuple[float, float]:
    """(temperature K, relative) tolerances of `bioheat reproduce` for a run solved to the
    relative residual ``rtol`` (solver.rtol)."""
    algebraic = ALGEBRAIC_TOL_PER_RTOL * float(rtol)
    return max(TEMPERATURE_TOL_K, algebraic), max(RELATIVE_TOL, algebraic)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def git_state(folder: Path | None = None) -> dict[str, Any]:
    """{"commit": sha or None, "dirty": bool or None} of the checkout holding this package."""
    folder = folder or Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        status = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        )
        dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
        return {"commit": commit.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"spine_litt": __version__, "python": platform.python_version()}
    for name, mod in (("numpy", "numpy"), ("gmsh", "gmsh"), ("mpi4py", "mpi4py"), ("dolfinx", "dolfinx")):
        try:
            out[name] = getattr(__import__(mod), "__version__", None)
        except ImportError:  # pragma: no cover
            out[name] = None
    try:
        from . import compat

        out["petsc"] = compat.PETSC_VERSION
    except ImportError:  # pragma: no cover
        out["petsc"] = None
    try:
        from mpi4py import MPI

        out["mpi"] = MPI.Get_library_version().strip().splitlines()[0][:200]
        out["mpi_standard"] = ".".join(map(str, MPI.Get_version()))
    except ImportError:  # pragma: no cover
        out["mpi"] = None
    return out


def referenced_files(case, bundle=None) -> dict[str, dict[str, str]]:
    """{key: {"path", "sha256"}} of every file the run read besides the case file."""
    files: dict[str, dict[str, str]] = {}
    if getattr(case.geometry, "kind", None) == "file":
        p = case.resolve_path(case.geometry.path)
        files["geometry.path"] = {"path": str(p)}
    for i, ap in enumerate(case.applicator):
        if ap.schedule_csv:
            files[f"applicator[{i}].schedule_csv"] = {"path": str(case.resolve_path(ap.schedule_csv))}
    cache_path = getattr(bundle, "cache_path", None) if bundle is not None else None
    if cache_path is not None:
        files["mesh_cache"] = {"path": str(cache_path)}
    for entry in files.values():
        try:
            entry["sha256"] = sha256_file(Path(entry["path"]))
        except OSError as err:
            entry["sha256"] = None
            entry["error"] = err.strerror or str(err)
    return files


def start(case, comm) -> dict[str, Any]:
    """The part known before the run (cheap; every rank)."""
    return {"start_utc": _now(), "command_line": list(sys.argv), "ranks": comm.size}


def finish(record: dict[str, Any], case, problem=None, bundle=None) -> dict[str, Any]:
    """The full provenance record (call at the end of the run; file hashes on rank 0 only)."""
    comm = problem.comm if problem is not None else None
    root = comm is None or comm.rank == 0
    solver = case.solver.model_dump(mode="json")
    if problem is not None:
        solver["applied_ksp_type"], solver["applied_pc_type"] = problem.solver_types()
    out = {
        "tool": "spine-litt",
        "case_name": case.name,
        "case_hash": case.hash(),
        "case_dir": str(case.case_dir),
        "resolved_case": "case.toml",
        "referenced_files": referenced_files(case, bundle) if root else {},
        "version": __version__,
        "git": git_state() if root else {},
        "versions": versions(),
        "ranks": record.get("ranks"),
        "solver_options": solver,
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "command_line": record.get("command_line"),
        "start_utc": record.get("start_utc"),
        "end_utc": _now(),
        "reproduce_tolerance": dict(zip(("temperature_K", "relative"), reproduce_tolerances(case.solver.rtol))),
    }
    return out


def _flatten(prefix: str, value: Any, out: dict[str, float]) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, (int, float)):
        out[prefix] = float(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        for i, v in enumerate(value):
            out[f"{prefix}[{i}]"] = float(v)


# summary keys that are timings or otherwise not physics (not compared)
_NOT_COMPARED = ("wall_time_s", "mesh_time_s", "setup_time_s", "solve_time_s", "time_per_step_s",
                 "krylov_iterations", "ranks", "versions", "mesh.dofs", "mesh.cells")


def compare_metrics(old: dict, new: dict, temperature_tol_K: float = TEMPERATURE_TOL_K,
                    relative_tol: float = RELATIVE_TOL) -> list[str]:
    """Differences between two summaries beyond the tolerances (empty list: reproduced).
    Compared: every number in summary.json except timings, iteration counts, ranks,
    versions and the locations of maxima (ties); temperatures (keys with '_C') to
    ``temperature_tol_K`` absolute, the light solve's energy imbalance to LIGHT_IMBALANCE_TOL
    absolute, others to ``relative_tol`` relative (absolute floor 1e-12); see
    reproduce_tolerances for a run's."""
    a: dict[str, float] = {}
    b: dict[str, float] = {}
    _flatten("", old, a)
    _flatten("", new, b)
    diffs = []
    for key in sorted(set(a) | set(b)):
        if any(key == s or key.startswith(s + ".") or key.startswith(s + "[") for s in _NOT_COMPARED):
            continue
        if "location_m" in key.rsplit(".", 1)[-1]:
            # where a maximum sits is not unique when nodes tie (symmetric cases: the tie is
            # broken by the partition); the maximum's value itself is compared
            continue
        if key not in a or key not in b:
            diffs.append(f"{key}: only in {'the original' if key in a else 'the re-run'}")
            continue
        x, y = a[key], b[key]
        if "_C" in key.rsplit(".", 1)[-1] or key.endswith("_C") or "temperatures_C" in key:
            tol = temperature_tol_K
        elif "imbalance" in key.rsplit(".", 1)[-1]:
            # the light solve's energy residual (a relative number at round-off, 1e-11 to 1e-10,
            # that changes with the partition): absolute, still catching a broken solve (> 1e-8)
            tol = LIGHT_IMBALANCE_TOL
        else:
            tol = max(relative_tol * max(abs(x), abs(y)), 1e-12)
        if not (math.isfinite(x) and math.isfinite(y)) or abs(x - y) > tol:
            diffs.append(f"{key}: {x:.10g} -> {y:.10g} (tolerance {tol:.3g})")
    return diffs
