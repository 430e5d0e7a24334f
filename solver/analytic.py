"""Closed-form solutions used for verification (docs/MODEL.md section 6), and manufactured ones.

Notation: theta = T - T_a, m = sqrt(W / k), alpha = k / (rho c), beta = W / (rho c).
All inputs SI; temperatures in C. Functions accept numpy arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np


def pennes_point_source(r_m, power_W: float, k_W_per_mK: float, W_W_per_m3K: float):
    """Steady temperature rise (K) of a point source P in an infinite perfused medium.

    theta(r) = P exp(-m r) / (4 pi k r), m = sqrt(W / k).
    """
    m = math.sqrt(W_W_per_m3K / k_W_per_mK)
    r = np.asarray(r_m, dtype=float)
    return power_W * np.exp(-m * r) / (4.0 * math.pi * k_W_per_mK * r)


def pennes_point_source_in_sphere(r_m, power_W: float, k: float, W: float, radius_m: float):
    """Steady rise (K) for a point source at the centre of a perfused ball with theta = 0 on r = R.

    theta = P/(4 pi k r) * sinh(m (R - r)) / sinh(m R): the infinite-medium kernel minus the
    regular solution that cancels it on the sphere. Tends to pennes_point_source as R -> inf.
    """
    m = math.sqrt(W / k)
    r = np.asarray(r_m, dtype=float)
    return power_W / (4.0 * math.pi * k * r) * np.sinh(m * (radius_m - r)) / math.sinh(m * radius_m)


def pennes_slab(x_m, theta0_K: float, k: float, W: float, length_m: float | None = None):
    """Steady 1D rise (K) with theta(0) = theta0.

    Semi-infinite (length_m None): theta0 exp(-m x). Finite slab with zero flux at x = L:
    theta0 cosh(m (L - x)) / cosh(m L).
    """
    m = math.sqrt(W / k)
    x = np.asarray(x_m, dtype=float)
    if length_m is None:
        return theta0_K * np.exp(-m * x)
    return theta0_K * np.cosh(m * (length_m - x)) / math.cosh(m * length_m)


def pennes_uniform_transient(t_s, Q_W_per_m3: float, W: float, rho_c_J_per_m3K: float):
    """Rise (K) under a uniform source Q with perfusion, no gradients, theta(0) = 0.

    theta(t) = (Q / W) (1 - exp(-beta t)), beta = W / (rho c).
    """
    beta = W / rho_c_J_per_m3K
    t = np.asarray(t_s, dtype=float)
    return Q_W_per_m3 / W * (1.0 - np.exp(-beta * t))


def pennes_relaxation(t_s, theta0_K: float, W: float, rho_c_J_per_m3K: float):
    """Uniform initial rise theta0 decaying by perfusion alone: theta0 exp(-beta t)."""
    return theta0_K * np.exp(-W / rho_c_J_per_m3K * np.asarray(t_s, dtype=float))


# --------------------------------------------------------------------------- manufactured


@dataclass(frozen=True)
class ManufacturedSolution:
    """u(x, t) in C written once for both UFL and numpy through the namespace `m`.

    ``u(x, t, m)``: x is a 3-sequence of coordinates (m), t the time (s), m a module that
    provides sin, cos, exp (ufl or numpy). ``du_dt`` likewise. Steady solutions ignore t.
    """

    description: str
    u: Callable
    du_dt: Callable
    steady: bool


_L = 0.01  # length scale of the manufactured solutions (m): tissue-sized features
_TAU = 20.0  # time scale (s)


def _steady_trig(x, t, m):
    return 37.0 + 10.0 * m.sin(math.pi * x[0] / _L + 0.3) * m.cos(0.5 * math.pi * x[1] / _L) * (
        1.0 + 0.5 * m.sin(0.7 * math.pi * x[2] / _L)
    )


def _zero(x, t, m):
    return 0.0 * x[0]


def _poly_sin_t(x, t, m):
    # Quadratic in space: exactly representable by P2, so a P2 run sees only the time error.
    s = (x[0] * x[0] + 0.5 * x[1] * x[1] + x[0] * x[2] + 0.3 * x[2] * _L) / (_L * _L)
    return 37.0 + 8.0 * m.sin(t / _TAU + 0.4) * s + 2.0 * m.cos(t / _TAU)


def _poly_sin_t_dt(x, t, m):
    s = (x[0] * x[0] + 0.5 * x[1] * x[1] + x[0] * x[2] + 0.3 * x[2] * _L) / (_L * _L)
    return 8.0 / _TAU * m.cos(t / _TAU + 0.4) * s - 2.0 / _TAU * m.sin(t / _TAU)


def _trig_exp_t(x, t, m):
    return 37.0 + 6.0 * m.exp(-t / _TAU) * m.sin(math.pi * x[0] / _L + 0.2) * m.cos(
        0.5 * math.pi * x[1] / _L
    ) * m.cos(0.3 * math.pi * x[2] / _L)


def _trig_exp_t_dt(x, t, m):
    return -(_trig_exp_t(x, t, m) - 37.0) / _TAU


HOT_SPHERE_RADIUS_M = 0.01
HOT_SPHERE_PEAK_RISE_K = 23.0


def _hot_sphere(x, t, m):
    # Quadratic (exact in P2), radial: every isotherm and every dose level set of a field
    # held for a time t is a sphere, r(T) = R sqrt(1 - (T - 37) / 23).
    r2 = (x[0] * x[0] + x[1] * x[1] + x[2] * x[2]) / (HOT_SPHERE_RADIUS_M * HOT_SPHERE_RADIUS_M)
    return 37.0 + HOT_SPHERE_PEAK_RISE_K * (1.0 - r2)


def hot_sphere_radius(level_C: float) -> float:
    """Radius (m) of the level_C isotherm of 'hot_sphere' (37 < level_C < 60 C)."""
    return HOT_SPHERE_RADIUS_M * math.sqrt(1.0 - (level_C - 37.0) / HOT_SPHERE_PEAK_RISE_K)


MANUFACTURED: dict[str, ManufacturedSolution] = {
    "hot_sphere": ManufacturedSolution(
        "steady radial hot spot 37 + 23 (1 - r^2 / (1 cm)^2) C: spherical isotherms and dose zones",
        _hot_sphere,
        _zero,
        True,
    ),
    "steady_trig": ManufacturedSolution(
        "steady smooth trigonometric field, 10 K amplitude on a 1 cm scale", _steady_trig, _zero, True
    ),
    "poly_sin_t": ManufacturedSolution(
        "quadratic in space (exact in P2) times a sine in time: isolates the time error",
        _poly_sin_t,
        _poly_sin_t_dt,
        False,
    ),
    "trig_exp_t": ManufacturedSolution(
        "trigonometric in space, decaying exponentially in time", _trig_exp_t, _trig_exp_t_dt, False
    ),
}


def observed_orders(h, errors) -> np.ndarray:
    """Observed convergence orders log(e_i/e_{i+1}) / log(h_i/h_{i+1})."""
    h = np.asarray(h, dtype=float)
    e = np.asarray(errors, dtype=float)
    return np.log(e[:-1] / e[1:]) / np.log(h[:-1] / h[1:])
