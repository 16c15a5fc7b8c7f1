"""Operator actions against the real stores (Pulumi-free): writing external values, rotating now.

`values` knows how each credential's value is written to each store it lives in (the one place);
`emergency` performs an emergency rotation through the deployed function. Both take injected
clients, so the rehearsal (agentfleet/rehearse) runs them against local servers.
"""
