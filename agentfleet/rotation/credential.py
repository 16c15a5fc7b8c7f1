"""The secret value's shape: a JSON object holding the key and what is needed to revoke it later.

    {"api_key": "<the credential>", "key_id": "key_...", "service_account_id": "...",
     "project_id": "proj_...", "strategy": "openai", "created_at": "2025-01-01T00:00:00Z"}

`api_key` is the only secret field, whatever the credential's type (agents read
`json.loads(value)["api_key"]`). Everything else is an identifier safe to log and to keep in the
revocation ledger. A plain-text value written by hand is read as {"api_key": <text>}.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Mapping

KEY_FIELD = "api_key"
SECRET_FIELDS = frozenset({KEY_FIELD})
REF_FIELDS = ("key_id", "service_account_id", "project_id", "strategy", "created_at")
"""Identifiers copied into a revocation ledger entry: enough to revoke, nothing secret."""

Credential = dict[str, Any]


def parse(secret_string: str) -> Credential:
    try:
        value = json.loads(secret_string)
    except ValueError:
        return {KEY_FIELD: secret_string}
    if isinstance(value, dict):
        return value
    return {KEY_FIELD: secret_string}


def dumps(cred: Mapping[str, Any]) -> str:
    return json.dumps(dict(cred), sort_keys=True, separators=(",", ":"))


def identity(cred: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes two values the same credential: the provider's key id, else the secret fields."""
    kid = key_id(cred)
    if kid:
        return ("key_id", kid)
    return ("value", cred.get(KEY_FIELD), cred.get("username"), cred.get("password"), cred.get("client_id"),
            cred.get("client_secret"))


def shape_problems(cred: Mapping[str, Any], fields: tuple[str, ...]) -> list[str]:
    """Declared fields missing or empty (names only, never values): the rotation's check of a structured value."""
    out = []
    for name in fields:
        value = cred.get(name)
        ok = (isinstance(value, str) and value != "") or (isinstance(value, int) and not isinstance(value, bool))
        if not ok:
            out.append(name)
    return out


def vault_value(cred: Mapping[str, Any], fields: tuple[str, ...]) -> str | None:
    """What the Vault copy holds: the api_key, or for a structured credential the JSON of its declared fields."""
    if not fields or tuple(fields) == (KEY_FIELD,):
        value = cred.get(KEY_FIELD)
        return value if isinstance(value, str) and value else None
    if shape_problems(cred, fields):
        return None
    return dumps({name: cred[name] for name in fields})


def key_id(cred: Mapping[str, Any] | None) -> str | None:
    if not cred:
        return None
    value = cred.get("key_id")
    return value if isinstance(value, str) and value else None


def ref(cred: Mapping[str, Any]) -> dict[str, str]:
    """The non-secret identifiers of a credential (what a ledger entry keeps)."""
    return {k: str(cred[k]) for k in REF_FIELDS if cred.get(k) not in (None, "")}


def iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except (TypeError, ValueError):
        return None
