"""Parameter Store policies (issue 15): SecureString + CMK, no literal value, confined reads.
Each rule: the generated resources pass, a violating one is caught, missing props don't crash."""

from __future__ import annotations

from typing import Any

import pytest

from agentfleet.core import iam_documents as iam
from agentfleet.core import naming, plan
from agentfleet.core.loader import build_fleet
from agentfleet.core.model import Fleet
from agentfleet.core.settings import StackSettings
from agentfleet.policy.ssm import (
    PARAMETER,
    ssm_parameter_no_literal_value,
    ssm_parameter_reads_confined,
    ssm_parameter_securestring_cmk,
)
from tests.test_policy_support import KMS_KEY_ARN, ROLE, ROLE_POLICY, UNKNOWN, Stack, config_for, validate_resource

LITERAL = "correct-horse-battery-staple"


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return build_fleet({"version": 1, "agents": [
        {"name": name, "runtime": {"service": "ecs-tasks.amazonaws.com"},
         "credentials": [{"name": "key", "service": "svc", "type": "api_key", "stores": ["ssm"]}]}
        for name in ("bill", "billing")
    ]})


@pytest.fixture(scope="module")
def config(fleet: Fleet, dev_settings: StackSettings) -> dict[str, Any]:
    return config_for(dev_settings, fleet)


def param_props(s: StackSettings, agent: str, **over: Any) -> dict[str, Any]:
    """A parameter as AgentAccess creates it."""
    props: dict[str, Any] = {
        "name": naming.ssm_parameter_name(s, agent, "key"), "type": "SecureString", "keyId": KMS_KEY_ARN,
        "valueWo": naming.SSM_UNSET_VALUE, "valueWoVersion": 1.0, "tags": naming.tags(s, agent=agent),
    }
    props.update(over)
    return {k: v for k, v in props.items() if v is not None}


# ---- ssm-parameter-securestring-cmk ----


def test_generated_parameter_passes_and_unknowns_are_not_judged(config: dict[str, Any], dev_settings: StackSettings) -> None:
    assert validate_resource(ssm_parameter_securestring_cmk, PARAMETER, param_props(dev_settings, "bill"), config=config) == []
    assert validate_resource(ssm_parameter_securestring_cmk, PARAMETER, param_props(dev_settings, "bill", type=UNKNOWN, keyId=UNKNOWN), config=config) == []


@pytest.mark.parametrize(("over", "words"), [
    ({"type": "String"}, "plain text"),
    ({"type": "StringList"}, "plain text"),
    ({"keyId": None}, "aws/ssm"),
    ({"keyId": "alias/aws/ssm"}, "AWS-managed key"),
])
def test_plaintext_or_default_key_is_caught(config: dict[str, Any], dev_settings: StackSettings, over: dict[str, Any], words: str) -> None:
    [msg] = validate_resource(ssm_parameter_securestring_cmk, PARAMETER, param_props(dev_settings, "bill", **over), config=config)
    assert words in msg and naming.kms_alias(dev_settings) in msg


def test_untagged_parameter_under_the_environment_path_counts_and_others_do_not(config: dict[str, Any], dev_settings: StackSettings) -> None:
    raw = {"name": naming.ssm_parameter_name(dev_settings, "bill", "key"), "type": "String", "value": "x"}
    assert len(validate_resource(ssm_parameter_securestring_cmk, PARAMETER, raw, config=config)) == 2
    app_setting = {"name": "/myapp/feature-flags", "type": "String", "value": "on"}
    assert validate_resource(ssm_parameter_securestring_cmk, PARAMETER, app_setting, config=config) == []
    assert validate_resource(ssm_parameter_securestring_cmk, PARAMETER, {}, config=config) == []  # no props: no crash
    # Without config only the tag tells: still caught.
    assert len(validate_resource(ssm_parameter_securestring_cmk, PARAMETER, param_props(dev_settings, "bill", type="String"))) == 1


# ---- ssm-parameter-no-literal-value ----


@pytest.mark.parametrize("prop", ["value", "insecureValue", "valueWo"])
def test_literal_value_is_caught_without_echoing_it(config: dict[str, Any], dev_settings: StackSettings, prop: str) -> None:
    props = {**param_props(dev_settings, "bill", valueWo=None), prop: LITERAL}
    [msg] = validate_resource(ssm_parameter_no_literal_value, PARAMETER, props, config=config)
    assert f"sets {prop}" in msg and LITERAL not in msg and "put-parameter" in msg


def test_marker_unknown_and_absent_values_pass(config: dict[str, Any], dev_settings: StackSettings) -> None:
    assert validate_resource(ssm_parameter_no_literal_value, PARAMETER, param_props(dev_settings, "bill"), config=config) == []
    assert validate_resource(ssm_parameter_no_literal_value, PARAMETER, param_props(dev_settings, "bill", valueWo=UNKNOWN), config=config) == []
    assert validate_resource(ssm_parameter_no_literal_value, PARAMETER, param_props(dev_settings, "bill", valueWo=None), config=config) == []
    assert validate_resource(ssm_parameter_no_literal_value, PARAMETER, {"name": "/myapp/x", "value": "on"}, config=config) == []


# ---- ssm-parameter-reads-confined ----


def fleet_stack(s: StackSettings, fleet: Fleet) -> Stack:
    stack = Stack()
    for a in fleet.agents:
        role = stack.add(ROLE, f"{a.name}/role", {"name": naming.role_name(s, a.name), "tags": naming.tags(s, agent=a.name)})
        stack.add(ROLE_POLICY, f"{a.name}/policy", {"role": naming.role_name(s, a.name),
                                                   "policy": iam.to_json(plan.agent_iam_policy(s, a, KMS_KEY_ARN))}, deps=[role])
        for c in plan.ssm_credentials(a):
            stack.add(PARAMETER, f"{a.name}/{c.name}/parameter", param_props(s, a.name))
    return stack


def test_generated_policies_confine_reads(fleet: Fleet, dev_settings: StackSettings, config: dict[str, Any]) -> None:
    assert fleet_stack(dev_settings, fleet).validate(ssm_parameter_reads_confined, config) == []
    assert fleet_stack(dev_settings, fleet).validate(ssm_parameter_reads_confined, None) == []


def _grant(stack: Stack, s: StackSettings, role: str, *resources: str, action: str = "ssm:GetParameter") -> None:
    stack.add(ROLE_POLICY, f"{role}/extra", {"role": role, "policy": iam.Document((iam.Statement("Extra", (action,), resources),)).to_json()})


def test_another_agents_role_reading_a_parameter_is_caught(fleet: Fleet, dev_settings: StackSettings, config: dict[str, Any]) -> None:
    s = dev_settings
    stack = fleet_stack(s, fleet)
    _grant(stack, s, naming.role_name(s, "bill"), naming.ssm_parameter_arn(s, "billing", "key"))
    [(msg, _)] = stack.validate(ssm_parameter_reads_confined, config)
    assert f"lets {naming.role_name(s, 'bill')} read" in msg and "agent billing" in msg


@pytest.mark.parametrize(("resource", "action"), [
    ("arn:aws:ssm:us-east-1:123456789012:parameter/agents/dev/bill*", "ssm:GetParameter"),
    ("*", "ssm:GetParameters"),
    ("arn:aws:ssm:us-east-1:123456789012:parameter/agents/dev/bill", "ssm:GetParametersByPath"),
    ("arn:aws:ssm:us-east-1:123456789012:parameter/agents/dev/bill/key", "ssm:Get*"),
])
def test_path_and_wildcard_reads_are_caught(fleet: Fleet, dev_settings: StackSettings, config: dict[str, Any], resource: str, action: str) -> None:
    stack = fleet_stack(dev_settings, fleet)
    _grant(stack, dev_settings, naming.role_name(dev_settings, "bill"), resource, action=action)
    found = stack.validate(ssm_parameter_reads_confined, config)
    assert found and any("by path or wildcard" in m for m, _ in found), found
    assert stack.validate(ssm_parameter_reads_confined, None)  # structural: caught without config too


def test_unknown_documents_do_not_crash(config: dict[str, Any], dev_settings: StackSettings) -> None:
    stack = Stack()
    stack.add(ROLE_POLICY, "p", {"role": UNKNOWN, "policy": UNKNOWN})
    stack.add(PARAMETER, "q", {"name": UNKNOWN})
    stack.add(PARAMETER, "r", {})
    assert stack.validate(ssm_parameter_reads_confined, config) == []


# ---- iam-policy-lint knows the network scope's condition keys ----


def test_lint_accepts_the_network_deny_and_still_catches_an_unknown_key(dev_settings: StackSettings) -> None:
    from agentfleet.policy.lint import iam_policy_lint

    fleet = build_fleet({"version": 1, "agents": [{
        "name": "scoped", "runtime": {"service": "ecs-tasks.amazonaws.com"},
        "network": {"vpc_endpoints": ["vpce-0abc1234def567890"], "vpcs": ["vpc-0abc1234def567890"], "source_cidrs": ["203.0.113.0/24"]},
        "credentials": [{"name": "key", "service": "svc", "type": "api_key", "stores": ["aws", "ssm"]}]}]})
    a = fleet.agent("scoped")
    good = iam.to_json(plan.agent_iam_policy(dev_settings, a, KMS_KEY_ARN))
    assert "aws:ViaAWSService" in good
    assert validate_resource(iam_policy_lint, ROLE_POLICY, {"role": "r", "policy": good}) == []
    typo = good.replace("aws:ViaAWSService", "aws:ViaAwsServise")
    assert any("UNKNOWN_CONDITION_FOR_ACTION" in m for m in validate_resource(iam_policy_lint, ROLE_POLICY, {"role": "r", "policy": typo}))
