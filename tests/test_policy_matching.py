"""The pack's building blocks: AWS wildcard matching, ARN scopes, unknown-safe props, config."""

from __future__ import annotations

import pytest
from pulumi_policy.proxy import UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE, unknown_checking_proxy

from agentfleet.core.model import Fleet
from agentfleet.core.settings import StackSettings
from agentfleet.policy.arnmatch import AgentScope, action_match, secret_scope, wildcard_match
from agentfleet.policy.layout import layout, policy_config
from agentfleet.policy.values import UNKNOWN, BadDocument, document, get, plain


@pytest.mark.parametrize("pattern,value,expected", [
    ("*", "anything:at/all", True),
    ("a*", "a", True),
    ("a?c", "abc", True),
    ("a?c", "ac", False),
    ("agents/dev/bill*", "agents/dev/billing/stripe", True),   # `*` crosses `/`
    ("arn:*:x", "arn:a:b:x", True),                             # and `:`
    ("agents/dev/bill/*", "agents/dev/billing/stripe", False),
    ("name-??????", "name-Ab12Cd", True),
    ("name-??????", "name-Ab12C", False),
    ("a[b]c", "a[b]c", True),                                   # brackets are literal in IAM
    ("a[b]c", "abc", False),
    ("ABC", "abc", False),                                      # ARNs are case-sensitive
])
def test_wildcard_match(pattern: str, value: str, expected: bool) -> None:
    assert wildcard_match(pattern, value) is expected


def test_actions_match_case_insensitively() -> None:
    assert action_match("SecretsManager:get*", "secretsmanager:GetSecretValue")
    assert not action_match("secretsmanager:Put*", "secretsmanager:GetSecretValue")


@pytest.mark.parametrize("pattern,scope", [
    ("arn:aws:secretsmanager:us-east-1:1:secret:agents/dev/crm/openai-??????", AgentScope("agents", "dev", "crm")),
    ("arn:aws:secretsmanager:*:*:secret:agents/dev/crm/*", AgentScope("agents", "dev", "crm")),
    ("arn:aws:secretsmanager:us-east-1:1:secret:agents/dev/crm*", None),
    ("arn:aws:secretsmanager:us-east-1:1:secret:agents/dev/*/x", None),
    ("arn:aws:secretsmanager:us-east-1:1:secret:*agents/dev/crm/x", None),
    ("arn:aws:secretsmanager:us-east-1:secret:agents/dev/crm/x", None),       # a field missing: `*` could span
    ("arn:aws:s3:::agents/dev/crm/x", None),
    ("*", None),
])
def test_secret_scope(pattern: str, scope: AgentScope | None) -> None:
    assert secret_scope(pattern) == scope


def test_plain_turns_engine_unknowns_into_unknown() -> None:
    props = unknown_checking_proxy({"a": UNKNOWN_STRING_VALUE, "b": [1, UNKNOWN_NUMBER_VALUE], "c": {"d": "x"}})
    assert plain(props) == {"a": UNKNOWN, "b": [1, UNKNOWN], "c": {"d": "x"}}
    p = plain(props)
    assert get(p, "c", "d") == "x" and get(p, "a") is UNKNOWN and get(p, "a", "deeper") is UNKNOWN
    assert get(p, "missing", "x") is None and get(p, "b", 5) is None


def test_documents() -> None:
    assert document('{"Statement": []}') == {"Statement": []}
    assert isinstance(document("{bad"), BadDocument) and isinstance(document("[1]"), BadDocument)
    assert document(UNKNOWN) is UNKNOWN and document(None) is None
    assert document({"Statement": [UNKNOWN]}) is UNKNOWN


def test_config_round_trips_to_the_stack_settings(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    lay = layout(policy_config(dev_settings, sample_fleet.classifications))
    assert lay.problem is None and lay.settings is not None
    for field in ("environment", "aws_region", "aws_account_id", "secret_prefix", "vault_mount", "admin_principals", "rotation_isolation"):
        assert getattr(lay.settings, field) == getattr(dev_settings, field), field
    assert dict(lay.classifications) == sample_fleet.classifications


def test_incomplete_or_invalid_config() -> None:
    assert layout({"environment": "dev"}).settings is None  # no region/account: structural checks only
    bad = layout({"awsRegion": "us-east-1", "awsAccountId": "123", "classifications": {"x": "soon"}})
    assert bad.settings is None and bad.problem and "awsAccountId" in bad.problem and "classifications.x" in bad.problem


def test_wildcard_match_agrees_with_the_isolation_evaluator() -> None:
    """Cross-check against the independent matcher of tests/iam_eval.py on generated cases."""
    import itertools
    import random

    from tests.iam_eval import wildcard_match as reference

    rng = random.Random(5)
    alphabet = "ab/:-"
    values = ["".join(p) for n in range(5) for p in itertools.product("ab/", repeat=n)]
    for _ in range(400):
        pattern = "".join(rng.choice(alphabet + "*?") for _ in range(rng.randint(0, 6)))
        for value in rng.sample(values, 20):
            assert wildcard_match(pattern, value) == reference(pattern, value), (pattern, value)


def test_invalid_config_is_reported_by_stack_policies() -> None:
    from agentfleet.policy.rotation import secret_rotation_within_class
    from tests.test_policy_support import Stack

    bad = {"awsRegion": "us-east-1", "awsAccountId": "not-an-account"}
    [(msg, urn)] = Stack().validate(secret_rotation_within_class, bad)
    assert msg.startswith("policy config:") and "awsAccountId" in msg and urn is None
