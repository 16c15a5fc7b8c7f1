"""secret-rotation-within-class: rotation or reminder within the classification's limit."""

from __future__ import annotations

from typing import Any

import pytest

from agentfleet.core import naming
from agentfleet.core.model import BUILTIN_CLASSIFICATIONS, Fleet
from agentfleet.core.settings import StackSettings
from agentfleet.policy.rotation import schedule_days, secret_rotation_within_class
from tests.test_policy_support import SECRET, SECRET_ROTATION, UNKNOWN, Stack, config_for, fleet_stack

SCHEDULE = "aws:scheduler/schedule:Schedule"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"


@pytest.fixture(scope="module")
def config(sample_fleet: Fleet, dev_settings: StackSettings) -> dict[str, Any]:
    return config_for(dev_settings, sample_fleet)


def _secret(stack: Stack, s: StackSettings, classification: str | None, name: str = "a/c/secret") -> Any:
    tags = naming.tags(s, agent="a", owner="o", classification=classification)
    return stack.add(SECRET, name, {"name": "agents/dev/a/c", "arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:agents/dev/a/c-Xy12Zw", "tags": tags})


def test_sample_fleet_rotations_pass(sample_fleet: Fleet, dev_settings: StackSettings, config: dict[str, Any]) -> None:
    assert fleet_stack(dev_settings, sample_fleet).validate(secret_rotation_within_class, config) == []


def test_missing_rotation_is_caught_for_each_secret(sample_fleet: Fleet, dev_settings: StackSettings, config: dict[str, Any]) -> None:
    stack = fleet_stack(dev_settings, sample_fleet)
    stack.remove(stack.named("billing/stripe/rotation"))
    [(msg, urn)] = stack.validate(secret_rotation_within_class, config)
    assert urn == stack.named("billing/stripe/secret").urn
    assert '"billing/stripe/secret" (payments, max 30 days) has no rotation and no reminder schedule' in msg
    assert "Fix:" in msg


@pytest.mark.parametrize("classification,days,ok", [
    ("payments", 30.0, True), ("payments", 31.0, False), ("customer-data", 45.0, False),
    ("internal", 90.0, True), ("internal", 91.0, False), ("partner-data", 60.0, True), ("partner-data", 61.0, False),
])
def test_days_against_class_limit(dev_settings: StackSettings, config: dict[str, Any], classification: str, days: float, ok: bool) -> None:
    stack = Stack()
    sec = _secret(stack, dev_settings, classification)
    stack.add(SECRET_ROTATION, "rot", {"secretId": sec.props["arn"], "rotationRules": {"automaticallyAfterDays": days}}, deps=[sec])
    found = stack.validate(secret_rotation_within_class, config)
    assert (found == []) is ok
    if not ok:
        assert f"every {int(days)} days" in found[0][0] and "rotates too rarely" in found[0][0]


def test_custom_class_needs_the_fleet_config(dev_settings: StackSettings) -> None:
    stack = Stack()
    sec = _secret(stack, dev_settings, "partner-data")
    stack.add(SECRET_ROTATION, "rot", {"secretId": sec.props["arn"], "rotationRules": {"automaticallyAfterDays": 60.0}}, deps=[sec])
    [(msg, _)] = stack.validate(secret_rotation_within_class, None)
    assert "'partner-data'" in msg and "classifications" in msg


def test_untagged_secret_is_caught(dev_settings: StackSettings, config: dict[str, Any]) -> None:
    stack = Stack()
    stack.add(SECRET, "raw", {"name": "x"})
    [(msg, _)] = stack.validate(secret_rotation_within_class, config)
    assert "no `classification` tag" in msg


def test_disabled_rotation_does_not_count(dev_settings: StackSettings, config: dict[str, Any]) -> None:
    stack = Stack()
    sec = _secret(stack, dev_settings, "internal")
    stack.add(SECRET_ROTATION, "rot", {"secretId": sec.props["arn"], "rotationEnabled": False,
                                       "rotationRules": {"automaticallyAfterDays": 30.0}}, deps=[sec])
    assert len(stack.validate(secret_rotation_within_class, config)) == 1


def test_rotation_for_another_secret_does_not_count(dev_settings: StackSettings, config: dict[str, Any]) -> None:
    stack = Stack()
    sec = _secret(stack, dev_settings, "internal")
    other = stack.add(SECRET, "other", {"name": "agents/dev/b/c", "arn": "arn:other", "tags": dict(sec.props["tags"])})
    stack.add(SECRET_ROTATION, "rot", {"secretId": "arn:other", "rotationRules": {"automaticallyAfterDays": 30.0}}, deps=[other])
    [(msg, urn)] = stack.validate(secret_rotation_within_class, config)
    assert urn == sec.urn


@pytest.mark.parametrize("reminder_type,expression,ok", [
    (SCHEDULE, "rate(25 days)", True), (SCHEDULE, "rate(31 days)", False),
    (EVENT_RULE, "cron(0 9 1 * ? *)", False),   # monthly: up to 31 days > 30
    (EVENT_RULE, "cron(0 9 ? * MON *)", True),  # weekly
    (SCHEDULE, "at(2030-01-01T00:00:00)", False),  # one-off: not a schedule
])
def test_manual_credentials_use_a_reminder(dev_settings: StackSettings, config: dict[str, Any], reminder_type: str, expression: str, ok: bool) -> None:
    stack = Stack()
    sec = _secret(stack, dev_settings, "payments")
    stack.add(reminder_type, "remind", {"scheduleExpression": expression,
                                        "target": {"input": '{"secret": "agents/dev/a/c", "runbook": "..."}'}})
    found = stack.validate(secret_rotation_within_class, config)
    assert (found == []) is ok
    if not ok:
        assert "reminder" in found[0][0]


def test_reminder_by_dependency_and_disabled_reminder(dev_settings: StackSettings, config: dict[str, Any]) -> None:
    stack = Stack()
    sec = _secret(stack, dev_settings, "payments")
    stack.add(SCHEDULE, "remind", {"scheduleExpression": "rate(20 days)", "state": "DISABLED"}, deps=[sec])
    assert len(stack.validate(secret_rotation_within_class, config)) == 1
    stack.add(SCHEDULE, "remind2", {"scheduleExpression": "rate(20 days)"}, deps=[sec])
    assert stack.validate(secret_rotation_within_class, config) == []


def test_unknowns_do_not_crash_or_misreport(dev_settings: StackSettings, config: dict[str, Any]) -> None:
    stack = Stack()
    sec = _secret(stack, dev_settings, "internal")
    stack.add(SECRET_ROTATION, "rot", {"secretId": UNKNOWN, "rotationRules": {"automaticallyAfterDays": UNKNOWN}}, deps=[sec])
    stack.add(SECRET, "tagless-unknown", {"name": UNKNOWN, "tags": UNKNOWN})
    stack.add(SECRET_ROTATION, "rot2", {})
    stack.add(SCHEDULE, "s", {"scheduleExpression": UNKNOWN})
    assert stack.validate(secret_rotation_within_class, config) == []


def test_schedule_expressions() -> None:
    assert schedule_days("rate(30 days)") == 30
    assert schedule_days("rate(1 day)") == 1
    assert schedule_days("rate(12 hours)") == 0.5
    assert schedule_days("cron(0 0 * * ? *)") == 1
    assert schedule_days("cron(0 0 1 1 ? *)") is None  # yearly
    assert schedule_days("nonsense") is None


def test_builtin_limits_are_the_models() -> None:
    from agentfleet.policy.layout import layout

    assert dict(layout(None).classifications) == BUILTIN_CLASSIFICATIONS
