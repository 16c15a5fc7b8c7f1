"""`agentfleet emergency-rotate FILE --agent A --credential C --stack S`: rotate a leaked key now.

It invokes the credential's own rotation function (boto3, your credentials; AWS_ENDPOINT_URL
for an emulator) with `{"Action": "rotateNow", "Emergency": true}`: the function mints a new key,
verifies it, makes it current in Secrets Manager, rewrites its Vault copy, and revokes the old
key(s) right away. `--dry-run` prints what it would do (and the equivalent AWS CLI command)
without calling anything. If the function reports the rotation incomplete (Vault or the
provider down), the verb says so, exits 1 and prints the follow-up (`--follow-up` runs it).
Manual credentials (a human mints the key) get the exact steps instead.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any, TextIO

from agentfleet.cli.main import EXIT_INVALID, EXIT_OK, STACK_HELP, add_project_arg, project_dir, read_fleet, read_settings
from agentfleet.core import rotation_plan as rp
from agentfleet.core.settings import StackSettings
from agentfleet.operate import emergency


def lambda_client(settings: StackSettings) -> Any:
    """The operator's own Lambda client (tests replace it)."""
    import boto3

    return boto3.client("lambda", region_name=settings.aws_region)


def _emergency(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    settings = read_settings(project_dir(args), args.stack, err)
    fleet = read_fleet(args.file, err, settings)
    try:
        plan = rp.emergency_rotation(settings, fleet, args.agent, args.credential)
    except LookupError as exc:
        print(f"{args.file}: {exc}", file=err)
        return EXIT_INVALID
    except ValueError:
        cred = next(c for c in fleet.agent(args.agent).credentials if c.name == args.credential)
        steps = emergency.manual_steps(args.file, args.stack, args.agent, args.credential, cred.service, list(cred.stores))
        if args.format == "json":
            out.write(json.dumps({"manual": True, "steps": steps}, indent=2) + "\n")
        else:
            out.write(f"{args.agent}/{args.credential} is rotated by a human (strategy {cred.rotation_strategy}); do this now:\n")
            out.writelines(f"  {i}. {s}\n" for i, s in enumerate(steps, 1))
        return EXIT_OK
    stores = f"Secrets Manager {plan.secret_name}" + (f" and Vault {plan.vault}" if plan.vault else "")
    if args.dry_run:
        if args.format == "json":
            out.write(json.dumps(asdict(plan), indent=2) + "\n")
            return EXIT_OK
        out.write(
            f"dry run: would invoke {plan.function_name} in {settings.aws_region} with {plan.payload}\n"
            f"  it rotates {args.agent}/{args.credential} now ({stores}) and revokes the old key(s) right after verify + sync\n"
            f"  equivalent AWS CLI v2 command:\n{plan.command}\n"
            f"  if it reports EmergencyIncomplete, the follow-up is:\n  {plan.follow_up}\n"
        )
        return EXIT_OK
    client = lambda_client(settings)
    result = emergency.rotate_now(client, plan)
    if not result.ok and args.follow_up:
        print(f"rotation incomplete ({result.error}); running the follow-up sweep", file=err)
        result = emergency.follow_up(client, plan)
    if args.format == "json":
        out.write(json.dumps({"ok": result.ok, "result": result.result, "error": result.error}, indent=2) + "\n")
    elif result.ok:
        out.write(f"rotated {args.agent}/{args.credential} ({stores}); old key(s) revoked. Function answer: "
                  f"{json.dumps(result.result, sort_keys=True)}\n")
    if not result.ok:
        print(f"{args.agent}/{args.credential}: NOT finished: {result.error}\n"
              f"fix the cause (the function's vault_sync_failed / revoke_failed log lines), then run:\n"
              f"  agentfleet emergency-rotate {args.file} --stack {args.stack} --agent {args.agent}"
              f" --credential {args.credential} --follow-up", file=err)
        return EXIT_INVALID
    return EXIT_OK


def _check_value(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Read a value on stdin and check its shape against the declared fields; never print it."""
    import sys

    from agentfleet.core.credential_rules import check_value

    names = tuple(n for n in args.fields.split(",") if n)
    text = sys.stdin.read() if args.stdin is None else args.stdin.read()
    problems = check_value(tuple((n, True) for n in names) or (("api_key", True),), text)
    for p in problems:
        print(f"check-value: {p}", file=err)
    if problems:
        print("check-value: nothing was written; fix the value and run the command again", file=err)
        return EXIT_INVALID
    return EXIT_OK


def register(sub: Any) -> None:
    c = sub.add_parser(
        "check-value",
        help="check a credential value on stdin against its declared fields (used by the value-writing commands)",
    )
    c.add_argument("--fields", default="api_key", help="comma-separated field names (agentfleet plan: `fields`)")
    c.set_defaults(func=_check_value, stdin=None)
    p = sub.add_parser(
        "emergency-rotate",
        help="rotate a leaked credential now through its rotation function and revoke the old key (both stores)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--agent", required=True)
    p.add_argument("--credential", required=True)
    p.add_argument("--stack", default="dev", help=STACK_HELP)
    add_project_arg(p)
    p.add_argument("--dry-run", action="store_true", help="print what it would do; call nothing")
    p.add_argument("--follow-up", action="store_true", help="if incomplete, run the forced revocation sweep too")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=_emergency)
