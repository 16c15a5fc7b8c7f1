"""CrossGuard entry point (`pulumi preview --policy-pack policy`): only assembles the pack.

`PolicyPack(...)` serves the engine over gRPC and never returns, so nothing imports this file;
the policies live in the domain modules, listed by `policy.registry`.
"""

import sys
from pathlib import Path

# The engine runs this file with the pack folder on sys.path; import from the repo root instead,
# so `policy` and `components` resolve as packages and no module here shadows another.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policy.registry import ALL_POLICIES, PACK_NAME  # noqa: E402

PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.ADVISORY, policies=list(ALL_POLICIES))
