"""agentfleet as a library: fleets built in code, several fleets in one program, an installed wheel.

The real engine rejects two resources with one URN; the SDK's mocks do not, so the recorder
(`mockrun`) does, and these tests rely on it.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from typing import Any

import pytest

import agentfleet
from agentfleet import AgentFleet, AgentFleetArgs, FleetError, StackSettings, build_fleet, load_fleet, parse_fleet
from agentfleet.runner.mockrun import MockRunError, ProgramRun, run_program
from tests.conftest import PROJECT, REPO


def team(name: str, agents: list[str]) -> dict[str, Any]:
    return {
        "version": 1,
        "defaults": {"owner": name},
        "agents": [
            {"name": a, "runtime": {"service": "ecs-tasks.amazonaws.com"},
             "credentials": [{"name": "openai", "service": "openai", "type": "api_key", "rotation": {"strategy": "openai"}},
                             {"name": "db", "service": "postgres", "type": "password", "classification": "customer-data",
                              "rotation": {"strategy": "generated"}}]}
            for a in agents
        ],
    }


def settings(prefix: str, environment: str = "dev") -> StackSettings:
    return StackSettings(stack="dev", environment=environment, aws_region="us-east-1",
                         aws_account_id="123456789012", secret_prefix=prefix)


def two_fleets(name_a: str, name_b: str, s_a: StackSettings, s_b: StackSettings) -> ProgramRun:
    def program() -> None:
        from agentfleet import providers_from_config

        providers = providers_from_config(s_a)
        AgentFleet(name_a, AgentFleetArgs(fleet=build_fleet(team("team-a", ["research", "crm"])), settings=s_a,
                                          providers=providers))
        AgentFleet(name_b, AgentFleetArgs(fleet=build_fleet(team("team-b", ["research", "billing"])), settings=s_b,
                                          providers=providers))

    return run_program("dev", root=PROJECT, program=program)


def test_two_fleets_in_one_program_have_unique_urns_and_all_their_resources() -> None:
    run = two_fleets("team-a", "team-b", settings("team-a"), settings("team-b"))
    urns = [r.urn for r in run.resources]
    assert len(urns) == len(set(urns))
    roles = {r.props["name"] for r in run.of_type("aws:iam/role:Role")}
    assert {"team-a-dev-research", "team-a-dev-crm", "team-b-dev-research", "team-b-dev-billing"} <= roles
    # Every descendant of a fleet carries the fleet's name (its scope, or its physical prefix for
    # alarms, whose logical name is their physical name), whatever extension created it.
    for fleet_name in ("team-a", "team-b"):
        fleet = run.named(fleet_name, "agentfleet:index:AgentFleet")
        kids = run.descendants(fleet.urn)
        strays = [r.name for r in kids if not (r.name.startswith(f"{fleet_name}/") or r.name.startswith(f"{fleet_name}-dev-"))]
        assert len(kids) > 40 and not strays, strays[:10]
    # The same agent name in two fleets: two roles, two secrets, nothing shared.
    secrets = sorted(r.props["name"] for r in run.of_type("aws:secretsmanager/secret:Secret") if "/research/" in r.props["name"])
    assert secrets == ["team-a/dev/research/db", "team-a/dev/research/openai", "team-b/dev/research/db", "team-b/dev/research/openai"]


def test_two_environments_in_one_program() -> None:
    run = two_fleets("dev", "staging", settings("agents", "dev"), settings("agents", "staging"))
    assert len({r.urn for r in run.resources}) == len(run.resources)
    aliases = {r.props["name"] for r in run.of_type("aws:kms/alias:Alias")}
    assert aliases == {"alias/agents-dev", "alias/agents-staging"}


def test_the_recorder_refuses_duplicate_urns_as_the_engine_does() -> None:
    with pytest.raises(MockRunError, match="URN already taken"):
        two_fleets("fleet", "fleet", settings("team-a"), settings("team-b"))


def test_two_fleets_with_the_same_physical_names_are_refused() -> None:
    with pytest.raises(Exception, match="would create the same AWS and Vault names"):
        two_fleets("team-a", "team-b", settings("agents"), settings("agents"))


def test_the_default_fleet_keeps_its_unprefixed_names() -> None:
    """Compatibility promise (CHANGELOG): the stack's fleet named `fleet` keeps 0.1's logical names."""
    run = run_program("dev", root=PROJECT)
    role = next(r for r in run.of_type("aws:iam/role:Role") if r.props["name"] == "agents-dev-research")
    assert role.name == "research/role"


def test_a_fleet_built_in_code_goes_through_the_same_validation(root: Path) -> None:
    doc = team("x", ["research"])
    doc["agents"][0]["credentials"][0]["rotation"] = {"strategy": "nope"}
    with pytest.raises(FleetError) as from_code:
        build_fleet(doc, source="my_program.py")
    with pytest.raises(FleetError) as from_text:
        parse_fleet(json.dumps(doc), "agents.json")
    code_msgs = [p.message for p in from_code.value.problems]
    assert code_msgs == [p.message for p in from_text.value.problems] and "unknown rotation strategy" in code_msgs[0]
    assert str(from_code.value.problems[0]).startswith("my_program.py:")
    # and a valid one is the same fleet the loader makes from the equivalent file
    sample = load_fleet(root / "agents.yaml")
    from ruamel.yaml import YAML

    data = YAML(typ="safe").load((root / "agents.yaml").read_text())
    assert build_fleet(data, source=sample.source) == sample
    with pytest.raises(FleetError, match="plain data"):
        build_fleet({"version": 1, "agents": [object()]})


USER_PROGRAM = '''\
"""A team's own Pulumi program: its fleet in code, its own settings, agentfleet from site-packages."""
import pulumi
import agentfleet
from agentfleet import AgentFleet, AgentFleetArgs, StackSettings, build_fleet, providers_from_config

settings = StackSettings(stack=pulumi.get_stack(), environment="dev", aws_region="eu-west-1",
                         aws_account_id="210987654321", secret_prefix="acme")
fleet = build_fleet({
    "version": 1,
    "defaults": {"owner": "acme-platform"},
    "agents": [{"name": "triage", "runtime": {"service": "lambda.amazonaws.com"},
                "credentials": [{"name": "openai", "service": "openai", "type": "api_key",
                                 "rotation": {"strategy": "openai"}}]}],
}, source="__main__.py")
acme = AgentFleet("acme", AgentFleetArgs(fleet=fleet, settings=settings, providers=providers_from_config(settings)))
pulumi.export("agents", acme.agent_outputs)
pulumi.export("installedFrom", agentfleet.__file__)
'''


def test_wheel_installs_into_a_fresh_virtualenv_and_runs_a_user_program(tmp_path: Path) -> None:
    """`pip install .` into a new virtualenv, then a user program outside the repo under mocks.

    The new virtualenv sees the pinned dependencies of the project's .venv through a .pth line
    (no download, no editable agentfleet: a .pth'd folder's own .pth files are not processed),
    and gets agentfleet itself only from the wheel built here.
    """
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["AGENTFLEET_CACHE_DIR"] = str(tmp_path / "cache")
    build = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--target", str(site), str(REPO)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    installed = sorted(p.name for p in site.iterdir() if not p.name.endswith((".dist-info", ".pth")) and p.name != "__pycache__")
    assert installed == ["agentfleet"] or installed == ["agentfleet", "bin"], installed  # nothing generic top-level
    assert (site / "agentfleet" / "components" / "fleet.py").is_file()
    assert not (site / "agentfleet" / "components").is_symlink()

    project = tmp_path / "acme-infra"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: agentfleet\nruntime: python\n")
    (project / "Pulumi.dev.yaml").write_text(textwrap.dedent("""\
        config:
          aws:region: eu-west-1
          agentfleet:awsAccountId: "210987654321"
        """))
    (project / "__main__.py").write_text(USER_PROGRAM)
    ran = subprocess.run([str(venv / "bin" / "python"), "-m", "agentfleet", "preview", "--stack", "dev", "--format", "json"],
                         cwd=project, capture_output=True, text=True, env=env, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    doc = json.loads(ran.stdout)
    assert str(site) in doc["outputs"]["installedFrom"]
    assert "triage" in doc["outputs"]["agents"]
    zips = list((tmp_path / "cache").glob("rotation-lambda-*.zip"))
    assert zips, "the Lambda archive is built in the cache directory"
    assert not list(site.rglob("*.zip"))

    # The policy pack outside the repository: generated by the installed CLI, served by its
    # __main__.py from the installed package, and asked over gRPC what it holds (as the engine does).
    pack = project / "policy"
    made = subprocess.run([str(venv / "bin" / "python"), "-m", "agentfleet", "policy-pack", str(pack)],
                          cwd=project, capture_output=True, text=True, env=env, timeout=120)
    assert made.returncode == 0, made.stderr
    assert (pack / "requirements.txt").read_text().strip().endswith(f"agentfleet=={agentfleet.__version__}")
    served = subprocess.Popen([str(venv / "bin" / "python"), "__main__.py"], cwd=pack,
                              env={**env, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert served.stdout is not None
        with selectors.DefaultSelector() as sel:  # the port line, or give up after 120 s
            sel.register(served.stdout, selectors.EVENT_READ)
            assert sel.select(timeout=120), "the pack did not start serving"
        port = int(served.stdout.readline().decode().strip())
        import grpc
        from google.protobuf import empty_pb2
        from pulumi.runtime.proto import analyzer_pb2_grpc

        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            info = analyzer_pb2_grpc.AnalyzerStub(channel).GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
        from agentfleet.policy.registry import ALL_POLICIES, PACK_NAME

        assert info.name == PACK_NAME
        assert sorted(p.name for p in info.policies) == sorted(p.name for p in ALL_POLICIES)
    finally:
        served.kill()
        served.wait(timeout=30)
