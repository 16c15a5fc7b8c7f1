"""The CLI's validate/plan verbs on the sample fleet: exit codes and stable output."""

from __future__ import annotations

import io
import json
from pathlib import Path

from agentfleet.cli.main import main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_validate_sample_ok(root: Path) -> None:
    code, out, err = run("validate", str(root / "agents.yaml"))
    assert code == 0, err
    assert "ok (5 agents" in out


def test_plan_json_is_deterministic_and_matches_contract(root: Path) -> None:
    code, first, err = run("plan", str(root / "agents.yaml"), "--stack", "dev", "--format", "json")
    assert code == 0, err
    _, second, _ = run("plan", str(root / "agents.yaml"), "--stack", "dev", "--format", "json")
    assert first == second
    plan = json.loads(first)
    assert plan["stack"] == "dev" and plan["environment"] == "dev"
    research = next(a for a in plan["agents"] if a["name"] == "research")
    openai = next(c for c in research["credentials"] if c["name"] == "openai")
    assert openai == {
        "name": "openai", "service": "openai", "type": "api_key", "classification": "internal",
        "rotation_strategy": "openai", "rotation_days": 90, "stores": ["aws", "vault"],
        "secret_name": "agents/dev/research/openai", "vault_mount": "kv",
        "vault_path": "dev/research/openai", "vault_location": "kv/dev/research/openai", "ssm_parameter": None,
        "audience": None,
    }


def test_plan_table_lists_every_agent(root: Path) -> None:
    code, out, _ = run("plan", str(root / "agents.yaml"))
    assert code == 0
    for name in ("research", "crm", "billing", "support", "release-notes"):
        assert f"\n{name}  (owner" in out


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run("validate", str(tmp_path / "missing.yaml"))[0] == 2
    assert run("no-such-verb")[0] == 2
    assert run()[0] == 2


def test_plan_on_invalid_fleet_gives_validate_errors(tmp_path: Path, root: Path) -> None:
    bad = tmp_path / "agents.yaml"
    bad.write_text("version: 1\nagents:\n  - name: Bad\n")
    (tmp_path / "Pulumi.dev.yaml").write_text((root / "Pulumi.dev.yaml").read_text())
    code_v, _, err_v = run("validate", str(bad))
    code_p, _, err_p = run("plan", str(bad), "--stack", "dev")
    assert code_v == code_p == 1
    assert err_v.splitlines()[:-1] == err_p.splitlines()[:-1]
    assert f"{bad}:3: agents[0].name: invalid name 'Bad'" in err_v
