"""Resource limits: requests that would exhaust the machine are refused with an estimate
before any work (exit 2, :class:`CaseError` / :class:`OutputError`).

Caps (defaults; raise them with the environment variable or the ``bioheat run`` flag):

==================  ==============================  ==========================  =========
what                estimate                        override                    default
==================  ==============================  ==========================  =========
mesh cells          geometry volume / h^3, see      ``SPINE_LITT_MAX_CELLS``    5e6
                    :func:`estimate_cells`          ``--max-cells``
time steps          end_time_s / dt_s               ``SPINE_LITT_MAX_STEPS``    1e6
                                                    ``--max-steps``
field output        frames x fields x nodes x 8 B   ``SPINE_LITT_MAX_OUTPUT_GB`` 20 GB
                                                    ``--max-output-gb``
==================  ==============================  ==========================  =========

Before the time loop the field output estimate (with the mesh's real node count) is also
compared with the free space of the output folder's filesystem (:func:`check_free_space`):
a full disk would otherwise abort the ADIOS2 writer (SIGABRT) mid-run.

The cell estimate uses ``CELLS_PER_H3 = 4.5`` cells per h^3 of volume, measured on gmsh
meshes of a sphere, a box and a cylinder at h = 4 and 2 mm (4.6 to 5.4 observed; 4.5 keeps
the estimate at or below the real count, so a refusal is never caused by the estimate),
plus the graded zones of refinements (integrated for the linear size ramp).
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .errors import CaseError, OutputError, collective_check

CELLS_PER_H3 = 4.5  # tetrahedra per h^3 of volume for gmsh with maximum size h (measured)
NODES_PER_CELL_P1 = 1.0 / 5.0  # vertices per tetrahedron in a gmsh mesh (about 1/5.3 measured)
P2_NODES_PER_P1_NODE = 7.5  # vertices + edges per vertex (about 1 + 6.5 edges)
BYTES_PER_VALUE = 8
FREE_SPACE_MARGIN = 1.2  # required free space = estimate x margin + 50 MB

ENV_CELLS = "SPINE_LITT_MAX_CELLS"
ENV_STEPS = "SPINE_LITT_MAX_STEPS"
ENV_OUTPUT_GB = "SPINE_LITT_MAX_OUTPUT_GB"


@dataclass(frozen=True)
class Limits:
    max_cells: float = 5e6
    max_steps: float = 1e6
    max_output_gb: float = 20.0

    @classmethod
    def from_env(cls) -> "Limits":
        def get(name: str, default: float) -> float:
            raw = os.environ.get(name)
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise CaseError(f"environment {name} = '{raw[:40]}': not a number") from None
            if not (value > 0 and math.isfinite(value)):
                raise CaseError(f"environment {name} = '{raw[:40]}': must be a positive finite number")
            return value

        return cls(get(ENV_CELLS, cls.max_cells), get(ENV_STEPS, cls.max_steps), get(ENV_OUTPUT_GB, cls.max_output_gb))


def _graded_cells(size: float, distance: float, far: float, length: float | None) -> float:
    """Cells in the zone where the size ramps from ``size`` (up to 2 size, see
    meshes.primitives) to ``far`` at ``distance``, around a point (length None) or a segment of
    ``length`` (cylinder only, ends neglected). Numerically integrated: 4.5 / h(r)^3 over the
    zone's volume, minus the far-field cells the zone displaces."""
    import numpy as np

    if distance <= 0 or size >= far:
        return 0.0
    r0 = min(2.0 * size, 0.5 * distance)
    r = np.concatenate([np.linspace(0.0, r0, 64), np.geomspace(max(r0, 1e-300), distance, 4096)[1:]])
    h = np.where(r <= r0, size, size + (far - size) * (r - r0) / max(distance - r0, 1e-300))
    shell = 4.0 * math.pi * r**2 if length is None else 2.0 * math.pi * r * length
    dens = CELLS_PER_H3 * (1.0 / h**3 - 1.0 / far**3) * shell
    return float(np.trapezoid(dens, r))


def estimate_cells(case) -> float | None:
    """A lower estimate of the number of tetrahedra gmsh makes for the case's geometry
    (None for mesh files, whose size is known only after reading)."""
    g = case.geometry
    kind = g.kind
    h = getattr(g, "mesh_size_m", None)
    if h is None or kind == "file":
        return None
    if kind == "box":
        vol = math.prod(g.upper_m[i] - g.lower_m[i] for i in range(3))
    elif kind == "sphere":
        vol = 4.0 / 3.0 * math.pi * g.radius_m**3
    elif kind == "shell":
        vol = 4.0 / 3.0 * math.pi * (g.outer_radius_m**3 - g.inner_radius_m**3)
    elif kind == "cylinder":
        vol = math.pi * g.radius_m**2 * g.length_m
    elif kind == "spine":
        from meshes.spine_dimensions import layout

        lay = layout(g)
        vol = math.prod(lay.block_hi[i] - lay.block_lo[i] for i in range(3))
        # cord + dura at cord_size_m, the posterior cortex at cortex_size_m (layer 2 sizes thick)
        canal = math.pi * 0.25 * lay.canal_width * lay.canal_depth * (lay.block_hi[2] - lay.block_lo[2])
        extra = CELLS_PER_H3 * canal * (1.0 / g.cord_size_m**3 - 1.0 / h**3)
        extra += CELLS_PER_H3 * lay.width * lay.height * 2.0 / g.cortex_size_m**2
        for ap in case.applicator:
            extra += _graded_cells(g.tip_size_m, 4.0 * g.tip_size_m, h, ap.tip_length_m)
        return CELLS_PER_H3 * vol / h**3 + max(extra, 0.0) + _refinement_cells(g, h)
    else:  # pragma: no cover - a new kind: no estimate
        return None
    return CELLS_PER_H3 * vol / h**3 + _refinement_cells(g, h)


def _refinement_cells(g, h: float) -> float:
    total = 0.0
    for r in getattr(g, "refinement", []) or []:
        if r.point_m is not None:
            total += _graded_cells(r.size_m, r.distance_m, h, None)
        elif r.segment_start_m is not None and r.segment_end_m is not None:
            length = math.dist(r.segment_start_m, r.segment_end_m)
            total += _graded_cells(r.size_m, r.distance_m, h, length)
    return total


def field_count(case) -> int:
    """Fields written per frame: temperature, (fluence and laser heat), (Omega, CEM43, max T)."""
    n = 1
    if case.applicator:
        n += 2
    if case.time.mode == "transient":  # dose tracking runs in every transient run
        n += 3
    return n


def estimate_output_bytes(case, nodes: float | None) -> float:
    """Bytes of field output: frames x fields x nodes x 8 (mesh geometry and metadata not
    counted). ``nodes`` is the global number of temperature dofs (None: 0 bytes)."""
    if not case.output.fields or nodes is None:
        return 0.0
    t = case.time
    if t.mode == "steady":
        frames = 1.0
    else:
        steps = t.end_time_s / t.dt_s
        every = max(1.0, round(case.field_interval_s() / t.dt_s))
        frames = math.floor(steps / every) + 2  # first frame, last frame
    return frames * field_count(case) * nodes * BYTES_PER_VALUE


def _nodes_from_cells(case, cells: float) -> float:
    nodes = cells * NODES_PER_CELL_P1
    return nodes * (P2_NODES_PER_P1_NODE if case.solver.element_degree == 2 else 1.0)


def check_limits(case, limits: Limits | None = None) -> dict:
    """Refuse the case (CaseError) if its estimated cells, steps or field output exceed the
    caps; return the estimates. Pure Python, no mesh is built."""
    lim = limits or Limits.from_env()
    est: dict = {}
    cells = estimate_cells(case)
    est["cells"] = cells
    if cells is not None and cells > lim.max_cells:
        raise CaseError(
            f"geometry.mesh_size_m = {case.geometry.mesh_size_m:g} gives about {cells:.3g} cells "
            f"(estimate); allowed: at most {lim.max_cells:.3g} ({ENV_CELLS} or --max-cells raise it)"
        )
    t = case.time
    if t.mode == "transient":
        steps = t.end_time_s / t.dt_s
        est["steps"] = steps
        if not math.isfinite(steps) or steps > lim.max_steps:
            raise CaseError(
                f"time: end_time_s = {t.end_time_s:g} with dt_s = {t.dt_s:g} is {steps:.3g} steps; "
                f"allowed: at most {lim.max_steps:.3g} ({ENV_STEPS} or --max-steps raise it)"
            )
    if cells is not None:
        out = estimate_output_bytes(case, _nodes_from_cells(case, cells))
        est["output_bytes"] = out
        if out > lim.max_output_gb * 1e9:
            raise CaseError(
                f"output: fields every {case.field_interval_s():g} s "
                f"would write about {out / 1e9:.3g} GB; allowed: at most {lim.max_output_gb:g} GB "
                f"(set output.field_interval_s larger or output.fields = false; {ENV_OUTPUT_GB} or "
                f"--max-output-gb raise the cap)"
            )
    return est


def check_free_space(case, dofs: int, folder: Path, comm) -> float:
    """Collective: refuse (OutputError on every rank) when the field output estimate with the
    mesh's real dof count, or the output cap, exceeds what ``folder``'s filesystem has free.
    Returns the estimate in bytes."""
    need = estimate_output_bytes(case, dofs)

    def check() -> float:
        lim = Limits.from_env()
        if need > lim.max_output_gb * 1e9:
            raise CaseError(
                f"output: the fields would take about {need / 1e9:.3g} GB ({dofs} dofs); allowed: at most "
                f"{lim.max_output_gb:g} GB (output.field_interval_s, output.fields, {ENV_OUTPUT_GB})"
            )
        free = shutil.disk_usage(folder).free
        required = need * FREE_SPACE_MARGIN + 50e6
        if free < required:
            raise OutputError(
                f"--out: {folder.parent} has {free / 1e6:.0f} MB free; the results need about "
                f"{required / 1e6:.0f} MB (fields {need / 1e6:.0f} MB + margin)"
            )
        return need

    return collective_check(comm, check)
