"""``bioheat sweep plan | run | status | collect | analyze | exec`` (sub-commands of solver.cli).

Exit codes as bioheat's: 0 success, 2 invalid input (sweep file, planned case, folder);
``run`` returns 1 when runs failed (their errors are in runs/<id>/failed.json and the table).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def _say(msg: str) -> None:
    print(msg, flush=True)


def cmd_plan(args) -> int:
    from .plan import plan

    m = plan(args.sweep, args.out, force=args.force)
    n = len(m["run_ids"])
    _say(f"planned sweep '{m['name']}' ({m['design']}, {len(m['parameters'])} parameter(s)): "
         f"{len(m['samples'])} design point(s), {n} distinct run(s) in {Path(args.out) / 'runs'}; "
         f"manifest {Path(args.out) / 'manifest.json'}")
    return 0


def _executor_setting(args, manifest, key, default):
    v = getattr(args, key, None)
    if v is not None:
        return v
    ex = manifest.get("executor", {})
    if key in ex:
        return ex[key]
    return ex.get("slurm", {}).get(key, default)


def cmd_run(args) -> int:
    from .execute import run_local, run_mpi, run_slurm
    from .plan import read_manifest

    manifest = read_manifest(args.dir)
    ranks = _executor_setting(args, manifest, "ranks_per_run", 1)
    if args.executor == "local":
        counts = run_local(args.dir, concurrent=_executor_setting(args, manifest, "concurrent", 1), ranks=ranks, say=_say)
    elif args.executor == "mpi":
        groups = _executor_setting(args, manifest, "groups", 1)
        counts = run_mpi(args.dir, ranks=args.ranks or groups, groups=groups, say=_say)
    else:
        slurm = manifest.get("executor", {}).get("slurm", {})
        counts = run_slurm(
            args.dir, ranks=ranks,
            runs_per_task=args.runs_per_task or slurm.get("runs_per_task", 1),
            partition=args.partition or slurm.get("partition"),
            time_limit=args.time or slurm.get("time"),
            extra=list(slurm.get("sbatch", [])) + list(args.sbatch),
            launcher=args.launcher or slurm.get("launcher", "srun"),
            max_parallel=args.max_parallel or slurm.get("max_parallel"),
            wait=not args.no_wait, say=_say,
        )
        if args.no_wait:
            return 0
    _report_overhead(Path(args.dir))
    return 0 if counts["failed"] == 0 and counts["pending"] == 0 and counts["running"] == 0 else 1


def _report_overhead(folder: Path) -> None:
    """Mean per-run wall time and overhead with its parts (from the done.json markers)."""
    from .execute import run_dir, states

    rows = []
    for rid, s in states(folder).items():
        if s == "done":
            rows.append(json.loads((run_dir(folder, rid) / "done.json").read_text())["timing"])
    if not rows:
        return

    def mean(key):
        return statistics.mean(r[key] for r in rows)

    over = [r["overhead_s"] for r in rows]
    forms = statistics.mean(r["setup_time_s"] - r["mesh_time_s"] for r in rows)
    tail = statistics.mean(r["wall_time_s"] - r["setup_time_s"] - r["solve_time_s"] for r in rows)
    _say(f"per run ({len(rows)} done): wall {mean('wall_time_s'):.2f} s, time stepping {mean('solve_time_s'):.2f} s, "
         f"overhead {statistics.mean(over):.2f} s ({min(over):.2f}-{max(over):.2f}) = launch and imports "
         f"{mean('launch_to_start_s'):.2f} + mesh build/load {mean('mesh_time_s'):.2f} + forms and set-up "
         f"{forms:.2f} + time-loop set-up, metrics, report sampling and writing {tail:.2f} s (means)")


def cmd_status(args) -> int:
    from .execute import count_states, run_dir, states

    folder = Path(args.dir)
    c = count_states(folder)
    _say(f"{folder}: " + ", ".join(f"{k} {v}" for k, v in c.items()) + f" (of {sum(c.values())})")
    job = folder / "slurm" / "job.json"
    if job.exists():
        job_id = json.loads(job.read_text())["job_id"]
        import subprocess

        try:
            q = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=30)
            tasks = q.stdout.split() if q.returncode == 0 else []
            queue = ", ".join(f"{t.lower()} {tasks.count(t)}" for t in sorted(set(tasks))) or "no task in the queue"
        except (FileNotFoundError, subprocess.TimeoutExpired):
            queue = "squeue not available"
        _say(f"  slurm job {job_id}: {queue}")
    for rid, s in states(folder).items():
        if s == "failed":
            rec = json.loads((run_dir(folder, rid) / "failed.json").read_text())
            _say(f"  failed {rid}: {rec.get('error_type')}: {str(rec.get('error')).splitlines()[0][:200]}")
        elif s == "running" and args.verbose:
            _say(f"  running (or interrupted) {rid}")
    return 0


def cmd_collect(args) -> int:
    from .collect import collect

    csv_path, pq_path, df = collect(args.dir)
    done = int((df["status"] == "done").sum())
    _say(f"{len(df)} run(s), {done} done: {csv_path}, {pq_path}")
    return 0


def cmd_analyze(args) -> int:
    from .analyze import analyze

    result = analyze(args.dir, outputs=args.output or None, map_params=args.map, say=_say)
    _say(f"analysis: {result['json']}, {result['markdown']}; figures: " + ", ".join(p.name for p in result["figures"]))
    return 0


def cmd_exec(args) -> int:
    from .execute import exec_command

    return exec_command(args)


def add_sweep_parser(sub) -> None:
    sw = sub.add_parser("sweep", help="parameter sweeps: plan, run, status, collect, analyze")
    ss = sw.add_subparsers(dest="sweep_command", required=True)
    p = ss.add_parser("plan", help="write one resolved, validated case per run and a manifest")
    p.add_argument("sweep", help="sweep file (TOML)")
    p.add_argument("--out", required=True, help="sweep folder")
    p.add_argument("--force", action="store_true", help="replace a different plan in --out")
    p.set_defaults(func=cmd_plan)
    r = ss.add_parser("run", help="run every run that is not done")
    r.add_argument("dir")
    r.add_argument("--executor", choices=("local", "slurm", "mpi"), default="local")
    r.add_argument("--concurrent", type=int, help="local: runs at the same time (default: sweep file, else 1)")
    r.add_argument("--ranks-per-run", dest="ranks_per_run", type=int, help="local, slurm: MPI ranks per run")
    r.add_argument("--groups", type=int, help="mpi: rank groups (runs at the same time)")
    r.add_argument("--ranks", type=int, help="mpi: total ranks of the MPI job (default: --groups)")
    r.add_argument("--partition", help="slurm partition")
    r.add_argument("--time", help="slurm time limit per array task, e.g. 00:30:00")
    r.add_argument("--runs-per-task", dest="runs_per_task", type=int, help="slurm: runs per array task")
    r.add_argument("--max-parallel", dest="max_parallel", type=int, help="slurm: array throttle (%%N)")
    r.add_argument("--launcher", choices=("srun", "mpiexec"), help="slurm: MPI launcher when ranks > 1")
    r.add_argument("--sbatch", action="append", default=[], metavar="OPTION",
                   help="extra sbatch option, e.g. --sbatch=--mem-per-cpu=2G (repeatable)")
    r.add_argument("--no-wait", action="store_true", help="slurm: return after submitting")
    r.set_defaults(func=cmd_run)
    st = ss.add_parser("status", help="done / failed / running / pending runs")
    st.add_argument("dir")
    st.add_argument("-v", "--verbose", action="store_true")
    st.set_defaults(func=cmd_status)
    c = ss.add_parser("collect", help="results.csv and results.parquet of every run")
    c.add_argument("dir")
    c.set_defaults(func=cmd_collect)
    a = ss.add_parser("analyze", help="sensitivity indices, P(unsafe), plots")
    a.add_argument("dir")
    a.add_argument("--output", action="append", metavar="COLUMN", help="result column to analyse (repeatable)")
    a.add_argument("--map", nargs=2, metavar=("X", "Y"), help="two parameter paths for the safety map")
    a.set_defaults(func=cmd_analyze)
    e = ss.add_parser("exec", help="(used by the executors) run runs in this process on MPI_COMM_WORLD")
    e.add_argument("dir")
    g = e.add_mutually_exclusive_group(required=True)
    g.add_argument("--run", action="append", help="run id (repeatable)")
    g.add_argument("--task", type=int, help="slurm array task index (DIR/slurm/tasks.json)")
    g.add_argument("--groups", type=int, help="split the ranks into this many groups over the not-done runs")
    e.set_defaults(func=cmd_exec)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(1)
