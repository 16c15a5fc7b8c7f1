"""The agentfleet CrossGuard policy pack: credential-hygiene rules as importable policy objects.

One module per domain (`secretsmanager`, `iam`, `vault`, `rotation`, `tagging`, `lint`);
`agentfleet.policy.registry.ALL_POLICIES` lists them all. `policy/__main__.py` only assembles the pack for
`pulumi preview --policy-pack policy` (it blocks serving gRPC, so tests never import it), and
`agentfleet check` feeds the program's resources to the same objects offline.
"""
