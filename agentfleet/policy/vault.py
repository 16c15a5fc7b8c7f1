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
from agentfleet.core.model import ROTATION_STRATEGIES
from agentfleet.core.settings import StackSettings
from agentfleet.core.vault_policies import WRITE, agent_policy_paths
from agentfleet.policy.arnmatch import AgentScope
from agentfleet.policy.base import Resource, resource_policy
from agentfleet.policy.layout import Layout
from agentfleet.policy.values import UNKNOWN, get, text
from agentfleet.policy.vault_acl import VaultPolicyError
from agentfleet.policy.vault_acl import parse_policy as parse_vault_policy

VAULT_POLICY = "vault:index/policy:Policy"
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
    return {naming.rotation_vault_name(naming.shared_rotation_role_name(s, st)) for st in ROTATION_STRATEGIES if st != "manual"}


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

POLICIES = (vault_policy_confined,)
