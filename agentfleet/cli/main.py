"""The offline CLI. Exit codes: 0 ok, 1 invalid input or a finding, 2 usage error.

Every verb reads the fleet through `load_fleet`, so an invalid file gives the same
`FILE:LINE: message` lines and exit 1 everywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

from agentfleet.core import reuse
from agentfleet.core.loader import FleetError, load_fleet
from agentfleet.core.model import Fleet
from agentfleet.core.plan import NameCollision, build_plan, check_unique_names, plan_json
from agentfleet.core.project import find_project_dir, stack_file
from agentfleet.core.settings import SettingsError, StackSettings, load_stack_settings

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
STACK_HELP = "reads Pulumi.<STACK>.yaml of the project (default: dev)"

# Modules that add verbs: each defines `register(subparsers)` and sets `func` on its parser.
COMMAND_MODULES: tuple[str, ...] = ("agentfleet.cli.cmd_review", "agentfleet.cli.cmd_preview", "agentfleet.cli.cmd_check", "agentfleet.cli.cmd_rotation",
                                   "agentfleet.cli.cmd_values", "agentfleet.cli.cmd_rehearse")


SHORT_VERB_MODULES: dict[str, tuple[str, ...]] = {
    "validate": (), "plan": (), "audit": ("agentfleet.cli.cmd_review",), "diff": ("agentfleet.cli.cmd_review",),
}
"""The command modules a short verb's parser needs (validate and plan are defined here): parsing
`agentfleet diff ...` need not import the program verbs' modules (~0.02 s)."""


class CliExit(Exception):
    def __init__(self, code: int):
        self.code = code


def read_fleet(path: str, err: TextIO, settings: StackSettings | None = None, *, names_only: bool = False) -> Fleet:
    """Load or exit: 1 with every problem for an invalid file, 2 when it cannot be read.

    With `settings`, the stack's fleet: its environment's overrides applied and the stack's
    rules checked (unique derived names, principals only in trusted accounts)."""
    try:
        return load_fleet(path, settings, names_only=names_only)
    except FleetError as exc:
        for p in exc.problems:
            print(p, file=err)
        print(f"{path}: {len(exc.problems)} problem(s); nothing was planned", file=err)
        raise CliExit(EXIT_INVALID) from None
    except OSError as exc:
        print(f"{path}: cannot read fleet file: {exc.strerror}", file=err)
        raise CliExit(EXIT_USAGE) from None


def add_project_arg(p: argparse.ArgumentParser) -> None:
    """`--project DIR`: the Pulumi project whose `Pulumi.<STACK>.yaml` every verb reads."""
    p.add_argument(
        "--project", "--root", dest="project", metavar="DIR",
        help="the Pulumi project (default: the nearest folder with a Pulumi.yaml, from here up)",
    )


def project_dir(args: argparse.Namespace) -> Path:
    """The one rule for where stack settings come from, shared by every verb."""
    given = getattr(args, "project", None)
    return Path(given).resolve() if given else find_project_dir()


def read_settings(project: Path, stack: str, err: TextIO) -> StackSettings:
    try:
        return load_stack_settings(stack_file(project, stack), stack)
    except SettingsError as exc:
        for p in exc.problems:
            print(p, file=err)
        raise CliExit(EXIT_INVALID) from None


def read_plan(fleet_path: str, project: Path, stack: str, err: TextIO) -> dict[str, Any]:
    settings = read_settings(project, stack, err)
    fleet = read_fleet(fleet_path, err, settings)
    try:
        return build_plan(fleet, settings)
    except NameCollision as exc:  # read_fleet checked the names already; kept as a guard
        for line, message in exc.problems:
            print(f"{fleet_path}:{line}: {message}", file=err)
        raise CliExit(EXIT_INVALID) from None


def quota_problems(fleet: Fleet, settings: StackSettings, fleet_path: str, err: TextIO, project: Path | None = None) -> bool:
    """Print one line per AWS quota the stack would exceed (agentfleet.core.quotas), and per agent
    in no shard or in several (agentfleet.core.sharding, over the project's stacks); True if any."""
    from agentfleet.core.quotas import problems
    from agentfleet.core.sharding import check_shards, environment_stacks

    if project is not None:
        shard_problems = check_shards(fleet, environment_stacks(project, settings))
        for p in shard_problems:
            print(f"{fleet_path}:0: stack {settings.stack}: {p}", file=err)
        if shard_problems:
            return True
    found = problems(fleet, settings)
    for p in found:
        print(f"{fleet_path}:0: stack {settings.stack}: {p}", file=err)
    if found:
        print(f"{fleet_path}: {len(found)} quota problem(s) on stack {settings.stack}: a `pulumi up` would fail"
              " partway (docs/quotas.md)", file=err)
    return bool(found)


PLACEHOLDER_STACK = {"aws:region": "us-east-1", "agentfleet:awsAccountId": "000000000000"}
"""Settings `validate` checks derived names with when no `--stack` is given: every name is
`<prefix>-<env>-...` on both sides of a clash, so the clashes do not depend on the values."""


def _validate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """The file (every environment's overrides too) and the uniqueness of every derived name;
    with `--stack`, the fleet of that stack and all of its rules (trusted accounts too)."""
    fleet = read_fleet(args.file, err)
    settings: StackSettings | None = None
    if args.stack:
        settings = read_settings(project_dir(args), args.stack, err)
        fleet = read_fleet(args.file, err, settings)
    else:
        from agentfleet.core.settings import settings_from_config

        placeholder = settings_from_config("dev", PLACEHOLDER_STACK.get)
        for env in sorted({placeholder.environment, *fleet.environments}):
            read_fleet(args.file, err, placeholder.model_copy(update={"environment": env}), names_only=True)
    creds = sum(len(a.credentials) for a in fleet.agents)
    if settings is not None:  # the fleet on one stack: names, then the account's quotas and the shards
        try:
            check_unique_names(settings, fleet)  # build_plan's own check, without building the plan
        except NameCollision as exc:
            for line, message in exc.problems:
                print(f"{args.file}:{line}: {message}", file=err)
            return EXIT_INVALID
        if quota_problems(fleet, settings, args.file, err, project_dir(args)):
            return EXIT_INVALID
    where = f"; checked on stack {args.stack}, within quotas" if args.stack else ""
    print(f"{args.file}: ok ({len(fleet.agents)} agents, {creds} credentials){where}", file=out)
    return EXIT_OK


def _runtime_words(agent: dict[str, Any]) -> str:
    """Who may assume the role (read off its trust document) and how the agent logs in to Vault."""
    words = "; ".join(agent["trusted_by"]) or "nobody"
    return words + (f"\n  vault login  {agent['vault_login']}" if agent.get("vault_login") else "")


def plan_table(plan: dict[str, Any]) -> str:
    lines = [
        f"stack {plan['stack']}  environment {plan['environment']}  "
        f"{plan['aws_region']} / {plan['aws_account_id']}  kms {plan['kms_key_alias']}",
        "",
    ]
    for a in plan["agents"]:
        state = "  [PAUSED: all access denied]" if a["paused"] else ""
        lines.append(f"{a['name']}  (owner {a['owner']}){state}")
        lines.append(f"  role         {a['iam_role_name']}  <- {_runtime_words(a)}")
        lines.append(f"  vault policy {a['vault_policy_name']}")
        net = a.get("network")
        lines.append(f"  network      {net['summary'] if net else 'anywhere (no scope)'}")
        for c in a["credentials"]:
            where = []
            if c["secret_name"]:
                where.append(f"aws:{c['secret_name']}")
            if c["vault_path"]:
                where.append(f"vault:{c['vault_mount']}/{c['vault_path']}")
            if c.get("ssm_parameter"):
                where.append(f"ssm:{c['ssm_parameter']}")
            if c.get("audience"):
                where.append(f"keyless: identity token for {c['audience']}, nothing stored")
            rotation = "   keyless" if c.get("audience") else f"{c['rotation_strategy']:>9}/{c['rotation_days']}d"
            lines.append(
                f"  - {c['name']:<16} {c['service']:<11} {c['type']:<11} {c['classification']:<13} "
                f"{rotation}  {'  '.join(where)}"
            )
        lines.append("")
    n = sum(len(a["credentials"]) for a in plan["agents"])
    lines.append(f"{len(plan['agents'])} agents, {n} credentials")
    return "\n".join(lines) + "\n"


def _plan(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from agentfleet.core.quotas import usage_json

    project = project_dir(args)
    settings = read_settings(project, args.stack, err)
    fleet = read_fleet(args.file, err, settings)
    try:
        plan = build_plan(fleet, settings)
    except NameCollision as exc:
        for line, message in exc.problems:
            print(f"{args.file}:{line}: {message}", file=err)
        return EXIT_INVALID
    over = quota_problems(fleet, settings, args.file, err, project)
    if args.format == "json":
        out.write(plan_json({**plan, "quotas": usage_json(fleet, settings)}))
    else:
        out.write(plan_table(plan))
    return EXIT_INVALID if over else EXIT_OK


def build_parser(modules: Sequence[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    """Every verb's parser; with `modules`, only the verbs of those command modules (and validate, plan)."""
    parser = argparse.ArgumentParser(
        prog="agentfleet",
        description="Per-agent least-privilege credentials: offline checks and plans of agents.yaml.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("validate", help="check a fleet file; one FILE:LINE: message per problem")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--stack", default=None,
                   help="also check the fleet of this stack with all its rules (trusted accounts ...), AWS quotas and shards")
    add_project_arg(p)
    p.set_defaults(func=_validate, short_verb=True)
    p = sub.add_parser("plan", help="print every name, path and policy the fleet gets on a stack")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--stack", default="dev", help=STACK_HELP)
    add_project_arg(p)
    p.add_argument("--format", choices=("json", "table"), default="table")
    p.set_defaults(func=_plan, short_verb=True)
    for mod in modules:
        importlib.import_module(mod).register(sub)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None, *,
         one_shot: bool = False) -> int:
    """Run one verb. `one_shot`: this process exits when the verb ends (the console script)."""
    out, err = out or sys.stdout, err or sys.stderr
    words = sys.argv[1:] if argv is None else list(argv)
    # A short verb named first gets a parser of its own verbs; anything else (help, another verb,
    # an option first, a typo) the full one, so every usage message and listing stays the same.
    parser = build_parser(SHORT_VERB_MODULES[words[0]]) if words and words[0] in SHORT_VERB_MODULES else build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: usage errors exit 2, --help exits 0
        return int(exc.code or 0)
    func: Callable[[argparse.Namespace, TextIO, TextIO], int] = args.func
    short = getattr(args, "short_verb", False)
    if short:
        # A short verb over one bounded file (8 MB at most) builds no garbage cycles worth
        # collecting; the collector would walk the fleet's objects again and again (a fifth of
        # `plan`, a quarter of `diff` at 1,000 agents). The process exits when the verb ends.
        gc.disable()
        if one_shot:
            from agentfleet.core.secretlike import defer_requests

            defer_requests()
    # What a short verb computes twice (a fleet read, the name check ...) is computed once.
    with reuse.scope() if short else contextlib.nullcontext():
        try:
            code = func(args, out, err)
        except CliExit as exc:
            code = exc.code
        if short and one_shot:
            _exit_now(code, out, err)
    return code


def _exit_now(code: int, out: TextIO, err: TextIO) -> None:
    """End a one-shot short verb's process here, its output flushed: tearing down the
    interpreter frees every object of the fleet, its plans and the imported modules one by one
    (about a tenth of a 1,000-agent `diff`), and such a verb registers nothing to run at exit.
    If a flush fails (a closed pipe), return: the ordinary exit reports it as before."""
    try:
        out.flush()
        err.flush()
    except (OSError, ValueError):
        return
    os._exit(code)


def run() -> None:
    """Console-script entry point (`agentfleet ...`)."""
    sys.exit(main(one_shot=True))
