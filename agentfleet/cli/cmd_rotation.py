"""Rotation verbs: `emergency-rotate` prints the one command for a credential suspected leaked.

    agentfleet emergency-rotate agents.yaml --agent research --credential openai

(`register` also fits `agentfleet.cli.main.COMMAND_MODULES`, which would make it
`agentfleet emergency-rotate ...` once the README lists the verb.)

Offline like every verb: it reads the fleet and the stack settings and prints the exact
`aws lambda invoke` of that credential's rotation function (names from `agentfleet.core.naming`
through `rotation_plan.emergency_rotation`); it never calls AWS itself. The function rotates the
key now, writes it to Secrets Manager and, if the credential has one, to its Vault copy, and
revokes the old key(s) as soon as the new key is verified and both copies hold it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any, TextIO

from agentfleet.core import rotation_plan as rp
from agentfleet.cli.main import EXIT_INVALID, EXIT_OK, STACK_HELP, add_project_arg, project_dir, read_fleet, read_settings


def _emergency(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    settings = read_settings(project_dir(args), args.stack, err)
    fleet = read_fleet(args.file, err, settings)
    try:
        plan = rp.emergency_rotation(settings, fleet, args.agent, args.credential)
    except (LookupError, ValueError) as exc:
        print(f"{args.file}: {exc}", file=err)
        return EXIT_INVALID
    if args.format == "json":
        out.write(json.dumps(asdict(plan), indent=2) + "\n")
        return EXIT_OK
    stores = f"Secrets Manager {plan.secret_name}" + (f" and Vault {plan.vault}" if plan.vault else "")
    out.write(
        f"# rotate {plan.agent}/{plan.credential} now ({stores}); revoke the old key(s) right after verify + sync\n"
        f"{plan.command}\n"
        "# success: {\"status\": \"rotated\", \"emergency\": true, \"vault\": ..., \"unrevoked\": []}\n"
        "# \"FunctionError\" with EmergencyIncomplete: the new key is live but something kept the old one alive\n"
        "# (see the function's vault_sync_failed / revoke_failed log lines); fix it, then run:\n"
        f"# {plan.follow_up}\n"
    )
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser(
        "emergency-rotate",
        help="print the one command that rotates a leaked credential now and revokes the old key (both stores)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--agent", required=True)
    p.add_argument("--credential", required=True)
    p.add_argument("--stack", default="dev", help=STACK_HELP)
    add_project_arg(p)
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=_emergency)
