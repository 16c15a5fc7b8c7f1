"""The function's settings, read from environment variables with defaults and no KeyError.

Infrastructure (components/rotation_infra.py) sets these; every one has a default so a missing
variable never crashes a rotation halfway. Invalid values raise ConfigError before any state
changes, listing every problem at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urlsplit

from rotation.errors import ConfigError

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

ADMIN_SECRET_ENV: dict[str, str] = {"openai": ENV_OPENAI_ADMIN_SECRET_ID}
"""Provider adapter -> the variable naming the secret that holds its admin key."""


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


def _base_url(raw: str | None, problems: list[str]) -> str:
    """HTTPS only, except plain HTTP to a loopback address (local fakes): keys never travel in clear."""
    url = (raw or DEFAULT_OPENAI_BASE_URL).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return url
    problems.append(f"{ENV_OPENAI_BASE_URL} must be an https:// URL (or http:// to a loopback address)")
    return DEFAULT_OPENAI_BASE_URL


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
    )
    if problems:
        raise ConfigError("; ".join(problems))
    return config
