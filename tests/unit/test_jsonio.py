"""Strict JSON: what the project writes must parse with a strict (RFC 8259) parser."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from solver.jsonio import dumps, strict


def _reject(name):
    raise ValueError(name)


def test_non_finite_numbers_become_null_and_numpy_becomes_plain():
    data = {
        "margin_m": -math.inf,
        "max_cem43_min": math.inf,
        "event": {"temperature_C": math.nan, "limit_C": None},
        "numbers": np.array([1.0, np.inf, np.nan]),
        "count": np.int64(3),
        "value": np.float64(2.5),
        "where": (0.1, 0.2, 0.3),
    }
    text = dumps(data)
    back = json.loads(text, parse_constant=_reject)
    assert back == {
        "margin_m": None,
        "max_cem43_min": None,
        "event": {"temperature_C": None, "limit_C": None},
        "numbers": [1.0, None, None],
        "count": 3,
        "value": 2.5,
        "where": [0.1, 0.2, 0.3],
    }
    assert strict(1.5) == 1.5 and strict("Infinity") == "Infinity"


def test_plain_json_dumps_would_not_be_strict():
    """Why the guard exists: the standard library writes Infinity by default."""
    with pytest.raises(ValueError):
        json.loads(json.dumps({"x": math.inf}), parse_constant=_reject)
