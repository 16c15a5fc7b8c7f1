"""`agentfleet ...`: the same CLI as the `agentfleet` console script."""

from agentfleet.cli.main import run

run()
