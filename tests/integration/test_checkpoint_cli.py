"""`bioheat run` killed with a real SIGTERM (as SLURM does before its wall-time kill) and
continued with `--resume`: serially (bitwise the uninterrupted run), and under `mpiexec -n 2`
(mpiexec forwards the signal to the ranks) continued serially (2 -> 1). The case is the one of
test_checkpoint.py (coagulation, pause/resume safety point, target point), 200 steps.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from mpi4py import MPI

from tests.integration.test_checkpoint import case_data

if MPI.COMM_WORLD.size > 1:  # pragma: no cover - these tests launch their own processes
    pytest.skip("CLI tests run serially", allow_module_level=True)

TIMEOUT = 300


def write_case(folder: Path) -> Path:
    data = case_data()
    data["time"]["end_time_s"] = 400.0
    case = folder / "case.toml"
    case.write_text(tomli_w.dumps(data))
    return case


def start(cmd: list[str], env, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def term_after_first_checkpoint(proc: subprocess.Popen, out: Path) -> tuple[int, str]:
    """SIGTERM once the first periodic checkpoint exists; (exit code, stderr)."""
    folder = out.parent / f"{out.name}.checkpoint"
    deadline = time.monotonic() + TIMEOUT
    while not any(folder.glob("step-*")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.terminate()
    _, err = proc.communicate(timeout=TIMEOUT)
    return proc.returncode, err


def probes(out: Path) -> np.ndarray:
    return np.loadtxt(out / "probes.csv", delimiter=",", skiprows=1)


def test_sigterm_then_resume_serial_and_two_to_one(tmp_path, bioheat_cmd, cli_env, mpiexec_exe):
    case = write_case(tmp_path)
    run = [*bioheat_cmd, "run", str(case), "--quiet", "--no-report", "--out"]

    def finish(out: Path, *extra: str) -> None:
        r = subprocess.run([*run, str(out), *extra], env=cli_env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=TIMEOUT)
        assert r.returncode == 0, r.stdout + r.stderr

    finish(tmp_path / "full")

    # serial: SIGTERM, exit 75 with the message, nothing left but the checkpoint; then resume
    out = tmp_path / "cut"
    code, err = term_after_first_checkpoint(start([*run, str(out)], cli_env, tmp_path), out)
    assert code == 75, err
    assert "SIGTERM received: stopped after step" in err and "--resume" in err, err
    assert not out.exists() and not list(tmp_path.glob(".cut.partial-*"))
    # a fresh run would destroy the checkpoint: refused (exit 2)
    r = subprocess.run([*run, str(out)], env=cli_env, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 2 and "holds a checkpoint of an interrupted run" in r.stderr, r.stderr
    finish(out, "--resume")
    assert (out / "probes.csv").read_text() == (tmp_path / "full" / "probes.csv").read_text()
    assert (out / "power.csv").read_text() == (tmp_path / "full" / "power.csv").read_text()
    assert not (tmp_path / "cut.checkpoint").exists()

    # 2 ranks: SIGTERM to mpiexec, which forwards it; resumed serially
    mpi = [mpiexec_exe, "-n", "2", *run]
    out = tmp_path / "cut2"
    code, err = term_after_first_checkpoint(start([*mpi, str(out)], cli_env, tmp_path), out)
    assert code == 75, err
    finish(out, "--resume")
    r = subprocess.run([*mpi, str(tmp_path / "full2")], env=cli_env, cwd=tmp_path, capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    serial, two, resumed = probes(tmp_path / "full"), probes(tmp_path / "full2"), probes(out)
    # as close to the serial run as the two uninterrupted rank counts are to each other
    # (x4), plus the CSV's 12 significant digits
    tol = 4 * np.abs(serial - two).max(axis=0) + 2e-12 * np.abs(serial).max(axis=0)
    assert np.all(np.abs(resumed - serial).max(axis=0) <= tol), (np.abs(resumed - serial).max(axis=0), tol)
    assert tol[1] < 1e-6  # temperature column: the check has teeth
