"""The mesh cache validates what it returns (issue 10): a cached mesh whose content no longer
matches the hash stored beside it is rebuilt with a warning; gmsh sessions give Python its
SIGINT/SIGTERM handlers back."""

from __future__ import annotations

import signal
import warnings

import pytest
from mpi4py import MPI

from meshes import build_mesh
from meshes.cache import digest_file, file_sha256, validate_cached
from solver.case_loader import parse_case

COMM = MPI.COMM_WORLD


def _geometry(h: float):
    return parse_case(
        {"name": "c", "geometry": {"kind": "sphere", "radius_m": 0.02, "mesh_size_m": h}, "regions": {"body": "muscle"}}
    ).geometry


@pytest.mark.mpi
def test_swapped_cache_entry_is_rebuilt(shared_tmp):
    cache = shared_tmp / "cache"
    fine, coarse = _geometry(0.005), _geometry(0.01)
    a = build_mesh(fine, COMM, cache_dir=cache)
    b = build_mesh(coarse, COMM, cache_dir=cache)
    n_fine = a.num_cells_global()
    assert n_fine != b.num_cells_global()
    assert build_mesh(fine, COMM, cache_dir=cache).from_cache
    COMM.barrier()
    if COMM.rank == 0:
        assert validate_cached(a.cache_path) == (True, "")
        assert digest_file(a.cache_path).read_text().strip() == file_sha256(a.cache_path)
        # swap the cached fine mesh for the coarse one: same regions, same case hash, other mesh
        a.cache_path.write_bytes(b.cache_path.read_bytes())
        assert not validate_cached(a.cache_path)[0]
    COMM.barrier()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = build_mesh(fine, COMM, cache_dir=cache)
    assert not again.from_cache and again.num_cells_global() == n_fine
    if COMM.rank == 0:
        assert any("does not match the hash" in str(w.message) for w in caught)
        assert validate_cached(a.cache_path)[0]  # rebuilt and re-hashed


@pytest.mark.mpi
def test_entry_without_hash_is_rebuilt_quietly(shared_tmp):
    cache = shared_tmp / "cache2"
    g = _geometry(0.008)
    first = build_mesh(g, COMM, cache_dir=cache)
    COMM.barrier()
    if COMM.rank == 0:
        digest_file(first.cache_path).unlink()  # an entry of an older version
    COMM.barrier()
    assert not build_mesh(g, COMM, cache_dir=cache).from_cache
    assert build_mesh(g, COMM, cache_dir=cache).from_cache


@pytest.mark.mpi
def test_gmsh_gives_back_the_signal_handlers(shared_tmp):
    # earlier tests may have run gmsh.initialize() themselves (gmsh's handlers left at the C
    # level): start from Python's own handlers, installed again
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    build_mesh(_geometry(0.008), COMM, use_cache=False)
    assert {s: signal.getsignal(s) for s in before} == before
    # and the handlers really are installed at the C level again (gmsh replaces them behind
    # Python's back): a SIGTERM reaches a Python handler instead of killing the process
    from solver.errors import Interrupted
    from solver.outdir import interrupt_handlers

    import os

    build_mesh(_geometry(0.008), COMM, use_cache=False)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C: Python's own handler again, not gmsh's
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10000):
            pass
    with pytest.raises(Interrupted):
        with interrupt_handlers():
            build_mesh(_geometry(0.008), COMM, use_cache=False)
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10000):
                pass
