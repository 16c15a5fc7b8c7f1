"""Emergency rotation, performed: invoke the credential's own rotation function with `rotateNow`.

The function (agentfleet/rotation/handler.py) mints the new key, verifies it, makes it
AWSCURRENT, rewrites the Vault copy and revokes the old key(s) at once (no grace period). This
module only makes the call through an injected Lambda client (boto3 in production, an
in-process handler in the rehearsal) and turns the answer into a verdict; the names come from
`rotation_plan.emergency_rotation`. Manual credentials get the exact steps instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agentfleet.core.rotation_plan import EmergencyRotation


@dataclass(frozen=True)
class EmergencyOutcome:
    ok: bool
    """True when the new key is live everywhere and no old key is left unrevoked."""
    result: dict[str, Any]
    """The function's answer (identifiers only: status, token, vault, unrevoked key ids)."""
    error: str | None = None


def invoke(lambda_client: Any, function_name: str, payload: dict[str, Any]) -> EmergencyOutcome:
    """A synchronous invoke; a function error (e.g. EmergencyIncomplete) is a failed outcome."""
    r = lambda_client.invoke(FunctionName=function_name, InvocationType="RequestResponse",
                             Payload=json.dumps(payload, separators=(",", ":")).encode())
    raw = r["Payload"].read() if hasattr(r.get("Payload"), "read") else r.get("Payload", b"")
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        body = {"raw": "non-JSON answer"}
    if r.get("FunctionError"):
        doc = body if isinstance(body, dict) else {}
        return EmergencyOutcome(False, doc, f"{doc.get('errorType', 'FunctionError')}: {doc.get('errorMessage', '')}"[:600])
    if not isinstance(body, dict) or body.get("status") != "rotated":
        return EmergencyOutcome(False, body if isinstance(body, dict) else {}, "the function did not report status=rotated")
    return EmergencyOutcome(not body.get("unrevoked"), body, None if not body.get("unrevoked") else "old key(s) not revoked")


def rotate_now(lambda_client: Any, plan: EmergencyRotation) -> EmergencyOutcome:
    return invoke(lambda_client, plan.function_name, json.loads(plan.payload))


def follow_up(lambda_client: Any, plan: EmergencyRotation) -> EmergencyOutcome:
    """The forced sweep that finishes an incomplete emergency (Vault copy, revocation)."""
    r = lambda_client.invoke(FunctionName=plan.function_name, InvocationType="RequestResponse",
                             Payload=json.dumps({"Action": "revokeDue", "SecretId": plan.secret_name, "Force": True}).encode())
    raw = r["Payload"].read() if hasattr(r.get("Payload"), "read") else r.get("Payload", b"")
    body = json.loads(raw or b"null")
    ok = not r.get("FunctionError") and isinstance(body, dict) and body.get("status") == "ok"
    return EmergencyOutcome(ok, body if isinstance(body, dict) else {}, None if ok else str(body)[:600])


def manual_steps(fleet_file: str, stack: str, agent: str, credential: str, service: str, stores: list[str]) -> list[str]:
    """What a human does for a leaked key no function can rotate (strategy `manual`)."""
    return [
        f"Mint a new {service} key for agent {agent} in {service}'s console (do not revoke the old one yet).",
        f"agentfleet put-values {fleet_file} --stack {stack} --agent {agent} --credential {credential}"
        f"   # hidden prompt; writes {' and '.join(stores)} and verifies",
        f"Check that agent {agent} works with the new key (it reads the store on its next refresh).",
        f"Revoke the old key at {service} NOW: in an emergency there is no grace period.",
        f"Look for use of the old key in {service}'s audit log and CloudTrail (who read the secret) since the leak.",
    ]
