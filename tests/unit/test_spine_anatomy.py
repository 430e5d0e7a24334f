"""The per-level anatomy table cites its sources (docs/MODEL.md section 5) and reproduces the
published values at the levels the papers report; the cord lies anteriorly in the dural sac;
the anterior epidural content is a case choice. Pure Python (no mesh)."""

from __future__ import annotations

import pytest

from meshes import spine_dimensions as sd
from solver.case_loader import parse_case
from solver.config import ANTERIOR_EPIDURAL_TISSUES, SpineGeometry

MM = 1e-3


def test_every_column_names_its_source():
    assert set(sd.LEVEL_COLUMNS) | set(sd.CanalContents._fields) <= set(sd.COLUMN_SOURCES)
    for name, text in sd.COLUMN_SOURCES.items():
        # a paper (with year) or the statement that the value is derived / not re-checked
        assert any(str(y) in text for y in range(1985, 2025)) or "derived" in text or "contents" in text, name
    for name in ("endplate_width", "endplate_depth", "pedicle_width", "pedicle_height", "canal_width"):
        assert "not re-checked here" in sd.COLUMN_SOURCES[name]


@pytest.mark.parametrize(
    "level, column, published",
    [
        ("T2", "body_height", 17.59), ("T9", "body_height", 20.46),  # Egwu 2019
        ("T4", "pedicle_angle_deg", 23.4), ("T12", "pedicle_angle_deg", 3.5),  # CT series
    ],
)
def test_table_values_at_the_published_levels(level, column, published):
    assert sd.level_dimensions(level)[column] == pytest.approx(published, abs=1e-9)


@pytest.mark.parametrize(
    "level, field, published",
    [
        ("T2", "csf_posterior", 3.9), ("T5", "csf_posterior", 5.8), ("T10", "csf_posterior", 4.1),  # Imbelloni 2010
        ("T5", "cord_transverse", 7.9), ("T5", "cord_ap", 6.1), ("T9", "cord_transverse", 7.3),  # Lee 1988
        ("T9", "cord_ap", 6.3), ("T12", "cord_transverse", 9.4),  # Lee 1988; Frostell 2016 (segment L3)
        ("T2", "lamina_thickness", 6.6), ("T9", "lamina_thickness", 7.3),  # Egwu 2019
        ("T9", "sac_inner_ap", 11.6),  # Lee 1988
    ],
)
def test_canal_contents_at_the_published_levels(level, field, published):
    assert getattr(sd.CANAL_CONTENTS[level], field) == pytest.approx(published, abs=1e-9)


@pytest.mark.parametrize("level", list(sd.LEVELS))
def test_cord_lies_anteriorly_in_the_sac(level):
    c = sd.CANAL_CONTENTS[level]
    assert sd.ANTERIOR_CSF_MIN_M / MM - 1e-9 <= c.csf_anterior < c.csf_posterior
    assert c.csf_anterior + c.cord_ap + c.csf_posterior == pytest.approx(c.sac_inner_ap, abs=1e-9)
    lay = sd.layout(SpineGeometry(kind="spine", level=level))
    front = (lay.cord.cy - lay.cord.by) - (lay.csf.cy - lay.csf.by)
    back = (lay.csf.cy + lay.csf.by) - (lay.cord.cy + lay.cord.by)
    assert front == pytest.approx(c.csf_anterior * MM, abs=1e-12)
    assert back == pytest.approx(c.csf_posterior * MM, abs=1e-12)
    assert 2 * lay.cord.ax == pytest.approx(c.cord_transverse * MM) and 2 * lay.cord.by == pytest.approx(c.cord_ap * MM)
    # the canal holds its contents: anterior layer, dura, sac, dura, at least 2.5 mm of fat behind
    behind = (lay.canal.cy + lay.canal.by) - (lay.dura.cy + lay.dura.by)
    assert behind >= sd.EPIDURAL_POSTERIOR_M - 1e-12
    assert (lay.dura.cy - lay.dura.by) - lay.canal.y_min == pytest.approx(sd.EPIDURAL_ANTERIOR_M, abs=1e-12)


def test_T8_numbers():
    """T8 (the shipped cases): cord 7.45 x 6.25 mm, 0.75 mm CSF in front, 4.78 mm behind (the
    old model: 10 x 8 mm, centred, 1.25 mm in front)."""
    c = sd.CANAL_CONTENTS["T8"]
    assert (c.cord_transverse, c.cord_ap) == pytest.approx((7.45, 6.25))
    assert c.csf_anterior == pytest.approx(0.745) and c.csf_posterior == pytest.approx(4.78)


def test_anterior_epidural_region_and_its_default_tissue():
    g = SpineGeometry(kind="spine", level="T8")
    lay = sd.layout(g)
    front = (0.0, lay.canal.y_min + 0.5 * sd.EPIDURAL_ANTERIOR_M, 0.0)
    behind = (0.0, lay.canal.cy + lay.canal.by - 1e-3, 0.0)
    assert sd.region_at(g, front, lay) == "epidural_anterior"
    assert sd.region_at(g, behind, lay) == "epidural_fat"
    assert g.anterior_epidural == "ligament_venous" and g.cortical_thickness_m == 0.00035
    assert "epidural_anterior" in g.region_names()

    def regions(**geometry):
        return parse_case({"name": "t", "geometry": {"kind": "spine", "level": "T8", **geometry},
                           "regions": geometry.pop("_regions", {})}).regions

    assert regions()["epidural_anterior"] == ANTERIOR_EPIDURAL_TISSUES["ligament_venous"] == "muscle"
    assert regions(anterior_epidural="fat")["epidural_anterior"] == "fat"
    assert regions()["epidural_fat"] == "fat"
    explicit = parse_case({"name": "t", "geometry": {"kind": "spine", "level": "T8", "anterior_epidural": "fat"},
                           "regions": {"epidural_anterior": "dura"}}).regions
    assert explicit["epidural_anterior"] == "dura"  # [regions] wins over the geometry's choice


def test_anterior_epidural_choice_is_checked():
    from solver.config import CaseError

    with pytest.raises(CaseError) as err:
        parse_case({"name": "t", "geometry": {"kind": "spine", "level": "T8", "anterior_epidural": "blood"},
                    "regions": {}})
    assert "anterior_epidural" in str(err.value) and "ligament_venous" in str(err.value)
