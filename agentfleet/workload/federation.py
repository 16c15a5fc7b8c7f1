"""Keyless access to an external API: mint an AWS identity token, exchange it for the service's.

    sts = boto3.client("sts", region_name="us-east-1")       # a regional endpoint (not global)
    source = TokenSource(
        mint=lambda: aws_identity_token(sts, "https://api.openai.com/v1"),
        exchange=lambda jwt: exchange_openai(jwt, identity_provider_id="...", service_account_id="..."),
    )
    headers = {"Authorization": f"Bearer {source.token()}"}

`aws_identity_token` calls `sts:GetWebIdentityToken` (the agent's role may call it only for the
audiences its fleet file declares and for at most `agentfleet:federationTokenMaxSeconds`).
`exchange_openai` follows OpenAI's documented RFC 8693 token exchange
(developers.openai.com/api/reference/workload-identity-federation): POST JSON with
`grant_type=urn:ietf:params:oauth:grant-type:token-exchange`, `subject_token_type=...:jwt`, the
subject token, `identity_provider_id` and `service_account_id`; the answer's `access_token` is a
short-lived bearer credential. Nothing is stored; nothing needs rotating. No token is ever logged
or put into an exception message.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
OPENAI_TOKEN_URL = "https://auth.openai.com/oauth/token"
DEFAULT_SECONDS = 300
REFRESH_MARGIN_SECONDS = 60
"""Exchange again this long before the access token expires."""


class FederationError(Exception):
    """The exchange failed; the message carries the status and the service's error code only."""


class StsClient(Protocol):
    def get_web_identity_token(self, **kwargs: Any) -> dict[str, Any]: ...


def aws_identity_token(sts: StsClient, audience: str, seconds: int = DEFAULT_SECONDS, algorithm: str = "RS256") -> str:
    """A JWT for the calling role, for exactly one audience (AWS outbound identity federation)."""
    resp = sts.get_web_identity_token(Audience=[audience], DurationSeconds=seconds, SigningAlgorithm=algorithm)
    token: str = resp["WebIdentityToken"]
    return token


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    expires_at: float
    token_type: str = "Bearer"


def _check_url(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname == "127.0.0.1"):
        raise FederationError(f"refusing to send an identity token to {parts.scheme}://{parts.hostname}: https only")


def exchange_openai(
    subject_token: str, *, identity_provider_id: str, service_account_id: str,
    token_url: str = OPENAI_TOKEN_URL, timeout: float = 10.0, now: Callable[[], float] = time.time,
) -> AccessToken:
    """OpenAI's workload identity token exchange (RFC 8693): subject JWT in, access token out."""
    _check_url(token_url)
    body = json.dumps({
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "subject_token_type": JWT_TOKEN_TYPE,
        "subject_token": subject_token,
        "identity_provider_id": identity_provider_id,
        "service_account_id": service_account_id,
    }).encode()
    req = urllib.request.Request(token_url, data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - scheme checked above
            doc = json.loads(resp.read().decode())
    except urllib.error.HTTPError as exc:
        try:
            code = str(json.loads(exc.read().decode()).get("error", "unknown"))
        except (ValueError, AttributeError):
            code = "unknown"
        raise FederationError(f"token exchange refused: HTTP {exc.code} ({code})") from None
    except (urllib.error.URLError, TimeoutError) as exc:
        raise FederationError(f"token exchange unreachable: {type(exc).__name__}") from None
    token, expires_in = doc.get("access_token"), doc.get("expires_in")
    if not isinstance(token, str) or not token or not isinstance(expires_in, (int, float)):
        raise FederationError("token exchange answered without access_token/expires_in")
    return AccessToken(token, now() + float(expires_in), str(doc.get("token_type", "Bearer")))


@dataclass
class TokenSource:
    """Caches the access token; mints and exchanges a fresh one shortly before it expires."""

    mint: Callable[[], str]
    exchange: Callable[[str], AccessToken]
    now: Callable[[], float] = time.time
    _current: AccessToken | None = field(default=None, repr=False)

    def token(self) -> str:
        if self._current is None or self._current.expires_at - REFRESH_MARGIN_SECONDS <= self.now():
            self._current = self.exchange(self.mint())
        return self._current.value
