"""Secrets Manager policies: encryption, resource policy, one reader, no literal values.

Every `aws:secretsmanager/secret:Secret` in the stack counts as managed, tagged or not (an
untagged raw secret must not slip past the rules; `required-tags` reports its tags).
"""

from __future__ import annotations

import re
from typing import Iterable

from agentfleet.core import naming
from agentfleet.core.secretlike import looks_like_secret
from agentfleet.policy.arnmatch import has_wildcard
from agentfleet.policy.base import Resource, by_urn, resource_policy, stack_policy
from agentfleet.policy.iamdoc import SECRET_POLICY, Statement, principal_values, role_name_of_arn, statements
from agentfleet.policy.layout import Layout, allowed_reader_arns, rotation_role_names
from agentfleet.policy.rotation import string_leaves
from agentfleet.policy.stackgraph import LAMBDA_FUNCTION, SECRET, Refs, access_map, identifiers, of_type, pattern_matches_secret, sample_arn
from agentfleet.policy.values import UNKNOWN, BadDocument, as_list, contains_unknown, document, get, text

SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
GET_SECRET_VALUE = "secretsmanager:GetSecretValue"
PRINCIPAL_ARN_KEY = "aws:PrincipalArn"
NEGATED_OPERATORS = ("StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike")
SECRET_FIX = "build it with agentfleet.core.plan.secret_resource_policy (iam.deny_read_except)"


def _agent(secret: Resource) -> str | None:
    tag = secret.tag(naming.TAG_AGENT)
    return tag if isinstance(tag, str) and tag != naming.SHARED_AGENT_TAG else None


# ---- secret-encrypted-with-cmk ----


def _is_aws_managed_key(key: str) -> bool:
    return key.startswith("alias/aws/") or ":alias/aws/" in key


def check_cmk(r: Resource, lay: Layout) -> Iterable[str]:
    fix = f"set kms_key_id to the environment's customer-managed key (alias {naming.kms_alias(lay.settings)})" if lay.settings else "set kms_key_id to the environment's customer-managed KMS key"
    key = get(r.props, "kmsKeyId")
    if key is None or key == "":
        yield f"{r.label} names no KMS key, so Secrets Manager encrypts it with the AWS-managed key aws/secretsmanager. Fix: {fix}."
    elif isinstance(key, str) and _is_aws_managed_key(key):
        yield f"{r.label} is encrypted with the AWS-managed key {key!r}, whose use cannot be restricted per agent. Fix: {fix}."
    replicas = get(r.props, "replicas")
    for i, rep in enumerate(replicas if isinstance(replicas, list) else []):
        rkey = get(rep, "kmsKeyId") if isinstance(rep, dict) else UNKNOWN
        if rkey is None or (isinstance(rkey, str) and (_is_aws_managed_key(rkey) or not rkey)):
            yield f"{r.label} replica #{i + 1} ({get(rep, 'region')}) uses the AWS-managed key. Fix: give the replica a customer-managed key."


secret_encrypted_with_cmk = resource_policy(
    "secret-encrypted-with-cmk",
    "Every managed secret is encrypted with a customer-managed KMS key, not the AWS-managed default.",
    [SECRET], check_cmk,
    remediation="Pass the environment's KMS key ARN as kms_key_id (the AgentFleet component does this).",
)


# ---- secret-resource-policy-denies-others ----


def _deny_exceptions(st: Statement, arn: str | None) -> list[str] | str:
    """The exception list of a deny-read-to-everyone-else statement, or why it isn't one."""
    if st.effect != "Deny" or not st.covers_action(GET_SECRET_VALUE):
        return "not a Deny of secretsmanager:GetSecretValue"
    who = [st.principal] if isinstance(st.principal, str) else principal_values(st.principal, "AWS")
    if who != ["*"] or st.not_principal is not None:
        return "does not apply to every principal (Principal must be {\"AWS\": \"*\"})"
    if st.not_resources is not None or not any(p == "*" or (arn is not None and pattern_matches_secret(p, arn)) for p in st.resources):
        return "does not cover this secret (Resource must be \"*\")"
    blocks = [(op, block) for op, block in st.condition.items()]
    if len(blocks) != 1 or blocks[0][0] not in NEGATED_OPERATORS or not isinstance(blocks[0][1], dict):
        return f"must carry exactly one {'/'.join(NEGATED_OPERATORS)} condition on {PRINCIPAL_ARN_KEY}"
    keys = list(blocks[0][1])
    if len(keys) != 1 or str(keys[0]).lower() != PRINCIPAL_ARN_KEY.lower():
        return f"its condition must test only {PRINCIPAL_ARN_KEY} (other keys would narrow the deny)"
    return [str(v) for v in as_list(blocks[0][1][keys[0]])]


def check_resource_policies(resources: list[Resource], lay: Layout) -> Iterable[tuple[str, str | None]]:
    roles = {text(get(r.props, "name")) or r.name: r for r in resources if r.type == "aws:iam/role:Role"}
    secrets = Refs(of_type(resources, SECRET))
    attached: dict[str, list[Resource]] = {}
    for p in of_type(resources, SECRET_POLICY):
        for target in secrets.resolve(p, "secretArn"):
            attached.setdefault(target.urn, []).append(p)
    for secret in secrets.items:
        agent = _agent(secret)
        arn = sample_arn(secret, lay)
        docs: list[tuple[Resource, object]] = [(p, document(get(p.props, "policy"))) for p in attached.get(secret.urn, [])]
        own = document(get(secret.props, "policy"))
        if own is not None:
            docs.append((secret, own))
        if any(d is UNKNOWN for _, d in docs):
            continue  # computed at deploy time: checked on `pulumi up`, not in preview
        fix = f"attach an aws.secretsmanager.SecretPolicy that denies GetSecretValue to everyone but the agent's role, its rotation role and adminPrincipals ({SECRET_FIX})"
        if not docs:
            yield f"{secret.label} has no resource policy, so any principal of the account with an IAM grant can read it. Fix: {fix}.", secret.urn
            continue
        reasons: list[str] = []
        found: list[str] | None = None
        for src, doc in docs:
            if isinstance(doc, BadDocument) or not isinstance(doc, dict):
                reasons.append(f"{src.label} policy is {doc.reason if isinstance(doc, BadDocument) else 'empty'}")
                continue
            for st in statements(doc):
                got = _deny_exceptions(st, arn)
                if isinstance(got, list):
                    found = got
                    break
                if st.effect == "Deny":
                    reasons.append(f"{src.label} {st.label} {got}")
            if found is not None:
                break
        if found is None:
            why = "; ".join(reasons) or "no statement denies GetSecretValue to other principals"
            yield f"{secret.label}: its resource policy does not deny read to other principals ({why}). Fix: {fix}.", secret.urn
            continue
        yield from ((m, secret.urn) for m in _check_exceptions(secret, agent, found, roles, lay))


def _check_exceptions(secret: Resource, agent: str | None, allowed: list[str], roles: dict[str, Resource], lay: Layout) -> Iterable[str]:
    wild = [a for a in allowed if has_wildcard(a)]
    if wild:
        yield f"{secret.label}: its deny-read exception uses wildcards {wild}, which let unnamed principals read it. Fix: list exact role ARNs ({SECRET_FIX})."
    s = lay.settings
    if s is not None and agent is not None:
        extra = sorted(set(allowed) - allowed_reader_arns(s, agent) - set(wild))
        if extra:
            yield (f"{secret.label} (agent {agent}): its resource policy also lets {extra} read it; only "
                   f"{naming.role_arn(s, naming.role_name(s, agent))}, its rotation role and adminPrincipals may. "
                   f"Fix: {SECRET_FIX}.")
        return
    for a in allowed:
        role = roles.get(role_name_of_arn(a) or "")
        other = role.tag(naming.TAG_AGENT) if role is not None else None
        if agent is not None and isinstance(other, str) and other not in (agent, naming.SHARED_AGENT_TAG):
            yield f"{secret.label} (agent {agent}): its resource policy lets agent {other}'s role {a} read it. Fix: {SECRET_FIX}."


secret_resource_policy_denies_others = stack_policy(
    "secret-resource-policy-denies-others",
    "Every managed secret has a resource policy denying read to all but its agent, rotation and break-glass roles.",
    check_resource_policies,
    remediation="Attach the builder's resource policy: agentfleet.core.plan.secret_resource_policy.",
)


# ---- one-reader-per-secret ----


def check_one_reader(resources: list[Resource], lay: Layout) -> Iterable[tuple[str, str | None]]:
    access = access_map(resources)
    s = lay.settings
    admins = {role_name_of_arn(a) or a for a in (s.admin_principals if s else ())}
    for secret in of_type(resources, SECRET):
        arn = sample_arn(secret, lay)
        if arn is None:
            continue  # name computed at deploy time: cannot relate grants to it yet
        agent = _agent(secret)
        readers = access.readers(secret, arn)
        writers = access.writers(secret, arn)
        rotators = set()
        for k in set(readers) & writers:
            if s is not None and agent is not None:
                if k in rotation_role_names(s, agent):
                    rotators.add(k)
            elif access.principals[k].agent in (None, agent, naming.SHARED_AGENT_TAG):
                rotators.add(k)
        agent_readers = sorted(set(readers) - rotators - admins)
        expected = naming.role_name(s, agent) if s is not None and agent is not None else None
        whose = f" (agent {agent})" if agent else ""
        intruders = [k for k in agent_readers if k != expected] if expected is not None else agent_readers
        if (expected is not None and intruders) or len(agent_readers) > 1:
            sources = sorted({g.source.label for k in intruders for g in readers[k]})
            yield (f"{secret.label}{whose} is readable by {len(agent_readers)} agent roles {agent_readers}; only "
                   f"{expected or 'its own agent role'} may read it, plus its rotation role and adminPrincipals. "
                   f"Fix: remove the read grant from {intruders} (in {', '.join(sources)}).", secret.urn)
        elif not agent_readers and not access.incomplete:
            yield (f"{secret.label}{whose} is readable by no agent role, so no agent can use it. Fix: grant its "
                   f"agent's role read with agentfleet.core.plan.agent_iam_policy, or remove the secret.", secret.urn)


one_reader_per_secret = stack_policy(
    "one-reader-per-secret",
    "Each managed secret is readable by exactly one agent role, plus its rotation role and break-glass principals.",
    check_one_reader,
    remediation="Grant reads only through agentfleet.core.plan.agent_iam_policy (the agent's own ARNs).",
)


# ---- no-literal-secret-values / secret-inputs-protected ----

SECRET_INPUTS: dict[str, tuple[str, ...]] = {
    SECRET_VERSION: ("secretString", "secretBinary", "secretStringWo"),
    "vault:kv/secretV2:SecretV2": ("dataJson", "dataJsonWo"),
    "vault:kv/secret:Secret": ("dataJson",),
    "vault:generic/secret:Secret": ("dataJson", "dataJsonWo"),
    "vault:generic/endpoint:Endpoint": ("dataJson",),
}
"""Inputs known to store a secret value; other types are recognised by class (see `secret_inputs`)."""
SSM_PARAMETER = "aws:ssm/parameter:Parameter"
SECRETLIKE_NAME = re.compile(
    r"(password|passwd|secret|token|apikey|api_key|privatekey|private_key|credentials?|plaintext|plaintextvalue"
    r"|secretstring|secretbinary|[_-]key)$", re.I)
"""Input (or environment variable) names that end like a secret value, in any resource type
(`masterPassword`, `plaintextValue`, `OPENAI_API_KEY`; not `AGE_SECRET_PREFIX` or `secretArn`)."""
NOT_SECRET_NAMES = re.compile(r"(arn|id|name|ttl|policies|policy|type|version|stage|stages|path|mount|backend|kms_key)$", re.I)
SECRET_GENERATORS: dict[str, tuple[str, ...]] = {
    "random:index/randomPassword:RandomPassword": ("result", "bcryptHash"),
    "random:index/randomBytes:RandomBytes": ("base64", "hex"),
    "tls:index/privateKey:PrivateKey": ("privateKeyPem", "privateKeyOpenssh", "privateKeyPemPkcs8"),
}
"""Generators whose outputs are Pulumi secrets by their provider's schema."""
PLAIN_GENERATORS: dict[str, tuple[str, ...]] = {
    "random:index/randomString:RandomString": ("result",),
    "random:index/randomId:RandomId": ("hex", "b64Std", "b64Url", "dec"),
    "random:index/randomUuid:RandomUuid": ("result",),
    "random:index/randomInteger:RandomInteger": ("result",),
}
"""Generators whose outputs are plain (not secret): a credential made from them sits readable in the state."""


def secret_inputs(r: Resource) -> list[tuple[str, object]]:
    """(prop path, value) of every input of `r` that holds a secret value.

    Known types list theirs; any type's write-only inputs (`...Wo`) and inputs named like a secret
    (`password`, `token`, `plaintextValue` ...) count too, so a new store type is covered by class;
    an SSM parameter's value counts when it is a SecureString, a Lambda's environment variables
    when their name says secret."""
    out: list[tuple[str, object]] = []
    known = SECRET_INPUTS.get(r.type, ())
    for key, value in r.props.items():
        if key in known or key.endswith("Wo") or (SECRETLIKE_NAME.search(key) and not NOT_SECRET_NAMES.search(key)
                                                  and r.type != SSM_PARAMETER
                                                  and not r.type.startswith(("random:", "tls:", "pulumi:providers:"))):
            out.append((key, value))
    if r.type == SSM_PARAMETER:
        kind = get(r.props, "type")
        for key in ("value", "insecureValue"):
            value = get(r.props, key)
            if value is not None and (kind == "SecureString" or kind is UNKNOWN or key == "insecureValue"
                                      and SECRETLIKE_NAME.search(text(get(r.props, "name")) or "")):
                out.append((key, value))
    if r.type == LAMBDA_FUNCTION:
        env = get(r.props, "environment", "variables")
        if isinstance(env, dict):
            for key, value in env.items():
                if SECRETLIKE_NAME.search(key) and not NOT_SECRET_NAMES.search(key):
                    out.append((f"environment.variables.{key}", value))
    return out


def _outputs(resources: list[Resource], table: dict[str, tuple[str, ...]]) -> list[str]:
    found: list[str] = []
    for g in resources:
        for prop in table.get(g.type, ()):
            v = get(g.props, prop)
            if isinstance(v, str) and len(v) >= 8:
                found.append(v)
    return found


def _contains_any(value: object, needles: list[str]) -> bool:
    if isinstance(value, str):
        return any(n in value for n in needles)
    if isinstance(value, dict):
        return any(_contains_any(v, needles) for v in value.values())
    if isinstance(value, list):
        return any(_contains_any(v, needles) for v in value)
    return False


ARN_TEXT = re.compile(r"arn:[A-Za-z0-9_.:/*?${}+=,@-]+")
"""ARNs are names, not secrets (an account id followed by a long name looks like a Telegram token)."""


def _credential_shaped(props: object) -> str | None:
    """The first string leaf detect-secrets (agentfleet.core.secretlike) takes for a real credential."""
    for leaf in string_leaves(props):
        rest = ARN_TEXT.sub(" ", leaf)
        if len(rest.strip()) >= 16 and looks_like_secret(rest) is not None:
            return rest
    return None


def hit_kind(leaf: str) -> str:
    hit = looks_like_secret(leaf)
    return hit.kind if hit is not None else "credential"


def _known(value: object) -> bool:
    """A value the program set (not absent, empty, unknown or the Parameter Store unset marker)."""
    return (value is not None and value is not UNKNOWN and value != "" and value != naming.SSM_UNSET_VALUE
            and not contains_unknown(value))


def _pointer(value: object, names: set[str]) -> bool:
    """A Lambda environment value that names a secret instead of holding one (ARN, a stack
    resource's name or id, a path under the stack's secret prefix)."""
    return isinstance(value, str) and (value.startswith("arn:") or value in names)


def check_literals(resources: list[Resource], lay: Layout) -> Iterable[tuple[str, str | None]]:
    generated = _outputs(resources, SECRET_GENERATORS) + _outputs(resources, PLAIN_GENERATORS)
    names = {i for x in resources for i in identifiers(x)}
    if lay.settings is not None:
        names.add(naming.secret_env_prefix(lay.settings))
    for r in resources:
        for prop, value in secret_inputs(r):
            if not _known(value) or _contains_any(value, generated):
                continue
            if prop.startswith("environment.variables.") and _pointer(value, names):
                continue
            yield (f"{r.label} sets {prop} from a literal in the program (or a value derived from no generator): "
                   f"the value is in the source and the state. Fix: remove it, rotate the credential, and write "
                   f"the new value out of band (`agentfleet plan` names the secret) or derive it from "
                   f"pulumi-random's RandomPassword.", r.urn)
    for r in resources:
        if r.type.startswith(("pulumi:", "random:", "tls:")):
            continue
        hit = _credential_shaped(r.props)
        if hit is not None and not _contains_any(hit, generated):
            yield (f"{r.label} carries a string shaped like a real credential ({hit_kind(hit)}) in its inputs: it is in "
                   f"the source and the state. Fix: remove it and rotate that credential; write values out of band.", r.urn)
    secret_values = _outputs(resources, SECRET_GENERATORS)
    for r in of_type(resources, LAMBDA_FUNCTION):
        env = get(r.props, "environment", "variables")
        for key, value in (env.items() if isinstance(env, dict) else ()):
            if _known(value) and _contains_any(value, secret_values):
                yield (f"{r.label} puts a generated secret into environment variable {key}: Lambda shows it in the "
                       f"console and keeps it in the state. Fix: pass the secret's ARN and read it at run time.", r.urn)


no_literal_secret_values = stack_policy(
    "no-literal-secret-values",
    "No secret-holding input of any resource type (secret versions, Vault KV and generic writes, SecureString parameters, Lambda environment, any `...Wo` or password/token input) gets a literal value; generated ones come from a generator.",
    check_literals,
    remediation="Write external credentials out of band; generated ones come from pulumi-random.",
)


def check_protected(resources: list[Resource], lay: Layout) -> Iterable[tuple[str, str | None]]:
    plain_values = _outputs(resources, PLAIN_GENERATORS)
    secret_values = _outputs(resources, SECRET_GENERATORS)
    for r in resources:
        for prop, value in secret_inputs(r):
            if prop.endswith("Wo") or not _known(value):
                continue
            if _contains_any(value, plain_values) and not _contains_any(value, secret_values):
                yield (f"{r.label} {prop} comes from a generator whose output is not a Pulumi secret (e.g. "
                       f"RandomString): the value sits readable in the state. Fix: use RandomPassword (a secret) and "
                       f"the type's write-only input where it has one (secret_string_wo, data_json_wo, value_wo).", r.urn)


secret_inputs_protected = stack_policy(
    "secret-inputs-protected",
    "Every secret-holding input is write-only or a Pulumi secret (generated by a secret generator), so the state holds no readable credential.",
    check_protected,
    remediation="Use write-only inputs (secret_string_wo) and RandomPassword; keep the stack's secrets provider a KMS key (docs/policy.md).",
)

POLICIES = (secret_encrypted_with_cmk, secret_resource_policy_denies_others, one_reader_per_secret, no_literal_secret_values,
            secret_inputs_protected)
