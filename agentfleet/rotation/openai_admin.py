"""OpenAI adapter: project service-account keys minted and revoked through the Admin API.

Documented HTTP contract used (base URL https://api.openai.com/v1, admin key as Bearer):
  POST   /organization/projects/{project_id}/service_accounts                  {"name"}
         -> {"id": "svc_acct_...", "api_key": {"id": "key_...", "value": "sk-..."}}
  POST   /organization/projects/{project_id}/service_accounts/{sa_id}/api_keys {"name"}
         -> {"id": "key_...", "value": "sk-..."}
  DELETE /organization/projects/{project_id}/api_keys/{key_id}
         -> {"object": "organization.project.api_key.deleted", "deleted": true}
and, with the project key itself as Bearer, the cheap authenticated check GET /models.

The first rotation of a credential creates one service account for it; later rotations add a
key to that account and delete the old key by id, so the account's history stays in one place.
The admin key and default project come from a separate secret (OPENAI_ADMIN_SECRET_ID) that the
agent itself cannot read. HTTP goes through `http_client` (redirects refused, value-free errors).
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

ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
ADMIN_KEY_FIELD = "admin_key"


def _checked_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not ID_RE.match(value):
        raise RotationError(f"{what} is missing or not a valid identifier")
    return value


class OpenAIAdmin:
    """Thin HTTP client for the few endpoints the adapter needs."""

    def __init__(self, base_url: str, admin_key: str, timeout: float):
        self._http = JsonClient(base_url, timeout=timeout)
        self._admin_key = admin_key

    def _call(self, operation: str, method: str, path: str, *, bearer: str, body: Mapping[str, Any] | None = None) -> Any:
        return self._http.call(operation, method, path, body=body, headers={"Authorization": f"Bearer {bearer}"})

    def create_service_account(self, project_id: str, name: str) -> tuple[str, str, str]:
        doc = self._call("create_service_account", "POST", f"/organization/projects/{project_id}/service_accounts",
                         bearer=self._admin_key, body={"name": name})
        key = doc.get("api_key") if isinstance(doc, dict) else None
        if not isinstance(key, dict):
            raise ProviderError("create_service_account", 200, "no_api_key_in_response")
        return _checked_id(doc.get("id"), "service account id"), _checked_id(key.get("id"), "key id"), _value(key)

    def create_service_account_key(self, project_id: str, service_account_id: str, name: str) -> tuple[str, str]:
        doc = self._call("create_key", "POST",
                         f"/organization/projects/{project_id}/service_accounts/{service_account_id}/api_keys",
                         bearer=self._admin_key, body={"name": name})
        if not isinstance(doc, dict):
            raise ProviderError("create_key", 200, "unexpected_response")
        return _checked_id(doc.get("id"), "key id"), _value(doc)

    def delete_project_api_key(self, project_id: str, key_id: str) -> bool:
        """True if deleted now, False if it was already gone (404): revoking twice is fine."""
        try:
            self._call("revoke_key", "DELETE", f"/organization/projects/{project_id}/api_keys/{key_id}",
                       bearer=self._admin_key)
        except ProviderError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def check_key(self, api_key: str) -> None:
        self._call("verify_key", "GET", "/models", bearer=api_key)


def _value(key: Mapping[str, Any]) -> str:
    value = key.get("value")
    if not isinstance(value, str) or not value:
        raise ProviderError("create_key", 200, "no_key_value_in_response")
    return value


class OpenAIStrategy:
    name = "openai"
    revokes = True

    def __init__(self, client: Any, config: Config, sleep: Callable[[float], None] = time.sleep):
        self._client = client
        self._config = config
        self._sleep = sleep
        self._admin: OpenAIAdmin | None = None
        self._default_project: str | None = None

    def _connect(self) -> OpenAIAdmin:
        if self._admin is None:
            secret_id = self._config.admin_secret_ids.get(self.name) or self._config.openai_admin_secret_id
            if not secret_id:
                raise ConfigError("OPENAI_ADMIN_SECRET_ID is not set: the openai adapter needs the admin key secret")
            doc = parse(self._client.get_secret_value(SecretId=secret_id)["SecretString"])
            admin_key = doc.get(ADMIN_KEY_FIELD)
            if not isinstance(admin_key, str) or not admin_key:
                raise ConfigError(f"the admin secret has no {ADMIN_KEY_FIELD!r} field")
            project = doc.get("project_id")
            self._default_project = project if isinstance(project, str) else None
            self._admin = OpenAIAdmin(self._config.base_url(self.name), admin_key, self._config.http_timeout_seconds)
        return self._admin

    def create(self, current: Mapping[str, Any], *, label: str) -> Credential:
        admin = self._connect()
        project = _checked_id(current.get("project_id") or self._default_project, "project_id")
        service_account = current.get("service_account_id")
        if isinstance(service_account, str) and ID_RE.match(service_account):
            try:
                key_id, value = admin.create_service_account_key(project, service_account, label)
                return {KEY_FIELD: value, "key_id": key_id, "service_account_id": service_account, "project_id": project}
            except ProviderError as exc:
                if exc.status != 404:
                    raise
                log("service_account_missing", service_account_id=service_account, project_id=project)
        sa_id, key_id, value = admin.create_service_account(project, label)
        return {KEY_FIELD: value, "key_id": key_id, "service_account_id": sa_id, "project_id": project}

    def test(self, new: Mapping[str, Any]) -> None:
        value = new.get(KEY_FIELD)
        if not isinstance(value, str) or not value:
            raise RotationError("credential has no api_key")
        admin = self._connect()
        attempts = self._config.verify_attempts
        for attempt in range(1, attempts + 1):
            try:
                admin.check_key(value)
                return
            except ProviderError:
                # A new key can take a moment to propagate; retry a bounded number of times.
                if attempt == attempts:
                    raise
                self._sleep(min(2.0 ** (attempt - 1), 8.0))

    def revoke(self, old: Mapping[str, str]) -> None:
        admin = self._connect()
        project = _checked_id(old.get("project_id") or self._default_project, "project_id")
        key_id = _checked_id(old.get("key_id"), "key_id")
        if not admin.delete_project_api_key(project, key_id):
            log("revoke_already_gone", key_id=key_id, project_id=project)
