"""Every policy of the pack, in one list: the pack's `__main__.py` and the offline `check` read it.

A domain module exposes its policies as `POLICIES`; adding a module means adding it here (a
test fails if a module's policy object is missing from `ALL_POLICIES`).
"""

from __future__ import annotations

from pulumi_policy import Policy

from agentfleet.policy import iam, lint, rotation, secretsmanager, ssm, tagging, vault

PACK_NAME = "agentfleet-credential-hygiene"
DOMAIN_MODULES = (rotation, iam, secretsmanager, ssm, vault, tagging, lint)

ALL_POLICIES: tuple[Policy, ...] = tuple(p for m in DOMAIN_MODULES for p in m.POLICIES)


def by_name() -> dict[str, Policy]:
    return {p.name: p for p in ALL_POLICIES}
