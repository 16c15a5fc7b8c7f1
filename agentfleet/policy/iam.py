"""IAM policies: no wildcard secret reads, scoped trust, rotation roles that write one agent only.

All three read documents as the engine has them (JSON strings in camelCase props); the ARN
layout they enforce is `agentfleet.core.naming.secret_arn_pattern`'s `<prefix>/<env>/<agent>/...`.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from agentfleet.core import naming
from agentfleet.core.iam_documents import GITHUB_OIDC_HOST, SECRET_READ_ACTIONS
from agentfleet.policy.arnmatch import AgentScope, has_wildcard, secret_folder
from agentfleet.policy.base import Resource, resource_policy
from agentfleet.policy.iamdoc import (
    IDENTITY_POLICY_TYPES,
    ROLE,
    ROLE_POLICY,
    SECRET_WRITE_ACTIONS,
    Statement,
    grant_scopes,
    identity_documents,
    principal_values,
    statements,
)
from agentfleet.policy.layout import Layout, rotation_role_names
from agentfleet.policy.values import BadDocument, document, get, text

IAM_POLICY_TYPES = (*IDENTITY_POLICY_TYPES, ROLE)
RESOURCE_TAG_PREFIXES = ("aws:ResourceTag/", "secretsmanager:ResourceTag/")
ACCOUNT_RE = re.compile(r"^(\d{12}|arn:aws[a-z-]*:iam::\d{12}:root)$")


def _fix_pattern(lay: Layout, agent: str = "<agent>") -> str:
    if lay.settings is not None:
        return naming.secret_arn_pattern(lay.settings, agent, "<credential>")
    return "arn:<partition>:secretsmanager:<region>:<account>:secret:<prefix>/<env>/<agent>/<credential>-??????"


def _env_mismatch(scope: AgentScope, lay: Layout) -> bool:
    s = lay.settings
    return s is not None and (scope.prefix, scope.environment) != (s.secret_prefix, s.environment)


def tag_confined(st: Statement, lay: Layout) -> bool:
    """Shared-mode form: the statement only reaches secrets tagged managed-by + this environment."""
    def pinned(key: str, expected: str | None) -> bool:
        for prefix in RESOURCE_TAG_PREFIXES:
            values = st.condition_values(prefix + key).get("StringEquals", [])
            if values and all(v == expected if expected else not has_wildcard(v) for v in values):
                return True
        return False

    return pinned(naming.TAG_MANAGED_BY, naming.MANAGED_BY) and pinned(naming.TAG_ENVIRONMENT, lay.environment())


def env_confined(st: Statement, lay: Layout) -> bool:
    """Every resource lies in `<prefix>/<env>/` (of this stack, when settings are known)."""
    if st.not_resources is not None or not st.resources:
        return False
    s = lay.settings
    for r in st.resources:
        head = secret_folder(r, 2)
        if head is None or (s is not None and head != (s.secret_prefix, s.environment)):
            return False
    return True


def _documents(r: Resource) -> Iterable[tuple[str, dict[str, Any]]]:
    for path, doc in identity_documents(r.type, r.props):
        if isinstance(doc, dict):
            yield path, doc


# ---- no-wildcard-secret-read ----


def check_secret_reads(r: Resource, lay: Layout) -> Iterable[str]:
    for path, doc in _documents(r):
        seen: dict[AgentScope, str] = {}
        for st in statements(doc):
            reads = st.covered_actions(SECRET_READ_ACTIONS)
            if not st.allows or not reads:
                continue
            if st.covered_actions(SECRET_WRITE_ACTIONS) and tag_confined(st, lay) and env_confined(st, lay):
                continue  # shared-mode rotation statement: rotation-role-scoped checks it
            scopes, wide = grant_scopes(st)
            if wide:
                yield (f"{r.label} {path} {st.label} allows {', '.join(reads)} on {wide}, which reaches beyond one "
                       f"agent's secrets. Fix: grant reads only on the agent's own ARNs {_fix_pattern(lay)} "
                       f"(agentfleet.core.iam_documents.secret_read via agentfleet.core.plan.agent_iam_policy).")
            for scope in scopes:
                if _env_mismatch(scope, lay):
                    yield (f"{r.label} {path} {st.label} allows reads under {scope.folder}, outside this stack's "
                           f"secrets. Fix: use {_fix_pattern(lay, scope.agent)}.")
                seen.setdefault(scope, st.label)
        if len(seen) > 1:
            folders = ", ".join(f"{sc.folder} ({lbl})" for sc, lbl in seen.items())
            yield (f"{r.label} {path} allows secret reads across {len(seen)} agents' folders: {folders}. Fix: one "
                   f"policy per agent role, reading only that agent's ARNs {_fix_pattern(lay)}.")


no_wildcard_secret_read = resource_policy(
    "no-wildcard-secret-read",
    "No IAM policy grants a Secrets Manager read action on `*` or on a pattern reaching beyond one agent's own prefix.",
    IAM_POLICY_TYPES, check_secret_reads,
    remediation="Build agent policies with agentfleet.core.plan.agent_iam_policy: exact `<name>-??????` ARNs.",
)


# ---- trust-policy-scoped ----


def _trust_problem(st: Statement) -> str | None:
    if st.not_principal is not None:
        return "uses NotPrincipal, so it trusts everyone not listed"
    everyone = st.principal == "*" or "*" in principal_values(st.principal, "AWS")
    if everyone:
        return "trusts every AWS principal (`*`)"
    has_condition = bool(st.condition)
    accounts = [p for p in principal_values(st.principal, "AWS") if ACCOUNT_RE.match(p)]
    if accounts and not has_condition:
        return f"trusts whole account(s) {accounts} without a condition"
    for fed in principal_values(st.principal, "Federated"):
        if not has_condition:
            return f"trusts every identity of {fed} (no condition)"
        if fed.endswith(f"oidc-provider/{GITHUB_OIDC_HOST}"):
            subs = [v for vals in st.condition_values(f"{GITHUB_OIDC_HOST}:sub").values() for v in vals]
            if not subs:
                return "trusts GitHub Actions OIDC without pinning the `sub` (any repository could assume it)"
            broad = [v for v in subs if v in ("*", "repo:*") or v.startswith("repo:*")]
            if broad:
                return f"trusts GitHub Actions OIDC for any repository ({broad})"
    return None


def check_trust(r: Resource, lay: Layout) -> Iterable[str]:
    doc = document(get(r.props, "assumeRolePolicy"))
    if isinstance(doc, BadDocument):
        yield f"{r.label} assumeRolePolicy is {doc.reason}. Fix: build it with agentfleet.core.plan.trust_policy."
        return
    if not isinstance(doc, dict):
        return
    for st in statements(doc):
        if not st.allows:
            continue
        problem = _trust_problem(st)
        if problem:
            yield (f"{r.label} trust policy {st.label} {problem}. Fix: trust one runtime (a service, exact role "
                   f"ARNs, or GitHub OIDC pinned to a repo ref) as agents.yaml `runtime:` declares it "
                   f"(agentfleet.core.plan.trust_policy).")


trust_policy_scoped = resource_policy(
    "trust-policy-scoped",
    "No role trusts `*`, or a whole account or identity provider without a condition.",
    [ROLE], check_trust,
    remediation="Declare the runtime in agents.yaml; agentfleet.core.plan.trust_policy builds the trust.",
)


# ---- rotation-role-scoped ----


def _rotation_names(lay: Layout, agent: str) -> set[str]:
    assert lay.settings is not None
    return rotation_role_names(lay.settings, agent)


def check_rotation_scope(r: Resource, lay: Layout) -> Iterable[str]:
    role = text(get(r.props, "role")) if r.type == ROLE_POLICY else text(get(r.props, "name")) if r.type == ROLE else None
    for path, doc in _documents(r):
        agents: dict[str, str] = {}
        for st in statements(doc):
            writes = st.covered_actions(SECRET_WRITE_ACTIONS)
            if not st.allows or not writes:
                continue
            if tag_confined(st, lay) and env_confined(st, lay):
                continue  # shared rotation function: only this environment's managed secrets
            scopes, wide = grant_scopes(st)
            if wide:
                yield (f"{r.label} {path} {st.label} allows {', '.join(writes)} on {wide}, beyond one agent's "
                       f"secrets. Fix: per-agent rotation roles write only {_fix_pattern(lay)}; a shared "
                       f"rotation role must condition on the secrets' `{naming.TAG_MANAGED_BY}={naming.MANAGED_BY}` "
                       f"and `{naming.TAG_ENVIRONMENT}` tags and stay under `<prefix>/<env>/`.")
            for scope in scopes:
                if _env_mismatch(scope, lay):
                    yield f"{r.label} {path} {st.label} writes secrets under {scope.folder}, outside this stack. Fix: use {_fix_pattern(lay, scope.agent)}."
                agents.setdefault(scope.agent, st.label)
        if len(agents) > 1:
            yield (f"{r.label} {path} lets one role write the secrets of {len(agents)} agents {sorted(agents)}. "
                   f"Fix: one rotation role per agent, or the tag-conditioned shared form.")
        if lay.settings is not None and role is not None:
            for agent, label in agents.items():
                if role not in _rotation_names(lay, agent):
                    yield (f"{r.label} {path} {label} lets role {role!r} write agent {agent}'s secrets, but only "
                           f"{sorted(_rotation_names(lay, agent))} may. Fix: move the grant to that rotation role.")


rotation_role_scoped = resource_policy(
    "rotation-role-scoped",
    "A role that can write secrets (a rotation function's) writes only its own agent's, or in shared mode only its environment's managed-by-tagged secrets.",
    IAM_POLICY_TYPES, check_rotation_scope,
    remediation="Rotation roles are built by the rotation components from the builders; do not widen them.",
)

POLICIES = (no_wildcard_secret_read, trust_policy_scoped, rotation_role_scoped)
