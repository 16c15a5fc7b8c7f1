"""The fleet model: what `agents.yaml` may say, as frozen pydantic objects.

Only `agentfleet.core.loader.load_fleet` builds these from a file, so a value of type `Fleet` has
passed every check (schema, cross-field rules, secret-shaped strings). Nothing here imports
Pulumi: the CLI, the policy pack and the builders use the model without the engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
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

class Strategy(StrEnum):
    """Rotation strategies: the one list. Everything else about a strategy is in STRATEGIES."""

    MANUAL = "manual"
    GENERATED = "generated"
    OPENAI = "openai"
    SENDGRID = "sendgrid"
    DATADOG = "datadog"
    POSTGRES = "postgres-alternating"


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


def strategy_spec(name: str) -> StrategySpec:
    return STRATEGIES[Strategy(name)]


def is_automated(strategy: str) -> bool:
    return strategy in AUTOMATED_STRATEGIES


NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])$")
NAME_RULE = "2-40 characters of a-z, 0-9 and '-', starting and ending with a letter or digit"

Name = Annotated[str, StringConstraints(pattern=NAME_RE.pattern)]
Days = Annotated[int, Field(ge=1, le=1000)]


# Where a credential lives: AWS Secrets Manager or a Vault/OpenBao KV v2 mount.
Store = Literal["aws", "vault"]
STORES: tuple[Store, ...] = ("aws", "vault")
CredentialType = Literal["api_key", "oauth_token", "secret_key", "token", "password"]


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


class Runtime(_Strict):
    """Who may assume the agent's role: exactly one kind."""

    service: str | None = None
    role_arns: tuple[str, ...] | None = Field(default=None, min_length=1)
    github_oidc: GithubOidc | None = None

    @property
    def kind(self) -> Literal["service", "role_arns", "github_oidc"]:
        if self.service is not None:
            return "service"
        if self.role_arns is not None:
            return "role_arns"
        return "github_oidc"


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
    rotation_strategy: Strategy
    rotation_days: int
    stores: tuple[Store, ...]
    description: str | None = None
    fields: tuple[tuple[str, bool], ...] = FIELD_PRESETS["api_key"]
    """(name, secret) of each field of the stored JSON value."""

    @property
    def structured(self) -> bool:
        return self.fields != FIELD_PRESETS["api_key"]


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
