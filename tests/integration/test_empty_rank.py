"""A rank that owns no cells (a partition that puts every cell on rank 0, e.g. a recorded
partition replayed; tiny meshes on many ranks) runs the whole case: the ablation zone, probes,
metrics and report data take empty arrays on it. Regression: the zone's cell volumes were
reshaped with -1 and crashed on an empty rank."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import tomli_w

from meshes import cache as mesh_cache
from meshes.arrays import partition_record

CASE = {
    "name": "empty_rank",
    "geometry": {"kind": "box", "lower_m": [-0.012] * 3, "upper_m": [0.012] * 3, "mesh_size_m": 0.004,
                 "refinement": [{"segment_start_m": [0, 0, -0.004], "segment_end_m": [0, 0, 0.004],
                                 "size_m": 0.0015, "distance_m": 0.005}]},
    "regions": {"body": "muscle"},
    "boundary": [{"type": "dirichlet", "surface": "outer", "temperature_C": 37.0}],
    "applicator": [{"name": "fibre", "tip_center_m": [0, 0, 0], "direction": [0, 0, 1], "power_W": 3.0}],
    "time": {"mode": "transient", "dt_s": 2.0, "end_time_s": 40.0},
    "output": {"fields": False},
}


def test_rank_without_cells_runs_the_case(tmp_path, bioheat_cmd, cli_env, mpiexec_exe):
    env = dict(cli_env, **{mesh_cache.CACHE_ENV: str(tmp_path / "meshes")})
    case = tmp_path / "case.toml"
    case.write_text(tomli_w.dumps(CASE))

    def run(out, ranks):
        cmd = ([mpiexec_exe, "-n", str(ranks)] if ranks > 1 else []) + bioheat_cmd + [
            "run", str(case), "--out", str(out), "--quiet"]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        return json.loads((out / "summary.json").read_text())

    serial = run(tmp_path / "one", 1)
    (msh,) = (tmp_path / "meshes").glob("*.msh")
    with np.load(str(msh).replace(".msh", ".arrays.npz")) as data:
        n_cells = len(data["cells"])
    digest = mesh_cache.digest_file(msh).read_text().strip()
    mesh_cache.write_arrays_atomically(mesh_cache.partition_file(msh, 2),
                                       partition_record(np.zeros(n_cells, np.int32), 2, digest))
    two = run(tmp_path / "two", 2)
    assert serial["damage"]["ablation_volume_mL"] > 0.0
    assert abs(two["damage"]["ablation_volume_mL"] - serial["damage"]["ablation_volume_mL"]) <= 1e-6 * serial[
        "damage"]["ablation_volume_mL"]
    assert abs(two["max_temperature_C"] - serial["max_temperature_C"]) < 1e-4
