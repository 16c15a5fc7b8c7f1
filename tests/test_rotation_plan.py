"""The rotation builders (no Pulumi): roles and policies, schedules, reminders, names, quota."""

from __future__ import annotations

import io
import json
import shlex
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from agentfleet.cli import main as cli
from agentfleet.core import naming
from agentfleet.core import rotation_plan as rp
from agentfleet.core.loader import load_fleet, parse_fleet
from agentfleet.core.model import PROVIDER_ADAPTERS, Fleet
from agentfleet.core.plan import NameCollision, check_unique_names
from agentfleet.core.settings import StackSettings, load_stack_settings
from agentfleet.policy.arnmatch import SAMPLE_SUFFIX, wildcard_match
from agentfleet.policy.vault import parse_policy
from agentfleet.rotation import config as handler_config
from agentfleet.rotation import logs, vault_sync
from agentfleet.rotation.config import VaultTarget, load_config
from tests.conftest import ROOT

KEY = "arn:aws:kms:us-east-1:123456789012:key/abcd"


def shared(s: StackSettings) -> StackSettings:
    return s.model_copy(update={"rotation_isolation": "shared"})


def sample_arn(s: StackSettings, agent: str, cred: str) -> str:
    return naming.secret_arn_pattern(s, agent, cred).replace("??????", SAMPLE_SUFFIX)


def statements(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {st["Sid"]: st for st in doc["Statement"]}


def as_list(v: str | list[str]) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


def allowed(doc: dict[str, Any], action: str, resource: str) -> bool:
    return any(st["Effect"] == "Allow" and action in as_list(st["Action"])
               and any(wildcard_match(r, resource) for r in as_list(st["Resource"])) for st in doc["Statement"])


# ---------------------------------------------------------------- per-agent roles


def test_per_agent_rotation_role_policy_is_exactly_the_list(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    spec = rp.agent_rotator(dev_settings, sample_fleet.agent("research"))
    assert spec is not None
    doc = rp.rotation_role_policy(dev_settings, spec, KEY)
    st = statements(doc)
    assert set(st) == {"RotateOwnSecrets", "GenerateRandomValues", "UseEnvironmentKeyViaSecretsManager", "WriteOwnLogs"}
    assert sorted(as_list(st["RotateOwnSecrets"]["Action"])) == [
        "secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage",
    ]
    # research has openai (rotated) and search (manual): only the rotated one is writable.
    assert as_list(st["RotateOwnSecrets"]["Resource"]) == [naming.secret_arn_pattern(dev_settings, "research", "openai")]
    assert "Condition" not in st["RotateOwnSecrets"]
    assert st["GenerateRandomValues"]["Action"] == "secretsmanager:GetRandomPassword"
    assert st["GenerateRandomValues"]["Resource"] == "*"
    kms = st["UseEnvironmentKeyViaSecretsManager"]
    assert sorted(as_list(kms["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"] and kms["Resource"] == KEY
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}
    assert sorted(as_list(st["WriteOwnLogs"]["Action"])) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert as_list(st["WriteOwnLogs"]["Resource"]) == [
        f"arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/{spec.function_name}:log-stream:*"]


def test_no_rotation_role_touches_another_agents_or_a_manual_secret(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    checked = 0
    for agent in sample_fleet.agents:
        spec = rp.agent_rotator(dev_settings, agent)
        if spec is None:
            continue
        doc = rp.rotation_role_policy(dev_settings, spec, KEY)
        for other in sample_fleet.agents:
            for c in other.credentials:
                arn = sample_arn(dev_settings, other.name, c.name)
                mine = other.name == agent.name and rp.is_automatic(c)
                for action in ("secretsmanager:PutSecretValue", "secretsmanager:GetSecretValue"):
                    assert allowed(doc, action, arn) is mine, (agent.name, other.name, c.name, action)
                    checked += 1
    assert checked > 50


def test_agents_without_automatic_credentials_get_no_function(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    owners = [r.owner for r in rp.rotators(dev_settings, sample_fleet)]
    assert owners == ["billing", "crm", "research"]  # support and release-notes are manual only


def test_provider_admin_key_is_a_separate_exact_grant(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    research = rp.agent_rotator(dev_settings, sample_fleet.agent("research"))
    billing = rp.agent_rotator(dev_settings, sample_fleet.agent("billing"))
    assert research is not None and billing is not None
    doc = rp.provider_admin_policy(dev_settings, research)
    assert doc is not None
    [st] = doc["Statement"]
    assert st["Action"] == "secretsmanager:GetSecretValue"
    assert st["Resource"] == naming.provider_admin_secret_arn_pattern(dev_settings, "openai")
    assert rp.provider_admin_policy(dev_settings, billing) is None  # generated only: no provider
    admin = naming.provider_admin_secret_arn_pattern(dev_settings, "openai").replace("??????", SAMPLE_SUFFIX)
    assert not allowed(rp.rotation_role_policy(dev_settings, research, KEY), "secretsmanager:GetSecretValue", admin)


def test_every_provider_adapter_has_an_admin_secret_variable() -> None:
    assert set(PROVIDER_ADAPTERS) <= set(handler_config.ADMIN_SECRET_ENV)


def test_function_environment_is_what_the_handler_reads(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    for spec in rp.rotators(dev_settings, sample_fleet) + rp.rotators(shared(dev_settings), sample_fleet):
        cfg = load_config(spec.environment)
        assert cfg.grace_hours == dev_settings.rotation_grace_hours
        for r in spec.secrets:
            assert cfg.strategy_for(r.secret_name) == r.strategy
        if "openai" in spec.strategies:
            assert cfg.openai_admin_secret_id == naming.provider_admin_secret_name(dev_settings, "openai")
        else:
            assert cfg.openai_admin_secret_id is None
    research = rp.agent_rotator(dev_settings, sample_fleet.agent("research"))
    assert research is not None
    with pytest.raises(Exception):  # a per-agent function refuses secrets that are not its own
        load_config(research.environment).strategy_for(naming.secret_name(dev_settings, "crm", "openai"))


# ---------------------------------------------------------------- schedules


def test_schedule_days_follow_the_classification(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    days = {(r.agent, r.credential): r.days for spec in rp.rotators(dev_settings, sample_fleet) for r in spec.secrets}
    assert days == {
        ("research", "openai"): 90,           # internal, days: 90
        ("crm", "openai"): 30,                # customer-data
        ("billing", "ledger-api"): 30,   # payments
    }


def test_explicit_days_below_the_class_maximum_win(dev_settings: StackSettings) -> None:
    fleet = parse_fleet(
        "version: 1\nagents:\n  - name: ab\n    runtime: {service: lambda.amazonaws.com}\n    credentials:\n"
        "      - {name: key, service: openai, type: api_key, classification: confidential, rotation: {strategy: openai, days: 14}}\n"
        "      - {name: mk, service: stripe, type: api_key, classification: payments, rotation: {strategy: manual, days: 10}}\n",
        "inline.yaml",
    )
    [spec] = rp.rotators(dev_settings, fleet)
    assert [r.days for r in spec.secrets] == [14]
    [rem] = rp.reminders(dev_settings, fleet.agent("ab"))
    assert rem.expression == "rate(10 days)" and rem.max_rotation_days == 30 and rem.lead_days == 2


def test_sweep_inputs_stay_under_the_eventbridge_limit() -> None:
    names = [f"agents/prod/agent-{i:04d}/openai-key" for i in range(600)]
    chunks = rp.sweep_inputs(names)
    assert len(chunks) > 1
    got: list[str] = []
    for c in chunks:
        assert len(c) <= rp.EVENT_INPUT_LIMIT
        doc = json.loads(c)
        assert doc["Action"] == "revokeDue"
        got += doc["SecretIds"]
    assert got == sorted(names)


# ---------------------------------------------------------------- shared mode


def test_shared_mode_one_role_per_strategy_confined_by_tags(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    s = shared(dev_settings)
    specs = rp.rotators(s, sample_fleet)
    assert [(x.owner, x.role_name) for x in specs] == [
        ("generated", "agents-dev-rotation-generated"), ("openai", "agents-dev-rotation-openai")]
    openai = specs[1]
    assert {r.secret_name for r in openai.secrets} == {"agents/dev/crm/openai", "agents/dev/research/openai"}
    st = statements(rp.rotation_role_policy(s, openai, KEY))
    rotate = st["RotateEnvironmentSecrets"]
    assert rotate["Resource"] == "arn:aws:secretsmanager:us-east-1:123456789012:secret:agents/dev/*"
    assert rotate["Condition"] == {
        "StringEquals": {"aws:ResourceTag/environment": "dev", "aws:ResourceTag/managed-by": "agentfleet"},
        "StringNotEquals": {"aws:ResourceTag/agent": naming.SHARED_AGENT_TAG},
    }
    assert set(st) == {"RotateEnvironmentSecrets", "GenerateRandomValues", "UseEnvironmentKeyViaSecretsManager", "WriteOwnLogs"}
    assert rp.invoke_source_arn(s, openai) == "arn:aws:secretsmanager:us-east-1:123456789012:secret:agents/dev/*"
    assert rp.invoke_source_arn(dev_settings, rp.rotators(dev_settings, sample_fleet)[0]) is None
    other_env = "arn:aws:secretsmanager:us-east-1:123456789012:secret:agents/prod/crm/openai-Ab12Cd"
    assert not allowed(rp.rotation_role_policy(s, openai, KEY), "secretsmanager:PutSecretValue", other_env)


def test_role_count_per_mode(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    assert rp.role_count(dev_settings, sample_fleet) == {"agent": 5, "rotation": 3, "environment_rotation": 2}
    assert rp.role_count(shared(dev_settings), sample_fleet) == {"agent": 5, "rotation": 2, "environment_rotation": 2}


def test_environment_roles_cannot_collide_with_agent_roles(dev_settings: StackSettings) -> None:
    def fleet(agent: str, strategy: str = "openai") -> Fleet:
        return parse_fleet(
            f"version: 1\nagents:\n  - name: {agent}\n    runtime: {{service: lambda.amazonaws.com}}\n    credentials:\n"
            f"      - {{name: key, service: openai, type: api_key, rotation: {{strategy: {strategy}}}}}\n", "inline.yaml")

    rp.check_names(dev_settings, fleet("rotation-openai"))  # per-agent mode: no shared role by that name
    with pytest.raises(NameCollision):
        rp.check_names(shared(dev_settings), fleet("rotation-openai"))
    with pytest.raises(NameCollision):
        rp.check_names(dev_settings, fleet("rotation-scheduler"))


# ---------------------------------------------------------------- manual credentials


def test_manual_and_non_aws_credentials_get_reminders(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    got = {(r.agent, r.credential): (r.expression, r.secret_name) for a in sample_fleet.agents for r in rp.reminders(dev_settings, a)}
    assert got == {
        ("research", "search"): ("rate(90 days)", "agents/dev/research/search"),
        ("crm", "salesforce"): ("rate(30 days)", "agents/dev/crm/salesforce"),
        ("billing", "stripe"): ("rate(30 days)", "agents/dev/billing/stripe"),
        ("billing", "webhook-signing"): ("rate(30 days)", "agents/dev/billing/webhook-signing"),  # Stripe issues it
        ("support", "zendesk"): ("rate(30 days)", "agents/dev/support/zendesk"),
        ("support", "anthropic"): ("rate(60 days)", "agents/dev/support/anthropic"),
        ("release-notes", "github"): ("rate(90 days)", None),  # Vault only
        ("release-notes", "slack-bot"): ("rate(60 days)", "agents/dev/release-notes/slack-bot"),
    }


def test_reminder_message_says_who_what_when_and_how(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    rem, _webhook = rp.reminders(dev_settings, sample_fleet.agent("billing"))
    m = rem.message
    assert (m["agent"], m["credential"], m["owner"], m["classification"]) == ("billing", "stripe", "team-finance", "payments")
    assert m["secret_name"] == "agents/dev/billing/stripe" and m["vault_path"] is None
    assert m["reminder_time"] == "<aws.scheduler.scheduled-time>" and m["due_in_days"] == 7
    assert m["rotate_every_days"] == 30 and m["max_age_days"] == 30
    [write] = [step for step in m["runbook"] if "put-values" in step]
    assert write.startswith("agentfleet put-values agents.yaml --stack dev --agent billing --credential stripe ")
    assert "Secrets Manager agents/dev/billing/stripe" in write and "Vault" not in write  # not stored in Vault


def test_reminders_come_lead_days_before_each_due_date(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    rem, _webhook = rp.reminders(dev_settings, sample_fleet.agent("billing"))
    deployed = date(2025, 1, 10)
    dates = rp.reminder_dates(rem, deployed, 4)
    assert dates[0] == (date(2025, 2, 2), date(2025, 2, 9))  # due 30 days after deployment
    for (remind, due), (next_remind, next_due) in zip(dates, dates[1:]):
        assert due - remind == timedelta(days=rem.lead_days)
        assert next_due - due == timedelta(days=30)
    assert rp.reminder_start(rem, deployed) == dates[0][0]


def test_age_alarm_uses_the_class_maximum(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    crm = {r.credential: r for r in rp.reminders(dev_settings, sample_fleet.agent("crm"))}
    alarm = rp.age_alarm(dev_settings, crm["salesforce"])
    assert alarm is not None
    assert (alarm.namespace, alarm.metric_name, alarm.statistic) == ("AgentFleet/dev/Rotation", "SecretAgeDays", "Maximum")
    assert alarm.threshold == 30.0 and alarm.comparison == "GreaterThanThreshold"
    assert alarm.dimensions == {"Agent": "crm", "Credential": "salesforce"}
    support = {r.credential: r for r in rp.reminders(dev_settings, sample_fleet.agent("support"))}
    anthropic = rp.age_alarm(dev_settings, support["anthropic"])
    assert anthropic is not None and anthropic.threshold == 90.0  # confidential maximum, rotated every 60
    [github, _] = rp.reminders(dev_settings, sample_fleet.agent("release-notes"))
    assert rp.age_alarm(dev_settings, github) is None  # Vault only: nothing to measure


def test_scheduler_and_age_reporter_roles_are_minimal(dev_settings: StackSettings) -> None:
    st = statements(rp.scheduler_role_policy(dev_settings))
    assert set(st) == {"PublishReminders", "InvokeRotationFunctions"}
    assert (st["PublishReminders"]["Action"], st["PublishReminders"]["Resource"]) == ("sns:Publish", naming.alarm_topic_arn(dev_settings))
    invoke = st["InvokeRotationFunctions"]
    assert invoke["Action"] == "lambda:InvokeFunction"
    assert invoke["Resource"] == "arn:aws:lambda:us-east-1:123456789012:function:agents-dev-*"
    assert invoke["Condition"] == {"StringEquals": {"aws:ResourceTag/environment": "dev", "aws:ResourceTag/managed-by": "agentfleet"}}
    trust = rp.scheduler_trust_policy(dev_settings)["Statement"][0]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    age = statements(rp.age_reporter_policy(dev_settings))
    assert set(age) == {"ListSecrets", "ReadVersionDates", "PublishSecretAge", "WriteOwnLogs"}
    every_action = {a for st in age.values() for a in as_list(st["Action"])}
    assert "secretsmanager:GetSecretValue" not in every_action and not any(a.startswith("kms:") for a in every_action)
    assert age["PublishSecretAge"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "AgentFleet/dev/Rotation"}}
    assert age["ReadVersionDates"]["Condition"]["StringEquals"] == {
        "aws:ResourceTag/environment": "dev", "aws:ResourceTag/managed-by": "agentfleet"}


def test_sweeps_name_secrets_only_in_shared_mode(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    for spec in rp.rotators(dev_settings, sample_fleet):
        assert spec.sweep_inputs == ('{"Action":"revokeDue"}',)  # the function sweeps its own map
    openai = {x.owner: x for x in rp.rotators(shared(dev_settings), sample_fleet)}["openai"]
    [payload] = openai.sweep_inputs
    assert json.loads(payload)["SecretIds"] == ["agents/dev/crm/openai", "agents/dev/research/openai"]


# ---------------------------------------------------------------- Vault copies


@pytest.mark.parametrize("isolation", ["per-agent", "shared"])
def test_every_vault_copy_of_a_rotated_credential_is_written_by_its_function(
    sample_fleet: Fleet, dev_settings: StackSettings, isolation: str,
) -> None:
    s = dev_settings.model_copy(update={"rotation_isolation": isolation})
    assert rp.synced_vault_copies(s, sample_fleet) == [("crm", "openai"), ("research", "openai")]
    assert rp.unrotated_vault_copies(s, sample_fleet) == []
    # Manual or Vault-only credentials are not written by any function (a human rotates them).
    written = set(rp.synced_vault_copies(s, sample_fleet))
    assert ("release-notes", "github") not in written and ("crm", "salesforce") not in written


def test_a_vault_copy_without_a_writer_would_be_reported(sample_fleet: Fleet, dev_settings: StackSettings,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rp, "synced_vault_copies", lambda s, f: [("crm", "openai")])
    assert rp.unrotated_vault_copies(dev_settings, sample_fleet) == [("research", "openai")]


def test_per_agent_vault_policy_writes_exactly_its_rotated_vault_copies(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    specs = {x.owner: x for x in rp.rotators(dev_settings, sample_fleet)}
    got = {owner: parse_policy(hcl) if (hcl := rp.rotation_vault_policy(dev_settings, spec)) else None
           for owner, spec in specs.items()}
    assert got == {
        "research": {"kv/data/dev/research/openai": ("create", "update")},  # not research/search (aws only, manual)
        "crm": {"kv/data/dev/crm/openai": ("create", "update")},            # not crm/salesforce (manual)
        "billing": None,                                                    # ledger-api lives only in AWS
    }
    # Negative, on every Vault path of the fleet: only the function's own copies are writable, nothing is readable.
    for owner, paths in got.items():
        for a in sample_fleet.agents:
            for c in a.credentials:
                data = f"kv/data/{naming.vault_path(dev_settings, a.name, c.name)}"
                writable = (a.name, c.name) in {(r.agent, r.credential) for r in specs[owner].vault_copies}
                assert (data in (paths or {})) is writable, (owner, a.name, c.name)
                assert f"kv/metadata/{naming.vault_path(dev_settings, a.name, c.name)}" not in (paths or {})
        for caps in (paths or {}).values():
            assert "read" not in caps and "list" not in caps and "delete" not in caps


def test_shared_vault_policy_lists_exactly_the_strategys_copies(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    s = shared(dev_settings)
    specs = {x.owner: x for x in rp.rotators(s, sample_fleet)}
    openai = rp.rotation_vault_policy(s, specs["openai"])
    assert openai is not None
    assert parse_policy(openai) == {
        "kv/data/dev/crm/openai": ("create", "update"),
        "kv/data/dev/research/openai": ("create", "update"),
    }
    assert rp.rotation_vault_policy(s, specs["generated"]) is None
    assert specs["openai"].vault_name == "agents-dev-rotation-openai"


def test_vault_names_are_the_rotation_role_names_and_never_an_agents(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    agent_names = {naming.vault_policy_name(dev_settings, a.name) for a in sample_fleet.agents}
    agent_names |= {naming.vault_auth_role_name(dev_settings, a.name) for a in sample_fleet.agents}
    for s in (dev_settings, shared(dev_settings)):
        for spec in rp.rotators(s, sample_fleet):
            assert spec.vault_name == spec.role_name and spec.vault_name not in agent_names
    # An agent whose Vault names would equal research's rotator's is refused like the IAM role clash.
    clash = parse_fleet(
        "version: 1\nagents:\n"
        "  - name: research\n    runtime: {service: lambda.amazonaws.com}\n    credentials:\n"
        "      - {name: key, service: openai, type: api_key, rotation: {strategy: openai}}\n"
        "  - name: research-rotation\n    runtime: {service: lambda.amazonaws.com}\n    credentials:\n"
        "      - {name: key, service: stripe, type: api_key, rotation: {strategy: manual}}\n",
        "inline.yaml")
    assert naming.vault_policy_name(dev_settings, "research-rotation") == rp.rotators(dev_settings, clash)[0].vault_name
    with pytest.raises(NameCollision):
        check_unique_names(dev_settings, clash)


def test_function_environment_maps_exactly_its_vault_copies(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    for spec in rp.rotators(dev_settings, sample_fleet):  # per-agent: a map of its own copies
        cfg = load_config(spec.environment)
        assert dict(cfg.vault_map) == {
            r.secret_name: VaultTarget("kv", naming.vault_path(dev_settings, r.agent, r.credential)) for r in spec.vault_copies
        }
        assert cfg.vault_layout is None
        if spec.vault_copies:
            assert cfg.vault_role == spec.vault_name and cfg.vault_auth_path == dev_settings.vault_aws_auth_path
        else:
            assert not {k for k in spec.environment if k.startswith("VAULT_")}
            assert handler_config.ENV_VAULT_MAP not in spec.environment
    research = rp.agent_rotator(dev_settings, sample_fleet.agent("research"))
    assert research is not None
    assert set(load_config(research.environment).vault_map) == {"agents/dev/research/openai"}  # not crm's


def test_shared_functions_carry_the_naming_rule_and_tags_mark_the_copies(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    s = shared(dev_settings)
    for spec in rp.rotators(s, sample_fleet):
        cfg = load_config(spec.environment)
        assert handler_config.ENV_VAULT_MAP not in spec.environment and not cfg.vault_map
        if not spec.vault_copies:
            assert cfg.vault_layout is None and not {k for k in spec.environment if k.startswith("VAULT_")}
            continue
        assert cfg.vault_layout is not None and cfg.vault_role == spec.vault_name
        for r in spec.secrets:  # the rule gives exactly the layout's path for every secret of the environment
            assert cfg.vault_layout.target(r.secret_name) == VaultTarget("kv", naming.vault_path(s, r.agent, r.credential))
        assert cfg.vault_layout.target("agents/prod/research/openai") is None  # another environment
        assert cfg.vault_layout.target("agents/dev/") is None
    tagged = {(a.name, c.name): rp.vault_copy_tag(s, a, c) for a in sample_fleet.agents for c in a.credentials}
    copies = {(r.agent, r.credential) for spec in rp.rotators(s, sample_fleet) for r in spec.vault_copies}
    assert {k for k, v in tagged.items() if v} == copies  # a tag exactly on the secrets with a rotated Vault copy
    for (agent, cred), tag in tagged.items():
        if tag:
            assert tag == {handler_config.VAULT_COPY_TAG: f"kv/{naming.vault_path(s, agent, cred)}"}
    assert not any(rp.vault_copy_tag(dev_settings, a, c) for a in sample_fleet.agents for c in a.credentials)


def test_a_shared_function_fits_lambdas_environment_at_any_fleet_size(dev_settings: StackSettings) -> None:
    agents = "".join(
        f"  - name: agent-{i:04d}\n    runtime: {{service: lambda.amazonaws.com}}\n    credentials:\n"
        f"      - {{name: openai, service: openai, type: api_key, rotation: {{strategy: openai}}, stores: [aws, vault]}}\n"
        for i in range(1500))
    fleet = parse_fleet("version: 1\nagents:\n" + agents, "inline.yaml")
    [spec] = rp.rotators(shared(dev_settings), fleet)  # formerly refused past ~80 agents (the per-secret map)
    assert len(spec.vault_copies) == 1500
    assert rp.environment_size(spec.environment) < 1024


def test_vault_connection_keeps_only_addresses_the_handler_accepts() -> None:
    assert rp.vault_connection_environment("https://vault.example.com:8200/", "team-a", "vault.example.com") == {
        "VAULT_ADDR": "https://vault.example.com:8200", "VAULT_NAMESPACE": "team-a", "VAULT_IAM_SERVER_ID": "vault.example.com"}
    assert rp.vault_connection_environment("http://127.0.0.1:8200") == {"VAULT_ADDR": "http://127.0.0.1:8200"}
    assert rp.vault_connection_environment("http://vault.internal:8200") == {}  # would send the token in clear
    assert rp.vault_connection_environment(None) == {}
    for env in ({"VAULT_ADDR": "https://vault.example.com"}, {"VAULT_ADDR": "http://127.0.0.1:8200"}):
        assert load_config(env).vault_addr == env["VAULT_ADDR"]


def test_failure_metric_counts_revoke_and_vault_sync_failures() -> None:
    assert [e for e in ("revoke_failed", "vault_sync_failed", "key_revoked", "rotation_finished")
            if logs.metric_of(e, {}) == rp.REVOKE_FAILURES_METRIC] == ["revoke_failed", "vault_sync_failed"]
    assert rp.VAULT_SYNC_FAILED_EVENT == vault_sync.SYNC_FAILED_EVENT
    dev = load_stack_settings(ROOT / "Pulumi.dev.yaml", "dev")
    assert "Vault" in rp.revoke_failures_alarm(dev).description


def test_the_handlers_vault_value_key_is_the_layouts() -> None:
    assert vault_sync.VAULT_VALUE_KEY == naming.VAULT_VALUE_KEY


# ---------------------------------------------------------------- emergency command


@pytest.mark.parametrize("isolation", ["per-agent", "shared"])
def test_emergency_command_names_the_function_that_rotates_the_credential(sample_fleet: Fleet, dev_settings: StackSettings,
                                                                          isolation: str) -> None:
    s = dev_settings.model_copy(update={"rotation_isolation": isolation})
    plan = rp.emergency_rotation(s, sample_fleet, "research", "openai")
    expected_fn = (naming.rotation_function_name(s, "research") if isolation == "per-agent"
                   else naming.shared_rotation_function_name(s, "openai"))
    argv = shlex.split(plan.command)
    assert argv[argv.index("--function-name") + 1] == expected_fn == plan.function_name
    assert argv[argv.index("--region") + 1] == s.aws_region
    assert json.loads(argv[argv.index("--payload") + 1]) == {
        "Action": "rotateNow", "SecretId": naming.secret_name(s, "research", "openai"), "Emergency": True}
    assert plan.vault == "kv/dev/research/openai"
    webhook = rp.emergency_rotation(s, sample_fleet, "billing", "ledger-api")
    assert webhook.vault is None  # lives only in Secrets Manager
    for agent, cred in (("crm", "salesforce"), ("release-notes", "github")):  # manual; Vault only
        with pytest.raises(ValueError, match="rotated by a human"):
            rp.emergency_rotation(s, sample_fleet, agent, cred)
    with pytest.raises(LookupError):
        rp.emergency_rotation(s, sample_fleet, "research", "nope")
    with pytest.raises(LookupError):
        rp.emergency_rotation(s, sample_fleet, "nobody", "openai")


def test_emergency_rotate_dry_run_prints_what_it_would_do(root: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["emergency-rotate", str(root / "agents.yaml"), "--agent", "crm", "--credential", "openai", "--dry-run"], out, err) == 0
    dev = load_stack_settings(root / "Pulumi.dev.yaml", "dev")
    plan = rp.emergency_rotation(dev, load_fleet(root / "agents.yaml"), "crm", "openai")
    assert f"dry run: would invoke {plan.function_name} in us-east-1 with {plan.payload}" in out.getvalue()
    commands = [line for line in out.getvalue().splitlines() if line.startswith("aws lambda invoke")]
    assert commands == [plan.command]
    out = io.StringIO()
    assert cli.main(["emergency-rotate", str(root / "agents.yaml"), "--agent", "crm", "--credential", "openai",
                     "--format", "json", "--dry-run"], out, err) == 0
    assert json.loads(out.getvalue())["command"] == plan.command
    out = io.StringIO()
    assert cli.main(["emergency-rotate", str(root / "agents.yaml"), "--agent", "crm", "--credential", "salesforce"],
                    out, io.StringIO()) == 0
    assert "rotated by a human" in out.getvalue()
    assert "agentfleet put-values " + str(root / "agents.yaml") + " --stack dev --agent crm --credential salesforce" in out.getvalue()
    assert "Revoke the old key at salesforce NOW" in out.getvalue()
    assert cli.main(["emergency-rotate", str(root / "agents.yaml"), "--agent", "crm"], io.StringIO(), io.StringIO()) == 2
    assert cli.main(["emergency-rotate", str(root / "agents.yaml"), "--agent", "crm", "--credential", "nope"],
                    io.StringIO(), io.StringIO()) == 1
    ran = subprocess.run([sys.executable, "-m", "agentfleet", "emergency-rotate", str(root / "agents.yaml"),
                          "--agent", "crm", "--credential", "openai", "--dry-run"], capture_output=True, text=True, cwd=root, check=False)
    assert ran.returncode == 0 and plan.command in ran.stdout.splitlines()


def test_the_docs_show_the_exact_command(root: Path, repo: Path) -> None:
    dev = load_stack_settings(root / "Pulumi.dev.yaml", "dev")
    plan = rp.emergency_rotation(dev, load_fleet(root / "agents.yaml"), "research", "openai")
    text = (repo / "docs" / "rotation.md").read_text(encoding="utf-8")
    assert plan.command in " ".join(text.replace("\\\n", " ").split())
