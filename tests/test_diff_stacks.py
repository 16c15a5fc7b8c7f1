"""`diff --base`: each side's stack settings and the fleet file they name; settings changes that
change access; every stack; removal consequences; renames; PR comments under GitHub's limit."""

from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agentfleet.cli.main import main
from agentfleet.core.loader import parse_fleet
from agentfleet.core.plan import build_plan
from agentfleet.core.settings import StackSettings
from agentfleet.review import diff

from tests.fleetgen import generate_fleet_yaml

PROJECT = "name: agentfleet\nruntime: python\n"
DEV = """config:
  aws:region: us-east-1
  agentfleet:environment: dev
  agentfleet:awsAccountId: "123456789012"
  agentfleet:adminPrincipals:
    - arn:aws:iam::123456789012:role/platform-break-glass
"""
PROD = """config:
  aws:region: us-east-1
  agentfleet:environment: prod
  agentfleet:awsAccountId: "210987654321"
  agentfleet:protect: true
  agentfleet:recoveryWindowDays: 14
"""
FLEET = """version: 1
agents:
  - name: research
    runtime:
      role_arns: [arn:aws:iam::123456789012:role/research-runner]
    environments:
      prod:
        runtime:
          role_arns: [arn:aws:iam::210987654321:role/research-runner]
    credentials:
      - {name: openai, service: openai, type: api_key, rotation: {strategy: openai}}
      - {name: serp, service: serpapi, type: api_key, stores: [aws, vault]}
"""


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false", *args],
        check=True, capture_output=True, text=True,
    ).stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    (r / "Pulumi.yaml").write_text(PROJECT)
    (r / "Pulumi.dev.yaml").write_text(DEV)
    (r / "Pulumi.prod.yaml").write_text(PROD)
    (r / "agents.yaml").write_text(FLEET)
    git(r, "add", ".")
    git(r, "commit", "-q", "-m", "base")
    monkeypatch.chdir(r)
    return r


def kinds(doc: dict[str, Any]) -> list[tuple[str, str, bool]]:
    return [(a["agent"], c["kind"], c["escalation"]) for a in doc["agents"] for c in a["changes"]]


WORKFLOW_DIFF = ("diff", "--base", "main", "agents.yaml", "--stack", "dev", "--fail-on", "escalation")


def test_fleet_file_swap_is_followed_and_fails_the_workflow_command(repo: Path) -> None:
    """The red-team PR: a new file trusts a contractor, and only the stack file points at it."""
    (repo / "agents-v2.yaml").write_text(FLEET.replace(
        "role_arns: [arn:aws:iam::123456789012:role/research-runner]",
        "role_arns: [arn:aws:iam::123456789012:role/research-runner, arn:aws:iam::999999999999:role/contractor]"))
    (repo / "Pulumi.dev.yaml").write_text(DEV + "  agentfleet:fleetFile: agents-v2.yaml\n  agentfleet:trustedAccounts: ['999999999999']\n")
    code, out, err = run(*WORKFLOW_DIFF)
    assert code == 1, err
    assert "reads agents-v2.yaml" in err
    assert "now deploys `agents-v2.yaml` instead of `agents.yaml`" in out
    assert "arn:aws:iam::999999999999:role/contractor" in out and "trust widened" in out
    doc = json.loads(run("diff", "--base", "main", "agents.yaml", "--stack", "dev", "--format", "json")[1])
    assert ("(stack settings)", "fleet-file-changed", True) in kinds(doc)
    assert ("(stack settings)", "setting-changed", True) in kinds(doc)  # trustedAccounts added
    assert ("research", "trust-changed", True) in kinds(doc)
    # Without trustedAccounts the new side is refused outright (exit 1, FILE:LINE).
    (repo / "Pulumi.dev.yaml").write_text(DEV + "  agentfleet:fleetFile: agents-v2.yaml\n")
    code, out, err = run(*WORKFLOW_DIFF)
    assert code == 1 and out == ""
    assert re.search(r"agents-v2\.yaml:4: agent 'research': runtime role arn:aws:iam::999999999999:role/contractor is in account 999999999999", err), err


def test_unchanged_project_has_no_changes_on_any_stack(repo: Path) -> None:
    code, out, err = run("diff", "--base", "main", "--all-stacks", "--format", "json", "--fail-on", "escalation")
    assert code == 0, err
    doc = json.loads(out)
    assert [s["stack"] for s in doc["stacks"]] == ["dev", "prod"]
    assert all(s["summary"]["changes"] == 0 for s in doc["stacks"])


SETTING_CASES = (
    # (edit of Pulumi.prod.yaml, kind, escalation, text)
    ("  agentfleet:adminPrincipals: [arn:aws:iam::210987654321:role/auditor]\n", True, "added arn:aws:iam::210987654321:role/auditor"),
    ("  agentfleet:trustedAccounts: ['123456789012']\n", True, "added 123456789012"),
    ("  agentfleet:vaultMount: shared\n", True, "agentfleet:vaultMount"),
    ("  agentfleet:rotationIsolation: shared\n", True, "agentfleet:rotationIsolation"),
    ("  agentfleet:maxSessionSeconds: 43200\n", True, "agentfleet:maxSessionSeconds"),
    ("  agentfleet:usageBaselinePer5Min: 500\n", False, "agentfleet:usageBaselinePer5Min"),
    ("  agentfleet:alarmSubscriptions: [{protocol: https, endpoint: 'https://hooks.example/x'}]\n", True,
     "a new endpoint receives every alert"),
)


@pytest.mark.parametrize("extra,escalation,text", SETTING_CASES, ids=[c[2][:30] for c in SETTING_CASES])
def test_settings_changes_are_in_the_diff_with_escalations_flagged(repo: Path, extra: str, escalation: bool, text: str) -> None:
    (repo / "Pulumi.prod.yaml").write_text(PROD + extra)
    doc = json.loads(run("diff", "--base", "main", "--stack", "prod", "--format", "json")[1])
    [change] = doc["agents"][0]["changes"]
    assert doc["agents"][0]["agent"] == "(stack settings)"
    assert change["escalation"] is escalation and text in change["text"], change


@pytest.mark.parametrize("old,new,escalation", [
    ("agentfleet:protect: true", "agentfleet:protect: false", True),
    ("agentfleet:recoveryWindowDays: 14", "agentfleet:recoveryWindowDays: 7", True),
    ("agentfleet:recoveryWindowDays: 14", "agentfleet:recoveryWindowDays: 30", False),
])
def test_loosening_a_setting_escalates_and_tightening_does_not(repo: Path, old: str, new: str, escalation: bool) -> None:
    (repo / "Pulumi.prod.yaml").write_text(PROD.replace(old, new))
    doc = json.loads(run("diff", "--base", "main", "--stack", "prod", "--format", "json")[1])
    assert [c["escalation"] for a in doc["agents"] for c in a["changes"]] == [escalation]
    git(repo, "commit", "-q", "-am", "loosen")
    (repo / "Pulumi.prod.yaml").write_text(PROD)
    back = json.loads(run("diff", "--base", "main", "--stack", "prod", "--format", "json")[1])
    assert [c["escalation"] for a in back["agents"] for c in a["changes"]] == [not escalation]


def test_each_side_is_planned_with_its_own_settings(repo: Path) -> None:
    """prod at base trusts prod's runner; the override removed, prod would trust dev's: refused."""
    (repo / "agents.yaml").write_text(FLEET.replace("arn:aws:iam::210987654321:role/research-runner", "arn:aws:iam::123456789012:role/research-runner"))
    code, out, err = run("diff", "--base", "main", "--stack", "prod")
    assert code == 1 and "not stack 'prod''s account 210987654321" in err


def test_removal_says_what_really_happens(repo: Path) -> None:
    (repo / "agents.yaml").write_text(FLEET.replace("      - {name: serp, service: serpapi, type: api_key, stores: [aws, vault]}\n", ""))
    dev = json.loads(run("diff", "--base", "main", "--stack", "dev", "--format", "json")[1])
    [revoked] = [c for a in dev["agents"] for c in a["changes"] if c["kind"] == "credential-revoked"]
    assert "enters its 30-day recovery window" in revoked["text"]
    assert "keeps working at serpapi until you revoke it there" in revoked["text"]
    assert "the Vault value at `kv/dev/research/serp` stays" in revoked["text"]
    assert "protected" not in revoked["text"]
    prod = json.loads(run("diff", "--base", "main", "--stack", "prod", "--format", "json")[1])
    [revoked] = [c for a in prod["agents"] for c in a["changes"] if c["kind"] == "credential-revoked"]
    assert "14-day recovery window" in revoked["text"] and "refuses this deletion" in revoked["text"]


def test_rename_is_a_rename_not_remove_and_add(repo: Path) -> None:
    (repo / "agents.yaml").write_text(FLEET.replace("  - name: research\n", "  - name: scholar\n    renamed_from: research\n"))
    code, out, err = run("diff", "--base", "main", "--stack", "dev", "--format", "json", "--fail-on", "escalation")
    assert code == 0, err
    assert kinds(json.loads(out)) == [("scholar", "agent-renamed", False)]
    # Without `renamed_from` the same edit is a removal plus an addition (an escalation).
    (repo / "agents.yaml").write_text(FLEET.replace("  - name: research\n", "  - name: scholar\n"))
    found = {k for _, k, _ in kinds(json.loads(run("diff", "--base", "main", "--stack", "dev", "--format", "json")[1]))}
    assert {"agent-removed", "agent-added"} <= found
    # `renamed_from` may not name an agent that still exists.
    (repo / "agents.yaml").write_text(FLEET + FLEET.split("agents:\n", 1)[1].replace("name: research", "name: scholar\n    renamed_from: research"))
    code, _, err = run("validate", "agents.yaml")
    assert code == 1 and "agent 'research' still exists" in err


def _big_diff(n: int) -> list[diff.AccessDiff]:
    s = StackSettings(stack="dev", environment="dev", aws_region="us-east-1", aws_account_id="123456789012")
    text = generate_fleet_yaml(n)
    old = parse_fleet(text, "old.yaml")
    new_text = text.replace("ecs-tasks.amazonaws.com", "lambda.amazonaws.com").replace("strategy: manual", "strategy: generated")
    new = parse_fleet(new_text, "new.yaml")
    return [diff.diff_plans(build_plan(old, s), build_plan(new, s), old_classes=old.classifications,
                            new_classes=new.classifications, old_source="old.yaml", new_source="new.yaml")]


def test_500_agent_diff_is_split_into_comments_under_githubs_limit() -> None:
    diffs = _big_diff(500)
    assert len(diffs[0].by_agent()) >= 300
    whole = diff.report_markdown(diffs)
    assert len(whole) > 65_536  # one comment could not hold it
    assert "<details><summary>" in whole and "| agent | changes | escalations |" in whole
    parts = diff.markdown_parts(diffs)
    assert len(parts) >= 2 and all(len(p) < 65_536 for p in parts)
    assert parts[0].startswith(diff.COMMENT_MARKER) and "escalation(s)" in parts[0]
    # Every change is in some part, once.
    for _, changes in diffs[0].by_agent():
        for c in changes:
            assert sum(p.count(c.text) for p in parts[1:]) >= 1
    # A small diff stays one comment, byte-identical to the plain markdown.
    small = _big_diff(3)
    assert diff.markdown_parts(small) == [diff.diff_markdown(small[0])]


def test_split_dir_writes_the_comments(repo: Path, tmp_path: Path) -> None:
    (repo / "agents.yaml").write_text(FLEET.replace("openai}}", "openai}}\n      - {name: extra, service: x, type: token}"))
    out_dir = tmp_path / "comments"
    code, out, err = run("diff", "--base", "main", "--stack", "dev", "--split-dir", str(out_dir), "--comment-limit", "400")
    assert code == 0, err
    parts = sorted(out_dir.glob("access-diff-*.md"))
    assert len(parts) >= 2 and all(len(p.read_text()) <= 400 for p in parts)


def test_a_renamed_agent_is_aliased_and_keeps_its_old_secrets(tmp_path: Path) -> None:
    """Under the mock engine: AgentAccess carries the alias to the old name, the secrets are
    retained on delete (the replacement of a renamed secret never deletes the old one), and
    nothing else changes for agents that were not renamed."""
    from agentfleet.runner.mockrun import run_program
    from tests.conftest import ROOT

    def program(text: str) -> Any:
        f = tmp_path / f"fleet-{len(list(tmp_path.iterdir()))}.yaml"
        f.write_text(text)
        return run_program("dev", root=ROOT, config_overrides={"agentfleet:fleetFile": str(f)})

    renamed = program(FLEET.replace("  - name: research\n", "  - name: scholar\n    renamed_from: research\n"))
    access = renamed.named("scholar", "agentfleet:index:AgentAccess")
    assert access.aliases == ("name=research",)
    secrets = [r for r in renamed.resources if r.type == "aws:secretsmanager/secret:Secret"]
    assert secrets and all(r.retain_on_delete for r in secrets)
    plain = program(FLEET)
    assert plain.named("research", "agentfleet:index:AgentAccess").aliases == ()
    assert not any(r.retain_on_delete for r in plain.resources if r.type == "aws:secretsmanager/secret:Secret")
