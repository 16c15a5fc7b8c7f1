"""A small evaluator of CloudWatch Logs JSON filter patterns, enough for the trail filters.

Supports what `monitoring_plan` emits: `{ expr }` with `&&`, `||`, parentheses, and
`$.a.b = "value"` / `!=` where `*` in the value is a wildcard (CloudWatch's semantics: a missing
field never equals anything). It refuses anything else, so a pattern using syntax this
evaluator does not know fails the test instead of passing unexamined.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

_TOKEN = re.compile(r'\s*(\(|\)|&&|\|\||\$\.[A-Za-z0-9_.]+|!=|=|"(?:[^"\\]|\\.)*"|\{|\})')


def _tokens(pattern: str) -> list[str]:
    out, pos = [], 0
    while pos < len(pattern):
        if pattern[pos:].strip() == "":
            break
        m = _TOKEN.match(pattern, pos)
        if not m:
            raise ValueError(f"unsupported filter syntax at {pattern[pos:pos + 30]!r}")
        out.append(m.group(1))
        pos = m.end()
    return out


def select(event: dict[str, Any], selector: str) -> Any:
    node: Any = event
    for part in selector.removeprefix("$.").split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def matches(pattern: str, event: dict[str, Any]) -> bool:
    toks = _tokens(pattern)
    if not toks or toks[0] != "{" or toks[-1] != "}":
        raise ValueError("only JSON patterns `{ ... }` are supported")
    toks = toks[1:-1]
    pos = 0

    def expr() -> bool:
        nonlocal pos
        left = term()
        while pos < len(toks) and toks[pos] in ("&&", "||"):
            op = toks[pos]
            pos += 1
            right = term()
            left = (left and right) if op == "&&" else (left or right)
        return left

    def term() -> bool:
        nonlocal pos
        if toks[pos] == "(":
            pos += 1
            v = expr()
            if toks[pos] != ")":
                raise ValueError("unbalanced parentheses")
            pos += 1
            return v
        sel, op, lit = toks[pos], toks[pos + 1], toks[pos + 2]
        if not sel.startswith("$.") or op not in ("=", "!=") or not lit.startswith('"'):
            raise ValueError(f"unsupported comparison {sel} {op} {lit}")
        pos += 3
        value = select(event, sel)
        if value is None:
            return False
        hit = fnmatch.fnmatchcase(str(value), lit[1:-1].replace("[", "[[]"))
        return hit if op == "=" else not hit

    result = expr()
    if pos != len(toks):
        raise ValueError(f"trailing tokens {toks[pos:]}")
    return result
