"""Closed world: what the pack cannot fully evaluate does not get near the fleet's credentials.

The other policies judge documents they can read. These two make sure nothing routes around
them: a grant whose content lives outside the stack (an AWS managed policy, a policy attached by
a literal ARN), long-lived IAM identities (users, access keys, groups), resource types the pack
does not evaluate that reference a managed role, secret, KMS key or Vault policy, Vault generic
writes (which can create policies and auth roles), and a second resource policy or rotation on a
managed secret (on AWS the last writer wins), however the secret is referenced (name, ARN,
partial ARN, Output). The only way through is a reviewed exception in the policy config
(`exceptions: [{resource: <logical name or URN>, reason: ...}]`, or `{managedPolicyArn: ...}`).

Resources declared inside the project's own components (an `agentfleet:` component ancestor)
are the builders' and are judged by the other policies only; a raw resource appended to the
program has no such ancestor.
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator

from agentfleet.policy.base import Resource, by_urn, stack_policy
from agentfleet.policy.iamdoc import (
    GROUP_POLICY_ATTACHMENT,
    MANAGED_POLICY,
    POLICY_ATTACHMENT,
    ROLE,
    ROLE_ATTACHMENTS_EXCLUSIVE,
    ROLE_POLICY,
    ROLE_POLICY_ATTACHMENT,
    SECRET_POLICY,
    USER_POLICY_ATTACHMENT,
)
from agentfleet.policy.layout import Layout
from agentfleet.policy.rotation import SECRET_ROTATION, string_leaves
from agentfleet.policy.stackgraph import SECRET, Refs, identifiers, of_type
from agentfleet.policy.values import UNKNOWN, as_list, get, text

KMS_KEY = "aws:kms/key:Key"
KMS_ALIAS = "aws:kms/alias:Alias"
KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
VAULT_POLICY = "vault:index/policy:Policy"
COMPONENT_PACKAGE = "agentfleet:"

ATTACHMENT_PROPS: dict[str, str] = {
    ROLE_POLICY_ATTACHMENT: "policyArn",
    POLICY_ATTACHMENT: "policyArn",
    USER_POLICY_ATTACHMENT: "policyArn",
    GROUP_POLICY_ATTACHMENT: "policyArn",
    ROLE_ATTACHMENTS_EXCLUSIVE: "policyArns",
    ROLE: "managedPolicyArns",
}
"""Where a resource names managed policies to attach (a role's own `managedPolicyArns` too)."""

LONG_LIVED_IDENTITY_PREFIXES = (
    "aws:iam/user", "aws:iam/group", "aws:iam/accessKey:", "aws:iam/serviceSpecificCredential:",
    "aws:iam/signingCertificate:", "aws:iam/sshKey:", "aws:iam/virtualMfaDevice:",
)
"""IAM users, their keys, login profiles, groups and memberships: the fleet has none by design."""

VAULT_WRITE_ANYWHERE_PREFIXES = ("vault:generic/",)
"""Writes to arbitrary Vault paths (`sys/policy/...`, `auth/.../role/...`): not evaluable."""

EVALUATED_TYPES = frozenset({
    ROLE, ROLE_POLICY, MANAGED_POLICY, *ATTACHMENT_PROPS, SECRET, SECRET_POLICY, SECRET_ROTATION,
    "aws:secretsmanager/secretVersion:SecretVersion", KMS_KEY, KMS_ALIAS, KEY_POLICY, VAULT_POLICY,
    "aws:lambda/permission:Permission", "aws:lambda/functionUrl:FunctionUrl",
    "aws:ssm/parameter:Parameter", "aws:sns/topic:Topic", "aws:sns/topicPolicy:TopicPolicy",
})
"""Types another policy of the pack fully judges; referencing managed resources from them is fine."""
EVALUATED_PREFIXES = ("aws:cloudwatch/", "aws:scheduler/", "aws:cloudtrail/", "aws:s3/", "vault:kv/", "random:")
"""Monitoring, reminder schedules, trail storage, KV values (no-literal-secret-values), generators."""


def evaluated_by_class(r: Resource) -> bool:
    """Classes judged elsewhere whatever their exact type: Vault login roles (vault-login-confined),
    workload identity bindings (the role's trust policy decides), secret-holding stores."""
    if r.type in EVALUATED_TYPES or r.type.startswith(EVALUATED_PREFIXES):
        return True
    return r.type.startswith("vault:") and r.type.endswith("authBackendRole:AuthBackendRole")


ROLE_USE_PROP = re.compile(r"(^role$|^roles$|rolearn$|role_arn$|executionrole|taskrole|servicerole|iamrole|instanceprofile)", re.I)
"""Inputs through which a resource *acts as* a role (a function's or task's execution role, a
pod identity association, an instance profile, a schedule's or event target's role)."""
GRANT_TO_ROLE_TYPES = frozenset({ROLE_POLICY, *ATTACHMENT_PROPS, "aws:iam/rolePoliciesExclusive:RolePoliciesExclusive"})
"""Types whose `role` input is the grantee: their documents are judged by the IAM policies."""


def role_uses(r: Resource, managed: "Managed") -> list[Resource]:
    """Managed roles a resource outside the components would run as (by class: any input named
    like an execution role that names or depends on a managed role)."""
    if r.type in GRANT_TO_ROLE_TYPES or r.type.startswith("vault:"):
        return []
    found: dict[str, Resource] = {}
    for key, value in r.props.items():
        if not ROLE_USE_PROP.search(key):
            continue
        for leaf in string_leaves(value):
            hit = managed.exact.get(leaf)
            if hit is not None and hit.type == ROLE:
                found[hit.urn] = hit
        for urn in r.property_dependencies.get(key, ()):
            res = managed.urns.get(urn)
            if res is not None and res.type == ROLE:
                found[urn] = res
    return list(found.values())


def is_component(r: Resource) -> bool:
    """Component resources (`pkg:index:Name`) and providers hold no cloud state of their own."""
    if r.type.startswith("pulumi:"):
        return True
    parts = r.type.split(":")
    return len(parts) == 3 and "/" not in parts[1]


def in_project_component(r: Resource, index: dict[str, Resource]) -> bool:
    seen: set[str] = set()
    cur = index.get(r.parent or "")
    while cur is not None and cur.urn not in seen:
        seen.add(cur.urn)
        if cur.type.startswith(COMPONENT_PACKAGE):
            return True
        cur = index.get(cur.parent or "")
    return False


def _exception_hint(r: Resource) -> str:
    return (f"or, if this was reviewed, list it in the policy config `exceptions` "
            f"({{\"resource\": \"{r.name}\", \"reason\": \"...\"}})")


class Managed:
    """Identifiers of what the fleet protects: roles, secrets, the KMS key and aliases, Vault policies."""

    def __init__(self, resources: list[Resource]):
        self.urns: dict[str, Resource] = {}
        self.exact: dict[str, Resource] = {}
        self.arns: list[tuple[str, Resource]] = []
        for r in resources:
            if r.type in (ROLE, SECRET, KMS_KEY, KMS_ALIAS, VAULT_POLICY):
                self.urns[r.urn] = r
                for ident in identifiers(r):
                    self.exact.setdefault(ident, r)
                    if ident.startswith("arn:"):
                        self.arns.append((ident, r))
        self.secrets = Refs(of_type(resources, SECRET))

    def referenced_by(self, r: Resource) -> list[Resource]:
        found: dict[str, Resource] = {}
        for leaf in string_leaves(r.props):
            hit = self.exact.get(leaf)
            if hit is not None:
                found[hit.urn] = hit
                continue
            for s in self.secrets.lookup(leaf):
                found[s.urn] = s
            if ":" in leaf:
                for arn, res in self.arns:
                    if arn in leaf:
                        found[res.urn] = res
        deps = set(r.dependencies) | {u for us in r.property_dependencies.values() for u in us}
        for urn in deps:
            if urn in self.urns:
                found[urn] = self.urns[urn]
        return list(found.values())


def _policy_arns(r: Resource) -> Iterator[object]:
    yield from as_list(get(r.props, ATTACHMENT_PROPS[r.type]))


def check_closed_world(resources: list[Resource], lay: Layout) -> Iterable[tuple[str, str | None]]:
    index = by_urn(resources)
    managed = Managed(resources)
    policies = Refs(of_type(resources, MANAGED_POLICY))
    for r in resources:
        if lay.excepted(r.name, r.urn) or is_component(r):
            continue
        if r.type.startswith(LONG_LIVED_IDENTITY_PREFIXES):
            yield (f"{r.label} declares a long-lived IAM identity (user, access key, group); the fleet's principals "
                   f"are roles with short-lived sessions only. Fix: give the workload an agent role in agents.yaml, "
                   f"{_exception_hint(r)}.", r.urn)
            continue
        if r.type.startswith(VAULT_WRITE_ANYWHERE_PREFIXES):
            yield (f"{r.label} writes an arbitrary Vault path ({text(get(r.props, 'path')) or 'unknown path'}): it can "
                   f"create policies, auth roles or secrets the pack cannot evaluate. Fix: use the typed resources the "
                   f"components declare, {_exception_hint(r)}.", r.urn)
            continue
        if r.type in ATTACHMENT_PROPS:
            yield from _attachments(r, lay, policies)
        if in_project_component(r, index):
            continue
        runs_as = role_uses(r, managed)
        if runs_as:
            yield (f"{r.label} runs as the fleet's role(s) {sorted(x.label for x in runs_as)}: whatever code or "
                   f"workload it starts gets that role's access to secrets. Fix: give it its own role (an agent in "
                   f"agents.yaml), {_exception_hint(r)}.", r.urn)
            continue
        if r.type in EVALUATED_TYPES or evaluated_by_class(r):
            continue
        refs = managed.referenced_by(r)
        if refs:
            named = ", ".join(sorted(x.label for x in refs)[:4])
            yield (f"{r.label} is a resource type the pack does not evaluate, and it references managed "
                   f"resources ({named}): what it grants cannot be checked. Fix: remove it, "
                   f"{_exception_hint(r)}.", r.urn)


def _attachments(r: Resource, lay: Layout, policies: Refs) -> Iterator[tuple[str, str | None]]:
    prop = ATTACHMENT_PROPS[r.type]
    per_prop = r.property_dependencies.get(prop) or ()
    if get(r.props, prop) is UNKNOWN:
        if per_prop and all(u in policies.by_urn for u in per_prop):
            return
        if r.type == ROLE:
            return  # computed at deploy time
        yield (f"{r.label} attaches a managed policy the pack cannot see ({prop} is computed). Fix: attach only "
               f"policies declared in this stack, {_exception_hint(r)}.", r.urn)
        return
    for arn in _policy_arns(r):
        if not isinstance(arn, str) or arn in ("",):
            continue
        if policies.lookup(arn) or lay.managed_policy_allowed(arn):
            continue
        what = "an AWS managed policy" if ":iam::aws:policy/" in arn else "a policy from outside this stack"
        yield (f"{r.label} attaches {what} ({arn}) whose content the pack cannot evaluate. Fix: grant through the "
               f"builders (agentfleet.core.plan), or list the ARN in the policy config `exceptions` "
               f"({{\"managedPolicyArn\": \"{arn}\", \"reason\": \"...\"}}).", r.urn)


closed_world = stack_policy(
    "closed-world",
    "Nothing the pack cannot evaluate references the fleet's roles, secrets, key or Vault policies: no outside or AWS managed policies, IAM users/keys, Vault generic writes or unevaluated resource types.",
    check_closed_world,
    remediation="Declare access in agents.yaml; a reviewed exception goes into the policy config `exceptions`.",
)


# ---- one resource policy and one rotation per secret ----


def _targets(r: Resource, prop: str, secrets: Refs) -> list[Resource] | None:
    """The managed secrets `r` points at; None when not knowable yet (preview)."""
    found = secrets.resolve(r, prop)
    if found:
        return found
    value = get(r.props, prop)
    if value is UNKNOWN or value is None:
        return None if value is UNKNOWN and not r.dependencies else []
    return []


def check_one_each(resources: list[Resource], lay: Layout) -> Iterable[tuple[str, str | None]]:
    secrets = Refs(of_type(resources, SECRET))
    kinds = ((SECRET_POLICY, "secretArn", "resource policy", "resource policies"), (SECRET_ROTATION, "secretId", "rotation", "rotations"))
    for type_, prop, what, whats in kinds:
        per_secret: dict[str, list[Resource]] = {}
        if type_ == SECRET_POLICY:
            for sec in secrets.items:
                if get(sec.props, "policy") not in (None, ""):
                    per_secret.setdefault(sec.urn, []).append(sec)
        for r in of_type(resources, type_):
            targets = _targets(r, prop, secrets)
            if targets is None:
                continue
            if not targets:
                if lay.excepted(r.name, r.urn):
                    continue
                yield (f"{r.label} sets a {what} on {get(r.props, prop)!r}, which is no secret of this stack the pack "
                       f"can identify. Fix: attach {whats} only to the stack's secrets (the components do), "
                       f"{_exception_hint(r)}.", r.urn)
                continue
            for t in targets:
                per_secret.setdefault(t.urn, []).append(r)
        for urn, items in per_secret.items():
            if len(items) > 1:
                sec = secrets.by_urn[urn]
                yield (f"{sec.label} has {len(items)} {whats} ({', '.join(sorted(i.label for i in items))}); AWS keeps only one "
                       f"(the last applied), so the reviewed one can be silently replaced. Fix: keep only the "
                       f"components' {what}.", urn)


one_policy_and_rotation_per_secret = stack_policy(
    "one-policy-and-rotation-per-secret",
    "Each managed secret has at most one resource policy and one rotation, however it is referenced (name, ARN, partial ARN, Output).",
    check_one_each,
    remediation="Only the components attach resource policies and rotations to the fleet's secrets.",
)

POLICIES = (closed_world, one_policy_and_rotation_per_secret)
