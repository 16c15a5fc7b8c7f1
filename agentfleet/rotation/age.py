"""Daily secret-age metric: Secrets Manager publishes no per-secret age, so this function does.

For every secret of the environment (name prefix + `managed-by`/`environment` tags) it publishes
`SecretAgeDays` = days since the AWSCURRENT version was created (or since the secret was created
if it has no value yet), dimensions Agent and Credential. The manual-rotation alarms compare it
with the class maximum. It reads metadata only (ListSecrets, ListSecretVersionIds): it cannot
read a value and needs no KMS permission.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from .errors import ConfigError
from .logs import log

METRIC_NAME = "SecretAgeDays"
ENV_PREFIX = "AGE_SECRET_PREFIX"
ENV_ENVIRONMENT = "AGE_ENVIRONMENT"
ENV_NAMESPACE = "ROTATION_METRICS_NAMESPACE"
MANAGED_BY_TAG, MANAGED_BY, ENVIRONMENT_TAG, AGENT_TAG = "managed-by", "agentfleet", "environment", "agent"
PUT_BATCH = 500


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    return None


def current_version_created(sm: Any, secret_id: str) -> datetime | None:
    kwargs: dict[str, Any] = {"SecretId": secret_id}
    while True:
        page = sm.list_secret_version_ids(**kwargs)
        for v in page.get("Versions", []):
            if "AWSCURRENT" in (v.get("VersionStages") or []):
                return _as_datetime(v.get("CreatedDate"))
        token = page.get("NextToken")
        if not token:
            return None
        kwargs["NextToken"] = token


def secret_ages(sm: Any, *, prefix: str, environment: str, now: datetime) -> list[dict[str, Any]]:
    """One row per managed secret of the environment: agent, credential, age in days."""
    rows: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"Filters": [{"Key": "name", "Values": [prefix]}], "MaxResults": 100}
    while True:
        page = sm.list_secrets(**kwargs)
        for s in page.get("SecretList", []):
            name = str(s.get("Name", ""))
            tags = {t.get("Key"): t.get("Value") for t in s.get("Tags") or []}
            if not name.startswith(prefix) or tags.get(MANAGED_BY_TAG) != MANAGED_BY or tags.get(ENVIRONMENT_TAG) != environment:
                continue
            created = current_version_created(sm, str(s.get("ARN", name))) or _as_datetime(s.get("CreatedDate"))
            if created is None:
                continue
            rows.append({
                "secret": name,
                "agent": str(tags.get(AGENT_TAG) or name[len(prefix):].split("/")[0]),
                "credential": name.rsplit("/", 1)[-1],
                "age_days": round((now - created).total_seconds() / 86400, 3),
            })
        token = page.get("NextToken")
        if not token:
            return rows
        kwargs["NextToken"] = token


def publish(cw: Any, namespace: str, rows: list[dict[str, Any]], now: datetime) -> None:
    data = [{
        "MetricName": METRIC_NAME, "Timestamp": now, "Unit": "None", "Value": float(r["age_days"]),
        "Dimensions": [{"Name": "Agent", "Value": r["agent"]}, {"Name": "Credential", "Value": r["credential"]}],
    } for r in rows]
    for i in range(0, len(data), PUT_BATCH):
        cw.put_metric_data(Namespace=namespace, MetricData=data[i:i + PUT_BATCH])


def report(sm: Any, cw: Any, env: Mapping[str, str], clock: Callable[[], datetime]) -> dict[str, Any]:
    prefix, environment = env.get(ENV_PREFIX), env.get(ENV_ENVIRONMENT)
    namespace = env.get(ENV_NAMESPACE)
    if not prefix or not environment or not namespace:
        raise ConfigError(f"{ENV_PREFIX}, {ENV_ENVIRONMENT} and {ENV_NAMESPACE} must be set")
    now = clock()
    rows = secret_ages(sm, prefix=prefix, environment=environment, now=now)
    publish(cw, namespace, rows, now)
    oldest = max((r["age_days"] for r in rows), default=0.0)
    log("ages_reported", secrets=len(rows), oldest_days=oldest, namespace=namespace)
    return {"secrets": len(rows), "oldest_days": oldest}


def lambda_handler(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    import boto3

    return report(boto3.client("secretsmanager"), boto3.client("cloudwatch"), os.environ,
                  lambda: datetime.now(timezone.utc))
