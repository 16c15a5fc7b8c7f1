"""IAM lint: every IAM document the program declares passes parliament without errors.

Linted: identity policies (role inline, RolePolicy, managed/user/group policies) and resource
policies (secrets, the KMS key, the alert topic, the trail bucket, log resource policies).

parliament (Duo Labs' maintained IAM linter) knows every action, resource type and condition
key. Which findings fail: severities CRITICAL, HIGH and MEDIUM (malformed documents, invalid
ARNs, actions on resource types they don't apply to, unknown condition keys) plus the LOW issues
UNKNOWN_ACTION / UNKNOWN_PREFIX (a typo in an action silently grants nothing) and NO_VERSION.
Other LOW findings (RESOURCE_STAR for GetRandomPassword or PutMetricData, which have no
resource ARNs) are expected and pass. Both lists are policy config (`failSeverities`,
`failIssues`). Trust policies are not linted (parliament models identity and resource
policies; `trust-policy-scoped` covers trust).
"""

from __future__ import annotations

import json
from typing import Any, Iterable

import parliament
import parliament.statement
from jsoncfg.config_classes import ConfigJSONArray, ConfigJSONObject, ConfigJSONScalar
from parliament.policy import Policy
from pulumi_policy import PolicyConfigSchema

from agentfleet.policy.base import Resource, resource_policy
from agentfleet.policy.iamdoc import IDENTITY_POLICY_TYPES, ROLE, SECRET_POLICY, identity_documents
from agentfleet.policy.layout import LAYOUT_SCHEMA, Layout
from agentfleet.policy.stackgraph import SECRET
from agentfleet.policy.values import BadDocument, document, get

# Global condition keys AWS documents (IAM User Guide, "AWS global condition context keys") that
# parliament 1.6.4's table lacks, so it reports them as UNKNOWN_CONDITION_FOR_ACTION. The network
# scope's deny (issue 15) needs aws:ViaAWSService to exempt KMS calls a service makes for the caller.
MISSING_GLOBAL_KEYS = {"aws:ViaAWSService": "Bool"}
for _key, _kind in MISSING_GLOBAL_KEYS.items():
    parliament.statement.GLOBAL_CONDITION_KEYS.setdefault(_key, _kind)

FAIL_SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM")
FAIL_ISSUES = ("UNKNOWN_ACTION", "UNKNOWN_PREFIX", "NO_VERSION")
NEWER_THAN_PARLIAMENT = frozenset({"sts:GetWebIdentityToken"})
"""Real actions younger than parliament's bundled action database (AWS outbound identity
federation, STS API reference `GetWebIdentityToken`): not reported as UNKNOWN_ACTION. Only these
exact names; any other unknown action still fails."""
RESOURCE_POLICY_PROPS: dict[str, str] = {
    SECRET_POLICY: "policy",
    SECRET: "policy",
    "aws:kms/key:Key": "policy",
    "aws:kms/keyPolicy:KeyPolicy": "policy",
    "aws:sns/topicPolicy:TopicPolicy": "policy",
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
    "aws:cloudwatch/logResourcePolicy:LogResourcePolicy": "policyDocument",
}
"""Resource policies (type -> prop): the secrets' own, and the KMS key, alert topic and trail bucket's."""
LINTED_TYPES = (*IDENTITY_POLICY_TYPES, ROLE, *RESOURCE_POLICY_PROPS)

LINT_SCHEMA = PolicyConfigSchema(properties={
    **LAYOUT_SCHEMA.properties,
    "failSeverities": {"type": "array", "items": {"type": "string"}, "description": "parliament severities that fail"},
    "failIssues": {"type": "array", "items": {"type": "string"}, "description": "parliament issues that fail regardless of severity"},
})


def _documents(r: Resource) -> list[tuple[str, Any, str | None]]:
    """(prop path, parsed document, original JSON text) of every lintable document."""
    if r.type in RESOURCE_POLICY_PROPS:
        prop = RESOURCE_POLICY_PROPS[r.type]
        raw = get(r.props, prop)
        return [(prop, document(raw), raw if isinstance(raw, str) else None)]
    out: list[tuple[str, Any, str | None]] = []
    for path, doc in identity_documents(r.type, r.props):
        out.append((path, doc, None))
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(name)  # NaN / Infinity: not JSON; jsoncfg's parser decides what they are


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key")  # jsoncfg refuses the document: its MALFORMED_JSON finding applies
    return out


def _config_tree(value: Any) -> Any:
    """`value` as the config nodes jsoncfg's parser builds (no line numbers: none is reported)."""
    if isinstance(value, dict):
        node = ConfigJSONObject(0, 0)
        for key, item in value.items():
            node._insert(key, _config_tree(item))
        return node
    if isinstance(value, list):
        array = ConfigJSONArray(0, 0)
        for item in value:
            array._append(_config_tree(item))
        return array
    return ConfigJSONScalar(value, 0, 0)


def findings(source: str) -> list[Any]:
    """parliament's findings for one JSON document, with their configured severity.

    parliament parses with jsoncfg, a character-at-a-time parser (a third of `iam-policy-lint`'s
    time on a large fleet). A strict-JSON object without duplicate keys is parsed by the standard
    library into the same nodes instead. Anything else (a comment, a trailing comma, a duplicate
    key, a root that is not an object, a syntax error), and any document parliament itself fails
    on (its error names a line), goes through `analyze_policy_string`: jsoncfg's verdict and
    parliament's own error, as before."""
    policy = None
    try:
        parsed = json.loads(source, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        try:
            policy = Policy(_config_tree(parsed))
            policy.analyze(ignore_private_auditors=True)
        except Exception:  # noqa: BLE001 - parliament's own parse below raises it again, with its line
            policy = None
    if policy is None:
        policy = parliament.analyze_policy_string(source, ignore_private_auditors=True)
    return [parliament.enhance_finding(f) for f in policy.findings]


def check_lint(r: Resource, lay: Layout) -> Iterable[str]:
    fail_sev = {str(s).upper() for s in lay.options.get("failSeverities", FAIL_SEVERITIES)}
    fail_issue = {str(s).upper() for s in lay.options.get("failIssues", FAIL_ISSUES)}
    for path, doc, raw in _documents(r):
        if isinstance(doc, BadDocument):
            yield f"{r.label} {path} is {doc.reason}. Fix: build IAM documents with agentfleet.core.iam_documents (Document.to_json)."
            continue
        if not isinstance(doc, dict):
            continue  # absent, or computed at deploy time
        source = raw if raw is not None and raw.strip().startswith("{") else json.dumps(doc)
        try:
            found = findings(source)
        except Exception as exc:  # noqa: BLE001 - a linter crash must be visible, never fatal
            yield f"{r.label} {path} could not be linted by parliament ({type(exc).__name__}: {exc}). Fix: check the document's shape."
            continue
        for f in found:
            if f.issue == "UNKNOWN_ACTION" and (f.location or {}).get("string") in NEWER_THAN_PARLIAMENT:
                continue
            if f.severity in fail_sev or f.issue in fail_issue:
                yield (f"{r.label} {path}: parliament {f.issue} ({f.severity}): {f.title}; {f.detail}. "
                       f"Fix: correct the statement in the builder that produced it (agentfleet.core.iam_documents / agentfleet.core.plan).")


iam_policy_lint = resource_policy(
    "iam-policy-lint",
    "Every generated IAM document passes the parliament IAM linter without errors.",
    LINTED_TYPES, check_lint, schema=LINT_SCHEMA,
    remediation="Fix the document's builder; see the finding's issue in parliament's docs.",
)

POLICIES = (iam_policy_lint,)
