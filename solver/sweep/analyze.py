"""``bioheat sweep analyze DIR``: sensitivity, probability of an unsafe verdict, plots.

Writes into ``DIR/analysis/``:

- ``analysis.json`` / ``analysis.md``: per analysed output (for random / lhs also the safety
  index g below, whose drivers are those of the verdict), by design:
  sobol: first-order and total Sobol indices S1, ST with 95 % bootstrap confidence half-widths
  (SALib ``sobol.analyze``, Saltelli/Jansen estimators, no second order);
  morris: mu*, mu, sigma and the 95 % confidence half-width of mu* (SALib ``morris.analyze``),
  computed on the design's unit coordinates, i.e. per full quantile range of each input;
  random / lhs: mean, standard deviation, 5/50/95 % quantiles, and Spearman rank correlations
  of each input with the output (the drivers); the probability of an unsafe verdict k/n with
  95 % Wilson and Clopper-Pearson intervals. For a Latin hypercube these binomial intervals
  are conservative (LHS has at most the variance of independent sampling for outputs that are
  additive-monotone in the inputs; McKay, Beckman & Conover, Technometrics 1979).
- ``vs_<output>.png``: the output against every numeric parameter (PASS green, FAIL red; the
  limit drawn for critical-region temperatures and CEM43);
- ``safety_map.png`` (two numeric parameters: ``--map X Y``, else the first two, for random / lhs
  the two strongest drivers of g): the hottest critical region's maximum temperature
  over the two parameters, the runs marked PASS/FAIL and the verdict boundary: the zero contour
  of g = max over critical regions of max(T_max - T_limit [K], log10(CEM43 / CEM43_limit)),
  which is negative exactly where the verdict is PASS (its zero set does not depend on the
  relative scaling of the two terms), linearly interpolated between runs;
- ``distribution.png`` (random / lhs): histograms of each critical region's maximum temperature
  and CEM43 with the limits, titled with P(unsafe) and its interval;
- ``sobol_<output>.png`` / ``morris_<output>.png``: indices with their confidence intervals.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .collect import collect
from .plan import read_manifest
from .spec import SweepError

Z95 = 1.959963984540054  # standard normal 97.5 % quantile


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion k/n (Wilson, JASA 1927)."""
    if n <= 0:
        raise ValueError("n must be positive")
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def clopper_pearson_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson 1934) interval for a binomial proportion k/n."""
    from scipy.stats import beta

    a = 1.0 - level
    lo = 0.0 if k == 0 else float(beta.ppf(a / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a / 2, k + 1, n - k))
    return lo, hi


def _clean(x: Any) -> Any:
    """Strict-JSON copy: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def _critical_regions(df) -> list[str]:
    return [c[: -len("_max_temperature_C")] for c in df.columns
            if c.endswith("_max_temperature_C") and c != "max_temperature_C"]


def default_outputs(df, manifest) -> list[str]:
    if manifest.get("outputs"):
        return list(manifest["outputs"])
    crit = _critical_regions(df)
    outs = [f"{r}_max_temperature_C" for r in crit] + [f"{r}_max_cem43_min" for r in crit]
    outs += ["ablation_volume_mL"] + [c for c in df.columns if c.endswith("_coverage")]
    return [o for o in outs if o in df.columns] or (["max_temperature_C"] if "max_temperature_C" in df else [])


def safety_index(df) -> np.ndarray:
    """g per row: max over critical regions of max(T - T_limit, log10(CEM43 / CEM43_limit));
    g < 0 exactly when the verdict is PASS."""
    crit = _critical_regions(df)
    g = np.full(len(df), -np.inf)
    for r in crit:
        t = df[f"{r}_max_temperature_C"].to_numpy(float) - df["limit_temperature_C"].to_numpy(float)
        cem = np.maximum(df[f"{r}_max_cem43_min"].to_numpy(float), 1e-30)
        c = np.log10(cem / df["limit_cem43_min"].to_numpy(float))
        g = np.maximum(g, np.maximum(t, c))
    return g


def analyze(folder: str | Path, *, outputs: list[str] | None = None, map_params: list[str] | None = None,
            say=print) -> dict[str, Any]:
    """Analyse a collected sweep (collects first). Returns {'json', 'markdown', 'figures', 'result'}."""
    import matplotlib

    matplotlib.use("Agg")
    folder = Path(folder)
    manifest = read_manifest(folder)
    _, _, runs = collect(folder)
    done = runs[runs["status"] == "done"].set_index("run_id")
    if done.empty:
        raise SweepError(f"{folder}: no complete run to analyse (bioheat sweep run {folder})")
    outputs = outputs or default_outputs(runs, manifest)
    missing = [o for o in outputs if o not in runs.columns]
    if missing:
        raise SweepError(f"--output {missing}: not result columns; available: "
                         f"{[c for c in runs.columns if c not in ('run_id', 'status')]}")
    params = [p["path"] for p in manifest["parameters"]]
    labels = {p["path"]: p.get("label", p["path"]) for p in manifest["parameters"]}
    import pandas as pd

    numeric = [p for p in params if pd.api.types.is_numeric_dtype(runs[p]) and not pd.api.types.is_bool_dtype(runs[p])]
    # per design point (duplicated runs counted per point, as the design weighs them)
    ids = [s["run_id"] for s in manifest["samples"]]
    complete = [rid in done.index for rid in ids]
    out_dir = folder / "analysis"
    out_dir.mkdir(exist_ok=True)
    result: dict[str, Any] = {
        "design": manifest["design"], "design_points": len(ids), "runs": len(runs),
        "runs_done": int(len(done)), "runs_failed": int((runs["status"] == "failed").sum()),
        "outputs": outputs, "parameters": manifest["parameters"],
    }
    figures: list[Path] = []
    design = manifest["design"]
    if design in ("sobol", "morris"):
        if not all(complete):
            raise SweepError(f"{folder}: {complete.count(False)} of {len(ids)} design points have no complete run; "
                             f"{design} indices need every point (run the sweep again: failed runs are retried)")
        problem = {"num_vars": len(params), "names": params, "bounds": [[0.0, 1.0]] * len(params)}
        X = np.array([s["unit"] for s in manifest["samples"]], dtype=float)
        result["sensitivity"] = {}
        for o in outputs:
            Y = done.loc[ids, o].to_numpy(float)
            if not np.all(np.isfinite(Y)):
                raise SweepError(f"output {o!r} is missing in some runs (e.g. no margin without an ablation zone)")
            if design == "sobol":
                from SALib.analyze import sobol

                S = sobol.analyze(problem, Y, calc_second_order=False, conf_level=0.95, seed=manifest["seed"])
                result["sensitivity"][o] = {p: {"S1": S["S1"][j], "S1_conf": S["S1_conf"][j], "ST": S["ST"][j],
                                                "ST_conf": S["ST_conf"][j]} for j, p in enumerate(params)}
            else:
                from SALib.analyze import morris

                S = morris.analyze(problem, X, Y, num_levels=manifest["levels"], conf_level=0.95,
                                   seed=manifest["seed"])
                result["sensitivity"][o] = {p: {"mu_star": S["mu_star"][j], "mu_star_conf": S["mu_star_conf"][j],
                                                "mu": S["mu"][j], "sigma": S["sigma"][j]} for j, p in enumerate(params)}
            figures.append(_plot_indices(out_dir, design, o, result["sensitivity"][o], labels))
    stat_outputs = list(outputs)
    if "safe" in done.columns and _critical_regions(done):
        done = done.copy()
        done["safety_index"] = safety_index(done)  # drivers of the verdict itself
        stat_outputs.append("safety_index")
    point_rows = done.loc[[rid for rid, ok in zip(ids, complete) if ok]]
    if design in ("random", "lhs"):
        from scipy.stats import spearmanr

        result["statistics"] = {}
        for o in stat_outputs:
            y = point_rows[o].to_numpy(float)
            ok = np.isfinite(y)
            entry = {"n": int(ok.sum())}
            if ok.sum() >= 2:
                entry.update(mean=float(np.mean(y[ok])), std=float(np.std(y[ok], ddof=1)),
                             q05=float(np.quantile(y[ok], 0.05)), q50=float(np.quantile(y[ok], 0.5)),
                             q95=float(np.quantile(y[ok], 0.95)))
                drivers = {}
                for p in numeric:
                    x = point_rows[p].to_numpy(float)[ok]
                    if np.ptp(x) > 0 and np.ptp(y[ok]) > 0:
                        rho, pval = spearmanr(x, y[ok])
                        drivers[p] = {"spearman_rho": float(rho), "p_value": float(pval)}
                entry["drivers"] = dict(sorted(drivers.items(), key=lambda kv: -abs(kv[1]["spearman_rho"])))
            result["statistics"][o] = entry
    if "safe" in done.columns:
        safe = point_rows["safe"].astype(bool).to_numpy()
        n, k = len(safe), int((~safe).sum())
        entry = {"n": n, "unsafe": k, "p_unsafe": k / n}
        if design in ("random", "lhs"):
            entry["wilson_95"] = wilson_interval(k, n)
            entry["clopper_pearson_95"] = clopper_pearson_interval(k, n)
        else:
            entry["note"] = f"a {design} design is not a random sample: the fraction is not a probability"
        result["unsafe"] = entry
        if design in ("random", "lhs"):
            figures.append(_plot_distribution(out_dir, point_rows, entry))
    for o in outputs:
        if numeric:
            figures.append(_plot_vs(out_dir, done, o, numeric, labels))
    if map_params:
        bad = [p for p in map_params if p not in numeric]
        if bad:
            raise SweepError(f"--map {bad}: not numeric parameters of this sweep ({numeric})")
        pair = list(map_params)
    else:
        pair = numeric[:2] if len(numeric) >= 2 else None
        drivers = list(result.get("statistics", {}).get("safety_index", {}).get("drivers", {}))
        if len(drivers) >= 2:
            pair = drivers[:2]  # sampled design: the two strongest drivers of the verdict
    if pair and "safe" in done.columns:
        figures.append(_plot_safety_map(out_dir, done, pair, labels, others=len(numeric) > 2))
    result = _clean(result)
    jpath = out_dir / "analysis.json"
    jpath.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    mpath = out_dir / "analysis.md"
    mpath.write_text(_markdown(result, labels))
    for line in _markdown(result, labels).splitlines()[:40]:
        say(line)
    return {"json": jpath, "markdown": mpath, "figures": figures, "result": result}


# --------------------------------------------------------------------------- text
def _fmt(x, nd=3):
    return "n/a" if x is None else f"{x:.{nd}g}"


def _markdown(r: dict, labels: dict) -> str:
    lines = [f"# Sweep analysis ({r['design']})", "",
             f"{r['design_points']} design points, {r['runs']} runs: {r['runs_done']} done, {r['runs_failed']} failed.", ""]
    u = r.get("unsafe")
    if u:
        line = f"Unsafe verdicts: {u['unsafe']} of {u['n']} ({100 * u['p_unsafe']:.1f} %)"
        if "wilson_95" in u:
            w, c = u["wilson_95"], u["clopper_pearson_95"]
            line += (f"; P(unsafe) 95 % interval: Wilson {100 * w[0]:.1f}-{100 * w[1]:.1f} %, "
                     f"Clopper-Pearson {100 * c[0]:.1f}-{100 * c[1]:.1f} %")
        else:
            line += f" ({u['note']})"
        lines += [line, ""]
    for o, s in r.get("sensitivity", {}).items():
        lines += [f"## {o}", ""]
        if r["design"] == "sobol":
            lines += ["| parameter | S1 | +- | ST | +- |", "|---|---|---|---|---|"]
            for p, v in sorted(s.items(), key=lambda kv: -(kv[1]["ST"] or 0)):
                lines.append(f"| {labels.get(p, p)} | {_fmt(v['S1'])} | {_fmt(v['S1_conf'])} | "
                             f"{_fmt(v['ST'])} | {_fmt(v['ST_conf'])} |")
        else:
            lines += ["| parameter | mu* | +- | mu | sigma |", "|---|---|---|---|---|"]
            for p, v in sorted(s.items(), key=lambda kv: -(kv[1]["mu_star"] or 0)):
                lines.append(f"| {labels.get(p, p)} | {_fmt(v['mu_star'])} | {_fmt(v['mu_star_conf'])} | "
                             f"{_fmt(v['mu'])} | {_fmt(v['sigma'])} |")
        lines.append("")
    for o, s in r.get("statistics", {}).items():
        if "mean" not in s:
            continue
        lines += [f"## {o}", "", f"mean {_fmt(s['mean'], 4)}, sd {_fmt(s['std'])}, 5/50/95 %: "
                  f"{_fmt(s['q05'], 4)} / {_fmt(s['q50'], 4)} / {_fmt(s['q95'], 4)} (n = {s['n']})", "",
                  "| driver | Spearman rho | p |", "|---|---|---|"]
        for p, v in s["drivers"].items():
            lines.append(f"| {labels.get(p, p)} | {v['spearman_rho']:+.2f} | {v['p_value']:.2g} |")
        lines.append("")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- plots
def _colours(df):
    if "safe" not in df.columns:
        return ["tab:blue"] * len(df)
    return ["tab:green" if s else "tab:red" for s in df["safe"].astype(bool)]


def _limit_for(o: str, df) -> float | None:
    if o.endswith("_max_temperature_C") and o != "max_temperature_C" and "limit_temperature_C" in df:
        return float(df["limit_temperature_C"].iloc[0])
    if o.endswith("_max_cem43_min") and "limit_cem43_min" in df:
        return float(df["limit_cem43_min"].iloc[0])
    return None


def _safe_name(o: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in o)


def _plot_vs(out_dir: Path, df, o: str, params: list[str], labels: dict) -> Path:
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    n = len(params)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    lim = _limit_for(o, df)
    for ax, p in zip(axes.flat, params):
        ax.scatter(df[p], df[o], c=_colours(df), s=22, edgecolors="k", linewidths=0.3)
        if lim is not None:
            ax.axhline(lim, color="k", ls="--", lw=1)
        if o.endswith("_cem43_min") and np.nanmin(df[o].to_numpy(float)) > 0:
            ax.set_yscale("log")
        ax.set_xlabel(labels.get(p, p))
        ax.set_ylabel(o)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles = [Line2D([], [], marker="o", ls="", color="tab:green", label="PASS"),
               Line2D([], [], marker="o", ls="", color="tab:red", label="FAIL")]
    if lim is not None:
        handles.append(Line2D([], [], color="k", ls="--", label=f"limit {lim:g}"))
    fig.legend(handles=handles, loc="upper right", fontsize=8)
    fig.suptitle(f"{o} against each parameter ({len(df)} runs)")
    fig.tight_layout(rect=(0, 0, 0.92, 0.95))
    path = out_dir / f"vs_{_safe_name(o)}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_safety_map(out_dir: Path, df, pair: list[str], labels: dict, *, others: bool) -> Path:
    import matplotlib.pyplot as plt
    import matplotlib.tri as mtri
    from matplotlib.lines import Line2D

    x = df[pair[0]].to_numpy(float)
    y = df[pair[1]].to_numpy(float)
    crit = _critical_regions(df)
    tmax = np.max(np.stack([df[f"{r}_max_temperature_C"].to_numpy(float) for r in crit]), axis=0)
    g = safety_index(df)
    fig, ax = plt.subplots(figsize=(6.4, 5.0))
    drew = False
    if not others and len(np.unique(x)) >= 2 and len(np.unique(y)) >= 2 and len(df) >= 3:
        # triangulate in scaled coordinates (parameters in different units), plot in real ones
        sx, sy = np.ptp(x), np.ptp(y)
        tri0 = mtri.Triangulation((x - x.min()) / sx, (y - y.min()) / sy)
        tri = mtri.Triangulation(x, y, tri0.triangles)
        cf = ax.tricontourf(tri, tmax, levels=14, cmap="inferno")
        fig.colorbar(cf, ax=ax, label=f"hottest critical region max T (C): {', '.join(crit)}")
        if np.nanmin(g) < 0 < np.nanmax(g):
            ax.tricontour(tri, g, levels=[0.0], colors="cyan", linewidths=2.0)
            drew = True
    else:
        sc = ax.scatter(x, y, c=tmax, cmap="inferno", s=40)
        fig.colorbar(sc, ax=ax, label="hottest critical region max T (C)")
    safe = df["safe"].astype(bool).to_numpy()
    ax.scatter(x[safe], y[safe], marker="o", facecolors="none", edgecolors="tab:green", s=70, linewidths=1.5)
    ax.scatter(x[~safe], y[~safe], marker="x", color="tab:red", s=70, linewidths=2)
    handles = [Line2D([], [], marker="o", ls="", mfc="none", mec="tab:green", label="PASS"),
               Line2D([], [], marker="x", ls="", color="tab:red", label="FAIL")]
    if drew:
        handles.append(Line2D([], [], color="cyan", lw=2, label="verdict boundary (interpolated)"))
    for lo, hi, setter in ((x.min(), x.max(), ax.set_xlim), (y.min(), y.max(), ax.set_ylim)):
        pad = 0.05 * (hi - lo) if hi > lo else 0.05 * abs(hi) or 1.0
        setter(lo - pad, hi + pad)  # markers on the edge of the design stay visible
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    ax.set_xlabel(labels.get(pair[0], pair[0]))
    ax.set_ylabel(labels.get(pair[1], pair[1]))
    title = f"Safety map: {int(safe.sum())} PASS, {int((~safe).sum())} FAIL"
    if others:
        title += "\n(other parameters vary too: a projection)"
    ax.set_title(title)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    path = out_dir / "safety_map.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_distribution(out_dir: Path, df, unsafe: dict) -> Path:
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    crit = _critical_regions(df)
    fig, axes = plt.subplots(2, len(crit), figsize=(4.4 * len(crit), 6.4), squeeze=False)
    tlim = float(df["limit_temperature_C"].iloc[0])
    clim = float(df["limit_cem43_min"].iloc[0])
    for j, r in enumerate(crit):
        t = df[f"{r}_max_temperature_C"].to_numpy(float)
        ax = axes[0, j]
        ax.hist(t, bins=min(20, max(5, len(t) // 3)), color="tab:blue", alpha=0.75, edgecolor="k")
        ax.axvline(tlim, color="tab:red", ls="--", lw=1.5, label=f"limit {tlim:g} C")
        ax.set_xlabel(f"{r} max temperature (C)")
        ax.set_ylabel("runs")
        ax.legend(fontsize=8)
        c = np.maximum(df[f"{r}_max_cem43_min"].to_numpy(float), 1e-6)
        ax = axes[1, j]
        bins = np.logspace(np.log10(c.min()) - 0.1, np.log10(max(c.max(), clim)) + 0.1, 16)
        ax.hist(c, bins=bins, color="tab:purple", alpha=0.75, edgecolor="k")
        ax.set_xscale("log")
        # labelled decades only: on a span under two decades matplotlib labels the minor ticks
        # too, and they overlapped (4x10^-1 ... 6x10^0 run together)
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.axvline(clim, color="tab:red", ls="--", lw=1.5, label=f"limit {clim:g} min")
        ax.set_xlabel(f"{r} max CEM43 (min)")
        ax.set_ylabel("runs")
        ax.legend(fontsize=8)
    w = unsafe["wilson_95"]
    fig.suptitle(f"P(unsafe) = {unsafe['unsafe']}/{unsafe['n']} = {100 * unsafe['p_unsafe']:.1f} % "
                 f"(95 % Wilson {100 * w[0]:.1f}-{100 * w[1]:.1f} %)")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    path = out_dir / "distribution.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_indices(out_dir: Path, design: str, o: str, s: dict, labels: dict) -> Path:
    import matplotlib.pyplot as plt

    names = list(s)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(names) + 2), 3.8))
    pos = np.arange(len(names))
    if design == "sobol":
        ax.bar(pos - 0.18, [s[p]["S1"] for p in names], 0.36, yerr=[s[p]["S1_conf"] for p in names],
               capsize=3, label="S1 (first order)")
        ax.bar(pos + 0.18, [s[p]["ST"] for p in names], 0.36, yerr=[s[p]["ST_conf"] for p in names],
               capsize=3, label="ST (total)")
        ax.set_ylabel("Sobol index (95 % CI)")
        ax.axhline(0, color="k", lw=0.5)
    else:
        ax.bar(pos, [s[p]["mu_star"] for p in names], 0.5, yerr=[s[p]["mu_star_conf"] for p in names],
               capsize=3, label="mu*")
        ax.plot(pos, [s[p]["sigma"] for p in names], "kD", label="sigma")
        ax.set_ylabel(f"{o} per quantile range")
    ax.set_xticks(pos, [labels.get(p, p) for p in names], rotation=20, ha="right", fontsize=8)
    ax.set_title(f"{design} sensitivity of {o}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / f"{design}_{_safe_name(o)}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
