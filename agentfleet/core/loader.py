"""The only way into the fleet model: read `agents.yaml`, report every problem with its line.

A bad file yields `FleetError` with one `Problem` per mistake (all of them, not the first), so
nothing downstream ever sees a half-valid fleet. Line numbers come from the marks of libyaml's
event stream (its C parser, read once: the values are built from the events with the composer's
rules, no node tree); types and unknown keys from the strict pydantic schema; the rules that span
fields (duplicates, class limits, trust shape, secret-shaped strings) are checked here.
"""

from __future__ import annotations

import difflib
import gc
import json
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from pydantic import BaseModel, ValidationError
import yaml

from agentfleet.core.model import (
    BUILTIN_CLASSIFICATIONS,
    FORMAT_VERSION,
    NAME_RULE,
    NOT_OVERRIDABLE,
    ROLE_ARN_RE,
    EKS_POD_IDENTITY_SERVICE,
    FEDERATED_SERVICES,
    KEYLESS_STRATEGY,
    KEYLESS_TYPE,
    ROTATION_STRATEGIES,
    RUNTIME_KINDS,
    SERVICE_RE,
    SOURCE_ARN_RE,
    Agent,
    ClassificationSpec,
    Credential,
    Defaults,
    EksPodIdentity,
    Federation,
    Fleet,
    FleetFile,
    GithubOidc,
    Irsa,
    ResolvedAgent,
    ResolvedCredential,
    Rotation,
    Network,
    Runtime,
)
from agentfleet.core import reuse
from agentfleet.core.credential_rules import credential_problems, declared_fields
from agentfleet.core.secretlike import find_secrets, looks_like_secret, mask
from agentfleet.core.settings import StackSettings

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

    def orig(self, loc: Loc) -> Loc:
        """Where `loc` was written (environment views map merged values to their override)."""
        return loc

    def line(self, loc: Loc, *, key: bool = False) -> int:
        """Line of the deepest known prefix of `loc` (a missing key points at its parent)."""
        table = self.key_line if key else self.value_line
        for end in range(len(loc), 0, -1):
            if loc[:end] in table:
                return table[loc[:end]]
        return 1


# libyaml's C parser when the wheel has it (about 10x faster than pure Python on large fleets).
_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Bounds on hostile input, each with its own message. A real fleet is far inside all of them
# (5,000 agents with two credentials each: about 2 MB, depth 10, no aliases).
MAX_FILE_BYTES = 8 * 1024 * 1024
"""Larger files are refused before parsing."""
MAX_DEPTH = 32
"""Nesting of mappings/lists (the format needs about 10); deeper input crashes libyaml's composer."""
MAX_VALUES = 2_000_000
"""Values built from the file in total, aliases expanded."""
MAX_ALIAS_VALUES = 100_000
"""Values reached again through an alias or merge key (`*a`, `<<: *a`): caps alias bombs."""

_STANDARD_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "timestamp", "map", "seq", "merge")
)
_STR_TAG = "tag:yaml.org,2002:str"
_SCALAR_WORDS = {
    "tag:yaml.org,2002:int": "an integer", "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:timestamp": "a date or time", "tag:yaml.org,2002:bool": "a boolean",
    "tag:yaml.org,2002:null": "null",
}
MAX_INT_DIGITS = 18
"""Integers beyond this are refused where they are read (no field takes more than 4 digits)."""


class _Abort(Exception):
    """Stops building at a bound; carries the one problem that explains it."""

    def __init__(self, problem: Problem):
        self.problem = problem


_ALIAS_EVENT, _SCALAR_EVENT = yaml.AliasEvent, yaml.ScalarEvent
_MAP_START, _SEQ_START = yaml.MappingStartEvent, yaml.SequenceStartEvent
_COLLECTION_START = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_COLLECTION_END = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
_DEPTH_STEP: dict[type, int] = {
    yaml.MappingStartEvent: 1, yaml.SequenceStartEvent: 1, yaml.MappingEndEvent: -1, yaml.SequenceEndEvent: -1,
    yaml.ScalarEvent: 0, yaml.AliasEvent: 0,
}
"""How each event (by its exact type) changes the nesting; other types are looked at in full."""
_MERGE_TAG = "tag:yaml.org,2002:merge"
_NULL_TAG = "tag:yaml.org,2002:null"


def _read_events(text: str, source: str) -> list[Any]:
    """Every event of the stream from libyaml's (iterative) parser, nesting bounded on the way:
    a YAML syntax error anywhere, or the first level past MAX_DEPTH, stops the read."""
    parser = _YamlLoader(text)
    events: list[Any] = []
    append, get = events.append, parser.get_event
    depth = 0
    end = yaml.StreamEndEvent
    step = _DEPTH_STEP
    try:
        while True:
            event = get()
            if event is None:
                break
            append(event)
            change = step.get(type(event))
            if change is None:
                if isinstance(event, end):
                    break
                if isinstance(event, _COLLECTION_START):
                    change = 1
                elif isinstance(event, _COLLECTION_END):
                    change = -1
                else:
                    continue
            depth += change
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else 1
                raise FleetError([Problem(source, line, f"nested more than {MAX_DEPTH} levels deep; a fleet file needs about 10")])
    finally:
        parser.dispose()
    return events


def _composer_error(context: str | None, context_mark: Any, problem: str, problem_mark: Any) -> yaml.YAMLError:
    """The error YAML's composer raises, with its words and marks (libyaml's marks, typed loosely)."""
    return yaml.composer.ComposerError(context, context_mark, problem, problem_mark)


class _Document:
    """The first document of an event stream as YAML's composer sees it, without building its
    node tree: each node is the index of its first event, `end[i]` the index of its last,
    `node[i]` the node an alias at `i` stands for. The composer's own errors (undefined alias,
    duplicate anchor, a second document) are raised with its messages and marks, in its order."""

    def __init__(self, events: list[Any]) -> None:
        self.events = events
        n = len(events)
        self.end = list(range(n))
        self.node = list(range(n))
        self.root: int | None = None
        if n < 3 or isinstance(events[1], yaml.StreamEndEvent):
            return  # no document at all
        self.root = root = 2
        anchors: dict[str, int] = {}
        stack: list[int] = []
        end, node = self.end, self.node
        i = root
        scalar = _SCALAR_EVENT
        while True:
            event = events[i]
            if type(event) is scalar and event.anchor is None:  # most events: nothing to record
                pass
            elif isinstance(event, _ALIAS_EVENT):
                target = anchors.get(event.anchor) if event.anchor is not None else None
                if target is None:
                    raise _composer_error(None, None, "found undefined alias", event.start_mark)
                node[i] = target
            elif isinstance(event, _COLLECTION_END):
                end[stack.pop()] = i
            else:
                anchor = event.anchor
                if anchor is not None:
                    if anchor in anchors:
                        raise _composer_error("found duplicate anchor; first occurrence", events[anchors[anchor]].start_mark,
                                              "second occurrence", event.start_mark)
                    anchors[anchor] = i
                if isinstance(event, _COLLECTION_START):
                    stack.append(i)
            if not stack:
                break
            i += 1
        after = events[i + 2]  # past the document's end
        if not isinstance(after, yaml.StreamEndEvent):
            raise _composer_error("expected a single document in the stream", events[root].start_mark,
                                  "but found another document", after.start_mark)


class _Builder:
    """YAML events -> JSON-able builtins, recording every key's and item's line on the way.

    Reading events (not constructing objects) keeps the marks; duplicate keys, which plain
    YAML loading silently collapses, are reported instead. Depth, the number of values and the
    values reached through aliases are bounded (an alias can even point at its own ancestor).
    Tags are resolved as YAML's composer resolves them (the same resolver, cached per scalar).
    """

    def __init__(self, source: str, doc: _Document) -> None:
        self.source = source
        self.doc = doc
        self.events = doc.events
        self.pos = _Positions()
        self.problems: list[Problem] = []
        self.bad_locs: set[Loc] = set()
        """Values already reported here (bad tag, unreadable scalar): no schema error on top."""
        self._scalars = yaml.constructor.SafeConstructor()
        self._resolve: Any = yaml.resolver.Resolver().resolve
        """The composer's resolver (implicit tags of plain scalars, default collection tags)."""
        self._scalar_tags: dict[tuple[str, Any], str] = {}
        self._seen: set[int] = set()
        self._values = 0
        self._aliased = 0

    def tag(self, i: int) -> str:
        """The node's tag: its own, or the one the resolver gives a plain or untagged node."""
        event = self.events[i]
        tag: str | None = event.tag
        if tag is not None and tag != "!":
            return tag
        if type(event) is _SCALAR_EVENT:
            key = (event.value, event.implicit)
            found = self._scalar_tags.get(key)
            if found is None:
                found = self._scalar_tags[key] = str(self._resolve(yaml.ScalarNode, event.value, event.implicit))
            return found
        if isinstance(event, _SCALAR_EVENT):
            return str(self._resolve(yaml.ScalarNode, event.value, event.implicit))
        kind = yaml.MappingNode if isinstance(event, _MAP_START) else yaml.SequenceNode
        return str(self._resolve(kind, None, event.implicit))

    def _count(self, i: int, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _Abort(Problem(self.source, self._line(i), f"nested more than {MAX_DEPTH} levels deep (through aliases); a fleet file needs about 10"))
        self._values += 1
        seen = self._seen
        if i in seen:
            self._aliased += 1
            if self._aliased > MAX_ALIAS_VALUES:
                raise _Abort(Problem(self.source, self._line(i), f"aliases expand to more than {MAX_ALIAS_VALUES:,} values (an alias bomb?); write the values out instead of `*alias` / `<<:`"))
        else:
            seen.add(i)
        if self._values > MAX_VALUES:
            raise _Abort(Problem(self.source, self._line(i), f"more than {MAX_VALUES:,} values; split the fleet"))

    def _line(self, i: int) -> int:
        return int(self.events[i].start_mark.line) + 1

    def _bad_tag(self, i: int, tag: str, loc: Loc) -> bool:
        if tag in _STANDARD_TAGS:
            return False
        self.bad_locs.add(loc)
        shown = tag.replace("tag:yaml.org,2002:", "!!")
        self.problems.append(Problem(
            self.source, self.events[i].start_mark.line + 1,
            f"{_where(loc)}: YAML tag `{_clip(shown)}` is not allowed; a fleet file holds plain strings,"
            " numbers, booleans, lists and mappings",
        ))
        return True

    def build(self, i: int, loc: Loc = (), depth: int = 1) -> Any:
        """The value of the node at event `i` (never an alias: callers pass `doc.node[slot]`)."""
        self._count(i, depth)
        tag = self.tag(i)
        if tag not in _STANDARD_TAGS and self._bad_tag(i, tag, loc):
            return None
        events, end, node = self.events, self.doc.end, self.doc.node
        event = events[i]
        if isinstance(event, _MAP_START):
            scalar_tags = self._scalar_tags
            out: dict[str, Any] = {}
            merged: dict[str, Any] = {}
            j, stop = i + 1, end[i]
            while j < stop:
                kslot, vslot = j, end[j] + 1
                j = end[vslot] + 1
                k, v = node[kslot], node[vslot]
                kevent = events[k]
                ktag = kevent.tag  # `self.tag(k)`, the cached plain scalar's tag looked up here
                if ktag is None or ktag == "!":
                    ktag = (scalar_tags.get((kevent.value, kevent.implicit)) if type(kevent) is _SCALAR_EVENT else None) or self.tag(k)
                if ktag == _MERGE_TAG:
                    merged.update(self._merge(v, loc, depth))
                    continue
                # A plain string key (nearly all of them): what `_key` returns, without the calls.
                key = kevent.value if ktag == _STR_TAG and type(kevent) is _SCALAR_EVENT else self._key(k, ktag, loc)
                kloc, kline = loc + (key,), kevent.start_mark.line + 1
                if key in out:
                    first = self.pos.key_line[kloc]
                    self.problems.append(Problem(
                        self.source, kline,
                        f'{_where(loc)}: found duplicate key "{_clip(key)}" (first on line {first});'
                        " YAML would silently keep only one",
                    ))
                    continue
                vevent = events[v]
                if type(vevent) is _SCALAR_EVENT:  # a scalar value: `build`'s steps, the string case inline
                    self._count(v, depth + 1)
                    vtag = vevent.tag
                    if vtag is None or vtag == "!":
                        vtag = scalar_tags.get((vevent.value, vevent.implicit)) or self.tag(v)
                    if vtag == _STR_TAG:
                        value = vevent.value
                    elif vtag not in _STANDARD_TAGS and self._bad_tag(v, vtag, kloc):
                        value = None
                    else:
                        value = self._scalar(v, vtag, kloc)
                else:
                    value = self.build(v, kloc, depth + 1)
                self.pos.key_line[kloc] = kline
                # A block mapping/list "starts" on its first child's line and a missing value
                # after the last key "starts" past the end of the file: point at the key instead.
                container = value is None or isinstance(events[v], _COLLECTION_START)
                self.pos.value_line[kloc] = kline if container else events[v].start_mark.line + 1
                out[key] = value
            return {**merged, **out}
        if isinstance(event, _SEQ_START):
            items = []
            j, stop, n = i + 1, end[i], 0
            while j < stop:
                item = node[j]
                j = end[j] + 1
                here = loc + (n,)
                self.pos.key_line[here] = self.pos.value_line[here] = events[item].start_mark.line + 1
                items.append(self.build(item, here, depth + 1))
                n += 1
            return items
        return self._scalar(i, tag, loc)

    def _key(self, k: int, tag: str, loc: Loc) -> str:
        if not isinstance(self.events[k], _SCALAR_EVENT):
            return "<complex key>"
        if tag not in _STANDARD_TAGS:
            self._bad_tag(k, tag, loc)
            return str(self.events[k].value)
        return str(self._scalar(k, tag, loc))

    def _merge(self, v: int, loc: Loc, depth: int) -> dict[str, Any]:
        """`<<: *a` / `<<: [*a, *b]`: earlier mappings win, explicit keys win over all (YAML 1.1)."""
        events, end, node = self.events, self.doc.end, self.doc.node
        if isinstance(events[v], _SEQ_START):
            sources, j = [], v + 1
            while j < end[v]:
                sources.append(node[j])
                j = end[j] + 1
        else:
            sources = [v]
        out: dict[str, Any] = {}
        for src in reversed(sources):
            if not isinstance(events[src], _MAP_START):
                self.problems.append(Problem(self.source, events[src].start_mark.line + 1, f"{_where(loc)}: `<<:` merges mappings only"))
                continue
            built = self.build(src, loc, depth)
            if isinstance(built, dict):
                out.update(built)
        return out

    def _scalar(self, i: int, tag: str, loc: Loc = ()) -> Any:
        event = self.events[i]
        if tag == _STR_TAG:  # what SafeConstructor.construct_yaml_str returns, without its dispatch
            return event.value
        # YAML 1.2 booleans only: `yes`/`no`/`on`/`off` stay strings (the "Norway problem").
        if tag == "tag:yaml.org,2002:bool" and str(event.value).lower() not in ("true", "false"):
            return str(event.value)
        text = str(event.value)
        if tag == "tag:yaml.org,2002:int" and len(text.lstrip("+-").replace("_", "")) > MAX_INT_DIGITS:
            self.bad_locs.add(loc)
            self.problems.append(Problem(self.source, event.start_mark.line + 1, f"{_where(loc)}: integer of {len(text)} digits is too large (at most {MAX_INT_DIGITS})"))
            return None
        try:
            value = self._scalars.construct_object(yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style))
        except Exception:  # noqa: BLE001 - PyYAML raises ValueError/AttributeError/ConstructorError for bad scalars
            self.bad_locs.add(loc)
            words = _SCALAR_WORDS.get(tag, "a value")
            shown = tag.replace("tag:yaml.org,2002:", "!!")
            self.problems.append(Problem(self.source, event.start_mark.line + 1, f"{_where(loc)}: `{shown} {_clip(text)}` cannot be read as {words}"))
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return text  # .nan / .inf: the schema says what it expected, JSON cannot carry them
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        return str(value)  # dates, timestamps: the schema will say what it expected


def _clip(text: str, limit: int = 60) -> str:
    """Echo at most `limit` characters of the input in a message."""
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


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
        ("agents", "runtime", "eks_pod_identity"): EksPodIdentity,
        ("agents", "runtime", "irsa"): Irsa,
        ("agents", "credentials", "federation"): Federation,
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

    def where(self, loc: Loc) -> str:
        """The path as written (an environment's override, not the merged view)."""
        return _where(self.pos.orig(loc))

    def add(self, loc: Loc, message: str, *, key: bool = False) -> None:
        self.problems.append(Problem(self.file, self.pos.line(loc, key=key), message))

    def secrets(self, node: Any, loc: Loc = ()) -> list[Loc]:
        """Report secret-shaped keys and values; the locs of secret keys (not also 'unknown')."""
        found: list[Loc] = []
        self._secrets(node, loc, found)
        return found

    def _secrets(self, node: Any, loc: Loc, found: list[Loc]) -> None:
        # One recursive call per mapping or list (a string is checked where it is met).
        if isinstance(node, dict):
            for k, v in node.items():
                key_hit = looks_like_secret(k)
                if key_hit:
                    shown = mask(_secret_token(k, key_hit.secret))
                    self.add(loc + (k,), f"{self.where(loc)}: a key looks like a real credential ({key_hit.kind}, {shown}); {SECRET_FIX}", key=True)
                    found.append(loc + (k,))
                    continue
                if k.lower() in SECRET_KEYS:
                    self.add(loc + (k,), f"{self.where(loc + (k,))}: a `{k}` field looks like a secret value; {SECRET_FIX}", key=True)
                    found.append(loc + (k,))
                    continue
                if isinstance(v, str):
                    self._secret_value(v, loc + (k,))
                elif isinstance(v, (dict, list)):
                    self._secrets(v, loc + (k,), found)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                if isinstance(v, str):
                    self._secret_value(v, loc + (i,))
                elif isinstance(v, (dict, list)):
                    self._secrets(v, loc + (i,), found)
        elif isinstance(node, str):
            self._secret_value(node, loc)

    def _secret_value(self, value: str, loc: Loc) -> None:
        hit = looks_like_secret(value)
        if hit:
            shown = mask(_secret_token(value, hit.secret))
            self.add(loc, f"{self.where(loc)}: value looks like a real credential ({hit.kind}, {shown}); {SECRET_FIX}")

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
        names = {a["name"] for a in agents if isinstance(a, dict) and isinstance(a.get("name"), str)}
        renamed: dict[str, int] = {}
        for i, agent in enumerate(agents):
            if not isinstance(agent, dict):
                continue
            prev = agent.get("renamed_from")
            if isinstance(prev, str):
                here = ("agents", i, "renamed_from")
                if prev in names:
                    self.add(here, f"{self.where(here)}: agent {prev!r} still exists; `renamed_from` names an agent that is gone (remove it, or the old agent)")
                elif prev in renamed:
                    self.add(here, f"{self.where(here)}: {prev!r} is already renamed on line {renamed[prev]}; one agent takes over an old name")
                else:
                    renamed[prev] = self.pos.line(here)
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
        kinds = [k for k in RUNTIME_KINDS if rt.get(k) is not None]
        if len(kinds) != 1:
            found = ", ".join(kinds) if kinds else "none"
            self.add(loc, f"{self.where(loc)}: declare exactly one of {', '.join(RUNTIME_KINDS)} (found: {found})", key=True)
        svc = rt.get("service")
        if isinstance(svc, str) and not SERVICE_RE.match(svc):
            self.add(loc + ("service",), f"{self.where(loc + ('service',))}: {svc!r} is not an AWS service principal (e.g. ecs-tasks.amazonaws.com); wildcards are never allowed")
        elif svc == EKS_POD_IDENTITY_SERVICE:
            self.add(loc + ("service",), f"{self.where(loc + ('service',))}: {svc} as a plain service would let any pod of any cluster in the account take the role; declare `eks_pod_identity: {{cluster, namespace, service_account}}` instead")
        src = rt.get("source_arn")
        if src is not None:
            where = loc + ("source_arn",)
            if svc is None:
                self.add(where, f"{self.where(where)}: `source_arn` pins the resource that makes a `service` assume the role; it only goes with `service`", key=True)
            elif not isinstance(src, str) or not SOURCE_ARN_RE.match(src) or src.split(":", 5)[5].startswith("*"):
                self.add(where, f"{self.where(where)}: {src!r} is not an ARN of one function or task (arn:aws:<service>:<region>:<12-digit account>:<resource>, `*` only inside the resource part)")
        irsa = rt.get("irsa")
        if isinstance(irsa, dict) and isinstance(irsa.get("oidc_issuer"), str) and "://" in irsa["oidc_issuer"]:
            where = loc + ("irsa", "oidc_issuer")
            self.add(where, f"{self.where(where)}: write the issuer without its scheme (e.g. oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE), as IAM names the provider")
        arns = rt.get("role_arns")
        if isinstance(arns, list):
            for j, arn in enumerate(arns):
                if not isinstance(arn, str):
                    continue
                where = loc + ("role_arns", j)
                if "*" in arn or "?" in arn:
                    self.add(where, f"{self.where(where)}: wildcard principal {arn!r}; name the exact role ARN that runs the agent")
                elif arn.isdigit() or arn.endswith(":root"):
                    self.add(where, f"{self.where(where)}: {arn!r} trusts a whole account; name the exact role ARN that runs the agent")
                elif not ROLE_ARN_RE.match(arn):
                    self.add(where, f"{self.where(where)}: {arn!r} is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)")

    def credentials(self, creds: list[Any], loc: Loc, classes: dict[str, int]) -> None:
        seen: dict[str, int] = {}
        for j, cred in enumerate(creds):
            if not isinstance(cred, dict):
                continue
            here = loc + (j,)
            name = cred.get("name")
            if isinstance(name, str):
                if name in seen:
                    self.add(here + ("name",), f"{self.where(here + ('name',))}: duplicate credential name {name!r} in this agent (first on line {seen[name]})")
                else:
                    seen[name] = self.pos.line(here + ("name",))
            cls = cred.get("classification", "internal")
            max_days = classes.get(cls) if isinstance(cls, str) else None
            if isinstance(cls, str) and max_days is None:
                known = ", ".join(sorted(classes))
                self.add(here + ("classification",), f"{self.where(here + ('classification',))}: unknown classification {cls!r} (known: {known}; add custom ones under `classifications:`)")
            stores = self.default_stores if isinstance(self.default_stores, list) and self.default_stores else list(_DEFAULT_STORES)
            for sub, message in credential_problems(cred, stores):
                self.add(here + sub, f"{self.where(here + sub)}: {message}")
            self.federation(cred, here)
            rot = cred.get("rotation")
            self.ssm_rotation(cred, rot, here)
            if not isinstance(rot, dict):
                continue
            strategy = rot.get("strategy", "manual")
            if isinstance(strategy, str) and strategy not in ROTATION_STRATEGIES:
                self.add(here + ("rotation", "strategy"), f"{self.where(here + ('rotation', 'strategy'))}: unknown rotation strategy {strategy!r} (expected one of: {', '.join(ROTATION_STRATEGIES)})")
            days = rot.get("days")
            if isinstance(days, int) and not isinstance(days, bool) and max_days is not None and days > max_days:
                self.add(here + ("rotation", "days"), f"{self.where(here + ('rotation', 'days'))}: {days} days exceeds the {max_days}-day maximum of classification {cls!r}")


    def federation(self, cred: dict[str, Any], here: Loc) -> None:
        """Keyless credentials: only for services that accept federation; nothing stored or rotated."""
        if cred.get("type") != KEYLESS_TYPE:
            if cred.get("federation") is not None:
                self.add(here + ("federation",), f"{_where(here + ('federation',))}: `federation` only goes with `type: {KEYLESS_TYPE}`", key=True)
            return
        svc = cred.get("service")
        if isinstance(svc, str) and svc not in FEDERATED_SERVICES:
            self.add(here + ("service",), f"{_where(here + ('service',))}: {svc!r} does not accept workload identity federation (supported: {', '.join(sorted(FEDERATED_SERVICES))}); store a key for it instead")
        for key, why in (("stores", "nothing is stored"), ("rotation", "nothing rotates")):
            if cred.get(key) is not None:
                self.add(here + (key,), f"{_where(here + (key,))}: a `{KEYLESS_TYPE}` credential has no `{key}`: {why} (the agent exchanges a short-lived identity token)", key=True)
    def ssm_rotation(self, cred: dict[str, Any], rot: Any, here: Loc) -> None:
        """Parameter Store has no rotation protocol: only a human (`manual`) rotates an `ssm` copy."""
        stores = cred.get("stores", self.default_stores)
        strategy = rot.get("strategy", "manual") if isinstance(rot, dict) else "manual"
        if isinstance(stores, list) and "ssm" in stores and isinstance(strategy, str) and strategy != "manual":
            self.add(here + ("stores",) if "stores" in cred else here, f"{self.where(here)}: stores include `ssm` but rotation strategy is {strategy!r}; Parameter Store has no rotation protocol, so an automated rotation would leave its copy stale: use `rotation: {{strategy: manual}}` for it (a reminder asks a human to rotate), or drop `ssm` from its stores", key="stores" in cred)


_DEFAULT_STORES: tuple[str, ...] = tuple(Defaults().stores)


def _resolve(raw: FleetFile, source: str, pos: _Positions | None = None) -> Fleet:
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
                fields=declared_fields(c.fields, c.rotation.strategy) or (),
            ) if c.type != KEYLESS_TYPE else ResolvedCredential(
                name=c.name, service=c.service, type=c.type, classification=c.classification,
                max_rotation_days=classes[c.classification], rotation_strategy=KEYLESS_STRATEGY,
                rotation_days=0, stores=(), description=c.description,
                audience=(c.federation.audience if c.federation else None) or FEDERATED_SERVICES[c.service].default_audience,
            )
            for c in a.credentials
        )
        agents.append(
            ResolvedAgent(
                name=a.name, owner=owner or "unowned", description=a.description,
                runtime=a.runtime, paused=a.paused, credentials=creds, network=a.network,
                renamed_from=a.renamed_from,
            )
        )
    lines: dict[str, int] = {}
    if pos is not None:
        for i, a in enumerate(raw.agents):
            lines[a.name] = pos.line(("agents", i, "name"))
            lines[f"{a.name}#runtime"] = pos.line(("agents", i, "runtime"), key=True)
            for j, c in enumerate(a.credentials):
                lines[f"{a.name}/{c.name}"] = pos.line(("agents", i, "credentials", j, "name"))
    return Fleet(source=source, classifications=classes, agents=tuple(agents), lines=lines)


def decode_fleet(data: bytes, source: str) -> str:
    """The file's text, or FleetError: too large, UTF-16/32, NUL bytes or not UTF-8 (with the line)."""
    if len(data) > MAX_FILE_BYTES:
        raise FleetError([Problem(source, 0, f"the file is {len(data):,} bytes; fleet files are at most {MAX_FILE_BYTES:,} bytes")])
    for bom, name in ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16")):
        if data.startswith(bom):
            raise FleetError([Problem(source, 1, f"the file is {name}-encoded; save it as UTF-8")])
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        hint = " (is it UTF-16 without a byte-order mark?)" if data[:2].count(b"\x00") == 1 else ""
        raise FleetError([Problem(source, line, f"NUL byte in the file{hint}; fleet files are UTF-8 text")])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FleetError([Problem(source, line, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save the file as UTF-8")]) from None


def _yaml_problem(exc: yaml.YAMLError, source: str) -> Problem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        detail = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        return Problem(source, line, f"YAML syntax error: {detail}")
    return Problem(source, 1, f"YAML error: {_clip(str(exc), 200)}")


def parse_fleet(text: str | bytes, source: str, settings: StackSettings | None = None, *, rules: bool = True,
                names_only: bool = False) -> Fleet:
    """Validate fleet text; raise FleetError listing every problem, each with its line.

    With `settings`, the fleet of that stack: its environment's overrides applied, and the
    stack's rules checked (every derived name unique, principals only in trusted accounts).
    `rules=False` resolves the environment only (the base side of a diff, which a PR may fix).
    Any input ends in a Fleet or a FleetError, in bounded time and memory (MAX_* above)."""
    if isinstance(text, bytes):
        text = decode_fleet(text, source)
    elif len(text) > MAX_FILE_BYTES:
        raise FleetError([Problem(source, 0, f"the text is {len(text):,} characters; fleet files are at most {MAX_FILE_BYTES:,} bytes")])
    elif "\x00" in text:
        raise FleetError([Problem(source, text.count("\n", 0, text.index("\x00")) + 1, "NUL character in the file; fleet files are UTF-8 text")])
    with _gc_paused():
        parsed = _parsed(text, source)
        fleet = _validated(parsed.data, source, parsed.pos, parsed.problems, parsed.bad_locs,
                           settings.environment if settings else None, memo=parsed.memo)
    return for_stack(fleet, settings, names_only=names_only) if settings and rules else fleet


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a fleet is read: the YAML node tree and the positions are
    tens of thousands of live objects, and every collection would walk them all again (about a
    third of a 1,000-agent load). Nothing built here is a cycle to collect; the prior state returns."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class _Parsed:
    """One fleet text as the builder read it, and (within `reuse.scope()`) the validations run on it."""

    text: str
    source: str
    data: dict[str, Any]
    pos: _Positions
    problems: list[Problem]
    """The builder's and the comments' problems."""
    bad_locs: set[Loc]
    memo: dict[str | None, Any] = field(default_factory=dict)
    """Within `reuse.scope()`: `_validated`'s results per document (None = the base, then each
    environment), pure functions of the text, for a later read of the same text."""


_REUSE_SIZE = 2
"""Texts kept within a `reuse.scope()`: a diff reads two fleets; `validate --stack` reads one
twice (every environment, then the stack's fleet)."""


def _parsed(text: str, source: str) -> _Parsed:
    """The builder's output for `text`, or FleetError (syntax, depth, bounds, not a mapping)."""
    kept = reuse.table("fleet text")
    done_list: list[_Parsed] = kept.setdefault("parsed", []) if kept is not None else []
    for done in done_list:
        if done.source == source and (done.text is text or done.text == text):
            return done
    try:
        # One pass of libyaml's parser (syntax errors, nesting bounded: its recursive composer
        # would crash on deep input), then the composer's rules over the events: no node tree.
        doc = _Document(_read_events(text, source))
    except yaml.YAMLError as exc:
        raise FleetError([_yaml_problem(exc, source)]) from None
    except UnicodeError:  # lone surrogates in a str built in code
        raise FleetError([Problem(source, 1, "the text is not valid Unicode")]) from None
    builder = _Builder(source, doc)
    root = doc.root
    if root is None or (isinstance(doc.events[root], _SCALAR_EVENT) and builder.tag(root) == _NULL_TAG):
        raise FleetError([Problem(source, 1, f"empty fleet file: start with `version: {FORMAT_VERSION}` and an `agents:` list")])
    if not isinstance(doc.events[root], _MAP_START):
        raise FleetError([Problem(source, 1, "the fleet file must be a mapping with `version:` and `agents:` at the top level")])

    try:
        data = builder.build(root)
    except _Abort as exc:
        raise FleetError([exc.problem]) from None
    except yaml.YAMLError as exc:
        raise FleetError([_yaml_problem(exc, source)]) from None
    if not isinstance(data, dict):  # the root mapping carried a bad tag
        raise FleetError(builder.problems)
    parsed = _Parsed(text, source, data, builder.pos, builder.problems + _comment_secrets(text, source), builder.bad_locs)
    if kept is not None:
        done_list[:] = [parsed, *done_list][:_REUSE_SIZE]
    return parsed


def _comment_secrets(text: str, source: str) -> list[Problem]:
    """A key pasted into a comment is as exposed as one in a value (it is in git either way)."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        at = line.find("#")
        if at < 0:
            continue
        for hit in find_secrets(line[at:]):
            shown = mask(_secret_token(line[at:], hit.secret))
            out.append(Problem(source, number, f"a comment looks like it holds a real credential ({hit.kind}, {shown}); {SECRET_FIX}"))
            break
    return out


def _check_document(
    data: Any, source: str, pos: _Positions, reported: set[Loc], *, secrets: bool = True,
) -> tuple[list[Problem], FleetFile | None]:
    """Cross-field rules and the strict schema over one fleet document (the base or one
    environment's merged view); the problems found and the parsed file (None if invalid)."""
    checker = _Checker(source, pos)
    secret_locs = set(checker.secrets(data)) if secrets else set()
    if not secrets:
        checker.problems.clear()
    checker.rules(data)
    problems = list(checker.problems)

    raw: FleetFile | None = None
    try:
        raw = FleetFile.model_validate_json(json.dumps(data), strict=True)
    except ValidationError as exc:
        for err in exc.errors():
            loc: Loc = tuple(err["loc"])
            orig = pos.orig(loc)
            if any(orig[: len(b)] == b for b in reported):
                continue  # the builder already said why this value is unreadable
            if err["type"] == "extra_forbidden":
                if loc in secret_locs or (not secrets and looks_like_secret(str(loc[-1]))):
                    continue
                key = str(loc[-1])
                problems.append(Problem(source, pos.line(loc, key=True), f"{_where(orig)}: unknown key `{key}`{_suggest(key, loc[:-1])}"))
                continue
            if err["type"] == "enum" and loc[-2:] == ("rotation", "strategy"):
                continue  # the rules above name the strategies (one message, not two)
            if err["type"] == "too_short" and len(err["input"]) > 0:
                continue  # pydantic counts only valid items; their own errors are reported
            if err["type"] == "too_short" and loc == ("agents",):
                problems.append(Problem(source, pos.line(loc, key=True), "agents: the fleet is empty; declare at least one agent"))
                continue
            if loc and loc[-1] == "[key]":
                problems.append(Problem(source, pos.line(loc[:-1], key=True), _message(err, orig)))
                continue
            problems.append(Problem(source, pos.line(loc, key=err["type"] == "missing"), _message(err, orig)))
    return problems, raw


# ---- environments: one fleet file, a resolved fleet per environment ----


class _Remapped(_Positions):
    """Positions of an environment's merged document: a value taken from an override points at
    the override's line, everything else at the base's."""

    def __init__(self, base: _Positions, remap: dict[Loc, Loc]) -> None:
        super().__init__()
        self.base, self.remap = base, remap

    def orig(self, loc: Loc) -> Loc:
        for end in range(len(loc), 0, -1):
            if loc[:end] in self.remap:
                return self.remap[loc[:end]] + loc[end:]
        return loc

    def line(self, loc: Loc, *, key: bool = False) -> int:
        return self.base.line(self.orig(loc), key=key)


def environments_named(data: Mapping[str, Any]) -> list[str]:
    """Every environment a fleet document names in `only_in` or `environments:`."""
    names: set[str] = set()
    agents = data.get("agents")
    for agent in agents if isinstance(agents, list) else []:
        if not isinstance(agent, dict):
            continue
        creds = agent.get("credentials")
        items = [agent] + ([c for c in creds if isinstance(c, dict)] if isinstance(creds, list) else [])
        for item in items:
            only = item.get("only_in")
            if isinstance(only, list):
                names.update(e for e in only if isinstance(e, str))
        envs = agent.get("environments")
        if isinstance(envs, dict):
            names.update(str(e) for e in envs)
    return sorted(names)


def _present(item: Mapping[str, Any], env: str) -> bool:
    only = item.get("only_in")
    return not isinstance(only, list) or env in only


@dataclass
class _EnvironmentView:
    """One environment's merged document, where its values came from, and what is absent."""

    data: dict[str, Any]
    pos: _Remapped
    absent: set[tuple[str, ...]]
    """("agent",) or ("agent", "credential") not in this environment."""
    problems: list[Problem]
    """Misuse of the override syntax itself (a key that cannot be overridden, an unknown credential)."""


def _environment_view(data: dict[str, Any], env: str, source: str, pos: _Positions) -> _EnvironmentView:
    """Apply every agent's `environments: {env: ...}` override: values replace the base's,
    `credentials` merges per credential name and `rotation` key by key. Agents and credentials
    keep their index, so inherited values report exactly as in the base."""
    remap: dict[Loc, Loc] = {}
    absent: set[tuple[str, ...]] = set()
    problems: list[Problem] = []
    agents_out: list[Any] = []
    agents = data.get("agents")
    for i, agent in enumerate(agents if isinstance(agents, list) else []):
        if not isinstance(agent, dict):
            agents_out.append(agent)
            continue
        name = str(agent.get("name"))
        here: Loc = ("agents", i)
        merged = {k: v for k, v in agent.items() if k not in ("environments", "only_in")}
        envs = agent.get("environments")
        override = envs.get(env) if isinstance(envs, dict) else None
        if not _present(agent, env):
            absent.add((name,))
            if override is not None:
                problems.append(Problem(source, pos.line(here + ("environments", env), key=True),
                                        f"{_where(here)}.environments.{env}: agent {name!r} does not exist in environment {env!r} (`only_in`)"))
        creds = agent.get("credentials")
        cred_list = [dict(c) if isinstance(c, dict) else c for c in creds] if isinstance(creds, list) else creds
        if isinstance(cred_list, list):
            for c in cred_list:
                if isinstance(c, dict):
                    if not _present(c, env):
                        absent.add((name, str(c.get("name"))))
                    c.pop("only_in", None)
        if isinstance(override, dict):
            oloc = here + ("environments", env)
            for key, value in override.items():
                if key in NOT_OVERRIDABLE:
                    problems.append(Problem(source, pos.line(oloc + (key,), key=True), f"{_where(oloc)}: `{key}` cannot be overridden per environment"))
                    continue
                if key != "credentials":
                    merged[key] = value
                    remap[here + (key,)] = oloc + (key,)
                    continue
                if not isinstance(value, dict):
                    problems.append(Problem(source, pos.line(oloc + (key,)), f"{_where(oloc + (key,))}: expected a mapping of credential name -> overridden fields"))
                    continue
                by_name = {str(c.get("name")): j for j, c in enumerate(cred_list) if isinstance(c, dict)} if isinstance(cred_list, list) else {}
                for cname, cover in value.items():
                    cloc = oloc + ("credentials", cname)
                    if cname not in by_name or not isinstance(cred_list, list):
                        problems.append(Problem(source, pos.line(cloc, key=True), f"{_where(oloc)}.credentials: agent {name!r} has no credential {cname!r} to override"))
                        continue
                    if not isinstance(cover, dict):
                        problems.append(Problem(source, pos.line(cloc), f"{_where(cloc)}: expected a mapping of overridden credential fields"))
                        continue
                    j = by_name[cname]
                    cred = cred_list[j]
                    for ckey, cvalue in cover.items():
                        target: Loc = here + ("credentials", j, ckey)
                        if ckey in NOT_OVERRIDABLE:
                            problems.append(Problem(source, pos.line(cloc + (ckey,), key=True), f"{_where(cloc)}: `{ckey}` cannot be overridden per environment"))
                        elif ckey == "rotation" and isinstance(cvalue, dict) and isinstance(cred.get("rotation"), dict):
                            cred["rotation"] = {**cred["rotation"], **cvalue}
                            for rkey in cvalue:
                                remap[target + (rkey,)] = cloc + (ckey, rkey)
                        else:
                            cred[ckey] = cvalue
                            remap[target] = cloc + (ckey,)
        if cred_list is not None:
            merged["credentials"] = cred_list
        agents_out.append(merged)
    view = {**data, "agents": agents_out}
    return _EnvironmentView(view, _Remapped(pos, remap), absent, problems)


def _only_present(fleet: Fleet, absent: set[tuple[str, ...]], environment: str, named: tuple[str, ...]) -> Fleet:
    if not absent:
        return fleet.model_copy(update={"environment": environment, "environments": named})
    agents = tuple(
        a.model_copy(update={"credentials": tuple(c for c in a.credentials if (a.name, c.name) not in absent)})
        for a in fleet.agents if (a.name,) not in absent
    )
    return fleet.model_copy(update={"agents": agents, "environment": environment, "environments": named})


def _tightened_only(base: Fleet, env: Fleet, data: dict[str, Any], pos: _Positions, source: str, name: str) -> list[Problem]:
    """An environment may tighten rotation (fewer days, automatic instead of manual, a stricter
    class), never loosen it: prod must not rotate less often than the file's base says."""
    out: list[Problem] = []
    index = {str(a.get("name")): i for i, a in enumerate(data.get("agents") or []) if isinstance(a, dict)}
    for a in env.agents:
        try:
            b = base.agent(a.name)
        except KeyError:
            continue
        before = {c.name: c for c in b.credentials}
        for c in a.credentials:
            old = before.get(c.name)
            if old is None:
                continue
            oloc: Loc = ("agents", index.get(a.name, 0), "environments", name, "credentials", c.name)
            if c.rotation_days > old.rotation_days:
                out.append(Problem(source, pos.line(oloc + ("rotation", "days")), f"{_where(oloc)}: rotation every {c.rotation_days} days loosens the base's {old.rotation_days}; an environment may tighten rotation, never loosen it"))
            if c.rotation_strategy == "manual" and old.rotation_strategy != "manual":
                out.append(Problem(source, pos.line(oloc + ("rotation", "strategy")), f"{_where(oloc)}: rotation strategy manual loosens the base's automatic {old.rotation_strategy!r}; an environment may tighten rotation, never loosen it"))
            if c.max_rotation_days > old.max_rotation_days:
                out.append(Problem(source, pos.line(oloc + ("classification",)), f"{_where(oloc)}: classification {c.classification!r} (max {c.max_rotation_days} days) loosens the base's {old.classification!r} (max {old.max_rotation_days} days)"))
    return out


def _environment_result(
    data: Any, env: str, source: str, pos: _Positions, reported: set[Loc], base: Fleet | None,
) -> tuple[_EnvironmentView, list[Problem], Fleet | None]:
    """One environment's merged view, its problems and its fleet (None if it has problems)."""
    view = _environment_view(data, env, source, pos)
    if base is not None and not view.problems and not view.absent and view.data == data:
        # Nothing overrides or leaves out anything here: the view is the base document, which
        # passed every check (the same checks on the same data find the same nothing).
        return view, [], base
    env_problems, env_raw = _check_document(view.data, source, view.pos, reported, secrets=False)
    env_fleet = _resolve(env_raw, source, view.pos) if env_raw is not None and not env_problems else None
    if base is not None and env_fleet is not None:
        env_problems += _tightened_only(base, env_fleet, data, pos, source, env)
    return view, env_problems, env_fleet


def _validated(
    data: Any, source: str, pos: _Positions, problems: list[Problem], bad_locs: set[Loc] | None = None,
    environment: str | None = None, memo: dict[str | None, Any] | None = None,
) -> Fleet:
    """The one validation every fleet goes through, from a file or built in code: the base
    document, then the merged view of every environment it names (and of `environment`).
    `memo` (one per parsed text, see `reuse.scope`) keeps each document's results for a later
    read of the same text: every result here is a pure function of `data` and `problems`."""
    memo = {} if memo is None else memo
    reported = bad_locs or set()
    if None not in memo:
        found, raw = _check_document(data, source, pos, reported)
        memo[None] = (found, raw, _resolve(raw, source, pos) if raw is not None and not problems + found else None,
                    environments_named(data))
    found, raw, base, named = memo[None]
    assert base is None or isinstance(base, Fleet)
    problems = problems + found
    wanted = sorted(set(named) | ({environment} if environment else set()))
    seen = {(p.line, p.message) for p in problems}
    resolved: Fleet | None = None
    for env in wanted:
        if env not in memo:
            memo[env] = _environment_result(data, env, source, pos, reported, base)
        view, env_problems, env_fleet = memo[env]
        for p in view.problems + env_problems:
            if (p.line, p.message) not in seen:
                seen.add((p.line, p.message))
                problems.append(Problem(p.file, p.line, f"{p.message} (environment {env})"))
        if env == environment and env_fleet is not None:
            resolved = _only_present(env_fleet, view.absent, env, tuple(named))
    if problems or base is None:
        raise FleetError(problems)
    if environment is None:
        return base.model_copy(update={"environments": tuple(named)})
    assert resolved is not None
    if not resolved.agents:
        raise FleetError([Problem(source, pos.line(("agents",), key=True), f"agents: no agent exists in environment {environment!r} (`only_in`)")])
    return resolved


def for_stack(fleet: Fleet, settings: StackSettings, *, names_only: bool = False) -> Fleet:
    """The stack's rules over a resolved fleet: FleetError with the fleet-file lines, or the fleet.
    `names_only`: just the collision check (validate without a stack uses placeholder settings)."""
    from agentfleet.core import stack_rules  # the builders; only needed once a stack is known

    found = stack_rules.problems(fleet, settings, accounts=not names_only)
    if found:
        raise FleetError([Problem(fleet.source, line, message) for line, message in found])
    return fleet


def build_fleet(data: Mapping[str, Any], source: str = "<code>", settings: StackSettings | None = None) -> Fleet:
    """Validate a fleet built in code (the same document `agents.yaml` holds, as plain data):
    the same checks and messages as a file, with `source` in place of the file name."""
    try:
        plain = json.loads(json.dumps(data))
    except RecursionError:
        raise FleetError([Problem(source, 1, f"the fleet is nested more than {MAX_DEPTH} levels deep")]) from None
    except (TypeError, ValueError) as exc:
        raise FleetError([Problem(source, 1, f"the fleet must be plain data (dicts, lists, strings, numbers): {exc}")]) from None
    if not isinstance(plain, dict):
        raise FleetError([Problem(source, 1, "the fleet must be a mapping with `version:` and `agents:` at the top level")])
    fleet = _validated(plain, source, _Positions(), [], environment=settings.environment if settings else None)
    return for_stack(fleet, settings) if settings else fleet


_last_load: list[tuple[str, bytes, StackSettings | None, bool, Fleet]] = []
"""The last fleet `load_fleet` returned, with what it was parsed from (see load_fleet)."""


def load_fleet(path: str | Path, settings: StackSettings | None = None, *, names_only: bool = False) -> Fleet:
    """Read and validate a fleet file (for the stack of `settings` when given: see parse_fleet).
    OSError propagates (the caller decides: usage error). The same bytes for the same stack give
    the last (frozen) Fleet again: `preview`/`check` read the file, then the program they run reads
    it once more (a second validation was ~7% of a 1,000-agent preview)."""
    p = Path(path)
    with p.open("rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)  # never more than the bound into memory
    # `fleet_file` (where the stack says its fleet is; `path` is what was read) plays no part in parsing.
    stack = settings.model_copy(update={"fleet_file": ""}) if settings is not None else None
    for src, raw, st, names, fleet in _last_load:
        if src == str(path) and raw == data and st == stack and names == names_only:
            return fleet
    fleet = parse_fleet(data, str(path), settings, names_only=names_only)
    _last_load[:] = [(str(path), data, stack, names_only, fleet)]
    return fleet
