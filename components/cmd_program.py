"""What the verbs that run the Pulumi program offline (`preview`, `check`) share.

Both take `--stack`/`--fleet`, read the fleet and the stack settings with the same errors and
exit codes as `validate`/`plan` before anything runs, and then run the real program via mockrun.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from components import mockrun
from components.cli import EXIT_INVALID, CliExit, read_fleet
from components.fleet import FLEET_FILE_KEY, fleet_file_path
from components.model import Fleet
from components.settings import PROJECT, SettingsError, StackSettings, load_stack_settings


@dataclass(frozen=True)
class ProgramInputs:
    root: Path
    stack: str
    fleet_path: Path
    fleet: Fleet
    settings: StackSettings

    def run(self) -> mockrun.ProgramRun:
        return mockrun.run_program(
            self.stack, root=self.root, config_overrides={f"{PROJECT}:{FLEET_FILE_KEY}": str(self.fleet_path)}
        )


def add_program_args(p: Any) -> None:
    p.add_argument("--stack", default="dev", help="reads Pulumi.<STACK>.yaml (default: dev)")
    p.add_argument("--fleet", metavar="FILE", help=f"fleet file (default: config {PROJECT}:{FLEET_FILE_KEY} or agents.yaml)")
    p.add_argument("--root", help=argparse.SUPPRESS)


def program_inputs(args: argparse.Namespace, err: TextIO) -> ProgramInputs:
    """Fleet and settings exactly as the program will see them, or exit with their errors."""
    root = Path(args.root).resolve() if args.root else mockrun.ROOT
    config = mockrun.stack_config(args.stack, root) if (root / f"Pulumi.{args.stack}.yaml").exists() else {}
    fleet_path = Path(args.fleet).resolve() if args.fleet else fleet_file_path(root, config.get(f"{PROJECT}:{FLEET_FILE_KEY}"))
    fleet = read_fleet(str(fleet_path), err)
    try:
        settings = load_stack_settings(root / f"Pulumi.{args.stack}.yaml", args.stack)
    except SettingsError as exc:
        for problem in exc.problems:
            print(problem, file=err)
        raise CliExit(EXIT_INVALID) from None
    return ProgramInputs(root, args.stack, fleet_path, fleet, settings)
