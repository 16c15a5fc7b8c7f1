"""Sharding: one fleet deployed as several stacks of one environment, as plain data.

One *environment stack* (`agentfleet:shard: environment`) declares what the environment shares
(KMS key, KV mount, Vault auth backend, trail, alert topic, rotation environment) and exports it
(`ENVIRONMENT_OUTPUTS`); each *agent stack* (`shard: agents`) selects its agents by name pattern
and/or owner, and reads the shared values through a `pulumi.StackReference` to the environment
stack. The stacks run in parallel (a CI matrix, Pulumi Deployments). Per-agent logical names are
the same in every layout, so an agent's resources are the same whether it lives in the single
stack or in a shard.

Every agent lands in exactly one shard: `check_shards` reads every stack file of the project,
takes the stacks of the same environment (account, region, prefix, environment) and refuses an
agent no shard selects (an orphan: it would never be deployed) or several shards select (an
overlap: two stacks would fight over the same physical names).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

from agentfleet.core.model import Fleet, ResolvedAgent
from agentfleet.core.settings import SettingsError, StackSettings, load_stack_settings

ENVIRONMENT_OUTPUTS = {
    "key_arn": "kmsKeyArn",
    "key_id": "kmsKeyId",
    "key_alias": "kmsKeyAlias",
    "kv_mount": "vaultMount",
    "aws_auth_path": "vaultAwsAuthPath",
    "topic_arn": "alertTopicArn",
    "log_group_name": "trailLogGroupName",
    "schedule_group": "rotationScheduleGroup",
    "scheduler_role_arn": "rotationSchedulerRoleArn",
}
"""What an environment stack exports for its agent stacks: attribute -> stack output name."""


def selects(s: StackSettings, agent: ResolvedAgent) -> bool:
    """Whether this stack declares `agent`: every agent on a single stack; on an agent shard, the
    agents whose name matches one of `shardAgents` or whose owner is one of `shardOwners`."""
    if s.shard == "all":
        return True
    if s.shard == "environment":
        return False
    return agent.owner in s.shard_owners or any(fnmatch.fnmatchcase(agent.name, p) for p in s.shard_agents)


def declared_agents(s: StackSettings, fleet: Fleet) -> tuple[ResolvedAgent, ...]:
    return tuple(a for a in fleet.agents if selects(s, a))


def environment_key(s: StackSettings) -> tuple[str, str, str, str]:
    """Stacks with the same key share physical names: they are one environment."""
    return (s.aws_account_id, s.aws_region, s.secret_prefix, s.environment)


@dataclass(frozen=True)
class ShardLayout:
    environment_stacks: tuple[str, ...]
    agent_stacks: dict[str, tuple[str, ...]]
    """Agent stack -> the agents it declares."""
    single_stacks: tuple[str, ...]


def environment_stacks(project: Path, s: StackSettings) -> dict[str, StackSettings]:
    """Every stack of the project in the same environment as `s` (stack name -> settings)."""
    out = {}
    for path in sorted(Path(project).glob("Pulumi.*.yaml")):
        stack = path.name[len("Pulumi."):-len(".yaml")]
        try:
            other = s if stack == s.stack else load_stack_settings(path, stack)
        except SettingsError:
            continue  # `validate --stack <that stack>` reports its own problems
        if environment_key(other) == environment_key(s):
            out[stack] = other
    return out


def layout(fleet: Fleet, stacks: dict[str, StackSettings]) -> ShardLayout:
    return ShardLayout(
        environment_stacks=tuple(n for n, st in stacks.items() if st.shard == "environment"),
        agent_stacks={n: tuple(a.name for a in declared_agents(st, fleet)) for n, st in stacks.items() if st.shard == "agents"},
        single_stacks=tuple(n for n, st in stacks.items() if st.shard == "all"),
    )


def check_shards(fleet: Fleet, stacks: dict[str, StackSettings]) -> list[str]:
    """Problems of the environment's sharding (empty when it is not sharded or every agent lands once)."""
    lay = layout(fleet, stacks)
    if not lay.agent_stacks and not lay.environment_stacks:
        return []
    env = next(iter(stacks.values())).environment
    problems = []
    if len(lay.environment_stacks) != 1:
        problems.append(f"environment {env}: {len(lay.environment_stacks)} environment stacks"
                        f" ({', '.join(lay.environment_stacks) or 'none'}); a sharded environment has exactly one")
    if lay.single_stacks:
        problems.append(f"environment {env}: stacks {', '.join(lay.single_stacks)} declare the whole fleet beside"
                        " shards of the same environment: every physical name would be declared twice")
    for n, st in stacks.items():
        if st.shard == "agents" and lay.environment_stacks and st.environment_stack is not None \
                and st.environment_stack.rsplit("/", 1)[-1] not in lay.environment_stacks:
            problems.append(f"stack {n}: environmentStack {st.environment_stack!r} is not this environment's"
                            f" environment stack ({', '.join(lay.environment_stacks)})")
    owners: dict[str, list[str]] = {a.name: [] for a in fleet.agents}
    for stack, names in lay.agent_stacks.items():
        for name in names:
            owners[name].append(stack)
    for name, where in sorted(owners.items()):
        if not where:
            problems.append(f"agent {name!r} is in no shard of environment {env}: no stack would deploy it"
                            f" (add it to a stack's shardAgents or shardOwners)")
        elif len(where) > 1:
            problems.append(f"agent {name!r} is in {len(where)} shards of environment {env} ({', '.join(where)}):"
                            " each agent belongs to exactly one")
    return problems
