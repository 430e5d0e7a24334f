"""scripts/csf_light_share.py: the per-region absorbed light adds up to the light problem's own
energy balance (docs/MODEL.md section 2b uses its shares for the T8 case)."""

from __future__ import annotations

import importlib.util

import pytest

from ..conftest import CASES, ROOT

pytestmark = pytest.mark.mpi


def test_region_shares_add_up_to_the_energy_balance():
    spec = importlib.util.spec_from_file_location("csf_light_share", ROOT / "scripts" / "csf_light_share.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    coarse = ["geometry.refinement[0].size_m=0.0008"]
    shares = mod.region_shares(str(CASES / "validation" / "marqa2011_rat_prostate.toml"), coarse)
    balance = shares.pop("_balance")
    total = sum(s["absorbed_W_per_W"] for s in shares.values())
    assert total == pytest.approx(balance["absorbed_W"], rel=1e-8)
    assert total + balance["boundary_loss_W"] == pytest.approx(1.0, rel=1e-8)
    # the tumour (10 mm ball around the 10 mm tip) takes most of the light: mu_eff 0.3/mm
    assert shares["tumour"]["absorbed_W_per_W"] > 0.6
    # the meshed ball is an inscribed polyhedron: 4.3 % smaller than 4/3 pi r^3 on this mesh
    ball = 4.0 / 3.0 * 3.141592653589793 * 0.01**3
    assert 0.93 * ball < shares["tumour"]["volume_m3"] < ball
    for s in shares.values():
        assert s["max_fluence_W_per_m2"] >= s["mean_fluence_W_per_m2"] > 0.0
