"""The offline runner itself and the `preview` verb built on it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pytest

from agentfleet.components import fleet as fleet_module
from agentfleet.core import naming
from agentfleet.cli.main import main
from agentfleet.runner.mockrun import MockRunError, ProgramRun, run_program
from tests.pulumi_harness import AGENT_ACCESS, ROLE, SECRET, sample_doc, write_fleet


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


# ---- mockrun ----


def test_custom_program_records_options_and_outputs() -> None:
    def program() -> None:
        p = aws.Provider("p", region="eu-west-1")
        role = aws.iam.Role(
            "r", name="x", assume_role_policy="{}",
            opts=pulumi.ResourceOptions(provider=p, protect=True, ignore_changes=["assume_role_policy"],
                                        aliases=[pulumi.Alias(name="old-r")]),
        )
        pulumi.export("arn", role.arn)
        pulumi.export("hidden", pulumi.Output.secret("s"))

    run = run_program("dev", program=program)
    role = run.named("r", ROLE)
    assert role.protect and role.ignore_changes == ("assumeRolePolicy",)
    assert role.props == {"name": "x", "assumeRolePolicy": "{}"}
    assert role.provider_urn == run.named("p").urn
    assert any("name=old-r" in a for a in role.aliases)
    assert role.parent == run.stack_urn
    assert run.outputs == {"arn": "arn:aws:iam::123456789012:role/x", "hidden": "s"}


def test_runs_are_isolated_and_repeatable() -> None:
    first = run_program("dev")
    small = run_program("dev", program=lambda: None)
    again = run_program("dev")
    assert small.resources == [] and small.outputs == {}
    assert sorted((r.urn, json.dumps(r.props, sort_keys=True)) for r in first.resources) == sorted(
        (r.urn, json.dumps(r.props, sort_keys=True)) for r in again.resources
    )
    assert first.outputs == again.outputs


def test_program_errors_propagate() -> None:
    def broken() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_program("dev", program=broken)
    assert run_program("dev").resources  # and the runtime recovers for the next run


def test_errors_inside_apply_propagate() -> None:
    def broken() -> None:
        role = aws.iam.Role("r", assume_role_policy="{}")
        role.arn.apply(lambda _: 1 / 0)

    with pytest.raises(ZeroDivisionError):
        run_program("dev", program=broken)


def test_mock_run_error_is_a_runtime_error() -> None:
    assert issubclass(MockRunError, RuntimeError)


# ---- preview ----


@pytest.fixture
def core(monkeypatch: pytest.MonkeyPatch) -> None:
    """This package's components only (exact counts); extensions (rotation, monitoring) off."""
    monkeypatch.setattr(fleet_module, "DEFAULT_EXTENSIONS", ())


def test_preview_prints_the_tree_and_counts(core: None) -> None:
    code, out, err = cli("preview", "--stack", "dev")
    assert code == 0, err
    for agent in ("research", "crm", "billing", "support", "release-notes"):
        assert f"agentfleet:index:AgentAccess" in out and f"  {agent}\n" in out
        assert f"{agent}/role" in out
    assert "billing/ledger-api/initial-version  [ignores secretStringWoVersion,versionStages" in out
    assert "DEFAULT PROVIDER" not in out.split("What the types are:")[0]
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("agent "))
    billing = lines[header + 1].split()
    assert billing[0] == "billing" and billing[1] == "12"  # role, policy, 2 vault, 3x(secret+policy), random, version
    assert billing[2:] == ["2", "3", "1", "0", "2", "0"]  # no extensions in this run
    assert "5 agents; 57 resources in total" in out  # + the GitHub OIDC provider release-notes trusts


def test_preview_counts_extension_resources_apart() -> None:
    """Own resources of AgentAccess and what extensions (rotation, monitoring) hang below it."""
    code, out, _ = cli("preview", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    by_parent: dict[str, list[dict[str, object]]] = {}
    for r in doc["resources"]:
        by_parent.setdefault(str(r["parent"]), []).append(r)
    for row in doc["agents"]:
        (comp,) = [r for r in doc["resources"] if r["type"] == AGENT_ACCESS and r["name"] == row["agent"]]
        own = [r for r in by_parent.get(comp["urn"], []) if r["custom"]]
        assert row["resources"] == len(own) + row["extensions"]
        assert row["iam"] == sum(r["type"] in (ROLE, "aws:iam/rolePolicy:RolePolicy") for r in own) == 2


def test_preview_marks_protection_on_prod() -> None:
    code, out, _ = cli("preview", "--stack", "prod")
    assert code == 0
    assert "research/openai/secret  [protected; recovery 30d]" in out
    assert "kms-key  [protected]" in out


def test_preview_json(tmp_path: Path) -> None:
    code, out, _ = cli("preview", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    types = {r["type"] for r in doc["resources"]}
    assert {ROLE, SECRET, AGENT_ACCESS} <= types
    assert {a["agent"] for a in doc["agents"]} == {"research", "crm", "billing", "support", "release-notes"}
    assert set(doc["outputs"]["agents"]) == {a["agent"] for a in doc["agents"]}


def test_preview_json_has_every_input_with_secret_inputs_masked() -> None:
    code, out, _ = cli("preview", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    by_name = {(r["type"], r["name"]): r for r in doc["resources"]}
    role = by_name[(ROLE, "research/role")]
    assert role["inputs"]["name"] == "agents-dev-research"
    assert json.loads(role["inputs"]["assumeRolePolicy"])["Statement"]
    masked = [r for r in doc["resources"] if r["secret_inputs"]]
    assert masked, "the sample declares generated values: some inputs are secret"
    for r in masked:
        for key in r["secret_inputs"]:
            assert r["inputs"][key] == "[secret]"
    version = by_name[("aws:secretsmanager/secretVersion:SecretVersion", "billing/ledger-api/initial-version")]
    assert "secretStringWo" in version["secret_inputs"] and "secretString" not in version["inputs"]  # write-only (issue 11)
    # No generated value reaches the output, wherever it would sit.
    from agentfleet.runner.mockrun import run_program

    run = run_program("dev")
    values = {r.outputs["result"] for r in run.of_type("random:index/randomPassword:RandomPassword")}
    assert values and not any(v in out for v in values)


def test_preview_of_another_fleet_file(tmp_path: Path) -> None:
    doc = sample_doc()
    doc["agents"] = doc["agents"][:2]
    path = write_fleet(tmp_path, doc)
    code, out, _ = cli("preview", "--fleet", str(path))
    assert code == 0
    assert "2 agents;" in out and "billing/role" not in out


def test_preview_of_an_invalid_fleet_gives_validate_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nagents:\n  - name: Bad_Name\n    runtime: {service: ecs-tasks.amazonaws.com}\n"
                   "    credentials: [{name: k, service: s, type: api_key}]\n")
    code, out, err = cli("preview", "--fleet", str(bad))
    assert code == 1 and out == ""
    assert f"{bad}:3:" in err
    assert cli("validate", str(bad))[0] == 1


def test_preview_of_a_missing_stack_file_exits_1() -> None:
    code, _, err = cli("preview", "--stack", "nope")
    assert code == 1 and "Pulumi.nope.yaml" in err


def test_preview_points_at_put_values() -> None:
    code, out, _ = cli("preview")
    assert code == 0
    assert "credential value(s) are written by a human after `pulumi up`" in out
    assert "agentfleet put-values " in out and "--stack dev" in out
    assert cli("preview", "--value-commands")[0] == 2  # the old option is gone: put-values writes values


def test_benchmark_baseline_declares_the_same_resources(core: None) -> None:
    """bench/raw_main.py must stay the components' program minus the components, or the
    benchmark's overhead figure means nothing."""
    import runpy

    from tests.conftest import REPO

    def raw_main() -> None:
        runpy.run_path(str(REPO / "bench" / "raw_main.py"), run_name="__main__")

    comp, raw = run_program("dev"), run_program("dev", program=raw_main)

    def custom(run: ProgramRun) -> dict[tuple[str, str], str]:
        return {(r.type, r.name): json.dumps(r.props, sort_keys=True) for r in run.resources if r.custom}

    assert custom(comp) == custom(raw)
    assert comp.outputs == raw.outputs
    assert not any(not r.custom for r in raw.resources)


@pytest.mark.parametrize("verb", ["preview", "check", "deployer-policy"])
def test_a_program_that_raises_is_exit_1_with_its_error(verb: str, root: Path, tmp_path: Path) -> None:
    """Every verb that runs the program reports the program's own error the same way, exit 1."""
    import shutil

    for f in ("Pulumi.yaml", "Pulumi.dev.yaml", "agents.yaml"):
        shutil.copy(root / f, tmp_path / f)
    (tmp_path / "__main__.py").write_text("raise RuntimeError('boom from the program')\n")
    code, out, err = cli(verb, "--stack", "dev", "--project", str(tmp_path))
    assert code == 1 and out == ""
    assert f"{verb} failed: the program did not run: RuntimeError: boom from the program" in err
