"""The 'kernel' light model: superposed point kernels of an infinite homogeneous medium.

This is the MD Anderson LITT planning approach (Fuentes, Fahrenholtz et al.): the diffusing
tip of length L (default 10 mm) is N equal-power isotropic point emitters on its axis, in an
infinite homogeneous medium with the optical properties (mu_a, mu_s') of one tissue, the
tissue at the tip (docs/MODEL.md sections 2 and 6). For unit total power

    phi_unit(x) = sum_k w_k exp(-mu_eff r_k) / (4 pi D r_k),   r_k = max(|x - p_k|, r_c),

with sum_k w_k = 1 (w_k = 1 / N), D = 1 / (3 (mu_a + mu_s')), mu_eff = sqrt(mu_a / D).

Catheter clamp. There is no tissue within the catheter radius r_c (0.825 mm, a 1.65 mm
applicator) of the axis, so the kernel is evaluated with r_k replaced by max(r_k, r_c). This
removes the 1/r singularity at nodes and quadrature points on (or next to) the axis, and
changes nothing at distances r >= r_c from every emitter, i.e. anywhere in tissue outside the
catheter. On a mesh that does include the catheter volume as tissue, the clamp caps the heat
deposited there: for one emitter it removes the fraction
1 - exp(-x) (1 + x + x^2 / 3) = x^2 / 6 + O(x^4), x = mu_eff r_c, of the absorbed power
(0.124 for white matter at 980 nm; derivation in ``ball_absorbed_power``).

Energy. Over all space integral mu_a phi dx = P (unclamped). In a finite domain the integral
of mu_a phi_unit is less than 1: the rest is what an infinite medium would absorb outside the
domain (the model has no boundary condition; it is accurate where the boundary is several
1 / mu_eff away from the tip). With ``mu_a_field`` (DG0 per region) the fluence stays that of
the homogeneous tip tissue but each region absorbs with its own mu_a; the absorbed power is
then no longer bounded by 1 in general.

Everything is compiled once: the emitter coordinates, weights, mu_eff, 1 / (4 pi D) and r_c
are ``fem.Constant`` values, so ``set_emitters`` (same N) and ``set_optical`` change them
without a new JIT compilation. All methods are collective and partition-independent.
"""

from __future__ import annotations

import math

import numpy as np

from . import compat  # noqa: F401  (import order)
import dolfinx
import dolfinx.fem.petsc
import ufl
from dolfinx import fem
from mpi4py import MPI
from petsc4py import PETSc

from .fem import assemble_vector
from .light import OpticalProperties

DEFAULT_TIP_LENGTH_M = 0.010  # Visualase diffusing tip, 10 mm
DEFAULT_CATHETER_RADIUS_M = 0.000825  # 1.65 mm applicator (cooling catheter) diameter
MIN_EMITTERS = 5  # MD Anderson used a handful of points along the 10 mm tip

# Quadrature degree of the heat-load and absorbed-power forms. The integrand mu_a phi v is
# not polynomial: phi is flat inside r_c, has a kink at r = r_c and decays on the scale
# 1 / mu_eff (~0.9 mm in white matter) outside, with the 1/r factor steepest near r_c.
# Measured (white matter 980 nm, ball R = 8 mm, 10 mm tip, 23 emitters, r_c = 0.825 mm, P1
# heat space, mesh refined to h_s at the tip, 0.8 mm outside), against degree 14:
#   nodal loads, max-norm relative error, h_s = 0.25 / 0.5 mm:
#     degree 2: 1.5e-3 / 2.4e-3, 4: 3.4e-4 / 8.5e-4, 6: 1.8e-4 / 4.6e-4, 8: 1.1e-4 / 2.0e-4
#   total (absorbed power), 62k cells: degree 2: 7e-6, 4: 1.8e-6, 6: 1.0e-6.
# The kink at r_c limits the rate. All are far below the P1 error of a diffusion solution on the
# same mesh (a few %); 6 keeps the nodal loads at the 1e-4 level for 1.7x the assembly time of
# degree 4 (62k cells, 23 emitters, serial: 0.19 s at 4, 0.32 s at 6, 0.67 s at 8).
DEFAULT_QUADRATURE_DEGREE = 6


# --------------------------------------------------------------------------- emitters


def emitter_points(tip_center_m, direction, tip_length_m: float = DEFAULT_TIP_LENGTH_M,
                   n_emitters: int | None = None, mu_eff_per_m: float | None = None):
    """Equal-power emitters along the tip: the midpoints of ``n_emitters`` equal sub-segments
    of the segment of length ``tip_length_m`` centred at ``tip_center_m`` along ``direction``
    (any non-zero vector). Returns (points (n, 3) in m, weights (n,) summing to 1).

    ``n_emitters=None`` takes ``default_emitter_count(tip_length_m, mu_eff_per_m)``.
    The midpoint rule is the composite rule that turns the uniform line emission into equal
    point powers; its error is O((L / n)^2) near the ends and exponentially small in
    (distance from the axis) / spacing beside the tip.
    """
    c = np.asarray(tip_center_m, float).reshape(3)
    d = np.asarray(direction, float).reshape(3)
    norm = float(np.linalg.norm(d))
    if not norm > 0.0:
        raise ValueError("direction must be a non-zero vector")
    if not tip_length_m > 0.0:
        raise ValueError(f"tip_length_m = {tip_length_m} must be > 0")
    if n_emitters is None:
        if mu_eff_per_m is None:
            raise ValueError("give n_emitters or mu_eff_per_m (for default_emitter_count)")
        n_emitters = default_emitter_count(tip_length_m, mu_eff_per_m)
    n = int(n_emitters)
    if n < 1:
        raise ValueError(f"n_emitters = {n_emitters} must be >= 1")
    d = d / norm
    s = (np.arange(n) + 0.5) / n - 0.5  # midpoints in (-1/2, 1/2)
    points = c[None, :] + (s * tip_length_m)[:, None] * d[None, :]
    weights = np.full(n, 1.0 / n)
    return points, weights


def default_emitter_count(tip_length_m: float, mu_eff_per_m: float) -> int:
    """Number of equal-power emitters so that their spacing L / N is at most 1 / (2 mu_eff),
    and at least ``MIN_EMITTERS`` (5; MD Anderson used a handful): N = max(5, ceil(2 mu_eff L)).

    Why 1 / (2 mu_eff): the fluence changes on the scale 1 / mu_eff, so this spacing resolves
    it with two emitters and keeps the sum close to the uniform line emission. Measured for
    white matter at 980 nm (mu_eff 1124/m, L = 10 mm -> N = 23, spacing 0.43 mm) against the
    uniform line emission (``segment_fluence_infinite``), relative, at 0.825 / 1.5 / 3 mm from
    the axis: beside the middle 6 mm of the tip 5e-4 / 7e-4 / 7e-4; largest (beyond the tip's
    ends) 1.7 % / 1.3 % / 0.8 %. It falls as spacing^2 (N = 64: 2.2e-3 largest); with N = 5
    it is 21 % / 5 % / 1.4 % beside the tip and up to 29 % near the ends.
    """
    if not (tip_length_m > 0.0 and mu_eff_per_m > 0.0):
        raise ValueError("tip_length_m and mu_eff_per_m must be > 0")
    return max(MIN_EMITTERS, int(math.ceil(2.0 * mu_eff_per_m * tip_length_m - 1e-12)))


# --------------------------------------------------------------------------- closed forms


def kernel_fluence_numpy(points_m, emitters, optical: OpticalProperties,
                         catheter_radius_m: float = DEFAULT_CATHETER_RADIUS_M) -> np.ndarray:
    """phi_unit at ``points_m`` (n, 3) with numpy: the same formula as ``KernelLight``."""
    x = np.asarray(points_m, float).reshape(-1, 3)
    pts, w = (np.asarray(a, float) for a in emitters)
    r = np.linalg.norm(x[:, None, :] - pts.reshape(-1, 3)[None, :, :], axis=2)
    r = np.maximum(r, catheter_radius_m)
    k = np.exp(-optical.mu_eff_per_m * r) / (4.0 * math.pi * optical.D_m * r)
    return k @ w


def ball_absorbed_power(radius_m: float, optical: OpticalProperties, catheter_radius_m: float = 0.0,
                        power_W: float = 1.0) -> float:
    """integral over the ball |x| < R of mu_a phi for one emitter P at its centre (clamped).

    Unclamped, with mu = mu_eff and mu^2 = mu_a / D:
        int_0^R mu_a P e^{-mu r} / (4 pi D r) 4 pi r^2 dr = (mu_a P / D) int_0^R r e^{-mu r} dr
        = (mu_a P / (D mu^2)) [1 - e^{-mu R} (1 + mu R)] = P [1 - e^{-mu R} (1 + mu R)].
    With the clamp (r_c < R) the kernel is e^{-mu r_c} / (4 pi D r_c) inside r_c, contributing
    mu_a P e^{-mu r_c} (4/3 pi r_c^3) / (4 pi D r_c) = P e^{-mu r_c} (mu r_c)^2 / 3, and
    the shell r_c < r < R contributes P [e^{-mu r_c} (1 + mu r_c) - e^{-mu R} (1 + mu R)]:
        P [e^{-x} (1 + x + x^2 / 3) - e^{-mu R} (1 + mu R)],   x = mu r_c,
    i.e. the clamp removes P [1 - e^{-x} (1 + x + x^2/3)] = P (x^2 / 6 - x^4 / 24 + x^5 / 45 - ...)
    (the x^3 terms cancel)."""
    mu, R = optical.mu_eff_per_m, float(radius_m)
    x = mu * float(catheter_radius_m)
    if catheter_radius_m > R:
        raise ValueError("catheter_radius_m must not exceed the ball radius")
    return power_W * (math.exp(-x) * (1.0 + x + x * x / 3.0) - math.exp(-mu * R) * (1.0 + mu * R))


# --------------------------------------------------------------------------- model


class KernelLight:
    """Fluence of ``emitters`` = (points (n, 3) m, weights (n,) summing to 1) in the infinite
    medium of ``optical``, as a UFL expression on ``mesh`` (``self.phi_unit``, W/m2 per W).

    ``mu_a_field``: a DG0 (or any) Function of mu_a (1/m) used for the absorption in
    ``heat_load`` and ``absorbed_power`` (e.g. ``LightProblem.mu_a``); default the homogeneous
    mu_a of ``optical``. ``quadrature_degree``: see DEFAULT_QUADRATURE_DEGREE.
    """

    def __init__(self, mesh: dolfinx.mesh.Mesh, optical: OpticalProperties, emitters,
                 catheter_radius_m: float = DEFAULT_CATHETER_RADIUS_M,
                 mu_a_field: fem.Function | None = None,
                 quadrature_degree: int = DEFAULT_QUADRATURE_DEGREE):
        if not catheter_radius_m > 0.0:
            raise ValueError(f"catheter_radius_m = {catheter_radius_m} must be > 0 (it bounds the kernel)")
        self.mesh = mesh
        self.comm = mesh.comm
        pts, w = self._check_emitters(emitters)
        self.n_emitters = len(w)
        self._points = fem.Constant(mesh, PETSc.ScalarType(0.0) + pts)
        self._weights = fem.Constant(mesh, PETSc.ScalarType(0.0) + w)
        self._mu_eff = fem.Constant(mesh, PETSc.ScalarType(0.0))
        self._inv4piD = fem.Constant(mesh, PETSc.ScalarType(0.0))
        self._mu_a = fem.Constant(mesh, PETSc.ScalarType(0.0))
        self._rc = fem.Constant(mesh, PETSc.ScalarType(catheter_radius_m))
        self.set_optical(optical)
        self.catheter_radius_m = float(catheter_radius_m)
        self.emitters = (pts, w)

        x = ufl.SpatialCoordinate(mesh)
        gdim = mesh.geometry.dim
        total = 0
        for k in range(self.n_emitters):
            dx_k = ufl.as_vector([x[i] - self._points[k, i] for i in range(gdim)])
            r = ufl.max_value(ufl.sqrt(ufl.dot(dx_k, dx_k)), self._rc)
            total = total + self._weights[k] * ufl.exp(-self._mu_eff * r) / r
        self.phi_unit = self._inv4piD * total
        self.mu_a = mu_a_field if mu_a_field is not None else self._mu_a
        self.dx = ufl.Measure("dx", domain=mesh, metadata={"quadrature_degree": int(quadrature_degree)})
        self.quadrature_degree = int(quadrature_degree)
        self._expressions: dict = {}
        self._load_forms: dict = {}
        self._absorbed_form = fem.form(self.mu_a * self.phi_unit * self.dx)

    # ------------------------------------------------------------------ parameters
    def _check_emitters(self, emitters):
        pts, w = emitters
        pts = np.asarray(pts, float).reshape(-1, 3)[:, : self.mesh.geometry.dim]
        w = np.asarray(w, float).reshape(-1)
        if len(w) != len(pts) or len(w) == 0:
            raise ValueError("emitters: one weight per point, at least one point")
        if not math.isclose(float(w.sum()), 1.0, rel_tol=1e-12):
            raise ValueError(f"emitter weights sum to {w.sum()}; a unit source needs weights summing to 1")
        return pts, w

    def set_emitters(self, emitters) -> None:
        """Move the emitters (same number) without recompiling."""
        pts, w = self._check_emitters(emitters)
        if len(w) != self.n_emitters:
            raise ValueError(f"set_emitters keeps the number of emitters ({self.n_emitters}); got {len(w)}")
        self._points.value[:] = pts
        self._weights.value[:] = w
        self.emitters = (pts, w)

    def set_optical(self, optical: OpticalProperties) -> None:
        """Change the tissue of the kernel (and the homogeneous mu_a) without recompiling."""
        self.optical = optical
        self._mu_eff.value = optical.mu_eff_per_m
        self._inv4piD.value = 1.0 / (4.0 * math.pi * optical.D_m)
        self._mu_a.value = optical.absorption_per_m

    # ------------------------------------------------------------------ outputs
    def fluence(self, V: fem.FunctionSpace, name: str = "fluence_rate") -> fem.Function:
        """phi_unit interpolated into ``V`` (exact at the interpolation points), unit power."""
        cached = self._expressions.get(id(V))
        if cached is None:
            cached = (V, fem.Expression(self.phi_unit, V.element.interpolation_points))
            self._expressions[id(V)] = cached
        expr = cached[1]
        phi = fem.Function(V, name=name)
        phi.interpolate(expr)
        phi.x.scatter_forward()
        return phi

    def heat_load(self, V_heat: fem.FunctionSpace) -> PETSc.Vec:
        """b_i = integral mu_a(x) phi_unit(x) v_i dx in ``V_heat`` (W per W of laser power),
        ghost-updated (owned entries complete). Its owned entries sum over ranks to
        ``absorbed_power()`` (the basis is a partition of unity)."""
        form = self._load_forms.get(id(V_heat))
        if form is None:
            v = ufl.TestFunction(V_heat)
            form = (V_heat, fem.form(self.mu_a * self.phi_unit * v * self.dx))
            self._load_forms[id(V_heat)] = form
        vec = assemble_vector(form[1])
        vec.ghostUpdate(addv=PETSc.InsertMode.INSERT, mode=PETSc.ScatterMode.FORWARD)
        return vec

    def absorbed_power(self) -> float:
        """integral mu_a phi_unit dx over the mesh (W per W), summed over ranks."""
        return float(self.comm.allreduce(fem.assemble_scalar(self._absorbed_form), op=MPI.SUM))
