"""IAM policies of the pack: no-wildcard-secret-read, trust-policy-scoped, rotation-role-scoped."""

from __future__ import annotations

from typing import Any

import pytest

from agentfleet.core import iam_documents as iam
from agentfleet.core import naming
from agentfleet.core import plan
from agentfleet.core.model import Fleet
from agentfleet.core.settings import StackSettings
from agentfleet.policy.iam import no_wildcard_secret_read, rotation_role_scoped, trust_policy_scoped
from tests.test_policy_support import (
    KMS_KEY_ARN,
    ROLE,
    ROLE_POLICY,
    UNKNOWN,
    config_for,
    rotation_role_policy,
    secret_arn,
    validate_resource,
)


def doc(*statements: iam.Statement) -> str:
    return iam.Document(tuple(statements)).to_json()


@pytest.fixture(scope="module")
def config(sample_fleet: Fleet, dev_settings: StackSettings) -> dict[str, Any]:
    return config_for(dev_settings, sample_fleet)


# ---- no-wildcard-secret-read ----


@pytest.mark.parametrize("with_config", [True, False])
def test_generated_agent_policies_pass(sample_fleet: Fleet, dev_settings: StackSettings, config: dict[str, Any], with_config: bool) -> None:
    for agent in sample_fleet.agents:
        policy = iam.to_json(plan.agent_iam_policy(dev_settings, agent, KMS_KEY_ARN))
        assert validate_resource(no_wildcard_secret_read, ROLE_POLICY, {"role": "r", "policy": policy},
                                 config=config if with_config else None) == []


def test_read_on_star_is_caught_with_resource_and_fix(config: dict[str, Any], dev_settings: StackSettings) -> None:
    bad = doc(iam.secret_read("ReadAll", ["*"]))
    [msg] = validate_resource(no_wildcard_secret_read, ROLE_POLICY, {"role": "r", "policy": bad}, name="rogue", config=config)
    assert msg.startswith('aws:iam/rolePolicy:RolePolicy "rogue"')
    assert 'statement "ReadAll"' in msg and "['*']" in msg and "secretsmanager:GetSecretValue" in msg
    assert naming.secret_arn_pattern(dev_settings, "<agent>", "<credential>") in msg  # the fix names the layout


@pytest.mark.parametrize("resource", [
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:agents/dev/*",          # the whole environment
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:agents/dev/bill*",       # reaches billing/
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:*",
    "arn:aws:secretsmanager:*",
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:agents/*/billing/stripe-??????",
])
def test_patterns_beyond_one_agent_are_caught(config: dict[str, Any], resource: str) -> None:
    bad = doc(iam.secret_read("Wide", [resource]))
    [msg] = validate_resource(no_wildcard_secret_read, ROLE_POLICY, {"policy": bad}, config=config)
    assert resource in msg and "beyond one agent" in msg


def test_wildcard_action_counts_as_read(config: dict[str, Any]) -> None:
    bad = doc(iam.Statement("Everything", ("secretsmanager:*",), ("*",)))
    assert len(validate_resource(no_wildcard_secret_read, ROLE_POLICY, {"policy": bad}, config=config)) == 1
    bad = doc(iam.Statement("Getters", ("secretsmanager:Get*",), ("*",)))
    assert len(validate_resource(no_wildcard_secret_read, ROLE_POLICY, {"policy": bad}, config=config)) == 1


def test_reads_spanning_two_agents_are_caught(config: dict[str, Any], dev_settings: StackSettings) -> None:
    both = doc(iam.secret_read("Two", [naming.secret_arn_pattern(dev_settings, "research", "openai"),
                                       naming.secret_arn_pattern(dev_settings, "billing", "stripe")]))
    [msg] = validate_resource(no_wildcard_secret_read, ROLE_POLICY, {"policy": both}, config=config)
    assert "across 2 agents" in msg and "agents/dev/research/" in msg and "agents/dev/billing/" in msg


def test_other_environment_is_caught_only_with_settings(config: dict[str, Any], dev_settings: StackSettings) -> None:
    prod = dev_settings.model_copy(update={"environment": "prod"})
    other = doc(iam.secret_read("Prod", [naming.secret_arn_pattern(prod, "research", "openai")]))
    [msg] = validate_resource(no_wildcard_secret_read, ROLE_POLICY, {"policy": other}, config=config)
    assert "agents/prod/research/" in msg and "outside this stack" in msg
    assert validate_resource(no_wildcard_secret_read, ROLE_POLICY, {"policy": other}) == []


def test_not_resource_and_inline_role_policies_are_checked(config: dict[str, Any]) -> None:
    stmt = iam.Statement("ReadAll", iam.SECRET_READ_ACTIONS, ("*",)).to_dict()
    stmt["NotResource"] = stmt.pop("Resource")  # a raw document; the builders never emit NotResource
    raw = iam.to_json({"Version": iam.VERSION, "Statement": [stmt]})
    assert len(validate_resource(no_wildcard_secret_read, ROLE_POLICY, {"policy": raw}, config=config)) == 1
    inline = {"name": "x", "inlinePolicies": [{"name": "p", "policy": doc(iam.secret_read("S", ["*"]))}]}
    [msg] = validate_resource(no_wildcard_secret_read, ROLE, inline, config=config)
    assert "inlinePolicies[0].policy" in msg


def test_non_read_and_deny_statements_are_not_reported(config: dict[str, Any]) -> None:
    fine = doc(
        iam.put_own_metrics("Metrics", "AgentFleet/dev/research"),
        iam.deny_everything("Paused"),
        iam.Statement("Random", ("secretsmanager:GetRandomPassword",), ("*",)),
    )
    assert validate_resource(no_wildcard_secret_read, ROLE_POLICY, {"policy": fine}, config=config) == []


def test_tag_condition_exempts_only_rotation_statements(config: dict[str, Any]) -> None:
    cond = {"StringEquals": {f"secretsmanager:ResourceTag/{naming.TAG_MANAGED_BY}": naming.MANAGED_BY,
                             f"secretsmanager:ResourceTag/{naming.TAG_ENVIRONMENT}": "dev"}}
    env_folder = ("arn:aws:secretsmanager:us-east-1:123456789012:secret:agents/dev/*",)
    shared_rotator = doc(iam.Statement("Rotate", iam.ROTATION_SECRET_ACTIONS, env_folder, condition=cond))
    assert validate_resource(no_wildcard_secret_read, ROLE_POLICY, {"policy": shared_rotator}, config=config) == []
    reader = doc(iam.Statement("ReadTagged", iam.SECRET_READ_ACTIONS, env_folder, condition=cond))
    assert len(validate_resource(no_wildcard_secret_read, ROLE_POLICY, {"policy": reader}, config=config)) == 1


@pytest.mark.parametrize("props", [
    {"role": "r", "policy": UNKNOWN}, {"role": UNKNOWN}, {}, {"policy": "not json"}, {"policy": "[1, 2]"},
    {"policy": '{"Statement": "x"}'}, {"inlinePolicies": UNKNOWN}, {"inlinePolicies": [{"name": "p"}]},
])
def test_missing_or_unknown_props_do_not_crash(config: dict[str, Any], props: dict[str, Any]) -> None:
    type_ = ROLE if "inlinePolicies" in props else ROLE_POLICY
    assert validate_resource(no_wildcard_secret_read, type_, props, config=config) == []
    assert validate_resource(rotation_role_scoped, type_, props, config=config) == []


# ---- trust-policy-scoped ----


def test_generated_trust_policies_pass(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    kinds = set()
    for agent in sample_fleet.agents:
        kinds.add(agent.runtime.kind)
        trust = iam.to_json(plan.trust_policy(dev_settings, agent))
        assert validate_resource(trust_policy_scoped, ROLE, {"name": "r", "assumeRolePolicy": trust},
                                 provider_props=PINNED) == []
    assert kinds == {"service", "role_arns", "github_oidc"}  # every runtime kind was exercised


def test_trust_to_everyone_is_caught() -> None:
    trust = doc(iam.assume_by_roles("Anyone", ["*"]))
    [msg] = validate_resource(trust_policy_scoped, ROLE, {"assumeRolePolicy": trust}, name="open")
    assert msg.startswith('aws:iam/role:Role "open"') and "trusts every AWS principal" in msg and "Fix:" in msg
    bare = iam.Document((iam.assume_by_service("S", "ecs-tasks.amazonaws.com"),)).to_dict()
    bare["Statement"][0]["Principal"] = "*"  # raw form the builders never emit
    assert len(validate_resource(trust_policy_scoped, ROLE, {"assumeRolePolicy": iam.to_json(bare)})) == 1


PINNED = {"region": "us-east-1", "allowedAccountIds": ["123456789012"]}
"""The components' AWS provider: pinned to the stack's account, which is how the engine's pack knows it."""


def test_whole_account_needs_a_condition() -> None:
    for principal in ("123456789012", "arn:aws:iam::123456789012:root"):
        trust = doc(iam.assume_by_roles("Account", [principal]))
        [msg] = validate_resource(trust_policy_scoped, ROLE, {"assumeRolePolicy": trust}, provider_props=PINNED)
        assert "whole account" in msg
    with_condition = doc(iam.Statement("Account", ("sts:AssumeRole",), principal={"AWS": "123456789012"},
                                       condition={"StringEquals": {"sts:ExternalId": "agent-runner"}}))
    assert validate_resource(trust_policy_scoped, ROLE, {"assumeRolePolicy": with_condition}, provider_props=PINNED) == []


def test_without_config_the_account_comes_from_the_provider_or_the_trust_fails() -> None:
    """Under the engine with no policy config: the provider's `allowedAccountIds` is the stack's
    account; a foreign account fails, and with no way to tell the account any named one fails."""
    pinned = doc(iam.Statement("Ext", ("sts:AssumeRole",), principal={"AWS": "arn:aws:iam::123456789012:role/runner"}))
    foreign = doc(iam.Statement("Ext", ("sts:AssumeRole",), principal={"AWS": "arn:aws:iam::999999999999:role/runner"}))
    assert validate_resource(trust_policy_scoped, ROLE, {"assumeRolePolicy": pinned}, provider_props=PINNED) == []
    [msg] = validate_resource(trust_policy_scoped, ROLE, {"assumeRolePolicy": foreign}, provider_props=PINNED)
    assert "999999999999" in msg and "trustedAccounts" in msg
    [unknown] = validate_resource(trust_policy_scoped, ROLE, {"assumeRolePolicy": pinned})
    assert "cannot tell this stack's account" in unknown
    two = {"region": "us-east-1", "allowedAccountIds": ["123456789012", "999999999999"]}
    [ambiguous] = validate_resource(trust_policy_scoped, ROLE, {"assumeRolePolicy": pinned}, provider_props=two)
    assert "cannot tell this stack's account" in ambiguous


def test_github_oidc_must_pin_the_subject() -> None:
    provider = f"arn:aws:iam::123456789012:oidc-provider/{iam.GITHUB_OIDC_HOST}"
    no_sub = doc(iam.Statement("Gh", ("sts:AssumeRoleWithWebIdentity",), principal={"Federated": provider},
                               condition={"StringEquals": {f"{iam.GITHUB_OIDC_HOST}:aud": "sts.amazonaws.com"}}))
    [msg] = validate_resource(trust_policy_scoped, ROLE, {"assumeRolePolicy": no_sub})
    assert "sub" in msg
    any_repo = doc(iam.Statement("Gh", ("sts:AssumeRoleWithWebIdentity",), principal={"Federated": provider},
                                 condition={"StringLike": {f"{iam.GITHUB_OIDC_HOST}:sub": "repo:*"}}))
    assert "not an exact match" in validate_resource(trust_policy_scoped, ROLE, {"assumeRolePolicy": any_repo})[0]
    no_condition = doc(iam.Statement("Gh", ("sts:AssumeRoleWithWebIdentity",), principal={"Federated": provider}))
    assert "no condition" in validate_resource(trust_policy_scoped, ROLE, {"assumeRolePolicy": no_condition})[0]


@pytest.mark.parametrize("props", [{"assumeRolePolicy": UNKNOWN}, {}, {"name": UNKNOWN}])
def test_trust_unknown_or_missing_does_not_crash(props: dict[str, Any]) -> None:
    assert validate_resource(trust_policy_scoped, ROLE, props) == []


def test_unparseable_trust_is_reported() -> None:
    [msg] = validate_resource(trust_policy_scoped, ROLE, {"assumeRolePolicy": "{oops"})
    assert "not valid JSON" in msg


# ---- rotation-role-scoped ----


def test_per_agent_rotation_policies_pass(sample_fleet: Fleet, dev_settings: StackSettings, config: dict[str, Any]) -> None:
    for agent in sample_fleet.agents:
        props = {"role": naming.rotation_role_name(dev_settings, agent.name), "policy": rotation_role_policy(dev_settings, agent)}
        assert validate_resource(rotation_role_scoped, ROLE_POLICY, props, config=config) == []
        assert validate_resource(rotation_role_scoped, ROLE_POLICY, props) == []


def test_write_on_star_is_caught(config: dict[str, Any]) -> None:
    bad = doc(iam.Statement("Rotate", iam.ROTATION_SECRET_ACTIONS, ("*",)))
    [msg] = validate_resource(rotation_role_scoped, ROLE_POLICY, {"role": "x", "policy": bad}, name="rot", config=config)
    assert msg.startswith('aws:iam/rolePolicy:RolePolicy "rot"') and "secretsmanager:PutSecretValue" in msg and "['*']" in msg


def test_writes_across_agents_are_caught(config: dict[str, Any], dev_settings: StackSettings) -> None:
    arns = (naming.secret_arn_pattern(dev_settings, "research", "openai"), naming.secret_arn_pattern(dev_settings, "crm", "openai"))
    bad = doc(iam.Statement("Rotate", iam.ROTATION_SECRET_ACTIONS, arns))
    msgs = validate_resource(rotation_role_scoped, ROLE_POLICY, {"policy": bad}, config=config)
    assert any("2 agents ['crm', 'research']" in m for m in msgs)


def test_other_roles_may_not_write_an_agents_secrets(config: dict[str, Any], sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    research = sample_fleet.agent("research")
    props = {"role": naming.role_name(dev_settings, "research"), "policy": rotation_role_policy(dev_settings, research)}
    [msg] = validate_resource(rotation_role_scoped, ROLE_POLICY, props, config=config)
    assert naming.rotation_role_name(dev_settings, "research") in msg and "'agents-dev-research'" in msg


def test_shared_mode_needs_tags_of_this_environment(config: dict[str, Any]) -> None:
    folder = ("arn:aws:secretsmanager:us-east-1:123456789012:secret:agents/dev/*",)

    def shared(env: str) -> str:
        cond = {"StringEquals": {f"aws:ResourceTag/{naming.TAG_MANAGED_BY}": naming.MANAGED_BY,
                                 f"aws:ResourceTag/{naming.TAG_ENVIRONMENT}": env}}
        return doc(iam.Statement("Rotate", iam.ROTATION_SECRET_ACTIONS, folder, condition=cond))

    from agentfleet.core.settings import load_stack_settings
    from tests.conftest import ROOT
    role = naming.shared_rotation_role_name(load_stack_settings(ROOT / "Pulumi.dev.yaml", "dev"), "generated")
    assert validate_resource(rotation_role_scoped, ROLE_POLICY, {"role": role, "policy": shared("dev")}, config=config) == []
    assert len(validate_resource(rotation_role_scoped, ROLE_POLICY, {"role": role, "policy": shared("prod")}, config=config)) == 1
    # The same form on an agent's role (or a policy whose role is unknown) overwrites every agent's values.
    for other in ({"role": "agents-dev-crm"}, {}):
        found = validate_resource(rotation_role_scoped, ROLE_POLICY, {**other, "policy": shared("dev")}, config=config)
        assert len(found) == 1 and "not a shared rotation role" in found[0], found
    untagged = doc(iam.Statement("Rotate", iam.ROTATION_SECRET_ACTIONS, folder))
    assert len(validate_resource(rotation_role_scoped, ROLE_POLICY, {"policy": untagged}, config=config)) == 1


def test_agent_read_policies_are_not_rotation_grants(sample_fleet: Fleet, dev_settings: StackSettings, config: dict[str, Any]) -> None:
    for agent in sample_fleet.agents:
        policy = iam.to_json(plan.agent_iam_policy(dev_settings, agent, KMS_KEY_ARN))
        assert validate_resource(rotation_role_scoped, ROLE_POLICY, {"role": "x", "policy": policy}, config=config) == []


def test_secret_arn_helper_matches_builder_pattern(dev_settings: StackSettings) -> None:
    from agentfleet.policy.arnmatch import wildcard_match

    assert wildcard_match(naming.secret_arn_pattern(dev_settings, "crm", "openai"), secret_arn(dev_settings, "crm", "openai"))


# ---- red team 2 (tests/redteam/variants.py REDTEAM2) ----


def _trust(statement: dict[str, Any]) -> str:
    import json
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.mark.parametrize("value, ok", [
    ("arn:aws:iam::123456789012:role/ci-deployer", True),
    ("arn:aws:iam::123456789012:role/ci-*", True),
    ("arn:aws:iam::123456789012:*", False),
    ("arn:aws:iam::123456789012:role/*", False),
    ("arn:aws:iam::*:*", False),
    ("arn:aws:iam::123456789012:user/*", False),
])
def test_account_trust_pinned_by_an_arn_that_admits_everyone_fails(config: dict[str, Any], value: str, ok: bool) -> None:
    doc = _trust({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole",
                  "Condition": {"ArnLike": {"aws:PrincipalArn": value}}})
    found = validate_resource(trust_policy_scoped, ROLE, {"name": "r", "assumeRolePolicy": doc}, config=config)
    assert (found == []) == ok, found


@pytest.mark.parametrize("action", ["secretsmanager:CancelRotateSecret", "secretsmanager:TagResource",
                                    "secretsmanager:ReplicateSecretToRegions", "secretsmanager:UntagResource"])
def test_rotation_replication_and_tags_of_another_agents_secret_are_writes(config: dict[str, Any], dev_settings: StackSettings,
                                                                           action: str) -> None:
    policy = doc(iam.Statement("S", (action,), (naming.secret_arn_pattern(dev_settings, "billing", "stripe"),)))
    found = validate_resource(rotation_role_scoped, ROLE_POLICY, {"role": naming.role_name(dev_settings, "crm"), "policy": policy}, config=config)
    assert len(found) == 1 and "write agent billing's secrets" in found[0], found
    own = validate_resource(rotation_role_scoped, ROLE_POLICY, {"role": naming.rotation_role_name(dev_settings, "billing"),
                                                                 "policy": policy}, config=config)
    assert own == []


@pytest.mark.parametrize("action", ["iam:DeleteRolePolicy", "iam:DetachRolePolicy", "iam:TagRole", "lambda:CreateFunctionUrlConfig"])
def test_removing_a_roles_denies_or_exposing_a_function_is_escalation(config: dict[str, Any], action: str) -> None:
    from agentfleet.policy.iam import no_privilege_escalation
    found = validate_resource(no_privilege_escalation, ROLE_POLICY, {"role": "r", "policy": doc(iam.Statement("S", (action,), ("*",)))},
                              config=config)
    assert len(found) == 1 and action in found[0]
    denied = doc(iam.Statement("S", (action,), ("*",), effect="Deny"))
    assert validate_resource(no_privilege_escalation, ROLE_POLICY, {"role": "r", "policy": denied}, config=config) == []


def test_fleet_functions_are_invoked_by_secrets_manager_only(config: dict[str, Any], dev_settings: StackSettings) -> None:
    from agentfleet.policy.iam import lambda_permission_scoped
    LP = "aws:lambda/permission:Permission"
    fn = naming.rotation_function_name(dev_settings, "crm")
    good = {"action": "lambda:InvokeFunction", "function": fn, "principal": "secretsmanager.amazonaws.com",
            "sourceAccount": dev_settings.aws_account_id, "sourceArn": naming.secret_arn_pattern(dev_settings, "crm", "openai")}
    assert validate_resource(lambda_permission_scoped, LP, good, config=config) == []
    events = {**good, "principal": "events.amazonaws.com", "sourceArn": "arn:aws:events:us-east-1:123456789012:rule/r"}
    assert validate_resource(lambda_permission_scoped, LP, {**events, "function": "someone-elses"}, config=config) == []
    for bad in (events, {**events, "function": naming.lambda_function_arn(dev_settings, fn) + ":live"},
                {**good, "action": "lambda:*"}, {**good, "action": "lambda:UpdateFunctionCode"}):
        found = validate_resource(lambda_permission_scoped, LP, bad, config=config)
        assert len(found) == 1, (bad, found)
