"""The report a person reads: PNG figures and report.md from a result folder.

``sample_planes`` (collective, at the end of a run) samples the dose fields on two planes
through the applicator tip into ``report_data.npz``; ``make_report(DIR)`` (no FEM needed,
``bioheat report DIR``) draws:

- ``maps.png``: maximum temperature and damage (log10 Omega) in the applicator plane and in
  the axial plane, with the ablation contour, tumour outlines (red), critical regions (blue)
  and the applicator;
- ``probes.png``: probe and monitor temperatures with the limits and the laser power,
  control events marked;
- ``dose_histogram.png``: CEM43 distribution over the nodes of each critical region;
- ``report.md``: metrics table and safety verdict.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

HALF_WIDTH_M = 0.02
GRID = 121
HIST_BINS = np.linspace(-4.0, 4.0, 33)  # log10 CEM43 minutes


def _plane_axes(problem):
    case = problem.case
    if case.applicator:
        ap = case.applicator[0]
        origin = np.asarray(ap.positions()[0][1], float)
        a = np.asarray(ap.axis, float)
    else:
        origin = np.asarray(problem.max_temperature()[1], float)
        a = np.array([1.0, 0.0, 0.0])
    ez = np.array([0.0, 0.0, 1.0])
    w = ez - (ez @ a) * a
    if np.linalg.norm(w) < 1e-8:
        w = np.array([1.0, 0.0, 0.0]) - a[0] * a
    w /= np.linalg.norm(w)
    return origin, a, w


def sample_planes(problem) -> dict:
    """Sample max temperature, Omega, CEM43, the ablation field and region tags on the
    applicator plane (axis, z) and the axial plane (x, y) through the tip centre. Collective."""
    from dolfinx import fem

    from .metrics import ablation_field
    from .probes import evaluate, locate

    origin, a, w = _plane_axes(problem)
    s = np.linspace(-HALF_WIDTH_M, HALF_WIDTH_M, GRID)
    U, W_ = np.meshgrid(s, s, indexing="xy")
    planes = {
        "applicator": (a, w),
        "axial": (np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])),
    }
    Q0 = problem.Q0
    region = fem.Function(Q0)
    for name, tag in problem.bundle.regions.items():
        region.x.array[Q0.dofmap.list[problem.bundle.cell_tags.find(tag)].reshape(-1)] = tag
    region.x.scatter_forward()
    field, threshold, label = ablation_field(problem)
    field, threshold = _display_field(problem, field, threshold)
    dose = problem.dose
    out: dict = {
        "grid_m": s,
        "origin_m": origin,
        "threshold": np.array(threshold),
        "criterion": np.array(label),
        "region_names": np.array(list(problem.bundle.regions)),
        "region_tags": np.array(list(problem.bundle.regions.values())),
        "tumour_regions": np.array(problem.case.tumour_regions() or [""]),
        "critical_regions": np.array(problem.case.critical_regions() or [""]),
    }
    for pname, (e1, e2) in planes.items():
        pts = origin[None, :] + U.reshape(-1, 1) * e1[None, :] + W_.reshape(-1, 1) * e2[None, :]
        located = locate(problem.mesh, pts, allow_outside=True)
        for fname, f in (("T_max", dose.T_max), ("omega", dose.omega), ("cem43", dose.cem43),
                         ("ablation", field), ("region", region)):
            out[f"{pname}_{fname}"] = evaluate(f, located).reshape(GRID, GRID)
        out[f"{pname}_axes"] = np.stack([e1, e2])
    # applicator segments in plane coordinates
    segs = []
    for ap in problem.case.applicator:
        for _, centre in ap.positions():
            p0, p1 = ap.tip_segment(centre)
            segs.append([p0, p1])
    out["applicator_segments_m"] = np.array(segs) if segs else np.zeros((0, 2, 3))
    # CEM43 histograms of critical regions
    from .metrics import RegionNodes

    rn = RegionNodes(problem)
    for r in problem.case.critical_regions():
        vals = dose.cem43.x.array[rn.nodes[r]]
        counts, _ = np.histogram(np.log10(np.maximum(vals, 1e-12)), bins=HIST_BINS)
        counts = problem.comm.allreduce(counts, op=_sum_op())
        out[f"hist_{r}"] = counts
    out["hist_bins_log10_min"] = HIST_BINS
    return out


def _display_field(problem, field, threshold):
    """The ablation contour of the maps is drawn on a quantity that interpolates sanely: the
    damage fraction 1 - exp(-Omega) (in [0, 1)) or log10 CEM43, not the raw dose, whose
    interpolant between nodes decades apart is meaningless (and negative for P2). The zone
    that is measured is solver.zone's; the contour is for display."""
    from dolfinx import fem

    criterion = problem.case.damage.ablation_criterion
    if criterion == "isotherm":
        return field, threshold
    shown = fem.Function(problem.V)
    if criterion == "omega":
        shown.x.array[:] = -np.expm1(-field.x.array)
        return shown, float(-np.expm1(-threshold))
    shown.x.array[:] = np.log10(np.maximum(field.x.array, 1e-30))
    return shown, float(np.log10(threshold))


def _sum_op():
    from mpi4py import MPI

    return MPI.SUM


# --------------------------------------------------------------------------- drawing


def _read_csv(path: Path):
    with open(path, newline="") as fh:
        r = csv.reader(fh)
        header = next(r)
        rows = np.array([[float(x) for x in row] for row in r]) if path.stat().st_size else np.zeros((0, 0))
    return header, rows


def make_report(folder: str | Path) -> list[Path]:
    """Write maps.png, probes.png, dose_histogram.png and report.md into ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    summary = json.loads((folder / "summary.json").read_text())
    written = []
    data_path = folder / "report_data.npz"
    if data_path.exists():
        d = np.load(data_path, allow_pickle=False)
        written.append(_maps(plt, d, summary, folder / "maps.png"))
        written.append(_histogram(plt, d, folder / "dose_histogram.png"))
    written.append(_probes(plt, folder, summary, folder / "probes.png"))
    written.append(_markdown(summary, folder / "report.md", [p.name for p in written if p]))
    return [p for p in written if p]


def _maps(plt, d, summary, path: Path) -> Path:
    s = d["grid_m"] * 1e3
    thr = float(d["threshold"])
    names, tags = list(d["region_names"]), list(d["region_tags"])
    tumours = set(d["tumour_regions"]) - {""}
    critical = set(d["critical_regions"]) - {""}
    fig, axes = plt.subplots(2, 2, figsize=(11, 9.5), constrained_layout=True)
    for row, pname in enumerate(("applicator", "axial")):
        region = d[f"{pname}_region"]
        for col, (key, title, cmap) in enumerate(
            (("T_max", "maximum temperature (C)", "inferno"), ("omega", "damage log10(Omega)", "viridis"))
        ):
            ax = axes[row, col]
            z = d[f"{pname}_{key}"]
            if key == "omega":
                z = np.log10(np.maximum(z, 1e-6))
            im = ax.pcolormesh(s, s, np.ma.masked_invalid(z), cmap=cmap, shading="auto")
            fig.colorbar(im, ax=ax, shrink=0.85)
            abl = d[f"{pname}_ablation"]
            if np.nanmax(np.nan_to_num(abl, nan=-np.inf)) >= thr:
                ax.contour(s, s, np.nan_to_num(abl, nan=0.0), levels=[thr], colors="white", linewidths=2)
            for name, tag in zip(names, tags):
                mask = np.nan_to_num(region, nan=-1) == tag
                if not mask.any() or mask.all():
                    continue
                color = "red" if name in tumours else ("deepskyblue" if name in critical else "0.7")
                lw = 1.6 if (name in tumours or name in critical) else 0.5
                ax.contour(s, s, mask.astype(float), levels=[0.5], colors=color, linewidths=lw)
            e1, e2 = d[f"{pname}_axes"]
            origin = d["origin_m"]
            for seg in d["applicator_segments_m"]:
                uv = [((p - origin) @ e1 * 1e3, (p - origin) @ e2 * 1e3) for p in seg]
                ax.plot([uv[0][0], uv[1][0]], [uv[0][1], uv[1][1]], color="lime", lw=3)
            ax.set_aspect("equal")
            ax.set_title(f"{pname} plane: {title}")
            ax.set_xlabel("mm")
            ax.set_ylabel("mm")
    verdict = summary.get("safety", {}).get("verdict", "")
    fig.suptitle(
        f"{summary['case']}: ablation ({d['criterion']}) white, tumour red, critical blue, tip green\n{verdict}",
        fontsize=10,
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _histogram(plt, d, path: Path) -> Path | None:
    keys = [k for k in d.files if k.startswith("hist_") and k != "hist_bins_log10_min"]
    if not keys:
        return None
    bins = d["hist_bins_log10_min"]
    fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    centres = 0.5 * (bins[:-1] + bins[1:])
    width = (bins[1] - bins[0]) / (len(keys) + 1)
    for i, k in enumerate(keys):
        counts = d[k]
        total = max(counts.sum(), 1)
        ax.bar(centres + i * width, 100.0 * counts / total, width=width, label=k[5:])
    ax.axvline(math.log10(6.0), color="red", ls="--", label="6 CEM43 (cord limit)")
    ax.axvline(math.log10(240.0), color="black", ls=":", label="240 CEM43 (ablation)")
    ax.set_xlabel("log10 CEM43 (min)")
    ax.set_ylabel("% of region nodes")
    ax.legend()
    ax.set_title("thermal dose in critical regions")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _probes(plt, folder: Path, summary: dict, path: Path) -> Path | None:
    if not (folder / "probes.csv").exists():
        return None
    header, rows = _read_csv(folder / "probes.csv")
    if rows.size == 0 or len(header) < 2:
        return None
    fig, ax = plt.subplots(figsize=(9, 5), constrained_layout=True)
    t = rows[:, 0]
    for j, name in enumerate(header[1:], start=1):
        if "." not in name:
            ax.plot(t, rows[:, j], label=name)
    limits = summary.get("safety", {}).get("limits", {})
    if limits:
        ax.axhline(limits["max_temperature_C"], color="red", ls="--", lw=1, label="critical limit")
    case_toml = folder / "case.toml"
    if case_toml.exists():
        import tomllib

        case = tomllib.loads(case_toml.read_text())
        for m in case.get("monitor", []):
            if "high_limit_C" in m:
                ax.axhline(m["high_limit_C"], color="orange", ls=":", lw=1)
            if "low_limit_C" in m:
                ax.axhline(m["low_limit_C"], color="green", ls=":", lw=1)
    for ev in summary.get("control", {}).get("events", []):
        ax.axvline(ev["time_s"], color="k", lw=0.8)
        ax.annotate(ev["event"], (ev["time_s"], ax.get_ylim()[1]), rotation=90, va="top", fontsize=7)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("temperature (C)")
    if (folder / "power.csv").exists():
        ph, pr = _read_csv(folder / "power.csv")
        if pr.size:
            ax2 = ax.twinx()
            ax2.step(pr[:, 0], pr[:, 1], where="pre", color="0.6", ls="--", label="requested power")
            ax2.step(pr[:, 0], pr[:, 2], where="pre", color="0.2", label="delivered power")
            ax2.set_ylabel("laser power (W)")
            ax2.legend(loc="lower right", fontsize=8)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"{summary['case']}: probes and monitors")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _num(value, fmt: str) -> str:
    """A number formatted, or n/a where it does not exist (null in summary.json)."""
    return "n/a" if value is None else format(value, fmt)


def _markdown(summary: dict, path: Path, figures: list[str]) -> Path:
    lines = [f"# {summary['case']}", ""]
    for w in summary.get("warnings", []):
        lines += [f"**Warning:** {w}", ""]
    safety = summary.get("safety")
    if safety:
        lines += [f"**Safety verdict:** {safety['verdict']}", ""]
    dmg = summary.get("damage")
    if dmg:
        lines += [
            f"Ablation zone ({dmg['criterion']}): {dmg['ablation_volume_mL']:.3f} mL",
            "",
        ]
        if "extent_along_axis_m" in dmg:
            lines += [
                f"Extent along the applicator axis {1e3 * dmg['extent_along_axis_m']:.1f} mm, "
                f"across {1e3 * dmg['extent_across_axis_m']:.1f} mm",
                "",
            ]
        if dmg["tumour_coverage"]:
            lines += ["| tumour | coverage |", "|---|---|"]
            lines += [f"| {r} | {100 * c:.1f} % |" for r, c in dmg["tumour_coverage"].items()]
            lines.append("")
        if dmg["critical"]:
            lines += [
                "| critical region | max T (C) | at (s) | max CEM43 (min) | max Omega | >43 C (s) | >45 C (s) | margin (mm) | safe |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for r, e in dmg["critical"].items():
                margin = "n/a" if e["margin_m"] is None else f"{1e3 * e['margin_m']:.2f}"
                when = "n/a" if e["max_temperature_time_s"] is None else f"{e['max_temperature_time_s']:g}"
                lines.append(
                    f"| {r} | {_num(e['max_temperature_C'], '.2f')} | {when} | {_num(e['max_cem43_min'], '.3g')} | "
                    f"{_num(e['max_omega'], '.3g')} | {_num(e['time_above_43C_s'], '.0f')} | "
                    f"{_num(e['time_above_45C_s'], '.0f')} | {margin} | "
                    f"{'yes' if e['safe'] else 'NO'} |"
                )
            lines.append("")
        healthy = {r: v for r, v in dmg["healthy_ablated_volume_m3"].items() if v > 0}
        if healthy:
            lines += ["Ablated healthy tissue: " + ", ".join(f"{r} {v * 1e6:.3f} mL" for r, v in healthy.items()), ""]
    ctrl = summary.get("control")
    if ctrl:
        lines += [
            f"Laser energy: requested {ctrl['requested_energy_J']:.0f} J, delivered {ctrl['delivered_energy_J']:.0f} J",
            "",
        ]
        for ev in ctrl["events"]:
            reading = "" if ev["temperature_C"] is None else f" ({ev['monitor']}: {ev['temperature_C']:.2f} C)"
            lines.append(f"- t = {ev['time_s']:g} s: {ev['event']}{reading}")
        lines.append("")
    lines += [f"Maximum temperature {summary['max_temperature_C']:.2f} C at t = {summary['max_temperature_time_s']:g} s", ""]
    lines += [f"![{f}]({f})" for f in figures if f.endswith(".png")]
    path.write_text("\n".join(lines) + "\n")
    return path
