"""Differential test: the pack reads a Vault policy the way a real OpenBao does.

For every policy of an adversarial corpus (comment and brace tricks inside strings, duplicate
paths and `capabilities` lines, JSON with duplicate keys, globs in odd places, `+` segments,
priority between overlapping rules), the policy is written into a real OpenBao dev server and a
token carrying only it (no `default`) is looked up with `sys/capabilities` for every agent's KV paths.
The pack's evaluator (`agentfleet.policy.vault_acl`) must predict exactly those capabilities, and
`vault-policy-confined` must pass a policy only when OpenBao grants it nothing beyond its own
agent's folder. A policy the pack cannot parse must be reported as a violation.
"""

from __future__ import annotations

from typing import Iterator

import hvac
import pytest

from agentfleet.core import naming
from agentfleet.core.model import Fleet
from agentfleet.core.settings import StackSettings
from agentfleet.core.vault_policies import agent_policy_hcl
from agentfleet.policy.base import Resource
from agentfleet.policy.layout import layout, policy_config
from agentfleet.policy.vault import check_vault_policy
from agentfleet.policy.vault_acl import VaultPolicyError, capabilities, parse_policy
from tests.openbao_server import OpenBao

pytestmark = pytest.mark.openbao

OWNER = "research"
"""Every corpus policy is submitted as this agent's Vault policy."""

D = "kv/data/dev"
M = "kv/metadata/dev"
CORPUS: dict[str, str] = {
    "builder": "",  # filled with the builder's own policy below
    "comment-opener-in-string": f'path "{D}/research/*" {{ capabilities = ["read"] }}\npath "kv/*" {{ capabilities = ["read"] }} # /* hides nothing',
    "glob-string-with-slash-star": f'path "{D}/research/*" {{ capabilities = ["read"] }}\npath "kv/data/dev/*" {{ capabilities = ["read"] }}\n/* trailing */',
    "brace-in-string": f'path "{D}/research/{{x}}" {{ capabilities = ["read"] }}\npath "{D}/billing/*" {{ capabilities = ["read"] }}',
    "closing-brace-in-string": f'path "{D}/research/}}" {{ capabilities = ["read"] }}\npath "{D}/crm/*" {{ capabilities = ["read"] }}',
    "two-capabilities-lines": f'path "{D}/research/*" {{\n capabilities = ["read"]\n capabilities = ["sudo"]\n}}',
    "duplicate-path-blocks": f'path "{D}/research/*" {{ capabilities = ["read"] }}\npath "{D}/research/*" {{ capabilities = ["list"] }}',
    "duplicate-path-with-deny": f'path "{D}/research/*" {{ capabilities = ["read"] }}\npath "{D}/research/*" {{ capabilities = ["deny"] }}',
    "json-duplicate-path-key": ('{"path": {"' + D + '/research/*": {"capabilities": ["read"]}}, '
                                '"path": {"' + D + '/billing/*": {"capabilities": ["read"]}}}'),
    "json-duplicate-capabilities": '{"path": {"' + D + '/research/*": {"capabilities": ["read"], "capabilities": ["sudo"]}}}',
    "json-same-path-twice": ('{"path": {"' + D + '/research/*": {"capabilities": ["read"]}, "'
                             + D + '/research/*": {"capabilities": ["list"]}}}'),
    "json-builder-shape": '{"path": {"' + D + '/research/*": {"capabilities": ["read"]}, "' + M + '/research/*": {"capabilities": ["read", "list"]}}}',
    "plus-segment-agent": f'path "{D}/+/*" {{ capabilities = ["read"] }}',
    "plus-env-segment": 'path "kv/data/+/research/*" { capabilities = ["read"] }',
    "glob-in-middle-is-literal": 'path "kv/*/dev/research/x" { capabilities = ["read"] }',
    "agent-name-prefix-glob": f'path "{D}/re*" {{ capabilities = ["read"] }}',
    "folder-without-slash": f'path "{D}/research*" {{ capabilities = ["read"] }}',
    "mount-root-glob": 'path "kv/*" { capabilities = ["read", "list"] }',
    "everything": 'path "*" { capabilities = ["read"] }',
    "deny-overrides-wider": f'path "{D}/*" {{ capabilities = ["read"] }}\npath "{D}/billing/*" {{ capabilities = ["deny"] }}',
    "exact-beats-glob": f'path "{D}/research/openai" {{ capabilities = ["deny"] }}\npath "{D}/research/*" {{ capabilities = ["read"] }}',
    "longer-prefix-wins": f'path "{D}/research/*" {{ capabilities = ["read"] }}\npath "{D}/research/open*" {{ capabilities = ["update"] }}',
    "plus-vs-prefix-priority": f'path "{D}/research/*" {{ capabilities = ["read"] }}\npath "{D}/+/openai" {{ capabilities = ["list"] }}',
    "sudo-own-folder": f'path "{D}/research/*" {{ capabilities = ["read", "sudo"] }}',
    "other-agents-exact-path": f'path "{D}/billing/stripe" {{ capabilities = ["read"] }}',
    "heredoc-free-comment-styles": f'// line\n# hash\npath "{D}/research/*" {{ capabilities = ["read"] }} /* block with "quotes" */',
    "escaped-quote-in-path": f'path "{D}/research/a\\"b" {{ capabilities = ["read"] }}\npath "{D}/support/*" {{ capabilities = ["read"] }}',
    "unknown-key-allowed-parameters": f'path "{D}/research/*" {{ capabilities = ["read"] allowed_parameters = {{ "*" = [] }} }}',
    "legacy-policy-key": f'path "{D}/billing/*" {{ policy = "read" }}',
    "uppercase-capability": f'path "{D}/research/*" {{ capabilities = ["READ"] }}',
    "metadata-of-other-agent": f'path "{D}/research/*" {{ capabilities = ["read"] }}\npath "{M}/billing/*" {{ capabilities = ["list"] }}',
    "trailing-comma-list": f'path "{D}/research/*" {{ capabilities = ["read",] }}',
    "nested-labels": f'path "{D}/research/*" "x" {{ capabilities = ["read"] }}',
    "json-path-list-form": '{"path": [{"kv/*": {"capabilities": ["read"]}}]}',
}


@pytest.fixture(scope="module")
def fleet_paths(sample_fleet: Fleet, dev_settings: StackSettings) -> list[str]:
    paths: list[str] = []
    for agent in sample_fleet.agents:
        for cred in agent.credentials:
            rel = naming.vault_path(dev_settings, agent.name, cred.name)
            paths += [f"{dev_settings.vault_mount}/data/{rel}", f"{dev_settings.vault_mount}/metadata/{rel}"]
    # Edges: the folder itself, a sibling agent sharing the owner's prefix, the mount root.
    paths += [f"{D}/research", f"{D}/researcher/x", f"{D}/research/openai", f"{D}/research/openaix", "kv/data", "sys/policy/x"]
    return sorted(set(paths))


@pytest.fixture(scope="module")
def bao(openbao: OpenBao) -> Iterator[hvac.Client]:
    yield openbao.client()


def _bao_caps(openbao: OpenBao, root: hvac.Client, name: str, source: str, paths: list[str]) -> dict[str, frozenset[str]] | None:
    """Capabilities a token with only this policy has on each path; None if OpenBao refuses the policy."""
    try:
        root.sys.create_or_update_acl_policy(name=name, policy=source)
    except hvac.exceptions.VaultError:
        return None
    token = root.auth.token.create(policies=[name], no_default_policy=True, ttl="5m")["auth"]["client_token"]
    # `sys/capabilities` (asked by root, for this token) is `capabilities-self` without needing `default`.
    resp = root.adapter.post("/v1/sys/capabilities", json={"token": token, "paths": paths})
    data = resp.get("data", resp) if isinstance(resp, dict) else resp.json()
    out = {p: frozenset(c for c in data[p] if c != "deny") for p in paths}
    root.auth.token.revoke(token)
    return out


def _pack(source: str, config: dict[str, object]) -> list[str]:
    res = Resource("vault:index/policy:Policy", "p", "urn:p", {"name": "agents-dev-research", "policy": source})
    return list(check_vault_policy(res, layout(config)))


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 25


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_pack_reads_policies_as_openbao_does(
    case: str, openbao: OpenBao, bao: hvac.Client, fleet_paths: list[str],
    dev_settings: StackSettings, sample_fleet: Fleet,
) -> None:
    source = CORPUS[case] or agent_policy_hcl(dev_settings, OWNER)
    config = policy_config(dev_settings, sample_fleet.classifications)
    violations = _pack(source, config)
    real = _bao_caps(openbao, bao, f"diff-{case}", source, fleet_paths)
    own = f"/{OWNER}/"
    try:
        rules = parse_policy(source)
    except VaultPolicyError:
        assert violations, f"{case}: the pack could not parse it but reported nothing"
        return
    assert real is not None, f"{case}: the pack parsed a policy OpenBao refuses"
    predicted = {p: capabilities(rules, p) for p in fleet_paths}
    assert predicted == real, f"{case}: pack {predicted} != OpenBao {real}"
    beyond = {p: c for p, c in real.items() if c and (own not in p or "sudo" in c or "root" in c)}
    if beyond:
        assert violations, f"{case}: OpenBao grants {beyond} yet the pack passed it"
    elif case == "builder":
        assert not violations, violations


def test_the_corpus_exercises_both_verdicts(dev_settings: StackSettings, sample_fleet: Fleet) -> None:
    """Guard the guard: some policies pass, many fail, some are unparseable."""
    config = policy_config(dev_settings, sample_fleet.classifications)
    verdicts = {c: bool(_pack(s or agent_policy_hcl(dev_settings, OWNER), config)) for c, s in CORPUS.items()}
    assert not verdicts["builder"] and not verdicts["duplicate-path-blocks"]
    assert verdicts["two-capabilities-lines"] and verdicts["json-duplicate-path-key"] and verdicts["comment-opener-in-string"]
    assert sum(verdicts.values()) >= 20
