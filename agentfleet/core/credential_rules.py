"""Rules that tie a credential's strategy to its service, stores and fields, and the value's shape.

Pulumi-free and used by the loader (`agents.yaml` problems, each naming its fix) and by whoever
writes a value (`check_value`: the JSON value must carry exactly the declared fields). What a
strategy is comes from `agentfleet.core.model.STRATEGIES` (the one table).
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from agentfleet.core.model import (
    FIELD_NAME_RE,
    FIELD_PRESETS,
    PROVIDER_ISSUED_SERVICES,
    ROTATION_STRATEGIES,
    ResolvedCredential,
    Strategy,
    is_automated,
    strategy_spec,
)

Fields = tuple[tuple[str, bool], ...]
SubProblem = tuple[tuple[str, ...], str]
"""(location under the credential, message)."""


def declared_fields(raw: object, strategy: str | None = None) -> Fields | None:
    """The (name, secret) pairs a credential's `fields:` declares; None if the declaration is invalid.

    Without `fields:` the strategy's preset applies (postgres-alternating: the database fields),
    else a single `api_key`."""
    if raw is None:
        spec = strategy_spec(strategy) if strategy in ROTATION_STRATEGIES else None
        return FIELD_PRESETS[spec.fields] if spec is not None and spec.fields else FIELD_PRESETS["api_key"]
    if isinstance(raw, str):
        return FIELD_PRESETS.get(raw)
    if isinstance(raw, (list, tuple)):
        out: list[tuple[str, bool]] = []
        for item in raw:
            name = item.get("name") if isinstance(item, Mapping) else getattr(item, "name", None)
            secret = item.get("sensitive", True) if isinstance(item, Mapping) else getattr(item, "sensitive", True)
            if not isinstance(name, str) or not FIELD_NAME_RE.match(name) or not isinstance(secret, bool):
                return None
            out.append((name, secret))
        return tuple(out)
    return None


def credential_problems(cred: Mapping[str, Any], default_stores: Sequence[str]) -> list[SubProblem]:
    """Strategy/service/store/field mismatches of one credential as written in the fleet file."""
    rot = cred.get("rotation")
    strategy = rot.get("strategy", Strategy.MANUAL.value) if isinstance(rot, Mapping) else Strategy.MANUAL.value
    if not isinstance(strategy, str) or strategy not in ROTATION_STRATEGIES:
        return []  # the loader reports an unknown strategy
    spec = strategy_spec(strategy)
    service = cred.get("service")
    stores = cred.get("stores", default_stores)
    out: list[SubProblem] = []
    where = ("rotation", "strategy")
    if isinstance(service, str) and spec.services is not None and service not in spec.services:
        out.append((where, (
            f"strategy {strategy!r} rotates {' / '.join(spec.services)} credentials only, but this credential's service is"
            f" {service!r}: use `strategy: manual` (or the adapter of {service} if there is one), or fix `service:`"
        )))
    if strategy == Strategy.GENERATED and isinstance(service, str) and service in PROVIDER_ISSUED_SERVICES:
        out.append((where, (
            f"{service} issues this secret itself: a `generated` random value would never be accepted by {service}."
            " Use `strategy: manual` (mint it at the provider, the stack reminds you), or an adapter strategy"
            " if one exists for it; `generated` is for values the project owns (internal tokens, its own signing keys)"
        )))
    if spec.automated and isinstance(stores, (list, tuple)) and stores and "aws" not in stores:
        out.append((where, (
            f"strategy {strategy!r} is rotated by a Secrets Manager rotation function, but this credential is stored"
            f" only in {', '.join(map(str, stores))}: add `aws` to `stores:` (the function then writes the Vault copy too)"
            " or use `strategy: manual`"
        )))
    raw_fields = cred.get("fields")
    fields = declared_fields(raw_fields, strategy)
    if fields is None:
        presets = ", ".join(sorted(FIELD_PRESETS))
        out.append((("fields",), f"`fields:` must be a preset ({presets}) or a list of {{name, sensitive}} with names of a-z, 0-9, _"))
        return out
    names = [n for n, _ in fields]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        out.append((("fields",), f"duplicate field name(s) {', '.join(dupes)}: each field of the value appears once"))
    if not any(secret for _, secret in fields):
        out.append((("fields",), "no field is sensitive: a credential holds at least one secret field (mark only identifiers `sensitive: false`)"))
    wanted = FIELD_PRESETS[spec.fields] if spec.fields else None
    if wanted is not None and fields != wanted:
        out.append((("fields",), (
            f"strategy {strategy!r} rotates values with the fields {', '.join(n for n, _ in wanted)}: write"
            f" `fields: {spec.fields}` or leave `fields:` out"
        )))
    if wanted is None and spec.automated and fields != FIELD_PRESETS["api_key"]:
        out.append((("fields",), (
            f"strategy {strategy!r} rotates a single `api_key` value; a credential with the fields"
            f" {', '.join(names)} is rotated by hand: use `strategy: manual` or leave `fields:` out"
        )))
    return out


def check_value(fields: Fields, text: str) -> list[str]:
    """Problems of a value about to be written (never quoting it): a JSON object with exactly the
    declared fields, each a non-empty string (or a number for `port`). A single-`api_key`
    credential also accepts plain text, which readers see as {"api_key": <text>}."""
    if fields == FIELD_PRESETS["api_key"]:
        try:
            doc = json.loads(text)
        except ValueError:
            return [] if text.strip() else ["the value is empty"]
        if not isinstance(doc, dict):
            return [] if text.strip() else ["the value is empty"]
    else:
        try:
            doc = json.loads(text)
        except ValueError:
            return [f"the value must be a JSON object with the fields {', '.join(n for n, _ in fields)} (it is not JSON)"]
        if not isinstance(doc, dict):
            return [f"the value must be a JSON object with the fields {', '.join(n for n, _ in fields)}"]
    problems: list[str] = []
    for name, _secret in fields:
        value = doc.get(name)
        ok = (isinstance(value, str) and value != "") or (name == "port" and isinstance(value, int) and not isinstance(value, bool))
        if not ok:
            problems.append(f"field `{name}` is missing or empty")
    declared = {n for n, _ in fields}
    extra = sorted(k for k in doc if k not in declared and k not in BOOKKEEPING_FIELDS)
    if extra:
        problems.append(f"undeclared field(s) {', '.join(extra)}: declare them under `fields:` or leave them out")
    return problems


BOOKKEEPING_FIELDS = frozenset({"key_id", "service_account_id", "project_id", "strategy", "created_at", "engine", "scopes"})
"""Non-secret identifiers the rotation functions add to a value (what they need to revoke it)."""


def secret_field_names(fields: Fields) -> tuple[str, ...]:
    return tuple(n for n, secret in fields if secret)


# ---- how a resolved credential is rotated (plan, audit and the rotation plan read these) ----


def is_automatic(cred: ResolvedCredential) -> bool:
    """A rotation function rotates it: an automated strategy and a Secrets Manager copy."""
    return is_automated(cred.rotation_strategy) and "aws" in cred.stores


def rotation_mode(cred: ResolvedCredential) -> str:
    """`automatic` (a function rotates it), `reminder` (a human, reminded), or `keyless` (nothing to
    rotate: a credential kind without a stored key, when the model has one)."""
    if getattr(cred, "keyless", False):
        return "keyless"
    return "automatic" if is_automatic(cred) else "reminder"


def pickup_observable(cred: ResolvedCredential) -> bool:
    """Proof of pickup works for provider keys revoked from the ledger whose only copy is Secrets
    Manager (Vault reads are not in CloudTrail)."""
    return is_automatic(cred) and strategy_spec(cred.rotation_strategy).issuer == "provider" and tuple(cred.stores) == ("aws",)


def pickup_mode(cred: ResolvedCredential) -> str:
    """What lets the old key be revoked (docs/rotation.md#proof-of-pickup)."""
    if rotation_mode(cred) != "automatic":
        return "n/a"
    if strategy_spec(cred.rotation_strategy).issuer != "provider":
        return "nothing revoked" if cred.rotation_strategy == Strategy.GENERATED else "alternating users"
    return "cloudtrail" if pickup_observable(cred) else "grace period"
