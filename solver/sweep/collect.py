"""``bioheat sweep collect DIR``: one table of every run's varied parameters and metrics.

Writes ``DIR/results.csv`` and ``DIR/results.parquet`` (pandas + pyarrow), one row per run,
ordered by run id. Columns: ``run_id``, ``status`` (done / failed / running / pending), one
column per varied parameter (named by its --set path), then the metrics of done runs (see
solver.sweep.execute.metrics_from_summary): ablation volume (mL), tumour coverage (fraction),
per critical region maximum temperature (C), maximum CEM43 (min) and margin (m, negative when
the ablation zone overlaps the region), the verdict (PASS / FAIL) and ``safe``, safety-point
trips, delivered energy (J), and the timings ``wall_time_s``, ``solve_time_s``, ``overhead_s``.
Failed runs carry their error in ``error``. Empty cells are missing values (NaN in pandas).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .execute import run_dir, run_state
from .plan import read_manifest, scalar_or_json


def table(folder: str | Path):
    """The sweep's results as a pandas DataFrame (one row per run, ordered by run id)."""
    import pandas as pd

    folder = Path(folder)
    manifest = read_manifest(folder)
    values: dict[str, dict[str, Any]] = {}
    for s in manifest["samples"]:
        values.setdefault(s["run_id"], s["values"])
    paths = [p["path"] for p in manifest["parameters"]]
    rows = []
    for rid in sorted(manifest["run_ids"]):
        row: dict[str, Any] = {"run_id": rid, "status": run_state(folder, rid)}
        row.update({p: scalar_or_json(values[rid][p]) for p in paths})
        d = run_dir(folder, rid)
        if row["status"] == "done":
            rec = json.loads((d / "done.json").read_text())
            row.update(rec["metrics"])
            row.update({k: rec["timing"][k] for k in ("wall_time_s", "solve_time_s", "overhead_s")})
        elif row["status"] == "failed":
            rec = json.loads((d / "failed.json").read_text())
            row["error"] = f"{rec.get('error_type', '')}: {rec.get('error', '')}".strip()
        rows.append(row)
    df = pd.DataFrame(rows)
    return df


def collect(folder: str | Path) -> tuple[Path, Path, Any]:
    """Write results.csv and results.parquet; returns their paths and the DataFrame."""
    folder = Path(folder)
    df = table(folder)
    csv_path, pq_path = folder / "results.csv", folder / "results.parquet"
    tmp = folder / ".results.csv.tmp"
    df.to_csv(tmp, index=False)
    tmp.replace(csv_path)
    tmp = folder / ".results.parquet.tmp"
    df.to_parquet(tmp, index=False)
    tmp.replace(pq_path)
    return csv_path, pq_path, df
