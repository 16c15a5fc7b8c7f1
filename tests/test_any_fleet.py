"""The whole program flow on every fleet we have, asserting only what holds for ANY valid fleet.

Fleets: the fixture sample (tests/project), a second fixture fleet (tests/fleets/teams/), the
repository's own agents.yaml with the repository's stacks (whatever a team puts there), and any
fleet named in `AGENTFLEET_TEST_FLEETS` (paths separated by `:`; each is run against the Pulumi
project it sits in, or `AGENTFLEET_TEST_PROJECT`). So a team runs the suite on its own fleet with

    AGENTFLEET_TEST_FLEETS=path/to/agents.yaml bash scripts/test.sh

Per fleet: validate -> plan -> IAM isolation evaluated on the planned documents (every agent
against every secret) -> preview (the real program under mocks) -> check (the policy pack) -> audit.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from agentfleet.cli.main import main
from agentfleet.core.project import find_project_dir
from agentfleet.runner.mockrun import ProgramRun, run_program
from tests.conftest import PROJECT, REPO
from tests.iam_eval import Request, evaluate

GET = "secretsmanager:GetSecretValue"
STACK = os.environ.get("AGENTFLEET_TEST_STACK", "dev")


@dataclass(frozen=True)
class Case:
    id: str
    fleet: Path
    project: Path


def cases() -> list[Case]:
    out = [
        Case("sample", PROJECT / "agents.yaml", PROJECT),
        Case("platform-team", REPO / "tests" / "fleets" / "teams" / "platform-team.yaml", PROJECT),
        Case("repository", REPO / "agents.yaml", REPO),
    ]
    for i, raw in enumerate(p for p in os.environ.get("AGENTFLEET_TEST_FLEETS", "").split(os.pathsep) if p):
        path = Path(raw).resolve()
        project = Path(os.environ.get("AGENTFLEET_TEST_PROJECT") or find_project_dir(path.parent)).resolve()
        out.append(Case(f"env-{i}-{path.stem}", path, project))
    return out


CASES = cases()


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), out, err), out.getvalue(), err.getvalue()


def raw(case: Case) -> dict[str, Any]:
    doc: dict[str, Any] = YAML(typ="safe").load(case.fleet.read_text(encoding="utf-8"))
    return doc


@lru_cache(maxsize=None)
def plan_of(case: Case) -> dict[str, Any]:
    code, out, err = cli("plan", str(case.fleet), "--stack", STACK, "--project", str(case.project), "--format", "json")
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


@lru_cache(maxsize=None)
def preview_of(case: Case) -> ProgramRun:
    return run_program(STACK, root=case.project, config_overrides={"agentfleet:fleetFile": str(case.fleet)})


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    c: Case = request.param
    return c


def test_validate_counts_what_the_file_declares(case: Case) -> None:
    doc = raw(case)
    n_agents, n_creds = len(doc["agents"]), sum(len(a["credentials"]) for a in doc["agents"])
    code, out, err = cli("validate", str(case.fleet))
    assert code == 0, err
    assert f"ok ({n_agents} agents, {n_creds} credentials)" in out


def test_plan_has_every_agent_and_unique_names(case: Case) -> None:
    plan, doc = plan_of(case), raw(case)
    assert sorted(a["name"] for a in plan["agents"]) == sorted(a["name"] for a in doc["agents"])
    roles = [a["iam_role_name"] for a in plan["agents"]]
    secrets = [c["secret_name"] for a in plan["agents"] for c in a["credentials"] if c["secret_name"]]
    vault = [c["vault_location"] for a in plan["agents"] for c in a["credentials"] if c["vault_location"]]
    assert len(set(roles)) == len(roles) and len(set(secrets)) == len(secrets) and len(set(vault)) == len(vault)
    for a in plan["agents"]:
        for c in a["credentials"]:
            assert (c["secret_name"] is not None) == ("aws" in c["stores"])
            assert (c["vault_location"] is not None) == ("vault" in c["stores"])


def _arn(plan: dict[str, Any], secret_name: str) -> str:
    return f"arn:aws:secretsmanager:{plan['aws_region']}:{plan['aws_account_id']}:secret:{secret_name}-AbC123"


def test_each_agent_reads_exactly_its_own_secrets(case: Case) -> None:
    """Every agent's identity policy against every AWS secret of the fleet (N x M)."""
    plan = plan_of(case)
    secrets = [(a["name"], c["secret_name"]) for a in plan["agents"] for c in a["credentials"] if c["secret_name"]]
    checked = 0
    for agent in plan["agents"]:
        for owner, name in secrets:
            decision = evaluate(agent["iam_policy"], Request(GET, _arn(plan, name)))
            expected = "Allow" if owner == agent["name"] and not agent["paused"] else None
            if expected:
                assert decision == "Allow", (agent["name"], name)
            else:
                assert decision != "Allow", (agent["name"], name)
            checked += 1
    assert checked == len(plan["agents"]) * len(secrets)


def test_preview_declares_every_agent_and_secret(case: Case) -> None:
    run, plan = preview_of(case), plan_of(case)
    accesses = run.of_type("agentfleet:index:AgentAccess")
    assert sorted(r.name for r in accesses) == sorted(a["name"] for a in plan["agents"])
    declared = {r.props["name"] for r in run.of_type("aws:secretsmanager/secret:Secret")}
    planned = {c["secret_name"] for a in plan["agents"] for c in a["credentials"] if c["secret_name"]}
    assert planned <= declared, sorted(planned - declared)
    roles = {r.props["name"] for r in run.of_type("aws:iam/role:Role")}
    assert {a["iam_role_name"] for a in plan["agents"]} <= roles


def test_the_policy_pack_passes(case: Case) -> None:
    code, out, err = cli("check", "--stack", STACK, "--fleet", str(case.fleet), "--project", str(case.project))
    assert code == 0, out + err
    assert "0 mandatory" in out


def test_audit_lists_every_credential_once(case: Case) -> None:
    doc = raw(case)
    code, out, err = cli("audit", str(case.fleet), "--stack", STACK, "--project", str(case.project), "--format", "json")
    assert code == 0, err
    rows = json.loads(out)["credentials"]
    expected = sorted((a["name"], c["name"]) for a in doc["agents"] for c in a["credentials"])
    assert sorted((r["agent"], r["credential"]) for r in rows) == expected
