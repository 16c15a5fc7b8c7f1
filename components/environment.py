"""Per-environment shared resources: the secrets' KMS key, the Vault KV v2 mount, Vault AWS auth.

One `EnvironmentBase` per stack. Agents log in to Vault with their IAM role through the AWS
auth backend, so there is no bootstrap secret to hand out. Existing mounts/backends (named in
stack config) are reused instead of created; either way the component exposes their paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import pulumi
import pulumi_aws as aws
import pulumi_vault as vault

from agentfleet.core import iam_documents as iam
from agentfleet.core import naming
from agentfleet.core import plan
from agentfleet.components.providers import ProviderSet
from agentfleet.core.settings import StackSettings

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

    @classmethod
    def from_settings(
        cls, s: StackSettings, providers: ProviderSet, aws_endpoints: Mapping[str, str] | None = None,
        child_prefix: str = "",
    ) -> "EnvironmentBaseArgs":
        return cls(
            key_description=naming.kms_key_description(s),
            key_policy=iam.to_json(plan.kms_key_policy(s)),
            key_alias=naming.kms_alias(s),
            tags=naming.tags(s),
            kv_mount=s.vault_mount,
            kv_mount_exists=s.vault_mount_exists,
            aws_auth_path=s.vault_aws_auth_path,
            aws_auth_exists=s.vault_aws_auth_exists,
            aws_auth_enabled=s.vault_aws_auth,
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
        self.key_arn = self.key.arn
        self.key_id = self.key.key_id
        self.key_alias = alias.name
        self.register_outputs({
            "keyArn": self.key_arn, "keyAlias": self.key_alias,
            "kvMount": self.kv_mount, "awsAuthPath": self.aws_auth_path,
        })
