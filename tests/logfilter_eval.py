"""A small evaluator of CloudWatch Logs JSON filter patterns, for testing metric filters against
recorded CloudTrail events.

What it models (the subset this project's filters use):
- `{ <expr> }` with `&&`, `||` and parentheses; mixing `&&` and `||` at one level without
  parentheses raises (CloudWatch's precedence there is easy to get wrong, so patterns must say it).
- `$.a.b.c` selectors; `=` / `!=` against a quoted string where `*` matches any run of characters
  (also none); `NOT EXISTS` / `EXISTS`; `IS NULL`.
- A comparison on a property the event lacks is false for `=` AND for `!=` (the conservative
  reading: a pattern that needs "absent or different" must say `NOT EXISTS ||`, as ours do).
- Dimension values: `dimension_values(dims, event)` resolves `$.selector` values like the service.
Anything else (numbers, regex `%...%`, arrays) raises, so a pattern the evaluator does not
understand fails its test instead of being judged wrongly.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

_TOKEN = re.compile(
    r"\s*(?:(?P<open>\()|(?P<close>\))|(?P<and>&&)|(?P<or>\|\|)|(?P<sel>\$(?:\.[A-Za-z0-9_]+)+)"
    r"|(?P<op>!=|=)|(?P<str>\"(?:[^\"\\]|\\.)*\")|(?P<kw>NOT EXISTS|EXISTS|IS NULL))"
)
_MISSING = object()


class PatternError(ValueError):
    pass


def _tokens(body: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(body):
        if body[pos:].strip() == "":
            break
        m = _TOKEN.match(body, pos)
        if not m or m.end() == pos:
            raise PatternError(f"cannot read the pattern at {body[pos:pos + 30]!r}")
        kind = m.lastgroup
        assert kind is not None
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _lookup(event: Mapping[str, Any], selector: str) -> Any:
    value: Any = event
    for part in selector[2:].split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _glob(pattern: str, value: str) -> bool:
    return re.fullmatch(".*".join(re.escape(p) for p in pattern.split("*")), value, re.S) is not None


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], event: Mapping[str, Any]) -> None:
        self.t, self.i, self.event = tokens, 0, event

    def peek(self) -> str | None:
        return self.t[self.i][0] if self.i < len(self.t) else None

    def take(self, kind: str) -> str:
        if self.peek() != kind:
            got = self.t[self.i] if self.i < len(self.t) else "end"
            raise PatternError(f"expected {kind}, got {got}")
        value = self.t[self.i][1]
        self.i += 1
        return value

    def expr(self) -> bool:
        values = [self.term()]
        joiner: str | None = None
        while self.peek() in ("and", "or"):
            kind = self.peek() or ""
            self.take(kind)
            if joiner is not None and kind != joiner:
                raise PatternError("&& and || mixed without parentheses")
            joiner = kind
            values.append(self.term())
        return all(values) if joiner in (None, "and") else any(values)

    def term(self) -> bool:
        if self.peek() == "open":
            self.take("open")
            value = self.expr()
            self.take("close")
            return value
        selector = self.take("sel")
        have = _lookup(self.event, selector)
        if self.peek() == "kw":
            kw = self.take("kw")
            if kw == "NOT EXISTS":
                return have is _MISSING
            if kw == "EXISTS":
                return have is not _MISSING
            return have is None
        op = self.take("op")
        wanted = self.take("str")[1:-1]
        if have is _MISSING or have is None or isinstance(have, (Mapping, list)):
            return False
        hit = _glob(wanted, have if isinstance(have, str) else str(have).lower() if isinstance(have, bool) else str(have))
        return hit if op == "=" else not hit


def matches(pattern: str, event: Mapping[str, Any]) -> bool:
    """Does the JSON filter `pattern` match this log event (a parsed CloudTrail record)?"""
    text = pattern.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise PatternError("only JSON patterns `{ ... }` are modelled")
    p = _Parser(_tokens(text[1:-1]), event)
    value = p.expr()
    if p.i != len(p.t):
        raise PatternError(f"unexpected {p.t[p.i]}")
    return value


def dimension_values(dimensions: Mapping[str, str], event: Mapping[str, Any]) -> dict[str, str]:
    """The metric's dimension values for one matching event (selectors resolved)."""
    out = {}
    for name, selector in dimensions.items():
        value = _lookup(event, selector)
        if value is _MISSING or not isinstance(value, str):
            raise PatternError(f"dimension {name}: {selector} has no string value in the event")
        out[name] = value
    return out
