"""Rotation strategies behind one small interface: create a new credential, test it, revoke an old one.

The handler never knows which provider it talks to; it calls `create` in createSecret, `test` in
testSecret (and again on the current key before any revocation), and `revoke` only from the
revocation ledger. Strategy names match `agentfleet.core.model.ROTATION_STRATEGIES`.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol

from .config import Config
from .credential import KEY_FIELD, Credential
from .errors import ConfigError, ManualRotationRequired, RotationError


class Strategy(Protocol):
    name: str
    revokes: bool
    """True when old keys must be revoked at a provider (and therefore go through the ledger)."""

    def create(self, current: Mapping[str, Any], *, label: str) -> Credential:
        """Mint a new credential (the current one may carry ids the provider needs, e.g. project)."""
        ...

    def test(self, new: Mapping[str, Any]) -> None:
        """Raise if the credential does not work; return None if it does."""
        ...

    def revoke(self, old: Mapping[str, str]) -> None:
        """Revoke a key given its identifiers (a ledger `ref`, never the key itself). Idempotent."""
        ...


class GeneratedStrategy:
    """The project owns the value (internal tokens, webhook signing secrets): a random string.

    Nothing exists at a provider, so there is nothing to revoke: once the new value is
    AWSCURRENT the old one only survives as AWSPREVIOUS for consumers that accept both during
    the grace period.
    """

    name = "generated"
    revokes = False

    def __init__(self, client: Any, length: int):
        self._client = client
        self._length = length

    def create(self, current: Mapping[str, Any], *, label: str) -> Credential:
        resp = self._client.get_random_password(
            PasswordLength=self._length, ExcludePunctuation=True, IncludeSpace=False, RequireEachIncludedType=True,
        )
        return {KEY_FIELD: resp["RandomPassword"]}

    def test(self, new: Mapping[str, Any]) -> None:
        value = new.get(KEY_FIELD)
        if not isinstance(value, str) or len(value) != self._length or not value.isalnum():
            raise RotationError("generated value does not have the configured length and alphabet")

    def revoke(self, old: Mapping[str, str]) -> None:
        return None


class ManualStrategy:
    """Keys only a human can mint (e.g. Stripe): no automatic create; reminders and age alarms instead."""

    name = "manual"
    revokes = False

    def create(self, current: Mapping[str, Any], *, label: str) -> Credential:
        raise ManualRotationRequired(
            "manual credential: mint the new key at the provider and put it with"
            " `aws secretsmanager put-secret-value` (runbook: docs/rotation.md#manual-credentials)"
        )

    def test(self, new: Mapping[str, Any]) -> None:
        value = new.get(KEY_FIELD)
        if not isinstance(value, str) or not value:
            raise RotationError("manual credential has no api_key")

    def revoke(self, old: Mapping[str, str]) -> None:
        raise ManualRotationRequired("manual credential: revoke the old key at the provider by hand")


def _generated(client: Any, config: Config) -> Strategy:
    return GeneratedStrategy(client, config.generated_length)


def _manual(client: Any, config: Config) -> Strategy:
    return ManualStrategy()


def _openai(client: Any, config: Config) -> Strategy:
    from .openai_admin import OpenAIStrategy

    return OpenAIStrategy(client, config)


def _sendgrid(client: Any, config: Config) -> Strategy:
    from .providers import SendGridStrategy

    return SendGridStrategy(client, config)


def _datadog(client: Any, config: Config) -> Strategy:
    from .providers import DatadogStrategy

    return DatadogStrategy(client, config)


def _postgres(client: Any, config: Config) -> Strategy:
    from .postgres import AlternatingUsersStrategy

    return AlternatingUsersStrategy(client, config)


FACTORIES: dict[str, Callable[[Any, Config], Strategy]] = {
    "manual": _manual,
    "generated": _generated,
    "openai": _openai,
    "sendgrid": _sendgrid,
    "datadog": _datadog,
    "postgres-alternating": _postgres,
}
"""Must list exactly `agentfleet.core.model.Strategy` (a test checks: this package cannot import the core)."""
STRATEGY_NAMES: tuple[str, ...] = tuple(FACTORIES)


def build_strategy(name: str, client: Any, config: Config) -> Strategy:
    factory = FACTORIES.get(name)
    if factory is None:
        raise ConfigError(f"unknown rotation strategy {name!r} (known: {', '.join(STRATEGY_NAMES)})")
    return factory(client, config)
