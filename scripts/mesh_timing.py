"""Time gmsh on the T8 spine model with different 3D algorithms / threads (one process, no cache).

    .venv/bin/python scripts/mesh_timing.py --sizes 2.5,0.3,0.35,0.35 --algo 1 --threads 1
    .venv/bin/python scripts/mesh_timing.py --sizes 2.5,0.3,0.35,0.35 --algo 10 --threads 2

Sizes in mm: far field, tip, cortex, cord. Prints one JSON line: meshing seconds, tetrahedra,
nodes, minimum / mean / 1st percentile radius ratio (gmsh "gamma" = 3 r_in / R_circ).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import solver.compat  # noqa: F401
import gmsh
import numpy as np

from meshes.cavities import validate_cavities
from meshes import spine
from solver.case_loader import load_case


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", default="cases/spine/T8_lytic_intact.toml")
    ap.add_argument("--sizes", default="5,0.8,1,1", help="mm: far, tip, cortex, cord")
    ap.add_argument("--algo", type=int, default=None, help="Mesh.Algorithm3D override")
    ap.add_argument("--threads", type=int, default=None, help="General.NumThreads override")
    args = ap.parse_args()
    far, tip, cortex, cord = (float(s) * 1e-3 for s in args.sizes.split(","))
    case = load_case(args.case)
    geom = case.geometry.model_copy(update=dict(mesh_size_m=far, tip_size_m=tip, cortex_size_m=cortex,
                                                cord_size_m=cord))
    cav = validate_cavities(geom, case.cavities())
    gmsh.initialize(interruptible=False)
    gmsh.option.setNumber("General.Terminal", 0)
    gmsh.model.add("t")
    orig = spine._set_mesh_options

    def opts(h):
        orig(h)
        if args.algo is not None:
            gmsh.option.setNumber("Mesh.Algorithm3D", args.algo)
        if args.threads is not None:
            gmsh.option.setNumber("General.NumThreads", args.threads)

    spine._set_mesh_options = opts
    t0 = time.perf_counter()
    spine.build_spine_model(geom, cav)
    dt = time.perf_counter() - t0
    types, tags, nodes = gmsh.model.mesh.getElements(3)
    tets = np.concatenate(tags)
    q = np.asarray(gmsh.model.mesh.getElementQualities(tets, "gamma"))
    nn = len(gmsh.model.mesh.getNodes()[0])
    print(json.dumps({"sizes_mm": args.sizes, "algo3d": gmsh.option.getNumber("Mesh.Algorithm3D"),
                      "threads": gmsh.option.getNumber("General.NumThreads"), "mesh_s": round(dt, 2),
                      "tets": int(len(tets)), "nodes": int(nn), "q_min": float(q.min()),
                      "q_mean": float(q.mean()), "q_p01": float(np.percentile(q, 1)),
                      "below_0.1": int((q < 0.1).sum())}), flush=True)
    gmsh.finalize()


if __name__ == "__main__":
    main()
