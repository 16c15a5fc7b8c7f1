"""Sharding: an environment stack plus agent shards declare exactly what the single stack does.

Under mocks: the environment stack declares the shared resources once, the two shards split
the per-agent resources between them (same logical names, same inputs, computed from the
environment stack's outputs through a StackReference), nothing twice and nothing missing.
Validation refuses agents in no shard or in two.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import pytest

from agentfleet.cli.main import main
from agentfleet.core import sharding
from agentfleet.core.loader import load_fleet
from agentfleet.core.settings import SettingsError, load_stack_settings
from agentfleet.runner.mockrun import ProgramRun, RegisteredResource, run_program
from tests.conftest import PROJECT

AGENT_ACCESS = "agentfleet:index:AgentAccess"
NOT_DECLARED = ("agentfleet:index:AgentFleet", "agentfleet:index:EnvironmentReference", "pulumi:pulumi:StackReference")

SHARD_A = "  agentfleet:shard: agents\n  agentfleet:environmentStack: env\n  agentfleet:shardOwners: [team-research, team-finance]\n"
SHARD_B = "  agentfleet:shard: agents\n  agentfleet:environmentStack: env\n  agentfleet:shardAgents: [crm, s*, release-*]\n"


def make_project(tmp: Path, shards: dict[str, str]) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    for f in ("Pulumi.yaml", "__main__.py", "agents.yaml"):
        shutil.copy(PROJECT / f, tmp / f)
    (tmp / "__main__.py").write_text((PROJECT / "__main__.py").read_text().replace(
        "Path(__file__).resolve().parents[2]", repr(str(PROJECT.parents[1])).join(("Path(", ")"))))
    dev = (PROJECT / "Pulumi.dev.yaml").read_text()
    (tmp / "Pulumi.dev.yaml").write_text(dev)
    for stack, extra in shards.items():
        (tmp / f"Pulumi.{stack}.yaml").write_text(dev + extra)
    return tmp


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ProgramRun]:
    root = make_project(tmp_path_factory.mktemp("sharded"), {
        "env": "  agentfleet:shard: environment\n", "shard-a": SHARD_A, "shard-b": SHARD_B})
    single = run_program("dev", root=root)
    env = run_program("env", root=root)
    refs = {"env": env.outputs}
    return {"single": single, "env": env,
            "shard-a": run_program("shard-a", root=root, stack_references=refs),
            "shard-b": run_program("shard-b", root=root, stack_references=refs)}


def per_agent(run: ProgramRun) -> set[str]:
    comps = [r for r in run.of_type(AGENT_ACCESS)]
    return {c.urn for c in comps} | {d.urn for c in comps for d in run.descendants(c.urn)}


def declared(run: ProgramRun, agent_side: bool) -> dict[tuple[str, str], dict[str, Any]]:
    """(type, logical name) -> inputs, for the per-agent side or the shared side of a run."""
    mine = per_agent(run)
    return {(r.type, r.name): r.props for r in run.resources
            if (r.urn in mine) == agent_side and r.type not in NOT_DECLARED and not r.type.startswith("pulumi:providers:")}


def test_environment_plus_shards_declare_exactly_the_single_stack(runs: dict[str, ProgramRun]) -> None:
    single, env, a, b = runs["single"], runs["env"], runs["shard-a"], runs["shard-b"]
    assert declared(env, agent_side=True) == {}  # no agent in the environment stack
    assert declared(a, agent_side=False) == {} and declared(b, agent_side=False) == {}  # nothing shared in shards
    # Shared resources: once, in the environment stack, with the single stack's inputs.
    assert declared(env, agent_side=False) == declared(single, agent_side=False)
    # Per-agent resources: split between the shards, none twice, none missing, same inputs.
    in_a, in_b = declared(a, agent_side=True), declared(b, agent_side=True)
    assert in_a and in_b and not set(in_a) & set(in_b)

    def same_stack(d: dict[tuple[str, str], dict[str, Any]], stack: str) -> dict[tuple[str, str], dict[str, Any]]:
        # A reminder's runbook names the stack its `put-values` runs on: the shard's own, by design.
        import json as _json
        return {k: _json.loads(_json.dumps(v).replace(f"--stack {stack}", "--stack dev")) for k, v in d.items()}

    merged = {**same_stack(in_a, "shard-a"), **same_stack(in_b, "shard-b")}
    assert merged == declared(single, agent_side=True)
    assert {r.name for r in a.of_type(AGENT_ACCESS)} == {"research", "billing"}
    assert {r.name for r in b.of_type(AGENT_ACCESS)} == {"crm", "support", "release-notes"}
    urns = [r.urn for run in (env, a, b) for r in run.resources]
    assert len(urns) == len(set(urns))


def test_shards_read_the_environment_through_one_stack_reference(runs: dict[str, ProgramRun]) -> None:
    env, a = runs["env"], runs["shard-a"]
    [ref] = a.of_type("pulumi:pulumi:StackReference")
    assert ref.props["name"] == "env"
    for output in sharding.ENVIRONMENT_OUTPUTS.values():
        assert output in env.outputs, f"the environment stack does not export {output}"
    assert not runs["single"].of_type("pulumi:pulumi:StackReference")
    # The agent role's policy names the environment stack's key (from the reference, not a new key).
    role_policy = a.named("research/policy", "aws:iam/rolePolicy:RolePolicy")
    assert env.outputs["kmsKeyArn"] in role_policy.props["policy"]
    assert not a.of_type("aws:kms/key:Key")


def _validate(root: Path, stack: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["validate", str(root / "agents.yaml"), "--stack", stack, "--project", str(root)], out=out, err=err)
    return code, err.getvalue()


def test_validation_refuses_orphans_and_overlaps(tmp_path: Path) -> None:
    ok = make_project(tmp_path / "ok", {"env": "  agentfleet:shard: environment\n", "shard-a": SHARD_A, "shard-b": SHARD_B})
    (ok / "Pulumi.dev.yaml").unlink()  # a sharded environment has no whole-fleet stack beside it
    assert _validate(ok, "shard-a") == (0, "")
    orphan = make_project(tmp_path / "orphan", {"env": "  agentfleet:shard: environment\n", "shard-a": SHARD_A})
    (orphan / "Pulumi.dev.yaml").unlink()
    code, err = _validate(orphan, "env")
    assert code == 1 and "agent 'crm' is in no shard" in err and "'research'" not in err
    overlap = make_project(tmp_path / "overlap", {
        "env": "  agentfleet:shard: environment\n", "shard-a": SHARD_A,
        "shard-b": SHARD_B.replace("[crm, s*, release-*]", "[crm, s*, release-*, research]")})
    (overlap / "Pulumi.dev.yaml").unlink()
    code, err = _validate(overlap, "shard-b")
    assert code == 1 and "agent 'research' is in 2 shards" in err and "shard-a, shard-b" in err
    beside = make_project(tmp_path / "beside", {"env": "  agentfleet:shard: environment\n", "shard-a": SHARD_A,
                                                 "shard-b": SHARD_B})
    code, err = _validate(beside, "env")  # Pulumi.dev.yaml declares the whole fleet in the same environment
    assert code == 1 and "declare the whole fleet beside shards" in err


def test_shard_settings_are_consistent(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"bad": "  agentfleet:shard: agents\n  agentfleet:shardOwners: [x]\n",
                                   "shared": SHARD_A + "  agentfleet:rotationIsolation: shared\n"})
    with pytest.raises(SettingsError, match="environmentStack"):
        load_stack_settings(root / "Pulumi.bad.yaml", "bad")
    with pytest.raises(SettingsError, match="per-agent only"):
        load_stack_settings(root / "Pulumi.shared.yaml", "shared")


def test_plan_of_a_shard_holds_its_agents_and_the_environment_stack_all(tmp_path: Path) -> None:
    from agentfleet.core.plan import build_plan

    root = make_project(tmp_path, {"env": "  agentfleet:shard: environment\n", "shard-a": SHARD_A})
    fleet = load_fleet(root / "agents.yaml")
    a = build_plan(fleet, load_stack_settings(root / "Pulumi.shard-a.yaml", "shard-a"))
    assert [x["name"] for x in a["agents"]] == ["billing", "research"]
    env = build_plan(fleet, load_stack_settings(root / "Pulumi.env.yaml", "env"))
    assert len(env["agents"]) == len(fleet.agents)
