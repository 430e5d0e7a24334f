"""One case from start to finish: mesh -> problem -> time loop -> outputs.

    summary = run_case(case, out_dir)

Collective: call on every rank. Input is validated and the output folder checked
before any mesh is built; outputs appear in out_dir only when the run succeeded.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from . import compat
from mpi4py import MPI

from . import checkpoint, provenance
from .checkpoint import Checkpointer
from .config import Case, CaseError
from .control import ControlLoop
from .coupler import Coupler
from .metrics import CriticalTracker, RegionNodes
from .recorders import (CheckpointRecorder, ControlRecorder, CriticalRegionsRecorder, OutputRecorder, PeakRecorder,
                        PowerRecorder, ProgressRecorder)
from .run_report import monitor_warnings, point_regions, probe_table
from .sampling import CriticalRecorder
from .errors import OutputError, collective_call, collective_check, fault_point
from .limits import check_free_space, check_limits
from .outdir import prepare_output
from .output import StagedOutput, write_case_toml, write_json
from .probes import PointOutsideMesh, locate
from .jsonio import strict
from .temperature_range import TemperatureWatch


def build_case_mesh(case: Case, comm: MPI.Comm):
    from meshes import build_mesh  # the mesh package only when a mesh is built here

    try:
        return build_mesh(case.geometry, comm, case_dir=Path(case.case_dir), cavities=case.cavities())
    except (ValueError, FileNotFoundError) as err:
        raise CaseError(str(err)) from None


def probe_points(case: Case) -> list[tuple[str, str, tuple]]:
    """(key, name, position) of every probe and monitoring point (monitors are probes too)."""
    pts = [(f"probe[{i}]", p.name, p.position_m) for i, p in enumerate(case.probe)]
    pts += [(f"monitor[{i}]", m.name, m.position_m) for i, m in enumerate(case.monitor)]
    return pts


def locate_probes(problem: Coupler):
    pts = probe_points(problem.case)
    if not pts:
        return None
    try:
        return locate(problem.mesh, [p for _, _, p in pts])
    except PointOutsideMesh as err:
        problems = []
        for i in err.indices:
            key, name, pos = pts[i]
            problems.append(f"{key}.position_m = {list(pos)} ('{name}') lies outside the mesh")
        raise CaseError("\n".join(problems)) from None


def output_steps(case: Case) -> tuple[int, int]:
    """(steps between probe rows, steps between field frames)."""
    t = case.time
    every = max(1, int(round((t.output_interval_s or t.dt_s) / t.dt_s)))
    every_field = max(1, int(round(case.field_interval_s() / t.dt_s)))
    return every, every_field


def run_case(
    case: Case,
    out: str | Path,
    *,
    overwrite: bool = False,
    comm: MPI.Comm = MPI.COMM_WORLD,
    progress: bool = True,
    bundle=None,
    resume: bool = False,
) -> dict[str, Any]:
    """Run a validated case and write DIR/{probes.csv, summary.json, case.toml, fields/}.

    Transient runs write checkpoints to DIR.checkpoint/ (solver.checkpoint); ``resume``
    continues from the newest complete one."""
    wall0 = time.perf_counter()
    out = Path(out)
    record = provenance.start(case, comm)
    prepare_output(out, overwrite, comm, case_dirs=(Path(case.case_dir),))
    collective_call(comm, lambda: check_limits(case))
    plan = checkpoint.prepare(case, out, comm, resume=resume, overwrite=overwrite)

    if bundle is None:
        bundle = build_case_mesh(case, comm)
    fault_point("mesh", comm)
    mesh_time = time.perf_counter() - wall0
    problem = Coupler(case, bundle)
    probes = locate_probes(problem)
    probe_names = [name for _, name, _ in probe_points(case)]
    setup_time = time.perf_counter() - wall0

    staged = StagedOutput(out, comm, overwrite)
    try:
        check_free_space(case, problem.num_dofs(), staged.path, comm)
        fault_point("time_loop", comm)
        summary = _time_loop(case, problem, probes, probe_names, staged.path, progress, plan)
        summary.update(
            {
                "wall_time_s": time.perf_counter() - wall0,
                "mesh_time_s": mesh_time,
                "setup_time_s": setup_time,
            }
        )
        extra = input_report(case, problem, probes, summary)
        extra["warnings"] = list(summary.get("warnings", [])) + extra["warnings"]  # the run's own first
        summary.update(extra)
        summary = strict(summary)  # what callers get is what summary.json holds: no NaN/Infinity
        prov = provenance.finish(record, case, problem, bundle)

        def write_results() -> None:
            fault_point("write", comm)
            try:
                write_json(staged.path / "summary.json", summary)
                write_case_toml(staged.path / "case.toml", case.resolved_dict())
                write_json(staged.path / "provenance.json", prov)
            except OSError as err:
                raise OutputError(f"--out {out}: cannot write the results ({err.strerror or err})") from None

        collective_check(comm, write_results)
        final = staged.commit({"case_hash": summary["case_hash"]})
    except BaseException as err:
        staged.discard(err)
        raise
    checkpoint.remove_folder(plan, comm)
    summary["output_dir"] = str(final)
    return summary


def input_report(case: Case, problem: Coupler, probes, summary: dict) -> dict:
    """Probe/monitor regions, boundary conditions as applied and every warning. Collective."""
    table = probe_table(case, probe_points(case), point_regions(problem, probes))
    warnings = case.warnings() + monitor_warnings(case, table)
    for r, e in summary.get("damage", {}).get("critical", {}).items():
        if e.get("still_heating_at_end"):
            warnings.append(
                f"critical region '{r}' was hottest at the last step (t = {e['max_temperature_time_s']:g} s): "
                "its maximum and dose are lower bounds; simulate a longer cooling period (time.end_time_s)"
            )
    return {"probes": table, "boundaries": problem.boundary_report(), "warnings": warnings}


def _time_loop(case, run: Coupler, probes, probe_names, folder: Path, progress: bool, plan=None):
    """Set up the recorders, run the loop (Coupler.run), and collect the summary."""
    comm, st = run.comm, run.state
    run.initialise()
    st.watch = TemperatureWatch(run)  # singular-source neighbourhoods, 100 C and the ceiling
    st.control = ControlLoop(run)
    region_nodes = None
    if run.dose is not None:
        region_nodes = RegionNodes(run, exclude=st.watch.excluded)
        st.critical = CriticalTracker(run, case.critical_regions(), region_nodes)
        st.critical.update(0.0)
        st.recorder = CriticalRecorder(run, case.critical_regions(), region_nodes)
    transient = case.time.mode == "transient"
    n_steps = case.time.num_steps if transient else 0
    every, every_field = output_steps(case)
    output = OutputRecorder(run, probes, probe_names, folder, every, every_field, n_steps)
    recorders = [PeakRecorder(run), CriticalRegionsRecorder(run, region_nodes)]
    if transient:
        recorders += [ControlRecorder(run), output, ProgressRecorder(run, n_steps, case.time.dt_s, progress)]
    else:
        recorders.append(output)
    ckpt, start = None, 1
    if plan is not None:
        ckpt = Checkpointer(plan, run, case.time.num_steps, case.time.dt_s)
        recorders.append(CheckpointRecorder(run, ckpt))
        if plan.resume_state is not None:
            start = ckpt.restore(st)[0] + 1
    if run.laser is not None:
        recorders.append(PowerRecorder(run))
    loop0 = time.perf_counter()
    try:
        if ckpt is not None:
            ckpt.install_signal_handlers()
        run.run(recorders, start, n_steps, case.time.dt_s)
    finally:
        if ckpt is not None:
            ckpt.restore_signal_handlers()
        for r in recorders:
            r.close()
    return _summary(case, run, recorders, folder, n_steps, time.perf_counter() - loop0)


def _summary(case, run: Coupler, recorders, folder: Path, n_steps: int, loop_time: float) -> dict[str, Any]:
    """The run's summary.json entries (without the set-up times and the input report)."""
    its = run.stats.iterations
    summary: dict[str, Any] = {
        "case": case.name,
        "case_hash": case.hash(),
        "mode": case.time.mode,
        "scheme": None if case.time.mode == "steady" else case.time.scheme,
        "ranks": run.comm.size,
        "mesh": {
            "cells": run.num_cells(),
            "dofs": run.num_dofs(),
            "element_degree": case.solver.element_degree,
            "source": str(getattr(run.bundle, "source", "")),
        },
        "steps": n_steps,
        "damped_steps": run.startup.damped_steps if run.startup is not None else 0,
        "solve_time_s": loop_time,
        "time_per_step_s": loop_time / n_steps if n_steps else loop_time,
        "krylov_iterations": {
            "total": int(sum(its)),
            "mean": float(np.mean(its)) if its else 0.0,
            "max": int(max(its)) if its else 0,
        },
        "versions": {"spine_litt": __version__, "dolfinx": compat.DOLFINX_VERSION, "petsc": compat.PETSC_VERSION},
    }
    for r in recorders:
        r.finalise(summary, folder)
    range_entries, warnings = run.state.watch.summary(run.state.peak)
    summary.update(range_entries)
    summary.setdefault("warnings", []).extend(warnings)  # other producers may add their own
    if run.laser is not None:
        summary["light"] = run.laser.summary(n_steps * case.time.dt_s)
    if run.coagulation is not None:
        summary["coagulation"] = run.coagulation.summary()
    if run.manufactured is not None:
        summary["manufactured"] = {
            "solution": case.manufactured.solution,
            "l2_error_K_m1.5": run.l2_error(n_steps * case.time.dt_s),
        }
    return summary
