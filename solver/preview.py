"""``bioheat mesh CASE --out DIR [--preview]``: build (or load) the case's mesh, report its
statistics, write it with region and surface tags for ParaView (XDMF), and PNG slices
coloured by region with the applicators drawn (axial through the tip, sagittal through the
cord, i.e. the plane x = 0 of the spine frame).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from . import compat  # noqa: F401  (import order)
import dolfinx.io
from dolfinx import fem
from mpi4py import MPI

from meshes.quality import cell_sizes, owned_cell_vertices, radius_ratio, signed_volumes
from .fem import region_function

from .probes import evaluate, locate

GRID = 241


def mesh_statistics(bundle) -> dict:
    """Cells per region (global), minimum and mean radius-ratio quality, smallest cell size."""
    mesh = bundle.mesh
    comm = mesh.comm
    tdim = mesh.topology.dim
    n_owned = mesh.topology.index_map(tdim).size_local
    cells_per_region = {}
    for name, tag in bundle.regions.items():
        local = int(np.count_nonzero(bundle.cell_tags.find(tag) < n_owned))
        cells_per_region[name] = comm.allreduce(local, op=MPI.SUM)
    x = owned_cell_vertices(mesh)  # (cells, 4, 3)
    q = radius_ratio(x) if len(x) else np.ones(0)
    qmin = comm.allreduce(float(q.min()) if len(q) else 1.0, op=MPI.MIN)
    qsum = comm.allreduce(float(q.sum()), op=MPI.SUM)
    ncells = comm.allreduce(len(q), op=MPI.SUM)
    vol = signed_volumes(x)
    inverted = comm.allreduce(int(np.count_nonzero(vol <= 0.0)) if len(vol) else 0, op=MPI.SUM)
    positive = comm.allreduce(int(np.count_nonzero(vol > 0.0)) if len(vol) else 0, op=MPI.SUM)
    h = cell_sizes(mesh)
    return {
        "cells": ncells,
        "cells_per_region": cells_per_region,
        "min_quality_radius_ratio": qmin,
        "mean_quality_radius_ratio": qsum / max(ncells, 1),
        # DOLFINx orients cells consistently: all volumes share one sign
        "inverted_cells": min(inverted, positive),
        "min_cell_size_m": comm.allreduce(float(h.min()) if len(h) else math.inf, op=MPI.MIN),
        "max_cell_size_m": comm.allreduce(float(h.max()) if len(h) else 0.0, op=MPI.MAX),
    }


def write_tagged_mesh(bundle, path: Path) -> None:
    """Mesh with region (cell) and surface (facet) tags in XDMF for ParaView."""
    mesh = bundle.mesh
    mesh.topology.create_connectivity(mesh.topology.dim - 1, mesh.topology.dim)
    bundle.cell_tags.name = "regions"
    bundle.facet_tags.name = "surfaces"
    with dolfinx.io.XDMFFile(mesh.comm, str(path), "w") as f:
        f.write_mesh(mesh)
        f.write_meshtags(bundle.cell_tags, mesh.geometry)
        f.write_meshtags(bundle.facet_tags, mesh.geometry)


def slice_regions(case, bundle) -> dict:
    """Region tags sampled on the axial plane through the first applicator's tip (or z = 0)
    and the sagittal plane x = tip x. Collective."""
    Q0 = fem.functionspace(bundle.mesh, ("DG", 0))
    region = region_function(Q0, bundle.cell_tags, bundle.regions, bundle.regions)
    x = bundle.mesh.geometry.x
    lo = bundle.comm.allreduce(x.min(axis=0) if len(x) else np.full(3, np.inf), op=MPI.MIN)
    hi = bundle.comm.allreduce(x.max(axis=0) if len(x) else np.full(3, -np.inf), op=MPI.MAX)
    if case.applicator:
        centre = np.asarray(case.applicator[0].positions()[0][1])
    else:
        centre = 0.5 * (lo + hi)
    out = {"lo": lo, "hi": hi, "centre": centre}
    u = np.linspace(lo[0], hi[0], GRID)
    v = np.linspace(lo[1], hi[1], GRID)
    U, Vv = np.meshgrid(u, v, indexing="xy")
    pts = np.stack([U.ravel(), Vv.ravel(), np.full(U.size, centre[2])], axis=1)
    out["axial"] = (u, v, evaluate(region, locate(bundle.mesh, pts, allow_outside=True)).reshape(GRID, GRID))
    w = np.linspace(lo[2], hi[2], GRID)
    V2, W2 = np.meshgrid(v, w, indexing="xy")
    pts = np.stack([np.full(V2.size, centre[0]), V2.ravel(), W2.ravel()], axis=1)
    out["sagittal"] = (v, w, evaluate(region, locate(bundle.mesh, pts, allow_outside=True)).reshape(GRID, GRID))
    return out


def draw_slices(case, bundle, slices: dict, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    names = list(bundle.regions)
    tags = [bundle.regions[n] for n in names]
    cmap = ListedColormap(plt.get_cmap("tab20").colors[: max(len(names), 1)])
    paths = []
    for plane, (a_ax, b_ax, axis_names) in {"axial": (0, 1, ("x", "y")), "sagittal": (1, 2, ("y", "z"))}.items():
        a, b, tag_grid = slices[plane]
        idx = np.full(tag_grid.shape, np.nan)
        for i, t in enumerate(tags):
            idx[np.nan_to_num(tag_grid, nan=-1) == t] = i
        fig, ax = plt.subplots(figsize=(7, 6.5), constrained_layout=True)
        im = ax.pcolormesh(a * 1e3, b * 1e3, np.ma.masked_invalid(idx), cmap=cmap, vmin=-0.5,
                           vmax=len(names) - 0.5, shading="auto")
        cb = fig.colorbar(im, ax=ax, ticks=range(len(names)))
        cb.ax.set_yticklabels(names)
        for ap in case.applicator:
            for _, centre in ap.positions():
                p0, p1 = ap.tip_segment(centre)
                ax.plot([p0[a_ax] * 1e3, p1[a_ax] * 1e3], [p0[b_ax] * 1e3, p1[b_ax] * 1e3], color="lime", lw=3)
                ax.plot(centre[a_ax] * 1e3, centre[b_ax] * 1e3, "o", color="lime", ms=5)
            if ap.entry_m is not None:
                e = ap.entry_m
                p1 = ap.tip_segment(ap.positions()[0][1])[1]
                ax.plot([e[a_ax] * 1e3, p1[a_ax] * 1e3], [e[b_ax] * 1e3, p1[b_ax] * 1e3], color="lime", lw=1, ls="--")
        ax.set_aspect("equal")
        ax.set_xlabel(f"{axis_names[0]} (mm)")
        ax.set_ylabel(f"{axis_names[1]} (mm)")
        ax.set_title(f"{case.name}: {plane} slice through the applicator tip (tip green)")
        path = folder / f"mesh_{plane}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
