"""Case files: TOML -> validated, resolved configuration (plain data, no FEM objects).

Everything is SI; temperatures are in degrees Celsius. Every key carries its unit
in its name (``_m``, ``_s``, ``_W``, ``_C``, ...) or in its description.
Validation happens here, before any mesh is built or any output is written.

This module is the schema (pydantic models and the cross-key checks). Reading a case file
(overrides, referenced files) is :mod:`solver.case_loader`; the messages of a failed
validation are :mod:`solver.case_errors`. Importing it loads no FEM stack (no DOLFINx, PETSc
or gmsh): ``bioheat validate`` stays light.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from meshes.cavities import cavity_surface_names
from meshes.spine_dimensions import (
    DEFAULT_TIP_LENGTH_M,
    block_extent,
    check_track,
    transpedicular_track,
    validate_spine,
)

from . import case_checks as cc
from . import tissues as tissue_library
from .analytic import MANUFACTURED
from .case_errors import submodels
from .inputs import sha256_file
from .optics import MODELLING_CHOICES, OPTICAL_ALIASES, OPTICAL_TABLE

Vec3 = tuple[float, float, float]
PositiveFloat = Annotated[float, Field(gt=0.0)]


from .errors import CaseError, OutputError, shorten  # noqa: E402,F401  (re-exported: their old home)


class _Model(BaseModel):
    # inf/NaN are refused everywhere: a non-finite property would make the solve run forever
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)


def _norm(v: Vec3) -> float:
    return math.sqrt(sum(c * c for c in v))


# --------------------------------------------------------------------------- geometry


class Refinement(_Model):
    """Local mesh refinement around a point or a segment (gmsh Distance + Threshold)."""

    point_m: Vec3 | None = Field(None, description="centre of refinement (m)")
    segment_start_m: Vec3 | None = Field(None, description="segment start (m)")
    segment_end_m: Vec3 | None = Field(None, description="segment end (m)")
    size_m: PositiveFloat = Field(description="element size at the point/segment (m)")
    distance_m: PositiveFloat = Field(
        description="distance (m) over which the size grows to the geometry's mesh_size_m"
    )

    @model_validator(mode="after")
    def _one_target(self) -> "Refinement":
        has_point = self.point_m is not None
        has_seg = self.segment_start_m is not None or self.segment_end_m is not None
        if has_point == has_seg:
            raise ValueError("give either point_m or both segment_start_m and segment_end_m")
        if has_seg and (self.segment_start_m is None or self.segment_end_m is None):
            raise ValueError("a segment needs both segment_start_m and segment_end_m")
        return self


class Inclusion(_Model):
    """A named volume region embedded in the main body (e.g. a tumour)."""

    name: str = Field(description="region name of the inclusion")
    shape: Literal["sphere", "ellipsoid", "box"] = "sphere"
    center_m: Vec3 = Field(description="centre (m)")
    radius_m: PositiveFloat | None = Field(None, description="sphere radius (m)")
    semi_axes_m: tuple[PositiveFloat, PositiveFloat, PositiveFloat] | None = Field(
        None, description="ellipsoid semi-axes along x, y, z (m)"
    )
    size_m: tuple[PositiveFloat, PositiveFloat, PositiveFloat] | None = Field(
        None, description="box edge lengths along x, y, z (m)"
    )

    @model_validator(mode="after")
    def _dims(self) -> "Inclusion":
        need = {"sphere": "radius_m", "ellipsoid": "semi_axes_m", "box": "size_m"}[self.shape]
        if getattr(self, need) is None:
            raise ValueError(f"shape '{self.shape}' needs {need}")
        return self

    def contains(self, p: Vec3) -> bool:
        d = [p[i] - self.center_m[i] for i in range(3)]
        if self.shape == "sphere":
            return _norm(d) <= self.radius_m
        if self.shape == "ellipsoid":
            return sum((d[i] / self.semi_axes_m[i]) ** 2 for i in range(3)) <= 1.0
        return all(abs(d[i]) <= 0.5 * self.size_m[i] for i in range(3))

    def bounding_box(self) -> tuple[Vec3, Vec3]:
        if self.shape == "sphere":
            h = (self.radius_m,) * 3
        elif self.shape == "ellipsoid":
            h = self.semi_axes_m
        else:
            h = tuple(0.5 * s for s in self.size_m)
        lo = tuple(self.center_m[i] - h[i] for i in range(3))
        hi = tuple(self.center_m[i] + h[i] for i in range(3))
        return lo, hi


class _PrimitiveGeometry(_Model):
    mesh_size_m: PositiveFloat = Field(description="maximum element size (m)")
    region: str = Field("body", description="name of the main volume region")
    refinement: list[Refinement] = Field(default_factory=list)
    inclusion: list[Inclusion] = Field(default_factory=list, description="embedded regions")

    def region_names(self) -> list[str]:
        return [self.region] + [inc.name for inc in self.inclusion]

    def contains(self, p: Vec3, tol: float = 0.0) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - overridden
        """The extent of the geometry in words (used in error messages)."""
        raise NotImplementedError

    @model_validator(mode="after")
    def _inclusions_inside(self) -> "_PrimitiveGeometry":
        names = [self.region]
        for i, inc in enumerate(self.inclusion):
            if inc.name in names:
                raise ValueError(f"inclusion[{i}].name = '{inc.name}' is already a region name")
            names.append(inc.name)
            lo, hi = inc.bounding_box()
            corners = [(x, y, z) for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
            if not self.contains(inc.center_m) or (
                inc.shape == "box" and not all(self.contains(c) for c in corners)
            ):
                raise ValueError(
                    f"inclusion[{i}].center_m = {list(inc.center_m)} ('{inc.name}'): the inclusion must "
                    f"lie inside the geometry; allowed: inside the {self.describe()}"
                )
        for i, r in enumerate(self.refinement):
            if r.size_m > self.mesh_size_m:
                raise ValueError(
                    f"refinement[{i}].size_m = {r.size_m} must be <= mesh_size_m = {self.mesh_size_m}"
                )
        return self


class BoxGeometry(_PrimitiveGeometry):
    """Axis-aligned box. Surfaces: xmin, xmax, ymin, ymax, zmin, zmax; 'outer' = all six."""

    kind: Literal["box"]
    lower_m: Vec3 = Field(description="lower corner (m)")
    upper_m: Vec3 = Field(description="upper corner (m)")

    @model_validator(mode="before")
    @classmethod
    def _order(cls, data: Any) -> Any:
        if isinstance(data, dict) and "lower_m" in data and "upper_m" in data:
            lo, hi = data["lower_m"], data["upper_m"]
            try:
                bad = [i for i in range(3) if float(hi[i]) <= float(lo[i])]
            except (TypeError, ValueError, IndexError):
                return data
            if bad:
                raise ValueError(
                    f"upper_m = {list(hi)} must exceed lower_m = {list(lo)} in every coordinate"
                )
        return data

    def surface_names(self) -> list[str]:
        return ["xmin", "xmax", "ymin", "ymax", "zmin", "zmax", "outer"]

    def contains(self, p: Vec3, tol: float = 0.0) -> bool:
        return all(self.lower_m[i] - tol <= p[i] <= self.upper_m[i] + tol for i in range(3))

    def volume_m3(self) -> float:
        return math.prod(self.upper_m[i] - self.lower_m[i] for i in range(3))

    def describe(self) -> str:
        return f"box from lower_m = {list(self.lower_m)} to upper_m = {list(self.upper_m)} m"


class SphereGeometry(_PrimitiveGeometry):
    """Ball. Surface: outer."""

    kind: Literal["sphere"]
    radius_m: PositiveFloat = Field(description="radius (m)")
    center_m: Vec3 = Field((0.0, 0.0, 0.0), description="centre (m)")

    def surface_names(self) -> list[str]:
        return ["outer"]

    def contains(self, p: Vec3, tol: float = 0.0) -> bool:
        return _norm(tuple(p[i] - self.center_m[i] for i in range(3))) <= self.radius_m + tol

    def volume_m3(self) -> float:
        return 4.0 / 3.0 * math.pi * self.radius_m**3

    def describe(self) -> str:
        return f"sphere of radius_m = {self.radius_m} around center_m = {list(self.center_m)} m"


class ShellGeometry(_PrimitiveGeometry):
    """Sphere with a concentric spherical cavity. Surfaces: outer, inner."""

    kind: Literal["shell"]
    outer_radius_m: PositiveFloat = Field(description="outer radius (m)")
    inner_radius_m: PositiveFloat = Field(description="radius of the cavity (m)")
    center_m: Vec3 = Field((0.0, 0.0, 0.0), description="centre (m)")

    @model_validator(mode="before")
    @classmethod
    def _radii(cls, data: Any) -> Any:
        if isinstance(data, dict):
            ro, ri = data.get("outer_radius_m"), data.get("inner_radius_m")
            if isinstance(ro, (int, float)) and isinstance(ri, (int, float)) and ri >= ro:
                raise ValueError(f"inner_radius_m = {ri} must be smaller than outer_radius_m = {ro}")
        return data

    def surface_names(self) -> list[str]:
        return ["outer", "inner"]

    def contains(self, p: Vec3, tol: float = 0.0) -> bool:
        r = _norm(tuple(p[i] - self.center_m[i] for i in range(3)))
        return self.inner_radius_m - tol <= r <= self.outer_radius_m + tol

    def volume_m3(self) -> float:
        return 4.0 / 3.0 * math.pi * (self.outer_radius_m**3 - self.inner_radius_m**3)

    def describe(self) -> str:
        return (
            f"shell between inner_radius_m = {self.inner_radius_m} and outer_radius_m = "
            f"{self.outer_radius_m} around center_m = {list(self.center_m)} m"
        )


class CylinderGeometry(_PrimitiveGeometry):
    """Circular cylinder. Surfaces: side, bottom (at center - axis*length/2), top; 'outer' = all."""

    kind: Literal["cylinder"]
    radius_m: PositiveFloat = Field(description="radius (m)")
    length_m: PositiveFloat = Field(description="length along the axis (m)")
    center_m: Vec3 = Field((0.0, 0.0, 0.0), description="centre (m)")
    axis: Vec3 = Field((0.0, 0.0, 1.0), description="axis direction (unitless, normalised)")

    @field_validator("axis")
    @classmethod
    def _unit(cls, v: Vec3) -> Vec3:
        n = _norm(v)
        if n == 0.0:
            raise ValueError("axis must be a non-zero vector")
        return tuple(c / n for c in v)

    def surface_names(self) -> list[str]:
        return ["side", "bottom", "top", "outer"]

    def contains(self, p: Vec3, tol: float = 0.0) -> bool:
        d = [p[i] - self.center_m[i] for i in range(3)]
        along = sum(d[i] * self.axis[i] for i in range(3))
        radial = math.sqrt(max(sum(c * c for c in d) - along * along, 0.0))
        return abs(along) <= 0.5 * self.length_m + tol and radial <= self.radius_m + tol

    def volume_m3(self) -> float:
        return math.pi * self.radius_m**2 * self.length_m

    def describe(self) -> str:
        return (
            f"cylinder of radius_m = {self.radius_m}, length_m = {self.length_m} around "
            f"center_m = {list(self.center_m)} m along axis = {list(self.axis)}"
        )


class FileGeometry(_Model):
    """An existing mesh: gmsh .msh (read by DOLFINx) or any meshio format with physical groups.

    Region and surface names are the physical-group names of the file.
    """

    kind: Literal["file"]
    path: str = Field(description="mesh file path, relative to the case file")
    length_scale_m: PositiveFloat = Field(
        1.0, description="metres per file length unit (1e-3 for a mesh in mm)"
    )

    def contains(self, p: Vec3, tol: float = 0.0) -> bool:
        return True  # checked against the mesh itself at setup

    def describe(self) -> str:
        return f"mesh of {self.path}"


THORACIC_LEVELS = tuple(f"T{i}" for i in range(1, 13))


class SpineTumour(_Model):
    """A tumour: an ellipsoid (centre and semi-axes, m) in the vertebra's frame. Where it
    crosses the posterior cortex into the canal, the cortex there is replaced by tumour (a
    breached posterior wall)."""

    name: str = Field("tumour", pattern=r"^[A-Za-z0-9_\-]+$", description="region name")
    center_m: Vec3 = Field(description="centre (m); origin at the vertebral body centre")
    semi_axes_m: tuple[PositiveFloat, PositiveFloat, PositiveFloat] = Field(description="semi-axes x, y, z (m)")


# Marks tissues whose optical data are the table's modelling choices (solver.optics).
OPTICAL_MODELLING_CHOICE = "modelling choice, no measurement (docs/MODEL.md section 4)"

# Default tissue of each spine region (modelling choices, docs/MODEL.md section 5): the pedicles,
# laminae and spinous process are mostly cancellous bone inside a thin cortex. The anterior
# epidural region takes the tissue of geometry.anterior_epidural (ANTERIOR_EPIDURAL_TISSUES).
SPINE_DEFAULT_TISSUES: dict[str, str] = {
    "cortical_bone": "cortical_bone",
    "cancellous_bone": "cancellous_bone",
    "posterior_elements": "cancellous_bone",
    "disc_upper": "disc",
    "disc_lower": "disc",
    "epidural_fat": "fat",
    "dura": "dura",
    "csf": "csf",
    "spinal_cord": "spinal_cord",
    "muscle": "muscle",
    "epidural_anterior": "muscle",
}
# geometry.anterior_epidural -> default tissue of the epidural_anterior region (docs/MODEL.md
# section 5): the thoracic anterior epidural space holds the posterior longitudinal ligament and
# the internal vertebral venous plexus, with little fat. The library has no ligament or venous
# plexus entry: "ligament_venous" uses the muscle entry (water- and blood-rich soft tissue: IT'IS
# v4.x thermal data, Cassano 2019 optics at 980 nm) as the stand-in; "fat" the fat entry.
ANTERIOR_EPIDURAL_TISSUES: dict[str, str] = {"ligament_venous": "muscle", "fat": "fat"}


# Element sizes (m) of the spine geometry's resolution levels (SpineGeometry.resolution). "standard"
# is the sizes the shipped cases were built with; "fine" is converged for the T8 intact case
# (ablation volume within 2 %, critical-region maxima within 0.1 C of a finer reference mesh;
# the study is in docs/PERFORMANCE.md).
SPINE_RESOLUTIONS: dict[str, dict[str, float]] = {
    "standard": {"mesh_size_m": 0.005, "tip_size_m": 0.0008, "cortex_size_m": 0.001, "cord_size_m": 0.001},
    "medium": {"mesh_size_m": 0.0025, "tip_size_m": 0.0004, "cortex_size_m": 0.0005, "cord_size_m": 0.0005},
    "fine": {"mesh_size_m": 0.0025, "tip_size_m": 0.0003, "cortex_size_m": 0.00035, "cord_size_m": 0.00035},
}


class SpineGeometry(_Model):
    """One thoracic vertebra (T2 to T12) with canal contents, discs and soft tissue.

    Frame (m): origin at the centre of the vertebral body; x to the patient's left, y
    posterior (towards the spinal canal), z cranial. Dimensions per level: the table in
    meshes/spine_dimensions.py, each column with its source (COLUMN_SOURCES; docs/MODEL.md 5). Regions: cortical_bone, cancellous_bone,
    posterior_elements, disc_upper, disc_lower, epidural_fat, dura, csf, spinal_cord, muscle,
    epidural_anterior and the tumours. Surfaces: outer (the soft-tissue block), plus catheter surfaces.
    """

    kind: Literal["spine"]
    level: str = Field("T8", description="thoracic level T2 to T12")
    cortical_thickness_m: PositiveFloat = Field(
        0.00035,
        le=0.003,
        description="cortical shell thickness (m); default 0.35 mm: the vertebral body shell measured directly "
        "(Silva et al. 1994, Bone 15:409: porous, thinner than 0.5 mm; docs/MODEL.md section 5)",
    )
    anterior_epidural: Literal["ligament_venous", "fat"] = Field(
        "ligament_venous",
        description="content of the epidural space in front of the dural sac (region epidural_anterior): "
        "ligament_venous (posterior longitudinal ligament and venous plexus; default tissue 'muscle' as the "
        "soft-tissue stand-in) or fat (default tissue 'fat'); [regions] epidural_anterior overrides the tissue "
        "(docs/MODEL.md section 5)",
    )
    soft_tissue_margin_m: PositiveFloat = Field(
        0.02, description="muscle around the vertebra to the outer boundary (m)"
    )
    tumour: list[SpineTumour] = Field(default_factory=list)
    resolution: Literal["standard", "medium", "fine"] = Field(
        "standard",
        description="mesh resolution level (no unit): sets the four element sizes not given explicitly; "
        "mesh / tip / cortex / cord sizes in mm: standard 5 / 0.8 / 1 / 1 (about 13k nodes for T8), "
        "medium 2.5 / 0.4 / 0.5 / 0.5 (about 64k), fine 2.5 / 0.3 / 0.35 / 0.35 (about 139k; ablation "
        "volume within 2 % and cord/dura maxima within 0.1 C of a finer mesh, docs/PERFORMANCE.md)",
    )
    mesh_size_m: PositiveFloat = Field(0.005, description="far-field element size (m)")
    tip_size_m: PositiveFloat = Field(0.0008, description="element size around applicator tips (m)")
    cortex_size_m: PositiveFloat = Field(0.001, description="element size at the posterior cortex (m)")
    cord_size_m: PositiveFloat = Field(0.001, description="element size in the cord and dura (m)")
    refinement: list[Refinement] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _resolution_sizes(cls, data: Any) -> Any:
        """Fill the element sizes the case does not give from its ``resolution`` level."""
        if isinstance(data, dict) and data.get("resolution", "standard") in SPINE_RESOLUTIONS:
            data = dict(data)
            for key, value in SPINE_RESOLUTIONS[data.get("resolution", "standard")].items():
                data.setdefault(key, value)
        return data

    @field_validator("level")
    @classmethod
    def _level(cls, v: str) -> str:
        if v not in THORACIC_LEVELS[1:]:
            raise ValueError(f"level = '{v}' is outside T2-T12 (the clinical trial's range); allowed: T2 ... T12")
        return v

    @model_validator(mode="after")
    def _sizes(self) -> "SpineGeometry":
        for key in ("tip_size_m", "cortex_size_m", "cord_size_m"):
            if getattr(self, key) > self.mesh_size_m:
                raise ValueError(f"{key} = {getattr(self, key)} must be <= mesh_size_m = {self.mesh_size_m}")
        validate_spine(self)
        return self

    def region_names(self) -> list[str]:
        base = [
            "cortical_bone", "cancellous_bone", "posterior_elements", "disc_upper", "disc_lower",
            "epidural_fat", "dura", "csf", "spinal_cord", "muscle", "epidural_anterior",
        ]
        return base + [t.name for t in self.tumour]

    def surface_names(self) -> list[str]:
        return ["outer"]

    def contains(self, p: Vec3, tol: float = 0.0) -> bool:
        lo, hi = _spine_block(self.level, self.cortical_thickness_m, self.soft_tissue_margin_m)
        return all(lo[i] - tol <= p[i] <= hi[i] + tol for i in range(3))

    def describe(self) -> str:
        lo, hi = block_extent(self)
        return f"the {self.level} block from {[round(c, 4) for c in lo]} to {[round(c, 4) for c in hi]} m"


@functools.lru_cache(maxsize=64)
def _spine_block(level: str, cortical_thickness_m: float, soft_tissue_margin_m: float):
    """block_extent of a spine geometry, memoised on the three inputs of its layout:
    SpineGeometry.contains is called per point, thousands of times when a catheter's length in
    tissue is measured (meshes.cavities.length_inside), and the layout takes ~50 us."""
    return block_extent(SimpleNamespace(level=level, cortical_thickness_m=cortical_thickness_m,
                                        soft_tissue_margin_m=soft_tissue_margin_m))


Geometry = Annotated[
    Union[BoxGeometry, SphereGeometry, ShellGeometry, CylinderGeometry, FileGeometry, SpineGeometry],
    Field(discriminator="kind"),
]


# --------------------------------------------------------------------------- tissues


class Tissue(_Model):
    """Thermal properties of one tissue. Missing keys are taken from ``base``."""

    base: str | None = Field(None, description="library tissue to start from")
    density_kg_per_m3: PositiveFloat | None = Field(None, description="rho (kg/m3)")
    specific_heat_J_per_kgK: PositiveFloat | None = Field(None, description="c (J/kg/K)")
    conductivity_W_per_mK: PositiveFloat | None = Field(None, description="k (W/m/K)")
    perfusion_W_per_m3K: float | None = Field(
        None, ge=0.0, description="perfusion coefficient W = rho_b c_b w (W/m3/K)"
    )
    arterial_temperature_C: float | None = Field(
        None, ge=0.0, le=100.0, description="arterial blood temperature (C)"
    )
    metabolic_heat_W_per_m3: float | None = Field(None, description="metabolic heat (W/m3)")
    absorption_per_m: PositiveFloat | None = Field(
        None, description="optical absorption mu_a (1/m) at the case's wavelength; default from the optical table"
    )
    reduced_scattering_per_m: float | None = Field(
        None, ge=0.0, description="reduced scattering mu_s' (1/m); default from the optical table"
    )
    perfusion_coagulated_W_per_m3K: float | None = Field(
        None, ge=0.0, description="perfusion coefficient once fully coagulated (W/m3/K); default 0 (stopped)"
    )
    absorption_coagulated_per_m: PositiveFloat | None = Field(
        None, description="mu_a once coagulated (1/m); default: native x coagulation.absorption_factor"
    )
    reduced_scattering_coagulated_per_m: float | None = Field(
        None, ge=0.0, description="mu_s' once coagulated (1/m); default: native x coagulation.scattering_factor"
    )
    arrhenius_A_per_s: PositiveFloat | None = Field(None, description="Arrhenius frequency factor A (1/s)")
    arrhenius_Ea_J_per_mol: PositiveFloat | None = Field(None, description="Arrhenius activation energy (J/mol)")
    source: str | None = Field(None, description="where the numbers come from")


class ResolvedTissue(_Model):
    name: str
    density_kg_per_m3: float
    specific_heat_J_per_kgK: float
    conductivity_W_per_mK: float
    perfusion_W_per_m3K: float
    arterial_temperature_C: float
    metabolic_heat_W_per_m3: float
    absorption_per_m: float | None = None
    reduced_scattering_per_m: float | None = None
    perfusion_coagulated_W_per_m3K: float = 0.0
    absorption_coagulated_per_m: float | None = None
    reduced_scattering_coagulated_per_m: float | None = None
    arrhenius_A_per_s: float | None = None
    arrhenius_Ea_J_per_mol: float | None = None
    source: str = ""

    @property
    def volumetric_heat_capacity_J_per_m3K(self) -> float:
        return self.density_kg_per_m3 * self.specific_heat_J_per_kgK


# --------------------------------------------------------------------------- boundaries


class _Boundary(_Model):
    surface: str | list[str] = Field(description="surface name(s) of the geometry")

    def surfaces(self) -> list[str]:
        return [self.surface] if isinstance(self.surface, str) else list(self.surface)


class DirichletBC(_Boundary):
    """Prescribed temperature."""

    type: Literal["dirichlet"]
    temperature_C: float = Field(ge=-273.15, description="temperature (C)")


class NeumannBC(_Boundary):
    """Prescribed heat flux into the tissue (positive heats the tissue)."""

    type: Literal["neumann"]
    heat_flux_W_per_m2: float = Field(description="inward heat flux (W/m2)")


class RobinBC(_Boundary):
    """Convection: -k dT/dn = h (T - T_ambient)."""

    type: Literal["robin"]
    heat_transfer_coefficient_W_per_m2K: PositiveFloat = Field(description="h (W/m2/K)")
    ambient_temperature_C: float = Field(ge=-273.15, description="T_ambient (C)")


Boundary = Annotated[Union[DirichletBC, NeumannBC, RobinBC], Field(discriminator="type")]


# --------------------------------------------------------------------------- sources


class _PowerSchedule(_Model):
    power_W: float | None = Field(None, ge=0.0, description="constant power (W)")
    schedule: list[tuple[float, float]] | None = Field(
        None, description="[[time_s, power_W], ...], interpolated per 'interpolation'"
    )
    interpolation: Literal["linear", "step"] = Field(
        "linear", description="between schedule points: linear, or step (hold the previous value)"
    )

    @model_validator(mode="after")
    def _one_power(self) -> "_PowerSchedule":
        if getattr(self, "power_density_W_per_m3", None) is not None:
            # A uniform density is a full specification on its own.
            if self.power_W is not None or self.schedule is not None:
                raise ValueError("give power_density_W_per_m3 or power_W/schedule, not both")
            return self
        if (self.power_W is None) == (self.schedule is None):
            raise ValueError("give exactly one of power_W or schedule")
        if self.schedule is not None:
            if len(self.schedule) == 0:
                raise ValueError("schedule must not be empty")
            times = [t for t, _ in self.schedule]
            if any(b <= a for a, b in zip(times, times[1:])):
                raise ValueError(
                    f"schedule = {[list(pt) for pt in self.schedule]}: the times must increase "
                    f"strictly, got times {times}"
                )
            for j, (t, p) in enumerate(self.schedule):
                if p < 0.0:
                    raise ValueError(
                        f"schedule[{j}] = {[t, p]}: power must be >= 0 W, got {p} W at t = {t} s"
                    )
        return self

    def energy_between(self, t0_s: float, t1_s: float) -> float:
        """Energy in J delivered between t0_s and t1_s: the exact integral of the schedule."""
        if self.schedule is None:
            return float(self.power_W) * (t1_s - t0_s)
        # breakpoints inside (t0, t1) split the integral into pieces on which P is linear
        cuts = [t0_s] + [t for t, _ in self.schedule if t0_s < t < t1_s] + [t1_s]
        total = 0.0
        for a, b in zip(cuts, cuts[1:]):
            if self.interpolation == "step":
                total += self.power_at(0.5 * (a + b)) * (b - a)
            else:
                total += 0.5 * (self.power_at(a) + self.power_at(b)) * (b - a)
        return total

    def mean_power(self, t0_s: float, t1_s: float) -> float:
        """Average power in W over [t0_s, t1_s]."""
        return self.energy_between(t0_s, t1_s) / (t1_s - t0_s)

    def power_at(self, t_s: float) -> float:
        """Power in W at time t_s (s); outside the schedule the end values hold."""
        if self.schedule is None:
            return float(self.power_W)
        pts = self.schedule
        if t_s <= pts[0][0]:
            return float(pts[0][1])
        for (t0, p0), (t1, p1) in zip(pts, pts[1:]):
            if t_s < t1:
                if self.interpolation == "step":
                    return float(p0)
                return float(p0 + (p1 - p0) * (t_s - t0) / (t1 - t0))
        return float(pts[-1][1])


class UniformSource(_PowerSchedule):
    """Uniform heat in one region: either a density (W/m3) or a total power (W)."""

    type: Literal["uniform"]
    region: str = Field(description="region name")
    power_density_W_per_m3: float | None = Field(None, description="uniform density (W/m3)")



_EXCLUSION_RADIUS = Field(
    0.001,
    gt=0.0,
    le=0.02,
    description="radius (m) of the singular neighbourhood left out of the peak temperature, the "
    "temperature checks and the critical-region maxima: the temperature of a point (line) source "
    "grows like 1/r (log r) at the source and has no converged nodal value there. The radius used "
    "is the larger of this and 2 local cell sizes; summary.json reports it and the raw nodal maximum",
)


class PointSource(_PowerSchedule):
    """A point heat source of given power (exact delta assembly)."""

    type: Literal["point"]
    position_m: Vec3 = Field(description="position (m)")
    exclusion_radius_m: float = _EXCLUSION_RADIUS


class SegmentSource(_PowerSchedule):
    """A straight line source; the power is spread uniformly per unit length."""

    type: Literal["segment"]
    start_m: Vec3 = Field(description="start point (m)")
    end_m: Vec3 = Field(description="end point (m)")
    exclusion_radius_m: float = _EXCLUSION_RADIUS

    @model_validator(mode="after")
    def _length(self) -> "SegmentSource":
        if _norm(tuple(self.end_m[i] - self.start_m[i] for i in range(3))) == 0.0:
            raise ValueError("segment has zero length (start_m == end_m)")
        return self


Source = Annotated[Union[UniformSource, PointSource, SegmentSource], Field(discriminator="type")]


# --------------------------------------------------------------------------- laser


class Light(_Model):
    """How laser light is transported to the tissue (docs/MODEL.md section 2)."""

    model: Literal["diffusion", "kernel"] = Field(
        "diffusion",
        description="diffusion: FE solve of the P1 diffusion equation with per-region optics; "
        "kernel: closed-form infinite-medium kernel of point emitters along the tip",
    )
    wavelength_nm: Literal[980, 1064] = Field(980, description="laser wavelength (nm): picks the optical table")
    boundary: Literal["robin", "zero"] = Field(
        "robin", description="outer boundary for light: partial current (robin) or zero fluence"
    )
    refractive_index_ratio: float | None = Field(
        None, gt=1.0, le=2.0, description="tissue/outside index ratio for the Robin R_eff (unitless); none: R_eff = 0"
    )
    validity_ratio: float = Field(
        10.0, gt=0.0, description="regions with mu_s' < ratio * mu_a are flagged: diffusion approximation poor"
    )
    kernel_emitters: int | None = Field(
        None,
        ge=1,
        le=200,
        description="kernel model: point emitters per tip (default from mu_eff and tip length); at most 200: "
        "each emitter is a term of one compiled form, and far more exhaust the form compiler's recursion",
    )


class ApplicatorPosition(_Model):
    """Pull-back: from start_s on, the tip sits at tip_center_m (until the next position)."""

    start_s: float = Field(ge=0.0, description="time the applicator reaches this position (s)")
    tip_center_m: Vec3 = Field(description="centre of the diffusing tip at this position (m)")


# A catheter given by tip_center_m and direction (no entry_m) comes from this far back along
# its axis (m): outside any plausible tissue model (case_checks refuses lengths above 1 m), so
# it is cut through the whole domain like a real catheter that enters from outside.
CATHETER_WITHOUT_ENTRY_LENGTH_M = 1.0


class Applicator(_PowerSchedule):
    """A laser fibre with a diffusing tip inside a cooled catheter (e.g. Visualase, 980 nm)."""

    name: str = Field("applicator", pattern=r"^[A-Za-z0-9_\-]+$", description="name (surface names derive from it)")
    tip_center_m: Vec3 | None = Field(None, description="centre of the diffusing tip (m)")
    direction: Vec3 | None = Field(None, description="axis from entry towards the distal end (unitless)")
    entry_m: Vec3 | None = Field(None, description="where the catheter enters the tissue (m)")
    tip_end_m: Vec3 | None = Field(None, description="distal end of the diffusing tip (m); with entry_m")
    track: Literal["transpedicular"] | None = Field(
        None,
        description="spine cases: place the catheter on this track through the anatomy instead of giving "
        "entry_m/tip_end_m (which are then computed and written to the resolved case)",
    )
    side: Literal["left", "right"] = Field("left", description="with track: the patient side of the pedicle used")
    tip_to_dura_m: PositiveFloat | None = Field(
        None,
        le=0.03,
        description="with track: closest distance (m) from the diffusing tip to the dural sac; "
        "default: 0.006 (MD Anderson practice: probe about 6 mm from the dura), or farther where a tip "
        "starting 2 mm inside the posterior wall cannot come that close (T2, T9-T12)",
    )
    tip_length_m: PositiveFloat = Field(0.010, le=0.05, description="diffusing tip length (m); 3 or 10 mm exist")
    emission: Literal["uniform"] = Field("uniform", description="emission profile along the tip")
    catheter_radius_m: PositiveFloat = Field(0.000825, le=0.005, description="catheter outer radius (m)")
    representation: Literal["line", "cavity"] = Field(
        "line", description="line: emitting segment in the mesh; cavity: catheter cut out of the mesh"
    )
    coolant_temperature_C: float = Field(
        20.0, ge=0.0, le=45.0, description="coolant temperature (C), cavity only (room-temperature saline)"
    )
    cooling: Literal["convective", "fixed_temperature"] = Field(
        "convective",
        description="cavity: how the coolant takes heat from the catheter wall. convective: -k dT/dn = "
        "h (T - coolant_temperature_C) with h = coolant_heat_transfer_W_per_m2K (default "
        "from the catheter wall and laminar coolant flow, solver/catheter.py, docs/MODEL.md section 2); "
        "fixed_temperature: the wall held at the coolant temperature (the h -> infinity limit)",
    )
    coolant_heat_transfer_W_per_m2K: float | None = Field(
        None,
        gt=0.0,
        le=1e6,
        description="cavity, cooling = 'convective': heat-transfer coefficient h (W/m2/K) from the catheter "
        "wall to the coolant; none: the default estimate (about 850 W/m2/K, range about 540-1380)",
    )
    cooled_surface: Literal["catheter", "tip"] = Field(
        "catheter",
        description="cavity: where the coolant acts: the whole catheter in the tissue (Visualase circulates "
        "saline to the distal end) or only the diffusing tip (the shaft is then insulated)",
    )
    schedule_csv: str | None = Field(None, description="CSV file with columns time_s, power_W (relative to the case)")
    position: list[ApplicatorPosition] = Field(
        default_factory=list, description="pull-back positions; empty: the tip stays at tip_center_m"
    )

    @model_validator(mode="before")
    @classmethod
    def _csv_was_read(cls, data: Any) -> Any:
        """The CSV is read into ``schedule`` by the case loader (solver.case_loader: it needs
        the case folder). A schedule_csv still unread here is refused, never taken as 0 W."""
        if isinstance(data, dict) and data.get("schedule_csv") and data.get("schedule") is None:
            if data.get("power_W") is not None:
                raise ValueError("give power_W, schedule or schedule_csv, not several")
            if not isinstance(data["schedule_csv"], str):
                return data  # the field's type check names it
            raise ValueError(
                f"schedule_csv = {shorten(repr(data['schedule_csv']), 100)} has not been read: the case loader "
                "reads it relative to the case's folder (solver.case_loader.load_case or parse_case)"
            )
        return data

    @model_validator(mode="before")
    @classmethod
    def _default_coolant_h(cls, data: Any) -> Any:
        """A convectively cooled cavity without a coefficient gets the default estimate, written
        into the resolved case (solver.catheter.DEFAULT_COOLANT_HEAT_TRANSFER_W_PER_M2K)."""
        if (
            isinstance(data, dict)
            and data.get("representation") == "cavity"
            and data.get("cooling", "convective") == "convective"
            and data.get("coolant_heat_transfer_W_per_m2K") is None
        ):
            from .catheter import DEFAULT_COOLANT_HEAT_TRANSFER_W_PER_M2K

            data = dict(data)
            data["coolant_heat_transfer_W_per_m2K"] = DEFAULT_COOLANT_HEAT_TRANSFER_W_PER_M2K
        return data

    @model_validator(mode="after")
    def _geometry(self) -> "Applicator":
        if self.cooling == "fixed_temperature" and self.coolant_heat_transfer_W_per_m2K is not None:
            raise ValueError(
                f"coolant_heat_transfer_W_per_m2K = {self.coolant_heat_transfer_W_per_m2K} is used only with "
                "cooling = 'convective'; with cooling = 'fixed_temperature' the wall is held at "
                "coolant_temperature_C (remove one of the two)"
            )
        if self.track is None and self.tip_to_dura_m is not None:
            raise ValueError("tip_to_dura_m needs track = 'transpedicular' (a spine case)")
        if self.track is not None and (self.entry_m is None or self.tip_end_m is None):
            raise ValueError(f"track = '{self.track}' needs geometry.kind = 'spine' (it places the catheter in the vertebra)")
        by_centre = self.tip_center_m is not None or self.direction is not None
        by_points = self.entry_m is not None or self.tip_end_m is not None
        if by_centre == by_points or (by_centre and (self.tip_center_m is None or self.direction is None)) or (
            by_points and (self.entry_m is None or self.tip_end_m is None)
        ):
            raise ValueError("give tip_center_m and direction, or entry_m and tip_end_m")
        axis = self.axis
        if axis is None:
            raise ValueError("direction (or tip_end_m - entry_m) must be a non-zero vector")
        times = [p.start_s for p in self.position]
        if any(b <= a for a, b in zip(times, times[1:])):
            raise ValueError(f"position start_s must increase strictly, got {times}")
        return self

    @property
    def axis(self) -> Vec3 | None:
        if self.direction is not None:
            d = self.direction
        else:
            d = tuple(self.tip_end_m[i] - self.entry_m[i] for i in range(3))
        n = _norm(d)
        return None if n == 0.0 else tuple(c / n for c in d)

    def catheter_entry_m(self, tip_end_m: Vec3) -> Vec3:
        """Where the catheter enters (m): ``entry_m``, or without one (tip_center_m and
        direction) the point CATHETER_WITHOUT_ENTRY_LENGTH_M back along the axis from the
        distal tip end ``tip_end_m``. The mesh's cavity, the anatomy checks and the distances
        of ``bioheat mesh`` all use this one point."""
        if self.entry_m is not None:
            return self.entry_m
        a = self.axis
        return tuple(tip_end_m[i] - CATHETER_WITHOUT_ENTRY_LENGTH_M * a[i] for i in range(3))

    @property
    def home_tip_center_m(self) -> Vec3:
        if self.tip_center_m is not None:
            return self.tip_center_m
        a = self.axis
        return tuple(self.tip_end_m[i] - 0.5 * self.tip_length_m * a[i] for i in range(3))

    def positions(self) -> list[tuple[float, Vec3]]:
        """(start_s, tip centre) of every position, the first from t = 0."""
        if not self.position:
            return [(0.0, self.home_tip_center_m)]
        out = [(p.start_s, p.tip_center_m) for p in self.position]
        if out[0][0] > 0.0:
            out.insert(0, (0.0, self.home_tip_center_m))
        return out

    def tip_segment(self, centre: Vec3) -> tuple[Vec3, Vec3]:
        """Proximal and distal ends (m) of the diffusing tip centred at ``centre``."""
        a, h = self.axis, 0.5 * self.tip_length_m
        return (
            tuple(centre[i] - h * a[i] for i in range(3)),
            tuple(centre[i] + h * a[i] for i in range(3)),
        )

    def energy_in_window(self, t0_s: float, t1_s: float, w0_s: float, w1_s: float) -> float:
        """Energy (J) of this applicator's schedule within [t0, t1] and a position window [w0, w1)."""
        a, b = max(t0_s, w0_s), min(t1_s, w1_s)
        return self.energy_between(a, b) if b > a else 0.0


class Coagulation(_Model):
    """Tissue changes driven by thermal damage (Arrhenius Omega at every node).

    Properties move from native to coagulated values with d = Omega / (ln 2 + Omega)
    (MD Anderson LITT code): perfusion (always), optics (light refreshed when d changed by
    more than optical_refresh_tolerance somewhere), and optionally k(T) (Rylander 2005).
    """

    enabled: bool = Field(False, description="track damage and let it change the tissue")
    arrhenius_set: Literal["henriques", "liver", "artery"] = Field(
        "henriques", description="default A, E_a (docs/MODEL.md section 3); per tissue: arrhenius_A_per_s, ..._Ea_J_per_mol"
    )
    absorption_factor: PositiveFloat = Field(
        1.0, description="coagulated mu_a = factor x native where a tissue gives no value (unitless)"
    )
    scattering_factor: PositiveFloat = Field(
        1.0,
        description="coagulated mu_s' = factor x native where a tissue gives no value (unitless); "
        "coagulation raises mu_s' up to about tenfold in muscle (BioMed Eng OnLine 2005, 4:2)",
    )
    optical_refresh_tolerance: float = Field(
        0.05, gt=0.0, le=1.0, description="re-solve the light when the damage fraction d changed by more than this"
    )
    temperature_dependent_conductivity: bool = Field(
        False,
        description="k(T) = k_tissue * f(T) / f(37 C), f(u) = 0.6489 + 0.0427 atan(0.02529 (u - 315.314)), "
        "u in K (Rylander 2005): re-assembles the operator every step",
    )


class DamageOptions(_Model):
    """How the ablation zone and the safety of critical structures are judged (docs/MODEL.md 3)."""

    ablation_criterion: Literal["omega", "cem43", "isotherm"] = Field(
        "omega", description="ablated where Omega >= ablation_omega, CEM43 >= ablation_cem43_min, "
        "or the maximum temperature over time >= ablation_isotherm_C"
    )
    ablation_omega: PositiveFloat = Field(1.0, description="Arrhenius threshold (unitless; 1 = 63 % of cells)")
    ablation_cem43_min: PositiveFloat = Field(240.0, description="thermal dose threshold (CEM43 minutes)")
    ablation_isotherm_C: float = Field(57.0, gt=37.0, le=100.0, description="isotherm threshold (C)")
    tumour_regions: list[str] | None = Field(
        None, description="regions that are tumour (default: a spine geometry's tumours and the regions "
        "whose tissue is the library's tumour tissue, directly or as [tissues.X] base)"
    )
    critical_regions: list[str] | None = Field(
        None, description="regions to keep safe (default: those of spinal_cord, dura, nerve present)"
    )
    max_temperature_C: float = Field(
        45.0, gt=37.0, le=100.0, description="safety limit for critical regions (C; Scott et al. 2014)"
    )
    max_cem43_min: PositiveFloat = Field(6.0, description="safety limit for critical regions (CEM43 minutes)")


class Monitor(_Model):
    """A monitoring ('safety') point as placed on MR thermometry."""

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$", description="name (also a probe column)")
    position_m: Vec3 = Field(description="position (m)")
    high_limit_C: float | None = Field(
        None, gt=37.0, le=100.0, description="laser off when exceeded (C); must exceed body temperature"
    )
    low_limit_C: float | None = Field(None, gt=37.0, le=100.0, description="target temperature (C)")
    action: Literal["stop", "pause"] = Field(
        "stop", description="at the high limit: stop for the rest of the dose, or pause and resume"
    )
    resume_below_C: float | None = Field(
        None, gt=37.0, description="pause: resume when below this (C); default high_limit_C - 2"
    )

    @model_validator(mode="after")
    def _limits(self) -> "Monitor":
        if self.high_limit_C is None and self.low_limit_C is None:
            raise ValueError("give high_limit_C and/or low_limit_C")
        if self.resume_below_C is not None and self.high_limit_C is not None and self.resume_below_C >= self.high_limit_C:
            raise ValueError(f"resume_below_C = {self.resume_below_C} must be below high_limit_C = {self.high_limit_C}")
        return self


class Control(_Model):
    """Dose control beyond the safety points."""

    stop_when_targets_reached: bool = Field(
        False, description="end the dose once every monitor with a low_limit_C has reached it"
    )


# --------------------------------------------------------------------------- time, solver, io


class InitialCondition(_Model):
    """Temperature at t = 0 (uniform)."""

    temperature_C: float = Field(37.0, ge=-273.15, le=200.0, description="initial temperature (C)")


class TimeStepping(_Model):
    """Steady state, or transient with backward Euler (order 1) or Crank-Nicolson (order 2)."""

    mode: Literal["steady", "transient"] = "transient"
    scheme: Literal["backward_euler", "crank_nicolson"] = Field(
        "backward_euler",
        description="time discretisation (order 1 or 2); crank_nicolson takes the step at and the "
        "step after every discontinuity (t = 0, a step-schedule jump or a ramp shorter than dt_s, an "
        "applicator move, the "
        "laser stopped/paused/resumed by a monitor) as two backward-Euler half steps each "
        "(Rannacher start-up: no oscillation after a jump, order 2 kept)",
    )
    dt_s: PositiveFloat = Field(1.0, description="time step (s)")
    end_time_s: PositiveFloat = Field(60.0, description="end time (s)")
    output_interval_s: PositiveFloat | None = Field(
        None, description="probe/field output interval (s); default every step"
    )

    @model_validator(mode="after")
    def _steps(self) -> "TimeStepping":
        if self.mode == "transient":
            if self.dt_s > self.end_time_s:
                raise ValueError(f"dt_s = {self.dt_s} must be <= end_time_s = {self.end_time_s}")
            _whole_steps(self.end_time_s, self.dt_s)
            if self.output_interval_s is not None and self.output_interval_s < self.dt_s:
                raise ValueError(
                    f"output_interval_s = {self.output_interval_s} must be >= dt_s = {self.dt_s}"
                )
        return self

    @property
    def num_steps(self) -> int:
        return max(1, int(round(self.end_time_s / self.dt_s)))


MAX_STEPS_ANY = 1e12  # beyond any run; the practical cap is solver.limits (SPINE_LITT_MAX_STEPS)


def _whole_steps(end_time_s: float, dt_s: float) -> int:
    """Number of steps; the end time must be a whole number of steps (relative 1e-9), so the
    run ends exactly at end_time_s (it is refused otherwise, not shortened or lengthened)."""
    steps = end_time_s / dt_s
    if not math.isfinite(steps) or steps > MAX_STEPS_ANY:
        raise ValueError(
            f"dt_s = {dt_s:g} with end_time_s = {end_time_s:g} gives {steps:.3g} steps; allowed: at most {MAX_STEPS_ANY:g}"
        )
    n = round(steps)
    if abs(steps - n) > 1e-9 * max(1.0, steps):
        lo, hi = max(1, math.floor(steps)), math.ceil(steps)
        raise ValueError(
            f"end_time_s = {end_time_s:g} is not a whole number of steps of dt_s = {dt_s:g} ({steps:.6g} steps); "
            f"allowed: a multiple of dt_s, e.g. end_time_s = {lo * dt_s:g} or {hi * dt_s:g}"
        )
    return n


class SolverOptions(_Model):
    """Element degree and the Krylov solver (defaults chosen by measurement, see README)."""

    element_degree: Literal[1, 2] = Field(1, description="Lagrange degree of the temperature")
    ksp_type: Literal["cg", "gmres", "bicgstab", "preonly"] = "cg"
    pc_type: Literal["jacobi", "sor", "icc", "ilu", "gamg", "lu", "none"] | None = Field(
        None, description="preconditioner; default jacobi (transient) or icc (steady), chosen by measurement"
    )
    # Default chosen by measurement (T8 standard, 180 steps, extrapolated initial guess): rtol
    # 1e-10 / 1e-9 / 1e-8 / 1e-7 take 9.8 / 7.6 / 5.3 / 3.1 CG iterations per step and leave an
    # algebraic error of 2.5e-7 / 1.8e-6 / 2.3e-5 / 2.5e-4 K in T and max T after the run, the
    # ablation volume unchanged to 6 digits; 1e-8 keeps the error 1000 times below the
    # discretisation error of the finest spine level (docs/PERFORMANCE.md).
    # At most 1e-6: the residual is relative to the whole right-hand side, which rho c T / dt at
    # body temperature dominates, so a loose tolerance accepts a step's initial guess as it is
    # (T8: rtol 0.5 and 0.1 never heated, 0 iterations; 1e-2 put the dura 6.5 K off, silently).
    rtol: float = Field(1e-8, gt=0.0, le=1e-6, description="relative residual tolerance of the Krylov solve "
                        "(dimensionless, at most 1e-6; default 1e-8: about 2e-5 K algebraic error on the T8 case)")
    atol: float = Field(1e-12, ge=0.0, description="absolute residual tolerance")
    max_iterations: int = Field(10000, gt=0, le=10_000_000, description="Krylov iteration limit per solve")
    temperature_ceiling_C: float = Field(
        150.0,
        gt=100.0,
        le=1000.0,
        description="stop (exit 3) when a temperature outside point/line-source neighbourhoods exceeds "
        "this (C). Above 100 C the model no longer holds (no vaporisation: latent heat 2.26 MJ/kg "
        "of tissue water is ignored, so temperatures are overestimated; then charring), and runs "
        "warn; 150 C leaves room for the overshoot such a model shows next to an applicator while "
        "stopping well before carbonisation (about 200 C and above), where optics and properties "
        "differ entirely",
    )


class Probe(_Model):
    """A named point whose values are written to probes.csv."""

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$", description="column name in probes.csv")
    position_m: Vec3 = Field(description="position (m)")


# Default time between field frames (s). Measured with the mesh written once (VTX mesh reuse) on
# the shipped T8 case (13k dofs, 6 fields, 180 s; scripts/bench.py --only t8 --resolution standard):
# fields every 2 s (the probe interval) 71 MB, every 5 s 31 MB, every 10 s 17 MB; field output is
# under 2 % of the run at every one of these, so the disk (a T8 run's fields under 30 MB) sets it.
DEFAULT_FIELD_INTERVAL_S = 10.0


class Output(_Model):
    """Field output for ParaView."""

    fields: bool = Field(True, description="write temperature fields for ParaView")
    field_format: Literal["vtx", "xdmf"] = "vtx"
    field_interval_s: PositiveFloat | None = Field(
        None, description="field output interval (s); default: the larger of 10 s and time.output_interval_s "
        "(dt_s when that is unset)"
    )
    report_convention: Literal["radiological", "neurological"] = Field(
        "radiological",
        description="report: display of axial images; radiological (viewed from the feet, patient's left on the "
        "image right) or neurological (patient's left on the image left)",
    )


class Checkpoint(_Model):
    """Checkpoints of a transient run's full state, for ``bioheat run CASE --out DIR --resume``.

    Written to ``DIR.checkpoint/`` (beside DIR, so that it survives a killed run) every
    ``every_steps`` time steps, every ``every_wall_s`` seconds of wall-clock time, and on
    SIGTERM/SIGINT (then the run stops with exit code 75). Removed when the run completes."""

    every_steps: int = Field(
        0, ge=0, le=10**9, description="checkpoint every this many time steps (steps); 0: never by step count"
    )
    every_wall_s: float = Field(
        1800.0, ge=0.0, le=1e9,
        description="checkpoint when this much wall-clock time (s) has passed since the last one; 0: never by wall time",
    )
    on_signal: bool = Field(
        True, description="on SIGTERM/SIGINT write a checkpoint and stop (exit 75) instead of dying at once"
    )


class Manufactured(_Model):
    """Verification: a built-in manufactured solution replaces sources and boundary data."""

    solution: str = Field(description="name of a solution in solver.analytic.MANUFACTURED")


# --------------------------------------------------------------------------- case


class Case(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9_\-\.]+$", description="case name")
    description: str = ""
    geometry: Geometry
    regions: dict[str, str] = Field(description="region name -> tissue name")
    tissues: dict[str, Tissue] = Field(
        default_factory=dict, description="[tissues.NAME]: override a library tissue or define a new one"
    )
    boundary: list[Boundary] = Field(default_factory=list)
    source: list[Source] = Field(default_factory=list)
    light: Light = Field(default_factory=Light)
    coagulation: Coagulation = Field(default_factory=Coagulation)
    damage: DamageOptions = Field(default_factory=DamageOptions)
    monitor: list[Monitor] = Field(default_factory=list, description="safety/target points")
    control: Control = Field(default_factory=Control)
    applicator: list[Applicator] = Field(default_factory=list, description="laser applicators")
    initial: InitialCondition = Field(default_factory=InitialCondition)
    time: TimeStepping = Field(default_factory=TimeStepping)
    solver: SolverOptions = Field(default_factory=SolverOptions)
    probe: list[Probe] = Field(default_factory=list)
    output: Output = Field(default_factory=Output)
    checkpoint: Checkpoint = Field(default_factory=Checkpoint)
    manufactured: Manufactured | None = None

    # Filled by load_case: where relative paths are resolved from.
    case_dir: str = Field(".", description="directory of the case file (set by the loader)")
    # Filled by load_case for mesh files: warnings from the file's groups and extent.
    _file_warnings: list[str] = PrivateAttr(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _spine_region_defaults(cls, data: Any) -> Any:
        """Spine cases: every anatomical region not named under [regions] gets its default tissue
        (SPINE_DEFAULT_TISSUES; tumours: 'tumour'), so a case is a level, a tumour and an applicator."""
        if not isinstance(data, dict):
            return data
        geom = data.get("geometry")
        if not isinstance(geom, dict) or geom.get("kind") != "spine":
            return data
        regions = data.get("regions", {})
        if not isinstance(regions, dict):
            return data  # reported by the normal validation
        filled = dict(SPINE_DEFAULT_TISSUES)
        content = geom.get("anterior_epidural", "ligament_venous")
        if isinstance(content, str) and content in ANTERIOR_EPIDURAL_TISSUES:
            filled["epidural_anterior"] = ANTERIOR_EPIDURAL_TISSUES[content]
        for t in geom.get("tumour", []) or []:
            if isinstance(t, dict) and isinstance(t.get("name"), str):
                filled[t["name"]] = "tumour"
        filled.update(regions)
        data = dict(data)
        data["regions"] = filled
        return data

    @model_validator(mode="before")
    @classmethod
    def _place_tracks(cls, data: Any) -> Any:
        """Applicators with ``track`` on a spine: compute entry_m and tip_end_m from the anatomy
        (meshes.spine_dimensions.transpedicular_track). Points already present (a resolved
        case.toml) must equal the computed ones, so a re-run cannot silently move the catheter."""
        if not isinstance(data, dict) or not isinstance(data.get("applicator"), list):
            return data
        geom = data.get("geometry")
        tracked = [i for i, ap in enumerate(data["applicator"]) if isinstance(ap, dict) and ap.get("track")]
        if not tracked or not isinstance(geom, dict) or geom.get("kind") != "spine":
            return data
        try:
            spine = SpineGeometry.model_validate(geom)
        except ValidationError:
            return data  # the geometry's own errors are reported by the normal validation
        data = dict(data)
        data["applicator"] = list(data["applicator"])
        for i in tracked:
            ap = dict(data["applicator"][i])
            if ap["track"] != "transpedicular":
                continue  # the field's own validation names the allowed tracks
            for key in ("tip_center_m", "direction"):
                if ap.get(key) is not None:
                    raise ValueError(f"applicator[{i}]: give track or {key}, not both")
            side = ap.get("side", "left")
            try:
                entry, end = transpedicular_track(
                    spine,
                    side=side if side in ("left", "right") else "left",
                    tip_length_m=float(ap.get("tip_length_m", DEFAULT_TIP_LENGTH_M)),
                    tip_to_dura_m=ap.get("tip_to_dura_m"),
                )
            except (TypeError, ValueError) as err:
                raise ValueError(f"applicator[{i}]: {err}") from None
            for key, value in (("entry_m", entry), ("tip_end_m", end)):
                given = ap.get(key)
                if given is not None and (
                    not isinstance(given, (list, tuple))
                    or len(given) != 3
                    or any(abs(float(g) - v) > 1e-9 for g, v in zip(given, value))
                ):
                    raise ValueError(
                        f"applicator[{i}].{key} = {given} differs from the {ap['track']} track's "
                        f"{[round(v, 9) for v in value]}; give track or {key}, not both"
                    )
                ap[key] = list(value)
            data["applicator"][i] = ap
        return data

    @model_validator(mode="after")
    def _cross_checks(self) -> "Case":
        """Every cross-key problem of the case, all reported at once (one per line)."""
        problems: list[str] = []
        lib = tissue_library.library()
        known_tissues = set(lib) | set(self.tissues)
        for region, tissue in self.regions.items():
            if tissue not in known_tissues:
                problems.append(
                    f"regions.{region} = '{tissue}': unknown tissue{cc.did_you_mean(tissue, known_tissues)}; "
                    f"allowed: {sorted(known_tissues)} or a new [tissues.{tissue}] table"
                )
        used = set(self.regions.values())
        for name, t in self.tissues.items():
            if name not in used:
                # a [tissues.NAME] table no region uses changes nothing: usually a misspelt name
                # (or a --set on the wrong tissue), which would otherwise run silently unchanged
                problems.append(
                    f"tissues.{name}: no region uses this tissue{cc.did_you_mean(name, used)}, so its "
                    f"values would change nothing; regions use {sorted(used)} (set regions.REGION = "
                    f"'{name}' to use it, or remove the table)"
                )
            if t.base is not None and t.base not in lib:
                problems.append(
                    f"tissues.{name}.base = '{t.base}': unknown library tissue{cc.did_you_mean(t.base, lib)}; "
                    f"allowed: {sorted(lib)}"
                )
            if name not in lib and t.base is None:
                missing = [
                    k
                    for k in ("density_kg_per_m3", "specific_heat_J_per_kgK", "conductivity_W_per_mK")
                    if getattr(t, k) is None
                ]
                if missing:
                    problems.append(
                        f"tissues.{name}: a new tissue needs {missing} (or base = '<library tissue>')"
                    )
        geom = self.geometry
        if not isinstance(geom, FileGeometry):
            have = geom.region_names()
            for region in have:
                if region not in self.regions:
                    problems.append(
                        f"regions: geometry region '{region}' has no tissue; add "
                        f"regions.{region} = '<tissue>' (regions of this geometry: {have})"
                    )
            for region in self.regions:
                if region not in have:
                    problems.append(
                        f"regions.{region}: the geometry has no region '{region}'{cc.did_you_mean(region, have)}; "
                        f"it has {have}"
                    )
            surfaces = geom.surface_names()
            for ap in self.applicator:
                if ap.representation == "cavity":
                    surfaces = surfaces + list(cavity_surface_names(ap.name))
            for i, bc in enumerate(self.boundary):
                for s in bc.surfaces():
                    if s not in surfaces:
                        problems.append(
                            f"boundary[{i}].surface = '{s}': unknown surface{cc.did_you_mean(s, surfaces)}; "
                            f"allowed: {surfaces}"
                        )
            for i, src in enumerate(self.source):
                if isinstance(src, UniformSource) and src.region not in have:
                    problems.append(
                        f"source[{i}].region = '{src.region}': unknown region{cc.did_you_mean(src.region, have)}; "
                        f"allowed: {have}"
                    )
        names = set()
        for i, p in enumerate(self.probe):
            if p.name in names:
                problems.append(f"probe[{i}].name = '{p.name}' is used twice")
            names.add(p.name)
            if not geom.contains(p.position_m, tol=1e-12):
                problems.append(
                    f"probe[{i}].position_m = {list(p.position_m)} ('{p.name}') lies outside the "
                    f"{geom.kind} geometry; allowed: inside the {geom.describe()}"
                )
        for i, src in enumerate(self.source):
            pts = []
            if isinstance(src, PointSource):
                pts = [("position_m", src.position_m)]
            elif isinstance(src, SegmentSource):
                pts = [("start_m", src.start_m), ("end_m", src.end_m)]
            for key, p in pts:
                if not geom.contains(p, tol=1e-12):
                    problems.append(
                        f"source[{i}].{key} = {list(p)} lies outside the {geom.kind} geometry; "
                        f"allowed: inside the {geom.describe()}"
                    )
        self._check_applicators(problems)
        self._check_damage(problems)
        if self.coagulation.enabled and self.time.mode == "steady":
            problems.append("coagulation.enabled = true needs time.mode = 'transient' (damage accumulates in time)")
        try:
            self._check_steady_heat_sink()
        except ValueError as err:
            problems.append(str(err))
        if self.manufactured is not None:
            if self.manufactured.solution not in MANUFACTURED:
                problems.append(
                    f"manufactured.solution = '{self.manufactured.solution}': unknown; "
                    f"allowed: {sorted(MANUFACTURED)}"
                )
        parts = cc.primitive_surface_parts(self)
        if parts is not None:
            problems += cc.boundary_overlaps(cc.boundary_tables(self), parts)
        problems += cc.schedule_problems(self)
        problems += cc.points_in_cavities(self)
        if not isinstance(geom, (FileGeometry, SpineGeometry)):
            problems += cc.inclusion_clipping(geom)[0]
        problems += cc.plausibility(self)[0]
        if problems:
            # one problem per line; _format_errors splits them
            raise ValueError("\n".join(dict.fromkeys(problems)))
        return self

    def _check_steady_heat_sink(self) -> None:
        """A steady state needs something that removes heat: perfusion in some region, a
        Dirichlet or Robin surface, or a cooled catheter (a cavity applicator's wall). Without
        one, any net heat makes the temperature grow without bound (no steady state), and zero
        net heat leaves it undetermined up to a constant (the operator is singular)."""
        if self.time.mode != "steady":
            return
        if any(t.perfusion_W_per_m3K > 0.0 for t in self.resolved_tissues().values()):
            return
        if any(isinstance(bc, (DirichletBC, RobinBC)) for bc in self.boundary):
            return
        if any(ap.representation == "cavity" for ap in self.applicator):
            return
        regions = ", ".join(f"{r} ({t})" for r, t in self.regions.items())
        raise ValueError(
            "time.mode = 'steady': no steady state exists, because nothing removes heat: "
            f"perfusion_W_per_m3K is 0 in every region [{regions}], no [[boundary]] is of type "
            "'dirichlet' or 'robin', and no applicator has a cooled catheter "
            "(representation = 'cavity'). With net heat in or out the temperature grows or falls "
            "without bound; with none it is fixed only up to a constant. Add perfusion "
            "(tissues.NAME.perfusion_W_per_m3K > 0), a dirichlet or robin [[boundary]], or run "
            "time.mode = 'transient'"
        )

    def warnings(self) -> list[str]:
        """Unusual but possible settings (plausibility ranges in solver/case_checks.py)."""
        out = cc.plausibility(self)[1] + list(self._file_warnings)
        if not isinstance(self.geometry, (FileGeometry, SpineGeometry)):
            out += cc.inclusion_clipping(self.geometry)[1]
        out += self._undeclared_tumour_hint()
        return out

    def _undeclared_tumour_hint(self) -> list[str]:
        """A hint (never a decision) when no region is scored as tumour but a region is named
        like one: tumour regions are declared (:meth:`tumour_regions`), not read from names."""
        if self.tumour_regions():
            return []
        named = [r for r in self.regions if "tumo" in r.lower()]
        return [
            f"regions.{r} = '{self.regions[r]}': not scored as tumour (no coverage or tumour dose), as its "
            "tissue is not the library's tumour tissue; set damage.tumour_regions = "
            f"{named!r} to score it" for r in named[:1]
        ]

    def _check_applicators(self, problems: list[str]) -> None:
        geom = self.geometry
        names = set()
        for i, ap in enumerate(self.applicator):
            if ap.name in names:
                problems.append(f"applicator[{i}].name = '{ap.name}' is used twice")
            names.add(ap.name)
            for j, (_, centre) in enumerate(ap.positions()):
                for end_name, p in zip(("proximal", "distal"), ap.tip_segment(centre)):
                    if not geom.contains(p, tol=1e-12):
                        if ap.position:
                            where = f"position[{j}].tip_center_m = {list(centre)}"
                        elif ap.tip_center_m is not None:
                            where = f"tip_center_m = {list(ap.tip_center_m)}"
                        else:
                            where = f"tip_end_m = {list(ap.tip_end_m)}"
                        problems.append(
                            f"applicator[{i}].{where}: the {end_name} end of the "
                            f"{ap.tip_length_m * 1e3:g} mm diffusing tip, {[round(c, 6) for c in p]} m, "
                            f"lies outside the {geom.kind} geometry"
                            + (f"; allowed: {geom.describe()}" if hasattr(geom, "describe") else "")
                        )
            if isinstance(geom, SpineGeometry):
                for j, (_, centre) in enumerate(ap.positions()):
                    end = ap.tip_segment(centre)[1]
                    entry = ap.catheter_entry_m(end)
                    try:
                        check_track(geom, entry, end, ap.catheter_radius_m, ap.tip_length_m)
                    except ValueError as err:
                        problems.append(f"applicator[{i}] ('{ap.name}'), position {j}: {err}")
            if ap.representation == "cavity" and isinstance(geom, FileGeometry):
                problems.append(
                    f"applicator[{i}].representation = 'cavity' needs a primitive geometry "
                    "(box, sphere, shell, cylinder); use 'line' with a mesh file"
                )
        if not self.applicator:
            return
        nm = self.light.wavelength_nm
        table = OPTICAL_TABLE[nm]
        lib_names = set(tissue_library.library())
        no_optics: dict[str, list[str]] = {}
        for region, tname in self.regions.items():
            override = self.tissues.get(tname)
            explicit = override is not None and override.absorption_per_m is not None and (
                override.reduced_scattering_per_m is not None
            )
            candidates = [tname] + ([override.base] if override is not None and override.base else [])
            in_table = any(OPTICAL_ALIASES.get(c, c) in table for c in candidates)
            if not (explicit or in_table):
                no_optics.setdefault(tname, []).append(region)
            if override is not None and (override.absorption_per_m is None) != (
                override.reduced_scattering_per_m is None
            ) and not in_table:
                problems.append(f"tissues.{tname}: give both absorption_per_m and reduced_scattering_per_m")
        for tname, regions in no_optics.items():
            problems.append(
                f"tissues.{tname}: no optical data at {nm} nm for region(s) {regions}; give "
                f"absorption_per_m and reduced_scattering_per_m (the table has "
                f"{sorted(table)} and aliases {sorted(OPTICAL_ALIASES)})"
            )
        del lib_names

    def _check_coagulation_degree(self, problems: list[str]) -> None:
        """Coagulation lumps perfusion (row sums) so that damage only changes a diagonal; for
        P2 tetrahedra the vertex rows of the mass matrix sum to -|K|/20 (negative weights)."""
        if self.coagulation.enabled and self.solver.element_degree != 1:
            problems.append(
                f"coagulation.enabled = true with solver.element_degree = {self.solver.element_degree}: "
                "not supported (the lumped perfusion of coagulation needs P1; row-sum lumping of P2 "
                "gives negative nodal weights); allowed: solver.element_degree = 1 with coagulation, "
                "or coagulation.enabled = false"
            )

    def _check_damage(self, problems: list[str]) -> None:
        self._check_coagulation_degree(problems)
        have = list(self.regions)
        for key in ("tumour_regions", "critical_regions"):
            for j, r in enumerate(getattr(self.damage, key) or []):
                if r not in have:
                    problems.append(f"damage.{key}[{j}] = '{r}': no such region; allowed: {have}")
        names = {p.name for p in self.probe}
        for i, m in enumerate(self.monitor):
            if m.name in names:
                problems.append(f"monitor[{i}].name = '{m.name}' is also a probe name")
            names.add(m.name)
            if not self.geometry.contains(m.position_m, tol=1e-12):
                problems.append(
                    f"monitor[{i}].position_m = {list(m.position_m)} ('{m.name}') lies outside the "
                    f"{self.geometry.kind} geometry"
                )
        if self.monitor and self.time.mode == "steady":
            problems.append("monitor points need time.mode = 'transient'")

    def tumour_regions(self) -> list[str]:
        """The regions scored as tumour (coverage, DVH): ``damage.tumour_regions`` when given;
        else the regions the case declares as tumour: the tumours of a spine geometry
        (``[[geometry.tumour]]``) and every region whose tissue is a tumour tissue of the
        library (:data:`solver.tissues.TUMOUR_TISSUES`; also through ``[tissues.X] base``).
        Region names are never guessed from."""
        if self.damage.tumour_regions is not None:
            return list(self.damage.tumour_regions)
        declared = {t.name for t in self.geometry.tumour} if isinstance(self.geometry, SpineGeometry) else set()
        for region, tissue in self.regions.items():
            override = self.tissues.get(tissue)
            base = override.base if override is not None and override.base is not None else tissue
            if tissue_library.is_tumour_tissue(tissue) or tissue_library.is_tumour_tissue(base):
                declared.add(region)
        return [r for r in self.regions if r in declared]

    def coolant_boundaries(self) -> list["DirichletBC | RobinBC"]:
        """The cooled catheter walls of cavity applicators as boundary conditions on '<name>' (the
        whole catheter) or '<name>_tip' (cooled_surface = 'tip'; the shaft is then insulated):
        Robin with coolant_heat_transfer_W_per_m2K (cooling = 'convective', docs/MODEL.md
        section 2) or Dirichlet at the coolant temperature (cooling = 'fixed_temperature')."""
        out: list[DirichletBC | RobinBC] = []
        for ap in self.applicator:
            if ap.representation != "cavity":
                continue
            tip, _shaft, whole = cavity_surface_names(ap.name)
            surface = whole if ap.cooled_surface == "catheter" else tip
            if ap.cooling == "fixed_temperature":
                out.append(DirichletBC(type="dirichlet", surface=surface, temperature_C=ap.coolant_temperature_C))
            else:
                out.append(
                    RobinBC(
                        type="robin",
                        surface=surface,
                        heat_transfer_coefficient_W_per_m2K=ap.coolant_heat_transfer_W_per_m2K,
                        ambient_temperature_C=ap.coolant_temperature_C,
                    )
                )
        return out

    def field_interval_s(self) -> float:
        """Time between field frames (s): output.field_interval_s, or by default the larger of
        DEFAULT_FIELD_INTERVAL_S and the probe interval (time.output_interval_s, else dt_s)."""
        if self.output.field_interval_s is not None:
            return self.output.field_interval_s
        return max(DEFAULT_FIELD_INTERVAL_S, self.time.output_interval_s or self.time.dt_s)

    def critical_regions(self) -> list[str]:
        if self.damage.critical_regions is not None:
            return list(self.damage.critical_regions)
        wanted = {"spinal_cord", "dura", "nerve", "nerve_roots"}
        return [r for r, t in self.regions.items() if r in wanted or t in wanted]

    def cavities(self) -> list[dict[str, Any]]:
        """Catheter cavities to cut out of the mesh: name, entry_m, end_m, radius_m, tip_length_m.

        The cavity runs from the entry point (:meth:`Applicator.catheter_entry_m`) to the
        deepest distal tip end over all pull-back positions."""
        out = []
        for ap in self.applicator:
            if ap.representation != "cavity":
                continue
            a = ap.axis
            ends = [ap.tip_segment(c)[1] for _, c in ap.positions()]
            depth = [sum(e[i] * a[i] for i in range(3)) for e in ends]
            end = ends[max(range(len(ends)), key=lambda k: depth[k])]
            entry = ap.catheter_entry_m(end)
            out.append(
                {
                    "name": ap.name,
                    "entry_m": tuple(entry),
                    "end_m": tuple(end),
                    "radius_m": ap.catheter_radius_m,
                    "tip_length_m": ap.tip_length_m,
                }
            )
        return out

    # ------------------------------------------------------------------ derived data
    def resolved_tissues(self) -> dict[str, ResolvedTissue]:
        """Tissue per region name, with library defaults and case overrides merged."""
        lib = tissue_library.library()
        out: dict[str, ResolvedTissue] = {}
        for region, tname in self.regions.items():
            override = self.tissues.get(tname)
            base_name = tname if tname in lib else (override.base if override else None)
            data: dict[str, Any] = dict(lib[base_name]) if base_name else {}
            if override is not None:
                if override.base is not None:
                    data = dict(lib[override.base])
                data.update(override.model_dump(exclude_none=True, exclude={"base"}))
            data.setdefault("perfusion_W_per_m3K", 0.0)
            data.setdefault("arterial_temperature_C", 37.0)
            data.setdefault("metabolic_heat_W_per_m3", 0.0)
            data.setdefault("source", "case file")
            if data.get("absorption_per_m") is None or data.get("reduced_scattering_per_m") is None:
                nm = self.light.wavelength_nm
                table = OPTICAL_TABLE[nm]
                for cand in (tname, override.base if override is not None else None, base_name):
                    key = OPTICAL_ALIASES.get(cand, cand) if cand else None
                    if key in table:
                        # the table fills only what the case leaves out: an explicit coefficient stays
                        if data.get("absorption_per_m") is None:
                            data["absorption_per_m"] = table[key].absorption_per_m
                        if data.get("reduced_scattering_per_m") is None:
                            data["reduced_scattering_per_m"] = table[key].reduced_scattering_per_m
                        if key in MODELLING_CHOICES.get(nm, ()):
                            data["source"] = f"{data['source']}; optics at {nm} nm: {OPTICAL_MODELLING_CHOICE}"
                        break
            out[region] = ResolvedTissue(name=tname, **data)
        return out

    def resolved_dict(self) -> dict[str, Any]:
        """The case as run: all defaults filled in, tissues resolved per region."""
        d = self.model_dump(mode="json", exclude={"case_dir"}, exclude_none=True)
        if isinstance(self.geometry, FileGeometry):
            # absolute, so that the case.toml written next to the results re-runs from there
            d["geometry"]["path"] = str(self.resolve_path(self.geometry.path).expanduser().resolve())
        for ap in d.get("applicator", []):
            ap.pop("schedule_csv", None)  # inlined as schedule by load_case
        d["tissues"] = {
            r.name: r.model_dump(mode="json", exclude={"name"}, exclude_none=True)
            for r in self.resolved_tissues().values()
        }
        return d

    def hash(self) -> str:
        """sha256 of the resolved case and, for a mesh file, of the file's bytes (so that a
        changed mesh changes the hash; its path does not)."""
        d = self.resolved_dict()
        if isinstance(self.geometry, FileGeometry):
            path = Path(d["geometry"]["path"])
            d["geometry"]["path"] = sha256_file(path) if path.is_file() else "missing"
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def resolve_path(self, p: str) -> Path:
        path = Path(p)
        return path if path.is_absolute() else Path(self.case_dir) / path


def schema_json() -> str:
    """The JSON schema of a case file."""
    return json.dumps(Case.model_json_schema(), indent=2, allow_nan=False)


def _type_name(annotation: Any) -> str:
    text = str(annotation).replace("typing.", "").replace("solver.config.", "")
    text = text.replace("<class '", "").replace("'>", "")
    # pydantic's constrained types print as Annotated[float, FieldInfo(..., metadata=[Gt(gt=0.0)])]
    text = re.sub(r"Annotated\[float, FieldInfo\([^()]*metadata=\[Gt\(gt=0\.0\)\]\)\]", "float>0", text)
    text = re.sub(r"Annotated\[Union\[[^\]]*\], FieldInfo\([^()]*\)\]", "one of the tables below", text)
    text = text.replace("Optional[float>0]", "float>0 | None")
    text = text.replace("tuple[float, float, float]", "[x, y, z]").replace("tuple[float>0, float>0, float>0]", "[x, y, z] >0")
    if text.startswith("Union["):
        text = "one of the tables below"
    return text


def schema_text() -> str:
    """Every key of a case file with its type, default and description (units included)."""
    import typing

    lines = [
        "Case file keys (TOML). SI units, temperatures in C; the unit is part of each key's name.",
        "Run `bioheat schema --json` for the machine-readable JSON schema.",
        "",
    ]

    def walk(model: type[BaseModel], prefix: str, seen: set) -> None:
        for name, info in model.model_fields.items():
            if name == "case_dir":
                continue
            key = f"{prefix}{name}"
            default = "required" if info.is_required() else f"default {info.get_default(call_default_factory=True)!r}"
            desc = info.description or ""
            lines.append(f"  {key:<48} {_type_name(info.annotation):<28} {default}  {desc}".rstrip())
            for sub in submodels(info.annotation):
                if sub in seen:
                    lines.append(f"  [{key}] as {sub.__name__}: keys as listed above")
                    continue
                seen.add(sub)
                doc = (sub.__doc__ or "").strip().splitlines()[0] if sub.__doc__ else ""
                table = f"{key}.NAME" if typing.get_origin(info.annotation) is dict else key
                lines.append(f"  [{table}] as {sub.__name__}: {doc}")
                walk(sub, f"{table}.", seen)

    walk(Case, "", set())
    lines.append("")
    lines.append("Library tissues: " + ", ".join(tissue_library.names()))
    return "\n".join(lines)
