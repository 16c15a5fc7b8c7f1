"""Proof of pickup: has every reader of a secret fetched it since its new version became AWSCURRENT?

What AWS records: CloudTrail logs each `secretsmanager:GetSecretValue` as a management event
(`eventSource` secretsmanager.amazonaws.com, `eventName` GetSecretValue) with the caller's role
(`userIdentity.sessionContext.sessionIssuer.arn`), the secret asked for (`requestParameters.secretId`:
a name or an ARN) and, when the caller asked for one, `versionId` / `versionStage`. The value and
the version actually returned are not recorded. The environment's trail delivers these events
to a CloudWatch Logs group; this module queries it with `FilterLogEvents` (read-only).

The rule: a reader *picked up* the rotation when one of its successful GetSecretValue calls for
this secret happened after `replaced_at` (the promotion time) and did not ask for the old
version (by id, or `AWSPREVIOUS`). A call without a version gets AWSCURRENT, i.e. the new value.

Delay and failure modes (docs/rotation.md#proof-of-pickup): CloudTrail delivers an event to Logs
typically within 5 minutes (up to ~15); the sweep runs hourly, so an agent that refreshes is seen
within about 1 h 15 min. If the log group is not configured, missing, unreadable (AccessDenied)
or the query fails, pickup is `unobservable` and the caller falls back to the grace period, saying
so in its log line and metric. An agent that cached the value before the rotation and never
fetches again is correctly reported as not having picked up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

EVENT_SOURCE = "secretsmanager.amazonaws.com"
EVENT_NAME = "GetSecretValue"
MAX_PAGES = 20
"""Bound on FilterLogEvents pages per reader and sweep (the filter keeps pages small)."""

OBSERVED, UNOBSERVABLE, MISSING = "observed", "unobservable", "missing"


@dataclass(frozen=True)
class Pickup:
    status: str
    """`observed`: every reader fetched the new version; `missing`: some reader did not (yet);
    `unobservable`: no trail to look at (the grace period decides)."""
    seen: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    reason: str | None = None


def filter_pattern(role_arn: str) -> str:
    """CloudWatch Logs JSON filter: this role's successful GetSecretValue calls (the secret is checked in code)."""
    return (f'{{ ($.eventSource = "{EVENT_SOURCE}") && ($.eventName = "{EVENT_NAME}")'
            f' && ($.userIdentity.sessionContext.sessionIssuer.arn = "{role_arn}") && ($.errorCode NOT EXISTS) }}')


def names_secret(requested: object, secret_name: str, secret_arn: str | None) -> bool:
    """`secretId` may be the name, the full ARN, or a partial ARN (ARN without the random suffix)."""
    if not isinstance(requested, str) or not requested:
        return False
    if requested == secret_name or (secret_arn and requested == secret_arn):
        return True
    if requested.startswith("arn:") and requested.split(":secret:", 1)[-1] in (secret_name,):
        return True  # partial ARN
    return secret_arn is not None and requested.startswith("arn:") and secret_arn.startswith(requested + "-")


def fetched_new(event: Mapping[str, Any], secret_name: str, secret_arn: str | None, old_version: str | None) -> bool:
    if event.get("eventSource") != EVENT_SOURCE or event.get("eventName") != EVENT_NAME or event.get("errorCode"):
        return False
    params = event.get("requestParameters") or {}
    if not isinstance(params, dict) or not names_secret(params.get("secretId"), secret_name, secret_arn):
        return False
    if params.get("versionStage") == "AWSPREVIOUS":
        return False
    return not (old_version and params.get("versionId") == old_version)


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def reader_events(logs: Any, log_group: str, role_arn: str, since: datetime, until: datetime) -> Iterable[dict[str, Any]]:
    """Parsed CloudTrail events of one role in [since, until], oldest first, at most MAX_PAGES pages."""
    kwargs: dict[str, Any] = {"logGroupName": log_group, "startTime": _ms(since), "endTime": _ms(until),
                              "filterPattern": filter_pattern(role_arn)}
    for _ in range(MAX_PAGES):
        page = logs.filter_log_events(**kwargs)
        for item in page.get("events", []):
            try:
                doc = json.loads(item.get("message", ""))
            except ValueError:
                continue
            if isinstance(doc, dict):
                yield doc
        token = page.get("nextToken")
        if not token:
            return
        kwargs["nextToken"] = token


def observe(logs: Any | None, log_group: str | None, readers: Sequence[str], *, secret_name: str, secret_arn: str | None,
            old_version: str | None, replaced_at: datetime, now: datetime) -> Pickup:
    """Which readers have fetched the secret since `replaced_at`. Never raises: a failed query is `unobservable`."""
    if not readers:
        return Pickup(UNOBSERVABLE, reason="no readers configured for this secret")
    if logs is None or not log_group:
        return Pickup(UNOBSERVABLE, reason="no CloudTrail log group configured")
    seen: list[str] = []
    for role in sorted(set(readers)):
        try:
            hit = any(fetched_new(e, secret_name, secret_arn, old_version)
                      for e in reader_events(logs, log_group, role, replaced_at, now))
        except Exception as exc:  # missing group, AccessDenied, throttling: fall back to the grace period
            code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
            return Pickup(UNOBSERVABLE, reason=f"trail query failed ({code or type(exc).__name__})")
        if hit:
            seen.append(role)
    missing = tuple(r for r in sorted(set(readers)) if r not in seen)
    return Pickup(MISSING if missing else OBSERVED, seen=tuple(seen), missing=missing)
