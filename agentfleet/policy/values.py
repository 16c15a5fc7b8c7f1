"""Reading engine-shaped properties without ever crashing on a missing or unknown value.

Under `pulumi preview` the engine wraps props in a proxy that raises `UnknownValueError` on
values computed later; the offline runner may hand over raw sentinel strings or `Output`s. Every
policy first converts props with `plain()`, so a missing value is `None`, an unknown one is
`UNKNOWN`, and policies decide explicitly what an unknown means (usually: not checkable yet).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

import pulumi
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)
from pulumi_policy.secret import Secret


class _Unknown:
    """A value the engine does not know yet (preview of a resource created in the same run)."""

    _instance: "_Unknown | None" = None

    def __new__(cls) -> "_Unknown":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN: Final = _Unknown()
Unknown = _Unknown
"""The type of `UNKNOWN`, for annotations."""

_SENTINELS = frozenset({
    UNKNOWN_ARCHIVE_VALUE, UNKNOWN_ARRAY_VALUE, UNKNOWN_ASSET_VALUE, UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE, UNKNOWN_OBJECT_VALUE, UNKNOWN_STRING_VALUE,
})


def is_unknown(value: Any) -> bool:
    return value is UNKNOWN


def plain(value: Any) -> Any:
    """A deep copy of `value` as plain dicts/lists, with every unknown replaced by `UNKNOWN`."""
    if isinstance(value, Secret):
        return plain(value.value)
    if isinstance(value, pulumi.Output):
        return UNKNOWN
    if isinstance(value, str):
        return UNKNOWN if value in _SENTINELS else value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key in list(value):
            try:
                out[str(key)] = plain(value[key])
            except UnknownValueError:
                out[str(key)] = UNKNOWN
        return out
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        items: list[Any] = []
        for i in range(len(value)):
            try:
                items.append(plain(value[i]))
            except UnknownValueError:
                items.append(UNKNOWN)
        return items
    return value


def get(props: Mapping[str, Any], *path: str | int) -> Any:
    """`props[a][b]...` of already-plain props; `None` when absent, `UNKNOWN` when unknown."""
    cur: Any = props
    for key in path:
        if cur is UNKNOWN:
            return UNKNOWN
        if isinstance(key, int):
            if not isinstance(cur, list) or not -len(cur) <= key < len(cur):
                return None
            cur = cur[key]
        else:
            if not isinstance(cur, dict) or key not in cur:
                return None
            cur = cur[key]
    return cur


def text(value: Any) -> str | None:
    """The value if it is a known string, else `None`."""
    return value if isinstance(value, str) else None


def number(value: Any) -> float | None:
    """Numbers arrive as floats from the engine (and as numeric strings from some providers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def string_map(value: Any) -> dict[str, Any] | None:
    """A tags-like map (values may be `UNKNOWN`), or `None` if absent/unknown/not a map."""
    return value if isinstance(value, dict) else None


class BadDocument:
    """A policy document that is present and known but is not a JSON object."""

    def __init__(self, reason: str):
        self.reason = reason

    def __repr__(self) -> str:
        return f"<bad document: {self.reason}>"


def document(value: Any) -> "Document":
    """An IAM/Vault JSON document from a prop that holds a JSON string or an object."""
    if value is None or value is UNKNOWN:
        return value
    if isinstance(value, dict):
        return value if not contains_unknown(value) else UNKNOWN
    if isinstance(value, str):
        if value == "":
            return None
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            return BadDocument(f"not valid JSON ({exc.msg})")
        return parsed if isinstance(parsed, dict) else BadDocument("not a JSON object")
    return BadDocument(f"unexpected {type(value).__name__}")


def contains_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_unknown(v) for v in value)
    return False


def as_list(value: Any) -> list[Any]:
    """IAM's `"x"`-or-`["x", "y"]` convention as a list (absent -> empty)."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


Document = dict[str, Any] | BadDocument | _Unknown | None
"""A parsed policy document prop: the object, why it is not one, unknown, or absent."""
