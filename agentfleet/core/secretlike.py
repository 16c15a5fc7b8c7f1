"""Recognise strings shaped like real credentials.

Shared by the fleet loader (a key pasted into agents.yaml is refused) and the source scanner
(`agentfleet scan`). detect-secrets supplies the maintained detectors; a few extra
shapes it misses (dash-style `sk-live-...`, Anthropic keys, generic `sk-` keys) are added here.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import importlib.util
import math
import re
import sys
import types
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from detect_secrets.plugins.base import BasePlugin


# Shapes detect-secrets 1.5 does not know. Each maps to the service it most likely belongs to.
_EXTRA: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("Stripe-style key", "stripe", re.compile(r"\b[sr]k[-_](?:live|test)[-_][A-Za-z0-9]{16,}")),
    ("Anthropic key", "anthropic", re.compile(r"\bsk-ant-[A-Za-z0-9_-]{20,}")),
    ("OpenAI-style key", "openai", re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,}")),
    ("AWS access key id", "aws", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("PEM private key", "pem", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("Hugging Face token", "huggingface", re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")),
    ("Google API key", "google", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("Groq API key", "groq", re.compile(r"\bgsk_[A-Za-z0-9]{40,}\b")),
    ("GitHub fine-grained token", "github", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{40,}\b")),
)
_AWS_SECRET_KEY = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
"""A bare AWS secret access key: 40 base64 characters (told from hashes and words by shape and entropy)."""
_BASE64_TOKEN = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/]{24,4096}={0,2}(?![A-Za-z0-9+/=_-])")
_PLACEHOLDER = re.compile(r"^(?:[<\[{$%*]|x+$|\.+$|(?:pass(?:word)?|secret|changeme|pwd|example|redacted)$)", re.I)

# detect-secrets secret_type -> likely service name (as used in agents.yaml `service:`).
_SERVICE_OF_TYPE: dict[str, str] = {
    "AWS Access Key": "aws",
    "GitHub Token": "github",
    "GitLab Token": "gitlab",
    "JSON Web Token": "jwt",
    "OpenAI Token": "openai",
    "Private Key": "pem",
    "SendGrid API Key": "sendgrid",
    "Slack Token": "slack",
    "Stripe Access Key": "stripe",
    "Twilio API Key": "twilio",
    "Basic Auth Credentials": "unknown",
    # Types only the scanner's full detect-secrets plugin set reports.
    "Artifactory Credentials": "artifactory",
    "Azure Storage Account access key": "azure",
    "Cloudant Credentials": "cloudant",
    "Discord Bot Token": "discord",
    "IBM COS HMAC Credentials": "ibm",
    "IBM Cloud IAM Key": "ibm",
    "Mailchimp Access Key": "mailchimp",
    "NPM tokens": "npm",
    "PyPI Token": "pypi",
    "SoftLayer Credentials": "softlayer",
    "Square OAuth Secret": "square",
    "Telegram Bot Token": "telegram",
}


def service_of_type(kind: str) -> str:
    """Likely service of a detect-secrets secret type; `unknown` for generic ones (entropy, keyword)."""
    return _SERVICE_OF_TYPE.get(kind, "unknown")


KNOWN_SERVICES: frozenset[str] = frozenset(_SERVICE_OF_TYPE.values()) | {svc for _, svc, _ in _EXTRA}
"""Services a key's shape can reveal (`pem` and `jwt` name formats, not services)."""


@dataclass(frozen=True)
class SecretHit:
    """One credential-shaped substring: what it looks like and which service it likely is."""

    kind: str
    service: str
    secret: str

    @property
    def masked(self) -> str:
        """Enough to recognise the key in a rotation log, never enough to use it."""
        return mask(self.secret)


def mask(secret: str, keep: int | None = None) -> str:
    """`keep` leading characters stay visible (default: 4 of a long key, the type prefix such
    as `sk-p` or `AKIA`); pass 0 for values without a public prefix, such as passwords."""
    if keep is None:
        keep = 4 if len(secret) >= 16 else 0
    return secret[:keep] + "*" * 8 + (f"({len(secret)} chars)")


class _Deferred(types.ModuleType):
    """Stands in for a module in `sys.modules` until one of its attributes is read; then the real
    module is imported (in its place) and every later read is the real module's value."""

    def __getattr__(self, attr: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        real = importlib.import_module(self.__name__)
        self.__dict__.update(real.__dict__)
        return getattr(real, attr)


def defer_requests() -> None:
    """For a process that runs one offline verb and exits: detect-secrets imports `requests` at
    module level for its online verification, which nothing here calls, and that import was
    about 0.07 s of every verb. Until an attribute of `requests` is read, `import requests`
    gets a stand-in (with the real spec, so the import system sees a loaded module); reading
    one imports the real module. Importing a submodule (`requests.adapters`) while the stand-in
    is there would load that submodule twice, so only the CLI's short verbs, which never do,
    call this (`agentfleet.cli.main.run`); a library user or a test process never gets it."""
    if "requests" in sys.modules:
        return
    spec = importlib.util.find_spec("requests")
    if spec is None:
        return
    stand_in = _Deferred("requests")
    stand_in.__spec__ = spec
    sys.modules["requests"] = stand_in


@lru_cache(maxsize=1)
def _plugins() -> tuple[BasePlugin, ...]:
    """The detectors, imported on first use: most scalars of a fleet never reach them
    (`_CANDIDATE`), and a fleet without a candidate never imports detect-secrets at all."""
    from detect_secrets.plugins.artifactory import ArtifactoryDetector
    from detect_secrets.plugins.aws import AWSKeyDetector
    from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
    from detect_secrets.plugins.basic_auth import BasicAuthDetector
    from detect_secrets.plugins.discord import DiscordBotTokenDetector
    from detect_secrets.plugins.github_token import GitHubTokenDetector
    from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
    from detect_secrets.plugins.jwt import JwtTokenDetector
    from detect_secrets.plugins.mailchimp import MailchimpDetector
    from detect_secrets.plugins.npm import NpmDetector
    from detect_secrets.plugins.openai import OpenAIDetector
    from detect_secrets.plugins.private_key import PrivateKeyDetector
    from detect_secrets.plugins.pypi_token import PypiTokenDetector
    from detect_secrets.plugins.sendgrid import SendGridDetector
    from detect_secrets.plugins.slack import SlackDetector
    from detect_secrets.plugins.square_oauth import SquareOAuthDetector
    from detect_secrets.plugins.stripe import StripeDetector
    from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
    from detect_secrets.plugins.twilio import TwilioKeyDetector

    return (
        ArtifactoryDetector(),
        AzureStorageKeyDetector(),
        BasicAuthDetector(),
        DiscordBotTokenDetector(),
        MailchimpDetector(),
        NpmDetector(),
        PypiTokenDetector(),
        SquareOAuthDetector(),
        TelegramBotTokenDetector(),
        AWSKeyDetector(),
        GitHubTokenDetector(),
        GitLabTokenDetector(),
        JwtTokenDetector(),
        OpenAIDetector(),
        PrivateKeyDetector(),
        SendGridDetector(),
        SlackDetector(),
        StripeDetector(),
        TwilioKeyDetector(),
    )


def whole_match(plugin: BasePlugin, found: str, text: str) -> str:
    """The full key when a detector's regex captured only its prefix: detect-secrets 1.5 yields
    the group, so a GitHub token `ghp_...` comes back as just `ghp`."""
    for regex in getattr(plugin, "denylist", ()):
        for m in regex.finditer(text):
            if found in m.groups() and m.group(0).startswith(found):
                return str(m.group(0))
    return found


def is_placeholder(password: str) -> bool:
    """`<password>`, `${PW}`, `pass`, `xxx`: a URL password that documents the shape, not a value."""
    return bool(_PLACEHOLDER.search(password))


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _aws_secret_key(token: str) -> bool:
    """Random base64 of AWS's alphabet: every character class present, high entropy; a git SHA
    (lowercase hex), a word run or a path is not one."""
    classes = (any(c.isupper() for c in token), any(c.islower() for c in token), any(c.isdigit() for c in token))
    return all(classes) and _entropy(token) >= 4.3 and "/" not in token[:1] and not re.search(r"[a-z]{12}", token)


def _direct(text: str) -> Iterator[SecretHit]:
    seen: set[str] = set()
    for plugin in _plugins():
        for raw in plugin.analyze_string(text):
            found = whole_match(plugin, raw, text)
            kind = str(plugin.secret_type)
            if kind == "Basic Auth Credentials" and is_placeholder(found):
                continue  # `scheme://user:<password>@host` documents the shape, it holds no password
            if found not in seen:
                seen.add(found)
                yield SecretHit(kind, _SERVICE_OF_TYPE.get(kind, "unknown"), found)
    for kind, service, pattern in _EXTRA:
        for m in pattern.finditer(text):
            found = m.group(0)
            if not any(found in s or s in found for s in seen):
                seen.add(found)
                yield SecretHit(kind, service, found)
    for m in _AWS_SECRET_KEY.finditer(text):
        found = m.group(0)
        if _aws_secret_key(found) and not any(found in s or s in found for s in seen):
            seen.add(found)
            yield SecretHit("AWS secret access key", "aws", found)


_CANDIDATE = re.compile(r"[A-Za-z0-9_+/=-]{16,}|://|-----BEGIN")
"""Every shape above needs one of these: text without any cannot hold a key (a cheap first pass)."""


def find_secrets(text: str) -> Iterator[SecretHit]:
    """Yield each credential-shaped substring of `text` once (maintained detectors first), and
    base64 text that decodes to one (`c2stbGl2ZS0...` is still a Stripe key)."""
    if not _CANDIDATE.search(text):
        return
    seen: set[str] = set()
    for hit in _direct(text):
        seen.add(hit.secret)
        yield hit
    for m in _BASE64_TOKEN.finditer(text):
        token = m.group(0)
        if any(token in s or s in token for s in seen):
            continue
        try:
            decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True).decode("ascii")
        except (binascii.Error, ValueError):
            continue
        if not decoded.isprintable():
            continue
        inner = next((h for h in _direct(decoded) if h.kind != "AWS secret access key"), None)
        if inner is not None:
            seen.add(token)
            yield SecretHit(f"base64 of a {inner.kind}", inner.service, token)


@lru_cache(maxsize=16384)
def looks_like_secret(text: str) -> SecretHit | None:
    """The first credential-shaped substring of `text`, or None. Cached: a fleet repeats the same
    scalars (services, types, strategies, runtimes) thousands of times, and the detectors are pure."""
    return next(find_secrets(text), None)
