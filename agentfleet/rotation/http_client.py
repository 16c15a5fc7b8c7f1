"""The rotation package's one HTTP client: JSON (or form) over HTTPS, redirects refused, errors value-free.

Every provider adapter and the Vault writer go through `JsonClient.call`, so the rules hold in
one place: a bearer token or admin key is never forwarded to another host (no redirects), a
failure raises `ProviderError(operation, status, code)` with a short code taken from the
provider's error document (never its message, which may quote part of a key), and a response
that is not JSON is an error, not a crash. Standard library only.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Mapping

from .errors import ProviderError


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)

ErrorCode = Callable[[int, Any], "str | None"]
"""(HTTP status, parsed error body or None) -> a short error code."""


def default_error_code(status: int, doc: Any) -> str | None:
    """`{"error": {"code"|"type": ...}}` (OpenAI), `{"errors": [{"field"|"message": ...}]}` is not read:
    only short machine codes are kept."""
    err = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(err, dict):
        for field in ("code", "type"):
            if isinstance(err.get(field), str):
                return str(err[field])[:64]
    if isinstance(doc, dict) and isinstance(doc.get("code"), (str, int)) and not isinstance(doc.get("code"), bool):
        return str(doc["code"])[:64]
    return None


class JsonClient:
    """One base URL, fixed default headers; `call` returns the parsed JSON body ({} when empty)."""

    def __init__(self, base_url: str, *, timeout: float = 10.0, headers: Mapping[str, str] | None = None,
                 error_code: ErrorCode = default_error_code):
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._headers = {"Accept": "application/json", **dict(headers or {})}
        self._error_code = error_code

    def call(self, operation: str, method: str, path: str, *, headers: Mapping[str, str] | None = None,
             body: Mapping[str, Any] | None = None, form: Mapping[str, str] | None = None) -> Any:
        all_headers = dict(self._headers)
        data: bytes | None = None
        if body is not None:
            data = json.dumps(dict(body)).encode()
            all_headers["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(dict(form)).encode()
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        all_headers.update(headers or {})
        req = urllib.request.Request(self.base_url + "/" + path.lstrip("/"), data=data, method=method, headers=all_headers)
        try:
            with _OPENER.open(req, timeout=self._timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise ProviderError(operation, exc.code, self._error_code(exc.code, _body(exc))) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise ProviderError(operation, None, type(exc).__name__) from None
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            raise ProviderError(operation, 200, "invalid_json") from None


def _body(exc: urllib.error.HTTPError) -> Any:
    try:
        return json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        return None
