"""Hostile inputs (issue 10): referenced files are confined to the case's folder (or a data
folder) and refused by path without being read; odd encodings, deep nesting, absurd numbers and
huge schedules give a short CaseError, never a traceback or a file's content. Rank-local."""

from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path

import pytest
import tomli_w

from solver.case_loader import load_case
from solver.errors import CaseError
from solver.inputs import DATA_DIRS_ENV, MAX_NESTING

ROOT = Path(__file__).resolve().parents[2]
LASER = ROOT / "cases" / "laser_980nm_15W_muscle.toml"
SLAB = ROOT / "cases" / "verification" / "slab_steady.toml"
SECRET = "TOP-SECRET-CONTENT-42"


@pytest.fixture
def laser() -> dict:
    with open(LASER, "rb") as fh:
        return tomllib.load(fh)


def _with_csv(folder: Path, data: dict, ref: str) -> Path:
    data = copy.deepcopy(data)
    ap = data["applicator"][0]
    ap.pop("schedule", None)
    ap.pop("power_W", None)
    ap["schedule_csv"] = ref
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "case.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def _outside_file(tmp_path: Path) -> Path:
    secret = tmp_path / "elsewhere" / "secret.csv"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text(f"time_s,power_W\n0,{SECRET}\n")
    return secret


@pytest.mark.parametrize(
    "ref",
    ["/etc/shadow", "/etc/passwd", "/proc/self/environ", "../../../../../../etc/passwd", "../elsewhere/secret.csv",
     "ABSOLUTE_SECRET", "LINK"],
)
def test_referenced_files_outside_the_case_folder_are_refused_unread(tmp_path, laser, ref, monkeypatch):
    secret = _outside_file(tmp_path)
    case_dir = tmp_path / "case"
    case_dir.mkdir()
    if ref == "ABSOLUTE_SECRET":
        ref = str(secret)
    if ref == "LINK":
        (case_dir / "power.csv").symlink_to(secret)
        ref = "power.csv"
    monkeypatch.setenv("SPINE_LITT_TEST_SECRET", SECRET)  # would show up if /proc/self/environ were echoed
    path = _with_csv(case_dir, laser, ref)
    with pytest.raises(CaseError) as info:
        load_case(path)
    msg = str(info.value)
    assert "outside the case's folder" in msg and "applicator[0].schedule_csv" in msg
    assert SECRET not in msg and "root:" not in msg and len(msg) < 1000


def test_geometry_path_is_confined_too(tmp_path):
    case_dir = tmp_path / "case"
    case_dir.mkdir()
    data = {"name": "f", "geometry": {"kind": "file", "path": "/etc/passwd"}, "regions": {"a": "muscle"}}
    path = case_dir / "case.toml"
    path.write_text(tomli_w.dumps(data))
    with pytest.raises(CaseError, match="geometry.path.*outside the case's folder") as info:
        load_case(path)
    assert "root:" not in str(info.value)


def test_data_folder_allows_files_outside(tmp_path, laser, monkeypatch):
    secret = tmp_path / "elsewhere" / "power.csv"
    secret.parent.mkdir(parents=True)
    secret.write_text("time_s,power_W\n0,5\n120,0\n")
    path = _with_csv(tmp_path / "case", laser, str(secret))
    with pytest.raises(CaseError, match="outside"):
        load_case(path)
    monkeypatch.setenv(DATA_DIRS_ENV, str(secret.parent))
    assert load_case(path).applicator[0].schedule == [(0.0, 5.0), (120.0, 0.0)]


def test_csv_errors_name_the_line_not_its_content(tmp_path, laser):
    case_dir = tmp_path / "case"
    case_dir.mkdir()
    (case_dir / "power.csv").write_text(f"time_s,power_W\n0,5\n10,{SECRET}\n")
    with pytest.raises(CaseError, match="line 3") as info:
        load_case(_with_csv(case_dir, laser, "power.csv"))
    assert SECRET not in str(info.value)
    (case_dir / "power.csv").write_bytes(b"time_s,power_W\n0,5\n10,\xff\xfe\n")
    with pytest.raises(CaseError, match="not UTF-8"):
        load_case(_with_csv(case_dir, laser, "power.csv"))
    (case_dir / "power.csv").write_bytes("\ufefftime_s,power_W\n0,5\n120,0\n".encode())
    assert load_case(_with_csv(case_dir, laser, "power.csv")).applicator[0].schedule[0] == (0.0, 5.0)
    (case_dir / "power.csv").write_text("time_s,power_W\n0,nan\n")
    with pytest.raises(CaseError, match="finite"):
        load_case(_with_csv(case_dir, laser, "power.csv"))


def test_huge_schedule_errors_stay_short(tmp_path, laser):
    n = 200_000
    rows = "\n".join(f"{i},{1.0}" for i in range(n)) + "\n5,1\n"  # times stop increasing at the end
    case_dir = tmp_path / "case"
    case_dir.mkdir()
    (case_dir / "power.csv").write_text("time_s,power_W\n" + rows)
    with pytest.raises(CaseError) as info:
        load_case(_with_csv(case_dir, laser, "power.csv"))
    assert len(str(info.value)) < 2000
    data = copy.deepcopy(laser)
    data["applicator"][0]["schedule"] = [[float(i), -1.0] for i in range(n)]
    path = tmp_path / "inline.toml"
    path.write_text(tomli_w.dumps(data))
    with pytest.raises(CaseError) as info:
        load_case(path)
    assert len(str(info.value)) < 2000


def _slab_text() -> str:
    return SLAB.read_text()


def test_encodings(tmp_path):
    p = tmp_path / "case.toml"
    p.write_bytes("\ufeff".encode() + _slab_text().encode())
    assert load_case(p).name  # a UTF-8 byte-order mark is accepted
    p.write_bytes(_slab_text().replace('name = "', 'name = "\xe9', 1).encode("latin-1"))
    with pytest.raises(CaseError, match="not UTF-8"):
        load_case(p)
    p.write_bytes(_slab_text().encode("utf-16"))
    with pytest.raises(CaseError, match="not UTF-8"):
        load_case(p)


@pytest.mark.parametrize(
    "text",
    [
        "a = " + "[" * 3000 + "]" * 3000,
        "a = " + "{b = " * 3000 + "1" + "}" * 3000,
        "[" + "a." * 3000 + "b]\nc = 1",
        "a = " + "[" * (MAX_NESTING + 2) + "]" * (MAX_NESTING + 2),
    ],
)
def test_deep_nesting(tmp_path, text):
    p = tmp_path / "case.toml"
    p.write_text(text)
    with pytest.raises(CaseError, match="nested too deeply"):
        load_case(p)


@pytest.mark.parametrize(
    "section, key, value, expect",
    [
        ("time", "dt_s", 5e-324, "steps"),
        ("time", "dt_s", 1e-300, "steps"),
        ("time", "end_time_s", 1e300, "steps"),
        ("time", "end_time_s", 5.0, "not a whole number of steps"),
        ("solver", "max_iterations", 1e20, "max_iterations"),
        ("solver", "max_iterations", 10**30, "max_iterations"),
        ("solver", "rtol", float("nan"), "rtol"),
    ],
)
def test_absurd_numbers_are_refused(tmp_path, section, key, value, expect):
    data = tomllib.loads(_slab_text())
    data.setdefault("time", {}).update({"mode": "transient", "dt_s": 2.0, "end_time_s": 10.0})
    data.setdefault(section, {})[key] = value
    p = tmp_path / "case.toml"
    p.write_text(tomli_w.dumps(data))
    with pytest.raises(CaseError, match=expect) as info:
        load_case(p)
    assert len(str(info.value)) < 1000


def test_end_time_not_a_multiple_suggests_the_neighbours(tmp_path):
    data = tomllib.loads(_slab_text())
    data["time"] = {"mode": "transient", "dt_s": 2.0, "end_time_s": 5.0}
    p = tmp_path / "case.toml"
    p.write_text(tomli_w.dumps(data))
    with pytest.raises(CaseError) as info:
        load_case(p)
    assert "2.5 steps" in str(info.value) and "end_time_s = 4 or 6" in str(info.value)
    data["time"]["end_time_s"] = 6.0
    p.write_text(tomli_w.dumps(data))
    assert load_case(p).time.num_steps == 3
    # a multiple up to round-off is accepted (0.1 is not exact in binary)
    data["time"].update(dt_s=0.1, end_time_s=0.3)
    p.write_text(tomli_w.dumps(data))
    assert load_case(p).time.num_steps == 3


def test_provenance_hashes_the_referenced_files(tmp_path, laser):
    from solver.provenance import referenced_files, sha256_file

    case_dir = tmp_path / "case"
    case_dir.mkdir()
    (case_dir / "power.csv").write_text("time_s,power_W\n0,5\n120,0\n")
    case = load_case(_with_csv(case_dir, laser, "power.csv"))
    files = referenced_files(case)
    entry = files["applicator[0].schedule_csv"]
    assert entry["path"] == str(case_dir / "power.csv")
    assert entry["sha256"] == sha256_file(case_dir / "power.csv") and len(entry["sha256"]) == 64
    (case_dir / "power.csv").write_text("time_s,power_W\n0,6\n120,0\n")
    assert referenced_files(case)["applicator[0].schedule_csv"]["sha256"] != entry["sha256"]
