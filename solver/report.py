"""The report a spine surgeon and a physicist read: figures, report.md and report.html from a
result folder (no FEM needed: ``bioheat report DIR [--convention neurological]``).

Inputs: ``summary.json``, ``case.toml``, ``probes.csv``, ``power.csv``, ``critical.csv`` and
``report_data.npz`` (written at the end of a run by ``solver.sampling``). Writes:

- ``maps.png``: the planes of ``solver.sampling.plane_specs`` (axial through the tip centre,
  axial through the hottest critical node when it lies in another plane, sagittal through the
  canal, the plane along the applicator) with the maximum temperature (one colour scale) and
  the damage (one colour scale with the ablation threshold as a tick); region outlines with a
  legend, the ablation contour, the 43/45/57 C isotherms of the maximum temperature, the
  240 CEM43 isodose, the hottest node of each critical region, probes and monitors (numbered,
  keyed below), the catheter (dark grey) apart from outside the domain (light grey).
- ``probes.png`` (transient runs): each critical region's maximum temperature and CEM43 over time
  with the limits, monitors' and probes' temperatures with the monitors' limits and the laser
  power; events annotated; the lag between the laser going off (trip or end of schedule) and
  each critical region's peak.
- ``dose_histogram.png``: cumulative dose-volume histograms (volume-weighted) of each critical
  region and tumour for the maximum temperature, CEM43 and Omega, with the limits that apply.
- ``report.md`` and ``report.html`` (one page): inputs, verdict and the numbers behind it,
  definitions, version, date and commit.

Display convention of axial (and coronal) images: ``radiological`` (default; viewed from the
feet: the patient's left on the image right, anterior up) or ``neurological`` (patient's left
on the image left); case key ``output.report_convention`` or ``--convention``. Spine cases are
drawn in the vertebra's frame (origin at the vertebral body centre, x patient left,
y posterior, z cranial) in millimetres; the plane along the applicator in millimetres from the
tip centre.
"""

from __future__ import annotations

import csv
import datetime as _dt
import html
import json
import math
import subprocess
import zlib
from pathlib import Path

import numpy as np

CONVENTIONS = ("radiological", "neurological")
ISOTHERMS_C = (43.0, 45.0, 57.0)
ISODOSE_CEM43_MIN = 240.0
# stable colours per region name (others: a fixed colour picked from the name's CRC)
REGION_COLOURS = {
    "tumour": "#10d010",
    "spinal_cord": "#2f6bff",
    "dura": "#ff4fd8",
    "csf": "#9fd3ff",
    "epidural_fat": "#ffd84d",
    "epidural_anterior": "#c0504d",
    "cortical_bone": "#f2f2f2",
    "cancellous_bone": "#bdbdbd",
    "posterior_elements": "#d9c8a9",
    "disc_upper": "#b794f6",
    "disc_lower": "#b794f6",
    "nerve_roots": "#ff9d3b",
}
_FALLBACK = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c",
             "#008080", "#9a6324", "#800000", "#808000", "#000075"]
NO_OUTLINE = {"muscle", "body", "cancellous_bone"}  # background regions: their borders are others' borders
OUTSIDE_COLOUR = "#d0d0d0"
CATHETER_COLOUR = "#3a3a3a"
ISOTHERM_COLOUR = "#00e5ff"



def _cooling_text(ap: dict) -> str:
    """How a cavity catheter is cooled (docs/MODEL.md section 2), for the report's inputs."""
    if ap.get("representation") != "cavity":
        return ""
    where = "tip" if ap.get("cooled_surface") == "tip" else "whole catheter"
    if ap.get("cooling") == "fixed_temperature":
        return f" (wall held at it, {where})"
    h = ap.get("coolant_heat_transfer_W_per_m2K")
    return f" (convective, h {h:g} W/m2/K, {where})" if h is not None else ""


def _num(value, fmt: str) -> str:
    """A number formatted, or n/a where it does not exist (null in summary.json)."""
    return "n/a" if value is None else format(value, fmt)

def region_colour(name: str) -> str:
    if name in REGION_COLOURS:
        return REGION_COLOURS[name]
    if name.startswith("tumo"):
        return REGION_COLOURS["tumour"] if name == "tumour" else _FALLBACK[zlib.crc32(name.encode()) % 4]
    return _FALLBACK[zlib.crc32(name.encode()) % len(_FALLBACK)]


# --------------------------------------------------------------------------- inputs


def _read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path, newline="") as fh:
        r = csv.reader(fh)
        header = next(r, [])
        rows = [[float(x) for x in row] for row in r if row]
    return header, (np.array(rows) if rows else np.zeros((0, len(header))))


class Result:
    """A result folder's files, read once."""

    def __init__(self, folder: Path):
        import tomllib

        self.folder = folder
        self.summary = json.loads((folder / "summary.json").read_text())
        self.case = tomllib.loads((folder / "case.toml").read_text()) if (folder / "case.toml").exists() else {}
        p = folder / "report_data.npz"
        self.d = dict(np.load(p, allow_pickle=False)) if p.exists() else None
        self.probes = _read_csv(folder / "probes.csv") if (folder / "probes.csv").exists() else None
        self.power = _read_csv(folder / "power.csv") if (folder / "power.csv").exists() else None
        self.critical_ts = _read_csv(folder / "critical.csv") if (folder / "critical.csv").exists() else None
        self.transient = self.summary.get("mode", "transient") == "transient"

    def strs(self, key: str) -> list[str]:
        if self.d is None or key not in self.d:
            return []
        return [str(x) for x in np.atleast_1d(self.d[key]) if str(x)]

    @property
    def critical(self) -> list[str]:
        return self.strs("critical_regions")

    @property
    def tumours(self) -> list[str]:
        return self.strs("tumour_regions")

    @property
    def limits(self) -> dict:
        return self.summary.get("safety", {}).get("limits", {})

    def laser_off(self) -> tuple[float, str] | None:
        """(time the delivered power last drops to zero, why: a trip or the schedule's end)."""
        if self.power is None or self.power[1].size == 0:
            return None
        rows = self.power[1]
        on = np.flatnonzero(rows[:, 2] > 0.0)
        if len(on) == 0 or on[-1] == len(rows) - 1:
            return None
        t_off = float(rows[on[-1], 0])
        for ev in self.summary.get("control", {}).get("events", []):
            if ev["event"].startswith(("laser stopped", "laser paused", "dose ended")) and abs(ev["time_s"] - t_off) < 1e-6:
                return t_off, f"{ev['monitor']}: {ev['event']}"
        return t_off, "end of the power schedule"


def make_report(folder: str | Path, convention: str | None = None) -> list[Path]:
    """Write the figures, report.md and report.html into ``folder``; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    res = Result(folder)
    if convention is None:
        convention = res.case.get("output", {}).get("report_convention", "radiological")
    if convention not in CONVENTIONS:
        raise ValueError(f"convention = {convention!r}: allowed {CONVENTIONS}")
    written: list[Path] = []
    if res.d is not None:
        written.append(draw_maps(plt, res, folder / "maps.png", convention))
    if res.transient:
        written.append(draw_curves(plt, res, folder / "probes.png"))
    if res.d is not None:
        written.append(draw_dvh(plt, res, folder / "dose_histogram.png"))
    figures = [p for p in written if p]
    blocks = report_blocks(res, [p.name for p in figures], convention)
    written.append(_write_markdown(blocks, folder / "report.md"))
    written.append(_write_html(blocks, folder / "report.html", res))
    return [p for p in written if p]


# --------------------------------------------------------------------------- maps


def _frame_labels(kind: str, anatomical: bool, convention: str) -> dict:
    """Axis names, anatomical letters at the four edges (left, right, top, bottom), and whether
    to flip the horizontal / vertical display axis."""
    if kind == "axial":
        if not anatomical:
            return dict(x="x (mm)", y="y (mm)", edges=None, flip_x=False, flip_y=False)
        radio = convention == "radiological"
        return dict(x="x: towards the patient's left (mm)", y="y: posterior (mm)",
                    edges=("R", "L", "A", "P") if radio else ("L", "R", "A", "P"), flip_x=not radio, flip_y=True)
    if kind == "coronal":
        return dict(x="x (mm)", y="z (mm)", edges=None, flip_x=False, flip_y=False)
    if kind == "sagittal":
        if not anatomical:
            return dict(x="y (mm)", y="z (mm)", edges=None, flip_x=False, flip_y=False)
        return dict(x="y: posterior (mm)", y="z: cranial (mm)", edges=("A", "P", "cranial", "caudal"),
                    flip_x=False, flip_y=False)
    return dict(x="along the applicator from the tip centre, + distal (mm)", y=None, edges=None,
                flip_x=False, flip_y=False)


def _plane_coords(d, n: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """Display coordinates (mm) of the grid: absolute for axis-aligned planes, else relative."""
    u, v = d[f"{n}_u_m"] * 1e3, d[f"{n}_v_m"] * 1e3
    e1, e2 = d[f"{n}_axes"]
    o = d[f"{n}_origin_m"] * 1e3
    aligned = np.isclose(np.abs(e1).max(), 1.0) and np.isclose(np.abs(e2).max(), 1.0)
    if aligned:
        return u + o @ e1, v + o @ e2, True
    return u, v, False


def _to_plane(d, n: str, p) -> tuple[float, float, float]:
    """(u, v) display coordinates (mm) of point p (m) and its distance to the plane (m)."""
    e1, e2 = d[f"{n}_axes"]
    o = d[f"{n}_origin_m"]
    r = np.asarray(p, float) - o
    normal = np.cross(e1, e2)
    u, v = r @ e1, r @ e2
    aligned = np.isclose(np.abs(e1).max(), 1.0) and np.isclose(np.abs(e2).max(), 1.0)
    if aligned:
        u, v = u + o @ e1, v + o @ e2
    return u * 1e3, v * 1e3, abs(r @ normal)


def _damage_quantity(res: Result) -> tuple[str, str, float, float, float]:
    """(npz field, label, threshold as log10, colour range lo, hi) of the damage map."""
    d = res.d
    if str(d.get("criterion_kind", "omega")) == "cem43":
        thr = float(d["threshold"])
        return "cem43", "log10 CEM43 (min)", math.log10(thr), math.log10(thr) - 4, math.log10(thr) + 2
    thr = float(d["threshold"]) if str(d.get("criterion_kind", "omega")) == "omega" else 1.0
    return "omega", "damage log10(Omega)", math.log10(thr), math.log10(thr) - 3, math.log10(thr) + 3


def draw_maps(plt, res: Result, path: Path, convention: str) -> Path:
    from matplotlib import colors as mcolors
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    d = res.d
    planes = res.strs("planes")
    has_dose = "omega" in [k.split("_", 2)[-1] for k in d] or f"{planes[0]}_omega" in d
    anatomical = bool(d["anatomical_frame"])
    names, tags = [str(x) for x in d["region_names"]], [int(x) for x in d["region_tags"]]
    critical, tumours = res.critical, res.tumours
    rows = 2 if has_dose else 1
    ncol = len(planes)
    fig, axes = plt.subplots(rows, ncol, figsize=(4.7 * ncol + 1.2, 4.6 * rows + 1.9), squeeze=False)
    fig.subplots_adjust(left=0.05, right=0.9, top=0.89 if rows == 2 else 0.78, bottom=0.17 if rows == 2 else 0.3,
                        wspace=0.3, hspace=0.22)
    Tvals = np.concatenate([d[f"{n}_T_max"][np.isfinite(d[f"{n}_T_max"])] for n in planes])
    t_lo = math.floor(min(Tvals.min(), 37.0)) if Tvals.size else 37.0
    t_hi = math.ceil(Tvals.max()) if Tvals.size else 38.0
    t_norm = mcolors.Normalize(t_lo, max(t_hi, t_lo + 1))
    t_cmap = plt.get_cmap("inferno").copy()
    t_cmap.set_bad(OUTSIDE_COLOUR)
    if has_dose:
        dq, dlabel, dthr, dlo, dhi = _damage_quantity(res)
        bounds = np.arange(dlo, dhi + 0.5, 1.0)
        d_cmap = plt.get_cmap("RdYlBu_r", len(bounds) - 1).copy()
        d_cmap.set_bad(OUTSIDE_COLOUR)
        d_cmap.set_under(d_cmap(0))
        d_cmap.set_over(d_cmap(len(bounds) - 2))
        d_norm = mcolors.BoundaryNorm(bounds, len(bounds) - 1)
    present: set[str] = set()
    marks_used: list[tuple[str, str, str]] = []
    mark_ids = _mark_ids(res)
    hot_drawn = []
    hot_titles: dict[int, list] = {}
    for col, n in enumerate(planes):
        X, Y, aligned = _plane_coords(d, n)
        kind = str(d[f"{n}_kind"])
        lab = _frame_labels(kind, anatomical, convention)
        region = d[f"{n}_region"]
        cavity = d[f"{n}_cavity"].astype(float)
        for row in range(rows):
            ax = axes[row, col]
            if row == 0:
                im_t = ax.pcolormesh(X, Y, np.ma.masked_invalid(d[f"{n}_T_max"]), cmap=t_cmap, norm=t_norm,
                                     shading="nearest", rasterized=True)
                if res.transient and res.summary.get("mode") != "steady":
                    levels = [c for c in ISOTHERMS_C if np.nanmax(d[f"{n}_T_max"]) >= c]
                    if levels:
                        cs = ax.contour(X, Y, np.nan_to_num(d[f"{n}_T_max"], nan=-1e9), levels=levels,
                                        colors=ISOTHERM_COLOUR, linewidths=1.0,
                                        linestyles=[{43.0: ":", 45.0: "--", 57.0: "-"}[c] for c in levels])
                        ax.clabel(cs, fmt=lambda v: f"{v:g} C", fontsize=6.5, inline=True)
            else:
                z = d[f"{n}_{dq}"]
                with np.errstate(divide="ignore", invalid="ignore"):
                    z = np.log10(np.maximum(z, 1e-30))
                im_d = ax.pcolormesh(X, Y, np.ma.masked_invalid(np.where(np.isnan(d[f"{n}_{dq}"]), np.nan, z)),
                                     cmap=d_cmap, norm=d_norm, shading="nearest", rasterized=True)
                cem = d[f"{n}_cem43"]
                if np.nanmax(cem) >= ISODOSE_CEM43_MIN:
                    ax.contour(X, Y, np.nan_to_num(cem, nan=0.0), levels=[ISODOSE_CEM43_MIN], colors="black",
                               linewidths=1.2, linestyles="--")
            if cavity.any():
                ax.contourf(X, Y, cavity, levels=[0.5, 1.5], colors=[CATHETER_COLOUR])
            for name, tag in zip(names, tags):
                if name in NO_OUTLINE:
                    continue
                mask = np.nan_to_num(region, nan=-1) == tag
                if not mask.any():
                    continue
                present.add(name)
                important = name in critical or name in tumours
                ax.contour(X, Y, mask.astype(float), levels=[0.5], colors=region_colour(name),
                           linewidths=1.7 if important else 0.7)
            if has_dose:
                abl = d[f"{n}_ablation"]
                if np.nanmax(abl) >= float(d["threshold"]):
                    ax.contour(X, Y, np.nan_to_num(abl, nan=0.0), levels=[float(d["threshold"])], colors="white",
                               linewidths=2.4)
            # tip segments
            for seg in d["applicator_segments_m"]:
                (u0, v0, _), (u1, v1, _) = _to_plane(d, n, seg[0]), _to_plane(d, n, seg[1])
                dist = max(_to_plane(d, n, seg[0])[2], _to_plane(d, n, seg[1])[2])
                if dist < 0.002:
                    ax.plot([u0, u1], [v0, v1], color="#ffe600", lw=2.2, solid_capstyle="butt")
            # hottest node of each critical region (named in the column's title)
            hot_here = []
            for r in critical:
                key = f"hot_{r}_where_m"
                if key not in d:
                    continue
                u, v, dist = _to_plane(d, n, d[key])
                if dist <= 0.001:
                    T = float(d[f"hot_{r}_max_temperature_C"])
                    ax.plot(u, v, marker="*", ms=14, mfc=region_colour(r), mec="black", mew=0.8, zorder=6)
                    if row == 0:
                        hot_here.append((r, T))
                    hot_drawn.append(r)
            if hot_here:
                hot_titles[col] = hot_here
            # probes and monitors (numbered; points closer than 0.3 mm share one label)
            spots: dict = {}
            for name, kind_m, pos in zip(res.strs("mark_names"), res.strs("mark_kinds"), d["mark_positions_m"]):
                u, v, dist = _to_plane(d, n, pos)
                if dist > 0.001 or not (X.min() <= u <= X.max() and Y.min() <= v <= Y.max()):
                    continue
                ident = mark_ids[(kind_m, name)]
                key = next((k for k in spots if math.hypot(k[0] - u, k[1] - v) < 0.3), (u, v))
                spots.setdefault(key, []).append((ident, kind_m))
                marks_used.append((ident, kind_m, name))
            for (u, v), items in spots.items():
                monitor = any(k == "monitor" for _, k in items)
                ax.plot(u, v, marker="^" if monitor else "o", ms=5.5, mfc="#ffe600" if monitor else "white",
                        mec="black", mew=0.6, zorder=6)
                ax.annotate("/".join(sorted(i for i, _ in items)), (u, v), xytext=(4, 3), textcoords="offset points",
                            fontsize=6.5, zorder=7, color="black",
                            bbox=dict(boxstyle="square,pad=0.05", fc="white", ec="none", alpha=0.75))
            _orient(ax, X, Y, lab, d, n)
    lim_T = res.limits.get("max_temperature_C", math.inf)
    for col, n in enumerate(planes):
        ax = axes[0, col]
        ax.set_title(str(d[f"{n}_title"]), fontsize=8.5, pad=14 if col in hot_titles else 6)
        if col in hot_titles:
            parts = [f"\u2605 {r.replace('_', ' ')} {T:.1f} C" + (f" > {lim_T:g} C limit" if T >= lim_T else "")
                     for r, T in hot_titles[col]]
            over = any(T >= lim_T for _, T in hot_titles[col])
            ax.text(0.5, 1.005, ",  ".join(parts), transform=ax.transAxes, ha="center", va="bottom", fontsize=7.5,
                    color="#c00000" if over else "black", fontweight="bold" if over else "normal")
    # one colour bar per quantity
    cax = fig.add_axes([0.915, axes[0, -1].get_position().y0, 0.012, axes[0, -1].get_position().height])
    cb = fig.colorbar(im_t, cax=cax)
    cb.set_label("maximum temperature (C)" if res.transient else "temperature (C)")
    if has_dose:
        cax = fig.add_axes([0.915, axes[1, -1].get_position().y0, 0.012, axes[1, -1].get_position().height])
        cb = fig.colorbar(im_d, cax=cax, extend="both")
        ticks = list(bounds)
        cb.set_ticks(ticks)
        cb.set_ticklabels([(f"{t:g}\nablation\nthreshold" if abs(t - dthr) < 1e-9 else f"{t:g}") for t in ticks])
        cb.ax.tick_params(labelsize=7)
        cb.set_label(dlabel)
    # legend
    handles = [Line2D([], [], color=region_colour(r), lw=1.7 if (r in critical or r in tumours) else 0.7,
                      label=r.replace("_", " ")) for r in names if r in present]
    if has_dose:
        handles.append(Line2D([], [], color="white", lw=2.4, label=f"ablation zone ({d['criterion']})",
                              path_effects=_outline(3.8)))
        handles += [Line2D([], [], color=ISOTHERM_COLOUR, ls={43.0: ":", 45.0: "--", 57.0: "-"}[c],
                           label=f"{c:g} C isotherm (max over time)") for c in ISOTHERMS_C]
        handles.append(Line2D([], [], color="black", ls="--", label=f"{ISODOSE_CEM43_MIN:g} CEM43 isodose"))
    if hot_drawn:
        handles.append(Line2D([], [], marker="*", ls="", mfc="white", mec="black", ms=11,
                              label="hottest node of a critical region"))
    if len(d["applicator_segments_m"]):
        handles.append(Line2D([], [], color="#ffe600", lw=2.2, label="diffusing tip"))
    if any(d[f"{n}_cavity"].any() for n in planes):
        handles.append(Patch(fc=CATHETER_COLOUR, label="catheter (cooled, not tissue)"))
    handles.append(Patch(fc=OUTSIDE_COLOUR, ec="0.6", label="outside the model"))
    for h in handles:
        if isinstance(h, Line2D) and h.get_linestyle() not in ("None", "") and not h.get_path_effects():
            h.set_path_effects(_outline(h.get_linewidth() + 1.2))
    fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.04, 0.005), ncol=5, fontsize=7.5, frameon=False)
    if marks_used:
        seen, parts = set(), []
        for ident, kind_m, name in sorted(set(marks_used)):
            if ident not in seen:
                seen.add(ident)
                parts.append(f"{ident} {name}" + (" (monitor)" if kind_m == "monitor" else ""))
        fig.text(0.05, 0.005 + (0.095 if rows == 2 else 0.17), "points within 1 mm of a plane:  " + ",  ".join(parts),
                 fontsize=7.5)
    title, colour = _headline(res)
    conv = ("axial images in radiological convention (patient's left on the image right, viewed from the feet)"
            if convention == "radiological" else "axial images in neurological convention (patient's left on the image left)")
    frame = ("vertebra frame: origin at the vertebral body centre, x left, y posterior, z cranial; " + conv
             if anatomical else "model frame (mm)")
    fig.suptitle(f"{res.summary['case']}\n{title}", fontsize=11, color=colour, y=0.995)
    fig.text(0.5, 0.935 if rows == 2 else 0.86, frame, ha="center", fontsize=7.5, color="0.3")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _outline(width: float = 3.6):
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=width, foreground="0.35")]


def _mark_ids(res: Result) -> dict:
    ids, p, m = {}, 0, 0
    for name, kind in zip(res.strs("mark_names"), res.strs("mark_kinds")):
        if kind == "monitor":
            m += 1
            ids[(kind, name)] = f"M{m}"
        else:
            p += 1
            ids[(kind, name)] = f"P{p}"
    return ids


def _orient(ax, X, Y, lab: dict, d, n: str) -> None:
    ax.set_aspect("equal")
    ax.set_xlim((X.max(), X.min()) if lab["flip_x"] else (X.min(), X.max()))
    ax.set_ylim((Y.max(), Y.min()) if lab["flip_y"] else (Y.min(), Y.max()))
    ax.tick_params(labelsize=7)
    ax.set_xlabel(lab["x"], fontsize=7.5)
    ylabel = lab["y"] if lab["y"] else f"across, {str(d[f'{n}_e2_label'])} (mm)"
    ax.set_ylabel(ylabel, fontsize=7.5)
    if lab["edges"]:
        left, right, top, bottom = lab["edges"]
        box = dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8)
        kw = dict(transform=ax.transAxes, fontsize=8.5, fontweight="bold", bbox=box, zorder=8)
        ax.text(0.015, 0.5, left, ha="left", va="center", **kw)
        ax.text(0.985, 0.5, right, ha="right", va="center", **kw)
        ax.text(0.5, 0.985, top, ha="center", va="top", **kw)
        ax.text(0.5, 0.015, bottom, ha="center", va="bottom", **kw)
    elif lab["y"] is None:
        box = dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8)
        ax.text(0.015, 0.5, "entry", ha="left", va="center", transform=ax.transAxes, fontsize=7.5, bbox=box, zorder=8)
        ax.text(0.985, 0.5, "distal", ha="right", va="center", transform=ax.transAxes, fontsize=7.5, bbox=box, zorder=8)


def _headline(res: Result) -> tuple[str, str]:
    safety = res.summary.get("safety")
    if not safety:
        return ("steady state" if not res.transient else "no thermal dose assessed"), "black"
    crit = res.summary.get("damage", {}).get("critical", {})
    lim = safety.get("limits", {})
    if not crit:
        return "no critical regions in this case", "black"
    parts = []
    for r, e in crit.items():
        if e.get("max_temperature_C") is None:  # every node of the region is next to a point source
            parts.append(f"{r.replace('_', ' ')}: no node outside the singular neighbourhood of point/line sources")
            continue
        over_T = e["max_temperature_C"] >= lim.get("max_temperature_C", math.inf)
        over_D = e["max_cem43_min"] >= lim.get("max_cem43_min", math.inf)
        s = (f"{r.replace('_', ' ')} hottest node {e['max_temperature_C']:.1f} C "
             f"{'>=' if over_T else '<'} {lim['max_temperature_C']:g} C, "
             f"CEM43 {e['max_cem43_min']:.3g} {'>=' if over_D else '<'} {lim['max_cem43_min']:g} min")
        parts.append(s)
    ok = bool(safety.get("pass"))
    return ("PASS: " if ok else "FAIL: ") + ";  ".join(parts), ("#1a7f37" if ok else "#c00000")


# --------------------------------------------------------------------------- curves


def draw_curves(plt, res: Result, path: Path) -> Path | None:
    """Critical regions' maxima, monitors and probes over time, with limits, laser power, events."""
    crit_ts = res.critical_ts if res.critical_ts is not None and res.critical_ts[1].size else None
    probes = res.probes if res.probes is not None and res.probes[1].size else None
    if probes is not None and not any("." not in c for c in probes[0][1:]):
        probes = None  # no probe or monitor columns
    monitors = {m["name"]: m for m in res.case.get("monitor", [])}
    if crit_ts is None and probes is None:
        return None
    panels = (["T", "cem"] if crit_ts is not None else []) + (["points"] if probes is not None else [])
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 2.9 * len(panels) + 1.0), sharex=True, squeeze=False)
    axes = axes[:, 0]
    height = 2.9 * len(panels) + 1.0
    fig.subplots_adjust(left=0.07, right=0.74, top=1.0 - 0.75 / height, bottom=0.5 / height, hspace=0.12)
    lim = res.limits
    off = res.laser_off()
    # laser-on shading on every panel
    if res.power is not None and res.power[1].size:
        pr = res.power[1]
        t0 = np.concatenate([[0.0], pr[:-1, 0]])
        for ax in axes:
            for a, b, p in zip(t0, pr[:, 0], pr[:, 2]):
                if p > 0:
                    ax.axvspan(a, b, color="#fff3b0", lw=0, zorder=0)
    peaks = {}
    for ax, kind in zip(axes, panels):
        if kind in ("T", "cem"):
            header, rows = crit_ts
            t = rows[:, 0]
            for r in res.critical:
                col = header.index(f"{r}.max_temperature_C" if kind == "T" else f"{r}.max_cem43_min")
                y = rows[:, col]
                ax.plot(t, y, color=region_colour(r), lw=2.0, label=f"{r.replace('_', ' ')}: hottest node")
                if kind == "T":
                    k = int(np.argmax(y))
                    peaks[r] = (float(t[k]), float(y[k]))
                    ax.plot(t[k], y[k], marker="*", ms=11, color=region_colour(r), mec="black", zorder=5)
            if kind == "T":
                ax.set_ylabel("max temperature in\ncritical region (C)")
                if "max_temperature_C" in lim:
                    ax.axhline(lim["max_temperature_C"], color="#c00000", ls="--", lw=1.2)
                    ax.annotate(f"critical-region limit {lim['max_temperature_C']:g} C", (0.005, lim["max_temperature_C"]),
                                xycoords=("axes fraction", "data"), xytext=(0, 2), textcoords="offset points",
                                va="bottom", fontsize=8, color="#c00000")
                ax.set_ylim(bottom=min(36.5, ax.get_ylim()[0]), top=max(ax.get_ylim()[1], lim.get("max_temperature_C", 0) + 1))
            else:
                ax.set_yscale("log")
                ax.set_ylabel("max CEM43 in\ncritical region (min)")
                ymax = max(np.nanmax(rows[:, 1:]) * 2, lim.get("max_cem43_min", 1) * 3)
                ax.set_ylim(1e-3, ymax)
                if "max_cem43_min" in lim:
                    ax.axhline(lim["max_cem43_min"], color="#c00000", ls="--", lw=1.2)
                    ax.annotate(f"critical-region limit {lim['max_cem43_min']:g} min", (0.005, lim["max_cem43_min"]),
                                xycoords=("axes fraction", "data"), xytext=(0, 2), textcoords="offset points",
                                va="bottom", fontsize=8, color="#c00000")
        else:
            header, rows = probes
            t = rows[:, 0]
            styles = ["-", "--", ":", "-."]
            ids = _mark_ids(res)
            where = {p["name"]: p.get("region") for p in res.summary.get("probes", [])}

            def where_in(name, sep):
                return f"{sep}{where[name]}" if where.get(name) else ""

            cycle = plt.get_cmap("tab10")
            mon_cycle = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"]
            k = km = 0
            for j, name in enumerate(header[1:], start=1):
                if "." in name:
                    continue
                if name in monitors:
                    m = monitors[name]
                    c = mon_cycle[km % 4]
                    km += 1
                    ax.plot(t, rows[:, j], color=c, lw=3.2, alpha=0.55,
                            label=f"{ids.get(('monitor', name), '')} {name} (monitor{where_in(name, ', in ')})")
                    for key, word in (("high_limit_C", m.get("action", "stop")), ("low_limit_C", "target")):
                        if key in m:
                            ax.axhline(m[key], color=c, ls="-." if key == "low_limit_C" else "--", lw=1.0)
                            ax.annotate(f"{name}: {word} {'above' if key == 'high_limit_C' else ''} {m[key]:g} C".replace("  ", " "),
                                        (0.005, m[key]), xycoords=("axes fraction", "data"), xytext=(0, 2),
                                        textcoords="offset points", va="bottom", fontsize=7, color=c)
                else:
                    c = cycle((k + 4) % 10)
                    ax.plot(t, rows[:, j], color=c, lw=1.2, ls=styles[k % 4],
                            label=f"{ids.get(('probe', name), '')} {name}" + (f" (in {where[name]})" if where.get(name) else ""))
                    k += 1
            ax.set_ylabel("temperature (C)")
        if kind == panels[-1] and res.power is not None and res.power[1].size:  # laser power on the last panel
            pr = res.power[1]
            ax2 = ax.twinx()
            tt = np.concatenate([[0.0], pr[:, 0]])
            ax2.stairs(pr[:, 1], tt, color="0.55", ls="--", lw=1.0, label="requested power")
            ax2.stairs(pr[:, 2], tt, color="0.15", lw=1.2, label="delivered power")
            ax2.set_ylabel("laser power (W)")
            ax2.set_ylim(0, max(pr[:, 1].max(), pr[:, 2].max(), 1e-9) * 1.6)
            ax2.legend(loc="lower left", bbox_to_anchor=(1.09, 0.0), fontsize=7.5, frameon=False)
        ax.legend(loc="upper left", bbox_to_anchor=(1.09 if kind == panels[-1] else 1.01, 1.0), fontsize=7.5, frameon=False)
        ax.grid(alpha=0.25)
    axes[-1].set_xlabel("time (s)  (yellow band: laser on)")
    # events: vertical lines everywhere, labels in the top panel staggered so they do not overlap
    events = res.summary.get("control", {}).get("events", [])
    t_end = float(max(res.critical_ts[1][-1, 0] if crit_ts is not None else 0.0, probes[1][-1, 0] if probes is not None else 0.0))
    if events:  # headroom above the curves for the labels (and the peak stars under them)
        lo, hi = axes[0].get_ylim()
        axes[0].set_ylim(lo, hi + (0.08 + 0.07 * min(len(events), 4)) * (hi - lo))
    last_end, level = -math.inf, 0
    width_per_char = 0.0085 * max(t_end, 1e-9)  # a label's width (s) per character at 7 pt, this figure
    for ev in events:
        for ax in axes:
            ax.axvline(ev["time_s"], color="0.2", lw=0.8, ls=":")
        text = f"{ev['event']} ({ev['monitor']}, t = {ev['time_s']:g} s)"
        # a new row while the previous label still runs past this event's line
        level = level + 1 if ev["time_s"] < last_end else 0
        last_end = max(last_end if level else -math.inf, ev["time_s"] + width_per_char * len(text))
        axes[0].annotate(text, (ev["time_s"], 1.0),
                         xycoords=("data", "axes fraction"), xytext=(3, -10 - 11 * level), textcoords="offset points",
                         fontsize=7, va="top", bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="0.6", alpha=0.9))
    lines = []
    if off is not None and peaks:
        for r, (tp, Tp) in peaks.items():
            lag = tp - off[0]
            when = f"{lag:.0f} s after" if lag >= 0 else f"{-lag:.0f} s before"
            lines.append(f"{r.replace('_', ' ')} peaks at {Tp:.1f} C, t = {tp:g} s: {when} the laser went off "
                         f"(t = {off[0]:g} s, {off[1]})")
    if lines:
        axes[0].text(0.99, 0.04, "\n".join(lines), transform=axes[0].transAxes, ha="right", va="bottom", fontsize=7.5,
                     bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="0.5", alpha=0.9))
    title, colour = _headline(res)
    fig.suptitle(f"{res.summary['case']}: time course\n{title}", fontsize=10, color=colour)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- DVH


def dvh_curves(d, quantity: str, region: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(levels, % of the region's volume at or above each level) of ``quantity`` (T: C;
    cem43: minutes; omega: dimensionless) from report_data."""
    key = f"dvh_{quantity}_{region}"
    if key not in d:
        return None
    if quantity == "T":
        return np.asarray(d["dvh_T_levels_C"]), np.asarray(d[key])
    return 10.0 ** np.asarray(d["dvh_log10_levels"]), np.asarray(d[key])


def _limits_for(res: Result, quantity: str) -> list[tuple[float, str, list[str]]]:
    """(value, label, regions it applies to) of the limits on this quantity."""
    out = []
    lim = res.limits
    crit = res.critical
    kind = str(res.d.get("criterion_kind", "")) if res.d is not None else ""
    thr = float(res.d["threshold"]) if res.d is not None and "threshold" in res.d else None
    if quantity == "T":
        if crit and "max_temperature_C" in lim:
            out.append((lim["max_temperature_C"], f"{lim['max_temperature_C']:g} C: critical-region limit", crit))
        if kind == "isotherm" and res.tumours:
            out.append((thr, f"{thr:g} C: ablation isotherm", res.tumours))
    elif quantity == "cem43":
        if crit and "max_cem43_min" in lim:
            out.append((lim["max_cem43_min"], f"{lim['max_cem43_min']:g} min: critical-region limit", crit))
        if kind == "cem43" and res.tumours:
            out.append((thr, f"{thr:g} min: ablation threshold", res.tumours))
    elif quantity == "omega":
        if kind == "omega" and res.tumours:
            out.append((thr, f"Omega {thr:g}: ablation threshold", res.tumours))
    return out


def draw_dvh(plt, res: Result, path: Path) -> Path | None:
    d = res.d
    regions = res.critical + res.tumours
    quantities = [q for q in ("T", "cem43", "omega") if any(f"dvh_{q}_{r}" in d for r in regions)]
    if not quantities:
        return None
    fig, axes = plt.subplots(1, len(quantities), figsize=(5.0 * len(quantities), 4.4), squeeze=False)
    axes = axes[0]
    fig.subplots_adjust(left=0.06, right=0.98, top=0.8, bottom=0.26, wspace=0.25)
    for ax, q in zip(axes, quantities):
        for r in regions:
            c = dvh_curves(d, q, r)
            if c is None:
                continue
            x, y = c
            ls = "-" if r in res.critical else "--"
            ax.plot(x, y, color=region_colour(r), lw=2.0, ls=ls,
                    label=f"{r.replace('_', ' ')} ({float(d[f'dvh_volume_m3_{r}']) * 1e6:.2f} mL)")
        for value, label, applies in _limits_for(res, q):
            ax.axvline(value, color="#c00000", ls="--", lw=1.1)
            ax.annotate(label, (value, 0.02), xycoords=("data", "axes fraction"), xytext=(-3, 0),
                        textcoords="offset points", rotation=90, va="bottom", ha="right", fontsize=7, color="#c00000")
            notes = []
            for r in applies:
                c = dvh_curves(d, q, r)
                if c is not None:
                    notes.append(f"{r.replace('_', ' ')}: {np.interp(value, c[0], c[1]) if q == 'T' else _at(c, value):.1f} %")
            if notes:
                ax.annotate("volume at or above:\n" + "\n".join(notes), (value, 0.55), xycoords=("data", "axes fraction"),
                            xytext=(6, 0), textcoords="offset points", fontsize=7,
                            bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="#c00000", alpha=0.9))
        if q == "T":
            ax.set_xlabel("maximum temperature (C)" if res.transient else "temperature (C)")
        elif q == "cem43":
            ax.set_xscale("log")
            ax.set_xlim(1e-3, None)
            ax.set_xlabel("CEM43 (min)")
        else:
            ax.set_xscale("log")
            ax.set_xlim(1e-4, None)
            ax.set_xlabel("Arrhenius damage Omega")
        ax.set_ylabel("% of region volume at or above")
        ax.set_ylim(0, 102)
        ax.grid(alpha=0.25)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=8, frameon=False,
               title="solid: critical regions, dashed: tumours (region volume)", title_fontsize=8)
    title, colour = _headline(res)
    fig.suptitle(f"{res.summary['case']}: cumulative dose-volume histograms (volume-weighted)\n{title}",
                 fontsize=9.5, color=colour)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _at(curve, value: float) -> float:
    """% of volume at or above ``value`` on a log-spaced DVH (step: the first level >= value)."""
    x, y = curve
    k = int(np.searchsorted(x, value * (1 - 1e-12)))
    return float(y[min(k, len(y) - 1)])


# --------------------------------------------------------------------------- text report


def _git_commit() -> str | None:
    try:
        r = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).resolve().parent,
                           capture_output=True, text=True, timeout=5)
        if r.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5).stdout
        return r.stdout.strip() + (" (with uncommitted changes)" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _mm(p) -> str:
    return "(" + ", ".join(f"{1e3 * c:.1f}" for c in p) + ") mm"


def _schedule_text(ap: dict) -> str:
    if ap.get("schedule"):
        pts = ap["schedule"]
        parts = []
        for (t0, p0), (t1, _) in zip(pts, pts[1:] + [[None, None]]):
            parts.append(f"{p0:g} W from {t0:g} s" + (f" to {t1:g} s" if t1 is not None else ""))
        return "; ".join(parts) + f" ({ap.get('interpolation', 'step')})"
    if ap.get("power_W") is not None:
        return f"{ap['power_W']:g} W constant"
    return "from " + str(ap.get("schedule_csv"))


def report_blocks(res: Result, figures: list[str], convention: str) -> list[tuple]:
    """The report as blocks: ("h", text), ("p", text), ("table", header, rows), ("list", items),
    ("img", name). Rendered to markdown and HTML."""
    s, case, d = res.summary, res.case, res.d
    b: list[tuple] = [("h1", f"{s['case']}")]
    if case.get("description"):
        b.append(("p", case["description"]))
    title, _ = _headline(res)
    b.append(("verdict", title, bool(s.get("safety", {}).get("pass", True))))
    if s.get("safety", {}).get("verdict"):
        b.append(("p", "Verdict as computed: " + s["safety"]["verdict"]))

    # ---------------------------------------------------------------- inputs
    b.append(("h2", "Inputs"))
    rows = []
    g = case.get("geometry", {})
    geo = g.get("kind", "?") + (f", level {g['level']}" if g.get("level") else "")
    rows.append(("geometry", geo))
    for t in g.get("tumour", []):
        rows.append((f"tumour '{t['name']}'", f"centre {_mm(t['center_m'])}, semi-axes {_mm(t['semi_axes_m'])}"))
    for i, ap in enumerate(case.get("applicator", [])):
        a = np.asarray(ap.get("tip_end_m", [0, 0, 0]), float) - np.asarray(ap.get("entry_m", [0, 0, 0]), float)
        centre = ap.get("tip_center_m")
        if centre is None and ap.get("tip_end_m") is not None and np.linalg.norm(a) > 0:
            centre = np.asarray(ap["tip_end_m"]) - 0.5 * ap.get("tip_length_m", 0.01) * a / np.linalg.norm(a)
        where = f"tip centre {_mm(centre)}" if centre is not None else ""
        if ap.get("track"):
            where += f", {ap['track']} track, {ap.get('side', '')} side"
        rows.append((f"applicator '{ap.get('name', i)}'",
                     f"{where}; tip {1e3 * ap.get('tip_length_m', 0.01):g} mm, catheter radius "
                     f"{1e3 * ap.get('catheter_radius_m', 0):.3g} mm ({ap.get('representation', 'line')}), coolant "
                     f"{ap.get('coolant_temperature_C', 20):g} C{_cooling_text(ap)}"))
        rows.append(("power", _schedule_text(ap)))
        for pos in ap.get("position", []):
            rows.append(("pull-back", f"from {pos['start_s']:g} s tip centre {_mm(pos['tip_center_m'])}"))
    if d is not None:
        for r in res.critical:
            if f"tip_to_{r}_m" in d:
                dist = ", ".join(f"{1e3 * x:.2f}" for x in np.atleast_1d(d[f"tip_to_{r}_m"]))
                rows.append((f"tip to {r.replace('_', ' ')}", f"{dist} mm (nearest node of the region to the diffusing tip axis)"))
    light = case.get("light")
    if light and case.get("applicator"):
        rows.append(("light", f"{light.get('model', '')}, {light.get('wavelength_nm', '')} nm"))
    t = case.get("time", {})
    if t.get("mode", s.get("mode")) == "steady":
        rows.append(("time", "steady state"))
    else:
        rows.append(("time", f"{t.get('scheme', '')}, dt {t.get('dt_s', 0):g} s, end {t.get('end_time_s', 0):g} s, "
                             f"output every {t.get('output_interval_s') or t.get('dt_s', 0):g} s"))
    m = s.get("mesh", {})
    rows.append(("mesh", f"{m.get('cells', '?')} cells, {m.get('dofs', '?')} dofs, P{m.get('element_degree', 1)}, "
                         f"{s.get('ranks', 1)} rank(s)"))
    dmg_cfg = case.get("damage")
    if dmg_cfg and res.critical:
        rows.append(("safety limits", f"critical regions {', '.join(res.critical)}: max T < "
                                      f"{dmg_cfg.get('max_temperature_C', '')} C and CEM43 < {dmg_cfg.get('max_cem43_min', '')} min"))
    for mon in case.get("monitor", []):
        lims = []
        if "high_limit_C" in mon:
            lims.append(f"{mon.get('action', 'stop')} above {mon['high_limit_C']:g} C")
        if "low_limit_C" in mon:
            lims.append(f"target {mon['low_limit_C']:g} C")
        rows.append((f"monitor '{mon['name']}'", f"at {_mm(mon['position_m'])}, " + ", ".join(lims)))
    b.append(("table", ("input", "value"), rows))

    # ---------------------------------------------------------------- results
    b.append(("h2", "Results"))
    dmg = s.get("damage")
    if dmg:
        txt = f"Ablation zone ({dmg['criterion']}): {dmg['ablation_volume_mL']:.2f} mL"
        if "extent_along_axis_m" in dmg:
            txt += (f", {1e3 * dmg['extent_along_axis_m']:.1f} mm along the applicator and "
                    f"{1e3 * dmg['extent_across_axis_m']:.1f} mm across")
        b.append(("p", txt + "."))
        if dmg.get("tumour_coverage"):
            b.append(("table", ("tumour", "coverage"),
                      [(r, f"{100 * c:.1f} %") for r, c in dmg["tumour_coverage"].items()]))
        if dmg.get("critical"):
            rows = []
            for r, e in dmg["critical"].items():
                margin = "n/a" if e.get("margin_m") is None else f"{1e3 * e['margin_m']:.2f}"
                when = "n/a" if e.get("max_temperature_time_s") is None else f"{e['max_temperature_time_s']:g}"
                where = _mm(e["max_temperature_location_m"]) if e.get("max_temperature_location_m") else "n/a"
                rows.append((r, _num(e["max_temperature_C"], ".2f"), when, where, _num(e["max_cem43_min"], ".3g"),
                             _num(e["max_omega"], ".3g"), _num(e["time_above_43C_s"], ".0f"),
                             _num(e["time_above_45C_s"], ".0f"), margin, "yes" if e["safe"] else "NO"))
            b.append(("table", ("critical region", "max T (C)", "at (s)", "hottest node", "max CEM43 (min)",
                                "max Omega", "> 43 C (s)", "> 45 C (s)", "margin (mm)", "within limits"), rows))
        healthy = {r: v for r, v in dmg.get("healthy_ablated_volume_m3", {}).items() if v > 0}
        if healthy:
            b.append(("p", "Ablated healthy tissue: " + ", ".join(f"{r} {v * 1e6:.3f} mL" for r, v in healthy.items()) + "."))
    ctrl = s.get("control")
    if ctrl:
        b.append(("p", f"Laser energy: requested {ctrl['requested_energy_J']:.0f} J, delivered "
                       f"{ctrl['delivered_energy_J']:.0f} J."))
        items = [f"t = {ev['time_s']:g} s: {ev['event']}"
                 + ("" if ev.get("temperature_C") is None else f" ({ev['monitor']}: {ev['temperature_C']:.2f} C)")
                 for ev in ctrl["events"]]
        off = res.laser_off()
        if off is not None and res.critical_ts is not None and res.critical_ts[1].size:
            header, rows_ = res.critical_ts
            for r in res.critical:
                col = header.index(f"{r}.max_temperature_C")
                k = int(np.argmax(rows_[:, col]))
                lag = rows_[k, 0] - off[0]
                items.append(f"{r}: peak {rows_[k, col]:.2f} C at t = {rows_[k, 0]:g} s, {lag:+.0f} s after the laser "
                             f"went off at t = {off[0]:g} s ({off[1]})")
        if items:
            b.append(("list", items))
    b.append(("p", f"Maximum temperature {s['max_temperature_C']:.2f} C at {_mm(s['max_temperature_location_m'])}, "
                   f"t = {s['max_temperature_time_s']:g} s."))

    if s.get("probes"):
        b.append(("table", ("probe / monitor", "position", "region"),
                  [(p["name"], _mm(p["position_m"]), p.get("region") or "outside") for p in s["probes"]]))
    if s.get("warnings"):
        b.append(("p", "Warnings:"))
        b.append(("list", list(s["warnings"])))

    # ---------------------------------------------------------------- definitions
    b.append(("h2", "Definitions"))
    defs = [
        "Ablation zone: where the case's criterion holds at the end of the run (Arrhenius Omega >= 1, "
        "CEM43 >= 240 min, or maximum temperature >= 57 C); volumes are integrals over the mesh with "
        "degree-4 quadrature.",
        "Coverage: fraction of the tumour's volume inside the ablation zone.",
        "Margin (critical region): the smallest distance from the region's nodes to the ablation zone's "
        "boundary; negative when the zone reaches into the region (minus the deepest reach).",
        "Hottest node: the node of the region with the highest temperature over the whole run; the "
        "verdict compares it and the highest CEM43 with the limits.",
        "Dose-volume histogram: % of the region's volume (quadrature-weighted, not node counts) whose "
        "maximum temperature, CEM43 or Omega is at or above the value on the horizontal axis.",
        "CEM43: cumulative equivalent minutes at 43 C (Sapareto and Dewey 1984); Omega: Arrhenius damage integral.",
    ]
    if d is not None and bool(d["anatomical_frame"]):
        defs.append("Frame: millimetres in the vertebra's frame (origin at the vertebral body centre, x patient "
                    "left, y posterior, z cranial); the plane along the applicator in millimetres from the tip "
                    "centre. Axial images: " + (
                        "radiological convention (viewed from the feet: the patient's left on the image right, "
                        "anterior up)" if convention == "radiological" else
                        "neurological convention (the patient's left on the image left, anterior up)") +
                    "; set output.report_convention or `bioheat report --convention`.")
    b.append(("list", defs))

    # ---------------------------------------------------------------- provenance
    v = s.get("versions", {})
    commit = s.get("provenance", {}).get("git_commit") if isinstance(s.get("provenance"), dict) else None
    commit = commit or _git_commit() or "not available"
    b.append(("p", f"spine-litt {v.get('spine_litt', '?')}, DOLFINx {v.get('dolfinx', '?')}, PETSc "
                   f"{v.get('petsc', '?')}; commit {commit}; case hash {str(s.get('case_hash', ''))[:12]}; "
                   f"report made {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}."))
    for f in figures:
        b.append(("img", f))
    return b


def _md_cell(x) -> str:
    return str(x).replace("|", "\\|")


def _write_markdown(blocks, path: Path) -> Path:
    out = []
    for blk in blocks:
        k = blk[0]
        if k == "h1":
            out += [f"# {blk[1]}", ""]
        elif k == "h2":
            out += [f"## {blk[1]}", ""]
        elif k == "verdict":
            out += [f"**{blk[1]}**", ""]
        elif k == "p":
            out += [blk[1], ""]
        elif k == "table":
            out.append("| " + " | ".join(_md_cell(h) for h in blk[1]) + " |")
            out.append("|" + "---|" * len(blk[1]))
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in blk[2]]
            out.append("")
        elif k == "list":
            out += [f"- {item}" for item in blk[1]] + [""]
        elif k == "img":
            out += [f"![{blk[1]}]({blk[1]})", ""]
    path.write_text("\n".join(out))
    return path


def _write_html(blocks, path: Path, res: Result) -> Path:
    e = html.escape
    out = ["<!DOCTYPE html><html><head><meta charset='utf-8'>", f"<title>{e(res.summary['case'])}</title>",
           "<style>body{font-family:sans-serif;max-width:1400px;margin:1em auto;font-size:13px}"
           "table{border-collapse:collapse;margin:0.4em 0}td,th{border:1px solid #bbb;padding:2px 6px;text-align:left}"
           ".pass{color:#1a7f37;font-size:16px;font-weight:bold}.fail{color:#c00000;font-size:16px;font-weight:bold}"
           "img{max-width:100%}.cols{display:flex;gap:1.5em}.cols>div{flex:1}</style></head><body>"]
    body_text, images = [], []
    for blk in blocks:
        k = blk[0]
        if k == "h1":
            out.append(f"<h1>{e(blk[1])}</h1>")
        elif k == "h2":
            body_text.append(f"<h2>{e(blk[1])}</h2>")
        elif k == "verdict":
            out.append(f"<p class='{'pass' if blk[2] else 'fail'}'>{e(blk[1])}</p>")
        elif k == "p":
            body_text.append(f"<p>{e(blk[1])}</p>")
        elif k == "table":
            rows = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in blk[2])
            body_text.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in blk[1]) + "</tr>" + rows + "</table>")
        elif k == "list":
            body_text.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in blk[1]) + "</ul>")
        elif k == "img":
            images.append(f"<img src='{e(blk[1])}' alt='{e(blk[1])}'>")
    out.append("<div class='cols'><div>" + "".join(body_text) + "</div></div>")
    out += images
    out.append("</body></html>")
    path.write_text("\n".join(out) + "\n")
    return path
