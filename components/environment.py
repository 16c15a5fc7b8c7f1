"""Per-environment shared resources: the secrets' KMS key, the Vault KV v2 mount, Vault AWS auth.

One `EnvironmentBase` per stack. Agents log in to Vault with their IAM role through the AWS
auth backend, so there is no bootstrap secret to hand out. Existing mounts/backends (named in
stack config) are reused instead of created; either way the component exposes their paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_vault as vault

from agentfleet.core import iam_documents as iam
from agentfleet.core import naming
from agentfleet.core import plan
from agentfleet.components.providers import ProviderSet
from agentfleet.core.model import Fleet
from agentfleet.core.settings import StackSettings
from agentfleet.core.vault_logins import JwtBackend, KubernetesBackend, jwt_backends, kubernetes_backends

TOKEN = "agentfleet:index:EnvironmentBase"
KMS_DELETION_WINDOW_DAYS = 30
"""Maximum: deleting the key makes every secret of the environment unreadable."""


@dataclass(frozen=True)
class EnvironmentBaseArgs:
    key_description: str
    """Description of the customer-managed KMS key."""
    key_policy: str
    """Key policy JSON (from `plan.kms_key_policy`)."""
    key_alias: str
    """`alias/...` name of the key."""
    tags: Mapping[str, str]
    """Tags of the environment's taggable resources (agent `_shared`)."""
    kv_mount: str
    """Path of the KV v2 mount holding the agents' Vault credentials."""
    kv_mount_exists: bool
    """True: the mount exists already (managed elsewhere); only its path is used."""
    aws_auth_path: str
    """Path of the Vault AWS auth method the agents log in with."""
    aws_auth_exists: bool
    """True: the auth method exists already; only its path is used."""
    protect: bool
    """Protect the key and the mount from deletion (protected stacks)."""
    providers: ProviderSet
    """Explicit providers; every resource names one."""
    child_prefix: str = ""
    """Prefix of the children's logical names (`naming.fleet_scope` of the fleet)."""
    aws_region: str = "us-east-1"
    """Region of the STS endpoint Vault verifies logins against."""
    aws_auth_enabled: bool = True
    """False: no AWS auth method at all (`agentfleet:vaultAwsAuth: false`)."""
    aws_endpoints: Mapping[str, str] = field(default_factory=dict)
    """AWS endpoint overrides (`aws:endpoints`, e.g. a local emulator): Vault's AWS auth method
    then calls the same `iam`/`sts` endpoints as the stack. Empty on real AWS."""
    oidc_providers: Sequence[plan.OidcProviderSpec] = ()
    """IAM OIDC providers the agents' trusts name and no stack setting says exist (GitHub, IRSA issuers)."""
    outbound_federation: bool = False
    """True: enable the account's AWS outbound identity federation (agents mint identity tokens)."""
    jwt_backends: Sequence[JwtBackend] = ()
    """Vault JWT auth backends, one per issuer the agents' logins present tokens of."""
    kubernetes_backends: Sequence[KubernetesBackend] = ()
    """Vault Kubernetes auth backends, one per cluster."""

    @classmethod
    def from_settings(
        cls, s: StackSettings, providers: ProviderSet, aws_endpoints: Mapping[str, str] | None = None,
        child_prefix: str = "", fleet: Fleet | None = None,
    ) -> "EnvironmentBaseArgs":
        agents = fleet.agents if fleet is not None else ()
        return cls(
            oidc_providers=tuple(plan.oidc_providers(s, fleet)) if fleet is not None else (),
            outbound_federation=fleet is not None and plan.needs_outbound_federation(s, fleet),
            jwt_backends=tuple(jwt_backends(s, agents)),
            kubernetes_backends=tuple(kubernetes_backends(s, agents)),
            key_description=naming.kms_key_description(s),
            key_policy=iam.to_json(plan.kms_key_policy(s)),
            key_alias=naming.kms_alias(s),
            tags=naming.tags(s),
            kv_mount=s.vault_mount,
            kv_mount_exists=s.vault_mount_exists,
            aws_auth_path=s.vault_aws_auth_path,
            aws_auth_exists=s.vault_aws_auth_exists,
            aws_auth_enabled=s.vault_aws_auth and s.vault_login == "aws",
            protect=s.protect,
            providers=providers,
            aws_region=s.aws_region,
            aws_endpoints=dict(aws_endpoints or {}),
            child_prefix=child_prefix,
        )


class EnvironmentBase(pulumi.ComponentResource):
    """The KMS key (rotation on, alias), the KV v2 mount and the Vault AWS auth backend."""

    key: aws.kms.Key
    key_arn: pulumi.Output[str]
    key_id: pulumi.Output[str]
    key_alias: pulumi.Output[str]
    kv_mount: pulumi.Output[str]
    """Mount path; resolves after the mount exists when this component creates it."""
    aws_auth_path: pulumi.Output[str] | None
    """None when the stack has no Vault AWS auth (`agentfleet:vaultAwsAuth: false`)."""
    """Auth backend path; resolves after the backend exists when this component creates it."""
    oidc_providers: dict[str, aws.iam.OpenIdConnectProvider]
    """Issuer host -> the IAM OIDC provider this stack created (agents' roles depend on it)."""
    outbound_issuer: pulumi.Output[str | None] | None
    """The account's outbound federation issuer, when this stack enables the federation."""
    jwt_paths: dict[str, pulumi.Output[str]]
    """JWT backend key -> its path (resolves after the backend exists)."""
    kubernetes_paths: dict[str, pulumi.Output[str]]
    """Kubernetes backend key -> its path (resolves after backend and config exist)."""

    def __init__(self, name: str, args: EnvironmentBaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        p = args.providers
        tags = dict(args.tags)
        self.key = aws.kms.Key(
            f"{args.child_prefix}kms-key",
            description=args.key_description,
            enable_key_rotation=True,
            deletion_window_in_days=KMS_DELETION_WINDOW_DAYS,
            policy=args.key_policy,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, provider=p.aws, protect=args.protect),
        )
        alias = aws.kms.Alias(
            f"{args.child_prefix}kms-alias", name=args.key_alias, target_key_id=self.key.key_id,
            opts=pulumi.ResourceOptions(parent=self, provider=p.aws),
        )
        if args.kv_mount_exists:
            self.kv_mount = pulumi.Output.from_input(args.kv_mount)
        else:
            mount = vault.Mount(
                f"{args.child_prefix}kv-mount", path=args.kv_mount, type="kv", options={"version": "2"},
                description="agentfleet: per-agent credentials (KV v2)",
                opts=pulumi.ResourceOptions(parent=self, provider=p.vault, protect=args.protect),
            )
            self.kv_mount = mount.path
        if not args.aws_auth_enabled:
            self.aws_auth_path = None
        elif args.aws_auth_exists:
            self.aws_auth_path = pulumi.Output.from_input(args.aws_auth_path)
        else:
            backend = vault.AuthBackend(
                f"{args.child_prefix}aws-auth", type="aws", path=args.aws_auth_path,
                description="agentfleet: agents log in with their IAM role",
                opts=pulumi.ResourceOptions(parent=self, provider=p.vault, protect=args.protect),
            )
            self.aws_auth_path = backend.path
            iam_url, sts_url = args.aws_endpoints.get("iam"), args.aws_endpoints.get("sts")
            if iam_url or sts_url:
                # Only for emulators: on real AWS, the operator configures the client (server ID
                # header against replay, credentials for iam:GetRole) once, outside this stack.
                vault.aws.AuthBackendClient(
                    f"{args.child_prefix}aws-auth-client", backend=backend.path, iam_endpoint=iam_url, sts_endpoint=sts_url,
                    sts_region=args.aws_region,
                    opts=pulumi.ResourceOptions(parent=self, provider=p.vault),
                )
        self._logins(args)
        self.key_arn = self.key.arn
        self.key_id = self.key.key_id
        self.key_alias = alias.name
        self.register_outputs({
            "keyArn": self.key_arn, "keyAlias": self.key_alias,
            "kvMount": self.kv_mount, "awsAuthPath": self.aws_auth_path,
        })

    def _logins(self, args: EnvironmentBaseArgs) -> None:
        """OIDC providers, outbound federation, JWT and Kubernetes auth backends: no secret zero."""
        p, pre = args.providers, args.child_prefix
        self.oidc_providers = {}
        for spec in args.oidc_providers:
            self.oidc_providers[spec.issuer_host] = aws.iam.OpenIdConnectProvider(
                naming.logical_environment(pre, f"oidc-provider/{spec.issuer_host}"),
                url=spec.url, client_id_lists=list(spec.client_ids), tags=dict(args.tags),
                opts=pulumi.ResourceOptions(parent=self, provider=p.aws),
            )
        self.outbound_issuer = None
        if args.outbound_federation:
            fed = aws.iam.OutboundWebIdentityFederation(
                naming.logical_environment(pre, "outbound-identity-federation"),
                opts=pulumi.ResourceOptions(parent=self, provider=p.aws),
            )
            self.outbound_issuer = fed.issuer_identifier
        self.jwt_paths = {}
        for b in args.jwt_backends:
            issuer: pulumi.Input[str] | None = b.issuer if b.issuer is not None else self.outbound_issuer
            if issuer is None:
                raise ValueError(f"JWT backend {b.path}: no issuer (set agentfleet:awsOutboundIssuer)")
            backend = vault.jwt.AuthBackend(
                naming.logical_environment(pre, f"vault-jwt/{b.key}"),
                path=b.path, type="jwt", oidc_discovery_url=issuer, bound_issuer=issuer,
                description=f"agentfleet: agents log in with {b.key} identity tokens",
                opts=pulumi.ResourceOptions(parent=self, provider=p.vault),
            )
            self.jwt_paths[b.key] = backend.path.apply(_or(b.path))
        self.kubernetes_paths = {}
        for k in args.kubernetes_backends:
            kb = vault.AuthBackend(
                naming.logical_environment(pre, f"vault-k8s/{k.key}"), type="kubernetes", path=k.path,
                description=f"agentfleet: agents of {k.key} log in with their service-account token",
                opts=pulumi.ResourceOptions(parent=self, provider=p.vault),
            )
            cfg = vault.kubernetes.AuthBackendConfig(
                naming.logical_environment(pre, f"vault-k8s/{k.key}/config"),
                backend=kb.path, kubernetes_host=k.host,
                # Outside the cluster: the API server's CA from settings, and each login's own
                # token as the TokenReview bearer (no long-lived reviewer token to store).
                kubernetes_ca_cert=k.ca_cert, disable_local_ca_jwt=True if k.ca_cert else None,
                opts=pulumi.ResourceOptions(parent=self, provider=p.vault),
            )
            self.kubernetes_paths[k.key] = cfg.backend.apply(_or(k.path))


def _or(default: str) -> Callable[[str | None], str]:
    """An output's value, or the known path while it is unknown (previews)."""
    return lambda value: value or default
