"""Dual-store rotation: Secrets Manager (moto) + the loopback fake of OpenAI's Admin API + a REAL OpenBao.

The function's configuration is the builders' own (`rotation_plan.agent_rotator(...).environment`
read by `rotation.config.load_config`), the Vault policies loaded into OpenBao are the builders'
own (`plan.vault_policy` for agents, `rotation_plan.rotation_vault_policy` for rotation functions),
and the rotation function writes to OpenBao with a token holding only its rotation policy.

What stands in for production: the function logs in with that token (`TokenLogin`) instead of
Vault's AWS IAM auth: OpenBao 2.x ships no AWS auth plugin (its catalog answers "plugin not
found: aws"), and STS cannot verify a signature offline. The IAM login request itself is checked
at the end of this file against a loopback stand-in that verifies the SigV4 signature
independently of botocore.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import shlex
import socket
import threading
import uuid
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import hvac
import hvac.exceptions
import pytest
from botocore.credentials import Credentials

from agentfleet.core import naming
from agentfleet.core import rotation_plan as rp
from agentfleet.core.loader import parse_fleet
from agentfleet.core.model import Fleet
from agentfleet.core.plan import vault_policy
from agentfleet.core.settings import StackSettings
from agentfleet.rotation import credential, ledger, vault_sync
from agentfleet.rotation.config import Config, VaultTarget, load_config
from agentfleet.rotation.errors import ConfigError
from agentfleet.rotation.handler import Deps, EmergencyIncomplete, handle
from agentfleet.rotation.logs import LOGGER_NAME
from agentfleet.rotation.strategies import Strategy, build_strategy
from agentfleet.rotation.vault_sync import AwsIamLogin, TokenLogin, VaultClient, VaultError, VaultNotConfigured, VaultWriter
from tests.openbao_server import OpenBao, mount_kv_v2, outcome
from tests.test_rotation_fakes import (  # noqa: F401  (fixtures)
    LogCapture,
    ADMIN_SECRET, PROJECT, Clock, FakeOpenAI, Service, StrictSecrets, aws, fake_openai,
)

MOUNT = "rotkv"
"""A mount of its own: the isolation tests share the session's OpenBao and use `kv`."""
RESEARCH = "agents/dev/research/openai"
CRM = "agents/dev/crm/openai"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


def settings(dev: StackSettings, isolation: str = "per-agent") -> StackSettings:
    return dev.model_copy(update={"vault_mount": MOUNT, "rotation_isolation": isolation})


# ---------------------------------------------------------------- OpenBao, once per module


@dataclass
class Bao:
    server: OpenBao
    root: hvac.Client
    s: StackSettings
    tokens: dict[str, str]
    """Policy name -> a token holding only that policy (agents and rotation functions)."""
    no_policy_token: str

    def client(self, token: str) -> hvac.Client:
        return self.server.client(token)

    def value(self, agent: str, cred: str) -> str:
        doc = self.root.secrets.kv.v2.read_secret_version(
            naming.vault_path(self.s, agent, cred), mount_point=MOUNT, raise_on_deleted_version=True)
        return str(doc["data"]["data"][naming.VAULT_VALUE_KEY])

    def kv_version(self, agent: str, cred: str) -> int:
        meta = self.root.secrets.kv.v2.read_secret_metadata(naming.vault_path(self.s, agent, cred), mount_point=MOUNT)
        return int(meta["data"]["current_version"])

    def put(self, agent: str, cred: str, value: str) -> None:
        self.root.secrets.kv.v2.create_or_update_secret(
            naming.vault_path(self.s, agent, cred), secret={naming.VAULT_VALUE_KEY: value}, mount_point=MOUNT)

    def agent_reads(self, agent: str, cred: str) -> str:
        """What the agent itself reads from Vault with a token of its generated policy."""
        c = self.client(self.tokens[naming.vault_policy_name(self.s, agent)])
        doc = c.secrets.kv.v2.read_secret_version(naming.vault_path(self.s, agent, cred), mount_point=MOUNT,
                                                  raise_on_deleted_version=True)
        return str(doc["data"]["data"][naming.VAULT_VALUE_KEY])


def _token(root: hvac.Client, policies: list[str]) -> str:
    return str(root.auth.token.create(policies=policies, no_default_policy=True, ttl="1h", renewable=False)["auth"]["client_token"])


@pytest.fixture(scope="module")
def bao(openbao: OpenBao, sample_fleet: Fleet, dev_settings: StackSettings) -> Iterator[Bao]:
    root = openbao.client()
    mount_kv_v2(root, MOUNT)
    s = settings(dev_settings)
    tokens: dict[str, str] = {}
    for agent in sample_fleet.agents:
        name = naming.vault_policy_name(s, agent.name)
        root.sys.create_or_update_policy(name, vault_policy(s, agent))
        tokens[name] = _token(root, [name])
    for mode in ("per-agent", "shared"):
        ms = settings(dev_settings, mode)
        for spec in rp.rotators(ms, sample_fleet):
            hcl = rp.rotation_vault_policy(ms, spec)
            if hcl is not None:
                root.sys.create_or_update_policy(spec.vault_name, hcl)
                tokens[spec.vault_name] = _token(root, [spec.vault_name])
    yield Bao(openbao, root, s, tokens, _token(root, ["no-such-policy"]))


# ---------------------------------------------------------------- the world of one test


class LostResponse(VaultWriter):
    """Writes for real, then fails as if the response was lost (the value IS in Vault)."""

    def __init__(self, inner: VaultWriter, times: int = 1):
        super().__init__(inner.client, TokenLogin("unused"))
        self.inner, self.times = inner, times

    def write(self, target: VaultTarget, value: str) -> int | None:
        version = self.inner.write(target, value)
        if self.times > 0:
            self.times -= 1
            raise VaultError("vault_write", None, "TimeoutError")
        return version


@dataclass
class World:
    raw: Any
    sm: StrictSecrets
    svc: Service
    fake: FakeOpenAI
    bao: Bao
    clock: Clock
    logs: LogCapture
    config: Config
    vault_token: str
    vault_address: str
    writer_wrap: Callable[[VaultWriter], VaultWriter] | None = None
    writers_built: int = 0
    wrap: dict[str, Any] = field(default_factory=dict)
    revoke_witness: list[tuple[str, str, str]] = field(default_factory=list)
    """(revoked key id, Vault value, AWSCURRENT key) at the moment of every provider revoke."""

    def writer(self, config: Config) -> VaultWriter | None:
        self.writers_built += 1
        w = VaultWriter(VaultClient(self.vault_address, timeout=5), TokenLogin(self.vault_token))
        return self.writer_wrap(w) if self.writer_wrap else w

    def deps(self) -> Deps:
        def factory(name: str, client: Any, config: Config) -> Strategy:
            s = build_strategy(name, client, config)
            return self.wrap[name](s) if name in self.wrap else s

        return Deps(client=self.sm, config=self.config, clock=self.clock, strategy_factory=factory,
                    vault_factory=self.writer)

    def step(self, name: str, token: str, step: str) -> dict[str, Any]:
        return handle({"Step": step, "SecretId": name, "ClientRequestToken": token}, self.deps())

    def rotate(self, name: str = RESEARCH) -> str:
        token = self.svc.start(name)
        for step in STEPS:
            self.step(name, token, step)
        return token

    def sweep(self, *names: str, force: bool = False) -> dict[str, Any]:
        return handle({"Action": "revokeDue", "SecretIds": list(names or (RESEARCH,)), "Force": force}, self.deps())

    def current(self, name: str = RESEARCH) -> dict[str, Any]:
        return credential.parse(self.raw.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"])

    def current_version(self, name: str = RESEARCH) -> str:
        meta = self.raw.describe_secret(SecretId=name)
        [vid] = [v for v, s in meta["VersionIdsToStages"].items() if "AWSCURRENT" in s]
        return str(vid)

    def events(self, event: str) -> list[dict[str, Any]]:
        return [d for d in map(json.loads, self.logs.lines) if d.get("event") == event]

    def pending(self, name: str = RESEARCH) -> list[str]:
        return [e.key_id for e in ledger.read(self.raw, name).pending]


class Witness:
    """Strategy wrapper recording what Vault and AWSCURRENT hold whenever a key is revoked."""

    def __init__(self, inner: Strategy, world: World):
        self.inner, self.world, self.name, self.revokes = inner, world, inner.name, inner.revokes

    def create(self, current: Any, *, label: str) -> Any:
        return self.inner.create(current, label=label)

    def test(self, new: Any) -> None:
        self.inner.test(new)

    def revoke(self, old: Any) -> None:
        w = self.world
        w.revoke_witness.append((old["key_id"], w.bao.value("research", "openai"), w.current()["api_key"]))
        self.inner.revoke(old)


@pytest.fixture()
def world(aws: Any, fake_openai: FakeOpenAI, bao: Bao, sample_fleet: Fleet) -> Iterator[World]:
    capture = LogCapture()
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(capture)
    tags = [{"Key": "managed-by", "Value": "agentfleet"}, {"Key": "environment", "Value": "dev"}]
    aws.create_secret(Name=ADMIN_SECRET, SecretString=json.dumps({"admin_key": fake_openai.admin_key, "project_id": PROJECT}))
    svc = Service(aws)
    for agent, name in (("research", RESEARCH), ("crm", CRM)):
        initial = fake_openai.mint_initial()
        aws.create_secret(Name=name, SecretString=json.dumps(initial), Tags=tags)
        svc.enable_rotation(name)
        bao.put(agent, "openai", initial["api_key"])  # both stores start with the same key
    spec = rp.agent_rotator(bao.s, sample_fleet.agent("research"))
    assert spec is not None
    config = replace(load_config(spec.environment), openai_base_url=fake_openai.base_url,
                     openai_admin_secret_id=ADMIN_SECRET, verify_attempts=1, http_timeout_seconds=5)
    assert dict(config.vault_map) == {RESEARCH: VaultTarget(MOUNT, "dev/research/openai")}  # the builders' map
    w = World(raw=aws, sm=StrictSecrets(aws), svc=svc, fake=fake_openai, bao=bao, clock=Clock(), logs=capture,
              config=config, vault_token=bao.tokens[spec.vault_name], vault_address=bao.server.address)
    w.wrap["openai"] = lambda s: Witness(s, w)
    try:
        yield w
    finally:
        logger.removeHandler(capture)


def assert_safe_revocations(w: World) -> None:
    """Every revoke happened while Vault already held the AWSCURRENT key, never the revoked one."""
    assert w.revoke_witness, "nothing was revoked"
    for key_id, in_vault, current in w.revoke_witness:
        assert in_vault == current, f"{key_id} revoked while Vault held another key than AWSCURRENT"


# ---------------------------------------------------------------- full rotation


@pytest.mark.openbao
def test_a_full_rotation_updates_both_stores_to_the_same_new_key(world: World) -> None:
    before = world.current()
    crm_before = world.bao.value("crm", "openai")
    version_before = world.bao.kv_version("research", "openai")
    token = world.rotate()
    after = world.current()
    assert after["key_id"] != before["key_id"]
    assert world.bao.value("research", "openai") == after["api_key"]
    assert world.bao.agent_reads("research", "openai") == after["api_key"]  # the agent's own policy reads it
    assert world.fake.works(after["api_key"]) and world.fake.works(before["api_key"])  # grace period
    assert world.bao.kv_version("research", "openai") == version_before + 1
    assert world.bao.value("crm", "openai") == crm_before  # another agent's copy is untouched
    record = vault_sync.read_record(world.raw, RESEARCH)
    assert record is not None and record.version_id == token and record.key_id == after["key_id"]
    [synced] = world.events("vault_synced")
    assert synced["vault"] == f"{MOUNT}/dev/research/openai" and synced["version"] == token

    world.clock.advance(hours=24, minutes=1)
    assert world.sweep()["revoked"] == {RESEARCH: [before["key_id"]]}
    assert not world.fake.works(before["api_key"])
    assert world.fake.works(world.bao.agent_reads("research", "openai"))
    assert_safe_revocations(world)
    assert world.bao.kv_version("research", "openai") == version_before + 1  # the sweep saw it in sync


@pytest.mark.openbao
def test_every_step_and_sweep_twice_writes_vault_once(world: World) -> None:
    token = world.svc.start(RESEARCH)
    start = world.bao.kv_version("research", "openai")
    for step in STEPS:
        world.step(RESEARCH, token, step)
        world.step(RESEARCH, token, step)
    world.sweep()
    world.sweep()
    assert world.bao.kv_version("research", "openai") == start + 1
    assert len(world.events("vault_synced")) == 1


@pytest.mark.openbao
def test_secrets_without_a_vault_copy_never_reach_vault(world: World, bao: Bao) -> None:
    name = "agents/dev/research/search"  # manual, AWS only: not in the map
    world.raw.create_secret(Name=name, SecretString=json.dumps({"api_key": "x"}))
    world.config = replace(world.config, strategy_map={**world.config.strategy_map, name: "generated"})
    world.svc.enable_rotation(name)
    world.rotate(name)
    world.sweep(name)
    assert world.writers_built == 0 and not world.events("vault_synced") and not world.events("vault_sync_failed")
    assert vault_sync.read_record(world.raw, name) is None


@pytest.mark.openbao
def test_sweeps_copy_a_hand_written_first_value_and_stay_quiet_before_there_is_one(world: World) -> None:
    name = "agents/dev/research/fresh"
    world.raw.create_secret(Name=name)  # created by the stack, no value yet
    world.config = replace(world.config, strategy_map={**world.config.strategy_map, name: "openai"},
                           vault_map={**world.config.vault_map, name: VaultTarget(MOUNT, "dev/research/openai")})
    assert world.sweep(name)["vault"] == {name: "no_value"} and not world.events("vault_sync_failed")
    first = world.fake.mint_initial()
    world.raw.put_secret_value(SecretId=name, SecretString=json.dumps(first))  # the operator's first value
    assert world.sweep(name)["vault"] == {name: "synced"}  # Secrets Manager is the source of truth
    assert world.bao.agent_reads("research", "openai") == first["api_key"]


@pytest.mark.openbao
def test_a_generated_dual_store_credential_is_synced(world: World, bao: Bao, dev_settings: StackSettings) -> None:
    fleet = parse_fleet(
        "version: 1\nagents:\n  - name: hooks\n    runtime: {service: lambda.amazonaws.com}\n    credentials:\n"
        "      - {name: signing, service: github, type: secret_key, rotation: {strategy: generated}, stores: [aws, vault]}\n",
        "inline.yaml")
    spec = rp.agent_rotator(bao.s, fleet.agent("hooks"))
    assert spec is not None
    hcl = rp.rotation_vault_policy(bao.s, spec)
    assert hcl is not None
    bao.root.sys.create_or_update_policy(spec.vault_name, hcl)
    name = naming.secret_name(bao.s, "hooks", "signing")
    world.raw.create_secret(Name=name, SecretString="initialValue0123456789abcdefghijklmnopqrstuvwxyzAB")
    world.svc.enable_rotation(name)
    world.config = replace(load_config(spec.environment), generated_length=48)
    world.vault_token = _token(bao.root, [spec.vault_name])
    world.rotate(name)
    new = world.current(name)["api_key"]
    assert len(new) == 48 and bao.root.secrets.kv.v2.read_secret_version(
        "dev/hooks/signing", mount_point=MOUNT, raise_on_deleted_version=True)["data"]["data"]["value"] == new


# ---------------------------------------------------------------- the rotation role's Vault policy in OpenBao


@pytest.mark.openbao
@pytest.mark.parametrize("isolation", ["per-agent", "shared"])
def test_a_rotation_token_writes_exactly_its_rotated_vault_copies(bao: Bao, sample_fleet: Fleet, dev_settings: StackSettings,
                                                                   isolation: str) -> None:
    s = settings(dev_settings, isolation)
    every = [(a.name, c.name) for a in sample_fleet.agents for c in a.credentials]
    extras = [("research", "openai2"), ("research", "openai/extra"), ("researcher", "openai"), ("research-2", "openai")]
    specs = [x for x in rp.rotators(s, sample_fleet) if x.vault_copies]
    assert specs, "no rotation function with Vault copies"
    checked = 0
    for spec in specs:
        kv = bao.client(bao.tokens[spec.vault_name]).secrets.kv.v2
        own = {(r.agent, r.credential) for r in spec.vault_copies}
        for agent, cred in every + extras:
            path = naming.vault_path(s, agent, cred)
            write = outcome(lambda: kv.create_or_update_secret(path, secret={"value": f"probe-{uuid.uuid4()}"}, mount_point=MOUNT))
            assert write == ("ok" if (agent, cred) in own else "forbidden"), (spec.owner, agent, cred, write)
            # Write-only: not even its own copies are readable, listable or deletable.
            assert outcome(lambda: kv.read_secret_version(path, mount_point=MOUNT, raise_on_deleted_version=True)) == "forbidden"
            assert outcome(lambda: kv.delete_latest_version_of_secret(path, mount_point=MOUNT)) == "forbidden"
            assert outcome(lambda: kv.update_metadata(path, max_versions=1, mount_point=MOUNT)) == "forbidden"
            checked += 1
        for folder in ("dev", "dev/research", ""):
            assert outcome(lambda: kv.list_secrets(folder, mount_point=MOUNT)) == "forbidden"
        other_env = naming.vault_path(s.model_copy(update={"environment": "prod"}), "research", "openai")
        assert outcome(lambda: kv.create_or_update_secret(other_env, secret={"value": "x"}, mount_point=MOUNT)) == "forbidden"
        rc = bao.client(bao.tokens[spec.vault_name])
        assert outcome(lambda: rc.sys.read_policy(spec.vault_name)) == "forbidden"
    assert checked == len(specs) * len(every + extras)


@pytest.mark.openbao
def test_agents_cannot_write_their_own_or_use_the_rotation_policy(bao: Bao) -> None:
    kv = bao.client(bao.tokens[naming.vault_policy_name(bao.s, "research")]).secrets.kv.v2
    assert outcome(lambda: kv.create_or_update_secret("dev/research/openai", secret={"value": "x"}, mount_point=MOUNT)) == "forbidden"
    assert outcome(lambda: kv.read_secret_version("dev/crm/openai", mount_point=MOUNT, raise_on_deleted_version=True)) == "forbidden"


# ---------------------------------------------------------------- Vault failures


def _deny(w: World) -> None:
    w.vault_token = w.bao.no_policy_token  # a real 403 from OpenBao


def _unreachable(w: World) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    w.vault_address = f"http://127.0.0.1:{port}"  # nothing listens there


def _unconfigured(w: World) -> None:
    w.writer = lambda config: None  # type: ignore[method-assign]  # no VAULT_ADDR / VAULT_ROLE


BEFORE_WRITE = {"denied": ("ProviderError:vault_write:403:permission_denied", _deny),
                "unreachable": ("ProviderError:vault_write:None:URLError", _unreachable),
                "not configured": ("VaultNotConfigured", _unconfigured)}


@pytest.mark.openbao
@pytest.mark.parametrize("label", list(BEFORE_WRITE))
def test_a_vault_failure_before_the_write_keeps_the_old_key_until_a_sweep_syncs(world: World, label: str) -> None:
    error, inject = BEFORE_WRITE[label]
    healthy_token, healthy_address, healthy_writer = world.vault_token, world.vault_address, world.writer
    before = world.current()
    inject(world)
    world.rotate()  # succeeds in AWS
    after = world.current()
    assert after["key_id"] != before["key_id"] and world.fake.works(after["api_key"])
    assert world.bao.value("research", "openai") == before["api_key"]  # Vault still has the old, still valid key
    [failed] = world.events("vault_sync_failed")
    assert failed["error"] == error and failed["level"] == "ERROR" and failed["vault"] == f"{MOUNT}/dev/research/openai"

    world.clock.advance(hours=30)
    assert world.sweep()["revoked"] == {RESEARCH: []}  # Vault still failing: no revocation
    assert world.fake.works(before["api_key"]) and world.fake.works(world.bao.agent_reads("research", "openai"))
    assert world.pending() == [before["key_id"]]
    assert world.events("revoke_skipped")[-1]["reason"] == "Vault copy does not hold AWSCURRENT yet"
    assert len(world.events("vault_sync_failed")) == 2  # one per attempt: the alarm's metric counts them

    world.vault_token, world.vault_address, world.writer = healthy_token, healthy_address, healthy_writer  # type: ignore[method-assign]
    result = world.sweep()
    assert result["vault"] == {RESEARCH: "synced"} and result["revoked"] == {RESEARCH: [before["key_id"]]}
    assert world.bao.agent_reads("research", "openai") == after["api_key"]
    assert not world.fake.works(before["api_key"])
    assert_safe_revocations(world)


@pytest.mark.openbao
@pytest.mark.parametrize("label", ["sync record lost", "Vault response lost"])
def test_a_failure_after_the_vault_write_keeps_the_old_key_until_the_next_sweep(world: World, label: str) -> None:
    before = world.current()
    token = world.svc.start(RESEARCH)
    for step in STEPS[:3]:
        world.step(RESEARCH, token, step)
    if label == "sync record lost":
        world.sm.fail_next("put_secret_value")  # the sync record, written right after the Vault write
    else:
        world.writer_wrap = lambda w: LostResponse(w)
    world.step(RESEARCH, token, "finishSecret")
    after = world.current()
    assert world.bao.value("research", "openai") == after["api_key"]  # the write itself landed
    assert vault_sync.read_record(world.raw, RESEARCH) is None  # but is not recorded
    assert world.events("vault_sync_failed")
    assert world.pending() == [before["key_id"]]  # the ledger entry still exists
    world.writer_wrap = None

    world.clock.advance(hours=30)
    result = world.sweep()
    assert result["vault"] == {RESEARCH: "synced"} and result["revoked"] == {RESEARCH: [before["key_id"]]}
    assert not world.fake.works(before["api_key"]) and world.fake.works(world.bao.agent_reads("research", "openai"))
    record = vault_sync.read_record(world.raw, RESEARCH)
    assert record is not None and record.version_id == token
    assert_safe_revocations(world)


@pytest.mark.openbao
def test_a_sweep_never_copies_a_current_key_that_does_not_work(world: World) -> None:
    healthy = world.vault_token
    before = world.current()
    _deny(world)
    world.rotate()
    world.fake.deactivate(world.current()["key_id"])  # AWSCURRENT broke at the provider meanwhile
    world.vault_token = healthy
    world.clock.advance(hours=30)
    assert world.sweep()["vault"] == {RESEARCH: "failed"}
    assert world.events("vault_sync_failed")[-1]["error"].startswith("ProviderError:verify")
    assert world.bao.agent_reads("research", "openai") == before["api_key"]  # Vault keeps the working key
    assert world.fake.works(before["api_key"])


@pytest.mark.openbao
def test_the_same_failure_with_grace_zero_still_waits_for_vault(world: World) -> None:
    world.config = replace(world.config, grace_hours=0)
    before = world.current()
    _deny(world)
    world.rotate()
    assert world.fake.works(before["api_key"])  # grace 0 would have revoked at finish; Vault holds it back
    assert world.events("revoke_skipped")[0]["reason"] == "Vault copy does not hold AWSCURRENT yet"


@pytest.mark.openbao
def test_a_rolled_back_current_is_written_back_to_vault_and_never_revoked(world: World) -> None:
    before = world.current()
    token = world.rotate()
    meta = world.raw.describe_secret(SecretId=RESEARCH)
    [previous] = [v for v, s in meta["VersionIdsToStages"].items() if "AWSPREVIOUS" in s]
    world.raw.update_secret_version_stage(SecretId=RESEARCH, VersionStage="AWSCURRENT", MoveToVersionId=previous,
                                          RemoveFromVersionId=token)  # an operator rolls back
    world.clock.advance(hours=30)
    result = world.sweep()
    assert result["vault"] == {RESEARCH: "synced"}
    assert world.bao.agent_reads("research", "openai") == before["api_key"]
    assert world.fake.works(before["api_key"])


# ---------------------------------------------------------------- emergency


@pytest.mark.openbao
def test_emergency_rotate_now_updates_both_stores_and_revokes_immediately(world: World) -> None:
    world.rotate()  # an earlier rotation still in its grace period
    older = world.pending()
    before = world.current()
    result = handle({"Action": "rotateNow", "SecretId": RESEARCH, "Emergency": True}, world.deps())
    after = world.current()
    assert result["status"] == "rotated" and result["vault"] == "in_sync" and result["unrevoked"] == []
    assert world.bao.agent_reads("research", "openai") == after["api_key"]
    assert not world.fake.works(before["api_key"]) and older[0] not in world.fake.active_key_ids()
    assert world.fake.active_key_ids() >= {after["key_id"]} and world.fake.works(after["api_key"])
    assert_safe_revocations(world)


@pytest.mark.openbao
def test_an_emergency_that_cannot_update_vault_fails_loudly_and_revokes_nothing(world: World) -> None:
    healthy = world.vault_token
    before = world.current()
    _deny(world)
    with pytest.raises(EmergencyIncomplete) as exc:
        handle({"Action": "rotateNow", "SecretId": RESEARCH, "Emergency": True}, world.deps())
    assert before["key_id"] in str(exc.value) and "Vault copy was not updated" in str(exc.value)
    after = world.current()
    assert after["key_id"] != before["key_id"] and world.fake.works(after["api_key"])  # AWSCURRENT works
    assert world.fake.works(before["api_key"]) and world.bao.agent_reads("research", "openai") == before["api_key"]
    assert world.events("emergency_incomplete")
    world.vault_token = healthy  # Vault fixed: the documented follow-up finishes the job
    result = world.sweep(force=True)
    assert result["revoked"] == {RESEARCH: [before["key_id"]]}
    assert world.bao.agent_reads("research", "openai") == after["api_key"]
    assert_safe_revocations(world)


@pytest.mark.openbao
def test_the_documented_one_command_is_what_the_handler_runs(world: World, sample_fleet: Fleet) -> None:
    plan = rp.emergency_rotation(world.bao.s, sample_fleet, "research", "openai")
    argv = shlex.split(plan.command)
    assert argv[:3] == ["aws", "lambda", "invoke"]
    assert argv[argv.index("--function-name") + 1] == naming.rotation_function_name(world.bao.s, "research")
    event = json.loads(argv[argv.index("--payload") + 1])
    before = world.current()
    result = handle(event, world.deps())  # what the Lambda receives from that command
    assert result["emergency"] is True and result["vault"] == "in_sync"
    assert world.bao.agent_reads("research", "openai") == world.current()["api_key"] != before["api_key"]
    assert not world.fake.works(before["api_key"])
    follow_up = shlex.split(plan.follow_up)
    assert json.loads(follow_up[follow_up.index("--payload") + 1]) == {"Action": "revokeDue", "SecretId": RESEARCH, "Force": True}


# ---------------------------------------------------------------- logs


@pytest.mark.openbao
def test_logs_never_contain_a_value_or_a_vault_token(world: World) -> None:
    healthy = world.vault_token
    world.rotate()
    _deny(world)
    world.rotate()
    world.clock.advance(hours=30)
    world.sweep()
    world.vault_token = healthy
    world.sweep()
    handle({"Action": "rotateNow", "SecretId": RESEARCH, "Emergency": True}, world.deps())
    world.writer_wrap = lambda w: LostResponse(w)
    world.rotate()
    secrets_seen = set(world.fake.minted_values) | {world.fake.admin_key, world.bao.server.root_token,
                                                     world.bao.no_policy_token, *world.bao.tokens.values()}
    assert len(world.logs.lines) > 40 and world.events("vault_synced") and world.events("vault_sync_failed")
    fragments = {v[i:i + 12] for v in secrets_seen for i in range(0, len(v) - 12, 4)}
    for line in world.logs.lines:
        doc = json.loads(line)
        assert not [f for f in fragments if f in line], f"secret material in log line {doc['event']}"
    assert vault_sync.read_record(world.raw, RESEARCH) is not None
    record_text = world.raw.get_secret_value(SecretId=RESEARCH, VersionStage=vault_sync.SYNC_STAGE)["SecretString"]
    assert not [f for f in fragments if f in record_text]  # the sync record holds identifiers only


# ---------------------------------------------------------------- configuration


def test_vault_settings_default_and_parse_without_keyerror() -> None:
    c = load_config({})
    assert (c.vault_map, c.vault_addr, c.vault_auth_path, c.vault_role, c.vault_sts_region) == ({}, None, "aws", None, "us-east-1")
    c = load_config({"ROTATION_VAULT_MAP": json.dumps({"a/b": {"mount": "kv", "path": "dev/a/b"}}),
                     "VAULT_ADDR": "https://vault.example.com/", "VAULT_AUTH_PATH": "/aws-prod/", "VAULT_ROLE": "r",
                     "VAULT_STS_REGION": "eu-west-1", "VAULT_IAM_SERVER_ID": "vault.example.com", "VAULT_NAMESPACE": "ns"})
    assert c.vault_map == {"a/b": VaultTarget("kv", "dev/a/b")} and c.vault_addr == "https://vault.example.com"
    assert (c.vault_auth_path, c.vault_role, c.vault_sts_region, c.vault_iam_server_id, c.vault_namespace) == (
        "aws-prod", "r", "eu-west-1", "vault.example.com", "ns")


@pytest.mark.parametrize("env,key", [
    ({"ROTATION_VAULT_MAP": json.dumps({"a": {"mount": "kv", "path": "../../sys/policy/x"}})}, "ROTATION_VAULT_MAP"),
    ({"ROTATION_VAULT_MAP": json.dumps({"a": {"mount": "kv", "path": "dev//a"}})}, "ROTATION_VAULT_MAP"),
    ({"ROTATION_VAULT_MAP": json.dumps({"a": {"mount": "kv", "path": "dev/a?x=1"}})}, "ROTATION_VAULT_MAP"),
    ({"ROTATION_VAULT_MAP": json.dumps({"a": "kv/dev/a"})}, "ROTATION_VAULT_MAP"),
    ({"ROTATION_VAULT_MAP": "[]"}, "ROTATION_VAULT_MAP"),
    ({"VAULT_ADDR": "http://vault.internal:8200"}, "VAULT_ADDR"),
    ({"VAULT_AUTH_PATH": "aws/../sys"}, "VAULT_AUTH_PATH"),
    ({"VAULT_STS_REGION": "global"}, "VAULT_STS_REGION"),
])
def test_invalid_vault_settings_are_refused_before_anything_runs(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_config(env)


def test_the_production_writer_logs_in_with_aws_iam() -> None:
    assert vault_sync.writer_from_config(Config()) is None  # nothing mapped
    mapped = Config(vault_map={"a": VaultTarget("kv", "dev/a/b")})
    with pytest.raises(VaultNotConfigured):
        vault_sync.writer_from_config(mapped)
    writer = vault_sync.writer_from_config(replace(mapped, vault_addr="https://vault.example.com", vault_role="agents-dev-a-rotation",
                                                   vault_auth_path="aws-prod", vault_iam_server_id="vault.example.com"))
    assert writer is not None and writer.client.address == "https://vault.example.com"
    login = writer._login
    assert isinstance(login, AwsIamLogin)
    assert (login.auth_path, login.role, login.region, login.server_id) == ("aws-prod", "agents-dev-a-rotation", "us-east-1",
                                                                            "vault.example.com")


# ---------------------------------------------------------------- the AWS IAM login request


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sigv4_valid(method: str, url: str, headers: dict[str, str], body: bytes, secret_key: str) -> bool:
    """AWS Signature Version 4, recomputed from the spec (not with botocore), as STS would check it."""
    lower = {k.lower(): v for k, v in headers.items()}
    m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                     r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})", lower.get("authorization", ""))
    if m is None:
        return False
    _akid, day, region, service, signed, signature = m.groups()
    parts = urlsplit(url)
    lower.setdefault("host", parts.netloc)
    try:
        canonical_headers = "".join(f"{h}:{' '.join(lower[h].split())}\n" for h in signed.split(";"))
    except KeyError:
        return False
    canonical = "\n".join([method, parts.path or "/", parts.query, canonical_headers, signed, hashlib.sha256(body).hexdigest()])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", lower["x-amz-date"], scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), day), region), service), "aws4_request")
    return hmac.compare_digest(hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), signature)


AKID, SECRET_KEY, SESSION = "ASIATESTROTATION0001", "test-secret-key-for-sigv4-only", "test-session-token"  # pragma: allowlist secret


class FakeVaultAwsAuth:
    """Loopback stand-in for Vault's `POST /v1/auth/<path>/login` (AWS IAM): decodes the documented
    payload and verifies the signed GetCallerIdentity request with the known test secret, as STS
    would; it cannot know a real role. Requires the server-ID header, signed, when configured."""

    def __init__(self, auth_path: str, role: str, server_id: str | None = None):
        self.auth_path, self.role, self.server_id = auth_path, role, server_id
        self.seen: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                fake.seen.append(body)
                status, doc = fake.check(self.path, body)
                raw = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def check(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if path != f"/v1/auth/{self.auth_path}/login" or body.get("role") != self.role:
            return 400, {"errors": ["invalid role"]}
        url = base64.b64decode(body["iam_request_url"]).decode()
        sts_body = base64.b64decode(body["iam_request_body"])
        headers = {k: (v[0] if isinstance(v, list) else v) for k, v in json.loads(base64.b64decode(body["iam_request_headers"])).items()}
        if body.get("iam_http_request_method") != "POST" or b"Action=GetCallerIdentity" not in sts_body:
            return 400, {"errors": ["not GetCallerIdentity"]}
        if self.server_id is not None:
            signed = re.search(r"SignedHeaders=([^,]+)", headers.get("Authorization", ""))
            if headers.get("X-Vault-AWS-IAM-Server-ID") != self.server_id or not signed or \
                    "x-vault-aws-iam-server-id" not in signed.group(1).split(";"):
                return 400, {"errors": ["missing or unsigned server ID header"]}
        if not sigv4_valid("POST", url, headers, sts_body, SECRET_KEY):
            return 403, {"errors": ["signature does not match"]}
        return 200, {"auth": {"client_token": "hvs.test-token-from-iam-login", "policies": [self.role]}}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture()
def fake_aws_auth() -> Iterator[FakeVaultAwsAuth]:
    fake = FakeVaultAwsAuth("aws", "agents-dev-research-rotation", server_id="vault.example.com")
    try:
        yield fake
    finally:
        fake.stop()


def _login(**kw: Any) -> AwsIamLogin:
    args: dict[str, Any] = {"auth_path": "aws", "role": "agents-dev-research-rotation", "server_id": "vault.example.com",
                            "credentials": lambda: Credentials(AKID, SECRET_KEY, SESSION)}
    return AwsIamLogin(**{**args, **kw})


def test_the_iam_login_request_is_a_signed_get_caller_identity(fake_aws_auth: FakeVaultAwsAuth) -> None:
    token = _login().login(VaultClient(fake_aws_auth.address))
    assert token == "hvs.test-token-from-iam-login"
    [body] = fake_aws_auth.seen
    assert set(body) == {"role", "iam_http_request_method", "iam_request_url", "iam_request_body", "iam_request_headers"}
    assert base64.b64decode(body["iam_request_url"]) == b"https://sts.amazonaws.com/"
    assert base64.b64decode(body["iam_request_body"]) == b"Action=GetCallerIdentity&Version=2011-06-15"
    headers = json.loads(base64.b64decode(body["iam_request_headers"]))
    assert headers["X-Amz-Security-Token"] == [SESSION]  # the Lambda role's session credentials
    assert f"Credential={AKID}/" in headers["Authorization"][0] and "/us-east-1/sts/aws4_request" in headers["Authorization"][0]
    assert SECRET_KEY not in json.dumps(body)  # the secret key signs, it never travels


def test_the_login_stand_in_rejects_what_sts_and_vault_would(fake_aws_auth: FakeVaultAwsAuth) -> None:
    wrong_secret = _login(credentials=lambda: Credentials(AKID, "another-secret", SESSION))
    with pytest.raises(VaultError) as exc:
        wrong_secret.login(VaultClient(fake_aws_auth.address))
    assert exc.value.status == 403
    with pytest.raises(VaultError):
        _login(server_id=None).login(VaultClient(fake_aws_auth.address))
    with pytest.raises(VaultError):
        _login(role="agents-dev-crm-rotation").login(VaultClient(fake_aws_auth.address))
    payload = _login().login_payload()
    tampered = dict(payload, iam_request_body=base64.b64encode(b"Action=GetCallerIdentity&Version=2011-06-15&x=1").decode())
    assert fake_aws_auth.check("/v1/auth/aws/login", tampered)[0] == 403
    assert fake_aws_auth.check("/v1/auth/aws/login", payload)[0] == 200


def test_a_regional_sts_login_signs_for_that_region() -> None:
    payload = _login(region="eu-west-1", server_id=None).login_payload()
    url = base64.b64decode(payload["iam_request_url"]).decode()
    headers = {k: v[0] for k, v in json.loads(base64.b64decode(payload["iam_request_headers"])).items()}
    assert url == "https://sts.eu-west-1.amazonaws.com/" and "/eu-west-1/sts/aws4_request" in headers["Authorization"]
    assert sigv4_valid("POST", url, headers, base64.b64decode(payload["iam_request_body"]), SECRET_KEY)


def test_vault_errors_carry_no_response_text(fake_aws_auth: FakeVaultAwsAuth) -> None:
    with pytest.raises(VaultError) as exc:
        VaultClient(fake_aws_auth.address).call("vault_write", "POST", "auth/aws/login", body={"role": "nobody"})
    assert (exc.value.operation, exc.value.status, exc.value.code) == ("vault_write", 400, "invalid_request")
    assert "invalid role" not in str(exc.value)
