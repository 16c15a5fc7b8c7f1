"""Vault policy: each agent's policy touches only its own KV paths, with no `sudo`/`root`.

The allowed paths are `agentfleet.core.vault_policies.agent_policy_paths` (data and metadata of
`<mount>/.../<env>/<agent>/`); globs may appear only after that folder, never before it.
A rotation function's policy (`agentfleet.core.vault_policies.rotation_policy_hcl`, named like its IAM role) may
also create/update literal `<mount>/data/<env>/<agent>/<credential>` paths: of its own agent
(per-agent isolation), or of several agents (shared isolation, one policy per strategy).
"""

from __future__ import annotations

from typing import Iterable

from agentfleet.core import naming
from agentfleet.core.model import AUTOMATED_STRATEGIES
from agentfleet.core.settings import StackSettings
from agentfleet.core.vault_policies import WRITE, agent_policy_paths
from agentfleet.policy.arnmatch import AgentScope
from agentfleet.policy.base import Resource, resource_policy, stack_policy
from agentfleet.policy.layout import Layout
from agentfleet.policy.values import UNKNOWN, get, text
from agentfleet.policy.vault_acl import VaultPolicyError
from agentfleet.policy.vault_acl import parse_policy as parse_vault_policy

VAULT_POLICY = "vault:index/policy:Policy"
AGENT_CAPABILITIES = frozenset({"read", "list", "deny"})
"""What an agent's own policy may grant on its folder (the builder grants read and list)."""
FORBIDDEN_CAPABILITIES = ("sudo", "root")
VAULT_GLOBS = ("*", "+")
KV_SECTIONS = ("data", "metadata", "delete", "undelete", "destroy")



HclError = VaultPolicyError
"""The old name of the parse error."""


def parse_policy(source: str) -> dict[str, tuple[str, ...]]:
    """Path -> capabilities (sorted) as Vault reads the policy (`agentfleet.policy.vault_acl`)."""
    return {p: tuple(sorted(c)) for p, c in parse_vault_policy(source).items()}


def _glob_free(segment: str) -> bool:
    return bool(segment) and not any(g in segment for g in VAULT_GLOBS)


def path_scope(path: str) -> tuple[str, AgentScope] | None:
    """`<mount>/<section>/<env>/<agent>/...` with literal first four segments -> (mount, scope)."""
    parts = path.split("/")
    if len(parts) < 5 or parts[1] not in KV_SECTIONS or not all(_glob_free(p) for p in parts[:4]):
        return None
    return parts[0], AgentScope("", parts[2], parts[3])


def _rotation_write(path: str, caps: tuple[str, ...]) -> bool:
    """create/update (nothing else) on one literal credential's KV v2 data path."""
    parts = path.split("/")
    return (bool(caps) and set(caps) <= set(WRITE) and len(parts) == 5 and parts[1] == "data"
            and all(_glob_free(p) for p in parts))


def _shared_rotation_names(s: StackSettings) -> set[str]:
    if s.rotation_isolation != "shared":
        return set()
    return {naming.rotation_vault_name(naming.shared_rotation_role_name(s, st)) for st in AUTOMATED_STRATEGIES}


def _writer_names(s: StackSettings, agent: str) -> set[str]:
    """Policies that may write this agent's credential values: its rotation function's."""
    if s.rotation_isolation == "shared":
        return _shared_rotation_names(s)
    return {naming.rotation_vault_name(naming.rotation_role_name(s, agent))}


def check_vault_policy(r: Resource, lay: Layout) -> Iterable[str]:
    source = get(r.props, "policy")
    if source is None or source is UNKNOWN:
        return
    if not isinstance(source, str):
        yield f"{r.label} policy is not a string the pack can read. Fix: pass the builder's HCL."
        return
    name = text(get(r.props, "name")) or r.name
    fix = "use the builder's policy (agentfleet.core.vault_policies.agent_policy_hcl): read its own `<mount>/data|metadata/<env>/<agent>/*` only"
    try:
        paths = parse_policy(source)
    except VaultPolicyError as exc:
        yield f"{r.label} cannot be verified: {exc}. Fix: {fix}."
        return
    owners: dict[tuple[str, str, str], str] = {}
    for path, caps in paths.items():
        bad = [c for c in caps if c in FORBIDDEN_CAPABILITIES]
        if bad:
            yield f"{r.label} grants {bad} on {path!r}; agents never need it. Fix: {fix}."
        if set(caps) <= {"deny"}:
            continue  # a deny-only block takes access away (a paused agent's policy)
        scoped = path_scope(path)
        if scoped is None:
            yield (f"{r.label} grants {list(caps)} on {path!r}, which is not confined to one agent's folder "
                   f"(globs before `<env>/<agent>/`, or outside the KV layout). Fix: {fix}.")
            continue
        mount, scope = scoped
        owners.setdefault((mount, scope.environment, scope.agent), path)
        s = lay.settings
        more = set(caps) - AGENT_CAPABILITIES - set(FORBIDDEN_CAPABILITIES)
        if s is not None and name == naming.vault_policy_name(s, scope.agent) and more:
            yield (f"{r.label} lets agent {scope.agent} {sorted(more)} its own path {path!r}; "
                   f"an agent only reads (and lists) its credentials, never overwrites or destroys them. Fix: {fix}.")
        if s is not None:
            allowed = [p.rstrip("*") for p in agent_policy_paths(s, scope.agent)]
            if not any(path.startswith(a) for a in allowed):
                yield f"{r.label} grants {list(caps)} on {path!r}, outside this stack's KV folders {allowed}. Fix: {fix}."
            expected = naming.vault_policy_name(s, scope.agent)
            if name != expected and not (_rotation_write(path, caps) and name in _writer_names(s, scope.agent)):
                yield (f"{r.label} (Vault policy {name!r}) grants {list(caps)} on agent {scope.agent}'s path {path!r}; "
                       f"only that agent's policy {expected!r} may. Fix: {fix}.")
    shared_writer = lay.settings is not None and name in _shared_rotation_names(lay.settings)
    if len(owners) > 1 and not shared_writer:
        listed = ", ".join(f"{m}/…/{e}/{a}/" for m, e, a in owners)
        yield f"{r.label} reaches the folders of {len(owners)} agents ({listed}). Fix: one policy per agent; {fix}."


vault_policy_confined = resource_policy(
    "vault-policy-confined",
    "Each agent's Vault policy only touches its own KV paths, with no sudo/root and no glob beyond its prefix.",
    [VAULT_POLICY], check_vault_policy,
    remediation=("Vault policies come from agentfleet.core.vault_policies.agent_policy_hcl (agents) and rotation_policy_hcl"
                 " (rotation functions); do not hand-write them."),
)

# ---- vault-login-confined ----

POLICY_LIST_PROPS = ("tokenPolicies", "policies", "allowedPolicies", "identityPolicies")
"""Where a Vault resource hands policies to an identity (auth roles, tokens, identity entities/groups)."""
FORBIDDEN_POLICIES = ("root",)
AWS_LOGIN = "vault:aws/authBackendRole:AuthBackendRole"


def _component(r: Resource, index: dict[str, Resource]) -> Resource | None:
    """The nearest project component (`agentfleet:` type) above `r`, if any."""
    seen: set[str] = set()
    cur = index.get(r.parent or "")
    while cur is not None and cur.urn not in seen:
        seen.add(cur.urn)
        if cur.type.startswith("agentfleet:"):
            return cur
        cur = index.get(cur.parent or "")
    return None


def check_logins(resources: list[Resource], lay: Layout) -> Iterable[tuple[str, str | None]]:
    index = {r.urn: r for r in resources}
    by_name: dict[str, Resource] = {}
    for p in resources:
        if p.type == VAULT_POLICY:
            n = text(get(p.props, "name"))
            if n:
                by_name[n] = p
    fix = ("Fix: only the components declare Vault login roles, each binding one agent's (or rotation function's) "
           "identity to its own policy with token_no_default_policy = true")
    names: dict[str, list[Resource]] = {}
    for p in resources:
        n = text(get(p.props, "name")) if p.type == VAULT_POLICY else None
        if n:
            names.setdefault(n, []).append(p)
    for n, same in names.items():
        if len(same) > 1:
            yield (f"{len(same)} Vault policies are named {n!r} ({', '.join(sorted(x.label for x in same))}): the last "
                   f"write replaces the reviewed one. Fix: one policy per name, from the components.", same[-1].urn)
    role_arns: dict[str, set[str | None]] | None = None
    for r in resources:
        if not r.type.startswith("vault:") or r.type == VAULT_POLICY:
            continue
        granted: list[str] = []
        unknown = False
        for prop in POLICY_LIST_PROPS:
            value = get(r.props, prop)
            if value is UNKNOWN:
                unknown = True
            for item in value if isinstance(value, list) else []:
                if item is UNKNOWN:
                    unknown = True
                elif isinstance(item, str):
                    granted.append(item)
        if not granted and not unknown:
            if r.type.endswith("authBackendRole:AuthBackendRole") and get(r.props, "tokenNoDefaultPolicy") is not True:
                yield (f"{r.label} gives its logins Vault's `default` policy (token_no_default_policy is not true): "
                       f"a paused agent's login still gets a token with policies. {fix}.", r.urn)
            continue
        if unknown and not granted:
            continue
        home = _component(r, index)
        for name in granted:
            if name in FORBIDDEN_POLICIES:
                yield f"{r.label} hands out Vault's `{name}` policy. {fix}.", r.urn
                continue
            target = by_name.get(name)
            if target is None:
                yield (f"{r.label} hands out Vault policy {name!r}, which this stack does not declare, so the pack "
                       f"cannot see what it grants. {fix}.", r.urn)
                continue
            owner = _component(target, index)
            if home is None or owner is None or home.urn != owner.urn:
                yield (f"{r.label} hands Vault policy {name!r} (declared by {owner.label if owner else 'the program'}) "
                       f"to an identity declared {'outside any component' if home is None else 'by ' + home.label}: "
                       f"another identity would read that agent's secrets. {fix}.", r.urn)
        if get(r.props, "tokenNoDefaultPolicy") is not True and r.type.endswith("authBackendRole:AuthBackendRole"):
            yield (f"{r.label} gives its logins Vault's `default` policy too (token_no_default_policy is not true). "
                   f"{fix}.", r.urn)
        if r.type == AWS_LOGIN:
            if role_arns is None:
                role_arns = _role_arns_by_component(index)
            yield from _aws_binding(r, home, role_arns)


def _role_arns_by_component(index: dict[str, Resource]) -> dict[str, set[str | None]]:
    """Component URN -> the ARNs of the IAM roles it declares (its nearest project component), built
    once per check: a scan of every resource per login made the check quadratic (issue 17)."""
    out: dict[str, set[str | None]] = {}
    for x in index.values():
        if x.type == "aws:iam/role:Role":
            comp = _component(x, index)
            if comp is not None:
                out.setdefault(comp.urn, set()).add(text(get(x.props, "arn")))
    return out


def _aws_binding(r: Resource, home: Resource | None,
                 role_arns: dict[str, set[str | None]]) -> Iterable[tuple[str, str | None]]:
    bound = get(r.props, "boundIamPrincipalArns")
    if bound is UNKNOWN:
        return
    arns = [a for a in (bound if isinstance(bound, list) else []) if isinstance(a, str)]
    own = set(role_arns.get(home.urn, ())) if home is not None else set()
    wild = [a for a in arns if "*" in a]
    if not arns or wild:
        yield (f"{r.label} binds {'no IAM principal' if not arns else wild}: any role matching it logs in with these "
               f"policies. Fix: bind exactly the component's own role ARN.", r.urn)
    elif own - {None} and set(arns) - own:
        yield (f"{r.label} binds {sorted(set(arns) - own)}, not the role of its own component. Fix: bind exactly "
               f"the component's own role ARN.", r.urn)


vault_login_confined = stack_policy(
    "vault-login-confined",
    "Every Vault login role (AWS, AppRole, JWT, Kubernetes, tokens, identities) hands an agent's policy only to that agent's own identity, never `default` or `root`.",
    check_logins,
    remediation="Only the components declare login roles (agentfleet.components.agent_access).",
)

POLICIES = (vault_policy_confined, vault_login_confined)
