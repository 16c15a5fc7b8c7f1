"""What the policies know about the stack: its settings, passed in as policy configuration.

The project computes every name from `StackSettings` (`agentfleet.core.naming`), so the policies take
the same settings as policy config (keys named like the stack's `agentfleet:*` config) and
rebuild a `StackSettings` through `settings_from_config`: same defaults, same validation, same
names. Without config (a bare `pulumi preview --policy-pack policy`) the policies fall back to
structural checks that need no names; `check` always passes the stack's settings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Mapping

from pulumi_policy import PolicyConfigSchema

from agentfleet.core import naming
from agentfleet.core.model import AUTOMATED_STRATEGIES, BUILTIN_CLASSIFICATIONS, Fleet
from agentfleet.core.settings import PROJECT, SettingsError, StackSettings, settings_from_config

# Policy-config key -> stack-config key it mirrors (README "Stack settings" documents them).
SETTING_KEYS: dict[str, str] = {
    "environment": f"{PROJECT}:environment",
    "awsRegion": "aws:region",
    "awsAccountId": f"{PROJECT}:awsAccountId",
    "secretPrefix": f"{PROJECT}:secretPrefix",
    "vaultMount": f"{PROJECT}:vaultMount",
    "adminPrincipals": f"{PROJECT}:adminPrincipals",
    "rotationIsolation": f"{PROJECT}:rotationIsolation",
}
CLASSIFICATIONS_KEY = "classifications"
EXCEPTIONS_KEY = "exceptions"
TRUSTED_ACCOUNTS_KEY = "trustedAccounts"

LAYOUT_SCHEMA = PolicyConfigSchema(properties={
    "environment": {"type": "string", "description": "agentfleet:environment of the stack"},
    "awsRegion": {"type": "string", "description": "aws:region of the stack"},
    "awsAccountId": {"type": "string", "description": "agentfleet:awsAccountId"},
    "secretPrefix": {"type": "string", "description": "agentfleet:secretPrefix (default agents)"},
    "vaultMount": {"type": "string", "description": "agentfleet:vaultMount (default kv)"},
    "adminPrincipals": {
        "type": "array", "items": {"type": "string"},
        "description": "agentfleet:adminPrincipals: break-glass role ARNs that may also read secrets",
    },
    "rotationIsolation": {"type": "string", "enum": ["per-agent", "shared"]},
    CLASSIFICATIONS_KEY: {
        "type": "object", "additionalProperties": {"type": "integer"},
        "description": "maximum rotation days per classification (the fleet's custom classes)",
    },
    EXCEPTIONS_KEY: {
        "type": "array",
        "description": ("reviewed exceptions to the closed-world rules: each {resource: <logical name or URN>} or "
                        "{managedPolicyArn: <ARN>}, with a non-empty reason"),
        "items": {"type": "object", "properties": {
            "resource": {"type": "string"}, "managedPolicyArn": {"type": "string"}, "reason": {"type": "string"},
        }},
    },
    TRUSTED_ACCOUNTS_KEY: {
        "type": "array", "items": {"type": "string"},
        "description": "12-digit AWS accounts (other than the stack's own) a trust policy may name",
    },
})


@dataclass(frozen=True)
class Layout:
    """Settings (None when not configured), rotation limits, and a config problem if any."""

    settings: StackSettings | None
    classifications: Mapping[str, int] = field(default_factory=lambda: dict(BUILTIN_CLASSIFICATIONS))
    problem: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    """The raw policy config, for policy-specific keys (e.g. iam-policy-lint's severities)."""

    def environment(self) -> str | None:
        return self.settings.environment if self.settings else None

    def _exceptions(self, key: str) -> set[str]:
        out: set[str] = set()
        for item in self.options.get(EXCEPTIONS_KEY) or []:
            if isinstance(item, dict) and isinstance(item.get(key), str) and str(item.get("reason") or "").strip():
                out.add(item[key])
        return out

    def excepted(self, name: str, urn: str) -> bool:
        """A reviewed exception (policy config `exceptions`, with a reason) names this resource."""
        allowed = self._exceptions("resource")
        return name in allowed or urn in allowed

    def managed_policy_allowed(self, arn: str) -> bool:
        return arn in self._exceptions("managedPolicyArn")

    def trusted_accounts(self) -> set[str]:
        """The stack's own account plus policy config `trustedAccounts`."""
        own = {self.settings.aws_account_id} if self.settings else set()
        listed = self.options.get(TRUSTED_ACCOUNTS_KEY) or []
        return own | {str(a) for a in listed if isinstance(a, (str, int))}


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
        CLASSIFICATIONS_KEY: dict(sorted(classifications.items())),
    }


def layout(config: Mapping[str, Any] | None) -> Layout:
    """The `Layout` of a policy's config (cached: the engine calls every policy per resource)."""
    return _layout(json.dumps(dict(config or {}), sort_keys=True, default=str))


@lru_cache(maxsize=64)
def _layout(frozen: str) -> Layout:
    config: dict[str, Any] = json.loads(frozen)
    classes = dict(BUILTIN_CLASSIFICATIONS)
    problems: list[str] = []
    custom = config.get(CLASSIFICATIONS_KEY) or {}
    if isinstance(custom, dict):
        for name, days in custom.items():
            if isinstance(days, (int, float)) and not isinstance(days, bool) and days >= 1:
                classes[str(name)] = int(days)
            else:
                problems.append(f"classifications.{name} must be a number of days, got {days!r}")
    else:
        problems.append("classifications must be a map of class -> days")
    given = {SETTING_KEYS[k]: v for k, v in config.items() if k in SETTING_KEYS}
    settings: StackSettings | None = None
    if given.get("aws:region") and given.get(f"{PROJECT}:awsAccountId"):
        try:
            env = str(given.get(f"{PROJECT}:environment") or "policy")
            settings = settings_from_config(env, given.get)
        except SettingsError as exc:
            problems.extend(exc.problems)
    problem = "; ".join(problems) if problems else None
    return Layout(settings=settings, classifications=classes, problem=problem, options=config)


def rotation_role_names(s: StackSettings, agent: str) -> set[str]:
    """Roles that may rotate (so read and write) an agent's secrets under the stack's isolation mode."""
    if s.rotation_isolation == "shared":
        return {naming.shared_rotation_role_name(s, st) for st in AUTOMATED_STRATEGIES}
    return {naming.rotation_role_name(s, agent)}


def allowed_reader_arns(s: StackSettings, agent: str) -> set[str]:
    """Principal ARNs a secret's deny-read exception may name: agent role, rotation role(s), admins."""
    names = {naming.role_name(s, agent)} | rotation_role_names(s, agent)
    return {naming.role_arn(s, n) for n in names} | set(s.admin_principals)
