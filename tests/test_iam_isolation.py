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
        condition_holds({"DateLessThan": {"k": "1"}}, {"k": "0"})
    with pytest.raises(NotImplementedError):
        condition_holds({"ForAnyValue:StringEqualsIfExists": {"k": "1"}}, {"k": "1"})
    # Numeric, Null and the set qualifiers (sts:GetWebIdentityToken grants use them).
    assert condition_holds({"NumericLessThanEquals": {"k": "300"}}, {"k": "300"})
    assert not condition_holds({"NumericLessThanEquals": {"k": "300"}}, {"k": "301"})
    assert not condition_holds({"NumericLessThanEquals": {"k": "300"}}, {})
    assert condition_holds({"Null": {"k": "false"}}, {"k": "x"}) and not condition_holds({"Null": {"k": "false"}}, {})
    assert condition_holds({"Null": {"k": "true"}}, {}) and not condition_holds({"Null": {"k": "true"}}, {"k": "x"})
    all_of = {"ForAllValues:StringEquals": {"k": ["a", "b"]}}
    assert condition_holds(all_of, {"k": ["a"]}) and condition_holds(all_of, {"k": ["a", "b"]})
    assert not condition_holds(all_of, {"k": ["a", "c"]})
    assert condition_holds(all_of, {})  # AWS: ForAllValues holds when the key is absent (pair it with Null)
    any_of = {"ForAnyValue:StringEquals": {"k": ["a"]}}
    assert condition_holds(any_of, {"k": ["c", "a"]}) and not condition_holds(any_of, {"k": ["c"]})
    assert not condition_holds(any_of, {})


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
        has_aws = any("aws" in c.stores for c in agent.credentials)
        assert allows(policy, "kms:Decrypt", key, via) is (has_aws and not agent.paused)
        assert not allows(policy, "kms:Decrypt", key)  # called directly
        assert not allows(policy, "kms:Decrypt", key, {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"})
        assert not allows(policy, "kms:Decrypt", key, {"kms:ViaService": "s3.us-east-1.amazonaws.com"})
        assert not allows(policy, "kms:Decrypt", key.replace("key/", "key/other-"), via)


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


# ---- network scopes (issue 15): IpAddress in the evaluator, then the matrix from every origin ----


@pytest.mark.parametrize(
    ("cidr", "address", "expected"),
    [
        ("203.0.113.0/24", "203.0.113.0", True),
        ("203.0.113.0/24", "203.0.113.255", True),
        ("203.0.113.0/24", "203.0.114.0", False),
        ("203.0.113.0/24", "203.0.112.255", False),
        ("203.0.113.7/32", "203.0.113.7", True),
        ("203.0.113.7", "203.0.113.7", True),  # a bare address is a /32
        ("203.0.113.7/32", "203.0.113.8", False),
        ("198.18.0.0/15", "198.19.255.1", True),
        ("2001:db8::/32", "2001:db8:ffff::1", True),
        ("2001:db8::/32", "2001:db9::1", False),
        ("0.0.0.0/1", "2001:db8::1", False),  # never across families
    ],
)
def test_ip_address_condition(cidr: str, address: str, expected: bool) -> None:
    assert condition_holds({"IpAddress": {"aws:SourceIp": cidr}}, {"aws:SourceIp": address}) is expected
    assert condition_holds({"NotIpAddress": {"aws:SourceIp": cidr}}, {"aws:SourceIp": address}) is not expected


def test_ip_address_missing_key_and_lists_and_typos() -> None:
    assert not condition_holds({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {})
    assert condition_holds({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {})  # no address: "not in" holds
    assert condition_holds({"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}, {})
    two = {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.0/24"]}}
    assert condition_holds(two, {"aws:SourceIp": "192.0.2.9"})  # values OR
    assert not condition_holds({"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.0/24"]}}, {"aws:SourceIp": "10.1.1.1"})
    with pytest.raises(ValueError):
        condition_holds({"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}}, {"aws:SourceIp": "10.0.0.1"})
    with pytest.raises(ValueError):
        condition_holds({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "vpce-1"})
    # StringEquals on endpoint / VPC ids: exact, case-sensitive values.
    assert condition_holds({"StringEquals": {"aws:SourceVpce": "vpce-0abc"}}, {"aws:sourcevpce": "vpce-0abc"})
    assert not condition_holds({"StringEquals": {"aws:SourceVpc": "vpc-0abc"}}, {"aws:SourceVpc": "vpc-0abcd"})


SCOPE_KINDS: tuple[tuple[str, ...], ...] = (("vpce",), ("vpc",), ("cidr",), ("vpce", "cidr"), ())
STORE_CYCLE: tuple[list[str], ...] = (["aws"], ["ssm"], ["aws", "ssm"], ["aws", "vault", "ssm"])
INTERNET = {"aws:SourceIp": "192.0.2.10"}
GET_PARAM, GET_PARAMS = "ssm:GetParameter", "ssm:GetParameters"


def _vpce(i: int) -> str:
    return f"vpce-{i:017x}"


def _vpc(i: int) -> str:
    return f"vpc-{i + 0x100:017x}"


def _cidr(i: int) -> str:
    return f"198.18.{i}.0/24"


@dataclass(frozen=True)
class NetCase:
    fleet: Fleet
    settings: StackSettings
    plan: dict[str, Any]
    kinds: dict[str, tuple[str, ...]]
    index: dict[str, int]

    def policy(self, agent: str) -> dict[str, Any]:
        doc: dict[str, Any] = next(a["iam_policy"] for a in self.plan["agents"] if a["name"] == agent)
        return doc


@pytest.fixture(scope="module")
def net(dev_settings: StackSettings) -> NetCase:
    from agentfleet.core.loader import build_fleet
    from tests.fleetgen import lookalike_names

    names = lookalike_names(12)
    agents, kinds = [], {}
    for i, name in enumerate(names):
        kind = SCOPE_KINDS[i % len(SCOPE_KINDS)]
        kinds[name] = kind
        network = {k: v for k, v in (("vpc_endpoints", [_vpce(i)] if "vpce" in kind else []),
                                     ("vpcs", [_vpc(i)] if "vpc" in kind else []),
                                     ("source_cidrs", [_cidr(i)] if "cidr" in kind else [])) if v}
        creds = [{"name": c, "service": "svc", "type": "api_key", "stores": STORE_CYCLE[(i + j) % len(STORE_CYCLE)]}
                 for j, c in enumerate(("key", "key-2"))]
        agent: dict[str, Any] = {"name": name, "runtime": {"service": "ecs-tasks.amazonaws.com"}, "credentials": creds}
        if network:
            agent["network"] = network
        if i == 3:
            agent["paused"] = True
        agents.append(agent)
    fleet = build_fleet({"version": 1, "agents": agents}, "<net-matrix>")
    return NetCase(fleet, dev_settings, build_plan(fleet, dev_settings), kinds, {n: i for i, n in enumerate(names)})


def _origins(n: int) -> dict[str, dict[str, str]]:
    """Every place a request may come from: each agent's endpoint (in its VPC), another endpoint
    in its VPC, a host in its public range, and the open internet."""
    out: dict[str, dict[str, str]] = {"internet": INTERNET}
    for j in range(n):
        out[f"endpoint-{j}"] = {"aws:SourceVpce": _vpce(j), "aws:SourceVpc": _vpc(j)}
        out[f"vpc-{j}"] = {"aws:SourceVpce": "vpce-fffffffffffffffff", "aws:SourceVpc": _vpc(j)}
        out[f"range-{j}"] = {"aws:SourceIp": f"198.18.{j}.77"}
    return out


def _inside(kind: tuple[str, ...], i: int, origin: str) -> bool:
    """The test's own reading of the scope (independent of the builder): may agent `i` read from `origin`?"""
    if not kind:
        return True
    where, _, j = origin.partition("-")
    if not j or int(j) != i:
        return False
    return (where == "endpoint" and ("vpce" in kind or "vpc" in kind)) or (where == "vpc" and "vpc" in kind) or (
        where == "range" and "cidr" in kind)


def _stored(net: NetCase) -> list[tuple[str, str, str, str]]:
    """(agent, credential, store, concrete ARN) of every AWS secret and SSM parameter."""
    s, rng, out = net.settings, random.Random("net"), []
    for a in net.fleet.agents:
        for c in a.credentials:
            if "aws" in c.stores:
                out.append((a.name, c.name, "aws", naming.secret_arn_pattern(s, a.name, c.name)[:-6] + "".join(rng.choices(SUFFIX_ALPHABET, k=6))))
            if "ssm" in c.stores:
                out.append((a.name, c.name, "ssm", naming.ssm_parameter_arn(s, a.name, c.name)))
    return out


def test_network_matrix_every_agent_every_secret_and_parameter_every_origin(net: NetCase) -> None:
    """Allow exactly: own credential, not paused, from inside the agent's own network. An agent's own
    read from outside is an explicit Deny (not merely unallowed), in the identity policy and, for
    Secrets Manager, in the secret's resource policy on its own."""
    stored = _stored(net)
    assert {st for _, _, st, _ in stored} == {"aws", "ssm"} and len(stored) >= 30
    origins = _origins(len(net.fleet.agents))
    resource = {}
    for agent, cred, store, arn in stored:
        if store == "aws":
            a = net.fleet.agent(agent)
            resource[arn] = secret_resource_policy(net.settings, a, next(c for c in a.credentials if c.name == cred))
    wrong: list[tuple[str, str, str, str, str]] = []
    checked = allowed = 0
    for a in net.fleet.agents:
        i, kind, role = net.index[a.name], net.kinds[a.name], naming.role_arn(net.settings, naming.role_name(net.settings, a.name))
        for owner, _, store, arn in stored:
            actions = (GET, DESCRIBE) if store == "aws" else (GET_PARAM, GET_PARAMS)
            for oname, origin in origins.items():
                ctx = {**origin, "aws:PrincipalArn": role, "aws:ViaAWSService": "false"}
                docs = [net.policy(a.name)] + ([resource[arn]] if arn in resource else [])
                expected_allow = owner == a.name and not a.paused and _inside(kind, i, oname)
                for action in actions:
                    decision = evaluate(docs, Request(action, arn, ctx, principal={"AWS": role}))
                    checked += 1
                    allowed += decision == "Allow"
                    if (decision == "Allow") is not expected_allow:
                        wrong.append((a.name, action, arn, oname, decision))
                    elif owner == a.name and not expected_allow and decision != "Deny":
                        wrong.append((a.name, action, arn, oname, f"{decision}, wanted an explicit Deny"))
                if arn in resource and owner == a.name and kind and not _inside(kind, i, oname):
                    alone = evaluate(resource[arn], Request(GET, arn, ctx, principal={"AWS": role}))
                    if alone != "Deny":
                        wrong.append((a.name, "resource policy alone", arn, oname, alone))
    assert checked > 5000 and allowed > 0
    assert not wrong, f"{len(wrong)} wrong decisions, e.g. {wrong[:5]}"


def test_scoped_secret_policy_binds_only_the_agent_role(net: NetCase) -> None:
    """The rotator and admins keep their own network: the network statement names the agent role only."""
    s = net.settings
    for a in net.fleet.agents:
        if not net.kinds[a.name]:
            continue
        for c in a.credentials:
            if "aws" not in c.stores:
                continue
            doc = secret_resource_policy(s, a, c)
            arn = naming.secret_arn_pattern(s, a.name, c.name)[:-6] + "AbC123"
            for other in secret_readers(s, a, c):
                if other == naming.role_arn(s, naming.role_name(s, a.name)):
                    continue
                req = Request(GET, arn, {**INTERNET, "aws:PrincipalArn": other, "aws:ViaAWSService": "false"}, principal={"AWS": other})
                assert evaluate(doc, req) == "ImplicitDeny", (a.name, other)


def test_kms_through_the_service_is_exempt_direct_decrypt_from_outside_is_denied(net: NetCase) -> None:
    """Secrets Manager / Parameter Store call KMS on the agent's behalf with no source of the agent
    (aws:ViaAWSService true): the network deny must not break that, and must catch a direct call."""
    s = net.settings
    key = naming.kms_key_placeholder(s)
    for a in net.fleet.agents:
        if a.paused:
            continue
        policy = net.policy(a.name)
        has_aws = any("aws" in c.stores for c in a.credentials)
        own_params = [naming.ssm_parameter_arn(s, a.name, c.name) for c in a.credentials if "ssm" in c.stores]
        via_sm = {"kms:ViaService": f"secretsmanager.{s.aws_region}.amazonaws.com", "aws:ViaAWSService": "true"}
        assert (evaluate(policy, Request("kms:Decrypt", key, via_sm)) == "Allow") is has_aws, a.name
        for param in own_params:
            via_ssm = {"kms:ViaService": f"ssm.{s.aws_region}.amazonaws.com", "aws:ViaAWSService": "true",
                       "kms:EncryptionContext:PARAMETER_ARN": param}
            assert evaluate(policy, Request("kms:Decrypt", key, via_ssm)) == "Allow", (a.name, param)
            # The same call from outside the agent's network, not through the service: denied.
            direct = {**via_ssm, **INTERNET, "aws:ViaAWSService": "false"}
            assert evaluate(policy, Request("kms:Decrypt", key, direct)) == ("Deny" if net.kinds[a.name] else "Allow")
        # Another agent's parameter as encryption context: never.
        for b in net.fleet.agents:
            for c in b.credentials:
                if b.name != a.name and "ssm" in c.stores:
                    ctx = {"kms:ViaService": f"ssm.{s.aws_region}.amazonaws.com", "aws:ViaAWSService": "true",
                           "kms:EncryptionContext:PARAMETER_ARN": naming.ssm_parameter_arn(s, b.name, c.name)}
                    assert evaluate(policy, Request("kms:Decrypt", key, ctx)) == "ImplicitDeny"


def test_parameters_exact_arns_no_path_reads_no_writes(net: NetCase) -> None:
    s = net.settings
    for a in net.fleet.agents:
        policy = net.policy(a.name)
        folder = naming.ssm_parameter_arn(s, a.name, "x")[: -len("/x")]
        for action in ("ssm:GetParametersByPath", "ssm:PutParameter", "ssm:DeleteParameter", "ssm:LabelParameterVersion",
                       "ssm:DescribeParameters", "ssm:GetParameterHistory"):
            assert not allows(policy, action, folder), (a.name, action)
            assert not allows(policy, action, "*"), (a.name, action)
        for c in a.credentials:
            if "ssm" not in c.stores or a.paused:
                continue
            arn = naming.ssm_parameter_arn(s, a.name, c.name)
            inside = {"aws:SourceVpce": _vpce(net.index[a.name]), "aws:SourceVpc": _vpc(net.index[a.name]),
                      "aws:SourceIp": f"198.18.{net.index[a.name]}.1"}
            assert allows(policy, GET_PARAM, arn, inside)
            own = {naming.ssm_parameter_arn(s, a.name, o.name) for o in a.credentials if "ssm" in o.stores}
            misses = {arn + "-2", arn + "/x", arn[:-1], arn.replace(f"/{s.environment}/", "/prod/"), arn.replace("/", "//", 1)} - own
            assert len(misses) >= 4
            for miss in misses:
                assert not allows(policy, GET_PARAM, miss, inside), miss
