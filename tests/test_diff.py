"""`diff`: every change kind on crafted fleets, escalation flags, no-op edits, git revisions."""

from __future__ import annotations

import copy
import io
import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest
from ruamel.yaml import YAML

from agentfleet.cli.main import build_parser, main
from agentfleet.review.diff import diff_plans, rotation_rank, trust_principals
from agentfleet.core.loader import parse_fleet
from agentfleet.core.plan import build_plan
from agentfleet.core.settings import StackSettings

BASE = """\
version: 1
defaults:
  owner: platform-team
  stores: [aws, vault]
classifications:
  partner-data: {max_rotation_days: 60}
agents:
  - name: alpha
    owner: team-a
    runtime:
      service: ecs-tasks.amazonaws.com
    credentials:
      - name: openai
        service: openai
        type: api_key
        classification: internal
        rotation: {strategy: openai, days: 60}
      - name: search
        service: serpapi
        type: api_key
        rotation: {strategy: manual, days: 30}
        stores: [aws]
  - name: beta
    runtime:
      role_arns: [arn:aws:iam::123456789012:role/runner-b]
    credentials:
      - name: crm
        service: salesforce
        type: oauth_token
        classification: customer-data
        rotation: {strategy: manual, days: 30}
  - name: gamma
    paused: true
    runtime:
      github_oidc: {repository: example-org/product, ref: refs/heads/main}
    credentials:
      - name: github
        service: github
        type: token
        classification: partner-data
        stores: [vault]
"""


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def edit(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def changes(before: str, after: str, s: StackSettings) -> list[tuple[str, str, bool, str | None]]:
    old, new = parse_fleet(before, "old.yaml"), parse_fleet(after, "new.yaml")
    d = diff_plans(build_plan(old, s), build_plan(new, s), old_classes=old.classifications,
                   new_classes=new.classifications, old_source="old.yaml", new_source="new.yaml")
    return [(c.agent, c.kind, c.escalation, c.credential) for c in d.changes]


NEW_AGENT = """  - name: delta
    runtime: {service: lambda.amazonaws.com}
    credentials:
      - {name: stripe, service: stripe, type: secret_key, classification: payments}
"""

WIDER_TRUST = edit("role_arns: [", "role_arns: [arn:aws:iam::123456789012:role/runner-c, ")
SLACK = "      - {name: slack, service: slack, type: oauth_token}\n"
SEARCH = """      - name: search
        service: serpapi
        type: api_key
        rotation: {strategy: manual, days: 30}
        stores: [aws]
"""

# (id, before, after, the exact changes expected: agent, kind, escalation, credential)
Case = tuple[str, str, str, list[tuple[str, str, bool, str | None]]]
CASES: list[Case] = [
    ("agent-added", BASE, BASE + NEW_AGENT,
     [("delta", "agent-added", True, None), ("delta", "credential-granted", True, "stripe")]),
    ("agent-removed", BASE, BASE[: BASE.index("  - name: gamma")],
     [("gamma", "agent-removed", False, None), ("gamma", "credential-revoked", False, "github")]),
    ("agent-paused", BASE, edit("  - name: beta\n", "  - name: beta\n    paused: true\n"),
     [("beta", "agent-paused", False, None)]),
    ("agent-unpaused", BASE, edit("    paused: true\n", ""), [("gamma", "agent-unpaused", True, None)]),
    ("owner-changed", BASE, edit("owner: team-a", "owner: team-z"), [("alpha", "owner-changed", False, None)]),
    ("owner-from-default", BASE, edit("  - name: beta\n", "  - name: beta\n    owner: team-b\n"),
     [("beta", "owner-changed", False, None)]),
    ("trust-widened", BASE, WIDER_TRUST, [("beta", "trust-changed", True, None)]),
    ("trust-narrowed", WIDER_TRUST, BASE, [("beta", "trust-changed", False, None)]),
    ("trust-service-swapped", BASE, edit("service: ecs-tasks.amazonaws.com", "service: lambda.amazonaws.com"),
     [("alpha", "trust-changed", True, None)]),
    ("trust-github-ref-to-environment", BASE, edit("ref: refs/heads/main", "environment: production"),
     [("gamma", "trust-changed", True, None)]),
    ("credential-granted", BASE, edit(SEARCH, SEARCH + SLACK), [("alpha", "credential-granted", True, "slack")]),
    ("credential-revoked", BASE, edit(SEARCH, ""), [("alpha", "credential-revoked", False, "search")]),
    ("store-added", BASE, edit("        stores: [aws]\n", ""), [("alpha", "store-added", True, "search")]),
    ("store-added-explicit", BASE, edit("stores: [aws]", "stores: [vault, aws]"), [("alpha", "store-added", True, "search")]),
    ("store-removed", BASE, edit("{strategy: openai, days: 60}\n", "{strategy: openai, days: 60}\n        stores: [vault]\n"),
     [("alpha", "store-removed", False, "openai")]),
    ("classification-lowered", BASE, edit("classification: customer-data", "classification: internal"),
     [("beta", "classification-changed", True, "crm")]),
    ("classification-raised", BASE, edit("classification: partner-data", "classification: customer-data"),
     [("gamma", "classification-changed", False, "github"), ("gamma", "rotation-tightened", False, "github")]),
    ("classification-relabelled", BASE, edit("classification: internal", "classification: confidential"),
     [("alpha", "classification-changed", False, "openai")]),
    ("rotation-days-loosened", BASE, edit("{strategy: openai, days: 60}", "{strategy: openai, days: 90}"),
     [("alpha", "rotation-loosened", True, "openai")]),
    ("rotation-days-tightened", BASE, edit("{strategy: openai, days: 60}", "{strategy: openai, days: 7}"),
     [("alpha", "rotation-tightened", False, "openai")]),
    ("rotation-default-days-loosened", BASE, edit("{strategy: openai, days: 60}", "{strategy: openai}"),
     [("alpha", "rotation-loosened", True, "openai")]),
    ("rotation-to-manual", BASE, edit("{strategy: openai, days: 60}", "{strategy: manual, days: 60}"),
     [("alpha", "rotation-loosened", True, "openai")]),
    ("rotation-to-automated", BASE, edit("{strategy: manual, days: 30}\n        stores", "{strategy: generated, days: 30}\n        stores"),
     [("alpha", "rotation-tightened", False, "search")]),
    ("rotation-automated-swap", BASE, edit("{strategy: openai, days: 60}", "{strategy: generated, days: 60}"),
     [("alpha", "rotation-changed", False, "openai")]),
    ("class-limit-loosened", BASE, edit("partner-data: {max_rotation_days: 60}", "partner-data: {max_rotation_days: 90}"),
     [("gamma", "rotation-loosened", True, "github")]),
    ("service-changed", BASE, edit("service: serpapi", "service: bing"), [("alpha", "service-changed", True, "search")]),
    ("type-changed", BASE, edit("type: oauth_token", "type: token"), [("beta", "type-changed", False, "crm")]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_change_kind_is_reported_and_classified(case: Case, dev_settings: StackSettings) -> None:
    _, before, after, expected = case
    assert changes(before, after, dev_settings) == expected


# Undoing an escalation grants nothing: the reverse change is never an escalation.
UNDO = ["agent-added", "agent-unpaused", "trust-widened", "credential-granted", "store-added",
        "classification-lowered", "rotation-days-loosened", "rotation-to-manual", "class-limit-loosened"]


@pytest.mark.parametrize("name", UNDO)
def test_undoing_an_escalation_is_not_one(name: str, dev_settings: StackSettings) -> None:
    _, before, after, _ = next(c for c in CASES if c[0] == name)
    back = changes(after, before, dev_settings)
    assert back and not any(escalation for _, _, escalation, _ in back), back


def test_combined_change_lists_each_kind_under_its_agent(dev_settings: StackSettings) -> None:
    after = edit("owner: team-a", "owner: team-z", BASE + NEW_AGENT)
    after = edit("    paused: true\n", "", after)
    after = edit("{strategy: openai, days: 60}", "{strategy: openai, days: 90}", after)
    got = changes(BASE, after, dev_settings)
    assert [(a, k) for a, k, _, _ in got] == [
        ("alpha", "owner-changed"), ("alpha", "rotation-loosened"),
        ("delta", "agent-added"), ("delta", "credential-granted"),
        ("gamma", "agent-unpaused"),
    ]


NOOP_EDITS: dict[str, Callable[[str], str]] = {
    "agents-reordered": lambda t: t[: t.index("  - name: alpha")] + t[t.index("  - name: beta"):] + t[t.index("  - name: alpha"): t.index("  - name: beta")],
    "credentials-reordered": lambda t: edit("""      - name: openai
        service: openai
        type: api_key
        classification: internal
        rotation: {strategy: openai, days: 60}
      - name: search
        service: serpapi
        type: api_key
        rotation: {strategy: manual, days: 30}
        stores: [aws]
""", """      - name: search
        stores: [aws]
        type: api_key
        service: serpapi
        rotation: {days: 30, strategy: manual}
      - name: openai
        service: openai
        type: api_key
        classification: internal
        rotation: {strategy: openai, days: 60}
""", t),
    "comments-and-whitespace": lambda t: "# a comment\n\n" + t.replace("agents:\n", "agents:   # the fleet\n\n").replace("    owner: team-a\n", "    owner: team-a      # owner\n"),
    "defaults-written-out": lambda t: edit("  - name: beta\n", "  - name: beta\n    owner: platform-team\n    paused: false\n", t).replace(
        "        classification: customer-data\n", "        classification: customer-data\n        stores: [vault, aws]\n"),
    "description-added": lambda t: edit("    owner: team-a\n", "    owner: team-a\n    description: reads the web\n", t),
    "default-store-order": lambda t: edit("  stores: [aws, vault]", "  stores: [vault, aws]", t),
}


@pytest.mark.parametrize("name", sorted(NOOP_EDITS))
def test_noop_edits_give_no_access_changes(name: str, tmp_path: Path, root: Path, dev_settings: StackSettings) -> None:
    after = NOOP_EDITS[name](BASE)
    assert after != BASE
    assert changes(BASE, after, dev_settings) == []
    old, new = write(tmp_path, root, BASE, after)
    code, out, err = run("diff", str(old), str(new))
    assert code == 0, err
    assert "No access changes." in out.splitlines()
    assert json.loads(run("diff", str(old), str(new), "--format", "json")[1])["summary"] == {
        "agents": 0, "changes": 0, "escalations": 0,
    }


def write(tmp_path: Path, root: Path, before: str, after: str) -> tuple[Path, Path]:
    (tmp_path / "Pulumi.dev.yaml").write_text((root / "Pulumi.dev.yaml").read_text())
    old, new = tmp_path / "old.yaml", tmp_path / "agents.yaml"
    old.write_text(before)
    new.write_text(after)
    return old, new


def test_markdown_flags_escalations_and_is_byte_stable(tmp_path: Path, root: Path) -> None:
    after = edit("    paused: true\n", "", BASE + NEW_AGENT)
    after = edit("  - name: beta\n", "  - name: beta\n    paused: true\n", after)
    old, new = write(tmp_path, root, BASE, after)
    code, md, err = run("diff", str(old), str(new))
    assert code == 0, err
    assert run("diff", str(old), str(new))[1] == md
    lines = md.splitlines()
    assert lines[0] == "<!-- agentfleet:access-diff -->"
    assert "**4 access change(s) in 3 agent(s), 3 escalation(s)**" in lines[3]
    sections: dict[str, list[str]] = {}
    current = ""
    for line in lines:
        if line.startswith("#### "):
            current = line.split("`")[1]
            sections[current] = []
        elif line.startswith("- ") and current:
            sections[current].append(line)
    doc = json.loads(run("diff", str(old), str(new), "--format", "json")[1])
    assert sorted(sections) == [a["agent"] for a in doc["agents"]] == ["beta", "delta", "gamma"]
    for agent in doc["agents"]:
        items = sections[agent["agent"]]
        assert len(items) == len(agent["changes"])
        for item, change in zip(items, agent["changes"]):
            assert item.startswith("- **ESCALATION** ") == change["escalation"]
            assert item.endswith(change["text"])
    assert sections["beta"] == ["- agent paused: every access is denied until it is unpaused"]
    # The grant names the exact places from the plan.
    plan = json.loads(run("plan", str(new), "--format", "json")[1])
    delta = next(a for a in plan["agents"] if a["name"] == "delta")
    assert f"`{delta['credentials'][0]['secret_name']}`" in sections["delta"][1]


def test_fail_on_escalation(tmp_path: Path, root: Path) -> None:
    old, new = write(tmp_path, root, BASE, edit("  - name: beta\n", "  - name: beta\n    paused: true\n"))
    assert run("diff", str(old), str(new), "--fail-on", "escalation")[0] == 0  # a pause is no escalation
    new.write_text(edit("    paused: true\n", ""))
    code, out, err = run("diff", str(old), str(new), "--fail-on", "escalation")
    assert code == 1 and "ESCALATION" in out and "1 escalation(s)" in err
    assert run("diff", str(old), str(new))[0] == 0  # without the flag, the diff is only a report


def test_trust_principals_reads_every_runtime_kind(dev_settings: StackSettings) -> None:
    fleet = parse_fleet(BASE, "f.yaml")
    plan = {a["name"]: a for a in build_plan(fleet, dev_settings)["agents"]}
    assert trust_principals(plan["alpha"]["trust_policy"]) == {
        "AWS service ecs-tasks.amazonaws.com when aws:SourceAccount StringEquals 123456789012"}
    assert trust_principals(plan["beta"]["trust_policy"]) == {"IAM role arn:aws:iam::123456789012:role/runner-b"}
    (gh,) = trust_principals(plan["gamma"]["trust_policy"])
    assert gh.startswith("GitHub Actions repo:example-org/product:ref:refs/heads/main")
    assert trust_principals({"Statement": [{"Effect": "Deny", "Principal": {"AWS": "*"}}]}) == frozenset()
    assert trust_principals({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}}]}) == {"anyone (AWS *)"}


def test_unexplained_plan_changes_are_reported_as_escalations(dev_settings: StackSettings) -> None:
    """A plan field the diff does not know, or a policy that moved on its own, is never hidden."""
    fleet = parse_fleet(BASE, "f.yaml")
    old = build_plan(fleet, dev_settings)

    def diff_with(mutate: Callable[[dict[str, Any]], None]) -> list[tuple[str, str, bool, str | None]]:
        new = copy.deepcopy(old)
        mutate(new)
        d = diff_plans(old, new, old_classes=fleet.classifications, new_classes=fleet.classifications,
                       old_source="a", new_source="b")
        return [(c.agent, c.kind, c.escalation, c.credential) for c in d.changes]

    assert diff_with(lambda p: None) == []
    assert diff_with(lambda p: p["agents"][0].update(extra_grants=["s3:*"])) == [("alpha", "plan-changed", True, None)]
    assert diff_with(lambda p: p["agents"][0]["credentials"][0].update(reader="x")) == [("alpha", "plan-changed", True, "openai")]
    assert diff_with(lambda p: p["agents"][1]["iam_policy"]["Statement"].append({"Effect": "Allow"})) == [
        ("beta", "plan-changed", True, None)]


def test_rotation_order_manual_is_loosest() -> None:
    assert rotation_rank("manual") < rotation_rank("generated") == rotation_rank("openai")


def test_invalid_fleet_on_either_side_gives_validate_errors(tmp_path: Path, root: Path) -> None:
    bad_text = "version: 1\nagents:\n  - name: Bad\n    credentials: []\n"
    old, new = write(tmp_path, root, BASE, bad_text)
    _, _, validate_err = run("validate", str(new))
    code, out, err = run("diff", str(old), str(new))
    assert (code, out) == (1, "") and err == validate_err
    old.write_text(bad_text)
    new.write_text(BASE)
    code, out, err = run("diff", str(old), str(new))
    assert (code, out) == (1, "") and err == run("validate", str(old))[2]
    new.write_text(bad_text)
    code, _, err = run("diff", str(old), str(new))
    assert code == 1 and f"{old}:3:" in err and f"{new}:3:" in err  # both sides reported


def test_usage_errors_exit_2(tmp_path: Path, root: Path) -> None:
    old, new = write(tmp_path, root, BASE, BASE)
    assert run("diff", str(new))[0] == 2
    assert run("diff", str(old), str(new), "--base", "HEAD")[0] == 2
    assert run("diff", str(old), str(tmp_path / "missing.yaml"))[0] == 2


# ---- git revisions ----


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=test", "-c", "user.email=test@example.invalid",
         "-c", "commit.gpgsign=false", *args],
        check=True, capture_output=True, text=True,
    ).stdout


@pytest.fixture
def repo(tmp_path: Path, root: Path) -> Path:
    r = tmp_path / "repo"
    (r / "infra").mkdir(parents=True)
    git(r, "init", "-q", "-b", "main")
    (r / "infra" / "Pulumi.dev.yaml").write_text((root / "Pulumi.dev.yaml").read_text())
    (r / "infra" / "agents.yaml").write_text(BASE)
    git(r, "add", ".")
    git(r, "commit", "-q", "-m", "v1")
    (r / "infra" / "agents.yaml").write_text(edit("    paused: true\n", ""))
    git(r, "commit", "-q", "-am", "v2: unpause gamma")
    return r


def test_base_revision_mode(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo / "infra")
    code, out, err = run("diff", "--base", "HEAD~1", "agents.yaml", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["old"] == "HEAD~1:infra/agents.yaml" and doc["new"] == "agents.yaml"
    assert [(a["agent"], [c["kind"] for c in a["changes"]]) for a in doc["agents"]] == [("gamma", ["agent-unpaused"])]
    # The working tree differs from HEAD: --base HEAD shows only the uncommitted change.
    (repo / "infra" / "agents.yaml").write_text(edit("    paused: true\n", "", edit("owner: team-a", "owner: team-z")))
    doc = json.loads(run("diff", "--base", "HEAD", "agents.yaml", "--format", "json")[1])
    assert [(a["agent"], [c["kind"] for c in a["changes"]]) for a in doc["agents"]] == [("alpha", ["owner-changed"])]
    assert run("diff", "--base", "HEAD~1", "agents.yaml", "--fail-on", "escalation")[0] == 1


def test_rev_path_form_on_both_sides(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    # Stack settings come from the project (`--project`, else the nearest Pulumi.yaml), not from
    # next to either fleet file.
    project = ("--project", str(repo / "infra"))
    code, out, err = run("diff", "HEAD~1:infra/agents.yaml", "HEAD:infra/agents.yaml", "--format", "json", *project)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["new"] == "HEAD:infra/agents.yaml"
    assert doc["summary"] == {"agents": 1, "changes": 1, "escalations": 1}
    same = json.loads(run("diff", "HEAD:infra/agents.yaml", str(repo / "infra" / "agents.yaml"), "--format", "json", *project)[1])
    assert same["summary"]["changes"] == 0
    # An absolute path after REV: works from anywhere.
    monkeypatch.chdir(repo.parent)
    absolute = run("diff", f"HEAD~1:{repo / 'infra' / 'agents.yaml'}", f"HEAD:{repo / 'infra' / 'agents.yaml'}", "--format", "json", *project)
    assert json.loads(absolute[1])["agents"] == doc["agents"]


def test_fleet_absent_at_base_means_every_agent_is_new(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo / "infra")
    (repo / "infra" / "new-fleet.yaml").write_text(BASE)
    code, out, err = run("diff", "--base", "HEAD", "new-fleet.yaml", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["old"].endswith("(absent)")
    assert {a["agent"] for a in doc["agents"]} == {"alpha", "beta", "gamma"}
    assert all(c["escalation"] for a in doc["agents"] for c in a["changes"])


def test_invalid_fleet_at_base_revision(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo / "infra")
    (repo / "infra" / "agents.yaml").write_text("version: 1\nagents:\n  - name: Bad\n    credentials: []\n")
    git(repo, "commit", "-q", "-am", "v3: broken")
    (repo / "infra" / "agents.yaml").write_text(BASE)
    code, out, err = run("diff", "--base", "HEAD", "agents.yaml")
    assert (code, out) == (1, "")
    assert err.startswith("HEAD:infra/agents.yaml:3:")
    assert "HEAD:infra/agents.yaml: " in err and "nothing was planned" in err


def test_unknown_revision_and_option_like_revision_exit_2(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo / "infra")
    code, _, err = run("diff", "--base", "no-such-branch", "agents.yaml")
    assert code == 2 and "unknown git revision" in err
    code, _, err = run("diff", "--", "--output=/tmp/x:agents.yaml", "agents.yaml")
    assert code == 2 and "not a git revision" in err


# ---- the PR workflow posts this diff: its commands must be ones the CLI accepts ----

WORKFLOW = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "pull-request.yml"


def workflow_commands() -> dict[str, list[list[str]]]:
    """`agentfleet ...` invocations per job, with the workflow's variables filled in."""
    doc = YAML(typ="safe").load(WORKFLOW.read_text())
    values = {**doc["env"], "BASE_REF": "main", "SCAN_PATHS": "agents"}
    out: dict[str, list[list[str]]] = {}
    for job, spec in doc["jobs"].items():
        for step in spec["steps"]:
            script = str(step.get("run", "")).replace("\\\n", " ")
            for line in script.splitlines():
                if ".venv/bin/agentfleet " not in line:
                    continue
                words = shlex.split(line.split(".venv/bin/agentfleet ", 1)[1])
                words = [re.sub(r"\$(\w+)", lambda m: str(values[m.group(1)]), w) for w in words]
                if ">" in words:
                    words = words[: words.index(">")]
                out.setdefault(job, []).append(words)
    return out


def test_workflow_runs_tests_check_diff_and_gated_preview() -> None:
    doc = YAML(typ="safe").load(WORKFLOW.read_text())
    jobs = doc["jobs"]
    assert set(jobs) == {"test", "access-diff", "preview"}
    assert any(s.get("run", "").startswith("bash scripts/test.sh") for s in jobs["test"]["steps"])
    commands = workflow_commands()
    assert [c[0] for c in commands["test"]] == ["check", "scan"]
    diffs = commands["access-diff"]
    assert diffs[0][:3] == ["diff", "--base", "origin/main"] and "markdown" in diffs[0]
    assert "--fail-on" in diffs[1]
    parser = build_parser()
    for job in commands.values():
        for argv in job:
            parser.parse_args(argv)  # raises SystemExit on an option the CLI does not have
    # Only the diff job may write to the PR; the preview runs only with a configured cloud role.
    assert doc["permissions"] == {"contents": "read"}
    assert jobs["access-diff"]["permissions"]["pull-requests"] == "write"
    assert "pull-requests" not in jobs["preview"]["permissions"]
    assert "vars.AWS_ROLE_ARN" in jobs["preview"]["if"]
    preview = " ".join(s.get("run", "") for s in jobs["preview"]["steps"])
    assert "pulumi preview" in preview and "--policy-pack policy" in preview
    # The comment step finds its previous comment by the marker the markdown starts with.
    assert "agentfleet:access-diff" in WORKFLOW.read_text()


def test_workflow_diff_command_runs_here(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The exact diff invocation of the workflow, on a repository with a base branch."""
    git(repo, "branch", "-q", "base", "HEAD~1")
    monkeypatch.chdir(repo / "infra")
    argv = [w.replace("origin/main", "base") for w in workflow_commands()["access-diff"][0]]
    code, out, err = run(*argv)
    assert code == 0, err
    assert out.startswith("<!-- agentfleet:access-diff -->\n") and "agent unpaused" in out
    code, _, _ = run(*[w.replace("origin/main", "base") for w in workflow_commands()["access-diff"][1]])
    assert code == 1
