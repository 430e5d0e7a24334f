"""Shared fixtures. Tests run serially (`pytest`) and the `mpi`-marked ones again under
`mpiexec -n 2 python -m pytest -m mpi` (see Makefile): fixtures here are MPI-safe."""

from __future__ import annotations

import gc
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

import solver.compat  # noqa: F401  (import order: dolfinx_solver before dolfinx)
from mpi4py import MPI

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "cases"


@pytest.fixture(scope="session")
def comm():
    return MPI.COMM_WORLD


@pytest.fixture
def shared_tmp(comm):
    """A temporary folder with the same path on every rank (tmp_path differs per rank)."""
    path = tempfile.mkdtemp(prefix="spine-litt-test-") if comm.rank == 0 else None
    path = Path(comm.bcast(path, root=0))
    yield path
    comm.barrier()
    if comm.rank == 0:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def _collect_and_sync(comm):
    """Free PETSc objects collectively and keep ranks in step between tests."""
    yield
    gc.collect()
    comm.barrier()


def venv_bin(name: str) -> str:
    """An executable next to the running interpreter (the venv's bioheat, mpiexec)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else shutil.which(name) or name


@pytest.fixture(scope="session")
def bioheat_exe():
    return venv_bin("bioheat")


@pytest.fixture(scope="session")
def cli_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture(scope="session")
def bioheat_cmd():
    """The command line that starts the CLI, as a list: the installed `bioheat` console
    script, or `python -m solver.cli` when the package is not pip-installed (use cli_env)."""
    exe = Path(sys.executable).parent / "bioheat"
    found = str(exe) if exe.exists() else shutil.which("bioheat")
    return [found] if found else [sys.executable, "-m", "solver.cli"]


@pytest.fixture(scope="session")
def mpiexec_exe():
    """The venv's mpiexec (next to the interpreter), else the one on PATH."""
    return venv_bin("mpiexec")


def run_cli_summary(cmd: list[str], env: dict, case: Path, out: Path, *extra: str, timeout: float = 900.0):
    """`bioheat run CASE --out OUT --quiet [extra]` in a subprocess; asserts exit 0 and returns
    (summary.json as a dict, the CompletedProcess)."""
    import json
    import subprocess

    r = subprocess.run([*cmd, "run", str(case), "--out", str(out), "--quiet", *extra],
                       capture_output=True, text=True, env=env, timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads((Path(out) / "summary.json").read_text()), r


def skip_unless_serial(why: str = "runs the CLI serially (and itself once under mpiexec -n 2)") -> None:
    """For module fixtures that start the CLI themselves: skipped in the mpiexec half of make test."""
    if MPI.COMM_WORLD.size > 1:
        pytest.skip(why)
