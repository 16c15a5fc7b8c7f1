"""Extending the fleet (how rotation and monitoring plug in) and using AgentAccess on its own."""

from __future__ import annotations

import sys
import types
from typing import Iterator

import pulumi
import pulumi_aws as aws
import pytest

from agentfleet.components import fleet as fleet_module
from agentfleet.components.agent_access import AgentAccess, AgentAccessArgs, SecretSpec
from agentfleet.components.fleet import AgentContext, AgentFleet
from agentfleet.runner.mockrun import run_program
from agentfleet.components.providers import ProviderSet
from tests.pulumi_harness import AGENT_ACCESS, AGENT_FLEET, ROLE, SECRET, SECRET_POLICY, SECRET_VERSION

TOPIC = "aws:sns/topic:Topic"
QUEUE = "aws:sqs/queue:Queue"


@pytest.fixture
def extension(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A throwaway extension module registered the way rotation/monitoring register theirs."""
    calls: list[str] = []
    mod = types.ModuleType("tests._fake_extension")

    def extend_environment(fleet: AgentFleet) -> None:
        calls.append("environment")
        topic = aws.sns.Topic("alerts", opts=pulumi.ResourceOptions(parent=fleet, provider=fleet.providers.aws))
        fleet.extras["topic"] = topic
        fleet.extra_outputs["alertTopicArn"] = topic.arn

    def extend_agent(ctx: AgentContext) -> None:
        calls.append(f"agent:{ctx.agent.name}")
        assert set(ctx.access.secrets) == {c.name for c in ctx.agent.credentials if "aws" in c.stores}
        aws.sqs.Queue(
            f"{ctx.agent.name}/inbox",
            tags={"topic": "x"},
            # No provider passed on purpose: it must still be the explicit one, inherited.
            opts=pulumi.ResourceOptions(parent=ctx.access, depends_on=[ctx.fleet.extras["topic"]]),
        )

    def extend_fleet(fleet: AgentFleet) -> None:
        calls.append(f"fleet:{len(fleet.agents)}")

    mod.extend_environment = extend_environment  # type: ignore[attr-defined]
    mod.extend_agent = extend_agent  # type: ignore[attr-defined]
    mod.extend_fleet = extend_fleet  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setattr(fleet_module, "DEFAULT_EXTENSIONS", (mod.__name__,))
    yield calls


def test_extensions_hook_in_order_with_parents_and_providers(extension: list[str]) -> None:
    run = run_program("dev")
    assert extension[0] == "environment" and extension[-1] == "fleet:5"
    assert sorted(extension[1:-1]) == [f"agent:{a}" for a in sorted(["billing", "crm", "release-notes", "research", "support"])]
    (fleet,) = run.of_type(AGENT_FLEET)
    (topic,) = run.of_type(TOPIC)
    assert topic.parent == fleet.urn
    aws_provider = run.named("aws", "pulumi:providers:aws").urn
    by_urn = run.by_urn()
    for q in run.of_type(QUEUE):
        parent = by_urn[q.parent or ""]
        assert parent.type == AGENT_ACCESS and q.name == f"{parent.name}/inbox"
        assert q.provider_urn == aws_provider
        assert topic.urn in q.dependencies
    assert run.outputs["alertTopicArn"] == topic.outputs["arn"]


def test_agent_access_takes_plain_values_only() -> None:
    """No fleet model, no settings: a hand-written AgentAccessArgs is enough."""

    def program() -> None:
        providers = ProviderSet(
            aws=aws.Provider("aws", region="eu-west-1"),
            vault=__import__("pulumi_vault").Provider("vault"),
            random=__import__("pulumi_random").Provider("random"),
        )
        AgentAccess("solo", AgentAccessArgs(
            agent="solo", role_name="solo-role", trust_policy="{}", max_session_seconds=3600,
            inline_policy="{}", tags={"agent": "solo"}, vault_policy_name="solo", vault_policy="# none\n",
            vault_auth_backend="aws", vault_auth_role_name="solo", vault_token_policies=["solo"],
            vault_token_ttl_seconds=300, vault_token_max_ttl_seconds=600, vault_mount="kv",
            kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/k", recovery_window_days=7, protect=True,
            providers=providers,
            secrets=(SecretSpec("k", "d", {"agent": "solo"}, generated=True, aws_secret_name="solo/k",
                                aws_secret_policy="{}"),),
        ))

    run = run_program("dev", program=program)
    assert run.named("solo/role", ROLE).props["name"] == "solo-role"
    secret = run.named("solo/k/secret", SECRET)
    assert secret.protect and secret.props["recoveryWindowInDays"] == 7
    assert run.named("solo/k/secret-policy", SECRET_POLICY).props["secretArn"] == secret.outputs["arn"]
    assert run.named("solo/k/initial-version", SECRET_VERSION).props["secretId"] == secret.id
