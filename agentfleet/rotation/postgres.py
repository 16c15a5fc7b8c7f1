"""PostgreSQL, alternating users: two database users per credential, so AWSCURRENT always logs in.

The value (a structured credential, `fields: postgres`):
    {"host", "port", "dbname", "username", "password", "engine": "postgres"}
The credential names the first user (`app`); the rotation creates its twin `app_clone` and from
then on alternates (AWS's "alternating users" semantics):

  createSecret  AWSPENDING = the *other* user with a fresh random password (no database call).
  setSecret     as the master user, in one transaction holding an advisory lock for this pair:
                create the twin if missing (member of the first user's role, so it has the same
                privileges), then ALTER ROLE ... PASSWORD on the inactive user. The password is
                sent as a SCRAM-SHA-256 verifier computed here, so the plain text never reaches the
                server or its statement log. A second rotation of the same pair at the same time
                finds the lock taken and is refused (`RotationInProgress`); nothing is changed.
  testSecret    log in as the pending user with the pending password; `current_user` must match.
  finishSecret  the handler moves AWSCURRENT. The previous user keeps its password (AWSPREVIOUS
                still logs in) until the next rotation sets a new one on it.

Nothing is revoked at a provider, so there is no ledger entry; an open session of the agent is not
cut by a password change. Failure at any step leaves the AWSCURRENT user untouched: setSecret only
ever changes the user that is not AWSCURRENT, and rolls back on any error.

The master secret (`POSTGRES_MASTER_SECRET_ID`): {"username", "password"} and optionally "host",
"port" (default: the credential's). The driver sits behind `Connector` (tests: psycopg against a
local server); in Lambda the archive holds no driver: attach a layer that provides `psycopg`
(psycopg[binary] for the function's architecture, docs/rotation.md#postgresql), imported only here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

from .config import Config
from .credential import Credential, parse
from .errors import ConfigError, RotationError, RotationInProgress
from .logs import log

CLONE_SUFFIX = "_clone"
USER_RE = re.compile(r"^[a-z_][a-z0-9_]{0,56}$")
"""Database user names the strategy manages (plain identifiers; `_clone` still fits in 63 bytes)."""
DBNAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
HOST_RE = re.compile(r"^[A-Za-z0-9.-]{1,253}$")
SCRAM_ITERATIONS = 4096
PASSWORD_LENGTH = 32
ENGINE = "postgres"
LOCK_NAMESPACE = "agentfleet-rotation:"


class Database(Protocol):
    """One open connection, as much of a DB-API driver as the strategy uses."""

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None: ...

    def fetchone(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ConnectParams:
    host: str
    port: int
    dbname: str
    user: str
    password: str
    sslmode: str = "require"
    connect_timeout: int = 5

    def __repr__(self) -> str:  # never print the password
        return f"ConnectParams({self.user}@{self.host}:{self.port}/{self.dbname})"


Connector = Callable[[ConnectParams], Database]


class _PsycopgDatabase:
    def __init__(self, conn: Any):
        self._conn = conn

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        with self._conn.cursor() as cur:
            cur.execute(sql, params)

    def fetchone(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        with self._conn.cursor() as cur:
            cur.execute(sql, params)
            row = cur.fetchone()
            return tuple(row) if row is not None else None

    def commit(self) -> None:
        self._conn.commit()

    def rollback(self) -> None:
        self._conn.rollback()

    def close(self) -> None:
        self._conn.close()


def psycopg_connector(params: ConnectParams) -> Database:
    """The production driver: psycopg 3 (from a Lambda layer; pinned in requirements.txt for tests)."""
    try:
        import psycopg  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise ConfigError("the postgres-alternating strategy needs `psycopg` in the function (attach the layer)") from None
    conn = psycopg.connect(host=params.host, port=params.port, dbname=params.dbname, user=params.user,
                           password=params.password, sslmode=params.sslmode, connect_timeout=params.connect_timeout,
                           application_name="agentfleet-rotation")
    return _PsycopgDatabase(conn)


def quote_ident(name: str) -> str:
    if not USER_RE.match(base_user(name)):
        raise RotationError("database user name is not a plain identifier")
    return '"' + name.replace('"', '""') + '"'


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """PostgreSQL's stored form of a SCRAM-SHA-256 password (RFC 5802/7677), computed client-side."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def base_user(username: str) -> str:
    return username.removesuffix(CLONE_SUFFIX)


def other_user(username: str) -> str:
    base = base_user(username)
    return base if username.endswith(CLONE_SUFFIX) else base + CLONE_SUFFIX


def checked(value: Mapping[str, Any], what: str) -> tuple[str, int, str, str]:
    """(host, port, dbname, username) of a value, validated; raises RotationError naming the field."""
    host, port, dbname, user = value.get("host"), value.get("port"), value.get("dbname"), value.get("username")
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if not isinstance(host, str) or not HOST_RE.match(host):
        raise RotationError(f"{what}: field `host` is missing or not a host name")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise RotationError(f"{what}: field `port` is missing or not a port")
    if not isinstance(dbname, str) or not DBNAME_RE.match(dbname):
        raise RotationError(f"{what}: field `dbname` is missing or not a database name")
    if not isinstance(user, str) or not USER_RE.match(base_user(user)):
        raise RotationError(f"{what}: field `username` is missing or not a plain identifier")
    return host, port, dbname, user


class AlternatingUsersStrategy:
    name = "postgres-alternating"
    revokes = False
    """The previous user is not revoked: it keeps working until the next rotation sets its password."""

    def __init__(self, client: Any, config: Config, connector: Connector = psycopg_connector,
                 sleep: Callable[[float], None] = time.sleep):
        self._client, self._config, self._connector, self._sleep = client, config, connector, sleep
        self._master: dict[str, Any] | None = None

    def _master_doc(self) -> dict[str, Any]:
        if self._master is None:
            secret_id = self._config.admin_secret_ids.get(self.name)
            if not secret_id:
                raise ConfigError("POSTGRES_MASTER_SECRET_ID is not set: the postgres-alternating strategy needs the master secret")
            doc = parse(self._client.get_secret_value(SecretId=secret_id)["SecretString"])
            if not isinstance(doc.get("username"), str) or not isinstance(doc.get("password"), str):
                raise ConfigError("the postgres master secret needs 'username' and 'password' fields")
            self._master = doc
        return self._master

    def create(self, current: Mapping[str, Any], *, label: str) -> Credential:
        host, port, dbname, user = checked(current, "AWSCURRENT")
        resp = self._client.get_random_password(PasswordLength=PASSWORD_LENGTH, ExcludePunctuation=True,
                                                IncludeSpace=False, RequireEachIncludedType=True)
        return {"engine": ENGINE, "host": host, "port": port, "dbname": dbname, "username": other_user(user),
                "password": resp["RandomPassword"]}

    def activate(self, new: Mapping[str, Any], current: Mapping[str, Any]) -> None:
        """setSecret: give the pending (inactive) user the pending password, never touching AWSCURRENT's user."""
        host, port, dbname, user = checked(new, "AWSPENDING")
        password = new.get("password")
        if not isinstance(password, str) or not password:
            raise RotationError("AWSPENDING: field `password` is missing")
        if current and current.get("username") == user:
            raise RotationError("AWSPENDING names the AWSCURRENT user: refusing to change the working password")
        master = self._master_doc()
        if base_user(str(master["username"])) == base_user(user):
            raise RotationError("the credential's user is the master user: refusing to rotate it as an agent credential")
        db = self._connector(ConnectParams(
            host=str(master.get("host") or host), port=int(master.get("port") or port), dbname=dbname,
            user=str(master["username"]), password=str(master["password"]), sslmode=self._config.postgres_sslmode,
        ))
        try:
            got = db.fetchone("SELECT pg_try_advisory_xact_lock(hashtext(%s))", (LOCK_NAMESPACE + base_user(user),))
            if not got or got[0] is not True:
                raise RotationInProgress(f"another rotation is changing the passwords of {base_user(user)}")
            row = db.fetchone("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (base_user(user),))
            if row is None:
                raise RotationError(f"database user {base_user(user)} does not exist: create it (docs/rotation.md#postgresql)")
            if row[0]:
                raise RotationError(f"database user {base_user(user)} is a superuser: agent credentials must not be")
            verifier = scram_verifier(password)
            exists = db.fetchone("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)) is not None
            if not exists:
                # Parameters cannot bind in utility statements: the name is a checked identifier and
                # the verifier is base64/`$`/`:` only, so both are safe as literals.
                db.execute(f"CREATE ROLE {quote_ident(user)} WITH LOGIN INHERIT PASSWORD '{verifier}'")
                db.execute(f"GRANT {quote_ident(base_user(user))} TO {quote_ident(user)}")
                log("database_user_created", user=user, host=host, dbname=dbname)
            else:
                db.execute(f"ALTER ROLE {quote_ident(user)} WITH LOGIN PASSWORD '{verifier}'")
            db.commit()
        except BaseException:
            try:
                db.rollback()
            except Exception:
                pass
            raise
        finally:
            db.close()
        log("database_password_set", user=user, host=host, dbname=dbname, created=not exists)

    def test(self, new: Mapping[str, Any]) -> None:
        host, port, dbname, user = checked(new, "value")
        password = new.get("password")
        if not isinstance(password, str) or not password:
            raise RotationError("value: field `password` is missing")
        attempts = self._config.verify_attempts
        for attempt in range(1, attempts + 1):
            try:
                db = self._connector(ConnectParams(host=host, port=port, dbname=dbname, user=user, password=password,
                                                   sslmode=self._config.postgres_sslmode))
                try:
                    row = db.fetchone("SELECT current_user")
                finally:
                    db.close()
                if not row or row[0] != user:
                    raise RotationError("logged in, but not as the credential's user")
                return
            except RotationError:
                raise
            except Exception as exc:
                if attempt == attempts:
                    raise RotationError(f"login as {user} failed ({type(exc).__name__})") from None
                self._sleep(min(2.0 ** (attempt - 1), 8.0))

    def revoke(self, old: Mapping[str, str]) -> None:
        return None
