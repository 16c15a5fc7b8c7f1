"""Per-environment alert plumbing and per-agent usage alarms (thin: specs come from builders).

`FleetAlerts` owns the environment's SNS topic (with the configured subscriptions), the
CloudTrail -> CloudWatch Logs pipeline (or reuses an existing trail's log group) and the trail's
metric filters: a fixed number per environment (`monitoring_plan.trail_filters`), each counting
its events per role in the `Role` dimension, so agent 1,001 adds no filter.
`AgentMonitoring` turns one agent's `AlarmSpec`s (on its `Role` series) into alarms; it takes
only plain values, so pausing or unpausing an agent never touches it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import pulumi
import pulumi_aws as aws

from agentfleet.core import iam_documents as iam
from agentfleet.core import naming
from agentfleet.core.monitoring_plan import (
    AlarmSpec,
    MetricFilterSpec,
    agent_alarms,
    alert_topic_policy,
    trail_bucket_policy,
    trail_filters,
    trail_logs_policy,
    trail_logs_trust,
)
from agentfleet.core.monitoring_plan import odd_network_alarm, odd_network_filter
from agentfleet.components.environment import EnvironmentReference
from agentfleet.core.settings import StackSettings
from agentfleet.core.sharding import ENVIRONMENT_OUTPUTS

if TYPE_CHECKING:
    from agentfleet.components.fleet import AgentContext, AgentFleet

TRAIL_LOG_RETENTION_DAYS = 365
ALERTS_COMPONENT = "alerts"


class FleetAlerts(pulumi.ComponentResource):
    """The environment's alert topic and the CloudTrail log group the agents' filters read."""

    topic_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]

    def __init__(
        self, name: str, settings: StackSettings, provider: aws.Provider, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agentfleet:index:FleetAlerts", name, None, opts)
        self._provider = provider
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        tags = naming.tags(settings)
        topic = aws.sns.Topic(f"{name}-topic", name=naming.alarm_topic_name(settings), tags=tags, opts=child)
        aws.sns.TopicPolicy(
            f"{name}-topic-policy", arn=topic.arn, policy=iam.to_json(alert_topic_policy(settings)), opts=child
        )
        for i, sub in enumerate(settings.alarm_subscriptions):
            aws.sns.TopicSubscription(
                f"{name}-sub-{sub['protocol']}-{i}", topic=topic.arn, protocol=sub["protocol"],
                endpoint=sub["endpoint"], opts=child,
            )
        self.topic_arn = topic.arn
        if settings.cloudtrail_log_group:
            self.log_group_name = pulumi.Output.from_input(settings.cloudtrail_log_group)
        elif settings.alarms:
            self.log_group_name = self._trail(name, settings, tags, child)
        else:  # `agentfleet:alarms: false`: no trail, bucket or filters; the topic carries reminders only
            self.log_group_name = pulumi.Output.from_input("")
        if settings.alarms:
            for spec in trail_filters(settings):
                add_filter(spec, self.log_group_name, f"{name}-filter-{spec.kind}", child)
        self.register_outputs({"topic_arn": self.topic_arn, "log_group_name": self.log_group_name})

    def _trail(
        self, name: str, s: StackSettings, tags: dict[str, str], child: pulumi.ResourceOptions
    ) -> pulumi.Output[str]:
        """A management-events trail delivered to CloudWatch Logs, where the metric filters run."""
        group = aws.cloudwatch.LogGroup(
            f"{name}-trail-logs", name=naming.trail_log_group_name(s),
            retention_in_days=TRAIL_LOG_RETENTION_DAYS, tags=tags, opts=child,
        )
        role = aws.iam.Role(
            f"{name}-trail-logs-role", name=naming.trail_logs_role_name(s),
            assume_role_policy=iam.to_json(trail_logs_trust(s)), tags=tags, opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-trail-logs-policy", role=role.id, policy=iam.to_json(trail_logs_policy(s)), opts=child
        )
        bucket = aws.s3.Bucket(
            f"{name}-trail-bucket", bucket=naming.trail_bucket_name(s), force_destroy=False, tags=tags,
            opts=pulumi.ResourceOptions(parent=self, provider=self._provider, protect=s.protect),
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-trail-bucket-pab", bucket=bucket.id, block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True, opts=child,
        )
        policy = aws.s3.BucketPolicy(
            f"{name}-trail-bucket-policy", bucket=bucket.id, policy=iam.to_json(trail_bucket_policy(s)), opts=child
        )
        aws.cloudtrail.Trail(
            f"{name}-trail", name=naming.trail_name(s), s3_bucket_name=bucket.id,
            cloud_watch_logs_group_arn=group.arn.apply(lambda arn: f"{arn}:*"),
            cloud_watch_logs_role_arn=role.arn, enable_log_file_validation=True,
            include_global_service_events=True, is_multi_region_trail=False, tags=tags,
            opts=pulumi.ResourceOptions(parent=self, provider=self._provider, depends_on=[policy]),
        )
        return group.name


class AgentMonitoring(pulumi.ComponentResource):
    """One agent's alarms (usage spike, AccessDenied on its `Role` series), wired to the environment topic."""

    alarm_arns: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        *,
        topic_arn: pulumi.Input[str],
        alarms: Sequence[AlarmSpec],
        tags: dict[str, str],
        provider: aws.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("agentfleet:index:AgentMonitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        made = [add_alarm(a, topic_arn, tags, child) for a in alarms]
        self.alarm_arns = pulumi.Output.all(*[m.arn for m in made]).apply(list)
        self.register_outputs({"alarm_arns": self.alarm_arns})


def add_filter(
    spec: MetricFilterSpec, log_group_name: pulumi.Input[str], logical: str, opts: pulumi.ResourceOptions
) -> aws.cloudwatch.LogMetricFilter:
    """One place turns a MetricFilterSpec into a LogMetricFilter. CloudWatch refuses a default
    value on a filter with dimensions, so only dimensionless filters get one."""
    transformation: aws.cloudwatch.LogMetricFilterMetricTransformationArgsDict = {
        "name": spec.metric_name, "namespace": spec.namespace, "value": "1",
    }
    if spec.dimensions:
        transformation["dimensions"] = dict(spec.dimensions)
    else:
        transformation["default_value"] = "0"
    return aws.cloudwatch.LogMetricFilter(
        logical, name=spec.name, log_group_name=log_group_name, pattern=spec.pattern,
        metric_transformation=transformation, opts=opts,
    )


def add_alarm(
    spec: AlarmSpec, topic_arn: pulumi.Input[str], tags: dict[str, str], opts: pulumi.ResourceOptions
) -> aws.cloudwatch.MetricAlarm:
    """One place turns an AlarmSpec into a MetricAlarm (rotation alarms reuse it)."""
    return aws.cloudwatch.MetricAlarm(
        f"{spec.name}-alarm", name=spec.name, alarm_description=spec.description,
        namespace=spec.namespace, metric_name=spec.metric_name, statistic=spec.statistic,
        period=spec.period, evaluation_periods=spec.evaluation_periods,
        datapoints_to_alarm=spec.datapoints_to_alarm, threshold=spec.threshold,
        comparison_operator=spec.comparison, treat_missing_data=spec.treat_missing_data,
        dimensions=spec.dimensions or None, alarm_actions=[topic_arn], ok_actions=[topic_arn],
        tags=tags, opts=opts,
    )


# ---- AgentFleet extension (agentfleet.components.fleet.DEFAULT_EXTENSIONS) ----


def alerts_for(fleet: "AgentFleet") -> "FleetAlerts | EnvironmentReference":
    """The environment's one FleetAlerts, created on first use (rotation reminders reuse it); on an
    agent shard, the environment stack's (its topic and log group, read through the reference)."""
    if isinstance(fleet.environment, EnvironmentReference):
        return fleet.environment
    existing = fleet.extras.get(ALERTS_COMPONENT)
    if not isinstance(existing, FleetAlerts):
        existing = FleetAlerts(
            fleet.child(ALERTS_COMPONENT), fleet.settings, fleet.providers.aws, opts=pulumi.ResourceOptions(parent=fleet)
        )
        fleet.extras[ALERTS_COMPONENT] = existing
        fleet.extra_outputs["alertTopicArn"] = existing.topic_arn
        if fleet.settings.shard == "environment":
            fleet.extra_outputs[ENVIRONMENT_OUTPUTS["log_group_name"]] = existing.log_group_name
    return existing


ODD_NETWORK = "odd-network-filter"


def extend_environment(fleet: "AgentFleet") -> None:
    """The alert topic, and the environment's one odd-network filter (when anything is expected).
    An agent shard decides the same from the whole fleet (its agents' alarms watch the filter) but
    declares nothing: the environment stack owns the filter."""
    s = fleet.settings
    if not s.alarms:  # nothing to watch; rotation reminders create the topic when they need it
        fleet.extras[ODD_NETWORK] = None
        return
    alerts = alerts_for(fleet)
    spec = odd_network_filter(s, fleet.model)
    fleet.extras[ODD_NETWORK] = spec
    if spec is not None and isinstance(alerts, FleetAlerts):
        add_filter(spec, alerts.log_group_name, fleet.child(f"{spec.kind}-filter"),
                   pulumi.ResourceOptions(parent=alerts, provider=fleet.providers.aws))


def extend_agent(ctx: "AgentContext") -> None:
    """Per-agent alarms, parented to the agent; unchanged by pause/unpause. The filters feeding
    them are the environment's (FleetAlerts): no per-agent filter."""
    s = ctx.settings
    if not s.alarms:
        return
    alerts = alerts_for(ctx.fleet)
    AgentMonitoring(
        naming.logical_agent(ctx.name, "monitoring"),
        topic_arn=alerts.topic_arn,
        alarms=agent_alarms(s, ctx.agent) + ([odd_network_alarm(s, ctx.agent)] if ctx.fleet.extras.get(ODD_NETWORK) else []),
        tags=naming.tags(s, agent=ctx.agent.name, owner=ctx.agent.owner), provider=ctx.providers.aws,
        opts=pulumi.ResourceOptions(parent=ctx.access),
    )
