"""The postgres-alternating strategy against a REAL PostgreSQL (started once per session on 127.0.0.1).

Secrets Manager is moto behind the same strict wrapper and `Service` as the other handler tests; the
database is real, so a login that works here works because the server accepted the password.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator

import psycopg
import pytest

from agentfleet.rotation import credential
from agentfleet.rotation.config import Config
from agentfleet.rotation.errors import RotationError, RotationInProgress
from agentfleet.rotation.handler import Deps, handle
from agentfleet.rotation.logs import LOGGER_NAME
from agentfleet.rotation.postgres import (
    LOCK_NAMESPACE, AlternatingUsersStrategy, ConnectParams, Database, psycopg_connector, scram_verifier,
)
from agentfleet.rotation.strategies import Strategy, build_strategy
from tests.postgres_server import MASTER, PostgresServer
from tests.test_rotation_fakes import Clock, LogCapture, Service, StrictSecrets, aws  # noqa: F401  (fixture)

SECRET = "agents/dev/reporting/warehouse"
MASTER_SECRET = "agents/dev/_rotation/postgres-alternating-admin"
DB = "customers"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    try:
        server.admin(f"CREATE DATABASE {DB}")
        yield server
    finally:
        server.stop()


class FlakyConnector:
    """The real driver, failing the Nth database operation (connect counts as one) when armed."""

    def __init__(self) -> None:
        self.fail_at: int | None = None
        self.count = 0
        self.ops: list[str] = []

    def _tick(self, op: str) -> None:
        self.count += 1
        self.ops.append(op)
        if self.fail_at is not None and self.count == self.fail_at:
            self.fail_at = None
            raise psycopg.OperationalError(f"injected failure at {op}")

    def __call__(self, params: ConnectParams) -> Database:
        self._tick("connect")
        inner = psycopg_connector(params)
        outer = self

        class Wrapped:
            def execute(self, sql: str, p: tuple[Any, ...] = ()) -> None:
                outer._tick(sql.split()[0])
                inner.execute(sql, p)

            def fetchone(self, sql: str, p: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
                outer._tick(sql.split()[0])
                return inner.fetchone(sql, p)

            def commit(self) -> None:
                outer._tick("commit")
                inner.commit()

            def rollback(self) -> None:
                inner.rollback()

            def close(self) -> None:
                inner.close()

        return Wrapped()


@dataclass
class World:
    raw: Any
    sm: StrictSecrets
    svc: Service
    pg: PostgresServer
    base: str
    clock: Clock
    logs: LogCapture
    connector: FlakyConnector = field(default_factory=FlakyConnector)

    def config(self) -> Config:
        return Config(grace_hours=24, strategy_map={SECRET: "postgres-alternating"},
                      admin_secret_ids={"postgres-alternating": MASTER_SECRET}, postgres_sslmode="disable",
                      verify_attempts=1, fields={SECRET: ("host", "port", "dbname", "username", "password")})

    def deps(self) -> Deps:
        def factory(name: str, client: Any, config: Config) -> Strategy:
            if name == "postgres-alternating":
                return AlternatingUsersStrategy(client, config, connector=self.connector, sleep=lambda _s: None)
            return build_strategy(name, client, config)

        return Deps(client=self.sm, config=self.config(), clock=self.clock, strategy_factory=factory)

    def step(self, token: str, step: str) -> dict[str, Any]:
        return handle({"Step": step, "SecretId": SECRET, "ClientRequestToken": token}, self.deps())

    def rotate(self) -> str:
        token = self.svc.start(SECRET)
        for step in STEPS:
            self.step(token, step)
        return token

    def value(self, stage: str) -> dict[str, Any]:
        return credential.parse(self.raw.get_secret_value(SecretId=SECRET, VersionStage=stage)["SecretString"])

    def logs_in(self, stage: str) -> bool:
        v = self.value(stage)
        return self.pg.can_login(v["username"], v["password"], DB)

    def pending(self) -> list[str]:
        meta = self.raw.describe_secret(SecretId=SECRET)
        return [v for v, s in meta["VersionIdsToStages"].items() if "AWSPENDING" in s and "AWSCURRENT" not in s]


@pytest.fixture()
def world(aws: Any, pg: PostgresServer) -> Iterator[World]:
    base = "app_" + secrets.token_hex(4)  # a fresh user pair per test on the shared server
    password = secrets.token_urlsafe(18)
    pg.admin(f"CREATE ROLE {base} LOGIN PASSWORD '{password}'", f"GRANT CONNECT ON DATABASE {DB} TO {base}")
    with pg.connect(MASTER, pg.password, DB) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS t_{base} (id int)".encode())
        conn.execute(f"GRANT SELECT ON t_{base} TO {base}".encode())
    aws.create_secret(Name=MASTER_SECRET, SecretString=json.dumps({"username": MASTER, "password": pg.password}))
    initial = {"engine": "postgres", "host": "127.0.0.1", "port": pg.port, "dbname": DB, "username": base, "password": password}
    aws.create_secret(Name=SECRET, SecretString=json.dumps(initial))
    svc = Service(aws)
    svc.enable_rotation(SECRET)
    capture = LogCapture()
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(capture)
    try:
        yield World(raw=aws, sm=StrictSecrets(aws), svc=svc, pg=pg, base=base, clock=Clock(), logs=capture)
    finally:
        logger.removeHandler(capture)


def test_scram_verifier_is_what_postgres_accepts(pg: PostgresServer) -> None:
    user, password = "scram_" + secrets.token_hex(3), secrets.token_urlsafe(16)
    pg.admin(f"CREATE ROLE {user} LOGIN PASSWORD '{scram_verifier(password)}'")
    assert pg.can_login(user, password)
    assert not pg.can_login(user, password + "x")
    with pg.connect(MASTER, pg.password) as conn:
        row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (user,)).fetchone()
    assert row is not None and row[0].startswith("SCRAM-SHA-256$4096:") and password not in row[0]


def test_the_agent_keeps_working_through_several_rotations(world: World) -> None:
    first = world.value("AWSCURRENT")
    agent = world.pg.connect(first["username"], first["password"], DB)  # a long-lived agent session
    users = [first["username"]]
    for _ in range(4):
        world.rotate()
        cur, prev = world.value("AWSCURRENT"), world.value("AWSPREVIOUS")
        users.append(cur["username"])
        assert world.logs_in("AWSCURRENT") and world.logs_in("AWSPREVIOUS")  # both users work between rotations
        assert cur["username"] != prev["username"] and {cur["username"], prev["username"]} == {world.base, world.base + "_clone"}
        with world.pg.connect(cur["username"], cur["password"], DB) as conn:  # same privileges as the first user
            conn.execute(f"SELECT count(*) FROM t_{world.base}".encode())
        assert agent.execute("SELECT 1").fetchone() == (1,)  # an open session is never cut
        assert world.pending() == []
    assert users == [world.base, world.base + "_clone", world.base, world.base + "_clone", world.base]
    agent.close()
    assert not any(first["password"] in line or world.pg.password in line for line in world.logs.lines)
    created = [json.loads(line) for line in world.logs.lines if json.loads(line)["event"] == "pending_created"]
    assert [c["user"] for c in created] == users[1:]  # the user name is an identifier: logged, not masked
    assert all(cur_pw not in line for line in world.logs.lines for cur_pw in [world.value("AWSCURRENT")["password"]])


def test_the_clone_cannot_do_more_than_the_user_it_copies(world: World) -> None:
    world.rotate()
    clone = world.value("AWSCURRENT")
    assert clone["username"] == world.base + "_clone"
    with world.pg.connect(clone["username"], clone["password"], DB) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"INSERT INTO t_{world.base} VALUES (1)".encode())  # only SELECT was granted
    with world.pg.connect(MASTER, world.pg.password) as conn:
        row = conn.execute("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = %s",
                           (clone["username"],)).fetchone()
    assert row == (False, False, False)


def _count_ops(world: World) -> int:
    """How many database operations one full rotation performs (to inject a failure at each)."""
    world.connector.count = 0
    world.rotate()
    return world.connector.count


def test_a_failure_at_every_database_operation_leaves_awscurrent_working(world: World) -> None:
    world.rotate()  # the clone exists from now on: ALTER path
    total = _count_ops(world)
    assert total >= 6  # connect, lock, superuser check, exists, alter, commit, login...
    for n in range(1, total + 1):
        world.connector.count, world.connector.fail_at = 0, n
        before = world.value("AWSCURRENT")
        token = world.svc.start(SECRET)
        with pytest.raises(Exception):
            for step in STEPS:
                world.step(token, step)
        assert world.value("AWSCURRENT") == before, f"failure at operation {n} changed AWSCURRENT"
        assert world.logs_in("AWSCURRENT"), f"failure at operation {n} locked the current user out"
        assert world.pending() == [], f"failure at operation {n} left AWSPENDING behind"
    world.rotate()  # and the next rotation is not blocked
    assert world.logs_in("AWSCURRENT") and world.logs_in("AWSPREVIOUS")


@pytest.mark.parametrize("operation", ["get_secret_value", "put_secret_value", "update_secret_version_stage"])
def test_secrets_manager_failures_keep_the_current_user(world: World, operation: str) -> None:
    before = world.value("AWSCURRENT")
    for skip in range(0, 6):
        world.sm.fail_next(operation, skip=skip)
        token = world.svc.start(SECRET) if not world.pending() else world.pending()[0]
        try:
            for step in STEPS:
                world.step(token, step)
        except Exception:
            pass
        world.sm.faults.clear()
        assert world.logs_in("AWSCURRENT"), (operation, skip)
        if world.pending():  # an abort that could not run: the next sweep clears it once stale
            world.clock.advance(hours=2)
            handle({"Action": "revokeDue", "SecretIds": [SECRET]}, world.deps())
        assert world.pending() == [], (operation, skip)
    world.rotate()
    assert world.logs_in("AWSCURRENT") and world.value("AWSCURRENT") != before


def test_first_rotation_creates_the_clone_and_a_failed_test_keeps_the_user(world: World) -> None:
    token = world.svc.start(SECRET)
    world.step(token, "createSecret")
    world.step(token, "setSecret")
    assert world.pg.can_login(world.base + "_clone", credential.parse(
        world.raw.get_secret_value(SecretId=SECRET, VersionId=token)["SecretString"])["password"], DB)
    world.pg.admin(f"ALTER ROLE {world.base}_clone NOLOGIN")  # the new user cannot log in after all
    with pytest.raises(RotationError):
        world.step(token, "testSecret")
    assert world.value("AWSCURRENT")["username"] == world.base and world.logs_in("AWSCURRENT")
    assert world.pending() == []
    world.rotate()  # setSecret restores LOGIN on the clone
    assert world.value("AWSCURRENT")["username"] == world.base + "_clone" and world.logs_in("AWSCURRENT")


def test_a_concurrent_rotation_of_the_same_users_is_refused(world: World) -> None:
    # Another rotation (another function, or a stuck one) holds the pair's lock inside its transaction.
    holder = world.pg.connect(MASTER, world.pg.password, DB)
    holder.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (LOCK_NAMESPACE + world.base,))
    try:
        token = world.svc.start(SECRET)
        world.step(token, "createSecret")
        with pytest.raises(RotationInProgress):
            world.step(token, "setSecret")
        assert world.logs_in("AWSCURRENT")
        assert not world.pg.can_login(world.base + "_clone", "x")  # nothing was created or changed
    finally:
        holder.rollback()
        holder.close()
    world.step(token, "setSecret")  # Secrets Manager retries the step: now it goes through
    for step in ("testSecret", "finishSecret"):
        world.step(token, step)
    assert world.value("AWSCURRENT")["username"] == world.base + "_clone" and world.logs_in("AWSCURRENT")


def test_two_rotations_racing_leave_one_winner(world: World) -> None:
    """Two functions run setSecret for the same pair at the same instant: one is refused, AWSCURRENT works."""
    token = world.svc.start(SECRET)
    world.step(token, "createSecret")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    class SlowConnector(FlakyConnector):
        def __call__(self, params: ConnectParams) -> Database:
            db = super().__call__(params)
            if params.user == MASTER:
                inner_fetch = db.fetchone

                def fetchone(sql: str, p: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
                    row = inner_fetch(sql, p)
                    if "advisory" in sql:
                        try:
                            barrier.wait(timeout=5)  # both have tried the lock before either commits
                        except threading.BrokenBarrierError:
                            pass
                    return row

                db.fetchone = fetchone  # type: ignore[method-assign, assignment]
            return db

    world.connector = SlowConnector()

    def run() -> None:
        try:
            world.step(token, "setSecret")
            outcomes.append("ok")
        except RotationInProgress:
            outcomes.append("refused")

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["ok", "refused"]
    for step in ("testSecret", "finishSecret"):
        world.step(token, step)
    assert world.logs_in("AWSCURRENT")


def test_rotate_now_is_refused_while_a_rotation_is_in_flight(world: World) -> None:
    token = world.svc.start(SECRET)
    world.step(token, "createSecret")
    with pytest.raises(RotationInProgress):
        handle({"Action": "rotateNow", "SecretId": SECRET}, world.deps())
    assert world.logs_in("AWSCURRENT")


def test_refuses_to_touch_the_master_or_a_superuser(world: World) -> None:
    world.raw.put_secret_value(SecretId=SECRET, SecretString=json.dumps({
        "engine": "postgres", "host": "127.0.0.1", "port": world.pg.port, "dbname": DB, "username": MASTER,
        "password": world.pg.password}))
    with pytest.raises(RotationError):
        world.rotate()
    assert world.pg.can_login(MASTER, world.pg.password)


def test_a_value_missing_a_declared_field_is_never_promoted(world: World) -> None:
    token = world.svc.start(SECRET)
    world.step(token, "createSecret")
    strategy = AlternatingUsersStrategy(world.sm, world.config(), connector=world.connector)
    assert strategy.name == "postgres-alternating" and strategy.revokes is False
    deps = world.deps()
    deps.config = Config(**{**world.config().__dict__, "fields": {SECRET: ("host", "port", "dbname", "username", "password", "sslrootcert")}})
    with pytest.raises(RotationError, match="sslrootcert"):
        handle({"Step": "testSecret", "SecretId": SECRET, "ClientRequestToken": token}, deps)
    assert world.value("AWSCURRENT")["username"] == world.base and world.pending() == []
