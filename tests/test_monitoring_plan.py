"""Pure monitoring builders: a fixed number of trail filters counting per role; thresholds;
the filter patterns evaluated against CloudTrail records (tests/data/cloudtrail)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentfleet.core import naming
from agentfleet.core.model import Fleet
from agentfleet.core.monitoring_plan import (
    ACCESS_DENIED,
    ISSUER_NAME_FIELD,
    MAX_FILTER_PATTERN_CHARS,
    ROLE_DIMENSION,
    SECRET_READS,
    access_denied_alarm,
    agent_alarms,
    partition_of,
    partitions,
    trail_filter,
    trail_filters,
    usage_alarm,
)
from agentfleet.core.settings import StackSettings
from tests.cloudwatch_pattern import matches, select

EVENTS = Path(__file__).parent / "data" / "cloudtrail"


def event(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return doc


def counted(spec_pattern: str, dims: dict[str, str], ev: dict[str, Any]) -> dict[str, str] | None:
    """The dimension values a matching event is counted under, or None if it does not match."""
    if not matches(spec_pattern, ev):
        return None
    return {k: str(select(ev, sel)) for k, sel in dims.items()}


def test_filters_are_per_environment_and_count_per_role(dev_settings: StackSettings) -> None:
    filters = trail_filters(dev_settings)
    assert [f.metric_name for f in filters] == ["SecretReads", "AccessDenied"]
    for f in filters:
        assert f.dimensions == {ROLE_DIMENSION: ISSUER_NAME_FIELD}
        # CloudTrail metrics go where the agents cannot publish (only their own usage namespace).
        assert f.namespace == naming.audit_namespace(dev_settings) == "AgentFleetAudit/dev"
        assert f.name.startswith(f"{dev_settings.secret_prefix}-{dev_settings.environment}-")
    # Two stacks sharing an organisation trail's log group must not overwrite each other's filters.
    prod = dev_settings.model_copy(update={"environment": "prod"})
    assert {f.name for f in trail_filters(prod)}.isdisjoint({f.name for f in filters})


def test_read_filter_counts_reads_of_this_environments_roles_only(dev_settings: StackSettings) -> None:
    reads = trail_filter(dev_settings, SECRET_READS)

    def c(name: str) -> dict[str, str] | None:
        return counted(reads.pattern, reads.dimensions, event(name))

    assert c("get_secret_value_research") == {"Role": naming.role_name(dev_settings, "research")}
    assert c("describe_secret_research") is None  # not a value read
    assert c("get_secret_value_other_environment") is None  # agents-prod-*: not this environment
    assert c("access_denied_unmanaged_role") is None  # a role this stack does not manage


def test_denied_filter_counts_access_denied_and_unauthorized_per_role(dev_settings: StackSettings) -> None:
    denied = trail_filter(dev_settings, ACCESS_DENIED)

    def c(name: str) -> dict[str, str] | None:
        return counted(denied.pattern, denied.dimensions, event(name))

    assert c("access_denied_billing_reads_crm") == {"Role": "agents-dev-billing"}
    assert c("unauthorized_operation_support_ec2") == {"Role": "agents-dev-support"}
    assert c("get_secret_value_research") is None  # succeeded
    assert c("access_denied_unmanaged_role") is None
    # An IAM user named like an agent role has no session issuer: it is not counted as the agent.
    assert c("access_denied_iam_user_named_like_a_role") is None


def test_each_agents_denied_alarm_selects_exactly_its_roles_series(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    denied = trail_filter(dev_settings, ACCESS_DENIED)
    ev = event("access_denied_billing_reads_crm")
    series = counted(denied.pattern, denied.dimensions, ev)
    hit = [a.name for a in (access_denied_alarm(dev_settings, ag.name) for ag in sample_fleet.agents)
           if a.metric_name == denied.metric_name and a.namespace == denied.namespace and a.dimensions == series]
    assert hit == [naming.alarm_name(dev_settings, "billing", "access-denied")]


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 12, 36])
def test_partitions_cover_every_leading_character_once(dev_settings: StackSettings, k: int) -> None:
    s = dev_settings.model_copy(update={"monitoring_partitions": k})
    parts = partitions(s)
    assert len(parts) == k and "".join(parts) == "0123456789abcdefghijklmnopqrstuvwxyz"
    filters = trail_filters(s)
    assert len(filters) == 2 * k
    assert len({f.name for f in filters}) == len(filters)
    if k == 1 or k >= 4:  # 2-3 shares of 36 characters make patterns too long: the quota model says so
        assert all(len(f.pattern) <= MAX_FILTER_PATTERN_CHARS for f in filters)
    ev = event("access_denied_billing_reads_crm")
    denied = [f for f in filters if f.metric_name == "AccessDenied"]
    # Exactly one partition's filter counts a given role's event: the one partition_of names.
    hits = [i for i, f in enumerate(denied) if matches(f.pattern, ev)]
    assert hits == [partition_of(s, "agents-dev-billing")] if k > 1 else hits == [0]


def test_filter_count_does_not_grow_with_the_fleet(dev_settings: StackSettings) -> None:
    # trail_filters takes no fleet at all: the count is a property of the environment.
    assert len(trail_filters(dev_settings)) == 2
    assert trail_filters(dev_settings.model_copy(update={"alarms": False})) == []


def test_usage_alarm_threshold_is_multiplier_times_baseline(dev_settings: StackSettings) -> None:
    alarm = usage_alarm(dev_settings, "research")
    assert alarm.threshold == 4 * 100
    assert alarm.namespace == "AgentFleet/dev/research" and alarm.metric_name == "ApiCalls"
    assert alarm.period == 300 and alarm.evaluation_periods == 1  # pages within one 5-min period
    tuned = dev_settings.model_copy(update={"usage_baselines": {"research": 250}, "usage_alarm_multiplier": 3.0})
    assert usage_alarm(tuned, "research").threshold == 750
    assert usage_alarm(tuned, "crm").threshold == 300


def test_alarms_can_be_turned_off(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    agent = sample_fleet.agents[0]
    alarms = agent_alarms(dev_settings, agent)
    assert [a.metric_name for a in alarms] == ["ApiCalls", "AccessDenied"]
    assert alarms[1].dimensions == {ROLE_DIMENSION: naming.role_name(dev_settings, agent.name)}
    off = dev_settings.model_copy(update={"alarms": False})
    assert agent_alarms(off, agent) == []
