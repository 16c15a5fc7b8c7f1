"""Find credentials hard-coded in agent code, and say where each one should live instead.

detect-secrets (its `SecretsCollection` with the default plugins and filters) does the finding;
`agentfleet.core.secretlike` adds the shapes it misses and names the likely service. When a fleet
plan is given, a finding for a service the fleet declares points at that credential's exact
Secrets Manager name / Vault path (read from the plan, never re-derived). A `Finding` holds
only the masked value, so nothing downstream can print the secret by mistake.
"""

from __future__ import annotations

import fnmatch
import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from detect_secrets.core.secrets_collection import SecretsCollection
from detect_secrets.filters.allowlist import is_line_allowlisted
from detect_secrets.settings import default_settings
from detect_secrets.util.code_snippet import get_code_snippet

from agentfleet.review.audit import AuditRow, audit_rows, locations
from agentfleet.core.secretlike import KNOWN_SERVICES, find_secrets, is_placeholder, mask, service_of_type

SKIP_DIRS = frozenset({".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache",
                       ".pytest_cache", ".tox", ".ruff_cache"})
# `.env.example` and friends document variable names; they are scanned but not flagged as files.
ENV_TEMPLATE_SUFFIXES = frozenset({"example", "sample", "template", "dist", "defaults"})
MAX_BYTES = 2_000_000
"""Above this, only the line scan of `secretlike` runs (detect-secrets reads whole files)."""
MAX_SCAN_BYTES = 64 * 1024 * 1024
"""Larger files are reported as not scanned."""
IGNORE_FILE = ".agentfleet-scan-ignore"
"""Glob patterns (one a line, relative to the scanned folder; `dir/` = everything under it) of
files holding deliberate test fakes; they are listed as not scanned, never silently dropped."""

# detect-secrets types that say nothing about the service; their values keep no visible prefix.
_GENERIC_TYPES = frozenset({"Secret Keyword", "Base64 High Entropy String", "Hex High Entropy String",
                            "Basic Auth Credentials"})
# When one value is reported by several detectors, the most specific name wins.
_GENERIC_RANK = {"Secret Keyword": 1, "Basic Auth Credentials": 2, "Base64 High Entropy String": 3,
                 "Hex High Entropy String": 3}


# Values a key's shape cannot tie to one service: the advice points at the agent's store instead.
_NOT_A_SERVICE = frozenset({"unknown", "pem", "jwt"})


@dataclass(frozen=True, order=True)
class Finding:
    file: str
    line: int
    """1-based; 0 for a finding about the whole file (a committed `.env`)."""
    kind: str
    service: str
    """Likely service (`unknown` when neither the key's shape nor its variable name tells)."""
    masked: str
    advice: str

    def __str__(self) -> str:
        value = f" {self.masked}" if self.masked else ""
        return f"{self.file}:{self.line}: {self.kind} (likely service: {self.service}){value}: {self.advice}"


@dataclass(frozen=True)
class Home:
    """Where a declared credential lives, from the plan."""

    agent: str
    credential: str
    service: str
    role: str
    locations: tuple[str, ...]


def homes_from_plan(plan: dict[str, Any]) -> list[Home]:
    roles = {a["name"]: a["iam_role_name"] for a in plan["agents"]}
    rows: list[AuditRow] = audit_rows(plan)
    return [Home(r.agent, r.credential, r.service, roles[r.agent], tuple(locations(r))) for r in rows]


def is_env_file(path: Path) -> bool:
    name = path.name
    if name == ".env" or name.endswith(".env"):
        return True
    return name.startswith(".env.") and name.rsplit(".", 1)[-1] not in ENV_TEMPLATE_SUFFIXES


def iter_files(paths: Iterable[str]) -> Iterator[Path]:
    """Every file under the given paths, in a stable order, skipping tool and VCS folders."""
    for raw in paths:
        p = Path(raw)
        if p.is_file():
            yield p
            continue
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            for f in sorted(filenames):
                yield Path(dirpath) / f


def ignore_patterns(folder: Path) -> list[str]:
    f = folder / IGNORE_FILE
    if not f.is_file():
        return []
    return [ln.strip() for ln in f.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip() and not ln.startswith("#")]


def _ignored(rel: str, patterns: list[str]) -> str | None:
    for pat in patterns:
        if (pat.endswith("/") and rel.startswith(pat)) or fnmatch.fnmatch(rel, pat):
            return pat
    return None


@dataclass(frozen=True)
class _Text:
    lines: list[str] | None
    """None: not scanned (see `reason`)."""
    reason: str = ""
    whole: bool = True
    """False: decoded here (UTF-16, NUL-padded, large): detect-secrets cannot read it itself."""


def _read_text(path: Path) -> _Text:
    """The file as lines of text, or why it cannot be scanned. UTF-16/32 text is decoded, NUL
    padding is dropped, large files are line-scanned: a key cannot hide by encoding or size."""
    try:
        size = path.stat().st_size
        if size > MAX_SCAN_BYTES:
            return _Text(None, f"larger than {MAX_SCAN_BYTES // (1024 * 1024)} MB")
        data = path.read_bytes()
    except OSError as exc:
        return _Text(None, f"cannot read: {exc.strerror}")
    for bom, codec in ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            return _Text(data.decode(codec, errors="replace").splitlines(), whole=False)
    if b"\0" in data[:8192]:
        head = data[:8192]
        odd, even = head[1::2], head[0::2]
        if odd and odd.count(0) > 0.9 * len(odd):
            return _Text(data.decode("utf-16-le", errors="replace").splitlines(), whole=False)
        if even and even.count(0) > 0.9 * len(even):
            return _Text(data.decode("utf-16-be", errors="replace").splitlines(), whole=False)
        stripped = data.replace(b"\0", b"")
        printable = sum(1 for b in stripped[:8192] if b in b"\t\n\r" or 32 <= b < 127)
        if stripped and printable > 0.95 * min(len(stripped), 8192):
            return _Text(stripped.decode("utf-8", errors="replace").splitlines(), whole=False)
        return _Text(None, "binary")
    return _Text(data.decode("utf-8", errors="replace").splitlines(), whole=size <= MAX_BYTES)


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def conventional_fake(value: str) -> bool:
    """An ellipsis or a conventional test value (`0123456...`, `abcdefg...`, EXAMPLE)."""
    return "..." in value or bool(re.search(r"0123456|abcdefg|xxxxxx|example|placeholder|changeme|redacted", value, re.I))


def plausible_secret(value: str) -> bool:
    """Whether a value next to a secret-ish keyword (`secret = "..."`) could be one: not a word
    or identifier (`SecretReads`, `_rotation`), a sentence, a template, a path or an ARN."""
    v = value.strip("'\"` ")
    if len(v) < 6 or any(c.isspace() for c in v) or re.search(r"[{}$%<>()\[\]]", v):
        return False
    if re.fullmatch(r"[A-Za-z_]+", v) or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z0-9_.]+", v):
        return False  # a word, an identifier, a dotted name
    segments = [x for x in re.split(r"[-_.:/]+", v) if x]
    if len(segments) >= 2 and all(re.fullmatch(r"[A-Za-z]+\d{0,2}|\d+", x) for x in segments):
        return False  # words joined: agents-dev-rotation, kv/dev, aws:secretsmanager/secret:Secret
    if conventional_fake(v):
        return False
    if v.startswith(("arn:", "http://", "https://", "/", "./", "../", "agentfleet", "AgentFleet")):
        return False
    return _entropy(v) >= 2.5


def _service_from_words(text: str, services: Iterable[str]) -> str | None:
    """A service whose name appears as a word of the line (`OPENAI_API_KEY=` -> openai)."""
    norm = re.sub(r"[^a-z0-9]+", "_", text.lower())
    for svc in sorted(services, key=lambda s: (-len(s), s)):
        token = re.sub(r"[^a-z0-9]+", "_", svc)
        if re.search(rf"(^|_){re.escape(token)}(_|$)", norm):
            return svc
    return None


@dataclass
class _Raw:
    line: int
    kind: str
    service: str
    secret: str
    generic: bool


def _detect(path: Path, lines: list[str], whole: bool = True) -> list[_Raw]:
    """detect-secrets' findings plus secretlike's extra shapes, one per value and line."""
    found: list[_Raw] = []
    collection = SecretsCollection()
    if whole:
        collection.scan_file(str(path))
    for secret in sorted(collection.data.get(str(path), ()), key=lambda s: (s.line_number, s.type)):
        value = secret.secret_value
        if not value:
            continue
        if secret.type == "Secret Keyword" and not plausible_secret(value):
            continue
        if secret.type in _GENERIC_TYPES and conventional_fake(value):
            continue
        if secret.type == "Basic Auth Credentials" and is_placeholder(value):
            continue
        generic = secret.type in _GENERIC_TYPES
        shape = next(find_secrets(value), None)
        if shape is not None:
            found.append(_Raw(secret.line_number, shape.kind, shape.service, value, False))
        else:
            found.append(_Raw(secret.line_number, str(secret.type), service_of_type(str(secret.type)), value, generic))
    for number, text in enumerate(lines, start=1):
        hits = list(find_secrets(text))
        if not hits or is_line_allowlisted(str(path), text, get_code_snippet(lines, number)):
            continue  # `# pragma: allowlist secret`, honoured as detect-secrets does
        for hit in hits:
            found.append(_Raw(number, hit.kind, hit.service, hit.secret, False))
    # Merge: a value found by several detectors (or found whole by one and in part by another).
    merged: list[_Raw] = []
    for raw in sorted(found, key=lambda r: (r.line, r.generic, _GENERIC_RANK.get(r.kind, 0), -len(r.secret), r.kind)):
        same = next((m for m in merged if m.line == raw.line and (raw.secret in m.secret or m.secret in raw.secret)), None)
        if same is None:
            merged.append(raw)
    return merged


def _advice(service: str, agent: str | None, homes: list[Home] | None, fleet_source: str | None) -> str:
    if homes is None:
        return "move it to a secret store (pass --fleet agents.yaml to see the exact secret name)"
    if service == "aws":
        role = next((h.role for h in homes if h.agent == agent), None)
        who = f"its IAM role `{role}`" if role else "its own IAM role"
        return f"remove it: an agent never needs an AWS access key, it runs as {who}"
    matches = [h for h in homes if h.service == service]
    mine = [h for h in matches if h.agent == agent]
    where = "; ".join(
        f"{' or '.join(h.locations)} (agent {h.agent}, credential {h.credential})" for h in (mine or matches)
    )
    if mine:
        return f"move it to {where}"
    if matches and agent is not None:
        return f"agent {agent} declares no {service} credential; the fleet keeps {service} keys in {where}"
    if matches:
        return f"move it to {where}"
    if service in _NOT_A_SERVICE:
        return "move it to the agent's secret store (`agentfleet audit` lists every location)"
    return f"no agent in {fleet_source} declares service {service}: declare the credential there, then store the key where `plan` says"


@dataclass(frozen=True, order=True)
class NotScanned:
    file: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:0: not scanned: {self.reason}"


def scan_paths(paths: Iterable[str], plan: dict[str, Any] | None = None, fleet_source: str | None = None,
               not_scanned: list[NotScanned] | None = None) -> list[Finding]:
    """Findings for every file under `paths`; `plan` (from build_plan) maps them to the fleet.
    Files that could not be scanned (binary, too large, listed in IGNORE_FILE) are appended to
    `not_scanned`, so the report can say so instead of skipping them silently."""
    homes = homes_from_plan(plan) if plan is not None else None
    agents = {h.agent for h in homes or []}
    services = KNOWN_SERVICES | {h.service for h in homes or []}
    findings: list[Finding] = []
    skipped = not_scanned if not_scanned is not None else []
    with default_settings():  # every detect-secrets plugin and its default false-positive filters
        for raw in paths:
            base = Path(raw)
            patterns = ignore_patterns(base) if base.is_dir() else []
            for path in iter_files([raw]):
                rel = path.relative_to(base).as_posix() if base.is_dir() else path.name
                pat = _ignored(rel, patterns)
                if pat is not None:
                    skipped.append(NotScanned(str(path), f"listed in {base / IGNORE_FILE} ({pat})"))
                    continue
                findings.extend(_scan_file(path, agents, services, homes, fleet_source, skipped))
    return sorted(set(findings))


def _scan_file(path: Path, agents: set[str], services: Iterable[str], homes: list[Home] | None,
               fleet_source: str | None, skipped: list[NotScanned]) -> list[Finding]:
    """The file's findings; an agent named by a folder of its path narrows the advice to it."""
    findings: list[Finding] = []
    agent = next((part for part in reversed(path.parts) if part in agents), None)
    shown = str(path)
    if is_env_file(path):
        findings.append(Finding(
            shown, 0, "committed .env file", "-", "",
            "delete it from the repository, rotate every key it held, add it to .gitignore and load"
            " the keys from the agent's secret store",
        ))
    content = _read_text(path)
    if content.lines is None:
        skipped.append(NotScanned(shown, content.reason))
        return findings
    lines = content.lines
    for raw in _detect(path, lines, content.whole):
        service = raw.service
        if service == "unknown":
            text = lines[raw.line - 1].replace(raw.secret, " ") if 0 < raw.line <= len(lines) else ""
            service = _service_from_words(text, services) or "unknown"
        if raw.kind in ("Private Key", "PEM private key"):
            masked = "(private key block)"
        else:
            masked = mask(raw.secret, keep=0 if raw.generic else None)
        findings.append(Finding(shown, raw.line, raw.kind, service, masked,
                                _advice(service, agent, homes, fleet_source)))
    return findings


def scan_report(findings: list[Finding], not_scanned: list[NotScanned] | None = None) -> str:
    skipped = sorted(set(not_scanned or []))
    tail = [str(n) for n in skipped]
    if skipped:
        tail.append(f"{len(skipped)} file(s) not scanned (listed above): check them by hand")
    if not findings:
        return "\n".join(tail + ["no hard-coded credentials found"]) + "\n"
    files = len({f.file for f in findings})
    lines = [str(f) for f in findings] + tail
    lines.append(f"{len(findings)} finding(s) in {files} file(s); every exposed key must also be rotated")
    return "\n".join(lines) + "\n"
