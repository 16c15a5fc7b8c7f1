"""The fleet model: what `agents.yaml` may say, as frozen pydantic objects.

Only `agentfleet.core.loader.load_fleet` builds these from a file, so a value of type `Fleet` has
passed every check (schema, cross-field rules, secret-shaped strings). Nothing here imports
Pulumi: the CLI, the policy pack and the builders use the model without the engine.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

FORMAT_VERSION = 1

# Built-in classes and their maximum rotation age in days. A fleet file may add classes and
# tighten these, never loosen them.
BUILTIN_CLASSIFICATIONS: dict[str, int] = {
    "internal": 90,
    "confidential": 90,
    "customer-data": 30,
    "payments": 30,
}

class Strategy(StrEnum):
    """Rotation strategies: the one list. Everything else about a strategy is in STRATEGIES."""

    MANUAL = "manual"
    GENERATED = "generated"
    OPENAI = "openai"
    SENDGRID = "sendgrid"
    DATADOG = "datadog"
    POSTGRES = "postgres-alternating"

    def __repr__(self) -> str:
        """`'openai'`, as a plain string prints in messages (`{strategy!r}`)."""
        return repr(self.value)


Issuer = Literal["human", "project", "provider"]


@dataclass(frozen=True)
class StrategySpec:
    """What a strategy is: who issues the value, whether a function rotates it, which services it serves."""

    issuer: Issuer
    """`human` mints it at the provider (reminders), `project` generates it, `provider` mints it through its admin API."""
    automated: bool
    """A rotation function rotates it (in Secrets Manager); otherwise a reminder schedule."""
    services: tuple[str, ...] | None
    """The `service:` values it can rotate; None = any service."""
    admin_secret: bool
    """The function reads an environment-level admin/master secret (`naming.provider_admin_secret_name`)."""
    fields: str | None = None
    """The field preset its values must have (`FIELD_PRESETS`), or None for a single `api_key`."""
    words: str = ""


STRATEGIES: dict[Strategy, StrategySpec] = {
    Strategy.MANUAL: StrategySpec("human", False, None, False,
                                  words="a human mints the key and writes it to its store; the stack only reminds (default)"),
    Strategy.GENERATED: StrategySpec("project", True, None, False,
                                     words="the project owns the value and generates a random one on each rotation"),
    Strategy.OPENAI: StrategySpec("provider", True, ("openai",), True,
                                  words="OpenAI Admin API: a new project service-account key, the old one deleted"),
    Strategy.SENDGRID: StrategySpec("provider", True, ("sendgrid",), True,
                                    words="SendGrid API keys API: a new key with the old key's scopes, the old one deleted"),
    Strategy.DATADOG: StrategySpec("provider", True, ("datadog",), True,
                                   words="Datadog API keys API: a new API key, the old one deleted"),
    Strategy.POSTGRES: StrategySpec("project", True, ("postgres", "postgresql"), True, fields="postgres",
                                    words="PostgreSQL alternating users: a new password on the inactive one of two users"),
}
ROTATION_STRATEGIES: tuple[str, ...] = tuple(s.value for s in Strategy)
AUTOMATED_STRATEGIES: tuple[str, ...] = tuple(s.value for s, spec in STRATEGIES.items() if spec.automated)
PROVIDER_ADAPTERS: tuple[str, ...] = tuple(s.value for s, spec in STRATEGIES.items() if spec.admin_secret)
"""Strategies whose function reads an admin (or master) secret of the environment."""

# Services whose credentials the provider issues (its own dashboard or API): a `generated` value
# would be a random string the provider never accepts. Extend with care: this is a refusal list.
PROVIDER_ISSUED_SERVICES: frozenset[str] = frozenset({
    "anthropic", "datadog", "github", "openai", "salesforce", "sendgrid", "serpapi", "slack", "stripe", "twilio",
    "zendesk",
}) | frozenset(svc for spec in STRATEGIES.values() if spec.issuer == "provider" for svc in spec.services or ())

# Structured credentials: named field sets of (name, sensitive). Non-sensitive fields are identifiers
# (client_id, host, username): shown in plans and logs, never masked.
FIELD_PRESETS: dict[str, tuple[tuple[str, bool], ...]] = {
    "api_key": (("api_key", True),),
    "oauth_client": (("client_id", False), ("client_secret", True)),
    "postgres": (("host", False), ("port", False), ("dbname", False), ("username", False), ("password", True)),
}
FIELD_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


_SPEC_OF_VALUE: dict[str, StrategySpec] = {s.value: spec for s, spec in STRATEGIES.items()}
"""STRATEGIES by plain string (an enum lookup `Strategy(name)` costs a microsecond, per credential, per use)."""


def strategy_spec(name: str) -> StrategySpec:
    spec = _SPEC_OF_VALUE.get(name)
    return spec if spec is not None else STRATEGIES[Strategy(name)]  # unknown: Strategy's ValueError


def is_automated(strategy: str) -> bool:
    return strategy in AUTOMATED_STRATEGIES


NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])$")
NAME_RULE = "2-40 characters of a-z, 0-9 and '-', starting and ending with a letter or digit"

Name = Annotated[str, StringConstraints(pattern=NAME_RE.pattern)]
ENVIRONMENT_RE = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
EnvironmentName = Annotated[str, StringConstraints(pattern=ENVIRONMENT_RE.pattern)]
"""An environment (`agentfleet:environment` of a stack, e.g. dev, prod)."""
Days = Annotated[int, Field(ge=1, le=1000)]


# Where a credential lives: AWS Secrets Manager, a Vault/OpenBao KV v2 mount, or an SSM Parameter
# Store SecureString parameter. `ssm` is opt-in (not in the default stores): it has no rotation
# protocol, so only `manual` credentials may live there (a reminder tells a human to rotate).
Store = Literal["aws", "vault", "ssm"]
STORES: tuple[Store, ...] = ("aws", "vault")
ALL_STORES: tuple[Store, ...] = ("aws", "vault", "ssm")
CredentialType = Literal["api_key", "oauth_token", "secret_key", "token", "password", "workload_identity"]
KEYLESS_TYPE = "workload_identity"
"""A credential with no stored value: the agent exchanges a short-lived identity token of its
AWS role (`sts:GetWebIdentityToken`) for the service's own short-lived access token."""
KEYLESS_STRATEGY = "keyless"
"""Resolved rotation strategy of a keyless credential: nothing is stored, so nothing rotates."""


class FederatedService(BaseModel):
    """A service that accepts workload identity federation, and how (its documented contract)."""

    model_config = ConfigDict(frozen=True)

    default_audience: str
    """`aud` the service expects in the subject token unless the fleet file names another."""
    token_url: str
    """Where the agent exchanges the subject token for the service's access token."""


FEDERATED_SERVICES: dict[str, FederatedService] = {
    # developers.openai.com/api/reference/workload-identity-federation (RFC 8693 token exchange)
    "openai": FederatedService(default_audience="https://api.openai.com/v1", token_url="https://auth.openai.com/oauth/token"),
}
"""Services a `workload_identity` credential may name; validation refuses every other one."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Rotation(_Strict):
    strategy: Strategy = Strategy.MANUAL
    days: Days | None = None
    """Maximum age in days; defaults to the classification's maximum and may not exceed it."""


class CredentialField(_Strict):
    name: Annotated[str, StringConstraints(pattern=FIELD_NAME_RE.pattern)]
    sensitive: bool = True
    """False for identifiers (client_id, host, username): shown in plans and logs, never masked."""


class Federation(_Strict):
    audience: Annotated[str, StringConstraints(pattern=r"^[!-~]{1,1000}$")] | None = None
    """`aud` of the agent's identity tokens (default: the service's documented audience)."""


class Credential(_Strict):
    name: Name
    service: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]
    """The external service it authenticates to (openai, stripe, salesforce ...)."""
    type: CredentialType
    classification: str = "internal"
    rotation: Rotation = Rotation()
    stores: tuple[Store, ...] | None = Field(default=None, min_length=1)
    fields: str | tuple[CredentialField, ...] | None = None
    """The value's fields: a preset (`oauth_client`, `postgres`, `api_key`) or a list; default: one `api_key`."""
    description: str | None = None
    only_in: tuple[EnvironmentName, ...] | None = Field(default=None, min_length=1)
    """The environments this credential exists in (default: every environment of its agent)."""
    federation: Federation | None = None
    """Only for `type: workload_identity`: the audience the agent may mint identity tokens for."""



class GithubOidc(_Strict):
    repository: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")]
    ref: Annotated[str, StringConstraints(pattern=r"^refs/(heads|tags)/[A-Za-z0-9_./-]+$")] | None = None
    environment: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$")] | None = None

    @model_validator(mode="after")
    def _one_selector(self) -> "GithubOidc":
        if (self.ref is None) == (self.environment is None):
            raise ValueError(
                "github_oidc needs exactly one of `ref` (e.g. refs/heads/main) or `environment`:"
                " trusting every ref of a repository lets any branch assume the role"
            )
        return self


ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$")
SERVICE_RE = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)*\.amazonaws\.com(\.cn)?$")
SOURCE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{12}:[A-Za-z0-9+=,.@_/:*-]+$")
EKS_POD_IDENTITY_SERVICE = "pods.eks.amazonaws.com"

# Kubernetes names: namespaces are DNS labels, service accounts DNS subdomains (no wildcards).
K8sNamespace = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
K8sServiceAccount = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")]


class EksPodIdentity(_Strict):
    """EKS Pod Identity: one service account of one namespace of one cluster of the stack's account."""

    cluster: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")]
    namespace: K8sNamespace
    service_account: K8sServiceAccount


class Irsa(_Strict):
    """IAM roles for service accounts: the cluster's OIDC issuer (host/path, no `https://`)."""

    oidc_issuer: Annotated[str, StringConstraints(pattern=r"^[a-z0-9.-]+\.[a-z]{2,}(/[A-Za-z0-9._-]+)*$")]
    namespace: K8sNamespace
    service_account: K8sServiceAccount


RuntimeKind = Literal["service", "role_arns", "github_oidc", "eks_pod_identity", "irsa"]
RUNTIME_KINDS: tuple[RuntimeKind, ...] = ("service", "role_arns", "github_oidc", "eks_pod_identity", "irsa")


class Runtime(_Strict):
    """Who may assume the agent's role: exactly one kind (a plain model: environments may override it)."""

    service: str | None = None
    source_arn: str | None = None
    """Only with `service`: the function/task (ARN, `*` allowed after the account) that may make
    the service assume the role (`aws:SourceArn`); `aws:SourceAccount` is always pinned."""
    role_arns: tuple[str, ...] | None = Field(default=None, min_length=1)
    github_oidc: GithubOidc | None = None
    eks_pod_identity: EksPodIdentity | None = None
    irsa: Irsa | None = None

    @property
    def kind(self) -> RuntimeKind:
        for k in RUNTIME_KINDS:
            if getattr(self, k) is not None:
                return k
        raise ValueError("runtime declares no kind")


VPC_ENDPOINT_RE = re.compile(r"^vpce-[0-9a-f]{8}(?:[0-9a-f]{9})?$")
VPC_RE = re.compile(r"^vpc-[0-9a-f]{8}(?:[0-9a-f]{9})?$")
VpcEndpointId = Annotated[str, StringConstraints(pattern=VPC_ENDPOINT_RE.pattern)]
VpcId = Annotated[str, StringConstraints(pattern=VPC_RE.pattern)]

# Services whose compute can run inside a customer VPC. Any other service principal calls AWS
# from AWS's own network, so no scope of yours can admit it.
VPC_CAPABLE_SERVICES: tuple[str, ...] = (
    "lambda.amazonaws.com", "ecs-tasks.amazonaws.com", "ec2.amazonaws.com", "pods.eks.amazonaws.com",
    "codebuild.amazonaws.com", "batch.amazonaws.com", "sagemaker.amazonaws.com",
)
# Of those, the ones that always run in a VPC (ECS awsvpc/Fargate tasks, EC2 instances, EKS pods,
# Batch compute environments). Lambda, CodeBuild and SageMaker run outside any VPC unless
# configured otherwise, so a private scope needs `runtime_in_vpc: true` as the owner's statement.
ALWAYS_IN_VPC_SERVICES: tuple[str, ...] = (
    "ecs-tasks.amazonaws.com", "ec2.amazonaws.com", "pods.eks.amazonaws.com", "batch.amazonaws.com",
)


def parse_cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A CIDR as written (`203.0.113.0/24`); host bits set or a missing prefix length is an error."""
    if "/" not in text:
        raise ValueError(f"{text!r} is not a CIDR: add the prefix length, e.g. {text}/32")
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid CIDR ({exc})") from None


def _cidr(text: str) -> str:
    net = parse_cidr(text)
    if net.prefixlen == 0:
        raise ValueError(f"{text!r} is the whole internet; name your ranges")
    return text


Cidr = Annotated[str, AfterValidator(_cidr)]


class Network(_Strict):
    """Where the agent's credentials may be read from. A read must match one of the listed
    endpoints, VPCs or ranges; every other read is denied (IAM policy and resource policy)."""

    vpc_endpoints: tuple[VpcEndpointId, ...] = ()
    """Interface VPC endpoints (`vpce-...`) the reads must come through (`aws:SourceVpce`)."""
    vpcs: tuple[VpcId, ...] = ()
    """VPCs (`vpc-...`) the reads may come from, through any endpoint there (`aws:SourceVpc`)."""
    source_cidrs: tuple[Cidr, ...] = ()
    """Public ranges the reads may come from, e.g. CI runners' fixed egress (`aws:SourceIp`)."""
    vault_cidrs: tuple[Cidr, ...] | None = None
    """Ranges Vault sees the agent's logins from (`token_bound_cidrs`); default `source_cidrs`."""
    runtime_in_vpc: bool | None = None
    """Does the agent's runtime run inside one of your VPCs? Default: inferred from `runtime`
    (ECS tasks, EC2, EKS pods, Batch and role_arns: yes; Lambda, CodeBuild, SageMaker, GitHub-hosted
    runners: no, say `true` once it is attached to the VPC)."""

    @model_validator(mode="after")
    def _well_formed(self) -> "Network":
        if not (self.vpc_endpoints or self.vpcs or self.source_cidrs):
            raise ValueError(
                "declare at least one of vpc_endpoints, vpcs, source_cidrs"
                " (or remove `network` to allow reads from anywhere)"
            )
        return self

    @property
    def private(self) -> bool:
        """Scoped to VPC endpoints or VPCs (reads through AWS's private network)."""
        return bool(self.vpc_endpoints or self.vpcs)

    def words(self) -> str:
        """The scope in one line, for plan/audit/diff (sorted: file order changes nothing)."""
        parts = [f"via {', '.join(sorted(self.vpc_endpoints))}" if self.vpc_endpoints else "",
                 f"from {', '.join(sorted(self.vpcs))}" if self.vpcs else "",
                 f"from {', '.join(sorted(self.source_cidrs))}" if self.source_cidrs else ""]
        return " or ".join(p for p in parts if p)


def runtime_in_vpc(runtime: Runtime, network: Network) -> bool:
    """Whether the runtime's AWS calls can carry a VPC source: the declared value, else inferred."""
    if network.runtime_in_vpc is not None:
        return network.runtime_in_vpc
    if runtime.kind == "github_oidc":
        return False  # GitHub-hosted runners run in GitHub's network
    if runtime.kind == "service":
        return runtime.service in ALWAYS_IN_VPC_SERVICES
    return True  # role_arns: whatever runs them; the owner knows, and may say `runtime_in_vpc: false`


def network_lockout(runtime: Runtime, network: Network) -> str | None:
    """Why this scope would deny the agent's own runtime every read (with the fix), or None."""
    if runtime.kind == "service" and runtime.service not in VPC_CAPABLE_SERVICES:
        return (
            f"network: runtime service {runtime.service} calls AWS from AWS's own network, so no"
            " endpoint, VPC or range of yours matches its reads; remove `network`, or run the agent"
            f" on a VPC-capable service ({', '.join(VPC_CAPABLE_SERVICES)})"
        )
    if network.private and not network.source_cidrs and not runtime_in_vpc(runtime, network):
        if runtime.kind == "github_oidc":
            where = "GitHub-hosted runners run outside your VPCs"
        elif runtime.kind == "service" and network.runtime_in_vpc is None:
            where = f"{runtime.service} runs outside any VPC unless attached to one (assumed here)"
        else:
            where = "the runtime runs outside your VPCs (`runtime_in_vpc: false`)"
        return (
            f"network: {where}, so a scope of only vpc_endpoints/vpcs denies"
            " every read; add `source_cidrs` with the runtime's fixed egress ranges, or run it inside"
            " the VPC (Lambda: attach a VpcConfig; CI: self-hosted runners trusted via runtime.role_arns)"
            " and set `runtime_in_vpc: true`"
        )
    return None


class Agent(_Strict):
    name: Name
    owner: str | None = None
    description: str | None = None
    runtime: Runtime
    paused: bool = False
    network: Network | None = None
    """Where the agent's credentials may be read from; None = anywhere (the IAM role is the only bound)."""
    credentials: tuple[Credential, ...] = Field(min_length=1)
    only_in: tuple[EnvironmentName, ...] | None = Field(default=None, min_length=1)
    """The environments this agent exists in (default: every environment)."""
    renamed_from: Name | None = None
    """The agent's previous name, for one deployment: its Pulumi resources are aliased (no
    remove + add), the old secrets are kept for the value copy (docs/review.md#renaming-an-agent)."""
    environments: dict[EnvironmentName, dict[str, Any]] = {}
    """Per-environment overrides, e.g. `{prod: {runtime: ..., credentials: {key: {rotation: {days: 30}}}}}`.
    Any agent field may be overridden (the value replaces the base one) except `name`,
    `only_in` and `environments`; `credentials` is a mapping credential name -> overridden
    credential fields, where `rotation` merges key by key. Overrides may tighten rotation,
    never loosen it (checked by the loader)."""

    @model_validator(mode="after")
    def _network_admits_runtime(self) -> "Agent":
        if self.network is not None:
            why = network_lockout(self.runtime, self.network)
            if why:
                raise ValueError(why)
        return self


NOT_OVERRIDABLE = frozenset({"name", "only_in", "environments", "renamed_from"})
"""Agent and credential fields an environment cannot override (identity and presence)."""


class Defaults(_Strict):
    owner: str | None = None
    stores: tuple[Store, ...] = Field(default=STORES, min_length=1)


class ClassificationSpec(_Strict):
    max_rotation_days: Days


class FleetFile(_Strict):
    """The file exactly as written (before defaults are applied)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    schema_hint: str | None = Field(default=None, alias="$schema")
    version: Literal[1]
    defaults: Defaults = Defaults()
    classifications: dict[Name, ClassificationSpec] = {}
    agents: tuple[Agent, ...] = Field(min_length=1)


# ---- the resolved model: defaults applied, every credential knows its class and stores ----


class ResolvedCredential(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    service: str
    type: CredentialType
    classification: str
    max_rotation_days: int
    rotation_strategy: str
    """A `Strategy` member, or `KEYLESS_STRATEGY` for a keyless credential (nothing rotates)."""
    rotation_days: int
    stores: tuple[Store, ...]
    description: str | None = None
    fields: tuple[tuple[str, bool], ...] = FIELD_PRESETS["api_key"]
    """(name, secret) of each field of the stored JSON value."""

    @property
    def structured(self) -> bool:
        return self.fields != FIELD_PRESETS["api_key"]

    audience: str | None = None
    """Keyless (`workload_identity`) credentials: the identity-token audience; None otherwise."""

    @property
    def keyless(self) -> bool:
        return self.type == KEYLESS_TYPE


class ResolvedAgent(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    owner: str
    description: str | None
    runtime: Runtime
    paused: bool
    credentials: tuple[ResolvedCredential, ...]
    renamed_from: str | None = None
    network: Network | None = None


class Fleet(BaseModel):
    """A validated fleet. Agents keep file order; builders sort where order must not matter."""

    model_config = ConfigDict(frozen=True)

    source: str
    classifications: dict[str, int]
    agents: tuple[ResolvedAgent, ...]
    lines: dict[str, int] = {}
    """Fleet-file line of each agent (`name`), credential (`agent/credential`) and runtime
    (`agent#runtime`: the override's line when an environment replaced it), for messages."""
    environment: str | None = None
    """The environment the fleet was resolved for (None: the file's base, every agent)."""
    environments: tuple[str, ...] = ()
    """Every environment the file names (in `only_in` or `environments:`)."""

    def __eq__(self, other: object) -> bool:
        """Where a fleet was written (`lines`) is not what it is: a fleet built in code equals the
        same fleet loaded from a file."""
        if not isinstance(other, Fleet):
            return NotImplemented
        return self.model_dump(exclude={"lines"}) == other.model_dump(exclude={"lines"})

    def __hash__(self) -> int:
        return hash((self.source, self.environment, tuple(a.name for a in self.agents)))

    def agent(self, name: str) -> ResolvedAgent:
        for a in self.agents:
            if a.name == name:
                return a
        raise KeyError(name)
