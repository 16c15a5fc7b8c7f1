"""`AgentAccess`: one agent's IAM role, its secrets and its Vault login, wired from plain values.

Every name and document arrives precomputed (see `agentfleet.components.fleet.agent_access_args`, which
calls the builders); this module only turns them into resources. Logical names derive from the
agent and credential names alone (`naming.logical_agent` / `logical_credential`), so adding,
removing or reordering other agents never touches this agent's resources.

Secret values: external credentials get none from here (a human writes them after `pulumi up`
with `agentfleet put-values`, `agentfleet.operate.values`; an SSM parameter starts with the
non-secret marker `naming.SSM_UNSET_VALUE`). `generated` ones get a first value from pulumi-random; after creation
the program ignores that value (`ignore_changes`), so a rotation is never undone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_random as random
import pulumi_vault as vault

from agentfleet.core import naming
from agentfleet.core.vault_logins import VaultLogin
from agentfleet.components.providers import ProviderSet

TOKEN = "agentfleet:index:AgentAccess"
GENERATED_LENGTH = 48
"""Characters of a generated credential (alphanumeric: ~285 bits, safe in headers and URLs)."""
AWS_VALUE_IGNORED = ("secret_string_wo_version", "version_stages")
INITIAL_VALUE_VERSION = 1
"""`secret_string_wo_version` of the first value: write-only inputs are sent once per version and
never stored in the Pulumi state; bumping it would rewrite the value, so it never changes."""
VAULT_VALUE_IGNORED = ("data_json",)


@dataclass(frozen=True)
class SecretSpec:
    """One credential of the agent, in every store it lives in."""

    credential: str
    """Credential name (unique within the agent); part of every logical name below."""
    description: str
    """Human-readable description of the secret."""
    tags: Mapping[str, str]
    """Tags of the secret (agent, owner, environment, classification, managed-by)."""
    generated: bool
    """True: the program writes a random first value; False: a human writes it out of band."""
    aws_secret_name: str | None = None
    """Secrets Manager name, or None when the credential is not stored in AWS."""
    aws_secret_policy: str | None = None
    """Resource policy JSON of the AWS secret (deny read to all but the allowed readers)."""
    vault_path: str | None = None
    """Path under the KV v2 mount, or None when the credential is not stored in Vault."""
    ssm_parameter_name: str | None = None
    """SSM SecureString parameter name, or None when the credential is not in Parameter Store."""


@dataclass(frozen=True)
class AgentAccessArgs:
    agent: str
    """Agent name: the component's name and the root of every child's logical name."""
    role_name: str
    """IAM role name (`naming.role_name`)."""
    trust_policy: str
    """Assume-role policy JSON (`plan.trust_policy`)."""
    max_session_seconds: int
    """Maximum session duration of the role."""
    inline_policy: pulumi.Input[str] | None
    """Least-privilege inline policy JSON (`plan.agent_iam_policy`); None when it would be empty."""
    tags: Mapping[str, str]
    """Tags of the agent's taggable resources."""
    vault_policy_name: str
    """Vault policy name (`naming.vault_policy_name`)."""
    vault_policy: str
    """Vault policy HCL (`plan.vault_policy`)."""
    vault_auth_backend: pulumi.Input[str] | None
    """Path of the Vault AWS auth backend; None: the stack has none (no login role)."""
    vault_auth_role_name: str
    """Name of the agent's role in the AWS auth backend."""
    vault_token_policies: Sequence[str]
    """Policies a login receives (`plan.vault_token_policies`: none while paused)."""
    vault_token_ttl_seconds: int
    """TTL of the agent's Vault tokens."""
    vault_token_max_ttl_seconds: int
    """Maximum TTL of the agent's Vault tokens (renewals stop there)."""
    vault_mount: pulumi.Input[str]
    """KV v2 mount path holding the agent's Vault credentials."""
    kms_key_arn: pulumi.Input[str]
    """The environment's KMS key: encrypts every AWS secret of the agent."""
    recovery_window_days: int
    """Days a deleted secret stays recoverable."""
    protect: bool
    """Protect the agent's secrets from deletion (protected stacks)."""
    providers: ProviderSet
    """Explicit providers; every resource names one."""
    secrets: Sequence[SecretSpec] = field(default_factory=tuple)
    """The agent's credentials."""
    renamed_from: str | None = None
    """The agent's previous name: the component is aliased to it (children named `<agent>/...`
    inherit the alias), and its AWS secrets are retained on delete, so the rename's replacement
    of a secret never deletes the old one (its value is copied by hand, docs/review.md)."""
    vault_token_bound_cidrs: Sequence[str] = ()
    """Ranges the agent's Vault logins must come from (`plan.vault_bound_cidrs`); empty = unbound."""
    vault_login: VaultLogin | None = None
    """JWT or Kubernetes login (`vault_logins.vault_login`); AWS logins use `vault_auth_backend`."""
    vault_login_backend: pulumi.Input[str] | None = None
    """Path output of the JWT/Kubernetes backend `vault_login` names (waits for the backend)."""
    pod_identity: tuple[str, str, str] | None = None
    """(cluster, namespace, service account): create the EKS Pod Identity association."""
    role_depends_on: Sequence[pulumi.Resource] = ()
    """Resources the role's trust names (IAM refuses a trust naming a missing OIDC provider)."""


class AgentAccess(pulumi.ComponentResource):
    """One agent: IAM role + inline policy, secrets + resource policies, Vault policy + login role."""

    role: aws.iam.Role
    role_arn: pulumi.Output[str]
    role_name: pulumi.Output[str]
    secrets: dict[str, aws.secretsmanager.Secret]
    """Credential name -> AWS secret (rotation and monitoring attach to these)."""
    secret_arns: pulumi.Output[dict[str, str]]
    """Credential name -> AWS secret ARN (credentials stored in AWS only)."""
    parameters: dict[str, aws.ssm.Parameter]
    """Credential name -> SSM SecureString parameter (credentials stored in `ssm` only)."""
    vault_policy_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: AgentAccessArgs,
        opts: pulumi.ResourceOptions | None = None,
        extend: Callable[["AgentAccess"], None] | None = None,
    ) -> None:
        """`extend`, if given, adds more children (rotation, monitoring) before outputs are registered."""
        aliases: list[pulumi.Input[str | pulumi.Alias]] | None = [pulumi.Alias(name=args.renamed_from)] if args.renamed_from else None
        super().__init__(
            TOKEN, name, None,
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(providers=args.providers.as_list(), aliases=aliases)),
        )
        self.args, self.logical = args, name
        p, a = args.providers, name  # children derive from this component's (fleet-scoped) name
        tags = dict(args.tags)

        self.role = aws.iam.Role(
            naming.logical_agent(a, "role"),
            name=args.role_name,
            assume_role_policy=args.trust_policy,
            max_session_duration=args.max_session_seconds,
            tags=tags,
            opts=pulumi.ResourceOptions.merge(self._child(p.aws), pulumi.ResourceOptions(
                depends_on=list(args.role_depends_on) or None)),
        )
        if args.pod_identity is not None:
            cluster, namespace, service_account = args.pod_identity
            aws.eks.PodIdentityAssociation(
                naming.logical_agent(a, "pod-identity"),
                cluster_name=cluster, namespace=namespace, service_account=service_account,
                role_arn=self.role.arn, tags=tags,
                opts=self._child(p.aws),
            )
        if args.inline_policy is not None:
            aws.iam.RolePolicy(
                naming.logical_agent(a, "policy"),
                role=self.role.name,
                name=naming.INLINE_POLICY_NAME,
                policy=args.inline_policy,
                opts=self._child(p.aws),
            )

        self.secrets, self.parameters = {}, {}
        for spec in args.secrets:
            self._credential(spec)

        vault_policy = vault.Policy(
            naming.logical_agent(a, "vault-policy"),
            name=args.vault_policy_name,
            policy=args.vault_policy,
            opts=self._child(p.vault),
        )
        # Referencing the policy's output (not just its name) makes the login role wait for it.
        token_policies = [vault_policy.name if n == args.vault_policy_name else n for n in args.vault_token_policies]
        # No AWS auth method on this stack (`agentfleet:vaultAwsAuth: false`): tokens come another way.
        if args.vault_auth_backend is not None:
            vault.aws.AuthBackendRole(
                naming.logical_agent(a, "vault-login"),
                backend=args.vault_auth_backend,
                role=args.vault_auth_role_name,
                auth_type="iam",
                bound_iam_principal_arns=[self.role.arn],
                resolve_aws_unique_ids=True,
                token_policies=token_policies,
                # No `default` policy: a paused agent's login gets nothing at all.
                token_no_default_policy=True,
                token_ttl=args.vault_token_ttl_seconds,
                token_max_ttl=args.vault_token_max_ttl_seconds,
                token_bound_cidrs=list(args.vault_token_bound_cidrs) or None,
                opts=self._child(p.vault),
            )

        if args.vault_login is not None and args.vault_login_backend is not None:
            self._login(args.vault_login, args.vault_login_backend, token_policies)

        self.role_arn = self.role.arn
        self.role_name = self.role.name
        self.vault_policy_name = vault_policy.name
        self.secret_arns = pulumi.Output.all(**{c: s.arn for c, s in self.secrets.items()})
        if extend is not None:
            extend(self)
        # The state records the names (known up front, so nothing waits on them); the ARNs are
        # attributes above and reach the stack outputs through AgentFleet.
        self.register_outputs({
            "roleName": args.role_name,
            "vaultPolicyName": args.vault_policy_name,
            "secretNames": {sp.credential: sp.aws_secret_name for sp in args.secrets if sp.aws_secret_name},
            "vaultPaths": {sp.credential: sp.vault_path for sp in args.secrets if sp.vault_path},
            "ssmParameters": {sp.credential: sp.ssm_parameter_name for sp in args.secrets if sp.ssm_parameter_name},
        })

    def _login(self, login: VaultLogin, backend: pulumi.Input[str], token_policies: Sequence[pulumi.Input[str]]) -> None:
        """A login role bound to exactly this agent's identity; short TTLs; never `default`."""
        p, name = self.args.providers, naming.logical_agent(self.logical, "vault-login")
        cidrs = list(self.args.vault_token_bound_cidrs) or None
        if login.method == "jwt":
            vault.jwt.AuthBackendRole(
                name, backend=backend, role_name=login.role_name, role_type="jwt",
                bound_audiences=list(login.bound_audiences), bound_subject=login.bound_subject,
                bound_claims=dict(login.bound_claims) or None, bound_claims_type="string",
                user_claim="sub", token_policies=list(token_policies),
                token_ttl=login.token_ttl_seconds, token_max_ttl=login.token_max_ttl_seconds,
                token_no_default_policy=True, token_bound_cidrs=cidrs,
                opts=self._child(p.vault),
            )
        elif login.method == "kubernetes":
            assert login.service_account is not None and login.namespace is not None
            vault.kubernetes.AuthBackendRole(
                name, backend=backend, role_name=login.role_name,
                bound_service_account_names=[login.service_account],
                bound_service_account_namespaces=[login.namespace],
                audience=login.bound_audiences[0] if login.bound_audiences else None,
                token_policies=list(token_policies),
                token_ttl=login.token_ttl_seconds, token_max_ttl=login.token_max_ttl_seconds,
                token_no_default_policy=True, token_bound_cidrs=cidrs,
                opts=self._child(p.vault),
            )

    def _child(
        self, provider: pulumi.ProviderResource, *, protect: bool = False, ignore_changes: Sequence[str] = ()
    ) -> pulumi.ResourceOptions:
        """Children: parented here, explicit provider, optional protect/ignore_changes."""
        return pulumi.ResourceOptions(
            parent=self, provider=provider, protect=protect, ignore_changes=list(ignore_changes) or None,
        )

    def _credential(self, spec: SecretSpec) -> None:
        args, p = self.args, self.args.providers
        a, c = self.logical, spec.credential  # children derive from the component's name
        tags = dict(spec.tags)
        initial: random.RandomPassword | None = None
        if spec.generated:
            initial = random.RandomPassword(
                naming.logical_credential(a, c, "initial-value"),
                length=GENERATED_LENGTH, special=False,
                opts=self._child(p.random),
            )
        if spec.aws_secret_name is not None:
            secret = aws.secretsmanager.Secret(
                naming.logical_credential(a, c, "secret"),
                name=spec.aws_secret_name,
                description=spec.description,
                kms_key_id=args.kms_key_arn,
                recovery_window_in_days=args.recovery_window_days,
                tags=tags,
                opts=pulumi.ResourceOptions.merge(self._child(p.aws, protect=args.protect),
                                                  pulumi.ResourceOptions(retain_on_delete=bool(args.renamed_from) or None)),
            )
            self.secrets[c] = secret
            if spec.aws_secret_policy is not None:
                aws.secretsmanager.SecretPolicy(
                    naming.logical_credential(a, c, "secret-policy"),
                    secret_arn=secret.arn,
                    policy=spec.aws_secret_policy,
                    block_public_policy=True,
                    opts=self._child(p.aws),
                )
            if initial is not None:
                aws.secretsmanager.SecretVersion(
                    naming.logical_credential(a, c, "initial-version"),
                    secret_id=secret.id,
                    # Write-only: the value reaches AWS but never the Pulumi state (the random
                    # result itself stays a Pulumi secret in the state, encrypted by the stack's
                    # secrets provider; see docs/policy.md).
                    secret_string_wo=initial.result,
                    secret_string_wo_version=INITIAL_VALUE_VERSION,
                    version_stages=[naming.INITIAL_VERSION_STAGE],
                    opts=self._child(p.aws, ignore_changes=AWS_VALUE_IGNORED),
                )
        if spec.ssm_parameter_name is not None:
            # Only `manual` credentials live here (the loader refuses others), so the value is always
            # a human's: AWS needs one at creation, so the parameter starts with a non-secret marker,
            # as a write-only input (never in the state, never read back), written once (version 1):
            # the program never writes again over the human's `put-parameter --overwrite`.
            self.parameters[c] = aws.ssm.Parameter(
                naming.logical_credential(a, c, "parameter"),
                name=spec.ssm_parameter_name,
                type="SecureString",
                key_id=args.kms_key_arn,
                description=spec.description,
                value_wo=naming.SSM_UNSET_VALUE,
                value_wo_version=1,
                tier="Standard",
                tags=tags,
                opts=self._child(p.aws, protect=args.protect),
            )
        if spec.vault_path is not None and initial is not None:
            vault.kv.SecretV2(
                naming.logical_credential(a, c, "vault-initial-version"),
                mount=args.vault_mount,
                name=spec.vault_path,
                data_json=pulumi.Output.json_dumps({naming.VAULT_VALUE_KEY: initial.result}),
                # Never read the (possibly rotated) value back into the Pulumi state.
                disable_read=True,
                custom_metadata={"data": tags},
                opts=self._child(p.vault, protect=args.protect, ignore_changes=VAULT_VALUE_IGNORED),
            )
