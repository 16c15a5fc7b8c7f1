"""AWS IAM wildcard semantics, and what a secret ARN pattern can reach.

IAM matches `Action` and `Resource` strings with `*` (any run of characters, `/` and `:`
included) and `?` (exactly one character); actions compare case-insensitively, ARNs do not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

SECRET_ARN_FIELDS = 7  # arn:partition:secretsmanager:region:account:secret:name-suffix
WILDCARDS = ("*", "?")
SAMPLE_SUFFIX = "Ab12Cd"
"""Stands for the 6 random characters AWS appends to a secret's name in its ARN."""


POLICY_VARIABLE = re.compile(r"\$\{[^}]*\}")
"""IAM policy variables (`${aws:PrincipalTag/agent}`, `${aws:username}`): resolved per request, so
the pack treats each as `*` (it could become any value, another agent's name included)."""


@lru_cache(maxsize=4096)
def _regex(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    pattern = POLICY_VARIABLE.sub("*", pattern)
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", 0 if case_sensitive else re.IGNORECASE | re.DOTALL)


def wildcard_match(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """True when `value` is matched by the IAM pattern `pattern`."""
    return _regex(pattern, case_sensitive).match(value) is not None


def action_match(pattern: str, action: str) -> bool:
    return wildcard_match(pattern, action, case_sensitive=False)


def has_wildcard(text: str) -> bool:
    return any(w in text for w in WILDCARDS) or "${" in text


def secret_arn(partition: str, region: str, account: str, name: str) -> str:
    """A concrete ARN of the secret called `name` (with a sample random suffix) to match against."""
    return f"arn:{partition}:secretsmanager:{region}:{account}:secret:{name}-{SAMPLE_SUFFIX}"


@dataclass(frozen=True)
class AgentScope:
    """The `<prefix>/<env>/<agent>/` folder a secret ARN pattern is confined to."""

    prefix: str
    environment: str
    agent: str

    @property
    def folder(self) -> str:
        return f"{self.prefix}/{self.environment}/{self.agent}/"


def secret_folder(pattern: str, depth: int) -> tuple[str, ...] | None:
    """The first `depth` name segments every ARN matched by `pattern` shares, or None.

    Real secret ARNs have exactly six colons and names without colons, so a pattern with six
    colons and the literal type `secret` maps each wildcard field onto one colon-free field; its
    name part is then confined when it starts with `depth` literal, wildcard-free segments.
    """
    fields = pattern.split(":", SECRET_ARN_FIELDS - 1)
    if len(fields) != SECRET_ARN_FIELDS or fields[0] != "arn" or fields[5] != "secret":
        return None
    if fields[2] != "secretsmanager":
        return None
    segments = fields[6].split("/")
    if len(segments) <= depth:
        return None
    head = segments[:depth]
    if any(not s or has_wildcard(s) for s in head):
        return None
    return tuple(head)


def secret_scope(pattern: str) -> AgentScope | None:
    """The one `<prefix>/<env>/<agent>/` folder every ARN matched by `pattern` lies in, or None."""
    head = secret_folder(pattern, 3)
    return AgentScope(*head) if head else None
