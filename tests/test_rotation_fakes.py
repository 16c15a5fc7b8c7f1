"""Test doubles for the rotation tests, and tests that the doubles keep the contracts they fake.

* `FakeOpenAI`: a loopback HTTP server (127.0.0.1, random port) speaking the documented subset
  of OpenAI's Admin API the adapter uses, plus GET /v1/models authenticated by project keys. It
  records every call and can fail the next N calls of an operation (create, verify, revoke).
* `StrictSecrets`: wraps a moto Secrets Manager client to behave like the real service where moto
  is lenient (a version's value cannot be overwritten; DescribeSecret omits unlabelled versions)
  and injects one-shot faults per API operation.
* `Service`: what Secrets Manager does around the Lambda: RotateSecret refuses while another
  version is AWSPENDING, else stages an empty AWSPENDING version under a new token.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

ACCOUNT, REGION = "123456789012", "us-east-1"
ADMIN_SECRET = "agents/dev/_rotation/openai-admin"
PROJECT = "proj_fleet"


# ---------------------------------------------------------------- fake OpenAI admin API


class LogCapture(logging.Handler):
    """Keeps every log line a test provokes, to assert on events and on values never logged."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class FakeOpenAI:
    """In-memory provider state behind a bounded loopback HTTP server."""

    def __init__(self) -> None:
        self.admin_key = "sk-admin-" + secrets.token_urlsafe(24)
        self.lock = threading.Lock()
        self.keys: dict[str, dict[str, Any]] = {}  # key_id -> {value, sa, project, active}
        self.service_accounts: dict[str, str] = {}  # sa_id -> project
        self.calls: list[dict[str, Any]] = []
        self.fail: dict[str, int] = defaultdict(int)  # op -> number of next calls answered 500
        self.minted_values: list[str] = []
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    # -- provider state helpers used by tests
    def _new_key(self, sa: str, project: str) -> tuple[str, str]:
        key_id = "key_" + secrets.token_hex(6)
        value = "sk-svcacct-" + secrets.token_urlsafe(32)
        self.keys[key_id] = {"value": value, "sa": sa, "project": project, "active": True}
        self.minted_values.append(value)
        return key_id, value

    def mint_initial(self, project: str = PROJECT) -> dict[str, str]:
        """The key a human put in the secret before the first rotation."""
        with self.lock:
            sa = "svc_acct_" + secrets.token_hex(6)
            self.service_accounts[sa] = project
            key_id, value = self._new_key(sa, project)
        return {"api_key": value, "key_id": key_id, "service_account_id": sa, "project_id": project}

    def works(self, value: str | None) -> bool:
        with self.lock:
            return any(k["value"] == value and k["active"] for k in self.keys.values())

    def active_key_ids(self) -> set[str]:
        with self.lock:
            return {kid for kid, k in self.keys.items() if k["active"]}

    def deactivate(self, key_id: str) -> None:
        with self.lock:
            self.keys[key_id]["active"] = False

    # -- server
    def start(self) -> "FakeOpenAI":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 5  # a stuck client cannot hold a server thread forever

            def log_message(self, *args: Any) -> None:
                return None

            def _reply(self, status: int, doc: dict[str, Any]) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _route(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                bearer = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                status, doc, op = fake.dispatch(method, self.path, bearer, body)
                with fake.lock:
                    fake.calls.append({"method": method, "path": self.path, "op": op, "status": status,
                                       "bearer_key_id": fake.key_id_of(bearer)})
                self._reply(status, doc)

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_DELETE(self) -> None:
                self._route("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=5)

    def key_id_of(self, bearer: str) -> str | None:
        for kid, k in self.keys.items():
            if k["value"] == bearer:
                return kid
        return None

    def _injected(self, op: str) -> bool:
        with self.lock:
            if self.fail[op] > 0:
                self.fail[op] -= 1
                return True
        return False

    def dispatch(self, method: str, path: str, bearer: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
        def err(code: str, status: int) -> tuple[int, dict[str, Any]]:
            # Like the real API, the message quotes part of the key: the adapter must not log it.
            return status, {"error": {"code": code, "type": "invalid_request_error",
                                      "message": f"Incorrect API key provided: {bearer[:6]}...{bearer[-4:]}"}}

        if method == "GET" and path == "/v1/models":
            if self._injected("verify"):
                return (*err("server_error", 500), "verify")
            if not self.works(bearer):
                return (*err("invalid_api_key", 401), "verify")
            return 200, {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]}, "verify"
        m = re.fullmatch(r"/v1/organization/projects/([\w-]+)/(service_accounts|api_keys)(?:/([\w-]+))?(/api_keys)?", path)
        if not m:
            return 404, {"error": {"code": "not_found", "type": "invalid_request_error", "message": "no route"}}, "unknown"
        project, kind, ident, sub = m.groups()
        op = "revoke" if method == "DELETE" else "create"
        if bearer != self.admin_key:
            return (*err("invalid_api_key", 401), op)
        if self._injected(op):
            return (*err("server_error", 500), op)
        with self.lock:
            if method == "POST" and kind == "service_accounts" and ident is None:
                sa = "svc_acct_" + secrets.token_hex(6)
                self.service_accounts[sa] = project
                key_id, value = self._new_key(sa, project)
                return 200, {"object": "organization.project.service_account", "id": sa, "name": body.get("name"),
                             "role": "member", "created_at": int(time.time()),
                             "api_key": {"object": "organization.project.service_account.api_key", "value": value,
                                         "name": "Secret Key", "created_at": int(time.time()), "id": key_id}}, op
            if method == "POST" and kind == "service_accounts" and sub:
                if self.service_accounts.get(ident or "") != project:
                    return 404, {"error": {"code": "not_found", "type": "invalid_request_error", "message": "no sa"}}, op
                key_id, value = self._new_key(ident or "", project)
                return 200, {"object": "organization.project.service_account.api_key", "id": key_id, "value": value,
                             "name": body.get("name"), "created_at": int(time.time())}, op
            if method == "DELETE" and kind == "api_keys" and ident:
                key = self.keys.get(ident)
                if key is None or not key["active"] or key["project"] != project:
                    return 404, {"error": {"code": "not_found", "type": "invalid_request_error", "message": "no key"}}, op
                key["active"] = False
                return 200, {"object": "organization.project.api_key.deleted", "id": ident, "deleted": True}, op
        return 405, {"error": {"code": "method_not_allowed", "type": "invalid_request_error", "message": "no"}}, op


# ---------------------------------------------------------------- Secrets Manager side


def client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"injected {code}"}}, operation)


class StrictSecrets:
    """A moto client with the real service's strictness and one-shot fault injection."""

    def __init__(self, inner: Any):
        self._inner = inner
        self.faults: dict[str, int] = defaultdict(int)
        self.skips: dict[str, int] = defaultdict(int)
        self.calls: list[str] = []

    def fail_next(self, operation: str, times: int = 1, skip: int = 0) -> None:
        """Let `skip` calls of `operation` through, then fail the next `times` ones."""
        self.faults[operation] += times
        self.skips[operation] = skip

    def _maybe_fail(self, operation: str) -> None:
        self.calls.append(operation)
        if self.faults[operation] > 0:
            if self.skips[operation] > 0:
                self.skips[operation] -= 1
                return
            self.faults[operation] -= 1
            raise client_error("InternalServiceError", operation)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self._maybe_fail(name)
            return attr(*args, **kwargs)

        return call

    def describe_secret(self, **kwargs: Any) -> Any:
        self._maybe_fail("describe_secret")
        meta = self._inner.describe_secret(**kwargs)
        meta["VersionIdsToStages"] = {v: s for v, s in (meta.get("VersionIdsToStages") or {}).items() if s}
        return meta

    def put_secret_value(self, **kwargs: Any) -> Any:
        self._maybe_fail("put_secret_value")
        token = kwargs.get("ClientRequestToken")
        if token:
            try:
                existing = self._inner.get_secret_value(SecretId=kwargs["SecretId"], VersionId=token)
            except ClientError:
                existing = None
            if existing is not None:
                if existing.get("SecretString") == kwargs.get("SecretString"):
                    return {"ARN": existing["ARN"], "VersionId": token}
                raise client_error("ResourceExistsException", "PutSecretValue")
        return self._inner.put_secret_value(**kwargs)


def moto_secret(name: str) -> Any:
    from moto.secretsmanager.models import secretsmanager_backends

    return secretsmanager_backends[ACCOUNT][REGION].secrets[name]


class Service:
    """The Secrets Manager service's part of a rotation (what RotateSecret does before the Lambda)."""

    def __init__(self, client: Any):
        self.client = client

    def enable_rotation(self, name: str, days: int = 30) -> None:
        s = moto_secret(name)
        s.rotation_requested = True
        s.rotation_enabled = True
        s.auto_rotate_after_days = days
        s.rotation_lambda_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:rotation"

    def start(self, name: str, token: str | None = None) -> str:
        s = moto_secret(name)
        if not s.rotation_enabled:
            raise client_error("InvalidRequestException", "RotateSecret")
        for v in s.versions.values():
            if "AWSPENDING" in v["version_stages"] and "AWSCURRENT" not in v["version_stages"]:
                raise client_error("InvalidRequestException", "RotateSecret")  # previous rotation in progress
        token = token or str(uuid.uuid4())
        s.versions[token] = {"version_id": token, "version_stages": ["AWSPENDING"], "createdate": int(time.time())}
        return token


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture()
def aws() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)


@pytest.fixture()
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    try:
        yield fake
    finally:
        fake.stop()


# ---------------------------------------------------------------- the doubles' own contracts


def _http(fake: FakeOpenAI, method: str, path: str, bearer: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(fake.base_url + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_fake_openai_mints_verifies_and_revokes(fake_openai: FakeOpenAI) -> None:
    status, sa = _http(fake_openai, "POST", f"/organization/projects/{PROJECT}/service_accounts", fake_openai.admin_key, {"name": "x"})
    assert status == 200 and sa["api_key"]["value"].startswith("sk-")
    key = sa["api_key"]
    assert _http(fake_openai, "GET", "/models", key["value"])[0] == 200
    status, second = _http(fake_openai, "POST", f"/organization/projects/{PROJECT}/service_accounts/{sa['id']}/api_keys",
                           fake_openai.admin_key, {"name": "y"})
    assert status == 200 and second["id"] != key["id"]
    assert _http(fake_openai, "DELETE", f"/organization/projects/{PROJECT}/api_keys/{key['id']}", fake_openai.admin_key)[0] == 200
    assert _http(fake_openai, "GET", "/models", key["value"])[0] == 401  # revoked keys stop working
    assert _http(fake_openai, "GET", "/models", second["value"])[0] == 200  # the other key does not
    assert _http(fake_openai, "DELETE", f"/organization/projects/{PROJECT}/api_keys/{key['id']}", fake_openai.admin_key)[0] == 404


def test_fake_openai_requires_the_admin_key_and_injects_faults(fake_openai: FakeOpenAI) -> None:
    initial = fake_openai.mint_initial()
    assert _http(fake_openai, "POST", f"/organization/projects/{PROJECT}/service_accounts", initial["api_key"], {"name": "x"})[0] == 401
    fake_openai.fail["verify"] = 1
    assert _http(fake_openai, "GET", "/models", initial["api_key"])[0] == 500
    assert _http(fake_openai, "GET", "/models", initial["api_key"])[0] == 200


def test_strict_secrets_refuses_to_overwrite_a_version(aws: Any) -> None:
    strict = StrictSecrets(aws)
    aws.create_secret(Name="s", SecretString="a")
    token = str(uuid.uuid4())
    strict.put_secret_value(SecretId="s", ClientRequestToken=token, SecretString="b", VersionStages=["AWSPENDING"])
    strict.put_secret_value(SecretId="s", ClientRequestToken=token, SecretString="b", VersionStages=["AWSPENDING"])
    with pytest.raises(ClientError) as exc:
        strict.put_secret_value(SecretId="s", ClientRequestToken=token, SecretString="c", VersionStages=["AWSPENDING"])
    assert exc.value.response["Error"]["Code"] == "ResourceExistsException"
    strict.fail_next("get_secret_value")
    with pytest.raises(ClientError):
        strict.get_secret_value(SecretId="s")
    assert json.loads(json.dumps(strict.get_secret_value(SecretId="s")["SecretString"])) == "a"


def test_service_refuses_a_second_rotation_while_one_is_pending(aws: Any) -> None:
    aws.create_secret(Name="s", SecretString="a")
    svc = Service(aws)
    with pytest.raises(ClientError):
        svc.start("s")  # rotation not enabled
    svc.enable_rotation("s")
    svc.start("s")
    with pytest.raises(ClientError) as exc:
        svc.start("s")
    assert exc.value.response["Error"]["Code"] == "InvalidRequestException"
