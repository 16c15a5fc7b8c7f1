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

import ipaddress
from dataclasses import dataclass, field

from agentfleet.core import iam_documents as iam
from agentfleet.core import naming
from agentfleet.core import reuse
from agentfleet.core.model import Fleet, ResolvedAgent
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
    pattern: str
    namespace: str
    metric_name: str
    dimensions: dict[str, str] = field(default_factory=dict)
    """Dimension name -> JSON selector of the value (`$.…`)."""
    kind: str = ""
    """The signal's kind plus the partition's index when partitioned (logical-name suffix)."""
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
    return list(reuse.by_value("agent alarms", (s,), (agent,), lambda: [usage_alarm(s, agent.name), access_denied_alarm(s, agent.name)]))


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


# ---- odd-network reads: one filter per environment, the role as a dimension (issue 15) ----
#
# A CloudWatch metric filter cannot look anything up, so the filter compares each credential read
# with the environment's EXPECTED SET: every endpoint and IPv4 range an agent declares under
# `network:`, plus `agentfleet:expectedNetworks` (the sources reviewed from what the trail has seen,
# for agents without a scope: docs/operations.md#odd-network-reads). A read by any role of the
# environment from outside that set counts under `Role=<role name>`, and each agent's alarm watches
# its own role. Reads an agent makes from inside ANOTHER agent's network are inside the set; the IAM
# deny refuses them and the AccessDenied signal reports them.

ODD_NETWORK_METRIC = "OddNetworkReads"
ODD_NETWORK_KIND = "odd-network-reads"
ROLE_SELECTOR = ISSUER_NAME_FIELD
CREDENTIAL_READ_EVENTS = ("GetSecretValue", "GetParameter", "GetParameters")
FILTER_PATTERN_MAX = MAX_FILTER_PATTERN_CHARS
WILDCARDS_PER_RANGE_MAX = 16
"""A range that is not octet-aligned is split into octet-aligned parts up to this many; a larger
one is widened in the alarm (never in IAM) to the enclosing octet boundary."""


class FilterTooLong(ValueError):
    pass


@dataclass(frozen=True)
class ExpectedNetworks:
    """What the odd-network filter treats as a normal source of a credential read."""

    vpc_endpoints: tuple[str, ...]
    ip_patterns: tuple[str, ...]
    """`sourceIPAddress` values: exact addresses or octet prefixes with `*` (`203.0.113.*`)."""
    notes: tuple[str, ...]
    """Where the alarm is coarser than IAM (widened ranges, IPv6 ranges it cannot express)."""

    @property
    def empty(self) -> bool:
        return not (self.vpc_endpoints or self.ip_patterns)


def ipv4_patterns(cidr: str) -> tuple[list[str], str | None]:
    """Filter-pattern strings matching exactly the addresses of `cidr` (or a note why wider)."""
    net = ipaddress.IPv4Network(cidr)

    def text(n: ipaddress.IPv4Network) -> str:
        octets = str(n.network_address).split(".")
        return ".".join(octets) if n.prefixlen == 32 else ".".join(octets[: n.prefixlen // 8]) + ".*"

    if net.prefixlen % 8 == 0:
        return [text(net)], None
    up = (net.prefixlen // 8 + 1) * 8
    parts = list(net.subnets(new_prefix=up))
    if len(parts) <= WILDCARDS_PER_RANGE_MAX or net.prefixlen < 8:
        return [text(p) for p in parts], None
    down = net.supernet(new_prefix=(net.prefixlen // 8) * 8)
    return [text(down)], f"range {cidr} is widened to {down} in the odd-network alarm (IAM enforces {cidr} exactly)"


def expected_networks(s: StackSettings, fleet: Fleet) -> ExpectedNetworks:
    endpoints: set[str] = set()
    ranges: set[str] = set()
    notes: list[str] = []
    for a in fleet.agents:
        if a.network is not None:
            endpoints.update(a.network.vpc_endpoints)
            ranges.update(a.network.source_cidrs)
    for item in s.expected_networks:
        (endpoints if item.startswith("vpce-") else ranges).add(item)
    patterns: set[str] = set()
    for cidr in sorted(ranges):
        if ipaddress.ip_network(cidr).version == 6:
            notes.append(f"IPv6 range {cidr}: the odd-network alarm cannot express it; reads from it alarm (IAM admits them)")
            continue
        found, note = ipv4_patterns(cidr)
        patterns.update(found)
        if note:
            notes.append(note)
    return ExpectedNetworks(tuple(sorted(endpoints)), tuple(sorted(patterns)), tuple(notes))


def odd_network_filter(s: StackSettings, fleet: Fleet) -> MetricFilterSpec | None:
    """The environment's one odd-network filter; None when nothing is expected yet (then every read
    would alarm: declare scopes or configure `expectedNetworks` first)."""
    expected = expected_networks(s, fleet)
    if expected.empty:
        return None
    reads = " || ".join(f'$.eventName = "{e}"' for e in CREDENTIAL_READ_EVENTS)
    clauses = [f"({reads})", f'({ROLE_SELECTOR} = "{naming.role_name_prefix(s)}*")']
    if expected.vpc_endpoints:
        others = " && ".join(f'$.vpcEndpointId != "{e}"' for e in expected.vpc_endpoints)
        clauses.append(f"($.vpcEndpointId NOT EXISTS || ({others}))")
    if expected.ip_patterns:
        clauses.append("(" + " && ".join(f'$.sourceIPAddress != "{p}"' for p in expected.ip_patterns) + ")")
    clauses.append('($.sourceIPAddress != "*.amazonaws.com")')  # a service calling on the role's behalf
    pattern = "{ " + " && ".join(clauses) + " }"
    if len(pattern) > FILTER_PATTERN_MAX:
        raise FilterTooLong(
            f"the odd-network filter pattern would be {len(pattern)} characters (CloudWatch allows"
            f" {FILTER_PATTERN_MAX}): {len(expected.vpc_endpoints)} endpoints and {len(expected.ip_patterns)}"
            " address patterns; share endpoints between agents, merge ranges, or align them on octets"
        )
    return MetricFilterSpec(
        naming.metric_filter_name(s, ODD_NETWORK_KIND), pattern, naming.audit_namespace(s), ODD_NETWORK_METRIC,
        dimensions={ROLE_DIMENSION: ROLE_SELECTOR}, kind=ODD_NETWORK_KIND, role_prefixes=(role_name_prefix(s),),
    )


def odd_network_alarm(s: StackSettings, agent: ResolvedAgent) -> AlarmSpec:
    scope = f"its network ({agent.network.words()})" if agent.network else "the sources the stack expects"
    return AlarmSpec(
        name=naming.alarm_name(s, agent.name, "odd-network"),
        description=(
            f"A credential of agent {agent.name} was read (or a read was attempted) from outside {scope}."
            " Check CloudTrail for its role (sourceIPAddress, vpcEndpointId): a leaked session is used"
            f" elsewhere, or a new legitimate source must be declared. To cut it off: `paused: true` for"
            f" {agent.name} and `pulumi up`. Runbook: docs/operations.md#odd-network-reads"
        ),
        namespace=naming.audit_namespace(s), metric_name=ODD_NETWORK_METRIC, threshold=1.0,
        comparison="GreaterThanOrEqualToThreshold",
        dimensions={ROLE_DIMENSION: naming.role_name(s, agent.name)},
    )


def odd_network_alarms(s: StackSettings, fleet: Fleet) -> list[AlarmSpec]:
    """One alarm per agent, only where the filter exists (and alarms are on)."""
    if not s.alarms or odd_network_filter(s, fleet) is None:
        return []
    return [odd_network_alarm(s, a) for a in sorted(fleet.agents, key=lambda a: a.name)]


def learn_sources_query(s: StackSettings) -> str:
    """CloudWatch Logs Insights query listing where the environment's credential reads came from:
    run it over the trail's log group (e.g. 30 days), review, and put the legitimate sources into
    `agentfleet:expectedNetworks` (or into the agents' `network:` scopes)."""
    events = ", ".join(f'"{e}"' for e in CREDENTIAL_READ_EVENTS)
    return (
        "fields userIdentity.sessionContext.sessionIssuer.userName as role, vpcEndpointId, sourceIPAddress"
        f" | filter eventName in [{events}] and role like /^{naming.role_name_prefix(s)}/"
        " | stats count(*) as reads, earliest(@timestamp) as first, latest(@timestamp) as last"
        " by role, vpcEndpointId, sourceIPAddress | sort reads desc"
    )
