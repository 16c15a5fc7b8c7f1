"""Run the real Pulumi program offline, under Pulumi's mock runtime, and record what it declares.

`run_program` is what `agentfleet preview`, the policy pack's offline `check`, the
component tests and the benchmark all use: it executes `__main__.py` (or a given function) the
way the Python language host does (`run_in_stack`), with the stack's config from
`Pulumi.<stack>.yaml`, and returns every registered resource with its inputs, parent,
dependencies, provider and options. Nothing leaves the process: the mocks invent plausible
IDs and ARNs so documents built from outputs look like the real ones.

`pulumi.runtime.set_mocks` is process-global; each call resets the runtime first, so many runs
can happen in one process (tests, benchmarks), one at a time.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import hashlib
import json
import runpy
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import pulumi
from pulumi import Output
from pulumi import _types as pulumi_types
from pulumi import log as pulumi_log
from pulumi.output import _OutputData
from pulumi.runtime import config as pulumi_config
from pulumi.runtime import known_types
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await
from google.protobuf import struct_pb2
from ruamel.yaml import YAML

from agentfleet.core.project import find_project_dir, stack_file
from agentfleet.core.settings import PROJECT



STACK_TYPE = "pulumi:pulumi:Stack"


class MockRunError(RuntimeError):
    """The program did not evaluate under the mocks (so nothing it declares was checked)."""


@dataclass(frozen=True, slots=True)
class RegisteredResource:
    """One resource as the engine would have seen it at registration (slots: one per resource, no
    per-instance dict)."""

    type: str
    """Type token, e.g. `aws:iam/role:Role`; component tokens too (`agentfleet:index:AgentAccess`)."""
    name: str
    """Logical name (the last part of the URN)."""
    urn: str
    custom: bool
    """False for component resources."""
    props: dict[str, Any]
    """Inputs as the engine sees them: camelCase keys, secrets unwrapped, ints may be floats."""
    parent: str | None
    """Parent URN (the stack's URN for top-level resources)."""
    dependencies: tuple[str, ...]
    provider: str | None
    """Provider reference `<provider urn>::<id>`; None when the engine would use a default provider."""
    protect: bool
    ignore_changes: tuple[str, ...]
    delete_before_replace: bool = False
    retain_on_delete: bool = False
    aliases: tuple[str, ...] = ()
    """Each alias as an URN or `name=...,type=...` spec string."""
    secret_props: tuple[str, ...] = ()
    """Top-level input keys whose value was a secret (before unwrapping)."""
    additional_secret_outputs: tuple[str, ...] = ()
    id: str = ""
    """The mock physical ID."""
    outputs: dict[str, Any] = field(default_factory=dict)
    """The state the mocks returned (inputs plus invented IDs/ARNs)."""
    providers: dict[str, str] = field(default_factory=dict)
    """Component resources: package -> provider reference passed down to children."""

    @property
    def provider_urn(self) -> str | None:
        return self.provider.rsplit("::", 1)[0] if self.provider else None

    @property
    def package(self) -> str:
        return self.type.split(":", 1)[0]


@dataclass
class ProgramRun:
    """Everything one offline evaluation declared."""

    stack: str
    stack_urn: str
    resources: list[RegisteredResource]
    outputs: dict[str, Any]
    """Stack outputs (`pulumi.export`), resolved, secrets unwrapped."""
    invokes: list[str]
    """Tokens of every provider function the program called (blocking invokes are a smell)."""
    config: dict[str, str]
    _kids: dict[str, list[RegisteredResource]] | None = field(default=None, init=False, repr=False, compare=False)
    _kids_size: int = field(default=-1, init=False, repr=False, compare=False)

    def by_urn(self) -> dict[str, RegisteredResource]:
        return {r.urn: r for r in self.resources}

    def _children_index(self) -> dict[str, list[RegisteredResource]]:
        """Parent URN -> children, built once (rebuilt if `resources` grew): scanning every resource
        for every node made `descendants` over all agents quadratic (82 s at 1,000 agents)."""
        if self._kids is None or self._kids_size != len(self.resources):
            kids: dict[str, list[RegisteredResource]] = {}
            for r in self.resources:
                if r.parent is not None:
                    kids.setdefault(r.parent, []).append(r)
            self._kids, self._kids_size = kids, len(self.resources)
        return self._kids

    def of_type(self, type_: str) -> list[RegisteredResource]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str, type_: str | None = None) -> RegisteredResource:
        hits = [r for r in self.resources if r.name == name and (type_ is None or r.type == type_)]
        if len(hits) != 1:
            raise KeyError(f"{len(hits)} resources named {name!r} (type {type_})")
        return hits[0]

    def children(self, parent_urn: str) -> list[RegisteredResource]:
        return list(self._children_index().get(parent_urn, ()))

    def descendants(self, parent_urn: str) -> list[RegisteredResource]:
        out: list[RegisteredResource] = []
        todo = [parent_urn]
        while todo:
            kids = self.children(todo.pop())
            out.extend(kids)
            todo.extend(k.urn for k in kids)
        return out


# ---- stack config ----


def _config_value(value: Any) -> str:
    """Pulumi hands config to programs as strings; structured values as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def stack_config(stack: str, root: Path) -> dict[str, str]:
    """`config:` of `Pulumi.<stack>.yaml` as the engine passes it; encrypted (`secure:`) values are skipped."""
    path = stack_file(root, stack)
    doc = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
    out: dict[str, str] = {}
    for key, value in (doc.get("config") or {}).items():
        if isinstance(value, dict) and "secure" in value:
            continue
        out[str(key)] = _config_value(value)
    return out


# ---- mocks ----


def _short_hash(*parts: str, n: int = 8) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:n]


SECRET_READING_INVOKES: dict[str, tuple[str, ...]] = {
    "aws:secretsmanager/getSecretVersion:getSecretVersion": ("secretString", "secretBinary"),
    "aws:secretsmanager/getRandomPassword:getRandomPassword": ("randomPassword",),
    "aws:ssm/getParameter:getParameter": ("value", "insecureValue"),
    "vault:kv/getSecretV2:getSecretV2": ("dataJson",),
    "vault:kv/getSecret:getSecret": ("dataJson",),
    "vault:generic/getSecret:getSecret": ("dataJson",),
}
"""Invokes (data sources) that return a secret's value, and the result fields holding it."""


class FleetMocks(pulumi_mocks.Mocks):
    """Plausible IDs and ARNs for the resource types the program declares; no network."""

    def __init__(self, region: str, account: str, partition: str = "aws",
                 stack_references: Mapping[str, Mapping[str, Any]] | None = None):
        self.region, self.account, self.partition = region, account, partition
        self.stack_references = {k: dict(v) for k, v in (stack_references or {}).items()}
        self.new_resource_calls = 0
        self.invokes: list[str] = []
        self._lock = threading.Lock()

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        """Invokes return no data offline, except those that read secret material: they return a
        visible placeholder where the value would be, so a value read at deploy time and written
        into another secret is a literal to the policy pack, as it is under the engine (which runs
        the read in preview). No failures is `[]`: the SDK's mock monitor iterates the second item
        (`None` made every `*_output` invoke crash the offline run)."""
        with self._lock:
            self.invokes.append(args.token)
        fields = SECRET_READING_INVOKES.get(args.token, ())
        return {f: f"<value {args.token} reads at deploy time>" for f in fields}, []

    def _arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region = self.region if regional else ""
        return f"arn:{self.partition}:{service}:{region}:{self.account}:{resource}"

    def _stack_reference(self, stack: str, state: dict[str, Any]) -> tuple[str, dict[Any, Any]]:
        """Another stack's outputs: the ones given to `run_program(stack_references=...)`, else a visible
        placeholder `<stack:output>` for each output an environment stack exports (offline preview of a shard)."""
        from agentfleet.core.sharding import ENVIRONMENT_OUTPUTS

        outputs: dict[str, Any] = {o: f"<{stack}:{o}>" for o in ENVIRONMENT_OUTPUTS.values()}
        outputs.update(self.stack_references.get(stack, {}))
        state.update(outputs=outputs, secretOutputNames=[])
        return stack, state

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        with self._lock:
            self.new_resource_calls += 1
        if args.typ == "pulumi:pulumi:StackReference":  # a read (ReadResource): `custom` is not set
            return self._stack_reference(str(args.resource_id or args.inputs.get("name") or args.name), dict(args.inputs))
        if not args.custom:
            return "", {}
        state: dict[str, Any] = dict(args.inputs)
        t, name = args.typ, args.name
        if t.startswith("pulumi:providers:"):
            return f"{name}-provider-id", state
        if t == "aws:iam/role:Role":
            rid = str(state.get("name") or name)
            state.setdefault("arn", self._arn("iam", f"role/{rid}", regional=False))
            state.setdefault("uniqueId", "AROA" + _short_hash(rid, n=16).upper())
            return rid, state
        if t == "aws:kms/key:Key":
            key_id = "-".join(_short_hash(name, str(i), n=n) for i, n in enumerate((8, 4, 4, 4, 12)))
            state.update(arn=self._arn("kms", f"key/{key_id}"), keyId=key_id)
            return key_id, state
        if t == "aws:iam/outboundWebIdentityFederation:OutboundWebIdentityFederation":
            state.setdefault("issuerIdentifier", f"https://{_short_hash(self.account, n=32)}.tokens.sts.global.api.aws")
            return f"{self.account}-outbound", state
        if t == "aws:kms/alias:Alias":
            alias = str(state.get("name") or name)
            state.setdefault("arn", self._arn("kms", alias))
            return alias, state
        if t == "aws:secretsmanager/secret:Secret":
            secret = str(state.get("name") or name)
            arn = self._arn("secretsmanager", f"secret:{secret}-{_short_hash(secret, n=6)}")
            state.setdefault("arn", arn)
            return arn, state
        if t == "aws:secretsmanager/secretVersion:SecretVersion":
            version = _short_hash(name, n=32)
            state.update(versionId=version, arn=state.get("secretId", ""))
            return f"{state.get('secretId', '')}|{version}", state
        if t == "random:index/randomPassword:RandomPassword":
            length = int(state.get("length") or 32)
            # Deterministic stand-in; never a usable credential (mock runs only).
            state.update(result=("mock" + _short_hash(name, n=64))[:length], bcryptHash="mock-bcrypt")
            return f"{name}-id", state
        if t == "random:index/randomString:RandomString":
            state.update(result=("mockstr" + _short_hash(name, n=64))[: int(state.get("length") or 16)])
            return f"{name}-id", state
        if t in ("random:index/randomBytes:RandomBytes", "random:index/randomId:RandomId"):
            hexed = _short_hash(name, "bytes", n=32)
            state.update(hex=hexed, base64=f"bW9jay{hexed}", b64Std=f"bW9jay{hexed}", b64Url=f"bW9jay{hexed}")
            return f"{name}-id", state
        if t.startswith("aws:"):
            service = t.split(":")[1].split("/")[0]
            rid = str(state.get("name") or name)
            state.setdefault("arn", self._arn(service, rid))
            return rid, state
        if t.startswith("vault:"):
            rid = str(state.get("path") or state.get("name") or state.get("role") or name)
            return rid, state
        return f"{name}-id", state


def _alias_text(alias: Any) -> str:
    if alias.urn:
        return str(alias.urn)
    spec = alias.spec
    parts = [f"{k}={getattr(spec, k)}" for k in ("name", "type", "stack", "project", "parentUrn") if getattr(spec, k)]
    if spec.noParent:
        parts.append("noParent=true")
    return ",".join(parts)


def _asset(value: pulumi.Asset | pulumi.Archive) -> dict[str, Any]:
    """Assets/archives (a Lambda's code) as plain data, so recorded props stay JSON-serialisable."""
    if isinstance(value, pulumi.AssetArchive):
        return {"archive": "assets", "assets": {k: _unwrap_secrets(v) for k, v in sorted(value.assets.items())}}
    for attr in ("path", "text", "uri"):
        if isinstance(getattr(value, attr, None), str):
            return {type(value).__name__: getattr(value, attr)}
    return {type(value).__name__: None}


def _unwrap_secrets(value: Any) -> Any:
    if rpc.is_rpc_secret(value):
        return _unwrap_secrets(rpc.unwrap_rpc_secret(value))
    if isinstance(value, (pulumi.Asset, pulumi.Archive)):
        return _asset(value)
    if isinstance(value, dict):
        return {k: _unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(v) for v in value]
    return value


class _Capture(threading.local):
    """What the mocks saw during the current thread's registrations (inputs as the SDK's monitor
    deserialized them, and the state the mocks returned), so the recorder need not deserialize again.
    A stack: a registration whose serialization had to wait on the event loop may see another
    registration run inside it (`_sync_await_now`), and each one takes back its own entry."""

    def __init__(self) -> None:
        self.seen: list[tuple[dict[str, Any], dict[str, Any]]] = []


class _CapturingMocks(pulumi_mocks.Mocks):
    """Hands every call to the run's mocks; remembers each `new_resource`'s inputs and state."""

    def __init__(self, mocks: pulumi_mocks.Mocks, capture: _Capture):
        self.inner, self.capture = mocks, capture

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        resource_id, state = self.inner.new_resource(args)
        self.capture.seen.append((args.inputs, state))
        return resource_id, state

    def call(self, args: pulumi_mocks.MockCallArgs) -> Any:
        return self.inner.call(args)

    def __getattr__(self, name: str) -> Any:  # register_transform and friends
        return getattr(self.inner, name)


def _outputs(state: Mapping[str, Any], inputs: Mapping[str, Any], props: Mapping[str, Any]) -> dict[str, Any]:
    """The mocks' state, secrets unwrapped; a value the mocks passed through from the inputs is the very
    object already unwrapped in `props` (recorded values are never mutated), not a second copy."""
    return {k: props[k] if k in props and inputs.get(k) is v else _unwrap_secrets(v) for k, v in state.items()}


def _plain(value: Any) -> bool:
    """A value the wire format carries as itself: strings, numbers, booleans, lists and maps of them
    (not None, secrets, assets, resource references or unknowns, which the SDK encodes specially)."""
    kind = type(value)
    if kind is str or kind is bool or kind is int or kind is float:
        return True
    if kind is list:
        return all(_plain(v) for v in value)
    if kind is dict:
        return rpc._special_sig_key not in value and all(type(k) is str and _plain(v) for k, v in value.items())
    return False


def _state_struct(request_object: Any, inputs: Mapping[str, Any], state: Mapping[str, Any]) -> Any:
    """The mocks' state as the wire Struct `rpc.serialize_properties(state)` would make. When every
    input is plain and passed through untouched, those keys are the request's own Struct (copied)
    and only what the mocks added is serialized; otherwise the whole state is, as the SDK does."""
    if all(k in state and state[k] is v and _plain(v) for k, v in inputs.items()):
        added = {k: v for k, v in state.items() if k not in inputs}
        obj = struct_pb2.Struct()
        obj.CopyFrom(request_object)
        if added:
            obj.MergeFrom(_sync_await_now(rpc.serialize_properties(added, {})))
        return obj
    return _sync_await_now(rpc.serialize_properties(dict(state), {}))


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, plus a record of each registration's parent, deps and options."""

    def __init__(self, mocks: FleetMocks, reuse_request: bool = False):
        self._capture = _Capture()
        super().__init__(_CapturingMocks(mocks, self._capture))
        self.reuse_request = reuse_request
        """Answer a custom resource with a copy of its request's inputs plus what the mocks added
        (`_state_struct`) instead of serializing the whole state again (offline shortcuts)."""
        self.recorded: list[RegisteredResource] = []
        self.stack_urn = ""
        self.stack_outputs: dict[str, Any] | None = None
        self._record_lock = threading.Lock()
        self._urns: set[str] = set()
        self.duplicates: list[str] = []
        """URNs registered twice: the real engine refuses the whole update, the SDK's mocks do not."""

    def _captured(self, depth: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """The entry the mocks added for the registration that started at stack `depth`."""
        seen = self._capture.seen
        if len(seen) <= depth:  # the SDK's monitor no longer goes through new_resource
            raise MockRunError("the mock monitor registered a resource without calling the mocks")
        return seen.pop(depth)

    def _register_reusing_request(self, request: Any) -> Any:
        """`MockMonitor.RegisterResource` (pulumi 3.272), with the response's state built by `_state_struct`."""
        urn = self.make_urn(request.parent, request.type, request.name)
        _ensure_event_loop()  # type: ignore[no-untyped-call]
        inputs = rpc.deserialize_properties(request.object)
        args = pulumi_mocks.MockResourceArgs(
            typ=request.type, name=request.name, inputs=inputs, provider=request.provider,
            resource_id=request.importId, custom=request.custom or False,
            transforms=pulumi_mocks._resolve_callbacks(request.transforms),
        )
        id_, state = self.mocks.new_resource(args)
        obj_proto = _state_struct(request.object, inputs, state)
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, id_, state)  # type: ignore[arg-type]
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=obj_proto)  # type: ignore[arg-type]

    def RegisterResource(self, request: Any) -> Any:
        depth = len(self._capture.seen)
        if self.reuse_request and request.type != STACK_TYPE:
            response = self._register_reusing_request(request)
        else:
            response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type == STACK_TYPE:
            self.stack_urn = response.urn
            return response
        raw, state = self._captured(depth)
        props = _unwrap_secrets(raw)
        record = RegisteredResource(
            type=request.type,
            name=request.name,
            urn=response.urn,
            custom=bool(request.custom),
            props=props,
            parent=request.parent or None,
            dependencies=tuple(request.dependencies),
            provider=request.provider or None,
            protect=bool(request.protect) if request.HasField("protect") else False,
            ignore_changes=tuple(request.ignoreChanges),
            delete_before_replace=bool(request.deleteBeforeReplace),
            retain_on_delete=bool(request.retainOnDelete) if request.HasField("retainOnDelete") else False,
            aliases=tuple(_alias_text(a) for a in request.aliases) + tuple(request.aliasURNs),
            secret_props=tuple(sorted(k for k, v in raw.items() if rpc.is_rpc_secret(v))),
            additional_secret_outputs=tuple(request.additionalSecretOutputs),
            id=str(response.id or ""),
            outputs=_outputs(state, raw, props),
            providers=dict(request.providers),
        )
        self._record(record)
        return response

    def _record(self, record: RegisteredResource) -> None:
        with self._record_lock:
            if record.urn in self._urns:
                self.duplicates.append(record.urn)
            self._urns.add(record.urn)
            self.recorded.append(record)

    def ReadResource(self, request: Any) -> Any:
        """Reads (a `pulumi.StackReference`) are recorded like registrations, as custom resources."""
        depth = len(self._capture.seen)
        response = super().ReadResource(request)  # type: ignore[no-untyped-call]
        raw, state = self._captured(depth)
        props = _unwrap_secrets(raw)
        record = RegisteredResource(
            type=request.type, name=request.name, urn=response.urn, custom=True, props=props,
            parent=request.parent or None, dependencies=tuple(request.dependencies), provider=request.provider or None,
            protect=False, ignore_changes=(), id=str(request.id or ""), outputs=_outputs(state, raw, props),
        )
        self._record(record)
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if request.urn == self.stack_urn:
            self.stack_outputs = _unwrap_secrets(rpc.deserialize_properties(request.outputs))
        return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]


def _no_stack_trace() -> Any:
    """Stands in for the SDK's `_get_stack_trace` during offline runs: the SDK walks the whole Python
    stack (`traceback.extract_stack`) at every registration to send the engine source positions,
    about 15% of the CPU of a mock run; nothing offline reads them (the recorder keeps no position)."""
    from pulumi.runtime.proto import source_pb2

    return source_pb2.StackTrace()


_SCALARS = (str, int, float, bool, type(None))


def _contains_unknowns(val: Any) -> bool:
    """Stands in for `pulumi.runtime.rpc.contains_unknowns` during offline runs, with the same answer.
    The SDK's version defines a recursive closure at every call (tens per resource): each is a
    reference cycle that only the cyclic collector frees, and with it paused for the run they were
    about 30% of a run's memory (tracemalloc, 30 agents)."""
    if type(val) in _SCALARS:
        return False
    seen: set[int] = set()
    todo = [val]
    while todo:
        v = todo.pop()
        if known_types.is_unknown(v):
            return True
        if id(v) in seen:
            continue
        seen.add(id(v))
        if isinstance(v, dict):
            todo.extend(v.values())
        elif isinstance(v, list):
            todo.extend(v)
    return False


class _PropertyOutput(Output[Any]):
    """One property's Output on a resource registered offline: the very `Output` the SDK would hand
    out, but its `_data` (the future of the `_OutputData` every Output method awaits) is made only when
    something uses it. Until then the resolution from the mock monitor is kept as one tuple. Most of
    a resource's ~13 properties are never read (an alarm's `arn`, a policy's `name`): under the SDK
    each still costs four futures, a Task, a set of dependencies and a tracked done-callback."""

    def __init__(self, resource: Any) -> None:  # noqa: D107 (no super().__init__: it would make the Task)
        self._pending_resource = resource
        self._pending_resolution: tuple[Any, bool, bool, Any, Exception | None] | None = None
        self._pending_data: asyncio.Future[Any] | None = None
        self._pending_tracked = True

    @property
    def _data(self) -> asyncio.Future[Any]:  # type: ignore[override]
        if self._pending_data is None:
            self._pending_data = asyncio.get_event_loop().create_future()
            if self._pending_resolution is not None:
                self._pending_settle()
            if self._pending_tracked:  # as Output._from_data: the SDK waits for tracked Outputs at the end
                self._track()
        return self._pending_data

    def _untrack(self) -> None:
        """A derived Output (`apply`) takes over: nothing to untrack yet if `_data` was never made (and
        making it here would take the SDK's lock twice)."""
        if self._pending_data is None:
            self._pending_tracked = False
        else:
            super()._untrack()

    def _pending_resolve(self, value: Any, is_known: bool, is_secret: bool, deps: Any, failed: Exception | None) -> None:
        """The resolver the SDK calls with the mock monitor's answer (`rpc.Resolver`)."""
        self._pending_resolution = (value, is_known, is_secret, deps, failed)
        if self._pending_data is not None:
            self._pending_settle()

    def _pending_settle(self) -> None:
        """The `_OutputData` the SDK's four futures end up in: the value, its flags, and its
        dependencies plus the resource (or the registration's failure)."""
        assert self._pending_data is not None and self._pending_resolution is not None
        value, is_known, is_secret, deps, failed = self._pending_resolution
        self._pending_resolution = None
        if failed is not None:
            self._pending_data.set_exception(failed)
            return
        resources = set(deps) if deps else set()
        resources.add(self._pending_resource)
        self._pending_data.set_result(_OutputData(resources=resources, value=value, is_known=is_known, is_secret=is_secret))


def _transfer_properties(res: Any, props: Any, custom: bool) -> dict[str, Any]:
    """Stands in for `rpc.transfer_properties` during offline runs: the same property Outputs on
    `res` and the same resolvers, made lazily (`_PropertyOutput`). 1,000 agents: about 40% of the
    run's peak memory and a third of its CPU (see docs/components.md, "Speed")."""
    resolvers: dict[str, Any] = {}
    for name in props:
        if name == "urn" or (name == "id" and custom):
            continue  # resolved by the SDK's resource_output, as in rpc.transfer_properties
        output = _PropertyOutput(res)
        resolvers[name] = output._pending_resolve
        res.__dict__[name] = output
    return resolvers


_sdk_resource_types = pulumi_types.resource_types


@functools.lru_cache(maxsize=None)
def _resource_types(resource_cls: type) -> dict[str, type]:
    """Stands in for `_types.resource_types` during offline runs: the SDK resolves a resource class's
    type hints again at every registration (a new class and `get_type_hints` each time); they are
    the class's, so once per class. Its callers only read the dict."""
    return _sdk_resource_types(resource_cls)


_sdk_sync_await = _sync_await


def _sync_await_now(awaitable: Any) -> Any:
    """Stands in for `_sync_await` inside the SDK's mock monitor during offline runs. The monitor
    serializes each resource's mock state (plain values) with a coroutine that never waits, so it is
    run to its end on the spot; one that does wait (state holding an unresolved Output) is finished
    the SDK's way, by pumping the event loop. Same result either way."""
    if not asyncio.iscoroutine(awaitable):
        return _sdk_sync_await(awaitable)
    try:
        waiting_on = awaitable.send(None)
    except StopIteration as done:
        return done.value
    return _sdk_sync_await(_resume(awaitable, waiting_on))


async def _resume(coro: Any, waiting_on: Any) -> Any:
    """Drives a coroutine that was started by hand and stopped on `waiting_on`, as a Task would."""
    while True:
        if waiting_on is None:  # a bare `yield` (asyncio.sleep(0))
            await asyncio.sleep(0)
        else:
            await waiting_on
        try:
            waiting_on = coro.send(None)
        except StopIteration as done:
            return done.value


def _inline_run_in_executor(loop: asyncio.AbstractEventLoop) -> Callable[..., Any]:
    """`loop.run_in_executor` for offline runs: calls the (in-process, synchronous) mock monitor right
    away on the loop's thread and hands back a finished future. Under the engine the SDK sends these
    calls to a gRPC server from worker threads; under the mocks the threads only added a handoff and
    a wake-up of the loop per call (a third of a large preview's CPU, much of it in the kernel) and
    GIL contention between six threads."""

    def run_in_executor(_executor: Any, func: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = loop.create_future()
        try:
            future.set_result(func(*args))
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # the SDK awaits the future and handles (or reports) the failure
            future.set_exception(exc)
        return future

    return run_in_executor


def _no_debug_log(*_args: Any, **_kwargs: Any) -> None:
    """Stands in for `pulumi.log.debug` during offline runs: under the mocks the SDK's debug messages
    (several per resource) are built as protobuf requests only to be dropped by a `logging` debug call."""


class _Pump:
    """Lets the registrations already declared run while the program is still declaring, every
    `every` resources. The language host runs the whole program before the event loop registers
    anything, so at the end of the program every resource's pending registration (its coroutine,
    serialized inputs, unresolved Outputs) is alive at once: most of a large run's peak memory.
    Under the mocks each registration completes on the spot once its inputs are known; draining
    the loop now and then keeps only a few hundred pending. It runs the loop the way the SDK's own
    synchronous invokes do (`_sync_await` from inside the program); no resource is declared
    differently: the same registrations, in an order the program's dependencies still dictate."""

    every = 200
    """Resources declared between two drains (about 6 agents' worth): a few hundred pending at most."""

    def __init__(self) -> None:
        self.declared, self.drains, self.pumping = 0, 0, False
        self.floor: int | None = None
        self.resource_init = pulumi.Resource.__init__

    def init(self, res: Any, *args: Any, **kwargs: Any) -> None:
        """`Resource.__init__` for the run: the SDK's, then now and then a drain of the loop."""
        self.resource_init(res, *args, **kwargs)
        self.declared += 1
        if self.declared % self.every == 0 and not self.pumping:
            self.pumping = True  # a resource declared inside an apply while draining does not drain again
            try:
                self._drain()
            finally:
                self.pumping = False

    def _drain(self) -> None:
        """Runs the loop until nothing is ready (under the mocks nothing arrives from outside it), as
        `sync_await._sync_await` does, from inside the task that runs the program. Like it, it leaves
        at least as many handles queued as the loop iteration it interrupts still expects to pop, but
        counted once (the queue when the program first drained, which only grew from the program's
        start): `_sync_await` pads to the queue it found, which here would grow at every drain."""
        self.drains += 1
        loop = asyncio.get_event_loop()
        ready = loop._ready  # type: ignore[attr-defined]
        if self.floor is None:
            self.floor = len(ready)
        task = asyncio.current_task(loop)
        if task is not None:
            asyncio.tasks._leave_task(loop, task)
        try:
            while ready:
                loop._run_once()  # type: ignore[attr-defined]
        finally:
            while len(ready) < self.floor:
                handle = asyncio.Handle(lambda: None, (), loop)
                handle.cancel()
                ready.append(handle)
            if task is not None:
                asyncio.tasks._enter_task(loop, task)


class _OfflineSdk:
    """Swaps the SDK's per-resource helpers that cost time or memory and change nothing recorded
    (`_get_stack_trace`, `rpc.contains_unknowns`, `log.debug`, `rpc.transfer_properties`, the mock
    monitor's `_sync_await`, `_types.resource_types`, `Resource.__init__` for `_Pump`) for the
    duration of a run; restores them."""

    def __init__(self, stack_traces: bool, shortcuts: bool):
        self.patches: list[tuple[Any, str, Any]] = []
        if not stack_traces:
            self.patches.append((pulumi_resource, "_get_stack_trace", _no_stack_trace))
        if shortcuts:
            self.patches += [
                (rpc, "contains_unknowns", _contains_unknowns),
                (pulumi_log, "debug", _no_debug_log),
                (rpc, "transfer_properties", _transfer_properties),
                (pulumi_mocks, "_sync_await", _sync_await_now),
                (pulumi_types, "resource_types", _resource_types),
                (pulumi.Resource, "__init__", _Pump().init),
            ]
        self.saved: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> None:
        for module, name, value in self.patches:
            self.saved.append((module, name, getattr(module, name)))
            setattr(module, name, value)

    def __exit__(self, *_exc: Any) -> None:
        for module, name, value in reversed(self.saved):
            setattr(module, name, value)
        self.saved.clear()


def _reset_runtime(stack: str, config: Mapping[str, str]) -> None:
    """Forget any previous run (root stack, settings, config) so runs don't leak into each other."""
    pulumi_settings.reset_options(project=PROJECT, stack=stack, preview=False)
    pulumi_config.set_all_config(dict(config), [])


def run_program(
    stack: str = "dev",
    *,
    root: Path | None = None,
    config_overrides: Mapping[str, Any] | None = None,
    program: Callable[[], None] | None = None,
    stack_traces: bool = False,
    sdk_shortcuts: bool = True,
    stack_references: Mapping[str, Mapping[str, Any]] | None = None,
    collect_garbage: bool = True,
    mocks: FleetMocks | None = None,
) -> ProgramRun:
    """Evaluate `root/__main__.py` (or `program`) for `stack` under mocks; see the module docstring.

    `stack_traces=True` keeps the SDK's per-resource stack capture (off by default: `_no_stack_trace`);
    `sdk_shortcuts=False` keeps the SDK's own helpers (see `_OfflineSdk`) and its worker threads for the
    monitor calls (instead of `_inline_run_in_executor`).
    `stack_references`: outputs of other stacks (`pulumi.StackReference`), by stack name.
    `collect_garbage=False` (one-shot CLI runs): instead of a full collection after the run (about 10%
    of a large preview), freeze the heap (`gc.freeze`): the process exits soon, and its later
    collections (and the one at exit) skip the run's objects. Keep the default in long-lived processes."""
    root = find_project_dir() if root is None else root
    config = stack_config(stack, root)
    config.update({k: _config_value(v) for k, v in (config_overrides or {}).items()})
    region = config.get("aws:region", "us-east-1")
    account = config.get(f"{PROJECT}:awsAccountId", "123456789012")
    from agentfleet.core.settings import partition_of

    if mocks is None:  # the rehearsal passes mocks that apply each resource to local servers
        mocks = FleetMocks(region, account, partition_of(region), stack_references)
    monitor = RecordingMonitor(mocks, reuse_request=sdk_shortcuts)

    offline_sdk = _OfflineSdk(stack_traces, sdk_shortcuts)
    offline_sdk.__enter__()
    try:
        _reset_runtime(stack, config)
        pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    except BaseException:
        offline_sdk.__exit__()
        raise
    # set_mocks registers a throwaway root stack; run the program in a fresh one, as the
    # language host does, so exports reach RegisterResourceOutputs.
    pulumi_settings.ROOT.set(None)
    # `pulumi.get_root_directory()`: the program finds its project (fleet file) as under the engine.
    pulumi_settings.SETTINGS.root_directory = str(root)

    if program is None:
        main = root / "__main__.py"
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))

        def program() -> None:
            runpy.run_path(str(main), run_name="__main__")

    loop = _ensure_event_loop()  # type: ignore[no-untyped-call]
    executor: ThreadPoolExecutor | None = None
    if sdk_shortcuts:  # monitor calls run on the loop's thread (`_inline_run_in_executor`)
        loop.run_in_executor = _inline_run_in_executor(loop)
    else:
        # A fresh executor per run for the monitor calls: its threads (each holding an event loop the
        # SDK creates) end with the run, instead of being torn down noisily at interpreter exit.
        executor = ThreadPoolExecutor(thread_name_prefix="mockrun")
        loop.set_default_executor(executor)
    # Python's cyclic GC keeps re-walking the growing graph of live Outputs and tasks; paused for
    # the evaluation (and run once after) it costs nothing, and evaluation time grows linearly
    # with the fleet instead of ~N^1.1 (see docs/components.md, "Speed").
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        _sync_await(run_in_stack(program))
    finally:
        offline_sdk.__exit__()
        pulumi_settings.ROOT.set(None)
        if executor is None:
            del loop.run_in_executor  # the loop's own method again
        else:
            executor.shutdown(wait=True)
        if gc_was_enabled:
            if not collect_garbage:
                gc.freeze()
            gc.enable()
            if collect_garbage:
                gc.collect()

    if monitor.stack_outputs is None:
        raise MockRunError("the program's stack never completed under the mocks: nothing was evaluated")
    if monitor.duplicates:
        shown = "\n  ".join(sorted(set(monitor.duplicates))[:20])
        raise MockRunError(
            f"{len(monitor.duplicates)} resource(s) registered under a URN already taken (the engine rejects"
            f" the update; give each component a distinct name):\n  {shown}"
        )
    if mocks.new_resource_calls != len(monitor.recorded):
        raise MockRunError(
            f"mock callbacks ran {mocks.new_resource_calls} times for {len(monitor.recorded)} registrations"
        )
    return ProgramRun(
        stack=stack,
        stack_urn=monitor.stack_urn,
        resources=list(monitor.recorded),
        outputs=dict(monitor.stack_outputs),
        invokes=list(mocks.invokes),
        config=config,
    )
