"""Tetrahedron quality and cell size: the one place they are computed (``bioheat mesh``
statistics, :func:`meshes.spine.spine_mesh_statistics`, the tests).

The array functions take vertex coordinates ``x`` of shape (cells, 4, 3) in metres and are pure
numpy; :func:`cell_quality` and :func:`min_cell_size` read a DOLFINx mesh.
"""

from __future__ import annotations

import math

import numpy as np

from solver import compat  # dolfinx_solver (PyPI wheel) before the DOLFINx bindings
from mpi4py import MPI


def signed_volumes(x: np.ndarray) -> np.ndarray:
    """Signed volume (m^3) of each tetrahedron, (e1 x e2 . e3) / 6 with e_i = x_i - x_0;
    shape (cells,)."""
    a, b, c = x[:, 1] - x[:, 0], x[:, 2] - x[:, 0], x[:, 3] - x[:, 0]
    return np.einsum("ij,ij->i", a, np.cross(b, c)) / 6.0


def radius_ratio(x: np.ndarray) -> np.ndarray:
    """3 r_in / R_circ of each tetrahedron: 1 for the regular one, 0 for a degenerate one
    (zero volume); shape (cells,). r_in = 3 V / (sum of face areas); R_circ =
    | |a|^2 (b x c) + |b|^2 (c x a) + |c|^2 (a x b) | / (12 V) with a, b, c the edges from
    vertex 0 (the circumcentre formula of a tetrahedron)."""
    vol = np.abs(signed_volumes(x))
    faces = [(1, 2, 3), (0, 2, 3), (0, 1, 3), (0, 1, 2)]
    area = sum(0.5 * np.linalg.norm(np.cross(x[:, j] - x[:, i], x[:, k] - x[:, i]), axis=1) for i, j, k in faces)
    a, b, c = x[:, 1] - x[:, 0], x[:, 2] - x[:, 0], x[:, 3] - x[:, 0]
    num = (
        (a * a).sum(1)[:, None] * np.cross(b, c)
        + (b * b).sum(1)[:, None] * np.cross(c, a)
        + (c * c).sum(1)[:, None] * np.cross(a, b)
    )
    with np.errstate(all="ignore"):
        r_in = 3.0 * vol / area
        r_circ = np.linalg.norm(num, axis=1) / (12.0 * vol)
        q = 3.0 * r_in / r_circ
    return np.where((vol > 0) & np.isfinite(q), q, 0.0)


def owned_cell_vertices(mesh) -> np.ndarray:
    """Vertex coordinates (m) of the locally owned cells of a linear tetrahedral DOLFINx mesh;
    shape (owned cells, 4, 3)."""
    n = mesh.topology.index_map(mesh.topology.dim).size_local
    dofs = compat.coordinate_map(mesh)[1][:n, :4]
    return mesh.geometry.x[dofs]


def cell_quality(bundle) -> tuple[np.ndarray, np.ndarray]:
    """(radius ratio 3 r_in / R_circ, signed Jacobian determinant = 6 x signed volume) of
    the locally owned cells of ``bundle.mesh`` (1 for a regular tetrahedron, 0 for a
    degenerate one). Rank-local."""
    x = owned_cell_vertices(bundle.mesh)
    return radius_ratio(x), 6.0 * signed_volumes(x)


def cell_sizes(mesh) -> np.ndarray:
    """DOLFINx cell size h (longest edge, m) of the locally owned cells."""
    tdim = mesh.topology.dim
    n = mesh.topology.index_map(tdim).size_local
    return mesh.h(tdim, np.arange(n, dtype=np.int32)) if n else np.zeros(0)


def min_cell_size(mesh) -> float:
    """Smallest cell size h (m) over every rank (inf for an empty mesh). Collective."""
    h = cell_sizes(mesh)
    return mesh.comm.allreduce(float(h.min()) if len(h) else math.inf, op=MPI.MIN)
