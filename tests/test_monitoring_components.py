"""Per-agent usage signals and alarms under Pulumi mocks (the real program, via mockrun)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentfleet.core import naming
from agentfleet.runner.mockrun import ProgramRun, RegisteredResource, run_program
from agentfleet.core.settings import StackSettings
from tests.pulumi_harness import AGENT_ACCESS, ROLE_POLICY, json_prop, run_fleet, sample_doc

FILTER = "aws:cloudwatch/logMetricFilter:LogMetricFilter"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
TRAIL = "aws:cloudtrail/trail:Trail"
AGENTS = ("billing", "crm", "release-notes", "research", "support")


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    return run_program("dev")


def under_agent(run: ProgramRun, agent: str, type_: str) -> list[RegisteredResource]:
    return [r for r in run.descendants(run.named(agent, AGENT_ACCESS).urn) if r.type == type_]


def trail_filters_on(run: ProgramRun, group: str) -> list[RegisteredResource]:
    return [f for f in run.of_type(FILTER) if f.props["logGroupName"] == group]


def test_the_environment_has_one_read_and_one_denied_filter_on_the_trail_log_group(
    run: ProgramRun, dev_settings: StackSettings
) -> None:
    trail = run.of_type(TRAIL)
    assert len(trail) == 1
    group = naming.trail_log_group_name(dev_settings)
    filters = {f.props["metricTransformation"]["name"]: f for f in trail_filters_on(run, group)}
    assert len(trail_filters_on(run, group)) == 2 and set(filters) == {"SecretReads", "AccessDenied"}
    alerts = run.named("alerts", "agentfleet:index:FleetAlerts")
    for f in filters.values():
        assert f.parent == alerts.urn  # environment-level, not under any agent
        t = f.props["metricTransformation"]
        assert t["namespace"] == "AgentFleetAudit/dev" and t["value"] == "1"
        assert t["dimensions"] == {"Role": "$.userIdentity.sessionContext.sessionIssuer.userName"}
        assert "defaultValue" not in t  # CloudWatch refuses a default value with dimensions
        assert 'sessionIssuer.userName = "agents-dev-*"' in f.props["pattern"]
        assert f.props["name"].startswith("agents-dev-")
    assert '$.eventName = "GetSecretValue"' in filters["SecretReads"].props["pattern"]
    assert '$.errorCode = "AccessDenied*"' in filters["AccessDenied"].props["pattern"]
    for agent in AGENTS:  # only filters on the agent's own rotation function's log group, if any
        assert [f for f in under_agent(run, agent, FILTER) if f.props["logGroupName"] == group] == []


def test_usage_and_denied_alarms_per_agent_go_to_the_environment_topic(run: ProgramRun) -> None:
    topics = run.of_type(TOPIC)
    assert len(topics) == 1
    topic_arn = topics[0].outputs["arn"]
    assert topic_arn.endswith(":agents-dev-alerts")
    for agent in AGENTS:
        alarms = {a.props["metricName"]: a for a in under_agent(run, agent, ALARM)}
        usage, denied = alarms["ApiCalls"], alarms["AccessDenied"]
        assert usage.props["namespace"] == f"AgentFleet/dev/{agent}"
        assert usage.props["threshold"] == 400  # 4 x the default baseline of 100 per 5 minutes
        assert usage.props["comparisonOperator"] == "GreaterThanThreshold"
        assert usage.props["period"] == 300 and usage.props["evaluationPeriods"] == 1
        assert denied.props["namespace"] == "AgentFleetAudit/dev"
        assert denied.props["dimensions"] == {"Role": f"agents-dev-{agent}"}  # its own role's series only
        assert denied.props["threshold"] == 5
        for alarm in alarms.values():
            assert alarm.props["alarmActions"] == [topic_arn]
            assert alarm.props["okActions"] == [topic_arn]
            assert alarm.props["tags"]["agent"] == agent


def test_agent_may_publish_metrics_only_to_its_own_namespace(run: ProgramRun) -> None:
    for agent in AGENTS:
        policy = next(r for r in under_agent(run, agent, ROLE_POLICY) if r.name == f"{agent}/policy")
        doc = json_prop(policy, "policy")
        stmts = [s for s in doc["Statement"] if "cloudwatch:PutMetricData" in json.dumps(s["Action"])]
        assert len(stmts) == 1
        assert stmts[0]["Action"] == "cloudwatch:PutMetricData"
        assert stmts[0]["Condition"] == {"StringEquals": {"cloudwatch:namespace": f"AgentFleet/dev/{agent}"}}
        others = [f"AgentFleet/dev/{o}" for o in AGENTS if o != agent]
        assert not any(ns in json.dumps(doc) for ns in others)


def test_subscriptions_and_thresholds_come_from_stack_config(tmp_path: Path) -> None:
    subs = [{"protocol": "email", "endpoint": "oncall@example.com"},
            {"protocol": "https", "endpoint": "https://chat.example.com/hooks/agents"}]
    run = run_fleet(tmp_path, sample_doc(), **{
        "agentfleet:alarmSubscriptions": json.dumps(subs),
        "agentfleet:usageBaselines": json.dumps({"research": 250}),
        "agentfleet:usageAlarmMultiplier": "3",
    })
    got = sorted((s.props["protocol"], s.props["endpoint"]) for s in run.of_type(SUBSCRIPTION))
    assert got == sorted((s["protocol"], s["endpoint"]) for s in subs)
    research = {a.props["metricName"]: a for a in under_agent(run, "research", ALARM)}
    crm = {a.props["metricName"]: a for a in under_agent(run, "crm", ALARM)}
    assert research["ApiCalls"].props["threshold"] == 750
    assert crm["ApiCalls"].props["threshold"] == 300


def test_existing_trail_is_reused_and_alarms_can_be_turned_off(tmp_path: Path) -> None:
    reuse = run_fleet(tmp_path, sample_doc(), **{"agentfleet:cloudtrailLogGroup": "org-trail-logs"})
    assert reuse.of_type(TRAIL) == []
    trail_filters = [f for f in reuse.of_type(FILTER) if f.props["metricTransformation"]["name"] in ("SecretReads", "AccessDenied")]
    assert len(trail_filters) == 2
    assert {f.props["logGroupName"] for f in trail_filters} == {"org-trail-logs"}
    off = run_fleet(tmp_path, sample_doc(), **{"agentfleet:alarms": "false"})
    assert [f for f in off.of_type(FILTER) if f.props["metricTransformation"]["name"] in ("SecretReads", "AccessDenied")] == []
    assert [a for a in off.of_type(ALARM) if a.props["metricName"] in ("ApiCalls", "AccessDenied")] == []
    assert len(off.of_type(TOPIC)) == 1  # reminders still need the topic


def _fleet_program(n: int) -> ProgramRun:
    """The monitoring extension alone on `n` agents (fleet built in code), under the mocks."""
    from agentfleet import AgentFleet, AgentFleetArgs, build_fleet, providers_from_config
    from agentfleet.components import monitoring
    from tests.conftest import PROJECT

    s = StackSettings(stack="dev", environment="dev", aws_region="us-east-1", aws_account_id="123456789012")
    doc = {"version": 1, "defaults": {"owner": "platform"}, "agents": [
        {"name": f"agent-{i:04d}", "runtime": {"service": "ecs-tasks.amazonaws.com"},
         "credentials": [{"name": "key", "service": "svc", "type": "api_key", "stores": ["vault"],
                          "rotation": {"strategy": "manual"}}]} for i in range(n)]}

    def program() -> None:
        AgentFleet("fleet", AgentFleetArgs(fleet=build_fleet(doc), settings=s, providers=providers_from_config(s),
                                           extensions=(monitoring,)))

    return run_program("dev", root=PROJECT, program=program)


@pytest.mark.parametrize("n", [10, 60])
def test_metric_filters_per_log_group_do_not_grow_with_the_fleet(n: int) -> None:
    """60 agents: past the 50 the former two-filters-per-agent design could hold on one log group."""
    run = _fleet_program(n)
    per_group: dict[str, int] = {}
    for f in run.of_type(FILTER):
        per_group[f.props["logGroupName"]] = per_group.get(f.props["logGroupName"], 0) + 1
    assert per_group == {"/agents/dev/cloudtrail": 2}
    denied = [a for a in run.of_type(ALARM) if a.props["metricName"] == "AccessDenied"]
    assert len(denied) == n and len({tuple(sorted(a.props["dimensions"].items())) for a in denied}) == n


def test_alarms_off_creates_no_trail_bucket_or_filters() -> None:
    """`agentfleet:alarms: false` (issue 10): only what reminders need (the topic) remains."""
    from agentfleet.runner.mockrun import run_program
    from tests.conftest import PROJECT

    on = run_program("dev", root=PROJECT)
    off = run_program("dev", root=PROJECT, config_overrides={"agentfleet:alarms": "false"})
    watched = ("aws:cloudtrail/trail:Trail", "aws:s3/bucket:Bucket", "aws:cloudwatch/logMetricFilter:LogMetricFilter",
               "aws:cloudwatch/metricAlarm:MetricAlarm")
    for t in watched:
        assert on.of_type(t), t  # the default stack watches
    assert not [r.name for t in watched[:2] for r in off.of_type(t)]
    assert not off.of_type("aws:cloudwatch/logMetricFilter:LogMetricFilter")
    assert not off.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
