"""KMS: the environment key decrypts only through Secrets Manager, and nothing opens it another way.

Every secret is encrypted with the environment's customer-managed key, so whoever may call
`kms:Decrypt` on it directly (or through a grant, or through a key policy statement) can decrypt
any secret's data key they get hold of. The key policy may only hand administration to the
account (`agentfleet.core.plan.kms_key_policy`: IAM decides); no KMS grant may exist on it; and
an identity policy may use it for decryption only with `kms:ViaService` pinned to Secrets Manager
(or Parameter Store) in the stack's region and the encryption context pinned to one agent's
secrets (parameters), as `agentfleet.core.iam_documents.kms_decrypt_own_secrets` builds it.
"""

from __future__ import annotations

from typing import Iterable

from agentfleet.core import naming
from agentfleet.core.model import AUTOMATED_STRATEGIES
from agentfleet.core.iam_documents import SECRET_ARN_CONTEXT_KEY, SSM_PARAMETER_CONTEXT_KEY
from agentfleet.policy.arnmatch import secret_scope, wildcard_match
from agentfleet.policy.base import Resource, stack_policy
from agentfleet.policy.iamdoc import IDENTITY_POLICY_TYPES, ROLE, ROLE_POLICY, Statement, identity_documents, principal_values, statements
from agentfleet.policy.layout import Layout
from agentfleet.policy.stackgraph import identifiers, of_type
from agentfleet.policy.values import UNKNOWN, BadDocument, document, get, text

KMS_KEY = "aws:kms/key:Key"
KMS_ALIAS = "aws:kms/alias:Alias"
KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
DECRYPT_ACTIONS = ("kms:Decrypt", "kms:ReEncryptFrom", "kms:CreateGrant")
"""What reads a secret's plaintext data key out of KMS (a grant can then decrypt)."""
ROOT_RE = r"^arn:aws[a-z-]*:iam::\d{12}:root$"


def _is_grant_type(r: Resource) -> bool:
    return r.type.startswith("aws:kms/grant")


def _key_reached(st: Statement, keys: list[str]) -> bool:
    if st.not_resources is not None:
        return True
    for pattern in st.resources:
        if pattern == "*" or any(wildcard_match(pattern, k) for k in keys):
            return True
        if pattern.startswith("arn:") and ":kms:" in pattern and ("*" in pattern or "alias/" in pattern):
            return True
    return False


KEY_ADMIN_ACTIONS = ("kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:DisableKeyRotation", "kms:CreateAlias",
                     "kms:UpdateAlias", "kms:DeleteAlias", "kms:ImportKeyMaterial", "kms:DeleteImportedKeyMaterial")
"""What no identity policy of the stack may allow on the key (kms:PutKeyPolicy and CreateGrant are escalation)."""

VIA_SERVICES = ("secretsmanager", "ssm")
"""The services that may decrypt with the key on a caller's behalf (Secrets Manager, Parameter Store)."""


def _is_rotation_role(r: Resource, lay: Layout) -> bool:
    """A rotation function's role (by the builders' names): it decrypts and re-encrypts the data keys
    of every secret it rotates, so its decrypt carries no per-secret encryption context (what it
    may write is judged by rotation-role-scoped). Without settings the pack cannot tell the names,
    so the context is not required there (ViaService still is)."""
    s = lay.settings
    name = text(get(r.props, "role")) if r.type == ROLE_POLICY else text(get(r.props, "name")) if r.type == ROLE else None
    if s is None or not name:
        return s is None
    if name in {naming.shared_rotation_role_name(s, st) for st in AUTOMATED_STRATEGIES}:
        return True
    prefix, suffix = naming.role_name_prefix(s), "-rotation"
    agent = name[len(prefix):-len(suffix)] if name.startswith(prefix) and name.endswith(suffix) else ""
    return bool(agent) and naming.rotation_role_name(s, agent) == name


def _via_secretsmanager(st: Statement, lay: Layout, rotation: bool = False) -> bool:
    """`kms:ViaService` pinned (StringEquals, no wildcard) to Secrets Manager or Parameter Store in the region."""
    values = st.condition_values("kms:ViaService").get("StringEquals", [])
    if not values:
        return False
    region = lay.settings.aws_region if lay.settings else None
    allowed = {f"{svc}.{region}.amazonaws.com" for svc in VIA_SERVICES}
    if not all(v in allowed if region else (v.split(".", 1)[0] in VIA_SERVICES and "*" not in v) for v in values):
        return False
    return rotation or _context_pinned(st, {v.split(".", 1)[0] for v in values})


CONTEXT_KEYS = {"secretsmanager": SECRET_ARN_CONTEXT_KEY, "ssm": SSM_PARAMETER_CONTEXT_KEY}
"""The encryption context each service sends KMS: the secret's or the parameter's ARN."""


def _context_pinned(st: Statement, services: set[str]) -> bool:
    """The encryption context names one agent's secrets (parameters): without it, a decrypt
    through Secrets Manager opens every secret's data key the holder can get a read on."""
    for svc in services:
        found = st.condition_values(CONTEXT_KEYS[svc])
        if not found or set(found) - {"StringEquals", "StringLike"}:
            return False
        values = [v for vs in found.values() for v in vs]
        if svc == "secretsmanager":
            scopes = {secret_scope(v) for v in values}
            if None in scopes or len(scopes) != 1:
                return False
        elif any(":parameter/" not in v or v.split(":parameter/", 1)[1].strip("*?/") == "" or v.startswith("*")
                 for v in values):
            return False
    return True


def _root_admin_only(st: Statement, lay: Layout) -> bool:
    import re

    who = principal_values(st.principal, "AWS") if isinstance(st.principal, dict) else []
    if not who or set(principal_values(st.principal)) != set(who):
        return False
    if lay.settings is not None:
        return who == [naming.account_root_arn(lay.settings)]
    own = lay.own_account()
    return all(re.match(ROOT_RE, w) and (own is None or f"::{own}:" in w) for w in who)


def check_kms(resources: list[Resource], lay: Layout) -> Iterable[tuple[str, str | None]]:
    keys = of_type(resources, KMS_KEY)
    key_ids = sorted({i for k in keys for i in identifiers(k)} | {text(get(a.props, "name")) or "" for a in of_type(resources, KMS_ALIAS)} - {""})
    fix_key = "Fix: keep the builder's key policy (agentfleet.core.plan.kms_key_policy): the account administers, IAM grants use"
    for r in resources:
        if _is_grant_type(r):
            target = get(r.props, "keyId")
            yield (f"{r.label} creates a KMS grant on {target if isinstance(target, str) else 'a key'}: a grant bypasses "
                   f"the key policy and IAM conditions (kms:ViaService), so its grantee could decrypt any secret's data "
                   f"key. Fix: remove it; agents decrypt through Secrets Manager with their role's policy.", r.urn)
            continue
        if r.type in (KMS_KEY, KEY_POLICY):
            doc = document(get(r.props, "policy"))
            if doc is UNKNOWN or doc is None:
                if r.type == KEY_POLICY and doc is None:
                    yield f"{r.label} replaces the key policy with nothing the pack can read. {fix_key}.", r.urn
                continue
            if isinstance(doc, BadDocument):
                yield f"{r.label} key policy is {doc.reason}. {fix_key}.", r.urn
                continue
            if not isinstance(doc, dict):
                continue
            for st in statements(doc):
                if st.allows and not _root_admin_only(st, lay):
                    yield (f"{r.label} key policy {st.label} allows {list(st.actions or st.not_actions or ())} to "
                           f"{st.principal or st.not_principal!r}: key policies grant outside IAM and its conditions. "
                           f"{fix_key}.", r.urn)
            continue
        if r.type not in (*IDENTITY_POLICY_TYPES, ROLE):
            continue
        for path, d in identity_documents(r.type, r.props):
            if not isinstance(d, dict):
                continue
            for st in statements(d):
                if not st.allows:
                    continue
                admin = st.covered_actions(KEY_ADMIN_ACTIONS)
                if admin and _key_reached(st, key_ids):
                    yield (f"{r.label} {path} {st.label} allows {', '.join(admin)} on the environment key: its holder "
                           f"can delete or disable the key (every secret becomes unreadable) or repoint its alias. "
                           f"Fix: key administration stays with the account (the key policy), never a role's policy.", r.urn)
                acts = st.covered_actions(DECRYPT_ACTIONS)
                if not acts or not _key_reached(st, key_ids):
                    continue
                if acts == ["kms:Decrypt"] and _via_secretsmanager(st, lay, _is_rotation_role(r, lay)):
                    continue
                yield (f"{r.label} {path} {st.label} allows {', '.join(acts)} on the environment key without "
                       f"`kms:ViaService` = secretsmanager.<region>.amazonaws.com: the holder can decrypt data keys "
                       f"directly. Fix: agentfleet.core.iam_documents.kms_decrypt_own_secrets.", r.urn)


kms_use_confined = stack_policy(
    "kms-use-confined",
    "The environment key decrypts only via Secrets Manager: no KMS grants, no key policy statement beyond account administration, no direct kms:Decrypt.",
    check_kms,
    remediation="Decrypt through Secrets Manager only (the builders' kms_decrypt_own_secrets); never grant on the key.",
)

POLICIES = (kms_use_confined,)
