"""Rotation policy: every managed secret rotates (or reminds a human) within its class's limit.

The limit comes from the secret's `classification` tag: the built-in classes of
`agentfleet.core.model.BUILTIN_CLASSIFICATIONS` plus the fleet's own (policy config
`classifications`, which `check` fills from agents.yaml).
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Iterator

from agentfleet.core import naming
from agentfleet.policy.base import FLEET_COMPONENT, Resource, stack_policy
from agentfleet.policy.layout import Layout
from agentfleet.policy.stackgraph import SECRET, Refs, of_type
from agentfleet.policy.values import UNKNOWN, document, get, number

SECRET_ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
REMINDER_TYPES = ("aws:scheduler/schedule:Schedule", "aws:cloudwatch/eventRule:EventRule")
"""Schedules that can remind a human to rotate a manual credential."""

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_DAYS = {"minute": 1 / 1440, "hour": 1 / 24, "day": 1.0}


def schedule_days(expression: str) -> float | None:
    """Longest gap in days between two runs of an EventBridge/Secrets Manager schedule expression.

    `rate(N unit)` is exact; a `cron(...)` firing every month (month field `*`) is at most 31
    days apart; other crons (specific months, one-off `at(...)`) are not provably periodic: None.
    """
    expr = expression.strip()
    m = _RATE.match(expr)
    if m:
        return int(m.group(1)) * _UNIT_DAYS[m.group(2).rstrip("s")]
    if expr.startswith("cron(") and expr.endswith(")"):
        fields = expr[5:-1].split()
        if len(fields) == 6:
            minute, hour, dom, month, dow, year = fields
            if month != "*" or year not in ("*", "?"):
                return None
            if dom in ("*", "?") and dow in ("*", "?"):
                return 1.0
            if dom in ("*", "?"):
                return 7.0  # some weekday(s) every week
            return 31.0
    return None


def rotation_days(rotation: Resource) -> Any:
    """Days between rotations of a SecretRotation; None when not rotating; UNKNOWN if unknown."""
    enabled = get(rotation.props, "rotationEnabled")
    if enabled is False:
        return None
    days = get(rotation.props, "rotationRules", "automaticallyAfterDays")
    if days is UNKNOWN:
        return UNKNOWN
    if days is not None:
        return number(days)
    expr = get(rotation.props, "rotationRules", "scheduleExpression")
    if expr is UNKNOWN:
        return UNKNOWN
    return schedule_days(expr) if isinstance(expr, str) else None


def string_leaves(value: Any) -> Iterator[str]:
    """Every string in a props tree, including inside JSON-encoded strings (a target's `input`)."""
    if isinstance(value, str):
        yield value
        if value[:1] in ("{", "["):
            parsed = document(value) if value[:1] == "{" else None
            if isinstance(parsed, dict):
                yield from string_leaves(parsed)
    elif isinstance(value, dict):
        for v in value.values():
            yield from string_leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from string_leaves(v)


def reminders_by_secret(resources: list[Resource], secrets: Refs) -> dict[str, list[Resource]]:
    """Secret URN -> reminder schedules that depend on it or name it (ARN or name) in their props."""
    out: dict[str, list[Resource]] = {}
    for rem in of_type(resources, *REMINDER_TYPES):
        targets = {d for d in rem.dependencies if d in secrets.by_urn}
        for leaf in string_leaves(rem.props):
            targets.update(s.urn for s in secrets.by_ident.get(leaf, []))
        for urn in targets:
            out.setdefault(urn, []).append(rem)
    return out


def reminder_days(reminder: Resource) -> Any:
    if get(reminder.props, "state") == "DISABLED" or get(reminder.props, "isEnabled") is False:
        return None
    expr = get(reminder.props, "scheduleExpression")
    if expr is UNKNOWN:
        return UNKNOWN
    return schedule_days(expr) if isinstance(expr, str) else None


CLASSIFICATIONS_PROP = "classifications"


def program_classifications(resources: list[Resource]) -> dict[str, int]:
    """Class -> max days as the program's fleet component declares them (agents.yaml's classes),
    so the pack needs no config for custom classes. Several declarations: the strictest wins."""
    out: dict[str, int] = {}
    for r in resources:
        if r.type != FLEET_COMPONENT:
            continue
        declared = get(r.props, CLASSIFICATIONS_PROP)
        for name, days in (declared.items() if isinstance(declared, dict) else ()):
            d = number(days)
            if d is not None and d >= 1:
                out[name] = min(out.get(name, int(d)), int(d))
    return out


def class_limits(resources: list[Resource], lay: Layout) -> dict[str, int]:
    """Policy config first (it includes the built-in classes); the program adds only classes the
    config does not know, so a program can never relax a configured or built-in limit."""
    limits = dict(lay.classifications)
    for name, days in program_classifications(resources).items():
        limits.setdefault(name, days)
    return limits


def check_rotation(resources: list[Resource], lay: Layout) -> Iterable[tuple[str, str | None]]:
    secrets = Refs(of_type(resources, SECRET))
    limits = class_limits(resources, lay)
    rotations: dict[str, list[Resource]] = {}
    for rot in of_type(resources, SECRET_ROTATION):
        for target in secrets.resolve(rot, "secretId"):
            rotations.setdefault(target.urn, []).append(rot)
    reminders = reminders_by_secret(resources, secrets)
    for secret in secrets.items:
        cls = secret.tag(naming.TAG_CLASSIFICATION)
        if cls is UNKNOWN:
            continue
        if not isinstance(cls, str):
            yield (f"{secret.label} has no `{naming.TAG_CLASSIFICATION}` tag, so its rotation limit is unknown. "
                   f"Fix: tag it with its class (agentfleet.core.naming.tags(classification=...)).", secret.urn)
            continue
        limit = limits.get(cls)
        if limit is None:
            yield (f"{secret.label} has classification {cls!r}, which neither the built-in classes, the policy config "
                   f"`classifications` nor the program's fleet component declare. Fix: declare the class in agents.yaml "
                   f"`classifications:` (the fleet component carries it to the pack).", secret.urn)
            continue
        schedules: list[tuple[str, Any]] = []
        for rot in rotations.get(secret.urn, []):
            schedules.append((rot.label, rotation_days(rot)))
        rotating = len(schedules)
        for rem in reminders.get(secret.urn, []):
            schedules.append((f"reminder {rem.label}", reminder_days(rem)))
        if any(d is UNKNOWN for _, d in schedules):
            continue  # computed at deploy time
        ok = [isinstance(d, float) and d <= limit + 1e-9 for _, d in schedules]
        # Rotations: AWS keeps only the last one applied, so every one must be within the limit.
        # A reminder only counts for a secret nothing rotates (a manual credential).
        if (rotating and all(ok[:rotating])) or (not rotating and any(ok)):
            continue
        fix = (f"rotate it at least every {limit} days: an aws.secretsmanager.SecretRotation with "
               f"automatically_after_days <= {limit}, or for a manual credential a reminder schedule of at most {limit} days")
        if not schedules:
            yield f"{secret.label} ({cls}, max {limit} days) has no rotation and no reminder schedule. Fix: {fix}.", secret.urn
        else:
            found = ", ".join(f"{lbl}: {_days(d)}" for lbl, d in sorted(schedules, key=lambda x: x[0]))
            yield f"{secret.label} ({cls}, max {limit} days) rotates too rarely ({found}). Fix: {fix}.", secret.urn


def _days(d: Any) -> str:
    if not isinstance(d, float):
        return "disabled or not a periodic schedule"
    return f"every {math.ceil(d) if d >= 1 else d:g} days"


secret_rotation_within_class = stack_policy(
    "secret-rotation-within-class",
    "Every managed secret has a rotation, or for manual credentials a reminder schedule, no longer than its classification allows.",
    check_rotation,
    remediation="Declare rotation in agents.yaml; the rotation components create the schedule from it.",
)

POLICIES = (secret_rotation_within_class,)
