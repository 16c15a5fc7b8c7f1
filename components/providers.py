"""Explicit AWS, Vault and random providers, configured from the stack's config.

Every resource of the project names one of these providers, so nothing silently falls back to
a default provider configured from the operator's environment (wrong account, wrong Vault).
They read the usual provider namespaces (`aws:*`, `vault:*`): a stack file such as
`Pulumi.local.yaml` points them at a local emulator and a local OpenBao. Secret provider settings
(`vault:token`, `aws:secretKey` ...) are read only as Pulumi secrets, i.e. values set with
`pulumi config set --secret`, or left to the standard environment variables.
"""

from __future__ import annotations

from dataclasses import dataclass
import pulumi
import pulumi_aws as aws
import pulumi_random as random
import pulumi_vault as vault

from agentfleet.core.settings import StackSettings

AWS_PROVIDER, VAULT_PROVIDER, RANDOM_PROVIDER = "aws", "vault", "random"
"""Logical names of the providers; renaming one would replace every resource using it."""


@dataclass(frozen=True)
class ProviderSet:
    """The providers every component passes down (`provider=` on each resource)."""

    aws: aws.Provider
    vault: vault.Provider
    random: random.Provider

    def as_list(self) -> list[pulumi.ProviderResource]:
        """For `ResourceOptions(providers=...)` on components, so children inherit them."""
        return [self.aws, self.vault, self.random]


def aws_provider(settings: StackSettings, cfg: pulumi.Config, opts: pulumi.ResourceOptions | None) -> aws.Provider:
    """pulumi-aws v7 provider from `aws:*` config; the region always comes from the settings."""
    skip_account = cfg.get_bool("skipRequestingAccountId")
    return aws.Provider(
        AWS_PROVIDER,
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


def vault_provider(cfg: pulumi.Config, opts: pulumi.ResourceOptions | None) -> vault.Provider:
    """pulumi-vault from `vault:*` config; the token only as a Pulumi secret (or VAULT_TOKEN)."""
    return vault.Provider(
        VAULT_PROVIDER,
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


def providers_from_config(settings: StackSettings, opts: pulumi.ResourceOptions | None = None) -> ProviderSet:
    """Create the stack's three providers (call once per program)."""
    return ProviderSet(
        aws=aws_provider(settings, pulumi.Config("aws"), opts),
        vault=vault_provider(pulumi.Config("vault"), opts),
        random=random.Provider(RANDOM_PROVIDER, opts=opts),
    )
