"""Every runtime's trust policy (parsed documents), the IAM evaluator matrix over every caller,
the keyless credential's identity-token grant, validation, and trust in words."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentfleet.core import iam_documents as iam
from agentfleet.core import naming
from agentfleet.core.loader import FleetError, build_fleet
from agentfleet.core.plan import (
    LoginSettingMissing,
    agent_iam_policy,
    build_plan,
    needs_outbound_federation,
    oidc_providers,
    trust_policy,
)
from agentfleet.core.settings import StackSettings
from agentfleet.core.vault_logins import vault_login
from agentfleet.review.audit import audit_rows
from tests.iam_eval import Request, evaluate
from tests.runtime_fleet import ACCOUNT, CLUSTER, FN_ARN, IRSA_ISSUER, PAUSED, RUNTIMES, runtime_doc, runtime_fleet

OTHER_ACCOUNT = "210987654321"


def settings(**over: Any) -> StackSettings:
    return StackSettings.model_validate({"stack": "dev", "environment": "dev", "aws_region": "us-east-1",
                                         "aws_account_id": ACCOUNT, **over})


def statement(doc: dict[str, Any]) -> dict[str, Any]:
    parsed = json.loads(iam.to_json(doc))  # what IAM receives
    assert parsed["Version"] == "2012-10-17" and len(parsed["Statement"]) == 1
    st: dict[str, Any] = parsed["Statement"][0]
    return st


def trusts() -> dict[str, dict[str, Any]]:
    s, fleet = settings(), runtime_fleet()
    return {a.name: trust_policy(s, a) for a in fleet.agents}


# ---- shapes ----


def test_eks_pod_identity_trust_pins_cluster_namespace_and_service_account() -> None:
    st = statement(trusts()["pods"])
    assert st["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert sorted(st["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    assert st["Condition"] == {"StringEquals": {
        "aws:SourceAccount": ACCOUNT,
        "aws:RequestTag/eks-cluster-name": CLUSTER,
        "aws:RequestTag/kubernetes-namespace": "agents",
        "aws:RequestTag/kubernetes-service-account": "pods",
    }}


def test_irsa_trust_is_the_clusters_provider_with_exact_sub_and_aud() -> None:
    st = statement(trusts()["irsa"])
    assert st["Principal"] == {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{IRSA_ISSUER}"}
    assert st["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert st["Condition"] == {"StringEquals": {
        f"{IRSA_ISSUER}:sub": "system:serviceaccount:agents:irsa",
        f"{IRSA_ISSUER}:aud": "sts.amazonaws.com",
    }}


def test_service_trusts_carry_source_account_and_source_arn_when_known() -> None:
    fn, task = statement(trusts()["fn"]), statement(trusts()["task"])
    assert fn["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnLike": {"aws:SourceArn": FN_ARN}}
    assert task["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    assert task["Action"] == "sts:AssumeRole"


def test_github_trust_names_the_existing_provider_from_settings() -> None:
    fleet = runtime_fleet()
    ci = fleet.agent("ci")
    default = statement(trust_policy(settings(), ci))
    assert default["Principal"] == {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"}
    assert default["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] == "repo:example-org/ci:ref:refs/heads/main"
    # The stack creates the GitHub and IRSA providers it needs, unless settings name existing ones.
    assert [p.issuer_host for p in oidc_providers(settings(), fleet)] == sorted([IRSA_ISSUER, "token.actions.githubusercontent.com"])
    existing = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
    s = settings(github_oidc_provider_arn=existing, irsa_oidc_provider_arns={IRSA_ISSUER: f"arn:aws:iam::{ACCOUNT}:oidc-provider/{IRSA_ISSUER}"})
    assert oidc_providers(s, fleet) == []
    with pytest.raises(ValueError):
        settings(irsa_oidc_provider_arns={IRSA_ISSUER: f"arn:aws:iam::{ACCOUNT}:oidc-provider/other.example.com"})
    with pytest.raises(ValueError, match="this stack's account"):
        settings(github_oidc_provider_arn="arn:aws:iam::210987654321:oidc-provider/token.actions.githubusercontent.com")


def test_diff_reports_a_runtime_change_in_words() -> None:
    from agentfleet.review.diff import diff_plans

    old_fleet = runtime_fleet()
    doc = runtime_doc()
    doc["agents"][0]["runtime"]["eks_pod_identity"]["namespace"] = "default"
    new_fleet = build_fleet(doc)
    d = diff_plans(build_plan(old_fleet, settings()), build_plan(new_fleet, settings()),
                   old_classes=old_fleet.classifications, new_classes=new_fleet.classifications,
                   old_source="a", new_source="b")
    (change,) = [c for c in d.changes if c.kind == "trust-changed"]
    assert change.agent == "pods" and change.escalation
    assert "namespace default" in str(change.after) and "namespace agents" in str(change.before)
    assert not [c for c in d.changes if c.kind == "plan-changed"]  # trusted_by is explained by the trust change


# ---- the evaluator matrix: every trust against every caller ----


def callers(account: str = ACCOUNT) -> dict[str, list[Request]]:
    """The genuine caller of each agent's runtime (several requests where AWS makes several)."""
    out: dict[str, list[Request]] = {}
    for name, rt in RUNTIMES.items():
        role = f"arn:aws:iam::{ACCOUNT}:role/agents-dev-{name}"
        if "eks_pod_identity" in rt:
            e = rt["eks_pod_identity"]
            ctx = {"aws:SourceAccount": account, "aws:RequestTag/eks-cluster-name": e["cluster"],
                   "aws:RequestTag/kubernetes-namespace": e["namespace"],
                   "aws:RequestTag/kubernetes-service-account": e["service_account"],
                   "aws:RequestTag/kubernetes-pod-name": "pod-1"}
            out[name] = [Request(a, role, ctx, {"Service": "pods.eks.amazonaws.com"}) for a in ("sts:AssumeRole", "sts:TagSession")]
        elif "irsa" in rt:
            i = rt["irsa"]
            ctx = {f"{i['oidc_issuer']}:sub": f"system:serviceaccount:{i['namespace']}:{i['service_account']}",
                   f"{i['oidc_issuer']}:aud": "sts.amazonaws.com"}
            fed = f"arn:aws:iam::{account}:oidc-provider/{i['oidc_issuer']}"
            out[name] = [Request("sts:AssumeRoleWithWebIdentity", role, ctx, {"Federated": fed})]
        elif "github_oidc" in rt:
            g, host = rt["github_oidc"], "token.actions.githubusercontent.com"
            sel = f"ref:{g['ref']}" if "ref" in g else f"environment:{g['environment']}"
            ctx = {f"{host}:sub": f"repo:{g['repository']}:{sel}", f"{host}:aud": "sts.amazonaws.com"}
            out[name] = [Request("sts:AssumeRoleWithWebIdentity", role, ctx, {"Federated": f"arn:aws:iam::{account}:oidc-provider/{host}"})]
        elif "service" in rt:
            ctx = {"aws:SourceAccount": account, "aws:SourceArn": rt.get("source_arn", f"arn:aws:ecs:us-east-1:{account}:task/x")}
            out[name] = [Request("sts:AssumeRole", role, ctx, {"Service": rt["service"]})]
        else:
            out[name] = [Request("sts:AssumeRole", role, {}, {"AWS": rt["role_arns"][0]})]
    return out


def test_each_role_is_assumable_by_exactly_its_own_runtime() -> None:
    """N x N: every trust policy against every agent's genuine caller."""
    docs, who = trusts(), callers()
    wrong = []
    for agent, doc in docs.items():
        for caller, reqs in who.items():
            for req in reqs:
                got = evaluate(doc, req)
                expected = "Allow" if caller == agent else "ImplicitDeny"
                if got != expected:
                    wrong.append((agent, caller, req.action, got))
    assert len(docs) == len(RUNTIMES) >= 9
    assert not wrong


def test_near_miss_callers_are_refused() -> None:
    docs, mine = trusts(), callers()
    # The same identities from another account (a confused deputy, another account's cluster or provider).
    for agent, reqs in callers(OTHER_ACCOUNT).items():
        if "role_arns" in RUNTIMES[agent]:
            continue  # an exact role ARN names its account already
        for req in reqs:
            assert evaluate(docs[agent], req) == "ImplicitDeny", (agent, req)
    pods = mine["pods"][0]
    for key, value in (("aws:RequestTag/eks-cluster-name", "agents-staging"),
                       ("aws:RequestTag/kubernetes-namespace", "default"),
                       ("aws:RequestTag/kubernetes-service-account", "default")):
        near = Request(pods.action, pods.resource, {**pods.context, key: value}, pods.principal)
        assert evaluate(docs["pods"], near) == "ImplicitDeny", key
        missing = Request(pods.action, pods.resource, {k: v for k, v in pods.context.items() if k != key}, pods.principal)
        assert evaluate(docs["pods"], missing) == "ImplicitDeny", key
    irsa = mine["irsa"][0]
    for key, value in ((f"{IRSA_ISSUER}:aud", "vault"), (f"{IRSA_ISSUER}:sub", "system:serviceaccount:agents:irsa2")):
        near = Request(irsa.action, irsa.resource, {**irsa.context, key: value}, irsa.principal)
        assert evaluate(docs["irsa"], near) == "ImplicitDeny", key
    fn = mine["fn"][0]
    other_fn = Request(fn.action, fn.resource, {**fn.context, "aws:SourceArn": FN_ARN + "-2"}, fn.principal)
    assert evaluate(docs["fn"], other_fn) == "ImplicitDeny"
    # A plain service principal for pods would have let any pod in: the fleet file refuses it.
    with pytest.raises(FleetError, match="eks_pod_identity"):
        build_fleet({"version": 1, "agents": [{"name": "x", "runtime": {"service": "pods.eks.amazonaws.com"},
                                              "credentials": [{"name": "a", "service": "s", "type": "api_key"}]}]})


# ---- keyless credentials ----


def test_keyless_credential_grants_identity_tokens_for_its_audience_only() -> None:
    s, fleet = settings(), runtime_fleet()
    task = fleet.agent("task")
    policy = json.loads(iam.to_json(agent_iam_policy(s, task, naming.kms_key_placeholder(s))))
    minting = [st for st in policy["Statement"] if "sts:GetWebIdentityToken" in json.dumps(st["Action"])]
    assert len(minting) == 1 and minting[0]["Resource"] == "*"

    def mint(audiences: list[str], seconds: int | None) -> str:
        ctx: dict[str, Any] = {"sts:IdentityTokenAudience": audiences}
        if seconds is not None:
            ctx["sts:DurationSeconds"] = str(seconds)
        return evaluate(policy, Request("sts:GetWebIdentityToken", "*", ctx))

    assert mint(["https://api.openai.com/v1"], 300) == "Allow"
    assert mint(["https://api.openai.com/v1"], 60) == "Allow"
    assert mint(["https://api.openai.com/v1"], 301) == "ImplicitDeny"
    assert mint(["https://api.openai.com/v1"], 3600) == "ImplicitDeny"
    assert mint(["https://api.openai.com/v1"], None) == "ImplicitDeny"
    assert mint(["https://evil.example.com"], 300) == "ImplicitDeny"
    assert mint(["https://api.openai.com/v1", "https://evil.example.com"], 300) == "ImplicitDeny"
    assert mint([], 300) == "ImplicitDeny"
    # Agents without a keyless credential (and AWS logins) get no such permission.
    for a in fleet.agents:
        if a.name != "task":
            assert "GetWebIdentityToken" not in iam.to_json(agent_iam_policy(s, a, "k")), a.name
    assert needs_outbound_federation(s, fleet)
    assert not needs_outbound_federation(settings(aws_outbound_issuer="https://abc.tokens.sts.global.api.aws"), fleet)


def test_keyless_credential_is_stored_nowhere_and_audited_as_keyless() -> None:
    plan = build_plan(runtime_fleet(), settings())
    task = next(a for a in plan["agents"] if a["name"] == "task")
    openai = next(c for c in task["credentials"] if c["name"] == "openai")
    assert openai["stores"] == [] and openai["secret_name"] is None and openai["vault_path"] is None
    assert openai["rotation_strategy"] == "keyless" and openai["audience"] == "https://api.openai.com/v1"
    row = next(r for r in audit_rows(plan) if r.agent == "task" and r.credential == "openai")
    assert row.keyless and row.stores == ()
    assert not any(r.keyless for r in audit_rows(plan) if r.credential != "openai")


@pytest.mark.parametrize("cred, needle", [
    ({"service": "stripe"}, "does not accept workload identity federation"),
    ({"service": "openai", "stores": ["aws"]}, "nothing is stored"),
    ({"service": "openai", "rotation": {"strategy": "openai"}}, "nothing rotates"),
])
def test_validation_refuses_keyless_where_it_cannot_work(cred: dict[str, Any], needle: str) -> None:
    doc = {"version": 1, "agents": [{"name": "x", "runtime": {"service": "ecs-tasks.amazonaws.com"},
                                     "credentials": [{"name": "k", "type": "workload_identity", **cred}]}]}
    with pytest.raises(FleetError, match=needle):
        build_fleet(doc)


@pytest.mark.parametrize("runtime, needle", [
    ({"role_arns": [f"arn:aws:iam::{ACCOUNT}:role/r"], "source_arn": FN_ARN}, "only goes with `service`"),
    ({"service": "lambda.amazonaws.com", "source_arn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:*"}, "not an ARN of one function"),
    ({"irsa": {"oidc_issuer": f"https://{IRSA_ISSUER}", "namespace": "a", "service_account": "b"}}, "without its scheme"),
    ({"eks_pod_identity": {"cluster": "c", "namespace": "*", "service_account": "b"}}, "namespace"),
    ({"eks_pod_identity": {"cluster": "c", "namespace": "a"}}, "service_account"),
])
def test_validation_refuses_loose_runtimes(runtime: dict[str, Any], needle: str) -> None:
    doc = {"version": 1, "agents": [{"name": "x", "runtime": runtime,
                                     "credentials": [{"name": "k", "service": "s", "type": "api_key"}]}]}
    with pytest.raises(FleetError, match=needle):
        build_fleet(doc)


# ---- words and logins ----


def test_plan_and_audit_say_who_can_assume_each_role() -> None:
    plan = {a["name"]: a for a in build_plan(runtime_fleet(), settings())["agents"]}
    assert plan["pods"]["trusted_by"] == [
        f"EKS Pod Identity: cluster {CLUSTER}, namespace agents, service account pods (aws:SourceAccount StringEquals {ACCOUNT})"]
    assert plan["irsa"]["trusted_by"] == [f"EKS IRSA {IRSA_ISSUER}: namespace agents, service account irsa (aud StringEquals sts.amazonaws.com)"]
    assert plan["ci-env"]["trusted_by"][0].startswith("GitHub Actions repo:example-org/ci:environment:prod")
    assert plan["runner"]["trusted_by"] == [f"IAM role arn:aws:iam::{ACCOUNT}:role/runner"]
    rows = {r.agent: r.assumed_by for r in audit_rows(build_plan(runtime_fleet(), settings()))}
    assert rows["pods"] == "; ".join(plan["pods"]["trusted_by"])


def test_jwt_logins_bind_exactly_one_identity_per_agent() -> None:
    s = settings(vault_login="jwt", eks_oidc_issuers={CLUSTER: "https://oidc.eks.us-east-1.amazonaws.com/id/PODS"})
    fleet = runtime_fleet()
    logins = {a.name: vault_login(s, a) for a in fleet.agents}
    bindings = set()
    for name, login in logins.items():
        assert login is not None and login.method == "jwt"
        assert login.bound_audiences == ("vault",) and login.bound_subject
        assert login.token_ttl_seconds <= 900 and login.token_max_ttl_seconds <= 1800
        assert login.token_policies == (() if name == PAUSED else (f"agents-dev-{name}",))
        bindings.add((login.backend_path, login.bound_subject, tuple(sorted(login.bound_claims.items()))))
    assert len(bindings) == len(logins)  # no two agents share an identity
    assert logins["task"] is not None and logins["task"].bound_subject == f"arn:aws:iam::{ACCOUNT}:role/agents-dev-task"
    assert logins["task"].mints_aws_identity_token
    # AWS-hosted agents mint the Vault login token themselves: the audience joins their grant.
    policy = iam.to_json(agent_iam_policy(s, fleet.agent("fn"), "k"))
    assert '"sts:IdentityTokenAudience":"vault"' in policy
    with pytest.raises(LoginSettingMissing, match="eksOidcIssuers"):
        build_plan(fleet, settings(vault_login="jwt"))
    with pytest.raises(LoginSettingMissing, match="vaultKubernetesHosts"):
        build_plan(fleet, settings(vault_login="kubernetes"))
    k8s = settings(vault_login="kubernetes", vault_kubernetes_hosts={CLUSTER: "https://k8s.example", IRSA_ISSUER: "https://k8s2.example"})
    kl = vault_login(k8s, fleet.agent("pods"))
    assert kl is not None and (kl.method, kl.namespace, kl.service_account) == ("kubernetes", "agents", "pods")
    ci = vault_login(k8s, fleet.agent("ci"))
    assert ci is not None and ci.method == "jwt"  # no cluster: GitHub's token instead


def test_runtime_fleet_doc_is_valid_yaml_data() -> None:
    assert len(runtime_doc()["agents"]) == len(RUNTIMES)


def test_plan_table_shows_trust_login_and_keyless_in_words() -> None:
    from agentfleet.cli.main import plan_table

    s = settings(vault_login="jwt", eks_oidc_issuers={CLUSTER: "https://oidc.eks.us-east-1.amazonaws.com/id/P"})
    table = plan_table(build_plan(runtime_fleet(), s))
    block = table.split("\ntask  (owner")[1].split("\n\n")[0]
    assert "<- AWS service ecs-tasks.amazonaws.com when aws:SourceAccount StringEquals" in block
    assert f"vault login  Vault JWT auth agents-dev-jwt-aws: sub arn:aws:iam::{ACCOUNT}:role/agents-dev-task, aud vault" in block
    openai = next(line for line in block.splitlines() if line.startswith("  - openai"))
    assert "keyless: identity token for https://api.openai.com/v1, nothing stored" in openai and "/0d" not in openai
    pods = table.split("\npods  (owner")[1].split("\n\n")[0]
    assert f"EKS Pod Identity: cluster {CLUSTER}, namespace agents, service account pods" in pods
