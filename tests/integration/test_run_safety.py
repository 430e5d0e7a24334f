"""`bioheat run` never destroys, leaves nothing behind when killed, and records what reproduces
it (issue 10). End to end in subprocesses; serial module (it starts mpiexec itself)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import tomli_w
from mpi4py import MPI

from solver import outdir

if MPI.COMM_WORLD.size > 1:  # pragma: no cover
    pytest.skip("starts its own processes", allow_module_level=True)

DATA = Path(__file__).resolve().parents[1] / "data"
SMALL = DATA / "small_sphere.toml"
TIMEOUT = 300


def run(cmd, env, *args, cwd=None, timeout=TIMEOUT):
    return subprocess.run([*cmd, *map(str, args)], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def proj(tmp_path):
    shutil.copy(SMALL, tmp_path / "case.toml")
    (tmp_path / "notes.txt").write_text("my notes\n")
    return tmp_path


def _hidden(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}."))


def test_overwrite_never_deletes_the_project(bioheat_cmd, cli_env, proj):
    before = sorted(p.name for p in proj.iterdir())
    for out in (".", str(proj), str(proj.parent)):
        r = run(bioheat_cmd, cli_env, "run", "case.toml", "--out", out, "--overwrite", "--quiet", cwd=proj)
        assert r.returncode == 2, r.stdout + r.stderr
        assert "refused" in r.stderr and "Traceback" not in r.stderr
    home = proj.parent / "home"
    (home / "work").mkdir(parents=True)
    shutil.copy(SMALL, home / "work" / "case.toml")
    (home / "thesis.tex").write_text("years of work\n")
    env = dict(cli_env, HOME=str(home))
    r = run(bioheat_cmd, env, "run", proj / "case.toml", "--out", home, "--overwrite", "--quiet", cwd=proj.parent)
    assert r.returncode == 2 and "home folder" in r.stderr, r.stderr
    assert (home / "thesis.tex").is_file()
    assert sorted(p.name for p in proj.iterdir()) == before
    assert (proj / "notes.txt").read_text() == "my notes\n"


def _long_case(proj: Path, fields: bool = False) -> Path:
    data = tomllib.loads(SMALL.read_text())
    data["time"].update(dt_s=0.01, end_time_s=400.0)
    data["output"] = {"fields": fields}
    (proj / "long.toml").write_text(tomli_w.dumps(data))
    return proj / "long.toml"


@pytest.mark.parametrize("sig, ranks", [(signal.SIGTERM, 1), (signal.SIGINT, 1), (signal.SIGTERM, 2)])
def test_no_partial_folder_survives_term_or_int(bioheat_cmd, mpiexec_exe, cli_env, proj, sig, ranks):
    _long_case(proj)
    cmd = [*bioheat_cmd, "run", "long.toml", "--out", "out", "--quiet", "--no-report", "--max-output-gb", "100"]
    if ranks > 1:
        cmd = [mpiexec_exe, "-n", str(ranks), *cmd]
    p = subprocess.Popen(cmd, env=cli_env, cwd=proj, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not _hidden(proj, "out") and time.time() < deadline and p.poll() is None:
            time.sleep(0.05)
        assert _hidden(proj, "out"), "the run never created its partial folder"
        time.sleep(0.5)  # inside the time loop
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:  # pragma: no cover
            p.kill()
    assert p.returncode != 0
    assert "interrupted" in err and signal.Signals(sig).name in err, err
    assert _hidden(proj, "out") == [] and not (proj / "out").exists()


def test_stale_partial_of_a_killed_run_is_removed_next_time(bioheat_cmd, cli_env, proj):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = proj / f".out.partial-{outdir._HOST}-{dead.pid}-abcdef"
    (stale / "fields").mkdir(parents=True)
    (stale / "fields" / "big.bin").write_bytes(b"\0" * 100_000)
    r = run(bioheat_cmd, cli_env, "run", "case.toml", "--out", "out", "--quiet", "--no-report", cwd=proj)
    assert r.returncode == 0, r.stderr
    assert "removed" in r.stderr and stale.name in r.stderr
    assert _hidden(proj, "out") == []


@pytest.fixture(scope="module")
def result(tmp_path_factory, bioheat_cmd, cli_env):
    d = tmp_path_factory.mktemp("prov")
    shutil.copy(SMALL, d / "case.toml")
    r = run(bioheat_cmd, cli_env, "run", "case.toml", "--out", "res", "--quiet", "--no-report", cwd=d)
    assert r.returncode == 0, r.stderr
    return d / "res"


def test_provenance_records_what_reproduces_the_run(result):
    prov = json.loads((result / "provenance.json").read_text())
    summary = json.loads((result / "summary.json").read_text())
    assert prov["case_hash"] == summary["case_hash"] and len(prov["case_hash"]) == 64
    assert (result / prov["resolved_case"]).is_file()
    for key in ("python", "numpy", "gmsh", "dolfinx", "petsc", "mpi", "mpi4py", "spine_litt"):
        assert prov["versions"][key], key
    assert prov["ranks"] == 1 and prov["host"] and "run" in prov["command_line"]
    assert prov["solver_options"]["applied_pc_type"] == "jacobi"
    assert prov["start_utc"] <= prov["end_utc"]
    assert set(prov["git"]) == {"commit", "dirty"}
    cache = prov["referenced_files"]["mesh_cache"]
    from solver.provenance import sha256_file

    assert cache["sha256"] == sha256_file(Path(cache["path"]))
    assert (result / outdir.MARKER).is_file()


def test_git_state_outside_git_is_null(tmp_path):
    from solver.provenance import git_state

    assert git_state(tmp_path) == {"commit": None, "dirty": None}


def test_reproduce(result, bioheat_cmd, mpiexec_exe, cli_env, tmp_path):
    r = run(bioheat_cmd, cli_env, "reproduce", result, "--out", tmp_path / "again", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "reproduced" in r.stdout and (tmp_path / "again" / "summary.json").is_file()
    # on another number of ranks (1 -> 2) as well
    r = run([mpiexec_exe, "-n", "2", *bioheat_cmd], cli_env, "reproduce", result, "--out", tmp_path / "again_np2",
            "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "(2 rank(s); original: 1)" in r.stdout and "reproduced" in r.stdout
    # a result whose metrics were changed afterwards is not reproduced (exit 4)
    tampered = tmp_path / "tampered"
    shutil.copytree(result, tampered)
    s = json.loads((tampered / "summary.json").read_text())
    s["max_temperature_C"] += 1e-3
    (tampered / "summary.json").write_text(json.dumps(s))
    r = run(bioheat_cmd, cli_env, "reproduce", tampered, "--out", tmp_path / "again2", "--quiet", cwd=tmp_path)
    assert r.returncode == 4, r.stdout + r.stderr
    assert "NOT reproduced" in r.stdout and "max_temperature_C" in r.stdout
    r = run(bioheat_cmd, cli_env, "reproduce", tmp_path, "--quiet", cwd=tmp_path)
    assert r.returncode == 2 and "not a result folder" in r.stderr


def test_compare_metrics_tolerances():
    from solver.provenance import compare_metrics

    a = {"max_temperature_C": 50.0, "damage": {"ablation_volume_mL": 1.0}, "wall_time_s": 3.0}
    assert compare_metrics(a, {"max_temperature_C": 50.0 + 5e-7, "damage": {"ablation_volume_mL": 1.0 + 5e-7},
                               "wall_time_s": 9.0}) == []
    diffs = compare_metrics(a, {"max_temperature_C": 50.0 + 2e-6, "damage": {"ablation_volume_mL": 1.0 + 2e-6}})
    assert len(diffs) == 2  # both metrics; wall_time_s is not compared


def test_reproduce_tolerances_follow_the_solver_tolerance():
    """A run solved to rtol carries an algebraic error of about 2300 rtol K (measured on T8);
    reproduce allows 1e4 rtol (K and relative), never less than 1e-6."""
    from solver.provenance import compare_metrics, reproduce_tolerances

    assert reproduce_tolerances(1e-10) == (1e-6, 1e-6)
    assert reproduce_tolerances(1e-8) == pytest.approx((1e-4, 1e-4))
    a = {"max_temperature_C": 50.0, "damage": {"dura": {"cem43_min": 6.8}}}
    near = {"max_temperature_C": 50.0 + 5e-5, "damage": {"dura": {"cem43_min": 6.8 * (1 + 5e-5)}}}
    far = {"max_temperature_C": 50.0 + 2e-4, "damage": {"dura": {"cem43_min": 6.8 * (1 + 2e-4)}}}
    assert compare_metrics(a, near, *reproduce_tolerances(1e-8)) == []
    assert len(compare_metrics(a, far, *reproduce_tolerances(1e-8))) == 2
    assert len(compare_metrics(a, near, *reproduce_tolerances(1e-10))) == 2
    # the light solve's energy imbalance is round-off that moves with the partition (measured
    # 2.7e-11 on 1 rank, 1.3e-10 on 2): compared absolutely to 1e-8
    light = {"light": {"max_relative_imbalance": 2.67e-11}}
    assert compare_metrics(light, {"light": {"max_relative_imbalance": 1.31e-10}}) == []
    assert len(compare_metrics(light, {"light": {"max_relative_imbalance": 2e-8}})) == 1


def _hostile_files(d: Path) -> dict[str, Path]:
    base = SMALL.read_text()
    files = {
        "latin1": base.replace('name = "small_sphere"', 'name = "sph\xe9re"').encode("latin-1"),
        "utf16": base.encode("utf-16"),
        "nesting": ("a = " + "[" * 3000 + "]" * 3000 + "\n").encode(),
        "tiny_dt": base.replace("dt_s = 2.0", "dt_s = 5e-324").encode(),
        "huge_end": base.replace("end_time_s = 10.0", "end_time_s = 1e300").encode(),
        "not_multiple": base.replace("end_time_s = 10.0", "end_time_s = 9.0").encode(),
        "max_iter": (base + "[solver]\nmax_iterations = 1e20\n").encode(),
        "tiny_mesh": base.replace("mesh_size_m = 0.006", "mesh_size_m = 1e-9").encode(),
        "small_mesh": base.replace("mesh_size_m = 0.006", "mesh_size_m = 2e-5").encode(),
        "tiny_dt_steps": base.replace("dt_s = 2.0", "dt_s = 1e-9").encode(),
    }
    out = {}
    for name, raw in files.items():
        p = d / f"{name}.toml"
        p.write_bytes(raw)
        out[name] = p
    bom = d / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf" + base.encode())
    out["bom"] = bom
    return out


def test_hostile_inputs_exit_2_without_traceback(bioheat_cmd, cli_env, tmp_path):
    files = _hostile_files(tmp_path)
    expect = {"latin1": "not UTF-8", "utf16": "not UTF-8", "nesting": "nested too deeply", "tiny_dt": "steps",
              "huge_end": "steps", "not_multiple": "not a whole number of steps", "max_iter": "max_iterations",
              "tiny_mesh": "enormous mesh", "small_mesh": "cells", "tiny_dt_steps": "steps"}
    for name, path in files.items():
        r = run(bioheat_cmd, cli_env, "run", path, "--out", tmp_path / f"out_{name}", "--quiet", cwd=tmp_path,
                timeout=120)
        assert "Traceback" not in r.stderr, (name, r.stderr)
        if name == "bom":
            assert r.returncode == 0, r.stderr  # a byte-order mark is accepted
            continue
        assert r.returncode == 2, (name, r.stdout + r.stderr)
        assert expect[name] in r.stderr, (name, r.stderr)
        assert len(r.stderr) < 2000 and not (tmp_path / f"out_{name}").exists()
