"""Exceptions of the rotation package. Messages never carry a secret value."""

from __future__ import annotations


class RotationError(Exception):
    """Base class: the rotation step failed and Secrets Manager should record a failure."""


class ConfigError(RotationError):
    """The function's environment is missing or has an invalid setting."""


class GuardError(RotationError):
    """The request does not match the secret's state (AWS template guards); nothing was changed."""


class RotationInProgress(RotationError):
    """Another rotation of the same secret holds AWSPENDING; this request is refused untouched."""


class ManualRotationRequired(RotationError):
    """The credential's provider has no admin API: a human mints the key (see docs/rotation.md)."""


class ProviderError(RotationError):
    """A provider API call failed. Carries the operation, HTTP status and error code only."""

    def __init__(self, operation: str, status: int | None, code: str | None = None):
        self.operation = operation
        self.status = status
        self.code = code
        super().__init__(f"{operation} failed: status={status} code={code}")


class SweepError(RotationError):
    """At least one secret of a revocation sweep failed; the others were still processed."""
