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
from agentfleet.cli.main import EXIT_INVALID, EXIT_OK, EXIT_USAGE, STACK_HELP, CliExit, add_project_arg, project_dir, read_plan, read_settings
from agentfleet.core.loader import MAX_FILE_BYTES, FleetError, decode_fleet, parse_fleet
from agentfleet.core.project import DEFAULT_FLEET_FILE, FLEET_FILE_KEY, fleet_file_path, stack_file
from agentfleet.core.model import BUILTIN_CLASSIFICATIONS, NOT_OVERRIDABLE, STRATEGIES, Fleet, FleetFile
from agentfleet.core.plan import NameCollision, build_plan
from agentfleet.core.settings import PROJECT, SettingsError, StackSettings, parse_stack_settings, stack_config_of

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
    """The file's working-tree path."""


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, check=False, text=True,
                          encoding="utf-8", errors="surrogateescape")


def _git_bytes(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, check=False)


def _decoded(data: bytes, label: str, err: TextIO) -> str:
    """The loader's decoding (size, UTF-16, NUL, UTF-8 errors) for any side of a diff."""
    try:
        return decode_fleet(data, label)
    except FleetError as exc:
        for p in exc.problems:
            print(p, file=err)
        print(f"{label}: {len(exc.problems)} problem(s); nothing was planned", file=err)
        raise CliExit(EXIT_INVALID) from None


def _repo_of(path: Path, err: TextIO) -> Path:
    folder = path
    while not folder.is_dir():
        folder = folder.parent
    top = _git(["rev-parse", "--show-toplevel"], folder)
    if top.returncode != 0:
        print(f"{path}: not inside a git repository", file=err)
        raise CliExit(EXIT_USAGE)
    return Path(top.stdout.strip()).resolve()


def _check_revision(rev: str, root: Path, err: TextIO) -> None:
    if not rev or rev.startswith("-"):
        print(f"{rev!r}: not a git revision", file=err)
        raise CliExit(EXIT_USAGE)
    if _git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], root).returncode != 0:
        print(f"{rev}: unknown git revision (in CI, fetch it first: git fetch origin <branch>)", file=err)
        raise CliExit(EXIT_USAGE)


def _show(rev: str, target: Path, err: TextIO) -> tuple[str, bytes | None]:
    """(`REV:relpath`, the file's bytes at REV or None when it does not exist there)."""
    root = _repo_of(target, err)
    try:
        rel = target.relative_to(root).as_posix()
    except ValueError:
        print(f"{target}: outside the git repository {root}", file=err)
        raise CliExit(EXIT_USAGE) from None
    _check_revision(rev, root, err)
    label = f"{rev}:{rel}"
    if _git(["cat-file", "-e", label], root).returncode != 0:
        return label, None
    shown = _git_bytes(["show", label], root)
    if shown.returncode != 0:
        print(f"{label}: git show failed: {shown.stderr.decode(errors='replace').strip()}", file=err)
        raise CliExit(EXIT_USAGE)
    return label, shown.stdout


def read_at_revision(rev: str, path: str, err: TextIO) -> Side:
    """The file at `path` (a working-tree path) as of git revision `rev`, via `git show`."""
    if not rev or rev.startswith("-"):
        print(f"{rev!r}: not a git revision", file=err)
        raise CliExit(EXIT_USAGE)
    target = Path(path).resolve()
    label, data = _show(rev, target, err)
    return Side(label, None if data is None else _decoded(data, label, err), target)


def read_side(spec: str, err: TextIO) -> Side:
    """A path if it exists, else `REV:path` (the path part is relative to the current folder)."""
    p = Path(spec)
    if p.is_file():
        try:
            with p.open("rb") as f:
                data = f.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            print(f"{spec}: cannot read fleet file: {exc.strerror}", file=err)
            raise CliExit(EXIT_USAGE) from None
        return Side(spec, _decoded(data, spec, err), p)
    if ":" in spec:
        rev, _, path = spec.partition(":")
        return read_at_revision(rev, path, err)
    print(f"{spec}: cannot read fleet file: No such file or directory", file=err)
    raise CliExit(EXIT_USAGE)


def _parse(side: Side, err: TextIO, settings: StackSettings | None, *, rules: bool) -> Fleet | None:
    """The side's fleet for the stack, None when it has no file; prints the validate errors and raises.
    The base side gets its environment resolved but not the stack rules (a PR may fix them)."""
    if side.text is None:
        return None
    try:
        return parse_fleet(side.text, side.label, settings, rules=rules)
    except FleetError as exc:
        for p in exc.problems:
            print(p, file=err)
        print(f"{side.label}: {len(exc.problems)} problem(s); nothing was planned", file=err)
        raise


def _plan_of(fleet: Fleet | None, side: Side, settings: StackSettings, err: TextIO) -> dict[str, Any]:
    if fleet is None:
        return {"stack": settings.stack, "agents": []}
    try:
        return build_plan(fleet, settings, shared=True)  # diff_plans only reads the plans
    except NameCollision as exc:
        for line, message in exc.problems:
            print(f"{side.label}:{line}: {message}", file=err)
        raise CliExit(EXIT_INVALID) from None


@dataclass(frozen=True)
class StackSide:
    """A stack as one side of the change sees it: its settings and the fleet file they name."""

    settings: StackSettings | None
    """None: the stack does not exist on that side."""
    fleet: Side
    fleet_key: str | None
    """`agentfleet:fleetFile` as the stack file sets it (None: not set, the FILE argument is used)."""


def _fleet_key(text: str, label: str) -> str | None:
    try:
        value = stack_config_of(text, label).get(f"{PROJECT}:{FLEET_FILE_KEY}")
    except SettingsError:
        return None
    return value if isinstance(value, str) and value else None


def _settings_of(text: str, label: str, stack: str, err: TextIO) -> StackSettings:
    try:
        return parse_stack_settings(text, label, stack)
    except SettingsError as exc:
        for p in exc.problems:
            print(p, file=err)
        raise CliExit(EXIT_INVALID) from None


def _working_side(project: Path, stack: str, file: str | None, err: TextIO) -> StackSide:
    path = stack_file(project, stack)
    if not path.is_file():
        return StackSide(None, Side(file or DEFAULT_FLEET_FILE, None, project / (file or DEFAULT_FLEET_FILE)), None)
    text = _decoded(path.read_bytes(), str(path), err)
    settings = _settings_of(text, str(path), stack, err)
    key = _fleet_key(text, str(path))
    target = fleet_file_path(project, key) if key else (Path(file) if file else fleet_file_path(project, None))
    shown = str(target) if key or not file else file
    if target.is_file():
        return StackSide(settings, read_side(shown, err), key)
    return StackSide(settings, Side(shown, None, target.resolve()), key)


def _base_side(rev: str, project: Path, stack: str, file: str | None, err: TextIO) -> StackSide:
    label, data = _show(rev, stack_file(project, stack).resolve(), err)
    if data is None:  # the stack is new in this change
        return StackSide(None, Side(f"{rev}:(no stack {stack})", None, project), None)
    text = _decoded(data, label, err)
    settings = _settings_of(text, label, stack, err)
    key = _fleet_key(text, label)
    target = (fleet_file_path(project, key) if key else (Path(file) if file else fleet_file_path(project, None))).resolve()
    return StackSide(settings, read_at_revision(rev, str(target), err), key)


def _project_stacks(project: Path, rev: str | None, err: TextIO) -> list[str]:
    """Every stack of the project: its `Pulumi.<stack>.yaml` files now and (with a base) at REV."""
    stacks = {p.name[len("Pulumi."):-len(".yaml")] for p in project.glob("Pulumi.*.yaml")}
    if rev is not None:
        root = _repo_of(project, err)
        _check_revision(rev, root, err)
        rel = project.resolve().relative_to(root).as_posix()
        listed = _git(["ls-tree", "--name-only", f"{rev}:{rel}" if rel != "." else f"{rev}"], root)
        stacks |= {n[len("Pulumi."):-len(".yaml")] for n in listed.stdout.split() if n.startswith("Pulumi.") and n.endswith(".yaml") and n != "Pulumi.yaml"}
    return sorted(stacks)


def _diff_sides(old: StackSide, new: StackSide, stack: str, project: Path, err: TextIO, *,
                compare_settings: bool = True) -> diff.AccessDiff:
    settings = new.settings or old.settings
    if settings is None:
        print(f"stack {stack}: no Pulumi.{stack}.yaml on either side", file=err)
        raise CliExit(EXIT_USAGE)
    if old.fleet.text is None and new.fleet.text is None:
        print(f"{new.fleet.label}: no fleet file on either side", file=err)
        raise CliExit(EXIT_USAGE)
    old_settings = old.settings or settings
    fleets: list[Fleet | None] = []
    invalid = False
    for side, s, rules in ((old.fleet, old_settings, False), (new.fleet, settings, True)):
        try:
            fleets.append(_parse(side, err, s, rules=rules))
        except FleetError:
            invalid = True
            fleets.append(None)
    if invalid:
        raise CliExit(EXIT_INVALID)
    old_fleet, new_fleet = fleets
    return diff.diff_plans(
        _plan_of(old_fleet, old.fleet, old_settings, err), _plan_of(new_fleet, new.fleet, settings, err),
        old_classes=old_fleet.classifications if old_fleet else {},
        new_classes=new_fleet.classifications if new_fleet else {},
        old_source=old.fleet.label if old.fleet.text is not None else f"{old.fleet.label} (absent)",
        new_source=new.fleet.label if new.fleet.text is not None else f"{new.fleet.label} (absent)",
        old_settings=old.settings if compare_settings else None, new_settings=new.settings if compare_settings else None,
        old_fleet_file=_fleet_name(old, project), new_fleet_file=_fleet_name(new, project),
        removal_settings=old_settings,
    )


def _fleet_name(side: StackSide, project: Path) -> str | None:
    """The fleet file the side's stack deploys, relative to the project when inside it."""
    if side.settings is None:
        return None
    path = side.fleet.path.resolve()
    try:
        return path.relative_to(project.resolve()).as_posix()
    except ValueError:
        return str(path)


def _diff(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    project = project_dir(args)
    if args.base is not None:
        if len(args.files) > 1:
            print("diff --base REV takes at most one fleet file (NEW); OLD is the fleet at REV", file=err)
            return EXIT_USAGE
        file = args.files[0] if args.files else None
        stacks = _project_stacks(project, args.base, err) if args.all_stacks else [args.stack]
        if not stacks:
            print(f"{project}: no Pulumi.<stack>.yaml to diff", file=err)
            return EXIT_USAGE
        results = []
        for stack in stacks:
            old, new = _base_side(args.base, project, stack, file, err), _working_side(project, stack, file, err)
            for side in (old, new):
                if file and side.fleet_key and Path(file).resolve() != fleet_file_path(project, side.fleet_key).resolve():
                    print(f"note: stack {stack} reads {side.fleet_key} (agentfleet:{FLEET_FILE_KEY}) on {side.fleet.label.split(':')[0] if ':' in side.fleet.label else 'the working tree'}; diffing that file, not {file}", file=err)
            results.append(_diff_sides(old, new, stack, project, err))
    elif len(args.files) == 2:
        if args.all_stacks:
            print("--all-stacks needs --base REV", file=err)
            return EXIT_USAGE
        # Two fleet files, one stack: both planned with the working tree's settings of that stack.
        old_spec, new_spec = args.files
        old_side, new_side = read_side(old_spec, err), read_side(new_spec, err)
        settings = read_settings(project, args.stack, err)
        results = [_diff_sides(StackSide(settings, old_side, None), StackSide(settings, new_side, None), args.stack, project, err,
                               compare_settings=False)]
    else:
        print("diff needs OLD and NEW (paths or REV:path), or NEW with --base REV", file=err)
        return EXIT_USAGE
    if args.split_dir:
        parts = diff.markdown_parts(results, limit=args.comment_limit)
        folder = Path(args.split_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for old_part in folder.glob("access-diff-*.md"):
            old_part.unlink()
        for i, part in enumerate(parts, start=1):
            (folder / f"access-diff-{i}.md").write_text(part, encoding="utf-8")
        print(f"{len(parts)} comment(s) written to {folder}", file=err)
    out.write(diff.render(results, args.format))
    escalations = sum(r.escalations for r in results)
    if args.fail_on == "escalation" and escalations:
        print(f"{escalations} escalation(s): this change needs an explicit access review", file=err)
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
    # `environments: {env: {...}}`: any agent field but identity and presence, credentials by name.
    agent, cred = schema["$defs"]["Agent"], schema["$defs"]["Credential"]
    override_creds = {"type": "object", "additionalProperties": {
        "type": "object", "additionalProperties": False,
        "properties": {k: v for k, v in cred["properties"].items() if k not in NOT_OVERRIDABLE},
    }}
    agent["properties"]["environments"]["additionalProperties"] = {
        "type": "object", "additionalProperties": False,
        "description": "Overrides for one environment: each value replaces the agent's; `credentials` maps a credential name to its overridden fields.",
        "properties": {**{k: v for k, v in agent["properties"].items() if k not in NOT_OVERRIDABLE | {"credentials"}},
                       "credentials": override_creds},
    }
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
    from agentfleet.review import scan  # only this verb reads sources (the other verbs start faster)

    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        for p in missing:
            print(f"{p}: no such file or directory", file=err)
        return EXIT_USAGE
    fleet_path = args.fleet
    if fleet_path is None and Path("agents.yaml").is_file():
        fleet_path = "agents.yaml"
    plan = read_plan(fleet_path, project_dir(args), args.stack, err) if fleet_path else None
    skipped: list[scan.NotScanned] = []
    findings = scan.scan_paths(args.paths, plan, fleet_path, skipped)
    out.write(scan.scan_report(findings, skipped))
    return EXIT_INVALID if findings else EXIT_OK


def register(sub: Any) -> None:
    stack_help = STACK_HELP
    p = sub.add_parser("audit", help="table of every credential: owner, type, class, store, location, rotation")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--stack", default="dev", help=stack_help)
    add_project_arg(p)
    p.add_argument("--format", choices=tuple(audit.FORMATS), default="markdown")
    p.set_defaults(func=_audit, short_verb=True)  # reuse, no cyclic GC: see main.main

    p = sub.add_parser(
        "diff", help="who gains or loses access: semantic diff of two fleet files or git revisions",
        description="OLD and NEW are fleet files or REV:path; with --base REV give NEW only.",
    )
    p.add_argument("files", nargs="*", metavar="OLD NEW")
    p.add_argument("--base", metavar="REV", help=(
        "compare the stack's fleet with the same stack at git revision REV: each side's stack settings"
        " (and the fleet file their agentfleet:fleetFile names, else NEW) as of that side"))
    p.add_argument("--stack", default="dev", help=STACK_HELP)
    p.add_argument("--all-stacks", action="store_true", help="with --base: diff every stack of the project")
    add_project_arg(p)
    p.add_argument("--format", choices=tuple(diff.FORMATS), default="markdown")
    p.add_argument("--fail-on", choices=("escalation",), help="exit 1 when any change is an escalation")
    p.add_argument("--split-dir", metavar="DIR", help="also write the markdown as PR comments DIR/access-diff-N.md, each under --comment-limit")
    p.add_argument("--comment-limit", type=int, default=diff.COMMENT_LIMIT, help=argparse.SUPPRESS)
    p.set_defaults(func=_diff, short_verb=True)  # reuse, no cyclic GC: see main.main

    p = sub.add_parser("schema", help=f"print the JSON Schema of agents.yaml (kept in {SCHEMA_FILE})")
    p.set_defaults(func=_schema)

    p = sub.add_parser("scan", help="find hard-coded credentials and .env files; exit 1 on findings")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--fleet", metavar="FILE", help="fleet file mapping findings to secret names (default: ./agents.yaml if present)")
    p.add_argument("--stack", default="dev", help=stack_help)
    add_project_arg(p)
    p.set_defaults(func=_scan)
