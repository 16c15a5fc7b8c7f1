"""required-tags: agent, owner, environment, managed-by on every taggable resource."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy import EnforcementLevel

from agentfleet.core import naming
from agentfleet.core.model import Fleet
from agentfleet.core.settings import StackSettings
from agentfleet.policy.tagging import required_tags
from tests.test_policy_support import ROLE, ROLE_POLICY, SECRET, UNKNOWN, config_for, validate_resource


@pytest.fixture(scope="module")
def config(sample_fleet: Fleet, dev_settings: StackSettings) -> dict[str, Any]:
    return config_for(dev_settings, sample_fleet)


def test_builder_tags_pass(dev_settings: StackSettings, config: dict[str, Any]) -> None:
    for tags in (naming.tags(dev_settings, agent="crm", owner="team"), naming.tags(dev_settings),
                 naming.tags(dev_settings, agent="crm", owner="team", classification="payments")):
        assert validate_resource(required_tags, SECRET, {"name": "s", "tags": tags}, config=config) == []


def test_missing_tags_are_named(config: dict[str, Any]) -> None:
    [msg] = validate_resource(required_tags, ROLE, {"name": "raw", "tags": {"owner": "me"}}, name="raw-role", config=config)
    assert msg.startswith('aws:iam/role:Role "raw-role"') and "['agent', 'environment', 'managed-by']" in msg and "Fix:" in msg
    [msg] = validate_resource(required_tags, ROLE, {"name": "raw"}, config=config)  # a taggable type without tags
    assert "['agent', 'owner', 'environment', 'managed-by']" in msg


def test_wrong_values_are_caught(dev_settings: StackSettings, config: dict[str, Any]) -> None:
    tags = {**naming.tags(dev_settings, agent="crm", owner="t"), naming.TAG_MANAGED_BY: "terraform"}
    assert "'terraform'" in validate_resource(required_tags, SECRET, {"tags": tags}, config=config)[0]
    prod = {**naming.tags(dev_settings, agent="crm", owner="t"), naming.TAG_ENVIRONMENT: "prod"}
    assert "'prod'" in validate_resource(required_tags, SECRET, {"tags": prod}, config=config)[0]
    assert validate_resource(required_tags, SECRET, {"tags": prod}) == []  # environment known only from config


def test_provider_default_tags_count(dev_settings: StackSettings, config: dict[str, Any]) -> None:
    defaults = {"tags": naming.tags(dev_settings, agent="crm", owner="t")}
    assert validate_resource(required_tags, SECRET, {"name": "s"}, config=config, provider_props={"defaultTags": defaults}) == []
    import json

    encoded = {"defaultTags": json.dumps(defaults)}  # providers may carry objects JSON-encoded
    assert validate_resource(required_tags, SECRET, {"name": "s"}, config=config, provider_props=encoded) == []


def test_untaggable_resources_are_ignored(config: dict[str, Any]) -> None:
    assert validate_resource(required_tags, ROLE_POLICY, {"role": "r", "policy": "{}"}, config=config) == []
    assert validate_resource(required_tags, "vault:index/policy:Policy", {"name": "p"}, config=config) == []


@pytest.mark.parametrize("props", [{"tags": UNKNOWN}, {"tags": {"agent": UNKNOWN, "owner": "o"}}])
def test_unknown_tags_do_not_crash(config: dict[str, Any], props: dict[str, Any]) -> None:
    assert validate_resource(required_tags, SECRET, props, config=config) == []


def test_required_tags_is_advisory_by_default() -> None:
    assert required_tags.enforcement_level == EnforcementLevel.ADVISORY
