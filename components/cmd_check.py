"""`python -m components check [--stack STACK] [--format text|json]`: the policy pack, offline.

Runs the Pulumi program under the mock runtime and applies every policy of `policy/` to what it
declares (components/checkrun.py). Exit 1 when a mandatory policy is violated (or the fleet,
settings or program are invalid), 0 otherwise; advisory violations are printed but pass.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO

from components import checkrun, mockrun
from components.cli import EXIT_INVALID, EXIT_OK, EXIT_USAGE, read_fleet
from components.cmd_preview import _settings
from components.fleet import fleet_file_path
from components.settings import PROJECT
from policy.layout import policy_config


def _check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    root = Path(args.root).resolve() if args.root else mockrun.ROOT
    stack_config = mockrun.stack_config(args.stack, root) if (root / f"Pulumi.{args.stack}.yaml").exists() else {}
    fleet_path = Path(args.fleet).resolve() if args.fleet else fleet_file_path(root, stack_config.get(f"{PROJECT}:fleetFile"))
    fleet = read_fleet(str(fleet_path), err)
    settings = _settings(root, args.stack, err)
    pack_config: dict[str, Any] = {}
    if args.policy_config:
        try:
            pack_config = checkrun.load_pack_config(args.policy_config)
            checkrun.split_config(pack_config)
        except (OSError, ValueError) as exc:
            print(f"{args.policy_config}: {exc}", file=err)
            return EXIT_USAGE
    layout_config = policy_config(settings, fleet.classifications)
    if args.print_policy_config:
        out.write(json.dumps(checkrun.engine_policy_config(layout_config), indent=2) + "\n")
        return EXIT_OK
    try:
        run = mockrun.run_program(args.stack, root=root, config_overrides={f"{PROJECT}:fleetFile": str(fleet_path)})
    except Exception as exc:  # the program's own error, as the engine would report it
        print(f"check failed: the program did not run: {type(exc).__name__}: {exc}", file=err)
        return EXIT_INVALID
    result = checkrun.check_program(run, layout_config, pack_config)
    out.write(checkrun.render_json(result) if args.format == "json" else checkrun.render_text(result))
    return result.exit_code


def register(sub: Any) -> None:
    p = sub.add_parser(
        "check",
        help="apply the CrossGuard policy pack to the program offline; exit 1 on a mandatory violation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--stack", default="dev", help="reads Pulumi.<STACK>.yaml (default: dev)")
    p.add_argument("--fleet", metavar="FILE", help=f"fleet file (default: config {PROJECT}:fleetFile or agents.yaml)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--policy-config", metavar="FILE",
                   help="policy config JSON, as for `pulumi preview --policy-pack-config` (enforcement levels)")
    p.add_argument("--print-policy-config", action="store_true",
                   help="print the policy config file for `pulumi preview --policy-pack policy --policy-pack-config FILE` and exit")
    p.add_argument("--root", help=argparse.SUPPRESS)
    p.set_defaults(func=_check)
