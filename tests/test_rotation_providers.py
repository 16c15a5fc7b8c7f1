"""SendGrid and Datadog adapters against loopback fakes of their documented key-management contracts.

Each fake (127.0.0.1, random port) implements exactly the endpoints the adapter's docstring names,
authenticates the admin credentials the way the provider does, refuses what the provider refuses
(unknown scopes, a wrong admin key, an unknown key id), and records every call. The rotations run
through the real handler against moto's Secrets Manager, like the OpenAI adapter's tests.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator, Self

import pytest

from agentfleet.core.model import STRATEGIES, Strategy as StrategyName
from agentfleet.rotation import credential
from agentfleet.rotation.config import Config, load_config
from agentfleet.rotation.errors import ProviderError
from agentfleet.rotation.handler import Deps, handle
from agentfleet.rotation.logs import LOGGER_NAME
from agentfleet.rotation.strategies import FACTORIES, build_strategy
from tests.test_rotation_fakes import Clock, LogCapture, Service, StrictSecrets, aws  # noqa: F401  (fixture)

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
Route = Callable[[str, str, dict[str, str], Any], tuple[int, Any]]


class Fake:
    """A bounded loopback JSON server; subclasses implement `route`."""

    name = "fake"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: dict[str, dict[str, Any]] = {}  # key id -> {value, active, ...}
        self.calls: list[tuple[str, str, int]] = []
        self.fail: dict[str, int] = {}
        self.server: ThreadingHTTPServer | None = None

    def route(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        raise NotImplementedError

    def works(self, value: str) -> bool:
        with self.lock:
            return any(k["value"] == value and k["active"] for k in self.keys.values())

    def active(self) -> set[str]:
        with self.lock:
            return {kid for kid, k in self.keys.items() if k["active"]}

    def start(self) -> Self:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 5

            def log_message(self, *args: Any) -> None:
                return None

            def _do(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, doc = fake.route(method, self.path, headers, body)
                with fake.lock:
                    fake.calls.append((method, self.path, status))
                raw = b"" if doc is None else json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                self._do("GET")

            def do_POST(self) -> None:
                self._do("POST")

            def do_DELETE(self) -> None:
                self._do("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def injected(self, op: str) -> bool:
        with self.lock:
            if self.fail.get(op, 0) > 0:
                self.fail[op] -= 1
                return True
        return False


class FakeSendGrid(Fake):
    """POST/GET/DELETE /v3/api_keys[/{id}] with the admin key as Bearer; GET /v3/scopes with any live key."""

    name = "sendgrid"
    SCOPES = frozenset({"mail.send", "api_keys.create", "api_keys.read", "api_keys.delete", "api_keys.update",
                        "templates.read", "stats.read"})

    def __init__(self) -> None:
        super().__init__()
        self.admin_key = "SG." + secrets.token_urlsafe(20) + "." + secrets.token_urlsafe(20)
        self.keys_created_with: list[list[str]] = []

    def mint(self, scopes: list[str]) -> dict[str, str]:
        kid = secrets.token_urlsafe(16)
        value = "SG." + kid + "." + secrets.token_urlsafe(32)
        self.keys[kid] = {"value": value, "active": True, "scopes": sorted(scopes), "name": "initial"}
        return {"api_key": value, "key_id": kid}

    def route(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        error = {"errors": [{"field": None, "message": "authorization required (contains " + bearer[:8] + ")"}]}
        if path == "/v3/scopes" and method == "GET":
            if self.injected("verify") or not self.works(bearer):
                return 401, error
            with self.lock:
                scopes = next(k["scopes"] for k in self.keys.values() if k["value"] == bearer)
            return 200, {"scopes": scopes}
        if bearer != self.admin_key:
            return 401, error
        if path == "/v3/api_keys" and method == "POST":
            if self.injected("create"):
                return 500, {"errors": [{"message": "internal"}]}
            scopes = body.get("scopes") if isinstance(body, dict) else None
            if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not isinstance(scopes, list) \
                    or not set(scopes) <= self.SCOPES:
                return 400, {"errors": [{"field": "scopes", "message": "invalid"}]}
            with self.lock:
                minted = self.mint(scopes)
                self.keys[minted["key_id"]]["name"] = body["name"]
                self.keys_created_with.append(sorted(scopes))
            return 201, {"api_key": minted["api_key"], "api_key_id": minted["key_id"], "name": body["name"], "scopes": scopes}
        if path.startswith("/v3/api_keys/"):
            kid = path.removeprefix("/v3/api_keys/")
            with self.lock:
                key = self.keys.get(kid)
                if key is None or not key["active"]:
                    return 404, {"errors": [{"field": None, "message": "unable to find API Key"}]}
                if method == "GET":
                    return 200, {"api_key_id": kid, "name": key["name"], "scopes": key["scopes"]}
                if method == "DELETE":
                    if self.fail.get("revoke", 0) > 0:
                        self.fail["revoke"] -= 1
                        return 500, {"errors": [{"message": "internal"}]}
                    key["active"] = False
                    return 204, None
        return 404, {"errors": [{"message": "not found"}]}


class FakeDatadog(Fake):
    """POST/DELETE /api/v2/api_keys[/{id}] with DD-API-KEY + DD-APPLICATION-KEY; GET /api/v1/validate."""

    name = "datadog"

    def __init__(self) -> None:
        super().__init__()
        self.admin_api_key = secrets.token_hex(16)
        self.app_key = secrets.token_hex(20)

    def mint(self, name: str = "initial") -> dict[str, str]:
        kid = str(uuid.uuid4())
        value = secrets.token_hex(16)
        self.keys[kid] = {"value": value, "active": True, "name": name}
        return {"api_key": value, "key_id": kid}

    def route(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        forbidden = {"errors": ["Forbidden"]}
        if path == "/api/v1/validate" and method == "GET":
            if self.injected("verify") or not self.works(headers.get("dd-api-key", "")):
                return 403, forbidden
            return 200, {"valid": True}
        if headers.get("dd-api-key") != self.admin_api_key or headers.get("dd-application-key") != self.app_key:
            return 403, forbidden
        if path == "/api/v2/api_keys" and method == "POST":
            if self.injected("create"):
                return 500, {"errors": ["Internal Server Error"]}
            data = body.get("data") if isinstance(body, dict) else None
            name = data.get("attributes", {}).get("name") if isinstance(data, dict) else None
            if not isinstance(data, dict) or data.get("type") != "api_keys" or not isinstance(name, str):
                return 400, {"errors": ["Bad Request"]}
            with self.lock:
                minted = self.mint(name)
            return 201, {"data": {"type": "api_keys", "id": minted["key_id"],
                                  "attributes": {"key": minted["api_key"], "last4": minted["api_key"][-4:], "name": name}}}
        if path.startswith("/api/v2/api_keys/") and method == "DELETE":
            kid = path.removeprefix("/api/v2/api_keys/")
            with self.lock:
                key = self.keys.get(kid)
                if key is None or not key["active"]:
                    return 404, {"errors": ["API key not found"]}
                if self.fail.get("revoke", 0) > 0:
                    self.fail["revoke"] -= 1
                    return 500, {"errors": ["Internal Server Error"]}
                key["active"] = False
            return 204, None
        return 404, {"errors": ["Not found"]}


# ---------------------------------------------------------------- the world around a rotation


@dataclass
class World:
    raw: Any
    sm: StrictSecrets
    svc: Service
    fake: Fake
    secret: str
    clock: Clock
    logs: LogCapture
    config: Config = field(default_factory=Config)

    def deps(self) -> Deps:
        def factory(name: str, client: Any, config: Config) -> Any:
            strategy = build_strategy(name, client, config)
            if hasattr(strategy, "_sleep"):
                strategy._sleep = lambda _s: None
            return strategy

        return Deps(client=self.sm, config=self.config, clock=self.clock, strategy_factory=factory)

    def rotate(self) -> str:
        token = self.svc.start(self.secret)
        for step in STEPS:
            handle({"Step": step, "SecretId": self.secret, "ClientRequestToken": token}, self.deps())
        return token

    def sweep(self) -> dict[str, Any]:
        return handle({"Action": "revokeDue", "SecretIds": [self.secret]}, self.deps())

    def current(self) -> dict[str, Any]:
        return credential.parse(self.raw.get_secret_value(SecretId=self.secret, VersionStage="AWSCURRENT")["SecretString"])

    def ledger_pending(self) -> list[str]:
        from agentfleet.rotation import ledger

        return [e.key_id for e in ledger.read(self.raw, self.secret).pending]

    def pending(self) -> list[str]:
        meta = self.raw.describe_secret(SecretId=self.secret)
        return [v for v, s in meta["VersionIdsToStages"].items() if "AWSPENDING" in s and "AWSCURRENT" not in s]


def _world(aws: Any, fake: Fake, admin: dict[str, str], initial: dict[str, str]) -> Iterator[World]:
    admin_secret = f"agents/dev/_rotation/{fake.name}-admin"
    secret = f"agents/dev/notify/{fake.name}"
    aws.create_secret(Name=admin_secret, SecretString=json.dumps(admin))
    aws.create_secret(Name=secret, SecretString=json.dumps(initial))
    svc = Service(aws)
    svc.enable_rotation(secret)
    env = {"ROTATION_STRATEGY_MAP": json.dumps({secret: fake.name}), f"{fake.name.upper()}_ADMIN_SECRET_ID": admin_secret,
           f"{fake.name.upper()}_BASE_URL": fake.base_url, "ROTATION_VERIFY_ATTEMPTS": "2"}
    capture = LogCapture()
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(capture)
    try:
        yield World(raw=aws, sm=StrictSecrets(aws), svc=svc, fake=fake, secret=secret, clock=Clock(), logs=capture,
                    config=load_config(env))
    finally:
        logger.removeHandler(capture)
        fake.stop()


@pytest.fixture(params=["sendgrid", "datadog"])
def world(request: pytest.FixtureRequest, aws: Any) -> Iterator[World]:
    if request.param == "sendgrid":
        sg = FakeSendGrid().start()
        assert isinstance(sg, FakeSendGrid)
        yield from _world(aws, sg, {"admin_key": sg.admin_key}, sg.mint(["mail.send", "templates.read"]))
    else:
        dd = FakeDatadog().start()
        assert isinstance(dd, FakeDatadog)
        yield from _world(aws, dd, {"api_key": dd.admin_api_key, "application_key": dd.app_key}, dd.mint())


# ---------------------------------------------------------------- tests


def test_every_strategy_of_the_model_has_a_factory_and_adapters_serve_their_service() -> None:
    assert list(FACTORIES) == [s.value for s in StrategyName]
    for s in ("sendgrid", "datadog"):
        assert STRATEGIES[StrategyName(s)].services == (s,) and STRATEGIES[StrategyName(s)].admin_secret


def test_full_rotation_revokes_the_old_key_only_after_the_grace_period(world: World) -> None:
    before = world.current()
    world.rotate()
    after = world.current()
    assert after["key_id"] != before["key_id"] and world.fake.works(after["api_key"])
    assert world.fake.works(before["api_key"])  # grace period: the old key still works
    world.clock.advance(hours=23)
    assert world.sweep()["revoked"] == {world.secret: []}
    world.clock.advance(hours=2)
    assert world.sweep()["revoked"] == {world.secret: [before["key_id"]]}
    assert not world.fake.works(before["api_key"]) and world.fake.active() == {after["key_id"]}
    assert world.pending() == []
    text = "\n".join(world.logs.lines)
    assert before["api_key"] not in text and after["api_key"] not in text


def test_sendgrid_new_key_keeps_the_old_keys_scopes(aws: Any) -> None:
    sg = FakeSendGrid().start()
    for w in _world(aws, sg, {"admin_key": sg.admin_key}, sg.mint(["mail.send", "stats.read"])):
        w.rotate()
        w.rotate()
        assert sg.keys_created_with == [["mail.send", "stats.read"], ["mail.send", "stats.read"]]


@pytest.mark.parametrize("op", ["create", "verify"])
def test_a_provider_failure_keeps_the_working_key_and_leaves_no_orphan(world: World, op: str) -> None:
    before = world.current()
    world.fake.fail[op] = 5  # more than the bounded retries
    with pytest.raises(ProviderError):
        world.rotate()
    assert world.current() == before and world.fake.works(before["api_key"])
    assert world.fake.active() == {before["key_id"]}, "an unverified new key was left active"
    assert world.pending() == []
    world.fake.fail.clear()
    world.rotate()  # not blocked
    assert world.fake.works(world.current()["api_key"])


def test_a_failed_revoke_is_retried_and_an_already_gone_key_is_fine(world: World) -> None:
    before = world.current()
    world.rotate()
    world.clock.advance(hours=25)
    world.fake.fail["revoke"] = 1
    assert world.sweep()["revoked"] == {world.secret: []}  # logged (revoke_failed), kept for the next sweep
    assert any(json.loads(line)["event"] == "revoke_failed" for line in world.logs.lines)
    assert world.fake.works(before["api_key"]) and world.fake.works(world.current()["api_key"])
    assert world.sweep()["revoked"] == {world.secret: [before["key_id"]]}
    assert not world.fake.works(before["api_key"])
    strategy = build_strategy(world.fake.name, world.sm, world.config)
    strategy.revoke({"key_id": before["key_id"]})  # 404: already gone, no error
    assert json.loads(world.logs.lines[-1])["event"] == "revoke_already_gone"


def test_wrong_admin_credentials_fail_before_any_key_is_minted(world: World) -> None:
    world.raw.put_secret_value(SecretId=f"agents/dev/_rotation/{world.fake.name}-admin",
                               SecretString=json.dumps({"admin_key": "SG.wrong", "api_key": "0" * 32, "application_key": "1" * 40}))
    before = world.current()
    with pytest.raises(ProviderError) as info:
        world.rotate()
    assert info.value.status in (401, 403)
    assert "SG.wrong" not in str(info.value) and "authorization required" not in str(info.value)
    assert world.current() == before and world.fake.active() == {before["key_id"]}


def test_base_urls_must_be_https_or_loopback() -> None:
    with pytest.raises(Exception, match="SENDGRID_BASE_URL"):
        load_config({"SENDGRID_BASE_URL": "http://api.sendgrid.com"})
    assert load_config({}).base_url("datadog") == "https://api.datadoghq.com"
    assert load_config({"DATADOG_BASE_URL": "https://api.datadoghq.eu/"}).base_url("datadog") == "https://api.datadoghq.eu"
