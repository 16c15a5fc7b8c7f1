"""Pulumi mocks that apply each declared resource to real local servers (moto, OpenBao).

`ApplyMocks.new_resource` turns the program's inputs (the engine's camelCase names) into the
boto3/hvac call the AWS/Vault provider would make, so botocore's parameter validation and the
servers' own checks judge every argument, and returns the real IDs and ARNs: documents built
from outputs then hold what the servers really returned. A type without an applier is recorded
as `unsupported` (with the reason) and gets the offline mocks' invented state, never skipped
silently. A second run given `prior` is an update: unchanged resources keep their state, and
the types whose update is an idempotent put (policies) are applied again.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import boto3
import hvac
import pulumi
from pulumi.runtime import mocks as pulumi_mocks

from agentfleet.rehearse.servers import Servers
from agentfleet.runner.mockrun import FleetMocks, _unwrap_secrets

APPLIED, LOCAL, UNSUPPORTED, FAILED, UNCHANGED, UPDATED, PROVIDER, DEFERRED = (
    "applied", "local", "unsupported", "failed", "unchanged", "updated", "provider", "deferred")


class Deferred(Exception):
    """The emulator cannot apply this yet (a known moto gap); the rehearsal applies it later."""

SECRET_BEARING = frozenset({"aws:secretsmanager/secretVersion:SecretVersion", "vault:kv/secretV2:SecretV2",
                            "aws:ssm/parameter:Parameter",
                            "random:index/randomPassword:RandomPassword"})
"""Failures of these types report the error code only: a message could quote the value."""

UNSUPPORTED_REASONS = {
    "vault:index/authBackend:AuthBackend": "OpenBao ships no AWS auth method (Vault only); stack `local` sets vaultAwsAuth: false",
    "vault:aws/authBackendRole:AuthBackendRole": "OpenBao ships no AWS auth method (Vault only)",
    "vault:aws/authBackendClient:AuthBackendClient": "OpenBao ships no AWS auth method (Vault only)",
}


@dataclass
class Outcome:
    type: str
    name: str
    status: str
    id: str = ""
    detail: str = ""


@dataclass
class Clients:
    """boto3 clients for moto (one endpoint for every service) and an hvac client for OpenBao."""

    servers: Servers
    _aws: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    vault_lock: threading.Lock = field(default_factory=threading.Lock)

    def aws(self, service: str, **creds: str) -> Any:
        key = service + ("|" + creds.get("aws_access_key_id", "") if creds else "")
        with self._lock:
            if key not in self._aws:
                self._aws[key] = boto3.session.Session().client(
                    service, endpoint_url=self.servers.aws_endpoint, region_name=self.servers.region,
                    aws_access_key_id=creds.get("aws_access_key_id", "testing"),
                    aws_secret_access_key=creds.get("aws_secret_access_key", "testing"),
                    aws_session_token=creds.get("aws_session_token"),
                )
            return self._aws[key]

    def vault(self, token: str | None = None) -> hvac.Client:
        return hvac.Client(url=self.servers.vault_address, token=token or self.servers.vault_token, timeout=10)


# ---- input helpers ----


def _int(v: Any) -> int:
    return int(float(v))


def _tags(inputs: Mapping[str, Any], key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    return [{key: k, value: str(v)} for k, v in sorted((inputs.get("tags") or {}).items())]


def _drop_none(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None and v != [] and v != {}}


def _archive_bytes(code: Any) -> bytes:
    if isinstance(code, pulumi.FileArchive):
        path = code.path
    elif isinstance(code, Mapping) and isinstance(code.get("FileArchive"), str):
        path = code["FileArchive"]
    else:
        raise ValueError(f"lambda code of kind {type(code).__name__} is not rehearsed (FileArchive only)")
    with open(path, "rb") as f:
        return f.read()


# ---- appliers: (clients, inputs, name) -> (id, outputs) ----

Result = tuple[str, dict[str, Any]]
Applier = Callable[[Clients, dict[str, Any], str], Result]


def _kms_key(c: Clients, i: dict[str, Any], name: str) -> Result:
    kms = c.aws("kms")
    md = kms.create_key(**_drop_none({
        "Description": i.get("description"), "KeyUsage": i.get("keyUsage"), "KeySpec": i.get("customerMasterKeySpec"),
        "Policy": i.get("policy"), "Tags": _tags(i, "TagKey", "TagValue"), "MultiRegion": i.get("multiRegion"),
    }))["KeyMetadata"]
    if i.get("enableKeyRotation"):
        kms.enable_key_rotation(**_drop_none({"KeyId": md["KeyId"], "RotationPeriodInDays": _int(i["rotationPeriodInDays"]) if i.get("rotationPeriodInDays") else None}))
    return md["KeyId"], {"arn": md["Arn"], "keyId": md["KeyId"]}


def _kms_alias(c: Clients, i: dict[str, Any], name: str) -> Result:
    c.aws("kms").create_alias(AliasName=i["name"], TargetKeyId=i["targetKeyId"])
    arn = f"arn:aws:kms:{c.servers.region}:{c.servers.account_id}:{i['name']}"
    return i["name"], {"arn": arn}


def _iam_role(c: Clients, i: dict[str, Any], name: str) -> Result:
    role = c.aws("iam").create_role(**_drop_none({
        "RoleName": i.get("name") or name, "AssumeRolePolicyDocument": i["assumeRolePolicy"],
        "Description": i.get("description"), "MaxSessionDuration": _int(i["maxSessionDuration"]) if i.get("maxSessionDuration") else None,
        "Path": i.get("path"), "PermissionsBoundary": i.get("permissionsBoundary"), "Tags": _tags(i),
    }))["Role"]
    for arn in i.get("managedPolicyArns") or []:
        c.aws("iam").attach_role_policy(RoleName=role["RoleName"], PolicyArn=arn)
    return role["RoleName"], {"arn": role["Arn"], "uniqueId": role["RoleId"], "name": role["RoleName"]}


def _oidc_provider(c: Clients, i: dict[str, Any], name: str) -> Result:
    r = c.aws("iam").create_open_id_connect_provider(**_drop_none({
        "Url": i["url"], "ClientIDList": i.get("clientIdLists"), "ThumbprintList": i.get("thumbprintLists"), "Tags": _tags(i),
    }))
    return r["OpenIDConnectProviderArn"], {"arn": r["OpenIDConnectProviderArn"]}


def _iam_role_policy(c: Clients, i: dict[str, Any], name: str) -> Result:
    role = str(i["role"]).split(":role/")[-1]
    c.aws("iam").put_role_policy(RoleName=role, PolicyName=i.get("name") or name, PolicyDocument=i["policy"])
    return f"{role}:{i.get('name') or name}", {}


def _secret(c: Clients, i: dict[str, Any], name: str) -> Result:
    r = c.aws("secretsmanager").create_secret(**_drop_none({
        "Name": i.get("name") or name, "Description": i.get("description"), "KmsKeyId": i.get("kmsKeyId"), "Tags": _tags(i),
    }))
    return r["ARN"], {"arn": r["ARN"]}


def _secret_policy(c: Clients, i: dict[str, Any], name: str) -> Result:
    c.aws("secretsmanager").put_resource_policy(**_drop_none({
        "SecretId": i["secretArn"], "ResourcePolicy": i["policy"], "BlockPublicPolicy": i.get("blockPublicPolicy"),
    }))
    return i["secretArn"], {}


def _secret_version(c: Clients, i: dict[str, Any], name: str) -> Result:
    r = c.aws("secretsmanager").put_secret_value(**_drop_none({
        "SecretId": i["secretId"], "SecretString": i.get("secretString") or i.get("secretStringWo"), "VersionStages": i.get("versionStages"),
    }))
    return f"{i['secretId']}|{r['VersionId']}", {"versionId": r["VersionId"], "arn": r["ARN"]}


def _secret_rotation(c: Clients, i: dict[str, Any], name: str) -> Result:
    sm = c.aws("secretsmanager")
    if not sm.list_secret_version_ids(SecretId=i["secretId"])["Versions"]:
        # moto 5.2.5 crashes (UnboundLocalError, HTTP 500) on RotateSecret with a Lambda for a
        # secret without a value; AWS accepts it. Applied once the operator wrote the first value.
        raise Deferred("moto cannot configure rotation of a secret without a value: applied after put-values")
    rules = i.get("rotationRules") or {}
    sm.rotate_secret(**_drop_none({
        "SecretId": i["secretId"], "RotationLambdaARN": i.get("rotationLambdaArn"),
        "RotationRules": _drop_none({
            "AutomaticallyAfterDays": _int(rules["automaticallyAfterDays"]) if rules.get("automaticallyAfterDays") else None,
            "ScheduleExpression": rules.get("scheduleExpression"), "Duration": rules.get("duration"),
        }),
        "RotateImmediately": i.get("rotateImmediately"),
    }))
    if i.get("rotateImmediately") is False:
        # moto leaves an AWSPENDING copy of the value behind when not rotating immediately; AWS
        # only tests the function. Remove it, as the next rotation would see a rotation in progress.
        versions = sm.list_secret_version_ids(SecretId=i["secretId"])["Versions"]
        for ver in versions:
            if "AWSPENDING" in ver.get("VersionStages", []) and "AWSCURRENT" not in ver["VersionStages"]:
                sm.update_secret_version_stage(SecretId=i["secretId"], VersionStage="AWSPENDING", RemoveFromVersionId=ver["VersionId"])
    return i["secretId"], {"rotationEnabled": True}


def _ssm_parameter(c: Clients, i: dict[str, Any], name: str) -> Result:
    ssm = c.aws("ssm")
    value = i.get("valueWo") if i.get("valueWo") is not None else i.get("value")
    ssm.put_parameter(**_drop_none({
        "Name": i.get("name") or name, "Type": i.get("type"), "Value": value, "KeyId": i.get("keyId"),
        "Description": i.get("description"), "Tier": i.get("tier"), "AllowedPattern": i.get("allowedPattern"),
        "DataType": i.get("dataType"), "Tags": _tags(i),
    }))
    p = ssm.get_parameter(Name=i.get("name") or name)["Parameter"]
    return p["Name"], {"arn": p["ARN"], "name": p["Name"], "version": p["Version"]}


def _lambda_function(c: Clients, i: dict[str, Any], name: str) -> Result:
    env = (i.get("environment") or {}).get("variables")
    r = c.aws("lambda").create_function(**_drop_none({
        "FunctionName": i.get("name") or name, "Runtime": i.get("runtime"), "Role": i["role"], "Handler": i.get("handler"),
        "Code": {"ZipFile": _archive_bytes(i.get("code"))}, "Description": i.get("description"),
        "Timeout": _int(i["timeout"]) if i.get("timeout") else None,
        "MemorySize": _int(i["memorySize"]) if i.get("memorySize") else None,
        "Environment": {"Variables": {k: str(v) for k, v in env.items()}} if env else None,
        "Architectures": i.get("architectures"), "Tags": dict(i.get("tags") or {}),
        "ReservedConcurrentExecutions": None,
    }))
    if i.get("reservedConcurrentExecutions") not in (None, -1, -1.0):
        c.aws("lambda").put_function_concurrency(FunctionName=r["FunctionName"],
                                                 ReservedConcurrentExecutions=_int(i["reservedConcurrentExecutions"]))
    return r["FunctionName"], {"arn": r["FunctionArn"], "name": r["FunctionName"], "qualifiedArn": r["FunctionArn"],
                               "version": r.get("Version", "$LATEST"),
                               "invokeArn": f"arn:aws:apigateway:{c.servers.region}:lambda:path/2015-03-31/functions/{r['FunctionArn']}/invocations"}


def _lambda_permission(c: Clients, i: dict[str, Any], name: str) -> Result:
    sid = i.get("statementId") or "pulumi-" + hashlib.sha256(name.encode()).hexdigest()[:16]
    c.aws("lambda").add_permission(**_drop_none({
        "FunctionName": i["function"], "StatementId": sid, "Action": i["action"], "Principal": i["principal"],
        "SourceArn": i.get("sourceArn"), "SourceAccount": i.get("sourceAccount"),
    }))
    return sid, {"statementId": sid}


def _log_group(c: Clients, i: dict[str, Any], name: str) -> Result:
    logs = c.aws("logs")
    group = i.get("name") or name
    logs.create_log_group(**_drop_none({"logGroupName": group, "kmsKeyId": i.get("kmsKeyId"), "tags": dict(i.get("tags") or {})}))
    if i.get("retentionInDays"):
        logs.put_retention_policy(logGroupName=group, retentionInDays=_int(i["retentionInDays"]))
    [desc] = [g for g in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] if g["logGroupName"] == group]
    return group, {"arn": desc["arn"].removesuffix(":*"), "name": group}


def _metric_filter(c: Clients, i: dict[str, Any], name: str) -> Result:
    mt = i["metricTransformation"]
    c.aws("logs").put_metric_filter(
        logGroupName=i["logGroupName"], filterName=i.get("name") or name, filterPattern=i["pattern"],
        metricTransformations=[_drop_none({
            "metricName": mt["name"], "metricNamespace": mt["namespace"], "metricValue": mt["value"],
            "defaultValue": float(mt["defaultValue"]) if mt.get("defaultValue") not in (None, "") else None,
            "dimensions": mt.get("dimensions"), "unit": mt.get("unit"),
        })],
    )
    return i.get("name") or name, {}


_ALARM_KEYS = {
    "comparisonOperator": "ComparisonOperator", "metricName": "MetricName", "namespace": "Namespace",
    "statistic": "Statistic", "extendedStatistic": "ExtendedStatistic", "alarmDescription": "AlarmDescription",
    "treatMissingData": "TreatMissingData", "alarmActions": "AlarmActions", "okActions": "OKActions",
    "insufficientDataActions": "InsufficientDataActions", "actionsEnabled": "ActionsEnabled", "unit": "Unit",
    "evaluateLowSampleCountPercentiles": "EvaluateLowSampleCountPercentile", "thresholdMetricId": "ThresholdMetricId",
}


def _metric_alarm(c: Clients, i: dict[str, Any], name: str) -> Result:
    args: dict[str, Any] = {"AlarmName": i.get("name") or name}
    for k, v in _ALARM_KEYS.items():
        if i.get(k) is not None:
            args[v] = i[k]
    for k, v in (("evaluationPeriods", "EvaluationPeriods"), ("period", "Period"), ("datapointsToAlarm", "DatapointsToAlarm")):
        if i.get(k) is not None:
            args[v] = _int(i[k])
    if i.get("threshold") is not None:
        args["Threshold"] = float(i["threshold"])
    if i.get("dimensions"):
        args["Dimensions"] = [{"Name": k, "Value": str(v)} for k, v in sorted(i["dimensions"].items())]
    if i.get("metricQueries"):
        args["Metrics"] = [_drop_none({
            "Id": q["id"], "Expression": q.get("expression"), "Label": q.get("label"), "ReturnData": q.get("returnData"),
            "Period": _int(q["period"]) if q.get("period") else None,
            "MetricStat": _drop_none({
                "Metric": _drop_none({"MetricName": q["metric"]["metricName"], "Namespace": q["metric"].get("namespace"),
                                      "Dimensions": [{"Name": k, "Value": str(v)} for k, v in sorted((q["metric"].get("dimensions") or {}).items())]}),
                "Period": _int(q["metric"]["period"]), "Stat": q["metric"]["stat"], "Unit": q["metric"].get("unit"),
            }) if q.get("metric") else None,
        }) for q in i["metricQueries"]]
    args["Tags"] = _tags(i)
    c.aws("cloudwatch").put_metric_alarm(**_drop_none(args))
    arn = f"arn:aws:cloudwatch:{c.servers.region}:{c.servers.account_id}:alarm:{args['AlarmName']}"
    return args["AlarmName"], {"arn": arn}


def _schedule_group(c: Clients, i: dict[str, Any], name: str) -> Result:
    r = c.aws("scheduler").create_schedule_group(Name=i.get("name") or name, Tags=_tags(i))
    return i.get("name") or name, {"arn": r["ScheduleGroupArn"]}


def _schedule(c: Clients, i: dict[str, Any], name: str) -> Result:
    t, ftw = i["target"], i["flexibleTimeWindow"]
    retry = t.get("retryPolicy") or {}
    r = c.aws("scheduler").create_schedule(**_drop_none({
        "Name": i.get("name") or name, "GroupName": i.get("groupName"), "ScheduleExpression": i["scheduleExpression"],
        "ScheduleExpressionTimezone": i.get("scheduleExpressionTimezone"), "Description": i.get("description"),
        "State": i.get("state"), "KmsKeyArn": i.get("kmsKeyArn"), "ActionAfterCompletion": i.get("actionAfterCompletion"),
        "FlexibleTimeWindow": _drop_none({"Mode": ftw["mode"], "MaximumWindowInMinutes": _int(ftw["maximumWindowInMinutes"]) if ftw.get("maximumWindowInMinutes") else None}),
        "Target": _drop_none({
            "Arn": t["arn"], "RoleArn": t["roleArn"], "Input": t.get("input"),
            "RetryPolicy": _drop_none({k2: _int(retry[k1]) for k1, k2 in (("maximumEventAgeInSeconds", "MaximumEventAgeInSeconds"), ("maximumRetryAttempts", "MaximumRetryAttempts")) if retry.get(k1) is not None}),
            "DeadLetterConfig": {"Arn": t["deadLetterConfig"]["arn"]} if t.get("deadLetterConfig") else None,
        }),
    }))
    return f"{i.get('groupName') or 'default'}/{i.get('name') or name}", {"arn": r["ScheduleArn"]}


def _sns_topic(c: Clients, i: dict[str, Any], name: str) -> Result:
    attrs = _drop_none({"KmsMasterKeyId": i.get("kmsMasterKeyId"), "DisplayName": i.get("displayName"), "Policy": i.get("policy")})
    r = c.aws("sns").create_topic(Name=i.get("name") or name, Attributes=attrs, Tags=_tags(i))
    return r["TopicArn"], {"arn": r["TopicArn"]}


def _sns_topic_policy(c: Clients, i: dict[str, Any], name: str) -> Result:
    c.aws("sns").set_topic_attributes(TopicArn=i["arn"], AttributeName="Policy", AttributeValue=i["policy"])
    return i["arn"], {}


def _s3_bucket(c: Clients, i: dict[str, Any], name: str) -> Result:
    s3 = c.aws("s3")
    bucket = i.get("bucket") or name
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if c.servers.region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": c.servers.region}
    s3.create_bucket(**kwargs)
    if i.get("tags"):
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": _tags(i)})
    return bucket, {"arn": f"arn:aws:s3:::{bucket}", "bucket": bucket}


def _s3_bucket_policy(c: Clients, i: dict[str, Any], name: str) -> Result:
    c.aws("s3").put_bucket_policy(Bucket=i["bucket"], Policy=i["policy"])
    return i["bucket"], {}


def _s3_public_access_block(c: Clients, i: dict[str, Any], name: str) -> Result:
    keys = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    c.aws("s3").put_public_access_block(Bucket=i["bucket"], PublicAccessBlockConfiguration={
        k: bool(i.get(k[0].lower() + k[1:], False)) for k in keys})
    return i["bucket"], {}


def _cloudtrail(c: Clients, i: dict[str, Any], name: str) -> Result:
    ct = c.aws("cloudtrail")
    r = ct.create_trail(**_drop_none({
        "Name": i.get("name") or name, "S3BucketName": i["s3BucketName"], "S3KeyPrefix": i.get("s3KeyPrefix"),
        "IncludeGlobalServiceEvents": i.get("includeGlobalServiceEvents"), "IsMultiRegionTrail": i.get("isMultiRegionTrail"),
        "EnableLogFileValidation": i.get("enableLogFileValidation"), "CloudWatchLogsLogGroupArn": i.get("cloudWatchLogsGroupArn"),
        "CloudWatchLogsRoleArn": i.get("cloudWatchLogsRoleArn"), "KmsKeyId": i.get("kmsKeyId"),
        "IsOrganizationTrail": i.get("isOrganizationTrail"), "TagsList": _tags(i),
    }))
    if i.get("enableLogging", True):
        ct.start_logging(Name=r["Name"])
    return r["TrailARN"], {"arn": r["TrailARN"], "name": r["Name"]}


def _random_password(c: Clients, i: dict[str, Any], name: str) -> Result:
    """pulumi-random runs in the engine, not in a cloud: generated here with `secrets`."""
    alphabet = string.ascii_letters + string.digits + (i.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?" if i.get("special", True) else "")
    value = "".join(secrets.choice(alphabet) for _ in range(_int(i.get("length") or 32)))
    return f"{name}-id", {"result": value}


def _vault_mount(c: Clients, i: dict[str, Any], name: str) -> Result:
    v = c.vault()
    path = i["path"]
    with c.vault_lock:
        v.sys.enable_secrets_engine(i["type"], path=path, description=i.get("description"), options=i.get("options"))
    if i["type"] == "kv" and (i.get("options") or {}).get("version") == "2":
        deadline = time.monotonic() + 10  # a new KV v2 mount upgrades itself for a moment
        while True:
            try:
                v.secrets.kv.v2.read_configuration(mount_point=path)
                break
            except hvac.exceptions.VaultError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    return path, {"accessor": path}


def _vault_policy(c: Clients, i: dict[str, Any], name: str) -> Result:
    with c.vault_lock:
        c.vault().sys.create_or_update_policy(name=i["name"], policy=i["policy"])
    return i["name"], {}


def _vault_kv2(c: Clients, i: dict[str, Any], name: str) -> Result:
    data = json.loads(i["dataJson"])
    with c.vault_lock:
        c.vault().secrets.kv.v2.create_or_update_secret(mount_point=i["mount"], path=i["name"], secret=data)
    return f"{i['mount']}/data/{i['name']}", {"path": f"{i['mount']}/data/{i['name']}"}


APPLIERS: dict[str, Applier] = {
    "aws:kms/key:Key": _kms_key,
    "aws:kms/alias:Alias": _kms_alias,
    "aws:iam/role:Role": _iam_role,
    "aws:iam/rolePolicy:RolePolicy": _iam_role_policy,
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": _oidc_provider,
    "aws:secretsmanager/secret:Secret": _secret,
    "aws:secretsmanager/secretPolicy:SecretPolicy": _secret_policy,
    "aws:secretsmanager/secretVersion:SecretVersion": _secret_version,
    "aws:secretsmanager/secretRotation:SecretRotation": _secret_rotation,
    "aws:lambda/function:Function": _lambda_function,
    "aws:ssm/parameter:Parameter": _ssm_parameter,
    "aws:lambda/permission:Permission": _lambda_permission,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:cloudwatch/logMetricFilter:LogMetricFilter": _metric_filter,
    "aws:cloudwatch/metricAlarm:MetricAlarm": _metric_alarm,
    "aws:scheduler/scheduleGroup:ScheduleGroup": _schedule_group,
    "aws:scheduler/schedule:Schedule": _schedule,
    "aws:sns/topic:Topic": _sns_topic,
    "aws:sns/topicPolicy:TopicPolicy": _sns_topic_policy,
    "aws:s3/bucket:Bucket": _s3_bucket,
    "aws:s3/bucketV2:BucketV2": _s3_bucket,
    "aws:s3/bucketPolicy:BucketPolicy": _s3_bucket_policy,
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": _s3_public_access_block,
    "aws:cloudtrail/trail:Trail": _cloudtrail,
    "random:index/randomPassword:RandomPassword": _random_password,
    "vault:index/mount:Mount": _vault_mount,
    "vault:index/policy:Policy": _vault_policy,
    "vault:kv/secretV2:SecretV2": _vault_kv2,
}

UPSERTS = frozenset({
    "aws:iam/rolePolicy:RolePolicy", "aws:secretsmanager/secretPolicy:SecretPolicy", "vault:index/policy:Policy",
    "aws:sns/topicPolicy:TopicPolicy", "aws:s3/bucketPolicy:BucketPolicy", "aws:cloudwatch/metricAlarm:MetricAlarm",
    "aws:cloudwatch/logMetricFilter:LogMetricFilter",
})
"""Types whose update is the same idempotent put as their create (a pause changes only these)."""


def _error_text(t: str, exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    if t in SECRET_BEARING:
        return str(code or type(exc).__name__)
    text = " ".join(str(exc).split())
    return f"{code or type(exc).__name__}: {text[:400]}"


@dataclass
class Prior:
    inputs: dict[str, Any]
    id: str
    state: dict[str, Any]


class ApplyMocks(FleetMocks):
    """See the module docstring. `outcomes` lists what happened to every resource."""

    def __init__(self, clients: Clients, prior: Mapping[tuple[str, str], Prior] | None = None):
        super().__init__(clients.servers.region, clients.servers.account_id)
        self.clients = clients
        self.prior = dict(prior or {})
        self.outcomes: list[Outcome] = []
        self.deferred: list[tuple[str, str, dict[str, Any]]] = []
        self.applied: dict[tuple[str, str], Prior] = {}
        self._out_lock = threading.Lock()

    def _record(self, o: Outcome) -> None:
        with self._out_lock:
            self.outcomes.append(o)

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        t, name = args.typ, args.name
        if not args.custom or t.startswith("pulumi:providers:"):
            rid, state = super().new_resource(args)
            if args.custom:
                self._record(Outcome(t, name, PROVIDER, str(rid)))
            return rid, state
        inputs = _unwrap_secrets(dict(args.inputs))
        key = (t, name)
        before = self.prior.get(key)
        applier = APPLIERS.get(t)
        if before is not None and (before.inputs == inputs or t == "random:index/randomPassword:RandomPassword"):
            with self._lock:
                self.new_resource_calls += 1
            self._record(Outcome(t, name, UNCHANGED, before.id))
            self.applied[key] = before
            return before.id, before.state
        if applier is None or (before is not None and t not in UPSERTS):
            rid, state = super().new_resource(args)
            reason = (f"an update of {t} is not rehearsed (inputs changed)" if before is not None
                      else UNSUPPORTED_REASONS.get(t, "no applier for this type in agentfleet/rehearse/apply.py"))
            self._record(Outcome(t, name, FAILED if before is not None else UNSUPPORTED, str(rid), reason))
            return rid, state
        with self._lock:
            self.new_resource_calls += 1
        try:
            rid, outputs = applier(self.clients, inputs, name)
        except Deferred as why:
            rid, state = super().new_resource(args)
            with self._lock:
                self.new_resource_calls -= 1
            self._record(Outcome(t, name, DEFERRED, str(rid), str(why)))
            with self._out_lock:
                self.deferred.append((t, name, inputs))
            return rid, state
        except Exception as exc:  # the server (or botocore's validation) refused the program's arguments
            self._record(Outcome(t, name, FAILED, "", _error_text(t, exc)))
            with self._lock:
                self.new_resource_calls -= 1
            return super().new_resource(args)
        state = {**dict(args.inputs), **outputs}  # the engine's own input values (assets stay assets)
        status = UPDATED if before is not None else (LOCAL if t.startswith("random:") else APPLIED)
        self._record(Outcome(t, name, status, rid))
        self.applied[key] = Prior(inputs, rid, state)
        return rid, state


    def apply_deferred(self) -> list[Outcome]:
        """Apply what waited for a first value; each outcome replaces its `deferred` one."""
        done = []
        for t, name, inputs in self.deferred:
            try:
                rid, _ = APPLIERS[t](self.clients, inputs, name)
                o = Outcome(t, name, APPLIED, rid, "applied after the first value was written")
            except Exception as exc:
                o = Outcome(t, name, FAILED, "", _error_text(t, exc))
            with self._out_lock:
                self.outcomes = [x for x in self.outcomes if not (x.type == t and x.name == name)] + [o]
            done.append(o)
        self.deferred = []
        return done
