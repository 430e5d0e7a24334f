"""Benchmark suite (`make bench`, `make bench BENCH=quick`): the T8 spine case and the foundation box.

    .venv/bin/python scripts/bench.py            # full suite (about 15-25 min on 2 idle cores)
    .venv/bin/python scripts/bench.py --quick    # T8 standard, 10 steps, small box (about 1 min)

The driver (this process, no MPI) starts one worker per measurement, each a fresh
`[mpiexec -n R] python scripts/bench.py --worker SPEC`, so that meshes, PETSc objects and peak
memory do not leak from one measurement into the next. It prints a table and writes every figure
to results/bench/bench.json (strict JSON), with the machine load (/proc/loadavg) beside each one.

Measurements (full suite):

- T8 intact case (cases/spine/T8_lytic_intact.toml, 6 W x 120 s + 60 s cooling, 180 steps) at
  geometry.resolution standard / medium / fine (about 13k / 64k / 139k dofs), coagulation off and
  on, 1 rank, and the fine case on 2 ranks (strong scaling). Each run is the engine's own
  solver.simulation.run_case on the mesh from the cache; for the fine case on 2 ranks the mesh is
  also built cold (empty cache folder) and the end-to-end time with a cold mesh reported.
  Per run: mesh build (cold / cached), set-up, time loop, total time to solution, and the loop
  split into phases: rhs (matrix-vector product and loads), linear solve (+ iterations), dose
  update, coagulation operator update, light refresh, monitors (peak tracking, temperature
  checks, critical regions, safety points), output (fields, probe rows); peak memory per rank
  (getrusage maxrss); dof-steps per second per core; the size of the field output.
  The phases are timed by wrapping the engine's methods in the worker (exclusive time: a phase
  nested in another is not counted twice); the engine itself carries no timers.
- Ratios, T8 coagulation off, same worker: (a) a tutorial-style loop of the same case
  (dolfinx.fem.petsc.LinearProblem(...).solve() every step, re-assembling matrix and right-hand
  side and setting up a new preconditioner): only a few steps are timed and the time per step
  extrapolated (it is the same work every step); (b) the bandwidth floor: the time of
  (iterations + 1) PETSc MatMult with the same matrix, against the engine's time per step.
- The foundation box case (205k P1 dofs, uniform source, CG + Jacobi): engine vs tutorial.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
T8 = ROOT / "cases" / "spine" / "T8_lytic_intact.toml"


def load() -> list[float]:
    return [float(x) for x in open("/proc/loadavg").read().split()[:3]]


# ============================================================================ worker side


class Phases:
    """Exclusive wall time (s) per phase, accumulated by wrapping methods (class attributes)."""

    def __init__(self):
        from collections import defaultdict

        self.seconds = defaultdict(float)
        self.calls = defaultdict(int)
        self.stack: list[list] = []
        self.missing: list[str] = []

    def wrap(self, owner, name: str, phase: str) -> None:
        inner = getattr(owner, name, None)
        if inner is None:
            self.missing.append(f"{getattr(owner, '__name__', owner)}.{name}")
            return

        def timed(*args, **kwargs):
            now = time.perf_counter()
            if self.stack:
                top = self.stack[-1]
                self.seconds[top[0]] += now - top[1]
            self.stack.append([phase, now])
            try:
                return inner(*args, **kwargs)
            finally:
                end = time.perf_counter()
                ph, start = self.stack.pop()
                self.seconds[ph] += end - start
                self.calls[ph] += 1
                if self.stack:
                    self.stack[-1][1] = end

        setattr(owner, name, timed)


def instrument() -> Phases:
    """Wrap the engine's per-step methods (solver.*: the Coupler's parts and the recorders) with
    phase timers. A recorder's after_step counts as its phase minus the nested phases it calls."""
    from solver import bioheat, coagulation, control, dose, metrics, output, recorders, sampling, temperature_range
    from solver import laser as laser_mod

    ph = Phases()
    ph.wrap(bioheat.BioheatProblem, "advance", "rhs")  # B T^n + loads: what advance does outside the solve
    ph.wrap(bioheat.BioheatProblem, "_finish_solve", "linear_solve")  # lift, BCs, KSP solve, scatter
    ph.wrap(dose.DoseTracker, "before_step", "dose_update")
    ph.wrap(dose.DoseTracker, "after_step", "dose_update")
    ph.wrap(coagulation.CoagulationModel, "update_operators", "coagulation_operators")
    ph.wrap(coagulation.CoagulationModel, "_maybe_refresh_light", "light_refresh")
    # monitors: peak tracking and temperature checks, critical regions, safety points
    ph.wrap(recorders.PeakRecorder, "after_step", "monitors")
    ph.wrap(recorders.CriticalRegionsRecorder, "after_step", "monitors")
    ph.wrap(recorders.ControlRecorder, "after_step", "monitors")
    ph.wrap(recorders.ProgressRecorder, "after_step", "monitors")
    ph.wrap(temperature_range.TemperatureWatch, "check", "monitors")
    ph.wrap(temperature_range.TemperatureWatch, "max_temperature", "monitors")
    ph.wrap(metrics.CriticalTracker, "update", "monitors")
    ph.wrap(control.ControlLoop, "after_step", "monitors")
    ph.wrap(sampling.CriticalRecorder, "record", "monitors")
    # output: field frames, probe rows (and the laser fields they show), checkpoints
    ph.wrap(recorders.OutputRecorder, "after_step", "output")
    ph.wrap(recorders.OutputRecorder, "close", "output")
    ph.wrap(recorders.CheckpointRecorder, "after_step", "output")
    ph.wrap(output.FieldWriter, "write", "output")
    ph.wrap(output.FieldWriter, "close", "output")
    ph.wrap(laser_mod.Laser, "combine", "output")
    ph.wrap(recorders, "evaluate", "output")  # probe rows
    ph.wrap(recorders, "damage_metrics", "metrics")  # solver.metrics.compute as the recorders call it
    ph.wrap(recorders, "write_report_data", "report_data")
    return ph


def peak_memory_mb(comm) -> list[float]:
    import resource

    return comm.allgather(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 1e6


def t8_case(resolution: str, coag: bool, steps: int | None, extra: list[str] = ()):
    from solver.case_loader import load_case

    sets = [f"geometry.resolution={resolution}", f"coagulation.enabled={'true' if coag else 'false'}"]
    if steps is not None:  # a shortened run: the laser on throughout (quick mode)
        sets += [f"time.end_time_s={float(steps)}", f"applicator[0].schedule=[[0.0, 6.0], [{float(steps)}, 0.0]]"]
    return load_case(T8, sets + list(extra))


def worker_t8(spec: dict, comm) -> dict:
    """One end-to-end run of the T8 case: mesh (cold and/or cached), run_case, phases."""
    from meshes import build_mesh
    from solver.simulation import run_case

    case = t8_case(spec["resolution"], spec["coagulation"], spec.get("steps"), spec.get("set", []))
    res: dict = {"kind": "t8", **spec, "ranks": comm.size}
    cavities = case.cavities()
    if spec.get("cold"):
        tmp = comm.bcast(tempfile.mkdtemp(prefix="bench-mesh-") if comm.rank == 0 else None)
        comm.Barrier()
        t0 = time.perf_counter()
        build_mesh(case.geometry, comm, cache_dir=Path(tmp), case_dir=Path(case.case_dir), cavities=cavities)
        res["mesh_cold_s"] = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
        res["load_after_cold_mesh"] = load()
    else:  # make sure the default cache holds it
        build_mesh(case.geometry, comm, case_dir=Path(case.case_dir), cavities=cavities)
    comm.Barrier()
    t0 = time.perf_counter()
    bundle = build_mesh(case.geometry, comm, case_dir=Path(case.case_dir), cavities=cavities)
    res["mesh_cached_s"] = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    ph = instrument()
    out = Path(comm.bcast(tempfile.mkdtemp(prefix="bench-run-") if comm.rank == 0 else None)) / "out"
    comm.Barrier()
    t0 = time.perf_counter()
    summary = run_case(case, out, comm=comm, progress=False, bundle=bundle)
    wall = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    phases = {k: comm.allreduce(v, op=MPI.MAX) for k, v in sorted(ph.seconds.items())}
    loop = summary["solve_time_s"]
    steps = summary["steps"]
    in_loop = ("rhs", "linear_solve", "dose_update", "coagulation_operators", "light_refresh", "monitors", "output")
    phases["other_in_loop"] = max(0.0, loop - sum(phases.get(k, 0.0) for k in in_loop))
    res.update(
        {
            "dofs": summary["mesh"]["dofs"],
            "cells": summary["mesh"]["cells"],
            "steps": steps,
            "setup_s": summary["setup_time_s"],
            "loop_s": loop,
            "run_case_s": wall,
            "total_cached_s": res["mesh_cached_s"] + wall,
            "phases_s": phases,
            "phases_ms_per_step": {k: 1e3 * v / steps for k, v in phases.items() if k in in_loop + ("other_in_loop",)},
            "iterations_mean": summary["krylov_iterations"]["mean"],
            "light_refreshes": summary.get("coagulation", {}).get("light_refreshes", 0),
            "time_per_step_ms": 1e3 * loop / steps,
            "dof_steps_per_s_per_core": summary["mesh"]["dofs"] * steps / loop / comm.size,
            "peak_memory_mb_per_rank": peak_memory_mb(comm),
            "fields_mb": folder_mb(Path(summary["output_dir"]) / "fields") if comm.rank == 0 else None,
            "output_fraction": phases.get("output", 0.0) / wall,
            "ablation_volume_mL": summary.get("damage", {}).get("ablation_volume_mL"),
            "hooks_missing": ph.missing,
        }
    )
    if "mesh_cold_s" in res:
        res["total_cold_s"] = res["mesh_cold_s"] + wall
    if comm.rank == 0:
        import shutil

        shutil.rmtree(out.parent, ignore_errors=True)
        if spec.get("cold"):
            shutil.rmtree(tmp, ignore_errors=True)
    return res


def tutorial_problem(run, dt_s: float):
    """dolfinx.fem.petsc.LinearProblem of the same backward-Euler step as the run's heat problem
    (solver.coupler.Coupler; coagulation off, constant properties): the forms written out as a
    tutorial would, re-assembled every solve. Returns (problem, T_n, per-emitter power constants)."""
    import dolfinx.fem.petsc
    import ufl
    from dolfinx import fem
    from petsc4py import PETSc

    heat = run.heat
    V = heat.V
    k, rho_c, W, T_a, Q_met = (heat.props[x] for x in ("k", "rho_c", "W", "T_a", "Q_met"))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    dx = heat.dx
    T_n = fem.Function(V)
    dt = fem.Constant(heat.mesh, PETSc.ScalarType(dt_s))
    a = rho_c / dt * u * v * dx + k * ufl.inner(ufl.grad(u), ufl.grad(v)) * dx + W * u * v * dx
    L = (rho_c / dt * T_n + W * T_a + Q_met) * v * dx
    for bc in heat.robin:  # the case's Robin surfaces and the cooled catheters
        ds = heat.surface_measure(bc.surfaces())
        h = bc.heat_transfer_coefficient_W_per_m2K
        a += h * u * v * ds
        L += h * bc.ambient_temperature_C * v * ds
    for bc in heat.neumann:
        L += bc.heat_flux_W_per_m2 * v * heat.surface_measure(bc.surfaces())
        inner = heat.interface_measure(bc.surfaces())
        if inner is not None:
            L += bc.heat_flux_W_per_m2 * ufl.avg(v) * inner
    powers = []
    if run.laser is not None:
        for em in run.laser.emitters:  # heat per W of each emitter: mu_a phi_unit
            power = fem.Constant(heat.mesh, PETSc.ScalarType(0.0))
            L += power * run.laser.light.mu_a * em.phi * v * dx
            powers.append((em, power))
    lp = dolfinx.fem.petsc.LinearProblem(
        a, L, bcs=heat.bcs, petsc_options_prefix="tutorial_",
        petsc_options={"ksp_type": "cg", "pc_type": "jacobi", "ksp_rtol": run.case.solver.rtol,
                       "ksp_atol": run.case.solver.atol},
    )
    return lp, T_n, powers


def worker_ratios(spec: dict, comm) -> dict:
    """T8 coagulation off: engine step vs tutorial-style step vs (iterations + 1) MatMult."""
    from meshes import build_mesh
    from solver.coupler import Coupler

    case = t8_case(spec["resolution"], False, None)
    bundle = build_mesh(case.geometry, comm, case_dir=Path(case.case_dir), cavities=case.cavities())
    problem = Coupler(case, bundle)
    problem.initialise()
    n_eng, n_tut = spec.get("engine_steps", 20), spec.get("tutorial_steps", 3)
    dt = case.time.dt_s
    problem.iterate(0.0, dt)  # first solve sets up the preconditioner
    comm.Barrier()
    t0 = time.perf_counter()
    for i in range(1, n_eng + 1):
        problem.iterate(i * dt, (i + 1) * dt)
    engine = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX) / n_eng
    # Pennes step alone (no dose integration): what the tutorial loop does too
    dose, problem.dose = problem.dose, None
    comm.Barrier()
    t0 = time.perf_counter()
    for i in range(n_eng + 1, 2 * n_eng + 1):
        problem.iterate(i * dt, (i + 1) * dt)
    engine_pennes = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX) / n_eng
    problem.dose = dose
    its = float(sum(problem.stats.iterations[1:]) / (2 * n_eng))
    # bandwidth floor: (iterations + 1) products with A
    x, y = problem.heat.A.createVecs()
    x.set(1.0)
    reps = max(1, int(round(its)) + 1)
    timing = []
    for _ in range(5):
        comm.Barrier()
        t0 = time.perf_counter()
        for _ in range(reps):
            problem.heat.A.mult(x, y)
        timing.append(comm.allreduce(time.perf_counter() - t0, op=MPI.MAX))
    floor = min(timing)
    # tutorial-style loop from the engine's current state, same power schedule
    lp, T_n, powers = tutorial_problem(problem, dt)
    t_now = (2 * n_eng + 1) * dt
    T_n.x.array[:] = problem.T.x.array
    per = []
    for i in range(n_tut):
        t_old, t_new = t_now + i * dt, t_now + (i + 1) * dt
        for em, power in powers:  # the engine's power per step (the gate stays 1: no monitors run)
            power.value = em.mean_power(t_old, t_new)
        problem.iterate(t_old, t_new)
        comm.Barrier()
        t0 = time.perf_counter()
        Th = lp.solve()
        per.append(comm.allreduce(time.perf_counter() - t0, op=MPI.MAX))
        T_n.x.array[:] = Th.x.array
    import numpy as np

    n_own = problem.V.dofmap.index_map.size_local
    diff = comm.allreduce(float(np.max(np.abs(T_n.x.array[:n_own] - problem.T.x.array[:n_own]))) if n_own else 0.0,
                          op=MPI.MAX)
    tutorial = sum(per) / len(per)
    return {
        "kind": "ratios", **spec, "ranks": comm.size, "dofs": problem.num_dofs(),
        "engine_step_ms": 1e3 * engine, "engine_pennes_step_ms": 1e3 * engine_pennes,
        "iterations_mean": its, "floor_matmults": reps, "floor_ms": 1e3 * floor,
        "engine_over_floor": engine / floor, "engine_pennes_over_floor": engine_pennes / floor,
        "tutorial_step_ms": 1e3 * tutorial, "tutorial_steps_timed": n_tut,
        "tutorial_over_engine": tutorial / engine,
        "tutorial_max_diff_K": diff,
        "peak_memory_mb_per_rank": peak_memory_mb(comm),
    }


def worker_box(spec: dict, comm) -> dict:
    """The foundation benchmark: uniform source in a ball inside a box of muscle, CG + Jacobi."""
    import dolfinx.fem.petsc
    import numpy as np
    import ufl
    from dolfinx import fem
    from petsc4py import PETSc

    from meshes.structured import structured_box
    from solver.case_loader import parse_case
    from solver.coupler import Coupler

    side, radius, power, dt = 0.04, 0.006, 5.0, 1.0
    n = spec["n"]
    t0 = time.perf_counter()
    bundle = structured_box(comm, (0, 0, 0), (side,) * 3, n, ball_region=("tumour", (0.5 * side,) * 3, radius))
    mesh_s = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    case = parse_case(
        {
            "name": "bench_box",
            "geometry": {"kind": "box", "lower_m": [0, 0, 0], "upper_m": [side] * 3, "mesh_size_m": 0.001,
                         "inclusion": [{"name": "tumour", "center_m": [0.5 * side] * 3, "radius_m": radius}]},
            "regions": {"body": "muscle", "tumour": "muscle"},
            "boundary": [{"type": "dirichlet", "surface": "outer", "temperature_C": 37.0}],
            "source": [{"type": "uniform", "region": "tumour", "power_W": power}],
            "time": {"mode": "transient", "scheme": "backward_euler", "dt_s": dt, "end_time_s": 1000.0},
            "solver": {"ksp_type": "cg", "pc_type": "jacobi", "rtol": 1e-8, "atol": 0.0},
        },
        source="bench",
    )
    t0 = time.perf_counter()
    problem = Coupler(case, bundle)  # heat problem and its uniform-source load
    setup = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    problem.initialise()
    problem.dose = None  # Pennes alone, the same work as the tutorial loop
    steps, m = spec["steps"], spec["tutorial_steps"]
    problem.iterate(0.0, dt)
    comm.Barrier()
    t0 = time.perf_counter()
    for i in range(1, steps + 1):
        problem.iterate(i * dt, (i + 1) * dt)
    engine = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX) / steps
    its = float(np.mean(problem.stats.iterations[1:]))
    heat = problem.heat
    V = heat.V
    k, rho_c, W, T_a = (heat.props[x] for x in ("k", "rho_c", "W", "T_a"))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    T_n = fem.Function(V)
    T_n.x.array[:] = case.initial.temperature_C
    tag = bundle.regions["tumour"]
    vol = comm.allreduce(fem.assemble_scalar(fem.form(fem.Constant(bundle.mesh, 1.0) * heat.dx(tag))))
    dtc = fem.Constant(bundle.mesh, PETSc.ScalarType(dt))
    a = rho_c / dtc * u * v * heat.dx + k * ufl.inner(ufl.grad(u), ufl.grad(v)) * heat.dx + W * u * v * heat.dx
    L = (rho_c / dtc * T_n + W * T_a) * v * heat.dx + power / vol * v * heat.dx(tag)
    lp = dolfinx.fem.petsc.LinearProblem(
        a, L, bcs=heat.bcs, petsc_options_prefix="tutorial_",
        petsc_options={"ksp_type": "cg", "pc_type": "jacobi", "ksp_rtol": 1e-8, "ksp_atol": 0.0},
    )
    total = steps + 1  # the tutorial loop runs as many steps as the engine, the last m timed
    t_tut = 0.0
    for i in range(total):
        t0 = time.perf_counter()
        Th = lp.solve()
        T_n.x.array[:] = Th.x.array
        if i >= total - m:
            t_tut += comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
    tutorial = t_tut / m
    diff = comm.allreduce(float(np.max(np.abs(T_n.x.array - problem.T.x.array))), op=MPI.MAX)
    return {
        "kind": "box", **spec, "ranks": comm.size, "dofs": problem.num_dofs(), "mesh_s": mesh_s, "setup_s": setup,
        "engine_step_ms": 1e3 * engine, "iterations_mean": its, "tutorial_step_ms": 1e3 * tutorial,
        "tutorial_over_engine": tutorial / engine, "max_diff_K": diff,
        "dof_steps_per_s_per_core": problem.num_dofs() / engine / comm.size,
        "peak_memory_mb_per_rank": peak_memory_mb(comm),
    }


def worker(spec_json: str, result: str) -> None:
    global MPI
    import solver.compat  # noqa: F401  (import order)
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    spec = json.loads(spec_json)
    res = {"t8": worker_t8, "ratios": worker_ratios, "box": worker_box}[spec["kind"]](spec, comm)
    res["load"] = load()
    if comm.rank == 0:
        from solver.jsonio import strict

        Path(result).write_text(json.dumps(strict(res), allow_nan=False))


# ============================================================================ driver side


def mpiexec() -> str:
    venv = Path(sys.executable).parent / "mpiexec"
    return str(venv) if venv.exists() else "mpiexec"


def run_worker(spec: dict, ranks: int, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        result = Path(tmp) / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec), "--result", str(result)]
        if ranks > 1:
            cmd = [mpiexec(), "-n", str(ranks)] + cmd
        load0 = load()
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not result.exists():
            sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
            raise SystemExit(f"bench: worker {spec} on {ranks} rank(s) failed (exit {proc.returncode})")
        res = json.loads(result.read_text())
        res["process_wall_s"] = time.perf_counter() - t0
        res["load_before"] = load0
        return res


def plan(quick: bool) -> list[tuple[dict, int]]:
    if quick:
        return [
            ({"kind": "t8", "resolution": "standard", "coagulation": False, "steps": 10}, 1),
            ({"kind": "t8", "resolution": "standard", "coagulation": True, "steps": 10}, 1),
            ({"kind": "ratios", "resolution": "standard", "engine_steps": 5, "tutorial_steps": 2}, 1),
            ({"kind": "box", "n": 16, "steps": 5, "tutorial_steps": 2}, 1),
        ]
    runs: list[tuple[dict, int]] = []
    for res in ("standard", "medium", "fine"):
        for coag in (False, True):
            runs.append(({"kind": "t8", "resolution": res, "coagulation": coag}, 1))
    runs.append(({"kind": "t8", "resolution": "fine", "coagulation": False}, 2))
    runs.append(({"kind": "t8", "resolution": "fine", "coagulation": True, "cold": True}, 2))
    for res in ("medium", "fine"):
        runs.append(({"kind": "ratios", "resolution": res}, 1))
    runs.append(({"kind": "ratios", "resolution": "fine"}, 2))
    runs.append(({"kind": "box", "n": 58, "steps": 20, "tutorial_steps": 5}, 1))
    runs.append(({"kind": "box", "n": 58, "steps": 20, "tutorial_steps": 5}, 2))
    return runs


def scaling(results: list[dict]) -> list[dict]:
    """Strong scaling 1 -> 2 ranks of the same T8 run: efficiency = t1 / (2 t2)."""
    out = []
    for r2 in results:
        if r2["kind"] != "t8" or r2["ranks"] != 2:
            continue
        for r1 in results:
            if r1["kind"] == "t8" and r1["ranks"] == 1 and r1["resolution"] == r2["resolution"] \
                    and r1["coagulation"] == r2["coagulation"] and r1.get("steps") == r2.get("steps"):
                out.append({
                    "resolution": r2["resolution"], "coagulation": r2["coagulation"], "dofs": r2["dofs"],
                    "loop_s": [r1["loop_s"], r2["loop_s"]],
                    "loop_efficiency": r1["loop_s"] / (2 * r2["loop_s"]),
                    "total_cached_s": [r1["total_cached_s"], r2["total_cached_s"]],
                    "total_efficiency": r1["total_cached_s"] / (2 * r2["total_cached_s"]),
                })
    return out


def fmt(x, spec="8.1f") -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def table(results: list[dict], scale: list[dict]) -> str:
    lines = []
    cols = ("rhs", "linear_solve", "dose_update", "coagulation_operators", "light_refresh", "monitors", "output",
            "other_in_loop")
    lines.append("T8 intact, 180 s (end to end; ms/step per phase)")
    lines.append(f"{'res':8s} {'coag':4s} {'R':>1s} {'dofs':>7s} {'mesh':>6s} {'setup':>6s} {'loop':>6s} {'total':>6s} "
                 f"{'ms/st':>6s} {'its':>5s} " + " ".join(f"{c[:6]:>6s}" for c in cols)
                 + f" {'MB/rk':>6s} {'fldMB':>6s} {'kdof-st/s/c':>11s} {'load':>5s}")
    for r in results:
        if r["kind"] != "t8":
            continue
        mesh = r.get("mesh_cold_s", r["mesh_cached_s"])
        total = r.get("total_cold_s", r["total_cached_s"])
        ph = r["phases_ms_per_step"]
        lines.append(
            f"{r['resolution']:8s} {'on' if r['coagulation'] else 'off':4s} {r['ranks']:1d} {r['dofs']:7d} "
            f"{fmt(mesh, '6.1f')}{'c' if 'mesh_cold_s' in r else ' '}{fmt(r['setup_s'], '5.1f')} {fmt(r['loop_s'], '6.1f')} "
            f"{fmt(total, '6.1f')} {fmt(r['time_per_step_ms'], '6.1f')} {fmt(r['iterations_mean'], '5.1f')} "
            + " ".join(fmt(ph.get(c, 0.0), '6.1f') for c in cols)
            + f" {fmt(max(r['peak_memory_mb_per_rank']), '6.0f')} {fmt(r['fields_mb'], '6.1f')} "
            f"{fmt(r['dof_steps_per_s_per_core'] / 1e3, '11.0f')} {r['load'][0]:5.2f}"
        )
        if "mesh_cold_s" in r:
            lines.append(f"{'':8s} (mesh cold {r['mesh_cold_s']:.1f} s, cached {r['mesh_cached_s']:.2f} s; "
                         f"end to end cold {r['total_cold_s']:.1f} s, cached {r['total_cached_s']:.1f} s)")
    lines.append("")
    lines.append("Ratios (T8 coagulation off): engine step (with dose) / Pennes-only step vs tutorial and MatMult floor")
    for r in results:
        if r["kind"] == "ratios":
            lines.append(
                f"{r['resolution']:8s} R={r['ranks']} {r['dofs']:7d} dofs: engine {r['engine_step_ms']:.1f} ms "
                f"(Pennes alone {r['engine_pennes_step_ms']:.1f}), {r['iterations_mean']:.1f} its; floor "
                f"{r['floor_matmults']} MatMult = {r['floor_ms']:.1f} ms -> engine/floor {r['engine_over_floor']:.2f} "
                f"(Pennes {r['engine_pennes_over_floor']:.2f}); tutorial {r['tutorial_step_ms']:.0f} ms "
                f"({r['tutorial_steps_timed']} steps timed, extrapolated) = {r['tutorial_over_engine']:.1f}x engine; "
                f"|dT| {r['tutorial_max_diff_K']:.1e} K; load {r['load'][0]:.2f}"
            )
    for r in results:
        if r["kind"] == "box":
            lines.append(
                f"box n={r['n']} R={r['ranks']} {r['dofs']} dofs: engine {r['engine_step_ms']:.1f} ms/step "
                f"({r['iterations_mean']:.1f} its), tutorial {r['tutorial_step_ms']:.0f} ms = "
                f"{r['tutorial_over_engine']:.1f}x; |dT| {r['max_diff_K']:.1e} K; load {r['load'][0]:.2f}"
            )
    if scale:
        lines.append("")
        lines.append("Strong scaling 1 -> 2 ranks (efficiency t1 / (2 t2))")
        for s in scale:
            lines.append(
                f"{s['resolution']:8s} coag {'on' if s['coagulation'] else 'off':3s} {s['dofs']} dofs: loop "
                f"{s['loop_s'][0]:.1f} -> {s['loop_s'][1]:.1f} s ({100 * s['loop_efficiency']:.0f} %), end to end "
                f"{s['total_cached_s'][0]:.1f} -> {s['total_cached_s'][1]:.1f} s ({100 * s['total_efficiency']:.0f} %)"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="T8 standard only, 10 steps, small box (about a minute)")
    ap.add_argument("--out", default=str(ROOT / "results" / "bench" / "bench.json"))
    ap.add_argument("--timeout", type=float, default=3600.0, help="per worker (s)")
    ap.add_argument("--only", choices=["t8", "ratios", "box"], help="run only the measurements of this kind")
    ap.add_argument("--box-n", type=int, help="cells per edge of the box case (58: 205k dofs; weak scaling: "
                    "scale with ranks^(1/3))")
    ap.add_argument("--ranks", type=int, help="run the box case on this many ranks only (with --only box)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a key of the T8 case in every T8 run (as bioheat run --set; repeatable), "
                    "e.g. output.field_interval_s=5")
    ap.add_argument("--resolution", choices=["standard", "medium", "fine"], help="T8 runs of this resolution only")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.result)
        return
    from solver.jsonio import strict

    results = []
    t0 = time.perf_counter()
    for spec, ranks in plan(args.quick):
        if args.only and spec["kind"] != args.only:
            continue
        if args.resolution and spec.get("resolution", args.resolution) != args.resolution:
            continue
        if spec["kind"] == "t8" and args.set:
            spec = {**spec, "set": list(args.set)}
        if spec["kind"] == "box" and args.box_n:
            spec = {**spec, "n": args.box_n}
        if spec["kind"] == "box" and args.ranks:  # one box run, on the ranks asked for
            if any(r["kind"] == "box" for r in results):
                continue
            ranks = args.ranks
        print(f"bench: {spec} on {ranks} rank(s) (load {load()[0]:.2f}) ...", flush=True)
        results.append(run_worker(spec, ranks, args.timeout))
    scale = scaling(results)
    doc = {
        "suite": "quick" if args.quick else "full",
        "host": os.uname().nodename,
        "cpus": os.cpu_count(),
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_s": time.perf_counter() - t0,
        "results": results,
        "strong_scaling": scale,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(strict(doc), indent=1, allow_nan=False) + "\n")
    print(table(results, scale))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
