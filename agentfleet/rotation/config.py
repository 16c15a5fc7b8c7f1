"""The function's settings, read from environment variables with defaults and no KeyError.

Infrastructure (components/rotation_infra.py) sets these; every one has a default so a missing
variable never crashes a rotation halfway. Invalid values raise ConfigError before any state
changes, listing every problem at once.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urlsplit

from agentfleet.rotation.errors import ConfigError

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

# Environment variable names: the contract with components/rotation_infra.py.
ENV_GRACE_HOURS = "ROTATION_GRACE_HOURS"
ENV_STRATEGY = "ROTATION_STRATEGY"
ENV_STRATEGY_MAP = "ROTATION_STRATEGY_MAP"
ENV_STALE_PENDING_MINUTES = "ROTATION_STALE_PENDING_MINUTES"
ENV_OPENAI_BASE_URL = "OPENAI_ADMIN_BASE_URL"
ENV_OPENAI_ADMIN_SECRET_ID = "OPENAI_ADMIN_SECRET_ID"
ENV_HTTP_TIMEOUT = "ROTATION_HTTP_TIMEOUT_SECONDS"
ENV_VERIFY_ATTEMPTS = "ROTATION_VERIFY_ATTEMPTS"
ENV_GENERATED_LENGTH = "ROTATION_GENERATED_LENGTH"
ENV_METRICS_NAMESPACE = "ROTATION_METRICS_NAMESPACE"
ENV_VAULT_MAP = "ROTATION_VAULT_MAP"
ENV_VAULT_LAYOUT = "ROTATION_VAULT_LAYOUT"
"""Shared mode: `{"mount": ..., "secretPrefix": ..., "pathPrefix": ...}`, the environment's naming rule
(secret `<secretPrefix><rest>` -> Vault `<mount>/<pathPrefix><rest>`) instead of one map entry per secret."""
VAULT_COPY_TAG = "vault-copy"
"""Tag of a secret (shared mode) whose Vault copy a rotation function writes; value `<mount>/<path>`,
which must equal the layout's target for the secret (a tag can never redirect a write)."""
ENV_VAULT_ADDR = "VAULT_ADDR"
ENV_VAULT_AUTH_PATH = "VAULT_AUTH_PATH"
ENV_VAULT_ROLE = "VAULT_ROLE"
ENV_VAULT_NAMESPACE = "VAULT_NAMESPACE"
ENV_VAULT_STS_REGION = "VAULT_STS_REGION"
ENV_VAULT_IAM_SERVER_ID = "VAULT_IAM_SERVER_ID"
DEFAULT_VAULT_AUTH_PATH = "aws"
DEFAULT_VAULT_STS_REGION = "us-east-1"
"""Vault's AWS auth verifies logins against the global STS endpoint unless configured otherwise."""
_VAULT_SEGMENTS = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$")
"""Mount, path and auth path: plain segments only, so a value can never reach another API route
(`..`, empty segments, query strings)."""
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")

ADMIN_SECRET_ENV: dict[str, str] = {"openai": ENV_OPENAI_ADMIN_SECRET_ID}
"""Provider adapter -> the variable naming the secret that holds its admin key."""


@dataclass(frozen=True)
class VaultTarget:
    """Where the Vault/OpenBao copy of a Secrets Manager secret lives (KV v2)."""

    mount: str
    path: str
    """Path under the mount, without the `data/` the KV v2 API adds."""

    def __str__(self) -> str:
        return f"{self.mount}/{self.path}"


@dataclass(frozen=True)
class VaultLayout:
    """The environment's secret-name -> Vault-path rule (shared rotation functions)."""

    mount: str
    secret_prefix: str
    path_prefix: str

    def target(self, secret_name: str) -> VaultTarget | None:
        """Where the rule puts `secret_name`'s Vault copy; None outside the environment's prefix."""
        if not secret_name.startswith(self.secret_prefix) or len(secret_name) == len(self.secret_prefix):
            return None
        path = self.path_prefix + secret_name[len(self.secret_prefix):]
        return VaultTarget(self.mount, path) if vault_segments_ok(path) else None


@dataclass(frozen=True)
class Config:
    grace_hours: float = 24.0
    """Hours an old key keeps working after its replacement became AWSCURRENT (0 = emergency)."""
    default_strategy: str | None = None
    """Strategy for every secret (shared mode: one function per environment and strategy)."""
    strategy_map: Mapping[str, str] = field(default_factory=dict)
    """Secret name -> strategy (per-agent mode). A secret in neither is refused."""
    stale_pending_minutes: int = 60
    """A foreign AWSPENDING older than this is an abandoned rotation that may be cleaned up."""
    openai_base_url: str = DEFAULT_OPENAI_BASE_URL
    openai_admin_secret_id: str | None = None
    """Secrets Manager secret holding {"admin_key": ..., "project_id": ...} for the openai adapter."""
    http_timeout_seconds: float = 10.0
    verify_attempts: int = 3
    generated_length: int = 48
    metrics_namespace: str = "AgentFleet/Rotation"
    vault_map: Mapping[str, VaultTarget] = field(default_factory=dict)
    """Secret name -> its Vault copy (per-agent functions). Only these secrets, or (shared functions) the
    secrets tagged `vault-copy` with exactly the layout's target, are ever written to Vault."""
    vault_layout: VaultLayout | None = None
    """Shared functions: the naming rule; a secret's `vault-copy` tag says it has a copy (ROTATION_VAULT_LAYOUT)."""
    vault_addr: str | None = None
    """Vault/OpenBao address; None means every mapped sync fails (and blocks revocation) until set."""
    vault_auth_path: str = DEFAULT_VAULT_AUTH_PATH
    vault_role: str | None = None
    """The rotation role's AWS-auth role in Vault (`naming.rotation_vault_name`)."""
    vault_namespace: str | None = None
    vault_sts_region: str = DEFAULT_VAULT_STS_REGION
    vault_iam_server_id: str | None = None
    """Value of X-Vault-AWS-IAM-Server-ID if the auth backend requires one (replay protection)."""

    def strategy_for(self, secret_name: str) -> str:
        name = self.strategy_map.get(secret_name, self.default_strategy)
        if name is None:
            raise ConfigError(f"no rotation strategy configured for secret {secret_name!r}")
        return name


def _number(env: Mapping[str, str], key: str, default: float, problems: list[str], *, minimum: float) -> float:
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        problems.append(f"{key} must be a number, got {raw!r}")
        return default
    if value < minimum:
        problems.append(f"{key} must be >= {minimum:g}, got {raw!r}")
    return value


def safe_url(url: str) -> bool:
    """HTTPS, or plain HTTP to a loopback address (local fakes): keys and tokens never travel in clear."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS


def _base_url(raw: str | None, problems: list[str]) -> str:
    url = (raw or DEFAULT_OPENAI_BASE_URL).rstrip("/")
    if safe_url(url):
        return url
    problems.append(f"{ENV_OPENAI_BASE_URL} must be an https:// URL (or http:// to a loopback address)")
    return DEFAULT_OPENAI_BASE_URL


def vault_segments_ok(value: str) -> bool:
    return bool(_VAULT_SEGMENTS.match(value)) and ".." not in value.split("/")


def _vault_map(raw: str | None, problems: list[str]) -> dict[str, VaultTarget]:
    """`{"<secret name>": {"mount": "kv", "path": "<env>/<agent>/<credential>"}}`."""
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    out: dict[str, VaultTarget] = {}
    if isinstance(parsed, dict):
        for name, target in parsed.items():
            mount = target.get("mount") if isinstance(target, dict) else None
            path = target.get("path") if isinstance(target, dict) else None
            if not (isinstance(mount, str) and isinstance(path, str) and vault_segments_ok(mount) and vault_segments_ok(path)):
                problems.append(f"{ENV_VAULT_MAP}: {name!r} needs a plain KV mount and path (no `..`, no empty segments)")
                continue
            out[str(name)] = VaultTarget(mount=mount, path=path)
        return out
    problems.append(f"{ENV_VAULT_MAP} must be a JSON object of secret name -> {{\"mount\": ..., \"path\": ...}}")
    return {}


def _vault_layout(raw: str | None, problems: list[str]) -> VaultLayout | None:
    if not raw:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        mount, secret_prefix, path_prefix = parsed.get("mount"), parsed.get("secretPrefix"), parsed.get("pathPrefix")
        if (isinstance(mount, str) and vault_segments_ok(mount) and isinstance(secret_prefix, str) and secret_prefix
                and isinstance(path_prefix, str) and path_prefix.endswith("/") and vault_segments_ok(path_prefix[:-1])):
            return VaultLayout(mount, secret_prefix, path_prefix)
    problems.append(f"{ENV_VAULT_LAYOUT} must be a JSON object {{\"mount\": ..., \"secretPrefix\": ..., \"pathPrefix\": \".../\"}}"
                    " with plain KV segments")
    return None


def _vault_addr(raw: str | None, problems: list[str]) -> str | None:
    if not raw:
        return None
    url = raw.rstrip("/")
    if safe_url(url):
        return url
    problems.append(f"{ENV_VAULT_ADDR} must be an https:// URL (or http:// to a loopback address)")
    return None


def _vault_auth_path(raw: str | None, problems: list[str]) -> str:
    path = (raw or DEFAULT_VAULT_AUTH_PATH).strip("/")
    if vault_segments_ok(path):
        return path
    problems.append(f"{ENV_VAULT_AUTH_PATH} must be a plain auth mount path such as `aws`")
    return DEFAULT_VAULT_AUTH_PATH


def _sts_region(raw: str | None, problems: list[str]) -> str:
    if not raw:
        return DEFAULT_VAULT_STS_REGION
    if _REGION.match(raw):
        return raw
    problems.append(f"{ENV_VAULT_STS_REGION} must be an AWS region such as us-east-1")
    return DEFAULT_VAULT_STS_REGION


def load_config(env: Mapping[str, str]) -> Config:
    problems: list[str] = []
    strategy_map: dict[str, str] = {}
    raw_map = env.get(ENV_STRATEGY_MAP)
    if raw_map:
        try:
            parsed = json.loads(raw_map)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()):
            strategy_map = dict(parsed)
        else:
            problems.append(f"{ENV_STRATEGY_MAP} must be a JSON object of secret name -> strategy")
    config = Config(
        grace_hours=_number(env, ENV_GRACE_HOURS, 24.0, problems, minimum=0),
        default_strategy=env.get(ENV_STRATEGY) or None,
        strategy_map=strategy_map,
        stale_pending_minutes=int(_number(env, ENV_STALE_PENDING_MINUTES, 60, problems, minimum=1)),
        openai_base_url=_base_url(env.get(ENV_OPENAI_BASE_URL), problems),
        openai_admin_secret_id=env.get(ENV_OPENAI_ADMIN_SECRET_ID) or None,
        http_timeout_seconds=_number(env, ENV_HTTP_TIMEOUT, 10.0, problems, minimum=0.1),
        verify_attempts=int(_number(env, ENV_VERIFY_ATTEMPTS, 3, problems, minimum=1)),
        generated_length=int(_number(env, ENV_GENERATED_LENGTH, 48, problems, minimum=16)),
        metrics_namespace=env.get(ENV_METRICS_NAMESPACE) or "AgentFleet/Rotation",
        vault_map=_vault_map(env.get(ENV_VAULT_MAP), problems),
        vault_layout=_vault_layout(env.get(ENV_VAULT_LAYOUT), problems),
        vault_addr=_vault_addr(env.get(ENV_VAULT_ADDR), problems),
        vault_auth_path=_vault_auth_path(env.get(ENV_VAULT_AUTH_PATH), problems),
        vault_role=env.get(ENV_VAULT_ROLE) or None,
        vault_namespace=env.get(ENV_VAULT_NAMESPACE) or None,
        vault_sts_region=_sts_region(env.get(ENV_VAULT_STS_REGION), problems),
        vault_iam_server_id=env.get(ENV_VAULT_IAM_SERVER_ID) or None,
    )
    if problems:
        raise ConfigError("; ".join(problems))
    return config
