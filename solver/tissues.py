"""Default tissue library (SI units; temperatures in C).

Thermal data: IT'IS Foundation tissue property database v4.x, as tabulated in
``docs/MODEL.md`` section 4. The perfusion coefficient is
W = rho_b c_b w with blood rho_b = 1049.75 kg/m3, c_b = 3617 J/kg/K (IT'IS).

Tumour is not in IT'IS: the default ``tumour`` entry is the brain-tumour set of
Cancers 2019, 11:1183 (soft, lytic-like). A blastic metastasis behaves like bone;
a case chooses by overriding ``[tissues.tumour]`` or by pointing a region at a
bone entry.
"""

from __future__ import annotations

BLOOD_DENSITY_KG_PER_M3 = 1049.75  # IT'IS v4.x
BLOOD_SPECIFIC_HEAT_J_PER_KGK = 3617.0  # IT'IS v4.x


def perfusion_coefficient(perfusion_rate_per_s: float) -> float:
    """W = rho_b c_b w in W/m3/K from the volumetric perfusion rate w in 1/s."""
    return BLOOD_DENSITY_KG_PER_M3 * BLOOD_SPECIFIC_HEAT_J_PER_KGK * perfusion_rate_per_s


# name -> (rho kg/m3, c J/kg/K, k W/m/K, W W/m3/K, source)
_THERMAL_TABLE: dict[str, tuple[float, float, float, float, str]] = {
    "cancellous_bone": (1178.0, 2274.0, 0.31, 2237.0, "IT'IS v4.x, bone (cancellous)"),
    "cortical_bone": (1908.0, 1313.0, 0.32, 1207.0, "IT'IS v4.x, bone (cortical)"),
    "red_marrow": (1029.0, 2666.0, 0.28, 8787.0, "IT'IS v4.x, bone marrow (red)"),
    "spinal_cord": (1075.0, 3630.0, 0.51, 10907.0, "IT'IS v4.x, spinal cord"),
    "nerve": (1075.0, 3613.0, 0.49, 10907.0, "IT'IS v4.x, nerve"),
    "csf": (1007.0, 4096.0, 0.57, 0.0, "IT'IS v4.x, cerebrospinal fluid"),
    "dura": (1174.0, 3364.0, 0.44, 28232.0, "IT'IS v4.x, dura"),
    "fat": (911.0, 2348.0, 0.21, 1886.0, "IT'IS v4.x, fat"),
    "muscle": (1090.0, 3421.0, 0.49, 2535.0, "IT'IS v4.x, muscle"),
    "disc": (1100.0, 3568.0, 0.49, 2435.0, "IT'IS v4.x, intervertebral disc"),
    "tumour": (1056.0, 3700.0, 0.57, 22545.0, "Cancers 2019, 11:1183 (brain tumour model)"),
}

# Aliases that researchers commonly type.
_ALIASES = {
    "epidural_fat": "fat",
    "cerebrospinal_fluid": "csf",
    "bone_marrow": "red_marrow",
    "tumor": "tumour",
    "intervertebral_disc": "disc",
}


# Library tissues that are tumour: the regions of such a tissue are scored as tumour (coverage,
# DVH; solver.config.Case.tumour_regions). "tumour" is the entry sourced above.
TUMOUR_TISSUES = frozenset({"tumour"})


def is_tumour_tissue(name: str | None) -> bool:
    """True for a library tumour tissue (:data:`TUMOUR_TISSUES`) or one of its aliases."""
    return name is not None and _ALIASES.get(name, name) in TUMOUR_TISSUES


def library() -> dict[str, dict[str, float | str]]:
    """The default tissues as plain dictionaries of configuration keys."""
    out: dict[str, dict[str, float | str]] = {}
    for name, (rho, c, k, w_coef, source) in _THERMAL_TABLE.items():
        out[name] = {
            "density_kg_per_m3": rho,
            "specific_heat_J_per_kgK": c,
            "conductivity_W_per_mK": k,
            "perfusion_W_per_m3K": w_coef,
            "arterial_temperature_C": 37.0,
            "metabolic_heat_W_per_m3": 0.0,
            "source": source,
        }
    for alias, target in _ALIASES.items():
        out[alias] = dict(out[target])
    return out


def names() -> list[str]:
    return sorted(library())
