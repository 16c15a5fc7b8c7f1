"""Proof of pickup, driven by recorded CloudTrail GetSecretValue events (tests/fixtures/cloudtrail-pickup).

`RecordedTrail` plays the trail's CloudWatch Logs group: `filter_log_events` answers from the
recorded records by time window and by the role the filter pattern names (two per page, so paging
is exercised), the way the service applies the JSON pattern the module sends. The rotation runs
through the real handler with the Datadog adapter against its loopback fake.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from botocore.exceptions import ClientError

from agentfleet.rotation import pickup
from agentfleet.rotation.config import Config
from agentfleet.rotation.handler import Deps, handle
from tests.test_rotation_fakes import aws  # noqa: F401  (fixture)
from tests.test_rotation_providers import FakeDatadog, World, _world

FIXTURE = Path(__file__).parent / "fixtures" / "cloudtrail-pickup" / "getsecretvalue.json"
AGENT_ROLE = "arn:aws:iam::123456789012:role/agents-dev-notify"
TRAIL_GROUP = "/agentfleet/dev/cloudtrail"
RECORDED_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:agents/dev/notify/datadog-AbCdEf"


def _ms(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp() * 1000)


class RecordedTrail:
    def __init__(self, records: list[dict[str, Any]], *, error: str | None = None):
        self.records = records
        self.error = error
        self.queries: list[dict[str, Any]] = []

    def filter_log_events(self, **kw: Any) -> dict[str, Any]:
        self.queries.append(kw)
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "injected"}}, "FilterLogEvents")
        assert kw["logGroupName"] == TRAIL_GROUP
        role = re.search(r'sessionIssuer\.arn = "([^"]+)"', kw["filterPattern"])
        assert role and "GetSecretValue" in kw["filterPattern"] and "errorCode NOT EXISTS" in kw["filterPattern"]
        hits = [r for r in self.records
                if kw["startTime"] <= _ms(r["eventTime"]) <= kw["endTime"]
                and r["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] == role.group(1)
                and r["eventName"] == "GetSecretValue" and "errorCode" not in r]
        start = int(kw.get("nextToken") or 0)
        page = hits[start:start + 2]
        out: dict[str, Any] = {"events": [{"timestamp": _ms(r["eventTime"]), "message": json.dumps(r)} for r in page]}
        if start + 2 < len(hits):
            out["nextToken"] = str(start + 2)
        return out


def recorded(secret_arn: str, *, drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    records = json.loads(FIXTURE.read_text())["records"]
    out = []
    for r in records:
        if r["eventID"] in drop:
            continue
        if r["requestParameters"]["secretId"] == RECORDED_ARN:
            r["requestParameters"]["secretId"] = secret_arn  # moto's random suffix
        out.append(r)
    return out


@pytest.fixture()
def world(aws: Any) -> Iterator[World]:
    dd = FakeDatadog().start()
    assert isinstance(dd, FakeDatadog)
    yield from _world(aws, dd, {"api_key": dd.admin_api_key, "application_key": dd.app_key}, dd.mint())


def with_pickup(w: World, trail: RecordedTrail | None, readers: tuple[str, ...] = (AGENT_ROLE,)) -> Deps:
    w.config = Config(**{**w.config.__dict__, "pickup_log_group": TRAIL_GROUP if trail else None,
                         "pickup_readers": {w.secret: readers}, "pickup_max_wait_hours": 48.0})
    deps = w.deps()
    deps.logs = trail
    return deps


def sweep(w: World, deps: Deps) -> list[str]:
    return list(handle({"Action": "revokeDue", "SecretIds": [w.secret]}, deps)["revoked"][w.secret])


def revoked_events(w: World) -> list[dict[str, Any]]:
    return [d for d in map(json.loads, w.logs.lines) if d["event"] == "key_revoked"]


def arn(w: World) -> str:
    return str(w.raw.describe_secret(SecretId=w.secret)["ARN"])


def test_observed_pickup_revokes_after_the_grace_period_and_says_so(world: World) -> None:
    old = world.current()
    trail = RecordedTrail(recorded(arn(world)))
    deps = with_pickup(world, trail)
    world.rotate()  # at 12:00: the recorded agent read at 12:07 by ARN is after it
    world.clock.advance(hours=25)
    assert sweep(world, deps) == [old["key_id"]]
    [event] = revoked_events(world)
    assert event["pickup"] == "observed" and event["pickup_reason"] is None
    assert trail.queries and trail.queries[0]["startTime"] == _ms("2025-03-01T12:00:00Z")
    assert not world.fake.works(old["api_key"])


def test_no_revoke_while_a_reader_is_still_on_the_old_key_and_an_alarmable_line_each_sweep(world: World) -> None:
    old = world.current()
    # Only reads that do not count remain: before the rotation, another role, denied, AWSPREVIOUS, another secret.
    trail = RecordedTrail(recorded(arn(world), drop=("e-pickup",)))
    deps = with_pickup(world, trail)
    world.rotate()
    world.clock.advance(hours=25)
    assert sweep(world, deps) == []
    world.clock.advance(hours=1)
    assert sweep(world, deps) == []
    missing = [d for d in map(json.loads, world.logs.lines) if d["event"] == "pickup_missing"]
    assert len(missing) == 2 and missing[0]["readers"] == [AGENT_ROLE] and missing[0]["level"] == "ERROR"
    assert world.fake.works(old["api_key"]) and world.ledger_pending() == [old["key_id"]]
    # The agent restarts and reads the secret: the next sweep revokes, as observed.
    trail.records.append({**recorded(arn(world))[-1], "eventTime": "2025-03-02T13:30:00Z", "eventID": "late"})
    world.clock.advance(hours=1)
    assert sweep(world, deps) == [old["key_id"]]
    assert revoked_events(world)[-1]["pickup"] == "observed"


def test_a_reader_never_seen_is_revoked_after_the_maximum_wait_and_says_why(world: World) -> None:
    old = world.current()
    deps = with_pickup(world, RecordedTrail([]))
    world.rotate()
    world.clock.advance(hours=24 + 47)
    assert sweep(world, deps) == []
    world.clock.advance(hours=2)
    assert sweep(world, deps) == [old["key_id"]]
    event = revoked_events(world)[-1]
    assert event["pickup"] == "wait_expired" and AGENT_ROLE in event["pickup_reason"]


@pytest.mark.parametrize("error", ["ResourceNotFoundException", "AccessDeniedException", "ThrottlingException"])
def test_an_unobservable_trail_falls_back_to_the_grace_period(world: World, error: str) -> None:
    old = world.current()
    deps = with_pickup(world, RecordedTrail([], error=error))
    world.rotate()
    world.clock.advance(hours=23)
    assert sweep(world, deps) == []  # the grace period still holds
    world.clock.advance(hours=2)
    assert sweep(world, deps) == [old["key_id"]]
    event = revoked_events(world)[-1]
    assert event["pickup"] == "grace_period" and error in event["pickup_reason"]


def test_without_a_trail_or_readers_the_grace_period_decides(world: World) -> None:
    old = world.current()
    deps = with_pickup(world, None)
    world.rotate()
    world.clock.advance(hours=25)
    assert sweep(world, deps) == [old["key_id"]]
    assert revoked_events(world)[-1] == {**revoked_events(world)[-1], "pickup": "grace_period",
                                         "pickup_reason": "no CloudTrail log group configured"}


def test_an_emergency_does_not_wait_for_pickup(world: World) -> None:
    old = world.current()
    deps = with_pickup(world, RecordedTrail([]))
    out = handle({"Action": "rotateNow", "SecretId": world.secret, "Emergency": True}, deps)
    assert out["unrevoked"] == [] and not world.fake.works(old["api_key"])
    assert revoked_events(world)[-1]["pickup"] == "forced"


def test_what_counts_as_a_pickup() -> None:
    records = {r["eventID"]: r for r in json.loads(FIXTURE.read_text())["records"]}
    name = "agents/dev/notify/datadog"
    ok = {k for k, r in records.items() if pickup.fetched_new(r, name, RECORDED_ARN, "old-version")}
    assert ok == {"e-pickup", "e-before", "e-other"}  # time window and role are the query's part
    assert not pickup.fetched_new({**records["e-pickup"], "requestParameters": {"secretId": name, "versionId": "old-version"}},
                                  name, RECORDED_ARN, "old-version")
    assert pickup.names_secret(RECORDED_ARN.rsplit("-", 1)[0], name, RECORDED_ARN)  # partial ARN
    assert not pickup.names_secret(name + "-2", name, RECORDED_ARN)
    assert pickup.filter_pattern(AGENT_ROLE).count(AGENT_ROLE) == 1
