"""Runtimes under the Pulumi mocks: Pod Identity associations, OIDC providers the trusts name,
outbound federation, the Vault login method a stack setting picks, keyless credentials."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentfleet.core.plan import build_plan
from agentfleet.core.settings import settings_from_config
from agentfleet.policy.layout import policy_config
from agentfleet.runner.checkrun import check_program
from agentfleet.runner.mockrun import ProgramRun
from tests.pulumi_harness import ROLE, SECRET, VAULT_AUTH, VAULT_LOGIN, run_fleet
from tests.runtime_fleet import ACCOUNT, CLUSTER, IRSA_ISSUER, PAUSED, RUNTIMES, runtime_doc, runtime_fleet

POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
OIDC_PROVIDER = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
OUTBOUND = "aws:iam/outboundWebIdentityFederation:OutboundWebIdentityFederation"
JWT_BACKEND, JWT_ROLE = "vault:jwt/authBackend:AuthBackend", "vault:jwt/authBackendRole:AuthBackendRole"
K8S_CONFIG, K8S_ROLE = "vault:kubernetes/authBackendConfig:AuthBackendConfig", "vault:kubernetes/authBackendRole:AuthBackendRole"
SCHEDULE = "aws:scheduler/schedule:Schedule"
GITHUB = "token.actions.githubusercontent.com"


def run(tmp_path: Path, **over: Any) -> ProgramRun:
    return run_fleet(tmp_path, runtime_doc(), **{f"agentfleet:{k}": v for k, v in over.items()})


JWT = {"vaultLogin": "jwt", "eksOidcIssuers": {CLUSTER: "https://oidc.eks.us-east-1.amazonaws.com/id/P"}}
CA = "-----BEGIN CERTIFICATE-----\nMIIBfakeCAfortests\n-----END CERTIFICATE-----\n"
K8S = {"vaultLogin": "kubernetes", "vaultKubernetesHosts": {CLUSTER: "https://k8s-a.example", IRSA_ISSUER: "https://k8s-b.example"},
       "vaultKubernetesCaCerts": {CLUSTER: CA}}


# One run per login method, shared by the read-only tests below (each run takes seconds).
@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> ProgramRun:
    return run(tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="module")
def jwt_run(tmp_path_factory: pytest.TempPathFactory) -> ProgramRun:
    return run(tmp_path_factory.mktemp("jwt"), **JWT)


@pytest.fixture(scope="module")
def k8s_run(tmp_path_factory: pytest.TempPathFactory) -> ProgramRun:
    return run(tmp_path_factory.mktemp("k8s"), **K8S)


def test_roles_carry_the_planned_trust_and_wait_for_the_provider_it_names(default_run: ProgramRun) -> None:
    r = default_run
    s = settings_from_config("dev", r.config.get)
    plan = {a["name"]: a for a in build_plan(runtime_fleet(), s)["agents"]}
    for name in RUNTIMES:
        role = r.named(f"{name}/role", ROLE)
        assert json.loads(role.props["assumeRolePolicy"]) == plan[name]["trust_policy"], name
    providers = {p.props["url"]: p for p in r.of_type(OIDC_PROVIDER)}
    assert set(providers) == {f"https://{GITHUB}", f"https://{IRSA_ISSUER}"}
    assert all(p.props["clientIdLists"] == ["sts.amazonaws.com"] for p in providers.values())
    assert providers[f"https://{GITHUB}"].urn in r.named("ci/role", ROLE).dependencies
    assert providers[f"https://{IRSA_ISSUER}"].urn in r.named("irsa/role", ROLE).dependencies
    assert not set(p.urn for p in providers.values()) & set(r.named("pods/role", ROLE).dependencies)


def test_existing_providers_from_settings_are_not_created(tmp_path: Path) -> None:
    r = run(tmp_path, githubOidcProviderArn=f"arn:aws:iam::{ACCOUNT}:oidc-provider/{GITHUB}",
            irsaOidcProviderArns={IRSA_ISSUER: f"arn:aws:iam::{ACCOUNT}:oidc-provider/{IRSA_ISSUER}"})
    assert r.of_type(OIDC_PROVIDER) == []


def test_pod_identity_associations_bind_each_eks_agent(default_run: ProgramRun) -> None:
    r = default_run
    got = {(a.props["clusterName"], a.props["namespace"], a.props["serviceAccount"]): a.props["roleArn"] for a in r.of_type(POD_IDENTITY)}
    want = {(rt["eks_pod_identity"]["cluster"], rt["eks_pod_identity"]["namespace"], rt["eks_pod_identity"]["service_account"]):
            f"arn:aws:iam::{ACCOUNT}:role/agents-dev-{name}" for name, rt in RUNTIMES.items() if "eks_pod_identity" in rt}
    assert got == want and len(got) == 3


def test_keyless_credential_creates_no_secret_and_no_reminder_and_enables_federation(default_run: ProgramRun, tmp_path: Path) -> None:
    r = default_run
    assert not [x for x in r.of_type(SECRET) if "/openai" in x.props["name"]]
    assert not [x for x in r.of_type(SCHEDULE) if "openai" in x.name]
    assert len(r.of_type(OUTBOUND)) == 1
    assert run(tmp_path, awsOutboundIssuer="https://abc.tokens.sts.global.api.aws").of_type(OUTBOUND) == []


def test_default_stack_keeps_aws_logins_and_no_jwt(default_run: ProgramRun) -> None:
    r = default_run
    assert r.of_type(JWT_BACKEND) == [] and r.of_type(JWT_ROLE) == []
    assert len(r.of_type(VAULT_LOGIN)) == len(RUNTIMES)


def test_jwt_login_setting_builds_one_backend_per_issuer_and_one_bound_role_per_agent(jwt_run: ProgramRun) -> None:
    r = jwt_run
    assert r.of_type(VAULT_LOGIN) == [] and [a for a in r.of_type(VAULT_AUTH) if a.props["type"] == "aws"] == []
    backends = {b.props["path"]: b.props for b in r.of_type(JWT_BACKEND)}
    assert len(backends) == 4
    aws_backend = backends["agents-dev-jwt-aws"]
    # The stack enables outbound federation and the backend trusts its issuer.
    assert aws_backend["boundIssuer"] == r.of_type(OUTBOUND)[0].outputs["issuerIdentifier"]
    roles = {x.props["roleName"]: x.props for x in r.of_type(JWT_ROLE)}
    assert len(roles) == len(RUNTIMES)
    for name, props in roles.items():
        assert props["tokenNoDefaultPolicy"] is True and props["boundClaimsType"] == "string"
        assert props["tokenTtl"] <= 900 and props["tokenMaxTtl"] <= 1800
        assert props["boundAudiences"] == ["vault"] and props["boundSubject"]
        assert props["backend"] in backends
    assert roles[f"agents-dev-{PAUSED}"]["tokenPolicies"] == []
    assert len({(p["backend"], p["boundSubject"]) for p in roles.values()}) == len(roles)


def test_kubernetes_login_setting_builds_backends_roles_and_jwt_for_the_rest(k8s_run: ProgramRun) -> None:
    r = k8s_run
    configs = {c.props["kubernetesHost"]: c.props for c in r.of_type(K8S_CONFIG)}
    assert sorted(configs) == ["https://k8s-a.example", "https://k8s-b.example"]
    # Vault outside cluster A: its CA from settings, logins' own tokens as TokenReview bearer.
    assert (configs["https://k8s-a.example"]["kubernetesCaCert"], configs["https://k8s-a.example"]["disableLocalCaJwt"]) == (CA, True)
    assert "kubernetesCaCert" not in configs["https://k8s-b.example"]
    k8s = {x.props["roleName"]: x.props for x in r.of_type(K8S_ROLE)}
    eks_agents = {n for n, rt in RUNTIMES.items() if "eks_pod_identity" in rt or "irsa" in rt}
    assert set(k8s) == {f"agents-dev-{n}" for n in eks_agents}
    pods = k8s["agents-dev-pods"]
    assert (pods["boundServiceAccountNames"], pods["boundServiceAccountNamespaces"]) == (["pods"], ["agents"])
    assert pods["tokenNoDefaultPolicy"] is True and pods["audience"] == "vault"
    jwt_roles = {x.props["roleName"] for x in r.of_type(JWT_ROLE)}
    assert jwt_roles == {f"agents-dev-{n}" for n in RUNTIMES} - set(k8s)


@pytest.mark.parametrize("which", ["default_run", "jwt_run", "k8s_run"])
def test_policy_pack_passes_every_runtime_and_login_method(request: pytest.FixtureRequest, which: str) -> None:
    r: ProgramRun = request.getfixturevalue(which)
    s = settings_from_config("dev", r.config.get)
    result = check_program(r, policy_config(s, runtime_fleet().classifications))
    assert result.resources == len(r.resources) and result.policies
    assert [(v.policy, v.message) for v in result.mandatory] == []


def test_lint_knows_get_web_identity_token_but_still_catches_typos() -> None:
    from agentfleet.core import iam_documents as iam
    from agentfleet.policy.lint import NEWER_THAN_PARLIAMENT, findings

    good = iam.Document((iam.get_web_identity_token("M", ["vault"], 300),)).to_json()
    typo = good.replace("sts:GetWebIdentityToken", "sts:GetWebIdentityTokn")
    assert [f.location["string"] for f in findings(good) if f.issue == "UNKNOWN_ACTION"] == ["sts:GetWebIdentityToken"]
    assert "sts:GetWebIdentityToken" in NEWER_THAN_PARLIAMENT
    assert [f.issue for f in findings(typo)] == ["UNKNOWN_ACTION"]
    assert "sts:GetWebIdentityTokn" not in NEWER_THAN_PARLIAMENT


def test_deployer_policy_covers_the_runtime_resources(default_run: ProgramRun) -> None:
    from agentfleet.core.deployer import deployer_policy
    from tests.iam_eval import Request, evaluate

    s = settings_from_config("dev", default_run.config.get)
    policy = deployer_policy(s, {r.type for r in default_run.resources})
    base = deployer_policy(s, {r.type for r in default_run.resources} - {POD_IDENTITY, OIDC_PROVIDER, OUTBOUND})

    def ok(doc: dict[str, Any], action: str, resource: str, **ctx: str) -> bool:
        return evaluate(doc, Request(action, resource, ctx)) == "Allow"

    pia = f"arn:aws:eks:us-east-1:{ACCOUNT}:podidentityassociation/{CLUSTER}/a-1"
    assert ok(policy, "eks:CreatePodIdentityAssociation", f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/{CLUSTER}")
    assert ok(policy, "eks:DeletePodIdentityAssociation", pia)
    assert ok(policy, "iam:CreateOpenIDConnectProvider", f"arn:aws:iam::{ACCOUNT}:oidc-provider/{GITHUB}")
    assert ok(policy, "iam:EnableOutboundWebIdentityFederation", "*")
    role = f"arn:aws:iam::{ACCOUNT}:role/agents-dev-pods"
    assert ok(policy, "iam:PassRole", role, **{"iam:PassedToService": "pods.eks.amazonaws.com"})
    assert not ok(policy, "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/someone-else", **{"iam:PassedToService": "pods.eks.amazonaws.com"})
    assert not ok(policy, "iam:CreateOpenIDConnectProvider", "arn:aws:iam::210987654321:oidc-provider/x")
    # Stacks without these runtimes get none of it.
    assert not ok(base, "eks:CreatePodIdentityAssociation", f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/{CLUSTER}")
    assert not ok(base, "iam:PassRole", role, **{"iam:PassedToService": "pods.eks.amazonaws.com"})
