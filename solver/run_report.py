"""What a run reports about its own input: the region of every probe and monitor, the
boundary conditions as applied (area, flux power), and the case's warnings."""

from __future__ import annotations

import numpy as np
from mpi4py import MPI


def point_regions(problem, located) -> list[str | None]:
    """Region name of the cell holding each located point (None outside the mesh). Collective."""
    if located is None:
        return []
    bundle = problem.bundle
    by_tag = {int(tag): name for name, tag in bundle.regions.items()}
    ct = bundle.cell_tags
    cell_value = np.full(problem.mesh.topology.index_map(3).size_local
                         + problem.mesh.topology.index_map(3).num_ghosts, -1, dtype=np.int64)
    cell_value[ct.indices] = ct.values
    local = np.full(len(located.cells), -1, dtype=np.int64)
    idx = located.local
    local[idx] = cell_value[located.cells[idx]]
    tags = np.empty_like(local)
    problem.comm.Allreduce(local, tags, op=MPI.MAX)
    return [by_tag.get(int(t)) for t in tags]


def probe_table(case, names_keys_positions, regions) -> list[dict]:
    """[{name, key, position_m, region}] for summary.json."""
    return [
        {"name": name, "key": key, "position_m": list(pos), "region": region}
        for (key, name, pos), region in zip(names_keys_positions, regions)
    ]


def monitor_warnings(case, table: list[dict]) -> list[str]:
    """A monitor whose name says a region it does not sit in ('dura_safety' in epidural fat)."""
    out = []
    regions = list(case.regions)
    for row in table:
        if not row["key"].startswith("monitor") or row["region"] is None:
            continue
        named = [r for r in regions if r in row["name"] and r != row["region"]]
        if named:
            out.append(
                f"{row['key']} ('{row['name']}') at {row['position_m']} m lies in region '{row['region']}', "
                f"not in '{named[0]}' as its name suggests"
            )
    return out
