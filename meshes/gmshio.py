"""A quiet, self-contained gmsh session on one rank, and gmsh model -> DOLFINx mesh."""

from __future__ import annotations

import signal
import threading
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from solver import compat  # noqa: F401  - dolfinx_solver (PyPI wheel) before the DOLFINx bindings

import gmsh
import numpy as np
from mpi4py import MPI

import dolfinx
from dolfinx.io import gmsh as dgmsh

from . import cache as _cache
from .arrays import MeshArrays, arrays_from_model, mesh_from_arrays, partition_from_npz, partition_record
from .bundle import MeshBundle, empty_meshtags

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


def cached_gmsh_bundle(
    comm: MPI.Comm,
    *,
    label: str,
    cache_path: Callable[[Path], Path],
    expected_groups: set,
    build: Callable[[], None],
    regions: dict[str, int],
    surfaces: dict[str, list[int]],
    cache_dir: Path | None,
    use_cache: bool,
) -> MeshBundle:
    """Mesh a gmsh model on rank 0 - read from the cache when a valid entry exists (its
    physical groups must be ``expected_groups``), else ``build()`` it and cache it atomically
    - and distribute it. Collective on ``comm``.

    A cache hit reads the entry's arrays (:mod:`meshes.arrays`, no gmsh); an entry with a valid
    .msh but no valid arrays (an older entry, or damaged arrays) has them derived from the .msh
    and stored. Every mesh, built or cached, is distributed by :func:`meshes.arrays.mesh_from_arrays`
    from the same arrays, so a cached mesh is the mesh that was built."""
    session = GmshSession() if comm.rank == 0 else None
    arrays: MeshArrays | None = None  # rank 0 only

    def prepare() -> tuple[bool, str | None]:
        """On rank 0: leave the mesh's arrays in ``arrays``; return (from_cache, path)."""
        nonlocal arrays
        path = None
        if use_cache:
            path = cache_path(Path(cache_dir) if cache_dir is not None else _cache.default_cache_dir())
            if path.is_file():
                valid, why = _cache.validate_cached(path)
                if not valid and _cache.digest_file(path).exists():
                    warnings.warn(f"mesh cache entry {path.name}: {why}; rebuilding it", RuntimeWarning, stacklevel=3)
                if valid:
                    arrays = _cached_arrays(path, expected_groups, session)
                    if arrays is not None:
                        return True, str(path)
        if session.active:  # start again from an empty model of the same name
            gmsh.model.remove()
            gmsh.model.add(session.name)
        else:
            session.__enter__()
        build()
        arrays = arrays_from_model()
        if path is not None:
            try:
                _cache.write_model_atomically(path)
            except OSError as err:
                warnings.warn(f"mesh cache not written ({path}): {err}", RuntimeWarning, stacklevel=3)
                path = None
        if path is not None:
            try:
                _write_arrays(path, arrays)
            except OSError as err:  # the .msh is cached; its arrays are derived again next time
                warnings.warn(f"mesh cache arrays not written ({path}): {err}", RuntimeWarning, stacklevel=3)
        return False, (str(path) if path is not None else None)

    try:
        from_cache, path = on_root(comm, prepare)
    finally:
        if session is not None:
            session.__exit__(None, None, None)  # no-op unless prepare() opened it
    partition = _stored_partition(Path(path), comm.size, len(arrays.cells)) if comm.rank == 0 and from_cache else None
    mesh, cell_tags, facet_tags, recorded = mesh_from_arrays(comm, arrays, partition)
    del arrays
    if recorded is not None and path is not None:  # rank 0
        try:
            digest = _cache.digest_file(Path(path)).read_text().strip()
            _cache.write_arrays_atomically(_cache.partition_file(Path(path), comm.size),
                                           partition_record(recorded, comm.size, digest))
        except OSError:  # e.g. a read-only shared cache: only costs the partitioning next time
            pass

    if from_cache:
        source = f"{label}, cached at {path}"
    elif path is not None:
        source = f"{label}, built and cached at {path}"
    else:
        source = f"{label}, built (not cached)"
    return MeshBundle(
        mesh=mesh,
        cell_tags=cell_tags,
        facet_tags=facet_tags,
        regions=regions,
        surfaces=surfaces,
        source=source,
        cache_path=Path(path) if path is not None else None,
        from_cache=from_cache,
    )


def _stored_partition(msh: Path, ranks: int, num_cells: int) -> np.ndarray | None:
    """Rank 0: the cell partition recorded for ``ranks`` ranks beside the cached ``msh``, if it
    is valid (hash, this mesh, this DOLFINx); a damaged one is reported (RuntimeWarning), one of
    another mesh or DOLFINx version is not; either is recorded again by the caller."""
    if ranks == 1:
        return None
    part = _cache.partition_file(msh, ranks)
    if not part.is_file():
        return None
    valid, why = _cache.validate_cached(part)
    if valid:
        try:
            with np.load(part, allow_pickle=False) as data:
                return partition_from_npz(data, _cache.digest_file(msh).read_text().strip(), ranks, num_cells)
        except ValueError:  # recorded for another mesh or DOLFINx version: recorded again, quietly
            return None
        except (OSError, KeyError) as err:
            why = f"unreadable ({type(err).__name__}: {err})"
    if _cache.digest_file(part).exists():
        warnings.warn(f"mesh cache entry {part.name}: {why}; partitioning again", RuntimeWarning, stacklevel=3)
    return None


def _write_arrays(msh: Path, arrays: MeshArrays) -> None:
    """Store ``arrays`` beside the cached ``msh`` (whose sidecar digest they record)."""
    digest = _cache.digest_file(msh).read_text().strip()
    _cache.write_arrays_atomically(_cache.arrays_file(msh), arrays.to_npz_dict(digest))


def _cached_arrays(msh: Path, expected_groups: set, session: GmshSession) -> MeshArrays | None:
    """Rank 0: the arrays of the valid cached ``msh`` - read from its arrays file when that is
    valid (content hash, format, derived from this .msh, physical groups ``expected_groups``),
    else derived from the .msh with gmsh (in ``session``, left open) and stored. None when the
    .msh is unreadable or has other physical groups (the caller rebuilds the entry)."""
    digest = _cache.digest_file(msh).read_text().strip()
    npz = _cache.arrays_file(msh)
    if npz.is_file():
        valid, why = _cache.validate_cached(npz)
        if valid:
            try:
                with np.load(npz, allow_pickle=False) as data:
                    arrays = MeshArrays.from_npz(data, digest)
                if set(arrays.groups) == expected_groups:
                    return arrays
                why = "its physical groups are not those of the geometry"
            except ValueError as err:  # other format, other .msh, inconsistent arrays
                why = str(err)
            except (OSError, KeyError) as err:
                why = f"unreadable ({type(err).__name__}: {err})"
        if _cache.digest_file(npz).exists():
            warnings.warn(f"mesh cache entry {npz.name}: {why}; deriving it again from {msh.name}",
                          RuntimeWarning, stacklevel=4)
    session.__enter__()
    try:
        gmsh.merge(str(msh))
        if set(physical_groups()) != expected_groups:
            return None
        arrays = arrays_from_model()
    except Exception:  # noqa: BLE001 - unreadable cache entry: rebuild it
        return None
    try:
        _write_arrays(msh, arrays)
    except OSError as err:
        warnings.warn(f"mesh cache arrays not written ({npz}): {err}", RuntimeWarning, stacklevel=4)
    return arrays
