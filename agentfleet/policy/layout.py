"""What the policies know about the stack: its settings, passed in as policy configuration.

The project computes every name from `StackSettings` (`agentfleet.core.naming`), so the policies take
the same settings as policy config (keys named like the stack's `agentfleet:*` config) and
rebuild a `StackSettings` through `settings_from_config`: same defaults, same validation, same
names. Without config (a bare `pulumi preview --policy-pack policy`) stack policies read the same
settings from the program's fleet component (`program_layout`) and resource policies the account
from their provider; `check` always passes the stack's settings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Mapping

from pulumi_policy import PolicyConfigSchema

from agentfleet.core import naming
from agentfleet.core.model import AUTOMATED_STRATEGIES, BUILTIN_CLASSIFICATIONS
from agentfleet.core.policy_config import (
    CLASSIFICATIONS_KEY,
    EXCEPTIONS_KEY,
    SETTING_KEYS,
    TRUSTED_ACCOUNTS_KEY,
    policy_config,
    runtime_accounts,
)
from agentfleet.core.settings import PROJECT, SettingsError, StackSettings, settings_from_config

__all__ = ["Layout", "layout", "policy_config", "runtime_accounts", "SETTING_KEYS", "LAYOUT_SCHEMA"]

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
    "vaultLogin": {"type": "string", "enum": ["aws", "jwt", "kubernetes"], "description": "agentfleet:vaultLogin"},
    "vaultAwsAuthPath": {"type": "string", "description": "agentfleet:vaultAwsAuthPath (default aws)"},
    "alarmSubscriptions": {"type": "array", "items": {"type": "object"},
                           "description": "agentfleet:alarmSubscriptions: the alert topic's reviewed subscribers"},
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
    account: str | None = None
    """The stack's own account when no settings are configured: from the resource's AWS provider
    (`allowedAccountIds`, which the components always set) or the program's fleet component."""

    def own_account(self) -> str | None:
        """The stack's account: settings first, else what the provider/program declares; None = unknown."""
        return self.settings.aws_account_id if self.settings else self.account

    def with_provider(self, provider_props: Mapping[str, Any] | None) -> "Layout":
        """This layout, knowing the account from the resource's AWS provider when config does not say."""
        if self.settings is not None or self.account is not None:
            return self
        acct = provider_account(provider_props)
        return replace(self, account=acct) if acct else self

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
        own_acct = self.own_account()
        own = {own_acct} if own_acct else set()
        listed = self.options.get(TRUSTED_ACCOUNTS_KEY) or []
        return own | {str(a) for a in listed if isinstance(a, (str, int))}


def provider_account(provider_props: Mapping[str, Any] | None) -> str | None:
    """The one account an AWS provider is pinned to (`allowedAccountIds`), else None."""
    if not provider_props:
        return None
    raw = provider_props.get("allowedAccountIds")
    if isinstance(raw, str):  # providers may carry list inputs JSON-encoded
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    if isinstance(raw, list) and len(raw) == 1 and isinstance(raw[0], str) and re.fullmatch(r"\d{12}", raw[0]):
        return raw[0]
    return None


PROGRAM_KEYS = (*SETTING_KEYS, CLASSIFICATIONS_KEY, TRUSTED_ACCOUNTS_KEY)
"""What the pack takes from a fleet component's `policyConfig`: never `exceptions` (a program
cannot grant itself an exception) nor policy-specific options."""


def program_layout(lay: Layout, declared: list[Any]) -> Layout:
    """`lay` completed from the program's fleet components (their `policyConfig` inputs) when the
    policy config names no stack settings: the engine then runs the pack with what `check` would
    pass. Declarations must agree on the settings (a forged second fleet component cannot
    redirect the names the pack checks: disagreement is a problem, so a violation); trusted
    accounts are intersected and classifications take the strictest limit, so an extra
    declaration can only narrow what passes. With config, the program must agree with it."""
    found = [d for d in declared if isinstance(d, dict)]
    if not found:
        return lay
    def settings_part(d: Mapping[str, Any]) -> str:
        return json.dumps({k: d.get(k) for k in SETTING_KEYS}, sort_keys=True, default=str)

    parts = {settings_part(d) for d in found}
    if lay.settings is not None:
        given = {k: lay.options.get(k) for k in SETTING_KEYS if k in lay.options}
        for d in found:
            differ = sorted(k for k, v in given.items() if d.get(k) is not None and d.get(k) != v)
            if differ:
                problem = (f"the program's fleet component declares other stack settings than the policy config "
                           f"({', '.join(differ)}): the pack would check another stack's names; pass this stack's config "
                           f"(`agentfleet check --print-policy-config`)")
                return replace(lay, problem="; ".join(p for p in (lay.problem, problem) if p))
        return lay
    if len(parts) > 1:
        problem = ("the program declares several fleet components with different stack settings: the pack cannot tell "
                   "which names are the stack's; pass the policy config (`agentfleet check --print-policy-config`)")
        return replace(lay, problem="; ".join(p for p in (lay.problem, problem) if p))
    merged: dict[str, Any] = {k: v for k, v in found[0].items() if k in SETTING_KEYS}
    accounts: set[str] | None = None
    classes: dict[str, int] = {}
    for d in found:
        listed = {str(a) for a in (d.get(TRUSTED_ACCOUNTS_KEY) or []) if isinstance(a, (str, int))}
        accounts = listed if accounts is None else accounts & listed
        for name, days in (d.get(CLASSIFICATIONS_KEY) or {}).items():
            if isinstance(days, (int, float)) and not isinstance(days, bool) and days >= 1:
                classes[str(name)] = min(classes.get(str(name), int(days)), int(days))
    merged[TRUSTED_ACCOUNTS_KEY] = sorted(accounts or ())
    merged[CLASSIFICATIONS_KEY] = {k: min(v, BUILTIN_CLASSIFICATIONS.get(k, v)) for k, v in classes.items()}
    options = {**{k: v for k, v in lay.options.items() if k not in PROGRAM_KEYS}, **merged}
    return _layout(json.dumps(options, sort_keys=True, default=str))


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
