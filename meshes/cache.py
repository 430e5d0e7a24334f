"""On-disk cache of gmsh-built meshes, keyed by the geometry.

An entry is the gmsh model as a .msh 4.1 file (``<kind>-<key>.msh``), and beside it the same
mesh as arrays ready for DOLFINx (``<kind>-<key>.arrays.npz``, :mod:`meshes.arrays`: read
without gmsh) and, for each number of ranks N > 1 it was loaded on, the cell partition the
graph partitioner chose (``<kind>-<key>.partition-<N>.npz``). Each file has its content hash in
a ``.sha256`` sidecar; the arrays and partitions also record the hash of the .msh they belong to."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
from pathlib import Path

import gmsh

from solver.inputs import sha256_file

from .cavities import cavities_json

# Bump when the mesh builder changes in a way that changes the mesh for the same geometry.
# (The key also contains a hash of primitives.py, so an edited builder never reuses meshes
# cached by an older one; the explicit version is for changes made elsewhere.)
MESH_BUILDER_VERSION = "3"  # 3: spine anatomy from sourced per-level table, epidural_anterior region

CACHE_ENV = "SPINE_LITT_MESH_CACHE"


def default_cache_dir() -> Path:
    """``$SPINE_LITT_MESH_CACHE``, else ``$XDG_CACHE_HOME/spine-litt/meshes``, else
    ``~/.cache/spine-litt/meshes``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "spine-litt" / "meshes"


@functools.cache
def _builder_digest() -> str:
    here = Path(__file__).parent
    h = hashlib.sha256()
    for name in ("primitives.py", "gmsh_model.py", "cavities.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


def cache_key(geometry, cavities=()) -> str:
    """sha256 of the builder version (constant and source digest), the gmsh version, the
    geometry's JSON and (if any) the applicator cavities' JSON."""
    parts = [
        f"meshes-builder={MESH_BUILDER_VERSION}/{_builder_digest()}",
        f"gmsh={gmsh.__version__}",
        geometry.model_dump_json(),
    ]
    if cavities:
        parts.append("cavities=" + cavities_json(tuple(cavities)))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def cache_file(cache_dir: Path, geometry, cavities=()) -> Path:
    return Path(cache_dir) / f"{geometry.kind}-{cache_key(geometry, cavities)}.msh"


def arrays_file(path: Path) -> Path:
    """The arrays beside the cached mesh ``<stem>.msh``: ``<stem>.arrays.npz``."""
    path = Path(path)
    return path.with_name(path.stem + ".arrays.npz")


def partition_file(path: Path, ranks: int) -> Path:
    """The recorded cell partition on ``ranks`` ranks beside the cached mesh ``<stem>.msh``:
    ``<stem>.partition-<ranks>.npz``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.partition-{int(ranks)}.npz")


def write_arrays_atomically(path: Path, data: dict) -> None:
    """``np.savez`` of ``data`` to ``path`` (uncompressed: read faster than it is hashed),
    published atomically like :func:`write_model_atomically`, with its ``.sha256`` sidecar."""
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem[:16]}-", suffix=".npz")
    with _published(tmp, path):
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **data)
        digest = file_sha256(Path(tmp))
    write_digest(path, digest)


def write_model_atomically(path: Path) -> None:
    """Write the current gmsh model to ``path`` (msh 4.1, binary, physical groups only).

    The file is written under a temporary name in the same directory and moved into place
    with ``os.replace``, so a concurrent reader sees either no file or a complete one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem[:16]}-", suffix=".msh")
    os.close(fd)
    with _published(tmp, path):
        gmsh.option.setNumber("Mesh.MshFileVersion", 4.1)
        gmsh.option.setNumber("Mesh.Binary", 1)
        gmsh.option.setNumber("Mesh.SaveAll", 0)
        gmsh.write(tmp)
        digest = file_sha256(Path(tmp))
    write_digest(path, digest)


@contextlib.contextmanager
def _published(tmp: str, final: Path):
    """Write ``tmp`` in the block; then make it world-readable and move it to ``final``
    (``os.replace``). Any exception (or signal) removes ``tmp`` and propagates."""
    try:
        yield
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def digest_file(path: Path) -> Path:
    """The sidecar ``<file>.sha256`` (``<mesh>.msh.sha256``, ``<mesh>.arrays.npz.sha256``)
    holding a cached file's content hash."""
    return Path(str(path) + ".sha256")


def file_sha256(path: Path) -> str:
    """Hex sha256 of the file's bytes (solver.inputs.sha256_file)."""
    return sha256_file(path)


def write_digest(path: Path, digest: str) -> None:
    """Write the sidecar atomically (temporary name, then os.replace)."""
    side = digest_file(path)
    fd, tmp = tempfile.mkstemp(dir=side.parent, prefix=f".{path.stem[:16]}-", suffix=".sha256")
    with _published(tmp, side), os.fdopen(fd, "w") as fh:
        fh.write(digest + "\n")


def validate_cached(path: Path) -> tuple[bool, str]:
    """(valid, reason): a cached mesh is used only if its content hashes to the digest stored
    beside it when it was written. A missing sidecar (entry of an older version) or a
    mismatch (file swapped or damaged) means: rebuild."""
    side = digest_file(path)
    try:
        expected = side.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return False, "no content hash stored beside it"
    try:
        actual = file_sha256(path)
    except OSError as err:
        return False, f"unreadable ({err.strerror})"
    if actual != expected:
        return False, "its content does not match the hash stored when it was written (changed or damaged)"
    return True, ""
