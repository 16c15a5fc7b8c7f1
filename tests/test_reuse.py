"""`agentfleet.core.reuse`: within one verb, a pure result is computed once; never handed to other inputs.

The CLI runs its short verbs (validate, plan, audit, diff) inside `reuse.scope()`; outside it (a
program, the tests, the verbs that run the program) nothing is kept.
"""

from __future__ import annotations

import io
from typing import Any

from agentfleet.cli.main import main
from agentfleet.core import names, plan, reuse
from agentfleet.core.loader import load_fleet, parse_fleet
from agentfleet.core.settings import StackSettings

from tests.conftest import REPO

SAMPLE = REPO / "tests" / "project" / "agents.yaml"


def test_outside_a_scope_nothing_is_kept(sample_fleet: Any, dev_settings: StackSettings) -> None:
    a = sample_fleet.agents[0]
    key = "arn:aws:kms:us-east-1:123456789012:key/x"
    assert not reuse.active()
    assert plan.agent_plan(dev_settings, a, key) is not plan.agent_plan(dev_settings, a, key)


def test_within_a_scope_the_same_inputs_share_one_result(sample_fleet: Any, dev_settings: StackSettings) -> None:
    a = sample_fleet.agents[0]
    key = "arn:aws:kms:us-east-1:123456789012:key/x"
    with reuse.scope():
        first = plan.agent_plan(dev_settings, a, key)
        assert plan.agent_plan(dev_settings, a, key) is first
        # An equal agent (another read of the same file) shares it too ...
        again = parse_fleet(SAMPLE.read_text(), str(SAMPLE)).agents[0]  # not load_fleet: it hands out its last fleet again
        assert again is not a and again == a
        assert plan.agent_plan(dev_settings, again, key) is first
        # ... but not another key, another agent or other settings (even equal ones).
        assert plan.agent_plan(dev_settings, a, key + "2") is not first
        assert plan.agent_plan(dev_settings, sample_fleet.agents[1], key).name == sample_fleet.agents[1].name
        other = dev_settings.model_copy()
        assert plan.agent_plan(other, a, key) is not first
        changed = dev_settings.model_copy(update={"secret_prefix": "other"})
        assert plan.agent_plan(changed, a, key).credentials[0].secret_name != first.credentials[0].secret_name
    assert not reuse.active()


def test_an_unequal_agent_gets_its_own_plan(dev_settings: StackSettings) -> None:
    text = SAMPLE.read_text()
    fleet = parse_fleet(text, "a.yaml")
    first = fleet.agents[0]
    renamed = first.model_copy(update={"owner": first.owner + "-x"})
    key = "k"
    with reuse.scope():
        assert plan.agent_plan(dev_settings, renamed, key).owner == first.owner + "-x"
        assert plan.agent_plan(dev_settings, first, key).owner == first.owner


def test_the_name_check_still_finds_clashes_after_a_clean_fleet_was_checked(dev_settings: StackSettings) -> None:
    """A fleet whose names collide must be refused even when a clean one was checked earlier in the verb."""
    ok = parse_fleet("version: 1\nagents:\n" + "".join(
        f"  - name: {n}\n    runtime: {{service: ecs-tasks.amazonaws.com}}\n    credentials: [{{name: {c}, service: s, type: api_key}}]\n"
        for n, c in (("aa", "bb-cc"), ("zz", "kk"))), "ok.yaml")
    clash = parse_fleet("version: 1\nagents:\n" + "".join(
        f"  - name: {n}\n    runtime: {{service: ecs-tasks.amazonaws.com}}\n    credentials: [{{name: {c}, service: s, type: api_key}}]\n"
        for n, c in (("aa", "bb-cc"), ("aa-bb", "cc"))), "clash.yaml")
    with reuse.scope():
        assert names.name_clashes(ok, dev_settings) == []
        assert names.name_clashes(clash, dev_settings)


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_a_verb_prints_the_same_with_and_without_reuse(monkeypatch: Any) -> None:
    """The CLI's output does not depend on the reuse: the same verb with the scope made inert."""
    verbs = (("plan", str(SAMPLE), "--format", "json"), ("validate", str(SAMPLE), "--stack", "dev"),
             ("audit", str(SAMPLE), "--format", "csv"), ("diff", str(SAMPLE), str(SAMPLE), "--format", "json"))
    with_reuse = [_run(*v) for v in verbs]
    monkeypatch.setattr(reuse, "table", lambda name: None)
    monkeypatch.setattr(reuse, "active", lambda: False)
    without = [_run(*v) for v in verbs]
    assert with_reuse == without
    assert all(code == 0 for code, _, _ in with_reuse)
