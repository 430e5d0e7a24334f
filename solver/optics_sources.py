"""Sources and uncertainty ranges of the default optical properties (pure data, no FEM imports).

``OPTICAL_RANGES[wavelength_nm][tissue][quantity] = (low, nominal, high, source)`` with quantity
``"absorption_per_m"`` (mu_a) or ``"reduced_scattering_per_m"`` (mu_s'), all in 1/m, for every
entry of ``solver.optics.OPTICAL_TABLE``. The nominal value equals the table's default; low and
high bound the plausible range for an uncertainty study (the sweep draws from them). The source
string says where the nominal comes from and how the range was obtained; docs/MODEL.md section
4b has the same table with the reasoning.

How the ranges were built (docs/MODEL.md section 4b):

- Measured entries (Cassano et al., Neurophotonics 2019, 6:015004, Table 1, itself a compilation
  of ex vivo measurements): the nominal is the table's value; the range is the spread between
  ex vivo and in vivo measurements of the same tissue that reviews report in the near infrared
  (Jacques, Phys Med Biol 2013, 58:R37; Sandell and Zhu, J Biophotonics 2011, 4:773): a factor
  of 2 on mu_a (blood content and oxygenation change between living and excised tissue) and
  -30 % / +40 % on mu_s'. These are stated assumptions, not per-tissue measurements.
- Absorption at 980 nm of tissues without a measurement (cancellous bone with marrow, tumour,
  dura, disc) is bounded from their composition: mu_a = sum of volume fraction x chromophore
  absorption, with water 0.045/mm at 980 nm (Hale and Querry, Appl Opt 1973, 12:555), whole
  blood 0.5 to 0.6/mm at 980 nm (Bosschaart et al., Lasers Med Sci 2014, 29:453) and lipid
  about 0.01/mm (van Veen et al., J Biomed Opt 2005, 10:054004).
- Reduced scattering of those tissues is bounded by measured analogues: bone (pig skull, Firbank
  et al., Phys Med Biol 1993, 38:503; calcaneus in vivo, Pifferi et al., J Biomed Opt 2004,
  9:474: about 1 to 2.5/mm at 900 to 1000 nm), collagen-rich dermis for dura (Bashkatov et al.,
  J Phys D 2005, 38:2543: about 1 to 2.5/mm near 1000 nm), cartilage for disc (Bergmann et al.,
  Photonics 2021, 8:365, porcine cartilage, 400 to 1400 nm) and soft tissue / tumours in vivo
  for tumour (Sandell and Zhu 2011).
"""

from __future__ import annotations

# Chromophore absorption at 980 nm (1/m) used for the composition bounds above.
WATER_ABSORPTION_980_PER_M = 45.0  # Hale and Querry 1973 (0.43-0.48/cm between 975 and 985 nm)
BLOOD_ABSORPTION_980_PER_M = (500.0, 600.0)  # whole blood, Bosschaart et al. 2014

_CASSANO = "Cassano et al. 2019 Neurophotonics 6:015004 Table 1"
_SPREAD = ("range: assumed ex vivo / in vivo spread of NIR measurements, x0.5..x2 on mu_a, "
           "-30%..+40% on mu_s' (Jacques 2013 PMB 58:R37; Sandell and Zhu 2011 J Biophotonics 4:773)")


def _measured(mu_a_per_m: float, mu_s_per_m: float, what: str) -> dict[str, tuple]:
    """Cassano entry with the assumed generic spread (see the module docstring)."""
    src = f"{_CASSANO}, {what}; {_SPREAD}"
    return {
        "absorption_per_m": (0.5 * mu_a_per_m, mu_a_per_m, 2.0 * mu_a_per_m, src),
        "reduced_scattering_per_m": (0.7 * mu_s_per_m, mu_s_per_m, 1.4 * mu_s_per_m, src),
    }


OPTICAL_RANGES: dict[int, dict[str, dict[str, tuple[float, float, float, str]]]] = {
    980: {
        "white_matter": _measured(110.0, 3720.0, "white matter 980 nm"),
        "grey_matter": _measured(52.0, 540.0, "grey matter 980 nm"),
        "skull": _measured(22.0, 1730.0, "skull 980 nm"),
        "fat": _measured(1.4, 990.0, "fat 980 nm"),
        "muscle": _measured(49.0, 580.0, "muscle 980 nm"),
        "csf": {
            "absorption_per_m": (
                43.0, 48.0, 50.0,
                f"{_CASSANO}, CSF 980 nm; range: pure water 975-985 nm (Hale and Querry 1973 Appl Opt 12:555)"),
            "reduced_scattering_per_m": (
                0.0, 10.0, 100.0,
                f"{_CASSANO}, CSF 980 nm; range: clear fluid, up to 0.1/mm with cells or blood (assumed)"),
        },
        "cancellous_bone": {
            "absorption_per_m": (
                25.0, 40.0, 100.0,
                "composition bound: 80% marrow (fatty to red: 20-60% water, 2-15% blood, rest lipid) "
                "with water 0.045/mm (Hale and Querry 1973), blood 0.5-0.6/mm (Bosschaart 2014 LMS "
                "29:453), lipid 0.01/mm (van Veen 2005 JBO 10:054004); nominal kept at 0.040/mm "
                "(red marrow with 10% blood gives about 0.06/mm)"),
            "reduced_scattering_per_m": (
                1000.0, 1500.0, 2500.0,
                "bone analogues near 980 nm: pig skull (Firbank 1993 PMB 38:503; Cassano skull "
                "1.73/mm), calcaneus in vivo 1-1.5/mm (Pifferi 2004 JBO 9:474)"),
        },
        "tumour": {
            "absorption_per_m": (
                30.0, 49.0, 100.0,
                "nominal: soft tissue (Cassano 2019 muscle 980 nm); range: composition bound 70-80% "
                "water (0.032-0.036/mm) plus 0-12% blood (Bosschaart 2014): lytic metastases are "
                "often hypervascular (renal, thyroid)"),
            "reduced_scattering_per_m": (
                400.0, 580.0, 1500.0,
                "nominal: soft tissue (Cassano 2019 muscle 980 nm); range: in vivo NIR tumour and "
                "soft-tissue values (Sandell and Zhu 2011 J Biophotonics 4:773)"),
        },
        "dura": {
            "absorption_per_m": (
                30.0, 40.0, 70.0,
                "composition bound: dense collagen with 65-75% water (Hale and Querry 1973) plus "
                "0-5% blood (Bosschaart 2014)"),
            "reduced_scattering_per_m": (
                1000.0, 1700.0, 2500.0,
                "collagen-rich dermis near 1000 nm, about 1-2.5/mm (Bashkatov 2005 J Phys D 38:2543)"),
        },
        "disc": {
            "absorption_per_m": (
                32.0, 45.0, 60.0,
                "composition bound: 70-85% water (Hale and Querry 1973), avascular (plus up to 2% "
                "blood at the end plates, Bosschaart 2014)"),
            "reduced_scattering_per_m": (
                500.0, 1000.0, 2000.0,
                "cartilage analogue (Bergmann 2021 Photonics 8:365, porcine cartilage 400-1400 nm)"),
        },
    },
    1064: {
        "white_matter": _measured(105.0, 3600.0, "white matter 1064 nm"),
        "skull": _measured(19.0, 1610.0, "skull 1064 nm"),
        "fat": _measured(5.4, 945.0, "fat 1064 nm"),
    },
}

QUANTITIES = ("absorption_per_m", "reduced_scattering_per_m")


def optical_range(tissue: str, quantity: str, wavelength_nm: int = 980) -> tuple[float, float, float, str]:
    """(low, nominal, high, source) of one default optical constant, in 1/m; aliases resolved.

    Raises KeyError for an unknown wavelength, tissue or quantity.
    """
    from .optics import OPTICAL_ALIASES

    name = OPTICAL_ALIASES.get(tissue, tissue)
    return OPTICAL_RANGES[wavelength_nm][name][quantity]
