"""Spine cases short enough to sweep: default region tissues, default (modelling-choice)
optics, and the applicator placed on the transpedicular track by `track`, `side` and
`tip_to_dura_m` (solver.config, meshes.spine_dimensions). No mesh is built here."""

from __future__ import annotations

import pytest

from meshes import spine_dimensions as sd
from solver.config import SPINE_DEFAULT_TISSUES, CaseError
from solver.case_loader import parse_case


def _case(level="T6", **applicator) -> dict:
    ap = {"track": "transpedicular", "power_W": 6.0}
    ap.update(applicator)
    return {
        "name": "short",
        "geometry": {
            "kind": "spine",
            "level": level,
            "tumour": [{"name": "tumour", "center_m": [0.004, 0.005, 0.0], "semi_axes_m": [0.005, 0.004, 0.005]}],
        },
        "applicator": [ap],
    }


def test_a_level_a_tumour_and_an_applicator_is_a_case():
    case = parse_case(_case())
    assert case.regions == {**SPINE_DEFAULT_TISSUES, "tumour": "tumour"}
    tissues = case.resolved_tissues()
    # every region has optics; the four without a measurement are marked as modelling choices
    assert all(t.absorption_per_m and t.reduced_scattering_per_m for t in tissues.values())
    marked = sorted(r for r, t in tissues.items() if "modelling choice" in t.source)
    assert marked == ["cancellous_bone", "disc_lower", "disc_upper", "dura", "posterior_elements", "tumour"]
    assert "modelling choice" not in tissues["spinal_cord"].source  # white matter, Cassano 2019


def test_regions_given_override_the_defaults():
    data = _case()
    data["regions"] = {"epidural_fat": "muscle"}
    case = parse_case(data)
    assert case.regions["epidural_fat"] == "muscle" and case.regions["dura"] == "dura"


@pytest.mark.parametrize(
    "level, gap_mm", [("T2", 6.5), ("T4", 7.0), ("T6", 6.0), ("T8", 6.0), ("T8", 8.0), ("T10", 7.0), ("T12", 8.0)]
)
@pytest.mark.parametrize("side", ["left", "right"])
def test_track_places_the_tip_at_the_requested_distance_from_the_dura(level, gap_mm, side):
    case = parse_case(_case(level, side=side, tip_to_dura_m=gap_mm * 1e-3))
    ap = case.applicator[0]
    d = sd.check_track(case.geometry, ap.entry_m, ap.tip_end_m, ap.catheter_radius_m, ap.tip_length_m)
    assert d.dura_m == pytest.approx(gap_mm * 1e-3, abs=1e-6)  # bisection to ~1e-11 m; polygonal dura
    assert (ap.tip_end_m[0] > 0) == (side == "left")  # x points to the patient's left


@pytest.mark.parametrize("level, gap_mm, closest_mm", [("T8", 5.0, 5.86), ("T12", 7.0, 7.33)])
def test_a_distance_the_track_cannot_reach_is_refused_with_the_closest_one(level, gap_mm, closest_mm):
    with pytest.raises(CaseError) as err:
        parse_case(_case(level, tip_to_dura_m=gap_mm * 1e-3))
    assert f"comes no closer than {closest_mm:.2f} mm" in str(err.value)


def test_without_a_distance_T12_keeps_the_tip_2mm_inside_the_wall():
    case = parse_case(_case("T12"))  # 6 mm cannot be reached: the helper's default placement
    ap = case.applicator[0]
    d = sd.check_track(case.geometry, ap.entry_m, ap.tip_end_m, ap.catheter_radius_m, ap.tip_length_m)
    entry, end = sd.transpedicular_track(case.geometry, "left")
    assert list(ap.tip_end_m) == pytest.approx(list(end), abs=1e-12) and d.dura_m > 0.006


def test_default_distance_is_6mm_and_resolved_case_reruns_unchanged():
    case = parse_case(_case("T8"))
    ap = case.applicator[0]
    d = sd.check_track(case.geometry, ap.entry_m, ap.tip_end_m, ap.catheter_radius_m, ap.tip_length_m)
    assert d.dura_m == pytest.approx(0.006, abs=1e-6)
    again = parse_case(case.resolved_dict())  # track + computed points: accepted, same points
    assert again.applicator[0].tip_end_m == ap.tip_end_m and again.hash() == case.hash()
    moved = case.resolved_dict()
    moved["applicator"][0]["tip_end_m"][1] += 0.001
    with pytest.raises(CaseError, match=r"applicator\[0\].tip_end_m .* differs from the transpedicular track"):
        parse_case(moved)


@pytest.mark.parametrize(
    "change, words",
    [
        ({"tip_to_dura_m": 0.0005}, ["tip_to_dura_m", "comes no closer than"]),
        ({"tip_to_dura_m": 0.025}, ["tip_to_dura_m", "at most"]),
        ({"tip_center_m": [0, 0, 0]}, ["give track or tip_center_m"]),
        ({"side": "up"}, ["applicator[0].side", "left", "right"]),
    ],
)
def test_bad_track_inputs_are_refused(change, words):
    with pytest.raises(CaseError) as err:
        parse_case(_case("T8", **change))
    for w in words:
        assert w in str(err.value)


def test_track_and_distance_need_a_spine():
    data = {
        "name": "box",
        "geometry": {"kind": "box", "lower_m": [-0.02] * 3, "upper_m": [0.02] * 3, "mesh_size_m": 0.005},
        "regions": {"body": "muscle"},
        "applicator": [{"track": "transpedicular", "power_W": 5.0}],
    }
    with pytest.raises(CaseError, match="needs geometry.kind = 'spine'"):
        parse_case(data)
    data["applicator"] = [{"tip_center_m": [0, 0, 0], "direction": [0, 0, 1], "tip_to_dura_m": 0.006, "power_W": 5.0}]
    with pytest.raises(CaseError, match="tip_to_dura_m needs track"):
        parse_case(data)


# ------------------------------------------------------------------ geometry.resolution


def test_resolution_levels_set_the_four_sizes_and_explicit_sizes_override():
    from solver.config import SPINE_RESOLUTIONS

    # the default level is the sizes the shipped cases were built with
    g = parse_case(_case()).geometry
    assert g.resolution == "standard"
    assert (g.mesh_size_m, g.tip_size_m, g.cortex_size_m, g.cord_size_m) == (0.005, 0.0008, 0.001, 0.001)
    for level, sizes in SPINE_RESOLUTIONS.items():
        data = _case()
        data["geometry"]["resolution"] = level
        g = parse_case(data).geometry
        assert {k: getattr(g, k) for k in sizes} == sizes
    # finer levels are finer in every size
    std, med, fine = (SPINE_RESOLUTIONS[k] for k in ("standard", "medium", "fine"))
    assert all(fine[k] <= med[k] <= std[k] for k in std) and fine != med != std
    data = _case()
    data["geometry"].update(resolution="fine", tip_size_m=0.0005)
    g = parse_case(data).geometry
    assert g.tip_size_m == 0.0005 and g.cord_size_m == SPINE_RESOLUTIONS["fine"]["cord_size_m"]


def test_an_unknown_resolution_is_refused_naming_the_key_and_the_levels():
    data = _case()
    data["geometry"]["resolution"] = "ultra"
    with pytest.raises(CaseError) as err:
        parse_case(data)
    msg = str(err.value)
    assert "geometry.resolution" in msg and "'ultra'" in msg and "'fine'" in msg
