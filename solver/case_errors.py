"""Readable messages for a case that fails schema validation (pydantic ``ValidationError``).

Every message names the key path as the user writes it in TOML (``geometry.tip_size_m``,
``boundary[0].temperature_C``), the value and what is allowed. pydantic's error locations also
hold the tag of a discriminated union (``('geometry', 'spine', 'tip_size_m')``): which parts
are tags is read from the schema itself (:func:`walk_location`), so a location part is dropped
only where the model has a union, never because its text looks like a tag.

Pure Python (pydantic only): the root model is passed in, so this module does not import the
schema (:mod:`solver.config` imports this one).
"""

from __future__ import annotations

import copy
import re
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ValidationError

from .case_checks import did_you_mean
from .errors import CaseError, shorten

# A model validator's message that starts with a key relative to the model ('upper_m = ...',
# 'refinement[0].size_m = ...'): the formatter prefixes the model's location.
_RELATIVE_KEY = re.compile(r"^[A-Za-z_]\w*(\[\d+\])*(\.[A-Za-z_]\w*(\[\d+\])*)* = ")

_Node = type[BaseModel] | list[type[BaseModel]] | None  # a model, the members of a union, or unknown


def submodels(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside a field annotation (``X``, ``list[X]``, ``dict[str, X]``,
    ``X | None``, ``Annotated[Union[A, B], ...]``), in order, without repeats."""
    out: list[type[BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    for arg in typing.get_args(annotation):
        out.extend(submodels(arg))
    return [m for i, m in enumerate(out) if m not in out[:i]]


def union_tag(model: type[BaseModel]) -> tuple[str, tuple[str, ...]] | None:
    """(discriminator key, its allowed values) of a union member: its ``kind`` or ``type``
    field declared as a Literal; None for a model that is no union member."""
    for key in ("kind", "type"):
        field = model.model_fields.get(key)
        if field is not None and typing.get_origin(field.annotation) is typing.Literal:
            return key, tuple(str(v) for v in typing.get_args(field.annotation))
    return None


def union_tags(members: list[type[BaseModel]]) -> list[str]:
    """Every tag value of the members of a discriminated union, in declaration order."""
    return [t for m in members for t in (union_tag(m) or ("", ()))[1]]


def walk_location(loc: tuple, root: type[BaseModel]) -> Iterator[tuple[Any, bool, _Node]]:
    """For each part of a pydantic error location: (part, is_union_tag, node after it),
    following the models from ``root``. A part is a union tag when the node before it is a
    union (list of members) and the part is one of their tags; after it, the node is that
    member. Dict keys (``tissues.NAME``) and list indices keep the node of the container's
    values."""
    node: _Node = root
    dict_key_next = False
    for part in loc:
        if node is None:
            yield part, False, None
            continue
        if dict_key_next or isinstance(part, int):
            dict_key_next = False
            yield part, False, node
            continue
        if isinstance(node, list):
            member = next((m for m in node if part in (union_tag(m) or ("", ()))[1]), None)
            if member is not None:
                node = member
                yield part, True, node
                continue
            node = None
            yield part, False, node
            continue
        field = node.model_fields.get(part)
        if field is None:
            node = None
            yield part, False, node
            continue
        subs = submodels(field.annotation)
        dict_key_next = bool(subs) and typing.get_origin(field.annotation) is dict
        node = None if not subs else subs[0] if len(subs) == 1 else subs
        yield part, False, node


def key_path(loc: tuple, root: type[BaseModel]) -> str:
    """The TOML key path of an error location: ``geometry.tip_size_m``, ``boundary[0].surface``
    (union tags dropped, list indices in brackets)."""
    out = ""
    for part, is_tag, _ in walk_location(loc, root):
        if is_tag:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def model_keys(loc: tuple, root: type[BaseModel]) -> list[str]:
    """The keys allowed in the table at ``loc`` (an error's location minus its last part)."""
    node: _Node = root
    for _, _, node in walk_location(loc, root):
        pass
    if isinstance(node, type):
        return [k for k in node.model_fields if k != "case_dir"]
    return []


def union_at(loc: tuple, root: type[BaseModel]) -> list[str]:
    """Tags allowed for the union at ``loc`` (e.g. ``('geometry',)`` or ``('boundary', 0)``)."""
    node: _Node = root
    for _, _, node in walk_location(loc, root):
        pass
    return union_tags(node) if isinstance(node, list) else []


def format_errors(err: ValidationError, source: str, root: type[BaseModel]) -> str:
    """One message for every error of ``err`` (validation of ``root``), headed by ``source``."""
    lines: list[str] = []
    for e in err.errors():
        loc = key_path(tuple(e["loc"]), root)
        msg = e["msg"].removeprefix("Value error, ")
        value = e.get("input")
        if e["type"] == "extra_forbidden":
            hint = did_you_mean(e["loc"][-1], model_keys(tuple(e["loc"][:-1]), root))
            msg = f"unknown key{hint} (check spelling and units in the key name; `bioheat schema` lists keys)"
        if e["type"] in ("union_tag_not_found", "union_tag_invalid"):
            key = str(e.get("ctx", {}).get("discriminator", "type")).strip("'")
            tags = [t.strip(" '") for t in str(e.get("ctx", {}).get("expected_tags", "")).split(",") if t.strip()]
            if not tags:
                tags = union_at(tuple(e["loc"]), root)
            if e["type"] == "union_tag_not_found":
                lines.append(f"  {loc or '<case>'}: missing key '{key}'; allowed: {', '.join(repr(t) for t in tags)}")
            else:
                tag = e.get("ctx", {}).get("tag")
                lines.append(
                    f"  {loc or '<case>'}.{key} = '{tag}': unknown{did_you_mean(tag, tags)}; "
                    f"allowed: {', '.join(repr(t) for t in tags)}"
                )
            continue
        if "\n" in msg and not loc:
            lines.extend(f"  {m}" for m in msg.split("\n"))
        elif loc and _RELATIVE_KEY.match(msg):
            # e.g. loc 'geometry' + 'upper_m = [...] must exceed ...' -> 'geometry.upper_m = ...'
            lines.append(f"  {loc}.{shorten(msg, 800)}")
        elif isinstance(value, dict) or e["type"] in ("missing",):
            lines.append(f"  {loc}: {shorten(msg, 800)}" if loc else f"  {shorten(msg, 800)}")
        else:
            lines.append(f"  {loc or '<case>'} = {shorten(repr(value), 120)}: {shorten(msg, 800)}")
    return "\n".join([f"{source}: invalid case ({len(lines)} problem(s))"] + lines)


def problems_without_unknown_keys(err: ValidationError, data: dict[str, Any], source: str,
                                  root: type[BaseModel]) -> list[str]:
    """When every error is an unknown key, the cross-key checks have not run: run them on the
    case without those keys, so that one call reports every problem. Lines of those problems."""
    errors = err.errors()
    if not errors or any(e["type"] != "extra_forbidden" for e in errors):
        return []
    pruned = copy.deepcopy(data)
    for e in errors:
        node: Any = pruned
        for part, is_tag, _ in walk_location(tuple(e["loc"][:-1]), root):
            if is_tag:
                continue  # discriminator tags in the location are not keys of the data
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
        if isinstance(node, dict):
            node.pop(e["loc"][-1], None)
    try:
        root.model_validate(pruned)
    except ValidationError as err2:
        return format_errors(err2, source, root).split("\n")[1:]
    return []


def validate(root: type[BaseModel], data: dict[str, Any], source: str):
    """``root.model_validate(data)``; a ValidationError becomes one message listing every
    problem (:class:`solver.errors.CaseError`)."""
    try:
        return root.model_validate(data)
    except ValidationError as err:
        message = format_errors(err, source, root)
        more = problems_without_unknown_keys(err, data, source, root)
        if more:
            lines = message.split("\n")[1:] + [m for m in more if m not in message]
            message = "\n".join([f"{source}: invalid case ({len(lines)} problem(s))"] + lines)
        raise CaseError(message) from None
