"""Per-agent, least-privilege credentials for an AI agent fleet, as Pulumi code.

Importing this package is cheap and Pulumi-free: the model (`agentfleet.core.model`), loader and
builders (`agentfleet.core.plan`) serve the CLI and the policy pack; the Pulumi component resources
live in their own modules and are imported only by the program.
"""
