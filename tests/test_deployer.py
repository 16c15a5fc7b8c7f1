"""The generated deployer policy: covers every resource type the program declares, and no more
than the stack's own names (evaluated with the project's IAM evaluator)."""

from __future__ import annotations

import io
import json

import pytest

from agentfleet.cli.main import main
from agentfleet.core.deployer import GRANTS, DeployerPolicyError, deployer_policy
from agentfleet.core.iam_documents import Document
from agentfleet.core.settings import StackSettings
from agentfleet.runner.mockrun import run_program
from tests.conftest import PROJECT, REPO
from tests.iam_eval import Request, evaluate

MANAGED_POLICY_MAX = 6144  # characters, IAM quota for one managed policy


@pytest.fixture(scope="module")
def declared_types() -> set[str]:
    types: set[str] = set()
    for overrides in ({}, {"agentfleet:rotationIsolation": "shared"},
                      {"agentfleet:fleetFile": str(REPO / "tests" / "fleets" / "teams" / "platform-team.yaml")}):
        types |= {r.type for r in run_program("dev", root=PROJECT, config_overrides=overrides).resources}
    return types


@pytest.fixture(scope="module")
def policy(declared_types: set[str], dev_settings: StackSettings) -> dict[str, object]:
    return deployer_policy(dev_settings, declared_types)


def allowed(policy: dict[str, object], action: str, resource: str, **context: str) -> bool:
    return evaluate(policy, Request(action, resource, context)) == "Allow"


def test_every_declared_aws_type_has_a_grant(declared_types: set[str]) -> None:
    aws_types = {t for t in declared_types if t.startswith("aws:")}
    assert aws_types and aws_types <= set(GRANTS)


def test_an_unknown_type_is_an_error_not_a_silent_gap(dev_settings: StackSettings) -> None:
    with pytest.raises(DeployerPolicyError, match="aws:ec2/instance:Instance"):
        deployer_policy(dev_settings, ["aws:iam/role:Role", "aws:ec2/instance:Instance"])


def test_fits_one_managed_policy(policy: dict[str, object]) -> None:
    assert len(json.dumps(policy, separators=(",", ":"))) <= MANAGED_POLICY_MAX


def test_the_stacks_names_only(policy: dict[str, object]) -> None:
    acct = "123456789012"
    own_role, other_role = f"arn:aws:iam::{acct}:role/agents-dev-research", f"arn:aws:iam::{acct}:role/admin"
    assert allowed(policy, "iam:CreateRole", own_role)
    assert allowed(policy, "iam:PutRolePolicy", own_role)
    assert not allowed(policy, "iam:CreateRole", other_role)
    assert not allowed(policy, "iam:PutRolePolicy", other_role)
    assert not allowed(policy, "iam:CreateRole", f"arn:aws:iam::{acct}:role/agents-prod-research")  # another env
    assert not allowed(policy, "iam:AttachRolePolicy", own_role)  # the program attaches no managed policy
    dev_secret = f"arn:aws:secretsmanager:us-east-1:{acct}:secret:agents/dev/research/openai-AbC123"
    prod_secret = f"arn:aws:secretsmanager:us-east-1:{acct}:secret:agents/prod/research/openai-AbC123"
    assert allowed(policy, "secretsmanager:CreateSecret", dev_secret)
    assert not allowed(policy, "secretsmanager:GetSecretValue", prod_secret)
    assert not allowed(policy, "secretsmanager:CreateSecret", prod_secret)
    # PassRole: the stack's roles, to the services that run them, nothing else.
    assert allowed(policy, "iam:PassRole", own_role, **{"iam:PassedToService": "lambda.amazonaws.com"})
    assert not allowed(policy, "iam:PassRole", own_role, **{"iam:PassedToService": "ec2.amazonaws.com"})
    assert not allowed(policy, "iam:PassRole", other_role, **{"iam:PassedToService": "lambda.amazonaws.com"})
    # The key: created only with the stack's tags, managed only when it carries them.
    assert not allowed(policy, "kms:CreateKey", "*")
    assert allowed(policy, "kms:CreateKey", "*", **{"aws:RequestTag/managed-by": "agentfleet", "aws:RequestTag/environment": "dev"})
    key = f"arn:aws:kms:us-east-1:{acct}:key/1234"
    assert not allowed(policy, "kms:PutKeyPolicy", key)
    assert allowed(policy, "kms:PutKeyPolicy", key, **{"aws:ResourceTag/managed-by": "agentfleet", "aws:ResourceTag/environment": "dev"})
    assert not allowed(policy, "kms:Decrypt", key, **{"aws:ResourceTag/managed-by": "agentfleet", "aws:ResourceTag/environment": "dev"})


def test_cli_prints_it() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["deployer-policy", "--stack", "dev"], out, err) == 0, err.getvalue()
    doc = json.loads(out.getvalue())
    assert doc["Version"] == Document().to_dict()["Version"] and len(doc["Statement"]) > 10
