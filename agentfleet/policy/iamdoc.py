"""IAM documents as the engine hands them to a policy: where they live and what they grant.

Documents arrive as JSON strings (or objects) in different props per resource type; this module
finds them, normalises IAM's string-or-list fields, and answers "does this statement allow
action X on resource Y" with AWS's wildcard semantics. Statements are read, never rebuilt: the
project's documents are built only by `agentfleet.core.iam_documents`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from agentfleet.core.iam_documents import ROTATION_SECRET_ACTIONS, SECRET_READ_ACTIONS
from agentfleet.policy.arnmatch import AgentScope, action_match, secret_scope, wildcard_match
from agentfleet.policy.values import UNKNOWN, Document, as_list, document, get

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
MANAGED_POLICY = "aws:iam/policy:Policy"
USER_POLICY = "aws:iam/userPolicy:UserPolicy"
GROUP_POLICY = "aws:iam/groupPolicy:GroupPolicy"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
POLICY_ATTACHMENT = "aws:iam/policyAttachment:PolicyAttachment"
ROLE_ATTACHMENTS_EXCLUSIVE = "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive"
USER_POLICY_ATTACHMENT = "aws:iam/userPolicyAttachment:UserPolicyAttachment"
GROUP_POLICY_ATTACHMENT = "aws:iam/groupPolicyAttachment:GroupPolicyAttachment"
SECRET_POLICY = "aws:secretsmanager/secretPolicy:SecretPolicy"

IDENTITY_POLICY_TYPES = (ROLE_POLICY, MANAGED_POLICY, USER_POLICY, GROUP_POLICY)

SECRET_WRITE_ACTIONS: tuple[str, ...] = tuple(a for a in ROTATION_SECRET_ACTIONS if a not in SECRET_READ_ACTIONS) + (
    "secretsmanager:UpdateSecret",
    "secretsmanager:RotateSecret",
    "secretsmanager:RestoreSecret",
    "secretsmanager:DeleteSecret",
    "secretsmanager:PutResourcePolicy",
    "secretsmanager:DeleteResourcePolicy",
    # Rotation, replication and tags: cancelling rotation weakens it; a replica can be encrypted
    # with another key and read in another region; tags feed `aws:ResourceTag` conditions.
    "secretsmanager:CancelRotateSecret",
    "secretsmanager:ReplicateSecretToRegions",
    "secretsmanager:RemoveRegionsFromReplication",
    "secretsmanager:StopReplicationToReplica",
    "secretsmanager:TagResource",
    "secretsmanager:UntagResource",
)
"""Actions that change a secret's value, rotation, copies, tags or who can read it: the rotation
role's powers and more."""

@dataclass(frozen=True)
class Statement:
    """One statement, with IAM's string-or-list fields as tuples."""

    index: int
    sid: str | None
    effect: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...]
    not_resources: tuple[str, ...] | None
    principal: Any
    not_principal: Any
    condition: Mapping[str, Any]

    @property
    def label(self) -> str:
        return f'statement "{self.sid}"' if self.sid else f"statement #{self.index + 1}"

    @property
    def allows(self) -> bool:
        """Allow, read leniently (`allow` counts as a grant here; `iam-document-strict` refuses it)."""
        return self.effect.strip().lower() == "allow"

    def covers_action(self, action: str) -> bool:
        """The statement's action list names `action` (ignores the effect)."""
        if self.not_actions is not None:
            return not any(action_match(p, action) for p in self.not_actions)
        return any(action_match(p, action) for p in self.actions)

    def covered_actions(self, actions: tuple[str, ...]) -> list[str]:
        return [a for a in actions if self.covers_action(a)]

    def covers_resource(self, arn: str) -> bool:
        if self.not_resources is not None:
            return not any(wildcard_match(p, arn) for p in self.not_resources)
        return any(wildcard_match(p, arn) for p in self.resources)

    def condition_values(self, key: str) -> dict[str, list[str]]:
        """Operator -> values for a condition key (key compared case-insensitively, as IAM does)."""
        out: dict[str, list[str]] = {}
        for op, block in self.condition.items():
            if isinstance(block, dict):
                for k, v in block.items():
                    if str(k).lower() == key.lower():
                        out.setdefault(str(op), []).extend(str(x) for x in as_list(v))
        return out


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in as_list(value))


def statements(doc: Mapping[str, Any]) -> list[Statement]:
    out: list[Statement] = []
    for i, raw in enumerate(as_list(doc.get("Statement"))):
        if not isinstance(raw, dict):
            continue
        cond = raw.get("Condition")
        out.append(Statement(
            index=i,
            sid=str(raw["Sid"]) if raw.get("Sid") else None,
            effect=str(raw.get("Effect", "")),
            actions=_strings(raw.get("Action")),
            not_actions=_strings(raw["NotAction"]) if "NotAction" in raw else None,
            resources=_strings(raw.get("Resource")),
            not_resources=_strings(raw["NotResource"]) if "NotResource" in raw else None,
            principal=raw.get("Principal"),
            not_principal=raw.get("NotPrincipal"),
            condition=cond if isinstance(cond, dict) else {},
        ))
    return out


def identity_documents(resource_type: str, props: Mapping[str, Any]) -> list[tuple[str, Document]]:
    """(prop path, document) of every identity policy a resource carries (plain props)."""
    if resource_type in IDENTITY_POLICY_TYPES:
        return [("policy", document(get(props, "policy")))]
    if resource_type == ROLE:
        inline = get(props, "inlinePolicies")
        if inline is UNKNOWN:
            return [("inlinePolicies", UNKNOWN)]
        docs: list[tuple[str, Document]] = []
        for i, item in enumerate(as_list(inline)):
            docs.append((f"inlinePolicies[{i}].policy", document(get(item, "policy") if isinstance(item, dict) else item)))
        return docs
    return []


def principal_values(principal: Any, kind: str | None = None) -> list[str]:
    """Principal entries as strings; `"*"` stays `"*"`. `kind` picks AWS/Service/Federated."""
    if principal is None:
        return []
    if isinstance(principal, str):
        return [principal]
    if isinstance(principal, dict):
        out: list[str] = []
        for k, v in principal.items():
            if kind is None or k == kind:
                out.extend(str(x) for x in as_list(v))
        return out
    return [str(principal)]


def grant_scopes(stmt: Statement) -> tuple[list[AgentScope], list[str]]:
    """The agent folders a statement's resources are confined to, and the resources that aren't."""
    if stmt.not_resources is not None:
        return [], [f"NotResource {list(stmt.not_resources)}"]
    scopes: list[AgentScope] = []
    wide: list[str] = []
    for r in stmt.resources or ("<no Resource>",):
        scope = secret_scope(r)
        if scope is None:
            wide.append(r)
        elif scope not in scopes:
            scopes.append(scope)
    return scopes, wide


def role_name_of_arn(arn: str) -> str | None:
    """`arn:...:iam::<account>:role/<path/>name` -> name."""
    if ":role/" not in arn:
        return None
    return arn.rsplit("/", 1)[-1]
