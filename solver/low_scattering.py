"""Light in low-scattering regions (CSF): closed-form transport reference and the error of diffusion.

The engine solves the P1 diffusion equation everywhere (solver/light.py), also where it is
invalid (mu_s' < 10 mu_a; cerebrospinal fluid at 980 nm: mu_a 0.048/mm, mu_s' 0.01/mm), and
flags such regions (``light.diffusion_invalid_regions`` in summary.json). This module gives the
transport-exact reference for the limiting case, a purely absorbing medium (mu_s = 0), where the
radiative transfer equation for an isotropic point source of power P has the closed form
(Beer-Lambert along every ray):

    phi_T(r) = P exp(-mu_a r) / (4 pi r^2)                     [W/m^2]

while diffusion with the same optics (mu_s' = 0: D = 1 / (3 mu_a), mu_eff = sqrt(3) mu_a) gives

    phi_D(r) = P exp(-sqrt(3) mu_a r) / (4 pi D r)

so that phi_D / phi_T = 3 mu_a r exp(-(sqrt(3) - 1) mu_a r): diffusion underestimates the fluence
within r < 0.47 / mu_a of a source (10 mm in CSF; by 7x at 1 mm) and overestimates it farther out,
at most by 3 / (e (sqrt(3) - 1)) = 1.508 at r = 1 / ((sqrt(3) - 1) mu_a) (28 mm in CSF). Both
deposit exactly P over all space (energy is conserved either way; only its distribution is wrong).
docs/MODEL.md section 2b applies this to the T8 case.
"""

from __future__ import annotations

import math

import numpy as np

SQRT3 = math.sqrt(3.0)
# max over r of phi_D / phi_T for a pure absorber: 3 / (e (sqrt(3) - 1)), at (sqrt(3) - 1) mu_a r = 1
MAX_DIFFUSION_OVERESTIMATE = 3.0 / (math.e * (SQRT3 - 1.0))


def pure_absorber_point_fluence(r_m, power_W: float, mu_a_per_m: float):
    """Exact (transport) fluence rate (W/m^2) of an isotropic point source of power_W (W) at
    distance r_m (m, array) in an infinite non-scattering medium of absorption mu_a_per_m (1/m)."""
    r = np.asarray(r_m, dtype=float)
    return power_W * np.exp(-mu_a_per_m * r) / (4.0 * math.pi * r**2)


def diffusion_to_transport_ratio(r_m, mu_a_per_m: float):
    """phi_D / phi_T (unitless) for a point source in a pure absorber (mu_s = 0), r_m in m."""
    x = mu_a_per_m * np.asarray(r_m, dtype=float)
    return 3.0 * x * np.exp(-(SQRT3 - 1.0) * x)


def crossover_radius_m(mu_a_per_m: float) -> float:
    """Smallest r (m) where diffusion stops underestimating a pure absorber's point-source fluence:
    the root of 3 x exp(-(sqrt(3) - 1) x) = 1, x = mu_a r (found by bisection; x = 0.4703)."""
    lo, hi = 1e-6, 1.0 / (SQRT3 - 1.0)  # the ratio rises monotonically up to its maximum
    f = lambda x: 3.0 * x * math.exp(-(SQRT3 - 1.0) * x) - 1.0  # noqa: E731
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) < 0.0 else (lo, mid)
    return 0.5 * (lo + hi) / mu_a_per_m
