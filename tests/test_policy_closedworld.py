"""Issue 11's policies one by one: a compliant case (built with the builders) passes, a violating
one is caught, an unknown (preview) value does not crash or guess, and a reviewed exception in
the policy config is the only way through the closed world."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi_policy import PolicyResource

from agentfleet.core import iam_documents as iam
from agentfleet.core import naming
from agentfleet.core import plan
from agentfleet.core.model import Fleet
from agentfleet.core.settings import StackSettings
from agentfleet.core.vault_policies import agent_policy_hcl
from agentfleet.policy.closedworld import closed_world, one_policy_and_rotation_per_secret
from agentfleet.policy.iam import iam_document_strict, lambda_permission_scoped, no_privilege_escalation, trust_policy_scoped
from agentfleet.policy.kms import kms_use_confined
from agentfleet.policy.rotation import secret_rotation_within_class
from agentfleet.policy.secretsmanager import no_literal_secret_values, secret_inputs_protected
from agentfleet.policy.vault import vault_login_confined
from tests.test_policy_support import (
    KMS_KEY_ARN,
    ROLE,
    ROLE_POLICY,
    SECRET,
    SECRET_POLICY,
    SECRET_ROTATION,
    SECRET_VERSION,
    UNKNOWN,
    VAULT_POLICY,
    Stack,
    config_for,
    fleet_stack,
    secret_arn,
    validate_resource,
)

ATTACH = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
MANAGED = "aws:iam/policy:Policy"
KMS_KEY = "aws:kms/key:Key"
AWS_LOGIN = "vault:aws/authBackendRole:AuthBackendRole"
ACCESS = "agentfleet:index:AgentAccess"


@pytest.fixture(scope="module")
def config(dev_settings: StackSettings, sample_fleet: Fleet) -> dict[str, Any]:
    return config_for(dev_settings, sample_fleet)


@pytest.fixture()
def stack(dev_settings: StackSettings, sample_fleet: Fleet) -> Stack:
    s = fleet_stack(dev_settings, sample_fleet)
    s.add(KMS_KEY, "kms-key", {"arn": KMS_KEY_ARN, "keyId": KMS_KEY_ARN.rsplit("/", 1)[1],
                               "policy": iam.to_json(plan.kms_key_policy(dev_settings))})
    return s


def under(child: PolicyResource, parent: PolicyResource) -> PolicyResource:
    child.parent = parent
    return child


def messages(stack: Stack, policy: Any, config: dict[str, Any]) -> list[str]:
    return [m for m, _ in stack.validate(policy, config)]


# ---- closed-world ----


def test_builder_stack_is_a_closed_world(stack: Stack, config: dict[str, Any]) -> None:
    assert messages(stack, closed_world, config) == []
    assert messages(stack, one_policy_and_rotation_per_secret, config) == []
    assert messages(stack, kms_use_confined, config) == []


@pytest.mark.parametrize("arn", ["arn:aws:iam::aws:policy/SecretsManagerReadWrite", "arn:aws:iam::123456789012:policy/elsewhere"])
def test_outside_policy_attachment_fails_unless_excepted(stack: Stack, config: dict[str, Any], arn: str) -> None:
    stack.add(ATTACH, "att", {"role": "agents-dev-crm", "policyArn": arn})
    [msg] = messages(stack, closed_world, config)
    assert arn in msg and "cannot evaluate" in msg
    excepted = {**config, "exceptions": [{"managedPolicyArn": arn, "reason": "reviewed in SEC-1"}]}
    assert messages(stack, closed_world, excepted) == []
    no_reason = {**config, "exceptions": [{"managedPolicyArn": arn, "reason": " "}]}
    assert len(messages(stack, closed_world, no_reason)) == 1


def test_in_stack_policy_attachment_is_evaluated_not_refused(stack: Stack, config: dict[str, Any], dev_settings: StackSettings) -> None:
    pol = stack.add(MANAGED, "pol", {"arn": "arn:aws:iam::123456789012:policy/p",
                                    "policy": iam.Document((iam.secret_read("R", [naming.secret_arn_pattern(dev_settings, "billing", "stripe")]),)).to_json()})
    stack.add(ATTACH, "att", {"role": "agents-dev-crm", "policyArn": "arn:aws:iam::123456789012:policy/p"}, deps=[pol])
    assert messages(stack, closed_world, config) == []
    # ... and the grant it carries is seen: billing's secret now has a second reader.
    from agentfleet.policy.secretsmanager import one_reader_per_secret
    assert any("agents-dev-crm" in m for m in messages(stack, one_reader_per_secret, config))


def test_computed_attachment_passes_only_when_it_points_into_the_stack(stack: Stack, config: dict[str, Any]) -> None:
    pol = stack.add(MANAGED, "pol", {"policy": iam.Document(()).to_json()})
    stack.add(ATTACH, "ok", {"role": "agents-dev-crm", "policyArn": UNKNOWN}, prop_deps={"policyArn": [pol]})
    assert messages(stack, closed_world, config) == []
    stack.add(ATTACH, "bad", {"role": "agents-dev-crm", "policyArn": UNKNOWN})
    assert len(messages(stack, closed_world, config)) == 1


@pytest.mark.parametrize("type_", ["aws:iam/user:User", "aws:iam/accessKey:AccessKey", "aws:iam/group:Group",
                                   "aws:iam/userLoginProfile:UserLoginProfile", "vault:generic/endpoint:Endpoint",
                                   "vault:generic/secret:Secret"])
def test_long_lived_identities_and_generic_vault_writes_fail(stack: Stack, config: dict[str, Any], type_: str) -> None:
    stack.add(type_, "raw", {"name": "x", "path": "sys/policy/x"})
    [msg] = messages(stack, closed_world, config)
    assert type_ in msg
    assert messages(stack, closed_world, {**config, "exceptions": [{"resource": "raw", "reason": "break-glass, SEC-2"}]}) == []


def test_unevaluated_type_referencing_a_managed_resource_fails(stack: Stack, config: dict[str, Any], dev_settings: StackSettings) -> None:
    harmless = stack.add("aws:ecs/cluster:Cluster", "cluster", {"name": "c"})
    assert messages(stack, closed_world, config) == []
    stack.remove(harmless)
    stack.add("aws:iam/instanceProfile:InstanceProfile", "ip", {"role": "agents-dev-crm"})
    stack.add("aws:cloudformation/stack:Stack", "cfn", {"parameters": {"S": secret_arn(dev_settings, "billing", "stripe")}})
    found = messages(stack, closed_world, config)
    assert len(found) == 2
    assert any("runs as the fleet's role" in m and '"ip"' in m for m in found)
    assert any("does not evaluate" in m and '"cfn"' in m for m in found)


@pytest.mark.parametrize("parent_type", [ACCESS, "agentfleet:index:AgentFleet", "agentfleet:index:LookAlike"])
def test_a_parent_exempts_nothing(stack: Stack, config: dict[str, Any], parent_type: str) -> None:
    """`parent=` is the program's to choose: the fleet itself, an agent's component or a look-alike
    `agentfleet:` component as parent changes no verdict."""
    comp = stack.add(parent_type, "crm", {})
    under(stack.add("aws:iam/instanceProfile:InstanceProfile", "ip", {"role": "agents-dev-crm"}), comp)
    under(stack.add("aws:cloudformation/stack:Stack", "cfn", {"parameters": {"R": "agents-dev-crm"}}), comp)
    found = messages(stack, closed_world, config)
    assert any("runs as the fleet's role" in m and '"ip"' in m for m in found)
    assert any("does not evaluate" in m and '"cfn"' in m for m in found)


def _lambda_role(stack: Stack, s: StackSettings, role_name: str, agent: str) -> PolicyResource:
    return stack.add(ROLE, f"{role_name}-role", {"name": role_name, "arn": naming.role_arn(s, role_name),
                                                 "tags": naming.tags(s, agent=agent, owner="t")})


def test_a_function_runs_only_as_the_role_of_its_own_name(dev_settings: StackSettings, config: dict[str, Any]) -> None:
    """The builders' pairing (naming.rotation_function_name == rotation_role_name): a function named
    like its rotation role passes; another name, an agent's role, or a second function of the
    same name (say through another region's provider) fails, whatever the parent."""
    s = dev_settings
    rot = naming.rotation_role_name(s, "crm")
    agent_role = naming.role_name(s, "crm")

    def stack_with(*functions: tuple[str, str]) -> list[str]:
        st = Stack()
        roles = {rot: _lambda_role(st, s, rot, "crm"), agent_role: _lambda_role(st, s, agent_role, "crm")}
        fleet = st.add("agentfleet:index:AgentFleet", "agents", {})
        for i, (fn, role) in enumerate(functions):
            under(st.add("aws:lambda/function:Function", f"f{i}", {"name": fn, "role": naming.role_arn(s, role)},
                         prop_deps={"role": [roles[role]]}), fleet)
        return messages(st, closed_world, config)

    assert stack_with((rot, rot)) == []
    [other_name] = stack_with(("evil", rot))
    assert "runs as the fleet's role" in other_name and '"f0"' in other_name
    [agent_named] = stack_with((agent_role, agent_role))
    assert "runs as the fleet's role" in agent_named
    [second] = stack_with((rot, rot), (rot, rot))
    assert "physical name" in second and '"f1"' in second


def test_a_schedule_runs_as_the_scheduler_role_only_towards_the_builders_targets(
        dev_settings: StackSettings, config: dict[str, Any]) -> None:
    s = dev_settings
    sched = naming.scheduler_role_name(s)
    rot = naming.rotation_role_name(s, "crm")

    def stack_with(target: dict[str, Any], role: str = sched) -> list[str]:
        st = Stack()
        _lambda_role(st, s, sched, "_shared")
        _lambda_role(st, s, rot, "crm")
        st.add("aws:lambda/function:Function", "fn", {"name": rot, "role": naming.role_arn(s, rot),
                                                      "arn": naming.lambda_function_arn(s, rot)})
        st.add("aws:lambda/function:Function", "raw", {"name": "raw", "role": "arn:aws:iam::123456789012:role/own",
                                                       "arn": naming.lambda_function_arn(s, "raw")})
        st.add("aws:scheduler/schedule:Schedule", "sch", {"name": f"{s.secret_prefix}-{s.environment}-x",
                                                         "target": {"roleArn": naming.role_arn(s, role), **target}})
        return messages(st, closed_world, config)

    assert stack_with({"arn": naming.alarm_topic_arn(s)}) == []
    assert stack_with({"arn": naming.lambda_function_arn(s, rot)}) == []
    [raw_target] = stack_with({"arn": naming.lambda_function_arn(s, "raw")})
    assert "runs as the fleet's role" in raw_target and '"sch"' in raw_target
    [other_role] = stack_with({"arn": naming.alarm_topic_arn(s)}, role=rot)
    assert "runs as the fleet's role" in other_role


# ---- one-policy-and-rotation-per-secret ----


@pytest.mark.parametrize("ref", ["name", "arn", "partial"])
def test_second_resource_policy_fails_however_referenced(stack: Stack, config: dict[str, Any], dev_settings: StackSettings, ref: str) -> None:
    name = naming.secret_name(dev_settings, "billing", "stripe")
    arn = secret_arn(dev_settings, "billing", "stripe")
    value = {"name": name, "arn": arn, "partial": arn[:-7]}[ref]
    stack.add(SECRET_POLICY, "extra", {"secretArn": value, "policy": "{}"})
    [msg] = messages(stack, one_policy_and_rotation_per_secret, config)
    assert 'SecretPolicy "extra"' in msg and "billing/stripe/secret" in msg


def test_second_rotation_fails_and_every_rotation_must_be_within_class(stack: Stack, config: dict[str, Any], dev_settings: StackSettings) -> None:
    stack.add(SECRET_ROTATION, "slow", {"secretId": naming.secret_name(dev_settings, "crm", "openai"),
                                        "rotationRules": {"automaticallyAfterDays": 1000.0}})
    [msg] = messages(stack, one_policy_and_rotation_per_secret, config)
    assert 'SecretRotation "slow"' in msg
    assert any("1000 days" in m for m in messages(stack, secret_rotation_within_class, config))


def test_policy_on_an_unidentifiable_secret_fails_and_unknown_waits(stack: Stack, config: dict[str, Any]) -> None:
    stack.add(SECRET_POLICY, "later", {"secretArn": UNKNOWN, "policy": UNKNOWN})
    assert messages(stack, one_policy_and_rotation_per_secret, config) == []
    stack.add(SECRET_POLICY, "nowhere", {"secretArn": "agents/dev/billing/strip", "policy": "{}"})
    [msg] = messages(stack, one_policy_and_rotation_per_secret, config)
    assert "no secret of this stack" in msg


# ---- kms-use-confined ----


def test_kms_grant_key_policy_and_direct_decrypt_fail(stack: Stack, config: dict[str, Any], dev_settings: StackSettings) -> None:
    stack.add("aws:kms/grant:Grant", "g", {"keyId": KMS_KEY_ARN, "granteePrincipal": "arn:aws:iam::123456789012:role/x"})
    extra = iam.Document((iam.key_admin_by_account("A", naming.account_root_arn(dev_settings)),
                          iam.Statement("B", ("kms:Decrypt",), ("*",), principal={"AWS": "arn:aws:iam::123456789012:role/x"})))
    stack.add("aws:kms/keyPolicy:KeyPolicy", "kp", {"keyId": KMS_KEY_ARN, "policy": extra.to_json()})
    stack.add(ROLE_POLICY, "direct", {"role": "agents-dev-crm", "policy": iam.Document((iam.Statement("D", ("kms:Decrypt",), (KMS_KEY_ARN,)),)).to_json()})
    found = messages(stack, kms_use_confined, config)
    assert len(found) == 3
    assert any("KMS grant" in m for m in found) and any('statement "B"' in m for m in found) and any("ViaService" in m for m in found)


def test_kms_unknown_documents_do_not_crash(stack: Stack, config: dict[str, Any]) -> None:
    stack.add("aws:kms/keyPolicy:KeyPolicy", "kp", {"keyId": UNKNOWN, "policy": UNKNOWN})
    stack.add(ROLE_POLICY, "later", {"role": UNKNOWN, "policy": UNKNOWN})
    assert messages(stack, kms_use_confined, config) == []


# ---- vault-login-confined ----


def _agent_vault(stack: Stack, s: StackSettings, agent: str, **login: Any) -> tuple[PolicyResource, PolicyResource]:
    comp = stack.add(ACCESS, agent, {})
    name = naming.vault_policy_name(s, agent)
    under(stack.add(VAULT_POLICY, f"{agent}/vault-policy", {"name": name, "policy": agent_policy_hcl(s, agent)}), comp)
    role = under(stack.add(ROLE, f"{agent}/r", {"name": naming.role_name(s, agent), "arn": naming.role_arn(s, naming.role_name(s, agent))}), comp)
    props = {"backend": "aws", "role": naming.vault_auth_role_name(s, agent), "boundIamPrincipalArns": [naming.role_arn(s, naming.role_name(s, agent))],
             "tokenPolicies": [name], "tokenNoDefaultPolicy": True, **login}
    return comp, under(stack.add(AWS_LOGIN, f"{agent}/vault-login", props), comp)


def test_own_login_passes_others_fail(dev_settings: StackSettings, config: dict[str, Any]) -> None:
    stack = Stack()
    _agent_vault(stack, dev_settings, "crm")
    assert messages(stack, vault_login_confined, config) == []
    name = naming.vault_policy_name(dev_settings, "crm")
    stack.add("vault:jwt/authBackendRole:AuthBackendRole", "jwt", {"roleName": "ci", "tokenPolicies": [name], "tokenNoDefaultPolicy": True})
    stack.add("vault:index/token:Token", "tok", {"policies": [name]})
    stack.add("vault:approle/authBackendRole:AuthBackendRole", "god", {"tokenPolicies": ["root"], "tokenNoDefaultPolicy": True})
    stack.add("vault:approle/authBackendRole:AuthBackendRole", "ghost", {"tokenPolicies": ["not-declared"], "tokenNoDefaultPolicy": True})
    found = messages(stack, vault_login_confined, config)
    assert any('"jwt" (Vault role \'ci\') hands Vault policy' in m for m in found)
    assert any('"tok" hands Vault policy' in m and "not a login role" in m for m in found)
    assert any("is handed out by 3 resources" in m for m in found)
    assert any("`root`" in m for m in found) and any("'not-declared'" in m for m in found)
    assert any('"jwt" is a jwt login' in m for m in found)  # the stack logs in with AWS auth


@pytest.mark.parametrize("parent_type", [ACCESS, "agentfleet:index:AgentFleet"])
def test_a_second_login_for_an_agent_fails_whatever_its_parent(
        dev_settings: StackSettings, config: dict[str, Any], parent_type: str) -> None:
    """One login per policy and per name in the stack: a copy of the builders' login, with the
    agent's own name and policy, on another backend and under the agent's component, still fails."""
    stack = Stack()
    comp, _ = _agent_vault(stack, dev_settings, "crm")
    name = naming.vault_policy_name(dev_settings, "crm")
    parent = comp if parent_type == ACCESS else stack.add(parent_type, "agents", {})
    under(stack.add("vault:jwt/authBackendRole:AuthBackendRole", "copy", {
        "backend": "github", "roleName": name, "tokenPolicies": [name], "tokenNoDefaultPolicy": True,
        "boundSubject": "repo:evil/evil:ref:refs/heads/main"}), parent)
    found = messages(stack, vault_login_confined, config)
    assert any("is handed out by 2 resources" in m for m in found)
    assert any(f"2 Vault login roles are named {name!r}" in m for m in found)


def test_an_aws_login_binds_exactly_the_role_named_like_its_policy(dev_settings: StackSettings, config: dict[str, Any]) -> None:
    s = dev_settings
    stack = Stack()
    _agent_vault(stack, s, "crm", boundIamPrincipalArns=[naming.role_arn(s, naming.role_name(s, "billing"))])
    [msg] = messages(stack, vault_login_confined, config)
    assert "not (only) the IAM role named like its policy" in msg
    stack2 = Stack()
    _agent_vault(stack2, s, "crm", backend="aws-evil")
    [msg2] = messages(stack2, vault_login_confined, config)
    assert "not the stack's AWS auth" in msg2


def test_login_must_drop_default_and_bind_its_own_role(dev_settings: StackSettings, config: dict[str, Any]) -> None:
    stack = Stack()
    _agent_vault(stack, dev_settings, "crm", tokenNoDefaultPolicy=False, boundIamPrincipalArns=["arn:aws:iam::123456789012:role/*"])
    found = messages(stack, vault_login_confined, config)
    assert any("default" in m for m in found) and any("role/*" in m for m in found)


def test_paused_login_without_policies_still_drops_default(dev_settings: StackSettings, config: dict[str, Any]) -> None:
    stack = Stack()
    _agent_vault(stack, dev_settings, "crm", tokenPolicies=[], tokenNoDefaultPolicy=False)
    [msg] = messages(stack, vault_login_confined, config)
    assert "default" in msg
    stack2 = Stack()
    _agent_vault(stack2, dev_settings, "crm", tokenPolicies=UNKNOWN, boundIamPrincipalArns=UNKNOWN)
    assert messages(stack2, vault_login_confined, config) == []


# ---- iam-document-strict / no-privilege-escalation ----


def test_builder_documents_are_strict_and_escalation_free(dev_settings: StackSettings, sample_fleet: Fleet, config: dict[str, Any]) -> None:
    for agent in sample_fleet.agents:
        doc = iam.to_json(plan.agent_iam_policy(dev_settings, agent, KMS_KEY_ARN))
        assert validate_resource(iam_document_strict, ROLE_POLICY, {"policy": doc}, config=config) == []
        assert validate_resource(no_privilege_escalation, ROLE_POLICY, {"policy": doc}, config=config) == []
        trust = iam.to_json(plan.trust_policy(dev_settings, agent))
        assert validate_resource(iam_document_strict, ROLE, {"assumeRolePolicy": trust}, config=config) == []


@pytest.mark.parametrize("statement, expected", [
    ({"Effect": "allow", "Action": "s3:GetObject", "Resource": "*"}, "Effect 'allow'"),
    ({"Effect": "Allow", "action": "s3:GetObject", "Resource": "*"}, "keys ['action']"),
    ({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Condition": {"StringEquals": "x"}}, "Condition"),
])
def test_malformed_statements_are_refused(statement: dict[str, Any], expected: str) -> None:
    doc = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    [msg] = validate_resource(iam_document_strict, ROLE_POLICY, {"policy": doc})
    assert expected in msg
    assert validate_resource(iam_document_strict, ROLE_POLICY, {"policy": UNKNOWN}) == []
    assert "not valid JSON" in validate_resource(iam_document_strict, ROLE_POLICY, {"policy": "{x"})[0]


@pytest.mark.parametrize("action", ["iam:PutRolePolicy", "iam:Attach*", "secretsmanager:PutResourcePolicy", "iam:*", "*"])
def test_escalation_actions_fail(action: str) -> None:
    doc = iam.Document((iam.Statement("E", (action,), ("*",)),)).to_json()
    [msg] = validate_resource(no_privilege_escalation, ROLE_POLICY, {"policy": doc})
    assert 'statement "E"' in msg
    denied = iam.Document((iam.Statement("E", (action,), ("*",), effect="Deny"),)).to_json()
    assert validate_resource(no_privilege_escalation, ROLE_POLICY, {"policy": denied}) == []


# ---- lambda-permission-scoped ----


def test_lambda_permissions(dev_settings: StackSettings, config: dict[str, Any]) -> None:
    good = {"principal": "secretsmanager.amazonaws.com", "sourceAccount": dev_settings.aws_account_id,
            "sourceArn": secret_arn(dev_settings, "crm", "openai")}
    LP = "aws:lambda/permission:Permission"
    assert validate_resource(lambda_permission_scoped, LP, good, config=config) == []
    shared = {**good, "sourceArn": naming.environment_secrets_arn_pattern(dev_settings)}
    assert validate_resource(lambda_permission_scoped, LP, shared, config=config) == []
    for bad in ({**good, "principal": "*"}, {**good, "sourceArn": None}, {**good, "sourceAccount": "999988887777"},
                {**good, "sourceArn": "arn:aws:secretsmanager:*"}, {"principal": "999988887777"}):
        assert len(validate_resource(lambda_permission_scoped, LP, bad, config=config)) == 1, bad
    assert validate_resource(lambda_permission_scoped, LP, {"principal": UNKNOWN}, config=config) == []
    url = "aws:lambda/functionUrl:FunctionUrl"
    assert len(validate_resource(lambda_permission_scoped, url, {"authorizationType": "NONE"}, config=config)) == 1
    assert validate_resource(lambda_permission_scoped, url, {"authorizationType": "AWS_IAM"}, config=config) == []


# ---- no-literal-secret-values / secret-inputs-protected, by class ----


@pytest.mark.parametrize("type_, props", [
    ("aws:ssm/parameter:Parameter", {"name": "/agents/dev/crm/k", "type": "SecureString", "value": "lit-value-1"}),
    ("aws:lambda/function:Function", {"environment": {"variables": {"OPENAI_API_KEY": "lit-value-1"}}}),
    ("vault:generic/endpoint:Endpoint", {"path": "kv/data/dev/crm/k", "dataJson": '{"data":{"v":"lit-value-1"}}'}),
    ("github:index/actionsSecret:ActionsSecret", {"plaintextValue": "lit-value-1"}),
    ("aws:rds/instance:Instance", {"masterPassword": "lit-value-1"}),
    ("some:new/store:Store", {"valueWo": "lit-value-1"}),
])
def test_literal_in_any_secret_holding_input_fails(type_: str, props: dict[str, Any], config: dict[str, Any]) -> None:
    stack = Stack()
    stack.add(type_, "raw", props)
    [msg] = messages(stack, no_literal_secret_values, config)
    assert "lit-value-1" not in msg and "literal" in msg


def test_non_secret_inputs_are_not_secret_holding(config: dict[str, Any]) -> None:
    stack = Stack()
    stack.add("aws:ssm/parameter:Parameter", "cfg", {"name": "/agents/dev/region", "type": "String", "value": "us-east-1"})
    stack.add("aws:lambda/function:Function", "fn", {"environment": {"variables": {"SECRET_PREFIX": "agents/dev/", "TOKEN_TTL": "900"}}})
    assert messages(stack, no_literal_secret_values, config) == []


def test_generator_outputs_protected_or_not(config: dict[str, Any]) -> None:
    stack = Stack()
    stack.add("random:index/randomPassword:RandomPassword", "pw", {"result": "secret-generated-1"})
    stack.add("random:index/randomString:RandomString", "str", {"result": "plain-generated-2"})
    stack.add(SECRET_VERSION, "good", {"secretStringWo": "secret-generated-1"})
    stack.add(SECRET_VERSION, "good2", {"secretString": "secret-generated-1"})
    stack.add(SECRET_VERSION, "plain-wo", {"secretStringWo": "plain-generated-2"})
    stack.add(SECRET_VERSION, "later", {"secretString": UNKNOWN})
    assert messages(stack, no_literal_secret_values, config) == []
    assert messages(stack, secret_inputs_protected, config) == []
    stack.add(SECRET_VERSION, "plain", {"secretString": "plain-generated-2"})
    [msg] = messages(stack, secret_inputs_protected, config)
    assert 'SecretVersion "plain"' in msg


# ---- trust ----


@pytest.mark.parametrize("condition, ok", [
    ({"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                       "token.actions.githubusercontent.com:sub": "repo:org/app:ref:refs/heads/main"}}, True),
    ({"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
      "StringLike": {"token.actions.githubusercontent.com:sub": "repo:org/*"}}, False),
    ({"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
      "StringLike": {"token.actions.githubusercontent.com:sub": "repo:org/app:*"}}, False),
    ({"StringEquals": {"token.actions.githubusercontent.com:sub": "repo:org/app:ref:refs/heads/main"}}, False),
    ({"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
      "ForAnyValue:StringEquals": {"token.actions.githubusercontent.com:sub": "repo:org/app:ref:refs/heads/main"}}, False),
])
def test_oidc_sub_must_match_exactly(condition: dict[str, Any], ok: bool, config: dict[str, Any]) -> None:
    st = {"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity", "Condition": condition,
          "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"}}
    found = validate_resource(trust_policy_scoped, ROLE, {"assumeRolePolicy": json.dumps({"Version": "2012-10-17", "Statement": [st]})}, config=config)
    assert (found == []) is ok, found


@pytest.mark.parametrize("principal, condition, listed, ok", [
    ("arn:aws:iam::123456789012:root", {"StringEquals": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/ci"}}, False, True),
    ("arn:aws:iam::123456789012:root", {"StringLike": {"aws:PrincipalArn": "*"}}, False, False),
    ("123456789012", {"Bool": {"aws:SecureTransport": "true"}}, False, False),
    ("arn:aws:iam::123456789012:root", {"StringNotEquals": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/x"}}, False, False),
    ("arn:aws:iam::999988887777:role/vendor", {"StringEquals": {"sts:ExternalId": "abc"}}, False, False),
    ("arn:aws:iam::999988887777:role/vendor", {"StringEquals": {"sts:ExternalId": "abc"}}, True, True),
])
def test_account_trust_needs_a_real_condition_and_a_listed_account(principal: str, condition: dict[str, Any], listed: bool, ok: bool,
                                                                   config: dict[str, Any]) -> None:
    st = {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": principal}, "Condition": condition}
    cfg = {**config, "trustedAccounts": ["999988887777"]} if listed else config
    found = validate_resource(trust_policy_scoped, ROLE, {"assumeRolePolicy": json.dumps({"Version": "2012-10-17", "Statement": [st]})}, config=cfg)
    assert (found == []) is ok, found


# ---- engine parity: custom classifications without policy config ----


def test_custom_class_is_read_from_the_fleet_component(dev_settings: StackSettings) -> None:
    stack = Stack()
    sec = stack.add(SECRET, "s", {"name": "agents/dev/a/k", "tags": {"classification": "vendor-keys"}})
    stack.add(SECRET_ROTATION, "rot", {"secretId": "agents/dev/a/k", "rotationRules": {"automaticallyAfterDays": 120.0}}, deps=[sec])
    [msg] = messages(stack, secret_rotation_within_class, {})
    assert "vendor-keys" in msg and "neither" in msg
    stack.add("agentfleet:index:AgentFleet", "fleet", {"classifications": {"vendor-keys": 180, "internal": 1000}})
    assert messages(stack, secret_rotation_within_class, {}) == []
    # The program can add classes, never relax a built-in one.
    sec2 = stack.add(SECRET, "s2", {"name": "agents/dev/a/j", "tags": {"classification": "internal"}})
    stack.add(SECRET_ROTATION, "rot2", {"secretId": "agents/dev/a/j", "rotationRules": {"automaticallyAfterDays": 120.0}}, deps=[sec2])
    [msg] = messages(stack, secret_rotation_within_class, {})
    assert "max 90 days" in msg


def test_every_policy_is_documented_with_its_level(repo: Any) -> None:
    from agentfleet.policy.registry import ALL_POLICIES

    text = (repo / "docs" / "policy.md").read_text(encoding="utf-8")
    for p in ALL_POLICIES:
        level = (p.enforcement_level.value if p.enforcement_level else "advisory")
        assert f"| `{p.name}` | {level} |" in text, p.name
    assert "## Threat model" in text


# ---- by class: running as a fleet role, wildcard principals, credential-shaped literals, Vault names ----


@pytest.mark.parametrize("type_, props", [
    ("aws:lambda/function:Function", {"role": "arn:aws:iam::123456789012:role/agents-dev-crm"}),
    ("aws:eks/podIdentityAssociation:PodIdentityAssociation", {"roleArn": "arn:aws:iam::123456789012:role/agents-dev-crm"}),
    ("aws:cloudwatch/eventTarget:EventTarget", {"roleArn": "arn:aws:iam::123456789012:role/agents-dev-crm"}),
    ("future:new/workload:Workload", {"executionRoleArn": "arn:aws:iam::123456789012:role/agents-dev-crm"}),
])
def test_raw_resource_running_as_a_fleet_role_fails(config: dict[str, Any], type_: str, props: dict[str, Any]) -> None:
    def stack_with(extra: dict[str, Any]) -> Stack:
        s = Stack()
        s.add(ROLE, "crm/role", {"name": "agents-dev-crm", "arn": "arn:aws:iam::123456789012:role/agents-dev-crm"})
        s.add(type_, "raw", extra)
        return s

    [msg] = messages(stack_with(props), closed_world, config)
    assert "runs as the fleet's role" in msg
    other = {k: "arn:aws:iam::123456789012:role/unrelated" for k in props}
    assert messages(stack_with(other), closed_world, config) == []


def test_pod_identity_runs_as_a_role_only_for_the_pod_its_trust_pins(dev_settings: StackSettings,
                                                                       config: dict[str, Any]) -> None:
    """The builders' association binds exactly the cluster/namespace/service account the agent
    role's trust pins (EKS could not assume it for another pod); any other binding fails, parent or not."""
    s = dev_settings
    trust = iam.Document((iam.assume_by_eks_pod_identity("Pods", s.aws_account_id, "c1", "agents", "crm"),)).to_json()

    def stack_with(sa: str) -> list[str]:
        st = Stack()
        comp = st.add(ACCESS, "crm", {})
        role = st.add(ROLE, "crm/role", {"name": "agents-dev-crm", "arn": naming.role_arn(s, "agents-dev-crm"),
                                         "assumeRolePolicy": trust})
        under(st.add("aws:eks/podIdentityAssociation:PodIdentityAssociation", "pia", {
            "roleArn": naming.role_arn(s, "agents-dev-crm"), "clusterName": "c1", "namespace": "agents",
            "serviceAccount": sa}, prop_deps={"roleArn": [role]}), comp)
        return messages(st, closed_world, config)

    assert stack_with("crm") == []
    [msg] = stack_with("other")
    assert "runs as the fleet's role" in msg and '"pia"' in msg


@pytest.mark.parametrize("principal", [{"Service": "*"}, {"AWS": "arn:aws:iam::123456789012:role/*"}])
def test_wildcard_principals_fail(principal: dict[str, Any], config: dict[str, Any]) -> None:
    st = {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": principal}
    found = validate_resource(trust_policy_scoped, ROLE, {"assumeRolePolicy": json.dumps({"Version": "2012-10-17", "Statement": [st]})}, config=config)
    assert len(found) == 1 and "wildcard" in found[0] or "every AWS principal" in found[0]


def test_credential_shaped_literal_in_any_input_fails(config: dict[str, Any]) -> None:
    shaped = "AKIA" + "IOSFODNN7EXAMPLE"  # built at run time so no scanner flags this file
    stack = Stack()
    stack.add("aws:s3/bucket:Bucket", "b", {"tags": {"note": shaped}})
    [msg] = messages(stack, no_literal_secret_values, config)
    assert shaped not in msg and "shaped like a real credential" in msg
    stack2 = Stack()
    stack2.add("aws:s3/bucket:Bucket", "b", {"tags": {"note": "arn:aws:iam::123456789012:role/agents-dev-crm"}})
    assert messages(stack2, no_literal_secret_values, config) == []


def test_two_vault_policies_with_one_name_fail(dev_settings: StackSettings, config: dict[str, Any]) -> None:
    stack = Stack()
    _agent_vault(stack, dev_settings, "crm")
    assert messages(stack, vault_login_confined, config) == []
    stack.add(VAULT_POLICY, "dup", {"name": naming.vault_policy_name(dev_settings, "crm"), "policy": agent_policy_hcl(dev_settings, "crm")})
    found = messages(stack, vault_login_confined, config)
    assert any("2 Vault policies are named" in m for m in found)


def test_agent_vault_policy_only_reads(dev_settings: StackSettings, config: dict[str, Any]) -> None:
    from agentfleet.policy.vault import vault_policy_confined

    name = naming.vault_policy_name(dev_settings, "crm")
    ok = validate_resource(vault_policy_confined, VAULT_POLICY, {"name": name, "policy": agent_policy_hcl(dev_settings, "crm")}, config=config)
    assert ok == []
    writes = 'path "kv/data/dev/crm/*" { capabilities = ["read", "update"] }'
    [msg] = validate_resource(vault_policy_confined, VAULT_POLICY, {"name": name, "policy": writes}, config=config)
    assert "['update']" in msg


def test_the_program_passes_the_pack_without_any_policy_config(root: Any) -> None:
    """Engine parity: `pulumi preview --policy-pack policy` with no config. The fixture fleet uses
    its own class `partner-data`, which the fleet component carries to the pack."""
    from agentfleet.runner import checkrun, mockrun

    run = mockrun.run_program("dev", root=root)
    assert any((r.props.get("tags") or {}).get("classification") == "partner-data" for r in run.resources)
    fleet = next(r for r in run.resources if r.type == "agentfleet:index:AgentFleet")
    assert fleet.props["classifications"]["partner-data"] == 60
    result = checkrun.check_program(run, {})
    assert result.mandatory == [], [f"{v.policy}: {v.message}" for v in result.mandatory]


def test_lambda_environment_may_name_secrets(config: dict[str, Any], dev_settings: StackSettings) -> None:
    stack = Stack()
    stack.add(SECRET, "s", {"name": "agents/dev/_rotation/openai-admin", "arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"})
    stack.add("aws:lambda/function:Function", "fn", {"environment": {"variables": {
        "ADMIN_SECRET": "agents/dev/_rotation/openai-admin", "TARGET_SECRET": "arn:aws:secretsmanager:us-east-1:123456789012:secret:y"}}})
    assert messages(stack, no_literal_secret_values, config) == []
    stack.add("aws:lambda/function:Function", "bad", {"environment": {"variables": {"ADMIN_SECRET": "hunter2-literal"}}})
    assert len(messages(stack, no_literal_secret_values, config)) == 1


# ---- red team 2: classes the pack did not see (tests/redteam/variants.py REDTEAM2) ----


def test_iam_document_in_an_unevaluated_type_fails(stack: Stack, config: dict[str, Any]) -> None:
    """An SSO permission set's inline policy (or any other carrier) granting secret reads or
    decrypt on `*` names no managed resource, yet opens every secret to its holders."""
    sso = "aws:ssoadmin/permissionSetInlinePolicy:PermissionSetInlinePolicy"
    harmless = json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})
    stack.add(sso, "ok", {"inlinePolicy": harmless})
    assert messages(stack, closed_world, config) == []
    wide = json.dumps({"Statement": [{"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": "*"}]})
    stack.add(sso, "bad", {"inlinePolicy": wide})
    [msg] = messages(stack, closed_world, config)
    assert '"bad"' in msg and "kms:Decrypt" in msg
    denied = json.dumps({"Statement": [{"Effect": "Deny", "Action": "secretsmanager:*", "Resource": "*"}]})
    stack.remove(stack.named("bad"))
    stack.add(sso, "deny", {"inlinePolicy": denied})
    assert messages(stack, closed_world, config) == []


@pytest.mark.parametrize("spelled", [str.upper, lambda n: f" {n} "])
def test_vault_policy_names_are_compared_as_vault_stores_them(stack: Stack, config: dict[str, Any], dev_settings: StackSettings,
                                                              spelled: Any) -> None:
    """Vault trims and lowercases policy names: a nested, differently spelt name is still the agent's."""
    stack.add(VAULT_POLICY, "crm-vault", {"name": naming.vault_policy_name(dev_settings, "crm"), "policy": agent_policy_hcl(dev_settings, "crm")})
    name = spelled(naming.vault_policy_name(dev_settings, "crm"))
    okta = "vault:okta/authBackend:AuthBackend"
    stack.add(okta, "okta", {"organization": "o", "groups": [{"groupName": "ops", "policies": ["unrelated"]}]})
    assert messages(stack, closed_world, config) == []
    stack.add(okta, "okta-2", {"organization": "o", "groups": [{"groupName": "ops", "policies": [name]}]})
    [msg] = messages(stack, closed_world, config)
    assert '"okta-2"' in msg


def test_vault_policy_globs_in_unevaluated_types_reach_the_agents(stack: Stack, config: dict[str, Any], dev_settings: StackSettings) -> None:
    stack.add(VAULT_POLICY, "crm-vault", {"name": naming.vault_policy_name(dev_settings, "crm"), "policy": agent_policy_hcl(dev_settings, "crm")})
    prefix = naming.vault_policy_name(dev_settings, "crm")[:-3]
    stack.add("vault:index/someNew:Thing", "glob", {"allowedPoliciesGlob": ["other-*"]})
    assert messages(stack, closed_world, config) == []
    stack.add("vault:index/someNew:Thing", "glob-2", {"allowedPoliciesGlob": [prefix + "*"]})
    [msg] = messages(stack, closed_world, config)
    assert '"glob-2"' in msg


def test_role_references_differing_in_case_still_count(stack: Stack, config: dict[str, Any], dev_settings: StackSettings) -> None:
    """IAM role names are case-insensitive: `role/AGENTS-DEV-CRM` runs as the crm role."""
    ecs = "aws:ecs/taskDefinition:TaskDefinition"
    other = naming.role_arn(dev_settings, "someone-else")
    stack.add(ecs, "ok", {"family": "t", "taskRoleArn": other})
    assert messages(stack, closed_world, config) == []
    upper = naming.role_arn(dev_settings, naming.role_name(dev_settings, "crm").upper())
    stack.add(ecs, "upper", {"family": "t", "taskRoleArn": upper})
    [msg] = messages(stack, closed_world, config)
    assert '"upper"' in msg and "runs as" in msg


def test_a_second_alias_of_the_keys_name_fails(stack: Stack, config: dict[str, Any], dev_settings: StackSettings) -> None:
    alias = "aws:kms/alias:Alias"
    stack.add(alias, "alias", {"name": naming.kms_alias(dev_settings), "targetKeyId": KMS_KEY_ARN})
    assert messages(stack, closed_world, config) == []
    stack.add(alias, "alias-2", {"name": naming.kms_alias(dev_settings), "targetKeyId": "arn:aws:kms:us-east-1:1:key/evil"})
    [msg] = messages(stack, closed_world, config)
    assert '"alias-2"' in msg and "physical name" in msg


def _with_provider(r: PolicyResource, props: dict[str, Any]) -> PolicyResource:
    from pulumi_policy import PolicyProviderResource
    from pulumi_policy.proxy import unknown_checking_proxy
    r.provider = PolicyProviderResource("pulumi:providers:aws", unknown_checking_proxy(props), "urn:aws", "aws")
    return r


AWS_CLIENT = "vault:aws/authBackendClient:AuthBackendClient"
AUTH_BACKEND = "vault:index/authBackend:AuthBackend"


def test_vault_aws_auth_client_only_with_the_fleets_emulator_endpoints(stack: Stack, config: dict[str, Any]) -> None:
    """Vault's AWS login trusts whatever STS the client names: the builders set one only for an
    emulator, with exactly the fleet's AWS provider endpoints."""
    endpoints = [{"iam": "http://127.0.0.1:5000", "sts": "http://127.0.0.1:5000"}]
    for r in stack.resources:
        if r.resource_type == ROLE:
            _with_provider(r, {"endpoints": json.dumps(endpoints)})
    mount = stack.add(AUTH_BACKEND, "aws-auth", {"type": "aws", "path": "aws"})
    good = stack.add(AWS_CLIENT, "client", {"backend": "aws", "iamEndpoint": "http://127.0.0.1:5000",
                                           "stsEndpoint": "http://127.0.0.1:5000"}, prop_deps={"backend": [mount]})
    assert messages(stack, closed_world, config) == []
    stack.add(AWS_CLIENT, "client-2", {"backend": "aws", "stsEndpoint": "https://sts.evil.example"})
    found = messages(stack, closed_world, config)
    assert len(found) == 2 and all('"client-2"' in m for m in found), found  # foreign STS, and a second config
    stack.remove(good)
    stack.remove(stack.named("client-2"))
    stack.add(AWS_CLIENT, "other-mount", {"backend": "aws-elsewhere", "iamEndpoint": "http://127.0.0.1:5000",
                                          "stsEndpoint": "http://127.0.0.1:5000"})
    [msg] = messages(stack, closed_world, config)
    assert '"other-mount"' in msg and "does not declare" in msg


def test_vault_trust_roots_without_builders_are_refused(config: dict[str, Any], dev_settings: StackSettings, sample_fleet: Fleet) -> None:
    """On real AWS (no endpoints) no client is ever declared; nor STS roles; one Kubernetes config per declared mount."""
    s = fleet_stack(dev_settings, sample_fleet)
    s.add(AUTH_BACKEND, "aws-auth", {"type": "aws", "path": "aws"})
    k8s = s.add(AUTH_BACKEND, "k8s", {"type": "kubernetes", "path": "kubernetes"})
    s.add("vault:kubernetes/authBackendConfig:AuthBackendConfig", "k8s-config", {"backend": "kubernetes", "kubernetesHost": "https://k"},
          prop_deps={"backend": [k8s]})
    assert messages(s, closed_world, config) == []
    s.add(AWS_CLIENT, "client", {"backend": "aws", "stsEndpoint": "https://sts.evil.example"})
    s.add("vault:aws/authBackendStsRole:AuthBackendStsRole", "sts", {"backend": "aws", "accountId": "1", "stsRole": "x"})
    s.add("vault:kubernetes/authBackendConfig:AuthBackendConfig", "k8s-config-2", {"backend": "kubernetes", "kubernetesHost": "https://evil"})
    found = messages(s, closed_world, config)
    assert {n for n in ('"client"', '"sts"', '"k8s-config-2"') if any(n in m for m in found)} == {'"client"', '"sts"', '"k8s-config-2"'}, found


BUCKET = "aws:s3/bucket:Bucket"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"


def test_stack_buckets_carry_only_the_builders_configuration(stack: Stack, config: dict[str, Any], dev_settings: StackSettings) -> None:
    name = naming.trail_bucket_name(dev_settings)
    bucket = stack.add(BUCKET, "trail-bucket", {"bucket": name, "arn": f"arn:aws:s3:::{name}"})
    stack.add("aws:cloudtrail/trail:Trail", "trail", {"name": naming.trail_name(dev_settings), "s3BucketName": name},
              prop_deps={"s3BucketName": [bucket]})
    # A team's own bucket in the same program is theirs to configure.
    own = stack.add(BUCKET, "team-bucket", {"bucket": "team-data", "arn": "arn:aws:s3:::team-data"})
    stack.add("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "team-expiry", {"bucket": "team-data", "rules": []},
              prop_deps={"bucket": [own]})
    service_only = json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
                                              "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{name}/*"}]})
    stack.add(BUCKET_POLICY, "trail-bucket-policy", {"bucket": name, "policy": service_only}, prop_deps={"bucket": [bucket]})
    stack.add("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "pab", {
        "bucket": name, "blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True, "restrictPublicBuckets": True})
    stack.add(BUCKET_POLICY, "elsewhere", {"bucket": "someone-elses", "policy": json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}]})})
    assert messages(stack, closed_world, config) == []
    open_ = json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}]})
    stack.add(BUCKET_POLICY, "open", {"bucket": name, "policy": open_})
    stack.add("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "expire", {"bucket": name, "rules": []})
    found = messages(stack, closed_world, config)
    assert any('"open"' in m and "other than AWS services" in m for m in found), found
    assert any('"open"' in m and "replaces the reviewed one" in m for m in found), found
    assert any('"expire"' in m and "does not evaluate" in m for m in found), found
    assert len(found) == 3, found


def test_kms_decrypt_via_secrets_manager_needs_one_agents_context(stack: Stack, config: dict[str, Any], dev_settings: StackSettings) -> None:
    """Defence in depth: without the encryption context a decrypt through Secrets Manager opens the
    data key of every secret the holder can get a read on."""
    via = {"StringEquals": {"kms:ViaService": f"secretsmanager.{dev_settings.aws_region}.amazonaws.com"}}
    def rp(name: str, role: str, cond: dict[str, Any]) -> None:
        stack.add(ROLE_POLICY, name, {"role": role, "policy": json.dumps({"Statement": [
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KMS_KEY_ARN, "Condition": cond}]})})
    crm = naming.role_name(dev_settings, "crm")
    own = naming.secret_arn_pattern(dev_settings, "crm", "openai")
    rp("own", crm, {**via, "StringLike": {iam.SECRET_ARN_CONTEXT_KEY: [own]}})
    rp("rotation", naming.rotation_role_name(dev_settings, "crm"), via)
    assert messages(stack, kms_use_confined, config) == []
    rp("no-context", crm, via)
    other = naming.secret_arn_pattern(dev_settings, "billing", "stripe")
    rp("two-agents", crm, {**via, "StringLike": {iam.SECRET_ARN_CONTEXT_KEY: [own, other]}})
    rp("wide", crm, {**via, "StringLike": {iam.SECRET_ARN_CONTEXT_KEY: "*"}})
    rp("look-alike-rotation", naming.role_name(dev_settings, "crm") + "-rotationx", via)
    found = messages(stack, kms_use_confined, config)
    assert sorted(n for n in ("no-context", "two-agents", "wide", "look-alike-rotation") if any(f'"{n}"' in m for m in found)) == \
        ["look-alike-rotation", "no-context", "two-agents", "wide"], found
    assert len(found) == 4


@pytest.mark.parametrize("spelled", [str.upper, lambda n: n + " "])
def test_vault_names_differing_in_case_or_space_are_the_same_policy(dev_settings: StackSettings, config: dict[str, Any],
                                                                     spelled: Any) -> None:
    """Vault stores `AGENTS-DEV-CRM ` as `agents-dev-crm`: a second policy so spelt replaces the
    agent's (a deny-only one silently locks it out), a role handing it out hands the agent's."""
    stack = Stack()
    _agent_vault(stack, dev_settings, "crm")
    name = spelled(naming.vault_policy_name(dev_settings, "crm"))
    stack.add(VAULT_POLICY, "again", {"name": name, "policy": 'path "kv/data/dev/crm/*" { capabilities = ["deny"] }'})
    [msg] = messages(stack, vault_login_confined, config)
    assert "2 Vault policies are named" in msg
    stack.remove(stack.named("again"))
    stack.add("vault:approle/authBackendRole:AuthBackendRole", "ci", {"roleName": "ci", "tokenPolicies": [name], "tokenNoDefaultPolicy": True})
    found = messages(stack, vault_login_confined, config)
    assert any("is handed out by 2 resources" in m for m in found), found


def test_kv_mount_configuration_is_never_the_components(stack: Stack, config: dict[str, Any]) -> None:
    kv = "vault:kv/secretBackendV2:SecretBackendV2"
    stack.add("vault:kv/secretV2:SecretV2", "value", {"mount": "kv", "name": "dev/crm/x"})
    assert messages(stack, closed_world, config) == []
    stack.add(kv, "kv-config", {"mount": "kv", "maxVersions": 1, "deleteVersionAfter": 1})
    [msg] = messages(stack, closed_world, config)
    assert '"kv-config"' in msg
    assert messages(stack, closed_world, {**config, "exceptions": [{"resource": "kv-config", "reason": "reviewed"}]}) == []


@pytest.mark.parametrize("action", ["kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:UpdateAlias", "kms:*"])
def test_key_administration_in_a_role_policy_fails(stack: Stack, config: dict[str, Any], action: str) -> None:
    stack.add(ROLE_POLICY, "admin", {"role": "someone", "policy": json.dumps({"Statement": [
        {"Effect": "Allow", "Action": action, "Resource": KMS_KEY_ARN}]})})
    found = messages(stack, kms_use_confined, config)
    assert any('"admin"' in m and "delete or disable the key" in m for m in found), found
    stack.remove(stack.named("admin"))
    stack.add(ROLE_POLICY, "elsewhere", {"role": "someone", "policy": json.dumps({"Statement": [
        {"Effect": "Allow", "Action": action, "Resource": "arn:aws:s3:::not-a-key"}]})})
    assert messages(stack, kms_use_confined, config) == []


@pytest.mark.parametrize("type_, props", [
    ("aws:cloudwatch/metricAlarm:MetricAlarm", {"name": "agents-dev-crm-usage-spike"}),
    ("aws:cloudwatch/logMetricFilter:LogMetricFilter", {"name": "agents-dev-secret-reads", "logGroupName": "/agents/dev/cloudtrail"}),
    ("aws:cloudwatch/eventRule:EventRule", {"name": "agents-dev-reminder"}),
])
def test_a_second_alarm_filter_or_rule_of_the_same_name_fails(stack: Stack, config: dict[str, Any], type_: str, props: dict[str, Any]) -> None:
    """AWS overwrites these in place: a same-named copy with actions disabled replaces the fleet's."""
    stack.add(type_, "fleets", props)
    other = {k: (v + "-other" if k == "name" else v) for k, v in props.items()}
    stack.add(type_, "another", other)
    assert messages(stack, closed_world, config) == []
    stack.add(type_, "copy", {**props, "actionsEnabled": False})
    [msg] = messages(stack, closed_world, config)
    assert '"copy"' in msg and "silently replaced" in msg


def test_stack_topics_let_only_services_publish(stack: Stack, config: dict[str, Any], dev_settings: StackSettings) -> None:
    from agentfleet.core.monitoring_plan import alert_topic_policy
    arn = naming.alarm_topic_arn(dev_settings)
    stack.add("aws:sns/topic:Topic", "topic", {"name": naming.alarm_topic_name(dev_settings), "arn": arn})
    stack.add("aws:sns/topicPolicy:TopicPolicy", "topic-policy", {"arn": arn, "policy": iam.to_json(alert_topic_policy(dev_settings))})
    open_ = json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sns:*", "Resource": "*"}]})
    stack.add("aws:sns/topicPolicy:TopicPolicy", "elsewhere", {"arn": "arn:aws:sns:us-east-1:1:someone-elses", "policy": open_})
    assert messages(stack, closed_world, config) == []
    stack.add("aws:sns/topicPolicy:TopicPolicy", "open", {"arn": arn, "policy": open_})
    found = messages(stack, closed_world, config)
    assert any('"open"' in m and "other than AWS services" in m for m in found), found
    assert any('"open"' in m and "silently replaced" in m for m in found), found
    assert len(found) == 2


def test_log_subscription_filters_are_never_the_components(stack: Stack, config: dict[str, Any]) -> None:
    stack.add("aws:cloudwatch/logSubscriptionFilter:LogSubscriptionFilter", "exfil",
              {"logGroup": "/agents/dev/cloudtrail", "destinationArn": "arn:aws:logs:us-east-1:999988887777:destination:d"})
    [msg] = messages(stack, closed_world, config)
    assert '"exfil"' in msg and "streams a log group" in msg


def test_alert_topic_subscribers_are_exactly_the_stacks_alarm_subscriptions(dev_settings: StackSettings,
                                                                              config: dict[str, Any]) -> None:
    reviewed = {"protocol": "email", "endpoint": "oncall@example.com"}
    with_subs = {**config, "alarmSubscriptions": [reviewed]}
    topic_name = naming.alarm_topic_name(dev_settings)
    topic_arn = naming.alarm_topic_arn(dev_settings)

    def stack_with(*subs: dict[str, Any], team_topic: bool = False) -> Stack:
        st = Stack()
        topic = st.add("aws:sns/topic:Topic", "alerts-topic", {"name": topic_name, "arn": topic_arn})
        team = st.add("aws:sns/topic:Topic", "team", {"name": "team-events", "arn": "arn:aws:sns:us-east-1:123456789012:team-events"})
        for i, sub in enumerate(subs):
            target = team if team_topic else topic
            st.add("aws:sns/topicSubscription:TopicSubscription", f"sub-{i}", {"topic": text_arn(target), **sub},
                   prop_deps={"topic": [target]})
        return st

    def text_arn(r: Any) -> str:
        return str(r.props["arn"])

    assert messages(stack_with(reviewed), closed_world, with_subs) == []
    [msg] = messages(stack_with(reviewed, {"protocol": "https", "endpoint": "https://evil.example/hook"}), closed_world, with_subs)
    assert "evil.example" in msg and "alarmSubscriptions" in msg
    [unlisted] = messages(stack_with(reviewed), closed_world, config)  # the config lists no subscriber
    assert "oncall@example.com" in unlisted
    # A team's own topic in the same program is theirs to subscribe to.
    assert messages(stack_with({"protocol": "https", "endpoint": "https://team.example"}, team_topic=True), closed_world, config) == []
