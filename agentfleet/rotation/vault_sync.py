"""The Vault/OpenBao copy of a rotated credential: log in, write the KV v2 value, remember what was written.

A credential stored in both Secrets Manager and Vault (`stores: [aws, vault]`) must carry the same
key in both: otherwise an agent reading Vault keeps the old key, which the provider revokes after
the grace period. The handler (agentfleet/rotation/handler.py) decides *when* to write (only a verified
AWSCURRENT value, after finishSecret and again from every sweep until it succeeds) and blocks
revocation of the old key until the write is recorded; this module does the I/O:

  * `VaultClient`: a tiny urllib client for the two documented endpoints used
      POST /v1/auth/<auth path>/login          (AWS IAM auth, signed sts:GetCallerIdentity)
      PUT  /v1/<mount>/data/<path>  {"data": {"value": <key>}}   (KV v2 write)
    Errors carry the operation and HTTP status only, never a response body.
  * `VaultLogin`: the login behind a one-method interface. `AwsIamLogin` (production) signs
    GetCallerIdentity with the function's role credentials (botocore's SigV4Auth, present in the
    Lambda runtime); `TokenLogin` lets tests log in with a token issued by a local OpenBao.
  * the sync record: which AWSCURRENT version the Vault copy holds, kept as its own version of
    the secret under the staging label AGENTFLEET_VAULT_SYNC (identifiers only, like the
    revocation ledger). The rotation role's Vault policy can only create/update the value, not
    read it, so this record is how a retried step or sweep knows the copy is already current.

Standard library only, plus botocore inside `AwsIamLogin` (shipped with the Lambda runtime).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping, Protocol

from agentfleet.rotation.config import Config, VaultTarget
from agentfleet.rotation.errors import ConfigError, ProviderError

VAULT_VALUE_KEY = "value"
"""Key of the credential inside its KV v2 secret; the same as `agentfleet.core.naming.VAULT_VALUE_KEY`
(a test checks: this package cannot import components)."""
SYNC_STAGE = "AGENTFLEET_VAULT_SYNC"
SYNCED_EVENT = "vault_synced"
SYNC_FAILED_EVENT = "vault_sync_failed"
"""Log event counted by the rotation functions' failure metric filter (agentfleet.core.rotation_plan)."""
STS_BODY = "Action=GetCallerIdentity&Version=2011-06-15"
STS_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
SERVER_ID_HEADER = "X-Vault-AWS-IAM-Server-ID"

_STATUS_CODES = {400: "invalid_request", 401: "unauthorized", 403: "permission_denied", 404: "not_found",
                 405: "unsupported", 412: "precondition_failed", 429: "rate_limited", 500: "server_error",
                 502: "bad_gateway", 503: "sealed_or_standby"}


class VaultError(ProviderError):
    """A Vault call failed: operation, HTTP status and a fixed code derived from it (no response text)."""


class VaultNotConfigured(ConfigError):
    """A secret is mapped to Vault but the function has no Vault address or auth role."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class VaultClient:
    """JSON over HTTP to one Vault; redirects refused so a token never follows one to another host."""

    def __init__(self, address: str, *, namespace: str | None = None, timeout: float = 10.0):
        self.address = address.rstrip("/")
        self._namespace = namespace
        self._timeout = timeout

    def call(self, operation: str, method: str, path: str, *, token: str | None = None,
             body: Mapping[str, Any] | None = None) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json", "X-Vault-Request": "true"}
        if token is not None:
            headers["X-Vault-Token"] = token
        if self._namespace:
            headers["X-Vault-Namespace"] = self._namespace
        data = json.dumps(dict(body)).encode() if body is not None else None
        req = urllib.request.Request(f"{self.address}/v1/{path.lstrip('/')}", data=data, method=method, headers=headers)
        try:
            with _OPENER.open(req, timeout=self._timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise VaultError(operation, exc.code, _STATUS_CODES.get(exc.code, "http_error")) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise VaultError(operation, None, type(exc).__name__) from None
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            raise VaultError(operation, 200, "invalid_json") from None


class VaultLogin(Protocol):
    def login(self, client: VaultClient) -> str:
        """Return a Vault token allowed to write the function's KV paths."""
        ...


@dataclass(frozen=True)
class TokenLogin:
    """A token obtained elsewhere (tests: issued by a local OpenBao for the rotation policy)."""

    token: str

    def login(self, client: VaultClient) -> str:
        return self.token


Credentials = Any
"""botocore credentials (access_key, secret_key, token): frozen or refreshable."""


@dataclass(frozen=True)
class AwsIamLogin:
    """Vault's AWS IAM auth: prove the function's role to Vault with a signed sts:GetCallerIdentity.

    Vault forwards the signed request to STS and maps the returned role ARN to the auth role
    (bound_iam_principal_arns = the rotation role). Nothing secret is sent: the signature is
    valid for this one request for 15 minutes.
    """

    auth_path: str
    role: str
    region: str = "us-east-1"
    server_id: str | None = None
    credentials: Callable[[], Credentials] | None = None
    """Returns the credentials to sign with; default: the Lambda role's (boto3 session)."""

    def sts_url(self) -> str:
        return "https://sts.amazonaws.com/" if self.region == "us-east-1" else f"https://sts.{self.region}.amazonaws.com/"

    def login_payload(self) -> dict[str, str]:
        """The body of POST /v1/auth/<path>/login (documented by Vault's AWS auth method)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        creds = self.credentials() if self.credentials is not None else _default_credentials()
        headers = {"Content-Type": STS_CONTENT_TYPE}
        if self.server_id:
            headers[SERVER_ID_HEADER] = self.server_id
        request = AWSRequest(method="POST", url=self.sts_url(), data=STS_BODY, headers=headers)
        SigV4Auth(creds, "sts", self.region).add_auth(request)
        signed = {k: [v] for k, v in request.headers.items()}
        return {
            "role": self.role,
            "iam_http_request_method": "POST",
            "iam_request_url": _b64(self.sts_url()),
            "iam_request_body": _b64(STS_BODY),
            "iam_request_headers": _b64(json.dumps(signed, sort_keys=True)),
        }

    def login(self, client: VaultClient) -> str:
        doc = client.call("vault_login", "POST", f"auth/{self.auth_path}/login", body=self.login_payload())
        token = doc.get("auth", {}).get("client_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise VaultError("vault_login", 200, "no_client_token")
        return token


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _default_credentials() -> Credentials:
    import boto3

    creds = boto3.session.Session().get_credentials()
    if creds is None:
        raise VaultError("vault_login", None, "no_aws_credentials")
    return creds.get_frozen_credentials()


class VaultWriter:
    """Writes credential values to KV v2 with a token from `login` (one login per invocation)."""

    def __init__(self, client: VaultClient, login: VaultLogin):
        self.client = client
        self._login = login
        self._token: str | None = None

    def write(self, target: VaultTarget, value: str) -> int | None:
        """PUT the value as `{"value": ...}` (a new KV version); returns that version number."""
        if self._token is None:
            self._token = self._login.login(self.client)
        doc = self.client.call("vault_write", "PUT", f"{target.mount}/data/{target.path}", token=self._token,
                               body={"data": {VAULT_VALUE_KEY: value}})
        version = doc.get("data", {}).get("version") if isinstance(doc, dict) else None
        return version if isinstance(version, int) else None


def writer_from_config(config: Config) -> VaultWriter | None:
    """The production writer (AWS IAM login); None when nothing is mapped to Vault."""
    if not config.vault_map and config.vault_layout is None:
        return None
    if config.vault_addr is None or config.vault_role is None:
        raise VaultNotConfigured("secrets are mapped to Vault but VAULT_ADDR or VAULT_ROLE is not set")
    client = VaultClient(config.vault_addr, namespace=config.vault_namespace, timeout=config.http_timeout_seconds)
    return VaultWriter(client, AwsIamLogin(config.vault_auth_path, config.vault_role, config.vault_sts_region,
                                           config.vault_iam_server_id))


# ---- the sync record (kept in Secrets Manager beside the secret) ----


@dataclass(frozen=True)
class SyncRecord:
    version_id: str
    """The Secrets Manager version whose value the Vault copy holds."""
    key_id: str | None
    vault: str
    """`<mount>/<path>` written."""
    synced_at: str
    vault_version: int | None = None


def read_record(sm: Any, secret_id: str) -> SyncRecord | None:
    try:
        resp = sm.get_secret_value(SecretId=secret_id, VersionStage=SYNC_STAGE)
    except Exception as exc:
        response = getattr(exc, "response", None)
        if isinstance(response, dict) and response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    try:
        doc = json.loads(resp["SecretString"])
        return SyncRecord(**{k: doc[k] for k in SyncRecord.__dataclass_fields__ if k in doc})
    except (ValueError, TypeError, KeyError):
        return None  # unreadable: treated as not synced, so the copy is written again


def write_record(sm: Any, secret_id: str, record: SyncRecord) -> None:
    sm.put_secret_value(SecretId=secret_id, ClientRequestToken=str(uuid.uuid4()),
                        SecretString=json.dumps({"version": 1, **asdict(record)}, sort_keys=True, separators=(",", ":")),
                        VersionStages=[SYNC_STAGE])
