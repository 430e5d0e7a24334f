"""Command-line overrides of case-file keys: ``bioheat run CASE --set KEY=VALUE``.

A KEY is a dotted path into the case's TOML tables with list indices, e.g.

    applicator[0].power_W=8
    tissues.epidural_fat.conductivity_W_per_mK=0.49
    geometry.tumour[0].center_m[1]=0.006
    light.model=kernel

VALUE is read as a TOML value (numbers, booleans, strings in quotes, arrays, inline tables); a
value that is not valid TOML is taken as a plain string, so ``light.model=kernel`` works without
quotes. Overrides are applied to the raw case data before validation, so an override is checked
exactly like the same value typed in the file, and error messages name the same keys.

Pure Python without project imports (no FEM stack): the case loader turns an OverrideError into
a CaseError.
"""

from __future__ import annotations

import copy
import difflib
import re
import tomllib
from typing import Any


# one path segment: a key, then any number of [index]
class OverrideError(ValueError):
    """A --set item that cannot be applied; the message names the item."""


_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)$")
_INDEX = re.compile(r"\[(\d+)\]")


def parse_path(path: str) -> list[str | int]:
    """Split ``a.b[0].c[1]`` into ``['a', 'b', 0, 'c', 1]``.

    Raises OverrideError when the path is not made of keys and ``[index]`` suffixes."""
    if not path:
        raise OverrideError("--set: empty key (expected KEY=VALUE, e.g. applicator[0].power_W=8)")
    parts: list[str | int] = []
    for seg in path.split("."):
        m = _SEGMENT.match(seg)
        if m is None:
            raise OverrideError(
                f"--set {path}: '{seg}' is not a key (letters, digits, '_') optionally followed by "
                "[index], e.g. geometry.tumour[0].center_m[1]"
            )
        parts.append(m.group(1))
        parts.extend(int(i) for i in _INDEX.findall(m.group(2)))
    return parts


def parse_value(text: str) -> Any:
    """A TOML value, or the text itself when it is not one (``kernel`` -> 'kernel')."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _show(parts: list[str | int], upto: int) -> str:
    out = ""
    for p in parts[:upto]:
        out += f"[{p}]" if isinstance(p, int) else ("." if out else "") + p
    return out or "<case>"


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at the dotted ``path`` inside ``data`` (in place).

    Missing tables on the way are created (``tissues.fat.k`` without a ``[tissues]`` table);
    list indices must exist. Raises OverrideError naming the path and what is there."""
    parts = parse_path(path)
    node: Any = data
    for i, key in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(key, int):
            if not isinstance(node, list):
                raise OverrideError(f"--set {path}: {_show(parts, i)} is not a list, cannot index [{key}]")
            if key >= len(node):
                raise OverrideError(
                    f"--set {path}: {_show(parts, i)} has {len(node)} entr{'y' if len(node) == 1 else 'ies'}, "
                    f"no index {key}"
                )
            node = node[key]
        else:
            if not isinstance(node, dict):
                raise OverrideError(f"--set {path}: {_show(parts, i)} is not a table, cannot hold '{key}'")
            if key not in node:
                if isinstance(nxt, int):
                    close = difflib.get_close_matches(key, [str(k) for k in node], n=1, cutoff=0.6)
                    hint = f" (did you mean '{close[0]}'?)" if close else ""
                    raise OverrideError(
                        f"--set {path}: {_show(parts, i + 1)} is not in the case{hint}, cannot index [{nxt}]"
                    )
                node[key] = {}
            node = node[key]
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list):
            raise OverrideError(f"--set {path}: {_show(parts, len(parts) - 1)} is not a list, cannot index [{last}]")
        if last >= len(node):
            raise OverrideError(
                f"--set {path}: {_show(parts, len(parts) - 1)} has {len(node)} entries, no index {last}"
            )
        node[last] = value
    else:
        if not isinstance(node, dict):
            raise OverrideError(f"--set {path}: {_show(parts, len(parts) - 1)} is not a table, cannot hold '{last}'")
        node[last] = value


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """A copy of ``data`` with every ``KEY=VALUE`` of ``overrides`` applied in order.

    Raises OverrideError for an item without ``=`` or a path that cannot be set."""
    if not overrides:
        return data
    out = copy.deepcopy(data)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise OverrideError(f"--set {item!r}: expected KEY=VALUE, e.g. applicator[0].power_W=8")
        set_path(out, key.strip(), parse_value(text.strip()))
    return out
