"""Builders for the policy tests: validation args made by hand, the way the engine makes them.

Props are wrapped in pulumi-policy's `unknown_checking_proxy` (as the engine does), unknown
values use the engine's sentinel, and compliant documents come from the project's own builders
(`agentfleet.core.plan`, `agentfleet.core.vault_policies`), so "compliant" means "what the program generates".
No test lives here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from agentfleet.core import iam_documents as iam
from agentfleet.core import naming
from agentfleet.core import plan
from agentfleet.core.model import Fleet, ResolvedAgent
from agentfleet.core.settings import StackSettings
from agentfleet.policy.layout import policy_config

UNKNOWN = UNKNOWN_STRING_VALUE
"""What the engine sends for a value computed during the update (preview)."""

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_POLICY = "aws:secretsmanager/secretPolicy:SecretPolicy"
SECRET_ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
VAULT_POLICY = "vault:index/policy:Policy"
KMS_KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:dev::agentfleet::{type_}::{name}"


def options(parent: str | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], parent)


def config_for(s: StackSettings, fleet: Fleet) -> dict[str, Any]:
    return policy_config(s, fleet.classifications)


def validate_resource(
    policy: ResourceValidationPolicy, type_: str, props: Mapping[str, Any], *, name: str = "subject",
    config: Mapping[str, Any] | None = None, provider_props: Mapping[str, Any] | None = None,
) -> list[str]:
    """Run a resource policy on one resource; the messages it reported."""
    messages: list[str] = []
    provider = (
        PolicyProviderResource("pulumi:providers:aws", unknown_checking_proxy(dict(provider_props)), urn("pulumi:providers:aws", "aws"), "aws")
        if provider_props is not None else None
    )
    args = ResourceValidationArgs(type_, unknown_checking_proxy(dict(props)), urn(type_, name), name, options(), provider, config)

    def report(message: str, _urn: str | None = None) -> None:
        messages.append(message)

    policy.validate(args, report)
    return messages


@dataclass
class Stack:
    """A hand-built stack for stack policies."""

    resources: list[PolicyResource] = field(default_factory=list)

    def add(
        self, type_: str, name: str, props: Mapping[str, Any], *, deps: Iterable[PolicyResource] = (),
        prop_deps: Mapping[str, Iterable[PolicyResource]] | None = None,
    ) -> PolicyResource:
        r = PolicyResource(
            type_, unknown_checking_proxy(dict(props)), urn(type_, name), name, options(), None, None,
            list(deps), {k: list(v) for k, v in (prop_deps or {}).items()},
        )
        self.resources.append(r)
        return r

    def remove(self, r: PolicyResource) -> None:
        self.resources.remove(r)

    def validate(self, policy: StackValidationPolicy, config: Mapping[str, Any] | None) -> list[tuple[str, str | None]]:
        found: list[tuple[str, str | None]] = []

        def report(message: str, urn: str | None = None) -> None:
            found.append((message, urn))

        policy.validate(StackValidationArgs(self.resources, config), report)
        return found

    def named(self, name: str) -> PolicyResource:
        return next(r for r in self.resources if r.name == name)


def secret_arn(s: StackSettings, agent: str, credential: str) -> str:
    """A concrete ARN as AWS would assign it (the builder's pattern with a random suffix)."""
    return naming.secret_arn_pattern(s, agent, credential).replace("??????", "Xy12Zw")


def add_agent(stack: Stack, s: StackSettings, agent: ResolvedAgent, *, rotation: bool = True) -> dict[str, PolicyResource]:
    """The agent's role, inline policy, secrets, resource policies and rotations, from the builders."""
    out: dict[str, PolicyResource] = {}
    role_name = naming.role_name(s, agent.name)
    out["role"] = stack.add(ROLE, f"{agent.name}/role", {
        "name": role_name, "assumeRolePolicy": iam.to_json(plan.trust_policy(s, agent)),
        "tags": naming.tags(s, agent=agent.name, owner=agent.owner),
    })
    out["policy"] = stack.add(ROLE_POLICY, f"{agent.name}/policy", {
        "role": role_name, "policy": iam.to_json(plan.agent_iam_policy(s, agent, KMS_KEY_ARN)),
    }, deps=[out["role"]])
    for cred in plan.aws_credentials(agent):
        arn = secret_arn(s, agent.name, cred.name)
        sec = stack.add(SECRET, f"{agent.name}/{cred.name}/secret", {
            "name": naming.secret_name(s, agent.name, cred.name), "arn": arn, "kmsKeyId": KMS_KEY_ARN,
            "tags": naming.tags(s, agent=agent.name, owner=agent.owner, classification=cred.classification),
        })
        out[f"{cred.name}/secret"] = sec
        out[f"{cred.name}/secret-policy"] = stack.add(SECRET_POLICY, f"{agent.name}/{cred.name}/secret-policy", {
            "secretArn": arn, "policy": iam.to_json(plan.secret_resource_policy(s, agent, cred)),
        }, deps=[sec])
        if rotation:
            out[f"{cred.name}/rotation"] = stack.add(SECRET_ROTATION, f"{agent.name}/{cred.name}/rotation", {
                "secretId": arn, "rotationRules": {"automaticallyAfterDays": float(cred.rotation_days)},
            }, deps=[sec])
    return out


def fleet_stack(s: StackSettings, fleet: Fleet, *, rotation: bool = True) -> Stack:
    stack = Stack()
    for agent in fleet.agents:
        add_agent(stack, s, agent, rotation=rotation)
    return stack


def rotation_role_policy(s: StackSettings, agent: ResolvedAgent) -> str:
    """A per-agent rotation role's policy, built from the typed statements of agentfleet.core.iam_documents."""
    arns = plan.agent_secret_arns(s, agent)
    return iam.Document((
        iam.Statement("RotateOwnSecrets", iam.ROTATION_SECRET_ACTIONS, tuple(arns)),
        iam.Statement("RandomPassword", ("secretsmanager:GetRandomPassword",), ("*",)),
    )).to_json()
