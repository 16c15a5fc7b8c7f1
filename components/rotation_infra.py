"""Rotation resources: functions, roles, schedules, reminders and alarms (thin: plans come from
`agentfleet.core.rotation_plan`).

Components:
  `AgentRotation`       one rotation Lambda with its own role and inline policy, the invoke
                        permissions for Secrets Manager, one `SecretRotation` per secret it rotates,
                        the hourly revocation sweep (an EventBridge Scheduler schedule) and its
                        errors alarm (its failure and pickup metrics it emits itself, in its log
                        lines: `agentfleet.rotation.logs`, no metric filter); when it rotates credentials that also live in Vault, its
                        Vault policy (write exactly those KV paths) and a Vault AWS-auth role bound
                        to its IAM role. Per agent (parented to the agent's AgentAccess) or, with
                        `rotationIsolation: shared`, per environment and strategy (parented to the
                        fleet).
  `RotationReminders`   per agent with manual credentials: an EventBridge Scheduler schedule per
                        credential publishing a reminder to the environment's SNS topic, and an
                        age alarm per Secrets Manager copy.
  `RotationEnvironment` once per environment: the schedule group and the scheduler's role
                        (reminders to SNS, sweeps to Lambda), the daily secret-age reporter, the
                        revoke-failure alarm.

Wired into `AgentFleet` through `agentfleet.components.fleet.DEFAULT_EXTENSIONS` (`extend_agent`,
`extend_fleet`). The environment's SNS topic is the one `agentfleet.components.monitoring` owns
(`alerts_for`); this module only publishes to it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_vault as vault

from agentfleet.core import iam_documents as iam
from agentfleet.components import monitoring
from agentfleet.core import naming
from agentfleet.core import rotation_plan as rp
from agentfleet.core.model import Fleet, ResolvedAgent
from agentfleet.core.monitoring_plan import AlarmSpec, rotation_errors_alarm
from agentfleet.core.settings import StackSettings
from agentfleet.components.environment import EnvironmentReference
from agentfleet.components.providers import ProviderSet
from agentfleet.core.sharding import ENVIRONMENT_OUTPUTS
from agentfleet.rotation import package

if TYPE_CHECKING:
    from agentfleet.components.agent_access import AgentAccess
    from agentfleet.components.fleet import AgentContext, AgentFleet

ROTATION_TOKEN = "agentfleet:index:AgentRotation"
REMINDERS_TOKEN = "agentfleet:index:RotationReminders"
ENVIRONMENT_TOKEN = "agentfleet:index:RotationEnvironment"
STATE_KEY = "rotation"


@lru_cache(maxsize=1)
def lambda_archive() -> tuple[str, str]:
    """(path, source_code_hash) of the deterministic Lambda zip; the file name carries its hash."""
    data = package.build_zip()
    path = package.cache_dir() / f"rotation-lambda-{package.sha256_hex(data)[:16]}.zip"
    package.write_zip(path)
    return str(path), package.source_code_hash(data)


def deploy_date() -> date:
    """Anchor of new reminder schedules (`start_date` is then ignored: see RotationReminders)."""
    return datetime.now(timezone.utc).date()


def _child(parent: pulumi.Resource, provider: pulumi.ProviderResource, **kw: Any) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, provider=provider, **kw)


def _alarm(spec: AlarmSpec, topic_arn: pulumi.Input[str], tags: Mapping[str, str], opts: pulumi.ResourceOptions) -> None:
    monitoring.add_alarm(spec, topic_arn, dict(tags), opts)


# ---------------------------------------------------------------- AgentRotation


@dataclass(frozen=True)
class RotationTarget:
    """One secret the function rotates."""

    agent: str
    credential: str
    secret_arn: pulumi.Input[str]
    """ARN of the `aws.secretsmanager.Secret` (an output of AgentAccess)."""
    days: int
    """`automatically_after_days`."""
    logical_agent: str = ""
    """The agent's fleet-scoped logical name (default: the agent name)."""


@dataclass(frozen=True)
class RotationVaultArgs:
    """The function's access to the Vault copies of the credentials it rotates."""

    provider: vault.Provider
    """Explicit Vault provider."""
    name: str
    """Its Vault policy and AWS-auth role name (`naming.rotation_vault_name`)."""
    policy: str
    """Vault policy HCL (`rotation_plan.rotation_vault_policy`): create/update on exactly those paths."""
    auth_backend: pulumi.Input[str] | None
    """Path of the environment's Vault AWS auth backend; None when the stack has none
    (`agentfleet:vaultAwsAuth: false`): the policy is still created, no login role."""
    token_ttl_seconds: int = rp.VAULT_TOKEN_TTL_SECONDS
    """TTL of the function's Vault tokens (max = 2x; no renewals needed within one invocation)."""


@dataclass(frozen=True)
class AgentRotationArgs:
    function_name: str
    """Lambda name (`naming.rotation_function_name` / `shared_rotation_function_name`)."""
    role_name: str
    """The function's own IAM role (`naming.rotation_role_name` / `shared_rotation_role_name`)."""
    log_group_name: str
    """`/aws/lambda/<function>`, created here with a retention."""
    trust_policy: str
    """Role trust JSON (`rotation_plan.lambda_trust_policy`)."""
    role_policy: pulumi.Input[str]
    """Inline policy JSON (`rotation_plan.rotation_role_policy`, needs the KMS key ARN)."""
    admin_policy: str | None
    """Second inline policy reading provider admin keys, or None."""
    environment: Mapping[str, str]
    """Lambda environment variables (`RotatorSpec.environment`)."""
    sweep_inputs: Sequence[str]
    """Inputs of the hourly revocation sweep schedules."""
    schedule_group: pulumi.Input[str]
    """The environment's schedule group (RotationEnvironment)."""
    scheduler_role_arn: pulumi.Input[str]
    """Role EventBridge Scheduler invokes the function with (RotationEnvironment)."""
    targets: Sequence[RotationTarget]
    """Secrets rotated by this function."""
    invoke_source_arn: str | None
    """Shared mode: one invoke permission for this ARN pattern; None: one per secret's exact ARN."""
    account_id: str
    """Source account of the invoke permission."""
    archive_path: str
    """Deterministic Lambda zip (`lambda_archive`)."""
    code_hash: str
    """Its base64 SHA-256 (`source_code_hash`)."""
    alarms: Sequence[AlarmSpec]
    """Alarms of this function (Lambda errors); empty when alarms are off."""
    topic_arn: pulumi.Input[str] | None
    """The environment's alert topic (alarm actions)."""
    tags: Mapping[str, str]
    """Tags of every taggable child."""
    provider: aws.Provider
    """Explicit AWS provider."""
    vault: RotationVaultArgs | None = None
    """Vault policy and login of the function; None when none of its credentials lives in Vault."""


class AgentRotation(pulumi.ComponentResource):
    """A rotation function, its role, its invoke permissions and the SecretRotations using it."""

    function_arn: pulumi.Output[str]
    function_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    rotations: dict[str, aws.secretsmanager.SecretRotation]
    """`<agent>/<credential>` -> its SecretRotation."""
    vault_policy: vault.Policy | None
    vault_login: vault.aws.AuthBackendRole | None

    def __init__(self, name: str, args: AgentRotationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(ROTATION_TOKEN, name, None, opts)
        p, tags = args.provider, dict(args.tags)
        logs = aws.cloudwatch.LogGroup(
            f"{name}/logs", name=args.log_group_name, retention_in_days=rp.LOG_RETENTION_DAYS, tags=tags,
            opts=_child(self, p),
        )
        role = aws.iam.Role(
            f"{name}/role", name=args.role_name, assume_role_policy=args.trust_policy, tags=tags, opts=_child(self, p),
        )
        policies = [aws.iam.RolePolicy(
            f"{name}/policy", role=role.name, name=rp.INLINE_POLICY_NAME, policy=args.role_policy, opts=_child(self, p),
        )]
        if args.admin_policy is not None:
            policies.append(aws.iam.RolePolicy(
                f"{name}/admin-policy", role=role.name, name=rp.ADMIN_POLICY_NAME, policy=args.admin_policy,
                opts=_child(self, p),
            ))
        self.vault_policy, self.vault_login = None, None
        ready: list[pulumi.Resource] = [logs, *policies]
        v = args.vault
        if v is not None:
            self.vault_policy = vault.Policy(
                f"{name}/vault-policy", name=v.name, policy=v.policy, opts=_child(self, v.provider),
            )
            if v.auth_backend is not None:
                self.vault_login = vault.aws.AuthBackendRole(
                    f"{name}/vault-login", backend=v.auth_backend, role=v.name, auth_type="iam",
                    bound_iam_principal_arns=[role.arn], resolve_aws_unique_ids=True,
                    # Referencing the policy's output makes the login wait for the policy.
                    token_policies=[self.vault_policy.name], token_no_default_policy=True,
                    token_ttl=v.token_ttl_seconds, token_max_ttl=2 * v.token_ttl_seconds,
                    opts=_child(self, v.provider),
                )
                ready.append(self.vault_login)  # the first rotation can log in
        fn = aws.lambda_.Function(
            f"{name}/function", name=args.function_name, role=role.arn, runtime=rp.RUNTIME,
            handler=rp.ROTATION_HANDLER, code=pulumi.FileArchive(args.archive_path), source_code_hash=args.code_hash,
            timeout=rp.TIMEOUT_SECONDS, memory_size=rp.MEMORY_MB,
            environment={"variables": dict(args.environment)}, tags=tags,
            opts=_child(self, p, depends_on=ready),
        )
        permissions: dict[str, aws.lambda_.Permission] = {}
        if args.invoke_source_arn is not None:
            shared = aws.lambda_.Permission(
                f"{name}/invoke", action="lambda:InvokeFunction", function=fn.name,
                principal=rp.SECRETS_MANAGER_PRINCIPAL, source_account=args.account_id,
                source_arn=args.invoke_source_arn, opts=_child(self, p),
            )
            permissions = {f"{t.agent}/{t.credential}": shared for t in args.targets}
        else:
            for t in args.targets:
                permissions[f"{t.agent}/{t.credential}"] = aws.lambda_.Permission(
                    naming.logical_credential(t.logical_agent or t.agent, t.credential, "rotation-invoke"),
                    action="lambda:InvokeFunction", function=fn.name, principal=rp.SECRETS_MANAGER_PRINCIPAL,
                    source_account=args.account_id, source_arn=t.secret_arn, opts=_child(self, p),
                )
        self.rotations = {}
        for t in args.targets:
            key = f"{t.agent}/{t.credential}"
            self.rotations[key] = aws.secretsmanager.SecretRotation(
                naming.logical_credential(t.logical_agent or t.agent, t.credential, "rotation"),
                secret_id=t.secret_arn, rotation_lambda_arn=fn.arn,
                rotation_rules={"automatically_after_days": t.days},
                # The first rotation runs on schedule (or by `rotate-secret`), never as a side
                # effect of `pulumi up`: the provider's admin key may not be in place yet.
                rotate_immediately=False,
                opts=_child(self, p, depends_on=[permissions[key]]),
            )
        for i, payload in enumerate(args.sweep_inputs):
            aws.scheduler.Schedule(
                f"{name}/sweep-{i}", name=naming.rotation_sweep_schedule_name(args.function_name, i),
                group_name=args.schedule_group,
                description=f"Revoke old keys past their grace period ({args.function_name})",
                schedule_expression=rp.SWEEP_SCHEDULE,
                flexible_time_window={"mode": "FLEXIBLE", "maximum_window_in_minutes": rp.SWEEP_WINDOW_MINUTES},
                target={"arn": fn.arn, "role_arn": args.scheduler_role_arn, "input": payload},
                opts=_child(self, p),
            )
        if args.topic_arn is not None:
            for spec in args.alarms:
                _alarm(spec, args.topic_arn, tags, _child(self, p))
        self.function_arn, self.function_name, self.role_arn = fn.arn, fn.name, role.arn
        self.register_outputs({"functionArn": self.function_arn, "roleArn": self.role_arn})


# ---------------------------------------------------------------- RotationReminders


@dataclass(frozen=True)
class RotationRemindersArgs:
    reminders: Sequence[rp.ReminderSpec]
    """One per manual credential (`rotation_plan.reminders`)."""
    start_dates: Mapping[str, str]
    """Credential -> ISO start of its schedule (`rotation_plan.reminder_start`)."""
    group_name: pulumi.Input[str]
    """The environment's schedule group."""
    scheduler_role_arn: pulumi.Input[str]
    """Role EventBridge Scheduler publishes with (`rotation_plan.scheduler_role_policy`)."""
    topic_arn: pulumi.Input[str]
    alarms: Sequence[AlarmSpec]
    """Age alarms (`rotation_plan.age_alarm`); empty when alarms are off."""
    tags: Mapping[str, str]
    provider: aws.Provider
    scope: str = ""
    """Prefix of the children's logical names (`naming.fleet_scope` of the fleet)."""


class RotationReminders(pulumi.ComponentResource):
    """Reminder schedules and age alarms of one agent's manual credentials."""

    schedules: dict[str, aws.scheduler.Schedule]

    def __init__(self, name: str, args: RotationRemindersArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(REMINDERS_TOKEN, name, None, opts)
        p = args.provider
        self.schedules = {}
        for r in args.reminders:
            self.schedules[r.credential] = aws.scheduler.Schedule(
                naming.logical_credential(f"{args.scope}{r.agent}", r.credential, "reminder"),
                name=r.schedule_name, group_name=args.group_name,
                description=f"Remind the owner of {r.agent}/{r.credential} to rotate it (every {r.rotation_days} days)",
                schedule_expression=r.expression, start_date=args.start_dates[r.credential],
                flexible_time_window={"mode": "OFF"},
                target={"arn": args.topic_arn, "role_arn": args.scheduler_role_arn,
                        "input": json.dumps(r.message, sort_keys=True)},
                # The anchor is the first deployment; later runs must not move it.
                opts=_child(self, p, ignore_changes=["startDate"]),
            )
        for spec in args.alarms:
            _alarm(spec, args.topic_arn, args.tags, _child(self, p))
        self.register_outputs({"schedules": sorted(self.schedules)})


# ---------------------------------------------------------------- RotationEnvironment


@dataclass(frozen=True)
class RotationEnvironmentArgs:
    settings: StackSettings
    """Stack settings (names, account, alarms switch)."""
    topic_arn: pulumi.Input[str]
    archive_path: str
    code_hash: str
    provider: aws.Provider


class RotationEnvironment(pulumi.ComponentResource):
    """Environment-level rotation plumbing: schedule group, scheduler role, age reporter, alarms."""

    group_name: pulumi.Output[str]
    scheduler_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: RotationEnvironmentArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(ENVIRONMENT_TOKEN, name, None, opts)
        s, p = args.settings, args.provider
        tags = naming.tags(s)
        group = aws.scheduler.ScheduleGroup(
            f"{name}/schedule-group", name=naming.reminder_schedule_group_name(s), tags=tags, opts=_child(self, p),
        )
        role = aws.iam.Role(
            f"{name}/scheduler-role", name=naming.scheduler_role_name(s),
            assume_role_policy=iam.to_json(rp.scheduler_trust_policy(s)), tags=tags, opts=_child(self, p),
        )
        policy = aws.iam.RolePolicy(
            f"{name}/scheduler-policy", role=role.name, name=rp.INLINE_POLICY_NAME,
            policy=iam.to_json(rp.scheduler_role_policy(s)), opts=_child(self, p),
        )
        if s.alarms:
            _alarm(rp.revoke_failures_alarm(s), args.topic_arn, tags, _child(self, p))
            _alarm(rp.pickup_missing_alarm(s), args.topic_arn, tags, _child(self, p))
        self._name, self._args, self._tags = name, args, tags
        self.group_name = group.name
        # Schedules using the role wait for its policy: Scheduler checks it when invoking.
        self.scheduler_role_arn = pulumi.Output.all(role.arn, policy.id).apply(lambda v: str(v[0]))
        self.register_outputs({"groupName": self.group_name, "schedulerRoleArn": self.scheduler_role_arn})

    def add_age_reporter(self) -> None:
        """The daily SecretAgeDays reporter (added once the fleet is known to need it)."""
        name, args, tags = self._name, self._args, self._tags
        s, p = args.settings, args.provider
        fn_name = naming.age_reporter_name(s)
        logs = aws.cloudwatch.LogGroup(
            f"{name}/age-logs", name=naming.lambda_log_group_name(fn_name),
            retention_in_days=rp.LOG_RETENTION_DAYS, tags=tags, opts=_child(self, p),
        )
        role = aws.iam.Role(
            f"{name}/age-role", name=fn_name, assume_role_policy=iam.to_json(rp.lambda_trust_policy()), tags=tags,
            opts=_child(self, p),
        )
        policy = aws.iam.RolePolicy(
            f"{name}/age-policy", role=role.name, name=rp.INLINE_POLICY_NAME,
            policy=iam.to_json(rp.age_reporter_policy(s)), opts=_child(self, p),
        )
        fn = aws.lambda_.Function(
            f"{name}/age-function", name=fn_name, role=role.arn, runtime=rp.RUNTIME, handler=rp.AGE_HANDLER,
            code=pulumi.FileArchive(args.archive_path), source_code_hash=args.code_hash,
            timeout=rp.TIMEOUT_SECONDS, memory_size=rp.MEMORY_MB,
            environment={"variables": rp.age_reporter_environment(s)}, tags=tags,
            opts=_child(self, p, depends_on=[logs, policy]),
        )
        aws.scheduler.Schedule(
            f"{name}/age-daily", name=naming.age_report_schedule_name(s), group_name=self.group_name,
            description="Publish SecretAgeDays for every managed secret of the environment",
            schedule_expression=rp.AGE_REPORT_SCHEDULE, flexible_time_window={"mode": "OFF"},
            target={"arn": fn.arn, "role_arn": self.scheduler_role_arn, "input": "{}"}, opts=_child(self, p),
        )
        _alarm(rotation_errors_alarm(s, "rotation-age", fn_name), args.topic_arn, tags, _child(self, p))


# ---------------------------------------------------------------- AgentFleet extension


@dataclass
class _State:
    """What the hooks share across agents (kept in `fleet.extras`)."""

    agents: list[tuple[ResolvedAgent, "AgentAccess"]] = field(default_factory=list)
    environment: "RotationEnvironment | RotationEnvironmentRef | None" = None
    functions: dict[str, pulumi.Output[str]] = field(default_factory=dict)


def _state(fleet: "AgentFleet") -> _State:
    state = fleet.extras.get(STATE_KEY)
    if not isinstance(state, _State):
        state = _State()
        fleet.extras[STATE_KEY] = state
    return state


@dataclass(frozen=True)
class RotationEnvironmentRef:
    """An agent shard's view of the environment stack's RotationEnvironment (`agentfleet:shard: agents`)."""

    group_name: pulumi.Output[str]
    scheduler_role_arn: pulumi.Output[str]

    def add_age_reporter(self) -> None:
        """The environment stack declares the age reporter (it sees every agent): nothing here."""


def _environment(fleet: "AgentFleet") -> "RotationEnvironment | RotationEnvironmentRef":
    state = _state(fleet)
    if isinstance(fleet.environment, EnvironmentReference):
        if state.environment is None:
            state.environment = RotationEnvironmentRef(fleet.environment.schedule_group, fleet.environment.scheduler_role_arn)
        return state.environment
    if state.environment is None:
        path, code_hash = lambda_archive()
        state.environment = RotationEnvironment(
            fleet.child(naming.logical_agent(naming.SHARED_AGENT_TAG, "rotation")),
            RotationEnvironmentArgs(
                settings=fleet.settings,
                topic_arn=monitoring.alerts_for(fleet).topic_arn, archive_path=path, code_hash=code_hash,
                provider=fleet.providers.aws,
            ),
            opts=pulumi.ResourceOptions(parent=fleet),
        )
        if fleet.settings.shard == "environment":
            fleet.extra_outputs[ENVIRONMENT_OUTPUTS["schedule_group"]] = state.environment.group_name
            fleet.extra_outputs[ENVIRONMENT_OUTPUTS["scheduler_role_arn"]] = state.environment.scheduler_role_arn
    return state.environment


def vault_connection(s: StackSettings, providers: ProviderSet) -> dict[str, str]:
    """VAULT_ADDR (and namespace / server ID) of the rotation functions: the settings' override or the
    Vault provider's address (read once by `providers_from_config`, never from config here)."""
    address = s.rotation_vault_address or providers.vault_address
    env = rp.vault_connection_environment(address, providers.vault_namespace, s.vault_iam_server_id)
    if "VAULT_ADDR" not in env:
        pulumi.log.warn(
            "rotation: credentials stored in Vault are rotated, but no usable Vault address is configured"
            " (`agentfleet:rotationVaultAddress` or `vault:address`, https:// or http to loopback): their Vault"
            " copies will not be updated and old keys will not be revoked until it is set (alarm: rotation-revoke-failures)."
        )
    return env


def rotation_args(
    s: StackSettings, spec: rp.RotatorSpec, targets: Sequence[RotationTarget], kms_key_arn: pulumi.Input[str],
    env: "RotationEnvironment | RotationEnvironmentRef", topic_arn: pulumi.Input[str] | None, providers: ProviderSet,
    vault_auth_backend: pulumi.Input[str] | None = None,
) -> AgentRotationArgs:
    provider, vault_provider = providers.aws, providers.vault
    path, code_hash = lambda_archive()
    admin = rp.provider_admin_policy(s, spec)
    vault_policy = rp.rotation_vault_policy(s, spec)
    vault_args: RotationVaultArgs | None = None
    environment = dict(spec.environment)
    if vault_policy is not None:
        if vault_provider is None:
            raise ValueError(f"rotation function {spec.function_name} writes Vault copies: pass the Vault provider")
        if vault_auth_backend is None:
            pulumi.log.warn(
                f"rotation: {spec.function_name} rotates credentials stored in Vault, but the stack has no Vault AWS auth"
                " (agentfleet:vaultAwsAuth: false), so it cannot log in: their Vault copies will not be updated and"
                " their old keys will not be revoked (alarm: rotation-revoke-failures)."
            )
        vault_args = RotationVaultArgs(provider=vault_provider, name=spec.vault_name, policy=vault_policy,
                                       auth_backend=vault_auth_backend)
        environment = dict(sorted({**environment, **vault_connection(s, providers)}.items()))
    return AgentRotationArgs(
        function_name=spec.function_name, role_name=spec.role_name, log_group_name=spec.log_group_name,
        trust_policy=iam.to_json(rp.lambda_trust_policy()),
        role_policy=pulumi.Output.from_input(kms_key_arn).apply(lambda arn: iam.to_json(rp.rotation_role_policy(s, spec, arn))),
        admin_policy=iam.to_json(admin) if admin is not None else None,
        environment=environment, sweep_inputs=spec.sweep_inputs, targets=targets,
        schedule_group=env.group_name, scheduler_role_arn=env.scheduler_role_arn,
        invoke_source_arn=rp.invoke_source_arn(s, spec), account_id=s.aws_account_id,
        archive_path=path, code_hash=code_hash,
        alarms=[rotation_errors_alarm(s, spec.owner, spec.function_name)] if s.alarms else [],
        topic_arn=topic_arn, tags=spec.tags, provider=provider, vault=vault_args,
    )


def _targets(spec: rp.RotatorSpec, accesses: Mapping[str, "AgentAccess"], scope: str) -> list[RotationTarget]:
    return [RotationTarget(r.agent, r.credential, accesses[r.agent].secrets[r.credential].arn, r.days, f"{scope}{r.agent}")
            for r in spec.secrets]


def extend_agent(ctx: "AgentContext") -> None:
    s, agent, fleet = ctx.settings, ctx.agent, ctx.fleet
    state = _state(fleet)
    state.agents.append((agent, ctx.access))
    reminders = rp.reminders(s, agent)
    spec = rp.agent_rotator(s, agent) if s.rotation_isolation == "per-agent" else None
    if not reminders and spec is None:
        return
    topic_arn = monitoring.alerts_for(fleet).topic_arn
    env = _environment(fleet)
    if spec is not None:
        rot = AgentRotation(
            naming.logical_agent(ctx.name, "rotation"),
            rotation_args(s, spec, _targets(spec, {agent.name: ctx.access}, fleet.scope), ctx.environment.key_arn, env, topic_arn,
                          ctx.providers, ctx.environment.aws_auth_path),
            opts=pulumi.ResourceOptions(parent=ctx.access),
        )
        state.functions[agent.name] = rot.function_arn
    if reminders:
        today = deploy_date()
        alarms = [a for r in reminders if (a := rp.age_alarm(s, r)) is not None] if s.alarms else []
        RotationReminders(
            naming.logical_agent(ctx.name, "reminders"),
            RotationRemindersArgs(
                reminders=reminders,
                start_dates={r.credential: f"{rp.reminder_start(r, today).isoformat()}T09:00:00Z" for r in reminders},
                group_name=env.group_name, scheduler_role_arn=env.scheduler_role_arn, topic_arn=topic_arn,
                alarms=alarms, tags=naming.tags(s, agent=agent.name, owner=agent.owner), provider=ctx.providers.aws,
                scope=fleet.scope,
            ),
            opts=pulumi.ResourceOptions(parent=ctx.access),
        )


def extend_fleet(fleet: "AgentFleet") -> None:
    s, state = fleet.settings, _state(fleet)
    agents = [a for a, _ in state.agents]
    if s.shard == "environment":
        # No agent here, but the shards' agents use the rotation environment this stack owns.
        agents = list(fleet.model.agents)
        if any(rp.reminders(s, a) or rp.agent_rotator(s, a) for a in agents):
            _environment(fleet)
    rp.check_names(s, Fleet(source="<program>", classifications={}, agents=tuple(agents)))
    if s.rotation_isolation == "shared":
        accesses = {a.name: acc for a, acc in state.agents}
        specs = rp.shared_rotators(s, agents)
        topic_arn = monitoring.alerts_for(fleet).topic_arn if specs else None
        for spec in specs:
            rot = AgentRotation(
                fleet.child(naming.logical_agent(naming.SHARED_AGENT_TAG, f"rotation-{spec.owner}")),
                rotation_args(s, spec, _targets(spec, accesses, fleet.scope), fleet.kms_key_arn, _environment(fleet), topic_arn,
                              fleet.providers, fleet.environment.aws_auth_path),
                opts=pulumi.ResourceOptions(parent=fleet),
            )
            state.functions[spec.owner] = rot.function_arn
    if state.environment is not None and rp.needs_age_reporter(s, agents):
        state.environment.add_age_reporter()
    if state.functions:
        fleet.extra_outputs["rotationFunctions"] = pulumi.Output.all(**state.functions)
