"""Optical properties of tissues (pure data, no FEM imports: the case validator uses it).

Default table: Cassano et al., Neurophotonics 2019, 6:015004, Table 1 (1/mm there, 1/m here).
Every default has a source and an uncertainty range (low, nominal, high) in
``solver.optics_sources.OPTICAL_RANGES`` (docs/MODEL.md section 4b), for the sweep's
uncertainty study.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class OpticalProperties:
    """Absorption and reduced scattering coefficients (1/m)."""

    absorption_per_m: float
    reduced_scattering_per_m: float

    def __post_init__(self):
        if not (self.absorption_per_m > 0.0 and self.reduced_scattering_per_m >= 0.0):
            raise ValueError(
                f"optical properties need mu_a > 0 and mu_s' >= 0 (1/m); got mu_a = "
                f"{self.absorption_per_m}, mu_s' = {self.reduced_scattering_per_m}"
            )

    @property
    def D_m(self) -> float:
        """Diffusion coefficient D = 1 / (3 (mu_a + mu_s')) in m."""
        return 1.0 / (3.0 * (self.absorption_per_m + self.reduced_scattering_per_m))

    @property
    def mu_eff_per_m(self) -> float:
        """Effective attenuation sqrt(mu_a / D) = sqrt(3 mu_a (mu_a + mu_s')) in 1/m."""
        return math.sqrt(self.absorption_per_m / self.D_m)

    @classmethod
    def per_mm(cls, mu_a_per_mm: float, mu_s_prime_per_mm: float) -> "OpticalProperties":
        return cls(1e3 * mu_a_per_mm, 1e3 * mu_s_prime_per_mm)


def diffusion_valid(props: OpticalProperties, ratio: float = 10.0) -> bool:
    """True when mu_s' >= ratio * mu_a, the usual condition for the diffusion approximation."""
    return props.reduced_scattering_per_m >= ratio * props.absorption_per_m


_mm = OpticalProperties.per_mm

# Cassano et al., Neurophotonics 2019, 6:015004, Table 1 (values there in 1/mm; stored in 1/m).
OPTICAL_TABLE: dict[int, dict[str, OpticalProperties]] = {
    980: {
        "white_matter": _mm(0.11, 3.72),  # Cassano 2019 Table 1, white matter 980 nm (mu_eff 1.12/mm)
        "grey_matter": _mm(0.052, 0.54),  # Cassano 2019 Table 1, grey matter 980 nm (mu_eff 0.30/mm)
        "skull": _mm(0.022, 1.73),  # Cassano 2019 Table 1, skull 980 nm (mu_eff 0.34/mm)
        "fat": _mm(0.0014, 0.99),  # Cassano 2019 Table 1, fat 980 nm (mu_eff 0.065/mm)
        "muscle": _mm(0.049, 0.58),  # Cassano 2019 Table 1, muscle 980 nm (mu_eff 0.30/mm)
        "csf": _mm(0.048, 0.01),  # Cassano 2019 Table 1, CSF 980 nm: diffusion approximation invalid
        # MODELLING CHOICES (no direct 980 nm measurement; docs/MODEL.md section 4b gives the
        # composition bounds and measured analogues behind each, optics_sources.OPTICAL_RANGES the
        # ranges), so that a spine case runs without optical keys; cases may override them:
        "cancellous_bone": _mm(0.040, 1.5),  # mineral scatters like skull, marrow blood/water absorb like muscle
        "tumour": _mm(0.049, 0.58),  # lytic metastasis as soft tissue: the muscle entry above
        "dura": _mm(0.040, 1.7),  # dense collagen: skull-like scattering, water absorption
        "disc": _mm(0.045, 1.0),  # water-rich collagen
    },
    1064: {
        "white_matter": _mm(0.105, 3.6),  # Cassano 2019 Table 1, white matter 1064 nm
        "skull": _mm(0.019, 1.61),  # Cassano 2019 Table 1, skull 1064 nm
        "fat": _mm(0.0054, 0.945),  # Cassano 2019 Table 1, fat 1064 nm
    },
}
# Stand-ins (docs/MODEL.md section 4): spinal cord uses white matter, cortical bone uses skull.
OPTICAL_ALIASES = {
    "spinal_cord": "white_matter",
    "cortical_bone": "skull",
    "epidural_fat": "fat",
    "cerebrospinal_fluid": "csf",
    "tumor": "tumour",
    "intervertebral_disc": "disc",
}

# Entries of OPTICAL_TABLE that are modelling choices rather than measurements (reported in the
# run's summary so nobody mistakes them for data).
MODELLING_CHOICES = {980: ("cancellous_bone", "tumour", "dura", "disc")}


def optical_properties(tissue: str, wavelength_nm: int = 980) -> OpticalProperties:
    """Default optical properties of a tissue (aliases resolved) at 980 or 1064 nm."""
    if wavelength_nm not in OPTICAL_TABLE:
        raise KeyError(f"no optical table at {wavelength_nm} nm; have {sorted(OPTICAL_TABLE)}")
    table = OPTICAL_TABLE[wavelength_nm]
    name = OPTICAL_ALIASES.get(tissue, tissue)
    if name not in table:
        raise KeyError(
            f"no default optical properties for '{tissue}' at {wavelength_nm} nm; have "
            f"{sorted(table)} (and aliases {sorted(OPTICAL_ALIASES)}); give them explicitly"
        )
    return table[name]
