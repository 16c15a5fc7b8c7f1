"""Rotation as plain data: which function rotates which secret, its role, schedules and reminders.

Pulumi-free, like the other builders: `components/rotation_infra.py` turns these into resources,
the tests read them directly. Every name comes from `agentfleet.core.naming`, every IAM statement
from `agentfleet.core.iam_documents`; the Lambda's environment variable names come from `rotation.config`
(the handler's side of the contract).

Isolation modes (`rotationIsolation`):
  per-agent (default)  one function + role per agent that has automatically rotated credentials;
                       the role writes exactly that agent's secrets (ARN patterns).
  shared               one function + role per environment and strategy; the role writes any
                       secret under `<prefix>/<env>/` tagged managed-by=agentfleet and this
                       environment (never the environment-level `_shared` ones). For fleets whose
                       role count would pass the account's IAM quota (docs/rotation.md).

A credential rotates automatically when its strategy is automated (`model.STRATEGIES`; the loader
refuses an automated strategy without a Secrets Manager copy) and it lives in Secrets Manager;
every other credential gets a reminder schedule (and, in AWS, a secret-age alarm). A structured
credential's declared fields reach its function (`ROTATION_FIELDS`), and so do the reader roles
whose CloudTrail reads prove pickup (`ROTATION_PICKUP_*`, docs/rotation.md#proof-of-pickup).
If it also lives in Vault, its rotation function writes the new value there too: the function
gets a Vault policy (create/update on exactly those KV paths), an AWS-auth role bound to its IAM
role, and the mapping secret name -> Vault path in its environment (`ROTATION_VAULT_MAP`; shared
functions get the environment's naming rule `ROTATION_VAULT_LAYOUT` instead, and each secret with a
Vault copy carries the `vault-copy` tag, so the environment stays small at any fleet size).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Iterable, Sequence

from agentfleet.core import iam_documents as iam
from agentfleet.core import naming
from agentfleet.core import reuse
from agentfleet.core import vault_policies as vault_hcl
from agentfleet.core import credential_rules as rules
from agentfleet.core.model import PROVIDER_ADAPTERS, Fleet, ResolvedAgent, ResolvedCredential
from agentfleet.core.monitoring_plan import AlarmSpec
from agentfleet.core.plan import NameCollision
from agentfleet.core.settings import StackSettings
from agentfleet.rotation import age as age_contract
from agentfleet.rotation import config as handler_config
from agentfleet.rotation import logs as logs_contract
from agentfleet.rotation import vault_sync as vault_contract

RUNTIME = "python3.12"
ROTATION_HANDLER = "rotation.handler.lambda_handler"
AGE_HANDLER = "rotation.age.lambda_handler"
TIMEOUT_SECONDS = 120
"""Provider calls have a 10 s timeout and a few bounded retries; a step never needs more."""
MEMORY_MB = 256
LOG_RETENTION_DAYS = 90
SWEEP_SCHEDULE = "rate(1 hour)"
"""How often old keys past their grace period are revoked (so revocation is <= 1 h 15 min late)."""
SWEEP_WINDOW_MINUTES = 15
"""Flexible window of the sweeps: spreads a large fleet's invocations instead of one burst."""
AGE_REPORT_SCHEDULE = "rate(1 day)"
EVENT_INPUT_LIMIT = 8192
"""EventBridge Scheduler target input limit: shared-mode sweeps are split above it."""
SECRETS_MANAGER_PRINCIPAL = "secretsmanager.amazonaws.com"
OWN_SECRETS_SWEEP = json.dumps({"Action": "revokeDue"}, separators=(",", ":"))
"""Per-agent sweep input: the function sweeps the secrets of its own ROTATION_STRATEGY_MAP."""
REVOKE_FAILED_EVENT = logs_contract.REVOKE_FAILED_EVENT
VAULT_SYNC_FAILED_EVENT = logs_contract.VAULT_SYNC_FAILED_EVENT
FAILURE_EVENTS = logs_contract.FAILURE_EVENTS
"""Log events counted into RevokeFailures: both keep an old key alive that should have been revoked."""
REVOKE_FAILURES_METRIC = logs_contract.REVOKE_FAILURES_METRIC
PICKUP_MISSING_EVENT = logs_contract.PICKUP_MISSING_EVENT
"""`agentfleet.rotation.handler.PICKUP_MISSING_EVENT` (a test checks they agree)."""
PICKUP_MISSING_METRIC = logs_contract.PICKUP_MISSING_METRIC
REVOKED_BY_PICKUP_METRICS = logs_contract.REVOKED_BY_PICKUP_METRICS
"""`key_revoked` lines by their `pickup` field: how each revocation was justified, as metrics. The
rotation functions emit these metrics in their own log lines (`agentfleet.rotation.logs`, Embedded
Metric Format): no metric filter per function."""
LAMBDA_ENVIRONMENT_LIMIT = 4096
"""Bytes of all Lambda environment variable names and values together (a hard AWS limit)."""
VAULT_TOKEN_TTL_SECONDS = 300
"""A rotation function's Vault token outlives its 120 s invocation, and nothing more."""
INLINE_POLICY_NAME = "agentfleet-rotation"
ADMIN_POLICY_NAME = "agentfleet-provider-admin"
"""A separate document: reading the provider's admin key is not a read of any agent's secret."""


def is_automatic(cred: ResolvedCredential) -> bool:
    return rules.is_automatic(cred)


pickup_observable = rules.pickup_observable
pickup_mode = rules.pickup_mode


def needs_reminder(cred: ResolvedCredential) -> bool:
    return not is_automatic(cred) and not cred.keyless  # keyless: nothing to rotate


# ---------------------------------------------------------------- rotation functions


@dataclass(frozen=True)
class RotatedSecret:
    agent: str
    credential: str
    strategy: str
    secret_name: str
    secret_arn_pattern: str
    days: int
    """`automatically_after_days` of its SecretRotation: the credential's rotation days."""
    vault_path: str | None = None
    """Path of its Vault copy under the KV mount, or None when it lives only in Secrets Manager."""
    fields: tuple[str, ...] = ()
    """Declared field names of a structured credential (checked by testSecret); () for a single api_key."""
    reader_arn: str | None = None
    """The agent role whose GetSecretValue after a rotation proves pickup; None when pickup cannot be
    observed (a Vault copy: Vault reads are not in CloudTrail) or the strategy revokes nothing."""


class RotationPlanError(ValueError):
    pass


@dataclass(frozen=True)
class RotatorSpec:
    """One rotation function with its own role."""

    owner: str
    """The agent (per-agent mode) or the strategy (shared mode)."""
    shared: bool
    function_name: str
    role_name: str
    log_group_name: str
    strategies: tuple[str, ...]
    secrets: tuple[RotatedSecret, ...]
    environment: dict[str, str]
    """Lambda environment variables (names from `rotation.config`)."""
    sweep_inputs: tuple[str, ...]
    """Inputs of the hourly revocation sweep schedules, each under the 8 KiB limit."""
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def vault_copies(self) -> tuple[RotatedSecret, ...]:
        """The secrets whose Vault copy this function writes."""
        return tuple(r for r in self.secrets if r.vault_path is not None)

    @property
    def observes_pickup(self) -> bool:
        """It reads the trail's log group for proof of pickup (some secret has a reader to watch)."""
        return any(r.reader_arn for r in self.secrets)

    @property
    def vault_name(self) -> str:
        """Its Vault policy and AWS-auth role name."""
        return naming.rotation_vault_name(self.role_name)


def rotated_secrets(s: StackSettings, agent: ResolvedAgent) -> list[RotatedSecret]:
    return [
        RotatedSecret(
            agent=agent.name, credential=c.name, strategy=c.rotation_strategy,
            secret_name=naming.secret_name(s, agent.name, c.name),
            secret_arn_pattern=naming.secret_arn_pattern(s, agent.name, c.name), days=c.rotation_days,
            vault_path=naming.credential_locations(s, agent.name, c.name, c.stores).vault_path,
            fields=tuple(n for n, _ in c.fields) if c.structured else (),
            reader_arn=naming.role_arn(s, naming.role_name(s, agent.name)) if pickup_observable(c) else None,
        )
        for c in agent.credentials if is_automatic(c)
    ]


def sweep_inputs(function_secret_names: Sequence[str]) -> tuple[str, ...]:
    """`{"Action": "revokeDue", "SecretIds": [...]}` chunks, each within the EventBridge input limit."""
    chunks: list[list[str]] = [[]]
    for name in sorted(function_secret_names):
        candidate = chunks[-1] + [name]
        if chunks[-1] and len(_sweep_input(candidate)) > EVENT_INPUT_LIMIT:
            chunks.append([name])
        else:
            chunks[-1] = candidate
    return tuple(_sweep_input(c) for c in chunks if c)


def _sweep_input(names: list[str]) -> str:
    return json.dumps({"Action": "revokeDue", "SecretIds": names}, separators=(",", ":"))


def vault_layout(s: StackSettings) -> dict[str, str]:
    """The naming rule secret name -> Vault path (`naming.secret_name` / `naming.vault_path`) for the handler."""
    return {"mount": s.vault_mount, "secretPrefix": naming.secret_env_prefix(s), "pathPrefix": naming.vault_env_prefix(s)}


def vault_copy_tag(s: StackSettings, agent: ResolvedAgent, cred: ResolvedCredential) -> dict[str, str]:
    """The `vault-copy` tag of a secret whose Vault copy a shared rotation function writes (else none)."""
    if s.rotation_isolation != "shared" or not is_automatic(cred) or "vault" not in cred.stores:
        return {}
    return {handler_config.VAULT_COPY_TAG: naming.vault_location(s.vault_mount, naming.vault_path(s, agent.name, cred.name))}


def _environment(
    s: StackSettings, strategies: Iterable[str], extra: dict[str, str], secrets: Sequence[RotatedSecret], role_name: str,
    shared: bool = False,
) -> dict[str, str]:
    env = {
        handler_config.ENV_GRACE_HOURS: str(s.rotation_grace_hours),
        handler_config.ENV_METRICS_NAMESPACE: naming.rotation_metrics_namespace(s),
        **extra,
    }
    if s.alarms:  # the signal lines carry their metrics (EMF): what the rotation alarms read
        env[logs_contract.ENV_EMIT_METRICS] = "1"
    for strategy in sorted(set(strategies)):
        if strategy in handler_config.ADMIN_SECRET_ENV:
            env[handler_config.ADMIN_SECRET_ENV[strategy]] = naming.provider_admin_secret_name(s, strategy)
    fields = {r.secret_name: list(r.fields) for r in secrets if r.fields}
    if fields:
        env[handler_config.ENV_FIELDS] = json.dumps(dict(sorted(fields.items())), separators=(",", ":"))
    readers = {r.secret_name: [r.reader_arn] for r in secrets if r.reader_arn}
    if readers:
        env[handler_config.ENV_PICKUP_LOG_GROUP] = naming.trail_events_log_group(s)
        env[handler_config.ENV_PICKUP_READERS] = json.dumps(dict(sorted(readers.items())), separators=(",", ":"))
    vault_map = {r.secret_name: {"mount": s.vault_mount, "path": r.vault_path} for r in secrets if r.vault_path}
    if vault_map and shared:
        # Shared functions rotate any number of secrets: the environment's naming rule, not a map
        # (1,000 agents' map needs ~26 KB; Lambda allows 4 KB). Each copy is marked on its secret
        # (`vault_copy_tag`) and the handler writes only where the tag equals the rule's target.
        env[handler_config.ENV_VAULT_LAYOUT] = json.dumps(vault_layout(s), separators=(",", ":"))
    elif vault_map:
        env[handler_config.ENV_VAULT_MAP] = json.dumps(dict(sorted(vault_map.items())), separators=(",", ":"))
    if vault_map:
        env[handler_config.ENV_VAULT_AUTH_PATH] = s.vault_aws_auth_path
        env[handler_config.ENV_VAULT_ROLE] = naming.rotation_vault_name(role_name)
    return dict(sorted(env.items()))


def environment_size(env: dict[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in env.items())


def _checked(spec: RotatorSpec, reserve: int = 512) -> RotatorSpec:
    """Refuse a function whose environment cannot fit Lambda's 4 KB (leaving room for the Vault
    address variables added at deployment): failing here names the cause, AWS would not."""
    size = environment_size(spec.environment)
    if size + reserve > LAMBDA_ENVIRONMENT_LIMIT:
        raise RotationPlanError(
            f"rotation function {spec.function_name}: its environment needs {size} bytes (+{reserve} reserved for the"
            f" Vault address) of Lambda's {LAMBDA_ENVIRONMENT_LIMIT}; it rotates {len(spec.secrets)} secrets with"
            f" {len(spec.vault_copies)} Vault copies. Use per-agent rotation isolation, or store fewer of these"
            " credentials in Vault (docs/rotation.md#limitations)."
        )
    return spec


def agent_rotator(s: StackSettings, agent: ResolvedAgent) -> RotatorSpec | None:
    """Per-agent mode: the agent's own function, or None when nothing of it rotates automatically
    (once per verb and equal agent: `agentfleet.core.reuse`)."""
    return reuse.by_value("agent rotator", (s,), (agent,), lambda: _agent_rotator(s, agent))


def _agent_rotator(s: StackSettings, agent: ResolvedAgent) -> RotatorSpec | None:
    secrets = rotated_secrets(s, agent)
    if not secrets:
        return None
    strategy_map = {r.secret_name: r.strategy for r in secrets}
    fn = naming.rotation_function_name(s, agent.name)
    role = naming.rotation_role_name(s, agent.name)
    return _checked(RotatorSpec(
        owner=agent.name, shared=False, function_name=fn, role_name=role,
        log_group_name=naming.lambda_log_group_name(fn),
        strategies=tuple(sorted({r.strategy for r in secrets})), secrets=tuple(secrets),
        environment=_environment(s, strategy_map.values(), {
            handler_config.ENV_STRATEGY_MAP: json.dumps(dict(sorted(strategy_map.items())), separators=(",", ":")),
        }, secrets, role),
        sweep_inputs=(OWN_SECRETS_SWEEP,),
        tags=naming.tags(s, agent=agent.name, owner=agent.owner),
    ))


def shared_rotators(s: StackSettings, agents: Iterable[ResolvedAgent]) -> list[RotatorSpec]:
    """Shared mode: one function per strategy used by any automatically rotated credential."""
    by_strategy: dict[str, list[RotatedSecret]] = {}
    for a in agents:
        for r in rotated_secrets(s, a):
            by_strategy.setdefault(r.strategy, []).append(r)
    out = []
    for strategy, secrets in sorted(by_strategy.items()):
        fn = naming.shared_rotation_function_name(s, strategy)
        role = naming.shared_rotation_role_name(s, strategy)
        ordered = tuple(sorted(secrets, key=lambda r: r.secret_name))
        out.append(_checked(RotatorSpec(
            owner=strategy, shared=True, function_name=fn, role_name=role,
            log_group_name=naming.lambda_log_group_name(fn), strategies=(strategy,), secrets=ordered,
            environment=_environment(s, [strategy], {handler_config.ENV_STRATEGY: strategy}, ordered, role, shared=True),
            sweep_inputs=sweep_inputs([r.secret_name for r in ordered]),
            tags=naming.tags(s, extra={"rotation-strategy": strategy}),
        )))
    return out


def rotators(s: StackSettings, fleet: Fleet) -> list[RotatorSpec]:
    """The stack's rotation functions (planned once per verb: `agentfleet.core.reuse`)."""
    return list(reuse.by_identity("rotators", (s, fleet), lambda: _rotators(s, fleet)))


def _rotators(s: StackSettings, fleet: Fleet) -> list[RotatorSpec]:
    if s.rotation_isolation == "shared":
        return shared_rotators(s, fleet.agents)
    return [r for a in sorted(fleet.agents, key=lambda a: a.name) if (r := agent_rotator(s, a)) is not None]


def lambda_trust_policy() -> dict[str, Any]:
    return iam.Document((iam.assume_by_service("LambdaService", "lambda.amazonaws.com"),)).to_dict()


def rotation_role_policy(s: StackSettings, spec: RotatorSpec, kms_key_arn: str) -> dict[str, Any]:
    """Exactly what the handler calls: the four secret actions on these secrets, random values, the key, its logs."""
    if spec.shared:
        rotate = iam.secret_rotate(
            "RotateEnvironmentSecrets", (naming.environment_secrets_arn_pattern(s),),
            condition=iam.resource_tag_condition(
                {naming.TAG_MANAGED_BY: naming.MANAGED_BY, naming.TAG_ENVIRONMENT: s.environment},
                {naming.TAG_AGENT: naming.SHARED_AGENT_TAG},
            ),
        )
    else:
        rotate = iam.secret_rotate("RotateOwnSecrets", sorted(r.secret_arn_pattern for r in spec.secrets))
    statements = [
        rotate,
        iam.random_password("GenerateRandomValues"),
        iam.kms_decrypt_via_secretsmanager("UseEnvironmentKeyViaSecretsManager", kms_key_arn, s.aws_region, encrypt=True),
        iam.logs_write("WriteOwnLogs", naming.log_group_arn(s, spec.log_group_name)),
    ]
    if spec.observes_pickup:
        statements.append(iam.logs_filter("ReadTrailForPickup", naming.log_group_arn(s, naming.trail_events_log_group(s))))
    return iam.Document(tuple(statements)).to_dict()


def provider_admin_policy(s: StackSettings, spec: RotatorSpec) -> dict[str, Any] | None:
    """Read the admin key of each provider adapter the function uses; None if it uses none."""
    providers = sorted(p for p in spec.strategies if p in PROVIDER_ADAPTERS)
    if not providers:
        return None
    arns = [naming.provider_admin_secret_arn_pattern(s, p) for p in providers]
    return iam.Document((iam.secret_value_only("ReadProviderAdminKeys", arns),)).to_dict()


def rotation_vault_policy(s: StackSettings, spec: RotatorSpec) -> str | None:
    """The function's Vault policy: create/update on exactly the Vault copies it rotates; None if it has none."""
    copies = [(r.agent, r.credential) for r in spec.vault_copies]
    return vault_hcl.rotation_policy_hcl(s, spec.owner, copies) if copies else None


def vault_connection_environment(address: str | None, namespace: str | None = None,
                                 iam_server_id: str | None = None) -> dict[str, str]:
    """How the function reaches Vault (known only at deployment: the stack's Vault address).

    An address the handler would refuse (plain http to a non-loopback host) is left out, so the
    function still rotates in AWS and reports every Vault sync as failed (alarm) instead of
    failing to start."""
    env: dict[str, str] = {}
    if address and handler_config.safe_url(address.rstrip("/")):
        env[handler_config.ENV_VAULT_ADDR] = address.rstrip("/")
    if namespace:
        env[handler_config.ENV_VAULT_NAMESPACE] = namespace
    if iam_server_id:
        env[handler_config.ENV_VAULT_IAM_SERVER_ID] = iam_server_id
    return env


@dataclass(frozen=True)
class EmergencyRotation:
    """The one command that rotates a credential now and revokes its old key(s) once the new key is
    verified, current in Secrets Manager and written to its Vault copy (handler `rotateNow`)."""

    agent: str
    credential: str
    function_name: str
    secret_name: str
    vault: str | None
    """`<mount>/<path>` of its Vault copy (also rewritten), or None."""
    payload: str
    command: str
    follow_up: str
    """The forced sweep to run if the emergency reports it could not finish (Vault or provider down)."""


def emergency_rotation(s: StackSettings, fleet: Fleet, agent_name: str, credential_name: str) -> EmergencyRotation:
    """Raise LookupError for an unknown agent/credential, ValueError for one no function rotates."""
    agent = next((a for a in fleet.agents if a.name == agent_name), None)
    if agent is None:
        raise LookupError(f"no agent {agent_name!r} in the fleet")
    cred = next((c for c in agent.credentials if c.name == credential_name), None)
    if cred is None:
        raise LookupError(f"agent {agent_name!r} has no credential {credential_name!r}")
    if not is_automatic(cred):
        raise ValueError(
            f"{agent_name}/{credential_name} is rotated by a human (strategy {cred.rotation_strategy}, stores"
            f" {list(cred.stores)}): mint a new key, write it with the runbook of docs/rotation.md#manual-credentials,"
            " then revoke the old key at the provider"
        )
    spec = next(x for x in rotators(s, fleet) if any(r.agent == agent_name and r.credential == credential_name for r in x.secrets))
    secret = naming.secret_name(s, agent_name, credential_name)
    [rotated] = [r for r in spec.secrets if r.secret_name == secret]

    def invoke(event: dict[str, Any]) -> str:
        body = json.dumps(event, separators=(",", ":"))
        return (f"aws lambda invoke --region {s.aws_region} --function-name {spec.function_name}"
                f" --cli-binary-format raw-in-base64-out --payload '{body}' /dev/stdout")

    payload = {"Action": "rotateNow", "SecretId": secret, "Emergency": True}
    return EmergencyRotation(
        agent=agent_name, credential=credential_name, function_name=spec.function_name, secret_name=secret,
        vault=naming.vault_location(s.vault_mount, rotated.vault_path) if rotated.vault_path else None,
        payload=json.dumps(payload, separators=(",", ":")), command=invoke(payload),
        follow_up=invoke({"Action": "revokeDue", "SecretId": secret, "Force": True}),
    )


def invoke_source_arn(s: StackSettings, spec: RotatorSpec) -> str | None:
    """Shared functions: one invoke permission for the environment's secrets. Per-agent: None
    (one permission per secret, on its exact ARN)."""
    return naming.environment_secrets_arn_pattern(s) if spec.shared else None


def pickup_missing_alarm(s: StackSettings) -> AlarmSpec:
    return AlarmSpec(
        name=naming.alarm_name(s, "rotation", "pickup-missing"),
        description=(
            "An agent has not fetched its rotated secret since the rotation, and the grace period is over: its"
            " old key is kept (not revoked) so the agent keeps working. Restart the agent so it reads the new"
            " value; the old key is revoked once it is seen (or after the maximum wait). Log event"
            " pickup_missing names the secret and the reader role (docs/rotation.md#proof-of-pickup)."
        ),
        namespace=naming.rotation_metrics_namespace(s), metric_name=PICKUP_MISSING_METRIC, threshold=1.0,
        comparison="GreaterThanOrEqualToThreshold", period=3600,
    )


def revoke_failures_alarm(s: StackSettings) -> AlarmSpec:
    return AlarmSpec(
        name=naming.alarm_name(s, "rotation", "revoke-failures"),
        description=(
            "A rotation function could not revoke an old key after its grace period, or could not write a"
            " new key to the credential's Vault copy (which holds back that revocation). AWSCURRENT is"
            " unaffected; the old key keeps working and the hourly sweep retries. Check the function's log"
            " for event=revoke_failed / vault_sync_failed (key_id, vault, error)."
        ),
        namespace=naming.rotation_metrics_namespace(s), metric_name=REVOKE_FAILURES_METRIC, threshold=1.0,
        comparison="GreaterThanOrEqualToThreshold", period=3600,
    )


# ---------------------------------------------------------------- manual credentials


@dataclass(frozen=True)
class ReminderSpec:
    agent: str
    credential: str
    schedule_name: str
    rotation_days: int
    max_rotation_days: int
    lead_days: int
    expression: str
    message: dict[str, Any]
    secret_name: str | None
    """Secrets Manager name (None for Vault-only credentials: no age alarm, reminder only)."""


def lead_days(rotation_days: int) -> int:
    """Remind a week ahead, or a quarter of the period for short ones (at least a day)."""
    return max(1, min(7, rotation_days // 4))


def runbook(s: StackSettings, agent: ResolvedAgent, cred: ResolvedCredential) -> list[str]:
    steps = [f"Mint a new {cred.service} {cred.type} for agent {agent.name} in the provider's console."]
    stores = " and ".join(x for x in (
        f"Secrets Manager {naming.secret_name(s, agent.name, cred.name)}" if "aws" in cred.stores else "",
        # Parameter Store has no rotation protocol: this write is the rotation
        f"Parameter Store {naming.ssm_parameter_name(s, agent.name, cred.name)}" if "ssm" in cred.stores else "",
        f"Vault {s.vault_mount}/{naming.vault_path(s, agent.name, cred.name)}" if "vault" in cred.stores else "",
    ) if x)
    steps.append(
        f"agentfleet put-values agents.yaml --stack {s.stack} --agent {agent.name} --credential {cred.name}"
        f"  (hidden prompt; writes {stores} and verifies)"
    )
    steps.append(f"Check that agent {agent.name} works with the new key, then wait "
                 f"{s.rotation_grace_hours} h (agents refresh cached values) and revoke the old key at the provider.")
    steps.append("Runbook: docs/rotation.md#manual-credentials")
    return steps


def reminder(s: StackSettings, agent: ResolvedAgent, cred: ResolvedCredential) -> ReminderSpec:
    lead = lead_days(cred.rotation_days)
    where = naming.credential_locations(s, agent.name, cred.name, cred.stores)
    message = {
        "kind": "agentfleet.rotation-reminder",
        "environment": s.environment,
        "agent": agent.name,
        "owner": agent.owner,
        "credential": cred.name,
        "service": cred.service,
        "classification": cred.classification,
        "secret_name": where.secret_name,
        "vault_path": where.vault_location,
        "ssm_parameter": where.ssm_parameter,
        "rotate_every_days": cred.rotation_days,
        "max_age_days": cred.max_rotation_days,
        "reminder_time": "<aws.scheduler.scheduled-time>",
        "due_in_days": lead,
        "due": f"{lead} days after reminder_time",
        "runbook": runbook(s, agent, cred),
    }
    return ReminderSpec(
        agent=agent.name, credential=cred.name,
        schedule_name=naming.reminder_schedule_name(s, agent.name, cred.name),
        rotation_days=cred.rotation_days, max_rotation_days=cred.max_rotation_days, lead_days=lead,
        expression=f"rate({cred.rotation_days} days)", message=message,
        secret_name=where.secret_name,
    )


def reminders(s: StackSettings, agent: ResolvedAgent) -> list[ReminderSpec]:
    """The agent's reminder schedules (once per verb: the name check and the quota model both ask)."""
    return list(reuse.by_value("reminders", (s,), (agent,),
                                  lambda: [reminder(s, agent, c) for c in agent.credentials if needs_reminder(c)]))


def reminder_start(spec: ReminderSpec, deployed_on: date) -> date:
    """First reminder: `lead_days` before the first due date (deployment + rotation days)."""
    return deployed_on + timedelta(days=spec.rotation_days - spec.lead_days)


def reminder_dates(spec: ReminderSpec, deployed_on: date, count: int) -> list[tuple[date, date]]:
    """(reminder, due) pairs of the schedule: every `rotation_days`, each `lead_days` ahead."""
    first = reminder_start(spec, deployed_on)
    period = timedelta(days=spec.rotation_days)
    return [(first + i * period, first + i * period + timedelta(days=spec.lead_days)) for i in range(count)]


def age_alarm(s: StackSettings, spec: ReminderSpec) -> AlarmSpec | None:
    """Secret older than its class maximum (needs a Secrets Manager copy to measure)."""
    if spec.secret_name is None:
        return None
    return AlarmSpec(
        name=naming.alarm_name(s, spec.agent, f"{spec.credential}-overdue"),
        description=(
            f"The {spec.credential} credential of agent {spec.agent} is older than its class maximum of"
            f" {spec.max_rotation_days} days. Rotate it now: docs/rotation.md#manual-credentials"
            f" (secret {spec.secret_name})."
        ),
        namespace=naming.rotation_metrics_namespace(s), metric_name=age_contract.METRIC_NAME,
        threshold=float(spec.max_rotation_days), statistic="Maximum", period=86400,
        dimensions={"Agent": spec.agent, "Credential": spec.credential},
        # No datapoint for a day means the reporter did not run: keep the last state.
        treat_missing_data="missing",
    )


# ---------------------------------------------------------------- the environment's scheduler role


def scheduler_trust_policy(s: StackSettings) -> dict[str, Any]:
    return iam.Document((iam.assume_by_service_in_account("Scheduler", "scheduler.amazonaws.com", s.aws_account_id),)).to_dict()


def scheduler_role_policy(s: StackSettings) -> dict[str, Any]:
    """Publish reminders to the alert topic; invoke this environment's managed functions (sweeps, age report).

    EventBridge Scheduler (1,000,000 schedules per account) instead of EventBridge rules (300 per
    bus by default) keeps a per-agent fleet of any size within quota, with this one role.
    """
    return iam.Document((
        iam.sns_publish("PublishReminders", naming.alarm_topic_arn(s)),
        iam.lambda_invoke(
            "InvokeRotationFunctions", (naming.environment_functions_arn_pattern(s),),
            condition=iam.resource_tag_condition({naming.TAG_MANAGED_BY: naming.MANAGED_BY,
                                                  naming.TAG_ENVIRONMENT: s.environment}),
        ),
    )).to_dict()


# ---------------------------------------------------------------- secret-age reporter


def age_reporter_environment(s: StackSettings) -> dict[str, str]:
    return {
        age_contract.ENV_PREFIX: naming.secret_env_prefix(s),
        age_contract.ENV_ENVIRONMENT: s.environment,
        age_contract.ENV_NAMESPACE: naming.rotation_metrics_namespace(s),
    }


def age_reporter_policy(s: StackSettings) -> dict[str, Any]:
    """Metadata only: list the environment's secrets and their version dates, publish the metric."""
    return iam.Document((
        iam.list_secrets("ListSecrets"),
        iam.secret_versions_metadata(
            "ReadVersionDates", (naming.environment_secrets_arn_pattern(s),),
            condition=iam.resource_tag_condition({naming.TAG_MANAGED_BY: naming.MANAGED_BY,
                                                  naming.TAG_ENVIRONMENT: s.environment}),
        ),
        iam.put_own_metrics("PublishSecretAge", naming.rotation_metrics_namespace(s)),
        iam.logs_write("WriteOwnLogs", naming.log_group_arn(s, naming.lambda_log_group_name(naming.age_reporter_name(s)))),
    )).to_dict()


def needs_scheduler(s: StackSettings, agents: Iterable[ResolvedAgent]) -> bool:
    """Any rotation function (its sweeps) or any reminder needs the environment's scheduler role."""
    return any(a.credentials for a in agents)


def needs_age_reporter(s: StackSettings, agents: Iterable[ResolvedAgent]) -> bool:
    """Age alarms exist for manual credentials in AWS, when alarms are on."""
    return s.alarms and any(r.secret_name for a in agents for r in reminders(s, a))


# ---------------------------------------------------------------- names and quota


def check_names(s: StackSettings, fleet: Fleet) -> None:
    """The one collision check (`agentfleet.core.names`), which covers the rotation roles too."""
    from agentfleet.core import names  # names reads this module's builders

    names.check_names(fleet, s)


def role_count(s: StackSettings, fleet: Fleet) -> dict[str, int]:
    """IAM roles the stack creates, by kind (the quota arithmetic of docs/rotation.md)."""
    automatic = [a for a in fleet.agents if rotated_secrets(s, a)]
    rotation = len(shared_rotators(s, fleet.agents)) if s.rotation_isolation == "shared" else len(automatic)
    env = int(needs_scheduler(s, fleet.agents)) + int(needs_age_reporter(s, fleet.agents))
    return {"agent": len(fleet.agents), "rotation": rotation, "environment_rotation": env}


def synced_vault_copies(s: StackSettings, fleet: Fleet) -> list[tuple[str, str]]:
    """(agent, credential) whose Vault copy a rotation function writes."""
    return sorted((r.agent, r.credential) for spec in rotators(s, fleet) for r in spec.vault_copies)


def unrotated_vault_copies(s: StackSettings, fleet: Fleet) -> list[tuple[str, str]]:
    """(agent, credential) rotated automatically in Secrets Manager and stored in Vault, whose Vault
    copy no rotation function writes: it would keep a key the provider revokes. Empty by construction."""
    every = {(a.name, c.name) for a in fleet.agents for c in a.credentials if is_automatic(c) and "vault" in c.stores}
    return sorted(every - set(synced_vault_copies(s, fleet)))
