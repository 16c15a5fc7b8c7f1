"""The only way into the fleet model: read `agents.yaml`, report every problem with its line.

A bad file yields `FleetError` with one `Problem` per mistake (all of them, not the first), so
nothing downstream ever sees a half-valid fleet. Line numbers come from the YAML node marks
(libyaml's C parser); types and unknown keys from the strict pydantic schema; the rules that span
fields (duplicates, class limits, trust shape, secret-shaped strings) are checked here.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from pydantic import BaseModel, ValidationError
import yaml

from agentfleet.core.model import (
    BUILTIN_CLASSIFICATIONS,
    FORMAT_VERSION,
    NAME_RULE,
    ROLE_ARN_RE,
    ROTATION_STRATEGIES,
    SERVICE_RE,
    Agent,
    ClassificationSpec,
    Credential,
    Defaults,
    Fleet,
    FleetFile,
    GithubOidc,
    ResolvedAgent,
    ResolvedCredential,
    Rotation,
    Network,
    Runtime,
)
from agentfleet.core.secretlike import find_secrets, looks_like_secret, mask

Loc = tuple[str | int, ...]

# Keys that only ever appear to hold a credential's value. The file must never carry one.
SECRET_KEYS = frozenset(
    {"value", "secret", "secret_value", "secrets", "password", "api_key", "apikey", "key_value",
     "private_key", "token", "access_key", "secret_key", "client_secret"}
)
SECRET_FIX = (
    "agents.yaml must never hold a credential value: remove it, rotate the exposed key, and write"
    " the new value to its store out of band (see `agentfleet plan` for the exact"
    " secret name)"
)


@dataclass(frozen=True, order=True)
class Problem:
    """One mistake in a fleet file. `line` is 1-based; 0 means the file as a whole."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


_TOKEN_STOP = frozenset(" \t\r\n'\"`(),;")


def _secret_token(text: str, fragment: str) -> str:
    """The whole key around a detector's match (some detectors report only a prefix like `ghp`)."""
    start = text.find(fragment)
    if start < 0:
        return fragment
    end = start + len(fragment)
    while start > 0 and text[start - 1] not in _TOKEN_STOP:
        start -= 1
    while end < len(text) and text[end] not in _TOKEN_STOP:
        end += 1
    return text[start:end]


def _redact(message: str) -> str:
    """Mask credential-shaped text: schema and YAML errors echo the offending input verbatim."""
    for _ in range(3):
        hits = list(find_secrets(message))
        if not hits:
            break
        for hit in hits:
            token = _secret_token(message, hit.secret)
            message = message.replace(token, mask(token))
    return message


class FleetError(Exception):
    """Raised by `load_fleet` with every problem found in the file (credentials masked)."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted({Problem(p.file, p.line, _redact(p.message)) for p in problems})
        super().__init__("\n".join(str(p) for p in self.problems))


class _Positions:
    """Maps a data path (keys and indexes) to the line it was written on."""

    def __init__(self) -> None:
        self.key_line: dict[Loc, int] = {}
        self.value_line: dict[Loc, int] = {}

    def line(self, loc: Loc, *, key: bool = False) -> int:
        """Line of the deepest known prefix of `loc` (a missing key points at its parent)."""
        table = self.key_line if key else self.value_line
        for end in range(len(loc), 0, -1):
            if loc[:end] in table:
                return table[loc[:end]]
        return 1


# libyaml's C parser when the wheel has it (about 10x faster than pure Python on large fleets).
_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Builder:
    """YAML node tree -> JSON-able builtins, recording every key's and item's line on the way.

    Composing nodes (not constructing objects) keeps the marks; duplicate keys, which plain
    YAML loading silently collapses, are reported instead.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.pos = _Positions()
        self.problems: list[Problem] = []
        self._scalars = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, loc: Loc = ()) -> Any:
        if isinstance(node, yaml.MappingNode):
            self._scalars.flatten_mapping(node)  # `<<: *anchor` merge keys
            out: dict[str, Any] = {}
            for knode, vnode in node.value:
                key = str(self._scalar(knode)) if isinstance(knode, yaml.ScalarNode) else "<complex key>"
                kloc, kline = loc + (key,), knode.start_mark.line + 1
                if key in out:
                    first = self.pos.key_line[kloc]
                    self.problems.append(Problem(
                        self.source, kline,
                        f'{_where(loc)}: found duplicate key "{key}" (first on line {first});'
                        " YAML would silently keep only one",
                    ))
                    continue
                value = self.build(vnode, kloc)
                self.pos.key_line[kloc] = kline
                # A block mapping/list "starts" on its first child's line and a missing value
                # after the last key "starts" past the end of the file: point at the key instead.
                container = value is None or isinstance(vnode, (yaml.MappingNode, yaml.SequenceNode))
                self.pos.value_line[kloc] = kline if container else vnode.start_mark.line + 1
                out[key] = value
            return out
        if isinstance(node, yaml.SequenceNode):
            items = []
            for i, item in enumerate(node.value):
                line = item.start_mark.line + 1
                self.pos.key_line[loc + (i,)] = self.pos.value_line[loc + (i,)] = line
                items.append(self.build(item, loc + (i,)))
            return items
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        # YAML 1.2 booleans only: `yes`/`no`/`on`/`off` stay strings (the "Norway problem").
        if node.tag == "tag:yaml.org,2002:bool" and str(node.value).lower() not in ("true", "false"):
            return str(node.value)
        value = self._scalars.construct_object(node)
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        return str(value)  # dates, timestamps, binary: the schema will say what it expected


def _where(loc: Loc) -> str:
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for "the key itself", not a path segment
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "file"


def _fields(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


# Which model a mapping at a given path is, to suggest the right key for a typo.
def _model_at(loc: Loc) -> type[BaseModel] | None:
    names = [p for p in loc if isinstance(p, str)]
    table: dict[tuple[str, ...], type[BaseModel]] = {
        (): FleetFile,
        ("defaults",): Defaults,
        ("agents",): Agent,
        ("agents", "runtime"): Runtime,
        ("agents", "network"): Network,
        ("agents", "runtime", "github_oidc"): GithubOidc,
        ("agents", "credentials"): Credential,
        ("agents", "credentials", "rotation"): Rotation,
    }
    if names[:1] == ["classifications"] and len(names) == 2:
        return ClassificationSpec
    return table.get(tuple(names))


def _suggest(key: str, loc: Loc) -> str:
    model = _model_at(loc)
    if model is None:
        return ""
    close = difflib.get_close_matches(key, _fields(model), n=1, cutoff=0.6)
    allowed = ", ".join(f for f in _fields(model) if f != "$schema")
    return f" (did you mean `{close[0]}`?)" if close else f" (allowed: {allowed})"


_TYPE_WORDS = {
    "int_type": "an integer", "string_type": "a string", "bool_type": "true or false",
    "list_type": "a list", "tuple_type": "a list", "dict_type": "a mapping",
    "model_type": "a mapping", "model_attributes_type": "a mapping", "int_from_float": "an integer",
}


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return f"{type(value).__name__} {value!r}"


def _message(err: Any, loc: Loc) -> str:
    kind = err["type"]
    where = _where(loc)
    field = next((p for p in reversed(loc) if isinstance(p, str)), "")
    value = err.get("input")
    if kind == "missing":
        return f"{where}: required key `{field}` is missing"
    if kind == "string_pattern_mismatch" and field == "name":
        return f"{where}: invalid name {value!r}: use {NAME_RULE}"
    if kind == "string_pattern_mismatch" and loc[-1] == "[key]":
        return f"{where}: invalid classification name {loc[-2]!r}: use {NAME_RULE}"
    if kind == "string_pattern_mismatch":
        return f"{where}: invalid value {value!r} (must match {err['ctx']['pattern']})"
    if kind == "literal_error" and field == "version":
        return f"version: unsupported format version {value!r}; this tool reads `version: {FORMAT_VERSION}`"
    if kind == "literal_error":
        return f"{where}: {value!r} is not allowed; expected {err['ctx']['expected']}"
    if kind in _TYPE_WORDS:
        return f"{where}: expected {_TYPE_WORDS[kind]}, got {_describe(value)}"
    if kind in ("too_short",) and isinstance(value, (list, tuple)):
        return f"{where}: must not be empty"
    if kind == "greater_than_equal":
        return f"{where}: {value!r} is too small; the minimum is {err['ctx']['ge']}"
    if kind == "less_than_equal":
        return f"{where}: {value!r} is too large; the maximum is {err['ctx']['le']}"
    if kind == "value_error":
        return f"{where}: {str(err['msg']).removeprefix('Value error, ')}"
    return f"{where}: {err['msg']}"


class _Checker:
    """Cross-field rules, run on the raw data so they report even when types are wrong."""

    def __init__(self, file: str, pos: _Positions):
        self.file, self.pos = file, pos
        self.problems: list[Problem] = []
        self.default_stores: Any = []

    def add(self, loc: Loc, message: str, *, key: bool = False) -> None:
        self.problems.append(Problem(self.file, self.pos.line(loc, key=key), message))

    def secrets(self, node: Any, loc: Loc = ()) -> Iterator[Loc]:
        """Report secret-shaped keys and values; yield locs of secret keys (not also 'unknown')."""
        if isinstance(node, dict):
            for k, v in node.items():
                key_hit = looks_like_secret(k)
                if key_hit:
                    shown = mask(_secret_token(k, key_hit.secret))
                    self.add(loc + (k,), f"{_where(loc)}: a key looks like a real credential ({key_hit.kind}, {shown}); {SECRET_FIX}", key=True)
                    yield loc + (k,)
                    continue
                if k.lower() in SECRET_KEYS:
                    self.add(loc + (k,), f"{_where(loc + (k,))}: a `{k}` field looks like a secret value; {SECRET_FIX}", key=True)
                    yield loc + (k,)
                    continue
                yield from self.secrets(v, loc + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from self.secrets(v, loc + (i,))
        elif isinstance(node, str):
            hit = looks_like_secret(node)
            if hit:
                shown = mask(_secret_token(node, hit.secret))
                self.add(loc, f"{_where(loc)}: value looks like a real credential ({hit.kind}, {shown}); {SECRET_FIX}")

    def rules(self, data: dict[str, Any]) -> None:
        classes = dict(BUILTIN_CLASSIFICATIONS)
        custom = data.get("classifications")
        if isinstance(custom, dict):
            for cname, spec in custom.items():
                days = spec.get("max_rotation_days") if isinstance(spec, dict) else None
                if not isinstance(days, int) or isinstance(days, bool):
                    continue
                if cname in BUILTIN_CLASSIFICATIONS and days > BUILTIN_CLASSIFICATIONS[cname]:
                    self.add(("classifications", cname), f"classifications.{cname}: built-in class `{cname}` allows at most {BUILTIN_CLASSIFICATIONS[cname]} days; it may be tightened, not loosened to {days}", key=True)
                else:
                    classes[cname] = days
        defaults = data.get("defaults")
        self.default_stores = defaults.get("stores", []) if isinstance(defaults, dict) else []
        agents = data.get("agents")
        if not isinstance(agents, list):
            return
        seen: dict[str, int] = {}
        for i, agent in enumerate(agents):
            if not isinstance(agent, dict):
                continue
            name = agent.get("name")
            if isinstance(name, str):
                if name in seen:
                    self.add(("agents", i, "name"), f"agents[{i}].name: duplicate agent name {name!r} (first defined on line {seen[name]}); agent names must be unique in the fleet")
                else:
                    seen[name] = self.pos.line(("agents", i, "name"))
            self.runtime(agent.get("runtime"), ("agents", i, "runtime"))
            creds = agent.get("credentials")
            if isinstance(creds, list):
                self.credentials(creds, ("agents", i, "credentials"), classes)

    def runtime(self, rt: Any, loc: Loc) -> None:
        if not isinstance(rt, dict):
            return
        kinds = [k for k in ("service", "role_arns", "github_oidc") if rt.get(k) is not None]
        if len(kinds) != 1:
            found = ", ".join(kinds) if kinds else "none"
            self.add(loc, f"{_where(loc)}: declare exactly one of service, role_arns, github_oidc (found: {found})", key=True)
        svc = rt.get("service")
        if isinstance(svc, str) and not SERVICE_RE.match(svc):
            self.add(loc + ("service",), f"{_where(loc + ('service',))}: {svc!r} is not an AWS service principal (e.g. ecs-tasks.amazonaws.com); wildcards are never allowed")
        arns = rt.get("role_arns")
        if isinstance(arns, list):
            for j, arn in enumerate(arns):
                if not isinstance(arn, str):
                    continue
                where = loc + ("role_arns", j)
                if "*" in arn or "?" in arn:
                    self.add(where, f"{_where(where)}: wildcard principal {arn!r}; name the exact role ARN that runs the agent")
                elif arn.isdigit() or arn.endswith(":root"):
                    self.add(where, f"{_where(where)}: {arn!r} trusts a whole account; name the exact role ARN that runs the agent")
                elif not ROLE_ARN_RE.match(arn):
                    self.add(where, f"{_where(where)}: {arn!r} is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)")

    def credentials(self, creds: list[Any], loc: Loc, classes: dict[str, int]) -> None:
        seen: dict[str, int] = {}
        for j, cred in enumerate(creds):
            if not isinstance(cred, dict):
                continue
            here = loc + (j,)
            name = cred.get("name")
            if isinstance(name, str):
                if name in seen:
                    self.add(here + ("name",), f"{_where(here + ('name',))}: duplicate credential name {name!r} in this agent (first on line {seen[name]})")
                else:
                    seen[name] = self.pos.line(here + ("name",))
            cls = cred.get("classification", "internal")
            max_days = classes.get(cls) if isinstance(cls, str) else None
            if isinstance(cls, str) and max_days is None:
                known = ", ".join(sorted(classes))
                self.add(here + ("classification",), f"{_where(here + ('classification',))}: unknown classification {cls!r} (known: {known}; add custom ones under `classifications:`)")
            rot = cred.get("rotation")
            self.ssm_rotation(cred, rot, here)
            if not isinstance(rot, dict):
                continue
            strategy = rot.get("strategy", "manual")
            if isinstance(strategy, str) and strategy not in ROTATION_STRATEGIES:
                self.add(here + ("rotation", "strategy"), f"{_where(here + ('rotation', 'strategy'))}: unknown rotation strategy {strategy!r} (expected one of: {', '.join(ROTATION_STRATEGIES)})")
            days = rot.get("days")
            if isinstance(days, int) and not isinstance(days, bool) and max_days is not None and days > max_days:
                self.add(here + ("rotation", "days"), f"{_where(here + ('rotation', 'days'))}: {days} days exceeds the {max_days}-day maximum of classification {cls!r}")


    def ssm_rotation(self, cred: dict[str, Any], rot: Any, here: Loc) -> None:
        """Parameter Store has no rotation protocol: only a human (`manual`) rotates an `ssm` copy."""
        stores = cred.get("stores", self.default_stores)
        strategy = rot.get("strategy", "manual") if isinstance(rot, dict) else "manual"
        if isinstance(stores, list) and "ssm" in stores and isinstance(strategy, str) and strategy != "manual":
            self.add(here + ("stores",) if "stores" in cred else here, f"{_where(here)}: stores include `ssm` but rotation strategy is {strategy!r}; Parameter Store has no rotation protocol, so an automated rotation would leave its copy stale: use `rotation: {{strategy: manual}}` for it (a reminder asks a human to rotate), or drop `ssm` from its stores", key="stores" in cred)


def _resolve(raw: FleetFile, source: str) -> Fleet:
    classes = dict(BUILTIN_CLASSIFICATIONS)
    classes.update({k: v.max_rotation_days for k, v in raw.classifications.items()})
    agents = []
    for a in raw.agents:
        owner = a.owner or raw.defaults.owner
        creds = tuple(
            ResolvedCredential(
                name=c.name,
                service=c.service,
                type=c.type,
                classification=c.classification,
                max_rotation_days=classes[c.classification],
                rotation_strategy=c.rotation.strategy,
                rotation_days=c.rotation.days or classes[c.classification],
                stores=tuple(sorted(set(c.stores or raw.defaults.stores))),
                description=c.description,
            )
            for c in a.credentials
        )
        agents.append(
            ResolvedAgent(
                name=a.name, owner=owner or "unowned", description=a.description,
                runtime=a.runtime, paused=a.paused, credentials=creds, network=a.network,
            )
        )
    return Fleet(source=source, classifications=classes, agents=tuple(agents))


def parse_fleet(text: str, source: str) -> Fleet:
    """Validate fleet text; raise FleetError listing every problem, each with its line."""
    try:
        root = yaml.compose(text, Loader=_YamlLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        detail = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        raise FleetError([Problem(source, line, f"YAML syntax error: {detail}")]) from None
    except yaml.YAMLError as exc:
        raise FleetError([Problem(source, 1, f"YAML error: {exc}")]) from None
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == "tag:yaml.org,2002:null"):
        raise FleetError([Problem(source, 1, f"empty fleet file: start with `version: {FORMAT_VERSION}` and an `agents:` list")])
    if not isinstance(root, yaml.MappingNode):
        raise FleetError([Problem(source, 1, "the fleet file must be a mapping with `version:` and `agents:` at the top level")])

    builder = _Builder(source)
    try:
        data = builder.build(root)
    except yaml.YAMLError as exc:  # e.g. a bad merge key
        mark = getattr(exc, "problem_mark", None)
        raise FleetError([Problem(source, mark.line + 1 if mark else 1, f"YAML error: {exc}")]) from None
    return _validated(data, source, builder.pos, builder.problems)


def _validated(data: Any, source: str, pos: _Positions, problems: list[Problem]) -> Fleet:
    """The one validation every fleet goes through, from a file or built in code."""
    checker = _Checker(source, pos)
    secret_locs = set(checker.secrets(data))
    checker.rules(data)
    problems = problems + checker.problems

    raw: FleetFile | None = None
    try:
        raw = FleetFile.model_validate_json(json.dumps(data), strict=True)
    except ValidationError as exc:
        for err in exc.errors():
            loc: Loc = tuple(err["loc"])
            if err["type"] == "extra_forbidden":
                if loc in secret_locs:
                    continue
                key = str(loc[-1])
                problems.append(Problem(source, pos.line(loc, key=True), f"{_where(loc)}: unknown key `{key}`{_suggest(key, loc[:-1])}"))
                continue
            if err["type"] == "too_short" and len(err["input"]) > 0:
                continue  # pydantic counts only valid items; their own errors are reported
            if err["type"] == "too_short" and loc == ("agents",):
                problems.append(Problem(source, pos.line(loc, key=True), "agents: the fleet is empty; declare at least one agent"))
                continue
            if loc and loc[-1] == "[key]":
                problems.append(Problem(source, pos.line(loc[:-1], key=True), _message(err, loc)))
                continue
            problems.append(Problem(source, pos.line(loc, key=err["type"] == "missing"), _message(err, loc)))
    if problems or raw is None:
        raise FleetError(problems)
    return _resolve(raw, source)


def build_fleet(data: Mapping[str, Any], source: str = "<code>") -> Fleet:
    """Validate a fleet built in code (the same document `agents.yaml` holds, as plain data):
    the same checks and messages as a file, with `source` in place of the file name."""
    try:
        plain = json.loads(json.dumps(data))
    except (TypeError, ValueError) as exc:
        raise FleetError([Problem(source, 1, f"the fleet must be plain data (dicts, lists, strings, numbers): {exc}")]) from None
    if not isinstance(plain, dict):
        raise FleetError([Problem(source, 1, "the fleet must be a mapping with `version:` and `agents:` at the top level")])
    return _validated(plain, source, _Positions(), [])


def load_fleet(path: str | Path) -> Fleet:
    """Read and validate a fleet file. OSError propagates (the caller decides: usage error)."""
    p = Path(path)
    return parse_fleet(p.read_text(encoding="utf-8"), str(path))
