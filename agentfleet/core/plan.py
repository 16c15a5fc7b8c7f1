"""The pure builders: from a validated fleet and stack settings to every document and name.

`build_plan` is the single source the CLI (`plan`, `audit`, `diff`), the policy pack, the
components and the tests read. Each per-agent builder takes plain strings (the KMS key ARN is a
parameter, because it exists only after deployment; offline plans pass a placeholder).
"""

from __future__ import annotations

import copy
import marshal
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Sequence

from agentfleet.core import iam_documents as iam
from agentfleet.core import naming
from agentfleet.core.jsontext import dumps_indented
from agentfleet.core import reuse
from agentfleet.core import sharding
from agentfleet.core import credential_rules as rules
from agentfleet.core import vault_logins
from agentfleet.core.model import AUTOMATED_STRATEGIES, Fleet, ResolvedAgent, ResolvedCredential, is_automated
from agentfleet.core.settings import StackSettings
from agentfleet.core.trust_words import trust_words
from agentfleet.core.vault_policies import agent_policy_hcl


def trust_policy(s: StackSettings, agent: ResolvedAgent) -> dict[str, Any]:
    """Who may assume the agent's role: exactly the runtime the fleet file declares, nobody else.
    (Once per verb: the plan and the quota model both read it, `agentfleet.core.reuse`.)"""
    return reuse.by_value("trust policy", (s,), (agent,), lambda: iam.Document((trust_statement(s, agent),)).to_dict())


def trust_statement(s: StackSettings, agent: ResolvedAgent) -> iam.Statement:
    rt, sid = agent.runtime, "AgentRuntime"
    if rt.service is not None:
        return iam.assume_by_service_in_account(sid, rt.service, s.aws_account_id, rt.source_arn)
    if rt.role_arns is not None:
        return iam.assume_by_roles(sid, rt.role_arns)
    if rt.github_oidc is not None:
        gh = rt.github_oidc
        subject = f"ref:{gh.ref}" if gh.ref else f"environment:{gh.environment}"
        return iam.assume_by_github(sid, github_oidc_provider_arn(s), gh.repository, subject)
    if rt.eks_pod_identity is not None:
        eks = rt.eks_pod_identity
        return iam.assume_by_eks_pod_identity(sid, s.aws_account_id, eks.cluster, eks.namespace, eks.service_account)
    assert rt.irsa is not None
    ir = rt.irsa
    return iam.assume_by_oidc(sid, irsa_provider_arn(s, ir.oidc_issuer), ir.oidc_issuer,
                              iam.irsa_subject(ir.namespace, ir.service_account))


def github_oidc_provider_arn(s: StackSettings) -> str:
    return s.github_oidc_provider_arn or naming.oidc_provider_arn(s, iam.GITHUB_OIDC_HOST)


def irsa_provider_arn(s: StackSettings, issuer: str) -> str:
    return s.irsa_oidc_provider_arns.get(issuer) or naming.oidc_provider_arn(s, issuer)


@dataclass(frozen=True)
class OidcProviderSpec:
    """An IAM OIDC provider the stack creates because an agent's trust names it and none exists."""

    issuer_host: str
    url: str
    client_ids: tuple[str, ...] = (iam.STS_AUDIENCE,)


def oidc_providers(s: StackSettings, fleet: Fleet) -> list[OidcProviderSpec]:
    hosts: set[str] = set()
    for a in fleet.agents:
        if a.runtime.github_oidc is not None and s.github_oidc_provider_arn is None:
            hosts.add(iam.GITHUB_OIDC_HOST)
        if a.runtime.irsa is not None and a.runtime.irsa.oidc_issuer not in s.irsa_oidc_provider_arns:
            hosts.add(a.runtime.irsa.oidc_issuer)
    return [OidcProviderSpec(h, f"https://{h}") for h in sorted(hosts)]


def trust_provider_host(agent: ResolvedAgent) -> str | None:
    """The OIDC issuer host the agent's trust names (its role must wait for that provider)."""
    if agent.runtime.github_oidc is not None:
        return iam.GITHUB_OIDC_HOST
    if agent.runtime.irsa is not None:
        return agent.runtime.irsa.oidc_issuer
    return None


def identity_token_audiences(s: StackSettings, agent: ResolvedAgent) -> list[str]:
    """Audiences the agent's role may mint identity tokens for: its keyless credentials' services
    and, when it logs in to Vault with one, the Vault audience. Empty: no such permission."""
    auds = {c.audience for c in agent.credentials if c.keyless and c.audience}
    login = vault_logins.vault_login(s, agent)
    if login is not None and login.mints_aws_identity_token:
        auds.update(login.bound_audiences)
    return sorted(auds)


def federation_statements(s: StackSettings, agent: ResolvedAgent) -> list[iam.Statement]:
    auds = identity_token_audiences(s, agent)
    return [iam.get_web_identity_token("MintIdentityTokens", auds, s.federation_token_max_seconds)] if auds else []


def needs_outbound_federation(s: StackSettings, fleet: Fleet) -> bool:
    """True: the stack enables the account's outbound identity federation (no issuer configured)."""
    return s.aws_outbound_issuer is None and any(identity_token_audiences(s, a) for a in fleet.agents)


def aws_credentials(agent: ResolvedAgent) -> tuple[ResolvedCredential, ...]:
    return tuple(c for c in agent.credentials if "aws" in c.stores)


def vault_credentials(agent: ResolvedAgent) -> tuple[ResolvedCredential, ...]:
    return tuple(c for c in agent.credentials if "vault" in c.stores)


def ssm_credentials(agent: ResolvedAgent) -> tuple[ResolvedCredential, ...]:
    return tuple(c for c in agent.credentials if "ssm" in c.stores)


def agent_secret_arns(s: StackSettings, agent: ResolvedAgent) -> list[str]:
    return sorted(naming.secret_arn_pattern(s, agent.name, c.name) for c in aws_credentials(agent))


def agent_parameter_arns(s: StackSettings, agent: ResolvedAgent) -> list[str]:
    return sorted(naming.ssm_parameter_arn(s, agent.name, c.name) for c in ssm_credentials(agent))


def outside_network(agent: ResolvedAgent) -> dict[str, dict[str, str | Sequence[str]]] | None:
    """The condition "this read comes from outside the agent's network"; None without a scope."""
    n = agent.network
    return None if n is None else iam.outside_network(n.vpc_endpoints, n.vpcs, n.source_cidrs)


def agent_iam_policy(s: StackSettings, agent: ResolvedAgent, kms_key_arn: str) -> dict[str, Any]:
    """Least privilege: read its own secrets and parameters, decrypt only via those services and
    only its own secrets' data keys, own metrics; with a network scope, every read from elsewhere
    is denied; escalation actions denied whatever else gets attached."""
    statements: list[iam.Statement] = []
    if agent.paused:
        statements.append(iam.deny_everything("AgentPaused"))
    arns = agent_secret_arns(s, agent)
    params = agent_parameter_arns(s, agent)
    outside = outside_network(agent)
    if outside is not None and (arns or params):
        # On `*`: a deny only takes away, and listing every ARN again would double the policy's
        # size (inline policies share 10,240 characters per role).
        actions = (iam.SECRET_READ_ACTIONS if arns else ()) + (iam.SSM_READ_ACTIONS if params else ()) + ("kms:Decrypt",)
        statements.append(iam.deny_outside_network("DenyReadsOutsideNetwork", actions, ["*"], outside))
    if arns:
        statements.append(iam.secret_read("ReadOwnSecrets", arns))
        statements.append(iam.kms_decrypt_own_secrets("DecryptOwnSecretsViaSecretsManager", kms_key_arn, s.aws_region, arns))
    if params:
        statements.append(iam.parameter_read("ReadOwnParameters", params))
        statements.append(iam.kms_decrypt_via_ssm(
            "DecryptOwnParametersViaSsm", kms_key_arn, s.aws_region, naming.ssm_agent_parameters_pattern(s, agent.name)))
    if s.usage_metrics:
        statements.append(iam.put_own_metrics("PublishOwnUsageMetrics", naming.metrics_namespace(s, agent.name)))
    statements.extend(federation_statements(s, agent))
    if statements:
        statements.append(iam.deny_escalation("DenyPrivilegeEscalation"))
    return iam.Document(tuple(statements)).to_dict()


def rotation_role_for(s: StackSettings, agent: ResolvedAgent, cred: ResolvedCredential) -> str | None:
    """Name of the role that rotates this credential; None for manual ones (a human rotates)."""
    if not is_automated(cred.rotation_strategy):
        return None
    if s.rotation_isolation == "shared":
        return naming.shared_rotation_role_name(s, cred.rotation_strategy)
    return naming.rotation_role_name(s, agent.name)


def secret_readers(s: StackSettings, agent: ResolvedAgent, cred: ResolvedCredential) -> list[str]:
    """Every principal ARN allowed to read this secret: agent, its rotator, configured admins."""
    readers = {naming.role_arn(s, naming.role_name(s, agent.name))}
    rot = rotation_role_for(s, agent, cred)
    if rot:
        readers.add(naming.role_arn(s, rot))
    readers.update(s.admin_principals)
    return sorted(readers)


def secret_resource_policy(s: StackSettings, agent: ResolvedAgent, cred: ResolvedCredential) -> dict[str, Any]:
    """Nobody but the readers; and the agent's own role only from its network (when scoped)."""
    statements = [iam.deny_read_except("DenyReadExceptOwner", secret_readers(s, agent, cred))]
    outside = outside_network(agent)
    if outside is not None:
        role = naming.role_arn(s, naming.role_name(s, agent.name))
        statements.append(iam.deny_outside_network(
            "DenyAgentReadsOutsideNetwork", ("secretsmanager:GetSecretValue",), ("*",), outside, principal_arn=role,
        ))
    return iam.Document(tuple(statements)).to_dict()


def vault_bound_cidrs(agent: ResolvedAgent) -> list[str]:
    """`token_bound_cidrs` of the agent's Vault login roles (any auth method): the ranges Vault
    sees its logins from (`network.vault_cidrs`, default `source_cidrs`); empty = unbound.
    VPC endpoints and VPC ids mean nothing to Vault, so a private-only scope binds nothing."""
    n = agent.network
    if n is None:
        return []
    return sorted(n.vault_cidrs if n.vault_cidrs is not None else n.source_cidrs)


def network_plan(agent: ResolvedAgent) -> dict[str, Any] | None:
    """The scope as the plan contract shows it (`None`: reads allowed from anywhere)."""
    n = agent.network
    if n is None:
        return None
    return {
        "vpc_endpoints": sorted(n.vpc_endpoints), "vpcs": sorted(n.vpcs), "source_cidrs": sorted(n.source_cidrs),
        "vault_bound_cidrs": vault_bound_cidrs(agent), "summary": n.words(),
    }


def vault_policy(s: StackSettings, agent: ResolvedAgent) -> str:
    return agent_policy_hcl(s, agent.name, paused=agent.paused)


@dataclass(frozen=True)
class CredentialPlan:
    name: str
    service: str
    type: str
    classification: str
    rotation_strategy: str
    rotation_days: int
    stores: list[str]
    secret_name: str | None
    vault_mount: str | None
    vault_path: str | None
    vault_location: str | None
    """`<mount>/<path>` (naming.vault_location)."""
    audience: str | None = None
    """Keyless credentials: the identity-token audience (nothing stored, nothing rotates)."""
    ssm_parameter: str | None = None
    """SSM parameter name, when stored in Parameter Store."""
    rotation_mode: str = "reminder"
    """`automatic`, `reminder` or `keyless` (`credential_rules.rotation_mode`)."""
    pickup: str = "n/a"
    """What lets an old key be revoked: `cloudtrail`, `grace period`, ... (`credential_rules.pickup_mode`)."""
    fields: list[dict[str, Any]] | None = None
    """The JSON value's fields `{name, sensitive}` for a structured credential (agents read `json.loads(value)[name]`)."""


@dataclass(frozen=True)
class AgentPlan:
    name: str
    owner: str
    paused: bool
    iam_role_name: str
    iam_role_arn: str
    trust_policy: dict[str, Any]
    iam_policy: dict[str, Any]
    vault_policy_name: str
    vault_policy: str
    credentials: list[CredentialPlan]
    trusted_by: list[str]
    """Who may assume the role, in words (read off `trust_policy`)."""
    vault_login: str | None
    """How the agent logs in to Vault, in words; None: the stack creates no login."""
    renamed_from: str | None = None
    network: dict[str, Any] | None = None
    """Where its credentials may be read from (`network_plan`); None = anywhere."""


def credential_plan(s: StackSettings, agent: ResolvedAgent, c: ResolvedCredential) -> CredentialPlan:
    where = naming.credential_locations(s, agent.name, c.name, c.stores)
    return CredentialPlan(
        name=c.name, service=c.service, type=c.type, classification=c.classification,
        rotation_strategy=c.rotation_strategy, rotation_days=c.rotation_days, stores=list(c.stores),
        secret_name=where.secret_name, vault_mount=where.vault_mount, vault_path=where.vault_path,
        vault_location=where.vault_location, ssm_parameter=where.ssm_parameter, audience=c.audience,
        rotation_mode=rules.rotation_mode(c), pickup=rules.pickup_mode(c),
        fields=[{"name": n, "sensitive": sensitive} for n, sensitive in c.fields] if c.structured else None,
    )


def agent_plan(s: StackSettings, agent: ResolvedAgent, kms_key_arn: str) -> AgentPlan:
    """Every name and document of one agent (planned once per verb: `agentfleet.core.reuse`)."""
    return reuse.by_value("agent plan", (s,), (agent, kms_key_arn), lambda: _agent_plan(s, agent, kms_key_arn))


def _agent_plan(s: StackSettings, agent: ResolvedAgent, kms_key_arn: str) -> AgentPlan:
    role = naming.role_name(s, agent.name)
    trust = trust_policy(s, agent)
    return AgentPlan(
        name=agent.name, owner=agent.owner, paused=agent.paused,
        iam_role_name=role, iam_role_arn=naming.role_arn(s, role),
        trust_policy=trust,
        iam_policy=agent_iam_policy(s, agent, kms_key_arn),
        vault_policy_name=naming.vault_policy_name(s, agent.name),
        vault_policy=vault_policy(s, agent),
        credentials=[credential_plan(s, agent, c) for c in agent.credentials],
        renamed_from=agent.renamed_from,
        trusted_by=trust_words(trust),
        vault_login=login.words() if (login := vault_logins.vault_login(s, agent)) else None,
        network=network_plan(agent),
    )


class NameCollision(ValueError):
    """Two owners map to one derived name; `problems` = (fleet-file line, message) per clash."""

    def __init__(self, message: str, problems: tuple[tuple[int, str], ...] = ()):
        super().__init__(message)
        self.problems = problems or ((0, message),)


class LoginSettingMissing(NameCollision):
    """A chosen Vault login method needs a stack setting the stack lacks (reported like a collision)."""


def check_unique_names(s: StackSettings, fleet: Fleet) -> None:
    """Every derived name (roles, policies, alarms, filters, functions, schedules, log groups,
    secrets, Vault paths) unique per namespace: `agentfleet.core.names.check_names`, the one check."""
    from agentfleet.core import names  # names builds on this module's agent_plan

    # The login settings first: deriving the names plans every agent, Vault login included.
    try:
        vault_logins.check_logins(s, fleet)
    except vault_logins.LoginConfigError as exc:
        raise LoginSettingMissing(str(exc)) from None
    names.check_names(fleet, s)


def build_plan(fleet: Fleet, s: StackSettings, kms_key_arn: str | None = None, *, shared: bool = False) -> dict[str, Any]:
    """The plan contract (`plan --format json`): agents sorted by name for stable output. An agent
    shard's plan holds its own agents; an environment stack's, every agent of the environment.
    `shared`: for a caller that only reads the plan (`diff`): within `reuse.scope()` an agent's
    dict is made once per agent plan and handed to every such plan (a diff's two sides share
    their unchanged agents, which then compare at once); outside it each plan gets a copy."""
    check_unique_names(s, fleet)
    key = kms_key_arn or naming.kms_key_placeholder(s)
    mine = [a for a in fleet.agents if s.shard != "agents" or sharding.selects(s, a)]
    plain = _shared_plain if shared else _plain
    agents = [plain(agent_plan(s, a, key)) for a in sorted(mine, key=lambda a: a.name)]
    return {
        "stack": s.stack, "environment": s.environment, "aws_region": s.aws_region,
        "aws_account_id": s.aws_account_id, "secret_prefix": s.secret_prefix,
        "vault_mount": s.vault_mount, "kms_key_alias": naming.kms_alias(s), "agents": agents,
    }


_FIELDS: dict[type, tuple[str, ...]] = {}
_LEAVES = (str, int, float, bool, type(None))
_LEAF_TYPES = frozenset(_LEAVES)
"""The same, exact types only (a field's value is usually one of them: no call needed)."""


def _plain(obj: Any) -> Any:
    """`dataclasses.asdict`, the same dicts, lists and copies, at a fraction of its cost (it
    deep-copies every string): the plan is 60 values per agent, and the agent plans are shared
    within a verb (`reuse`), so the contract gets its own copy."""
    if isinstance(obj, _LEAVES):
        return obj
    if isinstance(obj, (dict, list)):
        try:
            # Plain data (the IAM documents, the fields): copied in C. Format 2 writes no
            # back-references, so a value that occurs twice comes back as two copies, as below.
            return marshal.loads(marshal.dumps(obj, 2))
        except ValueError:  # a value marshal does not write (a str subclass ...): copy it here
            pass
    if isinstance(obj, dict):
        return {_plain(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    names = _FIELDS.get(type(obj))
    if names is None and is_dataclass(obj) and not isinstance(obj, type):
        names = _FIELDS[type(obj)] = tuple(f.name for f in fields(obj))
    if names is not None:
        out = {}
        for n in names:
            v = getattr(obj, n)
            out[n] = v if type(v) in _LEAF_TYPES else _plain(v)
        return out
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
        return tuple(_plain(v) for v in obj)
    return copy.deepcopy(obj)


def _shared_plain(p: AgentPlan) -> Any:
    return reuse.by_identity("shared agent plan", (p,), lambda: _plain(p))


def plan_json(plan: dict[str, Any]) -> str:
    return dumps_indented(plan, indent=2, sort_keys=False) + "\n"


def kms_key_policy(s: StackSettings) -> dict[str, Any]:
    """The environment key's policy: the account administers it; every use is granted by IAM."""
    return iam.Document((iam.key_admin_by_account("AccountAdministersKeyViaIam", naming.account_root_arn(s)),)).to_dict()


def vault_token_policies(s: StackSettings, agent: ResolvedAgent) -> list[str]:
    """Policies a Vault login of the agent's role receives; none while paused."""
    return [] if agent.paused else [naming.vault_policy_name(s, agent.name)]


def has_generated_value(rotation_strategy: str) -> bool:
    """`generated` credentials get their first value from the program; all others from a human."""
    return rotation_strategy == "generated"
