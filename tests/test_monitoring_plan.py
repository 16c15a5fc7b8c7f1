"""Pure monitoring builders: per-agent filters match only that agent's role; thresholds."""

from __future__ import annotations

import re

from agentfleet.core import naming
from agentfleet.core.model import Fleet
from agentfleet.core.monitoring_plan import (
    access_denied_filter,
    agent_alarms,
    secret_reads_filter,
    usage_alarm,
)
from agentfleet.core.settings import StackSettings


def _issuer_arns(pattern: str) -> list[str]:
    return re.findall(r'sessionIssuer\.arn = "([^"]+)"', pattern)


def test_filters_name_exactly_the_agents_role(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    for agent in sample_fleet.agents:
        role = naming.role_arn(dev_settings, naming.role_name(dev_settings, agent.name))
        reads = secret_reads_filter(dev_settings, agent.name)
        denied = access_denied_filter(dev_settings, agent.name)
        assert _issuer_arns(reads.pattern) == [role]
        assert _issuer_arns(denied.pattern) == [role]
        assert '$.eventName = "GetSecretValue"' in reads.pattern
        assert '$.errorCode = "AccessDenied*"' in denied.pattern
        # CloudTrail metrics go where the agent itself cannot publish (it may only write its own
        # usage namespace), so an agent cannot forge or hide its audit counts.
        assert reads.namespace == denied.namespace == naming.audit_namespace(dev_settings, agent.name)
        assert reads.namespace != naming.metrics_namespace(dev_settings, agent.name)


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
    assert [a.metric_name for a in agent_alarms(dev_settings, agent)] == ["ApiCalls", "AccessDenied"]
    off = dev_settings.model_copy(update={"alarms": False})
    assert agent_alarms(off, agent) == []
