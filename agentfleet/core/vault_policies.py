"""Vault/OpenBao policy HCL, rendered in this one place: one per agent, one per rotation function.

The agent reads its own KV v2 folder (`<mount>/data/<env>/<agent>/*`) and reads/lists its own
metadata; nothing else, no `sudo`, no glob wider than its folder. A paused agent's policy
names the same paths with `deny`, so it grants nothing even if a stale mapping remains.
A rotation function may create/update exactly the `data/` paths of the Vault copies it rotates.
"""

from __future__ import annotations

from typing import Iterable

from agentfleet.core.naming import vault_agent_prefix, vault_api_path, vault_path
from agentfleet.core.settings import StackSettings

READ = ("read",)
METADATA = ("read", "list")
DENY = ("deny",)
WRITE = ("create", "update")
"""A rotation function writes new values; it never reads, lists or deletes (the sync record in
Secrets Manager tells it what Vault holds)."""


def _block(path: str, caps: tuple[str, ...]) -> str:
    quoted = ", ".join(f'"{c}"' for c in caps)
    return f'path "{path}" {{\n  capabilities = [{quoted}]\n}}\n'


def agent_policy_paths(s: StackSettings, agent: str) -> dict[str, tuple[str, ...]]:
    """Path -> capabilities of the agent's policy while active (used by tests and the pack)."""
    prefix = vault_agent_prefix(s, agent)
    return {
        vault_api_path(s.vault_mount, "data", f"{prefix}*"): READ,
        vault_api_path(s.vault_mount, "metadata", f"{prefix}*"): METADATA,
    }


def agent_policy_hcl(s: StackSettings, agent: str, *, paused: bool = False) -> str:
    state = "PAUSED: grants nothing" if paused else "reads its own credentials only"
    header = f"# agent {agent}, environment {s.environment}: {state}\n"
    blocks = [_block(p, DENY if paused else caps) for p, caps in agent_policy_paths(s, agent).items()]
    return header + "".join(blocks)


def rotation_policy_paths(s: StackSettings, copies: Iterable[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    """Path -> capabilities of a rotation function's policy: the KV v2 `data/` path of exactly each
    (agent, credential) Vault copy it rotates, literal (no glob), write only."""
    return {vault_api_path(s.vault_mount, "data", vault_path(s, a, c)): WRITE for a, c in sorted(set(copies))}


def rotation_policy_hcl(s: StackSettings, owner: str, copies: Iterable[tuple[str, str]]) -> str:
    header = (f"# rotation function {owner}, environment {s.environment}: writes the Vault copies of the"
              " credentials it rotates (no read, list or delete)\n")
    return header + "".join(_block(p, caps) for p, caps in rotation_policy_paths(s, copies).items())
