"""No MPI hang (issue 10): a failure met by one rank ends every rank within seconds with that
rank's message and a non-zero exit; refused outputs exit 2 on 2 ranks.

Each test starts `mpiexec -n 2 bioheat ...` itself (with a timeout) and injects failures with
SPINE_LITT_FAULT=POINT@RANK (solver/errors.py). Serial module: it is not mpi-marked because it
launches its own MPI jobs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from mpi4py import MPI

if MPI.COMM_WORLD.size > 1:  # pragma: no cover
    pytest.skip("starts mpiexec itself", allow_module_level=True)

DATA = Path(__file__).resolve().parents[1] / "data"
SMALL = DATA / "small_sphere.toml"
DEADLINE_S = 60.0  # generous on a loaded 2-core machine; a hang is caught by the timeout
TIMEOUT_S = 180.0


def _mpirun(mpiexec_exe, bioheat_cmd, cli_env, *args, fault=None, cwd=None):
    env = dict(cli_env)
    env.pop("SPINE_LITT_FAULT", None)
    if fault:
        env["SPINE_LITT_FAULT"] = fault
    t0 = time.perf_counter()
    try:
        r = subprocess.run(
            [mpiexec_exe, "-n", "2", *bioheat_cmd, *map(str, args)],
            env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:  # pragma: no cover - the bug this module guards against
        pytest.fail(f"mpiexec -n 2 bioheat {' '.join(map(str, args))} hung (fault {fault})")
    return r, time.perf_counter() - t0


@pytest.fixture
def case_dir(tmp_path):
    shutil.copy(SMALL, tmp_path / "case.toml")
    return tmp_path


@pytest.mark.parametrize(
    "fault",
    ["load_case@0", "load_case@1", "mesh@0", "mesh@1", "time_loop@0", "time_loop@1", "write@0", "commit@0"],
)
def test_failure_on_one_rank_ends_both(mpiexec_exe, bioheat_cmd, cli_env, case_dir, fault):
    out = case_dir / "out"
    r, wall = _mpirun(mpiexec_exe, bioheat_cmd, cli_env, "run", "case.toml", "--out", out, "--quiet",
                      "--no-report", fault=fault, cwd=case_dir)
    point, rank = fault.split("@")
    assert r.returncode != 0, r.stdout + r.stderr
    assert f"injected fault at '{point}' on rank {rank}" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert wall < DEADLINE_S
    assert not out.exists()
    assert not [p for p in case_dir.iterdir() if p.name.startswith(".out.")], "partial folder left"


@pytest.mark.parametrize("point", ["startup", "time_loop"])
def test_uncaught_exception_on_rank_1_ends_both_ranks(mpiexec_exe, bioheat_cmd, cli_env, case_dir, point):
    """An exception no handler expects (a bug), raised on rank 1 only: 'startup' escapes
    main() (the sys.excepthook net), 'time_loop' reaches main's last handler. Both end every
    rank with MPI_Abort and rank 1's message; no hang, no result folder."""
    out = case_dir / "out"
    r, wall = _mpirun(mpiexec_exe, bioheat_cmd, cli_env, "run", "case.toml", "--out", out, "--quiet",
                      "--no-report", fault=f"{point}@1:uncaught", cwd=case_dir)
    assert r.returncode != 0, r.stdout + r.stderr
    assert f"injected uncaught exception at '{point}' on rank 1" in r.stderr, r.stderr
    assert "internal error InjectedBug (rank 1 of 2)" in r.stderr, r.stderr
    assert wall < DEADLINE_S
    assert not out.exists()
    assert not [p for p in case_dir.iterdir() if p.name.startswith(".out.")], "partial folder left"


def test_refused_output_folder_exits_2_on_two_ranks(mpiexec_exe, bioheat_cmd, cli_env, case_dir):
    out = case_dir / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    (case_dir / "file.txt").write_text("x")
    for args in (["--out", out], ["--out", out, "--overwrite"], ["--out", case_dir / "file.txt"],
                 ["--out", case_dir / "file.txt" / "sub"], ["--out", ".", "--overwrite"],
                 ["--out", "/proc/bioheat-test-out"]):  # unwritable even for root
        r, wall = _mpirun(mpiexec_exe, bioheat_cmd, cli_env, "run", "case.toml", *args, "--quiet", cwd=case_dir)
        assert r.returncode == 2, (args, r.stdout + r.stderr)
        assert r.stderr.count("error: --out") == 1, r.stderr  # one message, from rank 0
        assert wall < DEADLINE_S
    assert (out / "mine.txt").read_text() == "keep" and (case_dir / "case.toml").is_file()


def test_mesh_preview_into_a_bad_folder_exits_2(mpiexec_exe, bioheat_cmd, cli_env, case_dir):
    (case_dir / "file.txt").write_text("x")
    r, wall = _mpirun(mpiexec_exe, bioheat_cmd, cli_env, "mesh", "case.toml", "--preview", "--out",
                      case_dir / "file.txt" / "preview", cwd=case_dir)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "cannot write the preview" in r.stderr and wall < DEADLINE_S
    r, wall = _mpirun(mpiexec_exe, bioheat_cmd, cli_env, "mesh", "case.toml", "--preview", "--out",
                      "/proc/bioheat-test-preview", cwd=case_dir)
    assert r.returncode == 2 and "cannot write the preview" in r.stderr and wall < DEADLINE_S


def test_report_on_a_folder_that_is_not_a_result(mpiexec_exe, bioheat_cmd, cli_env, case_dir):
    r, _ = _mpirun(mpiexec_exe, bioheat_cmd, cli_env, "report", case_dir, cwd=case_dir)
    assert r.returncode == 2 and "not a result folder" in r.stderr and "Traceback" not in r.stderr


def test_ablation_zone_inside_one_partition(mpiexec_exe, bioheat_cmd, cli_env, tmp_path):
    """The demo's small ablation zone (0.05 mL) lies in one rank's part of the mesh: every
    collective of the metrics and the report must still be entered by both ranks (a JIT
    compiled only where a rank had ablated cells hung here). Same numbers as serially."""
    import json

    root = Path(__file__).resolve().parents[2]
    case = tmp_path / "demo.toml"
    shutil.copy(root / "cases" / "demo_tumour_heating.toml", case)
    r, wall = _mpirun(mpiexec_exe, bioheat_cmd, cli_env, "run", case, "--out", tmp_path / "np2", "--quiet",
                      "--set", "output.fields=false", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    serial = subprocess.run([*bioheat_cmd, "run", str(case), "--out", str(tmp_path / "np1"), "--quiet",
                             "--set", "output.fields=false"], env=cli_env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=TIMEOUT_S)
    assert serial.returncode == 0, serial.stderr
    a = json.loads((tmp_path / "np1" / "summary.json").read_text())["damage"]
    b = json.loads((tmp_path / "np2" / "summary.json").read_text())["damage"]
    assert a["ablation_volume_m3"] > 0.0
    assert b["ablation_volume_m3"] == pytest.approx(a["ablation_volume_m3"], rel=1e-6)
    assert (tmp_path / "np2" / "maps.png").is_file()
