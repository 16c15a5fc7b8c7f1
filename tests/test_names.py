"""One collision check over every derived name, run by validate and every verb, naming both lines."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from agentfleet.cli.main import main
from agentfleet.core import names, naming
from agentfleet.core import rotation_plan as rp
from agentfleet.core.loader import FleetError, parse_fleet
from agentfleet.core.model import Fleet
from agentfleet.core.plan import NameCollision, build_plan
from agentfleet.core.settings import StackSettings

from tests.fleetgen import generate_fleet

AGENT = "  - name: {name}\n    runtime: {{service: ecs-tasks.amazonaws.com}}\n    credentials:\n{creds}"
CRED = "      - {{name: {name}, service: svc, type: token{extra}}}\n"


def fleet_text(*agents: tuple[str, list[str]], extra: str = "") -> str:
    body = "".join(AGENT.format(name=a, creds="".join(CRED.format(name=c, extra=extra) for c in cs)) for a, cs in agents)
    return "version: 1\nagents:\n" + body


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_dash_joined_names_collide_and_both_lines_are_named(tmp_path: Path) -> None:
    text = fleet_text(("aa", ["bb-cc"]), ("aa-bb", ["cc"]))
    f = tmp_path / "agents.yaml"
    f.write_text(text)
    code, out, err = run("validate", str(f))
    assert code == 1 and out == ""
    lines = err.splitlines()
    alarm = next(ln for ln in lines if "CloudWatch alarm 'agents-dev-aa-bb-cc-overdue'" in ln)
    # Reported on the second owner's line, naming the first's: credential bb-cc is on line 6, cc on line 10.
    assert alarm.startswith(f"{f}:10: credential aa/bb-cc (line 6) and credential aa-bb/cc (line 10)")
    assert any("schedule 'agents-dev-aa-bb-cc-rotate'" in ln for ln in lines)


def test_agent_named_like_an_environment_role_is_refused_by_validate(tmp_path: Path) -> None:
    """`rotation-age` used to pass validate and fail only at preview (the age reporter's role)."""
    f = tmp_path / "agents.yaml"
    f.write_text(fleet_text(("rotation-age", ["kk"])))
    code, _, err = run("validate", str(f))
    assert code == 1
    assert re.search(rf"^{re.escape(str(f))}:3: the secret-age reporter and agent 'rotation-age' \(line 3\) both map to IAM role 'agents-dev-rotation-age'", err, re.M)


@pytest.mark.parametrize("verb", [["plan"], ["audit"], ["preview"], ["check"]])
def test_every_verb_refuses_the_collision_with_file_line(tmp_path: Path, root: Path, verb: list[str]) -> None:
    f = tmp_path / "agents.yaml"
    f.write_text(fleet_text(("research", ["kk"]), ("research-rotation", ["kk"]), extra=", rotation: {strategy: generated}"))
    args = [*verb, str(f)] if verb[0] in ("plan", "audit") else [*verb, "--fleet", str(f)]
    code, _, err = run(*args, "--stack", "dev", "--project", str(root))
    assert code == 1
    assert f"{f}:7: agent 'research-rotation' (line 7) and the rotation function of agent 'research' (line 3) both map to IAM role 'agents-dev-research-rotation'" in err


def test_names_come_from_the_builders_outputs(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    """Every name the plan and the rotation plan output is enumerated (none re-derived, none missed)."""
    derived = {(d.namespace, d.name) for d in names.derived_names(sample_fleet, dev_settings)}
    plan = build_plan(sample_fleet, dev_settings)
    for a in plan["agents"]:
        assert ("IAM role", a["iam_role_name"]) in derived
        assert ("Vault policy", a["vault_policy_name"]) in derived
        for c in a["credentials"]:
            if c["secret_name"]:
                assert ("secret", c["secret_name"]) in derived
    for spec in rp.rotators(dev_settings, sample_fleet):
        assert {("Lambda function", spec.function_name), ("IAM role", spec.role_name), ("log group", spec.log_group_name)} <= derived
    for a in sample_fleet.agents:
        for r in rp.reminders(dev_settings, a):
            assert ("schedule", r.schedule_name) in derived
            alarm = rp.age_alarm(dev_settings, r)
            if alarm is not None:
                assert ("CloudWatch alarm", alarm.name) in derived
    assert ("IAM role", naming.scheduler_role_name(dev_settings)) in derived


def test_a_clean_fleet_has_no_clash_and_a_large_one_neither(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    assert names.name_clashes(sample_fleet, dev_settings) == []
    assert names.name_clashes(generate_fleet(300), dev_settings) == []
    names.check_names(sample_fleet, dev_settings)  # does not raise


def test_check_raises_name_collision_with_lines(dev_settings: StackSettings) -> None:
    fleet = parse_fleet(fleet_text(("aa", ["bb-cc"]), ("aa-bb", ["cc"])), "f.yaml")
    with pytest.raises(NameCollision) as exc:
        names.check_names(fleet, dev_settings)
    assert {line for line, _ in exc.value.problems} == {10}
    # The stack-aware loader turns them into FILE:LINE problems.
    with pytest.raises(FleetError) as loaded:
        parse_fleet(fleet_text(("aa", ["bb-cc"]), ("aa-bb", ["cc"])), "f.yaml", dev_settings)
    assert all(str(p).startswith("f.yaml:10: ") for p in loaded.value.problems)


def test_shared_rotation_roles_only_clash_in_shared_mode(dev_settings: StackSettings) -> None:
    fleet = parse_fleet(fleet_text(("rotation-generated", ["kk"]), extra=", rotation: {strategy: generated}"), "f.yaml")
    names.check_names(fleet, dev_settings)
    with pytest.raises(NameCollision, match="shared 'generated' rotation function"):
        names.check_names(fleet, dev_settings.model_copy(update={"rotation_isolation": "shared"}))
