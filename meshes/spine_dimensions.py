"""Thoracic vertebra (T2 to T12) dimensions and the simplified shapes built from them.

Pure Python and numpy (no gmsh, no dolfinx): :mod:`solver.config` imports
:func:`block_extent` from here, and the validation runs identically on every rank.

Frame (m): origin at the centre of the vertebral body, x to the patient's left, y posterior
(towards the spinal canal), z cranial.

Dimension table
---------------
Per level and per column, the value and its source (``COLUMN_SOURCES`` gives the same per
column; docs/MODEL.md section 5 the uncertainty). Where a paper could not be re-read here, the
column says "not re-checked here": those numbers must be checked against the paper before any
clinical use. Between the levels a paper reports, values are interpolated linearly in the
level number (T1 = 1 ... T12 = 12); beyond its last level they are held constant. Interpolated
and held values are model values, not measurements.

* ``LEVELS`` (endplate width and depth, pedicle width and height, canal width): round numbers
  consistent with the trends of Panjabi et al. 1991, Spine 16:888 (cadaveric, thoracic vertebrae;
  the paper's tables were not at hand, values not re-checked here).
* body height (posterior): Egwu et al. 2019, J Anat Soc India 68:110 (doi:10.4103/JASI.JASI_8_19),
  posterior vertebral body height 17.59 mm at T2 and 20.46 mm at T9 (cadaveric, adult males),
  interpolated between; T10-T12 Panjabi-trend round numbers, not re-checked here.
* transverse pedicle angle: CT series. T1: 35.4 deg (Kaur et al. 2016, J Clin Orthop Trauma 7:101,
  doi:10.1016/j.jcot.2015.12.002) and 33 deg (Demiroz and Erdem 2019, Turk Neurosurg, doi:10.5137/
  1019-5149.JTN.26848-19.2): 34 deg; T4: 23.4 deg (Chughtai et al., Pak J Neurol Surg, CT of 200
  patients); T12: 3 deg (Demiroz) and 4.0 deg (Chughtai): 3.5 deg. Kaur 2016 reports -9.8 deg at
  T12 (lateral), which the other series do not: not used. Interpolated between T1, T4 and T12.
* lamina thickness: Egwu 2019, 6.60 mm at T2 and 7.30 mm at T9, interpolated between; held at
  7.3 mm for T10-T12 (not measured there).
* spinal cord, transverse x anteroposterior diameter: CT myelography of 31 adults (Lee et al.,
  Keimyung Med J 1988, 7:236): 9.1 x 7.0 mm at T1, 7.9 x 6.1 at T5, 7.3 x 6.3 at T9; T12:
  transverse 9.4 mm, the lumbar enlargement (Frostell et al. 2016, Front Neurol 7:238,
  doi:10.3389/fneur.2016.00238, at cord segment L3, which lies at about the T11-T12 vertebrae),
  AP held at 6.3 mm (not re-checked). Frostell's segment T8 (8.3 +- 2.1 x 6.3 +- 2.0 mm) lies at
  about the T6-T7 vertebrae, where the table has 7.7 x 6.2 mm: within its spread.
* CSF behind the cord (midline, dura to cord): MRI of 50 patients (Imbelloni et al. 2010,
  Anesth Analg 110:1494, doi:10.1213/ANE.0b013e3181d5aca6): 3.9 mm at T2, 5.8 at T5, 4.1 at
  T10; held at 4.1 mm for T11-T12.
* dural sac inner anteroposterior diameter (the subarachnoid space): Lee et al. 1988 (as the
  cord): 12.9 mm at T1, 12.3 at T5, 11.6 at T9, held beyond. The CSF in front of the cord is
  what is left: sac - cord - CSF behind, at least ``ANTERIOR_CSF_MIN_M`` (the cord lies
  anteriorly in the sac: 0.7 to 2.1 mm in front against 3.9 to 5.8 mm behind).
* canal depth: the larger of the Panjabi-trend round number and what the contents need
  (anterior epidural layer + dura + sac + dura + posterior epidural fat); the sac of the
  sources above does not fit the round numbers at T2-T9 (which CT series put at 17-21 mm:
  Chughtai; Kaur 2016 reports 20.0 mm at its narrowest, T4/T5).
* cortical shell: ``geometry.cortical_thickness_m`` (default 0.35 mm: Silva et al. 1994, Bone
  15:409, direct measurement of the L1 shell, about 0.35 mm and porous; a histomorphometric
  series gives 0.24 mm mean for the thoracic dorsal shell, Ritzel et al. 1997, J Bone Miner
  Res 12:89).

Modelling choices (not measurements): thoracic disc height 5 mm; dura 0.5 mm thick; the
anterior epidural layer (posterior longitudinal ligament and venous plexus, ``epidural_anterior``)
1 mm thick between the posterior wall and the dural sac, 1 mm of epidural space laterally and
2.5 mm posteriorly (at least; more where the canal is deeper); spinous process 5 mm wide and
15 mm long (straight, not inclined); no transverse processes, facets or ribs.

Simplified shapes
-----------------
* Vertebral body: an elliptic cylinder cut by the plane y = +depth/2 (a flat posterior wall
  facing the canal). The ellipse has semi-axes (width/2, b) with b = depth / (1 + s) and its
  centre at y = b - depth/2, where the flat wall sits at s = ``BODY_FLAT_FRACTION`` of b from
  the centre: the body spans y in [-depth/2, depth/2], x in [-width/2, width/2] and the flat
  wall is 2 (width/2) sqrt(1 - s^2) wide. z in [-height/2, height/2].
* Cortical shell: the body minus the cancellous core, which is the same shape with the
  semi-axes, the half-height and the flat wall moved inwards by the cortical thickness t
  (exact thickness t on the endplates and the posterior wall, t at the ellipse's vertices and
  within about 1 % of t between them).
* Discs: the body's cross-section, disc height above and below the body.
* Canal: an elliptic cylinder (semi-axes canal_width/2, 0.7 canal_depth, centre 0.3
  canal_depth behind the posterior wall) cut by the posterior wall plane, so it spans
  canal_depth in y; it runs through the whole block height.
* Dural sac, CSF and cord: elliptic cylinders through the whole block height (dura outer,
  dura inner = CSF outer, cord); the cord touches no wall: it sits anteriorly in the sac, with
  the per-level CSF in front and behind (above).
* Epidural space: the canal outside the dural sac; in front of the sac's centre plane
  (y < dura.cy) it is ``epidural_anterior`` (ligament and veins), behind it ``epidural_fat``.
* Posterior elements: two pedicles (boxes pedicle_width x pedicle_height along the pedicle
  axis, at the transverse angle, from 3 mm inside the body to the middle of the lamina), a
  lamina box between the pedicle axes (half-way along), from the canal's widest point to the level's lamina thickness
  behind the canal,
  and a spinous process box; minus the canal and the body.
* Block (muscle): the bounding box of body and posterior elements plus soft_tissue_margin_m
  in x and y; in z the body plus one disc height above and below.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

MM = 1e-3

# Round numbers consistent with the trends of Panjabi et al. 1991, Spine 16:888 (cadaveric), NOT
# RE-CHECKED HERE against the paper's tables (mm, degrees). Columns 2 (body height), 5 (pedicle
# angle) and 7 (canal depth) are replaced below by sourced values (LEVELS).
# level: (endplate width x, endplate depth y, body height z, pedicle width, pedicle height,
#         pedicle transverse angle (deg, converging anteriorly), canal width x, canal depth y)
PANJABI_TREND: dict[str, tuple[float, float, float, float, float, float, float, float]] = {
    "T2": (25.0, 16.0, 16.0, 6.5, 10.0, 20.0, 17.0, 15.0),
    "T3": (25.5, 18.0, 16.5, 5.5, 10.5, 15.0, 16.0, 15.0),
    "T4": (26.0, 20.0, 17.0, 5.0, 11.0, 12.0, 15.0, 15.0),
    "T5": (27.0, 22.0, 17.5, 5.0, 11.0, 10.0, 15.0, 15.0),
    "T6": (28.0, 24.0, 18.5, 5.0, 11.5, 9.0, 15.0, 15.0),
    "T7": (29.0, 26.0, 19.0, 5.5, 12.0, 8.0, 15.0, 15.0),
    "T8": (30.0, 27.0, 20.0, 5.5, 12.0, 7.0, 15.0, 15.0),
    "T9": (32.0, 28.0, 21.0, 6.0, 13.0, 6.0, 15.0, 15.5),
    "T10": (34.0, 29.0, 22.0, 6.5, 14.0, 5.0, 16.0, 16.0),
    "T11": (37.0, 30.0, 23.0, 7.5, 15.0, 3.0, 17.0, 16.5),
    "T12": (40.0, 32.0, 24.0, 8.0, 16.0, 1.0, 17.0, 17.0),
}
LEVEL_COLUMNS = (
    "endplate_width", "endplate_depth", "body_height", "pedicle_width", "pedicle_height",
    "pedicle_angle_deg", "canal_width", "canal_depth",
)

# Published values per level number (T1 = 1, ...), mm or degrees; see the module docstring.
# Egwu et al. 2019 (doi:10.4103/JASI.JASI_8_19): posterior vertebral body height; T10-T12 from
# PANJABI_TREND (not re-checked).
BODY_HEIGHT_ANCHORS_MM = {2: 17.59, 9: 20.46, 10: 22.0, 11: 23.0, 12: 24.0}
# CT series: T1 Kaur 2016 35.4 / Demiroz 2019 33; T4 Chughtai 23.4; T12 Demiroz 3 / Chughtai 4.0.
PEDICLE_ANGLE_ANCHORS_DEG = {1: 34.0, 4: 23.4, 12: 3.5}
# Egwu et al. 2019: lamina thickness (typical thoracic vertebrae T2-T9).
LAMINA_THICKNESS_ANCHORS_MM = {2: 6.60, 9: 7.30}
# Lee et al. 1988, Keimyung Med J 7:236 (CT myelography): cord transverse x AP at T1, T5, T9;
# T12 transverse: Frostell et al. 2016 (doi:10.3389/fneur.2016.00238) segment L3; AP held.
CORD_ANCHORS_MM = {1: (9.1, 7.0), 5: (7.9, 6.1), 9: (7.3, 6.3), 12: (9.4, 6.3)}
# Imbelloni et al. 2010 (doi:10.1213/ANE.0b013e3181d5aca6): dura to cord behind the cord.
CSF_POSTERIOR_ANCHORS_MM = {2: 3.9, 5: 5.8, 10: 4.1}
# Lee et al. 1988: subarachnoid space (dural sac inner) anteroposterior diameter.
SAC_INNER_AP_ANCHORS_MM = {1: 12.9, 5: 12.3, 9: 11.6}

COLUMN_SOURCES: dict[str, str] = {
    "endplate_width": "round number after Panjabi et al. 1991 Spine 16:888 trends; value not re-checked here",
    "endplate_depth": "round number after Panjabi et al. 1991 Spine 16:888 trends; value not re-checked here",
    "body_height": "Egwu et al. 2019 doi:10.4103/JASI.JASI_8_19 (posterior height, T2 17.59, T9 20.46 mm; "
    "interpolated); T10-T12 Panjabi-trend round numbers, not re-checked here",
    "pedicle_width": "round number after Panjabi et al. 1991 trends; value not re-checked here",
    "pedicle_height": "round number after Panjabi et al. 1991 trends; value not re-checked here",
    "pedicle_angle_deg": "CT series: T1 34 (Kaur 2016 doi:10.1016/j.jcot.2015.12.002: 35.4; Demiroz 2019: 33), "
    "T4 23.4 (Chughtai, Pak J Neurol Surg), T12 3.5 (Demiroz 3, Chughtai 4.0); interpolated",
    "canal_width": "round number after Panjabi et al. 1991 trends; value not re-checked here",
    "canal_depth": "max(Panjabi-trend round number, contents: anterior epidural + dura + sac + dura + "
    "posterior epidural)",
    "lamina_thickness": "Egwu et al. 2019 (T2 6.60, T9 7.30 mm; interpolated, held for T10-T12)",
    "cord_transverse": "Lee et al. 1988 Keimyung Med J 7:236 (T1 9.1, T5 7.9, T9 7.3 mm); T12 9.4 mm Frostell "
    "et al. 2016 doi:10.3389/fneur.2016.00238 (segment L3); interpolated",
    "cord_ap": "Lee et al. 1988 (T1 7.0, T5 6.1, T9 6.3 mm; interpolated, held for T10-T12)",
    "csf_posterior": "Imbelloni et al. 2010 doi:10.1213/ANE.0b013e3181d5aca6 (T2 3.9, T5 5.8, T10 4.1 mm; "
    "interpolated, held for T11-T12)",
    "sac_inner_ap": "Lee et al. 1988 (T1 12.9, T5 12.3, T9 11.6 mm; interpolated, held for T10-T12); at least "
    "cord + CSF behind + ANTERIOR_CSF_MIN_M",
    "csf_anterior": "sac_inner_ap - cord_ap - csf_posterior (derived)",
}

# Modelling choices (see the module docstring), metres.
DISC_HEIGHT_M = 5.0 * MM
DURA_THICKNESS_M = 0.5 * MM
EPIDURAL_ANTERIOR_M = 1.0 * MM  # posterior longitudinal ligament + venous plexus layer
EPIDURAL_LATERAL_M = 1.0 * MM
EPIDURAL_POSTERIOR_M = 2.5 * MM  # at least (posterior epidural fat)
ANTERIOR_CSF_MIN_M = 0.7 * MM  # CSF in front of the cord at least (a thinner layer is not meshed well)


def _level_number(level: str) -> int:
    return int(level[1:])


def _interpolate(anchors: dict[int, float], n: int) -> float:
    """Linear interpolation in the level number between anchors; constant beyond the ends."""
    keys = sorted(anchors)
    if n <= keys[0]:
        return float(anchors[keys[0]])
    if n >= keys[-1]:
        return float(anchors[keys[-1]])
    for a, b in zip(keys, keys[1:]):
        if a <= n <= b:
            return float(anchors[a] + (anchors[b] - anchors[a]) * (n - a) / (b - a))
    raise AssertionError(n)


class CanalContents(NamedTuple):
    """Per-level canal contents (mm): cord transverse and AP diameters, CSF in front of and
    behind the cord, dural sac inner AP diameter, lamina thickness."""

    cord_transverse: float
    cord_ap: float
    csf_anterior: float
    csf_posterior: float
    sac_inner_ap: float
    lamina_thickness: float


def _canal_contents(level: str) -> CanalContents:
    n = _level_number(level)
    cord_tr = _interpolate({k: v[0] for k, v in CORD_ANCHORS_MM.items()}, n)
    cord_ap = _interpolate({k: v[1] for k, v in CORD_ANCHORS_MM.items()}, n)
    post = _interpolate(CSF_POSTERIOR_ANCHORS_MM, n)
    sac = max(_interpolate(SAC_INNER_AP_ANCHORS_MM, n), cord_ap + post + ANTERIOR_CSF_MIN_M / MM)
    lam = _interpolate(LAMINA_THICKNESS_ANCHORS_MM, n)
    return CanalContents(cord_tr, cord_ap, sac - cord_ap - post, post, sac, lam)


def _sourced_row(level: str) -> tuple[float, ...]:
    n = _level_number(level)
    row = list(PANJABI_TREND[level])
    row[2] = round(_interpolate(BODY_HEIGHT_ANCHORS_MM, n), 2)
    row[5] = round(_interpolate(PEDICLE_ANGLE_ANCHORS_DEG, n), 2)
    c = _canal_contents(level)
    need = (EPIDURAL_ANTERIOR_M + 2.0 * DURA_THICKNESS_M + EPIDURAL_POSTERIOR_M) / MM + c.sac_inner_ap
    row[7] = round(max(row[7], need), 3)
    return tuple(row)


# The table the geometry uses (mm, degrees; columns LEVEL_COLUMNS).
LEVELS: dict[str, tuple[float, ...]] = {level: _sourced_row(level) for level in PANJABI_TREND}
CANAL_CONTENTS: dict[str, CanalContents] = {level: _canal_contents(level) for level in PANJABI_TREND}

SPINOUS_WIDTH_M = 5.0 * MM
SPINOUS_LENGTH_M = 15.0 * MM
PEDICLE_INTO_BODY_M = 3.0 * MM  # pedicle box reaches this far anterior of the canal's front
PEDICLE_CANAL_OVERLAP_M = 0.5 * MM  # pedicle box overlaps the canal (cut away) so they touch
# (at the canal's widest point and at the posterior wall)
BODY_FLAT_FRACTION = 0.7  # posterior wall at 0.7 b behind the body ellipse's centre
CANAL_CENTRE_FRACTION = 0.3  # canal ellipse centre 0.3 canal_depth behind the posterior wall
LAMINA_HEIGHT_FRACTION = 0.8  # of the body height
SPINOUS_HEIGHT_FRACTION = 0.6

# Transpedicular track defaults.
DEFAULT_TIP_LENGTH_M = 10.0 * MM
DEFAULT_TIP_TO_DURA_M = 6.0 * MM
ENTRY_BEHIND_LAMINA_M = 5.0 * MM
TIP_WALL_CLEARANCE_M = 1.0 * MM  # the tip starts at least this far (along the track) inside the body


@dataclass(frozen=True)
class Ellipse:
    """An ellipse (cx, cy, ax, by) in the xy plane, optionally cut by y >= y_min / y <= y_max."""

    cx: float
    cy: float
    ax: float
    by: float
    y_min: float = -math.inf
    y_max: float = math.inf

    def contains(self, x, y, tol: float = 0.0):
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        e = ((x - self.cx) / self.ax) ** 2 + ((y - self.cy) / self.by) ** 2
        return (e <= 1.0 + tol) & (y >= self.y_min - tol * self.by) & (y <= self.y_max + tol * self.by)

    def polygon(self, n: int = 512) -> np.ndarray:
        """Counter-clockwise convex polygon (n ellipse points, clipped to the cut)."""
        t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
        pts = np.column_stack([self.cx + self.ax * np.cos(t), self.cy + self.by * np.sin(t)])
        if math.isfinite(self.y_min) or math.isfinite(self.y_max):
            pts = _clip_halfplane(pts, self.y_min, self.y_max)
        return pts

    def area(self) -> float:
        """Exact area of the (cut) ellipse."""

        def below(s: float) -> float:  # area of the unit disc with v <= s
            s = min(1.0, max(-1.0, s))
            return math.pi - (math.acos(s) - s * math.sqrt(1.0 - s * s))

        hi = below((self.y_max - self.cy) / self.by) if math.isfinite(self.y_max) else math.pi
        lo = below((self.y_min - self.cy) / self.by) if math.isfinite(self.y_min) else 0.0
        return self.ax * self.by * (hi - lo)

    def half_width(self, y: float) -> float:
        v = (y - self.cy) / self.by
        return self.ax * math.sqrt(max(0.0, 1.0 - v * v))


def _clip_halfplane(pts: np.ndarray, y_min: float, y_max: float) -> np.ndarray:
    """Sutherland-Hodgman clip of a convex polygon to y_min <= y <= y_max."""

    def clip(poly, keep, y0):
        out = []
        n = len(poly)
        for i in range(n):
            p, q = poly[i], poly[(i + 1) % n]
            kp, kq = keep(p[1]), keep(q[1])
            if kp:
                out.append(p)
            if kp != kq:
                t = (y0 - p[1]) / (q[1] - p[1])
                out.append(p + t * (q - p))
        return np.array(out)

    if math.isfinite(y_min):
        pts = clip(pts, lambda y: y >= y_min, y_min)
    if math.isfinite(y_max):
        pts = clip(pts, lambda y: y <= y_max, y_max)
    return pts


@dataclass(frozen=True)
class Box2:
    """A box in the pedicle's frame: centre p0 (x, y), in-plane axis v (unit, posterior),
    half-width hw across v, s in [s0, s1] along v, |z - zc| <= hz."""

    p0: tuple[float, float]
    v: tuple[float, float]
    hw: float
    s0: float
    s1: float
    hz: float
    zc: float = 0.0

    def contains(self, p, tol: float = 0.0) -> bool:
        d = np.asarray(p[:2], dtype=float) - np.asarray(self.p0)
        v = np.asarray(self.v)
        n = np.array([-v[1], v[0]])
        s, u = float(d @ v), float(d @ n)
        return (
            abs(u) <= self.hw + tol and self.s0 - tol <= s <= self.s1 + tol and abs(p[2] - self.zc) <= self.hz + tol
        )

    def corners_xy(self) -> np.ndarray:
        v = np.asarray(self.v)
        n = np.array([-v[1], v[0]])
        p0 = np.asarray(self.p0)
        return np.array([p0 + s * v + u * n for s in (self.s0, self.s1) for u in (-self.hw, self.hw)])


@dataclass(frozen=True)
class SpineLayout:
    """Every derived shape of one level, in metres (see the module docstring)."""

    level: str
    width: float
    depth: float
    height: float
    pedicle_width: float
    pedicle_height: float
    pedicle_angle_deg: float
    canal_width: float
    canal_depth: float
    cortical_thickness: float
    disc_height: float
    body: Ellipse  # outer cross-section (cut at y <= depth/2)
    cancellous: Ellipse  # inner cross-section (cut at y <= depth/2 - t)
    canal: Ellipse  # cut at y >= depth/2
    dura: Ellipse  # dural sac, outer surface
    csf: Ellipse  # dural sac, inner surface (CSF outer)
    cord: Ellipse
    pedicles: tuple[Box2, Box2]  # left (+x), right (-x)
    lamina: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]  # (lo, hi) per axis
    spinous: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
    block_lo: tuple[float, float, float]
    block_hi: tuple[float, float, float]

    @property
    def z_body(self) -> float:
        return 0.5 * self.height

    @property
    def z_block(self) -> float:
        return self.block_hi[2]

    def body_volume(self) -> float:
        return self.body.area() * self.height

    def cancellous_volume(self) -> float:
        return self.cancellous.area() * (self.height - 2.0 * self.cortical_thickness)

    def column_volume(self, e: Ellipse) -> float:
        """Volume of an elliptic column running through the whole block height."""
        return e.area() * (self.block_hi[2] - self.block_lo[2])


def level_dimensions(level: str) -> dict[str, float]:
    """The table row of ``level`` (mm and degrees) as a dict."""
    if level not in LEVELS:
        raise ValueError(f"level = '{level}' is outside T2-T12; allowed: {', '.join(LEVELS)}")
    return dict(zip(LEVEL_COLUMNS, LEVELS[level]))


@functools.cache
def _pedicle_offset(level: str) -> float:
    """x (m) of the left pedicle axis at the canal centre's depth (the right one is mirrored).

    The medial face overlaps the canal by PEDICLE_CANAL_OVERLAP_M at the canal's widest point
    and at the posterior wall. Between those two points the (convex) canal bulges beyond the
    face: at steep angles (T2-T6) the face would cut up to 2 mm into it and a catheter on the
    axis would enter the canal, so the pedicle moves laterally until the overlap is at most
    PEDICLE_CANAL_OVERLAP_M (the axis-to-canal distance grows by cos(angle) per unit of x).
    Depends on the level only (cached)."""
    row = level_dimensions(level)
    d, pw, ang, cw, cd = (row["endplate_depth"] * MM, row["pedicle_width"] * MM, row["pedicle_angle_deg"],
                          row["canal_width"] * MM, row["canal_depth"] * MM)
    th = math.radians(ang)
    y_wall = 0.5 * d
    canal = Ellipse(0.0, y_wall + CANAL_CENTRE_FRACTION * cd, 0.5 * cw, (1.0 - CANAL_CENTRE_FRACTION) * cd, y_min=y_wall)
    y_lam_mid = y_wall + cd + 0.5 * CANAL_CONTENTS[level].lamina_thickness * MM
    hw_cos = 0.5 * pw / math.cos(th)
    x0 = min(
        0.5 * cw - PEDICLE_CANAL_OVERLAP_M + hw_cos,
        canal.half_width(y_wall) - PEDICLE_CANAL_OVERLAP_M + (canal.cy - y_wall) * math.tan(th) + hw_cos,
    )
    v = (math.sin(th), math.cos(th))
    s0 = -(canal.cy - y_wall + PEDICLE_INTO_BODY_M) / math.cos(th)
    s1 = (y_lam_mid - canal.cy) / math.cos(th)
    poly = canal.polygon()
    for _ in range(6):
        axis = [np.array((x0 + s * v[0], canal.cy + s * v[1])) for s in (s0, s1)]
        deficit = 0.5 * pw - PEDICLE_CANAL_OVERLAP_M - segment_distance_2d(poly, *axis)
        if deficit <= 1e-7:
            break
        x0 += deficit / math.cos(th) + 1e-7
    return float(x0)


def layout(geometry) -> SpineLayout:
    """The shapes of ``geometry`` (a :class:`solver.config.SpineGeometry`, or anything with
    ``level``, ``cortical_thickness_m`` and ``soft_tissue_margin_m``)."""
    row = level_dimensions(geometry.level)
    w, d, h, pw, ph, ang, cw, cd = (row[k] * (1.0 if k == "pedicle_angle_deg" else MM) for k in LEVEL_COLUMNS)
    t = float(geometry.cortical_thickness_m)
    margin = float(geometry.soft_tissue_margin_m)

    s = BODY_FLAT_FRACTION
    b = d / (1.0 + s)
    body = Ellipse(0.0, b - 0.5 * d, 0.5 * w, b, y_max=0.5 * d)
    canc = Ellipse(0.0, b - 0.5 * d, 0.5 * w - t, b - t, y_max=0.5 * d - t)

    y_wall = 0.5 * d
    canal = Ellipse(0.0, y_wall + CANAL_CENTRE_FRACTION * cd, 0.5 * cw, (1.0 - CANAL_CENTRE_FRACTION) * cd, y_min=y_wall)
    contents = CANAL_CONTENTS[geometry.level]
    bs = 0.5 * contents.sac_inner_ap * MM + DURA_THICKNESS_M  # sac outer semi-axis (y)
    ys = y_wall + EPIDURAL_ANTERIOR_M + bs
    as_ = canal.half_width(ys) - EPIDURAL_LATERAL_M
    dura = Ellipse(0.0, ys, as_, bs)
    csf = Ellipse(0.0, ys, as_ - DURA_THICKNESS_M, bs - DURA_THICKNESS_M)
    # the cord lies anteriorly in the sac: csf_anterior in front of it, csf_posterior behind
    cord_cy = y_wall + EPIDURAL_ANTERIOR_M + DURA_THICKNESS_M + (contents.csf_anterior + 0.5 * contents.cord_ap) * MM
    cord = Ellipse(0.0, cord_cy, 0.5 * contents.cord_transverse * MM, 0.5 * contents.cord_ap * MM)
    lamina_t = contents.lamina_thickness * MM

    th = math.radians(ang)
    y_lam_back = y_wall + cd + lamina_t
    y_lam_mid = y_wall + cd + 0.5 * lamina_t
    x0 = _pedicle_offset(geometry.level)
    peds = []
    for side in (1.0, -1.0):
        v = (side * math.sin(th), math.cos(th))
        s0 = -(canal.cy - y_wall + PEDICLE_INTO_BODY_M) / math.cos(th)
        s1 = (y_lam_mid - canal.cy) / math.cos(th)
        peds.append(Box2((side * x0, canal.cy), v, 0.5 * pw, s0, s1, 0.5 * ph))
    x_ped = float(max(np.max(np.abs(p.corners_xy()[:, 0])) for p in peds))
    # lamina sides through the pedicle axis half-way between the canal's widest point and the
    # pedicle's posterior end: inside the pedicle over the lamina's whole depth (about 1 mm or
    # more from its faces at every level), so no near-coincident faces (sliver wedges)
    x_lam = float(peds[0].p0[0] + 0.5 * peds[0].s1 * math.sin(th))
    z_lam = 0.5 * LAMINA_HEIGHT_FRACTION * h
    lamina = ((-x_lam, x_lam), (canal.cy, y_lam_back), (-z_lam, z_lam))
    z_sp = 0.5 * SPINOUS_HEIGHT_FRACTION * h
    spinous = (
        (-0.5 * SPINOUS_WIDTH_M, 0.5 * SPINOUS_WIDTH_M),
        (y_lam_back - 1.0 * MM, y_lam_back + SPINOUS_LENGTH_M),
        (-z_sp, z_sp),
    )
    x_half = max(0.5 * w, x_ped, x_lam) + margin
    zb = 0.5 * h + DISC_HEIGHT_M
    block_lo = (-x_half, -0.5 * d - margin, -zb)
    block_hi = (x_half, spinous[1][1] + margin, zb)
    return SpineLayout(
        level=geometry.level, width=w, depth=d, height=h, pedicle_width=pw, pedicle_height=ph,
        pedicle_angle_deg=ang, canal_width=cw, canal_depth=cd, cortical_thickness=t,
        disc_height=DISC_HEIGHT_M, body=body, cancellous=canc, canal=canal, dura=dura, csf=csf,
        cord=cord, pedicles=(peds[0], peds[1]), lamina=lamina, spinous=spinous,
        block_lo=block_lo, block_hi=block_hi,
    )


def block_extent(geometry) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(lo, hi) corners of the soft-tissue block (m)."""
    lay = layout(geometry)
    return lay.block_lo, lay.block_hi


# --------------------------------------------------------------------------- point location


def _in_box(p, box) -> bool:
    return all(box[i][0] <= p[i] <= box[i][1] for i in range(3))


def in_body(lay: SpineLayout, p) -> bool:
    return bool(lay.body.contains(p[0], p[1])) and abs(p[2]) <= lay.z_body


def in_cancellous(lay: SpineLayout, p) -> bool:
    return bool(lay.cancellous.contains(p[0], p[1])) and abs(p[2]) <= lay.z_body - lay.cortical_thickness


def in_canal(lay: SpineLayout, p) -> bool:
    return bool(lay.canal.contains(p[0], p[1])) and abs(p[2]) <= lay.z_block


def in_posterior_elements(lay: SpineLayout, p) -> bool:
    raw = any(b.contains(p) for b in lay.pedicles) or _in_box(p, lay.lamina) or _in_box(p, lay.spinous)
    return raw and not in_canal(lay, p) and not in_body(lay, p)


def in_tumour(tumour, p) -> bool:
    c, a = tumour.center_m, tumour.semi_axes_m
    return sum(((p[i] - c[i]) / a[i]) ** 2 for i in range(3)) <= 1.0


def region_at(geometry, p, lay: SpineLayout | None = None) -> str | None:
    """Name of the region at point ``p`` on the analytic shapes (None outside the block)."""
    lay = lay or layout(geometry)
    if not all(lay.block_lo[i] <= p[i] <= lay.block_hi[i] for i in range(3)):
        return None
    x, y = p[0], p[1]
    if lay.cord.contains(x, y):
        return "spinal_cord"
    if lay.csf.contains(x, y):
        return "csf"
    if lay.dura.contains(x, y):
        return "dura"
    for tum in reversed(list(geometry.tumour)):
        if in_tumour(tum, p) and (in_body(lay, p) or in_canal(lay, p) or in_posterior_elements(lay, p)):
            return tum.name
    if in_canal(lay, p):
        return "epidural_anterior" if y < lay.dura.cy else "epidural_fat"
    if in_body(lay, p):
        return "cancellous_bone" if in_cancellous(lay, p) else "cortical_bone"
    if in_posterior_elements(lay, p):
        return "posterior_elements"
    if lay.body.contains(x, y) and abs(p[2]) <= lay.z_body + lay.disc_height:
        return "disc_upper" if p[2] > 0 else "disc_lower"
    return "muscle"


# --------------------------------------------------------------------------- distances


def _polygon_distance(poly: np.ndarray, pts: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Distance from each 2D point to the convex, counter-clockwise polygon ``poly`` (0 inside)."""
    pts = np.atleast_2d(np.asarray(pts, dtype=float))
    a = poly
    e = np.roll(poly, -1, axis=0) - a
    ee = np.einsum("ij,ij->i", e, e)
    out = np.empty(len(pts))
    for k0 in range(0, len(pts), chunk):
        p = pts[k0 : k0 + chunk]
        w = p[:, None, :] - a[None, :, :]  # (m, n, 2)
        t = np.clip(np.einsum("mnj,nj->mn", w, e) / ee, 0.0, 1.0)
        d2 = np.sum((w - t[..., None] * e[None]) ** 2, axis=2)
        cross = e[None, :, 0] * w[..., 1] - e[None, :, 1] * w[..., 0]  # inside iff all >= 0
        out[k0 : k0 + chunk] = np.where(np.all(cross >= 0.0, axis=1), 0.0, np.sqrt(np.min(d2, axis=1)))
    return out


_REGION_SHAPES = {"spinal_cord": "cord", "cord": "cord", "dura": "dura", "csf": "csf", "canal": "canal"}


def min_distance(geometry, points_or_segment, region: str, lay: SpineLayout | None = None) -> float:
    """Smallest distance (m) from points, or from a segment, to ``region``.

    ``region``: 'spinal_cord', 'dura' (the dural sac's outer surface: the distance to anything
    inside the sac), 'csf' or 'canal'. These run through the whole block height, so the
    distance is the one in the xy plane. Computed on 512-gon approximations of the ellipses
    (error below 2e-7 m); 0 for points inside.

    ``points_or_segment``: an (n, 3) array of points, or ``("segment", a, b)``: the segment
    from a to b (minimised exactly by ternary search; the distance to a convex set is convex
    along a segment).
    """
    lay = lay or layout(geometry)
    key = _REGION_SHAPES.get(region)
    if key is None:
        raise ValueError(f"region = '{region}': distances are available to {sorted(_REGION_SHAPES)}")
    poly = getattr(lay, key).polygon()
    if isinstance(points_or_segment, tuple) and len(points_or_segment) == 3 and points_or_segment[0] == "segment":
        a = np.asarray(points_or_segment[1], dtype=float)[:2]
        b = np.asarray(points_or_segment[2], dtype=float)[:2]
        return segment_distance_2d(poly, a, b)
    pts = np.atleast_2d(np.asarray(points_or_segment, dtype=float))[:, :2]
    return float(np.min(_polygon_distance(poly, pts)))


def segment_distance_2d(poly: np.ndarray, a, b) -> float:
    """Distance from the 2D segment [a, b] to a convex polygon (ternary search on t)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)

    def f(t):
        t = np.atleast_1d(np.asarray(t, dtype=float))
        return _polygon_distance(poly, a[None, :] + t[:, None] * (b - a)[None, :])

    grid = np.linspace(0.0, 1.0, 33)
    vals = f(grid)
    k = int(np.argmin(vals))
    if vals[k] == 0.0:
        return 0.0
    lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    for _ in range(40):  # the distance to a convex set is convex along the segment
        m = np.array([lo + (hi - lo) / 3.0, hi - (hi - lo) / 3.0])
        v1, v2 = f(m)
        if v1 <= v2:
            hi = m[1]
        else:
            lo = m[0]
    return float(min(vals[k], f(0.5 * (lo + hi))[0]))


def _ellipsoid_surface(tumour, n: int = 96) -> np.ndarray:
    c, ax = np.asarray(tumour.center_m), np.asarray(tumour.semi_axes_m)
    u = np.linspace(0.0, 2.0 * math.pi, 2 * n, endpoint=False)
    v = np.linspace(0.0, math.pi, n + 1)
    uu, vv = np.meshgrid(u, v)
    pts = np.column_stack([np.cos(uu).ravel() * np.sin(vv).ravel(), np.sin(uu).ravel() * np.sin(vv).ravel(), np.cos(vv).ravel()])
    return c + pts * ax


def tumour_distance(geometry, index: int, region: str, lay: SpineLayout | None = None) -> float:
    """Distance (m) from tumour ``index`` (its full ellipsoid, before clipping) to ``region``
    ('spinal_cord', 'dura', 'csf', 'canal'); 0 if they overlap. The ellipsoid's projection on
    the xy plane is the ellipse of semi-axes (a_x, a_y), so the distance is 2D and exact up to
    the polygon approximation."""
    lay = lay or layout(geometry)
    tum = geometry.tumour[index]
    key = _REGION_SHAPES.get(region)
    if key is None:
        raise ValueError(f"region = '{region}': distances are available to {sorted(_REGION_SHAPES)}")
    target = getattr(lay, key)
    proj = Ellipse(tum.center_m[0], tum.center_m[1], tum.semi_axes_m[0], tum.semi_axes_m[1])
    if abs(tum.center_m[2]) - tum.semi_axes_m[2] > lay.z_block:
        return math.inf
    p_t, p_r = proj.polygon(1024), target.polygon(1024)
    # overlap: a vertex of one inside the other (dense polygons of smooth convex shapes)
    if np.any(target.contains(p_t[:, 0], p_t[:, 1])) or np.any(proj.contains(p_r[:, 0], p_r[:, 1])):
        return 0.0
    return float(np.min(_polygon_distance(target.polygon(), p_t)))


# --------------------------------------------------------------------------- validation


def validate_spine(geometry) -> SpineLayout:
    """Check the tumours against the anatomy; return the layout. Raises ValueError naming the
    key and value."""
    lay = layout(geometry)
    names = {"cortical_bone", "cancellous_bone", "posterior_elements", "disc_upper", "disc_lower",
             "epidural_fat", "dura", "csf", "spinal_cord", "muscle", "epidural_anterior"}
    seen: set[str] = set()
    for i, tum in enumerate(geometry.tumour):
        c = list(tum.center_m)
        if tum.name in names or tum.name in seen:
            raise ValueError(f"tumour[{i}].name = '{tum.name}' is already a region name; choose another")
        seen.add(tum.name)
        if not (in_body(lay, c) or in_posterior_elements(lay, c)):
            raise ValueError(
                f"tumour[{i}].center_m = {c} lies outside the vertebra (the {geometry.level} body or "
                f"posterior elements); the body spans x in +-{lay.width / 2:.4g}, y in "
                f"+-{lay.depth / 2:.4g}, z in +-{lay.height / 2:.4g} m"
            )
        if tumour_distance(geometry, i, "spinal_cord", lay) <= 0.0:
            raise ValueError(
                f"tumour[{i}] '{tum.name}' (center_m = {c}, semi_axes_m = {list(tum.semi_axes_m)}) would "
                "overlap the spinal cord; a tumour may reach the epidural space but not the cord"
            )
    return lay


# --------------------------------------------------------------------------- applicator tracks


class TrackDistances(NamedTuple):
    dura_m: float  # smallest distance from the emitting tip's axis segment to the dural sac
    spinal_cord_m: float  # ... to the spinal cord
    canal_m: float  # clearance of the catheter wall from the canal (axis distance - radius)


def _track_point(ped: Box2, s: float, z: float = 0.0) -> np.ndarray:
    return np.array([ped.p0[0] + s * ped.v[0], ped.p0[1] + s * ped.v[1], z])


def transpedicular_track(
    geometry,
    side: str = "left",
    tip_depth_m: float | None = None,
    tip_length_m: float = DEFAULT_TIP_LENGTH_M,
    tip_to_dura_m: float | None = None,
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(entry_m, tip_end_m) of a straight transpedicular track in the plane z = 0.

    The track runs along the pedicle axis (through the pedicle box's centre line at the
    level's transverse angle) from ``ENTRY_BEHIND_LAMINA_M`` behind the lamina (in the
    muscle, posterolateral) into the body. ``tip_depth_m``: distance along the track from the
    posterior wall plane (y = depth/2) to the tip end. Default: the tip end is placed so that
    the emitting tip (the last ``tip_length_m`` before the end) comes no closer than
    ``DEFAULT_TIP_TO_DURA_M`` = 6 mm to the dural sac; for T8 this puts a 10 mm tip in the
    posterior half of the body (y from about 2 to 12 mm). The tip starts at least
    ``TIP_WALL_CLEARANCE_M`` inside the posterior wall plane (along the track); where the 6 mm
    rule would allow the tip to start further back (T11, T12) it starts 2 mm inside.

    ``tip_to_dura_m`` (m): place the tip so that its closest approach to the dural sac is exactly
    this distance (case key ``applicator.tip_to_dura_m``). Raises ValueError when no tip position
    along the track inside the body gives that distance (too close: the tip would start less than
    ``TIP_WALL_CLEARANCE_M`` inside the posterior wall; too far: it would leave the body in front).
    """
    if side not in ("left", "right"):
        raise ValueError(f"side = '{side}' must be 'left' or 'right'")
    lay = layout(geometry)
    ped = lay.pedicles[0 if side == "left" else 1]
    cos = ped.v[1]
    s_entry = (lay.lamina[1][1] + ENTRY_BEHIND_LAMINA_M - ped.p0[1]) / cos
    s_wall = (0.5 * lay.depth - ped.p0[1]) / cos
    entry = _track_point(ped, s_entry)
    if tip_depth_m is not None:
        s_end = s_wall - float(tip_depth_m)
    else:
        poly = lay.dura.polygon()
        target = DEFAULT_TIP_TO_DURA_M if tip_to_dura_m is None else float(tip_to_dura_m)

        def tip_gap(s_end: float) -> float:
            a = _track_point(ped, s_end)[:2]
            b = _track_point(ped, s_end + tip_length_m)[:2]
            return segment_distance_2d(poly, a, b) - target

        # deep (large gap) .. shallow (tip start 1 mm in front of the posterior wall: a tip
        # edge on the wall plane would make a degenerate geometry)
        lo, hi = s_wall - lay.depth, s_wall - tip_length_m - TIP_WALL_CLEARANCE_M
        if tip_to_dura_m is not None and tip_gap(hi) > 0.0:
            raise ValueError(
                f"tip_to_dura_m = {tip_to_dura_m:g} m: a {tip_length_m * 1e3:g} mm tip on the {side} "
                f"transpedicular track at {geometry.level} comes no closer than "
                f"{(tip_gap(hi) + target) * 1e3:.2f} mm to the dura while starting "
                f"{TIP_WALL_CLEARANCE_M * 1e3:g} mm inside the posterior wall"
            )
        if tip_to_dura_m is not None and tip_gap(lo) < 0.0:
            raise ValueError(
                f"tip_to_dura_m = {tip_to_dura_m:g} m: a {tip_length_m * 1e3:g} mm tip on the {side} "
                f"transpedicular track at {geometry.level} is at most {(tip_gap(lo) + target) * 1e3:.2f} mm "
                "from the dura inside the vertebral body"
            )
        if tip_gap(hi) >= 0.0:  # 6 mm is not the limit (large levels): 2 mm inside the wall
            s_end = s_wall - tip_length_m - 2.0 * TIP_WALL_CLEARANCE_M
        else:
            for _ in range(40):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if tip_gap(mid) >= 0.0 else (lo, mid)
            s_end = lo
    end = _track_point(ped, s_end)
    return tuple(float(c) for c in entry), tuple(float(c) for c in end)  # type: ignore[return-value]


def check_track(geometry, entry_m, tip_end_m, radius_m: float, tip_length_m: float) -> TrackDistances:
    """Check a catheter (cylinder of ``radius_m`` from ``entry_m`` to ``tip_end_m``) against
    the anatomy. Raises ValueError if it enters the spinal canal or if the tip centre is not in
    bone (cortical, cancellous, posterior elements) or a tumour. Returns the distances of the
    emitting tip segment to the dura and the cord (m), and the catheter's clearance from the
    canal."""
    lay = layout(geometry)
    a, e = np.asarray(entry_m, dtype=float), np.asarray(tip_end_m, dtype=float)
    L = float(np.linalg.norm(e - a))
    if not L > tip_length_m:
        raise ValueError(f"tip_length_m = {tip_length_m} must be shorter than the track, {L:.6g} m")
    axis = (e - a) / L
    tip_start = e - tip_length_m * axis
    # The canal is a vertical prism through the block: the catheter enters it iff the xy
    # projection of the cylinder (a band of half-width radius_m around the projected axis)
    # meets the canal's cross-section.
    canal_gap = segment_distance_2d(lay.canal.polygon(), a[:2], e[:2])
    reach = float(radius_m)
    if canal_gap <= reach:
        raise ValueError(
            f"the catheter from entry_m = {list(map(float, a))} to end_m = {list(map(float, e))} (radius_m = "
            f"{radius_m}) enters the spinal canal: its axis comes within {canal_gap:.4g} m of the canal; "
            "choose a track that stays in the pedicle"
        )
    centre = 0.5 * (tip_start + e)
    where = region_at(geometry, centre, lay)
    allowed = {"cortical_bone", "cancellous_bone", "posterior_elements"} | {t.name for t in geometry.tumour}
    if where not in allowed:
        raise ValueError(
            f"the tip centre {list(map(float, centre))} (end_m = {list(map(float, e))}, tip_length_m = "
            f"{tip_length_m}) lies in {where or 'no region (outside the block)'}; it must lie in bone or a tumour"
        )
    dura = segment_distance_2d(lay.dura.polygon(), tip_start[:2], e[:2])
    cord = segment_distance_2d(lay.cord.polygon(), tip_start[:2], e[:2])
    return TrackDistances(dura, cord, canal_gap - reach)
