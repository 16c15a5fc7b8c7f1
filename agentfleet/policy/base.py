"""The small frame every policy of the pack shares.

A policy's rule is a plain function over plain values (`Resource` views with `plain()` props and
the stack's `Layout`) that yields messages; `resource_policy` / `stack_policy` wrap it into a
pulumi-policy object. So rules never see proxies or unknown sentinels, and one `validate`
convention serves both the Pulumi engine and the offline `check` runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from agentfleet.core.policy_config import POLICY_CONFIG_PROP
from agentfleet.policy.layout import LAYOUT_SCHEMA, Layout, layout, program_layout, provider_account
from agentfleet.policy.values import UNKNOWN, Unknown, document, get, plain, string_map

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY


@dataclass(frozen=True)
class Resource:
    """A resource as a rule sees it: plain props, no proxies."""

    type: str
    name: str
    urn: str
    props: dict[str, Any]
    provider_props: dict[str, Any] | None = None
    parent: str | None = None
    dependencies: tuple[str, ...] = ()
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How messages name the resource: type token and logical name."""
        return f'{self.type} "{self.name}"'

    def tags(self) -> dict[str, Any] | None | Unknown:
        """Own tags merged over the AWS provider's default tags; None if absent, UNKNOWN if unknown."""
        own = get(self.props, "tags")
        if own is UNKNOWN:
            return Unknown()
        defaults = _provider_default_tags(self.provider_props)
        own_map = string_map(own)
        if own_map is None and defaults is None:
            return None
        return {**(defaults or {}), **(own_map or {})}

    def tag(self, key: str) -> Any:
        """A tag's value: a string, None when absent, UNKNOWN when not known yet."""
        tags = self.tags()
        if tags is UNKNOWN:
            return UNKNOWN
        return tags.get(key) if isinstance(tags, dict) else None


def _provider_default_tags(provider_props: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """pulumi-aws `defaultTags: {tags: {...}}` (providers may carry it JSON-encoded)."""
    if not provider_props:
        return None
    raw = provider_props.get("defaultTags")
    parsed = document(raw) if isinstance(raw, str) else raw
    if not isinstance(parsed, dict):
        return None
    return string_map(parsed.get("tags"))


_PLAIN_CACHE: dict[int, tuple[object, Any]] = {}
_PLAIN_CACHE_MAX = 8192


def _plain_once(value: object) -> Any:
    """`plain(value)`, computed once per props object (every policy of the pack sees the same
    request); keyed by identity with the object kept alive, so an id is never reused meanwhile.
    Rules never mutate views."""
    hit = _PLAIN_CACHE.get(id(value))
    if hit is not None and hit[0] is value:
        return hit[1]
    if len(_PLAIN_CACHE) >= _PLAIN_CACHE_MAX:
        _PLAIN_CACHE.clear()
    out = plain(value)
    _PLAIN_CACHE[id(value)] = (value, out)
    return out


def resource_view(args: ResourceValidationArgs) -> Resource:
    provider = getattr(args, "provider", None)
    return Resource(
        type=args.resource_type, name=args.name, urn=args.urn, props=_plain_once(args.props),
        provider_props=plain(provider.props) if provider is not None else None,
        parent=getattr(args.opts, "parent", None) if args.opts is not None else None,
    )


_VIEWS_CACHE: list[tuple[tuple[object, ...], list[Resource]]] = []


def stack_views(args: StackValidationArgs) -> list[Resource]:
    """Plain views of the stack's resources, computed once for the same resources (each stack
    policy gets the same ones from the offline runner); the key holds the resource objects
    themselves, so a changed list is never served stale views."""
    key = tuple(args.resources)
    for known, views in _VIEWS_CACHE:
        if len(known) == len(key) and all(a is b for a, b in zip(known, key)):
            return views
    views = _stack_views(args)
    _VIEWS_CACHE[:] = [(key, views)]
    return views


def _stack_views(args: StackValidationArgs) -> list[Resource]:
    views = []
    for r in args.resources:
        prov = r.provider
        views.append(Resource(
            type=r.resource_type, name=r.name, urn=r.urn, props=plain(r.props),
            provider_props=plain(prov.props) if prov is not None else None,
            parent=r.parent.urn if r.parent is not None else None,
            dependencies=tuple(d.urn for d in r.dependencies),
            property_dependencies={k: tuple(d.urn for d in v) for k, v in (r.property_dependencies or {}).items()},
        ))
    return views


ResourceRule = Callable[[Resource, Layout], Iterable[str]]
StackRule = Callable[[list[Resource], Layout], Iterable[tuple[str, str | None]]]


def resource_policy(
    name: str, description: str, types: Iterable[str] | None, rule: ResourceRule, *,
    level: EnforcementLevel = MANDATORY, severity: Severity = Severity.HIGH, remediation: str,
    schema: PolicyConfigSchema = LAYOUT_SCHEMA,
) -> ResourceValidationPolicy:
    """A resource policy running `rule` on resources of `types` (None: every resource)."""
    wanted = frozenset(types) if types is not None else None

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if wanted is not None and args.resource_type not in wanted:
            return
        view = resource_view(args)
        lay = layout(args.get_config()).with_provider(view.provider_props)
        for message in rule(view, lay):
            report(message, None)

    return ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=level,
        config_schema=schema, severity=severity, remediation_steps=remediation,
    )


def stack_policy(
    name: str, description: str, rule: StackRule, *,
    level: EnforcementLevel = MANDATORY, severity: Severity = Severity.HIGH, remediation: str,
) -> StackValidationPolicy:
    """A stack policy running `rule` once over every resource of the stack."""

    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        views = stack_views(args)
        lay = stack_layout(layout(args.get_config()), views)
        if lay.problem:
            report(f"policy config: {lay.problem}; fix the policy config (see docs/policy.md)", None)
        for message, urn in rule(views, lay):
            report(message, urn)

    return StackValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=level,
        config_schema=LAYOUT_SCHEMA, severity=severity, remediation_steps=remediation,
    )


FLEET_COMPONENT = "agentfleet:index:AgentFleet"


def stack_layout(lay: Layout, views: list[Resource]) -> Layout:
    """The policy config's layout, completed from the program when the config names no settings:
    the fleet components' `policyConfig` (agentfleet.policy.layout.program_layout), and the account
    the stack's AWS providers are pinned to (when they all name the same one)."""
    lay = program_layout(lay, [get(r.props, POLICY_CONFIG_PROP) for r in views if r.type == FLEET_COMPONENT])
    if lay.own_account() is None:
        providers = [r.props for r in views if r.type == "pulumi:providers:aws"]
        accounts = {provider_account(p) for p in providers}
        if len(accounts) == 1 and None not in accounts:
            lay = lay.with_provider(providers[0])
    return lay


def by_urn(resources: Iterable[Resource]) -> dict[str, Resource]:
    return {r.urn: r for r in resources}
