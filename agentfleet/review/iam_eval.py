"""A small evaluator of IAM policy documents with AWS's matching rules (isolation tests and the rehearsal).

What it models (enough to decide "may principal P call action A on resource R"):
- `*` matches any sequence of characters including none (also `/` and `:`), `?` exactly one;
  every other character is literal (unlike `fnmatch`, `[` is not special).
- Action names match case-insensitively, resource ARNs case-sensitively.
- Action/NotAction, Resource/NotResource, Principal/NotPrincipal, and the condition operators
  the project uses (String*, Arn*, Bool, Numeric*, IpAddress/NotIpAddress with CIDR matching,
  with `...IfExists`; Null; ForAllValues: and ForAnyValue: over multi-valued keys); values of one key are OR-ed, keys
  and operators are AND-ed; a missing key fails a positive operator and satisfies a negated one.
- An explicit Deny wins over any Allow; no matching Allow is an implicit deny.
Anything else (an unknown operator, an unknown statement key) raises, so a document the evaluator
does not understand fails the test instead of being judged wrongly.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Mapping, Sequence

Decision = Literal["Allow", "Deny", "ImplicitDeny"]

STATEMENT_KEYS = frozenset(
    {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "NotPrincipal", "Condition"}
)


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM glob: `*` = any run of characters (possibly empty), `?` = exactly one character."""
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    p = v = 0
    star_p, star_v = -1, 0
    while v < len(value):
        if p < len(pattern) and (pattern[p] == "?" or pattern[p] == value[v]):
            p += 1
            v += 1
        elif p < len(pattern) and pattern[p] == "*":
            star_p, star_v = p, v
            p += 1
        elif star_p >= 0:  # let the last `*` swallow one more character and retry
            p = star_p + 1
            star_v += 1
            v = star_v
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


@dataclass(frozen=True)
class Request:
    """One API call. `principal` is set when a resource or trust policy is evaluated."""

    action: str
    resource: str
    context: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    principal: Mapping[str, str] | None = None


def _principal_matches(spec: Any, principal: Mapping[str, str] | None) -> bool:
    if spec == "*":
        return True
    if principal is None:
        raise ValueError("statement names a Principal: evaluate it with Request.principal set")
    if not isinstance(spec, Mapping):
        raise ValueError(f"unsupported Principal {spec!r}")
    for kind, values in spec.items():
        if kind not in ("AWS", "Service", "Federated", "CanonicalUser"):
            raise ValueError(f"unsupported principal type {kind!r}")
        who = principal.get(kind)
        if who is None:
            continue
        for v in as_list(values):
            if v == "*":
                return True
            if kind == "AWS" and (v.isdigit() or v.endswith(":root")):
                account = v if v.isdigit() else v.split(":")[4]
                if who.split(":")[4:5] == [account]:
                    return True
            elif v == who:
                return True
    return False


def _lookup(context: Mapping[str, str | Sequence[str]], key: str) -> list[str] | None:
    for k, v in context.items():
        if k.lower() == key.lower():  # condition key names are case-insensitive
            return as_list(v)
    return None


def ip_in(cidr: str, address: str) -> bool:
    """IpAddress: the request's address lies in the policy's range (a bare address = /32 or /128).
    A malformed value on either side raises: a test must not pass on a typo."""
    net = ipaddress.ip_network(cidr, strict=False)
    ip = ipaddress.ip_address(address)
    return ip.version == net.version and ip in net


def _value_test(base: str) -> tuple[bool, Any]:
    """(negated, predicate(policy_value, request_value)) for an operator without IfExists."""
    if base in ("IpAddress", "NotIpAddress"):
        return base == "NotIpAddress", ip_in
    tests: dict[str, Any] = {
        "StringEquals": lambda p, r: p == r,
        "StringEqualsIgnoreCase": lambda p, r: p.lower() == r.lower(),
        "StringLike": lambda p, r: wildcard_match(p, r),
        "ArnEquals": lambda p, r: p == r,
        "ArnLike": lambda p, r: wildcard_match(p, r),
        "Bool": lambda p, r: p.lower() == r.lower(),
        "NumericEquals": lambda p, r: float(r) == float(p),
        "NumericLessThan": lambda p, r: float(r) < float(p),
        "NumericLessThanEquals": lambda p, r: float(r) <= float(p),
        "NumericGreaterThan": lambda p, r: float(r) > float(p),
        "NumericGreaterThanEquals": lambda p, r: float(r) >= float(p),
    }
    if base == "NumericNotEquals":
        return True, tests["NumericEquals"]
    for positive, fn in tests.items():
        if base == positive:
            return False, fn
        negated = positive.replace("String", "StringNot", 1).replace("Arn", "ArnNot", 1)
        if base == negated and negated != positive:
            return True, fn
    raise NotImplementedError(f"condition operator {base!r} is not modelled")


def condition_holds(condition: Mapping[str, Mapping[str, str | Sequence[str]]], context: Mapping[str, str | Sequence[str]]) -> bool:
    for operator, pairs in condition.items():
        if operator == "Null":  # "true": the key must be absent; "false": present
            for key, wanted in pairs.items():
                absent = not _lookup(context, key)  # a multi-valued key with no values is absent
                if any(absent != (w.lower() == "true") for w in as_list(wanted)):
                    return False
            continue
        if ":" in operator:
            qualifier, base = operator.split(":", 1)
            if qualifier not in ("ForAllValues", "ForAnyValue") or base.endswith("IfExists"):
                raise NotImplementedError(f"set operator {operator!r} is not modelled")
            negated, test = _value_test(base)
            for key, wanted in pairs.items():
                have = _lookup(context, key)
                each = [any(test(p, r) for p in as_list(wanted)) != negated for r in (have or [])]
                # ForAllValues: every request value matches (true when the key is absent);
                # ForAnyValue: at least one does (false when absent).
                if not (all(each) if qualifier == "ForAllValues" else any(each)):
                    return False
            continue
        if_exists = operator.endswith("IfExists")
        negated, test = _value_test(operator.removesuffix("IfExists"))
        for key, wanted in pairs.items():
            have = _lookup(context, key)
            if have is None:
                if if_exists or negated:
                    continue
                return False
            hit = any(test(p, r) for p in as_list(wanted) for r in have)
            if hit == negated:
                return False
    return True


def statement_applies(stmt: Mapping[str, Any], req: Request) -> bool:
    unknown = set(stmt) - STATEMENT_KEYS
    if unknown:
        raise ValueError(f"unknown statement keys {sorted(unknown)}")
    if stmt.get("Effect") not in ("Allow", "Deny"):
        raise ValueError(f"Effect must be Allow or Deny, got {stmt.get('Effect')!r}")
    if ("Action" in stmt) == ("NotAction" in stmt):
        raise ValueError("a statement needs exactly one of Action / NotAction")
    if "Action" in stmt:
        if not any(wildcard_match(a, req.action, ignore_case=True) for a in as_list(stmt["Action"])):
            return False
    elif any(wildcard_match(a, req.action, ignore_case=True) for a in as_list(stmt["NotAction"])):
        return False
    if "Resource" in stmt:
        if not any(wildcard_match(r, req.resource) for r in as_list(stmt["Resource"])):
            return False
    elif "NotResource" in stmt:
        if any(wildcard_match(r, req.resource) for r in as_list(stmt["NotResource"])):
            return False
    # No Resource at all: a trust policy, whose resource is the role itself.
    if "Principal" in stmt and not _principal_matches(stmt["Principal"], req.principal):
        return False
    if "NotPrincipal" in stmt and _principal_matches(stmt["NotPrincipal"], req.principal):
        return False
    return condition_holds(stmt.get("Condition", {}), req.context)


def evaluate(policies: Mapping[str, Any] | Iterable[Mapping[str, Any]], req: Request) -> Decision:
    """Decision of one document, or of several evaluated together (identity + resource)."""
    docs = [policies] if isinstance(policies, Mapping) else list(policies)
    allowed = False
    for doc in docs:
        if doc.get("Version") != "2012-10-17":
            raise ValueError(f"unexpected policy Version {doc.get('Version')!r}")
        statements = doc["Statement"]
        for stmt in [statements] if isinstance(statements, Mapping) else statements:
            if statement_applies(stmt, req):
                if stmt["Effect"] == "Deny":
                    return "Deny"
                allowed = True
    return "Allow" if allowed else "ImplicitDeny"


def allows(policy: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str] | None = None) -> bool:
    """Identity-policy shorthand: is this call allowed?"""
    return evaluate(policy, Request(action, resource, dict(context or {}))) == "Allow"
