"""Checks of a case that go beyond types: units and plausibility, overlapping boundary
conditions, schedules against the simulated time, inclusions and points against the geometry.

Pure Python (no FEM, no gmsh): called from :class:`solver.config.Case` validation, so every
problem is reported before a mesh is built. Each check returns messages that name the key,
the value and what is allowed; :func:`plausibility` separates refusals from warnings.

Plausibility ranges (a model of human tissue heated by a laser or a probe):

- lengths (keys ending in ``_m``): |value| <= 1 m. A human trunk is about 0.5 m across; a
  coordinate or size above 1 m is almost always millimetres typed into a metre key.
  Domain extent (largest dimension): 1 mm to 1 m refused outside; above 0.3 m warned (an
  unusually large model, slow to mesh finely).
- element sizes (``mesh_size_m``, ``size_m`` ...): <= 0.1 m refused above (no tissue model is
  resolved by 10 cm elements); below 10 um refused (1e12 cells per litre).
- temperatures (keys ending in ``_C``): -50 C to 100 C (below: no cryo model here; above:
  tissue water boils, the model's properties no longer hold). A value 250 ... 400 is named
  as kelvin. Initial and arterial temperatures outside 30 ... 42 C are warned (body
  temperature is 37 C).
- powers (``power_W``, schedule powers): refused above 100 W (clinical LITT lasers give
  up to about 15 to 30 W, Nd:YAG up to 60 W); warned above 30 W.
- durations: ``end_time_s`` and schedule times warned above 3600 s (a treatment lasts
  minutes; milliseconds typed as seconds give hours) and refused above 1e7 s (four months).
  Long runs stay possible: backward Euler with a huge ``dt_s`` is a way to reach a steady state.
"""

from __future__ import annotations

import difflib
import math
from typing import Any, Iterable

# --------------------------------------------------------------------------- ranges

MAX_LENGTH_M = 1.0
MIN_EXTENT_M = 1e-3
WARN_EXTENT_M = 0.3
MAX_ELEMENT_M = 0.1
MIN_ELEMENT_M = 1e-5
MIN_TEMPERATURE_C = -50.0
MAX_TEMPERATURE_C = 100.0
KELVIN_LIKE_C = (250.0, 400.0)
BODY_RANGE_C = (30.0, 42.0)
MAX_POWER_W = 100.0
WARN_POWER_W = 30.0
MAX_DURATION_S = 1.0e7
WARN_DURATION_S = 3600.0

# keys holding element sizes (m)
_ELEMENT_KEYS = ("mesh_size_m", "size_m", "tip_size_m", "cortex_size_m", "cord_size_m")


def did_you_mean(name: str, allowed: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest allowed name, or ''."""
    match = difflib.get_close_matches(str(name), [str(a) for a in allowed], n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _walk(node: Any, path: str = ""):
    """(dotted key, key name, value) of every scalar or list leaf of a dumped case."""
    if isinstance(node, dict):
        for k, v in node.items():
            sub = f"{path}.{k}" if path else str(k)
            if isinstance(v, (dict, list)) and not _is_vector(v):
                yield from _walk(v, sub)
            else:
                yield sub, str(k), v
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def _is_vector(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in v)


def _numbers(v: Any) -> list[float]:
    if isinstance(v, bool) or v is None:
        return []
    if isinstance(v, (int, float)):
        return [float(v)]
    if _is_vector(v):
        return [float(c) for c in v]
    return []


def _fmt(v: Any) -> str:
    return repr(v) if not isinstance(v, list) else str(v)


# --------------------------------------------------------------------------- plausibility


def plausibility(case) -> tuple[list[str], list[str]]:
    """(refusals, warnings) for the units and magnitudes of ``case`` (a validated Case)."""
    errors: list[str] = []
    warnings: list[str] = []
    data = case.model_dump(mode="json", exclude={"case_dir"}, exclude_none=True)
    data.pop("tissues", None)  # property values carry their own units and schema ranges
    for key, name, value in _walk(data):
        nums = _numbers(value)
        if not nums:
            continue
        if name.endswith("_m") and name != "length_scale_m":
            big = max(abs(c) for c in nums)
            if big > MAX_LENGTH_M:
                errors.append(
                    f"{key} = {_fmt(value)}: {big:g} m is implausible for a tissue model (allowed: "
                    f"|value| <= {MAX_LENGTH_M:g} m); lengths are in metres: 25 mm is 0.025"
                )
            elif name in _ELEMENT_KEYS and nums[0] < MIN_ELEMENT_M:
                errors.append(
                    f"{key} = {_fmt(value)}: elements below {MIN_ELEMENT_M:g} m would give an enormous "
                    "mesh; lengths are in metres (1 mm is 0.001)"
                )
            elif name in _ELEMENT_KEYS and nums[0] > MAX_ELEMENT_M:
                errors.append(
                    f"{key} = {_fmt(value)}: elements above {MAX_ELEMENT_M:g} m resolve no tissue "
                    "structure; lengths are in metres"
                )
        elif name.endswith("_C") and key != "solver.temperature_ceiling_C":
            # (the ceiling is a stop criterion above the model's range; its own field bounds it)
            for c in nums:
                if not MIN_TEMPERATURE_C <= c <= MAX_TEMPERATURE_C:
                    hint = (
                        f"; temperatures are in C: {c:g} K would be {c - 273.15:.2f} C"
                        if KELVIN_LIKE_C[0] <= c <= KELVIN_LIKE_C[1]
                        else "; temperatures are in C"
                    )
                    errors.append(
                        f"{key} = {_fmt(value)}: outside the plausible range {MIN_TEMPERATURE_C:g} ... "
                        f"{MAX_TEMPERATURE_C:g} C for tissue{hint}"
                    )
                    break
            else:
                if key == "initial.temperature_C" and not (
                    BODY_RANGE_C[0] <= nums[0] <= BODY_RANGE_C[1]
                ):
                    warnings.append(
                        f"{key} = {nums[0]:g} C is outside {BODY_RANGE_C[0]:g} ... {BODY_RANGE_C[1]:g} C "
                        "(body temperature is 37 C)"
                    )
        elif name == "power_W":
            _power(key, nums[0], errors, warnings)
    for name, t in case.tissues.items():
        Ta = t.arterial_temperature_C
        if Ta is not None and not BODY_RANGE_C[0] <= Ta <= BODY_RANGE_C[1]:
            warnings.append(
                f"tissues.{name}.arterial_temperature_C = {Ta:g} C is outside {BODY_RANGE_C[0]:g} ... "
                f"{BODY_RANGE_C[1]:g} C (body temperature is 37 C)"
            )
    for kind in ("source", "applicator"):
        for i, s in enumerate(data.get(kind, [])):
            for j, (t, p) in enumerate(s.get("schedule") or []):
                _power(f"{kind}[{i}].schedule[{j}]", p, errors, warnings, t)
                _duration(f"{kind}[{i}].schedule[{j}] time", t, errors, warnings)
    _duration("time.end_time_s", case.time.end_time_s, errors, warnings)
    extent = domain_extent(case.geometry)
    if extent is not None:
        check_extent(f"geometry ({case.geometry.describe()})", extent, errors, warnings)
    return errors, warnings


def _power(key: str, p: float, errors: list, warnings: list, t: float | None = None) -> None:
    at = f" at t = {t:g} s" if t is not None else ""
    if p > MAX_POWER_W:
        errors.append(
            f"{key} = {p:g} W{at}: above {MAX_POWER_W:g} W, implausible for interstitial heating "
            f"(clinical LITT lasers give up to about 15 to 30 W); powers are in W"
        )
    elif p > WARN_POWER_W:
        warnings.append(f"{key} = {p:g} W{at} is above {WARN_POWER_W:g} W, unusual for interstitial laser ablation")


def _duration(key: str, t: float, errors: list, warnings: list) -> None:
    if t > MAX_DURATION_S:
        errors.append(
            f"{key} = {t:g} s: longer than {MAX_DURATION_S:g} s (four months); times are in seconds"
        )
    elif t > WARN_DURATION_S:
        warnings.append(f"{key} = {t:g} s is longer than one hour; times are in seconds")


def domain_extent(geometry) -> float | None:
    """Largest dimension (m) of a primitive or spine geometry; None for mesh files."""
    kind = geometry.kind
    if kind == "box":
        return max(geometry.upper_m[i] - geometry.lower_m[i] for i in range(3))
    if kind == "sphere":
        return 2.0 * geometry.radius_m
    if kind == "shell":
        return 2.0 * geometry.outer_radius_m
    if kind == "cylinder":
        return max(2.0 * geometry.radius_m, geometry.length_m)
    return None


def check_extent(what: str, extent_m: float, errors: list, warnings: list, scale_key: str | None = None) -> None:
    """Refuse a domain larger than 1 m or smaller than 1 mm; warn above 0.3 m.

    ``scale_key`` (mesh files): the key that scales file units to metres, for the hint."""
    if extent_m > MAX_LENGTH_M:
        hint = (
            f"; if the file is in millimetres, set {scale_key} = 0.001 (giving {extent_m * 1e-3:.4g} m), "
            f"in centimetres {scale_key} = 0.01 (giving {extent_m * 1e-2:.4g} m)"
            if scale_key
            else "; lengths are in metres (25 mm is 0.025)"
        )
        errors.append(
            f"{what}: extent {extent_m:.4g} m is implausible for a tissue model (allowed "
            f"{MIN_EXTENT_M:g} ... {MAX_LENGTH_M:g} m){hint}"
        )
    elif extent_m < MIN_EXTENT_M:
        hint = (
            f"; check {scale_key} (a mesh in metres needs {scale_key} = 1)" if scale_key else "; lengths are in metres"
        )
        errors.append(
            f"{what}: extent {extent_m:.4g} m is implausible for a tissue model (allowed "
            f"{MIN_EXTENT_M:g} ... {MAX_LENGTH_M:g} m){hint}"
        )
    elif extent_m > WARN_EXTENT_M:
        warnings.append(f"{what}: extent {extent_m:.4g} m is unusually large for a tissue model")


# --------------------------------------------------------------------------- boundaries


def boundary_tables(case) -> list[tuple[str, Any]]:
    """(label, condition) of every boundary condition, the cooled catheters' included."""
    out = [(f"boundary[{i}]", bc) for i, bc in enumerate(case.boundary)]
    cavity_aps = [(i, ap) for i, ap in enumerate(case.applicator) if ap.representation == "cavity"]
    for (i, ap), bc in zip(cavity_aps, coolant_boundaries(case)):
        out.append((f"applicator[{i}] (cooled catheter '{ap.name}')", bc))
    return out


def boundary_overlaps(tables: list[tuple[str, Any]], surfaces: dict[str, Iterable]) -> list[str]:
    """Messages for every pair of boundary conditions that share facets.

    ``surfaces`` maps a surface name to the atomic parts (facet tags or sub-surface names)
    it covers; two conditions overlap when their parts intersect. Every overlap is refused,
    whatever the types: the answer would depend on table order (two Dirichlet values), drop
    one condition (a flux under a Dirichlet face) or add them (two Robin conditions)."""
    parts = []
    for label, bc in tables:
        own = {}
        for s in bc.surfaces():
            for p in surfaces.get(s, ()):
                own.setdefault(p, s)
        parts.append(own)
    out = []
    for i in range(len(tables)):
        for j in range(i + 1, len(tables)):
            shared = set(parts[i]) & set(parts[j])
            if not shared:
                continue
            si = sorted({parts[i][p] for p in shared})
            sj = sorted({parts[j][p] for p in shared})
            li, lj = tables[i][0], tables[j][0]
            ti, tj = tables[i][1].type, tables[j][1].type
            where = (
                f"surface '{si[0]}'"
                if si == sj
                else f"{', '.join(repr(x) for x in si)} (in {li}) and {', '.join(repr(x) for x in sj)} (in {lj})"
            )
            out.append(
                f"{li} ({ti} on {_names(tables[i][1])}) and {lj} ({tj} on {_names(tables[j][1])}) both "
                f"apply to the facets of {where}: one condition per facet is allowed; split the "
                "surfaces (e.g. name the remaining faces separately) so that each facet has one condition"
            )
    return out


def _names(bc) -> str:
    s = bc.surfaces()
    return f"'{s[0]}'" if len(s) == 1 else str(s)


def primitive_surface_parts(case) -> dict[str, set[str]] | None:
    """Surface name -> the atomic faces it covers, for primitive and spine geometries."""
    geom = case.geometry
    aliases = {
        "box": {"outer": ["xmin", "xmax", "ymin", "ymax", "zmin", "zmax"]},
        "cylinder": {"outer": ["side", "bottom", "top"]},
    }
    if geom.kind == "file":
        return None
    parts = {s: {s} for s in geom.surface_names()}
    for alias, members in aliases.get(geom.kind, {}).items():
        parts[alias] = set(members)
    for ap in case.applicator:
        if ap.representation == "cavity":
            tip, shaft = f"{ap.name}_tip", f"{ap.name}_shaft"
            parts[tip], parts[shaft] = {tip}, {shaft}
            parts[ap.name] = {tip, shaft}
    return parts


# --------------------------------------------------------------------------- time


def schedule_problems(case) -> list[str]:
    """Schedules and pull-back positions against the simulated time; schedules in steady mode."""
    out = []
    t_end = case.time.end_time_s
    end_key = (
        f"time.end_time_s = {t_end:g}"
        if "end_time_s" in case.time.model_fields_set
        else f"time.end_time_s (not given: default {t_end:g} s)"
    )
    items = [(f"source[{i}]", s) for i, s in enumerate(case.source)]
    items += [(f"applicator[{i}]", a) for i, a in enumerate(case.applicator)]
    for key, s in items:
        if s.schedule is None:
            continue
        if case.time.mode == "steady":
            out.append(
                f"{key}.schedule: time.mode = 'steady' has no time, so a power schedule cannot be "
                "followed; give a constant power_W, or use time.mode = 'transient'"
            )
            continue
        last_t = s.schedule[-1][0]
        after = s.energy_between(t_end, last_t) if last_t > t_end else 0.0
        if after > 0.0:
            out.append(
                f"{key}.schedule runs to t = {last_t:g} s, past {end_key}: {after:.4g} J of the "
                f"{s.energy_between(0.0, last_t):.4g} J scheduled would not be delivered; set "
                f"time.end_time_s >= {last_t:g} (plus the cooling time you want to see) or shorten the schedule"
            )
    for i, ap in enumerate(case.applicator):
        for j, pos in enumerate(ap.position):
            if case.time.mode == "transient" and pos.start_s >= t_end:
                out.append(
                    f"applicator[{i}].position[{j}].start_s = {pos.start_s:g}: at or after {end_key}; "
                    "the applicator would never reach this position"
                )
    return out


# --------------------------------------------------------------------------- geometry


def inclusion_clipping(geometry, samples: int = 96) -> tuple[list[str], list[str]]:
    """(refusals, warnings) for inclusions that stick out of a primitive geometry.

    The part outside is estimated by sampling the inclusion's bounding box on a regular
    ``samples``^3 grid (cell-centred; the estimate is within about one grid layer over the
    clipped cross-section, 0.3 percentage points for a ball cut 2 mm from its centre); more
    than 1 % outside is refused (the tumour that would
    be meshed is not the one described), a smaller part is warned with its volume."""
    import numpy as np

    errors: list[str] = []
    warnings: list[str] = []
    for i, inc in enumerate(getattr(geometry, "inclusion", []) or []):
        lo, hi = inc.bounding_box()
        corners = [(x, y, z) for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
        if geometry.kind in ("box", "sphere", "cylinder") and all(geometry.contains(c) for c in corners):
            continue  # convex geometry holding the inclusion's bounding box holds the inclusion
        axes = [lo[k] + (np.arange(samples) + 0.5) * (hi[k] - lo[k]) / samples for k in range(3)]
        X, Y, Z = np.meshgrid(*axes, indexing="ij")
        pts = np.stack([X.ravel(), Y.ravel(), Z.ravel()], axis=1)
        c = np.asarray(inc.center_m)
        d = pts - c
        if inc.shape == "sphere":
            inside = np.einsum("ij,ij->i", d, d) <= inc.radius_m**2
        elif inc.shape == "ellipsoid":
            inside = ((d / np.asarray(inc.semi_axes_m)) ** 2).sum(axis=1) <= 1.0
        else:
            inside = np.ones(len(pts), dtype=bool)
        cell = math.prod(hi[k] - lo[k] for k in range(3)) / samples**3
        pts_in = pts[inside]
        n_out = int((~_contains(geometry, pts_in)).sum())
        if n_out == 0:
            continue
        frac = n_out / max(len(pts_in), 1)
        vol_ml = n_out * cell * 1e6
        msg = (
            f"geometry.inclusion[{i}] ('{inc.name}'): {100 * frac:.1f} % of it (about {vol_ml:.3g} mL) lies "
            f"outside the {geometry.describe()}"
        )
        if frac > 0.01:
            errors.append(msg + " and would be clipped; enlarge the geometry or move the inclusion inside")
        else:
            warnings.append(msg + "; that part is clipped")
    return errors, warnings


def _contains(geometry, pts):
    """Vectorised ``geometry.contains`` for primitives: boolean per row of ``pts`` (n, 3)."""
    import numpy as np

    kind = geometry.kind
    if kind == "box":
        return np.all((pts >= np.asarray(geometry.lower_m)) & (pts <= np.asarray(geometry.upper_m)), axis=1)
    d = pts - np.asarray(geometry.center_m)
    r = np.linalg.norm(d, axis=1)
    if kind == "sphere":
        return r <= geometry.radius_m
    if kind == "shell":
        return (r >= geometry.inner_radius_m) & (r <= geometry.outer_radius_m)
    if kind == "cylinder":
        along = d @ np.asarray(geometry.axis)
        radial = np.sqrt(np.maximum(r**2 - along**2, 0.0))
        return (np.abs(along) <= 0.5 * geometry.length_m) & (radial <= geometry.radius_m)
    return np.array([geometry.contains(tuple(p)) for p in pts], dtype=bool)


def points_in_cavities(case) -> list[str]:
    """Probes, monitors and point sources that lie inside a catheter cut out of the mesh."""
    out = []
    cavities = case.cavities()
    if not cavities:
        return out
    pts = [(f"probe[{i}]", p.name, p.position_m) for i, p in enumerate(case.probe)]
    pts += [(f"monitor[{i}]", m.name, m.position_m) for i, m in enumerate(case.monitor)]
    for key, name, p in pts:
        for cav in cavities:
            r = _distance_to_segment(p, cav["entry_m"], cav["end_m"])
            if r < cav["radius_m"]:
                out.append(
                    f"{key}.position_m = {list(p)} ('{name}') lies inside the catheter cavity of applicator "
                    f"'{cav['name']}' ({1e3 * r:.2f} mm from its axis, radius {1e3 * cav['radius_m']:.3f} mm), "
                    "which is cut out of the mesh; place it in tissue, e.g. on the catheter wall or outside it"
                )
                break
    return out


def _distance_to_segment(p, a, b) -> float:
    """Distance (m) from p to the axis of the cylinder from a to b; inf beyond its ends."""
    ab = [b[i] - a[i] for i in range(3)]
    ap = [p[i] - a[i] for i in range(3)]
    L2 = sum(c * c for c in ab)
    s = 0.0 if L2 == 0.0 else sum(ab[i] * ap[i] for i in range(3)) / L2
    if not 0.0 <= s <= 1.0:
        return math.inf
    return math.sqrt(sum((ap[i] - s * ab[i]) ** 2 for i in range(3)))


def coolant_boundaries(case) -> list:
    """The cooled catheter walls of cavity applicators as boundary conditions on '<name>' (the
    whole catheter) or '<name>_tip' (cooled_surface = 'tip'; the shaft is then insulated):
    Robin with coolant_heat_transfer_W_per_m2K (cooling = 'convective', docs/MODEL.md section 2)
    or Dirichlet at the coolant temperature (cooling = 'fixed_temperature')."""
    from .config import DirichletBC, RobinBC

    out = []
    for ap in case.applicator:
        if ap.representation != "cavity":
            continue
        surface = ap.name if ap.cooled_surface == "catheter" else f"{ap.name}_tip"
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
