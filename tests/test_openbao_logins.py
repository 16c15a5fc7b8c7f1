"""Logins with no secret zero, on a real OpenBao: the program's own Vault resources, real JWT auth.

The Pulumi program runs under the mocks (`agentfleet.runner.mockrun`) with `vaultLogin: jwt` on a
fleet using every runtime kind. Every Vault resource it records (policies, the KV mount, the JWT
auth backends and each agent's login role) is applied to a real `bao server -dev` through hvac,
with one substitution: each backend verifies tokens with a locally generated RS256 key
(`jwt_validation_pubkeys`) instead of fetching its issuer's discovery document (no internet);
`bound_issuer` and every login role are applied exactly as recorded.

Then, per agent, a token its runtime would hold (GitHub Actions OIDC, a Kubernetes
service-account token, an AWS outbound identity token) is minted and presented to the real auth
method, and the N x M matrix runs through those logins: each agent reads only its own paths, A's
token never yields B's policy, a wrong audience, issuer, subject, signature or an expired token is
refused, and the paused agent's login carries no policy at all (not even `default`).
"""

from __future__ import annotations

import datetime
import json
import re
import threading
import time
from dataclasses import dataclass
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import hvac
import hvac.exceptions
import pytest

from agentfleet.core import naming
from agentfleet.core.settings import StackSettings, settings_from_config
from agentfleet.runner.mockrun import ProgramRun, RegisteredResource, run_program
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import ROOT
from tests.jwt_mint import Signer
from tests.openbao_server import OpenBao, outcome
from tests.pulumi_harness import write_fleet
from tests.runtime_fleet import CLUSTER, IRSA_ISSUER, PAUSED, RUNTIMES, runtime_doc

pytestmark = pytest.mark.openbao

AWS_ISSUER = "https://0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9.tokens.sts.global.api.aws"
PODS_ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/PODSCLUSTER0000000000000000000"
K8S_API = "https://k8s.agents-prod.example.internal"
"""The API server the stack names; the test points the recorded config at its loopback fake."""
OVERRIDES: dict[str, dict[str, Any]] = {
    "jwt": {
        "agentfleet:vaultLogin": "jwt",
        "agentfleet:awsOutboundIssuer": AWS_ISSUER,
        "agentfleet:eksOidcIssuers": {CLUSTER: PODS_ISSUER},
    },
    "kubernetes": {
        "agentfleet:vaultLogin": "kubernetes",
        "agentfleet:awsOutboundIssuer": AWS_ISSUER,
        "agentfleet:vaultKubernetesHosts": {CLUSTER: K8S_API, IRSA_ISSUER: K8S_API + "/irsa"},
    },
}
POLICY, MOUNT = "vault:index/policy:Policy", "vault:index/mount:Mount"
JWT_BACKEND, JWT_ROLE = "vault:jwt/authBackend:AuthBackend", "vault:jwt/authBackendRole:AuthBackendRole"
AUTH_BACKEND = "vault:index/authBackend:AuthBackend"
K8S_CONFIG, K8S_ROLE = "vault:kubernetes/authBackendConfig:AuthBackendConfig", "vault:kubernetes/authBackendRole:AuthBackendRole"


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _plain(value: Any) -> Any:
    """Mock-recorded inputs: integers come back as floats."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# ---- the world: recorded resources applied to OpenBao ----


@dataclass
class Agent:
    name: str
    paused: bool
    role: str
    backend: str
    method: str
    """`jwt` or `kubernetes`: the auth method its login role lives in."""
    issuer: str
    claims: dict[str, Any]
    """The identity claims its runtime's token carries (sub and the bound claims)."""
    policy: str
    paths: list[str]


@dataclass
class World:
    run: ProgramRun
    settings: StackSettings
    mount: str
    agents: dict[str, Agent]
    signer: Signer
    bao: OpenBao
    root: hvac.Client
    k8s_reviews: list[dict[str, Any]]
    """TokenReviews the fake API server answered (Kubernetes logins must consult it)."""

    def token(self, agent: Agent, **over: Any) -> str:
        now = int(time.time())
        aud = self.settings.vault_jwt_audience
        claims = {"iss": agent.issuer, "aud": [aud] if "kubernetes.io" in agent.claims else aud,  # projected SA tokens: a list
                  "iat": now, "nbf": now - 5, "exp": now + 300, **agent.claims}
        claims.update(over)
        return self.signer.mint(claims)

    def login(self, agent: Agent, jwt: str, role: str | None = None) -> dict[str, Any]:
        client = hvac.Client(url=self.bao.address, timeout=10)
        try:
            if agent.method == "kubernetes":
                resp = client.auth.kubernetes.login(role or agent.role, jwt, use_token=False, mount_point=agent.backend)
            else:
                resp = client.auth.jwt.jwt_login(role=role or agent.role, jwt=jwt, path=agent.backend)
            auth: dict[str, Any] = resp["auth"]
            return auth
        finally:
            client.adapter.close()


def identity_claims(name: str) -> tuple[str, dict[str, Any]]:
    """(issuer, claims) of the token the agent's runtime holds, as that issuer shapes it."""
    rt = RUNTIMES[name]
    if "github_oidc" in rt:
        g = rt["github_oidc"]
        sel = f"ref:{g['ref']}" if "ref" in g else f"environment:{g['environment']}"
        extra = {"ref": g["ref"]} if "ref" in g else {"environment": g["environment"], "ref": "refs/heads/main"}
        return "https://token.actions.githubusercontent.com", {
            "sub": f"repo:{g['repository']}:{sel}", "repository": g["repository"], **extra}
    k8s = rt.get("eks_pod_identity") or rt.get("irsa")
    if k8s is not None:
        issuer = PODS_ISSUER if "eks_pod_identity" in rt else f"https://{rt['irsa']['oidc_issuer']}"
        return issuer, {
            "sub": f"system:serviceaccount:{k8s['namespace']}:{k8s['service_account']}",
            "kubernetes.io": {"namespace": k8s["namespace"], "serviceaccount": {"name": k8s["service_account"], "uid": "u-1"}},
        }
    return AWS_ISSUER, {"sub": f"arn:aws:iam::123456789012:role/agents-dev-{name}"}


def _unused_ca_pem() -> str:
    """OpenBao insists on a CA when it may not read a local one; the loopback fake speaks plain HTTP."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(hours=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def apply_recorded(run: ProgramRun, root: hvac.Client, signer: Signer, k8s_api: str) -> None:
    """Every recorded Vault resource, applied through the real API in dependency order."""
    for r in run.of_type(MOUNT):
        root.sys.enable_secrets_engine(r.props["type"], path=r.props["path"], options=r.props.get("options"))
    for r in run.of_type(POLICY):
        root.sys.create_or_update_policy(r.props["name"], r.props["policy"])
    for r in run.of_type(JWT_BACKEND):
        root.sys.enable_auth_method(r.props["type"], path=r.props["path"])
        # The one substitution: the backend's keys come from the test, not from the issuer's URL.
        root.write(f"auth/{r.props['path']}/config", bound_issuer=r.props["boundIssuer"],
                   jwt_validation_pubkeys=[signer.public_pem()])
    for r in run.of_type(AUTH_BACKEND):
        root.sys.enable_auth_method(r.props["type"], path=r.props["path"])
    for r in run.of_type(K8S_CONFIG):
        # The substitution here: the API server is the test's loopback fake (it reviews tokens
        # as a real one would); pem_keys lets OpenBao verify signatures itself as well.
        assert r.props["kubernetesHost"].startswith(K8S_API)
        root.write(f"auth/{r.props['backend']}/config", kubernetes_host=k8s_api, disable_local_ca_jwt=True,
                   kubernetes_ca_cert=_unused_ca_pem(), pem_keys=[signer.public_pem()])
    for r in run.of_type(JWT_ROLE) + run.of_type(K8S_ROLE):
        body = {_snake(k): _plain(v) for k, v in r.props.items() if k not in ("backend", "roleName")}
        root.write(f"auth/{r.props['backend']}/role/{r.props['roleName']}", **body)


def _wait_for_kv(root: hvac.Client, mount: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            root.secrets.kv.v2.read_configuration(mount_point=mount)
            return
        except hvac.exceptions.VaultError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class FakeKubernetesApi:
    """A loopback stand-in for a cluster's API server: only TokenReview, judged as Kubernetes does
    (signature by the cluster's key, issuer, expiry, requested audiences), the username taken
    from the token's `sub`."""

    ISSUERS = (PODS_ISSUER, f"https://{IRSA_ISSUER}")

    def __init__(self, signer: Signer) -> None:
        self.reviews: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                spec = json.loads(self.rfile.read(int(self.headers["Content-Length"]))).get("spec", {})
                outer.reviews.append({"audiences": spec.get("audiences")})
                status = outer.review(signer, str(spec.get("token", "")), spec.get("audiences") or [])
                body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status}).encode()
                self.send_response(201 if self.path == "/apis/authentication.k8s.io/v1/tokenreviews" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @classmethod
    def review(cls, signer: Signer, token: str, audiences: list[str]) -> dict[str, Any]:
        claims = signer.verify(token)
        if claims is None or claims.get("iss") not in cls.ISSUERS or claims.get("exp", 0) <= time.time():
            return {"authenticated": False, "error": "invalid bearer token"}
        token_aud = [claims["aud"]] if isinstance(claims.get("aud"), str) else list(claims.get("aud") or [])
        granted = [a for a in audiences if a in token_aud] if audiences else token_aud
        if audiences and not granted:
            return {"authenticated": False, "error": "token audiences not valid"}
        sa = claims.get("kubernetes.io", {}).get("serviceaccount", {})
        return {"authenticated": True, "audiences": granted,
                "user": {"username": claims.get("sub"), "uid": sa.get("uid", ""), "groups": ["system:serviceaccounts"]}}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module", params=sorted(OVERRIDES))
def world(request: pytest.FixtureRequest, openbao: OpenBao, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    method: str = request.param
    folder = tmp_path_factory.mktemp(f"logins-{method}")
    path = write_fleet(folder, runtime_doc())
    run = run_program("dev", root=ROOT, config_overrides={"agentfleet:fleetFile": str(path), **OVERRIDES[method]})
    s = settings_from_config("dev", run.config.get)
    root = openbao.client()
    # A fresh server state: the isolation tests may have mounted `kv` already.
    mounted = root.sys.list_mounted_secrets_engines()
    if f"{s.vault_mount}/" in mounted.get("data", mounted):
        root.sys.disable_secrets_engine(s.vault_mount)
    signer = Signer.new("test-key")
    api = FakeKubernetesApi(signer)
    try:
        apply_recorded(run, root, signer, api.url)
        _wait_for_kv(root, s.vault_mount)
        agents: dict[str, Agent] = {}
        for name in RUNTIMES:
            role = next(r for r in run.of_type(JWT_ROLE) + run.of_type(K8S_ROLE) if r.name == f"{name}/vault-login")
            issuer, claims = identity_claims(name)
            paths = [naming.vault_path(s, name, c) for c in ("search", "bot")]
            for p in paths:
                root.secrets.kv.v2.create_or_update_secret(p, secret={"value": f"v-{p}"}, mount_point=s.vault_mount)
            agents[name] = Agent(name, name == PAUSED, role.props["roleName"], role.props["backend"],
                                 "kubernetes" if role.type == K8S_ROLE else "jwt", issuer, claims,
                                 naming.vault_policy_name(s, name), paths)
        yield World(run, s, s.vault_mount, agents, signer, openbao, root, api.reviews)
    finally:
        api.stop()
        for r in run.of_type(JWT_BACKEND) + run.of_type(AUTH_BACKEND):
            if f"{r.props['path']}/" in root.sys.list_auth_methods().get("data", {}):
                root.sys.disable_auth_method(r.props["path"])
        root.sys.disable_secrets_engine(s.vault_mount)


def test_the_program_declared_what_the_test_applies(world: World) -> None:
    jwt, k8s = world.run.of_type(JWT_ROLE), world.run.of_type(K8S_ROLE)
    assert len(jwt) + len(k8s) == len(RUNTIMES) >= 9
    backends = {r.props["path"] for r in world.run.of_type(JWT_BACKEND) + world.run.of_type(AUTH_BACKEND)}
    assert {r.props["backend"] for r in jwt + k8s} == backends
    assert all(r.props["tokenNoDefaultPolicy"] is True for r in jwt + k8s)
    assert all(r.props["boundClaimsType"] == "string" for r in jwt)
    if world.settings.vault_login == "jwt":
        assert len(world.run.of_type(JWT_BACKEND)) == 4 and not k8s  # github, aws, the EKS cluster, the IRSA issuer
    else:
        assert len(k8s) == 4 and len(world.run.of_type(K8S_CONFIG)) == 2  # the EKS agents; two clusters
    assert not world.run.of_type("vault:aws/authBackendRole:AuthBackendRole")


def test_every_agent_logs_in_with_its_runtime_token_and_gets_only_its_policy(world: World) -> None:
    before = len(world.k8s_reviews)
    for a in world.agents.values():
        auth = world.login(a, world.token(a))
        want = [] if a.paused else [a.policy]
        assert sorted(auth.get("token_policies") or []) == want, a.name
        assert sorted(auth.get("policies") or []) == want, a.name  # no `default` either
        assert 0 < auth["lease_duration"] <= world.settings.vault_token_ttl_seconds, a.name
    k8s = [a for a in world.agents.values() if a.method == "kubernetes"]
    assert len(world.k8s_reviews) - before == len(k8s)  # every Kubernetes login was reviewed by "the cluster"
    assert all(r["audiences"] == [world.settings.vault_jwt_audience] for r in world.k8s_reviews[before:])


def test_n_by_m_reads_through_the_logins(world: World) -> None:
    every = [(a.name, p) for a in world.agents.values() for p in a.paths]
    wrong = []
    for a in world.agents.values():
        client = hvac.Client(url=world.bao.address, token=world.login(a, world.token(a))["client_token"], timeout=10)
        try:
            for owner, p in every:
                expected = "ok" if owner == a.name and not a.paused else "forbidden"
                got = outcome(partial(client.secrets.kv.v2.read_secret_version, p, mount_point=world.mount,
                                      raise_on_deleted_version=True))
                if got != expected:
                    wrong.append((a.name, p, expected, got))
            # Not even `default`: the token cannot look itself up.
            assert outcome(client.auth.token.lookup_self) == "forbidden", a.name
        finally:
            client.adapter.close()
    assert len(world.agents) * len(every) >= 9 * 18
    assert not wrong, wrong


def test_one_agents_token_never_opens_another_agents_role(world: World) -> None:
    wrong = []
    for a in world.agents.values():
        jwt = world.token(a)
        for b in world.agents.values():
            if b is a or b.backend != a.backend:
                continue  # other backends trust other issuers: refused anyway, checked below
            got = outcome(partial(world.login, b, jwt))
            if got == "ok":
                wrong.append((a.name, b.name))
    assert not wrong, wrong
    # Same-issuer pairs exist for every kind (two pods, two GitHub refs, three AWS roles).
    backends = [a.backend for a in world.agents.values()]
    assert sum(backends.count(b) > 1 for b in set(backends)) >= 3


@pytest.mark.parametrize("case", ["audience", "issuer", "subject", "namespace-claim", "expired", "signature", "other-backend"])
def test_wrong_tokens_are_refused(world: World, case: str) -> None:
    a = world.agents["pods"]
    now = int(time.time())
    jwt = {
        "audience": lambda: world.token(a, aud="sts.amazonaws.com"),
        "issuer": lambda: world.token(a, iss="https://oidc.eks.us-east-1.amazonaws.com/id/OTHER"),
        "subject": lambda: world.token(a, sub="system:serviceaccount:agents:other"),
        "namespace-claim": lambda: world.token(a, **{"kubernetes.io": {"namespace": "batch", "serviceaccount": {"name": "pods"}}}),
        "expired": lambda: world.token(a, iat=now - 7200, nbf=now - 7200, exp=now - 3600),
        "signature": lambda: Signer.new("test-key").mint({"iss": a.issuer, "aud": "vault", "iat": now, "exp": now + 300, **a.claims}),
        "other-backend": lambda: world.token(world.agents["ci"]),
    }[case]()
    assert outcome(partial(world.login, a, jwt)) != "ok"
    # The genuine token still works: the refusal is about the change, not the setup.
    assert outcome(partial(world.login, a, world.token(a))) == "ok"


def test_paused_agent_login_carries_no_policy_at_all(world: World) -> None:
    a = world.agents[PAUSED]
    auth = world.login(a, world.token(a))
    # OpenBao omits empty lists from the response: absent or empty, never `default`.
    assert not auth.get("policies") and not auth.get("token_policies"), auth
    info = world.root.auth.token.lookup(auth["client_token"])["data"]
    assert info["policies"] == []
