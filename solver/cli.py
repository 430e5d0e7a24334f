"""Command line: ``bioheat run | validate | schema | tissues``.

Exit codes: 0 success, 2 invalid input (case, output folder), 3 solver failure.
Messages go to stderr from rank 0 only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_INPUT = 2
EXIT_SOLVER = 3


def _rank() -> int:
    try:
        from mpi4py import MPI

        return MPI.COMM_WORLD.rank
    except ImportError:  # pragma: no cover
        return 0


def _say(msg: str, *, err: bool = False) -> None:
    if _rank() == 0:
        print(msg, file=sys.stderr if err else sys.stdout, flush=True)


def cmd_validate(args) -> int:
    from .config import load_case

    case = load_case(args.case)
    _say(
        f"{args.case}: valid case '{case.name}' ({case.geometry.kind} geometry, "
        f"{len(case.regions)} region(s), {len(case.source)} source(s), {len(case.probe)} probe(s), "
        f"{case.time.mode}); hash {case.hash()[:12]}"
    )
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
    from .config import load_case

    case = load_case(args.case)  # before anything expensive
    from .output import check_output_dir

    if _rank() == 0:
        check_output_dir(Path(args.out), args.overwrite)
    from .simulation import run_case

    summary = run_case(case, args.out, overwrite=args.overwrite, progress=not args.quiet)
    _say(
        f"case '{case.name}': {summary['mesh']['cells']} cells, {summary['mesh']['dofs']} dofs on "
        f"{summary['ranks']} rank(s), {summary['wall_time_s']:.1f} s wall; "
        f"max temperature {summary['max_temperature_C']:.2f} C at "
        f"{[round(c, 5) for c in summary['max_temperature_location_m']]} m, t = {summary['max_temperature_time_s']:g} s"
    )
    for warning in summary.get("warnings", []):
        _say(f"warning: {warning}", err=True)
    for name, value in summary["final_probe_temperatures_C"].items():
        _say(f"  probe {name}: {value:.3f} C")
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
    if not args.no_report and "damage" in summary and _rank() == 0:
        from .report import make_report

        figures = make_report(summary["output_dir"])
        _say("  report: " + ", ".join(p.name for p in figures))
    _say(f"outputs in {summary['output_dir']} (probes.csv, summary.json, case.toml, fields/)")
    return 0


def cmd_mesh(args) -> int:
    """Build the case's mesh, print its statistics; --preview writes PNG slices and the tagged
    mesh (XDMF) for ParaView into --out."""
    from .config import load_case
    from .jsonio import dumps

    case = load_case(args.case)
    from mpi4py import MPI

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
        if _rank() == 0:
            out.mkdir(parents=True, exist_ok=True)
        MPI.COMM_WORLD.barrier()
        write_tagged_mesh(bundle, out / "mesh_regions.xdmf")
        slices = slice_regions(case, bundle)
        if _rank() == 0:
            paths = draw_slices(case, bundle, slices, out)
            (out / "mesh_statistics.json").write_text(dumps(stats, indent=2) + "\n")
            _say("preview: " + ", ".join(str(p) for p in paths) + f", {out / 'mesh_regions.xdmf'}")
    return 0


def _anatomy_distances(case) -> dict:
    """Smallest distances from tumours and applicator tips to cord and dura (spine cases)."""
    if case.geometry.kind != "spine":
        return {}
    try:
        from meshes import spine_dimensions as sd
    except ImportError:  # pragma: no cover
        return {}
    geom = case.geometry
    out = {}
    for i, tum in enumerate(geom.tumour):
        for region in ("dura", "spinal_cord"):
            out[f"tumour_{tum.name}_to_{region}_m"] = sd.tumour_distance(geom, i, region)
    for ap in case.applicator:
        for j, (_, centre) in enumerate(ap.positions()):
            end = ap.tip_segment(centre)[1]
            entry = ap.entry_m if ap.entry_m is not None else tuple(end[k] - 0.1 * ap.axis[k] for k in range(3))
            d = sd.check_track(geom, entry, end, ap.catheter_radius_m, ap.tip_length_m)
            out[f"tip_{ap.name}@{j}_to_dura_m"] = d.dura_m
            out[f"tip_{ap.name}@{j}_to_spinal_cord_m"] = d.spinal_cord_m
            out[f"catheter_{ap.name}@{j}_canal_clearance_m"] = d.canal_m
    return out


def cmd_report(args) -> int:
    from .config import OutputError
    from .report import make_report

    folder = Path(args.dir)
    if not (folder / "summary.json").exists():
        raise OutputError(f"{folder}: no summary.json (not a result folder of bioheat run)")
    if _rank() == 0:
        for p in make_report(folder):
            _say(str(p))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bioheat", description="Spinal LITT bioheat simulation engine")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a case file")
    r.add_argument("case", help="case file (TOML)")
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--no-report", action="store_true", help="skip the PNG/markdown report")
    r.set_defaults(func=cmd_run)
    m = sub.add_parser("mesh", help="build the case's mesh and print its statistics")
    m.add_argument("case")
    m.add_argument("--preview", action="store_true", help="write PNG slices and the tagged mesh")
    m.add_argument("--out", default="results/mesh", help="folder for --preview outputs")
    m.set_defaults(func=cmd_mesh)
    rp = sub.add_parser("report", help="(re)draw the PNG figures and report.md of a result folder")
    rp.add_argument("dir", help="result folder of bioheat run")
    rp.set_defaults(func=cmd_report)
    v = sub.add_parser("validate", help="check a case file without running it")
    v.add_argument("case")
    v.set_defaults(func=cmd_validate)
    s = sub.add_parser("schema", help="print every case-file key with unit, type and default")
    s.add_argument("--json", action="store_true", help="JSON schema instead of text")
    s.set_defaults(func=cmd_schema)
    t = sub.add_parser("tissues", help="print the default tissue library")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_tissues)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .config import CaseError, OutputError

    try:
        return args.func(args)
    except (CaseError, OutputError) as err:
        _say(f"error: {err}", err=True)
        return EXIT_INPUT
    except Exception as err:
        from .bioheat import SolverError

        if isinstance(err, SolverError):
            _say(f"solver error: {err}", err=True)
            return EXIT_SOLVER
        raise


if __name__ == "__main__":
    sys.exit(main())
