"""A quiet, self-contained gmsh session on one rank, and gmsh model -> DOLFINx mesh."""

from __future__ import annotations

import signal
import threading
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from solver import compat  # noqa: F401  - dolfinx_solver (PyPI wheel) before the DOLFINx bindings

import gmsh
import numpy as np
from mpi4py import MPI

import dolfinx
from dolfinx.io import gmsh as dgmsh

from .bundle import empty_meshtags

T = TypeVar("T")

# Options this package sets; restored afterwards when gmsh was already initialised by the caller.
_TOUCHED_OPTIONS = (
    "General.Terminal",
    "General.NumThreads",
    "Mesh.MeshSizeMax",
    "Mesh.MeshSizeMin",
    "Mesh.MeshSizeFromPoints",
    "Mesh.MeshSizeFromCurvature",
    "Mesh.MeshSizeExtendFromBoundary",
    "Mesh.Algorithm",
    "Mesh.Algorithm3D",
    "Mesh.ElementOrder",
    "Mesh.Optimize",
    "Mesh.MshFileVersion",
    "Mesh.Binary",
    "Mesh.SaveAll",
)


_RESTORED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def restore_signals(saved: dict) -> None:
    """Re-install Python-level signal handlers (gmsh replaces them behind Python's back, so
    ``signal.getsignal`` would still report the old ones)."""
    for sig, handler in saved.items():
        if handler is not None:
            signal.signal(sig, handler)


class GmshSession:
    """Context manager: a fresh, quiet gmsh model on the calling rank.

    If gmsh is not initialised, it is initialised (without the user's gmshrc, so results do
    not depend on it) and finalised on exit; the SIGINT handler gmsh installs is replaced by
    the one Python had before. If the caller already has gmsh running, a new
    model is added and removed on exit, and the options touched here are restored.
    """

    active = False

    def __enter__(self) -> "GmshSession":
        self._owns = not gmsh.isInitialized()
        self._prev_model: str | None = None
        self._saved: dict[str, float] = {}
        self._signals: dict = {}
        if self._owns:
            if threading.current_thread() is threading.main_thread():
                # gmsh.initialize(interruptible=True) installs its own SIGINT (and resets the
                # SIGTERM) handler, and gmsh.finalize() does not put Python's back: saved here,
                # restored in __exit__ (Ctrl-C and SLURM's TERM must reach Python's handlers)
                self._signals = {s: signal.getsignal(s) for s in _RESTORED_SIGNALS}
            gmsh.initialize(
                readConfigFiles=False,
                interruptible=threading.current_thread() is threading.main_thread(),
            )
        else:
            try:
                self._prev_model = gmsh.model.getCurrent()
            except Exception:  # pragma: no cover - no current model
                self._prev_model = None
            self._saved = {k: gmsh.option.getNumber(k) for k in _TOUCHED_OPTIONS}
        gmsh.option.setNumber("General.Terminal", 0)
        self.name = f"spine-litt-{uuid.uuid4().hex[:8]}"
        gmsh.model.add(self.name)
        self.active = True
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.active:
            return
        self.active = False
        if self._owns:
            try:
                gmsh.finalize()
            finally:
                restore_signals(self._signals)
            return
        try:
            gmsh.model.setCurrent(self.name)
            gmsh.model.remove()
        finally:
            for k, v in self._saved.items():
                gmsh.option.setNumber(k, v)
            if self._prev_model:
                try:
                    gmsh.model.setCurrent(self._prev_model)
                except Exception:  # pragma: no cover
                    pass


def on_root(comm: MPI.Comm, fn: Callable[[], T], root: int = 0) -> T:
    """Run ``fn`` on ``root`` only and broadcast its result; an exception raised there is
    re-raised on every rank (so no rank is left waiting in a collective call)."""
    payload: Any = None
    original: Exception | None = None
    if comm.rank == root:
        try:
            payload = ("ok", fn())
        except ValueError as err:
            original, payload = err, ("ValueError", str(err))
        except Exception as err:  # noqa: BLE001 - forwarded to all ranks
            original, payload = err, ("RuntimeError", f"{type(err).__name__}: {err}")
    status, value = comm.bcast(payload, root=root)
    if status == "ValueError":
        if original is not None:
            raise original
        raise ValueError(value)
    if status == "RuntimeError":
        raise RuntimeError(value) from original
    return value


def mesh_from_model(comm: MPI.Comm, root: int = 0, shared_facets: bool = False):
    """Collective: DOLFINx mesh and tags from the current gmsh model (present on ``root`` only).

    Returns ``(mesh, cell_tags, facet_tags)``; ``facet_tags`` is empty (not None) if the model has
    no physical surfaces. ``shared_facets``: ghost the cells across process boundaries so
    that interior-facet integrals (dS) see both cells of every facet.
    """
    partitioner = None
    if shared_facets:
        partitioner = dolfinx.mesh.create_cell_partitioner(dolfinx.mesh.GhostMode.shared_facet, 2)
    data = dgmsh.model_to_mesh(
        gmsh.model if comm.rank == root else None, comm, rank=root, gdim=3, partitioner=partitioner
    )
    mesh = data.mesh
    tdim = mesh.topology.dim
    cell_tags = data.cell_tags if data.cell_tags is not None else empty_meshtags(mesh, tdim)
    facet_tags = data.facet_tags if data.facet_tags is not None else empty_meshtags(mesh, tdim - 1)
    cell_tags.name = "regions"
    facet_tags.name = "surfaces"
    mesh.topology.create_connectivity(tdim - 1, tdim)
    return mesh, cell_tags, facet_tags


def physical_groups() -> list[tuple[int, int, str]]:
    """(dim, tag, name) of every physical group of the current gmsh model."""
    return [(d, t, gmsh.model.getPhysicalName(d, t)) for d, t in gmsh.model.getPhysicalGroups()]


def scale_geometry(mesh: dolfinx.mesh.Mesh, scale: float) -> None:
    if scale != 1.0:
        mesh.geometry.x[:] *= np.asarray(scale, dtype=mesh.geometry.x.dtype)
