"""The policy pack's configuration for a stack, computed from the stack's settings and fleet.

Pure (no pulumi-policy): `check` passes it to the pack offline, `check --print-policy-config` writes
it for `pulumi preview --policy-pack-config`, and the AgentFleet component carries the very same
dict as its input `policyConfig`, so the pack can read it from the program when the engine runs
it with no config at all (agentfleet.policy.layout.program_layout).
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from agentfleet.core.model import Fleet
from agentfleet.core.settings import PROJECT, TRUSTED_ACCOUNTS_KEY, StackSettings

SETTING_KEYS: dict[str, str] = {
    "environment": f"{PROJECT}:environment",
    "awsRegion": "aws:region",
    "awsAccountId": f"{PROJECT}:awsAccountId",
    "secretPrefix": f"{PROJECT}:secretPrefix",
    "vaultMount": f"{PROJECT}:vaultMount",
    "adminPrincipals": f"{PROJECT}:adminPrincipals",
    "rotationIsolation": f"{PROJECT}:rotationIsolation",
    "vaultLogin": f"{PROJECT}:vaultLogin",
    "vaultAwsAuthPath": f"{PROJECT}:vaultAwsAuthPath",
    "alarmSubscriptions": f"{PROJECT}:alarmSubscriptions",
}
"""Policy-config key -> the stack-config key it mirrors (README "Stack settings" documents them)."""
CLASSIFICATIONS_KEY = "classifications"
EXCEPTIONS_KEY = "exceptions"
POLICY_CONFIG_PROP = "policyConfig"
"""The AgentFleet component's input carrying `policy_config(...)` of its fleet and stack."""

__all__ = ["SETTING_KEYS", "CLASSIFICATIONS_KEY", "EXCEPTIONS_KEY", "TRUSTED_ACCOUNTS_KEY", "POLICY_CONFIG_PROP",
           "runtime_accounts", "policy_config"]


def runtime_accounts(fleet: Fleet) -> list[str]:
    """Accounts agents.yaml trusts by declaring runtime role ARNs there (a reviewed declaration)."""
    out = set()
    for agent in fleet.agents:
        for arn in agent.runtime.role_arns or ():
            m = re.match(r"^arn:aws[a-z-]*:(?:iam|sts)::(\d{12}):", arn)
            if m:
                out.add(m.group(1))
    return sorted(out)


def policy_config(settings: StackSettings, classifications: Mapping[str, int],
                  trusted_accounts: Iterable[str] = ()) -> dict[str, Any]:
    """The config every policy of the pack gets for a stack (`check` builds it; docs show it).
    `trusted_accounts`: foreign accounts trust policies may name (`runtime_accounts` of the fleet)."""
    return {
        TRUSTED_ACCOUNTS_KEY: sorted(set(trusted_accounts) - {settings.aws_account_id}),
        "environment": settings.environment,
        "awsRegion": settings.aws_region,
        "awsAccountId": settings.aws_account_id,
        "secretPrefix": settings.secret_prefix,
        "vaultMount": settings.vault_mount,
        "adminPrincipals": list(settings.admin_principals),
        "rotationIsolation": settings.rotation_isolation,
        "vaultLogin": settings.vault_login,
        "vaultAwsAuthPath": settings.vault_aws_auth_path,
        "alarmSubscriptions": [dict(sub) for sub in settings.alarm_subscriptions],
        CLASSIFICATIONS_KEY: dict(sorted(classifications.items())),
    }
