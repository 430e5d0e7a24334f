"""The case's heat sources ([[source]]) as unit-power load vectors of the heat problem,
assembled once: uniform in a region, a point, or a segment (Gauss points along it)."""

from __future__ import annotations

from . import compat  # noqa: F401  (import order)
import ufl
from dolfinx import fem
from mpi4py import MPI
from petsc4py import PETSc

from .bioheat import BioheatProblem, LoadTerm
from .config import CaseError, PointSource, SegmentSource, UniformSource
from .fem import assemble_vector, min_cell_size
from .geometry import segment_quadrature
from .probes import PointOutsideMesh, point_load_vector


def _point_vector(V, name: str, points, weights) -> PETSc.Vec:
    try:
        return point_load_vector(V, points, weights)
    except PointOutsideMesh as err:
        raise CaseError(f"{name}: position {err.points[err.indices[0]].tolist()} m is outside the mesh") from None


def case_loads(heat: BioheatProblem) -> list[LoadTerm]:
    """One LoadTerm per [[source]] of the case: the vector for 1 W (a power density source:
    for its density in W/m3, with power 1). Collective; CaseError for a point outside the mesh."""
    loads: list[LoadTerm] = []
    v = ufl.TestFunction(heat.V)
    h_min = min_cell_size(heat.mesh)
    for i, src in enumerate(heat.case.source):
        name = f"source[{i}]"
        if isinstance(src, UniformSource):
            tag = heat.bundle.regions[src.region]
            vol = heat.comm.allreduce(
                fem.assemble_scalar(fem.form(fem.Constant(heat.mesh, 1.0) * heat.dx(tag))), op=MPI.SUM
            )
            if src.power_density_W_per_m3 is not None:
                scale, power, mean = src.power_density_W_per_m3, (lambda t: 1.0), (lambda a, b: 1.0)
            else:
                scale, power, mean = 1.0 / vol, src.power_at, src.mean_power
            vec = assemble_vector(scale * v * heat.dx(tag))
        elif isinstance(src, PointSource):
            vec = _point_vector(heat.V, name, [src.position_m], [1.0])
            power, mean = src.power_at, src.mean_power
        elif isinstance(src, SegmentSource):
            pts, w = segment_quadrature(src.start_m, src.end_m, h_min)
            vec = _point_vector(heat.V, name, pts, w)
            power, mean = src.power_at, src.mean_power
        else:  # pragma: no cover - config forbids it
            raise CaseError(f"{name}: unsupported source type")
        loads.append(LoadTerm(name, vec, power, mean))
    return loads


def laser_loads(laser) -> list[LoadTerm]:
    """The unit heat loads of every laser emitter (light solved once at set-up), gated by the
    control loop. Named ``laser <emitter label>`` (BioheatProblem.set_load_vector)."""
    return [LoadTerm(laser_load_name(em), em.load, em.power, em.mean_power, laser=True) for em in laser.emitters]


def laser_load_name(emitter) -> str:
    return f"laser {emitter.label}"
