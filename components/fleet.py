"""`AgentFleet`: the top component of a stack — the environment's shared resources plus one
`AgentAccess` per agent.

This is the only component that sees the fleet model and the stack settings; it calls the pure
builders (naming, plan, iam) and hands plain values to its children.

Extending (rotation, monitoring ...): pass extensions in `AgentFleetArgs.extensions` (default
`DEFAULT_EXTENSIONS`: monitoring and rotation). An extension is a module or object that may define
    extend_environment(fleet: AgentFleet) -> None  # once, after the shared resources, before any
                                                   # agent (alert topic, shared rotators ...)
    extend_agent(ctx: AgentContext) -> None        # per agent, before its AgentAccess registers
                                                   # outputs; parent new resources to ctx.access
    extend_fleet(fleet: AgentFleet) -> None        # once, after all agents
Parent environment-wide resources to `fleet`; pass `provider=` from `ctx.providers` /
`fleet.providers` to every resource; share state between hooks in `fleet.extras`; anything put
in `fleet.extra_outputs` becomes a stack output. Name children with `fleet.child(...)` /
`ctx.name`, so several fleets in one program never share a logical name (`naming.fleet_scope`).
"""

from __future__ import annotations

import dataclasses
import importlib
import weakref
from dataclasses import dataclass
from typing import Any, Sequence

import pulumi

from agentfleet.core import iam_documents as iam
from agentfleet.core import naming
from agentfleet.core import plan
from agentfleet.core import rotation_plan
from agentfleet.core import vault_logins
from agentfleet.core.policy_config import POLICY_CONFIG_PROP, policy_config, runtime_accounts
from agentfleet.components.agent_access import AgentAccess, AgentAccessArgs, SecretSpec
from agentfleet.components.environment import EnvironmentBase, EnvironmentBaseArgs, EnvironmentReference
from agentfleet.core import sharding
from agentfleet.core.model import Fleet, ResolvedAgent, ResolvedCredential
from agentfleet.components.providers import ProviderSet
from agentfleet.core.settings import StackSettings

TOKEN = "agentfleet:index:AgentFleet"


DEFAULT_EXTENSIONS: tuple[str, ...] = ("agentfleet.components.monitoring", "agentfleet.components.rotation_infra")
"""Extensions every fleet gets unless its args say otherwise (see the module docstring)."""


@dataclass(frozen=True)
class AgentFleetArgs:
    fleet: Fleet
    """The validated fleet (`load_fleet` from a file, or `build_fleet` from data built in code)."""
    settings: StackSettings
    """The stack's settings (`settings_from_config`, or `StackSettings(...)` built in code)."""
    providers: ProviderSet
    """Explicit providers (`providers_from_config`); passed to every resource."""
    extensions: Sequence[Any] | None = None
    """Extension modules or objects (or their import names); None = `DEFAULT_EXTENSIONS`, `()` = only
    the per-agent access."""


@dataclass(frozen=True)
class AgentContext:
    """What an extension gets for one agent."""

    fleet: "AgentFleet"
    settings: StackSettings
    agent: ResolvedAgent
    name: str
    """The agent's fleet-scoped logical name (its AgentAccess's name): prefix of every child's name."""
    access: AgentAccess
    environment: EnvironmentBase | EnvironmentReference
    providers: ProviderSet


def _secret_spec(s: StackSettings, agent: ResolvedAgent, cred: ResolvedCredential) -> SecretSpec:
    where = naming.credential_locations(s, agent.name, cred.name, cred.stores)
    in_aws = where.secret_name is not None
    return SecretSpec(
        credential=cred.name,
        description=f"{cred.service} {cred.type} of agent {agent.name} ({cred.classification})",
        tags=naming.tags(s, agent=agent.name, owner=agent.owner, classification=cred.classification,
                         extra=rotation_plan.vault_copy_tag(s, agent, cred)),
        generated=plan.has_generated_value(cred.rotation_strategy),
        aws_secret_name=where.secret_name,
        aws_secret_policy=iam.to_json(plan.secret_resource_policy(s, agent, cred)) if in_aws else None,
        vault_path=where.vault_path,
        ssm_parameter_name=where.ssm_parameter,
    )


def agent_access_args(
    s: StackSettings, agent: ResolvedAgent, env: EnvironmentBase | EnvironmentReference, providers: ProviderSet
) -> AgentAccessArgs:
    """Everything one AgentAccess needs, from the builders (pure apart from the key ARN output)."""
    # The policy's shape does not depend on the key ARN: decide "no statements" up front.
    empty = not plan.agent_iam_policy(s, agent, naming.kms_key_placeholder(s))["Statement"]
    inline: pulumi.Output[str] | None = None
    if not empty:
        inline = env.key_arn.apply(lambda arn: iam.to_json(plan.agent_iam_policy(s, agent, arn)))
    return AgentAccessArgs(
        agent=agent.name,
        role_name=naming.role_name(s, agent.name),
        trust_policy=iam.to_json(plan.trust_policy(s, agent)),
        max_session_seconds=s.max_session_seconds,
        inline_policy=inline,
        tags=naming.tags(s, agent=agent.name, owner=agent.owner),
        vault_policy_name=naming.vault_policy_name(s, agent.name),
        vault_policy=plan.vault_policy(s, agent),
        vault_auth_backend=env.aws_auth_path if s.vault_login == "aws" else None,
        vault_auth_role_name=naming.vault_auth_role_name(s, agent.name),
        vault_token_policies=plan.vault_token_policies(s, agent),
        vault_token_ttl_seconds=s.vault_token_ttl_seconds,
        vault_token_max_ttl_seconds=2 * s.vault_token_ttl_seconds,
        vault_mount=env.kv_mount,
        kms_key_arn=env.key_arn,
        recovery_window_days=s.recovery_window_days,
        protect=s.protect,
        providers=providers,
        secrets=tuple(_secret_spec(s, agent, c) for c in agent.credentials if not c.keyless),
        renamed_from=agent.renamed_from,
        vault_token_bound_cidrs=plan.vault_bound_cidrs(agent),
        **_runtime_args(s, agent, env),
    )


def _runtime_args(s: StackSettings, agent: ResolvedAgent, env: EnvironmentBase | EnvironmentReference) -> dict[str, Any]:
    """Where the agent runs: its Vault login (JWT/Kubernetes), Pod Identity, the OIDC provider its trust names."""
    login = vault_logins.vault_login(s, agent)
    backend: pulumi.Output[str] | None = None
    if login is not None and login.method == "jwt":
        backend = env.jwt_paths[login.backend_key]
    elif login is not None and login.method == "kubernetes":
        backend = env.kubernetes_paths[login.backend_key]
    eks = agent.runtime.eks_pod_identity
    host = plan.trust_provider_host(agent)
    return {
        "vault_login": login if backend is not None else None,
        "vault_login_backend": backend,
        "pod_identity": (eks.cluster, eks.namespace, eks.service_account) if eks else None,
        "role_depends_on": [env.oidc_providers[host]] if host in env.oidc_providers else [],
    }


# Physical names derive from (account, region, prefix, environment): two fleets with the same four
# would create the same roles, key alias and mount. Per program (root stack), the first one wins.
_ENVIRONMENTS: "weakref.WeakKeyDictionary[pulumi.Resource, dict[tuple[str, ...], str]]" = weakref.WeakKeyDictionary()


def _claim_environment(fleet: pulumi.Resource, name: str, s: StackSettings) -> None:
    root = pulumi.runtime.get_root_resource() or fleet
    key = (s.aws_account_id, s.aws_region, s.secret_prefix, s.environment)
    claimed = _ENVIRONMENTS.setdefault(root, {})
    if key in claimed:
        raise ValueError(
            f"AgentFleet {name!r} and {claimed[key]!r} would create the same AWS and Vault names"
            f" (account {s.aws_account_id}, region {s.aws_region}, secretPrefix {s.secret_prefix!r},"
            f" environment {s.environment!r}): give one of them another secret_prefix or environment"
        )
    claimed[key] = name


class AgentFleet(pulumi.ComponentResource):
    """The stack's whole per-agent credential layout."""

    fleet_name: str
    scope: str
    """Prefix of every child's logical name (`naming.fleet_scope`)."""

    environment: EnvironmentBase | EnvironmentReference
    """The shared resources (single stack, environment shard) or the environment stack's exports (agent shard)."""
    model: Fleet
    """The whole validated fleet (extensions read environment-wide facts off it; an environment
    shard decides the shared resources on every agent)."""
    agents: dict[str, AgentAccess]
    """Agent name -> its AgentAccess component (the agents this stack declares: `sharding.selects`)."""
    providers: ProviderSet
    settings: StackSettings
    kms_key_arn: pulumi.Output[str]
    kms_key_id: pulumi.Output[str]
    agent_outputs: pulumi.Output[dict[str, Any]]
    """Agent name -> {role_arn, secret_arns: {credential: arn}, vault_policy_name}."""
    extras: dict[str, Any]
    """Scratch space extensions share between their hooks (e.g. the alert topic)."""
    extra_outputs: dict[str, pulumi.Input[Any]]
    """Stack outputs added by extensions (exported by `__main__.py`)."""

    def child(self, name: str) -> str:
        """The logical name of a child of this fleet (unique across fleets of one program)."""
        return f"{self.scope}{name}"

    def __init__(self, name: str, args: AgentFleetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # The fleet's own classifications and the stack's policy config travel as the component's
        # inputs, so the policy pack knows rotation limits and the stack's names and account with
        # no policy config (agentfleet.policy.rotation, agentfleet.policy.layout.program_layout).
        declared = {
            "classifications": dict(sorted(args.fleet.classifications.items())),
            POLICY_CONFIG_PROP: policy_config(args.settings, args.fleet.classifications, runtime_accounts(args.fleet)),
        }
        super().__init__(
            TOKEN, name, declared,
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(providers=args.providers.as_list())),
        )
        s, fleet = args.settings, args.fleet
        plan.check_unique_names(s, fleet)
        _claim_environment(self, name, s)
        self.fleet_name, self.scope = name, naming.fleet_scope(name)
        self.settings, self.providers, self.model = s, args.providers, fleet
        self.extras, self.extra_outputs = {}, {}
        chosen = DEFAULT_EXTENSIONS if args.extensions is None else args.extensions
        extensions = [importlib.import_module(m) if isinstance(m, str) else m for m in chosen]

        if s.shard == "agents":
            assert s.environment_stack is not None  # StackSettings refuses an agent shard without one
            self.environment = EnvironmentReference(
                self.child(naming.ENVIRONMENT_REFERENCE_COMPONENT), s.environment_stack,
                aws_auth_enabled=s.vault_aws_auth, settings=s, fleet=fleet, opts=pulumi.ResourceOptions(parent=self),
            )
        else:
            self.environment = EnvironmentBase(
                self.child(naming.ENVIRONMENT_COMPONENT),
                EnvironmentBaseArgs.from_settings(s, args.providers, args.providers.aws_endpoints, child_prefix=self.scope,
                                                  fleet=fleet),
                opts=pulumi.ResourceOptions(parent=self),
            )
            if s.shard == "environment":  # what agent shards read (sharding.ENVIRONMENT_OUTPUTS)
                self.extra_outputs[sharding.ENVIRONMENT_OUTPUTS["key_id"]] = self.environment.key_id
        self.kms_key_arn, self.kms_key_id = self.environment.key_arn, self.environment.key_id
        for m in extensions:
            if hasattr(m, "extend_environment"):
                m.extend_environment(self)

        self.agents = {}
        hooks = [m.extend_agent for m in extensions if hasattr(m, "extend_agent")]
        for agent in sorted(sharding.declared_agents(s, fleet), key=lambda a: a.name):
            access_name = self.child(agent.name)

            def extend(access: AgentAccess, agent: ResolvedAgent = agent, access_name: str = access_name) -> None:
                ctx = AgentContext(self, s, agent, access_name, access, self.environment, self.providers)
                for hook in hooks:
                    hook(ctx)

            access_args = agent_access_args(s, agent, self.environment, args.providers)
            if agent.renamed_from:  # alias the old agent's (fleet-scoped) logical name
                access_args = dataclasses.replace(access_args, renamed_from=self.child(agent.renamed_from))
            self.agents[agent.name] = AgentAccess(
                access_name, access_args,
                opts=pulumi.ResourceOptions(parent=self), extend=extend if hooks else None,
            )
        for m in extensions:
            if hasattr(m, "extend_fleet"):
                m.extend_fleet(self)

        self.agent_outputs = pulumi.Output.all(**{
            n: pulumi.Output.all(
                role_arn=acc.role_arn, secret_arns=acc.secret_arns, vault_policy_name=acc.vault_policy_name,
            )
            for n, acc in self.agents.items()
        })
        self.register_outputs({
            "agents": self.agent_outputs, "kmsKeyArn": self.kms_key_arn,
            "kmsKeyAlias": self.environment.key_alias, "vaultMount": self.environment.kv_mount,
            **self.extra_outputs,
            # Also as outputs: the engine hands a component's state to the pack, inputs or outputs.
            **declared,
        })
