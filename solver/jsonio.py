"""Strict JSON for everything the project writes (RFC 8259: no NaN, Infinity or -Infinity).

A number that does not exist (no ablation zone, hence no margin; a control event that has
no temperature) is written as null. Producers are expected to put None there themselves;
``strict`` is the last guard, so that a non-finite float never reaches a file as a token
that strict parsers reject.
"""

from __future__ import annotations

import json
import math
from typing import Any


def strict(value: Any) -> Any:
    """A copy of ``value`` with numpy scalars/arrays made plain and non-finite floats None."""
    if isinstance(value, dict):
        return {str(k): strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy scalar/array
        return strict(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value: Any, **kwargs) -> str:
    """json.dumps of strict(value), refusing any remaining NaN/Infinity (allow_nan=False)."""
    return json.dumps(strict(value), allow_nan=False, **kwargs)
