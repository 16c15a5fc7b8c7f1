"""Structured JSON log lines, one per event, written to stdout for CloudWatch Logs.

Each line is a JSON object with an `event` field, so a metric filter such as
`{ $.event = "revoke_failed" }` counts failures without parsing text. Callers pass identifiers
only (secret name, version token, key id, error code); a value never goes through here.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Union

from .errors import ProviderError

LOGGER_NAME = "agentfleet.rotation"
Field = Union[str, int, float, bool, None, list[str]]

_logger = logging.getLogger(LOGGER_NAME)
if not _logger.handlers:
    _handler = logging.StreamHandler(sys.stdout)
    _handler.setFormatter(logging.Formatter("%(message)s"))
    _logger.addHandler(_handler)
    _logger.setLevel(logging.INFO)
    # Lambda's root handler would prefix our JSON with text; keep the line pure JSON.
    _logger.propagate = False


def log(event: str, level: int = logging.INFO, **fields: Field) -> None:
    """Emit one JSON line. `level` is also written so log queries can filter on it."""
    record: dict[str, Field] = {"event": event, "level": logging.getLevelName(level)}
    record.update(fields)
    _logger.log(level, json.dumps(record, sort_keys=True, separators=(",", ":")))


def error_code(exc: BaseException) -> str:
    """A short, value-free description of an exception for the `error` field of a log line."""
    if isinstance(exc, ProviderError):
        return f"ProviderError:{exc.operation}:{exc.status}:{exc.code}"
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        aws_code = response.get("Error", {}).get("Code")
        if isinstance(aws_code, str):
            return f"{type(exc).__name__}:{aws_code}"
    return type(exc).__name__
