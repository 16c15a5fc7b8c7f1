"""Benchmark baseline: `__main__.py` without components — the same custom resources, the same
inputs (from the same builders) and the same stack outputs, declared flat under the stack.

Not a supported program: it exists so bench/bench_eval.py can price the components. Keep it in
step with components/environment.py and components/agent_access.py (the benchmark refuses to
compare runs whose custom resource counts differ).
"""

from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random
import pulumi_vault as vault

from agentfleet.core import iam_documents as iam
from agentfleet.core import naming
from agentfleet.core import plan
from agentfleet.components.agent_access import AWS_VALUE_IGNORED, GENERATED_LENGTH, VAULT_VALUE_IGNORED
from agentfleet.components.environment import KMS_DELETION_WINDOW_DAYS
from agentfleet.core.project import FLEET_FILE_KEY, fleet_file_path
from agentfleet.core.loader import load_fleet
from agentfleet.core.model import ResolvedAgent
from agentfleet.components.providers import providers_from_config
from agentfleet.core.settings import PROJECT, settings_from_config


def _config(key: str) -> str | None:
    namespace, _, name = key.partition(":")
    return pulumi.Config(namespace).get(name)


s = settings_from_config(pulumi.get_stack(), _config)
fleet = load_fleet(fleet_file_path(Path(pulumi.get_root_directory()), pulumi.Config(PROJECT).get(FLEET_FILE_KEY)))
plan.check_unique_names(s, fleet)
p = providers_from_config(s)


def o(provider: pulumi.ProviderResource, **kw: Any) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(provider=provider, **kw)


def inline_policy(agent: ResolvedAgent) -> pulumi.Output[str]:
    return key.arn.apply(lambda arn: iam.to_json(plan.agent_iam_policy(s, agent, arn)))


key = aws.kms.Key("kms-key", description=naming.kms_key_description(s), enable_key_rotation=True,
                  deletion_window_in_days=KMS_DELETION_WINDOW_DAYS, policy=iam.to_json(plan.kms_key_policy(s)),
                  tags=naming.tags(s), opts=o(p.aws, protect=s.protect))
alias = aws.kms.Alias("kms-alias", name=naming.kms_alias(s), target_key_id=key.key_id, opts=o(p.aws))
mount = vault.Mount("kv-mount", path=s.vault_mount, type="kv", options={"version": "2"},
                    description="agentfleet: per-agent credentials (KV v2)", opts=o(p.vault, protect=s.protect))
auth = vault.AuthBackend("aws-auth", type="aws", path=s.vault_aws_auth_path,
                         description="agentfleet: agents log in with their IAM role", opts=o(p.vault, protect=s.protect))
# The OIDC providers agents' trusts name (the sample's GitHub Actions agent), created by the stack.
oidc = {spec.issuer_host: aws.iam.OpenIdConnectProvider(
    f"oidc-provider/{spec.issuer_host}", url=spec.url, client_id_lists=list(spec.client_ids), tags=naming.tags(s),
    opts=o(p.aws)) for spec in plan.oidc_providers(s, fleet)}

agent_outputs: dict[str, Any] = {}
for a in sorted(fleet.agents, key=lambda a: a.name):
    tags = naming.tags(s, agent=a.name, owner=a.owner)
    secret_arns: dict[str, Any] = {}
    role = aws.iam.Role(naming.logical_agent(a.name, "role"), name=naming.role_name(s, a.name),
                        assume_role_policy=iam.to_json(plan.trust_policy(s, a)),
                        max_session_duration=s.max_session_seconds, tags=tags,
                        opts=o(p.aws, depends_on=[oidc[h]] if (h := plan.trust_provider_host(a)) in oidc else None))
    aws.iam.RolePolicy(naming.logical_agent(a.name, "policy"), role=role.name, name=naming.INLINE_POLICY_NAME,
                       policy=inline_policy(a), opts=o(p.aws))
    for c in a.credentials:
        stags = naming.tags(s, agent=a.name, owner=a.owner, classification=c.classification)
        initial = None
        if plan.has_generated_value(c.rotation_strategy):
            initial = random.RandomPassword(naming.logical_credential(a.name, c.name, "initial-value"),
                                            length=GENERATED_LENGTH, special=False, opts=o(p.random))
        if "aws" in c.stores:
            secret = aws.secretsmanager.Secret(
                naming.logical_credential(a.name, c.name, "secret"), name=naming.secret_name(s, a.name, c.name),
                description=f"{c.service} {c.type} of agent {a.name} ({c.classification})",
                kms_key_id=key.arn, recovery_window_in_days=s.recovery_window_days, tags=stags,
                opts=o(p.aws, protect=s.protect))
            secret_arns[c.name] = secret.arn
            aws.secretsmanager.SecretPolicy(
                naming.logical_credential(a.name, c.name, "secret-policy"), secret_arn=secret.arn,
                policy=iam.to_json(plan.secret_resource_policy(s, a, c)), block_public_policy=True, opts=o(p.aws))
            if initial is not None:
                aws.secretsmanager.SecretVersion(
                    naming.logical_credential(a.name, c.name, "initial-version"), secret_id=secret.id,
                    secret_string=initial.result, version_stages=[naming.INITIAL_VERSION_STAGE],
                    opts=o(p.aws, ignore_changes=list(AWS_VALUE_IGNORED)))
        if "vault" in c.stores and initial is not None:
            vault.kv.SecretV2(
                naming.logical_credential(a.name, c.name, "vault-initial-version"), mount=mount.path,
                name=naming.vault_path(s, a.name, c.name),
                data_json=pulumi.Output.json_dumps({naming.VAULT_VALUE_KEY: initial.result}), disable_read=True,
                custom_metadata={"data": stags},
                opts=o(p.vault, protect=s.protect, ignore_changes=list(VAULT_VALUE_IGNORED)))
    policy = vault.Policy(naming.logical_agent(a.name, "vault-policy"), name=naming.vault_policy_name(s, a.name),
                          policy=plan.vault_policy(s, a), opts=o(p.vault))
    vault.aws.AuthBackendRole(
        naming.logical_agent(a.name, "vault-login"), backend=auth.path, role=naming.vault_auth_role_name(s, a.name),
        auth_type="iam", bound_iam_principal_arns=[role.arn], resolve_aws_unique_ids=True,
        token_policies=[policy.name] if not a.paused else [], token_ttl=s.vault_token_ttl_seconds,
        token_max_ttl=2 * s.vault_token_ttl_seconds, opts=o(p.vault))
    agent_outputs[a.name] = pulumi.Output.all(
        role_arn=role.arn, secret_arns=pulumi.Output.all(**secret_arns), vault_policy_name=policy.name,
    )

pulumi.export("environment", s.environment)
pulumi.export("agents", pulumi.Output.all(**agent_outputs))
pulumi.export("kmsKeyArn", key.arn)
pulumi.export("kmsKeyAlias", alias.name)
pulumi.export("vaultMount", mount.path)
pulumi.export("vaultAwsAuthPath", auth.path)
