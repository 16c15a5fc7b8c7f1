"""Indented JSON, byte for byte what `json.dumps(obj, indent=N, sort_keys=...)` writes, faster.

With `indent`, the standard library encodes in pure Python through a chain of generators (one
`yield` per token); the plan of 1,000 agents is half a million tokens. This writer appends to one
list instead and encodes strings with the same C function. Anything it does not know (a type
outside JSON's, a float that is not finite, a key that is not a string) goes to `json.dumps`
itself, so the output and the errors stay the standard library's.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii
from typing import Any, Callable


class _Unusual(Exception):
    """Let `json.dumps` handle this document (its rules for odd keys and values apply)."""


def dumps_indented(obj: Any, *, indent: int = 2, sort_keys: bool = False) -> str:
    """`json.dumps(obj, indent=indent, sort_keys=sort_keys)` (ensure_ascii, default separators)."""
    try:
        return _dumps(obj, indent, sort_keys)
    except (_Unusual, RecursionError):
        return json.dumps(obj, indent=indent, sort_keys=sort_keys)


def _bool_text(b: bool) -> str:
    return "true" if b else "false"


def _null_text(_: None) -> str:
    return "null"


_LEAVES: dict[type, Callable[[Any], str]] = {
    str: encode_basestring_ascii, int: int.__repr__, bool: _bool_text, type(None): _null_text,
}
"""Values a list or mapping writes in its own loop, by exact type (a str or int subclass, an enum,
goes through `value`'s isinstance checks)."""


def _dumps(obj: Any, indent: int, sort_keys: bool) -> str:
    parts: list[str] = []
    append = parts.append
    enc = encode_basestring_ascii
    finite = float("inf")
    leaves = _LEAVES

    def value(o: Any, level: int) -> None:
        if isinstance(o, str):
            append(enc(o))
        elif o is None:
            append("null")
        elif o is True:
            append("true")
        elif o is False:
            append("false")
        elif isinstance(o, int):
            append(int.__repr__(o))
        elif isinstance(o, float):
            if o != o or o == finite or o == -finite:
                raise _Unusual
            append(float.__repr__(o))
        elif isinstance(o, (list, tuple)):
            if not o:
                append("[]")
                return
            inner = "\n" + " " * (indent * (level + 1))
            append("[")
            first = True
            for item in o:
                head = inner if first else "," + inner
                first = False
                leaf = leaves.get(type(item))  # the common leaves written here, as `value` writes them
                if leaf is not None:
                    append(head + leaf(item))
                else:
                    append(head)
                    value(item, level + 1)
            append("\n" + " " * (indent * level) + "]")
        elif isinstance(o, dict):
            if not o:
                append("{}")
                return
            inner = "\n" + " " * (indent * (level + 1))
            append("{")
            items = sorted(o.items()) if sort_keys else o.items()
            first = True
            for k, v in items:
                if not isinstance(k, str):
                    raise _Unusual
                head = (inner if first else "," + inner) + enc(k) + ": "
                first = False
                leaf = leaves.get(type(v))
                if leaf is not None:
                    append(head + leaf(v))
                else:
                    append(head)
                    value(v, level + 1)
            append("\n" + " " * (indent * level) + "}")
        else:
            raise _Unusual

    value(obj, 0)
    return "".join(parts)
