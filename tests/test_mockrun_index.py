"""The recorder's speed switches change nothing it records: the parent index gives the same
children as a scan, and skipping the SDK's stack-trace capture gives identical records."""

from __future__ import annotations

from typing import Any

from pulumi.runtime import resource as pulumi_resource

from agentfleet.runner import mockrun
from agentfleet.runner.mockrun import ProgramRun, run_program
from tests.conftest import PROJECT
from tests.pulumi_harness import fingerprint


def _scan_children(run: ProgramRun, urn: str) -> list[str]:
    return [r.urn for r in run.resources if r.parent == urn]


def test_parent_index_equals_a_scan_and_follows_growth() -> None:
    run = run_program("dev", root=PROJECT)
    for r in run.resources[:200]:
        assert [c.urn for c in run.children(r.urn)] == _scan_children(run, r.urn)
    top = run.children(run.stack_urn)
    assert [c.urn for c in top] == _scan_children(run, run.stack_urn) and top
    # Every non-stack resource is a descendant of the stack exactly once.
    below = [r.urn for r in run.descendants(run.stack_urn)]
    assert sorted(below) == sorted(r.urn for r in run.resources)
    extra = mockrun.RegisteredResource(type="t:x:Y", name="late", urn="urn:late", custom=False, props={},
                                       parent=top[0].urn, dependencies=(), provider=None, protect=False,
                                       ignore_changes=())
    run.resources.append(extra)
    assert extra in run.children(top[0].urn)


def test_skipping_stack_traces_records_the_same_program() -> None:
    calls: list[Any] = []
    real = pulumi_resource._get_stack_trace

    def counting() -> Any:
        calls.append(1)
        return real()

    pulumi_resource._get_stack_trace = counting
    try:
        with_traces = run_program("dev", root=PROJECT, stack_traces=True)
        assert calls, "the SDK no longer calls _get_stack_trace: the switch in mockrun is dead code"
        n = len(calls)
        without = run_program("dev", root=PROJECT)
        assert len(calls) == n  # the default run never captured a stack
    finally:
        pulumi_resource._get_stack_trace = real
    assert pulumi_resource._get_stack_trace is real  # restored after each run
    assert fingerprint(with_traces) == fingerprint(without)
