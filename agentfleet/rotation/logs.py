"""Structured JSON log lines, one per event, written to stdout for CloudWatch Logs.

Each line is a JSON object with an `event` field, so log queries select events without parsing
text. Callers pass identifiers only (secret name, version token, key id, error code); a value never
goes through here.

The lines that are signals (`metric_of`: failed revocations and Vault syncs, missing pickups,
revocations by how they were justified) also carry CloudWatch Embedded Metric Format metadata
when the stack asks for metrics (ENV_METRICS_NAMESPACE and ENV_EMIT_METRICS set, i.e. alarms on):
CloudWatch Logs turns them into the environment's rotation metrics itself, so no metric filter is
declared per rotation function (six per agent before issue 17).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Mapping, Union

from .errors import ProviderError

LOGGER_NAME = "agentfleet.rotation"
Field = Union[str, int, float, bool, None, list[str]]

_logger = logging.getLogger(LOGGER_NAME)
if not _logger.handlers:
    _handler = logging.StreamHandler(sys.stdout)
    _handler.setFormatter(logging.Formatter("%(message)s"))
    _logger.addHandler(_handler)
    _logger.setLevel(logging.INFO)
    # Lambda's root handler would prefix our JSON with text; keep the line pure JSON.
    _logger.propagate = False


ENV_METRICS_NAMESPACE = "ROTATION_METRICS_NAMESPACE"
"""`agentfleet.rotation.config.ENV_METRICS_NAMESPACE` (a test checks they agree)."""
ENV_EMIT_METRICS = "ROTATION_EMIT_METRICS"
"""Set to "1" by the stack when its alarms are on: signal lines carry their metric (EMF)."""

REVOKE_FAILED_EVENT = "revoke_failed"
VAULT_SYNC_FAILED_EVENT = "vault_sync_failed"
"""`agentfleet.rotation.vault_sync.SYNC_FAILED_EVENT` (a test checks they agree)."""
FAILURE_EVENTS = (REVOKE_FAILED_EVENT, VAULT_SYNC_FAILED_EVENT)
"""Events counted into RevokeFailures: both keep an old key alive that should have been revoked."""
REVOKE_FAILURES_METRIC = "RevokeFailures"
PICKUP_MISSING_EVENT = "pickup_missing"
PICKUP_MISSING_METRIC = "PickupMissing"
KEY_REVOKED_EVENT = "key_revoked"
REVOKED_BY_PICKUP_METRICS = {"observed": "KeysRevokedPickupObserved", "grace_period": "KeysRevokedGracePeriod",
                             "wait_expired": "KeysRevokedPickupNotSeen", "forced": "KeysRevokedForced"}
"""`key_revoked` lines by their `pickup` field: how each revocation was justified, as metrics."""
METRICS = (REVOKE_FAILURES_METRIC, PICKUP_MISSING_METRIC, *REVOKED_BY_PICKUP_METRICS.values())
"""Every metric the rotation functions emit (namespace `naming.rotation_metrics_namespace`, no dimension)."""


def metric_of(event: str, fields: Mapping[str, Field]) -> str | None:
    """The metric a log line counts into (value 1), or None for lines that are no signal."""
    if event in FAILURE_EVENTS:
        return REVOKE_FAILURES_METRIC
    if event == PICKUP_MISSING_EVENT:
        return PICKUP_MISSING_METRIC
    pickup = fields.get("pickup")
    if event == KEY_REVOKED_EVENT and isinstance(pickup, str):
        return REVOKED_BY_PICKUP_METRICS.get(pickup)
    return None


def _emf(metric: str, namespace: str) -> dict[str, object]:
    """Embedded Metric Format metadata: one dimensionless Count metric, as the alarms read it."""
    return {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [
        {"Namespace": namespace, "Dimensions": [[]], "Metrics": [{"Name": metric, "Unit": "Count"}]}]}


def log(event: str, level: int = logging.INFO, **fields: Field) -> None:
    """Emit one JSON line. `level` is also written so log queries can filter on it."""
    record: dict[str, object] = {"event": event, "level": logging.getLevelName(level)}
    record.update(fields)
    namespace = os.environ.get(ENV_METRICS_NAMESPACE)
    metric = metric_of(event, fields) if namespace and os.environ.get(ENV_EMIT_METRICS) == "1" else None
    if metric is not None and namespace:
        record["_aws"] = _emf(metric, namespace)
        record[metric] = 1
    _logger.log(level, json.dumps(record, sort_keys=True, separators=(",", ":")))


def error_code(exc: BaseException) -> str:
    """A short, value-free description of an exception for the `error` field of a log line."""
    if isinstance(exc, ProviderError):
        return f"ProviderError:{exc.operation}:{exc.status}:{exc.code}"
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        aws_code = response.get("Error", {}).get("Code")
        if isinstance(aws_code, str):
            return f"{type(exc).__name__}:{aws_code}"
    return type(exc).__name__
