"""SendGrid and Datadog adapters: API keys minted and revoked through each provider's documented admin API.

SendGrid (base https://api.sendgrid.com, or https://api.eu.sendgrid.com; admin key as Bearer; the
admin key needs the `api_keys` scope):
  GET    /v3/api_keys/{api_key_id}           -> {"api_key_id", "name", "scopes": [...]}
  POST   /v3/api_keys {"name", "scopes"}     -> 201 {"api_key": "SG....", "api_key_id", "name", "scopes"}
  DELETE /v3/api_keys/{api_key_id}           -> 204
and, with the new key itself as Bearer, GET /v3/scopes (any valid key may call it) as the test.
A new key gets the scopes of the key it replaces, so a rotation never widens or narrows access.

Datadog (base https://api.datadoghq.com or the site's, e.g. https://api.datadoghq.eu; headers
DD-API-KEY + DD-APPLICATION-KEY of the admin pair; the application key needs `api_keys_write`):
  POST   /api/v2/api_keys {"data": {"type": "api_keys", "attributes": {"name"}}}
         -> 201 {"data": {"type": "api_keys", "id", "attributes": {"key", "name", ...}}}
  DELETE /api/v2/api_keys/{api_key_id}       -> 204
and GET /api/v1/validate with DD-API-KEY = the new key -> {"valid": true} as the test.

Both keep the admin credentials in a separate secret (`<PROVIDER>_ADMIN_SECRET_ID`) the agent cannot
read; HTTP goes through `http_client` (redirects refused, errors without response text).
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable, Mapping

from .config import Config
from .credential import KEY_FIELD, Credential, parse
from .errors import ConfigError, ProviderError, RotationError
from .http_client import JsonClient
from .logs import log

ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
SCOPE_RE = re.compile(r"^[a-z0-9_.:-]{1,128}$")


def _checked_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not ID_RE.match(value):
        raise RotationError(f"{what} is missing or not a valid identifier")
    return value


def _admin_doc(client: Any, secret_id: str | None, provider: str) -> dict[str, Any]:
    if not secret_id:
        raise ConfigError(f"the {provider} adapter needs its admin secret ({provider.upper()}_ADMIN_SECRET_ID is not set)")
    return parse(client.get_secret_value(SecretId=secret_id)["SecretString"])


def _retrying(check: Callable[[], None], attempts: int, sleep: Callable[[float], None]) -> None:
    """A new key can take a moment to propagate: bounded retries with backoff."""
    for attempt in range(1, attempts + 1):
        try:
            check()
            return
        except ProviderError:
            if attempt == attempts:
                raise
            sleep(min(2.0 ** (attempt - 1), 8.0))


def _deleted(http: JsonClient, operation: str, path: str, headers: Mapping[str, str]) -> bool:
    """True if deleted now, False if it was already gone (404): revoking twice is fine."""
    try:
        http.call(operation, "DELETE", path, headers=headers)
    except ProviderError as exc:
        if exc.status == 404:
            return False
        raise
    return True


# ---------------------------------------------------------------- SendGrid


class SendGridStrategy:
    name = "sendgrid"
    revokes = True

    def __init__(self, client: Any, config: Config, sleep: Callable[[float], None] = time.sleep):
        self._client, self._config, self._sleep = client, config, sleep
        self._http: JsonClient | None = None
        self._admin: dict[str, str] = {}

    def _connect(self) -> tuple[JsonClient, dict[str, str]]:
        if self._http is None:
            doc = _admin_doc(self._client, self._config.admin_secret_ids.get(self.name), self.name)
            key = doc.get("admin_key")
            if not isinstance(key, str) or not key:
                raise ConfigError("the sendgrid admin secret has no 'admin_key' field")
            self._admin = {"Authorization": f"Bearer {key}"}
            self._http = JsonClient(self._config.base_url(self.name), timeout=self._config.http_timeout_seconds)
        return self._http, self._admin

    def _scopes(self, current: Mapping[str, Any]) -> list[str]:
        http, admin = self._connect()
        old_id = current.get("key_id")
        if not isinstance(old_id, str) or not ID_RE.match(old_id):
            raise RotationError("the current sendgrid value has no key_id: put its api_key_id in the secret once")
        doc = http.call("read_key", "GET", f"/v3/api_keys/{old_id}", headers=admin)
        scopes = doc.get("scopes") if isinstance(doc, dict) else None
        if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) and SCOPE_RE.match(s) for s in scopes):
            raise ProviderError("read_key", 200, "no_scopes_in_response")
        return sorted(scopes)

    def create(self, current: Mapping[str, Any], *, label: str) -> Credential:
        http, admin = self._connect()
        scopes = self._scopes(current)
        doc = http.call("create_key", "POST", "/v3/api_keys", headers=admin, body={"name": label[:100], "scopes": scopes})
        value = doc.get("api_key") if isinstance(doc, dict) else None
        if not isinstance(value, str) or not value:
            raise ProviderError("create_key", 201, "no_key_value_in_response")
        return {KEY_FIELD: value, "key_id": _checked_id(doc.get("api_key_id"), "api_key_id")}

    def test(self, new: Mapping[str, Any]) -> None:
        value = new.get(KEY_FIELD)
        if not isinstance(value, str) or not value:
            raise RotationError("credential has no api_key")
        http, _ = self._connect()
        _retrying(lambda: http.call("verify_key", "GET", "/v3/scopes", headers={"Authorization": f"Bearer {value}"}),
                  self._config.verify_attempts, self._sleep)

    def revoke(self, old: Mapping[str, str]) -> None:
        http, admin = self._connect()
        key_id = _checked_id(old.get("key_id"), "key_id")
        if not _deleted(http, "revoke_key", f"/v3/api_keys/{key_id}", admin):
            log("revoke_already_gone", key_id=key_id, strategy=self.name)


# ---------------------------------------------------------------- Datadog


class DatadogStrategy:
    name = "datadog"
    revokes = True

    def __init__(self, client: Any, config: Config, sleep: Callable[[float], None] = time.sleep):
        self._client, self._config, self._sleep = client, config, sleep
        self._http: JsonClient | None = None
        self._admin: dict[str, str] = {}

    def _connect(self) -> tuple[JsonClient, dict[str, str]]:
        if self._http is None:
            doc = _admin_doc(self._client, self._config.admin_secret_ids.get(self.name), self.name)
            api_key, app_key = doc.get("api_key"), doc.get("application_key")
            if not (isinstance(api_key, str) and api_key and isinstance(app_key, str) and app_key):
                raise ConfigError("the datadog admin secret needs 'api_key' and 'application_key' fields")
            self._admin = {"DD-API-KEY": api_key, "DD-APPLICATION-KEY": app_key}
            self._http = JsonClient(self._config.base_url(self.name), timeout=self._config.http_timeout_seconds)
        return self._http, self._admin

    def create(self, current: Mapping[str, Any], *, label: str) -> Credential:
        http, admin = self._connect()
        doc = http.call("create_key", "POST", "/api/v2/api_keys", headers=admin,
                        body={"data": {"type": "api_keys", "attributes": {"name": label}}})
        data = doc.get("data") if isinstance(doc, dict) else None
        attributes = data.get("attributes") if isinstance(data, dict) else None
        value = attributes.get("key") if isinstance(attributes, dict) else None
        if not isinstance(data, dict) or not isinstance(value, str) or not value:
            raise ProviderError("create_key", 201, "no_key_value_in_response")
        return {KEY_FIELD: value, "key_id": _checked_id(data.get("id"), "api key id")}

    def test(self, new: Mapping[str, Any]) -> None:
        value = new.get(KEY_FIELD)
        if not isinstance(value, str) or not value:
            raise RotationError("credential has no api_key")
        http, _ = self._connect()

        def check() -> None:
            doc = http.call("verify_key", "GET", "/api/v1/validate", headers={"DD-API-KEY": value})
            if not (isinstance(doc, dict) and doc.get("valid") is True):
                raise ProviderError("verify_key", 200, "not_valid")

        _retrying(check, self._config.verify_attempts, self._sleep)

    def revoke(self, old: Mapping[str, str]) -> None:
        http, admin = self._connect()
        key_id = _checked_id(old.get("key_id"), "key_id")
        if not _deleted(http, "revoke_key", f"/api/v2/api_keys/{key_id}", admin):
            log("revoke_already_gone", key_id=key_id, strategy=self.name)
