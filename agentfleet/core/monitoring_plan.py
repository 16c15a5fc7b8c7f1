"""Per-agent usage signals and alarms, as plain data (the monitoring component wires them).

Why a static baseline x multiplier rather than CloudWatch anomaly detection: the seed incident
(one agent in a retry loop at 4x its normal call rate) must page within one 5-minute period.
A threshold of `multiplier x baseline` fires on the first breaching period, is reviewable in the
PR that sets it, and behaves the same on day one; anomaly detection needs ~2 weeks of training,
expresses its band in standard deviations rather than "N x normal", and slowly learns a runaway
as normal. Metric math cannot compare against a trailing window either (every metric of an
alarm must use the same period). Baselines are per environment (stack config), since prod and
dev volumes differ.

Why a fixed number of trail metric filters with a `Role` dimension: CloudWatch Logs allows at
most 100 metric filters per log group (hard quota), so one filter per agent stops at agent 51
(fewer on an organisation trail that already carries filters). Each `TrailSignal` is one filter
per environment matching every role of the environment by prefix (`<prefix>-<env>-*` on the
session issuer's role name); the role name becomes the metric's `Role` dimension, and each
agent's alarm selects its own series. The filter count is signals x `monitoringPartitions`,
independent of the fleet size.

The 1,000-values rule: CloudWatch Logs may disable a filter that extracts more than 1,000
distinct dimension values within an hour. Past that the filter's metrics stop for EVERY role it
covers, and the AccessDenied alarms (missing data = not breaching) would stay quiet without
saying why. So the design never lets one filter see more than 1,000 roles: the quota model
(`agentfleet.core.quotas`) counts, per filter, every role of the plan the filter can match
(agent roles plus rotation and trail roles, i.e. the worst hour in which all of them call AWS)
and refuses the stack past 1,000, naming the fix: `agentfleet:monitoringPartitions: N` splits
each signal into N filters by the agent name's first character ([0-9a-z] in contiguous shares),
so each sees a disjoint subset of roles; or split the environment. Metric names, namespace and
dimension are the same in every partition, so alarms do not depend on the partitioning.
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

ROLE_DIMENSION = "Role"
"""Dimension of the CloudTrail-derived metrics: the IAM role name of the calling session."""
ISSUER_NAME_FIELD = "$.userIdentity.sessionContext.sessionIssuer.userName"
"""Assumed-role sessions record their role's name here, whatever the session name: the dimension's source."""
LEADING_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"
"""Characters an agent name may start with (`model.NAME_RE`): partitions split this alphabet."""
MAX_DIMENSION_VALUES_PER_HOUR = 1000
"""CloudWatch Logs may disable a metric filter that extracts 1,000 different dimension values in
one hour (PutMetricFilter API reference). Counted per filter, over every role it can match."""
MAX_FILTER_PATTERN_CHARS = 1024
"""Longest filter pattern PutMetricFilter accepts."""


@dataclass(frozen=True)
class TrailSignal:
    """One kind of CloudTrail event counted per role: one metric filter per partition.

    Adding a signal (e.g. calls from an unexpected network) adds one filter per partition to the
    environment, never one per agent."""

    kind: str
    """Short kebab-case name: part of the filter's physical and logical names."""
    metric_name: str
    condition: str
    """Filter-pattern condition on the event (without the role match and the braces)."""


SECRET_READS = TrailSignal(
    "secret-reads", SECRET_READS_METRIC,
    '($.eventSource = "secretsmanager.amazonaws.com") && ($.eventName = "GetSecretValue")',
)
ACCESS_DENIED = TrailSignal(
    "access-denied", ACCESS_DENIED_METRIC,
    '(($.errorCode = "AccessDenied*") || ($.errorCode = "*UnauthorizedOperation"))',
)
TRAIL_SIGNALS: tuple[TrailSignal, ...] = (SECRET_READS, ACCESS_DENIED)
"""Every per-role signal read from the trail (read volume, AccessDenied)."""


@dataclass(frozen=True)
class MetricFilterSpec:
    """A CloudTrail log metric filter counting events per role (the `Role` dimension)."""

    name: str
    kind: str
    """The signal's kind plus the partition's index when partitioned (logical-name suffix)."""
    pattern: str
    namespace: str
    metric_name: str
    dimensions: dict[str, str] = field(default_factory=dict)
    """Dimension name -> JSON selector of the value (`$.…`)."""
    role_prefixes: tuple[str, ...] = ()
    """The role-name prefixes this filter matches (one per leading character, or the whole environment)."""


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


def agent_role_arn(s: StackSettings, agent: str) -> str:
    return naming.role_arn(s, naming.role_name(s, agent))


def role_name_prefix(s: StackSettings) -> str:
    """Every role of the environment (agents', rotation, trail) starts with this; agents' roles
    continue with the agent name (`naming.role_name`)."""
    return naming.role_name_prefix(s)


def partitions(s: StackSettings) -> list[str]:
    """The leading characters of agent names each partition covers (contiguous, in order)."""
    k = s.monitoring_partitions
    size, extra = divmod(len(LEADING_CHARS), k)
    out, start = [], 0
    for i in range(k):
        end = start + size + (1 if i < extra else 0)
        out.append(LEADING_CHARS[start:end])
        start = end
    return out


def partition_of(s: StackSettings, role: str) -> int | None:
    """Index of the partition whose filters see `role`'s events (None: no filter matches it)."""
    prefix = role_name_prefix(s)
    if not role.startswith(prefix) or len(role) == len(prefix):
        return None
    lead = role[len(prefix)]
    for i, chars in enumerate(partitions(s)):
        if lead in chars:
            return i
    return None


def _role_match(prefixes: tuple[str, ...]) -> str:
    terms = [f'({ISSUER_NAME_FIELD} = "{p}*")' for p in prefixes]
    return terms[0] if len(terms) == 1 else "(" + " || ".join(terms) + ")"


def trail_filter(s: StackSettings, signal: TrailSignal, partition: int | None = None) -> MetricFilterSpec:
    """The filter counting `signal` per role over the whole environment, or over one partition.

    The role match is a prefix wildcard on the session issuer's role name, so one filter serves
    every agent (present and future) and the metric's `Role` dimension tells them apart."""
    prefix = role_name_prefix(s)
    if partition is None:
        prefixes: tuple[str, ...] = (prefix,)
        kind = signal.kind
    else:
        prefixes = tuple(f"{prefix}{c}" for c in partitions(s)[partition])
        kind = f"{signal.kind}-{partition}"
    return MetricFilterSpec(
        name=naming.metric_filter_name(s, kind), kind=kind,
        pattern=f"{{ {signal.condition} && {_role_match(prefixes)} }}",
        namespace=naming.audit_namespace(s), metric_name=signal.metric_name,
        dimensions={ROLE_DIMENSION: ISSUER_NAME_FIELD}, role_prefixes=prefixes,
    )


def trail_filters(s: StackSettings) -> list[MetricFilterSpec]:
    """Every metric filter the environment puts on the trail's log group: a fixed number
    (signals x `monitoringPartitions`), whatever the fleet's size."""
    if not s.alarms:
        return []
    if s.monitoring_partitions == 1:
        return [trail_filter(s, sig) for sig in TRAIL_SIGNALS]
    return [trail_filter(s, sig, p) for sig in TRAIL_SIGNALS for p in range(s.monitoring_partitions)]


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
        namespace=naming.audit_namespace(s), metric_name=ACCESS_DENIED_METRIC,
        threshold=float(s.access_denied_threshold), comparison="GreaterThanOrEqualToThreshold",
        dimensions={ROLE_DIMENSION: naming.role_name(s, agent)},
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
