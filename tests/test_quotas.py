"""The quota model: usage from the plan, limits from stack settings, failures before deploy."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from agentfleet.cli.main import main
from agentfleet.core import naming
from agentfleet.core import quotas
from agentfleet.core.loader import build_fleet
from agentfleet.core.model import Fleet
from agentfleet.core.settings import SettingsError, StackSettings, settings_from_config
from tests.conftest import PROJECT
from tests.pulumi_harness import write_fleet


def fleet_doc(n: int, *, automatic: bool = True, first: str = "") -> dict[str, Any]:
    """`n` agents with two credentials each; `first`: force every name's first character."""
    strategy = "generated" if automatic else "manual"
    return {
        "version": 1,
        "defaults": {"owner": "platform"},
        "agents": [
            {"name": f"{first}{chr(ord('a') + i % 26)}{i:05d}", "runtime": {"service": "ecs-tasks.amazonaws.com"},
             "credentials": [{"name": "db", "service": "postgres", "type": "password", "stores": ["aws"],
                              "rotation": {"strategy": strategy}},
                             {"name": "search", "service": "serpapi", "type": "api_key", "stores": ["aws"],
                              "rotation": {"strategy": "manual"}}]}
            for i in range(n)
        ],
    }


def by_key(fleet: Fleet, s: StackSettings) -> dict[str, quotas.Usage]:
    return {u.quota: u for u in quotas.usage(fleet, s)}


def test_every_listed_quota_is_reported_with_a_source(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    got = by_key(sample_fleet, dev_settings)
    assert list(got) == [q.key for q in quotas.QUOTAS]
    for key in ("iam-roles-per-account", "iam-inline-policy-bytes-per-role", "iam-managed-policy-bytes",
                "iam-trust-policy-bytes", "logs-metric-filters-per-log-group", "cloudwatch-alarms",
                "lambda-code-storage-bytes", "lambda-environment-bytes", "scheduler-schedules-per-region",
                "sns-subscriptions-per-topic", "secretsmanager-secrets-per-region", "tags-per-resource",
                "iam-role-name-chars"):
        assert key in got
    assert all(u.ok for u in got.values()) and quotas.problems(sample_fleet, dev_settings) == []
    assert all(u.source.startswith(("IAM", "PutMetricFilter", "Lambda", "CloudWatch", "EventBridge", "Amazon SNS",
                                    "AWS Secrets", "Tagging", "PutMetricAlarm")) for u in got.values())


def test_roles_count_agents_rotation_and_environment_roles(dev_settings: StackSettings) -> None:
    fleet = build_fleet(fleet_doc(10))
    per_agent = by_key(fleet, dev_settings)["iam-roles-per-account"]
    # 10 agent roles + 10 rotation roles + scheduler + age reporter + trail delivery role
    assert per_agent.used == 23
    shared = by_key(fleet, dev_settings.model_copy(update={"rotation_isolation": "shared"}))["iam-roles-per-account"]
    assert shared.used == 10 + 1 + 3
    manual = by_key(build_fleet(fleet_doc(10, automatic=False)), dev_settings)["iam-roles-per-account"]
    assert manual.used == 10 + 3  # nothing rotates automatically: no rotation role


def test_over_quota_roles_fail_naming_usage_limit_and_the_shared_mode_fix(dev_settings: StackSettings) -> None:
    fleet = build_fleet(fleet_doc(500))
    msgs = quotas.problems(fleet, dev_settings)
    roles = [m for m in msgs if m.startswith("quota iam-roles-per-account")]
    assert len(roles) == 1
    assert "needs 1,003" in roles[0] and "limit is 1,000" in roles[0]
    assert "rotationIsolation: shared needs 504 roles" in roles[0]
    # The same fleet fits in shared mode, or with a raised limit in stack settings.
    shared = dev_settings.model_copy(update={"rotation_isolation": "shared"})
    assert not [m for m in quotas.problems(fleet, shared) if "iam-roles" in m]
    raised = dev_settings.model_copy(update={"quotas": {"iam-roles-per-account": 5000}})
    assert not [m for m in quotas.problems(fleet, raised) if "iam-roles" in m]
    # Roles other stacks already hold in the account count too.
    crowded = shared.model_copy(update={"quotas_used_elsewhere": {"iam-roles-per-account": 600}})
    assert [m for m in quotas.problems(fleet, crowded) if "iam-roles" in m]


@pytest.mark.parametrize("n", [10, 500])
def test_metric_filters_on_the_trail_log_group_do_not_grow_with_the_fleet(dev_settings: StackSettings, n: int) -> None:
    got = by_key(build_fleet(fleet_doc(n)), dev_settings)["logs-metric-filters-per-log-group"]
    assert got.used == 2 and got.ok
    org = dev_settings.model_copy(update={"cloudtrail_log_group": "org-trail",
                                          "quotas_used_elsewhere": {"logs-metric-filters-per-log-group": 99}})
    over = by_key(build_fleet(fleet_doc(n)), org)["logs-metric-filters-per-log-group"]
    assert over.used == 101 and not over.ok  # an organisation trail already carrying 99 filters


def test_dimension_values_past_1000_recommend_partitions_that_fit(dev_settings: StackSettings) -> None:
    fleet = build_fleet(fleet_doc(700))  # 700 agent roles + 700 rotation roles + 3: over 1,000 per filter
    dims = by_key(fleet, dev_settings)["logs-metric-filter-dimension-values"]
    assert dims.used == 1403 and not dims.ok
    assert "monitoringPartitions: 4" in dims.fix
    fixed = dev_settings.model_copy(update={"monitoring_partitions": 4})
    after = by_key(fleet, fixed)
    assert after["logs-metric-filter-dimension-values"].ok
    assert after["logs-metric-filters-per-log-group"].used == 8
    assert max(quotas.partition_sizes(fixed, quotas.environment_roles(fixed, fleet, quotas._rotation(fixed, fleet)), 4)) \
        == after["logs-metric-filter-dimension-values"].used


def test_names_sharing_one_first_character_cannot_be_partitioned(dev_settings: StackSettings) -> None:
    fleet = build_fleet(fleet_doc(600, first="x"))
    dims = by_key(fleet, dev_settings)["logs-metric-filter-dimension-values"]
    assert not dims.ok and "split the environment" in dims.fix


def test_patterns_of_two_or_three_partitions_are_too_long(dev_settings: StackSettings) -> None:
    fleet = build_fleet(fleet_doc(3))
    for k, ok in ((1, True), (2, False), (3, True), (4, True)):
        got = by_key(fleet, dev_settings.model_copy(update={"monitoring_partitions": k}))["logs-metric-filter-pattern-chars"]
        assert got.ok is ok or (k == 3 and got.used <= 1024)


def test_policy_sizes_are_measured_on_the_deployed_documents(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    from agentfleet.core import plan
    from agentfleet.core import iam_documents as iam

    got = by_key(sample_fleet, dev_settings)
    agent = sample_fleet.agent("release-notes")
    trust = len(iam.to_json(plan.trust_policy(dev_settings, agent)).encode())
    assert got["iam-trust-policy-bytes"].used >= trust
    tight = dev_settings.model_copy(update={"quotas": {"iam-trust-policy-bytes": trust - 1}})
    bad = by_key(sample_fleet, tight)["iam-trust-policy-bytes"]
    assert not bad.ok and naming.role_name(dev_settings, "release-notes") in bad.where


def test_quota_settings_refuse_unknown_keys() -> None:
    base = {"aws:region": "us-east-1", "agentfleet:awsAccountId": "123456789012"}
    ok = settings_from_config("dev", {**base, "agentfleet:quotas": '{"iam-roles-per-account": 5000}'}.get)
    assert ok.quotas == {"iam-roles-per-account": 5000}
    with pytest.raises(SettingsError, match="unknown quota key"):
        settings_from_config("dev", {**base, "agentfleet:quotas": '{"iam-roles": 5000}'}.get)


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _project(tmp_path: Path, extra: str = "") -> Path:
    """A project whose `dev` stack declares a small account (`agentfleet:quotas`), so a small fleet is over quota."""
    (tmp_path / "Pulumi.yaml").write_text((PROJECT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.dev.yaml").write_text((PROJECT / "Pulumi.dev.yaml").read_text() + extra)
    return tmp_path


def test_validate_stack_and_plan_fail_before_deploy_and_plan_json_reports_usage(tmp_path: Path) -> None:
    project = _project(tmp_path, '  agentfleet:quotas: {"iam-roles-per-account": 20}\n')
    path = write_fleet(tmp_path, fleet_doc(9))  # 9 agent + 9 rotation + 3 environment roles = 21
    code, out, err = _cli("validate", str(path), "--stack", "dev", "--project", str(project))
    assert code == 1 and "quota iam-roles-per-account" in err and "needs 21" in err and "limit is 20" in err
    assert "rotationIsolation: shared needs 13 roles" in err
    assert _cli("validate", str(path))[0] == 0  # without a stack: only the file is checked
    code, out, err = _cli("plan", str(path), "--stack", "dev", "--project", str(project), "--format", "json")
    assert code == 1 and "quota iam-roles-per-account" in err
    doc = json.loads(out)
    roles = next(q for q in doc["quotas"] if q["quota"] == "iam-roles-per-account")
    assert roles["used"] == 21 and roles["limit"] == 20 and roles["ok"] is False
    assert _cli("plan", str(path), "--stack", "dev", "--project", str(project))[0] == 1  # the table fails too
    small = write_fleet(tmp_path, fleet_doc(3), "small.yaml")
    code, out, err = _cli("plan", str(small), "--stack", "dev", "--project", str(project), "--format", "json")
    assert code == 0 and all(q["ok"] for q in json.loads(out)["quotas"]), err
    assert _cli("validate", str(small), "--stack", "dev", "--project", str(project))[0] == 0


def test_docs_quota_table_is_generated(repo: Path) -> None:
    text = (repo / "docs" / "quotas.md").read_text(encoding="utf-8")
    assert quotas.quota_table() in text, "docs/quotas.md table is stale: paste agentfleet.core.quotas.quota_table()"
