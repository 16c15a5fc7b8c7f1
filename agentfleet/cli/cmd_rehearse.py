"""`agentfleet rehearse [--stack local] [--fleet FILE]`: the program on real local servers, and a day in its life.

Starts moto_server and an OpenBao dev server on free loopback ports, applies every resource the
program declares through boto3/hvac (real IDs and ARNs back; types it cannot apply are listed),
validates the AWS resources with terraform and the provider mirror if the machine has them, then
scripts a day: agents assume their roles and read only their own secrets, the operator writes
the values, a rotation runs with the deployed function's configuration, the old key is revoked
only after the grace period, a pause cuts one agent, an emergency rotation revokes at once.
Prints a report; exit 1 on any failure. The servers are always stopped.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from agentfleet.cli.cmd_program import add_program_args, program_inputs
from agentfleet.cli.main import EXIT_INVALID, EXIT_OK


def _rehearse(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    inputs = program_inputs(args, err)  # same errors and exit codes as validate/plan before anything starts
    if inputs.fleet is None:
        print(f"{inputs.fleet_path}: rehearse needs the project's fleet file (the day is scripted from it)", file=err)
        return EXIT_INVALID
    from agentfleet.rehearse.run import rehearse, report

    result = rehearse(inputs.root, inputs.stack, inputs.fleet_path, with_terraform=not args.no_terraform)
    out.write(report(result))
    return EXIT_OK if result.ok else EXIT_INVALID


def register(sub: Any) -> None:
    p = sub.add_parser(
        "rehearse", help="apply the program to local moto + OpenBao servers and rehearse a day of the fleet",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_program_args(p)
    p.set_defaults(stack="local")
    p.add_argument("--no-terraform", action="store_true", help="skip the terraform validate/plan step")
    p.set_defaults(func=_rehearse)
