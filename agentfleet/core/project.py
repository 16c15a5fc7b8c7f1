"""Where a project's files are: the one rule every verb and the program follow.

A project is a Pulumi project directory (it holds `Pulumi.yaml`). Its stack settings are
`<project>/Pulumi.<stack>.yaml`, and its fleet file is `<project>/<agentfleet:fleetFile>`
(default `agents.yaml`), exactly as `pulumi up` sees them. A fleet file given on the command
line may live anywhere; its stack settings still come from the project.
"""

from __future__ import annotations

from pathlib import Path

FLEET_FILE_KEY = "fleetFile"
"""Config key (`agentfleet:fleetFile`) naming the fleet file, relative to the project directory."""
DEFAULT_FLEET_FILE = "agents.yaml"


def find_project_dir(start: Path | None = None) -> Path:
    """The nearest directory holding a `Pulumi.yaml`, from `start` (the working directory) up, as
    the Pulumi CLI finds it; `start` itself when there is none."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "Pulumi.yaml").is_file():
            return d
    return here


def stack_file(project_dir: Path, stack: str) -> Path:
    """The stack's settings file: `Pulumi.<stack>.yaml` in the project directory."""
    return Path(project_dir) / f"Pulumi.{stack}.yaml"


def fleet_file_path(project_dir: Path, configured: str | None) -> Path:
    """The fleet file the program reads: relative to the project, whatever the working directory."""
    return Path(project_dir) / (configured or DEFAULT_FLEET_FILE)
