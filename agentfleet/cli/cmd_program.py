"""What the verbs that run the Pulumi program offline (`preview`, `check`) share.

Both take `--stack`/`--fleet`, read the fleet and the stack settings with the same errors and
exit codes as `validate`/`plan` before anything runs, and then run the real program via mockrun.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from agentfleet.cli.main import EXIT_INVALID, STACK_HELP, CliExit, add_project_arg, project_dir, read_fleet, read_settings
from agentfleet.core.model import Fleet
from agentfleet.core.project import FLEET_FILE_KEY, fleet_file_path
from agentfleet.core.settings import PROJECT, StackSettings

if TYPE_CHECKING:  # the runner (Pulumi) loads only when a program runs
    from agentfleet.runner import mockrun


@dataclass(frozen=True)
class ProgramInputs:
    root: Path
    stack: str
    fleet_path: Path
    fleet: Fleet | None
    """None when the project has no fleet file: its program builds the fleet in code."""
    settings: StackSettings

    def run_or_exit(self, verb: str, err: TextIO) -> mockrun.ProgramRun:
        """Run the program; its own error (as the engine would report it) is exit 1 for every verb."""
        try:
            return self.run()
        except Exception as exc:  # noqa: BLE001 - whatever the program raised is the user's error to see
            print(f"{verb} failed: the program did not run: {type(exc).__name__}: {exc}", file=err)
            raise CliExit(EXIT_INVALID) from None

    def run(self) -> mockrun.ProgramRun:
        from agentfleet.runner import mockrun

        # One run per CLI process: no full garbage collection of the run's objects before exit.
        return mockrun.run_program(
            self.stack, root=self.root, config_overrides={f"{PROJECT}:{FLEET_FILE_KEY}": str(self.fleet_path)},
            collect_garbage=False,
        )


def add_program_args(p: Any) -> None:
    p.add_argument("--stack", default="dev", help=STACK_HELP)
    p.add_argument("--fleet", metavar="FILE", help=f"fleet file (default: config {PROJECT}:{FLEET_FILE_KEY} or agents.yaml)")
    add_project_arg(p)


def program_inputs(args: argparse.Namespace, err: TextIO) -> ProgramInputs:
    """Fleet and settings exactly as the program will see them, or exit with their errors."""
    root = project_dir(args)
    settings = read_settings(root, args.stack, err)
    from agentfleet.runner.mockrun import stack_config

    config = stack_config(args.stack, root)
    fleet_path = Path(args.fleet).resolve() if args.fleet else fleet_file_path(root, config.get(f"{PROJECT}:{FLEET_FILE_KEY}"))
    # A program may build its fleet in code (`build_fleet`): then there is no file to check first.
    fleet = read_fleet(str(fleet_path), err, settings) if args.fleet or fleet_path.exists() else None
    return ProgramInputs(root, args.stack, fleet_path, fleet, settings)
