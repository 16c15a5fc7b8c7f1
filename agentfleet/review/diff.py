"""The access diff: what a fleet change does to who can read which credential, in plain words.

Both sides are `build_plan` outputs, so the diff sees resolved values (defaults applied, stores
sorted, agents sorted) and a reorder, a comment or a whitespace edit yields no change. Each
change says whether it is an escalation — more access, looser rotation, wider trust — so a PR
that grants something gets an explicit review. Pure: no Pulumi, no I/O.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from agentfleet.review.audit import STORE_WORDS
from agentfleet.core.iam_documents import GITHUB_OIDC_HOST

COMMENT_MARKER = "<!-- agentfleet:access-diff -->"
"""First line of the markdown, so CI can find and update its own PR comment."""

# Agent and credential plan fields the diff explains; any other field that changes is reported
# as an unexplained change (an escalation, to be safe) instead of being silently ignored.
_AGENT_FIELDS = frozenset({
    "name", "owner", "paused", "iam_role_name", "iam_role_arn", "trust_policy", "iam_policy",
    "vault_policy_name", "vault_policy", "credentials", "network",
})
_CREDENTIAL_FIELDS = frozenset({
    "name", "service", "type", "classification", "rotation_strategy", "rotation_days", "stores",
    "secret_name", "vault_mount", "vault_path", "vault_location", "ssm_parameter",
})


def rotation_rank(strategy: str) -> int:
    """Order of rotation strategies, loosest first: a human rotating by hand (`manual`) is
    looser than any automated strategy (`generated` or a provider adapter); the automated ones
    are equally strict."""
    return 0 if strategy == "manual" else 1


@dataclass(frozen=True)
class Change:
    agent: str
    kind: str
    """agent-added, agent-removed, agent-paused, agent-unpaused, owner-changed, trust-changed,
    credential-granted, credential-revoked, store-added, store-removed, classification-changed,
    rotation-loosened, rotation-tightened, rotation-changed, service-changed, type-changed,
    network-scoped, network-unscoped, network-widened, network-narrowed, network-changed,
    network-restated, plan-changed."""
    escalation: bool
    text: str
    credential: str | None = None
    before: str | None = None
    after: str | None = None


@dataclass(frozen=True)
class AccessDiff:
    old_source: str
    new_source: str
    stack: str
    changes: tuple[Change, ...]

    @property
    def escalations(self) -> int:
        return sum(1 for c in self.changes if c.escalation)

    def by_agent(self) -> list[tuple[str, list[Change]]]:
        out: dict[str, list[Change]] = {}
        for c in self.changes:
            out.setdefault(c.agent, []).append(c)
        return list(out.items())


# ---- trust: who can assume the role, read off the trust policy document ----


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _conditions(stmt: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    cond = stmt.get("Condition") or {}
    return sorted((op, key, val) for op, kv in cond.items() for key, vals in kv.items() for val in _as_list(vals))


def trust_principals(trust: Mapping[str, Any]) -> frozenset[str]:
    """Every (principal, condition) that may assume the role, one plain-words string each."""
    out: set[str] = set()
    for stmt in trust.get("Statement", []):
        if stmt.get("Effect") != "Allow":
            continue
        conds = _conditions(stmt)
        for ptype, values in (stmt.get("Principal") or {}).items():
            for value in _as_list(values):
                out.add(_principal_words(str(ptype), value, conds))
    return frozenset(out)


def _principal_words(ptype: str, value: str, conds: list[tuple[str, str, str]]) -> str:
    if value == "*":
        return f"anyone ({ptype} *)"
    if ptype == "Federated" and value.endswith(f"oidc-provider/{GITHUB_OIDC_HOST}"):
        subs = [v for _, k, v in conds if k == f"{GITHUB_OIDC_HOST}:sub"]
        rest = [f"{k.removeprefix(GITHUB_OIDC_HOST + ':')} {op} {v}" for op, k, v in conds if k != f"{GITHUB_OIDC_HOST}:sub"]
        words = "GitHub Actions " + (", ".join(subs) if subs else "(any repository)")
        return words + (f" ({'; '.join(rest)})" if rest else "")
    aws = f"IAM role {value}" if ":role/" in value else f"AWS principal {value}"
    words = {"Service": f"AWS service {value}", "AWS": aws}.get(ptype, f"{ptype} {value}")
    if conds:
        words += " when " + "; ".join(f"{k} {op} {v}" for op, k, v in conds)
    return words


# ---- network scope: where an agent's credentials may be read from ----

_SCOPE_KINDS = (("vpc_endpoints", "endpoint"), ("vpcs", "VPC"), ("source_cidrs", "range"), ("vault_bound_cidrs", "Vault login range"))


def _admitted(network: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(kind, str(v)) for kind, _ in _SCOPE_KINDS for v in network.get(kind, [])]


def _covered(item: tuple[str, str], by: Mapping[str, Any]) -> bool:
    """Does scope `by` admit everything `item` admits? A range is covered by any range containing it."""
    kind, value = item
    if kind == "vault_bound_cidrs" and not by.get(kind):
        return True  # no bound ranges: Vault accepts logins from anywhere
    if kind not in ("source_cidrs", "vault_bound_cidrs"):
        return value in by.get(kind, [])
    net = ipaddress.ip_network(value)
    ranges = [ipaddress.ip_network(o) for o in by.get(kind, [])]
    v4 = list(ipaddress.collapse_addresses(r for r in ranges if isinstance(r, ipaddress.IPv4Network)))
    v6 = list(ipaddress.collapse_addresses(r for r in ranges if isinstance(r, ipaddress.IPv6Network)))
    if isinstance(net, ipaddress.IPv4Network):
        return any(net.subnet_of(r) for r in v4)
    return any(net.subnet_of(r) for r in v6)


def _network_change(agent: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> Change | None:
    """Removing a scope or admitting a new endpoint/VPC/range is an escalation; adding or narrowing one is not.
    (An empty Vault range list means unbound: dropping the last one widens Vault logins.)"""
    words = {kind: w for kind, w in _SCOPE_KINDS}
    before = old["summary"] if old else "anywhere"
    after = new["summary"] if new else "anywhere"
    if old is None and new is None:
        return None
    if old is None:
        return Change(agent, "network-scoped", False, f"network scope added: reads only {after}", before=before, after=after)
    if new is None:
        return Change(agent, "network-unscoped", True, f"network scope removed: reads were only {before}, now from anywhere", before=before, after=after)
    gained = [i for i in _admitted(new) if not _covered(i, old)]
    lost = [i for i in _admitted(old) if not _covered(i, new)]
    if old.get("vault_bound_cidrs") and not new.get("vault_bound_cidrs"):
        gained.append(("vault_bound_cidrs", "anywhere"))
    if new.get("vault_bound_cidrs") and not old.get("vault_bound_cidrs"):
        lost.append(("vault_bound_cidrs", "anywhere"))
    if not gained and not lost:
        if before == after:
            return None
        # The same addresses, written differently (a range split in two): the documents change, access does not.
        return Change(agent, "network-restated", False, f"network scope restated, same reach: {after}", before=before, after=after)
    parts = []
    if gained:
        parts.append("now admits " + ", ".join(f"{words[k]} {v}" for k, v in gained))
    if lost:
        parts.append("no longer " + ", ".join(f"{words[k]} {v}" for k, v in lost))
    kind = "network-changed" if gained and lost else ("network-widened" if gained else "network-narrowed")
    label = {"network-changed": "network scope changed", "network-widened": "network scope widened",
             "network-narrowed": "network scope narrowed"}[kind]
    return Change(agent, kind, bool(gained), f"{label}: {'; '.join(parts)}", before=before, after=after)


# ---- the diff ----


def _where(cred: Mapping[str, Any], store: str) -> str:
    if store == "aws":
        return f"{STORE_WORDS['aws']} `{cred['secret_name']}`"
    if store == "ssm":
        return f"{STORE_WORDS['ssm']} `{cred['ssm_parameter']}`"
    return f"{STORE_WORDS['vault']} `{cred['vault_location']}`"


def _stored(cred: Mapping[str, Any]) -> str:
    return " and ".join(_where(cred, s) for s in sorted(cred["stores"]))


def _rotation(cred: Mapping[str, Any]) -> str:
    how = "by hand" if cred["rotation_strategy"] == "manual" else f"automatically ({cred['rotation_strategy']})"
    return f"rotated {how} at least every {cred['rotation_days']} days"


def _granted(agent: str, cred: Mapping[str, Any]) -> Change:
    return Change(
        agent, "credential-granted", True,
        f"credential `{cred['name']}` granted: {cred['service']} {cred['type']}, {cred['classification']},"
        f" {_rotation(cred)}; stored in {_stored(cred)}",
        credential=cred["name"],
    )


def _revoked(agent: str, cred: Mapping[str, Any]) -> Change:
    return Change(
        agent, "credential-revoked", False,
        f"credential `{cred['name']}` revoked ({cred['service']}); its secret in {_stored(cred)} is removed",
        credential=cred["name"],
    )


def _credential_changes(
    agent: str, old: Mapping[str, Any], new: Mapping[str, Any],
    old_classes: Mapping[str, int], new_classes: Mapping[str, int],
) -> list[Change]:
    name = new["name"]
    out: list[Change] = []

    def add(kind: str, escalation: bool, text: str, before: Any, after: Any) -> None:
        out.append(Change(agent, kind, escalation, f"credential `{name}`: {text}", name,
                          None if before is None else str(before), None if after is None else str(after)))

    if old["service"] != new["service"]:
        add("service-changed", True, f"service changed from {old['service']} to {new['service']} (the agent can now use a {new['service']} key)", old["service"], new["service"])
    if old["type"] != new["type"]:
        add("type-changed", False, f"type changed from {old['type']} to {new['type']}", old["type"], new["type"])
    if old["classification"] != new["classification"]:
        before_max = old_classes.get(old["classification"], 0)
        after_max = new_classes.get(new["classification"], 0)
        looser = after_max > before_max
        how = "lowered" if looser else ("raised" if after_max < before_max else "changed")
        add("classification-changed", looser,
            f"classification {how} from {old['classification']} (max {before_max} days) to {new['classification']} (max {after_max} days)",
            old["classification"], new["classification"])
    before_rank, after_rank = rotation_rank(old["rotation_strategy"]), rotation_rank(new["rotation_strategy"])
    if old["rotation_strategy"] != new["rotation_strategy"]:
        words = f"rotation strategy {old['rotation_strategy']} -> {new['rotation_strategy']}"
        if after_rank < before_rank:
            add("rotation-loosened", True, f"rotation loosened: {words} (a human must now rotate it)", old["rotation_strategy"], new["rotation_strategy"])
        elif after_rank > before_rank:
            add("rotation-tightened", False, f"rotation tightened: {words} (now rotated automatically)", old["rotation_strategy"], new["rotation_strategy"])
        else:
            add("rotation-changed", False, f"rotation changed: {words}", old["rotation_strategy"], new["rotation_strategy"])
    if old["rotation_days"] != new["rotation_days"]:
        words = f"every {old['rotation_days']} days -> every {new['rotation_days']} days"
        if new["rotation_days"] > old["rotation_days"]:
            add("rotation-loosened", True, f"rotation loosened: {words}", old["rotation_days"], new["rotation_days"])
        else:
            add("rotation-tightened", False, f"rotation tightened: {words}", old["rotation_days"], new["rotation_days"])
    for store in sorted(set(new["stores"]) - set(old["stores"])):
        add("store-added", True, f"now also stored in {_where(new, store)}", None, store)
    for store in sorted(set(old["stores"]) - set(new["stores"])):
        add("store-removed", False, f"no longer stored in {_where(old, store)} (that copy is removed)", store, None)
    for key in sorted((set(old) | set(new)) - _CREDENTIAL_FIELDS):
        if old.get(key) != new.get(key):
            add("plan-changed", True, f"plan field `{key}` changed; review `agentfleet plan`", old.get(key), new.get(key))
    return out


def _agent_changes(
    old: Mapping[str, Any] | None, new: Mapping[str, Any] | None,
    old_classes: Mapping[str, int], new_classes: Mapping[str, int],
) -> list[Change]:
    if old is None and new is not None:
        name = new["name"]
        who = ", ".join(sorted(trust_principals(new["trust_policy"])))
        state = " (paused: no access until unpaused)" if new["paused"] else ""
        scope = (new.get("network") or {}).get("summary", "anywhere")
        out = [Change(name, "agent-added", True, f"agent added{state}: owner {new['owner']}, role `{new['iam_role_name']}` assumable by {who}, credentials readable {scope}", after=new["owner"])]
        return out + [_granted(name, c) for c in sorted(new["credentials"], key=lambda c: str(c["name"]))]
    if new is None and old is not None:
        name = old["name"]
        out = [Change(name, "agent-removed", False, f"agent removed: role `{old['iam_role_name']}` and its policies are deleted", before=old["owner"])]
        return out + [_revoked(name, c) for c in sorted(old["credentials"], key=lambda c: str(c["name"]))]
    assert old is not None and new is not None
    name = new["name"]
    out = []
    if old["paused"] != new["paused"]:
        if new["paused"]:
            out.append(Change(name, "agent-paused", False, "agent paused: every access is denied until it is unpaused", before="false", after="true"))
        else:
            out.append(Change(name, "agent-unpaused", True, "agent unpaused: its credentials become readable again", before="true", after="false"))
    if old["owner"] != new["owner"]:
        out.append(Change(name, "owner-changed", False, f"owner changed from {old['owner']} to {new['owner']}", before=old["owner"], after=new["owner"]))
    before_trust, after_trust = trust_principals(old["trust_policy"]), trust_principals(new["trust_policy"])
    if before_trust != after_trust:
        gained, lost = sorted(after_trust - before_trust), sorted(before_trust - after_trust)
        parts = []
        if gained:
            parts.append("now assumable by " + ", ".join(gained))
        if lost:
            parts.append("no longer by " + ", ".join(lost))
        label = "trust changed" if gained and lost else ("trust widened" if gained else "trust narrowed")
        out.append(Change(name, "trust-changed", bool(gained), f"{label}: {'; '.join(parts)}",
                          before=", ".join(sorted(before_trust)), after=", ".join(sorted(after_trust))))
    network = _network_change(name, old.get("network"), new.get("network"))
    if network is not None:
        out.append(network)
    old_creds = {c["name"]: c for c in old["credentials"]}
    new_creds = {c["name"]: c for c in new["credentials"]}
    for cname in sorted(set(old_creds) | set(new_creds)):
        if cname not in old_creds:
            out.append(_granted(name, new_creds[cname]))
        elif cname not in new_creds:
            out.append(_revoked(name, old_creds[cname]))
        else:
            out.extend(_credential_changes(name, old_creds[cname], new_creds[cname], old_classes, new_classes))
    for key in sorted((set(old) | set(new)) - _AGENT_FIELDS):
        if old.get(key) != new.get(key):
            out.append(Change(name, "plan-changed", True, f"plan field `{key}` changed; review `agentfleet plan`"))
    if not out:
        # The documents follow from the fields above; if they moved anyway, say so rather than hide it.
        for key in ("iam_policy", "vault_policy", "iam_role_name", "vault_policy_name"):
            if old[key] != new[key]:
                out.append(Change(name, "plan-changed", True, f"`{key}` changed; review `agentfleet plan`"))
    return out


def diff_plans(
    old_plan: Mapping[str, Any], new_plan: Mapping[str, Any], *,
    old_classes: Mapping[str, int], new_classes: Mapping[str, int],
    old_source: str, new_source: str,
) -> AccessDiff:
    """Compare two plans of the same stack; agents by name, credentials by name."""
    old_agents = {a["name"]: a for a in old_plan["agents"]}
    new_agents = {a["name"]: a for a in new_plan["agents"]}
    changes: list[Change] = []
    for name in sorted(set(old_agents) | set(new_agents)):
        changes.extend(_agent_changes(old_agents.get(name), new_agents.get(name), old_classes, new_classes))
    return AccessDiff(old_source, new_source, str(new_plan["stack"]), tuple(changes))


def _summary(d: AccessDiff) -> str:
    if not d.changes:
        return "No access changes."
    agents = len(d.by_agent())
    esc = d.escalations
    line = f"{len(d.changes)} access change(s) in {agents} agent(s), {esc} escalation(s)"
    return f"**{line}**: escalations need an explicit review." if esc else f"**{line}**."


def diff_markdown(d: AccessDiff) -> str:
    """Ready to post as a PR comment; the same inputs always give the same bytes."""
    lines = [
        COMMENT_MARKER,
        f"### Access changes: `{d.old_source}` -> `{d.new_source}` (stack `{d.stack}`)",
        "",
        _summary(d),
    ]
    for agent, changes in d.by_agent():
        esc = sum(1 for c in changes if c.escalation)
        tail = f", {esc} escalation(s)" if esc else ""
        lines += ["", f"#### `{agent}` ({len(changes)} change(s){tail})", ""]
        for c in changes:
            flag = "**ESCALATION** " if c.escalation else ""
            lines.append(f"- {flag}{c.text}")
    return "\n".join(lines) + "\n"


def diff_json(d: AccessDiff) -> str:
    doc = {
        "old": d.old_source,
        "new": d.new_source,
        "stack": d.stack,
        "summary": {"agents": len(d.by_agent()), "changes": len(d.changes), "escalations": d.escalations},
        "agents": [
            {"agent": agent, "changes": [{k: v for k, v in asdict(c).items() if k != "agent"} for c in changes]}
            for agent, changes in d.by_agent()
        ],
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


FORMATS = {"markdown": diff_markdown, "json": diff_json}
