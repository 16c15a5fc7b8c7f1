"""The credential audit table: one row per (agent, credential), read off the plan.

Rows come from `build_plan` only, so the table names exactly the secrets and paths the stack
creates. Pure (no Pulumi, no I/O): the CLI renders the rows as markdown, CSV or JSON.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from agentfleet.core.jsontext import dumps_indented

STORE_WORDS = {"aws": "Secrets Manager", "vault": "Vault", "ssm": "Parameter Store"}
"""How a store is named to a reader (the fleet file says `aws` / `vault` / `ssm`)."""
ANYWHERE = "anywhere"
"""The network column of an agent without a `network:` scope (any network may read)."""


def network_words(network: dict[str, Any] | None) -> str:
    """An agent's network scope in one line (the plan's `network.summary`), or `anywhere`."""
    return ANYWHERE if network is None else str(network["summary"])


@dataclass(frozen=True)
class AuditRow:
    agent: str
    owner: str
    credential: str
    service: str
    type: str
    classification: str
    stores: tuple[str, ...]
    secret_name: str | None
    """Secrets Manager secret name, when stored in AWS."""
    vault_mount: str | None
    vault_path: str | None
    vault_location: str | None
    """Path under the KV v2 mount, when stored in Vault."""
    ssm_parameter: str | None
    """SSM parameter name, when stored in Parameter Store."""
    network: str
    """Where the credential may be read from: the agent's scope, or `anywhere`."""
    rotation_strategy: str
    rotation_days: int
    rotation_mode: str
    """`automatic` (a function rotates it), `reminder` (a human, reminded) or `keyless`."""
    pickup: str
    """What lets the old key be revoked: `cloudtrail` (proof of pickup), `grace period`, ..."""
    paused: bool
    keyless: bool = False
    """Workload identity: no value stored anywhere, nothing rotates (a short-lived token exchange)."""
    assumed_by: str = ""
    """Who may assume the agent's role, in words (`trusted_by` of the plan)."""


# Column order of every format; the JSON keys are these same names.
COLUMNS: tuple[str, ...] = tuple(AuditRow.__dataclass_fields__)


def audit_rows(plan: dict[str, Any]) -> list[AuditRow]:
    """Rows sorted by agent then credential, so reordering the fleet file changes nothing."""
    rows = [
        AuditRow(
            agent=a["name"], owner=a["owner"], credential=c["name"], service=c["service"],
            type=c["type"], classification=c["classification"], stores=tuple(sorted(c["stores"])),
            secret_name=c["secret_name"], vault_mount=c["vault_mount"], vault_path=c["vault_path"],
            vault_location=c["vault_location"],
            ssm_parameter=c.get("ssm_parameter"), network=network_words(a.get("network")),
            rotation_strategy=c["rotation_strategy"], rotation_days=c["rotation_days"],
            rotation_mode=c.get("rotation_mode", "reminder"), pickup=c.get("pickup", "n/a"),
            paused=a["paused"], keyless=c.get("audience") is not None,
            assumed_by="; ".join(a.get("trusted_by", [])),
        )
        for a in plan["agents"]
        for c in a["credentials"]
    ]
    return sorted(rows, key=lambda r: (r.agent, r.credential))


def _fields_of(row: AuditRow) -> dict[str, Any]:
    """`dataclasses.asdict` of a row: every field is a string, number, bool or a tuple of strings
    (immutable), so the copy it would make per value is not needed."""
    return {c: getattr(row, c) for c in COLUMNS}


def locations(row: AuditRow) -> list[str]:
    """Where the value lives, in words a reader can paste into a console search."""
    out = []
    if row.keyless:
        out.append("keyless (identity token exchange, nothing stored)")
    if row.secret_name is not None:
        out.append(f"{STORE_WORDS['aws']} {row.secret_name}")
    if row.vault_path is not None:
        out.append(f"{STORE_WORDS['vault']} {row.vault_location}")
    if row.ssm_parameter is not None:
        out.append(f"{STORE_WORDS['ssm']} {row.ssm_parameter}")
    return out


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def audit_markdown(plan: dict[str, Any]) -> str:
    rows = audit_rows(plan)
    head = ["Agent", "Owner", "Credential", "Service", "Type", "Classification", "Stores",
            "Location", "Network", "Rotation", "Mode", "Proof of pickup", "Max age (days)", "Assumed by", "Paused"]
    lines = [
        f"### Credential audit: stack `{plan['stack']}` (environment `{plan['environment']}`,"
        f" account {plan['aws_account_id']}, {plan['aws_region']})",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in rows:
        cells = [
            f"`{r.agent}`", r.owner, f"`{r.credential}`", r.service, r.type, r.classification,
            ", ".join(STORE_WORDS[s] for s in r.stores),
            "<br>".join(f"`{loc}`" for loc in locations(r)),
            r.network,
            r.rotation_strategy, r.rotation_mode, r.pickup, "—" if r.keyless else str(r.rotation_days), r.assumed_by,
            "**yes**" if r.paused else "no",
        ]
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    agents = len({r.agent for r in rows})
    paused = len({r.agent for r in rows if r.paused})
    lines += ["", f"{len(rows)} credentials of {agents} agents ({paused} paused)."]
    return "\n".join(lines) + "\n"


def audit_csv(plan: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in audit_rows(plan):
        d = _fields_of(r)
        d["stores"] = " ".join(r.stores)
        d["paused"] = "true" if r.paused else "false"
        d["keyless"] = "true" if r.keyless else "false"
        writer.writerow(["" if d[c] is None else d[c] for c in COLUMNS])
    return buf.getvalue()


def audit_json(plan: dict[str, Any]) -> str:
    doc = {
        "stack": plan["stack"],
        "environment": plan["environment"],
        "aws_account_id": plan["aws_account_id"],
        "aws_region": plan["aws_region"],
        "credentials": [{**_fields_of(r), "stores": list(r.stores)} for r in audit_rows(plan)],
    }
    return dumps_indented(doc, indent=2, sort_keys=True) + "\n"


FORMATS = {"markdown": audit_markdown, "csv": audit_csv, "json": audit_json}
