"""Who may assume a role, in words, read off its trust policy document.

One reading for `plan`, `audit` and `diff`: it parses the document (not the fleet file), so
what it prints is what IAM will enforce, including hand-made or drifted trusts.
"""

from __future__ import annotations

from typing import Any, Mapping

from agentfleet.core.iam_documents import (
    EKS_POD_IDENTITY_SERVICE,
    EKS_TAG_CLUSTER,
    EKS_TAG_NAMESPACE,
    EKS_TAG_SERVICE_ACCOUNT,
    GITHUB_OIDC_HOST,
)

SA_PREFIX = "system:serviceaccount:"


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def conditions(stmt: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(operator, key, value) triples, one per value, sorted."""
    cond = stmt.get("Condition") or {}
    return sorted((op, key, val) for op, kv in cond.items() for key, vals in kv.items() for val in _as_list(vals))


def _rest(conds: list[tuple[str, str, str]], used: set[str], strip: str = "") -> str:
    rest = [f"{k.removeprefix(strip)} {op} {v}" for op, k, v in conds if k not in used]
    return f" ({'; '.join(rest)})" if rest else ""


def principal_words(ptype: str, value: str, conds: list[tuple[str, str, str]]) -> str:
    """One principal (with its statement's conditions) in words."""
    if value == "*":
        return f"anyone ({ptype} *)"
    eq = {k: v for op, k, v in conds if op == "StringEquals"}
    if ptype == "Federated" and "oidc-provider/" in value:
        host = value.split("oidc-provider/", 1)[1]
        sub_key = f"{host}:sub"
        subs = [v for _, k, v in conds if k == sub_key]
        rest = _rest(conds, {sub_key}, host + ":")
        if host == GITHUB_OIDC_HOST:
            return "GitHub Actions " + (", ".join(subs) if subs else "(any repository)") + rest
        if len(subs) == 1 and subs[0].startswith(SA_PREFIX) and subs[0].count(":") == 3:
            ns, sa = subs[0].removeprefix(SA_PREFIX).split(":")
            return f"EKS IRSA {host}: namespace {ns}, service account {sa}" + rest
        return f"OIDC {host} " + (", ".join(subs) if subs else "(any subject)") + rest
    if ptype == "Service" and value == EKS_POD_IDENTITY_SERVICE:
        tags = {t: eq.get(f"aws:RequestTag/{t}") for t in (EKS_TAG_CLUSTER, EKS_TAG_NAMESPACE, EKS_TAG_SERVICE_ACCOUNT)}
        used = {f"aws:RequestTag/{t}" for t, v in tags.items() if v is not None}
        if len(used) == 3:
            return (f"EKS Pod Identity: cluster {tags[EKS_TAG_CLUSTER]}, namespace {tags[EKS_TAG_NAMESPACE]},"
                    f" service account {tags[EKS_TAG_SERVICE_ACCOUNT]}" + _rest(conds, used))
        return "EKS Pod Identity: any pod" + _rest(conds, used)
    aws = f"IAM role {value}" if ":role/" in value else f"AWS principal {value}"
    words = {"Service": f"AWS service {value}", "AWS": aws}.get(ptype, f"{ptype} {value}")
    if conds:
        words += " when " + "; ".join(f"{k} {op} {v}" for op, k, v in conds)
    return words


def trust_principals(trust: Mapping[str, Any]) -> frozenset[str]:
    """Every (principal, condition) that may assume the role, one plain-words string each."""
    out: set[str] = set()
    for stmt in trust.get("Statement", []):
        if stmt.get("Effect") != "Allow":
            continue
        conds = conditions(stmt)
        for ptype, values in (stmt.get("Principal") or {}).items():
            for value in _as_list(values):
                out.add(principal_words(str(ptype), value, conds))
    return frozenset(out)


def trust_words(trust: Mapping[str, Any]) -> list[str]:
    return sorted(trust_principals(trust))
