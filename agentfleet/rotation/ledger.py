"""The revocation ledger: old keys waiting for their grace period, kept beside the credential.

A rotation can only revoke the previous key once the new one is AWSCURRENT and the grace period
has passed, which is hours after the rotation ends. Secret versions are immutable, so the list
cannot live in the new value; it lives in its own version of the same secret under the custom
staging label AGENTFLEET_REVOCATIONS (a label sits on exactly one version, so the latest write
wins and older ledger versions age out as deprecated versions). It holds key identifiers only:
no credential, so it is safe to log and the agent reading it learns nothing useful.

Writes are read-modify-write of the latest ledger in one call (`update`), which keeps the window
for a concurrent writer to a few milliseconds; `record_replacement` can rebuild a lost entry from
AWSPREVIOUS, so a lost update delays a revocation rather than forgetting it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Callable

from . import credential

LEDGER_STAGE = "AGENTFLEET_REVOCATIONS"
REVOKED_HISTORY = 50
"""How many revoked key ids to remember (so a healed entry is not revoked twice)."""


@dataclass
class Entry:
    key_id: str
    ref: dict[str, str]
    not_before: str
    replaced_by: str
    reason: str = "rotated"
    attempts: int = 0
    last_error: str | None = None
    replaced_at: str | None = None
    """When the replacing version became AWSCURRENT (proof of pickup looks for reads after it)."""
    old_version: str | None = None
    """Version id of the replaced value (a read asking for it by id is not a pickup)."""

    def due(self, now: datetime) -> bool:
        when = credential.parse_iso(self.not_before)
        return when is not None and now >= when


@dataclass
class Ledger:
    pending: list[Entry] = field(default_factory=list)
    revoked: list[dict[str, str]] = field(default_factory=list)

    def knows(self, key_id: str) -> bool:
        return any(e.key_id == key_id for e in self.pending) or any(r.get("key_id") == key_id for r in self.revoked)

    def to_json(self) -> str:
        return json.dumps({"version": 1, "pending": [asdict(e) for e in self.pending], "revoked": self.revoked},
                          sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "Ledger":
        doc: Any = json.loads(text)
        pending = [Entry(**{k: v for k, v in e.items() if k in Entry.__dataclass_fields__}) for e in doc.get("pending", [])]
        revoked = [dict(r) for r in doc.get("revoked", [])]
        return cls(pending=pending, revoked=revoked)


def _not_found(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    return isinstance(response, dict) and response.get("Error", {}).get("Code") == "ResourceNotFoundException"


def read(client: Any, secret_id: str) -> Ledger:
    try:
        resp = client.get_secret_value(SecretId=secret_id, VersionStage=LEDGER_STAGE)
    except Exception as exc:
        if _not_found(exc):
            return Ledger()
        raise
    return Ledger.from_json(resp["SecretString"])


def update(client: Any, secret_id: str, mutate: Callable[[Ledger], bool]) -> Ledger:
    """Apply `mutate` to the latest ledger and store it if `mutate` reports a change."""
    ledger = read(client, secret_id)
    if mutate(ledger):
        ledger.revoked = ledger.revoked[-REVOKED_HISTORY:]
        client.put_secret_value(
            SecretId=secret_id, ClientRequestToken=str(uuid.uuid4()),
            SecretString=ledger.to_json(), VersionStages=[LEDGER_STAGE],
        )
    return ledger
