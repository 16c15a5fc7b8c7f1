"""One fleet, many environments: per-environment overrides, presence, tighten-only rotation, and
account-aware validation (no prod plan trusts a dev principal)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from agentfleet.cli.main import main
from agentfleet.core.loader import FleetError, load_fleet, parse_fleet
from agentfleet.core.model import NOT_OVERRIDABLE, Agent, Credential
from agentfleet.core.plan import build_plan
from agentfleet.core.settings import StackSettings, load_stack_settings
from agentfleet.review.diff import trust_principals

FLEET = """version: 1
agents:
  - name: research
    runtime:
      role_arns: [arn:aws:iam::123456789012:role/research-runner]
    credentials:
      - name: openai
        service: openai
        type: api_key
        rotation: {strategy: openai, days: 60}
      - name: scratch
        service: serpapi
        type: api_key
        only_in: [dev]
    environments:
      prod:
        runtime:
          role_arns: [arn:aws:iam::210987654321:role/research-runner]
        credentials:
          openai: {rotation: {days: 30}, stores: [aws]}
  - name: sandbox
    only_in: [dev]
    runtime: {service: lambda.amazonaws.com}
    credentials:
      - {name: toy, service: openai, type: api_key}
"""


def settings(root: Path, stack: str) -> StackSettings:
    return load_stack_settings(root / f"Pulumi.{stack}.yaml", stack)


def problems(text: str, s: StackSettings | None = None) -> list[str]:
    with pytest.raises(FleetError) as exc:
        parse_fleet(text, "f.yaml", s)
    return [str(p) for p in exc.value.problems]


def test_each_environment_gets_its_own_resolved_fleet(root: Path) -> None:
    dev = parse_fleet(FLEET, "f.yaml", settings(root, "dev"))
    prod = parse_fleet(FLEET, "f.yaml", settings(root, "prod"))
    assert dev.environment == "dev" and prod.environment == "prod"
    assert [a.name for a in dev.agents] == ["research", "sandbox"]
    assert [a.name for a in prod.agents] == ["research"]  # sandbox: only_in [dev]
    assert [c.name for c in dev.agent("research").credentials] == ["openai", "scratch"]
    assert [c.name for c in prod.agent("research").credentials] == ["openai"]
    openai = prod.agent("research").credentials[0]
    assert (openai.rotation_strategy, openai.rotation_days, openai.stores) == ("openai", 30, ("aws",))
    assert dev.agent("research").credentials[0].rotation_days == 60
    assert prod.agent("research").runtime.role_arns == ("arn:aws:iam::210987654321:role/research-runner",)
    # The base (no environment) has every agent and no override applied.
    base = parse_fleet(FLEET, "f.yaml")
    assert base.environments == ("dev", "prod") and base.agent("research").runtime.role_arns == dev.agent("research").runtime.role_arns


def test_no_prod_plan_trusts_a_dev_principal(root: Path, tmp_path: Path) -> None:
    """The sample and this fleet on prod trust only prod's account; without the override, refused."""
    prod = settings(root, "prod")
    for fleet in (load_fleet(root / "agents.yaml", prod), parse_fleet(FLEET, "f.yaml", prod)):
        plan = build_plan(fleet, prod)
        for a in plan["agents"]:
            for who in trust_principals(a["trust_policy"]):
                assert "123456789012" not in who, (a["name"], who)
    no_override = FLEET.replace("""    environments:
      prod:
        runtime:
          role_arns: [arn:aws:iam::210987654321:role/research-runner]
        credentials:
          openai: {rotation: {days: 30}, stores: [aws]}
""", "")
    [p] = problems(no_override, prod)
    assert p.startswith("f.yaml:4: agent 'research': runtime role arn:aws:iam::123456789012:role/research-runner is in account 123456789012, not stack 'prod''s account 210987654321")
    # `check --stack prod` and `plan --stack prod` refuse it too (exit 1, FILE:LINE).
    f = tmp_path / "agents.yaml"
    f.write_text(no_override)
    for argv in (["plan", str(f)], ["check", "--fleet", str(f)], ["validate", str(f)]):
        out, err = io.StringIO(), io.StringIO()
        code = main([*argv, "--stack", "prod", "--project", str(root)], out, err)
        assert code == 1 and f"{f}:4: agent 'research'" in err.getvalue(), argv


def test_trusted_accounts_admit_another_account_and_partitions_never(root: Path) -> None:
    prod = settings(root, "prod")
    contractor = FLEET.replace("arn:aws:iam::210987654321:role/research-runner", "arn:aws:iam::999999999999:role/contractor")
    assert "account 999999999999" in problems(contractor, prod)[0]
    trusted = prod.model_copy(update={"trusted_accounts": ("999999999999",)})
    assert parse_fleet(contractor, "f.yaml", trusted).agent("research").runtime.role_arns == ("arn:aws:iam::999999999999:role/contractor",)
    china = FLEET.replace("arn:aws:iam::210987654321:role/research-runner", "arn:aws-cn:iam::210987654321:role/research-runner")
    assert "partition 'aws-cn'" in problems(china, trusted)[0]
    admins = prod.model_copy(update={"admin_principals": ("arn:aws:iam::123456789012:role/dev-admin",)})
    assert any("f.yaml:0: admin principal" in p for p in problems(FLEET, admins))


@pytest.mark.parametrize("override,text", [
    ("openai: {rotation: {days: 90}}", "rotation every 90 days loosens the base's 60"),
    ("openai: {rotation: {strategy: manual}}", "rotation strategy manual loosens the base's automatic 'openai'"),
    ("openai: {classification: partner}", "classification 'partner' (max 120 days) loosens the base's 'internal' (max 90 days)"),
])
def test_overrides_tighten_rotation_never_loosen_it(override: str, text: str) -> None:
    loosened = FLEET.replace("openai: {rotation: {days: 30}, stores: [aws]}", override)
    if "partner" in override:
        loosened = loosened.replace("version: 1\n", "version: 1\nclassifications:\n  partner: {max_rotation_days: 120}\n")
    found = problems(loosened)
    assert any(text in p and p.endswith("(environment prod)") for p in found), found


PROD_LINE = "      prod:\n"


@pytest.mark.parametrize("old,new,line,text", [
    (PROD_LINE, PROD_LINE + "        name: other\n", 17, "`name` cannot be overridden per environment"),
    (PROD_LINE, PROD_LINE + "        runtim: {service: lambda.amazonaws.com}\n", 17,
     "environments.prod.runtim: unknown key `runtim` (did you mean `runtime`?)"),
    ("openai: {rotation", "nope: {rotation", 20, "agent 'research' has no credential 'nope' to override"),
    (PROD_LINE, PROD_LINE + "        paused: maybe\n", 17, "environments.prod.paused: expected true or false"),
])
def test_override_mistakes_point_at_the_override(old: str, new: str, line: int, text: str) -> None:
    broken = FLEET.replace(old, new)
    found = problems(broken)
    assert any(p.startswith(f"f.yaml:{line}: ") and text in p for p in found), found


def test_override_for_an_absent_environment_and_secrets_in_overrides() -> None:
    text = FLEET.replace("  - name: sandbox\n    only_in: [dev]\n", "  - name: sandbox\n    only_in: [dev]\n    environments: {prod: {paused: true}}\n")
    assert any("agent 'sandbox' does not exist in environment 'prod'" in p for p in problems(text))
    leaked = FLEET.replace("openai: {rotation: {days: 30}, stores: [aws]}", "openai: {description: sk-live-4eC39HqLyjWDarjtT1zdp7dc}")  # pragma: allowlist secret
    found = problems(leaked)
    assert len(found) == 1 and "looks like a real credential" in found[0] and "4eC39Hq" not in found[0]


def test_any_agent_or_credential_field_is_overridable_except_identity() -> None:
    """The override is generic: a field added to Agent/Credential (network, a new runtime kind)
    is overridable per environment with no special case; only identity and presence are not."""
    assert NOT_OVERRIDABLE == {"name", "only_in", "environments", "renamed_from"}
    for field in set(Agent.model_fields) - NOT_OVERRIDABLE - {"credentials"}:
        assert field in Agent.model_fields
    text = FLEET.replace("        runtime:\n          role_arns: [arn:aws:iam::210987654321:role/research-runner]\n",
                         "        owner: prod-oncall\n        description: prod copy\n        runtime:\n"
                         "          github_oidc: {repository: example-org/research, environment: production}\n")
    prod_s = StackSettings(stack="prod", environment="prod", aws_region="us-east-1", aws_account_id="210987654321")
    prod = parse_fleet(text, "f.yaml", prod_s)
    a = prod.agent("research")
    assert (a.owner, a.description, a.runtime.kind) == ("prod-oncall", "prod copy", "github_oidc")
    assert set(Credential.model_fields) - NOT_OVERRIDABLE >= {"service", "type", "classification", "rotation", "stores"}


def test_validate_checks_every_environment_and_plan_reads_the_stack(root: Path, tmp_path: Path) -> None:
    f = tmp_path / "agents.yaml"
    f.write_text(FLEET)
    out, err = io.StringIO(), io.StringIO()
    assert main(["validate", str(f), "--project", str(root)], out, err) == 0, err.getvalue()
    out = io.StringIO()
    assert main(["plan", str(f), "--stack", "prod", "--project", str(root), "--format", "json"], out, io.StringIO()) == 0
    plan = json.loads(out.getvalue())
    assert [a["name"] for a in plan["agents"]] == ["research"]
    assert [c["name"] for c in plan["agents"][0]["credentials"]] == ["openai"]


def test_a_field_added_by_another_feature_is_overridable_too(root: Path) -> None:
    """`network` (added to Agent by the network-scope work) needs no special case: prod scopes the
    agent to its VPC endpoint, dev stays unscoped."""
    scoped = FLEET.replace("        credentials:\n          openai:", "        network: {vpc_endpoints: [vpce-0123abcd]}\n        credentials:\n          openai:")
    prod = parse_fleet(scoped, "f.yaml", settings(root, "prod")).agent("research")
    dev = parse_fleet(scoped, "f.yaml", settings(root, "dev")).agent("research")
    assert prod.network is not None and prod.network.vpc_endpoints == ("vpce-0123abcd",)
    assert dev.network is None
    bad = scoped.replace("vpce-0123abcd", "vpce-nothex")
    assert any("environments.prod.network" in p and p.endswith("(environment prod)") for p in problems(bad))
