"""Helpers for tests that run the Pulumi program under mocks (via `agentfleet.runner.mockrun`).

    run = run_fleet(tmp_path, fleet_doc, stack="prod")    # a modified fleet, real __main__.py
    role = only(run, ROLE, "research/role")
    policy = json_prop(only(run, ROLE_POLICY, "research/policy"), "policy")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from agentfleet.runner.mockrun import ProgramRun, RegisteredResource, run_program
from tests.conftest import REPO, ROOT

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_POLICY = "aws:secretsmanager/secretPolicy:SecretPolicy"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
KMS_KEY = "aws:kms/key:Key"
KMS_ALIAS = "aws:kms/alias:Alias"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
VAULT_POLICY = "vault:index/policy:Policy"
VAULT_LOGIN = "vault:aws/authBackendRole:AuthBackendRole"
VAULT_MOUNT = "vault:index/mount:Mount"
VAULT_AUTH = "vault:index/authBackend:AuthBackend"
VAULT_SECRET = "vault:kv/secretV2:SecretV2"
AGENT_ACCESS = "agentfleet:index:AgentAccess"
AGENT_FLEET = "agentfleet:index:AgentFleet"
ENVIRONMENT = "agentfleet:index:EnvironmentBase"


def sample_doc() -> dict[str, Any]:
    """The sample `agents.yaml` as plain data, to modify and write back."""
    doc: dict[str, Any] = YAML(typ="safe").load((ROOT / "agents.yaml").read_text(encoding="utf-8"))
    return doc


def write_fleet(folder: Path, doc: dict[str, Any], name: str = "agents.yaml") -> Path:
    path = folder / name
    y = YAML(typ="safe")
    y.default_flow_style = False
    with path.open("w", encoding="utf-8") as fh:
        y.dump(doc, fh)
    return path


def run_fleet(folder: Path, doc: dict[str, Any], stack: str = "dev", **overrides: Any) -> ProgramRun:
    """Run the real program on a fleet document with the repo's `Pulumi.<stack>.yaml`."""
    path = write_fleet(folder, doc, f"agents-{len(list(folder.iterdir()))}.yaml")
    return run_program(stack, root=ROOT, config_overrides={"agentfleet:fleetFile": str(path), **overrides})


def only(run: ProgramRun, type_: str, name: str) -> RegisteredResource:
    return run.named(name, type_)


def json_prop(r: RegisteredResource, key: str) -> Any:
    """A JSON document input (IAM policies are strings), parsed."""
    return json.loads(r.props[key])


def agent_resources(run: ProgramRun, agent: str) -> list[RegisteredResource]:
    comp = run.named(agent, AGENT_ACCESS)
    return run.descendants(comp.urn)


def fingerprint(run: ProgramRun) -> dict[str, tuple[Any, ...]]:
    """URN -> everything that would show up in a `pulumi up` diff (inputs and options)."""
    return {
        r.urn: (
            json.dumps(r.props, sort_keys=True), r.parent, r.provider_urn, r.protect,
            r.ignore_changes, r.delete_before_replace, r.aliases, tuple(sorted(r.dependencies)),
        )
        for r in run.resources
    }
