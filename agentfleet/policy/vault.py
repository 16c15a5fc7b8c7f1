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
from agentfleet.policy.iamdoc import ROLE
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
        if s is not None and vault_name(name) == naming.vault_policy_name(s, scope.agent) and more:
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


LOGIN_ROLE_SUFFIX = "authBackendRole:AuthBackendRole"
JWT_LOGIN = "vault:jwt/authBackendRole:AuthBackendRole"
KUBERNETES_LOGIN = "vault:kubernetes/authBackendRole:AuthBackendRole"
STACK_METHODS = {"jwt": (JWT_LOGIN,), "kubernetes": (JWT_LOGIN, KUBERNETES_LOGIN)}
"""Login-role types each `agentfleet:vaultLogin` method creates (kubernetes falls back to jwt for
agents off EKS); AWS logins (`vault:aws`) serve every method (rotation functions log in with it)."""


def vault_name(name: str) -> str:
    """A policy or role name as Vault stores it: Vault trims and lowercases policy names (and AWS
    auth role names), so `AGENTS-DEV-CRM ` is the policy `agents-dev-crm`."""
    return name.strip().lower()


def _login_name(r: Resource) -> object:
    """The Vault role name of a login role (`role` on AWS auth, `roleName` elsewhere)."""
    return get(r.props, "role") if r.type == AWS_LOGIN else get(r.props, "roleName")


def _granted(r: Resource) -> tuple[list[str], bool]:
    """(policy names `r` hands to an identity, whether part of that is unknown yet)."""
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
    return granted, unknown


def check_logins(resources: list[Resource], lay: Layout) -> Iterable[tuple[str, str | None]]:
    """Judged on content alone, never on where a resource sits in the tree (`parent=` is the
    program's choice): the builders' one pairing is a login role named exactly like the one policy
    it hands out (naming.vault_auth_role_name == vault_policy_name; rotation_vault_name for both),
    one login per policy and per name in the whole stack, on the stack's login method, and an AWS
    login bound to exactly the IAM role of that name."""
    fix = ("Fix: only the components declare Vault login roles, each binding one agent's (or rotation function's) "
           "identity to its own policy with token_no_default_policy = true")
    names: dict[str, list[Resource]] = {}
    for p in resources:
        n = text(get(p.props, "name")) if p.type == VAULT_POLICY else None
        if n:
            names.setdefault(vault_name(n), []).append(p)
    by_name = {n: same[-1] for n, same in names.items()}
    for n, same in names.items():
        if len(same) > 1:
            yield (f"{len(same)} Vault policies are named {n!r} ({', '.join(sorted(x.label for x in same))}): the last "
                   f"write replaces the reviewed one. Fix: one policy per name, from the components.", same[-1].urn)
    roles_by_name = {n: r for r in resources if r.type == ROLE and (n := text(get(r.props, "name")))}
    handed: dict[str, list[Resource]] = {}
    login_names: dict[str, list[Resource]] = {}
    for r in resources:
        if not r.type.startswith("vault:") or r.type == VAULT_POLICY:
            continue
        is_login = r.type.endswith(LOGIN_ROLE_SUFFIX)
        if is_login:
            ln = text(_login_name(r))
            if ln:
                login_names.setdefault(vault_name(ln), []).append(r)
        granted, unknown = _granted(r)
        if not granted and not unknown:
            if is_login and get(r.props, "tokenNoDefaultPolicy") is not True:
                yield (f"{r.label} gives its logins Vault's `default` policy (token_no_default_policy is not true): "
                       f"a paused agent's login still gets a token with policies. {fix}.", r.urn)
            continue
        if unknown and not granted:
            continue
        for name in (vault_name(g) for g in granted):
            if name in FORBIDDEN_POLICIES:
                yield f"{r.label} hands out Vault's `{name}` policy. {fix}.", r.urn
                continue
            if by_name.get(name) is None:
                yield (f"{r.label} hands out Vault policy {name!r}, which this stack does not declare, so the pack "
                       f"cannot see what it grants. {fix}.", r.urn)
                continue
            handed.setdefault(name, []).append(r)
            if not is_login:
                yield (f"{r.label} hands Vault policy {name!r} to an identity that is not a login role (a token, an "
                       f"identity entity or group): whoever holds it reads that policy's secrets. {fix}.", r.urn)
                continue
            login = _login_name(r)
            if login is not UNKNOWN and (vault_name(text(login) or "") != name or len(granted) != 1):
                yield (f"{r.label} (Vault role {text(login)!r}) hands Vault policy {name!r}: the components name each "
                       f"login role exactly like the one policy it hands out, so this is another identity reading that "
                       f"policy's secrets. {fix}.", r.urn)
        if not is_login:
            continue
        if get(r.props, "tokenNoDefaultPolicy") is not True:
            yield (f"{r.label} gives its logins Vault's `default` policy too (token_no_default_policy is not true). "
                   f"{fix}.", r.urn)
        yield from _login_method(r, lay, fix)
        if r.type == AWS_LOGIN:
            yield from _aws_binding(r, lay, roles_by_name, granted)
    for name, givers in handed.items():
        if len(givers) > 1:
            yield (f"Vault policy {name!r} is handed out by {len(givers)} resources "
                   f"({', '.join(sorted(g.label for g in givers))}): the components give each policy exactly one "
                   f"login, so the others are extra identities reading its secrets. {fix}.", givers[-1].urn)
    for ln, roles in login_names.items():
        if len(roles) > 1:
            yield (f"{len(roles)} Vault login roles are named {ln!r} ({', '.join(sorted(x.label for x in roles))}): the "
                   f"pack pairs a login with its policy by name, so a name is used once in the stack. {fix}.",
                   roles[-1].urn)


def _login_method(r: Resource, lay: Layout, fix: str) -> Iterable[tuple[str, str | None]]:
    """With the stack's settings: AWS logins on the stack's AWS auth mount only, others only of the
    stack's `vaultLogin` method (a JWT role when the stack logs in with AWS auth is not the builders')."""
    s = lay.settings
    if s is None:
        return
    if r.type == AWS_LOGIN:
        backend = get(r.props, "backend")
        if backend is not UNKNOWN and (text(backend) or "aws").strip("/") != s.vault_aws_auth_path.strip("/"):
            yield (f"{r.label} is on Vault auth mount {text(backend)!r}, not the stack's AWS auth "
                   f"({s.vault_aws_auth_path!r}). {fix}.", r.urn)
        return
    if r.type not in STACK_METHODS.get(s.vault_login, ()):
        yield (f"{r.label} is a {r.type.split(':')[1].split('/')[0]} login, and this stack's agents log in with "
               f"`{s.vault_login}` (agentfleet:vaultLogin): the components declare no such login. {fix}.", r.urn)


def _aws_binding(r: Resource, lay: Layout, roles_by_name: dict[str, Resource],
                 granted: list[str]) -> Iterable[tuple[str, str | None]]:
    bound = get(r.props, "boundIamPrincipalArns")
    if bound is UNKNOWN:
        return
    arns = [a for a in (bound if isinstance(bound, list) else []) if isinstance(a, str)]
    wild = [a for a in arns if "*" in a]
    if not arns or wild:
        yield (f"{r.label} binds {'no IAM principal' if not arns else wild}: any role matching it logs in with these "
               f"policies. Fix: bind exactly the IAM role named like the policy.", r.urn)
        return
    expected: set[str] = set()
    for name in granted:
        role_name = naming.shorten(name, naming.ROLE_NAME_MAX)
        if lay.settings is not None:
            expected.add(naming.role_arn(lay.settings, role_name))
        else:
            role = roles_by_name.get(role_name)
            arn = text(get(role.props, "arn")) if role is not None else None
            if arn:
                expected.add(arn)
            elif role is None:
                yield (f"{r.label} hands {name!r} to an IAM principal, and no IAM role of the stack is named "
                       f"{role_name!r}. Fix: bind exactly the IAM role named like the policy.", r.urn)
    if expected and set(arns) != expected:
        yield (f"{r.label} binds {sorted(set(arns) - expected) or sorted(arns)}, not (only) the IAM role named like "
               f"its policy ({sorted(expected)}): another principal would log in with it. Fix: bind exactly that "
               f"role's ARN.", r.urn)


vault_login_confined = stack_policy(
    "vault-login-confined",
    "Every Vault login role (AWS, AppRole, JWT, Kubernetes, tokens, identities) hands an agent's policy only to that agent's own identity, never `default` or `root`.",
    check_logins,
    remediation="Only the components declare login roles (agentfleet.components.agent_access).",
)

POLICIES = (vault_policy_confined, vault_login_confined)
