"""Review verbs: `audit`, `diff`, `schema`, `scan` — what a reviewer needs to judge a fleet PR.

Every verb that reads a fleet goes through the loader and `build_plan`, so an invalid file gives
the same `FILE:LINE: message` lines and exit 1 as `validate`, and every name comes from the
builders. `diff` also reads the fleet file as of a git revision (`--base origin/main`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from agentfleet.review import audit
from agentfleet.review import diff
from agentfleet.review import scan
from agentfleet.cli.main import EXIT_INVALID, EXIT_OK, EXIT_USAGE, STACK_HELP, CliExit, add_project_arg, project_dir, read_plan, read_settings
from agentfleet.core.loader import FleetError, parse_fleet
from agentfleet.core.model import BUILTIN_CLASSIFICATIONS, STRATEGIES, Fleet, FleetFile
from agentfleet.core.plan import NameCollision, build_plan
from agentfleet.core.settings import StackSettings

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_FILE = "agents.schema.json"


# ---- audit ----


def _audit(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    plan = read_plan(args.file, project_dir(args), args.stack, err)
    out.write(audit.FORMATS[args.format](plan))
    return EXIT_OK


# ---- diff ----


@dataclass(frozen=True)
class Side:
    """One side of a diff: the fleet text (None = no fleet file there) and a label for messages."""

    label: str
    text: str | None
    path: Path
    """The file's working-tree path: the stack settings are read next to it."""


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=False)


def read_at_revision(rev: str, path: str, err: TextIO) -> Side:
    """The file at `path` (a working-tree path) as of git revision `rev`, via `git show`."""
    if not rev or rev.startswith("-"):
        print(f"{rev!r}: not a git revision", file=err)
        raise CliExit(EXIT_USAGE)
    target = Path(path).resolve()
    folder = target.parent
    while not folder.is_dir():
        folder = folder.parent
    top = _git(["rev-parse", "--show-toplevel"], folder)
    if top.returncode != 0:
        print(f"{path}: not inside a git repository, cannot read it at {rev}", file=err)
        raise CliExit(EXIT_USAGE)
    root = Path(top.stdout.strip()).resolve()
    try:
        rel = target.relative_to(root).as_posix()
    except ValueError:
        print(f"{path}: outside the git repository {root}", file=err)
        raise CliExit(EXIT_USAGE) from None
    if _git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], root).returncode != 0:
        print(f"{rev}: unknown git revision (in CI, fetch it first: git fetch origin <branch>)", file=err)
        raise CliExit(EXIT_USAGE)
    label = f"{rev}:{rel}"
    if _git(["cat-file", "-e", label], root).returncode != 0:
        return Side(label, None, target)  # the file is new (or gone) on that side
    shown = _git(["show", label], root)
    if shown.returncode != 0:
        print(f"{label}: git show failed: {shown.stderr.strip()}", file=err)
        raise CliExit(EXIT_USAGE)
    return Side(label, shown.stdout, target)


def read_side(spec: str, err: TextIO) -> Side:
    """A path if it exists, else `REV:path` (the path part is relative to the current folder)."""
    p = Path(spec)
    if p.is_file():
        try:
            return Side(spec, p.read_text(encoding="utf-8"), p)
        except OSError as exc:
            print(f"{spec}: cannot read fleet file: {exc.strerror}", file=err)
            raise CliExit(EXIT_USAGE) from None
    if ":" in spec:
        rev, _, path = spec.partition(":")
        return read_at_revision(rev, path, err)
    print(f"{spec}: cannot read fleet file: No such file or directory", file=err)
    raise CliExit(EXIT_USAGE)


def _parse(side: Side, err: TextIO) -> Fleet | None:
    """The side's fleet, None when it has no file; prints the validate errors and raises."""
    if side.text is None:
        return None
    try:
        return parse_fleet(side.text, side.label)
    except FleetError as exc:
        for p in exc.problems:
            print(p, file=err)
        print(f"{side.label}: {len(exc.problems)} problem(s); nothing was planned", file=err)
        raise


def _plan_of(fleet: Fleet | None, side: Side, settings: StackSettings, err: TextIO) -> dict[str, Any]:
    if fleet is None:
        return {"stack": settings.stack, "agents": []}
    try:
        return build_plan(fleet, settings)
    except NameCollision as exc:
        print(f"{side.label}:0: {exc}", file=err)
        raise CliExit(EXIT_INVALID) from None


def _diff(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.base is not None:
        if len(args.files) != 1:
            print("diff --base REV takes one fleet file (NEW); OLD is that file at REV", file=err)
            return EXIT_USAGE
        old_spec, new_spec = f"{args.base}:{args.files[0]}", args.files[0]
    elif len(args.files) == 2:
        old_spec, new_spec = args.files
    else:
        print("diff needs OLD and NEW (paths or REV:path), or NEW with --base REV", file=err)
        return EXIT_USAGE
    old_side, new_side = read_side(old_spec, err), read_side(new_spec, err)
    if old_side.text is None and new_side.text is None:
        print(f"{new_spec}: no fleet file on either side", file=err)
        return EXIT_USAGE
    fleets: list[Fleet | None] = []
    invalid = False
    for side in (old_side, new_side):
        try:
            fleets.append(_parse(side, err))
        except FleetError:
            invalid = True
            fleets.append(None)
    if invalid:
        return EXIT_INVALID
    # Both sides are planned with the same (working-tree) stack settings: the diff is the fleet's.
    settings = read_settings(project_dir(args), args.stack, err)
    old_fleet, new_fleet = fleets
    result = diff.diff_plans(
        _plan_of(old_fleet, old_side, settings, err), _plan_of(new_fleet, new_side, settings, err),
        old_classes=old_fleet.classifications if old_fleet else {},
        new_classes=new_fleet.classifications if new_fleet else {},
        old_source=old_side.label if old_side.text is not None else f"{old_side.label} (absent)",
        new_source=new_side.label if new_side.text is not None else f"{new_side.label} (absent)",
    )
    out.write(diff.FORMATS[args.format](result))
    if args.fail_on == "escalation" and result.escalations:
        print(f"{result.escalations} escalation(s): this change needs an explicit access review", file=err)
        return EXIT_INVALID
    return EXIT_OK


# ---- schema ----


def fleet_json_schema() -> dict[str, Any]:
    """JSON Schema of agents.yaml: the pydantic model's, plus the loader's closed value sets."""
    schema = FleetFile.model_json_schema(by_alias=True, mode="validation")
    # The strategy enum comes from the model's `Strategy` (its own $def); say what each one is.
    schema["$defs"]["Strategy"]["description"] = "; ".join(f"`{k.value}`: {v.words}" for k, v in STRATEGIES.items())
    credential = schema["$defs"]["Credential"]["properties"]["classification"]
    credential["examples"] = sorted(BUILTIN_CLASSIFICATIONS)
    credential["description"] = "A built-in class or one declared under `classifications:`."
    schema["properties"]["$schema"]["description"] = "Editor hint only, e.g. ./agents.schema.json."
    head = {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_FILE,
        "title": "agentfleet fleet file (agents.yaml)",
        "description": (
            "Every AI agent of the fleet, the external credentials it uses and who may run it. Never"
            " holds a secret value. Generated from agentfleet/core/model.py by `agentfleet"
            " schema`; `agentfleet validate` also checks the cross-field rules."
        ),
    }
    rest = {k: v for k, v in schema.items() if k not in ("title", "description")}
    return {**head, **rest}


def schema_text() -> str:
    return json.dumps(fleet_json_schema(), indent=2) + "\n"


def _schema(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    out.write(schema_text())
    return EXIT_OK


# ---- scan ----


def _scan(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        for p in missing:
            print(f"{p}: no such file or directory", file=err)
        return EXIT_USAGE
    fleet_path = args.fleet
    if fleet_path is None and Path("agents.yaml").is_file():
        fleet_path = "agents.yaml"
    plan = read_plan(fleet_path, project_dir(args), args.stack, err) if fleet_path else None
    findings = scan.scan_paths(args.paths, plan, fleet_path)
    out.write(scan.scan_report(findings))
    return EXIT_INVALID if findings else EXIT_OK


def register(sub: Any) -> None:
    stack_help = STACK_HELP
    p = sub.add_parser("audit", help="table of every credential: owner, type, class, store, location, rotation")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--stack", default="dev", help=stack_help)
    add_project_arg(p)
    p.add_argument("--format", choices=tuple(audit.FORMATS), default="markdown")
    p.set_defaults(func=_audit)

    p = sub.add_parser(
        "diff", help="who gains or loses access: semantic diff of two fleet files or git revisions",
        description="OLD and NEW are fleet files or REV:path; with --base REV give NEW only.",
    )
    p.add_argument("files", nargs="+", metavar="OLD NEW")
    p.add_argument("--base", metavar="REV", help="compare NEW with the same file at git revision REV")
    p.add_argument("--stack", default="dev", help=STACK_HELP + "; used for both sides")
    add_project_arg(p)
    p.add_argument("--format", choices=tuple(diff.FORMATS), default="markdown")
    p.add_argument("--fail-on", choices=("escalation",), help="exit 1 when any change is an escalation")
    p.set_defaults(func=_diff)

    p = sub.add_parser("schema", help=f"print the JSON Schema of agents.yaml (kept in {SCHEMA_FILE})")
    p.set_defaults(func=_schema)

    p = sub.add_parser("scan", help="find hard-coded credentials and .env files; exit 1 on findings")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--fleet", metavar="FILE", help="fleet file mapping findings to secret names (default: ./agents.yaml if present)")
    p.add_argument("--stack", default="dev", help=stack_help)
    add_project_arg(p)
    p.set_defaults(func=_scan)
