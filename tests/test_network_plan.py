"""Network scopes and the `ssm` store in the pure layers: model rules, plan contract, rotation
reminders, audit rows and the access diff (issue 15)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from agentfleet.core import naming, rotation_plan
from agentfleet.core.loader import FleetError, build_fleet
from agentfleet.core.model import Fleet
from agentfleet.core.plan import build_plan, vault_bound_cidrs
from agentfleet.operate.values import value_targets
from agentfleet.core.settings import StackSettings
from agentfleet.review.audit import audit_csv, audit_markdown, audit_rows
from agentfleet.review.diff import diff_plans

EP, EP2 = "vpce-0abc1234def567890", "vpce-0fff1234def567890"
VPC = "vpc-0abc1234def567890"


def doc(network: dict[str, Any] | None = None, runtime: dict[str, Any] | None = None,
        stores: list[str] | None = None) -> dict[str, Any]:
    agent: dict[str, Any] = {
        "name": "agent-a", "runtime": runtime or {"service": "ecs-tasks.amazonaws.com"},
        "credentials": [{"name": "key", "service": "svc", "type": "api_key", "stores": stores or ["aws", "ssm"]}],
    }
    if network is not None:
        agent["network"] = network
    return {"version": 1, "agents": [agent, {"name": "agent-b", "runtime": {"service": "ecs-tasks.amazonaws.com"},
                                            "credentials": [{"name": "key", "service": "svc", "type": "api_key"}]}]}


def problems(d: dict[str, Any]) -> list[str]:
    with pytest.raises(FleetError) as exc:
        build_fleet(d)
    return [p.message for p in exc.value.problems]


# ---- model ----


@pytest.mark.parametrize("network", [
    {"vpc_endpoints": [EP]}, {"vpcs": [VPC]}, {"source_cidrs": ["203.0.113.0/24", "2001:db8::/48"]},
    {"vpc_endpoints": ["vpce-0abc1234"], "vpcs": ["vpc-0abc1234"]},  # old 8-hex ids
    {"vpcs": [VPC], "vault_cidrs": ["10.0.0.0/8"], "runtime_in_vpc": True},
])
def test_well_formed_scopes_are_accepted(network: dict[str, Any]) -> None:
    fleet = build_fleet(doc(network))
    assert fleet.agent("agent-a").network is not None and fleet.agent("agent-b").network is None


@pytest.mark.parametrize(("network", "words"), [
    ({}, "declare at least one of vpc_endpoints, vpcs, source_cidrs"),
    ({"vpc_endpoints": ["vpce-0ABC1234DEF567890"]}, "invalid value"),  # ids are lowercase hex
    ({"vpc_endpoints": ["vpce-0abc1234def56789"]}, "invalid value"),  # 16 hex: neither length
    ({"vpcs": ["vpce-0abc1234def567890"]}, "invalid value"),  # an endpoint id where a VPC id goes
    ({"source_cidrs": ["203.0.113.0"]}, "add the prefix length, e.g. 203.0.113.0/32"),
    ({"source_cidrs": ["203.0.113.9/24"]}, "host bits set"),
    ({"source_cidrs": ["203.0.113.0/33"]}, "is not a valid CIDR"),
    ({"source_cidrs": ["0.0.0.0/0"]}, "the whole internet"),
    ({"source_cidrs": ["::/0"]}, "the whole internet"),
    ({"vpcs": [VPC], "vault_cidrs": ["10.0.0.1/8"]}, "host bits set"),
    ({"vpcs": [VPC], "bogus": True}, "unknown key `bogus`"),
])
def test_malformed_scopes_are_refused(network: dict[str, Any], words: str) -> None:
    assert any(words in m for m in problems(doc(network))), problems(doc(network))


@pytest.mark.parametrize(("network", "runtime", "words"), [
    ({"vpc_endpoints": [EP]}, {"github_oidc": {"repository": "o/r", "ref": "refs/heads/main"}}, "GitHub-hosted runners"),
    ({"vpcs": [VPC]}, {"service": "lambda.amazonaws.com"}, "lambda.amazonaws.com runs outside any VPC unless attached to one"),
    ({"vpcs": [VPC], "runtime_in_vpc": True}, {"service": "lambda.amazonaws.com"}, None),  # attached: the owner says so
    ({"vpc_endpoints": [EP]}, {"service": "codebuild.amazonaws.com"}, "attach a VpcConfig"),
    ({"vpc_endpoints": [EP]}, {"eks_pod_identity": {"cluster": "c", "namespace": "n", "service_account": "s"}}, None),  # pods always run in the cluster's VPC
    ({"source_cidrs": ["203.0.113.0/24"]}, {"service": "lambda.amazonaws.com"}, None),  # fixed egress (NAT)
    ({"vpc_endpoints": [EP], "runtime_in_vpc": False}, {"service": "lambda.amazonaws.com"}, "attach a VpcConfig"),
    ({"vpc_endpoints": [EP], "runtime_in_vpc": False}, {"role_arns": ["arn:aws:iam::123456789012:role/r"]}, "outside your VPCs"),
    ({"source_cidrs": ["203.0.113.0/24"]}, {"service": "bedrock.amazonaws.com"}, "calls AWS from AWS's own network"),
    ({"vpc_endpoints": [EP], "source_cidrs": ["203.0.113.0/24"]}, {"github_oidc": {"repository": "o/r", "ref": "refs/heads/main"}}, None),
    ({"vpc_endpoints": [EP], "runtime_in_vpc": True}, {"github_oidc": {"repository": "o/r", "ref": "refs/heads/main"}}, None),
])
def test_a_scope_that_locks_out_the_runtime_is_an_error_with_the_fix(
    network: dict[str, Any], runtime: dict[str, Any], words: str | None
) -> None:
    if words is None:
        assert build_fleet(doc(network, runtime)).agent("agent-a").network is not None
    else:
        found = problems(doc(network, runtime))
        assert len(found) == 1 and words in found[0] and found[0].startswith("agents[0]: network:"), found


def test_ssm_only_with_manual_rotation_also_via_defaults() -> None:
    d = doc(stores=["ssm"])
    d["agents"][0]["credentials"][0]["rotation"] = {"strategy": "generated"}
    assert any("Parameter Store has no rotation protocol" in m for m in problems(d))
    d = doc()
    d["defaults"] = {"stores": ["aws", "ssm"]}
    del d["agents"][0]["credentials"][0]["stores"]
    d["agents"][1]["credentials"][0]["rotation"] = {"strategy": "openai"}
    d["agents"][1]["credentials"][0]["service"] = "openai"  # the adapter's own service (else a second problem)
    found = problems(d)
    assert len(found) == 1 and found[0].startswith("agents[1].credentials[0]:"), found
    d["agents"][1]["credentials"][0]["stores"] = ["aws"]  # an explicit store list overrides the default
    assert build_fleet(d).agent("agent-a").credentials[0].stores == ("aws", "ssm")


# ---- plan ----


@pytest.fixture
def s(dev_settings: StackSettings) -> StackSettings:
    return dev_settings


def test_plan_names_the_parameter_and_the_scope(s: StackSettings) -> None:
    fleet = build_fleet(doc({"vpc_endpoints": [EP], "source_cidrs": ["203.0.113.0/24"]}))
    plan = build_plan(fleet, s)
    a, b = plan["agents"]
    assert a["credentials"][0]["ssm_parameter"] == f"/{s.secret_prefix}/{s.environment}/agent-a/key"
    assert naming.ssm_parameter_arn(s, "agent-a", "key") == (
        f"arn:{s.partition}:ssm:{s.aws_region}:{s.aws_account_id}:parameter/{s.secret_prefix}/{s.environment}/agent-a/key")
    assert a["network"] == {"vpc_endpoints": [EP], "vpcs": [], "source_cidrs": ["203.0.113.0/24"],
                            "vault_bound_cidrs": ["203.0.113.0/24"], "summary": f"via {EP} or from 203.0.113.0/24"}
    assert b["network"] is None and b["credentials"][0]["ssm_parameter"] is None


def test_vault_ranges(s: StackSettings) -> None:
    def bound(network: dict[str, Any]) -> list[str]:
        return vault_bound_cidrs(build_fleet(doc(network)).agent("agent-a"))
    assert bound({"vpc_endpoints": [EP]}) == []  # Vault knows no endpoint ids: unbound
    assert bound({"source_cidrs": ["203.0.113.0/24"]}) == ["203.0.113.0/24"]
    assert bound({"vpcs": [VPC], "vault_cidrs": ["10.1.0.0/16", "10.0.0.0/16"]}) == ["10.0.0.0/16", "10.1.0.0/16"]
    assert bound({"source_cidrs": ["203.0.113.0/24"], "vault_cidrs": []}) == []  # explicitly unbound


def test_ssm_value_command_and_reminder(s: StackSettings) -> None:
    fleet = build_fleet(doc(stores=["ssm"]))
    plan = build_plan(fleet, s)
    (target,) = [t for t in value_targets(plan) if t.agent == "agent-a"]
    assert target.stores == ("ssm",) and target.ssm_parameter == naming.ssm_parameter_name(s, "agent-a", "key")
    assert target.kms_key_alias == naming.kms_alias(s)  # the SecureString's key: the environment's
    agent = fleet.agent("agent-a")
    (rem,) = rotation_plan.reminders(s, agent)
    assert rem.message["ssm_parameter"] == naming.ssm_parameter_name(s, "agent-a", "key")
    assert rem.secret_name is None and rem.message["vault_path"] is None
    (write,) = [step for step in rem.message["runbook"] if "put-values" in step]  # the reminder's runbook is the rotation
    assert "--agent agent-a --credential key" in write and f"Parameter Store {target.ssm_parameter}" in write


# ---- audit ----


def test_audit_shows_each_credentials_store_and_scope(s: StackSettings) -> None:
    plan = build_plan(build_fleet(doc({"vpcs": [VPC]})), s)
    rows = {r.agent: r for r in audit_rows(plan)}
    assert rows["agent-a"].network == f"from {VPC}" and rows["agent-b"].network == "anywhere"
    assert rows["agent-a"].stores == ("aws", "ssm") and rows["agent-a"].ssm_parameter == f"/{s.secret_prefix}/{s.environment}/agent-a/key"
    md = audit_markdown(plan)
    header = next(line for line in md.splitlines() if line.startswith("| Agent"))
    assert "| Network |" in header
    line = next(line for line in md.splitlines() if line.startswith("| `agent-a` "))
    assert "Secrets Manager, Parameter Store" in line and f"`Parameter Store /{s.secret_prefix}/{s.environment}/agent-a/key`" in line
    assert f"| from {VPC} |" in line
    csv_text = audit_csv(plan)
    assert "ssm_parameter" in csv_text.splitlines()[0] and f"from {VPC}" in csv_text


# ---- diff ----


def _diff(before: Fleet, after: Fleet, s: StackSettings) -> list[tuple[str, str, bool]]:
    d = diff_plans(build_plan(before, s), build_plan(after, s), old_classes=before.classifications,
                   new_classes=after.classifications, old_source="old", new_source="new")
    return [(c.agent, c.kind, c.escalation) for c in d.changes]


NET_CASES: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None, tuple[str, bool] | None]] = [
    ("scoped", None, {"vpcs": [VPC]}, ("network-scoped", False)),
    ("unscoped", {"vpcs": [VPC]}, None, ("network-unscoped", True)),
    ("endpoint-added", {"vpc_endpoints": [EP]}, {"vpc_endpoints": [EP, EP2]}, ("network-widened", True)),
    ("endpoint-removed", {"vpc_endpoints": [EP, EP2]}, {"vpc_endpoints": [EP]}, ("network-narrowed", False)),
    ("range-broadened", {"source_cidrs": ["203.0.113.0/25"]}, {"source_cidrs": ["203.0.113.0/24"]}, ("network-widened", True)),
    ("range-split", {"source_cidrs": ["203.0.113.0/24"]}, {"source_cidrs": ["203.0.113.0/25", "203.0.113.128/25"]}, ("network-restated", False)),
    ("range-narrowed", {"source_cidrs": ["203.0.113.0/24"]}, {"source_cidrs": ["203.0.113.64/26"]}, ("network-narrowed", False)),
    ("swapped", {"vpc_endpoints": [EP]}, {"vpc_endpoints": [EP2]}, ("network-changed", True)),
    ("vault-unbound", {"source_cidrs": ["203.0.113.0/24"]}, {"source_cidrs": ["203.0.113.0/24"], "vault_cidrs": []}, ("network-widened", True)),
    ("reordered", {"vpc_endpoints": [EP, EP2]}, {"vpc_endpoints": [EP2, EP]}, None),
]


@pytest.mark.parametrize(("before", "after", "expected"), [c[1:] for c in NET_CASES], ids=[c[0] for c in NET_CASES])
def test_diff_loosening_or_removing_a_scope_is_an_escalation(
    before: dict[str, Any] | None, after: dict[str, Any] | None, expected: tuple[str, bool] | None, s: StackSettings
) -> None:
    got = _diff(build_fleet(doc(before)), build_fleet(doc(after)), s)
    assert got == ([] if expected is None else [("agent-a", *expected)])
    if expected is not None and before is not None and after is not None:
        (back,) = _diff(build_fleet(doc(after)), build_fleet(doc(before)), s)
        assert back[2] is (expected[0] in ("network-narrowed", "network-changed")), back


def test_diff_ssm_store_added_is_an_escalation_and_named(s: StackSettings) -> None:
    before, after = build_fleet(doc(stores=["aws"])), build_fleet(doc(stores=["aws", "ssm"]))
    d = diff_plans(build_plan(before, s), build_plan(after, s), old_classes=before.classifications,
                   new_classes=after.classifications, old_source="old", new_source="new")
    (change,) = d.changes
    assert (change.kind, change.escalation) == ("store-added", True)
    assert f"Parameter Store `/{s.secret_prefix}/{s.environment}/agent-a/key`" in change.text
    new = copy.deepcopy(doc(stores=["aws"]))
    new["agents"].append({"name": "agent-c", "runtime": {"service": "ecs-tasks.amazonaws.com"}, "network": {"vpcs": [VPC]},
                          "credentials": [{"name": "key", "service": "svc", "type": "api_key"}]})
    added = diff_plans(build_plan(before, s), build_plan(build_fleet(new), s), old_classes={}, new_classes={},
                       old_source="old", new_source="new").changes[0]
    assert added.kind == "agent-added" and f"readable from {VPC}" in added.text


def test_plan_table_shows_scope_and_parameter(tmp_path: Any, root: Any) -> None:
    import io

    from ruamel.yaml import YAML

    from agentfleet.cli.main import main

    (tmp_path / "Pulumi.yaml").write_text((root / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.dev.yaml").write_text((root / "Pulumi.dev.yaml").read_text())
    path = tmp_path / "agents.yaml"
    with path.open("w") as fh:
        YAML(typ="safe").dump(doc({"vpcs": [VPC]}), fh)
    out, err = io.StringIO(), io.StringIO()
    assert main(["plan", str(path), "--stack", "dev", "--project", str(tmp_path)], out, err) == 0, err.getvalue()
    text = out.getvalue()
    assert f"  network      from {VPC}\n" in text and "  network      anywhere (no scope)\n" in text
    assert "ssm:/agents/dev/agent-a/key" in text
