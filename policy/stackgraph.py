"""Relating resources of a stack: which secret a rotation, policy or version belongs to, which
role an IAM policy is attached to, and who can read a secret.

References are resolved the way the engine records them: per-property dependencies first (the
real engine sends them), then a prop value equal to a known identifier of the target (ARN, id,
name: what the offline runner's state has), then the resource's dependencies when exactly one
candidate of the right type is among them. Nothing here hard-codes a resource name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

from policy.arnmatch import secret_arn, wildcard_match
from policy.base import Resource
from policy.iamdoc import (
    MANAGED_POLICY,
    POLICY_ATTACHMENT,
    ROLE,
    ROLE_POLICY,
    ROLE_POLICY_ATTACHMENT,
    SECRET_POLICY,
    SECRET_WRITE_ACTIONS,
    Statement,
    identity_documents,
    principal_values,
    role_name_of_arn,
    statements,
)
from policy.layout import Layout
from policy.values import UNKNOWN, as_list, document, get, text

from components.iam import SECRET_READ_ACTIONS

SECRET = "aws:secretsmanager/secret:Secret"


def identifiers(r: Resource) -> set[str]:
    """Strings another resource may use to point at `r` (ARN, id, name)."""
    out = set()
    for key in ("arn", "id", "name"):
        v = text(get(r.props, key))
        if v:
            out.add(v)
    return out


def references(res: Resource, prop: str, candidates: Iterable[Resource]) -> list[Resource]:
    """The candidates `res.props[prop]` points to (see the module docstring for the order)."""
    cands = list(candidates)
    per_prop = res.property_dependencies.get(prop)
    if per_prop:
        return [c for c in cands if c.urn in per_prop]
    for value in as_list(get(res.props, prop)):
        if isinstance(value, str):
            hits = [c for c in cands if value in identifiers(c)]
            if hits:
                return hits
    deps = [c for c in cands if c.urn in res.dependencies]
    return deps if len(deps) == 1 else []


def of_type(resources: Iterable[Resource], *types: str) -> list[Resource]:
    return [r for r in resources if r.type in types]


def sample_arn(secret: Resource, lay: Layout) -> str | None:
    """A concrete ARN for the secret: its own when known, else built from its name and settings."""
    arn = text(get(secret.props, "arn"))
    if arn:
        return arn
    name = text(get(secret.props, "name"))
    if not name:
        return None
    s = lay.settings
    if s is not None:
        return secret_arn(s.partition, s.aws_region, s.aws_account_id, name)
    # No settings: any partition/region/account; patterns are then matched on the name part.
    return secret_arn("*", "*", "*", name)


def pattern_matches_secret(pattern: str, arn: str) -> bool:
    """AWS wildcard match; when the ARN has `*` fields (unknown), compare field-wise."""
    if "*" not in arn:
        return wildcard_match(pattern, arn)
    if pattern == "*":
        return True
    p, a = pattern.split(":", 6), arn.split(":", 6)
    if len(p) != 7:
        return wildcard_match(pattern, arn.replace("*", "x"))
    return all(af == "*" or wildcard_match(pf, af) for pf, af in zip(p[:6], a[:6])) and wildcard_match(p[6], a[6])


def statement_reaches(stmt: Statement, arn: str) -> bool:
    if stmt.not_resources is not None:
        return not any(pattern_matches_secret(p, arn) for p in stmt.not_resources)
    return any(pattern_matches_secret(p, arn) for p in stmt.resources)


@dataclass(frozen=True)
class Grant:
    """An Allow statement and where it comes from; resource-policy grants bind to their secret."""

    source: Resource
    statement: Statement
    only_secret: str | None = None
    """URN of the secret a resource policy is attached to (its `Resource: "*"` means that secret)."""

    def reaches(self, secret: Resource, arn: str) -> bool:
        if self.only_secret is not None:
            return self.only_secret == secret.urn
        return statement_reaches(self.statement, arn)


@dataclass
class Principal:
    """A role (in the stack or only known by name/ARN) and what its policies allow on secrets."""

    key: str
    """Role name when known, else a description of where the grant comes from."""
    role: Resource | None = None
    grants: list[Grant] = field(default_factory=list)

    @property
    def agent(self) -> str | None:
        tag = self.role.tag("agent") if self.role is not None else None
        return tag if isinstance(tag, str) else None

    def reads(self, secret: Resource, arn: str) -> list[Grant]:
        return [g for g in self.grants if g.reaches(secret, arn) and g.statement.covered_actions(SECRET_READ_ACTIONS)]

    def writes(self, secret: Resource, arn: str) -> bool:
        return any(g.reaches(secret, arn) and g.statement.covered_actions(SECRET_WRITE_ACTIONS) for g in self.grants)


@dataclass
class Access:
    """Every principal with secret grants, and whether some document could not be read."""

    principals: dict[str, Principal]
    incomplete: list[str]
    """Labels of grants whose document or role is unknown (preview): absence can't be proven."""


def _role_key(role: Resource) -> str:
    return text(get(role.props, "name")) or role.name


def _allows(doc: object) -> list[Statement]:
    if not isinstance(doc, dict):
        return []
    return [s for s in statements(doc) if s.allows]


def access_map(resources: list[Resource]) -> Access:
    """Who is granted what on secrets: identity policies on roles, and secret resource policies."""
    roles = of_type(resources, ROLE)
    managed = of_type(resources, MANAGED_POLICY)
    principals: dict[str, Principal] = {}
    incomplete: list[str] = []

    def principal(key: str, role: Resource | None) -> Principal:
        if key not in principals:
            principals[key] = Principal(key, role)
        elif role is not None and principals[key].role is None:
            principals[key].role = role
        return principals[key]

    def attach(target: Principal, src: Resource, docs: list[tuple[str, object]]) -> None:
        for path, doc in docs:
            if doc is UNKNOWN:
                incomplete.append(f"{src.label} {path}")
            target.grants.extend(Grant(src, st) for st in _allows(doc))

    def roles_of(src: Resource, prop: str) -> list[Principal]:
        found = references(src, prop, roles)
        if found:
            return [principal(_role_key(r), r) for r in found]
        names = [v for v in as_list(get(src.props, prop)) if isinstance(v, str)]
        if not names:
            incomplete.append(f"{src.label} {prop}")
            return [principal(f"{src.label}.{prop}", None)]
        return [principal(role_name_of_arn(n) or n, None) for n in names]

    for r in resources:
        if r.type == ROLE:
            attach(principal(_role_key(r), r), r, list(identity_documents(r.type, r.props)))
        elif r.type == ROLE_POLICY:
            for p in roles_of(r, "role"):
                attach(p, r, list(identity_documents(r.type, r.props)))
        elif r.type in (ROLE_POLICY_ATTACHMENT, POLICY_ATTACHMENT):
            pols = references(r, "policyArn", managed)
            targets = roles_of(r, "role" if r.type == ROLE_POLICY_ATTACHMENT else "roles")
            for pol in pols:
                for p in targets:
                    attach(p, pol, list(identity_documents(pol.type, pol.props)))
    for r in of_type(resources, SECRET_POLICY, SECRET):
        doc = document(get(r.props, "policy"))
        if doc is UNKNOWN:
            incomplete.append(f"{r.label} policy")
        bound = [r] if r.type == SECRET else secret_of(r, "secretArn", resources)
        for st in _allows(doc):
            whos = [st.principal] if isinstance(st.principal, str) else principal_values(st.principal, "AWS")
            for who in whos:
                for sec in bound:
                    principal(role_name_of_arn(who) or who, None).grants.append(Grant(r, st, sec.urn))
    return Access(principals, incomplete)


def secret_of(res: Resource, prop: str, resources: list[Resource]) -> list[Resource]:
    return references(res, prop, of_type(resources, SECRET))


def agent_of(r: Resource, by_urn: Mapping[str, Resource]) -> str | None:
    """The agent tag of `r` or of its nearest tagged ancestor."""
    seen: set[str] = set()
    cur: Resource | None = r
    while cur is not None and cur.urn not in seen:
        seen.add(cur.urn)
        tag = cur.tag("agent")
        if isinstance(tag, str):
            return tag
        cur = by_urn.get(cur.parent) if cur.parent else None
    return None
