"""Vault logins per runtime: which auth method each agent uses and what pins it to that agent.

No secret zero: every login presents a token the agent's runtime already has (its AWS role's
signature, GitHub's OIDC token, its pod's service-account token, or an identity token its AWS
role mints with `sts:GetWebIdentityToken`). Each login role is bound to exactly one identity
(`bound_subject` + `bound_claims` + `bound_audiences`, or service account + namespace), issues
short-lived tokens without the `default` policy, and none of the agent's policy while paused.

`agentfleet:vaultLogin` chooses the method: `aws` (Vault's AWS IAM auth, built by the
components as before), `jwt`, or `kubernetes` (EKS agents; the others fall back to `jwt`).
Pure: the components and the tests build resources from these values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

from agentfleet.core import iam_documents as iam
from agentfleet.core import naming
from agentfleet.core.model import Fleet, ResolvedAgent
from agentfleet.core.settings import StackSettings

GITHUB_ISSUER = f"https://{iam.GITHUB_OIDC_HOST}"
AWS_ISSUER_KEY = "aws"
"""JWT backend key of AWS outbound identity federation (the account's own issuer)."""

Method = Literal["aws", "jwt", "kubernetes"]


class LoginConfigError(ValueError):
    """The stack lacks a setting a chosen login method needs (named in the message)."""


@dataclass(frozen=True)
class JwtBackend:
    key: str
    path: str
    issuer: str | None
    """Issuer URL; None = the account's outbound federation issuer the stack enables (an output)."""


@dataclass(frozen=True)
class KubernetesBackend:
    key: str
    path: str
    host: str
    """The cluster's API server: Vault reviews every presented token there (TokenReview)."""
    ca_cert: str | None = None
    """PEM CA of the API server, when Vault runs outside the cluster; None: Vault's in-cluster CA."""


@dataclass(frozen=True)
class VaultLogin:
    method: Method
    backend_key: str
    backend_path: str
    role_name: str
    token_policies: tuple[str, ...]
    token_ttl_seconds: int
    token_max_ttl_seconds: int
    bound_audiences: tuple[str, ...] = ()
    bound_subject: str | None = None
    bound_claims: dict[str, str] = field(default_factory=dict)
    """Exact-match claims (`bound_claims_type: string`); keys may be JSON pointers."""
    service_account: str | None = None
    namespace: str | None = None
    issuer: str | None = None
    """JWT logins: the issuer URL (None: the stack's outbound federation issuer)."""
    mints_aws_identity_token: bool = False
    """True: the agent mints the login token with `sts:GetWebIdentityToken` (its IAM policy allows it)."""

    def words(self) -> str:
        if self.method == "aws":
            return f"Vault AWS auth {self.backend_path}/role/{self.role_name}"
        if self.method == "kubernetes":
            return f"Vault Kubernetes auth {self.backend_path}: {self.namespace}/{self.service_account}"
        return f"Vault JWT auth {self.backend_path}: sub {self.bound_subject}, aud {', '.join(self.bound_audiences)}"


def _policies(s: StackSettings, agent: ResolvedAgent) -> tuple[str, ...]:
    return () if agent.paused else (naming.vault_policy_name(s, agent.name),)


def _jwt_target(s: StackSettings, agent: ResolvedAgent) -> tuple[JwtBackend, str, dict[str, str], bool]:
    """(backend, bound subject, bound claims, mints an AWS identity token) for a JWT login."""
    rt = agent.runtime
    if rt.github_oidc is not None:
        gh = rt.github_oidc
        subject = f"ref:{gh.ref}" if gh.ref else f"environment:{gh.environment}"
        claims = {"repository": gh.repository}
        claims.update({"ref": gh.ref} if gh.ref else {"environment": str(gh.environment)})
        backend = JwtBackend("github", naming.vault_jwt_backend_path(s, "github"), GITHUB_ISSUER)
        return backend, f"repo:{gh.repository}:{subject}", claims, False
    k8s = rt.eks_pod_identity or rt.irsa
    if k8s is not None:
        if rt.eks_pod_identity is not None:
            cluster = rt.eks_pod_identity.cluster
            issuer = s.eks_oidc_issuers.get(cluster)
            if issuer is None:
                raise LoginConfigError(
                    f"agent {agent.name!r}: vaultLogin jwt needs the OIDC issuer of EKS cluster {cluster!r}:"
                    f" set agentfleet:eksOidcIssuers {{{cluster}: https://oidc.eks.<region>.amazonaws.com/id/...}}"
                )
            key = f"eks-{cluster}"
        else:
            assert rt.irsa is not None
            issuer, key = f"https://{rt.irsa.oidc_issuer}", f"irsa-{naming.issuer_key(rt.irsa.oidc_issuer)}"
        claims = {"/kubernetes.io/namespace": k8s.namespace, "/kubernetes.io/serviceaccount/name": k8s.service_account}
        backend = JwtBackend(key, naming.vault_jwt_backend_path(s, key), issuer)
        return backend, iam.irsa_subject(k8s.namespace, k8s.service_account), claims, False
    # AWS-hosted (service or role_arns): the agent's role mints its own identity token.
    backend = JwtBackend(AWS_ISSUER_KEY, naming.vault_jwt_backend_path(s, AWS_ISSUER_KEY), s.aws_outbound_issuer)
    return backend, naming.role_arn(s, naming.role_name(s, agent.name)), {}, True


def _k8s_target(s: StackSettings, agent: ResolvedAgent) -> KubernetesBackend | None:
    rt = agent.runtime
    if rt.eks_pod_identity is not None:
        name, key = rt.eks_pod_identity.cluster, f"eks-{rt.eks_pod_identity.cluster}"
    elif rt.irsa is not None:
        name, key = rt.irsa.oidc_issuer, f"irsa-{naming.issuer_key(rt.irsa.oidc_issuer)}"
    else:
        return None
    host = s.vault_kubernetes_hosts.get(name)
    if host is None:
        raise LoginConfigError(
            f"agent {agent.name!r}: vaultLogin kubernetes needs the API server of {name!r}:"
            f" set agentfleet:vaultKubernetesHosts {{{name}: https://...}}"
        )
    return KubernetesBackend(key, naming.vault_kubernetes_backend_path(s, key), host, s.vault_kubernetes_ca_certs.get(name))


def vault_login(s: StackSettings, agent: ResolvedAgent) -> VaultLogin | None:
    """The agent's login, or None when the stack creates none (`aws` with `vaultAwsAuth: false`)."""
    role = naming.vault_auth_role_name(s, agent.name)
    ttl, max_ttl = s.vault_token_ttl_seconds, 2 * s.vault_token_ttl_seconds
    policies = _policies(s, agent)
    if s.vault_login == "aws":
        if not s.vault_aws_auth:
            return None
        return VaultLogin("aws", "aws", s.vault_aws_auth_path, role, policies, ttl, max_ttl,
                          bound_subject=naming.role_arn(s, naming.role_name(s, agent.name)))
    if s.vault_login == "kubernetes":
        k8s = _k8s_target(s, agent)
        if k8s is not None:
            rt = agent.runtime.eks_pod_identity or agent.runtime.irsa
            assert rt is not None
            return VaultLogin("kubernetes", k8s.key, k8s.path, role, policies, ttl, max_ttl,
                              bound_audiences=(s.vault_jwt_audience,),
                              service_account=rt.service_account, namespace=rt.namespace)
    backend, subject, claims, mints = _jwt_target(s, agent)
    return VaultLogin("jwt", backend.key, backend.path, role, policies, ttl, max_ttl,
                      bound_audiences=(s.vault_jwt_audience,), bound_subject=subject, bound_claims=claims,
                      issuer=backend.issuer, mints_aws_identity_token=mints)


def jwt_backends(s: StackSettings, agents: Sequence[ResolvedAgent]) -> list[JwtBackend]:
    """The JWT backends the agents' logins need, one per issuer, sorted by key."""
    out: dict[str, JwtBackend] = {}
    for a in agents:
        login = vault_login(s, a)
        if login is not None and login.method == "jwt":
            out[login.backend_key] = JwtBackend(login.backend_key, login.backend_path, login.issuer)
    return [out[k] for k in sorted(out)]


def kubernetes_backends(s: StackSettings, agents: Sequence[ResolvedAgent]) -> list[KubernetesBackend]:
    out: dict[str, KubernetesBackend] = {}
    for a in agents:
        login = vault_login(s, a)
        if login is not None and login.method == "kubernetes":
            k8s = _k8s_target(s, a)
            assert k8s is not None
            out[k8s.key] = k8s
    return [out[k] for k in sorted(out)]


def check_logins(s: StackSettings, fleet: Fleet) -> None:
    """Raise LoginConfigError early (plan, preview) when a chosen login lacks a setting."""
    for a in fleet.agents:
        vault_login(s, a)
