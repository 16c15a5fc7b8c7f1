"""iam-policy-lint: parliament on every IAM document; which severities fail."""

from __future__ import annotations

from typing import Any

import pytest

from agentfleet.core import iam_documents as iam
from agentfleet.core import plan
from agentfleet.core.model import Fleet
from agentfleet.core.settings import StackSettings
from agentfleet.policy.lint import iam_policy_lint
from tests.test_policy_support import (
    KMS_KEY_ARN,
    ROLE,
    ROLE_POLICY,
    SECRET,
    SECRET_POLICY,
    UNKNOWN,
    config_for,
    rotation_role_policy,
    validate_resource,
)


@pytest.fixture(scope="module")
def config(sample_fleet: Fleet, dev_settings: StackSettings) -> dict[str, Any]:
    return config_for(dev_settings, sample_fleet)


def doc(*statements: iam.Statement) -> str:
    return iam.Document(tuple(statements)).to_json()


def test_generated_documents_pass(sample_fleet: Fleet, dev_settings: StackSettings, config: dict[str, Any]) -> None:
    for agent in sample_fleet.agents:
        docs = [(ROLE_POLICY, iam.to_json(plan.agent_iam_policy(dev_settings, agent, KMS_KEY_ARN))),
                (ROLE_POLICY, rotation_role_policy(dev_settings, agent))]
        docs += [(SECRET_POLICY, iam.to_json(plan.secret_resource_policy(dev_settings, agent, c))) for c in agent.credentials]
        for type_, policy in docs:
            assert validate_resource(iam_policy_lint, type_, {"policy": policy}, config=config) == [], policy


def test_resource_mismatch_fails(config: dict[str, Any]) -> None:
    bad = doc(iam.Statement("Wrong", ("secretsmanager:GetSecretValue",), ("arn:aws:s3:::some-bucket",)))
    [msg] = validate_resource(iam_policy_lint, ROLE_POLICY, {"policy": bad}, name="mismatch", config=config)
    assert msg.startswith('aws:iam/rolePolicy:RolePolicy "mismatch" policy: parliament RESOURCE_MISMATCH (MEDIUM)')


def test_unknown_action_fails_although_parliament_rates_it_low(config: dict[str, Any]) -> None:
    typo = doc(iam.Statement("Typo", ("secretsmanager:GetSecretValu",), ("*",)))
    [msg] = validate_resource(iam_policy_lint, ROLE_POLICY, {"policy": typo}, config=config)
    assert "UNKNOWN_ACTION" in msg and "GetSecretValu" in msg


def test_resource_star_is_a_warning_that_passes(config: dict[str, Any]) -> None:
    star = doc(iam.Statement("Random", ("secretsmanager:GetRandomPassword",), ("*",)),
               iam.Statement("ListAll", ("secretsmanager:ListSecrets",), ("*",)))
    assert validate_resource(iam_policy_lint, ROLE_POLICY, {"policy": star}, config=config) == []


def test_fail_levels_are_configurable(config: dict[str, Any]) -> None:
    star = doc(iam.Statement("Read", ("secretsmanager:GetSecretValue",), ("*",)))
    assert validate_resource(iam_policy_lint, ROLE_POLICY, {"policy": star}, config=config) == []
    strict = {**config, "failSeverities": ["CRITICAL", "HIGH", "MEDIUM", "LOW"]}
    [msg] = validate_resource(iam_policy_lint, ROLE_POLICY, {"policy": star}, config=strict)
    assert "RESOURCE_STAR" in msg


def test_inline_and_invalid_documents(config: dict[str, Any]) -> None:
    bad = doc(iam.Statement("Wrong", ("secretsmanager:GetSecretValue",), ("arn:aws:s3:::b",)))
    [msg] = validate_resource(iam_policy_lint, ROLE, {"inlinePolicies": [{"name": "p", "policy": bad}]}, config=config)
    assert "inlinePolicies[0].policy" in msg
    [msg] = validate_resource(iam_policy_lint, SECRET, {"policy": "{nope"}, config=config)
    assert "not valid JSON" in msg


def test_trust_policies_are_left_to_trust_policy_scoped(sample_fleet: Fleet, dev_settings: StackSettings, config: dict[str, Any]) -> None:
    for agent in sample_fleet.agents:
        trust = iam.to_json(plan.trust_policy(dev_settings, agent))
        assert validate_resource(iam_policy_lint, ROLE, {"assumeRolePolicy": trust}, config=config) == []


@pytest.mark.parametrize("props", [{}, {"policy": UNKNOWN}, {"inlinePolicies": UNKNOWN}, {"policy": ""}])
def test_missing_or_unknown_do_not_crash(config: dict[str, Any], props: dict[str, Any]) -> None:
    for type_ in (ROLE_POLICY, ROLE, SECRET_POLICY):
        assert validate_resource(iam_policy_lint, type_, props, config=config) == []


def test_environment_resource_policies_pass(dev_settings: StackSettings, config: dict[str, Any]) -> None:
    from agentfleet.core import monitoring_plan

    docs = [("aws:kms/key:Key", plan.kms_key_policy(dev_settings)),
            ("aws:sns/topicPolicy:TopicPolicy", monitoring_plan.alert_topic_policy(dev_settings)),
            ("aws:s3/bucketPolicy:BucketPolicy", monitoring_plan.trail_bucket_policy(dev_settings)),
            (ROLE_POLICY, monitoring_plan.trail_logs_policy(dev_settings))]
    for type_, document in docs:
        assert validate_resource(iam_policy_lint, type_, {"policy": iam.to_json(document)}, config=config) == [], type_


def test_bucket_policy_with_wrong_resource_fails(config: dict[str, Any]) -> None:
    bad = doc(iam.Statement("Wrong", ("s3:GetObject",), ("arn:aws:secretsmanager:us-east-1:123456789012:secret:x",),
                            principal={"Service": "cloudtrail.amazonaws.com"}))
    [msg] = validate_resource(iam_policy_lint, "aws:s3/bucketPolicy:BucketPolicy", {"bucket": "b", "policy": bad}, config=config)
    assert "RESOURCE_MISMATCH" in msg


def _via_jsoncfg(source: str) -> list[tuple[Any, ...]]:
    import parliament

    policy = parliament.analyze_policy_string(source, ignore_private_auditors=True)
    return [_key(parliament.enhance_finding(f)) for f in policy.findings]


def _key(f: Any) -> tuple[Any, ...]:
    """Everything of a finding the lint reads or reports (line numbers are neither), as text (NaN != NaN)."""
    return (f.issue, f.severity, f.title, repr(f.detail), repr((f.location or {}).get("string")))


ODD_DOCUMENTS = [
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}',
    '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],'
    ' "Resource": "arn:aws:s3:::bucket"}}',
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Effect": "Allow", "Action": "iam:*", "Resource": "*"}]}',
    '{"Statement": [{"Effect": "Allow", "Action": "s3:GetObjekt", "Resource": "*"}]}',
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": 5, "Resource": ["*", 1.5]}]}',
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*",'
    ' "Condition": {"StringEquals": {"kms:EncryptionContext:x": "y", "aws:NoSuchKey": true}}}]}',
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*",}]}',
    '{"Version": "2012-10-17", // a comment\n "Statement": []}',
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": NaN}]}',
    '{"Version": "2012-10-17", "Statement": [',
    '[]', '"text"', '{}', '{"Version": null, "Statement": [null, {}]}',
]


@pytest.mark.parametrize("source", ODD_DOCUMENTS)
def test_lint_findings_equal_parliaments_own_parse(source: str) -> None:
    """Same findings as parliament's own parse, or the same error (its message names jsoncfg's line)."""
    from agentfleet.policy.lint import findings

    try:
        want: Any = _via_jsoncfg(source)
    except Exception as exc:  # noqa: BLE001
        want = f"{type(exc).__name__}: {exc}"
    try:
        got: Any = [_key(f) for f in findings(source)]
    except Exception as exc:  # noqa: BLE001
        got = f"{type(exc).__name__}: {exc}"
    assert got == want


def test_lint_findings_equal_parliaments_own_parse_on_every_document_the_program_declares() -> None:
    import json

    from agentfleet.policy.base import Resource
    from agentfleet.policy.lint import LINTED_TYPES, _documents, findings
    from agentfleet.runner.mockrun import run_program
    from tests.conftest import PROJECT

    sources = set()
    for rec in run_program("prod", root=PROJECT).resources:
        if rec.type not in LINTED_TYPES:
            continue
        for _path, parsed, raw in _documents(Resource(rec.type, rec.name, rec.urn, rec.props)):
            if isinstance(parsed, dict):
                sources.add(raw if raw is not None and raw.strip().startswith("{") else json.dumps(parsed))
    assert len(sources) > 20
    for source in sorted(sources):
        assert [_key(f) for f in findings(source)] == _via_jsoncfg(source), source
