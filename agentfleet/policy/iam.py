"""IAM policies: no wildcard secret reads, scoped trust, rotation roles that write one agent only.

All three read documents as the engine has them (JSON strings in camelCase props); the ARN
layout they enforce is `agentfleet.core.naming.secret_arn_pattern`'s `<prefix>/<env>/<agent>/...`.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from agentfleet.core import naming
from agentfleet.core.iam_documents import ESCALATION_ACTIONS, GITHUB_OIDC_HOST, SECRET_READ_ACTIONS
from agentfleet.core.model import AUTOMATED_STRATEGIES
from agentfleet.core.rotation_plan import SECRETS_MANAGER_PRINCIPAL
from agentfleet.policy.arnmatch import AgentScope, has_wildcard, secret_folder
from agentfleet.policy.base import Resource, resource_policy
from agentfleet.policy.iamdoc import (
    IDENTITY_POLICY_TYPES,
    ROLE,
    ROLE_POLICY,
    SECRET_WRITE_ACTIONS,
    Statement,
    grant_scopes,
    identity_documents,
    principal_values,
    statements,
)
from agentfleet.policy.layout import Layout, rotation_role_names
from agentfleet.policy.values import UNKNOWN, BadDocument, as_list, document, get, text

IAM_POLICY_TYPES = (*IDENTITY_POLICY_TYPES, ROLE)
RESOURCE_TAG_PREFIXES = ("aws:ResourceTag/", "secretsmanager:ResourceTag/")
ACCOUNT_RE = re.compile(r"^(\d{12}|arn:aws[a-z-]*:iam::\d{12}:root)$")


def _fix_pattern(lay: Layout, agent: str = "<agent>") -> str:
    if lay.settings is not None:
        return naming.secret_arn_pattern(lay.settings, agent, "<credential>")
    return "arn:<partition>:secretsmanager:<region>:<account>:secret:<prefix>/<env>/<agent>/<credential>-??????"


def _env_mismatch(scope: AgentScope, lay: Layout) -> bool:
    s = lay.settings
    return s is not None and (scope.prefix, scope.environment) != (s.secret_prefix, s.environment)


def tag_confined(st: Statement, lay: Layout) -> bool:
    """Shared-mode form: the statement only reaches secrets tagged managed-by + this environment."""
    def pinned(key: str, expected: str | None) -> bool:
        for prefix in RESOURCE_TAG_PREFIXES:
            values = st.condition_values(prefix + key).get("StringEquals", [])
            if values and all(v == expected if expected else not has_wildcard(v) for v in values):
                return True
        return False

    return pinned(naming.TAG_MANAGED_BY, naming.MANAGED_BY) and pinned(naming.TAG_ENVIRONMENT, lay.environment())


def env_confined(st: Statement, lay: Layout) -> bool:
    """Every resource lies in `<prefix>/<env>/` (of this stack, when settings are known)."""
    if st.not_resources is not None or not st.resources:
        return False
    s = lay.settings
    for r in st.resources:
        head = secret_folder(r, 2)
        if head is None or (s is not None and head != (s.secret_prefix, s.environment)):
            return False
    return True


def _documents(r: Resource) -> Iterable[tuple[str, dict[str, Any]]]:
    for path, doc in identity_documents(r.type, r.props):
        if isinstance(doc, dict):
            yield path, doc


# ---- no-wildcard-secret-read ----


def check_secret_reads(r: Resource, lay: Layout) -> Iterable[str]:
    for path, doc in _documents(r):
        seen: dict[AgentScope, str] = {}
        for st in statements(doc):
            reads = st.covered_actions(SECRET_READ_ACTIONS)
            if not st.allows or not reads:
                continue
            if st.covered_actions(SECRET_WRITE_ACTIONS) and tag_confined(st, lay) and env_confined(st, lay):
                continue  # shared-mode rotation statement: rotation-role-scoped checks it
            scopes, wide = grant_scopes(st)
            if wide:
                yield (f"{r.label} {path} {st.label} allows {', '.join(reads)} on {wide}, which reaches beyond one "
                       f"agent's secrets. Fix: grant reads only on the agent's own ARNs {_fix_pattern(lay)} "
                       f"(agentfleet.core.iam_documents.secret_read via agentfleet.core.plan.agent_iam_policy).")
            for scope in scopes:
                if _env_mismatch(scope, lay):
                    yield (f"{r.label} {path} {st.label} allows reads under {scope.folder}, outside this stack's "
                           f"secrets. Fix: use {_fix_pattern(lay, scope.agent)}.")
                seen.setdefault(scope, st.label)
        if len(seen) > 1:
            folders = ", ".join(f"{sc.folder} ({lbl})" for sc, lbl in seen.items())
            yield (f"{r.label} {path} allows secret reads across {len(seen)} agents' folders: {folders}. Fix: one "
                   f"policy per agent role, reading only that agent's ARNs {_fix_pattern(lay)}.")


no_wildcard_secret_read = resource_policy(
    "no-wildcard-secret-read",
    "No IAM policy grants a Secrets Manager read action on `*` or on a pattern reaching beyond one agent's own prefix.",
    IAM_POLICY_TYPES, check_secret_reads,
    remediation="Build agent policies with agentfleet.core.plan.agent_iam_policy: exact `<name>-??????` ARNs.",
)


# ---- trust-policy-scoped ----


IDENTITY_CONDITION_KEYS = ("aws:principalarn", "aws:userid", "aws:username", "sts:externalid", "aws:sourceidentity",
                           "aws:principaltag/", "aws:principalorgid", "aws:principalorgpaths", "aws:sourcearn")
"""Condition keys that narrow *who* may assume a role trusted by account (a transport or MFA flag does not)."""
NEGATED_OR_WEAK = ("Not", "IfExists", "Null", "ForAnyValue:", "ForAllValues:")


ANY_IDENTITY_TYPES = ("", "role", "user", "assumed-role", "federated-user")


def _wild_only(value: str) -> bool:
    """Only wildcards, or an ARN whose resource part is (a type followed by) only wildcards:
    `arn:aws:iam::<account>:*` or `...:role/*` admits every principal of the account."""
    if value.strip("*?") == "" or value in ("arn:*", "arn:aws:*"):
        return True
    if not value.startswith("arn:"):
        return False
    fields = value.split(":", 5)
    if len(fields) < 6:
        return True
    kind, _, rest = fields[5].partition("/")
    return fields[5].strip("*?") == "" or (kind.strip("*?") in ANY_IDENTITY_TYPES and rest.strip("*?/") == "")


def _constrains(op: str, values: list[str]) -> bool:
    """A positive operator with at least one value that is not only wildcards."""
    if any(w in op for w in NEGATED_OR_WEAK):
        return False
    return any(not _wild_only(v) for v in values)


def _identity_pinned(st: Statement) -> bool:
    for op, block in st.condition.items():
        if not isinstance(block, dict):
            continue
        for key, vals in block.items():
            k = str(key).lower()
            if any(k == ik or (ik.endswith("/") and k.startswith(ik)) for ik in IDENTITY_CONDITION_KEYS):
                if _constrains(str(op), [str(v) for v in as_list(vals)]):
                    return True
    return False


def _account_of(principal: str) -> str | None:
    if re.fullmatch(r"\d{12}", principal):
        return principal
    m = re.match(r"^arn:aws[a-z-]*:(?:iam|sts)::(\d{12}):", principal)
    return m.group(1) if m else None


def _exact_claims(st: Statement, key: str) -> tuple[list[str], list[str]]:
    """(values, problems) of an OIDC claim condition: only exact matches may pin it."""
    values: list[str] = []
    problems: list[str] = []
    for op, vals in st.condition_values(key).items():
        values.extend(vals)
        if op not in ("StringEquals",):
            wild = [v for v in vals if has_wildcard(v)]
            if op != "StringLike" or wild:
                problems.append(f"{op} {vals}")
    return values, problems


def _trust_problem(st: Statement, lay: Layout) -> str | None:
    if st.not_principal is not None:
        return "uses NotPrincipal, so it trusts everyone not listed"
    aws_principals = principal_values(st.principal, "AWS")
    everyone = st.principal == "*" or "*" in aws_principals
    if everyone:
        return "trusts every AWS principal (`*`)"
    wild = [p for p in principal_values(st.principal) if has_wildcard(p)]
    if wild:
        return f"names principals with wildcards {wild}"
    named = sorted({a for p in aws_principals if (a := _account_of(p))})
    if named and lay.own_account() is None:
        return (f"trusts principals of account(s) {named}, and the pack cannot tell this stack's account (no policy "
                f"config `awsAccountId`, no AWS provider pinned by `allowedAccountIds`): pass the stack's policy config "
                f"(`agentfleet check --print-policy-config`)")
    foreign = sorted(a for a in named if a not in lay.trusted_accounts())
    if foreign:
        return (f"trusts principals of account(s) {foreign}, which are neither this stack's account nor listed in "
                f"the policy config `trustedAccounts`")
    accounts = [p for p in aws_principals if ACCOUNT_RE.match(p)]
    if accounts and not _identity_pinned(st):
        why = "without a condition" if not st.condition else "with a condition that does not narrow who (e.g. `*` values, negated or IfExists operators)"
        return f"trusts whole account(s) {accounts} {why}"
    for fed in principal_values(st.principal, "Federated"):
        if not st.condition:
            return f"trusts every identity of {fed} (no condition)"
        host = fed.split("oidc-provider/", 1)[1] if "oidc-provider/" in fed else None
        if host is None:
            continue
        subs, problems = _exact_claims(st, f"{host}:sub")
        if not subs:
            return f"trusts OIDC provider {host} without pinning the `sub` (any workload of the issuer could assume it)"
        if problems or any(has_wildcard(v) for v in subs):
            return (f"trusts OIDC provider {host} with a `sub` that is not an exact match ({problems or subs}); "
                    f"a wildcard such as `repo:org/*` admits other repositories, branches or workloads")
        if host == GITHUB_OIDC_HOST:
            auds, aud_problems = _exact_claims(st, f"{host}:aud")
            if not auds or aud_problems:
                return "trusts GitHub Actions OIDC without an exact `aud` (sts.amazonaws.com)"
    for key, block in ((k, b) for b in st.condition.values() if isinstance(b, dict) for k in b):
        if str(key).lower().endswith(":sub") and principal_values(st.principal, "Federated") == []:
            return f"tests `{key}` without a federated principal"
    return None


def check_trust(r: Resource, lay: Layout) -> Iterable[str]:
    doc = document(get(r.props, "assumeRolePolicy"))
    if isinstance(doc, BadDocument):
        yield f"{r.label} assumeRolePolicy is {doc.reason}. Fix: build it with agentfleet.core.plan.trust_policy."
        return
    if not isinstance(doc, dict):
        return
    for st in statements(doc):
        if not st.allows:
            continue
        problem = _trust_problem(st, lay)
        if problem:
            yield (f"{r.label} trust policy {st.label} {problem}. Fix: trust one runtime (a service, exact role "
                   f"ARNs, or an OIDC identity pinned by exact `sub`) as agents.yaml `runtime:` declares it "
                   f"(agentfleet.core.plan.trust_policy).")


trust_policy_scoped = resource_policy(
    "trust-policy-scoped",
    "No role trusts `*`, a foreign account not listed in config, a whole account without a condition pinning who, or an OIDC identity without an exact `sub`.",
    [ROLE], check_trust,
    remediation="Declare the runtime in agents.yaml; agentfleet.core.plan.trust_policy builds the trust.",
)


# ---- rotation-role-scoped ----


def _rotation_names(lay: Layout, agent: str) -> set[str]:
    assert lay.settings is not None
    return rotation_role_names(lay.settings, agent)


def check_rotation_scope(r: Resource, lay: Layout) -> Iterable[str]:
    role = text(get(r.props, "role")) if r.type == ROLE_POLICY else text(get(r.props, "name")) if r.type == ROLE else None
    for path, doc in _documents(r):
        agents: dict[str, str] = {}
        for st in statements(doc):
            writes = st.covered_actions(SECRET_WRITE_ACTIONS)
            if not st.allows or not writes:
                continue
            if tag_confined(st, lay) and env_confined(st, lay):
                # The shared rotation form: only this environment's managed secrets, and only for a
                # shared rotation role (an agent's role so granted overwrites every agent's values).
                s = lay.settings
                shared = set() if s is None else {naming.shared_rotation_role_name(s, x) for x in AUTOMATED_STRATEGIES}
                if s is not None and role not in shared:
                    yield (f"{r.label} {path} {st.label} allows {', '.join(writes)} on every managed secret of the "
                           f"environment (the tag-conditioned shared rotation form), but {role or 'this policy'!r} is not "
                           f"a shared rotation role {sorted(shared)}. Fix: only the shared rotation components use this form.")
                continue
            scopes, wide = grant_scopes(st)
            if wide:
                yield (f"{r.label} {path} {st.label} allows {', '.join(writes)} on {wide}, beyond one agent's "
                       f"secrets. Fix: per-agent rotation roles write only {_fix_pattern(lay)}; a shared "
                       f"rotation role must condition on the secrets' `{naming.TAG_MANAGED_BY}={naming.MANAGED_BY}` "
                       f"and `{naming.TAG_ENVIRONMENT}` tags and stay under `<prefix>/<env>/`.")
            for scope in scopes:
                if _env_mismatch(scope, lay):
                    yield f"{r.label} {path} {st.label} writes secrets under {scope.folder}, outside this stack. Fix: use {_fix_pattern(lay, scope.agent)}."
                agents.setdefault(scope.agent, st.label)
        if len(agents) > 1:
            yield (f"{r.label} {path} lets one role write the secrets of {len(agents)} agents {sorted(agents)}. "
                   f"Fix: one rotation role per agent, or the tag-conditioned shared form.")
        if lay.settings is not None and role is not None:
            for agent, label in agents.items():
                if role not in _rotation_names(lay, agent):
                    yield (f"{r.label} {path} {label} lets role {role!r} write agent {agent}'s secrets, but only "
                           f"{sorted(_rotation_names(lay, agent))} may. Fix: move the grant to that rotation role.")


rotation_role_scoped = resource_policy(
    "rotation-role-scoped",
    "A role that can write secrets (a rotation function's) writes only its own agent's, or in shared mode only its environment's managed-by-tagged secrets.",
    IAM_POLICY_TYPES, check_rotation_scope,
    remediation="Rotation roles are built by the rotation components from the builders; do not widen them.",
)

# ---- iam-document-strict ----

STATEMENT_KEYS = frozenset({"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "NotPrincipal", "Condition"})
DOCUMENT_KEYS = frozenset({"Version", "Id", "Statement"})
EFFECTS = ("Allow", "Deny")
RESOURCE_POLICY_PROPS: dict[str, str] = {
    "aws:secretsmanager/secretPolicy:SecretPolicy": "policy",
    "aws:secretsmanager/secret:Secret": "policy",
    "aws:kms/key:Key": "policy",
    "aws:kms/keyPolicy:KeyPolicy": "policy",
    "aws:sns/topicPolicy:TopicPolicy": "policy",
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
    "aws:cloudwatch/logResourcePolicy:LogResourcePolicy": "policyDocument",
}


def all_documents(r: Resource) -> list[tuple[str, object]]:
    """Every IAM document a resource carries: identity, trust and resource policies (parsed)."""
    docs: list[tuple[str, object]] = list(identity_documents(r.type, r.props))
    if r.type == ROLE:
        docs.append(("assumeRolePolicy", document(get(r.props, "assumeRolePolicy"))))
    if r.type in RESOURCE_POLICY_PROPS:
        prop = RESOURCE_POLICY_PROPS[r.type]
        docs.append((prop, document(get(r.props, prop))))
    return docs


def check_strict(r: Resource, lay: Layout) -> Iterable[str]:
    fix = "Fix: build documents with agentfleet.core.iam_documents (exact `Allow`/`Deny`, IAM's own keys only)."
    for path, doc in all_documents(r):
        if isinstance(doc, BadDocument):
            yield f"{r.label} {path} is {doc.reason}, so no policy can judge what it grants. {fix}"
            continue
        if not isinstance(doc, dict):
            continue
        extra = sorted(set(doc) - DOCUMENT_KEYS)
        if extra:
            yield f"{r.label} {path} has keys {extra} IAM does not define. {fix}"
        raw = doc.get("Statement")
        items = raw if isinstance(raw, list) else [raw]
        for i, st in enumerate(items):
            if not isinstance(st, dict):
                yield f"{r.label} {path} statement #{i + 1} is not an object. {fix}"
                continue
            label = f'statement "{st["Sid"]}"' if st.get("Sid") else f"statement #{i + 1}"
            if st.get("Effect") not in EFFECTS:
                yield f"{r.label} {path} {label} has Effect {st.get('Effect')!r}; only exactly `Allow` or `Deny` is read the same way everywhere. {fix}"
            bad = sorted(set(st) - STATEMENT_KEYS)
            if bad:
                yield f"{r.label} {path} {label} has keys {bad} IAM does not define (keys are case-sensitive). {fix}"
            cond = st.get("Condition")
            if cond is not None and (not isinstance(cond, dict) or not all(isinstance(b, dict) for b in cond.values())):
                yield f"{r.label} {path} {label} has a Condition that is not a map of operator -> key -> values. {fix}"


iam_document_strict = resource_policy(
    "iam-document-strict",
    "Every IAM document (identity, trust, resource policy) is well-formed: Effect exactly Allow/Deny, only IAM's keys, parseable JSON.",
    (*IAM_POLICY_TYPES, *RESOURCE_POLICY_PROPS), check_strict,
    remediation="Build every document with agentfleet.core.iam_documents.",
)


# ---- no-privilege-escalation ----

POLICY_ESCALATION_ACTIONS = ESCALATION_ACTIONS + (
    "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy",
    "iam:DeleteUserPermissionsBoundary",
    "iam:PutUserPermissionsBoundary",
    "iam:TagRole",
    "iam:UntagRole",
    "lambda:CreateFunctionUrlConfig",
    "lambda:UpdateFunctionUrlConfig",
)
"""What the pack refuses beyond what agent roles deny (agentfleet.core.iam_documents.ESCALATION_ACTIONS):
removing the inline policy or attachment that carries a role's explicit denies, a permissions
boundary, the tags `aws:PrincipalTag` conditions read, or exposing a function over a public URL."""


def check_escalation(r: Resource, lay: Layout) -> Iterable[str]:
    for path, doc in _documents(r):
        for st in statements(doc):
            if not st.allows:
                continue
            found = st.covered_actions(POLICY_ESCALATION_ACTIONS)
            if found:
                shown = ", ".join(found[:6]) + (" ..." if len(found) > 6 else "")
                yield (f"{r.label} {path} {st.label} allows {shown}: a principal holding it can widen its own or "
                       f"another role's access (attach policies, rewrite a secret's resource policy, hand out keys). "
                       f"Fix: no fleet role needs these; remove them (agent roles deny them explicitly).")


no_privilege_escalation = resource_policy(
    "no-privilege-escalation",
    "No IAM policy of the stack allows an escalation action (iam:PutRolePolicy, iam:Attach*, secretsmanager:PutResourcePolicy ...).",
    IAM_POLICY_TYPES, check_escalation,
    remediation="Remove the action; the fleet's roles never administer IAM, KMS or resource policies.",
)


# ---- lambda-permission-scoped ----

LAMBDA_PERMISSION = "aws:lambda/permission:Permission"
FUNCTION_URL = "aws:lambda/functionUrl:FunctionUrl"


def check_lambda_permission(r: Resource, lay: Layout) -> Iterable[str]:
    fix = ("Fix: grant invoke to one service principal with source_account = this account and source_arn = the exact "
           "resource (the rotation components do: the secret's ARN).")
    if r.type == FUNCTION_URL:
        auth = get(r.props, "authorizationType")
        if auth is not UNKNOWN and auth != "AWS_IAM":
            yield f"{r.label} exposes the function over HTTPS with authorization {auth!r}: anyone can invoke it. {fix}"
        return
    action = get(r.props, "action")
    if action is not UNKNOWN and action is not None and text(action) != "lambda:InvokeFunction":
        yield f"{r.label} grants {action!r} on the function, not only lambda:InvokeFunction. {fix}"
    principal = get(r.props, "principal")
    if principal is UNKNOWN:
        return
    principal = text(principal) or ""
    function = _function_name(get(r.props, "function"))
    s = lay.settings
    if (s is not None and function is not None and function.startswith(naming.role_name_prefix(s))
            and principal != SECRETS_MANAGER_PRINCIPAL):
        yield (f"{r.label} lets {principal!r} invoke the fleet's function {function!r}: the fleet's functions are "
               f"invoked only by Secrets Manager (rotation) and by the scheduler through its role, never by another "
               f"service's events with inputs of its choosing. {fix}")
    if not principal or has_wildcard(principal):
        yield f"{r.label} lets principal {principal!r} invoke the function. {fix}"
        return
    account = get(r.props, "sourceAccount")
    source = get(r.props, "sourceArn")
    if principal.endswith(".amazonaws.com") or principal.endswith(".amazonaws.com.cn"):
        if account is not UNKNOWN:
            if not text(account):
                yield f"{r.label} lets service {principal} invoke the function for any account (no source_account). {fix}"
            elif lay.own_account() is None:
                yield (f"{r.label} lets service {principal} invoke the function for account {account}, and the pack "
                       f"cannot tell this stack's account (no policy config, no provider `allowedAccountIds`). {fix}")
            elif account != lay.own_account():
                yield f"{r.label} lets service {principal} invoke the function for account {account}, not this stack's. {fix}"
        if source is not UNKNOWN:
            src = text(source) or ""
            if not src:
                yield f"{r.label} lets service {principal} invoke the function from any resource (no source_arn). {fix}"
            elif has_wildcard(src) and not _env_secret_pattern(src, lay):
                yield f"{r.label} source_arn {src!r} is a wildcard beyond this environment's secrets. {fix}"
        return
    acct = _account_of(principal)
    if acct is None or acct not in lay.trusted_accounts():
        yield f"{r.label} lets {principal!r} (not a service of this account) invoke the function. {fix}"


def _function_name(value: object) -> str | None:
    """The function a permission names (name, or `...:function:<name>[:qualifier]`)."""
    name = text(value)
    if not name:
        return None
    if ":function:" in name:
        name = name.split(":function:", 1)[1].split(":", 1)[0]
    return name


def _env_secret_pattern(pattern: str, lay: Layout) -> bool:
    head = secret_folder(pattern, 2)
    s = lay.settings
    return head is not None and (s is None or head == (s.secret_prefix, s.environment))


lambda_permission_scoped = resource_policy(
    "lambda-permission-scoped",
    "Lambda invoke permissions name one service with this account as source_account and a source_arn; no function URL without IAM auth.",
    (LAMBDA_PERMISSION, FUNCTION_URL), check_lambda_permission,
    remediation="Only the rotation components grant invoke, to secretsmanager.amazonaws.com, per secret ARN.",
)

POLICIES = (no_wildcard_secret_read, trust_policy_scoped, rotation_role_scoped, iam_document_strict,
            no_privilege_escalation, lambda_permission_scoped)
