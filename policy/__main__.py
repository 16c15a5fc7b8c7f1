"""CrossGuard entry point (`pulumi preview --policy-pack policy`): only assembles the pack.

`PolicyPack(...)` serves the engine over gRPC and never returns, so nothing imports this file;
the policies live in the installed `agentfleet.policy` package (see `agentfleet.policy.registry`),
which `requirements.txt` in this folder installs into the pack's own virtualenv.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from agentfleet.policy.registry import ALL_POLICIES, PACK_NAME

PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.ADVISORY, policies=list(ALL_POLICIES))
