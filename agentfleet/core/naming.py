"""Every name and path of the layout, computed in this one module.

Names derive from (prefix, environment, agent, credential) only, never from list positions, so
adding, removing or reordering agents never renames another agent's resources. Names that are
fine for the fleet file but too long for AWS are shortened deterministically (truncate + hash).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable

from agentfleet.core.settings import StackSettings

ROLE_NAME_MAX = 64  # IAM role name limit
MANAGED_BY = "agentfleet"
"""Value of the `managed-by` tag on every resource this project creates."""


def shorten(name: str, limit: int) -> str:
    """Keep `name` if it fits; else truncate and append 8 hex chars of its SHA-256 (unique)."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-')}-{digest}"


def role_name_prefix(s: StackSettings) -> str:
    """Start of every IAM role name of the environment (agents', rotation, trail delivery)."""
    return f"{s.secret_prefix}-{s.environment}-"


def role_name(s: StackSettings, agent: str) -> str:
    return shorten(f"{role_name_prefix(s)}{agent}", ROLE_NAME_MAX)


def rotation_role_name(s: StackSettings, agent: str) -> str:
    return shorten(f"{s.secret_prefix}-{s.environment}-{agent}-rotation", ROLE_NAME_MAX)


def shared_rotation_role_name(s: StackSettings, strategy: str) -> str:
    return shorten(f"{s.secret_prefix}-{s.environment}-rotation-{strategy}", ROLE_NAME_MAX)


def role_arn(s: StackSettings, name: str) -> str:
    """Roles are created without a path, so their ARN follows from the name: no lookup needed."""
    return f"arn:{s.partition}:iam::{s.aws_account_id}:role/{name}"


def secret_env_prefix(s: StackSettings) -> str:
    """Every managed secret's name starts with this (the age reporter lists by it)."""
    return f"{s.secret_prefix}/{s.environment}/"


def secret_name(s: StackSettings, agent: str, credential: str) -> str:
    return f"{secret_env_prefix(s)}{agent}/{credential}"


def secret_arn_pattern(s: StackSettings, agent: str, credential: str) -> str:
    """The secret's ARN with AWS's 6-character random suffix as `??????`: this secret only."""
    return (
        f"arn:{s.partition}:secretsmanager:{s.aws_region}:{s.aws_account_id}:secret:"
        f"{secret_name(s, agent, credential)}-??????"
    )


def ssm_parameter_name(s: StackSettings, agent: str, credential: str) -> str:
    """SSM Parameter Store name: `/<prefix>/<env>/<agent>/<credential>` (a hierarchy, so the
    agent's folder is its own and `GetParametersByPath` on another agent's folder finds nothing)."""
    return f"/{s.secret_prefix}/{s.environment}/{agent}/{credential}"


def ssm_parameter_arn(s: StackSettings, agent: str, credential: str) -> str:
    """Exact ARN (no wildcard): parameters have no random suffix. The name's leading `/` is the
    one after `parameter`."""
    return (
        f"arn:{s.partition}:ssm:{s.aws_region}:{s.aws_account_id}:parameter"
        f"{ssm_parameter_name(s, agent, credential)}"
    )


def ssm_agent_parameters_pattern(s: StackSettings, agent: str) -> str:
    """Every parameter of the agent's folder; the `/` after the name keeps `bill` from `billing`."""
    return f"arn:{s.partition}:ssm:{s.aws_region}:{s.aws_account_id}:parameter/{s.secret_prefix}/{s.environment}/{agent}/*"


SSM_UNSET_VALUE = "agentfleet:unset"
"""Value of an SSM parameter whose credential a human has not written yet. AWS requires a value at
creation; this marker is not a secret, the program never writes anything else for an external
credential, and it ignores the value afterwards so a human's write is never undone."""


def vault_path(s: StackSettings, agent: str, credential: str) -> str:
    """Path under the KV v2 mount (the API adds `data/` or `metadata/` after the mount)."""
    return f"{vault_env_prefix(s)}{agent}/{credential}"


def vault_location(mount: str, path: str) -> str:
    """`<mount>/<path>`: how a KV v2 secret is named to people (`bao kv get <mount>/<path>`)."""
    return f"{mount}/{path}"


def vault_api_path(mount: str, kind: str, path: str) -> str:
    """The HTTP API / policy path of a KV v2 secret: `<mount>/data/<path>` or `<mount>/metadata/<path>`."""
    return f"{mount}/{kind}/{path}"


@dataclass(frozen=True)
class Locations:
    """Where one credential's value lives, per store; None = not kept in that store."""

    secret_name: str | None
    vault_mount: str | None
    vault_path: str | None
    """Path under the mount."""
    ssm_parameter: str | None = None
    """SSM Parameter Store name (`ssm_parameter_name`)."""

    @property
    def vault_location(self) -> str | None:
        return vault_location(self.vault_mount, self.vault_path) if self.vault_mount and self.vault_path else None


def credential_locations(s: StackSettings, agent: str, credential: str, stores: Iterable[str]) -> Locations:
    """The one place that maps a credential's stores to its secret name and Vault path."""
    kept = set(stores)
    return Locations(
        secret_name=secret_name(s, agent, credential) if "aws" in kept else None,
        vault_mount=s.vault_mount if "vault" in kept else None,
        vault_path=vault_path(s, agent, credential) if "vault" in kept else None,
        ssm_parameter=ssm_parameter_name(s, agent, credential) if "ssm" in kept else None,
    )


def vault_env_prefix(s: StackSettings) -> str:
    """Every Vault path of the environment starts with this (under the KV mount)."""
    return f"{s.environment}/"


def vault_agent_prefix(s: StackSettings, agent: str) -> str:
    """The agent's folder; the trailing slash keeps `bill/` from matching `billing/`."""
    return f"{s.environment}/{agent}/"


def vault_policy_name(s: StackSettings, agent: str) -> str:
    return f"{s.secret_prefix}-{s.environment}-{agent}"


def vault_auth_role_name(s: StackSettings, agent: str) -> str:
    return f"{s.secret_prefix}-{s.environment}-{agent}"


def kms_alias(s: StackSettings) -> str:
    return f"alias/{s.secret_prefix}-{s.environment}"


def metrics_namespace(s: StackSettings, agent: str) -> str:
    """CloudWatch namespace an agent may publish its own call counts to."""
    return f"AgentFleet/{s.environment}/{agent}"


def kms_key_placeholder(s: StackSettings) -> str:
    """Stands for the environment key's ARN in offline plans (the real one exists after `up`)."""
    return f"arn:{s.partition}:kms:{s.aws_region}:{s.aws_account_id}:key/<{kms_alias(s)}>"


TAG_AGENT, TAG_OWNER, TAG_ENVIRONMENT, TAG_CLASSIFICATION, TAG_MANAGED_BY = (
    "agent", "owner", "environment", "classification", "managed-by",
)
SHARED_AGENT_TAG = "_shared"
REQUIRED_TAGS = (TAG_AGENT, TAG_OWNER, TAG_ENVIRONMENT, TAG_MANAGED_BY)


def tags(
    s: StackSettings, *, agent: str | None = None, owner: str | None = None,
    classification: str | None = None, extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The tag set of a resource. Environment-wide resources carry agent `_shared` (no agent name can start with `_`)."""
    out = {
        TAG_AGENT: agent or SHARED_AGENT_TAG,
        TAG_OWNER: owner or "platform",
        TAG_ENVIRONMENT: s.environment,
        TAG_MANAGED_BY: MANAGED_BY,
    }
    if classification is not None:
        out[TAG_CLASSIFICATION] = classification
    out.update(extra or {})
    return dict(sorted(out.items()))


def audit_namespace(s: StackSettings) -> str:
    """CloudTrail-derived metrics of the environment, one series per role (dimension `Role`);
    agents cannot write here (they may only publish to their own `metrics_namespace`)."""
    return f"AgentFleetAudit/{s.environment}"


METRIC_FILTER_NAME_MAX = 512  # PutMetricFilter filterName


def metric_filter_name(s: StackSettings, kind: str) -> str:
    """A trail metric filter of the environment: filter names are per log group, and a shared
    (organisation) trail log group may carry several stacks' filters, so the name carries the
    prefix and the environment."""
    return shorten(f"{s.secret_prefix}-{s.environment}-{kind}", METRIC_FILTER_NAME_MAX)


def alarm_name(s: StackSettings, agent: str, kind: str) -> str:
    return f"{s.secret_prefix}-{s.environment}-{agent}-{kind}"


def alarm_topic_name(s: StackSettings) -> str:
    return f"{s.secret_prefix}-{s.environment}-alerts"


def trail_name(s: StackSettings) -> str:
    return f"{s.secret_prefix}-{s.environment}-trail"


def trail_log_group_name(s: StackSettings) -> str:
    return f"/{s.secret_prefix}/{s.environment}/cloudtrail"


def trail_events_log_group(s: StackSettings) -> str:
    """Where the environment's CloudTrail events are in CloudWatch Logs: an existing trail's group
    (`agentfleet:cloudtrailLogGroup`) or the stack's own trail's."""
    return s.cloudtrail_log_group or trail_log_group_name(s)


def trail_bucket_name(s: StackSettings) -> str:
    """S3 names are global: the account id keeps two accounts' trails apart."""
    return f"{s.secret_prefix}-{s.environment}-trail-{s.aws_account_id}"


def trail_arn(s: StackSettings) -> str:
    return f"arn:{s.partition}:cloudtrail:{s.aws_region}:{s.aws_account_id}:trail/{trail_name(s)}"


def log_group_arn(s: StackSettings, name: str) -> str:
    return f"arn:{s.partition}:logs:{s.aws_region}:{s.aws_account_id}:log-group:{name}"


def alarm_topic_arn(s: StackSettings) -> str:
    return f"arn:{s.partition}:sns:{s.aws_region}:{s.aws_account_id}:{alarm_topic_name(s)}"


def trail_logs_role_name(s: StackSettings) -> str:
    return trail_logs_role_for(trail_name(s))


def trail_logs_role_for(trail: str) -> str:
    """The role a trail delivers to CloudWatch Logs as: its name + `-logs` (the pack pairs them)."""
    return shorten(f"{trail}-logs", ROLE_NAME_MAX)


# ---- Pulumi logical names (URN names) of the components' resources ----
# Agent and credential names cannot contain '/', so `<agent>/<credential>/<what>` is unambiguous
# where `<agent>-<credential>-<what>` is not (agent `a` + credential `b-c` vs agent `a-b` + `c`).
# They depend on nothing else: adding, removing or reordering agents renames nothing.

FLEET_COMPONENT = "fleet"
ENVIRONMENT_COMPONENT = "environment"
ENVIRONMENT_REFERENCE_COMPONENT = "environment-ref"
"""An agent shard's reference to its environment stack (components.environment.EnvironmentReference)."""
INLINE_POLICY_NAME = "agentfleet-least-privilege"
"""Name of the agent role's inline policy (inline names are per role)."""
INITIAL_VERSION_STAGE = "agentfleet-initial"
"""Staging label of a generated secret's first version: AWS makes the first version AWSCURRENT
by itself, and a label keeps the version from being deprecated and deleted, so Pulumi never
sees it vanish and never writes it again over a rotated value."""
VAULT_VALUE_KEY = "value"
"""Key of the credential inside its Vault KV v2 secret (`bao kv get -field=value ...`)."""


def fleet_scope(fleet: str) -> str:
    """Prefix of every logical name under the AgentFleet named `fleet`, so several fleets in one
    program give distinct URNs. The default fleet name keeps the unprefixed names of 0.1 (an
    upgrade replaces nothing); any other name prefixes all of its children with `<fleet>/`."""
    return "" if fleet == FLEET_COMPONENT else f"{fleet}/"


def logical_agent(agent: str, what: str) -> str:
    return f"{agent}/{what}"


def logical_credential(agent: str, credential: str, what: str) -> str:
    return f"{agent}/{credential}/{what}"


def account_root_arn(s: StackSettings) -> str:
    """The account principal: in a key policy it delegates access control to IAM policies."""
    return f"arn:{s.partition}:iam::{s.aws_account_id}:root"


def kms_key_description(s: StackSettings) -> str:
    return f"agentfleet {s.environment}: encrypts every agent secret of the environment"


# ---- rotation (agentfleet/core/rotation_plan.py, components/rotation_infra.py) ----

SHARED_SECRET_FOLDER = "_rotation"
"""Folder of environment-level rotation secrets (provider admin keys): no agent name starts with `_`."""


def rotation_function_name(s: StackSettings, agent: str) -> str:
    """Per-agent rotation Lambda: same name as its role (Lambda names are also <= 64 chars)."""
    return rotation_role_name(s, agent)


def shared_rotation_function_name(s: StackSettings, strategy: str) -> str:
    return shared_rotation_role_name(s, strategy)


def rotation_vault_name(rotation_role: str) -> str:
    """The Vault policy and AWS-auth role of a rotation function: its IAM role's name. Never an agent's
    Vault name (`<prefix>-<env>-<agent>`): that string is also the agent's role name whenever it is
    short enough to equal a rotation role name, and `plan.check_unique_names` refuses those clashes."""
    return rotation_role


def lambda_log_group_name(function_name: str) -> str:
    """The log group Lambda writes to; created by the stack so it has a retention and tags."""
    return f"/aws/lambda/{function_name}"


def lambda_function_arn(s: StackSettings, function_name: str) -> str:
    return f"arn:{s.partition}:lambda:{s.aws_region}:{s.aws_account_id}:function:{function_name}"


def rotation_metrics_namespace(s: StackSettings) -> str:
    """Rotation health metrics of the environment (secret age, revoke failures)."""
    return f"AgentFleet/{s.environment}/Rotation"


def environment_secrets_arn_pattern(s: StackSettings) -> str:
    """Every secret of the environment: only ever granted with tag conditions (shared rotation mode)."""
    return f"arn:{s.partition}:secretsmanager:{s.aws_region}:{s.aws_account_id}:secret:{s.secret_prefix}/{s.environment}/*"


def provider_admin_secret_name(s: StackSettings, provider: str) -> str:
    """The provider's admin key (e.g. OpenAI admin API key), read only by rotation functions."""
    return f"{s.secret_prefix}/{s.environment}/{SHARED_SECRET_FOLDER}/{provider}-admin"


def provider_admin_secret_arn_pattern(s: StackSettings, provider: str) -> str:
    return (
        f"arn:{s.partition}:secretsmanager:{s.aws_region}:{s.aws_account_id}:secret:"
        f"{provider_admin_secret_name(s, provider)}-??????"
    )


def environment_functions_arn_pattern(s: StackSettings) -> str:
    """The environment's Lambda functions (only ever granted with tag conditions)."""
    return f"arn:{s.partition}:lambda:{s.aws_region}:{s.aws_account_id}:function:{s.secret_prefix}-{s.environment}-*"


def rotation_sweep_schedule_name(function_name: str, index: int) -> str:
    return shorten(f"{function_name}-sweep-{index}", ROLE_NAME_MAX)


def reminder_schedule_name(s: StackSettings, agent: str, credential: str) -> str:
    return shorten(f"{s.secret_prefix}-{s.environment}-{agent}-{credential}-rotate", ROLE_NAME_MAX)


def reminder_schedule_group_name(s: StackSettings) -> str:
    return f"{s.secret_prefix}-{s.environment}-rotation"


def scheduler_role_name(s: StackSettings) -> str:
    """The role EventBridge Scheduler uses for reminders (SNS) and revocation sweeps (Lambda)."""
    return shorten(f"{s.secret_prefix}-{s.environment}-rotation-scheduler", ROLE_NAME_MAX)


def age_reporter_name(s: StackSettings) -> str:
    """Function and role of the daily secret-age reporter."""
    return shorten(f"{s.secret_prefix}-{s.environment}-rotation-age", ROLE_NAME_MAX)


def age_report_schedule_name(s: StackSettings) -> str:
    return shorten(f"{s.secret_prefix}-{s.environment}-rotation-age-daily", ROLE_NAME_MAX)


# ---- runtimes and logins (agentfleet/core/plan.py trust_policy, agentfleet/core/vault_logins.py) ----


def oidc_provider_arn(s: StackSettings, issuer_host: str) -> str:
    """IAM names an OIDC provider by its issuer without the scheme, so its ARN needs no lookup."""
    return f"arn:{s.partition}:iam::{s.aws_account_id}:oidc-provider/{issuer_host}"


def eks_cluster_arn(s: StackSettings, cluster: str) -> str:
    return f"arn:{s.partition}:eks:{s.aws_region}:{s.aws_account_id}:cluster/{cluster}"


def issuer_key(issuer_host: str) -> str:
    """A short, path-safe stand-in for an OIDC issuer (IRSA issuers are long URLs)."""
    return hashlib.sha256(issuer_host.encode()).hexdigest()[:10]


def vault_jwt_backend_path(s: StackSettings, key: str) -> str:
    """One JWT auth backend per issuer (a backend trusts exactly one issuer's keys)."""
    return f"{s.secret_prefix}-{s.environment}-jwt-{key}"


def vault_kubernetes_backend_path(s: StackSettings, key: str) -> str:
    """One Kubernetes auth backend per cluster (each reviews tokens against its own API server)."""
    return f"{s.secret_prefix}-{s.environment}-k8s-{key}"


def logical_environment(prefix: str, what: str) -> str:
    """Logical name of an environment-level child (prefix = the fleet's scope)."""
    return f"{prefix}{what}"
