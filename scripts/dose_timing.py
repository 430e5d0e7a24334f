"""Time the dose update (solver.dose.DoseTracker before_step + after_step, and the ablation
zone's part, solver.zone.ZoneSampler.after_step) per step on the T8 spine case.

    .venv/bin/python scripts/dose_timing.py                       # medium mesh, 180 steps
    .venv/bin/python scripts/dose_timing.py --resolution standard --steps 60
    .venv/bin/python scripts/dose_timing.py --profile 25          # cProfile of zone.after_step

Runs the engine's own time loop (solver.coupler.Coupler.iterate) on the cached mesh with
coagulation off and prints ms/step of the dose update, of its zone part and of the whole step,
the machine load (/proc/loadavg) before and after, and a fingerprint of the doses (sums of the
zone's and the nodal arrays) so that two versions of the code can be compared for identical
results. One rank (or run it under mpiexec: times are the maximum over ranks).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
T8 = ROOT / "cases" / "spine" / "T8_lytic_intact.toml"


def loadavg() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", default="medium")
    ap.add_argument("--steps", type=int, default=None, help="steps to run (default: the whole case)")
    ap.add_argument("--profile", type=int, default=0, help="print the N top cProfile entries of zone.after_step")
    ap.add_argument("--set", action="append", default=[], help="extra KEY=VALUE overrides")
    args = ap.parse_args()

    from solver import compat  # noqa: F401
    from mpi4py import MPI

    from meshes import build_mesh
    from solver.case_loader import load_case
    from solver.coupler import Coupler

    comm = MPI.COMM_WORLD
    case = load_case(T8, [f"geometry.resolution={args.resolution}", "coagulation.enabled=false"] + args.set)
    bundle = build_mesh(case.geometry, comm, case_dir=Path(case.case_dir), cavities=case.cavities())
    run = Coupler(case, bundle)
    run.initialise()
    dose, zone = run.dose, run.dose.zone

    spent = {"dose": 0.0, "zone": 0.0}
    prof = cProfile.Profile() if args.profile else None

    def timed(owner, name, key, profile=False):
        inner = getattr(owner, name)

        def wrapper(*a, **kw):
            t0 = time.perf_counter()
            if profile:
                prof.enable()
            try:
                return inner(*a, **kw)
            finally:
                if profile:
                    prof.disable()
                spent[key] += time.perf_counter() - t0

        setattr(owner, name, wrapper)

    timed(dose, "before_step", "dose")
    timed(dose, "after_step", "dose")
    timed(zone, "after_step", "zone", profile=bool(args.profile))

    dt = case.time.dt_s
    n_steps = args.steps or int(round(case.time.end_time_s / dt))
    load_before = loadavg()
    comm.Barrier()
    t0 = time.perf_counter()
    t = 0.0
    for n in range(1, n_steps + 1):
        run.iterate(t, n * dt)
        t = n * dt
    loop = time.perf_counter() - t0
    load_after = loadavg()

    def gmax(x):
        return comm.allreduce(x, op=MPI.MAX)

    def gsum(x):
        return comm.allreduce(float(x), op=MPI.SUM)

    loop, d, z = gmax(loop), gmax(spent["dose"]), gmax(spent["zone"])
    pts = zone.dose()
    fp = {
        "zone.dose sum": gsum(pts.sum()),
        "zone.T_max sum": gsum(zone.T_max.sum()),
        "nodal omega sum": gsum(dose.omega.x.array[: run.V.dofmap.index_map.size_local].sum()),
        "nodal cem43 sum": gsum(dose.cem43.x.array[: run.V.dofmap.index_map.size_local].sum()),
    }
    if comm.rank == 0:
        print(f"T8 {args.resolution}: {run.num_dofs()} dofs, {run.num_cells()} cells, {comm.size} rank(s), "
              f"{n_steps} steps, P{case.solver.element_degree}, criterion {zone.criterion}")
        print(f"load average before {load_before} / after {load_after}")
        print(f"step (whole iterate)  {1e3 * loop / n_steps:8.2f} ms/step")
        print(f"dose update           {1e3 * d / n_steps:8.2f} ms/step")
        print(f"  of which the zone   {1e3 * z / n_steps:8.2f} ms/step")
        for k, v in fp.items():
            print(f"{k:18s} {v!r}")
    if prof is not None and comm.rank == 0:
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(args.profile)
        print(s.getvalue())


if __name__ == "__main__":
    main()
