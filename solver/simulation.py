"""One case from start to finish: mesh -> problem -> time loop -> outputs.

    summary = run_case(case, out_dir)

Collective: call on every rank. Input is validated and the output folder checked
before any mesh is built; outputs appear in out_dir only when the run succeeded.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from . import compat
from mpi4py import MPI

from .bioheat import BioheatProblem, SolverError
from . import provenance
from .config import Case, CaseError
from .errors import OutputError, collective_call, collective_check, fault_point
from .limits import check_free_space, check_limits
from .outdir import prepare_output
from .output import (
    FieldWriter,
    Progress,
    StagedOutput,
    write_case_toml,
    write_json,
    write_probes_csv,
)
from .probes import PointOutsideMesh, evaluate, locate
from .jsonio import strict
from .temperature_range import TemperatureWatch


def build_case_mesh(case: Case, comm: MPI.Comm):
    from meshes import build_mesh

    try:
        return build_mesh(case.geometry, comm, case_dir=Path(case.case_dir), cavities=case.cavities())
    except (ValueError, FileNotFoundError) as err:
        raise CaseError(str(err)) from None


def probe_points(case: Case) -> list[tuple[str, str, tuple]]:
    """(key, name, position) of every probe and monitoring point (monitors are probes too)."""
    pts = [(f"probe[{i}]", p.name, p.position_m) for i, p in enumerate(case.probe)]
    pts += [(f"monitor[{i}]", m.name, m.position_m) for i, m in enumerate(case.monitor)]
    return pts


def locate_probes(problem: BioheatProblem):
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
    field_interval = case.output.field_interval_s or t.output_interval_s or t.dt_s
    every_field = max(1, int(round(field_interval / t.dt_s)))
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
    from . import checkpoint

    plan = checkpoint.prepare(case, out, comm, resume=resume, overwrite=overwrite)

    if bundle is None:
        bundle = build_case_mesh(case, comm)
    fault_point("mesh", comm)
    mesh_time = time.perf_counter() - wall0
    problem = BioheatProblem(case, bundle)
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


def input_report(case: Case, problem: BioheatProblem, probes, summary: dict) -> dict:
    """Probe/monitor regions, boundary conditions as applied and every warning. Collective."""
    from .run_report import monitor_warnings, point_regions, probe_table

    table = probe_table(case, probe_points(case), point_regions(problem, probes))
    warnings = case.warnings() + monitor_warnings(case, table)
    for r, e in summary.get("damage", {}).get("critical", {}).items():
        if e.get("still_heating_at_end"):
            warnings.append(
                f"critical region '{r}' was hottest at the last step (t = {e['max_temperature_time_s']:g} s): "
                "its maximum and dose are lower bounds; simulate a longer cooling period (time.end_time_s)"
            )
    return {"probes": table, "boundaries": problem.boundary_report(), "warnings": warnings}


def _time_loop(case, problem: BioheatProblem, probes, probe_names, folder: Path, progress: bool, plan=None):
    comm = problem.comm
    problem.set_initial()
    laser = problem.laser
    fields = [problem.T]
    # probe columns: (suffix, function); the temperature column is the bare probe name
    probe_fields = [("", problem.T)]
    if laser is not None:
        from dolfinx import fem

        phi_out = fem.Function(problem.V, name="fluence_rate_W_per_m2")
        heat_out = fem.Function(problem.V, name="laser_heat_W_per_m3")
        fields += [phi_out, heat_out]
        probe_fields += [("fluence_W_per_m2", phi_out), ("laser_heat_W_per_m3", heat_out)]
    if problem.dose is not None:
        fields += [problem.dose.omega, problem.dose.cem43, problem.dose.T_max]
        probe_fields += [("omega", problem.dose.omega), ("cem43", problem.dose.cem43)]
    writer = FieldWriter(folder / "fields", fields, case.output.field_format) if case.output.fields else None
    times: list[float] = []
    rows: list[np.ndarray] = []
    peak = {"value": -math.inf, "where": None, "time": 0.0}
    recorder = None  # critical regions' maxima over time, for the report

    def record(t: float, probe_row: bool, field_frame: bool) -> None:
        if laser is not None and (probe_row or field_frame):
            laser.combine(t, phi_out, heat_out, problem.laser_gate)
        if probe_row:
            times.append(t)
            if recorder is not None:
                recorder.record(t)
            if probes is None:
                rows.append(np.zeros(0))
            else:
                cols = [evaluate(f, probes) for _, f in probe_fields]
                exact = laser.point_values(t, probes, problem.laser_gate) if laser is not None else None
                if exact is not None:  # kernel light: the closed form, not its interpolant
                    cols[1], cols[2] = exact
                rows.append(np.stack(cols, axis=1).reshape(-1))  # per probe: T, then the others
        if field_frame and writer is not None:
            writer.write(t)

    def track_peak(t: float) -> None:
        value, where = watch.max_temperature()
        if value > peak["value"]:
            peak.update(value=value, where=where, time=t)

    control = ControlLoop(problem)
    watch = TemperatureWatch(problem)  # singular-source neighbourhoods, 100 C and the ceiling
    region_nodes = critical = None
    if problem.dose is not None:
        from .metrics import CriticalTracker, RegionNodes

        region_nodes = RegionNodes(problem, exclude=watch.excluded)
        critical = CriticalTracker(problem, case.critical_regions(), region_nodes)
        critical.update(0.0)
        from .sampling import CriticalRecorder

        recorder = CriticalRecorder(problem, case.critical_regions(), region_nodes)
    ckpt = state = None
    start = 1
    if plan is not None:
        from .checkpoint import Checkpointer, LoopState

        ckpt = Checkpointer(plan, problem, case.time.num_steps, case.time.dt_s)
        state = LoopState(problem, times, rows, peak, control, critical, recorder, watch)
        if plan.resume_state is not None:
            start = ckpt.restore(state)[0] + 1

    loop0 = time.perf_counter()
    n_steps = 0
    try:
        if case.time.mode == "steady":
            try:
                problem.solve_steady()
            except SolverError as err:
                raise watch.explain(err, 0, 0.0) from None
            watch.check(0, 0.0)
            track_peak(0.0)
            record(0.0, True, True)
        else:
            every, every_field = output_steps(case)
            n_steps = case.time.num_steps
            dt = case.time.dt_s
            if start == 1:
                record(0.0, True, True)
                track_peak(0.0)
            bar = Progress(comm, n_steps, n_steps * dt, enabled=progress)
            t = (start - 1) * dt
            if ckpt is not None:
                ckpt.install_signal_handlers()
            for n in range(start, n_steps + 1):
                t_new = n * dt
                try:
                    problem.step(t, t_new)
                except SolverError as err:
                    raise watch.explain(err, n, t_new) from None
                t = t_new
                watch.check(n, t)
                track_peak(t)
                critical.update(t)
                control.after_step(t)
                record(t, n % every == 0 or n == n_steps, n % every_field == 0 or n == n_steps)
                bar.update(n, t, f"Tmax {peak['value']:.2f} C")
                if ckpt is not None:
                    ckpt.after_step(n, t, state)
            bar.close()
    finally:
        if ckpt is not None:
            ckpt.restore_signal_handlers()
        if writer is not None:
            writer.close()
    loop_time = time.perf_counter() - loop0

    columns = [f"{n}.{suffix}" if suffix else n for n in probe_names for suffix, _ in probe_fields]
    if comm.rank == 0:
        write_probes_csv(folder / "probes.csv", columns, times, rows)
    its = problem.stats.iterations
    summary: dict[str, Any] = {
        "case": case.name,
        "case_hash": case.hash(),
        "mode": case.time.mode,
        "scheme": None if case.time.mode == "steady" else case.time.scheme,
        "ranks": comm.size,
        "mesh": {
            "cells": problem.num_cells(),
            "dofs": problem.num_dofs(),
            "element_degree": case.solver.element_degree,
            "source": str(getattr(problem.bundle, "source", "")),
        },
        "steps": n_steps,
        "damped_steps": problem.startup.damped_steps if problem.startup is not None else 0,
        "solve_time_s": loop_time,
        "time_per_step_s": loop_time / n_steps if n_steps else loop_time,
        "krylov_iterations": {
            "total": int(sum(its)),
            "mean": float(np.mean(its)) if its else 0.0,
            "max": int(max(its)) if its else 0,
        },
        "max_temperature_C": peak["value"],
        "max_temperature_location_m": peak["where"],
        "max_temperature_time_s": peak["time"],
        "final_max_temperature_C": watch.max_temperature()[0],
        "final_probe_temperatures_C": {
            n: float(v) for n, v in zip(columns, rows[-1]) if "." not in n
        } if rows else {},
        "versions": {
            "spine_litt": __version__,
            "dolfinx": compat.DOLFINX_VERSION,
            "petsc": compat.PETSC_VERSION,
        },
    }
    range_entries, warnings = watch.summary(peak)
    summary.update(range_entries)
    summary.setdefault("warnings", []).extend(warnings)  # other producers may add their own
    if laser is not None:
        end = n_steps * case.time.dt_s if case.time.mode == "transient" else 0.0
        summary["light"] = laser.summary(end)
    if problem.coagulation is not None:
        summary["coagulation"] = problem.coagulation.summary()
    if problem.dose is not None:
        from .metrics import compute

        summary["damage"] = compute(problem, critical, region_nodes)
        summary["safety"] = summary["damage"].pop("safety")
    from .sampling import write_report_data

    write_report_data(problem, folder, region_nodes, recorder)
    if problem.laser is not None:
        summary["control"] = control.summary()
        if comm.rank == 0:
            write_power_csv(folder / "power.csv", problem.power_log)
    if ckpt is not None:
        summary["checkpoint"] = ckpt.summary()
    if problem.manufactured is not None:
        t_end = 0.0 if case.time.mode == "steady" else n_steps * case.time.dt_s
        summary["manufactured"] = {
            "solution": case.manufactured.solution,
            "l2_error_K_m1.5": problem.l2_error(t_end),
        }
    return summary


def write_power_csv(path: Path, log) -> None:
    """Requested and delivered laser power (mean over each step, W) against the step's end time."""
    import csv

    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["time_s", "requested_power_W", "delivered_power_W"])
        for t0, t1, req, got in log:
            w.writerow([f"{t1:.9g}", f"{req:.9g}", f"{got:.9g}"])


class ControlLoop:
    """Safety points as in the clinical system: the laser switches off (stop) or pauses when a
    monitor exceeds its high limit, checked after every step, so the laser is off from the
    next step on (within one step of the crossing). Optionally ends the dose once every target
    (low limit) is reached."""

    def __init__(self, problem):
        self.p = problem
        case = problem.case
        self.monitors = case.monitor
        self.events: list[dict] = []
        self.stopped = False
        self.paused_by: set[str] = set()
        self.reached: dict[str, float] = {}
        self.located = None
        if self.monitors:
            try:
                self.located = locate(problem.mesh, [m.position_m for m in self.monitors])
            except PointOutsideMesh as err:
                i = err.indices[0]
                raise CaseError(
                    f"monitor[{i}].position_m = {list(self.monitors[i].position_m)} "
                    f"('{self.monitors[i].name}') lies outside the mesh"
                ) from None

    def after_step(self, t: float) -> None:
        if self.located is None or self.p.laser is None:
            return
        values = evaluate(self.p.T, self.located)
        for m, v in zip(self.monitors, values):
            if m.high_limit_C is not None and v > m.high_limit_C and not self.stopped:
                if m.action == "stop":
                    self.stopped = True
                    self._event(t, m.name, v, m.high_limit_C, "laser stopped for the rest of the dose")
                elif m.name not in self.paused_by:
                    self.paused_by.add(m.name)
                    self._event(t, m.name, v, m.high_limit_C, "laser paused")
            if m.name in self.paused_by:
                resume = m.resume_below_C if m.resume_below_C is not None else m.high_limit_C - 2.0
                if v < resume:
                    self.paused_by.discard(m.name)
                    self._event(t, m.name, v, resume, "laser resumed")
            if m.low_limit_C is not None and v >= m.low_limit_C and m.name not in self.reached:
                self.reached[m.name] = t
                self._event(t, m.name, v, m.low_limit_C, "target reached")
        targets = [m.name for m in self.monitors if m.low_limit_C is not None]
        if (
            self.p.case.control.stop_when_targets_reached
            and targets
            and all(n in self.reached for n in targets)
            and not self.stopped
        ):
            self.stopped = True
            self._event(t, "all targets", None, None, "dose ended: every target reached")
        self.p.laser_gate = 0.0 if (self.stopped or self.paused_by) else 1.0

    def _event(self, t, name, value, limit, what) -> None:
        self.events.append(
            {
                "time_s": t,
                "monitor": name,
                "temperature_C": None if value is None else float(value),  # null: no single reading
                "limit_C": None if limit is None else float(limit),
                "event": what,
            }
        )

    def summary(self) -> dict:
        log = self.p.power_log
        return {
            "events": self.events,
            "requested_energy_J": float(sum(r * (t1 - t0) for t0, t1, r, _ in log)),
            "delivered_energy_J": float(sum(d * (t1 - t0) for t0, t1, _, d in log)),
            "targets_reached_s": self.reached,
        }
