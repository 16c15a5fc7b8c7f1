"""Parameter Store policies: credential parameters are SecureStrings under the environment key,
carry no literal value, and only their own agent's role may read them, by exact ARN.

A parameter is managed when it carries the `managed-by: agentfleet` tag or, with settings, its name
lies under the environment's folder (`/<prefix>/<env>/`): an untagged raw parameter there must
not slip past the rules.
"""

from __future__ import annotations

from typing import Iterable

from agentfleet.core import naming
from agentfleet.core.iam_documents import SSM_READ_ACTIONS
from agentfleet.policy.arnmatch import has_wildcard, wildcard_match
from agentfleet.policy.base import Resource, resource_policy, stack_policy
from agentfleet.policy.iamdoc import (
    MANAGED_POLICY,
    ROLE,
    ROLE_POLICY,
    ROLE_POLICY_ATTACHMENT,
    Statement,
    identity_documents,
    role_name_of_arn,
    statements,
)
from agentfleet.policy.layout import Layout
from agentfleet.policy.stackgraph import Refs, of_type
from agentfleet.policy.values import UNKNOWN, as_list, get, text

PARAMETER = "aws:ssm/parameter:Parameter"
VALUE_PROPS = ("value", "insecureValue", "valueWo")
PATH_READ = "ssm:GetParametersByPath"
READS = SSM_READ_ACTIONS + (PATH_READ,)


def managed(r: Resource, lay: Layout) -> bool:
    if r.tag(naming.TAG_MANAGED_BY) == naming.MANAGED_BY:
        return True
    name = text(get(r.props, "name"))
    s = lay.settings
    return bool(s and name and name.startswith(f"/{s.secret_prefix}/{s.environment}/"))


# ---- ssm-parameter-securestring-cmk ----


def check_securestring(r: Resource, lay: Layout) -> Iterable[str]:
    if not managed(r, lay):
        return
    alias = naming.kms_alias(lay.settings) if lay.settings else "the environment's key"
    kind = get(r.props, "type")
    if kind is not UNKNOWN and kind != "SecureString":
        yield f"{r.label} is a {kind or 'String'} parameter: a credential in it is stored and shown in plain text. Fix: type SecureString with key_id {alias}."
    key = get(r.props, "keyId")
    if key is UNKNOWN:
        return
    if not key:
        yield f"{r.label} names no KMS key, so Parameter Store uses the AWS-managed key aws/ssm, whose use cannot be restricted per agent. Fix: key_id {alias}."
    elif isinstance(key, str) and (key.startswith("alias/aws/") or ":alias/aws/" in key):
        yield f"{r.label} is encrypted with the AWS-managed key {key!r}. Fix: key_id {alias}."


ssm_parameter_securestring_cmk = resource_policy(
    "ssm-parameter-securestring-cmk",
    "Every managed SSM parameter is a SecureString encrypted with the environment's customer-managed key.",
    [PARAMETER], check_securestring,
    remediation="Create credential parameters through AgentAccess (SecureString, the environment key).",
)


# ---- ssm-parameter-no-literal-value ----


def check_literal(r: Resource, lay: Layout) -> Iterable[str]:
    if not managed(r, lay):
        return
    for prop in VALUE_PROPS:
        value = get(r.props, prop)
        if value is None or value is UNKNOWN or value == "" or value == naming.SSM_UNSET_VALUE:
            continue
        # Never echo the value: it may be a live credential.
        yield (f"{r.label} sets {prop} from the program: the value is in the source (and, unless write-only, the"
               f" state). Fix: remove it, rotate the credential, keep the marker {naming.SSM_UNSET_VALUE!r}"
               " as a write-only value and write the real one out of band (`agentfleet plan` prints the"
               " `aws ssm put-parameter` command).")


ssm_parameter_no_literal_value = resource_policy(
    "ssm-parameter-no-literal-value",
    "No managed SSM parameter gets its value from the program (only the non-secret unset marker).",
    [PARAMETER], check_literal,
    remediation="Write credential values out of band with the command `agentfleet plan` prints.",
)


# ---- ssm-parameter-reads-confined ----


def _holders(resources: list[Resource]) -> list[tuple[str, Resource, Statement]]:
    """(role name or description, policy resource, Allow statement reading SSM parameters)."""
    roles = Refs(of_type(resources, ROLE))
    managed_policies = Refs(of_type(resources, MANAGED_POLICY))
    out: list[tuple[str, Resource, Statement]] = []

    def add(who: list[str], src: Resource) -> None:
        for _, doc in identity_documents(src.type, src.props):
            if not isinstance(doc, dict):
                continue
            for st in statements(doc):
                if st.allows and st.covered_actions(READS):
                    out.extend((w, src, st) for w in who)

    def role_names(src: Resource, prop: str) -> list[str]:
        found = roles.resolve(src, prop)
        if found:
            return [text(get(r.props, "name")) or r.name for r in found]
        names = [v for v in as_list(get(src.props, prop)) if isinstance(v, str)]
        return [role_name_of_arn(n) or n for n in names] or [f"{src.label}.{prop}"]

    for r in resources:
        if r.type == ROLE:
            add([text(get(r.props, "name")) or r.name], r)
        elif r.type == ROLE_POLICY:
            add(role_names(r, "role"), r)
        elif r.type == ROLE_POLICY_ATTACHMENT:
            for pol in managed_policies.resolve(r, "policyArn"):
                add(role_names(r, "role"), pol)
    return out


def _parameter_arn(r: Resource, lay: Layout) -> str | None:
    arn = text(get(r.props, "arn"))
    if arn:
        return arn
    name = text(get(r.props, "name"))
    s = lay.settings
    if not (s and name and name.startswith("/")):
        return None
    return f"arn:{s.partition}:ssm:{s.aws_region}:{s.aws_account_id}:parameter{name}"


def check_confined(resources: list[Resource], lay: Layout) -> Iterable[tuple[str, str | None]]:
    holders = _holders(resources)
    for who, src, st in holders:
        if st.not_resources is not None:
            yield (f"{src.label} {st.label} lets {who} read SSM parameters outside a NotResource list."
                   " Fix: list the exact parameter ARNs (plan.agent_iam_policy).", src.urn)
        elif st.covers_action(PATH_READ) or any(has_wildcard(p) for p in st.resources):
            yield (f"{src.label} {st.label} lets {who} read SSM parameters by path or wildcard"
                   f" ({', '.join(st.resources) or 'no Resource'}). Fix: grant ssm:GetParameter(s) on the"
                   " exact ARNs of its own parameters (plan.agent_iam_policy).", src.urn)
    s = lay.settings
    if s is None:
        return
    admins = {role_name_of_arn(a) for a in s.admin_principals}
    for p in of_type(resources, PARAMETER):
        if not managed(p, lay):
            continue
        arn, agent = _parameter_arn(p, lay), p.tag(naming.TAG_AGENT)
        if arn is None or not isinstance(agent, str):
            continue
        owner = naming.role_name(s, agent)
        for who, src, st in holders:
            if who in (owner, *admins) or st.not_resources is not None:
                continue
            if any(wildcard_match(pattern, arn) for pattern in st.resources):
                yield (f"{src.label} {st.label} lets {who} read {p.label}, a credential of agent {agent}:"
                       f" only {owner} may. Fix: remove the grant.", src.urn)


ssm_parameter_reads_confined = stack_policy(
    "ssm-parameter-reads-confined",
    "Only the owning agent's role reads a managed SSM parameter, by exact ARN (no path or wildcard reads).",
    check_confined,
    remediation="Grant parameter reads only through plan.agent_iam_policy (exact ARNs, own agent).",
)

POLICIES = (ssm_parameter_securestring_cmk, ssm_parameter_no_literal_value, ssm_parameter_reads_confined)
