"""Where the laser light of a case is absorbed, per region (the share in CSF bounds the error of
diffusion there, docs/MODEL.md section 2b).

    .venv/bin/python scripts/csf_light_share.py cases/spine/T8_lytic_intact.toml [--set KEY=VALUE ...]

Builds the case's mesh, solves the unit-power light field of every emitter exactly as a run does
(solver.laser.Laser), and prints for each region the absorbed power per watt delivered
(integral of mu_a phi over the region, W/W) and the mean and maximum fluence rate (W/m2 per W).
Runs under mpiexec too (the integrals are reduced over ranks).
"""

from __future__ import annotations

import argparse
import sys

import solver.compat  # noqa: F401  (import order)
import numpy as np
import ufl
from dolfinx import fem
from mpi4py import MPI

from solver.case_loader import load_case
from solver.laser import Laser
from solver.simulation import build_case_mesh


def region_shares(case_path: str, overrides: list[str]) -> dict[str, dict[str, float]]:
    """{region: {absorbed_W_per_W, mean_fluence_W_per_m2, max_fluence_W_per_m2, volume_m3}} for
    the first emitter of the case at unit power."""
    comm = MPI.COMM_WORLD
    case = load_case(case_path, overrides)
    bundle = build_case_mesh(case, comm)
    V = fem.functionspace(bundle.mesh, ("Lagrange", 1))
    laser = Laser(case, bundle, V)
    em = laser.emitters[0]
    dx = ufl.Measure("dx", domain=bundle.mesh, subdomain_data=bundle.cell_tags)
    out = {}
    for region, tag in bundle.regions.items():
        mu_a = laser.optical[region].absorption_per_m
        absorbed = comm.allreduce(fem.assemble_scalar(fem.form(mu_a * em.phi * dx(tag))))
        phi_int = comm.allreduce(fem.assemble_scalar(fem.form(em.phi * dx(tag))))
        vol = comm.allreduce(fem.assemble_scalar(fem.form(1.0 * dx(tag))))
        cells = bundle.cell_tags.find(tag)
        dofs = np.unique(V.dofmap.list[cells].reshape(-1)) if len(cells) else np.array([], dtype=np.int32)
        local_max = float(em.phi.x.array[dofs].max()) if len(dofs) else -np.inf
        out[region] = {
            "absorbed_W_per_W": absorbed,
            "mean_fluence_W_per_m2": phi_int / vol if vol > 0 else 0.0,
            "max_fluence_W_per_m2": comm.allreduce(local_max, op=MPI.MAX),
            "volume_m3": vol,
        }
    out["_balance"] = dict(em.balance)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("case")
    ap.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    shares = region_shares(args.case, args.overrides)
    if MPI.COMM_WORLD.rank == 0:
        print(f"{'region':<20} {'absorbed (W/W)':>15} {'mean phi (W/m2/W)':>18} {'max phi':>12} {'volume (mL)':>12}")
        for region, s in shares.items():
            if region.startswith("_"):
                continue
            print(f"{region:<20} {s['absorbed_W_per_W']:>15.4g} {s['mean_fluence_W_per_m2']:>18.4g} "
                  f"{s['max_fluence_W_per_m2']:>12.4g} {s['volume_m3'] * 1e6:>12.4g}")
        b = shares["_balance"]
        print(f"absorbed {b['absorbed_W']:.6f} W/W, boundary loss {b['boundary_loss_W']:.6f} W/W")
    return 0


if __name__ == "__main__":
    sys.exit(main())
