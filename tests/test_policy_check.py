"""`agentfleet check` end to end: the real program under mocks, the real policy pack.

Broken variants are introduced outside agents.yaml, the way a careless change would: a raw
resource appended to the program (`run_program(program=...)`, and once through the CLI with an
edited copy of `__main__.py`). Each must make `check` fail naming the policy, and add no other
mandatory finding than the ones it is about.
"""

from __future__ import annotations

import io
import json
import runpy
import shutil
from pathlib import Path
from typing import Any, Callable

import pulumi_aws as aws
import pytest

from agentfleet.runner import checkrun
from agentfleet.core import iam_documents as iam
from agentfleet.runner import mockrun
from agentfleet.core import naming
from agentfleet.cli.main import main
from agentfleet.core.model import Fleet
from agentfleet.core.settings import StackSettings
from agentfleet.policy.layout import policy_config
from agentfleet.policy.registry import ALL_POLICIES


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def with_extra(root: Path, extra: Callable[[], None]) -> Callable[[], None]:
    """The normal program, then a raw resource someone added to it."""
    def program() -> None:
        runpy.run_path(str(root / "__main__.py"), run_name="__main__")
        extra()
    return program


@pytest.fixture(scope="module")
def config(sample_fleet: Fleet, dev_settings: StackSettings) -> dict[str, Any]:
    return policy_config(dev_settings, sample_fleet.classifications)


def check(root: Path, config: dict[str, Any], extra: Callable[[], None] | None = None) -> checkrun.CheckResult:
    run = mockrun.run_program("dev", root=root, program=with_extra(root, extra) if extra else None)
    return checkrun.check_program(run, config)


def keyed(result: checkrun.CheckResult) -> set[tuple[str, str]]:
    return {(v.policy, v.message) for v in result.mandatory}


@pytest.fixture(scope="module")
def baseline(root: Path, config: dict[str, Any]) -> checkrun.CheckResult:
    return check(root, config)


def new_mandatory(result: checkrun.CheckResult, baseline: checkrun.CheckResult) -> list[checkrun.Violation]:
    old = keyed(baseline)
    return [v for v in result.mandatory if (v.policy, v.message) not in old]


def test_sample_fleet_passes_check(root: Path) -> None:
    code, out, err = run_cli("check", "--stack", "dev", "--root", str(root))
    assert code == 0, out + err
    assert "0 mandatory" in out and f"{len(ALL_POLICIES)} policies" in out


def test_json_format_is_stable_and_complete(root: Path) -> None:
    code, first, _ = run_cli("check", "--stack", "dev", "--format", "json", "--root", str(root))
    _, second, _ = run_cli("check", "--stack", "dev", "--format", "json", "--root", str(root))
    assert first == second
    doc = json.loads(first)
    assert doc["stack"] == "dev" and doc["passed"] is (code == 0) and len(doc["policies"]) == len(ALL_POLICIES)
    assert doc["resources"] > 40


def test_wildcard_grant_fails(root: Path, config: dict[str, Any], baseline: checkrun.CheckResult, dev_settings: StackSettings) -> None:
    def extra() -> None:
        aws.iam.RolePolicy("debug-read-all", role=naming.role_name(dev_settings, "research"),
                           policy=iam.Document((iam.secret_read("DebugReadAll", ["*"]),)).to_json())

    result = check(root, config, extra)
    assert result.exit_code == 1
    added = new_mandatory(result, baseline)
    assert {v.policy for v in added} == {"no-wildcard-secret-read", "one-reader-per-secret"}
    wild = [v for v in added if v.policy == "no-wildcard-secret-read"]
    assert len(wild) == 1 and wild[0].resource == 'aws:iam/rolePolicy:RolePolicy "debug-read-all"'
    assert wild[0].agent == "research"  # grouped under the agent whose role it names
    # Every secret of every other agent now has a second reader.
    assert sum(v.policy == "one-reader-per-secret" for v in added) == 9 - 2


def test_second_reader_fails(root: Path, config: dict[str, Any], baseline: checkrun.CheckResult, dev_settings: StackSettings) -> None:
    def extra() -> None:
        aws.iam.RolePolicy("crm-peeks", role=naming.role_name(dev_settings, "crm"),
                           policy=iam.Document((iam.secret_read("Peek", [naming.secret_arn_pattern(dev_settings, "billing", "stripe")]),)).to_json())

    result = check(root, config, extra)
    assert result.exit_code == 1
    [v] = new_mandatory(result, baseline)
    assert v.policy == "one-reader-per-secret" and v.agent == "billing"
    assert "agents-dev-crm" in v.message and 'secret:Secret "billing/stripe/secret"' in v.message


def test_missing_rotation_fails(root: Path, config: dict[str, Any], baseline: checkrun.CheckResult, dev_settings: StackSettings) -> None:
    def extra() -> None:
        # A hand-added secret with everything right except a rotation.
        name = naming.secret_name(dev_settings, "research", "extra")
        aws.secretsmanager.Secret("research-extra", name=name, kms_key_id="alias/agents-dev",
                                  tags=naming.tags(dev_settings, agent="research", owner="team-research", classification="internal"))

    result = check(root, config, extra)
    assert result.exit_code == 1
    added = new_mandatory(result, baseline)
    rot = [v for v in added if v.policy == "secret-rotation-within-class"]
    assert len(rot) == 1 and 'Secret "research-extra"' in rot[0].message and "no rotation" in rot[0].message
    assert rot[0].agent == "research"


def test_literal_secret_value_fails(root: Path, config: dict[str, Any], baseline: checkrun.CheckResult, dev_settings: StackSettings) -> None:
    literal = "not-a-real-key-but-a-literal"

    def extra() -> None:
        arn = naming.secret_arn_pattern(dev_settings, "research", "openai").replace("??????", "Ab12Cd")
        aws.secretsmanager.SecretVersion("research-openai-hardcoded", secret_id=arn, secret_string=literal)

    result = check(root, config, extra)
    assert result.exit_code == 1
    [v] = new_mandatory(result, baseline)
    assert v.policy == "no-literal-secret-values" and "secretString" in v.message and literal not in v.message


def test_trust_to_everyone_fails(root: Path, config: dict[str, Any], baseline: checkrun.CheckResult) -> None:
    def extra() -> None:
        aws.iam.Role("open-door", name="open-door", assume_role_policy=iam.Document((iam.assume_by_roles("Anyone", ["*"]),)).to_json(),
                     tags={"agent": "support", "owner": "x", "environment": "dev", "managed-by": "agentfleet"})

    result = check(root, config, extra)
    assert result.exit_code == 1
    [v] = new_mandatory(result, baseline)
    assert v.policy == "trust-policy-scoped" and v.agent == "support" and "every AWS principal" in v.message


def test_raw_resource_in_main_is_caught_through_the_cli(root: Path, repo: Path, tmp_path: Path) -> None:
    """The issue's example: a raw aws.iam.RolePolicy with Resource "*" added to __main__.py."""
    shutil.copy(repo / "__main__.py", tmp_path / "__main__.py")  # the real program, not the fixture's shim
    for f in ("agents.yaml", "Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(root / f, tmp_path / f)
    raw = iam.Document((iam.secret_read("ReadEverything", ["*"]),)).to_json()
    with (tmp_path / "__main__.py").open("a", encoding="utf-8") as fh:
        fh.write(f"\nimport pulumi_aws as _aws\n_aws.iam.RolePolicy('quick-fix', role='agents-dev-billing', policy={raw!r})\n")
    code, out, _ = run_cli("check", "--stack", "dev", "--root", str(tmp_path))
    assert code == 1
    assert 'no-wildcard-secret-read: aws:iam/rolePolicy:RolePolicy "quick-fix"' in out
    billing = out.split("\nbilling:\n", 1)[1].split("\n\n", 1)[0]
    assert "quick-fix" in billing  # grouped under the agent whose role it names


def test_enforcement_level_comes_from_the_policy_config(root: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "policy-config.json"
    cfg.write_text(json.dumps({"all": "advisory"}), encoding="utf-8")
    code, out, _ = run_cli("check", "--stack", "dev", "--root", str(root), "--policy-config", str(cfg))
    assert code == 0 and "0 mandatory" in out
    cfg.write_text(json.dumps({"no-such-policy": "mandatory"}), encoding="utf-8")
    code, _, err = run_cli("check", "--stack", "dev", "--root", str(root), "--policy-config", str(cfg))
    assert code == 2 and "unknown policy 'no-such-policy'" in err


def test_disabled_policy_does_not_run(root: Path, config: dict[str, Any], dev_settings: StackSettings) -> None:
    def extra() -> None:
        aws.iam.Role("open-door", name="open-door", assume_role_policy=iam.Document((iam.assume_by_roles("Anyone", ["*"]),)).to_json())

    run = mockrun.run_program("dev", root=root, program=with_extra(root, extra))
    result = checkrun.check_program(run, config, {"trust-policy-scoped": {"enforcementLevel": "disabled"}})
    assert "trust-policy-scoped" not in result.policies
    assert not [v for v in result.violations if v.policy == "trust-policy-scoped"]


def test_invalid_fleet_gives_validate_errors(root: Path, tmp_path: Path) -> None:
    bad = tmp_path / "agents.yaml"
    bad.write_text("version: 1\nagents: []\n", encoding="utf-8")
    code, _, err = run_cli("check", "--stack", "dev", "--root", str(root), "--fleet", str(bad))
    assert code == 1 and f"{bad}:" in err



def test_printed_engine_config_matches_what_check_uses(root: Path, config: dict[str, Any], tmp_path: Path) -> None:
    from agentfleet.policy.layout import layout
    from agentfleet.policy.registry import by_name

    code, out, _ = run_cli("check", "--stack", "dev", "--root", str(root), "--print-policy-config")
    assert code == 0
    doc = json.loads(out)
    policies = by_name()
    assert set(doc) == set(policies)
    for name, entry in doc.items():
        props = {k: v for k, v in entry.items() if k != "enforcementLevel"}
        assert props == config
        schema, level = policies[name].config_schema, policies[name].enforcement_level
        assert schema is not None and level is not None
        assert set(props) <= set(schema.properties)  # the engine validates the config against it
        assert entry["enforcementLevel"] == level.value
        assert layout(props).settings is not None
    # Feeding it back changes nothing.
    cfg = tmp_path / "policy-config.json"
    cfg.write_text(out, encoding="utf-8")
    assert run_cli("check", "--stack", "dev", "--root", str(root), "--policy-config", str(cfg))[1] == \
        run_cli("check", "--stack", "dev", "--root", str(root))[1]
