"""Property-based hostile-input tests (issue 10, hypothesis): random and mutated case files and
schedule CSVs either validate or raise the documented CaseError - never another exception, a
traceback or a message echoing a whole value.

Fixed seed (derandomize) and a bounded number of examples (30 per test; SPINE_LITT_FUZZ_EXAMPLES
raises it for a longer local search), so the module takes a few seconds
and gives the same result on every run.
"""

from __future__ import annotations

import copy
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from solver.case_loader import load_case  # noqa: E402
from solver.errors import CaseError  # noqa: E402
from solver.limits import check_limits  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CASE_FILES = sorted((ROOT / "cases").rglob("*.toml"))
BASES = {p.name: tomllib.loads(p.read_text()) for p in CASE_FILES}
MAX_MESSAGE = 5000

FUZZ = settings(
    derandomize=True,
    max_examples=int(__import__("os").environ.get("SPINE_LITT_FUZZ_EXAMPLES", "30")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# hostile values: wrong types, huge and tiny numbers, NaN/inf (as numbers and as strings),
# unicode and control characters, escaping paths, deep nesting
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 5e-324, 1e-300, 1e300, -1e300, 1e20, -1.0]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
)
texts = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "1e999", "", " ", "\x00", "\u202e", "é", "💥", "\x1b[31m",
                     "../../etc/passwd", "/etc/shadow", "/proc/self/environ", "..", "a" * 300]),
)
leaves = st.one_of(numbers, texts, st.booleans(), st.none())


def _nested(depth: int):
    v: Any = 1.0
    for _ in range(depth):
        v = [v]
    return v


hostile = st.one_of(
    leaves,
    st.lists(leaves, max_size=4),
    st.dictionaries(texts, leaves, max_size=3),
    st.integers(min_value=30, max_value=200).map(_nested),
)


def _paths(d: Any, prefix=()) -> list[tuple]:
    out = []
    if isinstance(d, dict):
        for k, v in d.items():
            out.append(prefix + (k,))
            out += _paths(v, prefix + (k,))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out.append(prefix + (i,))
            out += _paths(v, prefix + (i,))
    return out


def _set(d: Any, path: tuple, value: Any, delete: bool = False) -> None:
    for p in path[:-1]:
        d = d[p]
    if delete and isinstance(d, dict):
        del d[path[-1]]
    else:
        d[path[-1]] = value


def _toml_safe(v: Any) -> Any:
    """tomli_w cannot write None; the fuzz replaces it with an empty table."""
    if v is None:
        return {}
    if isinstance(v, list):
        return [_toml_safe(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _toml_safe(x) for k, x in v.items()}
    return v


def _check(path: Path) -> None:
    """The property: a Case (whose hash and limits can be computed) or a short CaseError."""
    try:
        case = load_case(path)
    except CaseError as err:
        msg = str(err)
        assert len(msg) < MAX_MESSAGE, len(msg)
        assert "Traceback" not in msg
        return
    case.hash()
    try:
        check_limits(case)
    except CaseError:
        pass


@FUZZ
@given(base=st.sampled_from(sorted(BASES)), data=st.data())
def test_mutated_cases_validate_or_raise_case_error(tmp_path, base, data):
    doc = copy.deepcopy(BASES[base])
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = _paths(doc)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        action = data.draw(st.sampled_from(["replace", "delete", "add"]), label="action")
        if action == "add":
            path = path[:-1] + (data.draw(texts, label="new key"),) if isinstance(path[-1], str) else path
        _set(doc, path, data.draw(hostile, label="value"), delete=(action == "delete"))
    try:
        text = tomli_w.dumps(_toml_safe(doc))
    except (TypeError, ValueError):
        return  # not representable as TOML (e.g. a key mixing table and value): nothing to load
    f = tmp_path / "case.toml"
    f.write_text(text, encoding="utf-8")
    _check(f)


@FUZZ
@given(doc=st.dictionaries(st.sampled_from(["name", "geometry", "regions", "time", "solver", "applicator",
                                            "source", "boundary", "probe", "tissues", "output", "x"]),
                           hostile, max_size=6))
def test_random_documents_validate_or_raise_case_error(tmp_path, doc):
    try:
        text = tomli_w.dumps(_toml_safe(doc))
    except (TypeError, ValueError):
        return
    f = tmp_path / "case.toml"
    f.write_text(text, encoding="utf-8")
    _check(f)


@FUZZ
@given(base=st.sampled_from(sorted(BASES)), data=st.data())
def test_mutated_bytes_validate_or_raise_case_error(tmp_path, base, data):
    raw = bytearray((ROOT / "cases").rglob(base).__next__().read_bytes())
    for _ in range(data.draw(st.integers(1, 8), label="flips")):
        i = data.draw(st.integers(0, len(raw) - 1), label="offset")
        raw[i] = data.draw(st.integers(0, 255), label="byte")
    if data.draw(st.booleans(), label="bom"):
        raw = bytearray(b"\xef\xbb\xbf") + raw
    f = tmp_path / "case.toml"
    f.write_bytes(bytes(raw))
    _check(f)


csv_cells = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), texts, st.integers().map(str))


@FUZZ
@given(
    header=st.one_of(st.just("time_s,power_W"), st.just("power_W,time_s,x"), texts),
    rows=st.lists(st.lists(csv_cells, min_size=0, max_size=3), max_size=12),
    raw_tail=st.binary(max_size=20),
)
def test_schedule_csvs_validate_or_raise_case_error(tmp_path, header, rows, raw_tail):
    doc = copy.deepcopy(BASES["laser_980nm_15W_muscle.toml"])
    ap = doc["applicator"][0]
    ap.pop("schedule", None)
    ap.pop("power_W", None)
    ap["schedule_csv"] = "power.csv"
    body = "\n".join([header] + [",".join(r) for r in rows]) + "\n"
    (tmp_path / "power.csv").write_bytes(body.encode("utf-8", "surrogatepass") + raw_tail)
    f = tmp_path / "case.toml"
    f.write_text(tomli_w.dumps(doc), encoding="utf-8")
    _check(f)
    try:
        case = load_case(f)
    except CaseError:
        return
    assert all(math.isfinite(t) and math.isfinite(p) for t, p in case.applicator[0].schedule)
