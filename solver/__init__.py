"""spine-litt: finite-element Pennes bioheat engine for spinal laser interstitial thermal therapy."""

__version__ = "0.1.0"
