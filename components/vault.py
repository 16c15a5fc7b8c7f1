"""Vault/OpenBao policy HCL for one agent, rendered in this one place.

The agent reads its own KV v2 folder (`<mount>/data/<env>/<agent>/*`) and reads/lists its own
metadata; nothing else, no `sudo`, no glob wider than its folder. A paused agent's policy
names the same paths with `deny`, so it grants nothing even if a stale mapping remains.
"""

from __future__ import annotations

from components.naming import vault_agent_prefix
from components.settings import StackSettings

READ = ("read",)
METADATA = ("read", "list")
DENY = ("deny",)


def _block(path: str, caps: tuple[str, ...]) -> str:
    quoted = ", ".join(f'"{c}"' for c in caps)
    return f'path "{path}" {{\n  capabilities = [{quoted}]\n}}\n'


def agent_policy_paths(s: StackSettings, agent: str) -> dict[str, tuple[str, ...]]:
    """Path -> capabilities of the agent's policy while active (used by tests and the pack)."""
    prefix = vault_agent_prefix(s, agent)
    return {
        f"{s.vault_mount}/data/{prefix}*": READ,
        f"{s.vault_mount}/metadata/{prefix}*": METADATA,
    }


def agent_policy_hcl(s: StackSettings, agent: str, *, paused: bool = False) -> str:
    state = "PAUSED: grants nothing" if paused else "reads its own credentials only"
    header = f"# agent {agent}, environment {s.environment}: {state}\n"
    blocks = [_block(p, DENY if paused else caps) for p, caps in agent_policy_paths(s, agent).items()]
    return header + "".join(blocks)
