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
from typing import Any


class _Unusual(Exception):
    """Let `json.dumps` handle this document (its rules for odd keys and values apply)."""


def dumps_indented(obj: Any, *, indent: int = 2, sort_keys: bool = False) -> str:
    """`json.dumps(obj, indent=indent, sort_keys=sort_keys)` (ensure_ascii, default separators)."""
    try:
        return _dumps(obj, indent, sort_keys)
    except (_Unusual, RecursionError):
        return json.dumps(obj, indent=indent, sort_keys=sort_keys)


def _dumps(obj: Any, indent: int, sort_keys: bool) -> str:
    parts: list[str] = []
    append = parts.append
    enc = encode_basestring_ascii
    finite = float("inf")

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
                t = type(item)  # the common leaves written here, as `value` writes them
                if t is str:
                    append(head + enc(item))
                elif t is int:
                    append(head + int.__repr__(item))
                elif t is bool:
                    append(head + ("true" if item else "false"))
                elif item is None:
                    append(head + "null")
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
                t = type(v)
                if t is str:
                    append(head + enc(v))
                elif t is int:
                    append(head + int.__repr__(v))
                elif t is bool:
                    append(head + ("true" if v else "false"))
                elif v is None:
                    append(head + "null")
                else:
                    append(head)
                    value(v, level + 1)
            append("\n" + " " * (indent * level) + "}")
        else:
            raise _Unusual

    value(obj, 0)
    return "".join(parts)
