"""`agentfleet put-values FILE --stack STACK`: write each external credential's value, after `pulumi up`.

Interactive: one hidden prompt per credential (never echoed or logged; empty = skip), the value's
shape checked against its rotation strategy, then written to every store the credential lives in
with your own credentials (AWS: the usual boto3 chain, AWS_ENDPOINT_URL for an emulator; Vault:
VAULT_ADDR/BAO_ADDR or the stack's `vault:address`, and VAULT_TOKEN/BAO_TOKEN) and read back.

Non-interactive (CI): `--values-from PATH|-` or `--values-fd N` with `AGENT/CREDENTIAL=VALUE`
lines; every value is checked before anything is written.

`--from-env-file PATH` imports a team's `.env`: each variable is mapped to the fleet credential
it belongs to (by the service/credential/agent names in the variable's name, as `scan` maps
findings; `--mapping FILE` with `VAR: agent/credential` lines decides the rest). An ambiguous
mapping writes nothing. Afterwards it prints what the team must still do.

Progress (credential names only, never values) is kept in `.agentfleet/put-values.<stack>.json`
of the project while a run is under way: a run that was interrupted (or failed a write) resumes
where it stopped (`--restart` starts over); a finished run removes it.
Nothing is printed unmasked.
"""

from __future__ import annotations

import argparse
import getpass
import os
import subprocess
from pathlib import Path
from typing import Any, Callable, TextIO

from agentfleet.cli.main import (EXIT_INVALID, EXIT_OK, EXIT_USAGE, STACK_HELP, add_project_arg, project_dir,
                                 read_plan, read_settings)
from agentfleet.core.secretlike import mask
from agentfleet.core.settings import StackSettings
from agentfleet.operate import values as v
from agentfleet.rotation.credential import KEY_FIELD, Credential

PROMPT: Callable[[str], str] = getpass.getpass
"""Hidden input (tests replace it). getpass reads from the terminal, never echoes."""
MAX_ATTEMPTS = 3


def make_clients(settings: StackSettings, project: Path, stack: str) -> v.Clients:
    """The operator's own clients, built only for the stores a run writes to."""

    def aws() -> Any:
        import boto3

        return boto3.client("secretsmanager", region_name=settings.aws_region)

    def vault() -> Any:
        import hvac

        addr = os.environ.get("VAULT_ADDR") or os.environ.get("BAO_ADDR") or _stack_vault_address(project, stack)
        token = os.environ.get("VAULT_TOKEN") or os.environ.get("BAO_TOKEN")
        if not addr:
            raise v.StoreError("vault: no address (set VAULT_ADDR or the stack's vault:address)")
        return hvac.Client(url=addr, token=token, timeout=10)

    def ssm() -> Any:
        import boto3

        return boto3.client("ssm", region_name=settings.aws_region)

    return v.Clients({"aws": aws, "vault": vault, "ssm": ssm})


def _stack_vault_address(project: Path, stack: str) -> str | None:
    """`vault:address` of Pulumi.<stack>.yaml (a provider setting, outside StackSettings)."""
    import yaml

    from agentfleet.core.project import stack_file

    doc = yaml.safe_load(stack_file(project, stack).read_text(encoding="utf-8")) or {}
    addr = (doc.get("config") or {}).get("vault:address")
    return addr if isinstance(addr, str) else None


def _describe(t: v.ValueTarget) -> str:
    return f"{t.key} ({t.service}, strategy {t.strategy}) -> " + " and ".join(t.where(s) for s in t.stores)


def _write(t: v.ValueTarget, cred: Credential, clients: v.Clients, progress: v.Progress, out: TextIO, err: TextIO) -> bool:
    try:
        stores = v.write_value(t, cred, clients)
    except v.StoreError as exc:
        print(f"{t.key}: NOT written: {exc}", file=err)
        return False
    progress.mark(t.key)
    shown = mask(cred[KEY_FIELD])
    print(f"{t.key}: {shown} written and verified in " + ", ".join(t.where(s) for s in stores), file=out)
    return True


def _resume_note(progress: v.Progress, total: int, err: TextIO) -> None:
    print(f"stopped: {len(progress.done)} of {total} credential(s) done; run the same command again to resume"
          f" (progress: {progress.path})", file=err)


def _interactive(targets: list[v.ValueTarget], clients: v.Clients, progress: v.Progress, out: TextIO, err: TextIO) -> int:
    written = skipped = 0
    try:
        for t in targets:
            print(_describe(t), file=out)
            print(f"  shape: {v.shape_help(t.strategy)}", file=out)
            for attempt in range(1, MAX_ATTEMPTS + 1):
                raw = PROMPT(f"  value for {t.key} (hidden; empty = skip): ")
                if not raw:
                    skipped += 1
                    print(f"  {t.key}: skipped", file=out)
                    break
                try:
                    cred, notes = v.shape_value(t.strategy, raw, t.plan.get("fields"))
                except v.ShapeError as exc:
                    print(f"  {t.key}: the value {exc}" + ("; try again" if attempt < MAX_ATTEMPTS else "; skipped"), file=err)
                    continue
                del raw
                for n in notes:
                    print(f"  note: {n}", file=out)
                if not _write(t, cred, clients, progress, out, err):
                    _resume_note(progress, len(targets) + len(progress.done) - written, err)
                    return EXIT_INVALID
                written += 1
                break
            else:
                skipped += 1
    except (KeyboardInterrupt, EOFError):
        print("", file=err)
        _resume_note(progress, len(progress.done) + len(targets) - written, err)
        return EXIT_INVALID
    print(f"{written} written, {skipped} skipped", file=out)
    progress.clear()  # a finished run leaves nothing to resume: the next run (a rotation) asks again
    return EXIT_OK


def _batch(targets: list[v.ValueTarget], given: dict[str, str], clients: v.Clients, progress: v.Progress,
           out: TextIO, err: TextIO) -> int:
    """Check every value first (nothing written if one is wrong), then write in order."""
    shaped: list[tuple[v.ValueTarget, Credential]] = []
    problems = []
    for t in targets:
        if t.key not in given:
            continue
        try:
            cred, notes = v.shape_value(t.strategy, given[t.key], t.plan.get("fields"))
        except v.ShapeError as exc:
            problems.append(f"{t.key}: the value {exc} (expected {v.shape_help(t.strategy)})")
            continue
        for n in notes:
            print(f"{t.key}: note: {n}", file=out)
        shaped.append((t, cred))
    if problems:
        for p in problems:
            print(p, file=err)
        print(f"{len(problems)} problem(s); nothing was written", file=err)
        return EXIT_INVALID
    for i, (t, cred) in enumerate(shaped):
        if not _write(t, cred, clients, progress, out, err):
            _resume_note(progress, len(progress.done) + len(shaped) - i, err)
            return EXIT_INVALID
    missing = [t.key for t in targets if t.key not in given]
    print(f"{len(shaped)} written" + (f"; no value given for {', '.join(missing)}" if missing else ""), file=out)
    progress.clear()  # a finished run leaves nothing to resume
    return EXIT_OK


def _in_git(path: Path) -> tuple[bool, bool]:
    """(tracked now, in some commit of history)."""
    def ok(*cmd: str) -> str | None:
        try:
            r = subprocess.run(cmd, cwd=path.parent, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return r.stdout if r.returncode == 0 else None

    tracked = ok("git", "ls-files", "--error-unmatch", path.name) is not None
    history = bool((ok("git", "log", "--all", "--format=%h", "--", path.name) or "").strip())
    return tracked, history


def _from_env_file(args: argparse.Namespace, targets: list[v.ValueTarget], clients: v.Clients, progress: v.Progress,
                   out: TextIO, err: TextIO) -> int:
    env_path = Path(args.from_env_file)
    try:
        env = v.parse_env_file(env_path.read_text(encoding="utf-8"))
        explicit = v.load_mapping_file(Path(args.mapping)) if args.mapping else None
    except (OSError, ValueError) as exc:
        print(f"cannot read: {exc}", file=err)
        return EXIT_USAGE
    m = v.map_env_vars(env, targets, explicit, agent=args.agent)
    by_name = {e.name: e for e in env}
    for name, t in sorted(m.mapped.items()):
        print(f"{env_path}:{by_name[name].line}: {name} {mask(by_name[name].value)} -> {t.key}", file=out)
    if m.ambiguous or m.problems:
        for p in m.problems:
            print(p, file=err)
        for name, cands in sorted(m.ambiguous.items()):
            print(f"{env_path}:{by_name[name].line}: {name} is ambiguous: {', '.join(c.key for c in cands)}", file=err)
        print("nothing was written. Complete this mapping file and pass it with --mapping FILE:", file=err)
        err.write(v.mapping_template(m))
        return EXIT_INVALID
    given = {t.key: by_name[name].value for name, t in m.mapped.items() if t.key not in progress.done}
    code = _batch([t for t in targets if t.key in given], given, clients, progress, out, err)
    if code != EXIT_OK:
        return code
    tracked, history = _in_git(env_path.resolve())
    print("\nWhat is left to do:", file=out)
    if m.unmapped:
        print(f"  - not imported (no fleet credential matches): {', '.join(sorted(m.unmapped))};"
              " declare them in the fleet or map them with --mapping", file=out)
    print(f"  - delete {env_path} (its keys now live in the stores above); load them from the agent's secret store", file=out)
    if tracked or history:
        print(f"  - {env_path.name} was committed to git: `git rm --cached {env_path.name}`, rewrite history"
              f" (git filter-repo --invert-paths --path {env_path.name}) and treat every key in it as leaked", file=out)
    services = sorted({t.service for t in m.mapped.values()})
    for svc in services:
        mine = {t.key for t in m.mapped.values() if t.service == svc}
        others = sorted(t.key for t in targets if t.service == svc and t.key not in mine)
        share = f"; first give {', '.join(others)} their own key (put-values)" if others else ""
        print(f"  - {svc}: the imported key was shared by the team; revoke it at {svc} once every agent has its own"
              f" key{share} (automated strategies: `agentfleet emergency-rotate` mints one now)", file=out)
    return EXIT_OK


def _put_values(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    project = project_dir(args)
    plan = read_plan(args.file, project, args.stack, err)
    settings = read_settings(project, args.stack, err)
    targets = [t for t in v.value_targets(plan)
               if (args.agent is None or t.agent == args.agent) and (args.credential is None or t.credential == args.credential)]
    if not targets:
        print("no external credential matches (generated ones get their value from the program)", file=err)
        return EXIT_INVALID
    progress = v.Progress(v.progress_path(project, args.stack))
    if args.restart:
        progress.clear()
    done = [t for t in targets if t.key in progress.done]
    if done:
        print(f"resuming: {len(done)} credential(s) already written ({progress.path}; --restart to write them again)", file=out)
    todo = [t for t in targets if t.key not in progress.done]
    if not todo:
        print("nothing left to write", file=out)
        progress.clear()
        return EXIT_OK
    clients = make_clients(settings, project, args.stack)
    if args.from_env_file:
        return _from_env_file(args, targets, clients, progress, out, err)
    if args.values_from or args.values_fd is not None:
        try:
            if args.values_fd is not None:
                with os.fdopen(args.values_fd, "r", encoding="utf-8", closefd=False) as f:
                    text = f.read()
            elif args.values_from == "-":
                import sys

                text = sys.stdin.read()
            else:
                text = Path(args.values_from).read_text(encoding="utf-8")
        except OSError as exc:
            print(f"cannot read values: {exc.strerror}", file=err)
            return EXIT_USAGE
        given, problems = v.parse_value_lines(text, targets)
        if problems:
            for p in problems:
                print(p, file=err)
            print(f"{len(problems)} problem(s); nothing was written", file=err)
            return EXIT_INVALID
        return _batch(todo, {k: val for k, val in given.items() if k not in progress.done}, clients, progress, out, err)
    return _interactive(todo, clients, progress, out, err)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "put-values", help="write each external credential's value to every store it lives in (hidden prompt)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--stack", default="dev", help=STACK_HELP)
    add_project_arg(p)
    p.add_argument("--agent")
    p.add_argument("--credential")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--values-from", metavar="PATH", help="AGENT/CREDENTIAL=VALUE lines from a file or - (stdin)")
    src.add_argument("--values-fd", metavar="N", type=int, help="the same lines from an open file descriptor")
    src.add_argument("--from-env-file", metavar="PATH", help="import a team's .env file")
    p.add_argument("--mapping", metavar="FILE", help="with --from-env-file: VAR: agent/credential lines")
    p.add_argument("--restart", action="store_true", help="forget the progress of an earlier run")
    p.set_defaults(func=_put_values)
