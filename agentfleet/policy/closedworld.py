"""Closed world: what the pack cannot fully evaluate does not get near the fleet's credentials.

The other policies judge documents they can read. These two make sure nothing routes around
them: a grant whose content lives outside the stack (an AWS managed policy, a policy attached by
a literal ARN), long-lived IAM identities (users, access keys, groups), resource types the pack
does not evaluate that reference a managed role, secret, KMS key or Vault policy, Vault generic
writes (which can create policies and auth roles), and a second resource policy or rotation on a
managed secret (on AWS the last writer wins), however the secret is referenced (name, ARN,
partial ARN, Output). The only way through is a reviewed exception in the policy config
(`exceptions: [{resource: <logical name or URN>, reason: ...}]`, or `{managedPolicyArn: ...}`).

No resource is trusted for where it sits in the tree: `parent=` is the program's to choose (an
appended resource can name the fleet, or a look-alike `agentfleet:` component, as its parent). What
the builders declare passes on its content: a resource may run as a fleet role only in the one
pairing the builders use (a Lambda function and the role of the same name, the trail and its logs
role, the scheduler's schedules and their targets), and the physical names those pairings rest on
must be unique in the stack.
"""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any, Iterable, Iterator

from agentfleet.core import iam_documents, naming
from agentfleet.core.model import AUTOMATED_STRATEGIES
from agentfleet.policy.base import Resource, by_urn, stack_policy
from agentfleet.policy.iamdoc import (
    GROUP_POLICY_ATTACHMENT,
    MANAGED_POLICY,
    POLICY_ATTACHMENT,
    ROLE,
    ROLE_ATTACHMENTS_EXCLUSIVE,
    ROLE_POLICY,
    ROLE_POLICY_ATTACHMENT,
    SECRET_POLICY,
    SECRET_WRITE_ACTIONS,
    USER_POLICY_ATTACHMENT,
    statements,
)
from agentfleet.core.iam_documents import SECRET_READ_ACTIONS
from agentfleet.policy.iam import POLICY_ESCALATION_ACTIONS
from agentfleet.policy.kms import DECRYPT_ACTIONS, KEY_POLICY, KMS_ALIAS, KMS_KEY
from agentfleet.policy.layout import Layout
from agentfleet.policy.rotation import SECRET_ROTATION, string_leaves
from agentfleet.policy.stackgraph import LAMBDA_FUNCTION, SECRET, Refs, identifiers, of_type
from agentfleet.policy.values import UNKNOWN, as_list, document, get, text
from agentfleet.policy.vault import VAULT_POLICY, vault_name


ATTACHMENT_PROPS: dict[str, str] = {
    ROLE_POLICY_ATTACHMENT: "policyArn",
    POLICY_ATTACHMENT: "policyArn",
    USER_POLICY_ATTACHMENT: "policyArn",
    GROUP_POLICY_ATTACHMENT: "policyArn",
    ROLE_ATTACHMENTS_EXCLUSIVE: "policyArns",
    ROLE: "managedPolicyArns",
}
"""Where a resource names managed policies to attach (a role's own `managedPolicyArns` too)."""

LONG_LIVED_IDENTITY_PREFIXES = (
    "aws:iam/user", "aws:iam/group", "aws:iam/accessKey:", "aws:iam/serviceSpecificCredential:",
    "aws:iam/signingCertificate:", "aws:iam/sshKey:", "aws:iam/virtualMfaDevice:",
)
"""IAM users, their keys, login profiles, groups and memberships: the fleet has none by design."""

NEVER_DECLARED: dict[str, str] = {
    "aws:cloudwatch/logSubscriptionFilter:LogSubscriptionFilter": ("streams a log group (the trail's: who read which "
                                                                   "secret, from where) to a destination of its choice; "
                                                                   "the components never declare one."),
    "vault:kv/secretBackendV2:SecretBackendV2": ("configures a KV v2 mount (versions kept, their lifetime, check-and-set): "
                                                 "on the fleet's mount it can expire every agent's credentials or the "
                                                 "previous version rotation keeps; the components never declare one."),
}
"""Types inside an evaluated prefix (`vault:kv/`) that the components never declare."""

VAULT_WRITE_ANYWHERE_PREFIXES = ("vault:generic/",)
"""Writes to arbitrary Vault paths (`sys/policy/...`, `auth/.../role/...`): not evaluable."""

EVALUATED_TYPES = frozenset({
    ROLE, ROLE_POLICY, MANAGED_POLICY, *ATTACHMENT_PROPS, SECRET, SECRET_POLICY, SECRET_ROTATION,
    "aws:secretsmanager/secretVersion:SecretVersion", KMS_KEY, KMS_ALIAS, KEY_POLICY, VAULT_POLICY,
    "aws:lambda/permission:Permission", "aws:lambda/functionUrl:FunctionUrl",
    "aws:ssm/parameter:Parameter", "aws:sns/topic:Topic", "aws:sns/topicPolicy:TopicPolicy",
    # A function or trail grants nothing itself: what it runs as is judged above (the pairings).
    "aws:lambda/function:Function", "aws:eks/podIdentityAssociation:PodIdentityAssociation",
})
"""Types another policy of the pack fully judges; referencing managed resources from them is fine."""
EVALUATED_PREFIXES = ("aws:cloudwatch/", "aws:scheduler/", "aws:cloudtrail/", "aws:s3/", "vault:kv/", "random:")
"""Monitoring, reminder schedules, trail storage, KV values (no-literal-secret-values), generators."""


def evaluated_by_class(r: Resource) -> bool:
    """Classes judged elsewhere whatever their exact type: Vault login roles (vault-login-confined),
    workload identity bindings (the role's trust policy decides), secret-holding stores."""
    if r.type in EVALUATED_TYPES or r.type.startswith(EVALUATED_PREFIXES):
        return True
    return r.type.startswith("vault:") and r.type.endswith("authBackendRole:AuthBackendRole")


ROLE_USE_PROP = re.compile(r"(^role$|^roles$|rolearn$|role_arn$|executionrole|taskrole|servicerole|iamrole|instanceprofile)", re.I)
"""Inputs through which a resource *acts as* a role (a function's or task's execution role, a
pod identity association, an instance profile, a schedule's or event target's role)."""
NESTED_ROLE_USE_PROP = re.compile(r"(rolearn$|role_arn$|executionrole|taskrole|servicerole|iamrole|instanceprofile)", re.I)
"""Below the top level, only keys that hold a role to run as (`target.roleArn`), not a bare
`Role` (a metric dimension names a role without running as it)."""
GRANT_TO_ROLE_TYPES = frozenset({ROLE_POLICY, *ATTACHMENT_PROPS, "aws:iam/rolePoliciesExclusive:RolePoliciesExclusive"})
"""Types whose `role` input is the grantee: their documents are judged by the IAM policies."""


def _role_inputs(value: Any, top: str | None = None) -> Iterator[tuple[str, Any]]:
    """(top-level input, value) of every input, at any depth, named like an execution role (a
    schedule's `target.roleArn`, a task's container overrides ...)."""
    if isinstance(value, dict):
        for key, v in value.items():
            here = key if top is None else top
            pattern = ROLE_USE_PROP if top is None else NESTED_ROLE_USE_PROP
            if isinstance(key, str) and pattern.search(key):
                yield here, v
            elif isinstance(v, (dict, list)):
                yield from _role_inputs(v, here)
    elif isinstance(value, list):
        for v in value:
            yield from _role_inputs(v, top)


def role_uses(r: Resource, managed: "Managed") -> list[Resource]:
    """Managed roles a resource would run as (by class: any input, at any depth, named like an
    execution role that names a managed role; a top-level one may also depend on it)."""
    if r.type in GRANT_TO_ROLE_TYPES or r.type.startswith("vault:"):
        return []
    found: dict[str, Resource] = {}
    for key, value in _role_inputs(r.props):
        for leaf in string_leaves(value):
            hit = managed.lookup(leaf)
            if hit is not None and hit.type == ROLE:
                found[hit.urn] = hit
        if ROLE_USE_PROP.search(key):
            for urn in r.property_dependencies.get(key, ()):
                res = managed.urns.get(urn)
                if res is not None and res.type == ROLE:
                    found[urn] = res
    return list(found.values())


TRAIL = "aws:cloudtrail/trail:Trail"
SCHEDULE = "aws:scheduler/schedule:Schedule"
SNS_TOPIC = "aws:sns/topic:Topic"
POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
EKS_SESSION_TAGS = (iam_documents.EKS_TAG_CLUSTER, iam_documents.EKS_TAG_NAMESPACE, iam_documents.EKS_TAG_SERVICE_ACCOUNT)
EKS_POD_IDENTITY_SERVICE = iam_documents.EKS_POD_IDENTITY_SERVICE
EXECUTOR_TYPES = (LAMBDA_FUNCTION, TRAIL, SCHEDULE, ROLE, SNS_TOPIC, KMS_ALIAS)
"""Types whose physical names the pairings rest on: each name at most once in the stack (AWS
scopes some by region or account; the pack does not, so another provider cannot double one). A
second alias of the key's name would point the name the fleet uses at another key."""


def physical(r: Resource) -> str | None:
    return text(get(r.props, "name")) or None


def _lambda_roles(lay: Layout, role: Resource) -> set[str]:
    """Role names the builders give a Lambda function (of the same name): the agent's (tag) rotation
    role(s) under the stack's isolation mode, and the secret-age reporter's."""
    assert lay.settings is not None
    s = lay.settings
    agent = role.tag("agent")
    names = {naming.age_reporter_name(s)}
    names |= {naming.shared_rotation_role_name(s, st) for st in AUTOMATED_STRATEGIES}
    if isinstance(agent, str) and agent:
        names.add(naming.rotation_role_name(s, agent))
    return names - {naming.role_name(s, agent)} if isinstance(agent, str) and agent else names


class Pairings:
    """The builders' executor/role pairings, judged on content alone (no parent is trusted)."""

    def __init__(self, resources: list[Resource], lay: Layout, managed: "Managed"):
        self.lay, self.managed = lay, managed
        self.by_urn = by_urn(resources)
        self.targets: dict[str, list[Resource]] = {}
        """Functions and topics by every identifier (indexed once: thousands of schedules)."""
        for t in (*of_type(resources, LAMBDA_FUNCTION), *of_type(resources, SNS_TOPIC)):
            for ident in identifiers(t):
                self.targets.setdefault(ident, []).append(t)

    def builders(self, r: Resource, role: Resource) -> bool:
        """True when `r` runs as `role` exactly as the builders pair them."""
        own, role_name = physical(r), physical(role)
        if not own or not role_name:
            return False
        s = self.lay.settings
        if r.type == LAMBDA_FUNCTION:  # naming.rotation_function_name / age_reporter_name: function == role
            return own == role_name and (s is None or role_name in _lambda_roles(self.lay, role))
        if r.type == TRAIL:
            if s is None:
                return role_name == naming.trail_logs_role_for(own)
            return own == naming.trail_name(s) and role_name == naming.trail_logs_role_name(s)
        if r.type == SCHEDULE:
            if s is None or role_name != naming.scheduler_role_name(s):
                return False
            return self._builders_target(r)
        return False

    def pod_identity(self, r: Resource, role: Resource) -> bool:
        """An EKS Pod Identity association for exactly the cluster, namespace and service account
        the role's trust policy pins (iam_documents.assume_by_eks_pod_identity): for any other pod
        EKS could not assume the role, so the association grants nothing new."""
        want = (text(get(r.props, "clusterName")), text(get(r.props, "namespace")), text(get(r.props, "serviceAccount")))
        if not all(want):
            return False
        doc = document(get(role.props, "assumeRolePolicy"))
        if not isinstance(doc, dict):
            return False
        statements = doc.get("Statement")
        pinned: list[tuple[str | None, ...]] = []
        for st in statements if isinstance(statements, list) else [statements]:
            if not isinstance(st, dict) or st.get("Effect") != "Allow":
                continue
            principal = st.get("Principal")
            service = principal.get("Service") if isinstance(principal, dict) else None
            if EKS_POD_IDENTITY_SERVICE not in (service if isinstance(service, list) else [service]):
                continue
            cond = st.get("Condition")
            eq = cond.get("StringEquals") if isinstance(cond, dict) else None
            if not isinstance(cond, dict) or not isinstance(eq, dict) or set(cond) != {"StringEquals"}:
                pinned.append((None, None, None))
                continue
            pinned.append(tuple(text(eq.get(f"aws:RequestTag/{k}")) for k in EKS_SESSION_TAGS))
        return bool(pinned) and all(p == want for p in pinned)

    def _builders_target(self, r: Resource) -> bool:
        """A schedule's target is the alarm topic or a Lambda function the builders pair with its role."""
        assert self.lay.settings is not None
        s = self.lay.settings
        target = get(r.props, "target")
        arn = get(target, "arn") if isinstance(target, dict) else None
        candidates: list[Resource] = []
        for urn in r.property_dependencies.get("target", ()):
            res = self.by_urn.get(urn)
            if res is not None and res.type in (LAMBDA_FUNCTION, SNS_TOPIC):
                candidates.append(res)
        if isinstance(arn, str):
            if arn == naming.alarm_topic_arn(s):
                return True
            candidates += self.targets.get(arn, [])
        if not candidates:
            return False
        for c in candidates:
            if c.type == SNS_TOPIC:
                if physical(c) != naming.alarm_topic_name(s):
                    return False
                continue
            roles = role_uses(c, self.managed)
            if len(roles) != 1 or not self.builders(c, roles[0]):
                return False
        return True


def duplicate_names(resources: list[Resource], lay: Layout) -> Iterator[tuple[str, str | None]]:
    """Two resources of one executor type with the same physical name: the pairing rules identify
    the builders' resources by name, so a second one (another region's provider, say) is refused."""
    seen: dict[tuple[str, str], Resource] = {}
    for r in resources:
        if r.type not in EXECUTOR_TYPES:
            continue
        n = physical(r)
        if not n:
            continue
        first = seen.setdefault((r.type, n), r)
        if first is not r and not lay.excepted(r.name, r.urn):
            yield (f"{r.label} has the physical name {n!r} of {first.label}: the pack identifies the fleet's "
                   f"executors and roles by name, so names must be unique in the stack. Fix: give it another name.",
                   r.urn)


OVERWRITTEN_BY_KEY: dict[str, tuple[str, ...]] = {
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("name",),
    "aws:cloudwatch/logMetricFilter:LogMetricFilter": ("name", "logGroupName"),
    "aws:cloudwatch/eventRule:EventRule": ("name", "eventBusName"),
    "aws:cloudwatch/logGroup:LogGroup": ("name",),
    "aws:sns/topicPolicy:TopicPolicy": ("arn",),
}
"""Types AWS overwrites in place when a second resource names the same key (PutMetricAlarm,
PutMetricFilter, PutRule, SetTopicAttributes): a second alarm of the same name with actions
disabled, or a filter matching nothing, silently replaces the fleet's detection."""


def overwritten(resources: list[Resource], lay: Layout) -> Iterator[tuple[str, str | None]]:
    """One finding per group, the same whatever order the engine registered the resources in."""
    groups: dict[tuple[str, ...], list[Resource]] = {}
    for r in resources:
        keys = OVERWRITTEN_BY_KEY.get(r.type)
        if keys is None:
            continue
        values = tuple(text(get(r.props, k)) or "" for k in keys)
        if values[0]:
            groups.setdefault((r.type, *values), []).append(r)
    for group, members in groups.items():
        items = sorted(members, key=lambda x: x.urn)
        if len(items) < 2 or any(lay.excepted(x.name, x.urn) for x in items):
            continue
        keys = OVERWRITTEN_BY_KEY[group[0]]
        yield (f"{len(items)} resources ({', '.join(x.label for x in items)}) have the same {'/'.join(keys)} "
               f"{group[1:]}: AWS keeps only the last one applied, so the reviewed alarm, filter, rule, log group or "
               f"policy can be silently replaced. Fix: give each its own name, {_exception_hint(items[-1])}.", items[-1].urn)


def service_only(doc: object) -> list[str]:
    """Labels of Allow statements granting anything but AWS service principals."""
    if not isinstance(doc, dict):
        return ["(unreadable document)"]
    return [st.label for st in statements(doc) if st.allows and (
        st.not_principal is not None or not isinstance(st.principal, dict) or set(st.principal) != {"Service"})]


def stack_topics(resources: list[Resource], lay: Layout) -> Iterator[tuple[str, str | None]]:
    """A topic of the stack (the alert topic) lets only AWS services publish: a policy opening it to
    an account or `*` lets anyone subscribe to the fleet's alerts or publish forged ones."""
    topics = Refs(of_type(resources, SNS_TOPIC))
    for r in of_type(resources, "aws:sns/topicPolicy:TopicPolicy"):
        if lay.excepted(r.name, r.urn) or not topics.resolve(r, "arn"):
            continue
        doc = document(get(r.props, "policy"))
        bad = [] if doc is UNKNOWN else service_only(doc)
        if bad:
            yield (f"{r.label} lets principals other than AWS services use the stack's topic ({', '.join(bad)}). Fix: "
                   f"keep the builders' topic policy (monitoring_plan.alert_topic_policy), {_exception_hint(r)}.", r.urn)


def is_component(r: Resource) -> bool:
    """Component resources (`pkg:index:Name`) and providers hold no cloud state of their own."""
    if r.type.startswith("pulumi:"):
        return True
    parts = r.type.split(":")
    return len(parts) == 3 and "/" not in parts[1]


def _exception_hint(r: Resource) -> str:
    return (f"or, if this was reviewed, list it in the policy config `exceptions` "
            f"({{\"resource\": \"{r.name}\", \"reason\": \"...\"}})")


class Managed:
    """Identifiers of what the fleet protects: roles, secrets, the KMS key and aliases, Vault policies."""

    def __init__(self, resources: list[Resource]):
        self.urns: dict[str, Resource] = {}
        self.exact: dict[str, Resource] = {}
        self.arns: list[tuple[str, Resource]] = []
        for r in resources:
            if r.type in (ROLE, SECRET, KMS_KEY, KMS_ALIAS, VAULT_POLICY):
                self.urns[r.urn] = r
                for ident in identifiers(r):
                    self.exact.setdefault(ident, r)
                    if ident.startswith("arn:"):
                        self.arns.append((ident, r))
        self.secrets = Refs(of_type(resources, SECRET))
        self.folded: dict[str, Resource] = {}
        """Identifiers case-folded: IAM role names are case-insensitive (`ROLE/AGENTS-DEV-CRM` is
        the role `agents-dev-crm`), so a reference that differs only in case still counts."""
        self.vault_names: dict[str, Resource] = {}
        """Vault policy names as Vault stores them (trimmed, lowercased)."""
        for ident, res in self.exact.items():
            self.folded.setdefault(ident.lower(), res)
        for r in resources:
            if r.type == VAULT_POLICY and (n := text(get(r.props, "name"))):
                self.vault_names.setdefault(vault_name(n), r)

    def lookup(self, leaf: str) -> Resource | None:
        """The managed resource a string names exactly, or up to case (role names, ARNs); a role
        ARN is matched on its name (IAM resolves it by name, case-insensitively)."""
        hit = self.exact.get(leaf) or self.folded.get(leaf.lower())
        if hit is None and ":role/" in leaf:
            by_name = self.folded.get(leaf.rsplit("/", 1)[-1].lower())
            hit = by_name if by_name is not None and by_name.type == ROLE else None
        return hit

    def referenced_by(self, r: Resource) -> list[Resource]:
        found: dict[str, Resource] = {}
        on_vault = r.type.startswith("vault:")
        for leaf in string_leaves(r.props):
            hit = self.lookup(leaf)
            if hit is None and on_vault:
                hit = self.vault_names.get(vault_name(leaf))
                if hit is None and any(g in leaf for g in "*+?["):
                    hit = next((p for n, p in self.vault_names.items() if fnmatch.fnmatchcase(n, vault_name(leaf))), None)
            if hit is not None:
                found[hit.urn] = hit
                continue
            for s in self.secrets.lookup(leaf):
                found[s.urn] = s
            if ":" in leaf:
                folded = leaf.lower()
                for arn, res in self.arns:
                    if arn.lower() in folded:
                        found[res.urn] = res
        deps = set(r.dependencies) | {u for us in r.property_dependencies.values() for u in us}
        for urn in deps:
            if urn in self.urns:
                found[urn] = self.urns[urn]
        return list(found.values())


GUARDED_ACTIONS = (*SECRET_READ_ACTIONS, *SECRET_WRITE_ACTIONS, *DECRYPT_ACTIONS, *POLICY_ESCALATION_ACTIONS)
"""What an IAM document in an unevaluated type may not allow, on any resource: reading, writing or
decrypting secrets, or widening access (the fleet's documents live only in evaluated types)."""


def _documents_in(value: Any) -> Iterator[dict[str, Any]]:
    """IAM documents anywhere in a value: JSON strings or objects with a `Statement`."""
    if isinstance(value, str):
        if value.lstrip().startswith("{"):
            try:
                parsed = json.loads(value)
            except ValueError:
                return
            yield from _documents_in(parsed)
    elif isinstance(value, dict):
        if "Statement" in value:
            yield value
            return
        for v in value.values():
            yield from _documents_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from _documents_in(v)


def _embedded_grants(r: Resource) -> Iterator[str]:
    for doc in _documents_in(r.props):
        for st in statements(doc):
            if st.allows:
                yield from st.covered_actions(GUARDED_ACTIONS)


def _policy_arns(r: Resource) -> Iterator[object]:
    yield from as_list(get(r.props, ATTACHMENT_PROPS[r.type]))


def check_closed_world(resources: list[Resource], lay: Layout) -> Iterable[tuple[str, str | None]]:
    managed = Managed(resources)
    policies = Refs(of_type(resources, MANAGED_POLICY))
    pairings = Pairings(resources, lay, managed)
    yield from duplicate_names(resources, lay)
    yield from vault_trust_roots(resources, lay)
    yield from stack_buckets(resources, lay)
    yield from topic_subscriptions(resources, lay)
    yield from overwritten(resources, lay)
    yield from stack_topics(resources, lay)
    for r in resources:
        if lay.excepted(r.name, r.urn) or is_component(r):
            continue
        if r.type.startswith(LONG_LIVED_IDENTITY_PREFIXES):
            yield (f"{r.label} declares a long-lived IAM identity (user, access key, group); the fleet's principals "
                   f"are roles with short-lived sessions only. Fix: give the workload an agent role in agents.yaml, "
                   f"{_exception_hint(r)}.", r.urn)
            continue
        if r.type.startswith(VAULT_WRITE_ANYWHERE_PREFIXES):
            yield (f"{r.label} writes an arbitrary Vault path ({text(get(r.props, 'path')) or 'unknown path'}): it can "
                   f"create policies, auth roles or secrets the pack cannot evaluate. Fix: use the typed resources the "
                   f"components declare, {_exception_hint(r)}.", r.urn)
            continue
        if r.type in NEVER_DECLARED:
            yield f"{r.label} {NEVER_DECLARED[r.type]} Fix: remove it, {_exception_hint(r)}.", r.urn
            continue
        if r.type in ATTACHMENT_PROPS:
            yield from _attachments(r, lay, policies)
        runs_as = [x for x in role_uses(r, managed) if not pairings.builders(r, x)
                   and not (r.type == POD_IDENTITY and pairings.pod_identity(r, x))]
        if runs_as:
            yield (f"{r.label} runs as the fleet's role(s) {sorted(x.label for x in runs_as)}: whatever code or "
                   f"workload it starts gets that role's access to secrets. Fix: give it its own role (an agent in "
                   f"agents.yaml), {_exception_hint(r)}.", r.urn)
            continue
        if r.type in EVALUATED_TYPES or evaluated_by_class(r):
            continue
        grants = list(_embedded_grants(r))
        if grants:
            yield (f"{r.label} is a resource type the pack does not evaluate, and it carries an IAM document allowing "
                   f"{sorted(set(grants))[:6]}: whoever it applies to (an SSO permission set, a session policy ...) could "
                   f"read, decrypt or re-grant the fleet's secrets, and the pack cannot say whose. Fix: grant through "
                   f"agents.yaml, {_exception_hint(r)}.", r.urn)
            continue
        refs = managed.referenced_by(r)
        if refs:
            named = ", ".join(sorted(x.label for x in refs)[:4])
            yield (f"{r.label} is a resource type the pack does not evaluate, and it references managed "
                   f"resources ({named}): what it grants cannot be checked. Fix: remove it, "
                   f"{_exception_hint(r)}.", r.urn)


VAULT_AWS_CLIENT = "vault:aws/authBackendClient:AuthBackendClient"
VAULT_K8S_CONFIG = "vault:kubernetes/authBackendConfig:AuthBackendConfig"
VAULT_AUTH_BACKEND = "vault:index/authBackend:AuthBackend"
VAULT_TRUST_ROOTS = (VAULT_AWS_CLIENT, VAULT_K8S_CONFIG, "vault:aws/authBackendStsRole:AuthBackendStsRole",
                     "vault:aws/authBackendCert:AuthBackendCert", "vault:aws/authBackendConfigIdentity:AuthBackendConfigIdentity")
"""Configuration a login mount verifies identities against (which STS answers for an AWS login,
which API server reviews a service-account token): whoever controls it logs in as any agent."""


def _aws_endpoints(resources: list[Resource]) -> set[tuple[str, str]] | None:
    """(service, url) endpoints of the AWS provider the fleet's roles are created with; None when
    roles disagree (several providers) or none is in the stack."""
    seen: set[frozenset[tuple[str, str]]] = set()
    for r in of_type(resources, ROLE):
        raw = (r.provider_props or {}).get("endpoints")
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                raw = None
        pairs = {(str(k), str(v)) for e in as_list(raw) if isinstance(e, dict) for k, v in e.items() if isinstance(v, str)}
        seen.add(frozenset(pairs))
    return set(next(iter(seen))) if len(seen) == 1 else None


def vault_trust_roots(resources: list[Resource], lay: Layout) -> Iterator[tuple[str, str | None]]:
    """The builders configure a login mount's trust root in two pairings only: an AWS auth client
    whose iam/sts endpoints are exactly the fleet's AWS provider endpoints (an emulator; on AWS the
    operator configures it outside the stack), and one Kubernetes config per Kubernetes auth mount
    the stack declares. Anything else (an STS endpoint of someone else's, a second config that
    replaces the reviewed one, STS roles or certificates) is refused."""
    mounts = {text(get(b.props, "path")) or "": b for b in of_type(resources, VAULT_AUTH_BACKEND)}
    endpoints = _aws_endpoints(resources)
    per_mount: dict[tuple[str, str], list[Resource]] = {}
    for r in resources:
        if r.type not in VAULT_TRUST_ROOTS or lay.excepted(r.name, r.urn):
            continue
        backend = get(r.props, "backend")
        deps = set(r.property_dependencies.get("backend", ()))
        mount = next((b for b in mounts.values() if b.urn in deps), None) or mounts.get((text(backend) or "").strip("/"))
        key = (r.type, mount.urn if mount is not None else (text(backend) or "?"))
        per_mount.setdefault(key, []).append(r)
        why = None
        if r.type == VAULT_AWS_CLIENT:
            want = {(svc, url) for svc, url in endpoints or () if svc in ("iam", "sts")}
            got = {(svc, url) for svc in ("iam", "sts") if (url := text(get(r.props, f"{svc}Endpoint")))}
            if mount is None or text(get(mount.props, "type")) != "aws":
                why = "on an AWS auth mount this stack does not declare"
            elif not want or got != want:
                why = f"with iam/sts endpoints {sorted(got)}, not the fleet's AWS provider endpoints {sorted(want)}"
        elif r.type == VAULT_K8S_CONFIG:
            if mount is None or text(get(mount.props, "type")) != "kubernetes":
                why = "on a Kubernetes auth mount this stack does not declare"
        else:
            why = "(the components never declare one)"
        if why:
            yield (f"{r.label} configures what a Vault login mount trusts {why}: whoever controls that trust root "
                   f"logs in as any agent. Fix: remove it (the components configure their mounts), "
                   f"{_exception_hint(r)}.", r.urn)
    for (_, where), items in per_mount.items():
        if len(items) > 1:
            yield (f"{len(items)} resources configure the same Vault login mount ({', '.join(sorted(i.label for i in items))}): "
                   f"the last applied replaces the reviewed one. Fix: keep only the components'.", items[-1].urn)


TOPIC_SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"


def topic_subscriptions(resources: list[Resource], lay: Layout) -> Iterator[tuple[str, str | None]]:
    """Subscribers of the stack's alert topic (alerts and rotation reminders name agents, secrets and
    failures; without settings: of any topic of the stack) are exactly `agentfleet:alarmSubscriptions`, which the policy config and the fleet
    component carry; any other endpoint would receive every alert."""
    alert = naming.alarm_topic_name(lay.settings) if lay.settings else None
    topics = {ident: t for t in of_type(resources, SNS_TOPIC) if alert is None or physical(t) == alert
              for ident in identifiers(t)}
    topic_urns = {t.urn for t in topics.values()}
    allowed = {(str(sub.get("protocol")), str(sub.get("endpoint")))
               for sub in (lay.settings.alarm_subscriptions if lay.settings else ())}
    for r in of_type(resources, TOPIC_SUBSCRIPTION):
        if lay.excepted(r.name, r.urn):
            continue
        arn = text(get(r.props, "topic"))
        deps = set(r.property_dependencies.get("topic", ())) or set(r.dependencies)
        ours = (arn is not None and (arn in topics or (lay.settings is not None and arn == naming.alarm_topic_arn(lay.settings))))
        if not ours and not (deps & topic_urns):
            continue
        protocol, endpoint = get(r.props, "protocol"), get(r.props, "endpoint")
        if protocol is UNKNOWN or endpoint is UNKNOWN:
            continue
        if (text(protocol), text(endpoint)) not in allowed:
            yield (f"{r.label} subscribes {text(protocol)} endpoint {text(endpoint)!r} to the stack's alert topic, which "
                   f"`agentfleet:alarmSubscriptions` does not list: it would receive every alert and reminder. Fix: "
                   f"add it to the stack's alarmSubscriptions (reviewed with the stack), {_exception_hint(r)}.", r.urn)


S3_BUCKET_TYPES = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
S3_BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
S3_PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def stack_buckets(resources: list[Resource], lay: Layout) -> Iterator[tuple[str, str | None]]:
    """The stack's buckets (the audit trail's storage) carry only what the builders give them: one
    bucket policy granting services only, one public access block with every flag on. Any other
    bucket configuration (lifecycle expiry, ACLs, notifications, replication, a second policy that
    replaces the reviewed one) would let the trail be read, rewritten or expired unseen. Only
    buckets a trail of the stack delivers to (by `s3BucketName` or a dependency on it): a team's
    own buckets in the same program are theirs to configure."""
    trail_refs: set[str] = set()
    for t in of_type(resources, TRAIL):
        trail_refs |= set(t.property_dependencies.get("s3BucketName", ()))
        named = text(get(t.props, "s3BucketName"))
        if named:
            trail_refs.add(named)
    buckets: dict[str, Resource] = {}
    for b in of_type(resources, *S3_BUCKET_TYPES):
        idents = identifiers(b) | {text(get(b.props, "bucket")) or ""}
        if b.urn not in trail_refs and not (idents & trail_refs):
            continue
        for ident in idents:
            if ident:
                buckets.setdefault(ident, b)
    by_urn_ = {b.urn: b for b in buckets.values()}
    seen: dict[tuple[str, str], list[Resource]] = {}
    for r in resources:
        if not r.type.startswith("aws:s3/") or r.type in S3_BUCKET_TYPES or lay.excepted(r.name, r.urn):
            continue
        targets = [by_urn_[u] for u in r.property_dependencies.get("bucket", ()) if u in by_urn_]
        name = text(get(r.props, "bucket"))
        if not targets and name and name in buckets:
            targets = [buckets[name]]
        for b in targets:
            seen.setdefault((r.type, b.urn), []).append(r)
            if r.type == S3_BUCKET_POLICY:
                doc = document(get(r.props, "policy"))
                if doc is UNKNOWN:
                    continue
                bad = service_only(doc)
                if bad:
                    yield (f"{r.label} lets principals other than AWS services into {b.label} ({', '.join(bad)}): the "
                           f"trail's logs could be read, rewritten or deleted. Fix: keep the builders' bucket policy, "
                           f"{_exception_hint(r)}.", r.urn)
            elif r.type == S3_PUBLIC_ACCESS_BLOCK:
                off = [f for f in PUBLIC_ACCESS_FLAGS if get(r.props, f) is not True and get(r.props, f) is not UNKNOWN]
                if off:
                    yield f"{r.label} leaves {off} off on {b.label}. Fix: every flag on, {_exception_hint(r)}.", r.urn
            else:
                yield (f"{r.label} configures {b.label} (the audit trail's storage) in a way the pack does not "
                       f"evaluate (lifecycle expiry, ACLs, notifications, replication ...). Fix: remove it, "
                       f"{_exception_hint(r)}.", r.urn)
    for (type_, _), items in seen.items():
        if len(items) > 1 and type_ in (S3_BUCKET_POLICY, S3_PUBLIC_ACCESS_BLOCK):
            yield (f"{len(items)} resources set the same bucket's {type_.split(':')[-1]} "
                   f"({', '.join(sorted(i.label for i in items))}): the last applied replaces the reviewed one. "
                   f"Fix: keep only the components'.", items[-1].urn)


def _attachments(r: Resource, lay: Layout, policies: Refs) -> Iterator[tuple[str, str | None]]:
    prop = ATTACHMENT_PROPS[r.type]
    per_prop = r.property_dependencies.get(prop) or ()
    if get(r.props, prop) is UNKNOWN:
        if per_prop and all(u in policies.by_urn for u in per_prop):
            return
        if r.type == ROLE:
            return  # computed at deploy time
        yield (f"{r.label} attaches a managed policy the pack cannot see ({prop} is computed). Fix: attach only "
               f"policies declared in this stack, {_exception_hint(r)}.", r.urn)
        return
    for arn in _policy_arns(r):
        if not isinstance(arn, str) or arn in ("",):
            continue
        if policies.lookup(arn) or lay.managed_policy_allowed(arn):
            continue
        what = "an AWS managed policy" if ":iam::aws:policy/" in arn else "a policy from outside this stack"
        yield (f"{r.label} attaches {what} ({arn}) whose content the pack cannot evaluate. Fix: grant through the "
               f"builders (agentfleet.core.plan), or list the ARN in the policy config `exceptions` "
               f"({{\"managedPolicyArn\": \"{arn}\", \"reason\": \"...\"}}).", r.urn)


closed_world = stack_policy(
    "closed-world",
    "Nothing the pack cannot evaluate references the fleet's roles, secrets, key or Vault policies: no outside or AWS managed policies, IAM users/keys, Vault generic writes or unevaluated resource types.",
    check_closed_world,
    remediation="Declare access in agents.yaml; a reviewed exception goes into the policy config `exceptions`.",
)


# ---- one resource policy and one rotation per secret ----


def _targets(r: Resource, prop: str, secrets: Refs) -> list[Resource] | None:
    """The managed secrets `r` points at; None when not knowable yet (preview)."""
    found = secrets.resolve(r, prop)
    if found:
        return found
    value = get(r.props, prop)
    if value is UNKNOWN or value is None:
        return None if value is UNKNOWN and not r.dependencies else []
    return []


def check_one_each(resources: list[Resource], lay: Layout) -> Iterable[tuple[str, str | None]]:
    secrets = Refs(of_type(resources, SECRET))
    kinds = ((SECRET_POLICY, "secretArn", "resource policy", "resource policies"), (SECRET_ROTATION, "secretId", "rotation", "rotations"))
    for type_, prop, what, whats in kinds:
        per_secret: dict[str, list[Resource]] = {}
        if type_ == SECRET_POLICY:
            for sec in secrets.items:
                if get(sec.props, "policy") not in (None, ""):
                    per_secret.setdefault(sec.urn, []).append(sec)
        for r in of_type(resources, type_):
            targets = _targets(r, prop, secrets)
            if targets is None:
                continue
            if not targets:
                if lay.excepted(r.name, r.urn):
                    continue
                yield (f"{r.label} sets a {what} on {get(r.props, prop)!r}, which is no secret of this stack the pack "
                       f"can identify. Fix: attach {whats} only to the stack's secrets (the components do), "
                       f"{_exception_hint(r)}.", r.urn)
                continue
            for t in targets:
                per_secret.setdefault(t.urn, []).append(r)
        for urn, items in per_secret.items():
            if len(items) > 1:
                sec = secrets.by_urn[urn]
                yield (f"{sec.label} has {len(items)} {whats} ({', '.join(sorted(i.label for i in items))}); AWS keeps only one "
                       f"(the last applied), so the reviewed one can be silently replaced. Fix: keep only the "
                       f"components' {what}.", urn)


one_policy_and_rotation_per_secret = stack_policy(
    "one-policy-and-rotation-per-secret",
    "Each managed secret has at most one resource policy and one rotation, however it is referenced (name, ARN, partial ARN, Output).",
    check_one_each,
    remediation="Only the components attach resource policies and rotations to the fleet's secrets.",
)

POLICIES = (closed_world, one_policy_and_rotation_per_secret)
