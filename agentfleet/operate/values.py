"""Writing external credential values: the one place that knows how a value reaches each store.

A credential that is not `generated` gets its value from a human after `pulumi up`. This module
turns the plan into `ValueTarget`s (every store a credential lives in), checks the value's shape
against what its rotation strategy reads, writes it with the operator's own clients through
`STORE_WRITERS` (a dict of per-store functions: a new store such as SSM adds one entry), reads it
back to verify, and records progress (identifiers only) so an interrupted run resumes.

Values are never printed, logged or kept: errors name the credential and the problem, never the
value; the progress file holds `agent/credential` keys only.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from agentfleet.core import naming
from agentfleet.core.plan import has_generated_value
from agentfleet.rotation import credential
from agentfleet.rotation.credential import KEY_FIELD, REF_FIELDS, Credential

ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
"""Provider identifiers (OpenAI project/key/service-account ids): the handler refuses anything else."""


class ShapeError(ValueError):
    """The value does not have the shape its strategy reads. The message never contains the value."""


class StoreError(RuntimeError):
    """A store refused a write or a read-back (store name and error code only)."""


@dataclass(frozen=True)
class ValueTarget:
    """One external credential and every store its value must reach."""

    agent: str
    credential: str
    service: str
    strategy: str
    stores: tuple[str, ...]
    secret_name: str | None = None
    vault_mount: str | None = None
    vault_path: str | None = None
    ssm_parameter: str | None = None
    kms_key_alias: str | None = None
    """The environment key: an SSM SecureString is encrypted with it (never the AWS-managed key)."""
    plan: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)
    """The credential's whole plan entry: a new store's writer reads its own location from it."""

    @property
    def key(self) -> str:
        return f"{self.agent}/{self.credential}"

    def where(self, store: str) -> str:
        """Where the value goes in `store`, as the operator would look it up."""
        writer = STORE_WRITERS.get(store)
        return writer.where(self) if writer else f"store {store!r}"


def value_targets(plan: Mapping[str, Any]) -> list[ValueTarget]:
    """Every credential a human writes (all but `generated`), in plan order (agents by name)."""
    out: list[ValueTarget] = []
    for a in plan["agents"]:
        for c in a["credentials"]:
            if has_generated_value(c["rotation_strategy"]):
                continue
            stores = tuple(c["stores"])  # every store, also one without a writer yet: that write fails loudly
            out.append(ValueTarget(
                agent=a["name"], credential=c["name"], service=c["service"], strategy=c["rotation_strategy"],
                stores=stores, secret_name=c.get("secret_name"), vault_mount=c.get("vault_mount"),
                vault_path=c.get("vault_path"), ssm_parameter=c.get("ssm_parameter"),
                kms_key_alias=plan.get("kms_key_alias"), plan=dict(c),
            ))
    return out


# ---- shapes ----


def _single_key(raw: str, field_name: str | None = None) -> str:
    where = f"(field {field_name!r}) " if field_name else ""
    if not raw or raw != raw.strip():
        raise ShapeError(f"{where}is empty or has leading/trailing whitespace")
    if any(ch.isspace() for ch in raw):
        raise ShapeError(f"{where}contains whitespace (a pasted block or a second line?)")
    return raw


def _json_object(raw: str) -> dict[str, Any] | None:
    if not raw.lstrip().startswith("{"):
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        raise ShapeError("starts with '{' but is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ShapeError("is JSON but not an object")
    return doc


def _checked_fields(doc: Mapping[str, Any], allowed: Iterable[str]) -> dict[str, Any]:
    allowed = set(allowed)
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise ShapeError(f"unknown field(s) {unknown}; allowed: {sorted(allowed)}")
    value = doc.get(KEY_FIELD)
    if not isinstance(value, str):
        raise ShapeError(f"has no string field {KEY_FIELD!r}")
    out = dict(doc)
    out[KEY_FIELD] = _single_key(value, KEY_FIELD)
    for f in REF_FIELDS:
        if f in out and f not in ("strategy", "created_at") and not (isinstance(out[f], str) and ID_RE.match(out[f])):
            raise ShapeError(f"field {f!r} must be an identifier ([A-Za-z0-9_-], 1-128 chars)")
    return out


def _plain_shape(raw: str) -> tuple[Credential, list[str]]:
    """Any strategy without special needs: one key (plain text) or {"api_key": ...}."""
    doc = _json_object(raw)
    if doc is None:
        return {KEY_FIELD: _single_key(raw)}, []
    return _checked_fields(doc, {KEY_FIELD}), []


def _openai_shape(raw: str) -> tuple[Credential, list[str]]:
    """What the openai strategy reads: the key, plus the ids that let it revoke this key later."""
    doc = _json_object(raw)
    cred = {KEY_FIELD: _single_key(raw)} if doc is None else _checked_fields(
        doc, {KEY_FIELD, "key_id", "project_id", "service_account_id"})
    notes = []
    if "key_id" not in cred:
        notes.append("no key_id: rotation cannot revoke this first key; revoke it at the provider after the first rotation")
    if "project_id" not in cred:
        notes.append("no project_id: the first rotation mints the new key in the admin secret's default project")
    return cred, notes


SHAPES: dict[str, Callable[[str], tuple[Credential, list[str]]]] = {"openai": _openai_shape}
"""Strategy -> shape check; strategies not listed take one plain key (`_plain_shape`)."""


def shape_value(strategy: str, raw: str, fields: Iterable[Mapping[str, Any]] | None = None) -> tuple[Credential, list[str]]:
    """The credential document to store, and notes for the operator (never the value). A
    credential with declared `fields` (other than the single `api_key`) must be one JSON object
    with exactly those fields (`credential_rules.check_value`, the check rotation also applies)."""
    from agentfleet.core.credential_rules import check_value
    from agentfleet.core.model import FIELD_PRESETS

    declared = tuple((str(f["name"]), bool(f["sensitive"])) for f in fields or ())
    if declared and declared != FIELD_PRESETS["api_key"]:
        problems = check_value(declared, raw)
        if problems:
            raise ShapeError("; ".join(problems))
        doc: Credential = json.loads(raw)
        return doc, []
    return SHAPES.get(strategy, _plain_shape)(raw)


def shape_help(strategy: str) -> str:
    if strategy == "openai":
        return '{"api_key": "...", "key_id": "key_...", "project_id": "proj_..."} (or the bare key)'
    return "the key itself (one line), or {\"api_key\": \"...\"}"


# ---- stores ----


@dataclass
class Clients:
    """The operator's own clients, created on first use (`factories`: store -> () -> client)."""

    factories: Mapping[str, Callable[[], Any]]
    _made: dict[str, Any] = field(default_factory=dict)

    def get(self, store: str) -> Any:
        if store not in self._made:
            if store not in self.factories:
                raise StoreError(f"{store}: no client configured")
            self._made[store] = self.factories[store]()
        return self._made[store]


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if isinstance(code, str):
            return code
    return type(exc).__name__


def _aws_write(client: Any, t: ValueTarget, cred: Credential) -> None:
    client.put_secret_value(SecretId=t.secret_name, SecretString=credential.dumps(cred))


def _aws_read(client: Any, t: ValueTarget) -> Credential | None:
    doc = client.get_secret_value(SecretId=t.secret_name, VersionStage="AWSCURRENT")
    return credential.parse(doc["SecretString"]) if "SecretString" in doc else None


def _vault_write(client: Any, t: ValueTarget, cred: Credential) -> None:
    client.secrets.kv.v2.create_or_update_secret(
        mount_point=t.vault_mount, path=t.vault_path, secret={naming.VAULT_VALUE_KEY: cred[KEY_FIELD]})


def _vault_read(client: Any, t: ValueTarget) -> Credential | None:
    doc = client.secrets.kv.v2.read_secret_version(mount_point=t.vault_mount, path=t.vault_path,
                                                   raise_on_deleted_version=True)
    value = doc["data"]["data"].get(naming.VAULT_VALUE_KEY)
    return {KEY_FIELD: value} if isinstance(value, str) else None


def _ssm_write(client: Any, t: ValueTarget, cred: Credential) -> None:
    client.put_parameter(Name=t.ssm_parameter, Value=cred[KEY_FIELD], Type="SecureString", KeyId=t.kms_key_alias,
                         Overwrite=True)


def _ssm_read(client: Any, t: ValueTarget) -> Credential | None:
    value = client.get_parameter(Name=t.ssm_parameter, WithDecryption=True)["Parameter"].get("Value")
    return {KEY_FIELD: value} if isinstance(value, str) else None


@dataclass(frozen=True)
class StoreWriter:
    write: Callable[[Any, ValueTarget, Credential], None]
    read: Callable[[Any, ValueTarget], Credential | None]
    matches: Callable[[Credential, Credential | None], bool]
    where: Callable[[ValueTarget], str]


STORE_WRITERS: dict[str, StoreWriter] = {
    # Secrets Manager holds the whole credential document (the key and its revocation ids).
    "aws": StoreWriter(_aws_write, _aws_read, lambda want, got: got == want,
                       lambda t: f"Secrets Manager {t.secret_name}"),
    # Vault holds the key alone under `value`, as the rotation's Vault sync writes it.
    "vault": StoreWriter(_vault_write, _vault_read, lambda want, got: got is not None and got.get(KEY_FIELD) == want[KEY_FIELD],
                         lambda t: f"Vault {t.vault_mount}/{t.vault_path}"),
    # Parameter Store holds the key alone, a SecureString under the environment key.
    "ssm": StoreWriter(_ssm_write, _ssm_read, lambda want, got: got is not None and got.get(KEY_FIELD) == want[KEY_FIELD],
                       lambda t: f"Parameter Store {t.ssm_parameter}"),
}


def write_value(t: ValueTarget, cred: Credential, clients: Clients) -> list[str]:
    """Write to every store of `t`, then read each back; the stores written. Raises StoreError."""
    missing = [s for s in t.stores if s not in STORE_WRITERS]
    if missing:  # before any write: never one store updated and another silently left behind
        raise StoreError(f"{t.key}: no writer for store(s) {missing} (add one to STORE_WRITERS in agentfleet/operate/values.py)")
    done = []
    for store in t.stores:
        writer = STORE_WRITERS[store]
        try:
            client = clients.get(store)
            writer.write(client, t, cred)
            got = writer.read(client, t)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"{t.where(store)}: {_error_code(exc)}") from None
        if not writer.matches(cred, got):
            raise StoreError(f"{t.where(store)}: read-back does not match what was written")
        done.append(store)
    return done


# ---- progress (resume after an interruption) ----


class Progress:
    """`agent/credential` keys whose value reached (and was verified in) every store. No values."""

    def __init__(self, path: Path):
        self.path = path
        self.done: set[str] = set()
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            self.done = {str(k) for k in doc.get("done", [])}
        except (OSError, ValueError, AttributeError):
            self.done = set()

    def mark(self, key: str) -> None:
        self.done.add(key)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"done": sorted(self.done)}, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)

    def clear(self) -> None:
        self.done = set()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def progress_path(project: Path, stack: str) -> Path:
    return project / ".agentfleet" / f"put-values.{stack}.json"


# ---- non-interactive input: `AGENT/CREDENTIAL=VALUE` lines ----


def parse_value_lines(text: str, targets: Iterable[ValueTarget]) -> tuple[dict[str, str], list[str]]:
    """Values by target key, and problems (line numbers, never values). Blank and `#` lines skip."""
    known = {t.key for t in targets}
    values: dict[str, str] = {}
    problems: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep:
            problems.append(f"line {n}: expected AGENT/CREDENTIAL=VALUE")
        elif key not in known:
            problems.append(f"line {n}: {key!r} is not an external credential of the fleet")
        elif key in values:
            problems.append(f"line {n}: {key} given twice")
        else:
            values[key] = value
    return values, problems


# ---- `.env` files ----


@dataclass(frozen=True)
class EnvVar:
    name: str
    line: int
    value: str


_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def parse_env_file(text: str) -> list[EnvVar]:
    """`NAME=value` lines (optional `export`, quotes, trailing ` # comment` after unquoted values)."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _ENV_LINE.match(line)
        if not m:
            continue
        name, value = m.group(1), m.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0]
        if value:
            out.append(EnvVar(name, n, value))
    return out


def _words(text: str) -> str:
    return "_" + re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") + "_"


def _mentions(name: str, word: str) -> bool:
    return _words(word) in _words(name)


@dataclass
class EnvMapping:
    mapped: dict[str, ValueTarget] = field(default_factory=dict)
    """Variable -> the credential it belongs to."""
    ambiguous: dict[str, list[ValueTarget]] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Variables the mapping file maps to nothing on purpose."""
    problems: list[str] = field(default_factory=list)


def map_env_vars(
    env: Iterable[EnvVar], targets: list[ValueTarget], explicit: Mapping[str, str | None] | None = None,
    agent: str | None = None,
) -> EnvMapping:
    """Map each variable to one credential: the mapping file first, else by the service (and
    credential, agent) names in the variable's name, as `scan` maps findings. Two candidates, or
    two variables for one credential, make the mapping ambiguous."""
    explicit = dict(explicit or {})
    by_key = {t.key: t for t in targets}
    pool = [t for t in targets if agent is None or t.agent == agent]
    out = EnvMapping()
    for var in env:
        if var.name in explicit:
            want = explicit[var.name]
            if want is None or want == "":
                out.skipped.append(var.name)
            elif want in by_key:
                out.mapped[var.name] = by_key[want]
            else:
                out.problems.append(f"mapping: {var.name} -> {want!r} is not an external credential of the fleet")
            continue
        cands = [t for t in pool if _mentions(var.name, t.service) or _mentions(var.name, t.credential)]
        if len(cands) > 1:  # narrow: the credential's own name, then the agent's name
            for attr in ("credential", "agent"):
                narrowed = [t for t in cands if _mentions(var.name, getattr(t, attr))]
                if narrowed:
                    cands = narrowed
                if len(cands) == 1:
                    break
        if len(cands) == 1:
            out.mapped[var.name] = cands[0]
        elif cands:
            out.ambiguous[var.name] = cands
        else:
            out.unmapped.append(var.name)
    claimed: dict[str, list[str]] = {}
    for name, t in out.mapped.items():
        claimed.setdefault(t.key, []).append(name)
    for key, names in claimed.items():
        if len(names) > 1:
            for name in names:
                out.ambiguous[name] = [by_key[key]]
                del out.mapped[name]
            out.problems.append(f"{' and '.join(sorted(names))} all map to {key}: say which one in the mapping file")
    return out


def load_mapping_file(path: Path) -> dict[str, str | None]:
    """`VAR: agent/credential` per line (YAML mapping); `VAR: null` skips a variable on purpose."""
    import yaml

    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(doc, dict) or not all(isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in doc.items()):
        raise ValueError(f"{path}: expected a mapping VAR: agent/credential (or null to skip)")
    return dict(doc)


def mapping_template(m: EnvMapping) -> str:
    """A mapping file the operator completes: one line per ambiguous variable, its candidates listed."""
    lines = ["# agentfleet put-values --from-env-file ... --mapping THIS_FILE", "# VAR: agent/credential   (null = do not import)"]
    for name, cands in sorted(m.ambiguous.items()):
        lines.append(f"{name}: null   # one of: {', '.join(t.key for t in cands)}")
    return "\n".join(lines) + "\n"
