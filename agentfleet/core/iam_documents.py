"""IAM documents as small typed objects; grants are functions; serialised in one place.

Nothing here builds JSON by hand: a grant returns `Statement`s, `Document.to_dict()` gives the
canonical JSON form (sorted action and resource lists, so the same fleet gives the same bytes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

VERSION = "2012-10-17"

SECRET_READ_ACTIONS = ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue")
ROTATION_SECRET_ACTIONS = (
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
)

Condition = Mapping[str, Mapping[str, str | Sequence[str]]]


def _one_or_list(values: Sequence[str]) -> str | list[str]:
    ordered = sorted(set(values))
    return ordered[0] if len(ordered) == 1 else ordered


@dataclass(frozen=True)
class Statement:
    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...] = ()
    effect: str = "Allow"
    principal: Mapping[str, str | Sequence[str]] | None = None
    condition: Condition | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Sid": self.sid, "Effect": self.effect}
        if self.principal is not None:
            out["Principal"] = {
                k: (v if isinstance(v, str) else _one_or_list(list(v))) for k, v in self.principal.items()
            }
        out["Action"] = _one_or_list(self.actions)
        if self.resources:
            out["Resource"] = _one_or_list(self.resources)
        if self.condition:
            out["Condition"] = {
                op: {k: (v if isinstance(v, str) else _one_or_list(list(v))) for k, v in sorted(kv.items())}
                for op, kv in sorted(self.condition.items())
            }
        return out


@dataclass(frozen=True)
class Document:
    statements: tuple[Statement, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"Version": VERSION, "Statement": [s.to_dict() for s in self.statements]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=False, separators=(",", ":"))


# ---- grants ----


def secret_read(sid: str, secret_arns: Sequence[str]) -> Statement:
    """Read exactly these secrets (ARN patterns ending in `-??????`), nothing around them."""
    return Statement(sid, SECRET_READ_ACTIONS, tuple(secret_arns))


def kms_decrypt_via_secretsmanager(sid: str, key_arn: str, region: str, *, encrypt: bool = False) -> Statement:
    """Use the environment key only through Secrets Manager, never directly."""
    actions = ("kms:Decrypt", "kms:GenerateDataKey") if encrypt else ("kms:Decrypt",)
    return Statement(
        sid, actions, (key_arn,),
        condition={"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
    )


SSM_READ_ACTIONS = ("ssm:GetParameter", "ssm:GetParameters")
SSM_PARAMETER_CONTEXT_KEY = "kms:EncryptionContext:PARAMETER_ARN"
"""Parameter Store encrypts a SecureString with the parameter's ARN as encryption context."""


def parameter_read(sid: str, parameter_arns: Sequence[str]) -> Statement:
    """Read exactly these SSM parameters (exact ARNs: no path, no `GetParametersByPath`)."""
    return Statement(sid, SSM_READ_ACTIONS, tuple(parameter_arns))


def kms_decrypt_via_ssm(sid: str, key_arn: str, region: str, parameter_arn_pattern: str) -> Statement:
    """Decrypt with the environment key only through Parameter Store, only for parameters whose
    ARN matches the pattern (the agent's own folder: its size does not grow with the credentials)."""
    return Statement(
        sid, ("kms:Decrypt",), (key_arn,),
        condition={
            "StringEquals": {"kms:ViaService": f"ssm.{region}.amazonaws.com"},
            "StringLike": {SSM_PARAMETER_CONTEXT_KEY: parameter_arn_pattern},
        },
    )


def outside_network(
    vpc_endpoints: Sequence[str], vpcs: Sequence[str], source_cidrs: Sequence[str],
) -> dict[str, dict[str, str | Sequence[str]]]:
    """Condition true when a request matches none of the listed endpoints, VPCs or ranges.

    Operators are AND-ed, so a request is "outside" only when it fails every kind; a missing key
    satisfies a negated operator (a public request has no `aws:SourceVpce`, a VPC one no
    `aws:SourceIp`). `aws:ViaAWSService` exempts calls a service makes on the caller's behalf
    (Secrets Manager / Parameter Store calling KMS Decrypt carry no source of the caller)."""
    cond: dict[str, dict[str, str | Sequence[str]]] = {"BoolIfExists": {"aws:ViaAWSService": "false"}}
    strings: dict[str, str | Sequence[str]] = {}
    if vpc_endpoints:
        strings["aws:SourceVpce"] = tuple(vpc_endpoints)
    if vpcs:
        strings["aws:SourceVpc"] = tuple(vpcs)
    if strings:
        cond["StringNotEquals"] = strings
    if source_cidrs:
        cond["NotIpAddress"] = {"aws:SourceIp": tuple(source_cidrs)}
    return cond


def deny_outside_network(
    sid: str, actions: Sequence[str], resources: Sequence[str], outside: Mapping[str, Mapping[str, str | Sequence[str]]],
    *, principal_arn: str | None = None,
) -> Statement:
    """Deny these reads from anywhere but the declared network. With `principal_arn` it is a
    resource-policy statement that binds that one principal (rotators and admins keep their own
    network)."""
    cond: dict[str, Mapping[str, str | Sequence[str]]] = dict(outside)
    if principal_arn is None:
        return Statement(sid, tuple(actions), tuple(resources), effect="Deny", condition=cond)
    cond["ArnEquals"] = {"aws:PrincipalArn": principal_arn}
    return Statement(sid, tuple(actions), tuple(resources), effect="Deny", principal={"AWS": "*"}, condition=cond)


def put_own_metrics(sid: str, namespace: str) -> Statement:
    """PutMetricData has no resource ARNs; the namespace condition confines it to the agent's own."""
    return Statement(
        sid, ("cloudwatch:PutMetricData",), ("*",),
        condition={"StringEquals": {"cloudwatch:namespace": namespace}},
    )


def deny_everything(sid: str) -> Statement:
    """Explicit deny beats every allow: running sessions lose access at their next call."""
    return Statement(sid, ("*",), ("*",), effect="Deny")


def deny_read_except(sid: str, allowed_principal_arns: Sequence[str]) -> Statement:
    """Secret resource policy: nobody but the listed roles may read the value."""
    return Statement(
        sid, ("secretsmanager:GetSecretValue",), ("*",), effect="Deny",
        principal={"AWS": "*"},
        condition={"StringNotEquals": {"aws:PrincipalArn": tuple(allowed_principal_arns)}},
    )


def assume_by_service(sid: str, service: str) -> Statement:
    return Statement(sid, ("sts:AssumeRole",), principal={"Service": service})


def assume_by_roles(sid: str, role_arns: Sequence[str]) -> Statement:
    return Statement(sid, ("sts:AssumeRole",), principal={"AWS": tuple(role_arns)})


GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
STS_AUDIENCE = "sts.amazonaws.com"
EKS_POD_IDENTITY_SERVICE = "pods.eks.amazonaws.com"
# Session tags EKS Pod Identity sets on every AssumeRole it makes for a pod (EKS user guide,
# "Define permissions for EKS Pod Identities to assume roles based on tags").
EKS_TAG_CLUSTER, EKS_TAG_NAMESPACE, EKS_TAG_SERVICE_ACCOUNT = (
    "eks-cluster-name", "kubernetes-namespace", "kubernetes-service-account",
)


def assume_by_oidc(sid: str, provider_arn: str, issuer_host: str, subject: str, audience: str = STS_AUDIENCE) -> Statement:
    """Web identity (GitHub Actions, an EKS cluster's IRSA issuer): audience pinned to STS and the
    subject pinned to exactly one identity, both with StringEquals (no wildcard can slip in)."""
    return Statement(
        sid, ("sts:AssumeRoleWithWebIdentity",),
        principal={"Federated": provider_arn},
        condition={"StringEquals": {f"{issuer_host}:aud": audience, f"{issuer_host}:sub": subject}},
    )


def assume_by_github(sid: str, provider_arn: str, repository: str, subject: str) -> Statement:
    """GitHub Actions OIDC: audience pinned to STS, subject pinned to one repo ref/environment."""
    return assume_by_oidc(sid, provider_arn, GITHUB_OIDC_HOST, f"repo:{repository}:{subject}")


def irsa_subject(namespace: str, service_account: str) -> str:
    """The `sub` of a Kubernetes service-account token."""
    return f"system:serviceaccount:{namespace}:{service_account}"


def assume_by_service_in_account(sid: str, service: str, account: str, source_arn: str | None = None) -> Statement:
    """A service role that only this account's resources (and, when known, only this one
    function or task: `aws:SourceArn`) may make the service assume: the confused-deputy guard."""
    condition: dict[str, dict[str, str | Sequence[str]]] = {"StringEquals": {"aws:SourceAccount": account}}
    if source_arn is not None:
        condition["ArnLike"] = {"aws:SourceArn": source_arn}
    return Statement(sid, ("sts:AssumeRole",), principal={"Service": service}, condition=condition)


def assume_by_eks_pod_identity(sid: str, account: str, cluster: str, namespace: str, service_account: str) -> Statement:
    """EKS Pod Identity: `sts:TagSession` is required (EKS tags every session), and the tags EKS
    sets pin the cluster, namespace and service account; without them any pod of any cluster
    of the account could take the role."""
    return Statement(
        sid, ("sts:AssumeRole", "sts:TagSession"),
        principal={"Service": EKS_POD_IDENTITY_SERVICE},
        condition={"StringEquals": {
            "aws:SourceAccount": account,
            f"aws:RequestTag/{EKS_TAG_CLUSTER}": cluster,
            f"aws:RequestTag/{EKS_TAG_NAMESPACE}": namespace,
            f"aws:RequestTag/{EKS_TAG_SERVICE_ACCOUNT}": service_account,
        }},
    )


def get_web_identity_token(sid: str, audiences: Sequence[str], max_seconds: int) -> Statement:
    """AWS outbound identity federation: mint identity tokens of this role only for these
    audiences and at most this long. The action has no resource ARNs (`*`); `Audience` is a
    list, so every requested audience must be one of ours (ForAllValues) and at least one must be
    given (`Null` false), and `sts:DurationSeconds` must be present and bounded."""
    return Statement(
        sid, ("sts:GetWebIdentityToken",), ("*",),
        condition={
            "ForAllValues:StringEquals": {"sts:IdentityTokenAudience": tuple(audiences)},
            "Null": {"sts:IdentityTokenAudience": "false", "sts:DurationSeconds": "false"},
            "NumericLessThanEquals": {"sts:DurationSeconds": str(max_seconds)},
        },
    )


def logs_write(sid: str, log_group_arn: str) -> Statement:
    return Statement(sid, ("logs:CreateLogStream", "logs:PutLogEvents"), (f"{log_group_arn}:log-stream:*",))


def cloudtrail_bucket_statements(bucket_arn: str, account: str, trail_arn: str) -> tuple[Statement, ...]:
    """What CloudTrail needs on its bucket, pinned to this one trail (confused-deputy safe)."""
    only_this_trail = {"StringEquals": {"aws:SourceArn": trail_arn}}
    return (
        Statement("CloudTrailAclCheck", ("s3:GetBucketAcl",), (bucket_arn,),
                  principal={"Service": "cloudtrail.amazonaws.com"}, condition=only_this_trail),
        Statement("CloudTrailWrite", ("s3:PutObject",), (f"{bucket_arn}/AWSLogs/{account}/*",),
                  principal={"Service": "cloudtrail.amazonaws.com"},
                  condition={"StringEquals": {"aws:SourceArn": trail_arn,
                                              "s3:x-amz-acl": "bucket-owner-full-control"}}),
        Statement("DenyInsecureTransport", ("s3:*",), (bucket_arn, f"{bucket_arn}/*"), effect="Deny",
                  principal={"AWS": "*"}, condition={"Bool": {"aws:SecureTransport": "false"}}),
    )


def sns_publish_by_services(sid: str, topic_arn: str, services: Sequence[str], account: str) -> Statement:
    """Let alarm/scheduler services of this account publish to the alert topic, nobody else."""
    return Statement(
        sid, ("sns:Publish",), (topic_arn,), principal={"Service": tuple(services)},
        condition={"StringEquals": {"aws:SourceAccount": account}},
    )


def key_admin_by_account(sid: str, account_root_arn: str) -> Statement:
    """KMS key policy: the account may manage and use the key, through IAM policies only.

    This is AWS's default key policy statement: without it the key becomes unmanageable; with it
    nobody gets access unless an IAM policy grants it (agents: decrypt via Secrets Manager only).
    """
    return Statement(sid, ("kms:*",), ("*",), principal={"AWS": account_root_arn})


def secret_rotate(sid: str, secret_arns: Sequence[str], condition: Condition | None = None) -> Statement:
    """What a rotation function does to a secret: read it, write versions, move staging labels."""
    return Statement(sid, ROTATION_SECRET_ACTIONS, tuple(secret_arns), condition=condition)


def random_password(sid: str) -> Statement:
    """GetRandomPassword touches no resource, so IAM only accepts `*` for it."""
    return Statement(sid, ("secretsmanager:GetRandomPassword",), ("*",))


def secret_value_only(sid: str, secret_arns: Sequence[str]) -> Statement:
    """Read these secrets' values and nothing else (a provider's admin key)."""
    return Statement(sid, ("secretsmanager:GetSecretValue",), tuple(secret_arns))


def resource_tag_condition(equal: Mapping[str, str], not_equal: Mapping[str, str] | None = None) -> Condition:
    """Confine a statement to resources carrying (and not carrying) these tag values."""
    out: dict[str, dict[str, str | Sequence[str]]] = {
        "StringEquals": {f"aws:ResourceTag/{k}": v for k, v in sorted(equal.items())},
    }
    if not_equal:
        out["StringNotEquals"] = {f"aws:ResourceTag/{k}": v for k, v in sorted(not_equal.items())}
    return out


def secret_versions_metadata(sid: str, secret_arns: Sequence[str], condition: Condition | None = None) -> Statement:
    """Version ids, stages and dates only: no value, no KMS."""
    return Statement(sid, ("secretsmanager:ListSecretVersionIds",), tuple(secret_arns), condition=condition)


def list_secrets(sid: str) -> Statement:
    """ListSecrets has no resource ARNs; it returns names and tags, never values."""
    return Statement(sid, ("secretsmanager:ListSecrets",), ("*",))


def sns_publish(sid: str, topic_arn: str) -> Statement:
    return Statement(sid, ("sns:Publish",), (topic_arn,))


def lambda_invoke(sid: str, function_arns: Sequence[str], condition: Condition | None = None) -> Statement:
    return Statement(sid, ("lambda:InvokeFunction",), tuple(function_arns), condition=condition)


def to_json(document: Mapping[str, Any]) -> str:
    """The one serialisation of a document produced by `Document.to_dict()` (compact, stable)."""
    return json.dumps(document, sort_keys=False, separators=(",", ":"))
