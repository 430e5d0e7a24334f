"""Sweeps end to end with real runs of a tiny case: local, killed and resumed, failing runs,
the mpi executor (mpiexec -n 2, two groups) and a real one-node SLURM (sbatch --array).

Every executor must give the same table as the local one: the same resolved cases solved by
the same code on one rank each, so the metrics agree to round-off (rtol 1e-12)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT

DATA = ROOT / "tests" / "data" / "sweep"
TINY = DATA / "tiny_case.toml"
SWEEP = f"""
base = "{TINY}"
design = "grid"
[[parameter]]
path = "applicator[0].power_W"
values = [4.0, 10.0]
[[parameter]]
path = "tissues.muscle.conductivity_W_per_mK"
start = 0.4
stop = 0.6
num = 2
"""
TIMING = ("wall_time_s", "solve_time_s", "overhead_s")


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    # a test process started under mpiexec must not leak its MPI environment into children
    for k in list(env):
        if k.startswith(("PMI_", "PMIX_", "MPICH_", "HYDRA_", "OMPI_")):
            del env[k]
    return env


def sweep(*args, check=True, timeout=900, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "solver.cli", "sweep", *map(str, args)], capture_output=True,
                         text=True, env=kw.pop("env", _env()), timeout=timeout, cwd=str(ROOT), **kw)
    if check and res.returncode != 0:
        raise AssertionError(f"bioheat sweep {args} exited {res.returncode}\n{res.stdout}\n{res.stderr}")
    return res


def planned(tmp: Path, name: str, text: str = SWEEP) -> Path:
    spec = tmp / f"{name}.toml"
    spec.write_text(text)
    out = tmp / name
    sweep("plan", spec, "--out", out)
    return out


def results(folder: Path):
    import pandas as pd

    sweep("collect", folder)
    return pd.read_parquet(folder / "results.parquet")


def assert_same_table(a, b) -> None:
    import pandas as pd

    assert list(a["run_id"]) == list(b["run_id"])
    assert (a["status"] == "done").all() and (b["status"] == "done").all()
    cols = [c for c in a.columns if c not in TIMING]
    assert cols == [c for c in b.columns if c not in TIMING]
    for c in cols:
        if pd.api.types.is_float_dtype(a[c]):
            np.testing.assert_allclose(a[c].to_numpy(), b[c].to_numpy(), rtol=1e-12, atol=0, err_msg=c)
        else:
            assert list(a[c]) == list(b[c]), c


@pytest.fixture(scope="module")
def workdir():
    path = Path(tempfile.mkdtemp(prefix="spine-litt-sweep-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def reference(workdir):
    """The tiny 2 x 2 sweep run by the local executor, two runs at a time."""
    out = planned(workdir, "reference")
    res = sweep("run", out, "--executor", "local", "--concurrent", "2")
    assert "done 4/4" in res.stdout and "overhead" in res.stdout
    return results(out)


def test_local_sweep_table_has_every_metric(reference, workdir):
    df = reference
    assert list(df["run_id"]) == sorted(df["run_id"]) and len(df) == 4
    for col in ("ablation_volume_mL", "tumour_coverage", "spinal_cord_max_temperature_C",
                "spinal_cord_max_cem43_min", "spinal_cord_margin_m", "verdict", "safe", "safety_point_trips",
                "wall_time_s", "overhead_s"):
        assert col in df.columns and df[col].notna().all(), col
    # physics sanity the table must show: more power, more ablation and a hotter cord; the
    # safety point trips at 10 W, not at 4 W (the cord edge passes 43 C only at 10 W)
    p = df["applicator[0].power_W"]
    assert df.loc[p == 10.0, "ablation_volume_mL"].min() > df.loc[p == 4.0, "ablation_volume_mL"].max()
    assert (df.loc[p == 10.0, "safety_point_trips"] == 1).all() and (df.loc[p == 4.0, "safety_point_trips"] == 0).all()
    # each run's metrics are its own summary.json's
    rid = df["run_id"].iloc[0]
    summary = json.loads((workdir / "reference" / "runs" / rid / "out" / "summary.json").read_text())
    assert df["spinal_cord_max_temperature_C"].iloc[0] == summary["damage"]["critical"]["spinal_cord"]["max_temperature_C"]
    assert not (workdir / "reference" / "runs" / rid / "out" / "fields").exists() or not any(
        (workdir / "reference" / "runs" / rid / "out" / "fields").iterdir())
    st = sweep("status", workdir / "reference")
    assert "done 4, failed 0, running 0, pending 0" in st.stdout
    a = sweep("analyze", workdir / "reference")
    assert "safety_map.png" in a.stdout and (workdir / "reference" / "analysis" / "safety_map.png").stat().st_size > 0


def test_killed_sweep_resumes_without_losing_runs(reference, workdir):
    out = planned(workdir, "killed")
    proc = subprocess.Popen([sys.executable, "-m", "solver.cli", "sweep", "run", str(out), "--concurrent", "1"],
                            env=_env(), cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 600
    try:
        while time.time() < deadline and not list(out.glob("runs/*/done.json")):
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its worker, mid-way
        proc.wait()
    done = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("runs/*/done.json")}
    assert 1 <= len(done) < 4, done
    st = sweep("status", out, "-v")
    assert f"done {len(done)}," in st.stdout
    sweep("run", out, "--executor", "local")
    assert {p.parent.name: p.stat().st_mtime_ns for p in out.glob("runs/*/done.json") if p.parent.name in done} == done
    assert_same_table(results(out), reference)
    assert not list(out.glob("runs/*/.out.*")) and not list(out.glob("runs/*/running.json"))


def test_failed_run_is_recorded_and_retried(workdir):
    text = f"""
base = "{TINY}"
[[parameter]]
path = "solver.max_iterations"
values = [10000, 1]                 # one Krylov iteration cannot converge: a solver failure at run time
"""
    out = planned(workdir, "failing", text)
    res = sweep("run", out, check=False)
    assert res.returncode == 1
    st = sweep("status", out)
    assert "done 1, failed 1" in st.stdout and "SolverError" in st.stdout
    failed = next(out.glob("runs/*/failed.json"))
    first = json.loads(failed.read_text())
    assert first["error_type"] == "SolverError" and first["input_error"] is False
    done_marker = next(out.glob("runs/*/done.json"))
    stamp = done_marker.stat().st_mtime_ns
    res = sweep("run", out, check=False)  # retries the failed run only
    assert res.returncode == 1 and "1 run(s) to do" in res.stdout
    assert json.loads(failed.read_text())["finished_unix_s"] > first["finished_unix_s"]
    assert done_marker.stat().st_mtime_ns == stamp
    df = results(out)
    assert sorted(df["status"]) == ["done", "failed"] and "SolverError" in df.loc[df.status == "failed", "error"].iloc[0]


def test_mpi_executor_two_groups_equals_local(reference, workdir):
    out = planned(workdir, "mpi")
    res = sweep("run", out, "--executor", "mpi", "--groups", "2", "--ranks", "2")
    assert "done 4/4" in res.stdout
    hosts = [json.loads(p.read_text()) for p in out.glob("runs/*/done.json")]
    assert all(h["ranks"] == 1 for h in hosts)  # each group is one rank of the 2-rank job
    assert len({h["pid"] for h in hosts}) == 2  # both groups (two processes of the job) ran runs
    assert_same_table(results(out), reference)


# --------------------------------------------------------------------------- SLURM
SLURM_SCRIPT = ROOT / "scripts" / "slurm_local.sh"


@pytest.fixture(scope="module")
def slurm_cluster():
    """A one-node SLURM started by scripts/slurm_local.sh for this module, stopped after."""
    missing = [b for b in ("slurmctld", "slurmd", "sbatch", "munged") if shutil.which(b) is None]
    if missing:
        pytest.skip(f"SLURM not installed ({', '.join(missing)} missing; `make slurm-deps` installs it as root)")
    if os.geteuid() != 0:
        pytest.skip("the test cluster runs as SlurmUser=root: needs root")
    folder = Path(tempfile.mkdtemp(prefix="spine-litt-slurm-"))
    res = subprocess.run(["bash", str(SLURM_SCRIPT), "start", str(folder)], capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"slurm_local.sh start failed:\n{res.stdout}\n{res.stderr}")
    try:
        yield folder / "slurm.conf"
    finally:
        subprocess.run(["bash", str(SLURM_SCRIPT), "stop", str(folder)], capture_output=True, text=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def test_slurm_job_array_equals_local(reference, workdir, slurm_cluster):
    out = planned(workdir, "slurm")
    env = _env()
    env["SLURM_CONF"] = str(slurm_cluster)
    res = sweep("run", out, "--executor", "slurm", "--runs-per-task", "1", env=env)
    assert "submitted job array" in res.stdout and "done 4/4" in res.stdout, res.stdout
    script = (out / "slurm" / "sweep.sbatch").read_text()
    assert "#SBATCH --array=0-3" in script and "sweep exec" in script
    assert len(list((out / "slurm").glob("task-*_*.out"))) == 4  # four array tasks ran
    assert "slurm job" in sweep("status", out).stdout
    assert_same_table(results(out), reference)


def test_mpi_executor_one_group_of_two_ranks(reference, workdir):
    """The sub-communicator path with more than one rank: comm.Split gives one 2-rank group that
    builds and partitions each mesh on it. Results equal the serial ones to the Krylov
    tolerance (rtol 1e-10 on the residual), far inside rtol 1e-6."""
    out = planned(workdir, "mpi_2ranks")
    res = sweep("run", out, "--executor", "mpi", "--groups", "1", "--ranks", "2")
    assert "done 4/4" in res.stdout
    df = results(out)
    assert (df["ranks"] == 2).all() and list(df["run_id"]) == list(reference["run_id"])
    for c in ("ablation_volume_mL", "tumour_coverage", "spinal_cord_max_temperature_C", "spinal_cord_max_cem43_min",
              "max_temperature_C", "delivered_energy_J"):
        np.testing.assert_allclose(df[c].to_numpy(float), reference[c].to_numpy(float), rtol=1e-6, err_msg=c)
    assert list(df["verdict"]) == list(reference["verdict"])
    assert list(df["safety_point_trips"]) == list(reference["safety_point_trips"])
