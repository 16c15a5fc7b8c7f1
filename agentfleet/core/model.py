"""The fleet model: what `agents.yaml` may say, as frozen pydantic objects.

Only `agentfleet.core.loader.load_fleet` builds these from a file, so a value of type `Fleet` has
passed every check (schema, cross-field rules, secret-shaped strings). Nothing here imports
Pulumi: the CLI, the policy pack and the builders use the model without the engine.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

FORMAT_VERSION = 1

# Built-in classes and their maximum rotation age in days. A fleet file may add classes and
# tighten these, never loosen them.
BUILTIN_CLASSIFICATIONS: dict[str, int] = {
    "internal": 90,
    "confidential": 90,
    "customer-data": 30,
    "payments": 30,
}

# Rotation strategies. `manual`: a human mints the key, the stack reminds them. `generated`:
# the project owns the value (random). Every other name is a provider adapter implemented in
# the `rotation` package (it mints and revokes keys through the provider's admin API).
ROTATION_STRATEGIES: tuple[str, ...] = ("manual", "generated", "openai")
PROVIDER_ADAPTERS: tuple[str, ...] = tuple(s for s in ROTATION_STRATEGIES if s not in ("manual", "generated"))

NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])$")
NAME_RULE = "2-40 characters of a-z, 0-9 and '-', starting and ending with a letter or digit"

Name = Annotated[str, StringConstraints(pattern=NAME_RE.pattern)]
Days = Annotated[int, Field(ge=1, le=1000)]


# Where a credential lives: AWS Secrets Manager or a Vault/OpenBao KV v2 mount.
Store = Literal["aws", "vault"]
STORES: tuple[Store, ...] = ("aws", "vault")
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
    strategy: str = "manual"
    days: Days | None = None
    """Maximum age in days; defaults to the classification's maximum and may not exceed it."""


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
    description: str | None = None
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


class Agent(_Strict):
    name: Name
    owner: str | None = None
    description: str | None = None
    runtime: Runtime
    paused: bool = False
    credentials: tuple[Credential, ...] = Field(min_length=1)


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
    rotation_days: int
    stores: tuple[Store, ...]
    description: str | None = None
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


class Fleet(BaseModel):
    """A validated fleet. Agents keep file order; builders sort where order must not matter."""

    model_config = ConfigDict(frozen=True)

    source: str
    classifications: dict[str, int]
    agents: tuple[ResolvedAgent, ...]

    def agent(self, name: str) -> ResolvedAgent:
        for a in self.agents:
            if a.name == name:
                return a
        raise KeyError(name)
