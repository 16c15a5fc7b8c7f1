"""Every name the program derives for a fleet on a stack, and the one check that they are unique.

Names are joined with `-` (`<prefix>-<env>-<agent>-<what>`), so different agents can meet on
one name: agents `aa` + credential `bb-cc` and `aa-bb` + `cc` both get the alarm
`agents-dev-aa-bb-cc-overdue`; agent `research-rotation` gets research's rotation role. AWS,
Vault and the Pulumi engine would reject (or worse, merge) such duplicates at deployment. This
module lists the names from the builders' own outputs (`plan.agent_plan`, `rotation_plan`,
`monitoring_plan`, `naming`), never re-deriving one, and `check_names` refuses every clash with
the fleet-file lines of both owners. `validate` and every verb run it, and so does the program.

Pulumi logical names need no entry of their own: the per-agent ones are `<agent>/<what>` and
`<agent>/<credential>/<what>` (`/` cannot occur in a name, so they are unique by construction),
and every other one is `<physical name>-<what>` of a physical name checked here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, NamedTuple

from agentfleet.core import monitoring_plan as mp
from agentfleet.core import naming
from agentfleet.core import reuse
from agentfleet.core import plan as pl
from agentfleet.core import rotation_plan as rp
from agentfleet.core.model import PROVIDER_ADAPTERS, Fleet, ResolvedAgent
from agentfleet.core.settings import StackSettings


class DerivedName(NamedTuple):
    """One name in one namespace (names must be unique per namespace), and what owns it. (A
    named tuple: a fleet of 1,000 agents derives 19,000 of them, a frozen dataclass's `__init__`
    costs five `object.__setattr__` calls each.)"""

    namespace: str
    name: str
    owner: str
    """In words: `agent 'x'`, `credential 'x/k'`, `the scheduler role` ..."""
    agent: str | None = None
    credential: str | None = None


@dataclass(frozen=True)
class NameClash:
    namespace: str
    name: str
    first: DerivedName
    second: DerivedName


NameCollision = pl.NameCollision


def _agent(agent: str, credential: str | None = None) -> str:
    return f"credential {agent}/{credential}" if credential else f"agent {agent!r}"


def derived_names(fleet: Fleet, s: StackSettings) -> Iterator[DerivedName]:
    """Every physical name the stack creates for this fleet, with its owner."""
    env = "the environment"
    yield DerivedName("KMS alias", naming.kms_alias(s), env)
    # Environment roles are reserved whether or not this fleet needs them yet: adding one
    # manual credential later must not turn an agent's role into the age reporter's.
    for role, owner in ((naming.scheduler_role_name(s), "the rotation scheduler role"),
                        (naming.age_reporter_name(s), "the secret-age reporter"),
                        (naming.trail_logs_role_name(s), "the CloudTrail logs role")):
        yield DerivedName("IAM role", role, owner)
    age = naming.age_reporter_name(s)
    yield DerivedName("Lambda function", age, "the secret-age reporter")
    yield DerivedName("log group", naming.lambda_log_group_name(age), "the secret-age reporter")
    yield DerivedName("log group", naming.trail_log_group_name(s), "the CloudTrail trail")
    yield DerivedName("schedule", naming.age_report_schedule_name(s), "the secret-age reporter")
    yield DerivedName("CloudWatch alarm", rp.revoke_failures_alarm(s).name, "the rotation revoke-failure alarm")
    yield DerivedName("CloudWatch alarm", rp.pickup_missing_alarm(s).name, "the rotation pickup-missing alarm")
    for provider in PROVIDER_ADAPTERS:
        yield DerivedName("secret", naming.provider_admin_secret_name(s, provider), f"the {provider} admin key")

    # Trail metric filters are per environment (a fixed number, the Role dimension tells agents apart).
    trail = list(mp.trail_filters(s))
    try:
        odd = mp.odd_network_filter(s, fleet) if s.alarms else None
    except mp.FilterTooLong:
        odd = None  # the quota model reports the pattern's length
    for f in trail + ([odd] if odd is not None else []):
        yield DerivedName("metric filter", f.name, "the environment's trail metric filters")

    key = naming.kms_key_placeholder(s)
    for a in fleet.agents:
        # Per agent, once per verb and equal agent (a diff's two sides share most of them).
        yield from reuse.by_value("agent names", (s,), (a,), lambda: list(_agent_names(s, a, key)))
    yield from _rotator_names(s, fleet)


def _agent_names(s: StackSettings, a: ResolvedAgent, key: str) -> Iterator[DerivedName]:
    """The names one agent owns."""
    p = pl.agent_plan(s, a, key)
    me = _agent(a.name)
    yield DerivedName("IAM role", p.iam_role_name, me, a.name)
    yield DerivedName("Vault policy", p.vault_policy_name, me, a.name)
    yield DerivedName("Vault auth role", naming.vault_auth_role_name(s, a.name), me, a.name)
    yield DerivedName("metrics namespace", naming.metrics_namespace(s, a.name), me, a.name)
    for c in p.credentials:
        mine = _agent(a.name, c.name)
        if c.secret_name:
            yield DerivedName("secret", c.secret_name, mine, a.name, c.name)
        if c.vault_path:
            yield DerivedName("Vault path", f"{c.vault_mount}/{c.vault_path}", mine, a.name, c.name)
        if c.ssm_parameter:
            yield DerivedName("SSM parameter", c.ssm_parameter, mine, a.name, c.name)
    for alarm in mp.agent_alarms(s, a):
        yield DerivedName("CloudWatch alarm", alarm.name, me, a.name)
    for r in rp.reminders(s, a):
        mine = _agent(a.name, r.credential)
        yield DerivedName("schedule", r.schedule_name, mine, a.name, r.credential)
        age_alarm = rp.age_alarm(s, r)
        if age_alarm is not None and s.alarms:
            yield DerivedName("CloudWatch alarm", age_alarm.name, mine, a.name, r.credential)


def _rotator_names(s: StackSettings, fleet: Fleet) -> Iterator[DerivedName]:
    """The rotation functions' names (per agent or shared, after every agent's own)."""
    for spec in rp.rotators(s, fleet):
        agent = None if spec.shared else spec.owner
        who = f"the shared {spec.owner!r} rotation function" if spec.shared else f"the rotation function of agent {spec.owner!r}"
        yield DerivedName("IAM role", spec.role_name, who, agent)
        yield DerivedName("Lambda function", spec.function_name, who, agent)
        yield DerivedName("log group", spec.log_group_name, who, agent)
        yield DerivedName("Vault policy", spec.vault_name, who, agent)
        yield DerivedName("Vault auth role", spec.vault_name, who, agent)
        for i in range(len(spec.sweep_inputs)):
            yield DerivedName("schedule", naming.rotation_sweep_schedule_name(spec.function_name, i), who, agent)
        if s.alarms:
            yield DerivedName("CloudWatch alarm", mp.rotation_errors_alarm(s, spec.owner, spec.function_name).name, who, agent)


def name_clashes(fleet: Fleet, s: StackSettings) -> list[NameClash]:
    """Pairs of different owners that map to one name in one namespace (checked once per verb:
    the loader and `build_plan` both ask, see `agentfleet.core.reuse`)."""
    return list(reuse.by_identity("name clashes", (fleet, s), lambda: _name_clashes(fleet, s)))


def _name_clashes(fleet: Fleet, s: StackSettings) -> list[NameClash]:
    seen: dict[tuple[str, str], DerivedName] = {}
    out: list[NameClash] = []
    for d in derived_names(fleet, s):
        first = seen.setdefault((d.namespace, d.name), d)
        if first.owner != d.owner:
            out.append(NameClash(d.namespace, d.name, first, d))
    return out


def clash_line(fleet: Fleet, d: DerivedName) -> int:
    """The fleet-file line of what owns a name (0 for environment-level names)."""
    if d.agent is None:
        return 0
    if d.credential is not None:
        return fleet.lines.get(f"{d.agent}/{d.credential}", fleet.lines.get(d.agent, 0))
    return fleet.lines.get(d.agent, 0)


def clash_message(fleet: Fleet, c: NameClash) -> str:
    def where(d: DerivedName) -> str:
        line = clash_line(fleet, d)
        return f"{d.owner} (line {line})" if line else d.owner

    return (f"{where(c.first)} and {where(c.second)} both map to {c.namespace} {c.name!r}; rename one"
            " (a deployment would fail on the duplicate, or merge two principals' access)")


def check_names(fleet: Fleet, s: StackSettings) -> None:
    """Raise NameCollision naming every clash and both of its owners' lines."""
    clashes = name_clashes(fleet, s)
    if clashes:
        # On the later of the two lines (usually the newcomer); the message names both.
        found = tuple((max(clash_line(fleet, c.first), clash_line(fleet, c.second)), clash_message(fleet, c)) for c in clashes)
        raise NameCollision("\n".join(m for _, m in found), found)
