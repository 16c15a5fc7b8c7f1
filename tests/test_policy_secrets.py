"""Secrets Manager policies: CMK encryption, deny-others resource policy, one reader, no literals."""

from __future__ import annotations

from typing import Any

import pytest

from agentfleet.core import iam_documents as iam
from agentfleet.core import naming
from agentfleet.core import plan
from agentfleet.core.model import Fleet
from agentfleet.core.settings import StackSettings
from agentfleet.policy.secretsmanager import (
    no_literal_secret_values,
    one_reader_per_secret,
    secret_encrypted_with_cmk,
    secret_resource_policy_denies_others,
)
from tests.test_policy_support import (
    KMS_KEY_ARN,
    ROLE,
    ROLE_POLICY,
    SECRET,
    SECRET_POLICY,
    SECRET_VERSION,
    UNKNOWN,
    Stack,
    add_agent,
    config_for,
    fleet_stack,
    rotation_role_policy,
    secret_arn,
    validate_resource,
)


@pytest.fixture(scope="module")
def config(sample_fleet: Fleet, dev_settings: StackSettings) -> dict[str, Any]:
    return config_for(dev_settings, sample_fleet)


def doc(*statements: iam.Statement) -> str:
    return iam.Document(tuple(statements)).to_json()


# ---- secret-encrypted-with-cmk ----


def test_cmk_key_passes_and_unknown_key_is_not_judged(config: dict[str, Any]) -> None:
    assert validate_resource(secret_encrypted_with_cmk, SECRET, {"name": "s", "kmsKeyId": KMS_KEY_ARN}, config=config) == []
    assert validate_resource(secret_encrypted_with_cmk, SECRET, {"name": UNKNOWN, "kmsKeyId": UNKNOWN}, config=config) == []
    assert validate_resource(secret_encrypted_with_cmk, SECRET, {"kmsKeyId": "alias/agents-dev"}) == []


def test_missing_key_is_caught_with_the_environment_alias_as_fix(config: dict[str, Any], dev_settings: StackSettings) -> None:
    [msg] = validate_resource(secret_encrypted_with_cmk, SECRET, {"name": "agents/dev/x/y"}, name="raw-secret", config=config)
    assert msg.startswith('aws:secretsmanager/secret:Secret "raw-secret"') and "aws/secretsmanager" in msg
    assert naming.kms_alias(dev_settings) in msg
    assert len(validate_resource(secret_encrypted_with_cmk, SECRET, {})) == 1  # no props at all: reported, no crash


@pytest.mark.parametrize("key", ["alias/aws/secretsmanager", "arn:aws:kms:us-east-1:123456789012:alias/aws/secretsmanager"])
def test_aws_managed_key_is_caught(key: str) -> None:
    [msg] = validate_resource(secret_encrypted_with_cmk, SECRET, {"kmsKeyId": key})
    assert "AWS-managed key" in msg and key in msg


def test_replicas_need_a_cmk_too() -> None:
    props = {"kmsKeyId": KMS_KEY_ARN, "replicas": [{"region": "eu-west-1"}, {"region": "us-west-2", "kmsKeyId": KMS_KEY_ARN}]}
    [msg] = validate_resource(secret_encrypted_with_cmk, SECRET, props)
    assert "replica #1" in msg and "eu-west-1" in msg


# ---- secret-resource-policy-denies-others ----


@pytest.mark.parametrize("with_config", [True, False])
def test_generated_resource_policies_pass(sample_fleet: Fleet, dev_settings: StackSettings, config: dict[str, Any], with_config: bool) -> None:
    stack = fleet_stack(dev_settings, sample_fleet)
    assert stack.validate(secret_resource_policy_denies_others, config if with_config else None) == []


def test_secret_without_resource_policy_is_caught(sample_fleet: Fleet, dev_settings: StackSettings, config: dict[str, Any]) -> None:
    stack = fleet_stack(dev_settings, sample_fleet)
    stack.remove(stack.named("research/openai/secret-policy"))
    [(msg, urn)] = stack.validate(secret_resource_policy_denies_others, config)
    assert urn == stack.named("research/openai/secret").urn
    assert '"research/openai/secret" has no resource policy' in msg and "Fix:" in msg


def _replace_policy(stack: Stack, name: str, policy: str) -> None:
    old = stack.named(name)
    stack.remove(old)
    stack.add(SECRET_POLICY, name, {"secretArn": old.props["secretArn"], "policy": policy}, deps=old.dependencies)


def test_exception_for_another_agents_role_is_caught(sample_fleet: Fleet, dev_settings: StackSettings, config: dict[str, Any]) -> None:
    research, crm = sample_fleet.agent("research"), sample_fleet.agent("crm")
    cred = research.credentials[0]
    intruder = naming.role_arn(dev_settings, naming.role_name(dev_settings, crm.name))
    widened = doc(iam.deny_read_except("DenyReadExceptOwner", plan.secret_readers(dev_settings, research, cred) + [intruder]))
    stack = fleet_stack(dev_settings, sample_fleet)
    _replace_policy(stack, f"research/{cred.name}/secret-policy", widened)
    [(msg, _)] = stack.validate(secret_resource_policy_denies_others, config)
    assert intruder in msg and "(agent research)" in msg
    # Without settings the policy still sees that the exception names another agent's role in the stack.
    [(msg, _)] = stack.validate(secret_resource_policy_denies_others, None)
    assert "agent crm's role" in msg


def test_wildcard_exception_and_narrowed_deny_are_caught(sample_fleet: Fleet, dev_settings: StackSettings, config: dict[str, Any]) -> None:
    research = sample_fleet.agent("research")
    cred = research.credentials[0]
    name = f"research/{cred.name}/secret-policy"
    stack = fleet_stack(dev_settings, sample_fleet)
    _replace_policy(stack, name, doc(iam.deny_read_except("D", ["arn:aws:iam::123456789012:role/*"])))
    [(msg, _)] = stack.validate(secret_resource_policy_denies_others, config)
    assert "wildcards" in msg

    narrowed = iam.Statement(
        "D", ("secretsmanager:GetSecretValue",), ("*",), effect="Deny", principal={"AWS": "*"},
        condition={"StringNotEquals": {"aws:PrincipalArn": tuple(plan.secret_readers(dev_settings, research, cred))},
                   "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    )
    _replace_policy(stack, name, doc(narrowed))
    [(msg, _)] = stack.validate(secret_resource_policy_denies_others, config)
    assert "does not deny read to other principals" in msg


def test_allow_only_policy_is_caught(sample_fleet: Fleet, dev_settings: StackSettings, config: dict[str, Any]) -> None:
    stack = fleet_stack(dev_settings, sample_fleet)
    allow = doc(iam.Statement("A", ("secretsmanager:GetSecretValue",), ("*",), principal={"AWS": "arn:aws:iam::123456789012:role/x"}))
    _replace_policy(stack, "crm/openai/secret-policy", allow)
    [(msg, _)] = stack.validate(secret_resource_policy_denies_others, config)
    assert '"crm/openai/secret"' in msg


def test_unknown_resource_policy_or_names_do_not_crash(config: dict[str, Any]) -> None:
    stack = Stack()
    sec = stack.add(SECRET, "s", {"name": UNKNOWN, "tags": UNKNOWN})
    stack.add(SECRET_POLICY, "p", {"secretArn": UNKNOWN, "policy": UNKNOWN}, deps=[sec])
    assert stack.validate(secret_resource_policy_denies_others, config) == []
    bare = Stack()
    bare.add(SECRET, "s", {})
    assert len(bare.validate(secret_resource_policy_denies_others, config)) == 1  # no policy: reported


# ---- one-reader-per-secret ----


@pytest.mark.parametrize("with_config", [True, False])
def test_sample_fleet_has_one_reader_per_secret(sample_fleet: Fleet, dev_settings: StackSettings, config: dict[str, Any], with_config: bool) -> None:
    stack = fleet_stack(dev_settings, sample_fleet)
    assert stack.validate(one_reader_per_secret, config if with_config else None) == []


def test_second_reader_is_caught(sample_fleet: Fleet, dev_settings: StackSettings, config: dict[str, Any]) -> None:
    stack = fleet_stack(dev_settings, sample_fleet)
    crm_role = stack.named("crm/role")
    extra = doc(iam.secret_read("AlsoResearch", [naming.secret_arn_pattern(dev_settings, "research", "openai")]))
    stack.add(ROLE_POLICY, "crm/extra", {"role": crm_role.props["name"], "policy": extra}, deps=[crm_role])
    for cfg in (config, None):
        [(msg, urn)] = stack.validate(one_reader_per_secret, cfg)
        assert urn == stack.named("research/openai/secret").urn
        assert "2 agent roles" in msg and "agents-dev-crm" in msg and '"crm/extra"' in msg
    # the other secrets of research are untouched: exactly one message


def test_wildcard_reader_reads_every_secret(sample_fleet: Fleet, dev_settings: StackSettings, config: dict[str, Any]) -> None:
    stack = fleet_stack(dev_settings, sample_fleet)
    role = stack.add(ROLE, "snoop/role", {"name": "snoop"})
    stack.add(ROLE_POLICY, "snoop/policy", {"role": "snoop", "policy": doc(iam.secret_read("All", ["*"]))}, deps=[role])
    found = stack.validate(one_reader_per_secret, config)
    secrets = [r for r in stack.resources if r.resource_type == SECRET]
    assert len(found) == len(secrets) == 10
    assert all("snoop" in m for m, _ in found)


def test_secret_nobody_reads_is_caught_unless_a_document_is_unknown(sample_fleet: Fleet, dev_settings: StackSettings, config: dict[str, Any]) -> None:
    stack = fleet_stack(dev_settings, sample_fleet)
    policy = stack.named("billing/policy")
    stack.remove(policy)
    found = stack.validate(one_reader_per_secret, config)
    assert sorted(m.split('"')[1] for m, _ in found) == ["billing/ledger-api/secret", "billing/stripe/secret", "billing/webhook-signing/secret"]
    assert all("readable by no agent role" in m for m, _ in found)
    # In preview the agent's policy may be computed later: absence can't be proven, so no report.
    stack.add(ROLE_POLICY, "billing/policy", {"role": policy.props["role"], "policy": UNKNOWN}, deps=policy.dependencies)
    assert stack.validate(one_reader_per_secret, config) == []


def test_rotation_role_is_allowed_but_a_writer_with_the_wrong_name_is_not(sample_fleet: Fleet, dev_settings: StackSettings, config: dict[str, Any]) -> None:
    research = sample_fleet.agent("research")
    stack = fleet_stack(dev_settings, sample_fleet)
    rot_name = naming.rotation_role_name(dev_settings, "research")
    rot = stack.add(ROLE, "research/rotation-role", {"name": rot_name, "tags": naming.tags(dev_settings, agent="research")})
    stack.add(ROLE_POLICY, "research/rotation-policy", {"role": rot_name, "policy": rotation_role_policy(dev_settings, research)}, deps=[rot])
    assert stack.validate(one_reader_per_secret, config) == []
    other = stack.add(ROLE, "impostor", {"name": "impostor"})
    stack.add(ROLE_POLICY, "impostor-policy", {"role": "impostor", "policy": rotation_role_policy(dev_settings, research)}, deps=[other])
    found = stack.validate(one_reader_per_secret, config)
    assert len(found) == 2 and all("impostor" in m for m, _ in found)  # research's two AWS secrets


def test_resource_policy_allow_adds_a_reader(sample_fleet: Fleet, dev_settings: StackSettings, config: dict[str, Any]) -> None:
    stack = fleet_stack(dev_settings, sample_fleet)
    sec = stack.named("support/zendesk/secret")
    allow = doc(iam.Statement("Share", ("secretsmanager:GetSecretValue",), ("*",), principal={"AWS": "arn:aws:iam::123456789012:role/agents-dev-crm"}))
    stack.add(SECRET_POLICY, "support/zendesk/share", {"secretArn": sec.props["arn"], "policy": allow}, deps=[sec])
    [(msg, urn)] = stack.validate(one_reader_per_secret, config)
    assert urn == sec.urn and "agents-dev-crm" in msg


def test_paused_agent_still_counts_as_the_one_reader(sample_fleet: Fleet, dev_settings: StackSettings, config: dict[str, Any]) -> None:
    stack = Stack()
    for agent in sample_fleet.agents:
        add_agent(stack, dev_settings, agent.model_copy(update={"paused": agent.name == "crm"}))
    assert "AgentPaused" in stack.named("crm/policy").props["policy"]
    assert stack.validate(one_reader_per_secret, config) == []


def test_one_reader_survives_unknowns(config: dict[str, Any]) -> None:
    stack = Stack()
    stack.add(SECRET, "s", {"name": UNKNOWN})
    stack.add(SECRET, "t", {})
    role = stack.add(ROLE, "r", {"name": UNKNOWN, "inlinePolicies": UNKNOWN})
    stack.add(ROLE_POLICY, "p", {"role": UNKNOWN, "policy": UNKNOWN}, deps=[role])
    stack.add("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "a", {"role": UNKNOWN, "policyArn": UNKNOWN})
    assert stack.validate(one_reader_per_secret, config) == []


# ---- no-literal-secret-values ----


def test_generated_value_passes_in_engine_and_offline_shapes(config: dict[str, Any]) -> None:
    stack = Stack()
    sec = stack.add(SECRET, "s", {"name": "agents/dev/billing/webhook-signing"})
    rnd = stack.add("random:index/randomPassword:RandomPassword", "r", {"length": 48.0, "result": "mock-random-value"})
    # The engine's shape: per-property dependencies.
    stack.add(SECRET_VERSION, "v1", {"secretId": "arn", "secretString": "mock-random-value"},
              deps=[sec, rnd], prop_deps={"secretId": [sec], "secretString": [rnd]})
    # The offline runner's shape: resource dependencies only.
    stack.add(SECRET_VERSION, "v2", {"secretId": "arn", "secretString": "mock-random-value"}, deps=[sec, rnd])
    # Preview: the random value is not known yet.
    stack.add(SECRET_VERSION, "v3", {"secretId": UNKNOWN, "secretString": UNKNOWN}, deps=[sec, rnd])
    assert stack.validate(no_literal_secret_values, config) == []


LITERAL = "correct-horse-battery-staple"


@pytest.mark.parametrize("engine_shape", [True, False])
def test_literal_value_is_caught_without_echoing_it(config: dict[str, Any], engine_shape: bool) -> None:
    stack = Stack()
    sec = stack.add(SECRET, "s", {"name": "agents/dev/research/openai", "arn": "arn:s"})
    stack.add(SECRET_VERSION, "hardcoded", {"secretId": "arn:s", "secretString": LITERAL}, deps=[sec],
              prop_deps={"secretId": [sec]} if engine_shape else None)
    [(msg, urn)] = stack.validate(no_literal_secret_values, config)
    assert msg.startswith('aws:secretsmanager/secretVersion:SecretVersion "hardcoded" sets secretString')
    assert LITERAL not in msg and "out of band" in msg
    assert urn is not None and urn.endswith("::hardcoded")


def test_literal_in_vault_kv_is_caught(config: dict[str, Any]) -> None:
    stack = Stack()
    mount = stack.add("vault:index/mount:Mount", "kv", {"path": "kv", "type": "kv-v2"})
    stack.add("vault:kv/secretV2:SecretV2", "kvlit", {"mount": "kv", "name": "dev/x/y", "dataJson": '{"value":"abc"}'}, deps=[mount])
    [(msg, _)] = stack.validate(no_literal_secret_values, config)
    assert "dataJson" in msg and "abc" not in msg


def test_missing_or_empty_values_do_not_crash(config: dict[str, Any]) -> None:
    stack = Stack()
    stack.add(SECRET_VERSION, "a", {})
    stack.add(SECRET_VERSION, "b", {"secretString": ""})
    stack.add(SECRET_VERSION, "c", {"secretId": UNKNOWN, "secretBinary": UNKNOWN})
    assert stack.validate(no_literal_secret_values, config) == []


def test_secret_arn_of_builders_is_what_the_stack_uses(dev_settings: StackSettings) -> None:
    assert secret_arn(dev_settings, "crm", "openai").startswith("arn:aws:secretsmanager:us-east-1:123456789012:secret:agents/dev/crm/openai-")


def test_lookalike_fleet_isolation(dev_settings: StackSettings) -> None:
    """36 confusable agents (bill/billing/bill-ing ...): clean as generated; a prefix grant is caught exactly."""
    from tests.fleetgen import generate_fleet

    fleet = generate_fleet(36, 3, lookalike=True)
    cfg = config_for(dev_settings, fleet)
    stack = fleet_stack(dev_settings, fleet)
    assert stack.validate(one_reader_per_secret, cfg) == []
    assert stack.validate(secret_resource_policy_denies_others, cfg) == []
    bill = fleet.agent("bill")
    prefix = naming.secret_name(dev_settings, "bill", "x").rsplit("/", 2)[0] + "/bill"  # agents/dev/bill
    arn_prefix = naming.secret_arn_pattern(dev_settings, "bill", "x").split(":secret:")[0]
    sloppy = doc(iam.secret_read("Sloppy", [f"{arn_prefix}:secret:{prefix}*"]))
    role = stack.named("bill/role")
    stack.add(ROLE_POLICY, "bill/sloppy", {"role": role.props["name"], "policy": sloppy}, deps=[role])
    flagged = {m.split('"')[1] for m, _ in stack.validate(one_reader_per_secret, cfg)}
    expected = {f"{a.name}/{c.name}/secret" for a in fleet.agents for c in plan.aws_credentials(a)
                if naming.secret_name(dev_settings, a.name, c.name).startswith(prefix) and a.name != bill.name}
    assert expected and flagged == expected
