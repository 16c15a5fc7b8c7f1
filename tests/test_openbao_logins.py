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

import json
import re
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Iterator

import hvac
import hvac.exceptions
import pytest

from agentfleet.core import naming
from agentfleet.core.settings import StackSettings, settings_from_config
from agentfleet.runner.mockrun import ProgramRun, RegisteredResource, run_program
from tests.conftest import ROOT
from tests.jwt_mint import Signer
from tests.openbao_server import OpenBao, outcome
from tests.pulumi_harness import write_fleet
from tests.runtime_fleet import CLUSTER, PAUSED, RUNTIMES, runtime_doc

pytestmark = pytest.mark.openbao

AWS_ISSUER = "https://0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9.tokens.sts.global.api.aws"
PODS_ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/PODSCLUSTER0000000000000000000"
OVERRIDES: dict[str, Any] = {
    "agentfleet:vaultLogin": "jwt",
    "agentfleet:awsOutboundIssuer": AWS_ISSUER,
    "agentfleet:eksOidcIssuers": {CLUSTER: PODS_ISSUER},
}
POLICY, MOUNT = "vault:index/policy:Policy", "vault:index/mount:Mount"
JWT_BACKEND, JWT_ROLE = "vault:jwt/authBackend:AuthBackend", "vault:jwt/authBackendRole:AuthBackendRole"


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

    def token(self, agent: Agent, **over: Any) -> str:
        now = int(time.time())
        claims = {"iss": agent.issuer, "aud": self.settings.vault_jwt_audience, "iat": now, "nbf": now - 5,
                  "exp": now + 300, **agent.claims}
        claims.update(over)
        return self.signer.mint(claims)

    def login(self, agent: Agent, jwt: str, role: str | None = None) -> dict[str, Any]:
        client = hvac.Client(url=self.bao.address, timeout=10)
        try:
            auth: dict[str, Any] = client.auth.jwt.jwt_login(role=role or agent.role, jwt=jwt, path=agent.backend)["auth"]
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


def apply_recorded(run: ProgramRun, root: hvac.Client, signer: Signer) -> None:
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
    for r in run.of_type(JWT_ROLE):
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


@pytest.fixture(scope="module")
def world(openbao: OpenBao, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("logins")
    path = write_fleet(folder, runtime_doc())
    config = {"agentfleet:fleetFile": str(path), **OVERRIDES}
    run = run_program("dev", root=ROOT, config_overrides=config)
    s = settings_from_config("dev", lambda k: {**run.config}.get(k) if k not in OVERRIDES else (
        json.dumps(OVERRIDES[k]) if isinstance(OVERRIDES[k], dict) else OVERRIDES[k]))
    root = openbao.client()
    # A fresh server state for this module: the isolation tests may have mounted `kv` already.
    mounted = root.sys.list_mounted_secrets_engines()
    if f"{s.vault_mount}/" in mounted.get("data", mounted):
        root.sys.disable_secrets_engine(s.vault_mount)
    signer = Signer.new("test-key")
    apply_recorded(run, root, signer)
    _wait_for_kv(root, s.vault_mount)
    agents: dict[str, Agent] = {}
    for name in RUNTIMES:
        role = run.named(f"{name}/vault-login", JWT_ROLE)
        issuer, claims = identity_claims(name)
        paths = [naming.vault_path(s, name, c) for c in ("search", "bot")]
        for p in paths:
            root.secrets.kv.v2.create_or_update_secret(p, secret={"value": f"v-{p}"}, mount_point=s.vault_mount)
        agents[name] = Agent(name, name == PAUSED, role.props["roleName"], role.props["backend"], issuer, claims,
                             naming.vault_policy_name(s, name), paths)
    yield World(run, s, s.vault_mount, agents, signer, openbao, root)
    for r in run.of_type(JWT_BACKEND):
        root.sys.disable_auth_method(r.props["path"])
    root.sys.disable_secrets_engine(s.vault_mount)


def test_the_program_declared_what_the_test_applies(world: World) -> None:
    roles = world.run.of_type(JWT_ROLE)
    assert len(roles) == len(RUNTIMES) >= 9
    assert {r.props["backend"] for r in roles} == {r.props["path"] for r in world.run.of_type(JWT_BACKEND)}
    assert all(r.props["tokenNoDefaultPolicy"] is True and r.props["boundClaimsType"] == "string" for r in roles)
    assert len(world.run.of_type(JWT_BACKEND)) == 4  # github, aws, the pod-identity cluster, the IRSA issuer
    assert not world.run.of_type("vault:aws/authBackendRole:AuthBackendRole")


def test_every_agent_logs_in_with_its_runtime_token_and_gets_only_its_policy(world: World) -> None:
    for a in world.agents.values():
        auth = world.login(a, world.token(a))
        want = [] if a.paused else [a.policy]
        assert sorted(auth.get("token_policies") or []) == want, a.name
        assert sorted(auth.get("policies") or []) == want, a.name  # no `default` either
        assert 0 < auth["lease_duration"] <= world.settings.vault_token_ttl_seconds, a.name


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
