"""Per-agent usage signals and alarms, as plain data (the monitoring component wires them).

Why a static baseline x multiplier rather than CloudWatch anomaly detection: the seed incident
(one agent in a retry loop at 4x its normal call rate) must page within one 5-minute period.
A threshold of `multiplier x baseline` fires on the first breaching period, is reviewable in the
PR that sets it, and behaves the same on day one; anomaly detection needs ~2 weeks of training,
expresses its band in standard deviations rather than "N x normal", and slowly learns a runaway
as normal. Metric math cannot compare against a trailing window either (every metric of an
alarm must use the same period). Baselines are per environment (stack config), since prod and
dev volumes differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agentfleet.core import iam_documents as iam
from agentfleet.core import naming
from agentfleet.core.model import ResolvedAgent
from agentfleet.core.settings import StackSettings

PERIOD_SECONDS = 300
API_CALLS_METRIC = "ApiCalls"
SECRET_READS_METRIC = "SecretReads"
ACCESS_DENIED_METRIC = "AccessDenied"


@dataclass(frozen=True)
class MetricFilterSpec:
    """A CloudTrail log metric filter counting one agent's events."""

    name: str
    pattern: str
    namespace: str
    metric_name: str


@dataclass(frozen=True)
class AlarmSpec:
    name: str
    description: str
    namespace: str
    metric_name: str
    threshold: float
    comparison: str = "GreaterThanThreshold"
    statistic: str = "Sum"
    period: int = PERIOD_SECONDS
    evaluation_periods: int = 1
    datapoints_to_alarm: int = 1
    treat_missing_data: str = "notBreaching"
    dimensions: dict[str, str] = field(default_factory=dict)


def _issuer(role_arn: str) -> str:
    # Assumed-role sessions record the role in sessionIssuer.arn, whatever the session name.
    return f'($.userIdentity.sessionContext.sessionIssuer.arn = "{role_arn}")'


def agent_role_arn(s: StackSettings, agent: str) -> str:
    return naming.role_arn(s, naming.role_name(s, agent))


def secret_reads_filter(s: StackSettings, agent: str) -> MetricFilterSpec:
    pattern = (
        '{ ($.eventSource = "secretsmanager.amazonaws.com") && ($.eventName = "GetSecretValue") && '
        f"{_issuer(agent_role_arn(s, agent))} }}"
    )
    return MetricFilterSpec(f"{agent}-secret-reads", pattern, naming.audit_namespace(s, agent), SECRET_READS_METRIC)


def access_denied_filter(s: StackSettings, agent: str) -> MetricFilterSpec:
    pattern = (
        '{ (($.errorCode = "AccessDenied*") || ($.errorCode = "*UnauthorizedOperation")) && '
        f"{_issuer(agent_role_arn(s, agent))} }}"
    )
    return MetricFilterSpec(f"{agent}-access-denied", pattern, naming.audit_namespace(s, agent), ACCESS_DENIED_METRIC)


def metric_filters(s: StackSettings, agent: ResolvedAgent) -> list[MetricFilterSpec]:
    return [secret_reads_filter(s, agent.name), access_denied_filter(s, agent.name)]


def usage_baseline(s: StackSettings, agent: str) -> int:
    return s.usage_baselines.get(agent, s.usage_baseline_per_5min)


def usage_alarm(s: StackSettings, agent: str) -> AlarmSpec:
    base = usage_baseline(s, agent)
    threshold = s.usage_alarm_multiplier * base
    return AlarmSpec(
        name=naming.alarm_name(s, agent, "usage-spike"),
        description=(
            f"Agent {agent} made more than {s.usage_alarm_multiplier:g}x its normal {base} external API"
            f" calls in 5 minutes. Runbook: find the loop in its logs; to stop it alone set"
            f" `paused: true` for {agent} in agents.yaml and run `pulumi up`."
        ),
        namespace=naming.metrics_namespace(s, agent), metric_name=API_CALLS_METRIC, threshold=threshold,
    )


def access_denied_alarm(s: StackSettings, agent: str) -> AlarmSpec:
    return AlarmSpec(
        name=naming.alarm_name(s, agent, "access-denied"),
        description=(
            f"Agent {agent} was denied {s.access_denied_threshold} or more AWS calls in 5 minutes:"
            " it is reaching for something it may not read. Check CloudTrail for its role."
        ),
        namespace=naming.audit_namespace(s, agent), metric_name=ACCESS_DENIED_METRIC,
        threshold=float(s.access_denied_threshold), comparison="GreaterThanOrEqualToThreshold",
    )


def rotation_errors_alarm(s: StackSettings, owner: str, function_name: str) -> AlarmSpec:
    """`owner` is the agent (per-agent isolation) or the strategy (shared functions)."""
    return AlarmSpec(
        name=naming.alarm_name(s, owner, "rotation-errors"),
        description=(
            f"Rotation function {function_name} failed. AWSCURRENT still holds the working key;"
            " read the function's logs (event=step_failed / revoke_failed) and retry the rotation."
        ),
        namespace="AWS/Lambda", metric_name="Errors", threshold=1.0,
        comparison="GreaterThanOrEqualToThreshold", dimensions={"FunctionName": function_name},
    )


def agent_alarms(s: StackSettings, agent: ResolvedAgent) -> list[AlarmSpec]:
    """Usage spike and AccessDenied alarms; rotation and overdue alarms come with rotation."""
    if not s.alarms:
        return []
    return [usage_alarm(s, agent.name), access_denied_alarm(s, agent.name)]


ALERT_PUBLISHERS = ("cloudwatch.amazonaws.com", "events.amazonaws.com", "scheduler.amazonaws.com")


def alert_topic_policy(s: StackSettings) -> dict[str, object]:
    topic = naming.alarm_topic_arn(s)
    return iam.Document((iam.sns_publish_by_services("AlertPublishers", topic, ALERT_PUBLISHERS, s.aws_account_id),)).to_dict()


def trail_bucket_policy(s: StackSettings) -> dict[str, object]:
    bucket_arn = f"arn:{s.partition}:s3:::{naming.trail_bucket_name(s)}"
    return iam.Document(iam.cloudtrail_bucket_statements(bucket_arn, s.aws_account_id, naming.trail_arn(s))).to_dict()


def trail_logs_trust(s: StackSettings) -> dict[str, object]:
    return iam.Document((iam.assume_by_service_in_account("CloudTrail", "cloudtrail.amazonaws.com", s.aws_account_id),)).to_dict()


def trail_logs_policy(s: StackSettings) -> dict[str, object]:
    arn = naming.log_group_arn(s, naming.trail_log_group_name(s))
    return iam.Document((iam.logs_write("DeliverTrailToLogs", arn),)).to_dict()
