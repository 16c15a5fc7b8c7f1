"""`agentfleet check [--stack STACK] [--format text|json]`: the policy pack, offline.

Runs the Pulumi program under the mock runtime and applies every policy of `policy/` to what it
declares (agentfleet/runner/checkrun.py). Exit 1 when a mandatory policy is violated (or the fleet,
settings or program are invalid), 0 otherwise; advisory violations are printed but pass.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from agentfleet.cli.main import EXIT_INVALID, EXIT_OK, EXIT_USAGE, read_fleet
from agentfleet.cli.cmd_program import add_program_args, program_inputs


def _check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    # The policy runner loads pulumi-policy and the program's SDKs: only when this verb runs.
    from agentfleet.policy.layout import policy_config, runtime_accounts
    from agentfleet.runner import checkrun

    inputs = program_inputs(args, err)
    fleet, settings = inputs.fleet, inputs.settings
    pack_config: dict[str, Any] = {}
    if args.policy_config:
        try:
            pack_config = checkrun.load_pack_config(args.policy_config)
            checkrun.split_config(pack_config)
        except (OSError, ValueError) as exc:
            print(f"{args.policy_config}: {exc}", file=err)
            return EXIT_USAGE
    layout_config = policy_config(settings, fleet.classifications if fleet is not None else {},
                                  runtime_accounts(fleet) if fleet is not None else ())
    if args.print_policy_config:
        out.write(json.dumps(checkrun.engine_policy_config(layout_config), indent=2) + "\n")
        return EXIT_OK
    run = inputs.run_or_exit("check", err)
    result = checkrun.check_program(run, layout_config, pack_config)
    out.write(checkrun.render_json(result) if args.format == "json" else checkrun.render_text(result))
    return result.exit_code


def _policy_pack(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pathlib import Path

    from agentfleet.policy.pack import write_pack

    for path in write_pack(Path(args.dir), args.requirement, args.virtualenv):
        print(f"wrote {path}", file=out)
    print(f"run it with: pulumi preview --policy-pack {args.dir}", file=out)
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser(
        "policy-pack", help="write a CrossGuard pack folder that runs this package's policies (for any project)",
    )
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--requirement", metavar="SPEC",
                   help="what the pack's venv installs (default: agentfleet==<this version>; e.g. a git URL)")
    p.add_argument("--virtualenv", default="venv", help="the pack's virtualenv, relative to DIR (default: venv)")
    p.set_defaults(func=_policy_pack)

    p = sub.add_parser(
        "check",
        help="apply the CrossGuard policy pack to the program offline; exit 1 on a mandatory violation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_program_args(p)
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--policy-config", metavar="FILE",
                   help="policy config JSON, as for `pulumi preview --policy-pack-config` (enforcement levels)")
    p.add_argument("--print-policy-config", action="store_true",
                   help="print the policy config file for `pulumi preview --policy-pack policy --policy-pack-config FILE` and exit")
    p.set_defaults(func=_check)
