"""Benchmark: time per step of the engine's transient loop against a tutorial-style loop.

Both solve the same backward-Euler Pennes problem (muscle, uniform 5 W source in a central
ball, body temperature on the outer faces, dt = 1 s) on the same mesh with the same Krylov
solver and tolerance, in the same run:

- engine: operator assembled once, RHS = B T_n + c + P(t) q (one mat-vec), CG + Jacobi,
  warm start (solver.coupler.Coupler.step);
- tutorial: dolfinx.fem.petsc.LinearProblem(...).solve() every step, which re-assembles the
  matrix and the right-hand side and sets up a new preconditioner each time.

    .venv/bin/python scripts/bench.py [--n 58] [--steps 20] [--tutorial-steps 5]
    .venv/bin/mpiexec -n 2 .venv/bin/python scripts/bench.py

Prints dofs, ms per step of each, their ratio, and the largest temperature difference.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import solver.compat  # noqa: F401  (import order)
import dolfinx.fem.petsc
import ufl
from dolfinx import fem
from mpi4py import MPI
from petsc4py import PETSc

from meshes.structured import structured_box
from solver.coupler import Coupler
from solver.case_loader import parse_case

SIDE_M = 0.04
BALL_RADIUS_M = 0.006
POWER_W = 5.0
DT_S = 1.0


def bench_case(rtol: float, pc: str = "jacobi", coagulation: dict | None = None):
    return parse_case(
        {
            "name": "bench",
            "geometry": {"kind": "box", "lower_m": [0, 0, 0], "upper_m": [SIDE_M] * 3, "mesh_size_m": 0.001,
                "inclusion": [{"name": "tumour", "center_m": [0.5 * SIDE_M] * 3, "radius_m": BALL_RADIUS_M}],
            },
            "regions": {"body": "muscle", "tumour": "muscle"},
            "boundary": [{"type": "dirichlet", "surface": "outer", "temperature_C": 37.0}],
            "source": [{"type": "uniform", "region": "tumour", "power_W": POWER_W}],
            "time": {"mode": "transient", "scheme": "backward_euler", "dt_s": DT_S, "end_time_s": 1000.0},
            "solver": {"ksp_type": "cg", "pc_type": pc, "rtol": rtol, "atol": 0.0},
            "coagulation": coagulation or {"enabled": False},
        },
        source="bench",
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=58, help="cells per box edge (58 -> 205k P1 dofs)")
    ap.add_argument("--steps", type=int, default=20, help="engine steps timed")
    ap.add_argument("--tutorial-steps", type=int, default=5, help="tutorial-style steps timed")
    ap.add_argument("--rtol", type=float, default=1e-8)
    ap.add_argument("--coagulation", action="store_true",
                    help="also time the engine with damage-driven perfusion, and with k(T) as well")
    ap.add_argument("--pc", default="jacobi", help="engine preconditioner: jacobi, icc, sor, gamg (tutorial keeps jacobi)")
    args = ap.parse_args()
    comm = MPI.COMM_WORLD
    say = (lambda *a: print(*a, flush=True)) if comm.rank == 0 else (lambda *a: None)

    t0 = time.perf_counter()
    centre = (0.5 * SIDE_M,) * 3
    bundle = structured_box(
        comm, (0, 0, 0), (SIDE_M,) * 3, args.n, ball_region=("tumour", centre, BALL_RADIUS_M)
    )
    say(f"mesh: {args.n}^3 x 6 tetrahedra, {time.perf_counter() - t0:.1f} s, {comm.size} rank(s)")

    case = bench_case(args.rtol, args.pc)
    t0 = time.perf_counter()
    problem = Coupler(case, bundle)
    setup = time.perf_counter() - t0
    problem.set_initial()
    # Pennes alone, the same work as the tutorial loop; dose tracking is timed separately below
    dose_tracker, problem.dose = problem.dose, None
    ndofs = problem.num_dofs()
    say(f"P1 dofs: {ndofs}; engine set-up (forms, assembly, solver): {setup:.2f} s")

    # Warm-up step (first KSP solve sets up the preconditioner), then timing.
    problem.step(0.0, DT_S)
    n = args.steps
    t0 = time.perf_counter()
    for i in range(1, n + 1):
        problem.step(i * DT_S, (i + 1) * DT_S)
    engine_ms = 1e3 * (time.perf_counter() - t0) / n
    its = problem.stats.iterations[1:]

    # Tutorial style on the same mesh, same forms, same solver, same number of steps so far.
    V = problem.V
    k, rho_c, W, T_a = (problem.heat.props[x] for x in ("k", "rho_c", "W", "T_a"))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    T_n = fem.Function(V)
    T_n.x.array[:] = case.initial.temperature_C
    tag = bundle.regions["tumour"]
    vol = comm.allreduce(fem.assemble_scalar(fem.form(fem.Constant(bundle.mesh, 1.0) * problem.heat.dx(tag))))
    dt = fem.Constant(bundle.mesh, PETSc.ScalarType(DT_S))
    a = rho_c / dt * u * v * problem.heat.dx + k * ufl.inner(ufl.grad(u), ufl.grad(v)) * problem.heat.dx + W * u * v * problem.heat.dx
    L = (rho_c / dt * T_n + W * T_a) * v * problem.heat.dx + POWER_W / vol * v * problem.heat.dx(tag)
    lp = dolfinx.fem.petsc.LinearProblem(
        a,
        L,
        bcs=problem.heat.bcs,
        petsc_options_prefix="tutorial_",
        petsc_options={"ksp_type": "cg", "pc_type": "jacobi", "ksp_rtol": args.rtol, "ksp_atol": 0.0},
    )
    total = n + 1
    m = args.tutorial_steps
    # Advance the tutorial loop to the same time level as the engine (untimed for the first
    # total - m steps), timing the last m steps.
    t_tut = 0.0
    for i in range(total):
        t0 = time.perf_counter()
        Th = lp.solve()
        T_n.x.array[:] = Th.x.array
        if i >= total - m:
            t_tut += time.perf_counter() - t0
    tutorial_ms = 1e3 * t_tut / m

    diff = np.abs(T_n.x.array - problem.T.x.array)
    max_diff = comm.allreduce(float(diff.max()) if diff.size else 0.0, op=MPI.MAX)
    t_max = problem.max_temperature()[0]
    say(f"engine:   {engine_ms:8.1f} ms/step  (CG+{args.pc}, {np.mean(its):.1f} iterations/step, {n} steps)")
    say(f"tutorial: {tutorial_ms:8.1f} ms/step  (LinearProblem.solve() each step, {m} steps timed)")
    say(f"ratio tutorial/engine: {tutorial_ms / engine_ms:.1f}x")
    say(
        f"after {total} steps: max |T_engine - T_tutorial| = {max_diff:.2e} K "
        f"(solver rtol {args.rtol:g}); Tmax = {t_max:.3f} C"
    )
    say(f"throughput: {ndofs / (engine_ms * 1e-3) / comm.size:.3g} dof-steps per second per rank")

    # the same engine with the per-node dose integration (Omega, CEM43, max T, time above) on
    problem.dose = dose_tracker
    dose_tracker.start()
    t0 = time.perf_counter()
    for i in range(n + 1, 2 * n + 1):
        problem.step(i * DT_S, (i + 1) * DT_S)
    dose_ms = 1e3 * (time.perf_counter() - t0) / n
    say(f"engine + dose tracking: {dose_ms:8.1f} ms/step ({dose_ms - engine_ms:+.1f} ms for Omega, CEM43, max T)")

    if args.coagulation:
        for label, coag in (
            ("coagulation (Arrhenius + lumped perfusion)", {"enabled": True}),
            ("coagulation + k(T) re-assembly", {"enabled": True, "temperature_dependent_conductivity": True}),
        ):
            p2 = Coupler(bench_case(args.rtol, args.pc, coag), bundle)
            p2.set_initial()
            p2.step(0.0, DT_S)
            t0 = time.perf_counter()
            for i in range(1, n + 1):
                p2.step(i * DT_S, (i + 1) * DT_S)
            ms = 1e3 * (time.perf_counter() - t0) / n
            omega = p2.coagulation.summary()["max_omega"]
            say(f"engine with {label}: {ms:8.1f} ms/step ({ms / engine_ms:.2f}x off), max Omega {omega:.3g}")


if __name__ == "__main__":
    main()
