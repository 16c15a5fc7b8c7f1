"""Network scopes and Parameter Store under Pulumi mocks: the program creates exactly what the
builders say (issue 15). The whole program runs (every extension), so rotation and monitoring are
proven to accept `ssm` credentials and scoped agents too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentfleet.core import naming
from agentfleet.core import plan
from agentfleet.core.loader import load_fleet
from agentfleet.core.model import Fleet
from agentfleet.core.settings import StackSettings, load_stack_settings
from agentfleet.runner.mockrun import ProgramRun, run_program
from tests.conftest import ROOT
from tests.pulumi_harness import KMS_KEY, ROLE_POLICY, SECRET_POLICY, VAULT_LOGIN, json_prop, only, write_fleet

PARAMETER = "aws:ssm/parameter:Parameter"

SCOPED: list[dict[str, Any]] = [
    {
        "name": "scoped",
        "runtime": {"service": "ecs-tasks.amazonaws.com"},
        "network": {"vpc_endpoints": ["vpce-0abc1234def567890"], "source_cidrs": ["203.0.113.0/24"]},
        "credentials": [
            {"name": "both", "service": "svc", "type": "api_key", "stores": ["aws", "ssm"]},
            {"name": "param", "service": "svc", "type": "token", "stores": ["ssm"], "classification": "payments"},
            {"name": "vaulted", "service": "svc", "type": "token", "stores": ["vault", "ssm"]},
        ],
    },
    {
        "name": "private-vault",
        "runtime": {"service": "lambda.amazonaws.com"},
        "network": {"vpcs": ["vpc-0abc1234def567890"], "vault_cidrs": ["10.20.0.0/16"], "runtime_in_vpc": True},
        "credentials": [{"name": "key", "service": "svc", "type": "api_key", "stores": ["aws", "vault"]}],
    },
    {
        "name": "open",
        "runtime": {"service": "ecs-tasks.amazonaws.com"},
        "credentials": [{"name": "key", "service": "svc", "type": "api_key", "stores": ["ssm"]}],
    },
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[ProgramRun, Fleet, StackSettings]:
    folder = tmp_path_factory.mktemp("network")
    path = write_fleet(folder, {"version": 1, "agents": SCOPED}, "net.yaml")
    run = run_program("dev", config_overrides={"agentfleet:fleetFile": str(path)})
    return run, load_fleet(path), load_stack_settings(ROOT / "Pulumi.dev.yaml", "dev")


def _key(run: ProgramRun) -> str:
    (key,) = run.of_type(KMS_KEY)
    return str(key.outputs["arn"])


def test_one_securestring_per_ssm_credential_with_the_environment_key_and_no_value(world: tuple[ProgramRun, Fleet, StackSettings]) -> None:
    run, fleet, s = world
    wanted = {naming.ssm_parameter_name(s, a.name, c.name) for a in fleet.agents for c in a.credentials if "ssm" in c.stores}
    params = run.of_type(PARAMETER)
    assert {p.props["name"] for p in params} == wanted and len(params) == len(wanted) == 4
    for p in params:
        assert p.props["type"] == "SecureString"
        assert p.props["keyId"] == _key(run)
        # No value in the inputs or the state: only the non-secret marker, write-only and written once.
        assert "value" not in p.props and "insecureValue" not in p.props
        assert p.props["valueWo"] == naming.SSM_UNSET_VALUE and p.props["valueWoVersion"] == 1
        assert p.props["tags"][naming.TAG_AGENT] in {a.name for a in fleet.agents}
    param = only(run, PARAMETER, "scoped/param/parameter")
    assert param.props["tags"][naming.TAG_CLASSIFICATION] == "payments"


def test_inline_policy_and_secret_policies_are_the_builders(world: tuple[ProgramRun, Fleet, StackSettings]) -> None:
    run, fleet, s = world
    for a in fleet.agents:
        assert json_prop(only(run, ROLE_POLICY, f"{a.name}/policy"), "policy") == plan.agent_iam_policy(s, a, _key(run))
        for c in a.credentials:
            if "aws" in c.stores:
                doc = json_prop(only(run, SECRET_POLICY, f"{a.name}/{c.name}/secret-policy"), "policy")
                assert doc == plan.secret_resource_policy(s, a, c)
                sids = {st["Sid"] for st in doc["Statement"]}
                assert ("DenyAgentReadsOutsideNetwork" in sids) is (a.network is not None)
    open_policy = json_prop(only(run, ROLE_POLICY, "open/policy"), "policy")
    assert "DenyReadsOutsideNetwork" not in {st["Sid"] for st in open_policy["Statement"]}


def test_vault_logins_are_bound_to_the_agents_ranges(world: tuple[ProgramRun, Fleet, StackSettings]) -> None:
    run, _, _ = world
    assert only(run, VAULT_LOGIN, "scoped/vault-login").props["tokenBoundCidrs"] == ["203.0.113.0/24"]
    assert only(run, VAULT_LOGIN, "private-vault/vault-login").props["tokenBoundCidrs"] == ["10.20.0.0/16"]
    assert "tokenBoundCidrs" not in only(run, VAULT_LOGIN, "open/vault-login").props


def test_plan_and_put_values_name_the_same_parameters(world: tuple[ProgramRun, Fleet, StackSettings]) -> None:
    from agentfleet.operate.values import STORE_WRITERS, value_targets

    run, fleet, s = world
    p = plan.build_plan(fleet, s)
    targets = [t for t in value_targets(p) if "ssm" in t.stores]
    created = sorted(str(r.props["name"]) for r in run.of_type(PARAMETER))
    assert sorted(str(t.ssm_parameter) for t in targets) == created
    calls: list[dict[str, object]] = []
    fake = type("SSM", (), {"put_parameter": lambda self, **kw: calls.append(kw)})()
    for t in targets:
        STORE_WRITERS["ssm"].write(fake, t, {"api_key": "k"})
    assert all(c["Type"] == "SecureString" and c["KeyId"] == naming.kms_alias(s) and c["Overwrite"] for c in calls)
    assert sorted(str(c["Name"]) for c in calls) == created


FILTER, ALARM = "aws:cloudwatch/logMetricFilter:LogMetricFilter", "aws:cloudwatch/metricAlarm:MetricAlarm"


def test_one_odd_network_filter_for_the_environment_and_an_alarm_per_agent(world: tuple[ProgramRun, Fleet, StackSettings]) -> None:
    from agentfleet.core import monitoring_plan as mp

    run, fleet, s = world
    odd = [f for f in run.of_type(FILTER) if f.props["name"] == "agents-dev-odd-network-reads"]
    assert len(odd) == 1
    spec = mp.odd_network_filter(s, fleet)
    assert spec is not None
    (f,) = odd
    assert f.props["pattern"] == spec.pattern
    t = f.props["metricTransformation"]
    assert t["dimensions"] == {mp.ROLE_DIMENSION: mp.ROLE_SELECTOR} and "defaultValue" not in t
    assert (t["name"], t["namespace"]) == (mp.ODD_NETWORK_METRIC, naming.audit_namespace(s))
    alarms = {a.props["name"]: a for a in run.of_type(ALARM) if a.props["name"].endswith("-odd-network")}
    assert set(alarms) == {naming.alarm_name(s, a.name, "odd-network") for a in fleet.agents}
    for a in fleet.agents:
        alarm = alarms[naming.alarm_name(s, a.name, "odd-network")]
        assert alarm.props["dimensions"] == {mp.ROLE_DIMENSION: naming.role_name(s, a.name)}
        assert alarm.props["metricName"] == mp.ODD_NETWORK_METRIC and alarm.props["alarmActions"]


def test_the_whole_pack_passes_on_a_fleet_with_scopes_and_parameters(world: tuple[ProgramRun, Fleet, StackSettings]) -> None:
    from agentfleet.policy.layout import policy_config
    from agentfleet.runner import checkrun

    run, fleet, s = world
    result = checkrun.check_program(run, policy_config(s, fleet.classifications))
    assert {"ssm-parameter-securestring-cmk", "ssm-parameter-no-literal-value", "ssm-parameter-reads-confined"} <= set(result.policies)
    assert [(v.policy, v.message) for v in result.mandatory] == []


def test_the_deployer_policy_covers_parameters_on_the_environment_path_only(world: tuple[ProgramRun, Fleet, StackSettings]) -> None:
    from agentfleet.core.deployer import deployer_policy
    from tests.iam_eval import Request, evaluate

    run, _, s = world
    policy = deployer_policy(s, {r.type for r in run.resources})
    own = naming.ssm_parameter_arn(s, "scoped", "param")
    other_env = own.replace(f"/{s.environment}/", "/prod/")
    assert evaluate(policy, Request("ssm:PutParameter", own)) == "Allow"
    assert evaluate(policy, Request("ssm:PutParameter", other_env)) == "ImplicitDeny"
    assert evaluate(policy, Request("ssm:PutParameter", f"arn:aws:ssm:{s.aws_region}:{s.aws_account_id}:parameter/other")) == "ImplicitDeny"
    key = f"arn:aws:kms:{s.aws_region}:{s.aws_account_id}:key/1234"
    tags = {"aws:ResourceTag/managed-by": "agentfleet", "aws:ResourceTag/environment": s.environment}
    assert evaluate(policy, Request("kms:Encrypt", key, {**tags, "kms:ViaService": f"ssm.{s.aws_region}.amazonaws.com"})) == "Allow"
    assert evaluate(policy, Request("kms:Decrypt", key, tags)) == "ImplicitDeny"  # never directly
    assert evaluate(policy, Request("kms:Decrypt", key, {**tags, "kms:ViaService": f"secretsmanager.{s.aws_region}.amazonaws.com"})) == "ImplicitDeny"
