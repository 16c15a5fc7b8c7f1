"""Explicit AWS, Vault and random providers, configured from the stack's config.

Every resource of the project names one of these providers, so nothing silently falls back to
a default provider configured from the operator's environment (wrong account, wrong Vault).
They read the usual provider namespaces (`aws:*`, `vault:*`): a stack file such as
`Pulumi.local.yaml` points them at a local emulator and a local OpenBao. Secret provider settings
(`vault:token`, `aws:secretKey` ...) are read only as Pulumi secrets, i.e. values set with
`pulumi config set --secret`, or left to the standard environment variables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import pulumi
import pulumi_aws as aws
import pulumi_random as random
import pulumi_vault as vault

from agentfleet.core.settings import StackSettings, settings_from_config

AWS_PROVIDER, VAULT_PROVIDER, RANDOM_PROVIDER = "aws", "vault", "random"
"""Logical names of the providers; renaming one would replace every resource using it."""


@dataclass(frozen=True)
class ProviderSet:
    """The providers every component passes down (`provider=` on each resource)."""

    aws: aws.Provider
    vault: vault.Provider
    random: random.Provider
    aws_endpoints: Mapping[str, str] = field(default_factory=dict)
    """`aws:endpoints` merged (a local emulator); Vault's AWS auth calls the same iam/sts. Empty on AWS."""
    vault_address: str | None = None
    """`vault:address`: where the rotation functions write Vault copies (unless overridden)."""
    vault_namespace: str | None = None

    def as_list(self) -> list[pulumi.ProviderResource]:
        """For `ResourceOptions(providers=...)` on components, so children inherit them."""
        return [self.aws, self.vault, self.random]


def aws_provider(
    settings: StackSettings, cfg: pulumi.Config, opts: pulumi.ResourceOptions | None, name: str = AWS_PROVIDER,
) -> aws.Provider:
    """pulumi-aws v7 provider from `aws:*` config; the region always comes from the settings."""
    skip_account = cfg.get_bool("skipRequestingAccountId")
    return aws.Provider(
        name,
        region=settings.aws_region,
        profile=cfg.get("profile"),
        endpoints=cfg.get_object("endpoints"),
        skip_credentials_validation=cfg.get_bool("skipCredentialsValidation"),
        skip_requesting_account_id=skip_account,
        skip_metadata_api_check=cfg.get_bool("skipMetadataApiCheck"),
        skip_region_validation=cfg.get_bool("skipRegionValidation"),
        s3_use_path_style=cfg.get_bool("s3UsePathStyle"),
        access_key=cfg.get_secret("accessKey"),
        secret_key=cfg.get_secret("secretKey"),
        token=cfg.get_secret("token"),
        # Refuse any account but the one the ARNs were computed for (the check needs the
        # account id, which an emulator stack skips requesting).
        allowed_account_ids=None if skip_account else [settings.aws_account_id],
        opts=opts,
    )


def vault_provider(cfg: pulumi.Config, opts: pulumi.ResourceOptions | None, name: str = VAULT_PROVIDER) -> vault.Provider:
    """pulumi-vault from `vault:*` config; the token only as a Pulumi secret (or VAULT_TOKEN)."""
    return vault.Provider(
        name,
        address=cfg.get("address"),
        token=cfg.get_secret("token"),
        namespace=cfg.get("namespace"),
        skip_child_token=cfg.get_bool("skipChildToken"),
        skip_tls_verify=cfg.get_bool("skipTlsVerify"),
        skip_get_vault_version=cfg.get_bool("skipGetVaultVersion"),
        opts=opts,
    )


def aws_endpoint_overrides(cfg: pulumi.Config | None = None) -> dict[str, str]:
    """`aws:endpoints` (a list of {service: url}) merged into one mapping; empty on real AWS."""
    merged: dict[str, str] = {}
    for entry in (cfg or pulumi.Config("aws")).get_object("endpoints") or []:
        merged.update({str(k): str(v) for k, v in dict(entry).items()})
    return merged


def _config_value(key: str) -> str | None:
    namespace, _, name = key.partition(":")
    return pulumi.Config(namespace).get(name)


def stack_settings() -> StackSettings:
    """The running stack's settings from its config, through the same validation the CLI uses."""
    return settings_from_config(pulumi.get_stack(), _config_value)


def providers_from_config(
    settings: StackSettings, opts: pulumi.ResourceOptions | None = None, name_prefix: str = "",
) -> ProviderSet:
    """Create the three providers from the stack's `aws:*`/`vault:*` config (the one place that
    reads provider config; components only see the result). `name_prefix` keeps the providers
    of two environments in one program apart (e.g. "prod-")."""
    aws_cfg, vault_cfg = pulumi.Config("aws"), pulumi.Config("vault")
    return ProviderSet(
        aws=aws_provider(settings, aws_cfg, opts, name=f"{name_prefix}{AWS_PROVIDER}"),
        vault=vault_provider(vault_cfg, opts, name=f"{name_prefix}{VAULT_PROVIDER}"),
        random=random.Provider(f"{name_prefix}{RANDOM_PROVIDER}", opts=opts),
        aws_endpoints=aws_endpoint_overrides(aws_cfg),
        vault_address=vault_cfg.get("address"),
        vault_namespace=vault_cfg.get("namespace"),
    )
