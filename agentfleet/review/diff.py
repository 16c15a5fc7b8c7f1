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
from typing import Any, Callable, Mapping, Sequence

from agentfleet.review.audit import STORE_WORDS
from agentfleet.core.model import is_automated
from agentfleet.core.settings import StackSettings, config_key
from agentfleet.core.trust_words import trust_principals as trust_principals  # re-exported

COMMENT_MARKER = "<!-- agentfleet:access-diff -->"
"""First line of the markdown, so CI can find and update its own PR comment."""
COMMENT_LIMIT = 60_000
"""GitHub refuses comments over 65,536 characters: each part stays under this (with room to spare)."""
SETTINGS = "(stack settings)"
"""The `agent` of changes to the stack settings themselves."""

# Agent and credential plan fields the diff explains; any other field that changes is reported
# as an unexplained change (an escalation, to be safe) instead of being silently ignored.
_AGENT_FIELDS = frozenset({
    "name", "owner", "paused", "iam_role_name", "iam_role_arn", "trust_policy", "iam_policy",
    "vault_policy_name", "vault_policy", "credentials", "renamed_from", "network",
    "trusted_by",  # words of trust_policy: explained by the trust change
})
_CREDENTIAL_FIELDS = frozenset({
    "name", "service", "type", "classification", "rotation_strategy", "rotation_days", "stores",
    "secret_name", "vault_mount", "vault_path", "vault_location", "ssm_parameter",
    "rotation_mode", "pickup",  # derived from rotation_strategy and stores (explained above)
    "fields",  # the value's shape: reported as fields-changed (no access changes with it)
})


def rotation_rank(strategy: str) -> int:
    """Order of rotation strategies, loosest first: a human rotating by hand (`manual`) is
    looser than any automated strategy (`generated` or a provider adapter); the automated ones
    are equally strict."""
    return 1 if is_automated(strategy) else 0


@dataclass(frozen=True)
class Change:
    agent: str
    kind: str
    """agent-added, agent-removed, agent-paused, agent-unpaused, owner-changed, trust-changed,
    credential-granted, credential-revoked, store-added, store-removed, classification-changed,
    rotation-loosened, rotation-tightened, rotation-changed, service-changed, type-changed,
    network-scoped, network-unscoped, network-widened, network-narrowed, network-changed,
    network-restated, fields-changed, plan-changed."""
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


# One reading of trust documents for plan, audit and diff: agentfleet.core.trust_words.


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


def removal_words(cred: Mapping[str, Any], s: StackSettings | None) -> str:
    """What removing a credential really does, store by store (on the stack as deployed before)."""
    parts = []
    window = s.recovery_window_days if s is not None else 30
    if "aws" in cred["stores"]:
        when = ("is deleted at once (recoveryWindowDays 0: no recovery)" if window == 0 else
                f"enters its {window}-day recovery window (restorable with `aws secretsmanager restore-secret`, then deleted)")
        parts.append(f"the Secrets Manager secret `{cred['secret_name']}` {when}")
    if "vault" in cred["stores"]:
        where = f"`{cred['vault_mount']}/{cred['vault_path']}`"
        if cred["rotation_strategy"] == "generated":
            parts.append(f"Pulumi deletes the latest version it wrote at {where} (older versions and metadata stay until `bao kv metadata delete`)")
        else:
            parts.append(f"the Vault value at {where} stays (Pulumi never wrote it): delete it with `bao kv metadata delete -mount={cred['vault_mount']} {cred['vault_path']}`")
    if cred["rotation_strategy"] != "generated":
        parts.append(f"the key itself keeps working at {cred['service']} until you revoke it there")
    if s is not None and s.protect and "aws" in cred["stores"]:
        parts.append(f"**stack `{s.stack}` is protected (agentfleet:protect): `pulumi up` refuses this deletion until `pulumi state unprotect`**")
    return "; ".join(parts)


def _revoked(agent: str, cred: Mapping[str, Any], s: StackSettings | None = None) -> Change:
    return Change(
        agent, "credential-revoked", False,
        f"credential `{cred['name']}` revoked ({cred['service']}): {removal_words(cred, s)}",
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
    if old.get("fields") != new.get("fields"):
        add("fields-changed", False, "the value's fields changed: write the value again in the new shape",
            json.dumps(old.get("fields")), json.dumps(new.get("fields")))
    for key in sorted((set(old) | set(new)) - _CREDENTIAL_FIELDS):
        if old.get(key) != new.get(key):
            add("plan-changed", True, f"plan field `{key}` changed; review `agentfleet plan`", old.get(key), new.get(key))
    return out


def _agent_changes(
    old: Mapping[str, Any] | None, new: Mapping[str, Any] | None,
    old_classes: Mapping[str, int], new_classes: Mapping[str, int],
    old_settings: StackSettings | None = None,
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
        return out + [_revoked(name, c, old_settings) for c in sorted(old["credentials"], key=lambda c: str(c["name"]))]
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
            out.append(_revoked(name, old_creds[cname], old_settings))
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


# ---- stack settings: changes that change access ----

# Field -> (is the change an escalation?, why it matters). Every other field is reported too:
# as an escalation unless it is listed in _OPERATIONAL (a new setting is suspect until judged).
_SETTING_RULES: dict[str, tuple[Callable[[Any, Any], bool], str]] = {
    "admin_principals": (lambda o, n: bool(set(n) - set(o)), "these roles may read every secret of the stack"),
    "trusted_accounts": (lambda o, n: bool(set(n) - set(o)), "roles of these accounts may run agents"),
    "aws_account_id": (lambda o, n: True, "every ARN and trust changes account"),
    "aws_region": (lambda o, n: True, "every secret and key moves region (a new stack)"),
    "environment": (lambda o, n: True, "every name and path changes (secrets are replaced)"),
    "secret_prefix": (lambda o, n: True, "every name changes (secrets are replaced)"),
    "vault_mount": (lambda o, n: True, "credentials move to another mount, whose other policies may grant access"),
    "vault_mount_exists": (lambda o, n: bool(n), "reuses an existing mount, whose other policies may grant access"),
    "vault_aws_auth_path": (lambda o, n: True, "logins move to another auth backend"),
    "vault_aws_auth_exists": (lambda o, n: bool(n), "reuses an existing auth backend and its other roles"),
    "vault_aws_auth": (lambda o, n: bool(n), "agents' IAM roles may log in to Vault"),
    "vault_token_ttl_seconds": (lambda o, n: n > o, "Vault tokens live longer"),
    "max_session_seconds": (lambda o, n: n > o, "agent sessions live longer"),
    "recovery_window_days": (lambda o, n: n == 0 or (o != 0 and n < o), "deleted secrets are recoverable for less time"),
    "protect": (lambda o, n: bool(o) and not n, "secrets, the key and the mount can be deleted by `pulumi up`/`destroy`"),
    "rotation_isolation": (lambda o, n: n == "shared", "one rotation role per strategy may write every secret of the environment"),
    "rotation_grace_hours": (lambda o, n: n > o, "old keys keep working longer after a rotation"),
    "rotation_vault_address": (lambda o, n: True, "rotation functions send their Vault token to this address"),
    "usage_metrics": (lambda o, n: bool(n), "agents may publish metrics"),
    "alarms": (lambda o, n: not n, "no usage, AccessDenied, rotation or overdue alarms"),
    # The policy pack takes this list as the alert topic's reviewed subscribers (closed-world).
    "alarm_subscriptions": (lambda o, n: bool(_endpoints(n) - _endpoints(o)),
                            "a new endpoint receives every alert and reminder, naming agents, secrets and failures"),
}
_OPERATIONAL = frozenset({
    "stack", "fleet_file", "usage_alarm_multiplier", "usage_baseline_per_5min", "usage_baselines",
    "access_denied_threshold", "cloudtrail_log_group", "vault_iam_server_id",
})


def _endpoints(subscriptions: Any) -> set[tuple[str, str]]:
    return {(str(sub.get("protocol")), str(sub.get("endpoint"))) for sub in subscriptions or ()}


def _shown(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(str(v) for v in value) + "]" if value else "[]"
    return json.dumps(value) if not isinstance(value, str) else value


def settings_changes(
    old: StackSettings | None, new: StackSettings | None, old_fleet_file: str | None = None,
    new_fleet_file: str | None = None,
) -> list[Change]:
    """Changes of `Pulumi.<stack>.yaml` itself, each flagged like a fleet change."""
    out: list[Change] = []
    if old is None or new is None:
        if old is None and new is not None:
            out.append(Change(SETTINGS, "stack-added", True, f"stack `{new.stack}` is new: every agent below is granted on it"))
        elif old is not None and new is None:
            out.append(Change(SETTINGS, "stack-removed", False, f"stack `{old.stack}` has no settings file any more: `pulumi destroy` would delete it"))
        return out
    if old_fleet_file != new_fleet_file and old_fleet_file and new_fleet_file:
        out.append(Change(SETTINGS, "fleet-file-changed", True,
                          f"`agentfleet:fleetFile` changed: the stack now deploys `{new_fleet_file}` instead of `{old_fleet_file}`"
                          " (the agent changes below compare the two files; check who owns and reviews the new one)",
                          before=old_fleet_file, after=new_fleet_file))
    for field in StackSettings.model_fields:
        before, after = getattr(old, field), getattr(new, field)
        if before == after or field == "fleet_file":
            continue
        key = config_key(field)
        if field in _SETTING_RULES:
            rule, why = _SETTING_RULES[field]
            escalation = rule(before, after)
        else:
            escalation, why = field not in _OPERATIONAL, "not an access setting" if field in _OPERATIONAL else "a setting the diff does not judge: review it"
        text = f"`{key}` changed from {_shown(before)} to {_shown(after)}"
        if field in ("admin_principals", "trusted_accounts"):
            gained, lost = sorted(set(after) - set(before)), sorted(set(before) - set(after))
            text = f"`{key}`: " + "; ".join(
                ([f"added {', '.join(gained)} ({why})"] if gained else []) + ([f"removed {', '.join(lost)}"] if lost else []))
        elif escalation or field in _SETTING_RULES:
            text += f" ({why})" if escalation else ""
        out.append(Change(SETTINGS, "setting-changed", escalation, text, before=_shown(before), after=_shown(after)))
    return out


def _renames(old_agents: dict[str, Any], new_agents: dict[str, Any]) -> dict[str, str]:
    """new name -> old name, for agents that declare `renamed_from` an agent the old side has."""
    out = {}
    for name, a in new_agents.items():
        prev = a.get("renamed_from")
        if prev and prev in old_agents and prev not in new_agents and name not in old_agents:
            out[name] = str(prev)
    return out


def _renamed(old: Mapping[str, Any], new: Mapping[str, Any], old_classes: Mapping[str, int],
             new_classes: Mapping[str, int], old_settings: StackSettings | None) -> list[Change]:
    """A declared rename: the pair compared field by field (names aligned), never remove + add."""
    name = new["name"]
    moved = [f"role `{old['iam_role_name']}` -> `{new['iam_role_name']}`"]
    old_creds = {c["name"]: c for c in old["credentials"]}
    for c in new["credentials"]:
        o = old_creds.get(c["name"])
        if o is not None and o.get("secret_name") and c.get("secret_name"):
            moved.append(f"secret `{o['secret_name']}` -> `{c['secret_name']}`")
        if o is not None and o.get("vault_path") and c.get("vault_path"):
            moved.append(f"Vault `{o['vault_mount']}/{o['vault_path']}` -> `{c['vault_mount']}/{c['vault_path']}`")
    head = Change(name, "agent-renamed", False,
                  f"agent renamed from `{old['name']}`: Pulumi aliases keep its resources; names move ("
                  + "; ".join(moved) + "). The runtime must switch to the new role ARN; the old secrets are kept (not"
                  " deleted): copy each value, then delete them (docs/review.md#renaming-an-agent)", before=str(old["name"]), after=str(name))
    aligned = {**old, "name": name}
    rest = _agent_changes(aligned, new, old_classes, new_classes, old_settings)
    return [head] + [c for c in rest if c.kind != "plan-changed"]


def diff_plans(
    old_plan: Mapping[str, Any], new_plan: Mapping[str, Any], *,
    old_classes: Mapping[str, int], new_classes: Mapping[str, int],
    old_source: str, new_source: str,
    old_settings: StackSettings | None = None, new_settings: StackSettings | None = None,
    old_fleet_file: str | None = None, new_fleet_file: str | None = None,
    removal_settings: StackSettings | None = None,
) -> AccessDiff:
    """Compare two plans of the same stack; agents by name (or declared rename), credentials by
    name; with both sides' settings, the settings' own access changes come first.
    `removal_settings` (default: the old side's) say what a removal does (recovery window, protect)."""
    removal = removal_settings or old_settings
    old_agents = {a["name"]: a for a in old_plan["agents"]}
    new_agents = {a["name"]: a for a in new_plan["agents"]}
    renames = _renames(old_agents, new_agents)
    changes: list[Change] = []
    if old_settings is not None or new_settings is not None:
        changes.extend(settings_changes(old_settings, new_settings, old_fleet_file, new_fleet_file))
    for name in sorted((set(old_agents) - set(renames.values())) | set(new_agents)):
        if name in renames:
            changes.extend(_renamed(old_agents[renames[name]], new_agents[name], old_classes, new_classes, removal))
            continue
        changes.extend(_agent_changes(old_agents.get(name), new_agents.get(name), old_classes, new_classes, removal))
    return AccessDiff(old_source, new_source, str(new_plan["stack"]), tuple(changes))


def _summary(d: AccessDiff) -> str:
    if not d.changes:
        return "No access changes."
    agents = len(d.by_agent())
    esc = d.escalations
    line = f"{len(d.changes)} access change(s) in {agents} agent(s), {esc} escalation(s)"
    return f"**{line}**: escalations need an explicit review." if esc else f"**{line}**."


def _agent_block(agent: str, changes: Sequence[Change], collapsed: bool) -> list[str]:
    esc = sum(1 for c in changes if c.escalation)
    tail = f", {esc} escalation(s)" if esc else ""
    title = f"`{agent}` ({len(changes)} change(s){tail})"
    body = [f"- {'**ESCALATION** ' if c.escalation else ''}{c.text}" for c in changes]
    if collapsed:
        return ["", f"<details><summary>{'⚠️ ' if esc else ''}{title}</summary>", "", *body, "", "</details>"]
    return ["", f"#### {title}", "", *body]


def _header(d: AccessDiff) -> list[str]:
    return [f"### Access changes: `{d.old_source}` -> `{d.new_source}` (stack `{d.stack}`)", "", _summary(d)]


SUMMARY_TABLE_OVER = 20
"""Agents with changes above which the markdown gives a summary table and collapsed details."""


def _stack_lines(d: AccessDiff) -> list[str]:
    groups = d.by_agent()
    lines = _header(d)
    collapsed = len(groups) > SUMMARY_TABLE_OVER
    if collapsed:
        lines += ["", "| agent | changes | escalations |", "|---|---:|---:|"]
        for agent, changes in groups:
            esc = sum(1 for c in changes if c.escalation)
            lines.append(f"| `{agent}` | {len(changes)} | {'**' + str(esc) + '**' if esc else 0} |")
    for agent, changes in groups:
        lines += _agent_block(agent, changes, collapsed)
    return lines


def diff_markdown(d: AccessDiff) -> str:
    """Ready to post as a PR comment; the same inputs always give the same bytes. Large diffs get a
    summary table and collapsed per-agent details (`markdown_parts` splits them into comments)."""
    return "\n".join([COMMENT_MARKER, *_stack_lines(d)]) + "\n"


def report_markdown(diffs: Sequence[AccessDiff]) -> str:
    """One document for several stacks (the PR workflow diffs every stack)."""
    if len(diffs) == 1:
        return diff_markdown(diffs[0])
    total = sum(len(d.changes) for d in diffs)
    esc = sum(d.escalations for d in diffs)
    lines = [COMMENT_MARKER, f"## Access changes in {len(diffs)} stacks: {total} change(s), {esc} escalation(s)"]
    for d in diffs:
        lines += ["", *_stack_lines(d)]
    return "\n".join(lines) + "\n"


def markdown_parts(diffs: Sequence[AccessDiff], limit: int = COMMENT_LIMIT) -> list[str]:
    """The report as PR comments, each under `limit` characters: the first holds the summary
    (stacks, counts, escalations by agent), the others the per-agent details, split between agents
    (an agent whose own details exceed the limit is cut, with a pointer to the job summary)."""
    whole = report_markdown(diffs)
    if len(whole) <= limit:
        return [whole]
    first = [COMMENT_MARKER]
    total, esc = sum(len(d.changes) for d in diffs), sum(d.escalations for d in diffs)
    first.append(f"## Access diff: {total} change(s), {esc} escalation(s) in {len(diffs)} stack(s)")
    for d in diffs:
        first += ["", *_header(d)]
        escalating = [(a, sum(1 for c in cs if c.escalation)) for a, cs in d.by_agent()]
        escalating = [(a, n) for a, n in escalating if n]
        if escalating:
            first += ["", "Escalations by agent: " + ", ".join(f"`{a}` ({n})" for a, n in escalating)]
    head = "\n".join(first) + "\n"
    if len(head) > limit:
        head = head[: limit - 200] + "\n\n(summary cut: see the job summary for the full list)\n"
    blocks: list[str] = []
    for d in diffs:
        for agent, changes in d.by_agent():
            block = "\n".join(_agent_block(f"{d.stack}: {agent}" if len(diffs) > 1 else agent, changes, True)) + "\n"
            if len(block) > limit - 500:
                block = block[: limit - 800] + "\n\n(cut: this agent's changes exceed one comment; see the job summary)\n\n</details>\n"
            blocks.append(block)
    parts = [head]
    current = ""
    for block in blocks:
        marker = f"{COMMENT_MARKER[:-4]} part {len(parts) + 1} -->\n"
        if current and len(marker) + len(current) + len(block) > limit:
            parts.append(current)
            current = ""
        if not current:
            current = f"{COMMENT_MARKER[:-4]} part {len(parts) + 1} -->\n### Access diff details ({len(parts) + 1})\n"
        current += block
    if current:
        parts.append(current)
    return parts


def diff_json(d: AccessDiff) -> str:
    return json.dumps(_json_doc(d), indent=2, sort_keys=True) + "\n"


def _json_doc(d: AccessDiff) -> dict[str, Any]:
    return {
        "old": d.old_source,
        "new": d.new_source,
        "stack": d.stack,
        "summary": {"agents": len(d.by_agent()), "changes": len(d.changes), "escalations": d.escalations},
        "agents": [
            {"agent": agent, "changes": [{k: v for k, v in asdict(c).items() if k != "agent"} for c in changes]}
            for agent, changes in d.by_agent()
        ],
    }


def render(diffs: Sequence[AccessDiff], fmt: str) -> str:
    """One stack: the single-diff document; several: markdown sections / `{"stacks": [...]}`."""
    if len(diffs) == 1:
        return FORMATS[fmt](diffs[0])
    if fmt == "markdown":
        return report_markdown(diffs)
    return json.dumps({"stacks": [_json_doc(d) for d in diffs]}, indent=2, sort_keys=True) + "\n"


FORMATS = {"markdown": diff_markdown, "json": diff_json}
