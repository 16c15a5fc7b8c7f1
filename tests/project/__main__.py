"""The test project runs the repository's own Pulumi program, unchanged.

This folder is a Pulumi project of its own (Pulumi.yaml, stack settings, a fixture fleet), so
the suite never depends on the repository's `agents.yaml` or stack files: a team replaces
those with its own and the suite still tests the code. The program finds this folder through
`pulumi.get_root_directory()`, as it finds any project under the real engine.
"""

import runpy
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parents[2] / "__main__.py"), run_name="__main__")
