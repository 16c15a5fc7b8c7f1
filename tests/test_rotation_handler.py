"""The rotation handler against moto's Secrets Manager and a loopback fake of OpenAI's Admin API.

Each test drives the four steps the way Secrets Manager does (`Service.start` stages an empty
AWSPENDING version, then the Lambda is invoked per step) and checks the outcome on both sides:
what the secret's versions hold, and which keys still work at the provider.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import pytest

from agentfleet.rotation import credential, ledger
from agentfleet.rotation.config import Config
from agentfleet.rotation.errors import GuardError, ManualRotationRequired, ProviderError, RotationInProgress, SweepError
from agentfleet.rotation.handler import Deps, handle
from agentfleet.rotation.logs import LOGGER_NAME
from agentfleet.rotation.strategies import Strategy, build_strategy
from tests.test_rotation_fakes import (  # noqa: F401  (fixtures)
    LogCapture,
    ADMIN_SECRET, PROJECT, Clock, FakeOpenAI, Service, StrictSecrets, aws, fake_openai,
)

OPENAI = "agents/dev/research/openai"
GENERATED = "agents/dev/billing/ledger-api"
MANUAL = "agents/dev/billing/stripe"
STEP_ORDER = ("createSecret", "setSecret", "testSecret", "finishSecret")


@dataclass
class World:
    raw: Any
    sm: StrictSecrets
    svc: Service
    fake: FakeOpenAI
    clock: Clock
    logs: LogCapture
    config: Config
    wrap: dict[str, Any] = field(default_factory=dict)

    def deps(self) -> Deps:
        def factory(name: str, client: Any, config: Config) -> Strategy:
            s = build_strategy(name, client, config)
            return self.wrap[name](s) if name in self.wrap else s

        return Deps(client=self.sm, config=self.config, clock=self.clock, strategy_factory=factory)

    def step(self, name: str, token: str, step: str, **extra: Any) -> dict[str, Any]:
        return handle({"Step": step, "SecretId": name, "ClientRequestToken": token, **extra}, self.deps())

    def rotate(self, name: str, steps: tuple[str, ...] = STEP_ORDER) -> str:
        token = self.svc.start(name)
        for step in steps:
            self.step(name, token, step)
        return token

    def sweep(self, *names: str, force: bool = False) -> dict[str, Any]:
        return handle({"Action": "revokeDue", "SecretIds": list(names), "Force": force}, self.deps())

    def current(self, name: str) -> dict[str, Any]:
        # moto keeps answering the first version when no stage is given; the real service answers AWSCURRENT.
        return credential.parse(self.raw.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"])

    def stages(self, name: str, *, with_ledger: bool = False) -> dict[str, list[str]]:
        """Labelled versions; the ledger's own label is left out unless asked for."""
        meta = self.raw.describe_secret(SecretId=name)
        out = {v: sorted(x for x in s if with_ledger or x != ledger.LEDGER_STAGE)
               for v, s in meta.get("VersionIdsToStages", {}).items()}
        return {v: s for v, s in out.items() if s}

    def ledger(self, name: str) -> ledger.Ledger:
        return ledger.read(self.raw, name)

    def events(self, event: str) -> list[dict[str, Any]]:
        return [d for d in map(json.loads, self.logs.lines) if d.get("event") == event]


@pytest.fixture()
def world(aws: Any, fake_openai: FakeOpenAI) -> Iterator[World]:
    capture = LogCapture()
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(capture)
    tags = [{"Key": "managed-by", "Value": "agentfleet"}, {"Key": "environment", "Value": "dev"}]
    aws.create_secret(Name=ADMIN_SECRET, SecretString=json.dumps({"admin_key": fake_openai.admin_key, "project_id": PROJECT}))
    aws.create_secret(Name=OPENAI, SecretString=json.dumps(fake_openai.mint_initial()), Tags=tags)
    aws.create_secret(Name=GENERATED, SecretString=json.dumps({"api_key": "initialWebhookSecret0123456789abcdefghijklmn"}), Tags=tags)
    aws.create_secret(Name=MANUAL, SecretString=json.dumps({"api_key": "rk_live_handwritten"}), Tags=tags)
    svc = Service(aws)
    for name in (OPENAI, GENERATED, MANUAL):
        svc.enable_rotation(name)
    config = Config(
        grace_hours=24, strategy_map={OPENAI: "openai", GENERATED: "generated", MANUAL: "manual"},
        openai_base_url=fake_openai.base_url, openai_admin_secret_id=ADMIN_SECRET, verify_attempts=1,
        http_timeout_seconds=5,
    )
    try:
        yield World(raw=aws, sm=StrictSecrets(aws), svc=svc, fake=fake_openai, clock=Clock(), logs=capture, config=config)
    finally:
        logger.removeHandler(capture)


def assert_healthy(w: World, name: str) -> None:
    """AWSCURRENT works, no AWSPENDING is left over, every live provider key is accounted for."""
    stages = w.stages(name)
    leftover = [v for v, s in stages.items() if "AWSPENDING" in s and "AWSCURRENT" not in s]
    assert leftover == [], f"orphaned AWSPENDING: {stages}"
    current = w.current(name)
    if name == OPENAI:
        assert w.fake.works(current["api_key"]), "AWSCURRENT holds a key the provider rejects"
        tracked = {credential.key_id(current)}
        for vid, s in stages.items():
            if "AWSPREVIOUS" in s:
                tracked.add(credential.key_id(credential.parse(w.raw.get_secret_value(SecretId=name, VersionId=vid)["SecretString"])))
        tracked |= {e.key_id for e in w.ledger(name).pending}
        assert w.fake.active_key_ids() <= tracked, "a live key is tracked nowhere"
    else:
        assert isinstance(current.get("api_key"), str) and current["api_key"]


# ---------------------------------------------------------------- full rotations


def test_openai_full_rotation_revokes_the_old_key_only_after_the_grace_period(world: World) -> None:
    before = world.current(OPENAI)
    token = world.rotate(OPENAI)
    after = world.current(OPENAI)
    assert after["key_id"] != before["key_id"]
    assert after["service_account_id"] == before["service_account_id"]  # new key on the same account
    assert world.stages(OPENAI)[token] == ["AWSCURRENT"]
    assert world.fake.works(after["api_key"]) and world.fake.works(before["api_key"])  # grace: both work
    [entry] = world.ledger(OPENAI).pending
    assert entry.key_id == before["key_id"] and entry.replaced_by == token
    assert "api_key" not in entry.ref  # the ledger never holds key material

    world.clock.advance(hours=23, minutes=59)
    assert world.sweep(OPENAI)["revoked"] == {OPENAI: []}
    assert world.fake.works(before["api_key"])

    world.clock.advance(minutes=1)
    assert world.sweep(OPENAI)["revoked"] == {OPENAI: [before["key_id"]]}
    assert not world.fake.works(before["api_key"]) and world.fake.works(after["api_key"])
    assert world.ledger(OPENAI).pending == []
    assert [r["key_id"] for r in world.ledger(OPENAI).revoked] == [before["key_id"]]
    assert world.sweep(OPENAI)["revoked"] == {OPENAI: []}  # nothing left to do
    assert_healthy(world, OPENAI)


def test_generated_full_rotation(world: World) -> None:
    before = world.current(GENERATED)
    token = world.rotate(GENERATED)
    after = world.current(GENERATED)
    assert after["api_key"] != before["api_key"]
    assert len(after["api_key"]) == world.config.generated_length and after["api_key"].isalnum()
    assert after["strategy"] == "generated" and after["created_at"] == credential.iso(world.clock.now)
    stages = world.stages(GENERATED)
    assert stages[token] == ["AWSCURRENT"] and ["AWSPREVIOUS"] in stages.values()
    assert world.ledger(GENERATED).pending == []  # nothing to revoke at a provider
    assert_healthy(world, GENERATED)


def test_manual_credentials_are_refused_cleanly(world: World) -> None:
    before = world.stages(MANUAL)
    token = world.svc.start(MANUAL)
    with pytest.raises(ManualRotationRequired):
        world.step(MANUAL, token, "createSecret")
    assert world.stages(MANUAL) == before  # AWSPENDING freed, nothing written
    assert world.current(MANUAL)["api_key"] == "rk_live_handwritten"
    assert world.events("rotation_aborted") and world.events("rotation_failed")[0]["error"] == "ManualRotationRequired"
    world.svc.start(MANUAL)  # the next request is not blocked


def test_two_full_rotations_in_a_row(world: World) -> None:
    first = world.current(OPENAI)
    world.rotate(OPENAI)
    second = world.current(OPENAI)
    world.rotate(OPENAI)
    third = world.current(OPENAI)
    assert [e.key_id for e in world.ledger(OPENAI).pending] == [first["key_id"], second["key_id"]]
    world.clock.advance(hours=25)
    world.sweep(OPENAI)
    assert world.fake.active_key_ids() == {third["key_id"]}


# ---------------------------------------------------------------- idempotency


def _snapshot(w: World, name: str) -> tuple[Any, ...]:
    l = w.ledger(name)
    return (w.stages(name, with_ledger=True), w.current(name), sorted(w.fake.active_key_ids()),
            [(e.key_id, e.not_before) for e in l.pending], [r["key_id"] for r in l.revoked])


@pytest.mark.parametrize("name", [OPENAI, GENERATED])
def test_every_step_run_twice_changes_nothing_more(world: World, name: str) -> None:
    token = world.svc.start(name)
    for step in STEP_ORDER:
        world.step(name, token, step)
        once = _snapshot(world, name)
        world.clock.advance(minutes=5)
        world.step(name, token, step)
        assert _snapshot(world, name) == once, f"{step} is not idempotent"
    assert_healthy(world, name)


# ---------------------------------------------------------------- failure injection


# (label, how to inject, step that fails)
FAULTS = [
    ("provider create", lambda w: w.fake.fail.__setitem__("create", 1), "createSecret"),
    ("read current", lambda w: w.sm.fail_next("get_secret_value", skip=1), "createSecret"),
    ("store pending", lambda w: w.sm.fail_next("put_secret_value"), "createSecret"),
    ("set: read pending", lambda w: w.sm.fail_next("get_secret_value"), "setSecret"),
    ("provider verify", lambda w: w.fake.fail.__setitem__("verify", 1), "testSecret"),
    ("test: read pending", lambda w: w.sm.fail_next("get_secret_value"), "testSecret"),
    ("finish: promote", lambda w: w.sm.fail_next("update_secret_version_stage"), "finishSecret"),
    ("finish: guard", lambda w: w.sm.fail_next("describe_secret", skip=1), "finishSecret"),
    ("finish: read old", lambda w: w.sm.fail_next("get_secret_value"), "finishSecret"),
]


@pytest.mark.parametrize("label,inject,failing_step", FAULTS, ids=[f[0] for f in FAULTS])
def test_a_failure_at_any_step_keeps_the_working_key_and_unblocks_the_next_rotation(
    world: World, label: str, inject: Any, failing_step: str,
) -> None:
    before = world.current(OPENAI)
    token = world.svc.start(OPENAI)
    for step in STEP_ORDER:
        if step == failing_step:
            inject(world)
            with pytest.raises(Exception):
                world.step(OPENAI, token, step)
            break
        world.step(OPENAI, token, step)
    assert world.current(OPENAI) == before, "AWSCURRENT changed after a failed rotation"
    assert world.fake.works(before["api_key"])
    assert_healthy(world, OPENAI)
    assert world.ledger(OPENAI).pending == []  # nothing scheduled: the old key was never replaced
    # Secrets Manager retrying the same token is refused without side effects ...
    with pytest.raises(GuardError):
        world.step(OPENAI, token, "testSecret")
    # ... and a new rotation goes through.
    world.rotate(OPENAI)
    assert world.current(OPENAI)["key_id"] != before["key_id"]
    assert_healthy(world, OPENAI)


GENERATED_FAULTS = [
    ("random password", "get_random_password", "createSecret"),
    ("store pending", "put_secret_value", "createSecret"),
    ("promote", "update_secret_version_stage", "finishSecret"),
]


@pytest.mark.parametrize("label,operation,failing_step", GENERATED_FAULTS, ids=[f[0] for f in GENERATED_FAULTS])
def test_generated_failures_keep_the_current_value(world: World, label: str, operation: str, failing_step: str) -> None:
    before = world.current(GENERATED)
    token = world.svc.start(GENERATED)
    for step in STEP_ORDER:
        if step == failing_step:
            world.sm.fail_next(operation)
            with pytest.raises(Exception):
                world.step(GENERATED, token, step)
            break
        world.step(GENERATED, token, step)
    assert world.current(GENERATED) == before
    assert_healthy(world, GENERATED)
    world.rotate(GENERATED)
    assert world.current(GENERATED) != before


def test_when_the_abort_fails_too_the_sweep_clears_the_pending_later(world: World) -> None:
    before = world.current(OPENAI)
    token = world.svc.start(OPENAI)
    world.step(OPENAI, token, "createSecret")
    world.sm.fail_next("get_secret_value", times=2)  # setSecret's read, then the abort's read
    with pytest.raises(Exception):
        world.step(OPENAI, token, "setSecret")
    assert world.events("abort_failed")
    assert "AWSPENDING" in world.stages(OPENAI)[token]  # the double fault left it behind
    world.clock.advance(minutes=world.config.stale_pending_minutes + 1)
    world.sweep(OPENAI)
    assert world.current(OPENAI) == before
    assert_healthy(world, OPENAI)
    world.rotate(OPENAI)


def test_a_key_minted_but_not_stored_is_revoked_not_orphaned(world: World) -> None:
    before_live = world.fake.active_key_ids()
    token = world.svc.start(OPENAI)
    world.sm.fail_next("put_secret_value")
    with pytest.raises(Exception):
        world.step(OPENAI, token, "createSecret")
    assert world.fake.active_key_ids() == before_live  # the fresh key was deleted again
    assert world.events("unused_key_revoked")


def test_a_failed_verify_revokes_the_new_key_not_the_old_one(world: World) -> None:
    before = world.current(OPENAI)
    token = world.svc.start(OPENAI)
    world.step(OPENAI, token, "createSecret")
    world.step(OPENAI, token, "setSecret")
    pending = credential.parse(world.raw.get_secret_value(SecretId=OPENAI, VersionId=token)["SecretString"])
    world.fake.deactivate(pending["key_id"])  # the provider rejects the new key
    with pytest.raises(ProviderError):
        world.step(OPENAI, token, "testSecret")
    assert world.fake.works(before["api_key"])
    assert world.current(OPENAI) == before
    assert_healthy(world, OPENAI)


def test_a_lost_ledger_write_is_healed_when_finish_is_retried(world: World) -> None:
    before = world.current(OPENAI)
    token = world.svc.start(OPENAI)
    for step in STEP_ORDER[:3]:
        world.step(OPENAI, token, step)
    world.sm.fail_next("put_secret_value")  # the ledger write after the promotion
    with pytest.raises(Exception):
        world.step(OPENAI, token, "finishSecret")
    assert world.stages(OPENAI)[token] == ["AWSCURRENT"]  # promoted, and the abort did not undo it
    assert world.ledger(OPENAI).pending == []
    world.step(OPENAI, token, "finishSecret")  # Secrets Manager retries the step
    assert [e.key_id for e in world.ledger(OPENAI).pending] == [before["key_id"]]
    assert world.fake.works(before["api_key"])  # still within the grace period


# ---------------------------------------------------------------- revocation rules


def test_a_failed_revoke_is_logged_kept_and_never_touches_awscurrent(world: World) -> None:
    before = world.current(OPENAI)
    world.rotate(OPENAI)
    stages = world.stages(OPENAI)
    current = world.current(OPENAI)
    world.clock.advance(hours=25)
    world.fake.fail["revoke"] = 1
    world.sweep(OPENAI)
    assert world.stages(OPENAI) == stages and world.current(OPENAI) == current
    assert world.fake.works(before["api_key"])
    [failure] = world.events("revoke_failed")
    assert failure["key_id"] == before["key_id"] and failure["attempts"] == 1 and failure["level"] == "ERROR"
    assert failure["error"] == "ProviderError:revoke_key:500:server_error"
    [entry] = world.ledger(OPENAI).pending
    assert entry.attempts == 1 and entry.last_error == failure["error"]
    world.sweep(OPENAI)  # the next sweep succeeds
    assert not world.fake.works(before["api_key"]) and world.ledger(OPENAI).pending == []


def test_no_revoke_while_the_current_key_fails_verification(world: World) -> None:
    before = world.current(OPENAI)
    world.rotate(OPENAI)
    world.clock.advance(hours=48)
    world.fake.fail["verify"] = 1
    world.sweep(OPENAI)
    assert world.fake.works(before["api_key"])
    assert world.events("revoke_skipped")[0]["reason"] == "AWSCURRENT key failed verification"
    world.sweep(OPENAI)
    assert not world.fake.works(before["api_key"])


def test_every_revoke_follows_a_successful_verify_of_the_replacing_key(world: World) -> None:
    world.rotate(OPENAI)
    world.rotate(OPENAI)
    world.clock.advance(hours=30)
    world.sweep(OPENAI)
    calls = world.fake.calls
    deletes = [i for i, c in enumerate(calls) if c["op"] == "revoke" and c["status"] == 200]
    assert len(deletes) == 2
    current_key = world.current(OPENAI)["key_id"]
    for i in deletes:
        assert any(c["op"] == "verify" and c["status"] == 200 and c["bearer_key_id"] == current_key for c in calls[:i])


def test_a_key_put_back_as_current_by_hand_is_never_revoked(world: World) -> None:
    before = world.current(OPENAI)
    token = world.rotate(OPENAI)
    # An operator rolls back: AWSCURRENT goes back to the previous version (the old key).
    [previous] = [v for v, s in world.stages(OPENAI).items() if "AWSPREVIOUS" in s]
    world.raw.update_secret_version_stage(SecretId=OPENAI, VersionStage="AWSCURRENT",
                                          MoveToVersionId=previous, RemoveFromVersionId=token)
    assert world.current(OPENAI) == before
    world.clock.advance(hours=25)
    world.sweep(OPENAI)
    assert world.fake.works(before["api_key"])
    assert world.events("revoke_skipped")[0]["reason"] == "key is in use"
    assert world.ledger(OPENAI).pending == []  # dropped, not retried forever


def test_grace_zero_revokes_right_after_the_promotion(world: World) -> None:
    world.config = replace(world.config, grace_hours=0)
    before = world.current(OPENAI)
    world.rotate(OPENAI)
    assert not world.fake.works(before["api_key"])
    assert world.fake.works(world.current(OPENAI)["api_key"])


def test_emergency_rotate_now_is_one_call(world: World) -> None:
    world.rotate(OPENAI)  # an earlier rotation still in its grace period
    older = world.ledger(OPENAI).pending[0].key_id
    before = world.current(OPENAI)
    result = handle({"Action": "rotateNow", "SecretId": OPENAI, "Emergency": True}, world.deps())
    assert result["status"] == "rotated" and result["emergency"] is True
    after = world.current(OPENAI)
    assert after["key_id"] != before["key_id"] and world.fake.works(after["api_key"])
    assert not world.fake.works(before["api_key"])
    assert older not in world.fake.active_key_ids()  # everything pending goes, not just the last key
    assert world.fake.active_key_ids() == {after["key_id"]}
    assert_healthy(world, OPENAI)


def test_forced_sweep_revokes_now_after_a_normal_rotation(world: World) -> None:
    before = world.current(OPENAI)
    world.rotate(OPENAI)
    world.sweep(OPENAI, force=True)
    assert not world.fake.works(before["api_key"])


# ---------------------------------------------------------------- concurrency


def test_rotate_now_is_rejected_while_a_rotation_is_in_flight(world: World) -> None:
    token = world.svc.start(OPENAI)
    world.step(OPENAI, token, "createSecret")
    snapshot = _snapshot(world, OPENAI)
    with pytest.raises(RotationInProgress):
        handle({"Action": "rotateNow", "SecretId": OPENAI}, world.deps())
    assert _snapshot(world, OPENAI) == snapshot
    for step in STEP_ORDER[1:]:
        world.step(OPENAI, token, step)  # the in-flight rotation still completes
    assert world.stages(OPENAI)[token] == ["AWSCURRENT"]


def test_steps_of_a_superseded_token_are_refused_untouched(world: World) -> None:
    token_a = world.svc.start(OPENAI)
    world.step(OPENAI, token_a, "createSecret")
    world.clock.advance(hours=2)
    handle({"Action": "rotateNow", "SecretId": OPENAI}, world.deps())  # clears the stale A, rotates
    snapshot = _snapshot(world, OPENAI)
    with pytest.raises(GuardError):
        world.step(OPENAI, token_a, "finishSecret")
    assert _snapshot(world, OPENAI) == snapshot
    assert world.events("stale_pending_cleared")
    assert_healthy(world, OPENAI)


def test_two_invocations_creating_the_same_token_leave_one_key(world: World) -> None:
    token = world.svc.start(OPENAI)
    inner_done: list[bool] = []

    class Racing:
        """Runs a complete concurrent createSecret while the outer one is minting its key."""

        def __init__(self, inner: Strategy):
            self.inner, self.name, self.revokes = inner, inner.name, inner.revokes

        def create(self, current: Any, *, label: str) -> Any:
            new = self.inner.create(current, label=label)
            if not inner_done:
                inner_done.append(True)
                world.step(OPENAI, token, "createSecret")
            return new

        def test(self, new: Any) -> None:
            self.inner.test(new)

        def revoke(self, old: Any) -> None:
            self.inner.revoke(old)

    world.wrap["openai"] = Racing
    world.step(OPENAI, token, "createSecret")
    assert world.events("create_lost_race")
    world.wrap.clear()
    for step in STEP_ORDER[1:]:
        world.step(OPENAI, token, step)
    live = world.fake.active_key_ids()
    assert len(live) == 2  # the new current and the old one in its grace period, no third key
    assert_healthy(world, OPENAI)


def test_sweep_clears_an_abandoned_pending_but_not_a_live_one(world: World) -> None:
    token = world.svc.start(OPENAI)
    world.step(OPENAI, token, "createSecret")
    pending_key = credential.parse(world.raw.get_secret_value(SecretId=OPENAI, VersionId=token)["SecretString"])["key_id"]
    world.sweep(OPENAI)
    assert "AWSPENDING" in world.stages(OPENAI)[token]  # live: left alone
    world.clock.advance(minutes=world.config.stale_pending_minutes + 1)
    world.sweep(OPENAI)
    assert token not in world.stages(OPENAI)
    assert pending_key not in world.fake.active_key_ids()
    assert_healthy(world, OPENAI)


def test_a_sweep_without_ids_covers_the_functions_own_secrets(world: World) -> None:
    before = world.current(OPENAI)
    world.rotate(OPENAI)
    world.clock.advance(hours=25)
    result = handle({"Action": "revokeDue"}, world.deps())
    assert set(result["revoked"]) == {OPENAI, GENERATED, MANUAL}
    assert result["revoked"][OPENAI] == [before["key_id"]]


def test_a_sweep_failure_on_one_secret_does_not_stop_the_others(world: World) -> None:
    world.rotate(OPENAI)
    world.clock.advance(hours=25)
    with pytest.raises(SweepError):
        world.sweep("agents/dev/unknown/secret", OPENAI)
    assert world.ledger(OPENAI).pending == []


# ---------------------------------------------------------------- logs


def test_logs_are_json_and_never_contain_a_secret_value(world: World) -> None:
    world.rotate(OPENAI)
    world.rotate(GENERATED)
    token = world.svc.start(OPENAI)
    world.step(OPENAI, token, "createSecret")
    pending = credential.parse(world.raw.get_secret_value(SecretId=OPENAI, VersionId=token)["SecretString"])
    world.fake.deactivate(pending["key_id"])  # the provider's 401 message quotes part of the key
    with pytest.raises(ProviderError):
        world.step(OPENAI, token, "testSecret")
    world.clock.advance(hours=25)
    world.fake.fail["revoke"] = 1
    world.sweep(OPENAI, GENERATED)
    handle({"Action": "rotateNow", "SecretId": OPENAI, "Emergency": True}, world.deps())

    values = set(world.fake.minted_values) | {world.fake.admin_key}
    for name in (GENERATED, MANUAL):
        for v in world.raw.list_secret_version_ids(SecretId=name)["Versions"]:
            values.add(credential.parse(world.raw.get_secret_value(SecretId=name, VersionId=v["VersionId"])["SecretString"])["api_key"])
    assert len(world.logs.lines) > 30
    fragments = {v[i:i + 12] for v in values for i in range(0, len(v) - 12, 4)}
    for line in world.logs.lines:
        doc = json.loads(line)
        assert isinstance(doc["event"], str)
        leaked = [f for f in fragments if f in line]
        assert not leaked, f"secret material in log line {doc['event']}"
