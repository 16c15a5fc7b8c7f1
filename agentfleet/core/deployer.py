"""The least-privilege IAM policy of whoever runs `pulumi up` for one stack.

Per resource type the program declares: the control-plane actions the AWS provider calls to
create, read, update and delete it, on the ARNs the stack's names can take (every name comes
from `naming`, so the patterns are `<prefix>-<env>-*` and friends, never `*` where AWS allows
an ARN). Actions AWS authorizes only on `*` (the `Describe*`/`List*` calls, `kms:CreateKey`,
`sts:GetCallerIdentity`) are granted on `*`, `kms:CreateKey` only with the stack's tags.

A resource type without an entry is an error (`DeployerPolicyError`): a new resource must say
what it needs to be deployed, and a test runs the program to check every declared type is here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from agentfleet.core import naming
from agentfleet.core.iam_documents import Document, Statement
from agentfleet.core.settings import StackSettings


class DeployerPolicyError(ValueError):
    """A declared resource type has no deployer grant."""


@dataclass(frozen=True)
class Grant:
    actions: tuple[str, ...]
    resources: Callable[[StackSettings], tuple[str, ...]]
    condition: Callable[[StackSettings], dict[str, dict[str, str]]] | None = None
    also: tuple["Grant", ...] = ()
    """Further grants the type needs on other resources or under another condition."""


def _p(s: StackSettings) -> str:
    return f"{s.secret_prefix}-{s.environment}"


def _arn(s: StackSettings, service: str, rest: str, *, region: bool = True, account: bool = True) -> str:
    return f"arn:{s.partition}:{service}:{s.aws_region if region else ''}:{s.aws_account_id if account else ''}:{rest}"


def roles(s: StackSettings) -> tuple[str, ...]:
    return (f"arn:{s.partition}:iam::{s.aws_account_id}:role/{_p(s)}-*",)


def secrets(s: StackSettings) -> tuple[str, ...]:
    return (_arn(s, "secretsmanager", f"secret:{naming.secret_env_prefix(s)}*"),)


def parameters(s: StackSettings) -> tuple[str, ...]:
    """The environment's SSM parameters (`naming.ssm_parameter_name`: `/<prefix>/<env>/...`)."""
    return (_arn(s, "ssm", f"parameter/{s.secret_prefix}/{s.environment}/*"),)


def ssm_key_use(s: StackSettings) -> dict[str, dict[str, str]]:
    """The environment key, only through Parameter Store (a SecureString is encrypted for the caller)."""
    return {"StringEquals": {**own_keys(s)["StringEquals"], "kms:ViaService": f"ssm.{s.aws_region}.amazonaws.com"}}


def functions(s: StackSettings) -> tuple[str, ...]:
    return (_arn(s, "lambda", f"function:{_p(s)}-*"),)


def log_groups(s: StackSettings) -> tuple[str, ...]:
    return (
        _arn(s, "logs", f"log-group:/aws/lambda/{_p(s)}-*"),
        _arn(s, "logs", f"log-group:/aws/lambda/{_p(s)}-*:*"),
        _arn(s, "logs", f"log-group:{naming.trail_log_group_name(s)}"),
        _arn(s, "logs", f"log-group:{naming.trail_log_group_name(s)}:*"),
    )


def stack_tags(s: StackSettings) -> dict[str, dict[str, str]]:
    return {"StringEquals": {f"aws:RequestTag/{naming.TAG_MANAGED_BY}": naming.MANAGED_BY,
                             f"aws:RequestTag/{naming.TAG_ENVIRONMENT}": s.environment}}


def own_keys(s: StackSettings) -> dict[str, dict[str, str]]:
    return {"StringEquals": {f"aws:ResourceTag/{naming.TAG_MANAGED_BY}": naming.MANAGED_BY,
                             f"aws:ResourceTag/{naming.TAG_ENVIRONMENT}": s.environment}}


ROLE_ACTIONS = (
    "iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:UpdateRole", "iam:UpdateAssumeRolePolicy",
    "iam:TagRole", "iam:UntagRole", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
)

GRANTS: dict[str, Grant] = {
    "aws:iam/role:Role": Grant(ROLE_ACTIONS, roles),
    "aws:iam/rolePolicy:RolePolicy": Grant(("iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"), roles),
    "aws:secretsmanager/secret:Secret": Grant((
        "secretsmanager:CreateSecret", "secretsmanager:DeleteSecret", "secretsmanager:DescribeSecret",
        "secretsmanager:UpdateSecret", "secretsmanager:TagResource", "secretsmanager:UntagResource",
        "secretsmanager:GetResourcePolicy",
    ), secrets),
    "aws:secretsmanager/secretPolicy:SecretPolicy": Grant((
        "secretsmanager:PutResourcePolicy", "secretsmanager:GetResourcePolicy", "secretsmanager:DeleteResourcePolicy",
        "secretsmanager:DescribeSecret",
    ), secrets),
    # The first value of a `generated` credential. The provider reads the version back on refresh
    # (GetSecretValue): the one read the deployer has, on the environment's secrets only.
    "aws:secretsmanager/secretVersion:SecretVersion": Grant((
        "secretsmanager:PutSecretValue", "secretsmanager:GetSecretValue", "secretsmanager:UpdateSecretVersionStage",
        "secretsmanager:DescribeSecret",
    ), secrets),
    "aws:secretsmanager/secretRotation:SecretRotation": Grant((
        "secretsmanager:RotateSecret", "secretsmanager:CancelRotateSecret", "secretsmanager:DescribeSecret",
    ), secrets),
    # A credential's SecureString parameter (issue 15). The program writes only the non-secret
    # marker (write-only input); the provider reads the parameter back with decryption on refresh.
    "aws:ssm/parameter:Parameter": Grant((
        "ssm:PutParameter", "ssm:GetParameter", "ssm:GetParameters", "ssm:DeleteParameter",
        "ssm:AddTagsToResource", "ssm:RemoveTagsFromResource", "ssm:ListTagsForResource",
    ), parameters, also=(Grant(("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"),
                                lambda s: (_arn(s, "kms", "key/*"),), ssm_key_use),)),
    "aws:kms/key:Key": Grant((
        "kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:GetKeyRotationStatus", "kms:EnableKeyRotation",
        "kms:ListResourceTags", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion",
        "kms:UpdateKeyDescription",
    ), lambda s: (_arn(s, "kms", "key/*"),), own_keys),
    "aws:kms/alias:Alias": Grant(("kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"), lambda s: (
        _arn(s, "kms", naming.kms_alias(s)), _arn(s, "kms", "key/*"))),
    "aws:lambda/function:Function": Grant((
        "lambda:CreateFunction", "lambda:DeleteFunction", "lambda:GetFunction", "lambda:GetFunctionConfiguration",
        "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration", "lambda:ListVersionsByFunction",
        "lambda:GetFunctionCodeSigningConfig", "lambda:TagResource", "lambda:UntagResource", "lambda:ListTags",
    ), functions),
    "aws:lambda/permission:Permission": Grant(("lambda:AddPermission", "lambda:RemovePermission", "lambda:GetPolicy"), functions),
    "aws:cloudwatch/logGroup:LogGroup": Grant((
        "logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy",
        "logs:TagResource", "logs:UntagResource", "logs:ListTagsForResource", "logs:TagLogGroup",
    ), log_groups),
    "aws:cloudwatch/logMetricFilter:LogMetricFilter": Grant(("logs:PutMetricFilter", "logs:DeleteMetricFilter"), log_groups),
    "aws:cloudwatch/metricAlarm:MetricAlarm": Grant((
        "cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:TagResource", "cloudwatch:UntagResource",
        "cloudwatch:ListTagsForResource",
    ), lambda s: (_arn(s, "cloudwatch", f"alarm:{_p(s)}-*"),)),
    "aws:scheduler/schedule:Schedule": Grant((
        "scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule", "scheduler:GetSchedule",
    ), lambda s: (_arn(s, "scheduler", f"schedule/{naming.reminder_schedule_group_name(s)}/*"),)),
    "aws:scheduler/scheduleGroup:ScheduleGroup": Grant((
        "scheduler:CreateScheduleGroup", "scheduler:DeleteScheduleGroup", "scheduler:GetScheduleGroup",
        "scheduler:TagResource", "scheduler:UntagResource", "scheduler:ListTagsForResource",
    ), lambda s: (_arn(s, "scheduler", f"schedule-group/{naming.reminder_schedule_group_name(s)}"),)),
    "aws:sns/topic:Topic": Grant((
        "sns:CreateTopic", "sns:DeleteTopic", "sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:TagResource",
        "sns:UntagResource", "sns:ListTagsForResource",
    ), lambda s: (naming.alarm_topic_arn(s),)),
    "aws:sns/topicPolicy:TopicPolicy": Grant(("sns:SetTopicAttributes", "sns:GetTopicAttributes"),
                                             lambda s: (naming.alarm_topic_arn(s),)),
    "aws:sns/topicSubscription:TopicSubscription": Grant((
        "sns:Subscribe", "sns:Unsubscribe", "sns:GetSubscriptionAttributes", "sns:SetSubscriptionAttributes",
    ), lambda s: (naming.alarm_topic_arn(s), f"{naming.alarm_topic_arn(s)}:*")),
    "aws:s3/bucket:Bucket": Grant((
        "s3:CreateBucket", "s3:DeleteBucket", "s3:ListBucket", "s3:GetBucket*", "s3:PutBucketTagging",
        "s3:GetAccelerateConfiguration", "s3:GetLifecycleConfiguration", "s3:GetReplicationConfiguration",
        "s3:GetEncryptionConfiguration",
    ), lambda s: (f"arn:{s.partition}:s3:::{naming.trail_bucket_name(s)}",)),
    "aws:s3/bucketPolicy:BucketPolicy": Grant(("s3:PutBucketPolicy", "s3:GetBucketPolicy", "s3:DeleteBucketPolicy"),
                                              lambda s: (f"arn:{s.partition}:s3:::{naming.trail_bucket_name(s)}",)),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": Grant(
        ("s3:PutBucketPublicAccessBlock", "s3:GetBucketPublicAccessBlock"),
        lambda s: (f"arn:{s.partition}:s3:::{naming.trail_bucket_name(s)}",)),
    "aws:cloudtrail/trail:Trail": Grant((
        "cloudtrail:CreateTrail", "cloudtrail:DeleteTrail", "cloudtrail:UpdateTrail", "cloudtrail:GetTrail",
        "cloudtrail:GetTrailStatus", "cloudtrail:StartLogging", "cloudtrail:StopLogging",
        "cloudtrail:PutEventSelectors", "cloudtrail:GetEventSelectors", "cloudtrail:AddTags",
        "cloudtrail:RemoveTags", "cloudtrail:ListTags",
    ), lambda s: (naming.trail_arn(s),)),
    # Runtimes (docs/runtimes.md): the OIDC providers agents' trusts name, EKS Pod Identity
    # associations, and the account's outbound identity federation (an account-level switch).
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": Grant((
        "iam:CreateOpenIDConnectProvider", "iam:DeleteOpenIDConnectProvider", "iam:GetOpenIDConnectProvider",
        "iam:TagOpenIDConnectProvider", "iam:UntagOpenIDConnectProvider", "iam:AddClientIDToOpenIDConnectProvider",
        "iam:RemoveClientIDFromOpenIDConnectProvider", "iam:UpdateOpenIDConnectProviderThumbprint",
    ), lambda s: (f"arn:{s.partition}:iam::{s.aws_account_id}:oidc-provider/*",)),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": Grant((
        "eks:CreatePodIdentityAssociation", "eks:DescribePodIdentityAssociation", "eks:UpdatePodIdentityAssociation",
        "eks:DeletePodIdentityAssociation", "eks:TagResource", "eks:UntagResource", "eks:ListTagsForResource",
        "iam:GetRole",
    ), lambda s: (_arn(s, "eks", "cluster/*"), _arn(s, "eks", "podidentityassociation/*/*"), *roles(s))),
    "aws:iam/outboundWebIdentityFederation:OutboundWebIdentityFederation": Grant((
        "iam:EnableOutboundWebIdentityFederation", "iam:DisableOutboundWebIdentityFederation",
        "iam:GetOutboundWebIdentityFederationInfo",
    ), lambda s: ("*",)),
}

# Read-only calls the provider makes that AWS authorizes only on `*`.
LIST_ACTIONS = (
    "sts:GetCallerIdentity", "kms:ListAliases", "secretsmanager:ListSecrets", "logs:DescribeLogGroups",
    "logs:DescribeMetricFilters", "cloudwatch:DescribeAlarms", "cloudtrail:DescribeTrails", "sns:ListTopics",
    "lambda:ListFunctions", "iam:ListRoles", "ssm:DescribeParameters",
)
# Roles the stack hands to a service (Lambda runs as the rotation roles, Scheduler and CloudTrail
# assume theirs): iam:PassRole only on the stack's roles, only to those services.
PASSED_TO = ("lambda.amazonaws.com", "scheduler.amazonaws.com", "cloudtrail.amazonaws.com")
POD_IDENTITY_SERVICE = "pods.eks.amazonaws.com"
"""Added to PASSED_TO only when the program declares Pod Identity associations."""
# Resource types that need no AWS permission (components, providers, Vault, random).
NOT_AWS_PREFIXES = ("agentfleet:", "pulumi:", "vault:", "random:")


def deployer_policy(s: StackSettings, resource_types: Iterable[str]) -> dict[str, object]:
    """The deployer's identity policy for the resource types a program declares."""
    types = sorted({t for t in resource_types if not t.startswith(NOT_AWS_PREFIXES)})
    missing = [t for t in types if t not in GRANTS]
    if missing:
        raise DeployerPolicyError(
            f"no deployer grant for resource type(s) {missing}: add them to agentfleet/core/deployer.py GRANTS"
        )
    statements = [Statement("ReadOnlyCallsOnStar", LIST_ACTIONS, ("*",))]
    if "aws:kms/key:Key" in types:
        statements.append(Statement("CreateTheEnvironmentKey", ("kms:CreateKey",), ("*",), condition=stack_tags(s)))
    # One statement per (resources, condition): the types that share ARNs share a statement.
    merged: dict[tuple[tuple[str, ...], str], tuple[set[str], dict[str, dict[str, str]] | None, list[str]]] = {}
    for t in types:
        for g in (GRANTS[t], *GRANTS[t].also):
            cond = g.condition(s) if g.condition else None
            key = (g.resources(s), repr(sorted((cond or {}).items())))
            actions, _, names = merged.setdefault(key, (set(), cond, []))
            actions.update(g.actions)
            names.append(t.rsplit(":", 1)[-1])
    for i, ((resources, _), (actions, cond, names)) in enumerate(sorted(merged.items())):
        statements.append(Statement(f"{''.join(names[:3])}{i}", tuple(sorted(actions)), resources, condition=cond))
    pods = "aws:eks/podIdentityAssociation:PodIdentityAssociation" in types
    if pods or any(t.startswith(("aws:lambda/function", "aws:scheduler/", "aws:cloudtrail/")) for t in types):
        passed = list(PASSED_TO) + ([POD_IDENTITY_SERVICE] if pods else [])
        statements.append(Statement("PassOnlyTheStacksRoles", ("iam:PassRole",), roles(s),
                                    condition={"StringEquals": {"iam:PassedToService": passed}}))
    return Document(tuple(statements)).to_dict()
