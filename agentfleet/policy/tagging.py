"""Tagging policy: agent, owner, environment and managed-by on every taggable resource.

The keys and values are `agentfleet.core.naming`'s (`REQUIRED_TAGS`, `MANAGED_BY`); provider
default tags count. Advisory by default: tags drive cost reports and the audit, and a missing
`classification`/`agent` tag also makes the security policies report the secret itself.
"""

from __future__ import annotations

from typing import Iterable

from pulumi_policy import Severity

from agentfleet.core import naming
from agentfleet.policy.base import ADVISORY, Resource, resource_policy
from agentfleet.policy.layout import Layout
from agentfleet.policy.values import UNKNOWN, contains_unknown

TAGGABLE_TYPES = frozenset({
    "aws:iam/role:Role",
    "aws:iam/policy:Policy",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
    "aws:kms/key:Key",
    "aws:secretsmanager/secret:Secret",
    "aws:lambda/function:Function",
    "aws:sns/topic:Topic",
    "aws:sqs/queue:Queue",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:cloudwatch/metricAlarm:MetricAlarm",
    "aws:cloudwatch/compositeAlarm:CompositeAlarm",
    "aws:cloudwatch/eventRule:EventRule",
    "aws:cloudtrail/trail:Trail",
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketV2:BucketV2",
    "aws:scheduler/scheduleGroup:ScheduleGroup",
    "aws:ssm/parameter:Parameter",
})
"""AWS types the project creates (or a raw addition likely would) that accept tags; any other
resource whose inputs carry `tags` is checked too."""


def check_tags(r: Resource, lay: Layout) -> Iterable[str]:
    if not r.type.startswith("aws:") or (r.type not in TAGGABLE_TYPES and "tags" not in r.props):
        return
    found = r.tags()
    if found is UNKNOWN or contains_unknown(found):
        return
    tags = found if isinstance(found, dict) else {}
    fix = "tag it with agentfleet.core.naming.tags(settings, agent=..., owner=...) (environment-wide resources use agent `_shared`)"
    missing = [k for k in naming.REQUIRED_TAGS if not tags.get(k)]
    if missing:
        yield f"{r.label} lacks the required tag(s) {missing}. Fix: {fix}."
    managed = tags.get(naming.TAG_MANAGED_BY)
    if managed and managed != naming.MANAGED_BY:
        yield f"{r.label} has {naming.TAG_MANAGED_BY}={managed!r}, expected {naming.MANAGED_BY!r}. Fix: {fix}."
    env, want = tags.get(naming.TAG_ENVIRONMENT), lay.environment()
    if env and want and env != want:
        yield f"{r.label} has {naming.TAG_ENVIRONMENT}={env!r} on the {want!r} stack. Fix: {fix}."


required_tags = resource_policy(
    "required-tags",
    "Every taggable managed resource carries the agent, owner, environment and managed-by tags.",
    None, check_tags, level=ADVISORY, severity=Severity.LOW,
    remediation="Pass agentfleet.core.naming.tags(...) as `tags` (the components do).",
)

POLICIES = (required_tags,)
