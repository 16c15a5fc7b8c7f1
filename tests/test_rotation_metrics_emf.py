"""The rotation functions emit their signals as metrics in their own log lines (CloudWatch Embedded
Metric Format), which replaced six metric filters per rotation function (issue 17): each signal line
carries exactly its metric, lines that are no signal carry none, and nothing is emitted unless the
stack asked for metrics (alarms on)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from agentfleet.rotation import logs

NS = "AgentFleet/dev/Rotation"


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(record.getMessage()))


@pytest.fixture()
def captured() -> Iterator[Capture]:
    cap = Capture()
    logger = logging.getLogger(logs.LOGGER_NAME)
    logger.addHandler(cap)
    try:
        yield cap
    finally:
        logger.removeHandler(cap)


SIGNALS = [
    ("revoke_failed", {"secret": "s", "key_id": "k"}, "RevokeFailures"),
    ("vault_sync_failed", {"secret": "s"}, "RevokeFailures"),
    ("pickup_missing", {"secret": "s"}, "PickupMissing"),
    ("key_revoked", {"secret": "s", "pickup": "observed"}, "KeysRevokedPickupObserved"),
    ("key_revoked", {"secret": "s", "pickup": "grace_period"}, "KeysRevokedGracePeriod"),
    ("key_revoked", {"secret": "s", "pickup": "wait_expired"}, "KeysRevokedPickupNotSeen"),
    ("key_revoked", {"secret": "s", "pickup": "forced"}, "KeysRevokedForced"),
]
NOT_SIGNALS = [("rotation_finished", {"secret": "s"}), ("key_revoked", {"secret": "s"}),
               ("key_revoked", {"secret": "s", "pickup": "something-else"}), ("unused_key_revoked", {"secret": "s"})]


@pytest.mark.parametrize(("event", "fields", "metric"), SIGNALS)
def test_each_signal_line_carries_its_metric(event: str, fields: dict[str, Any], metric: str,
                                              captured: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(logs.ENV_METRICS_NAMESPACE, NS)
    monkeypatch.setenv(logs.ENV_EMIT_METRICS, "1")
    logs.log(event, **fields)
    [line] = captured.lines
    assert line["event"] == event and all(line[k] == v for k, v in fields.items())
    assert line[metric] == 1
    [directive] = line["_aws"]["CloudWatchMetrics"]
    assert directive == {"Namespace": NS, "Dimensions": [[]], "Metrics": [{"Name": metric, "Unit": "Count"}]}
    assert isinstance(line["_aws"]["Timestamp"], int) and line["_aws"]["Timestamp"] > 1_600_000_000_000
    assert not set(logs.METRICS) - {metric} & set(line)  # no other metric on the line


@pytest.mark.parametrize(("event", "fields"), NOT_SIGNALS)
def test_other_lines_carry_no_metric(event: str, fields: dict[str, Any], captured: Capture,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(logs.ENV_METRICS_NAMESPACE, NS)
    monkeypatch.setenv(logs.ENV_EMIT_METRICS, "1")
    logs.log(event, **fields)
    [line] = captured.lines
    assert "_aws" not in line and not set(logs.METRICS) & set(line)


@pytest.mark.parametrize("env", [{}, {logs.ENV_METRICS_NAMESPACE: NS}, {logs.ENV_EMIT_METRICS: "1"},
                                 {logs.ENV_METRICS_NAMESPACE: NS, logs.ENV_EMIT_METRICS: "0"}])
def test_nothing_is_emitted_unless_the_stack_asks(env: dict[str, str], captured: Capture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for key in (logs.ENV_METRICS_NAMESPACE, logs.ENV_EMIT_METRICS):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    logs.log("revoke_failed", secret="s")
    [line] = captured.lines
    assert "_aws" not in line and "RevokeFailures" not in line and line["event"] == "revoke_failed"


def test_the_stack_asks_for_metrics_exactly_when_its_alarms_are_on() -> None:
    from agentfleet.core import rotation_plan as rp
    from agentfleet.core.loader import load_fleet
    from agentfleet.core.settings import load_stack_settings
    from tests.conftest import ROOT

    on = load_stack_settings(ROOT / "Pulumi.dev.yaml", "dev")
    off = on.model_copy(update={"alarms": False})
    for s, want in ((on, {logs.ENV_EMIT_METRICS: "1"}), (off, {})):
        specs = rp.rotators(s, load_fleet(ROOT / "agents.yaml", s))
        assert specs
        for spec in specs:
            assert {k: v for k, v in spec.environment.items() if k == logs.ENV_EMIT_METRICS} == want
            assert spec.environment[logs.ENV_METRICS_NAMESPACE] == "AgentFleet/dev/Rotation"
