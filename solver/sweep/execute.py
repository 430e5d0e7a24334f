"""Running a planned sweep: run states, the in-process worker and the three executors.

State of a run, from files in ``DIR/runs/<run_id>/`` (the marker ``done.json`` is written last,
atomically, after ``bioheat run``'s own atomic rename of ``out/``):

    done      done.json exists: out/ is complete; the run is never repeated
    failed    failed.json exists (error type, message, traceback or exit code and log tail)
    running   running.json exists without either (also: a run whose process was killed)
    pending   none of them

``bioheat sweep run`` executes every run that is not done (failed and interrupted runs are
tried again); a failed run does not stop the others.

Executors:

- ``local``: ``concurrent`` subprocesses at a time, each ``[mpiexec -n M] python -m solver.cli
  sweep exec DIR --run ID``;
- ``slurm``: one job array written to ``DIR/slurm/sweep.sbatch`` (readable and adaptable), each
  array task running its share of the runs on ``ranks_per_run`` ranks (``srun`` or ``mpiexec``);
- ``mpi``: one MPI job (``mpiexec -n P ... sweep exec DIR --groups G``) whose ranks split into G
  groups (``comm.Split``); each group runs its runs in-process on its sub-communicator, so no
  process starts and imports per run, and forms compiled once are reused from the JIT cache.

Overhead per run (``overhead_s`` in done.json) = time from launch to the start of the run
(process start, MPI start, imports; 0 inside a running MPI job) + the run's wall time minus the
time-stepping time (mesh loading, forms, set-up, writing results).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from .plan import read_manifest

LAUNCH_ENV = "SPINE_LITT_LAUNCH_TIME"
STATES = ("done", "failed", "running", "pending")


# --------------------------------------------------------------------------- run states
def run_dir(folder: Path, run_id: str) -> Path:
    return Path(folder) / "runs" / run_id


def run_state(folder: Path, run_id: str) -> str:
    d = run_dir(folder, run_id)
    if (d / "done.json").exists():
        return "done"
    if (d / "failed.json").exists():
        return "failed"
    if (d / "running.json").exists():
        return "running"
    return "pending"


def states(folder: Path) -> dict[str, str]:
    """{run_id: state} for every run of the manifest, in manifest order."""
    manifest = read_manifest(folder)
    return {rid: run_state(folder, rid) for rid in manifest["run_ids"]}


def count_states(folder: Path) -> dict[str, int]:
    s = states(folder)
    return {k: sum(1 for v in s.values() if v == k) for k in STATES}


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    tmp.replace(path)


def _finite(x):
    """JSON-safe number: None for None, NaN or infinities."""
    if x is None:
        return None
    x = float(x)
    return x if x == x and abs(x) != float("inf") else None


def metrics_from_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The sweep table's metrics of one run (flat, strict-JSON numbers; None where undefined)."""
    m: dict[str, Any] = {
        "max_temperature_C": _finite(summary.get("max_temperature_C")),
        "cells": summary.get("mesh", {}).get("cells"),
        "ranks": summary.get("ranks"),
        "steps": summary.get("steps"),
    }
    damage = summary.get("damage")
    if damage:
        m["ablation_volume_mL"] = _finite(damage["ablation_volume_mL"])
        for r, c in damage.get("tumour_coverage", {}).items():
            m[f"{r}_coverage"] = _finite(c)
        for r, e in damage.get("critical", {}).items():
            m[f"{r}_max_temperature_C"] = _finite(e["max_temperature_C"])
            m[f"{r}_max_cem43_min"] = _finite(e["max_cem43_min"])
            m[f"{r}_margin_m"] = _finite(e["margin_m"])
    safety = summary.get("safety")
    if safety:
        m["verdict"] = safety["verdict"].split(":", 1)[0]
        m["safe"] = bool(safety["pass"])
        m["limit_temperature_C"] = safety["limits"]["max_temperature_C"]
        m["limit_cem43_min"] = safety["limits"]["max_cem43_min"]
    control = summary.get("control")
    if control is not None:
        m["safety_point_trips"] = sum(
            1 for e in control["events"] if e["event"].startswith(("laser stopped", "laser paused"))
        )
        m["delivered_energy_J"] = _finite(control["delivered_energy_J"])
    return m


# --------------------------------------------------------------------------- worker
def execute_runs(folder: str | Path, run_ids: list[str], comm, *, launch_time: float | None = None) -> dict[str, int]:
    """Run ``run_ids`` one after another on ``comm`` (collective on comm), skipping complete
    runs. A failing run writes failed.json and the next run starts. Returns state counts of
    these runs afterwards."""
    from ..config import CaseError
    from ..case_loader import load_case
    from ..simulation import run_case

    folder = Path(folder).resolve()
    counts = {"done": 0, "failed": 0, "skipped": 0}
    for rid in run_ids:
        d = run_dir(folder, rid)
        if (d / "done.json").exists():
            counts["skipped"] += 1
            continue
        start = time.time()
        if comm.rank == 0:
            (d / "failed.json").unlink(missing_ok=True)
            for stale in d.glob(".out.*"):  # staging folders of an interrupted run
                shutil.rmtree(stale, ignore_errors=True)
            _write_json_atomic(d / "running.json", {"host": socket.gethostname(), "pid": os.getpid(),
                                                     "ranks": comm.size, "started_unix_s": start})
        comm.barrier()
        try:
            case = load_case(d / "case.toml")
            summary = run_case(case, d / "out", overwrite=True, comm=comm, progress=False)
            ok, error = True, None
        except Exception as err:  # recorded, the next run goes on
            ok, error = False, err
            tb = traceback.format_exc()
        if comm.rank == 0:
            if ok:
                launch = (start - launch_time) if launch_time is not None else 0.0
                wall = summary["wall_time_s"]
                record = {
                    "run_id": rid,
                    "case_hash": summary["case_hash"],
                    "metrics": metrics_from_summary(summary),
                    "timing": {
                        "launch_to_start_s": launch,
                        "wall_time_s": wall,
                        "mesh_time_s": summary["mesh_time_s"],
                        "setup_time_s": summary["setup_time_s"],
                        "solve_time_s": summary["solve_time_s"],
                        "overhead_s": launch + wall - summary["solve_time_s"],
                    },
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "ranks": comm.size,
                    "finished_unix_s": time.time(),
                }
                _write_json_atomic(d / "done.json", record)
            else:
                _write_json_atomic(d / "failed.json", {
                    "run_id": rid,
                    "error_type": type(error).__name__,
                    "error": str(error),
                    "input_error": isinstance(error, CaseError),
                    "traceback": tb,
                    "host": socket.gethostname(),
                    "finished_unix_s": time.time(),
                })
            (d / "running.json").unlink(missing_ok=True)
        counts["done" if ok else "failed"] += 1
        launch_time = None  # later runs of this process start without process overhead
        comm.barrier()
    return counts


def exec_command(args) -> int:
    """``bioheat sweep exec DIR (--run ID ... | --task K | --groups G)``: the worker that every
    executor starts (also usable by hand inside an allocation)."""
    from mpi4py import MPI

    world = MPI.COMM_WORLD
    folder = Path(args.dir).resolve()
    manifest = read_manifest(folder)
    launch = os.environ.get(LAUNCH_ENV)
    launch_time = float(launch) if launch else None
    if args.run:
        unknown = [r for r in args.run if r not in manifest["run_ids"]]
        if unknown:
            from .spec import SweepError

            raise SweepError(f"{folder}: run id(s) {unknown} are not in the manifest")
        ids = list(args.run)
        comm = world
    elif args.task is not None:
        tasks = json.loads((folder / "slurm" / "tasks.json").read_text())
        ids = tasks[args.task]
        comm = world
    else:
        groups = args.groups or 1
        if groups > world.size:
            from .spec import SweepError

            raise SweepError(f"--groups {groups}: more groups than MPI ranks ({world.size})")
        color = world.rank * groups // world.size
        comm = world.Split(color, world.rank)
        pending = [r for r in manifest["run_ids"] if run_state(folder, r) != "done"] if world.rank == 0 else None
        pending = world.bcast(pending, root=0)
        ids = pending[color::groups]
    counts = execute_runs(folder, ids, comm, launch_time=launch_time)
    world.barrier()
    failed = world.allreduce(counts["failed"] if comm.rank == 0 else 0)
    return 0 if failed == 0 else 1


# --------------------------------------------------------------------------- local executor
def mpiexec_path() -> str:
    cand = Path(sys.executable).parent / "mpiexec"
    return str(cand) if cand.exists() else (shutil.which("mpiexec") or "mpiexec")


def worker_command(folder: Path, extra: list[str], ranks: int, launcher: str = "mpiexec") -> list[str]:
    cmd = [sys.executable, "-m", "solver.cli", "sweep", "exec", str(folder), *extra]
    if ranks > 1:
        prefix = [mpiexec_path(), "-n", str(ranks)] if launcher == "mpiexec" else ["srun", "-n", str(ranks)]
        cmd = prefix + cmd
    return cmd


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "") if env.get("PYTHONPATH") else root
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _progress(folder: Path, t0: float, say) -> None:
    c = count_states(folder)
    total = sum(c.values())
    say(f"  [{time.time() - t0:7.1f} s] done {c['done']}/{total}, failed {c['failed']}, "
        f"running {c['running']}, pending {c['pending']}")


def run_local(folder: str | Path, *, concurrent: int = 1, ranks: int = 1, say=print) -> dict[str, int]:
    """Run every run that is not done, ``concurrent`` at a time, each on ``ranks`` MPI ranks.
    Returns the state counts afterwards."""
    folder = Path(folder).resolve()
    todo = [r for r, s in states(folder).items() if s != "done"]
    say(f"sweep {folder}: {len(todo)} run(s) to do, {concurrent} at a time on {ranks} rank(s) each")
    env = _worker_env()
    running: dict[str, tuple[subprocess.Popen, Any]] = {}
    t0 = time.time()
    last = 0.0
    queue = list(todo)
    _terminate_on_sigterm()
    try:
        while queue or running:
            while queue and len(running) < concurrent:
                rid = queue.pop(0)
                d = run_dir(folder, rid)
                log = open(d / "log.txt", "w")
                env[LAUNCH_ENV] = repr(time.time())
                proc = subprocess.Popen(worker_command(folder, ["--run", rid], ranks), stdout=log,
                                        stderr=subprocess.STDOUT, env=env, cwd=str(folder))
                running[rid] = (proc, log)
            for rid, (proc, log) in list(running.items()):
                rc = proc.poll()
                if rc is None:
                    continue
                log.close()
                del running[rid]
                _after_process(folder, rid, rc)
            if time.time() - last > 10.0:
                _progress(folder, t0, say)
                last = time.time()
            time.sleep(0.2)
    finally:
        for rid, (proc, log) in running.items():  # interrupted: stop our own children
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
    _progress(folder, t0, say)
    return count_states(folder)


def _terminate_on_sigterm() -> None:
    """SIGTERM (e.g. scancel, kill) ends the executor through its finally clause, which stops
    its worker processes; without this Python would die at once and leave them running."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        def stop(signum, frame):
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, stop)


def _after_process(folder: Path, rid: str, rc: int) -> None:
    """A worker process ended: a run without done.json or failed.json gets failed.json."""
    d = run_dir(folder, rid)
    if (d / "done.json").exists() or (d / "failed.json").exists():
        return
    tail = ""
    log = d / "log.txt"
    if log.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
    _write_json_atomic(d / "failed.json", {
        "run_id": rid, "error_type": "process", "error": f"worker exited with code {rc} without a result",
        "exit_code": rc, "log_tail": tail, "finished_unix_s": time.time(),
    })
    (d / "running.json").unlink(missing_ok=True)


# --------------------------------------------------------------------------- mpi executor
def run_mpi(folder: str | Path, *, ranks: int, groups: int, say=print) -> dict[str, int]:
    """One ``mpiexec -n ranks`` job whose ranks split into ``groups`` groups."""
    folder = Path(folder).resolve()
    if groups > ranks:
        from .spec import SweepError

        raise SweepError(f"--groups {groups}: more groups than --ranks {ranks}")
    todo = [r for r, s in states(folder).items() if s != "done"]
    say(f"sweep {folder}: {len(todo)} run(s) to do in one MPI job of {ranks} rank(s), {groups} group(s)")
    env = _worker_env()
    env[LAUNCH_ENV] = repr(time.time())
    cmd = [mpiexec_path(), "-n", str(ranks), sys.executable, "-m", "solver.cli", "sweep", "exec", str(folder),
           "--groups", str(groups)]
    with open(folder / "mpi_job.log", "w") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(folder))
    for rid, s in states(folder).items():
        if rid in todo and s == "running":
            _after_process(folder, rid, -1)
    _progress(folder, float(env[LAUNCH_ENV]), say)
    return count_states(folder)


# --------------------------------------------------------------------------- slurm executor
SBATCH_TEMPLATE = """#!/bin/bash
# spine-litt sweep '{name}': one array task per line of tasks.json, each running its runs one
# after another on {ranks} rank(s). Written by `bioheat sweep run --executor slurm`; adapt and
# submit by hand with `sbatch {script}` if you like (the runs' markers make it safe to resubmit).
#SBATCH --job-name={job_name}
#SBATCH --array=0-{last}{throttle}
#SBATCH --ntasks={ranks}
#SBATCH --output={slurm_dir}/task-%A_%a.out
{options}
export {launch_env}=$(date +%s.%N)
export OMP_NUM_THREADS=1
export PYTHONPATH={root}${{PYTHONPATH:+:$PYTHONPATH}}
cd {folder}
{command} --task "$SLURM_ARRAY_TASK_ID"
"""


def write_sbatch(folder: Path, *, ranks: int, runs_per_task: int, partition: str | None, time_limit: str | None,
                 extra: list[str], launcher: str, max_parallel: int | None) -> tuple[Path, int]:
    """Write DIR/slurm/tasks.json (the not-done runs, runs_per_task per array task) and
    DIR/slurm/sweep.sbatch. Returns (script, number of array tasks)."""
    manifest = read_manifest(folder)
    todo = [r for r in manifest["run_ids"] if run_state(folder, r) != "done"]
    tasks = [todo[i:i + runs_per_task] for i in range(0, len(todo), runs_per_task)]
    sdir = folder / "slurm"
    sdir.mkdir(exist_ok=True)
    _write_json_atomic(sdir / "tasks.json", tasks)  # a list; json.dumps handles it
    options = []
    if partition:
        options.append(f"#SBATCH --partition={partition}")
    if time_limit:
        options.append(f"#SBATCH --time={time_limit}")
    options += [f"#SBATCH {o}" for o in extra]
    cmd = " ".join(worker_command(folder, [], ranks, launcher))
    script = sdir / "sweep.sbatch"
    script.write_text(SBATCH_TEMPLATE.format(
        name=manifest["name"], job_name=f"sweep-{manifest['name']}"[:60], last=max(len(tasks) - 1, 0),
        throttle=f"%{max_parallel}" if max_parallel else "", ranks=ranks, slurm_dir=sdir,
        options="\n".join(options), launch_env=LAUNCH_ENV, root=Path(__file__).resolve().parents[2],
        folder=folder, command=cmd, script=script,
    ))
    return script, len(tasks)


def run_slurm(folder: str | Path, *, ranks: int, runs_per_task: int, partition: str | None, time_limit: str | None,
              extra: list[str], launcher: str, max_parallel: int | None, wait: bool, poll_s: float = 2.0,
              say=print) -> dict[str, int]:
    """Submit the not-done runs as one job array (sbatch); wait with progress unless not wait."""
    folder = Path(folder).resolve()
    script, n_tasks = write_sbatch(folder, ranks=ranks, runs_per_task=runs_per_task, partition=partition,
                                   time_limit=time_limit, extra=extra, launcher=launcher, max_parallel=max_parallel)
    if n_tasks == 0:
        say(f"sweep {folder}: every run is done, nothing to submit")
        return count_states(folder)
    try:
        res = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True, cwd=str(folder))
    except FileNotFoundError:
        from .spec import SweepError

        raise SweepError("--executor slurm: sbatch not found (no SLURM client on this machine)") from None
    if res.returncode != 0:
        from .spec import SweepError

        raise SweepError(f"sbatch {script} failed ({res.returncode}): {res.stderr.strip()}")
    job_id = res.stdout.strip().split(";")[0]
    _write_json_atomic(folder / "slurm" / "job.json", {"job_id": job_id, "tasks": n_tasks, "script": str(script),
                                                       "submitted_unix_s": time.time()})
    say(f"submitted job array {job_id} ({n_tasks} task(s)); script {script}")
    if not wait:
        return count_states(folder)
    t0 = time.time()
    last = 0.0
    while True:
        q = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True)
        active = [s for s in q.stdout.split() if s in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING")]
        if q.returncode == 0 and not active:
            break
        if time.time() - last > 10.0:
            _progress(folder, t0, say)
            last = time.time()
        time.sleep(poll_s)
    for i, ids in enumerate(json.loads((folder / "slurm" / "tasks.json").read_text())):
        for rid in ids:
            if run_state(folder, rid) in ("running", "pending"):
                d = run_dir(folder, rid)
                logs = sorted((folder / "slurm").glob(f"task-{job_id}_{i}.out"))
                if logs:
                    shutil.copyfile(logs[0], d / "log.txt")
                _after_process(folder, rid, -1)
    _progress(folder, t0, say)
    return count_states(folder)
