"""The pack through pulumi-policy's own gRPC servicer, with requests shaped as the engine sends them.

No Pulumi CLI here, but the servicer `PolicyPack(...)` would serve is built from the same policy
list `policy/__main__.py` passes, and fed protobuf requests: properties as a `Struct` holding the
engine's unknown sentinels, per-policy config via `Configure`, property dependencies on stack
resources. This proves the pack loads (policy info, config schemas) and that its policies behave
under the engine's deserialisation, not just under the hand-built args of the other tests.
"""

from __future__ import annotations

from typing import Any

import pytest
from pulumi.runtime.proto import analyzer_pb2 as proto
from pulumi_policy import EnforcementLevel
from pulumi_policy.policy import _PolicyAnalyzerServicer
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from agentfleet.core import iam_documents as iam
from agentfleet.core import naming
from agentfleet.core.model import Fleet
from agentfleet.core.settings import StackSettings
from agentfleet.policy.layout import policy_config
from agentfleet.policy.registry import ALL_POLICIES, PACK_NAME


def struct(value: dict[str, Any]) -> dict[str, Any]:
    """protobuf accepts a dict for a `google.protobuf.Struct` field."""
    return value


@pytest.fixture()
def servicer(sample_fleet: Fleet, dev_settings: StackSettings) -> Any:
    sv: Any = _PolicyAnalyzerServicer(PACK_NAME, "0.1.0", list(ALL_POLICIES), EnforcementLevel.ADVISORY)
    layout_config = policy_config(dev_settings, sample_fleet.classifications)
    sv.Configure(proto.ConfigureAnalyzerRequest(policyConfig={
        p.name: proto.PolicyConfig(enforcementLevel=proto.MANDATORY if p.enforcement_level == EnforcementLevel.MANDATORY else proto.ADVISORY,
                                   properties=struct(layout_config))
        for p in ALL_POLICIES
    }), None)
    return sv


def test_pack_info_lists_every_policy_with_its_level_and_schema(servicer: Any) -> None:
    info = servicer.GetAnalyzerInfo(None, None)
    assert info.name == PACK_NAME
    by_name = {p.name: p for p in info.policies}
    assert set(by_name) == {p.name for p in ALL_POLICIES}
    assert by_name["required-tags"].enforcementLevel == proto.ADVISORY
    assert by_name["no-wildcard-secret-read"].enforcementLevel == proto.MANDATORY
    assert "awsAccountId" in by_name["one-reader-per-secret"].configSchema.properties
    assert "failSeverities" in by_name["iam-policy-lint"].configSchema.properties


def analyze(sv: Any, type_: str, name: str, props: dict[str, Any]) -> list[Any]:
    req = proto.AnalyzeRequest(type=type_, name=name, urn=f"urn:pulumi:dev::agentfleet::{type_}::{name}", properties=struct(props))
    return list(sv.Analyze(req, None).diagnostics)


def test_wildcard_grant_is_a_mandatory_diagnostic(servicer: Any) -> None:
    bad = iam.Document((iam.secret_read("All", ["*"]),)).to_json()
    diags = analyze(servicer, "aws:iam/rolePolicy:RolePolicy", "rogue", {"role": "agents-dev-crm", "policy": bad})
    assert [(d.policyName, d.enforcementLevel) for d in diags] == [("no-wildcard-secret-read", proto.MANDATORY)]
    assert 'RolePolicy "rogue"' in diags[0].message


def test_unknown_values_in_preview_give_no_diagnostic(servicer: Any) -> None:
    for type_, props in [
        ("aws:iam/rolePolicy:RolePolicy", {"role": UNKNOWN_STRING_VALUE, "policy": UNKNOWN_STRING_VALUE}),
        ("aws:iam/role:Role", {"name": "r", "assumeRolePolicy": UNKNOWN_STRING_VALUE, "tags": UNKNOWN_STRING_VALUE}),
        ("aws:secretsmanager/secret:Secret", {"name": UNKNOWN_STRING_VALUE, "kmsKeyId": UNKNOWN_STRING_VALUE, "tags": UNKNOWN_STRING_VALUE}),
        ("vault:index/policy:Policy", {"name": UNKNOWN_STRING_VALUE, "policy": UNKNOWN_STRING_VALUE}),
    ]:
        assert analyze(servicer, type_, "x", props) == [], type_


def resource(type_: str, name: str, props: dict[str, Any], deps: dict[str, list[str]] | None = None) -> proto.AnalyzerResource:
    urn = f"urn:pulumi:dev::agentfleet::{type_}::{name}"
    return proto.AnalyzerResource(
        type=type_, name=name, urn=urn, properties=struct(props),
        dependencies=sorted({u for us in (deps or {}).values() for u in us}),
        propertyDependencies={k: proto.AnalyzerPropertyDependencies(urns=v) for k, v in (deps or {}).items()},
    )


def test_stack_policies_use_property_dependencies(servicer: Any, dev_settings: StackSettings) -> None:
    tags = naming.tags(dev_settings, agent="research", owner="team-research", classification="internal")
    sec = resource("aws:secretsmanager/secret:Secret", "research/openai/secret",
                   {"name": naming.secret_name(dev_settings, "research", "openai"), "kmsKeyId": "k", "tags": tags})
    rnd = resource("random:index/randomPassword:RandomPassword", "rnd", {"length": 48, "result": "generated-value-0123"})
    derived = resource("aws:secretsmanager/secretVersion:SecretVersion", "derived", {"secretId": "s", "secretString": "generated-value-0123"},
                       {"secretId": [sec.urn], "secretString": [rnd.urn]})
    # Depending on the generator (e.g. `.apply` on its result) does not make a literal derived.
    literal = resource("aws:secretsmanager/secretVersion:SecretVersion", "literal", {"secretId": "s", "secretString": "y"},
                       {"secretId": [sec.urn], "secretString": [rnd.urn]})
    diags = servicer.AnalyzeStack(proto.AnalyzeStackRequest(resources=[sec, rnd, derived, literal]), None).diagnostics
    literal_diags = [d for d in diags if d.policyName == "no-literal-secret-values"]
    assert [d.urn for d in literal_diags] == [literal.urn]
    # The lone secret has no reader, no resource policy and no rotation: each policy says so, on the secret.
    assert {d.policyName for d in diags if d.urn == sec.urn} == {
        "one-reader-per-secret", "secret-resource-policy-denies-others", "secret-rotation-within-class",
    }
