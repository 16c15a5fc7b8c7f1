"""The agent-side keyless exchange against a loopback fake of OpenAI's documented contract.

The fake (127.0.0.1 only, started and stopped here) implements the token endpoint as OpenAI's
reference describes it: JSON body with `grant_type` = token-exchange, `subject_token_type` jwt or
id_token, the subject token (verified: signature, `iss`, `aud`, `exp`, `iat`, `sub`),
`identity_provider_id` and `service_account_id` matching a mapping; answer `access_token`,
`issued_token_type`, `token_type`, `expires_in`, or an OAuth error.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from agentfleet.core.model import FEDERATED_SERVICES
from agentfleet.workload.federation import (
    JWT_TOKEN_TYPE,
    TOKEN_EXCHANGE_GRANT,
    FederationError,
    TokenSource,
    aws_identity_token,
    exchange_openai,
)
from tests.jwt_mint import Signer

ISSUER = "https://0f1e2d3c.tokens.sts.global.api.aws"
AUDIENCE = FEDERATED_SERVICES["openai"].default_audience
ROLE = "arn:aws:iam::123456789012:role/agents-dev-task"
PROVIDER, ACCOUNT = "wip_123", "svc_acct_456"


class FakeOpenAI(ThreadingHTTPServer):
    signer: Signer
    issued: list[str]


class Handler(BaseHTTPRequestHandler):
    server: FakeOpenAI

    def log_message(self, *args: Any) -> None:  # keep tokens out of the test output
        pass

    def _answer(self, status: int, doc: dict[str, Any]) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        if self.path != "/oauth/token" or self.headers.get("Content-Type") != "application/json":
            return self._answer(400, {"error": "invalid_request"})
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if req.get("grant_type") != TOKEN_EXCHANGE_GRANT:
            return self._answer(400, {"error": "unsupported_grant_type"})
        if req.get("subject_token_type") not in (JWT_TOKEN_TYPE, "urn:ietf:params:oauth:token-type:id_token"):
            return self._answer(400, {"error": "invalid_request"})
        claims = self.server.signer.verify(str(req.get("subject_token", "")))
        now = time.time()
        if (claims is None or not {"iss", "aud", "sub", "exp", "iat"} <= set(claims) or claims["iss"] != ISSUER
                or AUDIENCE not in ([claims["aud"]] if isinstance(claims["aud"], str) else claims["aud"])
                or claims["exp"] <= now):
            return self._answer(401, {"error": "invalid_grant"})
        if (req.get("identity_provider_id"), req.get("service_account_id"), claims["sub"]) != (PROVIDER, ACCOUNT, ROLE):
            return self._answer(403, {"error": "access_denied"})
        token = f"oa-{len(self.server.issued)}"
        self.server.issued.append(token)
        self._answer(200, {"access_token": token, "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                           "token_type": "Bearer", "expires_in": 900})


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI(("127.0.0.1", 0), Handler)
    server.signer, server.issued = Signer.new("aws-sts"), []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class FakeSts:
    """Stands for the STS client: records the request, mints what AWS would (iss, aud, sub)."""

    def __init__(self, signer: Signer) -> None:
        self.signer, self.calls = signer, []  # type: ignore[var-annotated]

    def get_web_identity_token(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        now = int(time.time())
        aud = kwargs["Audience"]
        return {"WebIdentityToken": self.signer.mint({"iss": ISSUER, "aud": aud[0] if len(aud) == 1 else aud,
                                                      "sub": ROLE, "iat": now, "exp": now + kwargs["DurationSeconds"]})}


def url(server: FakeOpenAI) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/oauth/token"


def test_agent_exchanges_its_aws_identity_token_for_an_access_token(fake: FakeOpenAI) -> None:
    sts = FakeSts(fake.signer)
    jwt = aws_identity_token(sts, AUDIENCE)
    assert sts.calls == [{"Audience": [AUDIENCE], "DurationSeconds": 300, "SigningAlgorithm": "RS256"}]
    got = exchange_openai(jwt, identity_provider_id=PROVIDER, service_account_id=ACCOUNT, token_url=url(fake))
    assert got.value == "oa-0" and got.token_type == "Bearer" and got.expires_at > time.time() + 800
    assert "oa-0" not in repr(got)


def test_token_source_caches_until_shortly_before_expiry(fake: FakeOpenAI) -> None:
    clock = [1000.0]
    sts = FakeSts(fake.signer)
    source = TokenSource(
        mint=lambda: aws_identity_token(sts, AUDIENCE),
        exchange=lambda j: exchange_openai(j, identity_provider_id=PROVIDER, service_account_id=ACCOUNT,
                                           token_url=url(fake), now=lambda: clock[0]),
        now=lambda: clock[0],
    )
    assert source.token() == source.token() == "oa-0"
    clock[0] += 900 - 30  # inside the refresh margin
    assert source.token() == "oa-1" and len(sts.calls) == 2


@pytest.mark.parametrize("case, code", [
    ("wrong-audience", "invalid_grant"), ("expired", "invalid_grant"), ("foreign-signature", "invalid_grant"),
    ("wrong-service-account", "access_denied"),
])
def test_refusals_surface_without_the_token(fake: FakeOpenAI, case: str, code: str) -> None:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": ROLE, "iat": now, "exp": now + 300}
    signer, account = fake.signer, ACCOUNT
    if case == "wrong-audience":
        claims["aud"] = "vault"
    elif case == "expired":
        claims.update(iat=now - 900, exp=now - 600)
    elif case == "foreign-signature":
        signer = Signer.new("aws-sts")
    else:
        account = "svc_other"
    jwt = signer.mint(claims)
    with pytest.raises(FederationError, match=code) as info:
        exchange_openai(jwt, identity_provider_id=PROVIDER, service_account_id=account, token_url=url(fake))
    assert jwt not in str(info.value) and not fake.issued


def test_refuses_to_send_tokens_anywhere_but_https_or_loopback() -> None:
    for bad in ("http://auth.openai.com/oauth/token", "http://10.0.0.1/oauth/token", "ftp://x/y"):
        with pytest.raises(FederationError, match="https only"):
            exchange_openai("x.y.z", identity_provider_id=PROVIDER, service_account_id=ACCOUNT, token_url=bad)
