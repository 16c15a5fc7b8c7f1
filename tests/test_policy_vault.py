"""vault-policy-confined: an agent's Vault policy touches only its own KV folder."""

from __future__ import annotations

from typing import Any

import pytest

from agentfleet.core import naming
from agentfleet.core.model import Fleet
from agentfleet.core.settings import StackSettings
from agentfleet.core.vault_policies import agent_policy_hcl, agent_policy_paths
from agentfleet.policy.vault import HclError, parse_policy, vault_policy_confined
from tests.test_policy_support import UNKNOWN, VAULT_POLICY, config_for, validate_resource


@pytest.fixture(scope="module")
def config(sample_fleet: Fleet, dev_settings: StackSettings) -> dict[str, Any]:
    return config_for(dev_settings, sample_fleet)


def block(path: str, *caps: str) -> str:
    quoted = ", ".join(f'"{c}"' for c in caps)
    return f'path "{path}" {{\n  capabilities = [{quoted}]\n}}\n'


def test_parser_reads_the_builders_hcl(dev_settings: StackSettings) -> None:
    assert parse_policy(agent_policy_hcl(dev_settings, "research")) == {
        p: tuple(sorted(c)) for p, c in agent_policy_paths(dev_settings, "research").items()
    }
    assert parse_policy('{"path": {"kv/data/dev/a/*": {"capabilities": ["read"]}}}') == {"kv/data/dev/a/*": ("read",)}
    with pytest.raises(HclError):
        parse_policy('path "kv/x" {\n capabilities = ["read"]\n')
    with pytest.raises(HclError):
        parse_policy('identity "x" {}')


@pytest.mark.parametrize("paused", [False, True])
@pytest.mark.parametrize("with_config", [True, False])
def test_generated_policies_pass(sample_fleet: Fleet, dev_settings: StackSettings, config: dict[str, Any], paused: bool, with_config: bool) -> None:
    for agent in sample_fleet.agents:
        props = {"name": naming.vault_policy_name(dev_settings, agent.name), "policy": agent_policy_hcl(dev_settings, agent.name, paused=paused)}
        assert validate_resource(vault_policy_confined, VAULT_POLICY, props, config=config if with_config else None) == []


def test_sudo_is_caught(config: dict[str, Any], dev_settings: StackSettings) -> None:
    hcl = block("kv/data/dev/research/*", "read", "sudo")
    [msg] = validate_resource(vault_policy_confined, VAULT_POLICY, {"name": naming.vault_policy_name(dev_settings, "research"), "policy": hcl},
                              name="research/vault-policy", config=config)
    assert msg.startswith('vault:index/policy:Policy "research/vault-policy"') and "['sudo']" in msg and "Fix:" in msg


@pytest.mark.parametrize("path", [
    "kv/data/dev/*", "kv/data/*", "kv/+/dev/research/*", "kv/data/dev/research*", "sys/mounts", "*",
    "kv/data/+/research/*",
])
def test_globs_before_the_agent_folder_are_caught(config: dict[str, Any], dev_settings: StackSettings, path: str) -> None:
    props = {"name": naming.vault_policy_name(dev_settings, "research"), "policy": block(path, "read")}
    msgs = validate_resource(vault_policy_confined, VAULT_POLICY, props, config=config)
    assert len(msgs) == 1 and path in msgs[0]


def test_another_agents_folder_is_caught(config: dict[str, Any], dev_settings: StackSettings) -> None:
    hcl = agent_policy_hcl(dev_settings, "research") + block("kv/data/dev/billing/*", "read")
    msgs = validate_resource(vault_policy_confined, VAULT_POLICY, {"name": naming.vault_policy_name(dev_settings, "research"), "policy": hcl}, config=config)
    assert any("only that agent's policy 'agents-dev-billing'" in m for m in msgs)
    assert any("2 agents" in m for m in msgs)
    # Without settings the folder count alone still catches it.
    assert any("2 agents" in m for m in validate_resource(vault_policy_confined, VAULT_POLICY, {"policy": hcl}))


def test_look_alike_agent_and_other_environment(config: dict[str, Any], dev_settings: StackSettings) -> None:
    bill = {"name": naming.vault_policy_name(dev_settings, "bill"), "policy": agent_policy_hcl(dev_settings, "bill")}
    assert validate_resource(vault_policy_confined, VAULT_POLICY, bill, config=config) == []
    prod = dev_settings.model_copy(update={"environment": "prod"})
    other_env = {"name": naming.vault_policy_name(dev_settings, "bill"), "policy": agent_policy_hcl(prod, "bill")}
    msgs = validate_resource(vault_policy_confined, VAULT_POLICY, other_env, config=config)
    assert msgs and all("outside this stack's KV folders" in m or "only that agent's policy" in m for m in msgs)


def test_deny_blocks_elsewhere_are_harmless(config: dict[str, Any], dev_settings: StackSettings) -> None:
    hcl = agent_policy_hcl(dev_settings, "crm") + block("kv/data/*", "deny")
    assert validate_resource(vault_policy_confined, VAULT_POLICY, {"name": naming.vault_policy_name(dev_settings, "crm"), "policy": hcl}, config=config) == []


@pytest.mark.parametrize("props", [{}, {"policy": UNKNOWN}, {"name": UNKNOWN, "policy": UNKNOWN}])
def test_missing_or_unknown_props_do_not_crash(config: dict[str, Any], props: dict[str, Any]) -> None:
    assert validate_resource(vault_policy_confined, VAULT_POLICY, props, config=config) == []


def test_a_policy_that_is_not_text_is_reported(config: dict[str, Any]) -> None:
    [msg] = validate_resource(vault_policy_confined, VAULT_POLICY, {"policy": 42}, config=config)
    assert "not a string" in msg


def test_unparseable_policy_is_reported(config: dict[str, Any]) -> None:
    [msg] = validate_resource(vault_policy_confined, VAULT_POLICY, {"policy": 'path "kv/data/dev/a/*" {'}, config=config)
    assert "cannot be verified" in msg
