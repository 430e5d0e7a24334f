"""Heat exchange between a cooled laser catheter and the tissue around it (docs/MODEL.md
section 2, "Cooled catheter").

A cooled applicator (e.g. Medtronic Visualase: 1.65 mm outer diameter, room-temperature saline
circulating inside the catheter to its distal end) does not hold its outer wall at the coolant
temperature: heat crosses the polymer wall by conduction and is carried away by the coolant by
forced convection. Per unit area of the catheter's OUTER surface the two resistances add:

    1 / h = 1 / h_wall + 1 / h_flow
    h_wall = k_wall / (r_o ln(r_o / r_i))          conduction through a cylindrical wall
    h_flow = Nu k_coolant / D_h * (r_i / r_o)       convection at the inner wall, referred to r_o

and the tissue sees the Robin condition  -k dT/dn = h (T - T_coolant)  on the cooled surface.
Holding the wall at T_coolant (Dirichlet) is the limit h -> infinity; it overstates the cooling
next to the catheter (Rivera et al. 2009, Math Biosci Eng 6:611, compared both for internally
cooled RF electrodes).

No measured h for the Visualase catheter was found; the default is this estimate with the
inputs below (the catheter's wall and the fibre's buffer are ASSUMED dimensions, not from a
datasheet). The wall term dominates; for wall thicknesses 0.1-0.2 mm and polymer
conductivities 0.15-0.3 W/m/K the estimate spans about 540-1380 W/m2/K. Laminar flow: at
15 mL/min through the annulus below, Re = rho v D_h / mu is about 160 (laminar below ~2300),
and for fully developed laminar flow Nu does not depend on the flow rate; the coolant warms by
P / (m_dot c), about 2 K per removed watt at that rate, which the model neglects.
"""

from __future__ import annotations

import math

# Inputs of the default estimate (SI).
CATHETER_OUTER_RADIUS_M = 0.000825  # Visualase cooling catheter, 1.65 mm outer diameter (docs/MODEL.md 1)
CATHETER_WALL_THICKNESS_M = 0.00015  # ASSUMED (thin-walled polymer catheter)
CATHETER_WALL_CONDUCTIVITY_W_PER_MK = 0.2  # ASSUMED polycarbonate-like polymer (0.19-0.22 W/m/K)
FIBRE_OUTER_RADIUS_M = 0.0003  # ASSUMED buffered fibre (the coolant flows in the annulus around it)
COOLANT_CONDUCTIVITY_W_PER_MK = 0.6  # water / saline near 20 C
# Fully developed laminar flow, uniform wall heat flux, circular duct: Nu = 48/11 = 4.36
# (Incropera and DeWitt, Fundamentals of Heat and Mass Transfer, table 8.1); the annulus is
# taken through its hydraulic diameter.
LAMINAR_NUSSELT = 48.0 / 11.0


def catheter_heat_transfer_coefficient(
    outer_radius_m: float = CATHETER_OUTER_RADIUS_M,
    wall_thickness_m: float = CATHETER_WALL_THICKNESS_M,
    wall_conductivity_W_per_mK: float = CATHETER_WALL_CONDUCTIVITY_W_PER_MK,
    fibre_radius_m: float = FIBRE_OUTER_RADIUS_M,
    coolant_conductivity_W_per_mK: float = COOLANT_CONDUCTIVITY_W_PER_MK,
    nusselt: float = LAMINAR_NUSSELT,
) -> float:
    """Overall heat-transfer coefficient (W/m2/K) from the tissue at the catheter's outer wall
    to the coolant, per unit outer area (formula in the module docstring).

    Raises ValueError for a non-positive input or a fibre that fills the lumen."""
    r_o, t, r_f = float(outer_radius_m), float(wall_thickness_m), float(fibre_radius_m)
    r_i = r_o - t
    for name, value in (("outer_radius_m", r_o), ("wall_thickness_m", t),
                        ("wall_conductivity_W_per_mK", wall_conductivity_W_per_mK),
                        ("coolant_conductivity_W_per_mK", coolant_conductivity_W_per_mK), ("nusselt", nusselt)):
        if not (math.isfinite(value) and value > 0.0):
            raise ValueError(f"{name} = {value} must be a positive finite number")
    if not (0.0 <= r_f < r_i):
        raise ValueError(f"fibre_radius_m = {r_f} must be >= 0 and below the lumen radius {r_i:.6g} m")
    h_wall = wall_conductivity_W_per_mK / (r_o * math.log(r_o / r_i))
    hydraulic_diameter = 2.0 * (r_i - r_f)
    h_flow = nusselt * coolant_conductivity_W_per_mK / hydraulic_diameter * (r_i / r_o)
    return 1.0 / (1.0 / h_wall + 1.0 / h_flow)


# The default of applicator.coolant_heat_transfer_W_per_m2K (two significant digits: the inputs
# are not known better): about 850 W/m2/K.
DEFAULT_COOLANT_HEAT_TRANSFER_W_PER_M2K = float(f"{catheter_heat_transfer_coefficient():.2g}")
