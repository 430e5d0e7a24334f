"""Laser applicator (catheter) cavities cut out of primitive meshes: data and validation.

An applicator is a fibre in a saline-cooled catheter; the tissue mesh represents it as a
cylindrical hole of the catheter's outer radius, from where it enters (possibly outside the
domain, then the hole runs through the outer surface) to its closed, flat distal end. The
last ``tip_length_m`` before the end emits: its wall plus the end cap form the surface
``<name>_tip``, the rest of the wall inside the domain is ``<name>_shaft``, and ``<name>``
is an alias for both.

This module is pure Python (no gmsh), so validation runs identically on every rank; the gmsh
side (cut, face classification, size field) is in :mod:`meshes.primitives`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

# Facet tags: cavity i (0-based) gets CAVITY_TAG_BASE + 2 i (tip) and CAVITY_TAG_BASE + 2 i + 1
# (shaft). The geometry's own surfaces use tags < 10, so names rebuild from the inputs alone.
CAVITY_TAG_BASE = 100
MAX_CAVITIES = 50

# Element size on and near the cavity wall: CAVITY_SIZE_PER_RADIUS * radius_m (if smaller than
# mesh_size_m), kept up to CAVITY_PLATEAU_RADII radii from the axis and growing linearly to
# mesh_size_m at CAVITY_GROWTH_RADII radii from the axis.
CAVITY_SIZE_PER_RADIUS = 1.0
CAVITY_PLATEAU_RADII = 2.0
CAVITY_GROWTH_RADII = 6.0


def _vec3(v, what: str) -> tuple[float, float, float]:
    try:
        t = tuple(float(c) for c in v)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} = {v!r} must be three numbers (m)") from err
    if len(t) != 3 or not all(math.isfinite(c) for c in t):
        raise ValueError(f"{what} = {list(t)} must be three finite numbers (m)")
    return t  # type: ignore[return-value]


@dataclass(frozen=True)
class CatheterCavity:
    """A cylindrical applicator cavity from ``entry_m`` to the (flat, closed) ``end_m``."""

    name: str  # e.g. "applicator1"; surfaces <name>_tip, <name>_shaft and the alias <name>
    entry_m: tuple[float, float, float]  # may lie outside the domain
    end_m: tuple[float, float, float]  # distal end, inside the domain
    radius_m: float  # catheter outer radius
    tip_length_m: float  # emitting part: the last tip_length_m before end_m

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", str(self.name))
        object.__setattr__(self, "entry_m", _vec3(self.entry_m, f"'{self.name}'.entry_m"))
        object.__setattr__(self, "end_m", _vec3(self.end_m, f"'{self.name}'.end_m"))
        object.__setattr__(self, "radius_m", float(self.radius_m))
        object.__setattr__(self, "tip_length_m", float(self.tip_length_m))

    @property
    def length_m(self) -> float:
        return float(np.linalg.norm(np.subtract(self.end_m, self.entry_m)))

    @property
    def axis(self) -> np.ndarray:
        """Unit vector from entry to end."""
        d = np.subtract(self.end_m, self.entry_m, dtype=float)
        return d / np.linalg.norm(d)

    @property
    def tip_start_m(self) -> tuple[float, float, float]:
        p = np.asarray(self.end_m) - self.tip_length_m * self.axis
        return tuple(float(c) for c in p)  # type: ignore[return-value]

    @property
    def surface_names(self) -> tuple[str, str, str]:
        return cavity_surface_names(self.name)


def cavity_surface_names(name: str) -> tuple[str, str, str]:
    """(tip, shaft, alias) surface names of the catheter cavity of applicator ``name``:
    ``<name>_tip``, ``<name>_shaft`` and ``<name>`` (both). The one place they are named."""
    return f"{name}_tip", f"{name}_shaft", name


def cavity_surface_tags(i: int) -> tuple[int, int]:
    """(tip, shaft) facet tags of cavity ``i``."""
    return CAVITY_TAG_BASE + 2 * i, CAVITY_TAG_BASE + 2 * i + 1


def cavity_surfaces(cavities: Sequence[CatheterCavity]) -> tuple[dict[str, int], dict[str, list[int]]]:
    """(non-alias surface name -> tag, every surface name -> tags incl. the alias <name>)."""
    base: dict[str, int] = {}
    allnames: dict[str, list[int]] = {}
    for i, cav in enumerate(cavities):
        tip, shaft = cavity_surface_tags(i)
        n_tip, n_shaft, alias = cav.surface_names
        base[n_tip], base[n_shaft] = tip, shaft
        allnames[n_tip], allnames[n_shaft], allnames[alias] = [tip], [shaft], [tip, shaft]
    return base, allnames


def cavities_json(cavities: Sequence[CatheterCavity]) -> str:
    """Canonical JSON of the cavities (for the cache key)."""
    return json.dumps([asdict(c) for c in cavities], sort_keys=True, separators=(",", ":"))


# --------------------------------------------------------------------------- geometry helpers


def segment_distance(p0, p1, q0, q1) -> float:
    """Shortest distance between the segments [p0, p1] and [q0, q1] (Ericson, RTCD 5.1.9)."""
    p0, p1, q0, q1 = (np.asarray(v, dtype=float) for v in (p0, p1, q0, q1))
    d1, d2, r = p1 - p0, q1 - q0, p0 - q0
    a, e, f = d1 @ d1, d2 @ d2, d2 @ r
    eps = 1e-300
    if a <= eps and e <= eps:
        return float(np.linalg.norm(r))
    if a <= eps:
        s, t = 0.0, float(np.clip(f / e, 0.0, 1.0))
    else:
        c = d1 @ r
        if e <= eps:
            t, s = 0.0, float(np.clip(-c / a, 0.0, 1.0))
        else:
            b = d1 @ d2
            denom = a * e - b * b
            s = float(np.clip((b * f - c * e) / denom, 0.0, 1.0)) if denom > 1e-15 * a * e else 0.0
            t = (b * s + f) / e
            if t < 0.0:
                t, s = 0.0, float(np.clip(-c / a, 0.0, 1.0))
            elif t > 1.0:
                t, s = 1.0, float(np.clip((b - c) / a, 0.0, 1.0))
    return float(np.linalg.norm(p0 + s * d1 - (q0 + t * d2)))


def length_inside(geometry, cav: CatheterCavity, samples: int = 4000) -> float:
    """Length of the axis piece that ends at ``end_m`` and lies inside the geometry without a
    gap (the catheter's length in tissue), to ~length/samples, refined by bisection."""
    a, e = np.asarray(cav.entry_m), np.asarray(cav.end_m)

    def inside(s: float) -> bool:  # s = 0 at end_m, 1 at entry_m
        return geometry.contains(tuple(float(c) for c in e + s * (a - e)))

    s_grid = np.linspace(0.0, 1.0, samples + 1)
    last_in = 0.0
    for s in s_grid[1:]:
        if not inside(float(s)):
            lo, hi = last_in, float(s)
            for _ in range(60):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if inside(mid) else (lo, mid)
            return lo * cav.length_m
        last_in = float(s)
    return cav.length_m


def _circle_points(centre, axis, radius: float, n: int = 8) -> list[tuple[float, float, float]]:
    axis = np.asarray(axis, dtype=float)
    helper = np.eye(3)[int(np.argmin(np.abs(axis)))]
    u = np.cross(axis, helper)
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    c = np.asarray(centre, dtype=float)
    return [
        tuple(float(x) for x in c + radius * (math.cos(t) * u + math.sin(t) * v))
        for t in np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    ]


# --------------------------------------------------------------------------- validation


def validate_cavities(geometry, cavities) -> tuple[CatheterCavity, ...]:
    """Check the cavities against ``geometry``; return them as a tuple of CatheterCavity.

    Raises ValueError naming ``applicator[i]`` and the offending values.
    """
    if cavities is None:
        return ()
    out: list[CatheterCavity] = []
    for i, c in enumerate(cavities):
        if isinstance(c, Mapping):
            try:
                c = CatheterCavity(**c)
            except TypeError as err:
                raise ValueError(f"applicator[{i}]: {err}") from err
        elif not isinstance(c, CatheterCavity):
            raise ValueError(f"applicator[{i}] must be a CatheterCavity, not {type(c).__name__}")
        out.append(c)
    if not out:
        return ()
    if getattr(geometry, "kind", None) == "file":
        raise ValueError(
            f"applicator cavities need a primitive geometry (box, sphere, shell, cylinder); "
            f"geometry.kind = 'file' ({getattr(geometry, 'path', '?')}) cannot be cut"
        )
    if len(out) > MAX_CAVITIES:
        raise ValueError(f"at most {MAX_CAVITIES} applicator cavities are supported, got {len(out)}")

    taken = set(geometry.surface_names())
    for i, cav in enumerate(out):
        where = f"applicator[{i}] '{cav.name}'"
        if not cav.name or not cav.name.strip() or cav.name != cav.name.strip():
            raise ValueError(f"applicator[{i}].name = {cav.name!r} must be a non-empty name without surrounding spaces")
        clash = taken & set(cav.surface_names)
        if clash:
            raise ValueError(f"{where}: surface name(s) {sorted(clash)} already in use (taken: {sorted(taken)})")
        taken |= set(cav.surface_names)
        if not (math.isfinite(cav.radius_m) and cav.radius_m > 0.0):
            raise ValueError(f"{where}: radius_m = {cav.radius_m} must be > 0")
        if not (math.isfinite(cav.tip_length_m) and cav.tip_length_m > 0.0):
            raise ValueError(f"{where}: tip_length_m = {cav.tip_length_m} must be > 0")
        if cav.length_m <= 0.0:
            raise ValueError(f"{where}: entry_m = {list(cav.entry_m)} and end_m = {list(cav.end_m)} coincide")
        if not geometry.contains(cav.end_m):
            raise ValueError(
                f"{where}: end_m = {list(cav.end_m)} lies outside the geometry; allowed: inside the "
                f"{geometry.describe()}"
            )
        rim = _circle_points(cav.end_m, cav.axis, cav.radius_m)
        if not all(geometry.contains(p) for p in rim):
            raise ValueError(
                f"{where}: the end cap (radius_m = {cav.radius_m} around end_m = {list(cav.end_m)}) "
                f"sticks out of the {geometry.describe()}"
            )
        inside = length_inside(geometry, cav)
        if not cav.tip_length_m < inside:
            raise ValueError(
                f"{where}: tip_length_m = {cav.tip_length_m} must be shorter than the catheter's "
                f"length inside the geometry, {inside:.6g} m (entry_m = {list(cav.entry_m)}, "
                f"end_m = {list(cav.end_m)})"
            )
        if not all(geometry.contains(p) for p in _circle_points(cav.tip_start_m, cav.axis, cav.radius_m)):
            raise ValueError(
                f"{where}: the emitting tip (tip_length_m = {cav.tip_length_m} before end_m = "
                f"{list(cav.end_m)}, radius_m = {cav.radius_m}) is not inside the {geometry.describe()}"
            )
    for i in range(len(out)):
        for j in range(i + 1, len(out)):
            ci, cj = out[i], out[j]
            d = segment_distance(ci.entry_m, ci.end_m, cj.entry_m, cj.end_m)
            if d <= ci.radius_m + cj.radius_m:
                raise ValueError(
                    f"applicator[{i}] '{ci.name}' and applicator[{j}] '{cj.name}' intersect: their axes "
                    f"come within {d:.6g} m, not more than radius_m {ci.radius_m} + {cj.radius_m}"
                )
    return tuple(out)
