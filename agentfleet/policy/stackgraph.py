"""Relating resources of a stack: which secret a rotation, policy or version belongs to, which
role an IAM policy is attached to, and who can read a secret.

References are resolved the way the engine records them: per-property dependencies first (the
real engine sends them), then a prop value equal to a known identifier of the target (ARN, id,
name: what the offline runner's state has), then the resource's dependencies when exactly one
candidate of the right type is among them. Nothing here hard-codes a resource name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from agentfleet.policy.arnmatch import secret_arn, wildcard_match
from agentfleet.policy.base import Resource
from agentfleet.policy.iamdoc import (
    MANAGED_POLICY,
    POLICY_ATTACHMENT,
    ROLE,
    ROLE_POLICY,
    ROLE_POLICY_ATTACHMENT,
    SECRET_POLICY,
    GROUP_POLICY,
    ROLE_ATTACHMENTS_EXCLUSIVE,
    SECRET_WRITE_ACTIONS,
    USER_POLICY,
    Statement,
    grant_scopes,
    identity_documents,
    principal_values,
    role_name_of_arn,
    statements,
)
from agentfleet.policy.layout import Layout
from agentfleet.policy.values import UNKNOWN, as_list, document, get, text

from agentfleet.core.iam_documents import SECRET_READ_ACTIONS

SECRET = "aws:secretsmanager/secret:Secret"
LAMBDA_FUNCTION = "aws:lambda/function:Function"


SECRET_SUFFIX_RE = re.compile(r"-[A-Za-z0-9]{6}$")


def identifiers(r: Resource) -> set[str]:
    """Strings another resource may use to point at `r` (ARN, id, name; a secret's partial ARN)."""
    out = set()
    for key in ("arn", "id", "name", "keyId"):
        v = text(get(r.props, key))
        if v:
            out.add(v)
    if r.type == SECRET:
        arn = text(get(r.props, "arn"))
        if arn and SECRET_SUFFIX_RE.search(arn):
            out.add(arn[:-7])  # the partial ARN (no random suffix) Secrets Manager also accepts
    return out


def secret_name_of_arn(value: str) -> str | None:
    """The name part of a secret ARN (`arn:...:secret:<name>[-XXXXXX]`), suffix kept."""
    fields = value.split(":", 6)
    if len(fields) == 7 and fields[0] == "arn" and fields[2] == "secretsmanager" and fields[5] == "secret":
        return fields[6]
    return None


class Refs:
    """Resolves references to a set of candidate resources; indexed once, so a stack of
    thousands of secrets is related in linear time."""

    def __init__(self, candidates: Iterable[Resource]):
        self.items = list(candidates)
        self.by_urn = {c.urn: c for c in self.items}
        self.by_ident: dict[str, list[Resource]] = {}
        self.by_secret_name: dict[str, list[Resource]] = {}
        for c in self.items:
            for ident in identifiers(c):
                self.by_ident.setdefault(ident, []).append(c)
            name = text(get(c.props, "name")) if c.type == SECRET else None
            if name:
                self.by_secret_name.setdefault(name, []).append(c)

    def lookup(self, value: str) -> list[Resource]:
        """Candidates a string names: an identifier, or a secret ARN whose name part (with or
        without its random suffix) is a secret's name (how AWS resolves partial ARNs)."""
        hit = self.by_ident.get(value)
        if hit:
            return list(hit)
        name = secret_name_of_arn(value)
        if name is not None and self.by_secret_name:
            found = self.by_secret_name.get(name) or self.by_secret_name.get(SECRET_SUFFIX_RE.sub("", name))
            if found:
                return list(found)
        return []

    def resolve(self, res: Resource, prop: str) -> list[Resource]:
        """The candidates `res.props[prop]` points to (see the module docstring for the order)."""
        per_prop = res.property_dependencies.get(prop)
        if per_prop:
            return [self.by_urn[u] for u in per_prop if u in self.by_urn]
        for value in as_list(get(res.props, prop)):
            if isinstance(value, str):
                hit = self.lookup(value)
                if hit:
                    return hit
        deps = [self.by_urn[d] for d in res.dependencies if d in self.by_urn]
        return deps if len(deps) == 1 else []


def references(res: Resource, prop: str, candidates: Iterable[Resource]) -> list[Resource]:
    """One-off `Refs(candidates).resolve(res, prop)`; build a `Refs` to resolve many."""
    return Refs(candidates).resolve(res, prop)


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

    @property
    def reads(self) -> bool:
        return bool(self.statement.covered_actions(SECRET_READ_ACTIONS))

    @property
    def writes(self) -> bool:
        return bool(self.statement.covered_actions(SECRET_WRITE_ACTIONS))

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

    @property
    def agent(self) -> str | None:
        tag = self.role.tag("agent") if self.role is not None else None
        return tag if isinstance(tag, str) else None


@dataclass(frozen=True)
class _Entry:
    key: str
    grant: Grant
    reads: bool
    writes: bool


@dataclass
class Access:
    """Every principal's Allow statements on secrets, indexed by the agent folder they reach."""

    principals: dict[str, Principal] = field(default_factory=dict)
    incomplete: list[str] = field(default_factory=list)
    """Labels of grants whose document or role is unknown (preview): absence can't be proven."""
    by_folder: dict[str, list[_Entry]] = field(default_factory=dict)
    wide: list[_Entry] = field(default_factory=list)
    """Grants not confined to one agent folder: checked against every secret."""
    bound: dict[str, list[_Entry]] = field(default_factory=dict)
    """Resource-policy grants by the URN of the secret they are attached to."""

    def add(self, key: str, grant: Grant) -> None:
        """Index a grant; statements that neither read nor write secrets are dropped here."""
        entry = _Entry(key, grant, grant.reads, grant.writes)
        if not (entry.reads or entry.writes):
            return
        if grant.only_secret is not None:
            self.bound.setdefault(grant.only_secret, []).append(entry)
            return
        scopes, wide = grant_scopes(grant.statement)
        if wide:
            self.wide.append(entry)
            return
        for scope in scopes:
            self.by_folder.setdefault(scope.folder, []).append(entry)

    def _candidates(self, secret: Resource) -> list[_Entry]:
        name = text(get(secret.props, "name")) or ""
        parts = name.split("/")
        if len(parts) < 4:
            every = [g for gs in self.by_folder.values() for g in gs]
            return every + self.wide + self.bound.get(secret.urn, [])
        folder = "/".join(parts[:3]) + "/"
        return self.by_folder.get(folder, []) + self.wide + self.bound.get(secret.urn, [])

    def readers(self, secret: Resource, arn: str) -> dict[str, list[Grant]]:
        """Principal key -> the grants letting it read the secret."""
        out: dict[str, list[Grant]] = {}
        for e in self._candidates(secret):
            if e.reads and e.grant.reaches(secret, arn):
                out.setdefault(e.key, []).append(e.grant)
        return out

    def writers(self, secret: Resource, arn: str) -> set[str]:
        return {e.key for e in self._candidates(secret) if e.writes and e.grant.reaches(secret, arn)}


def _role_key(role: Resource) -> str:
    return text(get(role.props, "name")) or role.name


def _allows(doc: object) -> list[Statement]:
    if not isinstance(doc, dict):
        return []
    return [s for s in statements(doc) if s.allows]


def access_map(resources: list[Resource], secrets: Refs | None = None) -> Access:
    """Who is granted what on secrets: identity policies on roles, and secret resource policies."""
    roles = Refs(of_type(resources, ROLE))
    managed = Refs(of_type(resources, MANAGED_POLICY))
    secrets = secrets if secrets is not None else Refs(of_type(resources, SECRET))
    access = Access()

    def principal(key: str, role: Resource | None) -> str:
        known = access.principals.get(key)
        if known is None:
            access.principals[key] = Principal(key, role)
        elif role is not None and known.role is None:
            known.role = role
        return key

    def attach(keys: list[str], src: Resource, docs: list[tuple[str, object]]) -> None:
        for path, doc in docs:
            if doc is UNKNOWN:
                access.incomplete.append(f"{src.label} {path}")
            for st in _allows(doc):
                for key in keys:
                    access.add(key, Grant(src, st))

    def roles_of(src: Resource, prop: str) -> list[str]:
        found = roles.resolve(src, prop)
        if found:
            return [principal(_role_key(r), r) for r in found]
        names = [v for v in as_list(get(src.props, prop)) if isinstance(v, str)]
        if not names:
            access.incomplete.append(f"{src.label} {prop}")
            return [principal(f"{src.label}.{prop}", None)]
        return [principal(role_name_of_arn(n) or n, None) for n in names]

    def managed_docs(keys: list[str], values: object) -> None:
        for arn in as_list(values):
            for pol in managed.lookup(arn) if isinstance(arn, str) else []:
                attach(keys, pol, list(identity_documents(pol.type, pol.props)))

    for r in resources:
        if r.type == ROLE:
            key = principal(_role_key(r), r)
            attach([key], r, list(identity_documents(r.type, r.props)))
            managed_docs([key], get(r.props, "managedPolicyArns"))
        elif r.type == ROLE_POLICY:
            attach(roles_of(r, "role"), r, list(identity_documents(r.type, r.props)))
        elif r.type in (USER_POLICY, GROUP_POLICY):
            prop = "user" if r.type == USER_POLICY else "group"
            who = text(get(r.props, prop)) or f"{r.label}.{prop}"
            attach([principal(f"{prop}/{who}", None)], r, list(identity_documents(r.type, r.props)))
        elif r.type in (ROLE_POLICY_ATTACHMENT, POLICY_ATTACHMENT, ROLE_ATTACHMENTS_EXCLUSIVE):
            targets = roles_of(r, "roleName" if r.type == ROLE_ATTACHMENTS_EXCLUSIVE else "role" if r.type == ROLE_POLICY_ATTACHMENT else "roles")
            if r.type == POLICY_ATTACHMENT:
                targets += [principal(f"user/{u}", None) for u in as_list(get(r.props, "users")) if isinstance(u, str)]
                targets += [principal(f"group/{g}", None) for g in as_list(get(r.props, "groups")) if isinstance(g, str)]
            if r.type == ROLE_ATTACHMENTS_EXCLUSIVE:
                managed_docs(targets, get(r.props, "policyArns"))
                continue
            pols = managed.resolve(r, "policyArn")
            for pol in pols:
                attach(targets, pol, list(identity_documents(pol.type, pol.props)))
    for r in of_type(resources, SECRET_POLICY, SECRET):
        doc = document(get(r.props, "policy"))
        if doc is UNKNOWN:
            access.incomplete.append(f"{r.label} policy")
        bound = [r] if r.type == SECRET else secrets.resolve(r, "secretArn")
        for st in _allows(doc):
            whos = [st.principal] if isinstance(st.principal, str) else principal_values(st.principal, "AWS")
            for who in whos:
                key = principal(role_name_of_arn(who) or who, None)
                for sec in bound:
                    access.add(key, Grant(r, st, sec.urn))
    return access


def secret_of(res: Resource, prop: str, resources: list[Resource]) -> list[Resource]:
    """One-off lookup; build `Refs(of_type(resources, SECRET))` to resolve many."""
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
