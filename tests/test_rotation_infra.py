"""The rotation components under Pulumi mocks: the real program, with the rotation extension on.

Runs `__main__.py` through `agentfleet.runner.mockrun` (offline) for the sample fleet, per-agent and
shared isolation, and checks what the engine would receive: roles and policies (parsed),
invoke permissions, SecretRotations, reminder schedules, alarms, the Lambda archive.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any, Iterator

import pytest

from agentfleet.components import fleet as fleet_module
from agentfleet.core import iam_documents as iam
from agentfleet.core import naming
from agentfleet.components import rotation_infra
from agentfleet.core import rotation_plan as rp
from agentfleet.runner.checkrun import check_program
from agentfleet.runner.mockrun import ProgramRun, RegisteredResource, run_program
from agentfleet.core.model import Fleet
from agentfleet.core.settings import StackSettings
from agentfleet.policy.layout import policy_config
from agentfleet.policy.vault import parse_policy, vault_policy_confined
from agentfleet.rotation import package
from agentfleet.rotation.config import VaultTarget, load_config
from tests.pulumi_harness import (
    AGENT_ACCESS, AGENT_FLEET, ROLE, ROLE_POLICY, SECRET, VAULT_AUTH, VAULT_LOGIN, VAULT_POLICY, json_prop,
)
from tests.test_policy_support import validate_resource

ROTATION = "agentfleet:index:AgentRotation"
REMINDERS = "agentfleet:index:RotationReminders"
ROTATION_ENV = "agentfleet:index:RotationEnvironment"
FUNCTION = "aws:lambda/function:Function"
PERMISSION = "aws:lambda/permission:Permission"
SECRET_ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
SCHEDULE = "aws:scheduler/schedule:Schedule"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
DEPLOYED = date(2025, 1, 10)
VAULT_ADDRESS = "https://vault.example.com:8200"
ROTATION_TYPES = {ROTATION, REMINDERS, ROTATION_ENV}


def _run(**config: Any) -> ProgramRun:
    with pytest.MonkeyPatch.context() as mp:
        modules = tuple(dict.fromkeys((*fleet_module.DEFAULT_EXTENSIONS, "agentfleet.components.rotation_infra")))
        mp.setattr(fleet_module, "DEFAULT_EXTENSIONS", modules)
        mp.setattr(rotation_infra, "deploy_date", lambda: DEPLOYED)
        return run_program("dev", config_overrides=config)


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    return _run()


@pytest.fixture(scope="module")
def shared_run() -> ProgramRun:
    return _run(**{"agentfleet:rotationIsolation": "shared", "vault:address": VAULT_ADDRESS})


@pytest.fixture(scope="module")
def vault_run() -> ProgramRun:
    """The dev stack with a Vault address (the sample's dev stack leaves it to VAULT_ADDR)."""
    return _run(**{"vault:address": VAULT_ADDRESS})


def shared(s: StackSettings) -> StackSettings:
    return s.model_copy(update={"rotation_isolation": "shared"})


def rotation_resources(run: ProgramRun) -> list[RegisteredResource]:
    comps = [r for r in run.resources if r.type in ROTATION_TYPES]
    out = list(comps)
    for c in comps:
        out += run.descendants(c.urn)
    return list({r.urn: r for r in out}.values())


def parent_of(run: ProgramRun, r: RegisteredResource) -> RegisteredResource:
    return run.by_urn()[r.parent or ""]


def kms_arn(run: ProgramRun) -> str:
    [key] = run.of_type("aws:kms/key:Key")
    return str(key.outputs["arn"])


def topic_arn(run: ProgramRun) -> str:
    [topic] = run.of_type(TOPIC)
    return str(topic.outputs["arn"])


def secret_arns(run: ProgramRun) -> dict[str, str]:
    """`<agent>/<credential>` -> the mock ARN of its Secret."""
    return {r.name.removesuffix("/secret"): str(r.outputs["arn"]) for r in run.of_type(SECRET)}


# ---------------------------------------------------------------- inventory and wiring


def test_one_rotation_component_per_agent_with_automatic_credentials(run: ProgramRun) -> None:
    comps = run.of_type(ROTATION)
    assert sorted(c.name for c in comps) == ["billing/rotation", "crm/rotation", "research/rotation"]
    for c in comps:
        parent = parent_of(run, c)
        assert parent.type == AGENT_ACCESS and c.name == f"{parent.name}/rotation"
        kids = run.descendants(c.urn)
        assert len([k for k in kids if k.type == FUNCTION]) == 1
    functions = run.of_type(FUNCTION)
    agents_with_functions = {parent_of(run, parent_of(run, f)).name for f in functions if parent_of(run, f).type == ROTATION}
    assert agents_with_functions == {"billing", "crm", "research"}  # none for manual-only support / release-notes


def test_rotation_role_policy_is_exactly_the_builders(run: ProgramRun, sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    key = kms_arn(run)
    for agent in ("billing", "crm", "research"):
        spec = rp.agent_rotator(dev_settings, sample_fleet.agent(agent))
        assert spec is not None
        role = run.named(f"{agent}/rotation/role", ROLE)
        assert role.props["name"] == naming.rotation_role_name(dev_settings, agent)
        assert json_prop(role, "assumeRolePolicy") == rp.lambda_trust_policy()
        policy = run.named(f"{agent}/rotation/policy", ROLE_POLICY)
        doc = json_prop(policy, "policy")
        assert doc == rp.rotation_role_policy(dev_settings, spec, key)
        actions = sorted(a for st in doc["Statement"] for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"]))
        assert actions == sorted([
            "secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue",
            "secretsmanager:UpdateSecretVersionStage", "secretsmanager:GetRandomPassword",
            "kms:Decrypt", "kms:GenerateDataKey", "logs:CreateLogStream", "logs:PutLogEvents",
        ])
        admin = [r for r in run.descendants(parent_of(run, policy).urn) if r.name == f"{agent}/rotation/admin-policy"]
        assert bool(admin) == ("openai" in spec.strategies)


def test_invoke_permissions_are_scoped_to_each_secret(run: ProgramRun, sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    arns = secret_arns(run)
    rotations = run.of_type(SECRET_ROTATION)
    assert sorted(r.name for r in rotations) == ["billing/ledger-api/rotation", "crm/openai/rotation", "research/openai/rotation"]
    by_urn = run.by_urn()
    for rot in rotations:
        key = rot.name.removesuffix("/rotation")
        agent = key.split("/")[0]
        fn = run.named(f"{agent}/rotation/function", FUNCTION)
        assert rot.props["secretId"] == arns[key]
        assert rot.props["rotationLambdaArn"] == fn.outputs["arn"]
        assert rot.props["rotateImmediately"] is False
        perm = run.named(f"{key}/rotation-invoke", PERMISSION)
        assert perm.props == {
            "action": "lambda:InvokeFunction", "function": fn.props["name"], "principal": "secretsmanager.amazonaws.com",
            "sourceAccount": dev_settings.aws_account_id, "sourceArn": arns[key],
        }
        assert perm.urn in rot.dependencies  # configured only once the function may be invoked
        assert parent_of(run, rot).type == ROTATION and by_urn[rot.parent or ""].name == f"{agent}/rotation"
    secretsmanager_perms = [p for p in run.of_type(PERMISSION) if p.props["principal"] == "secretsmanager.amazonaws.com"]
    assert len(secretsmanager_perms) == 3  # one per rotated secret, no wildcard source


def test_schedule_days_per_classification(run: ProgramRun) -> None:
    days = {r.name: r.props["rotationRules"]["automaticallyAfterDays"] for r in run.of_type(SECRET_ROTATION)}
    assert days == {"research/openai/rotation": 90, "crm/openai/rotation": 30, "billing/ledger-api/rotation": 30}
    assert all("scheduleExpression" not in r.props["rotationRules"] for r in run.of_type(SECRET_ROTATION))


def test_function_code_is_the_deterministic_archive(run: ProgramRun) -> None:
    data = package.build_zip()
    for fn in run.of_type(FUNCTION):
        path = Path(fn.props["code"]["FileArchive"])
        assert path.read_bytes() == data
        assert fn.props["sourceCodeHash"] == package.source_code_hash(data)
        assert fn.props["runtime"] == rp.RUNTIME
    handlers = {fn.props["name"]: fn.props["handler"] for fn in run.of_type(FUNCTION)}
    assert handlers["agents-dev-research-rotation"] == "rotation.handler.lambda_handler"
    assert handlers["agents-dev-rotation-age"] == "rotation.age.lambda_handler"


def test_hourly_sweep_runs_through_the_environment_scheduler(run: ProgramRun) -> None:
    sweep = run.named("research/rotation/sweep-0", SCHEDULE)
    fn = run.named("research/rotation/function", FUNCTION)
    role = run.named("_shared/rotation/scheduler-role", ROLE)
    assert sweep.props["scheduleExpression"] == "rate(1 hour)"
    assert sweep.props["target"]["arn"] == fn.outputs["arn"]
    assert sweep.props["target"]["roleArn"] == role.outputs["arn"]
    assert json.loads(sweep.props["target"]["input"]) == {"Action": "revokeDue"}
    assert sweep.props["groupName"] == "agents-dev-rotation"
    # Scheduler invokes with its role: no resource policy for events, only Secrets Manager's.
    assert {p.props["principal"] for p in run.of_type(PERMISSION)} == {"secretsmanager.amazonaws.com"}
    assert not run.of_type("aws:cloudwatch/eventRule:EventRule")
    # The functions emit their metrics in their own log lines (EMF, agentfleet.rotation.logs): no metric
    # filter on any rotation log group, and every function is told to emit them (alarms are on).
    groups = {r.props["name"] for r in run.of_type("aws:cloudwatch/logGroup:LogGroup") if "/rotation/" in r.name}
    assert groups and not [r for r in run.of_type("aws:cloudwatch/logMetricFilter:LogMetricFilter")
                           if r.props["logGroupName"] in groups or "/rotation/" in r.name]
    for fn in run.of_type("aws:lambda/function:Function"):
        if fn.name.endswith("/rotation/function"):
            env = fn.props["environment"]["variables"]
            assert env["ROTATION_EMIT_METRICS"] == "1" and env["ROTATION_METRICS_NAMESPACE"] == "AgentFleet/dev/Rotation"
    alarm = run.named("agents-dev-rotation-pickup-missing-alarm", ALARM)
    assert alarm.props["metricName"] == rp.PICKUP_MISSING_METRIC and alarm.props["namespace"] == "AgentFleet/dev/Rotation"


# ---------------------------------------------------------------- manual credentials


def test_manual_credentials_get_reminders_to_the_environment_topic(run: ProgramRun, sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    schedules = {r.name: r for r in run.of_type(SCHEDULE) if r.name.endswith("/reminder")}
    expected = {(r.agent, r.credential): r for a in sample_fleet.agents for r in rp.reminders(dev_settings, a)}
    assert set(schedules) == {f"{a}/{c}/reminder" for a, c in expected}
    scheduler_role = run.named("_shared/rotation/scheduler-role", ROLE)
    for (agent, cred), spec in expected.items():
        sch = schedules[f"{agent}/{cred}/reminder"]
        assert parent_of(run, sch).name == f"{agent}/reminders"
        assert parent_of(run, parent_of(run, sch)).type == AGENT_ACCESS
        assert sch.props["scheduleExpression"] == f"rate({spec.rotation_days} days)"
        assert sch.props["startDate"] == f"{rp.reminder_start(spec, DEPLOYED).isoformat()}T09:00:00Z"
        assert "startDate" in sch.ignore_changes  # the first deployment anchors the cadence
        assert sch.props["target"]["arn"] == topic_arn(run)
        assert sch.props["target"]["roleArn"] == scheduler_role.outputs["arn"]
        message = json.loads(sch.props["target"]["input"])
        assert (message["agent"], message["credential"], message["due_in_days"]) == (agent, cred, spec.lead_days)
        assert message["runbook"]
    assert json_prop(run.named("_shared/rotation/scheduler-policy", ROLE_POLICY), "policy") == rp.scheduler_role_policy(dev_settings)


def test_age_alarms_for_manual_secrets_in_aws(run: ProgramRun, sample_fleet: Fleet) -> None:
    alarms = {r.props["name"]: r for r in run.of_type(ALARM)}
    overdue = {n: a for n, a in alarms.items() if n.endswith("-overdue")}
    assert set(overdue) == {
        "agents-dev-research-search-overdue", "agents-dev-crm-salesforce-overdue", "agents-dev-billing-stripe-overdue",
        "agents-dev-billing-webhook-signing-overdue",
        "agents-dev-support-zendesk-overdue", "agents-dev-support-anthropic-overdue",
        "agents-dev-release-notes-slack-bot-overdue",
    }  # not release-notes/github: Vault only
    a = overdue["agents-dev-crm-salesforce-overdue"]
    assert a.props["metricName"] == "SecretAgeDays" and a.props["namespace"] == "AgentFleet/dev/Rotation"
    assert a.props["threshold"] == sample_fleet.agent("crm").credentials[0].max_rotation_days == 30
    assert a.props["dimensions"] == {"Agent": "crm", "Credential": "salesforce"}
    assert a.props["alarmActions"] == [topic_arn(run)]
    age_fn = run.named("_shared/rotation/age-function", FUNCTION)
    assert age_fn.props["environment"]["variables"]["ROTATION_METRICS_NAMESPACE"] == "AgentFleet/dev/Rotation"
    assert "agents-dev-rotation-revoke-failures" in alarms


def test_alarms_off_keeps_reminders_but_no_alarms_or_reporter() -> None:
    quiet = _run(**{"agentfleet:alarms": False})
    assert not [r for r in rotation_resources(quiet) if r.type == ALARM]
    assert not [f for f in quiet.of_type(FUNCTION) if f.props["name"] == "agents-dev-rotation-age"]
    assert len([x for x in quiet.of_type(SCHEDULE) if x.name.endswith("/reminder")]) == 8
    assert len(quiet.of_type(SECRET_ROTATION)) == 3


# ---------------------------------------------------------------- shared isolation


def test_shared_mode_one_function_per_strategy(shared_run: ProgramRun, sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    s = shared(dev_settings)
    comps = shared_run.of_type(ROTATION)
    assert sorted(c.name for c in comps) == ["_shared/rotation-generated", "_shared/rotation-openai"]
    assert all(parent_of(shared_run, c).type == AGENT_FLEET for c in comps)
    roles = {r.props["name"] for r in shared_run.of_type(ROLE)}
    assert {"agents-dev-rotation-openai", "agents-dev-rotation-generated"} <= roles
    assert not {naming.rotation_role_name(dev_settings, a.name) for a in sample_fleet.agents} & roles
    specs = {x.owner: x for x in rp.rotators(s, sample_fleet)}
    for strategy in ("openai", "generated"):
        doc = json_prop(shared_run.named(f"_shared/rotation-{strategy}/policy", ROLE_POLICY), "policy")
        assert doc == rp.rotation_role_policy(s, specs[strategy], kms_arn(shared_run))
        [perm] = [p for p in shared_run.descendants(shared_run.named(f"_shared/rotation-{strategy}", ROTATION).urn)
                  if p.type == PERMISSION and p.props["principal"] == "secretsmanager.amazonaws.com"]
        assert perm.props["sourceArn"] == naming.environment_secrets_arn_pattern(dev_settings)
        assert perm.props["sourceAccount"] == dev_settings.aws_account_id
    fns = {f.props["name"]: f.outputs["arn"] for f in shared_run.of_type(FUNCTION)}
    targets = {r.name: r.props["rotationLambdaArn"] for r in shared_run.of_type(SECRET_ROTATION)}
    assert targets == {
        "crm/openai/rotation": fns["agents-dev-rotation-openai"],
        "research/openai/rotation": fns["agents-dev-rotation-openai"],
        "billing/ledger-api/rotation": fns["agents-dev-rotation-generated"],
    }
    env = shared_run.named("_shared/rotation-openai/function", FUNCTION).props["environment"]["variables"]
    assert env["ROTATION_STRATEGY"] == "openai" and "ROTATION_STRATEGY_MAP" not in env
    assert len([x for x in shared_run.of_type(SCHEDULE) if x.name.endswith("/reminder")]) == 8  # mode-independent
    sweep = json.loads(shared_run.named("_shared/rotation-openai/sweep-0", SCHEDULE).props["target"]["input"])
    assert sweep == {"Action": "revokeDue", "SecretIds": ["agents/dev/crm/openai", "agents/dev/research/openai"]}


def test_the_program_includes_rotation_by_default() -> None:
    assert "agentfleet.components.rotation_infra" in fleet_module.DEFAULT_EXTENSIONS
    plain = run_program("dev")
    assert len(plain.of_type(ROTATION)) == 3 and len(plain.of_type(REMINDERS)) == 5


def test_stack_outputs_name_the_functions(run: ProgramRun, shared_run: ProgramRun) -> None:
    assert sorted(run.outputs["rotationFunctions"]) == ["billing", "crm", "research"]
    assert sorted(shared_run.outputs["rotationFunctions"]) == ["generated", "openai"]


# ---------------------------------------------------------------- hygiene


@pytest.mark.parametrize("which", ["per-agent", "shared"])
def test_every_rotation_resource_is_parented_tagged_and_has_a_provider(run: ProgramRun, shared_run: ProgramRun, which: str) -> None:
    r_run = run if which == "per-agent" else shared_run
    resources = rotation_resources(r_run)
    assert len(resources) > 40
    urns = [r.urn for r in r_run.resources]
    assert len(urns) == len(set(urns))  # the mock engine does not reject duplicates
    # Physical names are unique per type (inline policy names only per role).
    names = [(r.type, r.props.get("role"), r.props.get("name")) for r in resources if r.custom and r.props.get("name")]
    assert len(names) == len(set(names))
    for r in resources:
        if not r.custom:
            continue
        package = "vault" if r.type.startswith("vault:") else "aws"
        assert r.provider_urn is not None and r.provider_urn.endswith(f"pulumi:providers:{package}::{package}"), r.name
        if "tags" in r.props or r.type in (ROLE, FUNCTION, "aws:cloudwatch/logGroup:LogGroup"):
            assert set(naming.REQUIRED_TAGS) <= set(r.props.get("tags") or {}), r.name


def test_policy_pack_passes_with_rotation_in_both_modes(run: ProgramRun, shared_run: ProgramRun, sample_fleet: Fleet,
                                                        dev_settings: StackSettings) -> None:
    for r_run, s in ((run, dev_settings), (shared_run, shared(dev_settings))):
        result = check_program(r_run, policy_config(s, sample_fleet.classifications))
        assert [(v.policy, v.resource) for v in result.violations] == []
        assert "secret-rotation-within-class" in result.policies and "rotation-role-scoped" in result.policies


def test_two_evaluations_declare_identical_rotation_resources(run: ProgramRun) -> None:
    again = _run()
    def props(r: ProgramRun) -> dict[str, str]:
        return {x.urn: json.dumps(x.props, sort_keys=True) for x in rotation_resources(r)}
    assert props(again) == props(run)


def test_iam_documents_are_serialised_in_one_place(run: ProgramRun) -> None:
    for policy in [r for r in rotation_resources(run) if r.type == ROLE_POLICY]:
        assert policy.props["policy"] == iam.to_json(json.loads(policy.props["policy"]))


# ---------------------------------------------------------------- Vault copies


def function_env(run: ProgramRun, component: str) -> dict[str, str]:
    env: dict[str, str] = run.named(f"{component}/function", FUNCTION).props["environment"]["variables"]
    return env


def test_functions_with_vault_copies_get_a_write_only_policy_and_a_login_bound_to_their_role(
    vault_run: ProgramRun, sample_fleet: Fleet, dev_settings: StackSettings,
) -> None:
    specs = {x.owner: x for x in rp.rotators(dev_settings, sample_fleet)}
    [backend] = vault_run.of_type(VAULT_AUTH)
    policies = {r.name: r for r in vault_run.of_type(VAULT_POLICY) if r.name.endswith("/rotation/vault-policy")}
    logins = {r.name: r for r in vault_run.of_type(VAULT_LOGIN) if r.name.endswith("/rotation/vault-login")}
    assert sorted(policies) == ["crm/rotation/vault-policy", "research/rotation/vault-policy"]  # not billing
    assert sorted(logins) == ["crm/rotation/vault-login", "research/rotation/vault-login"]
    for agent in ("crm", "research"):
        spec = specs[agent]
        policy, login = policies[f"{agent}/rotation/vault-policy"], logins[f"{agent}/rotation/vault-login"]
        role = vault_run.named(f"{agent}/rotation/role", ROLE)
        assert policy.props["name"] == spec.vault_name == naming.rotation_role_name(dev_settings, agent)
        assert parse_policy(policy.props["policy"]) == {f"kv/data/dev/{agent}/openai": ("create", "update")}
        assert login.props["boundIamPrincipalArns"] == [role.outputs["arn"]]
        assert login.props["boundIamPrincipalArns"] != [vault_run.named(f"{agent}/role", ROLE).outputs["arn"]]
        assert (login.props["role"], login.props["authType"], login.props["backend"]) == (spec.vault_name, "iam", backend.outputs["path"])
        assert login.props["tokenPolicies"] == [policy.outputs["name"]]
        assert login.props["tokenNoDefaultPolicy"] is True and login.props["resolveAwsUniqueIds"] is True
        assert login.props["tokenTtl"] == rp.VAULT_TOKEN_TTL_SECONDS and login.props["tokenMaxTtl"] == 2 * rp.VAULT_TOKEN_TTL_SECONDS
        for r in (policy, login):
            assert parent_of(vault_run, r).name == f"{agent}/rotation"
        fn = vault_run.named(f"{agent}/rotation/function", FUNCTION)
        assert login.urn in fn.dependencies  # the first rotation can log in
    assert not [r for r in vault_run.descendants(vault_run.named("billing/rotation", ROTATION).urn) if r.type.startswith("vault:")]
    # The rotation roles appear in their own login only; agents' logins still bind the agents' roles.
    rotation_roles = {str(r.outputs["arn"]) for r in vault_run.of_type(ROLE) if r.name.endswith("/rotation/role")}
    for login in vault_run.of_type(VAULT_LOGIN):
        bound = set(login.props["boundIamPrincipalArns"])
        assert bool(bound & rotation_roles) == login.name.endswith("/rotation/vault-login"), login.name


def test_function_environment_names_exactly_its_vault_copies(vault_run: ProgramRun, sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    for agent in ("crm", "research"):
        env = function_env(vault_run, f"{agent}/rotation")
        cfg = load_config(env)
        assert dict(cfg.vault_map) == {f"agents/dev/{agent}/openai": VaultTarget("kv", f"dev/{agent}/openai")}
        assert (cfg.vault_addr, cfg.vault_role, cfg.vault_auth_path) == (
            VAULT_ADDRESS, naming.rotation_role_name(dev_settings, agent), dev_settings.vault_aws_auth_path)
    assert not [k for k in function_env(vault_run, "billing/rotation") if k.startswith("VAULT_") or k == "ROTATION_VAULT_MAP"]


def test_without_a_usable_vault_address_the_functions_still_deploy_and_report(run: ProgramRun) -> None:
    assert function_env(run, "research/rotation")["VAULT_ADDR"] == "https://vault-dev.example.internal:8200"
    env = function_env(_run(**{"vault:address": ""}), "research/rotation")  # no address at all
    assert "VAULT_ADDR" not in env and "ROTATION_VAULT_MAP" in env
    assert load_config(env).vault_addr is None  # every sync fails loudly; AWS rotation goes on
    insecure = _run(**{"vault:address": "http://vault.internal:8200"})
    assert "VAULT_ADDR" not in function_env(insecure, "research/rotation")
    override = _run(**{"vault:address": "http://127.0.0.1:8200", "agentfleet:rotationVaultAddress": "https://vault.private:8200"})
    assert function_env(override, "research/rotation")["VAULT_ADDR"] == "https://vault.private:8200"


def test_shared_mode_one_vault_policy_per_strategy_with_exactly_its_copies(shared_run: ProgramRun, sample_fleet: Fleet,
                                                                          dev_settings: StackSettings) -> None:
    rotation_policies = [r for r in shared_run.of_type(VAULT_POLICY) if "rotation" in r.name]
    assert [r.name for r in rotation_policies] == ["_shared/rotation-openai/vault-policy"]
    [policy] = rotation_policies
    assert policy.props["name"] == "agents-dev-rotation-openai"
    assert parse_policy(policy.props["policy"]) == {
        "kv/data/dev/crm/openai": ("create", "update"), "kv/data/dev/research/openai": ("create", "update")}
    login = shared_run.named("_shared/rotation-openai/vault-login", VAULT_LOGIN)
    assert login.props["boundIamPrincipalArns"] == [shared_run.named("_shared/rotation-openai/role", ROLE).outputs["arn"]]
    env = load_config(function_env(shared_run, "_shared/rotation-openai"))
    assert not env.vault_map and env.vault_layout is not None  # the naming rule, not a per-secret map
    assert env.vault_layout.target("agents/dev/crm/openai") == VaultTarget("kv", "dev/crm/openai")
    tagged = {r.props["name"]: r.props["tags"].get("vault-copy") for r in shared_run.of_type(SECRET)}
    assert {n: v for n, v in tagged.items() if v} == {
        "agents/dev/crm/openai": "kv/dev/crm/openai", "agents/dev/research/openai": "kv/dev/research/openai"}
    assert not [k for k in function_env(shared_run, "_shared/rotation-generated") if k.startswith("VAULT_")]


def test_the_pack_refuses_rotation_policies_that_reach_further(vault_run: ProgramRun, sample_fleet: Fleet,
                                                               dev_settings: StackSettings) -> None:
    config = policy_config(dev_settings, sample_fleet.classifications)
    good = vault_run.named("research/rotation/vault-policy", VAULT_POLICY).props
    assert validate_resource(vault_policy_confined, VAULT_POLICY, good, config=config) == []

    def block(path: str, *caps: str) -> str:
        return f'path "{path}" {{\n  capabilities = [{", ".join(repr(c).replace(chr(39), chr(34)) for c in caps)}]\n}}\n'

    bad = {
        "another agent's credential": block("kv/data/dev/crm/openai", "create", "update"),
        "read its own value": block("kv/data/dev/research/openai", "read"),
        "delete": block("kv/data/dev/research/openai", "create", "update", "delete"),
        "a glob in its folder": block("kv/data/dev/research/*", "create", "update"),
        "metadata": block("kv/metadata/dev/research/openai", "update"),
    }
    for label, extra in bad.items():
        msgs = validate_resource(vault_policy_confined, VAULT_POLICY, {**good, "policy": good["policy"] + extra}, config=config)
        assert msgs, label
    # Shared-mode names are not accepted in per-agent mode, and vice versa.
    shared_props = {"name": "agents-dev-rotation-openai", "policy": block("kv/data/dev/crm/openai", "create", "update")
                    + block("kv/data/dev/research/openai", "create", "update")}
    assert validate_resource(vault_policy_confined, VAULT_POLICY, shared_props, config=config)
    shared_config = policy_config(shared(dev_settings), sample_fleet.classifications)
    assert validate_resource(vault_policy_confined, VAULT_POLICY, shared_props, config=shared_config) == []
    assert validate_resource(vault_policy_confined, VAULT_POLICY, good, config=shared_config)
    # An agent's own policy name still may not write another agent's credential.
    agent_props = {"name": naming.vault_policy_name(dev_settings, "research"), "policy": block("kv/data/dev/crm/openai", "update")}
    assert validate_resource(vault_policy_confined, VAULT_POLICY, agent_props, config=config)


def test_a_stack_without_vault_aws_auth_keeps_the_policy_and_the_map_but_no_login() -> None:
    no_auth = _run(**{"agentfleet:vaultAwsAuth": False, "vault:address": VAULT_ADDRESS})
    assert sorted(r.name for r in no_auth.of_type(VAULT_POLICY) if r.name.endswith("/rotation/vault-policy")) == [
        "crm/rotation/vault-policy", "research/rotation/vault-policy"]
    assert not [r for r in no_auth.of_type(VAULT_LOGIN) if r.name.endswith("/rotation/vault-login")]
    # The function still knows its Vault copies: without a login every sync fails (alarm) and
    # old keys stay valid, instead of being revoked under agents that read Vault.
    assert set(load_config(function_env(no_auth, "research/rotation")).vault_map) == {"agents/dev/research/openai"}
