"""The plan side of structured credentials, the new strategies and proof of pickup (Pulumi-free).

A small fleet built in code through the one validation: an AWS-only OpenAI key (pickup observable),
a dual-store SendGrid key (Vault reads are not in CloudTrail: grace period), a PostgreSQL user pair
(alternating users, structured value) and an OAuth client rotated by hand.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentfleet.core import naming
from agentfleet.core import rotation_plan as rp
from agentfleet.core.credential_rules import check_value
from agentfleet.core.loader import FleetError, build_fleet
from agentfleet.core.model import FIELD_PRESETS, Fleet
from agentfleet.core.settings import StackSettings
from agentfleet.rotation import config as handler_config
from agentfleet.rotation import handler, logs, vault_sync

FLEET: dict[str, Any] = {
    "version": 1,
    "agents": [{
        "name": "reporting",
        "runtime": {"service": "ecs-tasks.amazonaws.com"},
        "credentials": [
            {"name": "openai", "service": "openai", "type": "api_key", "rotation": {"strategy": "openai"}, "stores": ["aws"]},
            {"name": "mail", "service": "sendgrid", "type": "api_key", "rotation": {"strategy": "sendgrid"}},
            {"name": "warehouse", "service": "postgres", "type": "password", "classification": "customer-data",
             "rotation": {"strategy": "postgres-alternating"}, "stores": ["aws"]},
            {"name": "crm", "service": "salesforce", "type": "oauth_token", "fields": "oauth_client", "stores": ["aws"]},
        ],
    }],
}


@pytest.fixture()
def fleet() -> Fleet:
    return build_fleet(FLEET)


def test_fields_resolve_from_presets_and_strategies(fleet: Fleet) -> None:
    creds = {c.name: c for c in fleet.agent("reporting").credentials}
    assert creds["warehouse"].fields == FIELD_PRESETS["postgres"] and creds["warehouse"].structured
    assert creds["crm"].fields == (("client_id", False), ("client_secret", True))
    assert creds["openai"].fields == (("api_key", True),) and not creds["openai"].structured


def test_function_environment_carries_fields_and_pickup_readers(fleet: Fleet, dev_settings: StackSettings) -> None:
    [spec] = rp.rotators(dev_settings, fleet)
    env = spec.environment
    assert json.loads(env[handler_config.ENV_FIELDS]) == {
        naming.secret_name(dev_settings, "reporting", "warehouse"): ["host", "port", "dbname", "username", "password"]}
    role = naming.role_arn(dev_settings, naming.role_name(dev_settings, "reporting"))
    # Only the AWS-only provider key is observable; the dual-store SendGrid key and the database are not.
    assert json.loads(env[handler_config.ENV_PICKUP_READERS]) == {naming.secret_name(dev_settings, "reporting", "openai"): [role]}
    assert env[handler_config.ENV_PICKUP_LOG_GROUP] == naming.trail_events_log_group(dev_settings)
    assert {handler_config.ENV_SENDGRID_ADMIN_SECRET_ID, handler_config.ENV_POSTGRES_MASTER_SECRET_ID,
            handler_config.ENV_OPENAI_ADMIN_SECRET_ID} <= set(env)
    config = handler_config.load_config(env)  # the handler reads back exactly what the plan wrote
    assert config.pickup_readers == {naming.secret_name(dev_settings, "reporting", "openai"): (role,)}
    assert config.admin_secret_ids["postgres-alternating"] == naming.provider_admin_secret_name(dev_settings, "postgres-alternating")


def test_role_reads_the_trail_only_when_it_watches_a_pickup(fleet: Fleet, dev_settings: StackSettings) -> None:
    [spec] = rp.rotators(dev_settings, fleet)
    doc = rp.rotation_role_policy(dev_settings, spec, "arn:aws:kms:us-east-1:123456789012:key/k")
    [read] = [s for s in doc["Statement"] if s["Sid"] == "ReadTrailForPickup"]
    group = naming.log_group_arn(dev_settings, naming.trail_events_log_group(dev_settings))
    assert read["Action"] in ("logs:FilterLogEvents", ["logs:FilterLogEvents"]) and sorted(read["Resource"]) == [group, group + ":*"]
    no_pickup = build_fleet({**FLEET, "agents": [{**FLEET["agents"][0], "credentials": FLEET["agents"][0]["credentials"][1:]}]})
    [spec2] = rp.rotators(dev_settings, no_pickup)
    doc2 = rp.rotation_role_policy(dev_settings, spec2, "arn:aws:kms:us-east-1:123456789012:key/k")
    assert not any("logs:FilterLogEvents" in json.dumps(s) for s in doc2["Statement"])
    admin = rp.provider_admin_policy(dev_settings, spec)
    assert admin is not None
    resources = json.dumps(admin)
    for strategy in ("openai", "sendgrid", "postgres-alternating"):
        assert naming.provider_admin_secret_name(dev_settings, strategy) in resources
    assert "datadog" not in resources


def test_pickup_modes_for_audit(fleet: Fleet) -> None:
    modes = {c.name: rp.pickup_mode(c) for c in fleet.agent("reporting").credentials}
    assert modes == {"openai": "cloudtrail", "mail": "grace period", "warehouse": "alternating users", "crm": "n/a"}


def test_contract_with_the_handler(dev_settings: StackSettings) -> None:
    dev = dev_settings
    assert rp.PICKUP_MISSING_EVENT == handler.PICKUP_MISSING_EVENT
    assert set(rp.REVOKED_BY_PICKUP_METRICS) == {handler.PICKUP_OBSERVED, handler.PICKUP_GRACE, handler.PICKUP_EXPIRED,
                                                 handler.PICKUP_FORCED}
    assert rp.VAULT_SYNC_FAILED_EVENT == vault_sync.SYNC_FAILED_EVENT
    assert logs.ENV_METRICS_NAMESPACE == handler_config.ENV_METRICS_NAMESPACE
    # Every rotation alarm reads a metric the functions emit.
    assert {rp.revoke_failures_alarm(dev).metric_name, rp.pickup_missing_alarm(dev).metric_name} <= set(logs.METRICS)


CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    "adapter for another service": ({"service": "anthropic", "rotation": {"strategy": "openai"}},
                                    "rotates openai credentials only", "strategy: manual"),
    "generated for a provider-issued secret": ({"service": "stripe", "rotation": {"strategy": "generated"}},
                                               "stripe issues this secret itself", "strategy: manual"),
    "vault-only automated": ({"rotation": {"strategy": "generated"}, "stores": ["vault"]},
                             "stored only in vault", "add `aws` to `stores:`"),
    "database fields mismatch": ({"service": "postgres", "rotation": {"strategy": "postgres-alternating"}, "fields": "oauth_client"},
                                 "fields host, port, dbname, username, password", "fields: postgres"),
    "no secret field": ({"fields": [{"name": "client_id", "sensitive": False}]}, "no field is sensitive", "sensitive: false"),
    "unknown preset": ({"fields": "ldap"}, "must be a preset", "oauth_client"),
    "structured with a single-key adapter": ({"service": "openai", "rotation": {"strategy": "openai"}, "fields": "oauth_client"},
                                             "rotates a single `api_key`", "strategy: manual"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_validation_refuses_mismatches_and_names_the_fix(case: str) -> None:
    change, problem, fix = CASES[case]
    cred = {"name": "xx", "service": "internal-api", "type": "token", **change}
    with pytest.raises(FleetError) as info:
        build_fleet({"version": 1, "agents": [{"name": "a1", "runtime": {"service": "ecs-tasks.amazonaws.com"},
                                               "credentials": [cred]}]})
    text = str(info.value)
    assert problem in text and fix in text, text
    assert len(info.value.problems) == 1, text


def test_the_same_credentials_fixed_are_accepted() -> None:
    ok = [
        {"name": "aa", "service": "anthropic", "type": "api_key"},
        {"name": "bb", "service": "internal-api", "type": "token", "rotation": {"strategy": "generated"}, "stores": ["aws", "vault"]},
        {"name": "cc", "service": "postgresql", "type": "password", "rotation": {"strategy": "postgres-alternating"}, "fields": "postgres"},
        {"name": "dd", "service": "partner", "type": "oauth_token", "fields": [{"name": "tenant", "sensitive": False}, {"name": "token"}]},
    ]
    fleet = build_fleet({"version": 1, "agents": [{"name": "a1", "runtime": {"service": "ecs-tasks.amazonaws.com"}, "credentials": ok}]})
    assert [c.name for c in fleet.agents[0].credentials] == ["aa", "bb", "cc", "dd"]


def test_value_shape_is_checked_on_write_without_quoting_it() -> None:
    oauth = FIELD_PRESETS["oauth_client"]
    assert check_value(oauth, json.dumps({"client_id": "abc", "client_secret": "s3cr3t-value"})) == []
    problems = check_value(oauth, json.dumps({"client_id": "abc", "secret": "s3cr3t-value"}))
    assert problems == ["field `client_secret` is missing or empty", "undeclared field(s) secret: declare them under `fields:` or leave them out"]
    assert "s3cr3t" not in " ".join(check_value(oauth, "s3cr3t-value-not-json"))
    db = FIELD_PRESETS["postgres"]
    assert check_value(db, json.dumps({"host": "h", "port": 5432, "dbname": "d", "username": "u", "password": "p"})) == []
    assert check_value(FIELD_PRESETS["api_key"], "plain-text-key") == []
    assert check_value(FIELD_PRESETS["api_key"], "") == ["the value is empty"]


def test_audit_shows_rotation_mode_and_proof_of_pickup(fleet: Fleet, dev_settings: StackSettings) -> None:
    from agentfleet.core.plan import build_plan
    from agentfleet.review.audit import audit_csv, audit_rows

    plan = build_plan(fleet, dev_settings)
    rows = {r.credential: (r.rotation_mode, r.pickup) for r in audit_rows(plan)}
    assert rows == {"openai": ("automatic", "cloudtrail"), "mail": ("automatic", "grace period"),
                    "warehouse": ("automatic", "alternating users"), "crm": ("reminder", "n/a")}
    header = audit_csv(plan).splitlines()[0].split(",")
    assert "rotation_mode" in header and "pickup" in header
    [creds] = [a["credentials"] for a in plan["agents"]]
    crm = next(c for c in creds if c["name"] == "crm")
    assert crm["fields"] == [{"name": "client_id", "sensitive": False}, {"name": "client_secret", "sensitive": True}]
    assert next(c for c in creds if c["name"] == "openai")["fields"] is None


def test_put_values_checks_a_structured_value_before_writing_it(fleet: Fleet, dev_settings: StackSettings,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from agentfleet.cli.main import main
    from agentfleet.core.plan import build_plan
    from agentfleet.operate import values as v

    targets = {t.credential: t for t in v.value_targets(build_plan(fleet, dev_settings))}
    crm = targets["crm"]
    doc, _ = v.shape_value(crm.strategy, json.dumps({"client_id": "abc", "client_secret": "s3cr3t-x1"}), crm.plan.get("fields"))
    assert doc == {"client_id": "abc", "client_secret": "s3cr3t-x1"}
    with pytest.raises(v.ShapeError) as bad:
        v.shape_value(crm.strategy, json.dumps({"client_id": "abc", "secret": "s3cr3t-x1"}), crm.plan.get("fields"))
    assert "client_secret" in str(bad.value) and "s3cr3t" not in str(bad.value)
    assert v.shape_value(targets["openai"].strategy, "sk-plain-key-value-123", targets["openai"].plan.get("fields"))[0]

    def check(value: dict[str, str]) -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(value)))
        out, err = io.StringIO(), io.StringIO()
        return main(["check-value", "--fields", "client_id,client_secret"], out, err), out.getvalue(), err.getvalue()

    assert check({"client_id": "abc", "client_secret": "s3cr3t-x1"}) == (0, "", "")
    code, out, err = check({"client_id": "abc", "secret": "s3cr3t-x1"})
    assert code == 1 and "client_secret" in err and "s3cr3t" not in err + out
