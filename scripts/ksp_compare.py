"""Linear solvers for the bioheat time step, by measurement on the T8 spine case.

    .venv/bin/python scripts/ksp_compare.py --resolution medium
    .venv/bin/mpiexec -n 2 .venv/bin/python scripts/ksp_compare.py --resolution fine --json out.json

The T8 intact case (cases/spine/T8_lytic_intact.toml) at the given geometry.resolution, with
coagulation off so that the operator is constant for the whole dose (the preconditioner is set up
once). For every candidate (CG + Jacobi, SOR, ICC (block-Jacobi ICC on more ranks), GAMG, and
hypre BoomerAMG when PETSc has it) it times the preconditioner set-up and ``--steps`` engine steps
of the 6 W dose from 37 C, and prints set-up seconds, mean Krylov iterations and milliseconds of
linear solve per step. Every candidate solves to the case's rtol (1e-10) from the same warm start,
and the temperature after the steps is compared with Jacobi's (must agree to ~rtol).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import solver.compat  # noqa: F401  (import order)
from mpi4py import MPI
from petsc4py import PETSc

from solver.bioheat import BioheatProblem, _ksp
from solver.case_loader import load_case
from solver.simulation import build_case_mesh

CASE = Path(__file__).resolve().parents[1] / "cases" / "spine" / "T8_lytic_intact.toml"


def candidates() -> list[str]:
    out = ["jacobi", "sor", "icc", "gamg"]
    if PETSc.Sys.hasExternalPackage("hypre"):
        out.append("hypre")
    return out


def make_ksp(problem: BioheatProblem, pc: str) -> PETSc.KSP:
    if pc == "hypre":
        ksp = _ksp(problem.comm, problem.A, problem.case.solver.model_copy(update={"pc_type": "jacobi"}),
                   False, prefix=f"cmp_{pc}_")
        ksp.getPC().setType("hypre")
        ksp.getPC().setHYPREType("boomeramg")
        return ksp
    opts = problem.case.solver.model_copy(update={"pc_type": pc})
    return _ksp(problem.comm, problem.A, opts, False, prefix=f"cmp_{pc}_")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolution", default="medium", choices=["standard", "medium", "fine"])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--pcs", default=",".join(candidates()))
    ap.add_argument("--json", default=None, help="append the rows (JSON lines) to this file")
    args = ap.parse_args()
    comm = MPI.COMM_WORLD
    say = (lambda *a: print(*a, flush=True)) if comm.rank == 0 else (lambda *a: None)
    case = load_case(CASE, [f"geometry.resolution={args.resolution}", "coagulation.enabled=false",
                            "output.fields=false"])
    bundle = build_case_mesh(case, comm)
    problem = BioheatProblem(case, bundle)
    say(f"T8 {args.resolution}: {problem.num_dofs()} dofs, {problem.num_cells()} cells, {comm.size} rank(s)")
    reference = None
    rows = []
    for pc in args.pcs.split(","):
        problem.ksp.destroy()
        problem.ksp = ksp = make_ksp(problem, pc)
        comm.Barrier()
        t0 = time.perf_counter()
        ksp.setUp()
        setup = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
        problem.stats.iterations.clear()
        problem.set_initial()
        solve = 0.0
        inner = problem._solve

        def timed(b, inner=inner):
            nonlocal solve
            t = time.perf_counter()
            inner(b)
            solve += time.perf_counter() - t

        problem._solve = timed
        comm.Barrier()
        t0 = time.perf_counter()
        for n in range(args.steps):
            problem.step(float(n), float(n + 1))
        step = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX) / args.steps
        del problem._solve
        solve = comm.allreduce(solve, op=MPI.MAX) / args.steps
        its = float(np.mean(problem.stats.iterations))
        T = problem.T.x.array[: problem.V.dofmap.index_map.size_local].copy()
        if reference is None:
            reference = T
        diff = comm.allreduce(float(np.max(np.abs(T - reference))) if T.size else 0.0, op=MPI.MAX)
        row = {"resolution": args.resolution, "dofs": problem.num_dofs(), "ranks": comm.size, "pc": pc,
               "setup_s": setup, "iterations": its, "solve_ms_per_step": 1e3 * solve,
               "step_ms": 1e3 * step, "max_diff_vs_first_K": diff,
               "load": open("/proc/loadavg").read().split()[:3]}
        rows.append(row)
        say(f"{pc:8s} set-up {setup:6.3f} s  {its:5.1f} its  solve {1e3 * solve:7.1f} ms/step  "
            f"step {1e3 * step:7.1f} ms  |T - T_first| {diff:.1e} K")
    if args.json and comm.rank == 0:
        with open(args.json, "a") as fh:
            for r in rows:
                fh.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
