"""`agentfleet preview [--stack STACK]`: what `pulumi up` would declare, offline.

It runs the Pulumi program itself (`__main__.py`, not a re-implementation) under Pulumi's mock
runtime and prints the resource tree (type, name, parent) with the options that matter for
safety, then counts per agent. `--format json` lists every resource with its inputs (each
secret input masked as "[secret]") for reviewers and scripts. External credential values are
written afterwards by `agentfleet put-values` (values never come from code).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import TYPE_CHECKING, Any, TextIO

from agentfleet.cli.main import EXIT_INVALID, EXIT_OK
from agentfleet.cli.cmd_program import add_program_args, program_inputs
from agentfleet.core.plan import NameCollision, build_plan
from agentfleet.operate.values import value_targets
from agentfleet.core.settings import PROJECT

if TYPE_CHECKING:  # the runner (Pulumi) loads only when a program runs
    from agentfleet.runner import mockrun

# Display order of resource types inside one component (then by name).
_TYPE_ORDER = (
    "pulumi:providers:",
    "agentfleet:index:EnvironmentBase",
    "aws:kms/key:Key",
    "aws:kms/alias:Alias",
    "vault:index/mount:Mount",
    "vault:index/authBackend:AuthBackend",
    "aws:iam/role:Role",
    "aws:iam/rolePolicy:RolePolicy",
    "random:index/randomPassword:RandomPassword",
    "aws:secretsmanager/secret:Secret",
    "aws:secretsmanager/secretPolicy:SecretPolicy",
    "aws:secretsmanager/secretVersion:SecretVersion",
    "aws:ssm/parameter:Parameter",
    "vault:kv/secretV2:SecretV2",
    "vault:index/policy:Policy",
    "vault:aws/authBackendRole:AuthBackendRole",
)

# What each type is, in a newcomer's words (shown once, in the legend under the tree).
_WHAT = {
    "aws:iam/role:Role": "the agent's own IAM identity",
    "aws:iam/rolePolicy:RolePolicy": "what the role may do: read its own secrets, nothing else",
    "aws:secretsmanager/secret:Secret": "a credential's container in Secrets Manager (no value from code)",
    "aws:secretsmanager/secretPolicy:SecretPolicy": "denies reading the secret to everyone but its agent (+ rotation, break-glass)",
    "aws:secretsmanager/secretVersion:SecretVersion": "first value of a generated credential; later changes are ignored",
    "random:index/randomPassword:RandomPassword": "the generated first value (a Pulumi secret)",
    "aws:ssm/parameter:Parameter": "a credential's SecureString in Parameter Store (value written by a human, never from code)",
    "vault:kv/secretV2:SecretV2": "first value of a generated credential in Vault; later changes are ignored",
    "vault:index/policy:Policy": "Vault policy: read its own KV folder only",
    "vault:aws/authBackendRole:AuthBackendRole": "Vault login with the agent's IAM role (short-lived tokens)",
    "aws:kms/key:Key": "customer-managed key encrypting every secret of the environment",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": "the OIDC issuer (GitHub, an EKS cluster) agents' trusts name",
    "aws:iam/outboundWebIdentityFederation:OutboundWebIdentityFederation": "lets roles mint identity tokens (keyless APIs, JWT logins)",
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": "binds the agent's Kubernetes service account to its role",
    "vault:jwt/authBackend:AuthBackend": "Vault JWT login for one token issuer",
    "vault:jwt/authBackendRole:AuthBackendRole": "Vault login bound to exactly the agent's identity token (no default policy)",
    "vault:kubernetes/authBackendConfig:AuthBackendConfig": "where Vault reviews the cluster's service-account tokens",
    "vault:kubernetes/authBackendRole:AuthBackendRole": "Vault login of the agent's service account only (no default policy)",
}


def _type_rank(t: str) -> int:
    for i, prefix in enumerate(_TYPE_ORDER):
        if t.startswith(prefix):
            return i
    return len(_TYPE_ORDER)


def _sort_key(r: mockrun.RegisteredResource) -> tuple[int, str, int, str]:
    """Agent-level resources first, then one group per credential, each in _TYPE_ORDER."""
    depth = r.name.count("/")
    group = r.name.rsplit("/", 1)[0] if depth else ""
    return depth, group, _type_rank(r.type), r.name


def _flags(r: mockrun.RegisteredResource, provider_names: dict[str, str]) -> str:
    flags = []
    if r.protect:
        flags.append("protected")
    if r.ignore_changes:
        flags.append("ignores " + ",".join(r.ignore_changes))
    if "recoveryWindowInDays" in r.props:
        flags.append(f"recovery {int(r.props['recoveryWindowInDays'])}d")
    if r.secret_props:
        flags.append("secret input " + ",".join(r.secret_props))
    if r.custom and not r.type.startswith("pulumi:") and r.provider_urn not in provider_names:
        flags.append("DEFAULT PROVIDER: not the stack's explicit one")
    return f"  [{'; '.join(flags)}]" if flags else ""


def resource_tree(run: mockrun.ProgramRun) -> str:
    """The resource tree as text: one line per resource, children indented under their parent."""
    provider_names = {r.urn: r.name for r in run.resources if r.type.startswith("pulumi:providers:")}
    kids: dict[str, list[mockrun.RegisteredResource]] = {}
    for r in run.resources:
        kids.setdefault(r.parent or run.stack_urn, []).append(r)
    rows: list[tuple[str, str]] = [("pulumi:pulumi:Stack", f"{PROJECT}-{run.stack}")]

    def walk(urn: str, prefix: str) -> None:
        children = sorted(kids.get(urn, []), key=_sort_key)
        for i, r in enumerate(children):
            last = i == len(children) - 1
            rows.append((f"{prefix}{'└─ ' if last else '├─ '}{r.type}", f"{r.name}{_flags(r, provider_names)}"))
            walk(r.urn, prefix + ("   " if last else "│  "))

    walk(run.stack_urn, "")
    width = max(len(left) for left, _ in rows) + 2
    return "".join(f"{left:<{width}}{right}\n" for left, right in rows)


SECRET_MASK = "[secret]"
"""Stands for every secret input in `preview --format json` (the value never leaves the process)."""


def masked_inputs(r: mockrun.RegisteredResource) -> dict[str, Any]:
    """The resource's inputs as the engine receives them, with each secret input replaced by SECRET_MASK."""
    secret = set(r.secret_props)
    return {k: (SECRET_MASK if k in secret else v) for k, v in sorted(r.props.items())}


def agent_counts(run: mockrun.ProgramRun) -> list[dict[str, Any]]:
    """Per AgentAccess component: its own resources by kind, and what extensions added below it."""
    rows = []
    for comp in sorted(run.of_type("agentfleet:index:AgentAccess"), key=lambda r: r.name):
        own = [r for r in run.children(comp.urn) if r.custom]
        kinds = Counter(r.type for r in own)
        below = run.descendants(comp.urn)
        rows.append({
            "agent": comp.name,
            "aws_secrets": kinds["aws:secretsmanager/secret:Secret"],
            "generated_values": kinds["random:index/randomPassword:RandomPassword"],
            "vault_values": kinds["vault:kv/secretV2:SecretV2"],
            "iam": kinds["aws:iam/role:Role"] + kinds["aws:iam/rolePolicy:RolePolicy"],
            "vault": kinds["vault:index/policy:Policy"] + kinds["vault:aws/authBackendRole:AuthBackendRole"],
            "extensions": len(below) - len(own),
            "resources": len(below),
        })
    return rows


def counts_table(run: mockrun.ProgramRun) -> str:
    rows = agent_counts(run)
    head = ("agent", "resources", "iam", "aws_secrets", "generated_values", "vault_values", "vault", "extensions")
    labels = ("agent", "resources", "IAM role+policy", "AWS secrets", "generated values", "Vault values",
              "Vault policy+login", "rotation/monitoring")
    widths = [max(len(lbl), *(len(str(r[h])) for r in rows)) if rows else len(lbl) for h, lbl in zip(head, labels)]
    out = ["  ".join(lbl.ljust(w) for lbl, w in zip(labels, widths))]
    for r in rows:
        out.append("  ".join(str(r[h]).ljust(w) for h, w in zip(head, widths)).rstrip())
    custom = [r for r in run.resources if r.custom]
    out.append("")
    out.append(
        f"{len(rows)} agents; {len(run.resources)} resources in total "
        f"({len(custom)} cloud/Vault resources incl. providers, {len(run.resources) - len(custom)} components)"
    )
    return "\n".join(out) + "\n"


def _legend(run: mockrun.ProgramRun) -> str:
    present = {r.type for r in run.resources}
    lines = ["What the types are:"]
    for t, what in _WHAT.items():
        if t in present:
            lines.append(f"  {t:<48} {what}")
    lines.append("  [protected]: `pulumi destroy` refuses to delete it; [ignores ...]: later value changes (rotations) are kept")
    lines.append("  Every resource uses the stack's explicit providers (aws, vault, random) unless marked DEFAULT PROVIDER.")
    return "\n".join(lines) + "\n"


def _write_json(doc: Any, out: TextIO, chunk: int = 65536) -> None:
    """`json.dumps(doc, indent=2, sort_keys=True, default=str)` and a newline, written as it is
    encoded: the preview of 1,000 agents is 39 MB of JSON in millions of pieces, and joining them
    (then adding the newline) held two more copies of it at the process's peak."""
    parts: list[str] = []
    for piece in json.JSONEncoder(indent=2, sort_keys=True, default=str).iterencode(doc, _one_shot=True):
        parts.append(piece)
        if len(parts) >= chunk:
            out.write("".join(parts))
            parts.clear()
    parts.append("\n")
    out.write("".join(parts))


def _preview(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    # Same errors and exit codes as `validate`/`plan` before anything runs.
    inputs = program_inputs(args, err)
    fleet, settings, fleet_path = inputs.fleet, inputs.settings, inputs.fleet_path
    plan: dict[str, Any] | None = None
    if fleet is not None:
        try:
            plan = build_plan(fleet, settings)
        except NameCollision as exc:  # program_inputs checked the names already; kept as a guard
            for line, message in exc.problems:
                print(f"{fleet_path}:{line}: {message}", file=err)
            return EXIT_INVALID

    if fleet is not None:  # preview shows what would be declared; validate --stack / plan are the quota gates
        from agentfleet.core.quotas import problems

        for p in problems(fleet, settings):
            print(f"warning: {fleet_path}: {p}", file=err)
    run = inputs.run_or_exit("preview", err)

    if args.format == "json":
        doc = {
            "stack": args.stack,
            "resources": [
                {"type": r.type, "name": r.name, "urn": r.urn, "parent": r.parent, "custom": r.custom,
                 "provider": r.provider_urn, "protect": r.protect, "ignore_changes": list(r.ignore_changes),
                 "inputs": masked_inputs(r), "secret_inputs": list(r.secret_props)}
                for r in run.resources
            ],
            "agents": agent_counts(run),
            "outputs": run.outputs,
        }
        _write_json(doc, out)
        return EXIT_OK

    out.write(
        f"Offline preview of stack `{args.stack}` (environment {settings.environment}, {settings.aws_region}, "
        f"account {settings.aws_account_id}).\nThe Pulumi program ran under Pulumi's mock runtime: "
        f"this is what `pulumi up -s {args.stack}` would declare. Nothing was deployed.\n\n"
    )
    out.write(resource_tree(run))
    out.write("\n")
    out.write(_legend(run))
    out.write("\n")
    out.write(counts_table(run))
    external = len(value_targets(plan)) if plan is not None else 0
    if external:
        out.write(
            f"\n{external} credential value(s) are written by a human after `pulumi up` (never from code): "
            f"agentfleet put-values {fleet_path} --stack {args.stack}\n"
        )
    if run.invokes:
        out.write(f"\nwarning: the program called {len(run.invokes)} provider function(s): {sorted(set(run.invokes))}\n")
    return EXIT_OK


def _deployer_policy(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from agentfleet.core.deployer import DeployerPolicyError, deployer_policy

    inputs = program_inputs(args, err)
    run = inputs.run_or_exit("deployer-policy", err)
    try:
        doc = deployer_policy(inputs.settings, (r.type for r in run.resources))
    except DeployerPolicyError as exc:
        print(str(exc), file=err)
        return EXIT_INVALID
    out.write(json.dumps(doc, indent=2) + "\n")
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser(
        "deployer-policy",
        help="print the least-privilege IAM policy for whoever runs `pulumi up` on the stack (from the program's resources)",
    )
    add_program_args(p)
    p.set_defaults(func=_deployer_policy)

    p = sub.add_parser(
        "preview",
        help="run the Pulumi program offline (mock runtime) and print every resource it declares",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_program_args(p)
    p.add_argument("--format", choices=("tree", "json"), default="tree")
    p.set_defaults(func=_preview)

