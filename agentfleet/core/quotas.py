"""The AWS quotas a stack consumes, computed from the plan before anything is deployed.

A fleet that outgrows one account's quotas fails halfway through a real `pulumi up` (agent 501's
role, filter 101 on the trail's log group ...). This module computes, from the same builders the
components use, what the stack would consume of every quota it touches, compares it with the
limits of the account (`agentfleet:quotas`, default = AWS's published defaults, each cited in
docs/quotas.md) plus what others already use (`agentfleet:quotasUsedElsewhere`), and names the
fix when something does not fit. `validate --stack` and `plan` fail on a problem; `plan --format
json` reports every usage; `preview` warns.

Pulumi-free, like every builder. Counts are exact where the plan decides them (roles, filters,
schedules) and upper bounds where AWS measures bytes we can only approach (policy sizes are
measured on the compact JSON the components send, with a real-length KMS key ARN).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Callable, Iterable

from agentfleet.core import iam_documents as iam
from agentfleet.core import monitoring_plan as mp
from agentfleet.core import naming
from agentfleet.core import plan
from agentfleet.core import reuse
from agentfleet.core import rotation_plan as rp
from agentfleet.core.model import Fleet
from agentfleet.core.settings import StackSettings


@dataclass(frozen=True)
class Quota:
    key: str
    """Kebab-case id: the key of `agentfleet:quotas` / `agentfleet:quotasUsedElsewhere`."""
    title: str
    default: int | None
    """AWS's default (None: AWS sets no limit; the usage is still reported)."""
    adjustable: str
    """Whether a quota increase can raise it (`hard`, `up to N`, `yes`)."""
    scope: str
    """What one limit applies to: `account`, `region`, `per role`, `per log group` ..."""
    source: str
    """Where AWS states the default (docs/quotas.md repeats it)."""
    fix: str
    """What to do when the stack does not fit (generic part; usage adds specifics)."""
    elsewhere: bool = False
    """True: others in the account (or on the log group) consume it too (`quotasUsedElsewhere`)."""


IAM_QUOTAS = "IAM and AWS STS quotas, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html"
LOGS_QUOTAS = "PutMetricFilter API reference and CloudWatch Logs quotas, https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutMetricFilter.html"
LAMBDA_QUOTAS = "Lambda quotas, https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"

QUOTAS: tuple[Quota, ...] = (
    Quota("iam-roles-per-account", "IAM roles per account", 1000, "up to 5,000", "account", IAM_QUOTAS,
          "request an increase (up to 5,000) and set agentfleet:quotas {iam-roles-per-account: N}; or "
          "agentfleet:rotationIsolation: shared (one rotation role per strategy instead of one per agent); or "
          "put part of the fleet in another account (shards of one account share this quota)", elsewhere=True),
    Quota("iam-inline-policy-bytes-per-role", "IAM inline policy bytes per role (all inline policies, no whitespace)",
          10240, "hard", "per role", IAM_QUOTAS,
          "give the agent fewer credentials (split it into two agents)"),
    Quota("iam-managed-policy-bytes", "IAM managed policy bytes", 6144, "hard", "per policy", IAM_QUOTAS,
          "the stack creates no managed policy; nothing to do"),
    Quota("iam-trust-policy-bytes", "IAM role trust policy bytes", 2048, "up to 4,096", "per role", IAM_QUOTAS,
          "list fewer runtime role ARNs, or request an increase (up to 4,096) and set agentfleet:quotas"),
    Quota("iam-role-name-chars", "IAM role name length", 64, "hard", "per role", IAM_QUOTAS,
          "names are shortened deterministically (naming.shorten): nothing to do"),
    Quota("tags-per-resource", "tags per resource (IAM, Secrets Manager, Lambda, SNS, CloudWatch)", 50, "hard",
          "per resource", "Tagging AWS resources, https://docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html",
          "the stack sets at most a handful of tags: nothing to do"),
    Quota("logs-metric-filters-per-log-group", "CloudWatch Logs metric filters per log group", 100, "hard",
          "per log group", LOGS_QUOTAS,
          "lower agentfleet:monitoringPartitions, or remove filters others put on the trail's log group "
          "(agentfleet:cloudtrailLogGroup), or let the stack create its own trail", elsewhere=True),
    Quota("logs-metric-filter-dimension-values", "distinct dimension values one metric filter may see per hour "
          "(CloudWatch Logs may disable the filter past it)", 1000, "hard", "per filter", LOGS_QUOTAS,
          "raise agentfleet:monitoringPartitions, or split the environment"),
    Quota("logs-metric-filter-pattern-chars", "metric filter pattern length", 1024, "hard", "per filter", LOGS_QUOTAS,
          "use agentfleet:monitoringPartitions 1 or 4-36 (2-3 shares of [0-9a-z] make patterns too long), "
          "or a shorter secretPrefix/environment"),
    Quota("cloudwatch-alarms", "CloudWatch metric alarms (no limit per account; each one is billed)", None, "n/a",
          "region", "CloudWatch service quotas, https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_limits.html",
          "nothing to do (cost: see CloudWatch pricing)", elsewhere=True),
    Quota("lambda-environment-bytes", "Lambda environment variables (names + values)", 4096, "hard", "per function",
          LAMBDA_QUOTAS,
          "agentfleet:rotationIsolation: shared keeps no per-secret map in the environment; or store fewer "
          "of one agent's rotated credentials in Vault"),
    Quota("lambda-code-storage-bytes", "Lambda code storage (all function archives)", 75 * 1024 ** 3, "yes",
          "region", LAMBDA_QUOTAS,
          "agentfleet:rotationIsolation: shared (one function per strategy), or request an increase", elsewhere=True),
    Quota("lambda-function-name-chars", "Lambda function name length", 64, "hard", "per function", LAMBDA_QUOTAS,
          "names are shortened deterministically: nothing to do"),
    Quota("scheduler-schedules-per-region", "EventBridge Scheduler schedules", 1_000_000, "yes", "region",
          "EventBridge Scheduler quotas, https://docs.aws.amazon.com/scheduler/latest/UserGuide/scheduler-quotas.html",
          "request an increase and set agentfleet:quotas", elsewhere=True),
    Quota("sns-subscriptions-per-topic", "SNS subscriptions per standard topic", 12_500_000, "yes", "per topic",
          "Amazon SNS endpoints and quotas, https://docs.aws.amazon.com/general/latest/gr/sns.html",
          "list fewer agentfleet:alarmSubscriptions"),
    Quota("secretsmanager-secrets-per-region", "Secrets Manager secrets", 500_000, "yes", "region",
          "AWS Secrets Manager quotas, https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_limits.html",
          "store fewer credentials in AWS (stores: [vault]), or another account/region", elsewhere=True),
    Quota("secretsmanager-secret-name-chars", "Secrets Manager secret name length", 512, "hard", "per secret",
          "AWS Secrets Manager quotas, https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_limits.html",
          "shorter agent or credential names"),
    Quota("cloudwatch-alarm-name-chars", "CloudWatch alarm name length", 255, "hard", "per alarm",
          "PutMetricAlarm API reference, https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html",
          "shorter agent names"),
)
BY_KEY: dict[str, Quota] = {q.key: q for q in QUOTAS}

KMS_KEY_ARN_STANDIN_ID = "00000000-0000-0000-0000-000000000000"
"""A key ID of the real length: policy sizes are measured as deployed, not with the offline placeholder."""
LAMBDA_ENVIRONMENT_RESERVE = 512
"""Bytes the deployment adds to a rotation function's environment (Vault address, namespace, server ID)."""


@dataclass(frozen=True)
class Usage:
    quota: str
    title: str
    used: int
    limit: int | None
    where: str
    """The largest consumer (per-item quotas) or what is counted (totals)."""
    fix: str
    source: str

    @property
    def ok(self) -> bool:
        return self.limit is None or self.used <= self.limit

    def message(self) -> str:
        limit = "no limit" if self.limit is None else f"{self.limit:,}"
        return (f"quota {self.quota} ({self.title}): the stack needs {self.used:,}, the limit is {limit}"
                f" ({self.where}). Fix: {self.fix}")


def limit_of(s: StackSettings, q: Quota) -> int | None:
    return s.quotas.get(q.key, q.default)


def _elsewhere(s: StackSettings, q: Quota) -> int:
    return s.quotas_used_elsewhere.get(q.key, 0) if q.elsewhere else 0


def _kms_standin(s: StackSettings) -> str:
    return f"arn:{s.partition}:kms:{s.aws_region}:{s.aws_account_id}:key/{KMS_KEY_ARN_STANDIN_ID}"


def _size(doc: dict[str, Any]) -> int:
    return len(iam.to_json(doc).encode())


@lru_cache(maxsize=1)
def lambda_archive_bytes() -> int:
    """Size of the rotation functions' archive (every function deploys the same one)."""
    from agentfleet.rotation.package import build_zip

    return len(build_zip())


@dataclass(frozen=True)
class _Rotation:
    specs: tuple[rp.RotatorSpec, ...]
    error: str | None


def _rotation(s: StackSettings, fleet: Fleet) -> _Rotation:
    try:
        return _Rotation(tuple(rp.rotators(s, fleet)), None)
    except rp.RotationPlanError as exc:  # a function environment over 4 KB: reported as that quota
        return _Rotation((), str(exc))


def environment_roles(s: StackSettings, fleet: Fleet, rotation: _Rotation) -> list[str]:
    """Every IAM role name the stack creates (the trail filters can see each one's events)."""
    roles = [naming.role_name(s, a.name) for a in fleet.agents]
    roles += [spec.role_name for spec in rotation.specs]
    if rp.needs_scheduler(s, fleet.agents):
        roles.append(naming.scheduler_role_name(s))
    if rp.needs_age_reporter(s, fleet.agents):
        roles.append(naming.age_reporter_name(s))
    if not s.cloudtrail_log_group:
        roles.append(naming.trail_logs_role_name(s))
    return roles


def _max(items: Iterable[tuple[int, str]], empty: str) -> tuple[int, str]:
    best = (0, empty)
    for size, where in items:
        if size > best[0]:
            best = (size, where)
    return best


def usage(fleet: Fleet, s: StackSettings) -> list[Usage]:
    """What the stack consumes of every quota in `QUOTAS`, in that order (once per verb: `plan`
    checks the quotas and then reports them, see `agentfleet.core.reuse`)."""
    return list(reuse.by_identity("quota usage", (fleet, s), lambda: _usage(fleet, s)))


def _usage(fleet: Fleet, s: StackSettings) -> list[Usage]:
    rot = _rotation(s, fleet)
    agents = sorted(fleet.agents, key=lambda a: a.name)
    roles = environment_roles(s, fleet, rot)
    key_arn = _kms_standin(s)
    reminders = [r for a in agents for r in rp.reminders(s, a)]
    alarms = [al for a in agents for al in mp.agent_alarms(s, a)]
    if s.alarms:
        alarms += [mp.rotation_errors_alarm(s, spec.owner, spec.function_name) for spec in rot.specs]
        alarms += [al for r in reminders if (al := rp.age_alarm(s, r)) is not None]
        if rot.specs:
            alarms.append(rp.revoke_failures_alarm(s))
    functions = [spec.function_name for spec in rot.specs]
    if rp.needs_age_reporter(s, fleet.agents):
        functions.append(naming.age_reporter_name(s))
    filters = mp.trail_filters(s)
    odd_error: str | None = None
    if s.alarms:
        try:
            odd = mp.odd_network_filter(s, fleet)
        except mp.FilterTooLong as exc:
            odd, odd_error = None, str(exc)
        if odd is not None:
            filters.append(odd)
    out: list[Usage] = []

    def add(key: str, used: int, where: str, fix: str | None = None) -> None:
        q = BY_KEY[key]
        out.append(Usage(q.key, q.title, used + _elsewhere(s, q), limit_of(s, q), where,
                         fix or q.fix, q.source))

    # IAM
    n_roles = len(roles)
    automatic = [a for a in agents if any(rp.is_automatic(c) for c in a.credentials)]
    shared_functions = len({c.rotation_strategy for a in automatic for c in a.credentials if rp.is_automatic(c)})
    other_roles = n_roles - len(rot.specs) + (shared_functions if s.rotation_isolation == "per-agent" else len(automatic))
    fix = None
    if s.rotation_isolation == "per-agent" and other_roles < n_roles:
        fix = (f"agentfleet:rotationIsolation: shared needs {other_roles + _elsewhere(s, BY_KEY['iam-roles-per-account']):,} roles"
               f" instead; or {BY_KEY['iam-roles-per-account'].fix.split('; or ', 1)[0]}; or put part of the fleet in"
               " another account (shards of one account share this quota)")
    add("iam-roles-per-account", n_roles, f"{len(agents)} agent roles, {len(rot.specs)} rotation roles,"
        f" {n_roles - len(agents) - len(rot.specs)} environment roles, rotation {s.rotation_isolation}", fix)
    inline = [(_size(plan.agent_iam_policy(s, a, key_arn)), f"role {naming.role_name(s, a.name)}") for a in agents]
    for spec in rot.specs:
        admin = rp.provider_admin_policy(s, spec)
        inline.append((_size(rp.rotation_role_policy(s, spec, key_arn)) + (_size(admin) if admin else 0),
                       f"role {spec.role_name}"))
    add("iam-inline-policy-bytes-per-role", *_max(inline, "no role"))
    add("iam-managed-policy-bytes", 0, "the stack creates no managed policy")
    trust = [(_size(plan.trust_policy(s, a)), f"role {naming.role_name(s, a.name)}") for a in agents]
    trust += [(_size(rp.lambda_trust_policy()), f"role {spec.role_name}") for spec in rot.specs]
    add("iam-trust-policy-bytes", *_max(trust, "no role"))
    add("iam-role-name-chars", *_max(((len(r), f"role {r}") for r in roles), "no role"))
    tag_sets = [(len(naming.tags(s, agent=a.name, owner=a.owner, classification=c.classification,
                                 extra=rp.vault_copy_tag(s, a, c))),
                 f"secret of {a.name}/{c.name}") for a in agents for c in a.credentials]
    tag_sets += [(len(spec.tags), f"function {spec.function_name}") for spec in rot.specs]
    add("tags-per-resource", *_max(tag_sets, "no resource"))

    # CloudWatch Logs: the trail's log group and its filters
    group = s.cloudtrail_log_group or naming.trail_log_group_name(s)
    add("logs-metric-filters-per-log-group", len(filters), f"log group {group}: {len(filters)} from this stack")
    per_filter = _dimension_values(s, filters, roles)
    used, where = _max(per_filter, "no filter")
    fix = None
    if used > (limit_of(s, BY_KEY["logs-metric-filter-dimension-values"]) or used):
        odd_over = any(n == used and f.kind == mp.ODD_NETWORK_KIND for (n, _), f in zip(per_filter, filters))
        fix = ("the odd-network filter covers the whole environment (it is not partitioned: its pattern would"
               " not fit): split the environment" if odd_over and s.monitoring_partitions > 1
               else _partition_fix(s, roles))
    add("logs-metric-filter-dimension-values", used, where, fix)
    longest = _max(((len(f.pattern), f"filter {f.name}") for f in filters), "no filter")
    if odd_error is not None:
        longest = (mp.MAX_FILTER_PATTERN_CHARS + 1, odd_error)
    add("logs-metric-filter-pattern-chars", *longest)
    add("cloudwatch-alarms", len(alarms), f"{len(alarms)} alarms")

    # Lambda
    if rot.error is not None:
        q = BY_KEY["lambda-environment-bytes"]
        out.append(Usage(q.key, q.title, (q.default or 0) + 1, limit_of(s, q), rot.error, q.fix, q.source))
    else:
        envs = [(rp.environment_size(spec.environment) + LAMBDA_ENVIRONMENT_RESERVE,
                 f"function {spec.function_name} (incl. {LAMBDA_ENVIRONMENT_RESERVE} reserved for the Vault connection)")
                for spec in rot.specs]
        add("lambda-environment-bytes", *_max(envs, "no function"))
    add("lambda-code-storage-bytes", len(functions) * lambda_archive_bytes() if functions else 0,
        f"{len(functions)} functions")
    add("lambda-function-name-chars", *_max(((len(f), f"function {f}") for f in functions), "no function"))

    # Scheduler, SNS, Secrets Manager
    schedules = len(reminders) + sum(len(spec.sweep_inputs) for spec in rot.specs)
    schedules += int(rp.needs_age_reporter(s, fleet.agents))
    add("scheduler-schedules-per-region", schedules, f"{len(reminders)} reminders, the rest sweeps and the age report")
    add("sns-subscriptions-per-topic", len(s.alarm_subscriptions), f"topic {naming.alarm_topic_name(s)}")
    secrets = [naming.secret_name(s, a.name, c.name) for a in agents for c in a.credentials if "aws" in c.stores]
    add("secretsmanager-secrets-per-region", len(secrets), f"{len(secrets)} agent secrets")
    add("secretsmanager-secret-name-chars", *_max(((len(n), f"secret {n}") for n in secrets), "no secret"))
    add("cloudwatch-alarm-name-chars", *_max(((len(a.name), f"alarm {a.name}") for a in alarms), "no alarm"))
    return out


def _dimension_values(s: StackSettings, filters: list[mp.MetricFilterSpec], roles: list[str]) -> list[tuple[int, str]]:
    """Per filter: the roles of the plan whose events it can count (the worst hour: all of them call)."""
    out = []
    for f in filters:
        n = sum(1 for r in roles if any(r.startswith(p) for p in f.role_prefixes))
        out.append((n, f"filter {f.name}"))
    return out


def _leading_counts(s: StackSettings, roles: list[str]) -> Counter[str]:
    """Roles by the character after the environment's role prefix (what partitions split on)."""
    prefix = mp.role_name_prefix(s)
    return Counter(r[len(prefix)] for r in roles if r.startswith(prefix) and len(r) > len(prefix))


def partition_sizes(s: StackSettings, roles: list[str], k: int) -> list[int]:
    """Roles per partition with `k` partitions (`monitoring_plan.partition_of`)."""
    counts = _leading_counts(s, roles)
    t = s.model_copy(update={"monitoring_partitions": k})
    return [sum(counts[c] for c in chars) for chars in mp.partitions(t)]


def _partition_fix(s: StackSettings, roles: list[str]) -> str:
    limit = limit_of(s, BY_KEY["logs-metric-filter-dimension-values"]) or mp.MAX_DIMENSION_VALUES_PER_HOUR
    counts = _leading_counts(s, roles)
    for k in [1, *range(4, 37)]:
        t = s.model_copy(update={"monitoring_partitions": k})
        largest = max(sum(counts[c] for c in chars) for chars in mp.partitions(t))
        if largest <= limit and all(len(f.pattern) <= mp.MAX_FILTER_PATTERN_CHARS for f in mp.trail_filters(t)):
            return (f"set agentfleet:monitoringPartitions: {k} (largest partition {largest:,} roles,"
                    f" {len(mp.trail_filters(t))} filters on the log group)")
    return "no partitioning fits (too many agent names share a first character): split the environment"


def problems(fleet: Fleet, s: StackSettings) -> list[str]:
    """One message per quota the stack would exceed (empty: it fits)."""
    return [u.message() for u in usage(fleet, s) if not u.ok]


def usage_json(fleet: Fleet, s: StackSettings) -> list[dict[str, Any]]:
    """`plan --format json`'s `quotas`: every usage with its limit, source and whether it fits."""
    return [{**asdict(u), "ok": u.ok} for u in usage(fleet, s)]


def quota_table() -> str:
    """docs/quotas.md's table of the quotas, defaults and sources (tested in sync)."""
    rows = ["| quota (`agentfleet:quotas` key) | what | AWS default | adjustable to | scope | source |",
            "|---|---|---|---|---|---|"]
    fmt: Callable[[int | None], str] = lambda v: "no limit" if v is None else f"{v:,}"  # noqa: E731
    for q in QUOTAS:
        adj = q.adjustable
        src = q.source.split(", ")
        rows.append(f"| `{q.key}` | {q.title} | {fmt(q.default)} | {adj} | {q.scope} | [{src[0]}]({src[-1]}) |")
    return "\n".join(rows) + "\n"
