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


# ---- the whole program through the servicer with NO policy config (a bare `--policy-pack policy`) ----


def _engine_resources(run: Any) -> tuple[list[proto.AnalyzerResource], list[proto.AnalyzeRequest]]:
    """The run's resources as the engine sends them: stack resources for AnalyzeStack, and one
    AnalyzeRequest per resource with its provider's properties."""
    import json as _json

    def plain(value: Any) -> Any:
        return _json.loads(_json.dumps(value, default=str))

    by_urn = {r.urn: r for r in run.resources}

    def provider_of(r: Any) -> proto.AnalyzerProviderResource | None:
        ref = (r.provider or "").rsplit("::", 1)[0]
        p = by_urn.get(ref)
        return None if p is None else proto.AnalyzerProviderResource(type=p.type, name=p.name, urn=p.urn, properties=plain(p.props))

    stack, single = [], []
    for r in run.resources:
        # The engine's state: inputs plus what the provider returned (components: registered outputs).
        props = plain({**r.props, **r.outputs, **({"id": r.id} if r.custom and r.id else {})})
        stack.append(proto.AnalyzerResource(type=r.type, name=r.name, urn=r.urn, properties=props, provider=provider_of(r),
                                            parent=r.parent or "", dependencies=list(r.dependencies)))
        single.append(proto.AnalyzeRequest(type=r.type, name=r.name, urn=r.urn, properties=props, provider=provider_of(r)))
    return stack, single


def _mandatory_without_config(run: Any) -> list[Any]:
    sv: Any = _PolicyAnalyzerServicer(PACK_NAME, "0.1.0", list(ALL_POLICIES), EnforcementLevel.ADVISORY)
    stack, single = _engine_resources(run)
    diags = list(sv.AnalyzeStack(proto.AnalyzeStackRequest(resources=stack), None).diagnostics)
    for req in single:
        diags += list(sv.Analyze(req, None).diagnostics)
    return [d for d in diags if d.enforcementLevel == proto.MANDATORY]


def test_the_program_passes_the_pack_with_no_config_and_a_parented_bypass_fails(root: Any) -> None:
    """Engine parity (issue 11, 5): with no policy config the pack reads the stack's settings from
    the fleet component and the account from the provider, so the unmodified program passes and a
    raw Lambda running as a rotation role under `parent=fleet` still fails."""
    import runpy

    from agentfleet.runner import mockrun
    from tests.conftest import REPO
    from tests.redteam.variants import PARENTED_VARIANTS, PRELUDE

    def program(code: str | None) -> Any:
        def run() -> None:
            scope = runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")
            if code:
                exec(compile(PRELUDE + code, "<appended>", "exec"), scope)  # noqa: S102 - our corpus
        return run

    clean = mockrun.run_program("dev", root=root, program=program(None))
    assert [(d.policyName, d.message) for d in _mandatory_without_config(clean)] == []
    variant = next(v for v in PARENTED_VARIANTS if v.name == "under-fleet-lambda-as-rotation-role")
    bad = _mandatory_without_config(mockrun.run_program("dev", root=root, program=program(variant.code)))
    assert {d.policyName for d in bad} == {"closed-world"}
