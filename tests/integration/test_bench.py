"""scripts/bench.py (make bench): the driver runs a worker and writes strict JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _no_nan(name):
    raise ValueError(f"non-strict JSON constant {name}")


def test_quick_box_bench_writes_strict_json_and_the_engine_beats_the_tutorial_loop(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick", "--only", "box", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text(), parse_constant=_no_nan)
    (box,) = doc["results"]
    assert box["kind"] == "box" and box["dofs"] == 17**3 and box["ranks"] == 1
    # the same backward-Euler solution to the solver tolerance (rtol 1e-8 on ~1-10 K increments)
    assert box["max_diff_K"] < 1e-4
    assert box["engine_step_ms"] > 0 and box["tutorial_over_engine"] > 1.0
    assert len(box["peak_memory_mb_per_rank"]) == 1 and box["peak_memory_mb_per_rank"][0] > 0
    assert "box n=16" in proc.stdout
