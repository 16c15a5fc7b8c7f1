"""Vault/OpenBao ACL policies read the way the server reads them, and evaluated the way it evaluates them.

Parsing: HCL1 is tokenised by pyhcl's lexer (the maintained HCL1 grammar: strings, escapes,
`#`/`//`/`/* */` comments, heredocs), so `/*` inside a path string or `{` inside a string is
never mistaken for syntax. On top of the tokens a strict parser accepts only the shape policies
have (`path "<p>" { capabilities = [...] }`, optionally `name = "..."`) and keeps duplicates,
which Vault merges: two blocks for one path, or two `capabilities` lines in one block, grant the
union (and `deny` anywhere in a path's rules wins). JSON policies are read with every duplicate
key kept (`object_pairs_hook`) and merged the same way. Anything else (unknown keys, legacy
`policy = "read"`, parameters constraints, unknown capabilities, a value of the wrong type) raises
`VaultPolicyError`: the pack reports what it cannot fully account for instead of guessing.

Evaluation (`capabilities`): an exact rule wins; else among the longest-prefix glob rule (`*` only
counts at the end of a path) and the matching `+`-segment rules, the one of highest priority by
Vault's ordering (later first wildcard, non-prefix, fewer `+`, longer, lexically greater).
`tests/test_policy_vault_differential.py` checks this against a real OpenBao.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from hcl.lexer import Lexer

CAPABILITIES = frozenset({"create", "read", "update", "patch", "delete", "list", "sudo", "root", "deny", "subscribe", "recover"})
"""Every capability name Vault/OpenBao accept in a policy; any other name is refused."""
TOP_KEYS = frozenset({"path", "name"})
PATH_KEYS = frozenset({"capabilities"})


class VaultPolicyError(ValueError):
    """The policy uses something the pack cannot fully account for (or it is not a policy)."""


Rules = dict[str, frozenset[str]]
"""Path pattern -> merged capabilities (a `deny` rule is `{"deny"}`)."""


def _merge(rules: dict[str, set[str]], path: str, caps: Iterable[str]) -> None:
    for c in caps:
        if c not in CAPABILITIES:
            raise VaultPolicyError(f"unknown capability {c!r} on path {path!r}")
    rules.setdefault(path, set()).update(caps)


def _finish(rules: Mapping[str, set[str]]) -> Rules:
    return {p: frozenset({"deny"}) if "deny" in caps else frozenset(caps) for p, caps in rules.items()}


# ---- HCL1 ----


@dataclass
class _Tokens:
    items: list[tuple[str, Any, int]]
    pos: int = 0

    def peek(self) -> tuple[str, Any, int] | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def take(self, *types: str) -> tuple[str, Any, int]:
        tok = self.peek()
        if tok is None:
            raise VaultPolicyError(f"unexpected end of policy (wanted {'/'.join(types)})")
        if tok[0] not in types:
            raise VaultPolicyError(f"line {tok[2]}: unexpected {tok[0]} {tok[1]!r} (wanted {'/'.join(types)})")
        self.pos += 1
        return tok


def _tokens(source: str) -> _Tokens:
    lexer = Lexer()
    lexer.input(source)
    out: list[tuple[str, Any, int]] = []
    try:
        while True:
            tok = lexer.token()
            if tok is None:
                break
            if tok.type in ("COMMENT", "MULTICOMMENT"):
                continue
            out.append((tok.type, tok.value, tok.lineno))
    except Exception as exc:  # pyhcl raises ValueError/TypeError on lexing errors
        raise VaultPolicyError(f"not valid HCL ({exc})") from None
    return _Tokens(out)


def _string_list(t: _Tokens) -> list[str]:
    t.take("LEFTBRACKET")
    items: list[str] = []
    while True:
        tok = t.peek()
        if tok is not None and tok[0] == "RIGHTBRACKET":
            t.take("RIGHTBRACKET")
            return items
        items.append(str(t.take("STRING")[1]))
        nxt = t.take("COMMA", "RIGHTBRACKET")
        if nxt[0] == "RIGHTBRACKET":
            return items


def _path_body(t: _Tokens, path: str, rules: dict[str, set[str]]) -> None:
    t.take("LEFTBRACE")
    rules.setdefault(path, set())
    while True:
        tok = t.take("IDENTIFIER", "RIGHTBRACE")
        if tok[0] == "RIGHTBRACE":
            return
        if tok[1] not in PATH_KEYS:
            raise VaultPolicyError(f"line {tok[2]}: path {path!r} uses {tok[1]!r}, which the pack does not evaluate")
        t.take("EQUAL")
        _merge(rules, path, _string_list(t))
        nxt = t.peek()
        if nxt is not None and nxt[0] == "COMMA":
            t.take("COMMA")


def parse_hcl(source: str) -> Rules:
    t = _tokens(source)
    rules: dict[str, set[str]] = {}
    while t.peek() is not None:
        key = t.take("IDENTIFIER")
        if key[1] not in TOP_KEYS:
            raise VaultPolicyError(f"line {key[2]}: unknown top-level key {key[1]!r}")
        if key[1] == "name":
            t.take("EQUAL")
            t.take("STRING")
            continue
        path = str(t.take("STRING")[1])
        nxt = t.peek()
        if nxt is not None and nxt[0] == "EQUAL":
            t.take("EQUAL")
        _path_body(t, path, rules)
    return _finish(rules)


# ---- JSON ----


class _Pairs(list[tuple[str, Any]]):
    """A JSON object with every key kept, in order (a JSON array stays a plain list)."""


def _pairs(items: list[tuple[str, Any]]) -> _Pairs:
    return _Pairs(items)


def parse_json(source: str) -> Rules:
    try:
        doc = json.loads(source, object_pairs_hook=_pairs)
    except ValueError as exc:
        raise VaultPolicyError(f"invalid JSON policy ({exc})") from None
    if not isinstance(doc, _Pairs):
        raise VaultPolicyError("a JSON policy must be an object")
    rules: dict[str, set[str]] = {}
    for key, value in doc:
        if key == "name" and isinstance(value, str):
            continue
        if key != "path" or not isinstance(value, _Pairs):
            raise VaultPolicyError(f"JSON policy key {key!r} is not a `path` object")
        for path, body in value:
            if not isinstance(body, _Pairs):
                raise VaultPolicyError(f"JSON policy path {path!r} is not an object")
            rules.setdefault(path, set())
            for bkey, bval in body:
                if bkey not in PATH_KEYS:
                    raise VaultPolicyError(f"path {path!r} uses {bkey!r}, which the pack does not evaluate")
                if not isinstance(bval, list) or not all(isinstance(c, str) for c in bval):
                    raise VaultPolicyError(f"path {path!r}: capabilities must be a list of strings")
                _merge(rules, path, bval)
    return _finish(rules)


def parse_policy(source: str) -> Rules:
    """Path -> capabilities of a Vault policy in HCL1 or JSON (Vault tries JSON when it looks like it)."""
    if source.lstrip().startswith("{"):
        return parse_json(source)
    return parse_hcl(source)


# ---- evaluation ----


@dataclass(frozen=True)
class _Match:
    first_wildcard: int
    prefix: bool
    wildcards: int
    pattern: str
    caps: frozenset[str]

    def key(self) -> tuple[int, int, int, int, str]:
        return (self.first_wildcard, 0 if self.prefix else 1, -self.wildcards, len(self.pattern), self.pattern)


def _segment_match(pattern: str, path: str) -> bool:
    prefix = pattern.endswith("*")
    body = pattern[:-1] if prefix else pattern
    want, have = body.split("/"), path.split("/")
    if len(have) < len(want) or (not prefix and len(want) != len(have)):
        return False
    for i, part in enumerate(want):
        if part == "+" or part == have[i]:
            continue
        if prefix and i == len(want) - 1 and have[i].startswith(part):
            continue
        return False
    return True


def capabilities(rules: Mapping[str, frozenset[str]], path: str) -> frozenset[str]:
    """What Vault grants on `path` under these rules (empty: denied)."""
    for pattern, caps in rules.items():
        if pattern == path and "+" not in pattern and not pattern.endswith("*"):
            return frozenset() if "deny" in caps else caps
    matches: list[_Match] = []
    best_prefix: str | None = None
    for pattern in rules:
        if "+" in pattern or not pattern.endswith("*"):
            continue
        stem = pattern[:-1]
        if path.startswith(stem) and (best_prefix is None or len(stem) > len(best_prefix[:-1])):
            best_prefix = pattern
    if best_prefix is not None:
        stem = best_prefix[:-1]
        matches.append(_Match(len(stem), True, 0, stem, rules[best_prefix]))
    for pattern, caps in rules.items():
        if "+" in pattern and _segment_match(pattern, path):
            matches.append(_Match(pattern.index("+"), pattern.endswith("*"), pattern.count("+"), pattern, caps))
    if not matches:
        return frozenset()
    chosen = max(matches, key=_Match.key)
    return frozenset() if "deny" in chosen.caps else chosen.caps
