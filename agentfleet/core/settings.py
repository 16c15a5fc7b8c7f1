"""Stack settings: the environment-level knobs from `Pulumi.<stack>.yaml`, validated once.

The same `settings_from_config` serves the Pulumi program (lookup = `pulumi.Config`) and the
offline CLI (lookup = the stack file read as YAML), so both see identical defaults and errors.
Stack files hold environment settings only; a plaintext secret there is refused.
"""

from __future__ import annotations

import ast
import inspect
import ipaddress
import json
import re
import textwrap
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from agentfleet.core.model import ROLE_ARN_RE, VPC_ENDPOINT_RE
from agentfleet.core.secretlike import looks_like_secret

TRUSTED_ACCOUNTS_KEY = "trustedAccounts"
PROJECT = "agentfleet"
"""Pulumi project name; also the namespace of the project's config keys (`agentfleet:...`)."""

# Config keys that would hold secrets: allowed only as `pulumi config set --secret` values.
SECRET_CONFIG_KEYS = ("vault:token", "aws:secretKey", "aws:accessKey", "aws:token")


class SettingsError(Exception):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


class StackSettings(BaseModel):
    """Environment settings. Field docs are the config reference (README: Stack settings)."""

    # The field docstrings document the keys (`settings_markdown`); they are read from the source
    # only when the docs are generated: pydantic's `use_attribute_docstrings` would walk every
    # loaded module's path through `inspect` at import, in every process (a tenth of a CLI verb).
    model_config = ConfigDict(frozen=True, extra="forbid")

    stack: str
    environment: str = Field(pattern=r"^[a-z][a-z0-9-]{0,19}$")
    """`agentfleet:environment`: part of every name and path (default: the stack name)."""
    aws_region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    """`aws:region` (required)."""
    aws_account_id: str = Field(pattern=r"^\d{12}$")
    """`agentfleet:awsAccountId`: the account; ARNs are computed from it, never looked up at run time."""
    secret_prefix: str = Field(default="agents", pattern=r"^[a-z][a-z0-9-]{0,19}$")
    """`agentfleet:secretPrefix`: first segment of every secret name and IAM role name."""
    vault_mount: str = Field(default="kv", pattern=r"^[a-z][a-z0-9_-]{0,39}$")
    """`agentfleet:vaultMount`: the KV v2 mount the agents' paths live under."""
    vault_mount_exists: bool = False
    """`agentfleet:vaultMountExists`: true = use an existing mount instead of creating it."""
    vault_aws_auth_path: str = Field(default="aws", pattern=r"^[a-z][a-z0-9_/-]{0,39}$")
    """`agentfleet:vaultAwsAuthPath`: where the Vault AWS auth method is mounted."""
    vault_aws_auth_exists: bool = False
    """`agentfleet:vaultAwsAuthExists`: true = reuse an existing AWS auth backend."""
    vault_aws_auth: bool = True
    """`agentfleet:vaultAwsAuth`: false = no AWS auth method or login roles (e.g. OpenBao 2.x,
    which ships without the AWS auth plugin); agents then get Vault tokens another way."""
    vault_token_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    """`agentfleet:vaultTokenTtlSeconds`: agents' Vault tokens are short-lived (max = 2x)."""
    recovery_window_days: int = 30
    """`agentfleet:recoveryWindowDays`: 7-30; 0 (immediate delete) must be set explicitly."""
    protect: bool = False
    """`agentfleet:protect`: protect secrets, KMS key and KV mount from `pulumi destroy`."""
    admin_principals: tuple[str, ...] = ()
    """`agentfleet:adminPrincipals`: role ARNs (break-glass, the deployer) that may still read."""
    trusted_accounts: tuple[str, ...] = ()
    """`agentfleet:trustedAccounts`: other AWS accounts whose roles may run agents or be admins; a
    principal in any other account (or partition) than the stack's is refused."""
    fleet_file: str = "agents.yaml"
    """`agentfleet:fleetFile`: the fleet file, relative to the project directory."""
    max_session_seconds: int = Field(default=3600, ge=3600, le=43200)
    """`agentfleet:maxSessionSeconds`: the agent roles' maximum session duration."""
    rotation_isolation: Literal["per-agent", "shared"] = "per-agent"
    """`agentfleet:rotationIsolation`: one rotation function per agent, or per strategy."""
    rotation_grace_hours: int = Field(default=24, ge=0, le=720)
    """`agentfleet:rotationGraceHours`: how long an old key keeps working after a rotation."""
    rotation_vault_address: str | None = None
    """`agentfleet:rotationVaultAddress`: Vault address for the rotation functions when it differs
    from `vault:address` (e.g. a private endpoint reachable from Lambda)."""
    vault_iam_server_id: str | None = None
    """`agentfleet:vaultIamServerId`: X-Vault-AWS-IAM-Server-ID value, if the AWS auth backend requires one."""
    usage_metrics: bool = True
    """`agentfleet:usageMetrics`: let each agent publish call counts to its own namespace."""
    alarms: bool = True
    """`agentfleet:alarms`: per-agent usage, AccessDenied, rotation and overdue alarms."""
    usage_alarm_multiplier: float = Field(default=4.0, gt=1.0, le=100.0)
    """`agentfleet:usageAlarmMultiplier`: alarm when 5-minute calls exceed N x the baseline."""
    usage_baseline_per_5min: int = Field(default=100, ge=1)
    """`agentfleet:usageBaselinePer5Min`: an agent's normal API calls per 5 minutes."""
    usage_baselines: dict[str, int] = {}
    """`agentfleet:usageBaselines`: per-agent overrides of the baseline, {agent: calls}."""
    access_denied_threshold: int = Field(default=5, ge=1)
    """`agentfleet:accessDeniedThreshold`: AccessDenied events per 5 minutes that alarm."""
    cloudtrail_log_group: str | None = None
    """`agentfleet:cloudtrailLogGroup`: an existing trail's log group (else a trail is created)."""
    alarm_subscriptions: tuple[dict[str, str], ...] = ()
    """`agentfleet:alarmSubscriptions`: [{protocol: email|https|lambda|sqs, endpoint: ...}]."""
    quotas: dict[str, int] = {}
    """`agentfleet:quotas`: the account's quota limits where they differ from AWS's defaults, {quota key: limit}
    (keys and defaults: docs/quotas.md); `validate --stack` and `plan` refuse a stack that exceeds one."""
    quotas_used_elsewhere: dict[str, int] = {}
    """`agentfleet:quotasUsedElsewhere`: what the account already uses outside this stack, {quota key: count}
    (e.g. roles of other stacks, filters already on an organisation trail's log group)."""
    shard: Literal["all", "environment", "agents"] = "all"
    """`agentfleet:shard`: `all` = one stack declares everything; `environment` = this stack declares only
    what the environment shares (KMS key, KV mount, auth backend, trail, topic, rotation environment) and
    exports it; `agents` = this stack declares only the selected agents, on the environment stack's exports."""
    environment_stack: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){0,2}$")
    """`agentfleet:environmentStack`: the environment stack agent shards reference (`org/project/stack` or
    `stack`), through `pulumi.StackReference`."""
    shard_agents: tuple[str, ...] = ()
    """`agentfleet:shardAgents`: agent shards: agent name patterns (`fnmatch`, e.g. `team-a-*`) this stack declares."""
    shard_owners: tuple[str, ...] = ()
    """`agentfleet:shardOwners`: agent shards: owners whose agents this stack declares."""
    monitoring_partitions: int = Field(default=1, ge=1, le=36)
    """`agentfleet:monitoringPartitions`: metric filters per trail signal, each counting the roles whose
    agent name starts with its share of [0-9a-z]; raise it when an environment has more than 1,000
    roles (CloudWatch may disable a filter with over 1,000 dimension values an hour)."""
    vault_login: Literal["aws", "jwt", "kubernetes"] = "aws"
    """`agentfleet:vaultLogin`: how agents log in to Vault: `aws` (IAM auth), `jwt` (each agent's
    runtime token: GitHub OIDC, its cluster's service-account token, or its AWS role's outbound
    identity token), `kubernetes` (Kubernetes auth for EKS agents, `jwt` for the others)."""
    vault_jwt_audience: str = Field(default="vault", pattern=r"^[!-~]{1,200}$")
    """`agentfleet:vaultJwtAudience`: the `aud` every Vault login token must carry."""
    aws_outbound_issuer: str | None = Field(default=None, pattern=r"^https://[!-~]+$")
    """`agentfleet:awsOutboundIssuer`: the account's outbound identity federation issuer URL when it
    is enabled outside the stack; unset = the stack enables it and uses its issuer."""
    github_oidc_provider_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$")
    """`agentfleet:githubOidcProviderArn`: an existing GitHub OIDC provider; unset = the stack creates one when an agent needs it."""
    irsa_oidc_provider_arns: dict[str, str] = {}
    """`agentfleet:irsaOidcProviderArns`: {issuer: existing provider ARN}; other IRSA issuers get a provider from the stack."""
    eks_oidc_issuers: dict[str, str] = {}
    """`agentfleet:eksOidcIssuers`: {cluster: issuer URL} of EKS Pod Identity clusters, for their agents' JWT logins."""
    vault_kubernetes_hosts: dict[str, str] = {}
    """`agentfleet:vaultKubernetesHosts`: {cluster or IRSA issuer: API server URL} for Kubernetes auth logins."""
    vault_kubernetes_ca_certs: dict[str, str] = {}
    """`agentfleet:vaultKubernetesCaCerts`: {cluster or IRSA issuer: PEM CA certificate} of API servers Vault reaches from outside the cluster."""
    federation_token_max_seconds: int = Field(default=300, ge=60, le=3600)
    """`agentfleet:federationTokenMaxSeconds`: longest identity token an agent may mint (`sts:DurationSeconds`)."""

    @field_validator("irsa_oidc_provider_arns")
    @classmethod
    def _irsa_arns(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [i for i, arn in v.items() if not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:oidc-provider/" + re.escape(i), arn)]
        if bad:
            raise ValueError(f"irsaOidcProviderArns maps each issuer to arn:<partition>:iam::<account>:oidc-provider/<issuer>; wrong for {bad}")
        return v

    @field_validator("vault_kubernetes_ca_certs")
    @classmethod
    def _pem(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k, pem in v.items() if not pem.strip().startswith("-----BEGIN CERTIFICATE-----")]
        if bad:
            raise ValueError(f"values must be PEM certificates (public CA data, never a key); wrong for {bad}")
        return v

    @field_validator("eks_oidc_issuers", "vault_kubernetes_hosts")
    @classmethod
    def _https(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k, url in v.items() if not re.fullmatch(r"https://[!-~]+", url)]
        if bad:
            raise ValueError(f"values must be https:// URLs; wrong for {bad}")
        return v
    expected_networks: tuple[str, ...] = ()
    """`agentfleet:expectedNetworks`: VPC endpoint ids and IPv4 CIDRs credential reads normally come
    from, beside the agents' declared scopes (the odd-network alarm; docs/operations.md)."""

    @field_validator("recovery_window_days")
    @classmethod
    def _window(cls, v: int) -> int:
        if v != 0 and not 7 <= v <= 30:
            raise ValueError("recoveryWindowDays must be 7-30 (or 0 to delete immediately, not advised)")
        return v

    @field_validator("alarm_subscriptions")
    @classmethod
    def _subs(cls, v: tuple[dict[str, str], ...]) -> tuple[dict[str, str], ...]:
        for sub in v:
            if set(sub) != {"protocol", "endpoint"} or sub["protocol"] not in ("email", "https", "lambda", "sqs"):
                raise ValueError(
                    "alarmSubscriptions entries are {protocol: email|https|lambda|sqs, endpoint: ...}"
                )
        return v

    @field_validator("quotas", "quotas_used_elsewhere")
    @classmethod
    def _quota_keys(cls, v: dict[str, int]) -> dict[str, int]:
        from agentfleet.core.quotas import BY_KEY  # quotas builds on settings: imported when validating

        unknown = sorted(set(v) - set(BY_KEY))
        if unknown:
            raise ValueError(f"unknown quota key(s) {unknown}; known: {sorted(BY_KEY)}")
        if any(n < 0 for n in v.values()):
            raise ValueError("quota values must be >= 0")
        return dict(sorted(v.items()))

    @field_validator("expected_networks")
    @classmethod
    def _networks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for item in v:
            if VPC_ENDPOINT_RE.match(item):
                continue
            try:
                if "/" not in item:
                    raise ValueError(item)
                net = ipaddress.ip_network(item, strict=True)
            except ValueError:
                raise ValueError(f"expectedNetworks entries are vpce-... ids or IPv4 CIDRs, got {item!r}") from None
            if net.version != 4 or net.prefixlen == 0:
                raise ValueError(f"expectedNetworks entries are vpce-... ids or IPv4 CIDRs (not /0), got {item!r}")
        return tuple(sorted(set(v)))

    @field_validator("admin_principals")
    @classmethod
    def _admins(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [a for a in v if not ROLE_ARN_RE.match(a)]
        if bad:
            raise ValueError(f"adminPrincipals must be exact IAM role ARNs, got {bad}")
        return tuple(sorted(set(v)))

    @model_validator(mode="after")
    def _shard_settings(self) -> "StackSettings":
        selects = bool(self.shard_agents or self.shard_owners)
        if self.shard == "agents":
            if not self.environment_stack or not selects:
                raise ValueError("shard `agents` needs environmentStack and shardAgents and/or shardOwners")
            if self.rotation_isolation == "shared":
                raise ValueError("shard `agents` supports rotationIsolation per-agent only (shared rotation functions"
                                 " rotate every agent's secrets: keep the fleet in one stack)")
        elif selects or self.environment_stack:
            raise ValueError("shardAgents, shardOwners and environmentStack belong to `shard: agents` stacks only")
        return self

    @field_validator("trusted_accounts")
    @classmethod
    def _trusted(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [a for a in v if not (isinstance(a, str) and re.fullmatch(r"\d{12}", a))]
        if bad:
            raise ValueError(f"trustedAccounts must be 12-digit AWS account ids (quoted), got {bad}")
        return tuple(sorted(set(v)))
    @model_validator(mode="after")
    def _providers_in_this_account(self) -> "StackSettings":
        """IAM only accepts an OIDC provider of the role's own account in a trust policy."""
        arns = [a for a in (self.github_oidc_provider_arn, *self.irsa_oidc_provider_arns.values()) if a]
        bad = [a for a in arns if a.split(":")[4] != self.aws_account_id or a.split(":")[1] != self.partition]
        if bad:
            raise ValueError(f"OIDC provider ARNs must be in this stack's account {self.aws_account_id} ({self.partition}): {bad}")
        return self

    @property
    def partition(self) -> str:
        return partition_of(self.aws_region)


# config key (without namespace) -> (field name, kind). `aws:region` is handled apart.
_KEYS: dict[str, tuple[str, str]] = {
    "environment": ("environment", "str"),
    "awsAccountId": ("aws_account_id", "str"),
    "secretPrefix": ("secret_prefix", "str"),
    "vaultMount": ("vault_mount", "str"),
    "vaultMountExists": ("vault_mount_exists", "bool"),
    "vaultAwsAuthPath": ("vault_aws_auth_path", "str"),
    "vaultAwsAuthExists": ("vault_aws_auth_exists", "bool"),
    "vaultAwsAuth": ("vault_aws_auth", "bool"),
    "vaultTokenTtlSeconds": ("vault_token_ttl_seconds", "int"),
    "recoveryWindowDays": ("recovery_window_days", "int"),
    "protect": ("protect", "bool"),
    "adminPrincipals": ("admin_principals", "list"),
    TRUSTED_ACCOUNTS_KEY: ("trusted_accounts", "list"),
    "fleetFile": ("fleet_file", "str"),
    "maxSessionSeconds": ("max_session_seconds", "int"),
    "rotationIsolation": ("rotation_isolation", "str"),
    "rotationGraceHours": ("rotation_grace_hours", "int"),
    "rotationVaultAddress": ("rotation_vault_address", "str"),
    "vaultIamServerId": ("vault_iam_server_id", "str"),
    "usageMetrics": ("usage_metrics", "bool"),
    "alarms": ("alarms", "bool"),
    "usageAlarmMultiplier": ("usage_alarm_multiplier", "float"),
    "usageBaselinePer5Min": ("usage_baseline_per_5min", "int"),
    "usageBaselines": ("usage_baselines", "map"),
    "accessDeniedThreshold": ("access_denied_threshold", "int"),
    "cloudtrailLogGroup": ("cloudtrail_log_group", "str"),
    "alarmSubscriptions": ("alarm_subscriptions", "list"),
    "quotas": ("quotas", "map"),
    "quotasUsedElsewhere": ("quotas_used_elsewhere", "map"),
    "monitoringPartitions": ("monitoring_partitions", "int"),
    "shard": ("shard", "str"),
    "environmentStack": ("environment_stack", "str"),
    "shardAgents": ("shard_agents", "list"),
    "shardOwners": ("shard_owners", "list"),
    "vaultLogin": ("vault_login", "str"),
    "vaultJwtAudience": ("vault_jwt_audience", "str"),
    "awsOutboundIssuer": ("aws_outbound_issuer", "str"),
    "githubOidcProviderArn": ("github_oidc_provider_arn", "str"),
    "irsaOidcProviderArns": ("irsa_oidc_provider_arns", "map"),
    "eksOidcIssuers": ("eks_oidc_issuers", "map"),
    "vaultKubernetesHosts": ("vault_kubernetes_hosts", "map"),
    "vaultKubernetesCaCerts": ("vault_kubernetes_ca_certs", "map"),
    "federationTokenMaxSeconds": ("federation_token_max_seconds", "int"),
    "expectedNetworks": ("expected_networks", "list"),
}
CONFIG_KEYS = tuple(f"{PROJECT}:{k}" for k in _KEYS) + ("aws:region",)


def config_key(field: str) -> str:
    """The stack-file key of a StackSettings field (`admin_principals` -> `agentfleet:adminPrincipals`)."""
    if field == "aws_region":
        return "aws:region"
    return next((f"{PROJECT}:{k}" for k, (f, _) in _KEYS.items() if f == field), field)


def _coerce(value: Any, kind: str) -> Any:
    """Pulumi config values arrive as strings (CLI) or YAML scalars (stack file)."""
    if kind == "bool" and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if kind == "int" and isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    if kind == "float" and isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    if kind in ("list", "map") and isinstance(value, str):
        return json.loads(value)  # `pulumi config set --path` / structured values arrive as JSON
    if kind == "list" and isinstance(value, list):
        return tuple(value)
    return value


def settings_from_config(stack: str, lookup: Callable[[str], Any]) -> StackSettings:
    """Build settings from a config lookup taking full keys (`agentfleet:environment`)."""
    values: dict[str, Any] = {"stack": stack}
    region = lookup("aws:region")
    if region is not None:
        values["aws_region"] = region
    for key, (field, kind) in _KEYS.items():
        raw = lookup(f"{PROJECT}:{key}")
        if raw is not None:
            values[field] = _coerce(raw, kind)
    values.setdefault("environment", stack)
    try:
        return StackSettings.model_validate(values)
    except ValidationError as exc:
        back = {f: k for k, (f, _) in _KEYS.items()} | {"aws_region": "aws:region"}
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            key = back.get(field, field)
            key = key if ":" in key else f"{PROJECT}:{key}"
            msg = "is required" if err["type"] == "missing" else str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"stack {stack}: config `{key}` {msg}" if field else f"stack {stack}: {msg}")
        raise SettingsError(problems) from None


def load_stack_settings(path: str | Path, stack: str) -> StackSettings:
    """Read `Pulumi.<stack>.yaml` for the offline CLI; refuse plaintext secrets in it."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise SettingsError([f"{p}: cannot read stack settings ({why}); create it or pass --stack"]) from None
    return parse_stack_settings(text, str(p), stack)


def stack_config_of(text: str, label: str) -> dict[str, Any]:
    """The `config:` mapping of a stack file's text (SettingsError when it is not one)."""
    try:
        doc = YAML(typ="safe").load(text) or {}
    except YAMLError as exc:
        raise SettingsError([f"{label}: YAML syntax error: {exc}"]) from None
    except Exception as exc:  # noqa: BLE001 - ruamel raises assorted errors on hostile input
        raise SettingsError([f"{label}: cannot read stack settings: {type(exc).__name__}"]) from None
    if not isinstance(doc, dict):
        raise SettingsError([f"{label}: a stack file is a mapping with a `config:` key"])
    config = doc.get("config") or {}
    if not isinstance(config, dict):
        raise SettingsError([f"{label}: `config:` must be a mapping"])
    return config


def parse_stack_settings(text: str, label: str, stack: str) -> StackSettings:
    """Settings from a stack file's text (the working tree's, or one read from git at a revision)."""
    config = stack_config_of(text, label)
    problems = []
    for key, value in config.items():
        if key in SECRET_CONFIG_KEYS and not (isinstance(value, dict) and "secure" in value):
            problems.append(f"{label}: `{key}` is stored in plain text; use `pulumi config set --secret {key}`")
        elif isinstance(value, str) and looks_like_secret(value):
            problems.append(f"{label}: `{key}` looks like a credential value; stack files hold settings only")
    if problems:
        raise SettingsError(problems)
    try:
        return settings_from_config(stack, config.get)
    except SettingsError as exc:
        raise SettingsError([f"{label}: {m}" for m in exc.problems]) from None
    except (TypeError, ValueError) as exc:  # e.g. a list value that is not JSON
        raise SettingsError([f"{label}: stack {stack}: {exc}"]) from None


def field_docstrings(cls: type) -> dict[str, str]:
    """The string written right under each annotated field of a class (what pydantic's
    `use_attribute_docstrings` reads), cleaned like a docstring."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    out: dict[str, str] = {}
    for before, node in zip(body, body[1:]):
        if (isinstance(before, ast.AnnAssign) and isinstance(before.target, ast.Name) and isinstance(node, ast.Expr)
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            out[before.target.id] = inspect.cleandoc(node.value.value)
    return out


def settings_markdown() -> str:
    """The README's stack-settings table, generated from the field docstrings (tested in sync)."""
    rows = ["| key | default | meaning |", "|---|---|---|", "| `aws:region` | (required) | the AWS region of the stack |"]
    docs = field_docstrings(StackSettings)
    for key, (field, _) in _KEYS.items():
        info = StackSettings.model_fields[field]
        doc = " ".join((info.description or docs.get(field, "")).split())
        meaning = (doc.split(": ", 1)[1] if doc.startswith("`") and ": " in doc else doc).replace("|", "\\|")
        if info.is_required():
            default = "(required)" if field != "environment" else "the stack name"
        else:
            value = info.get_default()
            default = "none" if value is None else json.dumps(list(value) if isinstance(value, tuple) else value)
        rows.append(f"| `{PROJECT}:{key}` | {default} | {meaning} |")
    return "\n".join(rows) + "\n"
