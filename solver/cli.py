"""Command line: ``bioheat run | mesh | report | reproduce | validate | schema | tissues | sweep``.

Exit codes: 0 success, 2 invalid input (case, output folder), 3 solver failure,
75 stopped on SIGTERM/SIGINT during the time loop after writing a checkpoint (continue with
``run --resume``), 4 ``bioheat reproduce`` found different metrics, 130 / 143 interrupted
(SIGINT / SIGTERM) outside the time loop.
Messages go to stderr from rank 0 only, except an error met by one rank alone: that rank
prints it and ends every rank with MPI_Abort (see :mod:`solver.errors`); an exception that
escapes :func:`main` on one rank does the same (:func:`solver.errors.abort_on_uncaught`).
Only ``run``, ``mesh``, ``report`` and ``reproduce`` import the FEM stack (DOLFINx, PETSc,
gmsh); ``validate``, ``schema``, ``tissues`` and ``sweep`` planning do not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

EXIT_INPUT = 2
EXIT_SOLVER = 3
EXIT_INTERRUPTED = 75  # = solver.checkpoint.EXIT_INTERRUPTED (sysexits EX_TEMPFAIL)
EXIT_MISMATCH = 4


def _rank() -> int:
    try:
        from mpi4py import MPI

        return MPI.COMM_WORLD.rank
    except ImportError:  # pragma: no cover
        return 0


def _say(msg: str, *, err: bool = False) -> None:
    if _rank() == 0:
        print(msg, file=sys.stderr if err else sys.stdout, flush=True)


def _load_case(args):
    """load_case on every rank; a failure on any rank is raised on all (collective)."""
    from .case_loader import load_case
    from .errors import collective_call, fault_point

    _apply_limit_flags(args)

    def load():
        fault_point("load_case")
        return load_case(args.case, getattr(args, "set", None))

    comm = _comm()
    return collective_call(comm, load) if comm is not None else load()


def _comm():
    try:
        from mpi4py import MPI

        return MPI.COMM_WORLD
    except ImportError:  # pragma: no cover
        return None


def _apply_limit_flags(args) -> None:
    """--max-cells / --max-steps / --max-output-gb / --data-dir override the environment
    (every rank parses the same command line, so all ranks agree)."""
    import os

    from .inputs import DATA_DIRS_ENV
    from .limits import ENV_CELLS, ENV_OUTPUT_GB, ENV_STEPS

    for attr, env in (("max_cells", ENV_CELLS), ("max_steps", ENV_STEPS), ("max_output_gb", ENV_OUTPUT_GB)):
        value = getattr(args, attr, None)
        if value is not None:
            os.environ[env] = str(value)
    for d in getattr(args, "data_dir", None) or []:
        prev = os.environ.get(DATA_DIRS_ENV)
        os.environ[DATA_DIRS_ENV] = d if not prev else prev + os.pathsep + d


def cmd_validate(args) -> int:
    from .limits import check_limits

    case = _load_case(args)
    est = check_limits(case)
    _say(
        f"{args.case}: valid case '{case.name}' ({case.geometry.kind} geometry, "
        f"{len(case.regions)} region(s), {len(case.source)} source(s), {len(case.probe)} probe(s), "
        f"{case.time.mode}); hash {case.hash()[:12]}"
        + (f"; about {est['cells']:.3g} cells" if est.get("cells") else "")
    )
    for w in case.warnings():
        _say(f"warning: {w}")
    return 0


def cmd_schema(args) -> int:
    from .config import schema_json, schema_text

    _say(schema_json() if args.json else schema_text())
    return 0


def cmd_tissues(args) -> int:
    from .tissues import library

    lib = library()
    if args.json:
        from .jsonio import dumps

        _say(dumps(lib, indent=2))
        return 0
    _say(f"{'tissue':<20} {'rho kg/m3':>10} {'c J/kg/K':>9} {'k W/m/K':>8} {'W W/m3/K':>9}  source")
    for name in sorted(lib):
        t = lib[name]
        _say(
            f"{name:<20} {t['density_kg_per_m3']:>10.0f} {t['specific_heat_J_per_kgK']:>9.0f} "
            f"{t['conductivity_W_per_mK']:>8.2f} {t['perfusion_W_per_m3K']:>9.0f}  {t['source']}"
        )
    return 0


def cmd_run(args) -> int:
    case = _load_case(args)  # before anything expensive
    for w in case.warnings():
        _say(f"warning: {w}", err=True)
    from .outdir import interrupt_handlers
    from .simulation import run_case

    with interrupt_handlers():
        summary = run_case(case, args.out, overwrite=args.overwrite, progress=not args.quiet, resume=args.resume)
    _print_summary(case, summary)
    if not args.no_report:  # every run has a report (steady runs too)
        _report_collectively(summary["output_dir"])
    _say(f"outputs in {summary['output_dir']} (probes.csv, summary.json, provenance.json, case.toml, fields/)")
    return 0


def _report_collectively(folder) -> None:
    from .errors import OutputError, collective_check

    def draw():
        from .report import make_report

        try:
            return [p.name for p in make_report(folder)]
        except OSError as err:
            raise OutputError(f"report in {folder}: cannot write ({err.strerror or err})") from None

    names = collective_check(_comm(), draw)
    _say("  report: " + ", ".join(names))


def _print_summary(case, summary) -> None:
    _say(
        f"case '{case.name}': {summary['mesh']['cells']} cells, {summary['mesh']['dofs']} dofs on "
        f"{summary['ranks']} rank(s), {summary['wall_time_s']:.1f} s wall; "
        f"max temperature {summary['max_temperature_C']:.2f} C at "
        f"{[round(c, 5) for c in summary['max_temperature_location_m']]} m, t = {summary['max_temperature_time_s']:g} s"
    )
    where = {p["name"]: p["region"] for p in summary.get("probes", [])}
    for name, value in summary["final_probe_temperatures_C"].items():
        _say(f"  probe {name} (in {where.get(name) or '?'}): {value:.3f} C")
    for b in summary.get("boundaries", []):
        if "power_W" in b:
            side = ", interior facets" if b["interior"] else ""
            _say(f"  {b['table']}: heat flux on {b['surfaces']}: {b['power_W']:.4g} W over {b['area_m2']:.4g} m2{side}")
    said = set(case.warnings())  # printed by cmd_run before the run started
    for w in summary.get("warnings", []):
        if w not in said:
            _say(f"  warning: {w}")
    if "manufactured" in summary:
        _say(f"  L2 error against '{summary['manufactured']['solution']}': {summary['manufactured']['l2_error_K_m1.5']:.3e}")
    if "safety" in summary:
        _say(f"  safety: {summary['safety']['verdict']}")
    if "damage" in summary:
        d = summary["damage"]
        _say(f"  ablation zone ({d['criterion']}): {d['ablation_volume_mL']:.3f} mL")
        for r, c in d["tumour_coverage"].items():
            _say(f"  tumour coverage {r}: {100 * c:.1f} %")
        for r, e in d["critical"].items():
            if e["max_temperature_C"] is None:  # every node of the region is next to a point source
                _say(f"  {r}: no node outside the singular neighbourhood of point/line sources")
            else:
                _say(f"  {r}: max {e['max_temperature_C']:.2f} C, CEM43 {e['max_cem43_min']:.3g} min")


def cmd_mesh(args) -> int:
    """Build the case's mesh, print its statistics; --preview writes PNG slices and the tagged
    mesh (XDMF) for ParaView into --out."""
    from .jsonio import dumps

    case = _load_case(args)
    from mpi4py import MPI

    from .errors import OutputError, collective_check
    from .limits import check_limits

    check_limits(case)

    from .preview import draw_slices, mesh_statistics, slice_regions, write_tagged_mesh
    from .simulation import build_case_mesh
    import time

    t0 = time.perf_counter()
    bundle = build_case_mesh(case, MPI.COMM_WORLD)
    build_s = time.perf_counter() - t0
    stats = mesh_statistics(bundle)
    stats["build_or_load_time_s"] = build_s
    stats["source"] = str(bundle.source)
    stats.update(_anatomy_distances(case))
    _say(dumps(stats, indent=2))
    if args.preview:
        out = Path(args.out)

        def make_folder() -> None:
            try:
                out.mkdir(parents=True, exist_ok=True)
                probe = out / f".bioheat-write-test-{os.getpid()}"
                probe.write_text("")
                probe.unlink()
            except OSError as err:
                raise OutputError(f"--out {out}: cannot write the preview there ({err.strerror or err})") from None

        collective_check(MPI.COMM_WORLD, make_folder)
        write_tagged_mesh(bundle, out / "mesh_regions.xdmf")
        slices = slice_regions(case, bundle)

        def draw() -> list[str]:
            try:
                paths = draw_slices(case, bundle, slices, out)
                (out / "mesh_statistics.json").write_text(dumps(stats, indent=2) + "\n")
            except OSError as err:
                raise OutputError(f"--out {out}: cannot write the preview ({err.strerror or err})") from None
            return [str(p) for p in paths]

        paths = collective_check(MPI.COMM_WORLD, draw)
        _say("preview: " + ", ".join(paths) + f", {out / 'mesh_regions.xdmf'}")
    return 0


def _anatomy_distances(case) -> dict:
    """Smallest distances from tumours and applicator tips to cord and dura (spine cases)."""
    if case.geometry.kind != "spine":
        return {}
    from meshes import spine_dimensions as sd

    geom = case.geometry
    out = {}
    for i, tum in enumerate(geom.tumour):
        for region in ("dura", "spinal_cord"):
            out[f"tumour_{tum.name}_to_{region}_m"] = sd.tumour_distance(geom, i, region)
    for ap in case.applicator:
        for j, (_, centre) in enumerate(ap.positions()):
            end = ap.tip_segment(centre)[1]
            d = sd.check_track(geom, ap.catheter_entry_m(end), end, ap.catheter_radius_m, ap.tip_length_m)
            out[f"tip_{ap.name}@{j}_to_dura_m"] = d.dura_m
            out[f"tip_{ap.name}@{j}_to_spinal_cord_m"] = d.spinal_cord_m
            out[f"catheter_{ap.name}@{j}_canal_clearance_m"] = d.canal_m
    return out


def cmd_report(args) -> int:
    from .errors import OutputError, collective_check
    from .outdir import is_tool_folder

    folder = Path(args.dir)

    def draw() -> list[str]:
        if not folder.is_dir():
            raise OutputError(f"{folder}: not a folder (give the result folder of bioheat run)")
        if not is_tool_folder(folder):
            raise OutputError(f"{folder}: not a result folder of bioheat run (no summary.json of this tool)")
        from .report import make_report

        try:
            return [str(p) for p in make_report(folder, convention=args.convention)]
        except OSError as err:
            raise OutputError(f"{folder}: cannot read or write the report ({err.strerror or err})") from None
        except (ValueError, KeyError, TypeError, IndexError) as err:
            raise OutputError(
                f"{folder}: the result files are incomplete or damaged ({type(err).__name__}); re-run the case"
            ) from None

    for p in collective_check(_comm(), draw):
        _say(p)
    if not (folder / "report_data.npz").exists():
        _say(
            f"note: {folder / 'report_data.npz'} is missing, so maps.png and dose_histogram.png were not "
            "redrawn (an older copy may still be in the folder); re-run the case to redraw them"
        )
    return 0


def cmd_reproduce(args) -> int:
    """Re-run DIR/case.toml into a new folder and compare the metrics with DIR/summary.json."""
    from .reproduce import reproduce

    from .outdir import interrupt_handlers

    _apply_limit_flags(args)
    with interrupt_handlers():
        ok, lines = reproduce(Path(args.dir), Path(args.out) if args.out else None, progress=not args.quiet)
    for line in lines:
        _say(line)
    return 0 if ok else EXIT_MISMATCH


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bioheat", description="Spinal LITT bioheat simulation engine")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a case file")
    r.add_argument("case", help="case file (TOML)")
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    r.add_argument(
        "--resume", action="store_true",
        help="continue an interrupted run from the newest complete checkpoint in OUT.checkpoint/",
    )
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--no-report", action="store_true", help="skip the PNG/markdown report")
    _set_flag(r)
    _limit_flags(r)
    r.set_defaults(func=cmd_run)
    rr = sub.add_parser("reproduce", help="re-run a result folder's case into a new folder and compare the metrics")
    rr.add_argument("dir", help="result folder of bioheat run")
    rr.add_argument("--out", help="folder for the re-run (default: DIR-reproduce-TIME next to DIR)")
    rr.add_argument("--quiet", action="store_true", help="no progress bar")
    _limit_flags(rr)
    rr.set_defaults(func=cmd_reproduce)
    m = sub.add_parser("mesh", help="build the case's mesh and print its statistics")
    m.add_argument("case")
    m.add_argument("--preview", action="store_true", help="write PNG slices and the tagged mesh")
    m.add_argument("--out", default="results/mesh", help="folder for --preview outputs")
    _set_flag(m)
    _limit_flags(m)
    m.set_defaults(func=cmd_mesh)
    rp = sub.add_parser("report", help="(re)draw the PNG figures and report.md of a result folder")
    rp.add_argument("dir", help="result folder of bioheat run")
    rp.add_argument("--convention", choices=["radiological", "neurological"], default=None,
                    help="axial image display: radiological (patient's left on the image right) or neurological; "
                    "default: the case's output.report_convention (radiological)")
    rp.set_defaults(func=cmd_report)
    v = sub.add_parser("validate", help="check a case file without running it")
    v.add_argument("case")
    _set_flag(v)
    _limit_flags(v)
    v.set_defaults(func=cmd_validate)
    s = sub.add_parser("schema", help="print every case-file key with unit, type and default")
    s.add_argument("--json", action="store_true", help="JSON schema instead of text")
    s.set_defaults(func=cmd_schema)
    t = sub.add_parser("tissues", help="print the default tissue library")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_tissues)
    from .sweep.cli import add_sweep_parser

    add_sweep_parser(sub)
    return p


def _set_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a case key before validation, e.g. applicator[0].power_W=8 or "
                   "geometry.tumour[0].center_m[1]=0.006 (repeatable; VALUE is TOML, bare words are strings)")


def _limit_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-cells", type=float, help="cap on the estimated mesh cells (default 5e6; SPINE_LITT_MAX_CELLS)")
    p.add_argument("--max-steps", type=float, help="cap on the time steps (default 1e6; SPINE_LITT_MAX_STEPS)")
    p.add_argument("--max-output-gb", type=float, help="cap on the field output (default 20; SPINE_LITT_MAX_OUTPUT_GB)")
    p.add_argument("--data-dir", action="append", metavar="DIR",
                   help="a folder outside the case's folder that referenced files may come from (SPINE_LITT_DATA_DIRS)")


def _fail(err: BaseException, code: int, label: str, with_traceback: bool = False) -> int:
    """Report an error and return the exit code; under MPI with an error met by this rank
    alone, print it from this rank (the message line first, then the traceback when asked) and
    end every rank (MPI_Abort, after a moment for mpiexec to forward the output)."""
    from .errors import MAX_MESSAGE_CHARS, abort_after_output, is_collective, shorten

    text = shorten(str(err), MAX_MESSAGE_CHARS)
    comm = _comm()
    if comm is not None and comm.size > 1 and not is_collective(err):
        print(f"{label} (rank {comm.rank} of {comm.size}): {text}", file=sys.stderr, flush=True)
        if with_traceback:
            import traceback

            traceback.print_exc()
        abort_after_output(comm, code)
        return code  # pragma: no cover - Abort does not return
    _say(f"{label}: {text}", err=True)
    return code


def main(argv: list[str] | None = None) -> int:
    from .errors import (
        CaseError,
        InjectedFault,
        Interrupted,
        OutputError,
        RunInterrupted,
        SolverError,
        abort_on_uncaught,
        fault_point,
    )

    abort_on_uncaught(_comm())
    args = build_parser().parse_args(argv)
    fault_point("startup")  # tests: an exception before the handlers below (the excepthook net)
    try:
        return args.func(args)
    except RunInterrupted as err:
        _say(f"interrupted: {err}", err=True)
        return EXIT_INTERRUPTED
    except (CaseError, OutputError) as err:
        return _fail(err, EXIT_INPUT, "error")
    except SolverError as err:
        return _fail(err, EXIT_SOLVER, "solver error")
    except Interrupted as err:
        return _fail(err, 128 + err.signum, "interrupted")
    except KeyboardInterrupt as err:
        return _fail(err, 130, "interrupted")
    except InjectedFault as err:  # tests of the failure paths (SPINE_LITT_FAULT)
        return _fail(err, 1, "error")
    except OSError as err:  # the environment (disk full, permissions, a file vanished): no traceback
        return _fail(err, EXIT_INPUT, "error: file system")
    except RecursionError as err:
        return _fail(err, EXIT_INPUT, "error: input nested too deeply")
    except Exception as err:  # a bug: traceback for the developer, and never a hang under MPI
        comm = _comm()
        if comm is not None and comm.size > 1:
            return _fail(err, 1, f"internal error {type(err).__name__}", with_traceback=True)
        raise


if __name__ == "__main__":
    sys.exit(main())
