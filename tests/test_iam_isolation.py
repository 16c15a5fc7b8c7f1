"""IAM isolation, proven by evaluation: every agent policy against every secret ARN of the fleet.

The generated documents (the plan contract) are evaluated with AWS's wildcard semantics by
tests/iam_eval.py, whose own matcher is unit-tested first: a broken matcher must not be able to
make a leaky policy look tight.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from typing import Any

import pytest

from agentfleet.core import naming
from agentfleet.core.model import Fleet
from agentfleet.core.plan import build_plan, secret_readers, secret_resource_policy
from agentfleet.core.settings import StackSettings
from tests.fleetgen import generate_fleet
from tests.iam_eval import Request, allows, condition_holds, evaluate, wildcard_match

GET, DESCRIBE = "secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"
SUFFIX_ALPHABET = string.ascii_letters + string.digits
PAUSED_INDEX = 7  # one paused agent in the generated fleet

# ---- the evaluator itself ----


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("*", "", True),
        ("*", "arn:aws:secretsmanager:us-east-1:1:secret:a/b/c-XYZ123", True),
        ("a*", "a", True),
        ("a*", "abc", True),
        ("a*", "ba", False),
        ("?", "", False),
        ("?", "ab", False),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("a?c", "a/c", True),  # `?` is any one character, `/` included
        ("key-??????", "key-AbC123", True),
        ("key-??????", "key-AbC12", False),
        ("key-??????", "key-AbC1234", False),
        ("bill/*", "billing/x", False),
        ("bill*", "billing/x", True),
        ("a*b*c", "aXbYbZc", True),  # needs backtracking
        ("a*b*c", "aXbYbZ", False),
        ("*a", "bbbba", True),
        ("**", "x", True),
        ("arn[1]", "arn[1]", True),  # brackets are literal (fnmatch would make them a class)
        ("arn[1]", "arn1", False),
        ("a.c", "abc", False),  # so are dots
        ("Abc", "abc", False),
    ],
)
def test_wildcard_match(pattern: str, value: str, expected: bool) -> None:
    assert wildcard_match(pattern, value) is expected


def test_actions_match_case_insensitively_resources_do_not() -> None:
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "SecretsManager:getsecretvalue", "Resource": "arn:x:Secret"}]}
    assert allows(doc, GET, "arn:x:Secret")
    assert not allows(doc, GET, "arn:x:secret")
    assert wildcard_match("s3:Get*", "S3:GETOBJECT", ignore_case=True)


def test_explicit_deny_wins_and_nothing_matching_is_implicit_deny() -> None:
    allow = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    deny = {"Effect": "Deny", "Action": "secretsmanager:*", "Resource": "arn:x:*"}
    doc = {"Version": "2012-10-17", "Statement": [allow, deny]}
    assert evaluate(doc, Request(GET, "arn:x:1")) == "Deny"
    assert evaluate(doc, Request("s3:GetObject", "arn:x:1")) == "Allow"
    assert evaluate({"Version": "2012-10-17", "Statement": [deny]}, Request("s3:GetObject", "arn:x:1")) == "ImplicitDeny"
    # Deny in one document of a set beats Allow in another.
    assert evaluate([{"Version": "2012-10-17", "Statement": [allow]}, {"Version": "2012-10-17", "Statement": [deny]}], Request(GET, "arn:x:1")) == "Deny"


def test_not_action_and_not_resource() -> None:
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:x:secret*"}]}
    assert allows(doc, GET, "arn:x:other")
    assert not allows(doc, "iam:PassRole", "arn:x:other")
    assert not allows(doc, GET, "arn:x:secret-1")


def test_conditions() -> None:
    ctx = {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
    eq = {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}
    assert condition_holds(eq, ctx)
    assert condition_holds(eq, {"KMS:viaservice": ctx["kms:ViaService"]})  # key names ignore case
    assert not condition_holds(eq, {"kms:ViaService": "SECRETSMANAGER.us-east-1.amazonaws.com"})  # values don't
    assert not condition_holds(eq, {})  # missing key fails a positive operator
    neq = {"StringNotEquals": {"aws:PrincipalArn": ["arn:a", "arn:b"]}}
    assert condition_holds(neq, {})  # ... and satisfies a negated one
    assert not condition_holds(neq, {"aws:PrincipalArn": "arn:b"})
    assert condition_holds(neq, {"aws:PrincipalArn": "arn:c"})
    assert condition_holds({"StringEqualsIfExists": {"k": "v"}}, {})
    assert condition_holds({"StringLike": {"k": ["x*", "y?"]}}, {"k": "yz"})
    assert not condition_holds({"StringEquals": {"a": "1", "b": "2"}}, {"a": "1", "b": "3"})  # keys AND
    with pytest.raises(NotImplementedError):
        condition_holds({"NumericLessThan": {"k": "1"}}, {"k": "0"})
    with pytest.raises(NotImplementedError):
        condition_holds({"ForAnyValue:StringEquals": {"k": "1"}}, {"k": "1"})


def test_principals() -> None:
    stmt = {"Effect": "Deny", "Action": GET, "Resource": "*", "Principal": {"AWS": ["arn:aws:iam::111122223333:role/a"]}}
    doc = {"Version": "2012-10-17", "Statement": [stmt]}
    assert evaluate(doc, Request(GET, "r", principal={"AWS": "arn:aws:iam::111122223333:role/a"})) == "Deny"
    assert evaluate(doc, Request(GET, "r", principal={"AWS": "arn:aws:iam::111122223333:role/ab"})) == "ImplicitDeny"
    anyone = {**stmt, "Principal": {"AWS": "*"}}
    assert evaluate({"Version": "2012-10-17", "Statement": [anyone]}, Request(GET, "r", principal={"AWS": "arn:aws:iam::1:role/z"})) == "Deny"
    with pytest.raises(ValueError):
        evaluate({"Version": "2012-10-17", "Statement": [{**stmt, "Effcet": "Deny"}]}, Request(GET, "r"))


# ---- the fleets under test ----


@dataclass(frozen=True)
class Secret:
    agent: str
    credential: str
    arn: str  # concrete: the `??????` of the pattern replaced by a random suffix


@dataclass(frozen=True)
class Case:
    name: str
    fleet: Fleet
    settings: StackSettings
    plan: dict[str, Any]
    secrets: tuple[Secret, ...]

    def policy(self, agent: str) -> dict[str, Any]:
        doc: dict[str, Any] = next(a["iam_policy"] for a in self.plan["agents"] if a["name"] == agent)
        return doc

    def role_arn(self, agent: str) -> str:
        return str(next(a["iam_role_arn"] for a in self.plan["agents"] if a["name"] == agent))


def concrete_secrets(fleet: Fleet, s: StackSettings, rng: random.Random) -> tuple[Secret, ...]:
    out = []
    for a in fleet.agents:
        for c in a.credentials:
            if "aws" not in c.stores:
                continue
            pattern = naming.secret_arn_pattern(s, a.name, c.name)
            assert pattern.endswith("-??????")
            suffix = "".join(rng.choices(SUFFIX_ALPHABET, k=6))
            out.append(Secret(a.name, c.name, pattern[: -len("??????")] + suffix))
    return tuple(out)


@pytest.fixture(scope="module", params=["sample", "lookalike-36"])
def case(request: pytest.FixtureRequest, sample_fleet: Fleet, dev_settings: StackSettings) -> Case:
    fleet = sample_fleet if request.param == "sample" else generate_fleet(36, 3, paused=(PAUSED_INDEX,))
    secrets = concrete_secrets(fleet, dev_settings, random.Random(f"iam-{request.param}"))
    return Case(request.param, fleet, dev_settings, build_plan(fleet, dev_settings), secrets)


def test_generated_fleet_has_lookalikes_and_enough_agents() -> None:
    names = {a.name for a in generate_fleet(36, 3).agents}
    assert len(names) >= 30
    assert {"bill", "billing", "bill-ing", "billing2", "aa", "aaa", "a-a", "ab", "a-b"} <= names


def test_each_agent_reads_exactly_its_own_secrets(case: Case) -> None:
    """The full N x M matrix, for both read actions."""
    assert len(case.secrets) >= 8
    wrong = []
    for agent in case.fleet.agents:
        policy = case.policy(agent.name)
        for secret in case.secrets:
            expected = secret.agent == agent.name and not agent.paused
            for action in (GET, DESCRIBE):
                if allows(policy, action, secret.arn) is not expected:
                    wrong.append((agent.name, action, secret.arn, expected))
    assert not wrong, f"{len(wrong)} wrong decisions, e.g. {wrong[:5]}"


def test_allowed_set_is_exactly_the_agents_own_aws_credentials(case: Case) -> None:
    for agent in case.fleet.agents:
        if agent.paused:
            continue
        allowed = {(s.agent, s.credential) for s in case.secrets if allows(case.policy(agent.name), GET, s.arn)}
        assert allowed == {(agent.name, c.name) for c in agent.credentials if "aws" in c.stores}


def test_near_miss_arns_are_denied(case: Case) -> None:
    """ARNs one edit away from an agent's own secret: no wildcard may reach them."""
    for secret in case.secrets:
        policy = case.policy(secret.agent)
        base, suffix = secret.arn[:-6], secret.arn[-6:]
        s = case.settings
        misses = [
            base + suffix[:5],  # 5-char suffix
            base + suffix + "x",  # 7-char suffix
            base[:-1] + "/x-" + suffix,  # a deeper secret below the name
            base[:-1] + "x-" + suffix,  # name with an extra character
            base.replace(f":secret:{s.secret_prefix}/{s.environment}/", f":secret:{s.secret_prefix}/prod/") + suffix,
            base.replace(f":{s.aws_region}:", ":eu-west-1:") + suffix,
            base.replace(f":{s.aws_account_id}:", ":999999999999:") + suffix,
            base.replace(f"/{secret.agent}/", f"/{secret.agent.upper()}/") + suffix,
        ]
        for arn in misses:
            assert not allows(policy, GET, arn), arn


def test_agents_can_never_write_delete_or_list(case: Case) -> None:
    writes = ["secretsmanager:PutSecretValue", "secretsmanager:UpdateSecret", "secretsmanager:DeleteSecret",
              "secretsmanager:RotateSecret", "secretsmanager:PutResourcePolicy", "secretsmanager:UpdateSecretVersionStage",
              "kms:Encrypt", "kms:CreateGrant", "iam:PassRole"]
    for agent in case.fleet.agents:
        policy = case.policy(agent.name)
        for secret in case.secrets:
            for action in writes:
                assert not allows(policy, action, secret.arn), (agent.name, action)
        assert not allows(policy, "secretsmanager:ListSecrets", "*")
        assert not allows(policy, GET, "*")


def test_kms_decrypt_only_through_secretsmanager_in_the_region(case: Case) -> None:
    key = naming.kms_key_placeholder(case.settings)
    via = {"kms:ViaService": f"secretsmanager.{case.settings.aws_region}.amazonaws.com"}
    for agent in case.fleet.agents:
        policy = case.policy(agent.name)
        own = [s for s in case.secrets if s.agent == agent.name]
        has_aws = bool(own)
        for secret in own:
            ctx = {**via, "kms:EncryptionContext:SecretARN": secret.arn}
            assert allows(policy, "kms:Decrypt", key, ctx) is (has_aws and not agent.paused)
        assert not allows(policy, "kms:Decrypt", key, via)  # no encryption context: not one of its secrets
        assert not allows(policy, "kms:Decrypt", key)  # called directly
        assert not allows(policy, "kms:Decrypt", key, {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"})
        assert not allows(policy, "kms:Decrypt", key, {"kms:ViaService": "s3.us-east-1.amazonaws.com"})
        assert not allows(policy, "kms:Decrypt", key.replace("key/", "key/other-"), via)


def test_kms_decrypt_is_pinned_to_the_agents_own_secrets(case: Case) -> None:
    """Defence in depth, the full N x M matrix: even through Secrets Manager, an agent's role can
    decrypt only data keys whose encryption context names one of its own secrets."""
    key = naming.kms_key_placeholder(case.settings)
    via = {"kms:ViaService": f"secretsmanager.{case.settings.aws_region}.amazonaws.com"}
    wrong = []
    for agent in case.fleet.agents:
        policy = case.policy(agent.name)
        for secret in case.secrets:
            expected = secret.agent == agent.name and not agent.paused
            if allows(policy, "kms:Decrypt", key, {**via, "kms:EncryptionContext:SecretARN": secret.arn}) is not expected:
                wrong.append((agent.name, secret.arn, expected))
    assert not wrong, wrong[:5]


def test_agents_deny_privilege_escalation(case: Case) -> None:
    for agent in case.fleet.agents:
        policy = case.policy(agent.name)
        if not policy["Statement"]:
            continue
        for action in ("iam:PutRolePolicy", "iam:AttachRolePolicy", "secretsmanager:PutResourcePolicy", "secretsmanager:DeleteResourcePolicy"):
            assert evaluate(policy, Request(action, "*")) == "Deny", (agent.name, action)


def test_paused_agent_is_denied_everything(case: Case) -> None:
    paused = [a for a in case.fleet.agents if a.paused]
    assert len(paused) == (0 if case.name == "sample" else 1)
    for agent in paused:
        policy = case.policy(agent.name)
        own = [s for s in case.secrets if s.agent == agent.name]
        assert own
        for s in own:
            assert evaluate(policy, Request(GET, s.arn)) == "Deny"
        assert evaluate(policy, Request("sts:GetCallerIdentity", "*")) == "Deny"


def test_resource_policies_deny_every_other_principal(case: Case) -> None:
    """Each secret's resource policy: the owner, its rotator and admins pass; every other agent is denied."""
    admins = list(case.settings.admin_principals)
    agent_roles = {a.name: case.role_arn(a.name) for a in case.fleet.agents}
    for secret in case.secrets:
        agent = case.fleet.agent(secret.agent)
        cred = next(c for c in agent.credentials if c.name == secret.credential)
        policy = secret_resource_policy(case.settings, agent, cred)
        readers = set(secret_readers(case.settings, agent, cred))
        for who in list(agent_roles.values()) + admins + sorted(readers):
            req = Request(GET, secret.arn, {"aws:PrincipalArn": who}, principal={"AWS": who})
            decision = evaluate(policy, req)
            assert decision == ("ImplicitDeny" if who in readers else "Deny"), (secret.arn, who)
        for name, role in agent_roles.items():
            assert (role in readers) is (name == secret.agent)


def test_identity_and_resource_policies_together(case: Case) -> None:
    """The decision AWS makes for a same-account call: both documents, deny wins."""
    resource = {s.arn: secret_resource_policy(case.settings, case.fleet.agent(s.agent),
                                              next(c for c in case.fleet.agent(s.agent).credentials if c.name == s.credential))
                for s in case.secrets}
    for agent in case.fleet.agents:
        role = case.role_arn(agent.name)
        for s in case.secrets:
            req = Request(GET, s.arn, {"aws:PrincipalArn": role}, principal={"AWS": role})
            decision = evaluate([case.policy(agent.name), resource[s.arn]], req)
            if s.agent == agent.name and not agent.paused:
                assert decision == "Allow"
            else:
                assert decision == "Deny", (agent.name, s.arn)  # explicit, not merely implicit
