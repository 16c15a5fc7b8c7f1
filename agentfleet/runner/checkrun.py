"""The offline policy runner: the pack's own policy objects applied to a mock run of the program.

`pulumi preview --policy-pack policy` needs the Pulumi CLI; CI and reviewers often have only
Python. This module takes what `mockrun.run_program` recorded (every resource with its
camelCase inputs, options, parent, dependencies and provider) and hands each one to the very
`ResourceValidationPolicy` / `StackValidationPolicy` objects of `agentfleet.policy.registry`, through the
same `ResourceValidationArgs` / `StackValidationArgs` the engine builds, with the same
per-policy config and enforcement levels. Nothing is re-implemented, so a rule that passes here
passes in the engine and vice versa.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from agentfleet.core import naming
from agentfleet.runner.mockrun import ProgramRun, RegisteredResource
from agentfleet.policy.registry import ALL_POLICIES

PACK_DEFAULT_LEVEL = EnforcementLevel.ADVISORY
"""What the pack's `__main__.py` passes to `PolicyPack` for policies without their own level."""
AGENT_COMPONENT = "agentfleet:index:AgentAccess"
SHARED_GROUP = "(environment: shared resources)"
STACK_GROUP = "(stack: not attributable to an agent)"


@dataclass(frozen=True)
class Violation:
    policy: str
    level: str
    """`mandatory` or `advisory` (the effective enforcement level)."""
    message: str
    agent: str
    """Agent the resource belongs to (its tag or its AgentAccess component), or a group label."""
    resource: str | None
    """`type "name"` of the resource, or None for a stack-wide violation."""
    urn: str | None


@dataclass
class CheckResult:
    stack: str
    violations: list[Violation] = field(default_factory=list)
    resources: int = 0
    policies: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """`policy: reason` for validations that could not run (unknown values, not applicable)."""

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == EnforcementLevel.MANDATORY.value]

    @property
    def exit_code(self) -> int:
        return 1 if self.mandatory else 0

    def by_agent(self) -> dict[str, list[Violation]]:
        groups: dict[str, list[Violation]] = {}
        for v in sorted(self.violations, key=lambda v: (v.agent.startswith("("), v.agent, v.policy, v.resource or "", v.message)):
            groups.setdefault(v.agent, []).append(v)
        return groups


# ---- enforcement levels and config, in the engine's policy-config format ----


def parse_level(value: Any) -> EnforcementLevel:
    try:
        return EnforcementLevel(str(value))
    except ValueError:
        levels = ", ".join(e.value for e in EnforcementLevel)
        raise ValueError(f"unknown enforcement level {value!r} (one of {levels})") from None


def split_config(pack_config: Mapping[str, Any]) -> tuple[dict[str, EnforcementLevel], dict[str, dict[str, Any]]]:
    """`--policy-pack-config` JSON -> (levels, per-policy properties); `all` sets every level."""
    known = {p.name for p in ALL_POLICIES}
    levels: dict[str, EnforcementLevel] = {}
    props: dict[str, dict[str, Any]] = {}
    for name, value in pack_config.items():
        if name != "all" and name not in known:
            raise ValueError(f"policy config names unknown policy {name!r} (known: {', '.join(sorted(known))})")
        targets = sorted(known) if name == "all" else [name]
        if isinstance(value, str):
            for t in targets:
                levels[t] = parse_level(value)
        elif isinstance(value, dict):
            for t in targets:
                if "enforcementLevel" in value:
                    levels[t] = parse_level(value["enforcementLevel"])
                props.setdefault(t, {}).update({k: v for k, v in value.items() if k != "enforcementLevel"})
        else:
            raise ValueError(f"policy config for {name!r} must be a level or an object")
    return levels, props


def effective_level(policy: Policy, levels: Mapping[str, EnforcementLevel]) -> EnforcementLevel:
    """Config first, then the policy's own level, then the pack default: the engine's order."""
    return levels.get(policy.name) or policy.enforcement_level or PACK_DEFAULT_LEVEL


# ---- the engine's view of the recorded resources ----


def _options(r: RegisteredResource) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=r.protect, ignore_changes=list(r.ignore_changes), delete_before_replace=r.delete_before_replace or None,
        aliases=list(r.aliases), custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=list(r.additional_secret_outputs), parent=r.parent,
    )


def _providers(run: ProgramRun) -> dict[str, PolicyProviderResource]:
    out = {}
    for r in run.resources:
        if r.type.startswith("pulumi:providers:"):
            out[r.urn] = PolicyProviderResource(r.type, unknown_checking_proxy(dict(r.props)), r.urn, r.name)
    return out


def stack_resources(run: ProgramRun) -> list[PolicyResource]:
    """Every recorded resource as a `PolicyResource`, parents and dependencies linked by URN.

    Props are the recorded state (inputs plus the IDs/ARNs the mocks invented, and `id`), as the
    engine passes resource state to stack policies; per-property dependencies are not recorded
    by the mock monitor, so policies fall back to resource dependencies.
    """
    providers = _providers(run)
    out: dict[str, PolicyResource] = {}
    for r in run.resources:
        state = {**r.props, **r.outputs}
        if r.custom and r.id:
            state.setdefault("id", r.id)
        out[r.urn] = PolicyResource(
            r.type, unknown_checking_proxy(state), r.urn, r.name, _options(r),
            providers.get(r.provider_urn or ""), None, [], {},
        )
    for r in run.resources:
        pr = out[r.urn]
        pr.parent = out.get(r.parent or "")
        pr.dependencies = [out[d] for d in r.dependencies if d in out]
    return list(out.values())


# ---- grouping by agent ----


def _own_group(r: RegisteredResource, index: Mapping[str, RegisteredResource]) -> str | None:
    """The `agent` tag of the resource or an ancestor, else its AgentAccess component's name."""
    cur: RegisteredResource | None = r
    while cur is not None:
        tags = cur.props.get("tags")
        tag = tags.get(naming.TAG_AGENT) if isinstance(tags, dict) else None
        if isinstance(tag, str):
            return SHARED_GROUP if tag == naming.SHARED_AGENT_TAG else tag
        if cur.type == AGENT_COMPONENT:
            return cur.name
        cur = index.get(cur.parent or "")
    return None


def _agent_groups(run: ProgramRun) -> dict[str, str]:
    """URN -> agent. Untagged resources outside the components (a raw resource added to the
    program) belong to the one agent whose resources they depend on or name (a role name, a
    secret ARN), when there is exactly one; else to the stack group."""
    index = run.by_urn()
    own = {r.urn: _own_group(r, index) for r in run.resources}
    by_id: dict[str, str] = {}
    for r in run.resources:
        group = own[r.urn]
        if group is None:
            continue
        for key in ("name", "arn", "id"):
            value = r.outputs.get(key) if key != "id" else r.id
            if isinstance(value, str) and value:
                by_id.setdefault(value, group)
    groups: dict[str, str] = {}
    for r in run.resources:
        group = own[r.urn]
        if group is None:
            linked = {own[d] for d in r.dependencies if own.get(d)}
            linked |= {by_id[v] for v in r.props.values() if isinstance(v, str) and v in by_id}
            agents = {g for g in linked if g is not None and not g.startswith("(")}
            group = agents.pop() if len(agents) == 1 else STACK_GROUP
        groups[r.urn] = group
    return groups


# ---- running the policies ----


def _await(result: Any) -> None:
    if result is not None and inspect.isawaitable(result):
        async def wait() -> None:
            await result

        asyncio.run(wait())


def check_program(
    run: ProgramRun,
    layout_config: Mapping[str, Any],
    pack_config: Mapping[str, Any] | None = None,
    policies: Iterable[Policy] = ALL_POLICIES,
) -> CheckResult:
    """Apply every policy to the run. `layout_config` is the stack's `agentfleet.policy.layout.policy_config`;
    `pack_config` an engine-format policy config file (levels and per-policy properties)."""
    levels, extra = split_config(pack_config or {})
    groups = _agent_groups(run)
    index = run.by_urn()
    providers = _providers(run)
    stack = stack_resources(run)
    result = CheckResult(stack=run.stack, resources=len(run.resources))
    # One props proxy and options object per resource for every resource policy, as the engine
    # sends one analyze request per resource (and so the policies' plain views can be shared).
    shared = [(r, unknown_checking_proxy(dict(r.props)), _options(r), providers.get(r.provider_urn or "")) for r in run.resources]

    for policy in policies:
        level = effective_level(policy, levels)
        if level == EnforcementLevel.DISABLED:
            continue
        if level == EnforcementLevel.REMEDIATE:
            level = EnforcementLevel.MANDATORY  # the engine reports remaining violations as mandatory
        result.policies.append(policy.name)
        config = {**layout_config, **extra.get(policy.name, {})}

        def reporter(default_urn: str | None) -> Callable[[str, str | None], None]:
            def report(message: str, urn: str | None = None) -> None:
                target = urn or default_urn
                res = index.get(target or "")
                result.violations.append(Violation(
                    policy=policy.name, level=level.value, message=message,
                    agent=groups.get(target or "", STACK_GROUP),
                    resource=f'{res.type} "{res.name}"' if res else None, urn=target,
                ))
            return report

        if isinstance(policy, StackValidationPolicy):
            _run_one(result, policy, lambda: policy.validate(StackValidationArgs(stack, config), reporter(None)))
        elif isinstance(policy, ResourceValidationPolicy):
            for r, props, opts, provider in shared:
                args = ResourceValidationArgs(r.type, props, r.urn, r.name, opts, provider, config)
                _run_one(result, policy, lambda: policy.validate(args, reporter(r.urn)))
    return result


def _run_one(result: CheckResult, policy: Policy, call: Callable[[], Any]) -> None:
    """One validation, with the engine's handling of unknowns and not-applicable."""
    try:
        _await(call())
    except UnknownValueError as exc:
        result.skipped.append(f"{policy.name}: {exc.message}")
    except Exception as exc:  # noqa: BLE001 - pulumi_policy's _NotApplicableError is private
        if type(exc).__name__ == "_NotApplicableError":
            result.skipped.append(f"{policy.name}: not applicable ({getattr(exc, 'reason', '')})")
        else:
            raise


# ---- output ----


def render_text(result: CheckResult) -> str:
    lines = [f"Policy check of stack `{result.stack}`: {len(result.policies)} policies on {result.resources} resources "
             f"(the program ran under Pulumi's mock runtime)."]
    if not result.violations:
        lines.append("No violations.")
    for agent, items in result.by_agent().items():
        lines.append("")
        lines.append(f"{agent}:")
        for v in items:
            lines.append(f"  [{v.level}] {v.policy}: {v.message}")
    mandatory, advisory = len(result.mandatory), len(result.violations) - len(result.mandatory)
    lines.append("")
    lines.append(f"{mandatory} mandatory, {advisory} advisory violation(s): "
                 f"{'FAILED (a mandatory policy is violated)' if mandatory else 'passed'}.")
    return "\n".join(lines) + "\n"


def render_json(result: CheckResult) -> str:
    doc = {
        "stack": result.stack,
        "passed": result.exit_code == 0,
        "resources": result.resources,
        "policies": result.policies,
        "mandatory": len(result.mandatory),
        "advisory": len(result.violations) - len(result.mandatory),
        "agents": {agent: [asdict(v) for v in items] for agent, items in result.by_agent().items()},
        "skipped": result.skipped,
    }
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def engine_policy_config(layout_config: Mapping[str, Any]) -> dict[str, Any]:
    """The `--policy-pack-config` file giving the engine what `check` gives the policies:
    every policy's default level and the stack's layout (edit levels there to tune them)."""
    return {
        p.name: {"enforcementLevel": (p.enforcement_level or PACK_DEFAULT_LEVEL).value, **layout_config}
        for p in ALL_POLICIES
    }


def load_pack_config(path: str | Path) -> dict[str, Any]:
    """An engine-format policy config file (`pulumi preview --policy-pack-config FILE`)."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise ValueError("policy config must be a JSON object of policy name -> level or object")
    return doc
