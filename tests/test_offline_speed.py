"""Speed switches of the offline verbs (issue 17) change nothing a verb, test or policy reads.

- the recorder takes each registration's inputs and state from the mocks' call instead of
  deserializing the request again: the records equal a fresh deserialization;
- `_OfflineSdk` swaps SDK helpers for the run only (`contains_unknowns` gives the SDK's answers,
  lazy property Outputs resolve to what the SDK's resolve to, the mock monitor's serialization and
  calls give the same results on the loop's thread) and the records are the same with and without;
- `load_fleet` hands back its last Fleet only for the same bytes and stack.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
from pulumi import _types as pulumi_types
from pulumi import log as pulumi_log
from pulumi import output as pulumi_output
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime import rpc

import pulumi

from agentfleet.core import loader
from agentfleet.core.settings import StackSettings
from agentfleet.runner import mockrun
from agentfleet.runner.mockrun import ProgramRun, run_program
from tests.conftest import PROJECT


def Unknown() -> Any:
    """The SDK's marker of a value unknown at preview time."""
    return pulumi_output.Unknown()  # type: ignore[no-untyped-call]


def _records(run: ProgramRun) -> dict[str, mockrun.RegisteredResource]:
    """By URN; dependencies sorted (the SDK collects them in a set: their order varies run to run)."""
    return {r.urn: dataclasses.replace(r, dependencies=tuple(sorted(r.dependencies))) for r in run.resources}


def test_records_equal_a_fresh_deserialization_of_each_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the recorder captured from the mocks is what the request carried and what the SDK's monitor kept."""
    checked: list[str] = []
    real = mockrun.RecordingMonitor.RegisterResource

    def checking(self: mockrun.RecordingMonitor, request: Any) -> Any:
        response = real(self, request)
        if request.type != mockrun.STACK_TYPE:
            raw = rpc.deserialize_properties(request.object)
            rec = self.recorded[-1] if self.recorded[-1].urn == response.urn else next(
                r for r in self.recorded if r.urn == response.urn)
            assert rec.props == mockrun._unwrap_secrets(raw)
            assert rec.secret_props == tuple(sorted(k for k, v in raw.items() if rpc.is_rpc_secret(v)))
            assert rec.outputs == mockrun._unwrap_secrets(dict(self.resources[response.urn].state))
            checked.append(response.urn)
        return response

    monkeypatch.setattr(mockrun.RecordingMonitor, "RegisterResource", checking)
    run = run_program("prod", root=PROJECT)
    assert len(checked) == len(run.resources) > 50
    assert any(r.secret_props for r in run.resources)  # secret inputs went through the check too


def test_outputs_share_the_unwrapped_inputs_without_changing_them() -> None:
    secret = rpc.wrap_rpc_secret({"a": [1, 2]})
    inputs = {"plain": {"x": 1}, "hidden": secret}
    props = mockrun._unwrap_secrets(inputs)
    state = {**inputs, "arn": "arn:aws:x", "plain": {"x": 2}}  # the mocks replaced `plain`
    out = mockrun._outputs(state, inputs, props)
    assert out == {"plain": {"x": 2}, "hidden": {"a": [1, 2]}, "arn": "arn:aws:x"}
    assert out["hidden"] is props["hidden"] and out["plain"] is not props["plain"]


@pytest.mark.parametrize("value", [
    None, "s", 3, 1.5, True, [], {}, [1, "a", {"b": [2]}], {"k": {"n": [None, "x"]}},
    Unknown(), [1, Unknown()], {"a": {"b": [{"c": Unknown()}]}}, {"a": "b", "c": [[], [[Unknown()]]]},
])
def test_contains_unknowns_answers_as_the_sdk(value: Any) -> None:
    assert mockrun._contains_unknowns(value) is rpc.contains_unknowns(value)


def test_contains_unknowns_follows_cycles_and_shared_values() -> None:
    shared: list[Any] = [1]
    cyclic: dict[str, Any] = {"a": shared, "b": shared}
    cyclic["self"] = cyclic
    assert mockrun._contains_unknowns(cyclic) is rpc.contains_unknowns(cyclic) is False
    shared.append(Unknown())
    assert mockrun._contains_unknowns(cyclic) is rpc.contains_unknowns(cyclic) is True


def test_sdk_shortcuts_apply_during_the_run_only_and_record_the_same_program(monkeypatch: pytest.MonkeyPatch) -> None:
    real = (rpc.contains_unknowns, pulumi_log.debug, pulumi_resource._get_stack_trace, rpc.transfer_properties,
            getattr(pulumi_mocks, "_sync_await"), pulumi_types.resource_types, pulumi.Resource.__init__)
    seen: list[tuple[Any, Any]] = []
    threads: set[str] = set()

    class Spy(mockrun.FleetMocks):
        def new_resource(self, args: Any) -> Any:
            seen.append((rpc.contains_unknowns, pulumi_log.debug))
            threads.add(threading.current_thread().name)
            return super().new_resource(args)

    def run(shortcuts: bool) -> ProgramRun:
        config = mockrun.stack_config("dev", PROJECT)
        return run_program("dev", root=PROJECT, sdk_shortcuts=shortcuts,
                           mocks=Spy(config["aws:region"], config["agentfleet:awsAccountId"]))

    fast = run(True)
    assert seen and all(c is mockrun._contains_unknowns and d is mockrun._no_debug_log for c, d in seen)
    assert threads == {threading.main_thread().name}  # monitor calls on the loop's thread
    seen.clear()
    threads.clear()
    slow = run(False)
    assert seen and all(c is real[0] and d is real[1] for c, d in seen)
    assert threads and threading.main_thread().name not in threads  # the SDK's worker threads
    restored = (rpc.contains_unknowns, pulumi_log.debug, pulumi_resource._get_stack_trace, rpc.transfer_properties,
                getattr(pulumi_mocks, "_sync_await"), pulumi_types.resource_types, pulumi.Resource.__init__)
    assert restored == real
    assert "run_in_executor" not in vars(asyncio.get_event_loop())  # the loop's own method again
    a, b = _records(fast), _records(slow)
    assert a.keys() == b.keys()
    for urn, rec in a.items():
        assert rec == b[urn], urn


def test_load_fleet_reuses_its_last_fleet_only_for_the_same_bytes_and_stack(
    tmp_path: Path, dev_settings: StackSettings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed: list[str] = []
    real = loader.parse_fleet

    def counting(*args: Any, **kwargs: Any) -> Any:
        parsed.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(loader, "parse_fleet", counting)
    monkeypatch.setattr(loader, "_last_load", [])
    path = tmp_path / "agents.yaml"
    text = (PROJECT / "agents.yaml").read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    first = loader.load_fleet(path, dev_settings)
    # The program's settings carry where the fleet file is; that plays no part in the parse.
    again = loader.load_fleet(path, dev_settings.model_copy(update={"fleet_file": str(path)}))
    assert again is first and len(parsed) == 1
    path.write_text(text.replace("version: 1", "version: 1\n# edited"), encoding="utf-8")
    edited = loader.load_fleet(path, dev_settings)
    assert edited is not first and len(parsed) == 2
    other_stack = loader.load_fleet(path, dev_settings.model_copy(update={"secret_prefix": "other"}))
    assert other_stack is not edited and len(parsed) == 3
    assert loader.load_fleet(path, None) is not other_stack and len(parsed) == 4
    assert loader.load_fleet(path, None, names_only=True) is not None and len(parsed) == 5


class _Res:
    """Stands in for a resource: only its `__dict__` is used by `transfer_properties`."""


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh current event loop, closed after the test (a fresh one is current again)."""
    fresh = asyncio.new_event_loop()
    asyncio.set_event_loop(fresh)
    try:
        yield fresh
    finally:
        fresh.close()
        asyncio.set_event_loop(asyncio.new_event_loop())


def _resolved(out: pulumi.Output[Any]) -> Any:
    async def read() -> Any:
        data = await out._data
        return data.value, data.is_known, data.is_secret, data.resources
    return read()


@pytest.mark.parametrize("read_first", [False, True])
@pytest.mark.parametrize("deps", [None, set(), {"dep"}])
def test_lazy_property_outputs_resolve_to_what_the_sdks_do(read_first: bool, deps: Any, loop: asyncio.AbstractEventLoop) -> None:
    """Read before or after the monitor's answer, with or without dependencies: the same
    `_OutputData` as the SDK's four futures give; one Output per property, as on the resource."""
    props = {"urn": None, "id": None, "arn": None, "name": None, "tags": None}
    sdk_res, lazy_res = _Res(), _Res()
    sdk = rpc.transfer_properties(sdk_res, props, True)  # type: ignore[arg-type]
    lazy = mockrun._transfer_properties(lazy_res, props, True)
    assert sdk.keys() == lazy.keys() == {"arn", "name", "tags"}
    assert all(isinstance(lazy_res.__dict__[k], pulumi.Output) for k in lazy)
    first = {k: lazy_res.__dict__[k] for k in lazy}
    reads: dict[str, Any] = {}
    if read_first:
        reads = {k: asyncio.ensure_future(_resolved(lazy_res.__dict__[k]), loop=loop) for k in lazy}
    for resolvers in (sdk, lazy):
        resolvers["arn"]("arn:aws:x", True, False, deps, None)
        resolvers["name"](None, False, True, deps, None)
        resolvers["tags"]({"a": "b"}, True, True, None, None)
    for k in lazy:
        want = loop.run_until_complete(_resolved(sdk_res.__dict__[k]))
        got = loop.run_until_complete(reads[k] if read_first else _resolved(lazy_res.__dict__[k]))
        assert got[:3] == want[:3]
        assert got[3] - {lazy_res} == want[3] - {sdk_res} and lazy_res in got[3]
        assert lazy_res.__dict__[k] is first[k]


def test_lazy_property_outputs_carry_a_registration_failure_and_apply_like_any_output(loop: asyncio.AbstractEventLoop) -> None:
    res = _Res()
    resolvers = mockrun._transfer_properties(res, {"arn": None, "name": None}, True)
    made: list[pulumi.Output[str]] = []

    def derive() -> None:  # apply untracks first: on an unread Output that must not take the SDK's lock twice
        asyncio.set_event_loop(loop)
        made.append(res.__dict__["name"].apply(lambda v: f"{v}-x"))

    worker = threading.Thread(target=derive, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert made, "apply on a property Output nobody had read deadlocked"
    derived = made[0]
    resolvers["name"]("n", True, False, None, None)
    resolvers["arn"](None, False, False, None, RuntimeError("registration failed"))
    assert loop.run_until_complete(derived.future()) == "n-x"
    with pytest.raises(RuntimeError, match="registration failed"):
        loop.run_until_complete(res.__dict__["arn"].future())


def test_sync_await_now_runs_a_coroutine_to_its_end_or_pumps_the_loop_for_one_that_waits(loop: asyncio.AbstractEventLoop) -> None:
    async def plain() -> int:
        return 1

    async def waits() -> int:
        fut: asyncio.Future[int] = loop.create_future()
        loop.call_soon(fut.set_result, 2)
        await asyncio.sleep(0)
        return await fut + 1

    assert mockrun._sync_await_now(plain()) == 1
    assert mockrun._sync_await_now(waits()) == 3


def test_inline_executor_hands_back_the_call_s_result_or_its_failure(loop: asyncio.AbstractEventLoop) -> None:
    run = mockrun._inline_run_in_executor(loop)
    assert loop.run_until_complete(run(None, lambda a, b: a + b, 1, 2)) == 3

    def fails() -> None:
        raise ValueError("monitor said no")

    with pytest.raises(ValueError, match="monitor said no"):
        loop.run_until_complete(run(None, fails))


@pytest.mark.parametrize("shortcuts", [True, False])
def test_registrations_run_while_the_program_still_declares(monkeypatch: pytest.MonkeyPatch, shortcuts: bool) -> None:
    """With the shortcuts, what was declared registers while the program goes on (`_Pump`), so the
    pending registrations stay few; without them (the SDK as is) nothing registers before the end.
    Either way the same resources, in dependency order, with the same inputs."""
    import pulumi_random as random

    monkeypatch.setattr(mockrun._Pump, "every", 10)
    config = mockrun.stack_config("dev", PROJECT)
    mocks = mockrun.FleetMocks(config["aws:region"], config["agentfleet:awsAccountId"])
    registered: list[int] = []

    def program() -> None:
        prev: random.RandomPassword | None = None
        for i in range(60):
            keepers = {"prev": prev.length.apply(str)} if prev is not None else None
            prev = random.RandomPassword(f"p{i}", length=16 + i, keepers=keepers)
            registered.append(mocks.new_resource_calls)

    run = run_program("dev", root=PROJECT, program=program, mocks=mocks, sdk_shortcuts=shortcuts)
    if shortcuts:
        assert all(n >= i + 1 - 10 for i, n in enumerate(registered)), registered
    else:
        assert registered[-1] == 0
    made = {r.name: r.props for r in run.resources}
    assert len(made) == 60 and made["p0"]["length"] == 16 and made["p59"]["keepers"] == {"prev": "74"}


def test_state_struct_is_the_sdks_serialization_of_every_resources_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mock monitor's answer reuses the request's Struct only where that is what serializing the
    state gives, byte for byte; both stacks, so every resource kind the program declares is seen."""
    real = mockrun._state_struct
    reused: list[bool] = []

    def checking(request_object: Any, inputs: Any, state: Any) -> Any:
        got = real(request_object, inputs, state)
        want = mockrun._sdk_sync_await(rpc.serialize_properties(dict(state), {}))
        assert got == want and got.SerializeToString(deterministic=True) == want.SerializeToString(deterministic=True)
        reused.append(all(k in state and state[k] is v and mockrun._plain(v) for k, v in inputs.items()))
        return got

    monkeypatch.setattr(mockrun, "_state_struct", checking)
    for stack in ("dev", "prod"):
        run_program(stack, root=PROJECT)
    assert len(reused) > 100 and sum(reused) > len(reused) // 2 and not all(reused)


@pytest.mark.parametrize("value, plain", [
    ("s", True), (1, True), (1.5, True), (True, True), ([1, ["a"]], True), ({"a": {"b": [1]}}, True),
    (None, False), ([None], False), ({"a": None}, False), (rpc.wrap_rpc_secret("x"), False),
    ({"k": [rpc.wrap_rpc_secret("x")]}, False), (pulumi.FileArchive("."), False), ((1, 2), False), ({1: "a"}, False),
])
def test_plain_values_are_only_those_the_wire_carries_as_themselves(value: Any, plain: bool) -> None:
    assert mockrun._plain(value) is plain


def test_state_struct_serializes_the_whole_state_when_a_passed_through_input_is_not_plain() -> None:
    """A null input the mocks pass through is dropped by the SDK's serialization; the request's copy
    would keep it. Only plain inputs are reused."""
    from google.protobuf import struct_pb2

    request_object = struct_pb2.Struct()
    request_object.update({"name": "n", "gone": None})
    inputs = {"name": "n", "gone": None}
    state = {**inputs, "arn": "arn:aws:x"}
    want = mockrun._sdk_sync_await(rpc.serialize_properties(dict(state), {}))
    assert "gone" not in want.fields
    assert mockrun._state_struct(request_object, inputs, state) == want
    plain_state = {"name": "n", "arn": "arn:aws:x"}
    plain_request = struct_pb2.Struct()
    plain_request.update({"name": "n"})
    assert mockrun._state_struct(plain_request, {"name": "n"}, plain_state) == mockrun._sdk_sync_await(
        rpc.serialize_properties(plain_state, {}))


@pytest.mark.parametrize("chunk", [1, 3, 65536])
def test_preview_json_is_written_as_json_dumps_would_write_it(chunk: int) -> None:
    import io
    import json

    from agentfleet.cli.cmd_preview import _write_json

    doc = {"b": [1, 2.5, None, True, {"z": "ü", "a": []}], "a": {"path": Path("/x")}, "c": "\u2028"}
    out = io.StringIO()
    _write_json(doc, out, chunk=chunk)
    assert out.getvalue() == json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n"
