"""The fleet model after loading: defaults applied, and names that stay short, stable and unique."""

from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from agentfleet.core import naming
from agentfleet.core.loader import parse_fleet
from agentfleet.core.model import BUILTIN_CLASSIFICATIONS, Fleet
from agentfleet.core.plan import NameCollision, build_plan, check_unique_names
from agentfleet.core.settings import StackSettings
from tests.fleetgen import LONG_PREFIX, generate_fleet


def settings(**over: object) -> StackSettings:
    base: dict[str, object] = {"stack": "dev", "environment": "dev", "aws_region": "us-east-1", "aws_account_id": "123456789012"}
    base.update(over)
    return StackSettings.model_validate(base)


def fleet_of(body: str) -> Fleet:
    return parse_fleet("version: 1\n" + body, "<test>")


# ---- the sample fleet ----


def test_sample_fleet_agents_in_file_order(sample_fleet: Fleet) -> None:
    assert [a.name for a in sample_fleet.agents] == ["research", "crm", "billing", "support", "release-notes"]
    assert sum(len(a.credentials) for a in sample_fleet.agents) == 11
    assert not any(a.paused for a in sample_fleet.agents)


def test_sample_owner_defaults_to_defaults_owner(sample_fleet: Fleet) -> None:
    assert sample_fleet.agent("research").owner == "team-research"
    assert sample_fleet.agent("release-notes").owner == "platform-team"  # no owner: defaults.owner


def test_sample_stores_default_and_override(sample_fleet: Fleet) -> None:
    research = sample_fleet.agent("research")
    assert research.credentials[0].name == "openai"
    assert research.credentials[0].stores == ("aws", "vault")  # defaults.stores
    assert research.credentials[1].stores == ("aws",)  # explicit override
    assert sample_fleet.agent("release-notes").credentials[0].stores == ("vault",)


def test_sample_rotation_days_default_to_the_class_maximum(sample_fleet: Fleet) -> None:
    days = {(a.name, c.name): (c.classification, c.rotation_strategy, c.rotation_days, c.max_rotation_days)
            for a in sample_fleet.agents for c in a.credentials}
    assert days[("research", "search")] == ("internal", "manual", 90, 90)  # no days: class max
    assert days[("crm", "openai")] == ("customer-data", "openai", 30, 30)
    assert days[("support", "zendesk")] == ("customer-data", "manual", 30, 30)
    assert days[("support", "anthropic")] == ("confidential", "manual", 60, 90)  # explicit, below max
    assert days[("release-notes", "slack-bot")] == ("partner-data", "manual", 60, 60)  # custom class
    assert days[("billing", "webhook-signing")] == ("payments", "manual", 30, 30)  # Stripe issues it
    assert days[("billing", "ledger-api")] == ("payments", "generated", 30, 30)


def test_sample_classifications_are_builtins_plus_custom(sample_fleet: Fleet) -> None:
    assert sample_fleet.classifications == {**BUILTIN_CLASSIFICATIONS, "partner-data": 60}


def test_fleet_agent_lookup_and_frozen_model(sample_fleet: Fleet) -> None:
    with pytest.raises(KeyError):
        sample_fleet.agent("billing2")
    with pytest.raises(ValidationError):
        sample_fleet.agent("crm").paused = True  # type: ignore[misc]


# ---- defaults on small parsed files ----

ONE = """agents:
  - name: solo
    runtime: {service: ecs-tasks.amazonaws.com}
    credentials:
      - {name: k1, service: svc, type: token}
"""


def test_no_defaults_section_gives_unowned_both_stores_internal_manual() -> None:
    agent = fleet_of(ONE).agent("solo")
    cred = agent.credentials[0]
    assert agent.owner == "unowned"
    assert agent.paused is False
    assert (cred.classification, cred.rotation_strategy, cred.rotation_days) == ("internal", "manual", 90)
    assert cred.stores == ("aws", "vault")


def test_stores_are_deduplicated_and_sorted() -> None:
    body = ONE.replace("type: token}", "type: token, stores: [vault, aws, vault]}")
    assert fleet_of(body).agent("solo").credentials[0].stores == ("aws", "vault")
    body = "defaults: {stores: [vault]}\n" + ONE
    assert fleet_of(body).agent("solo").credentials[0].stores == ("vault",)


def test_tightened_builtin_class_applies_to_defaults_and_limits() -> None:
    body = "classifications:\n  internal: {max_rotation_days: 7}\n" + ONE
    fleet = fleet_of(body)
    cred = fleet.agent("solo").credentials[0]
    assert fleet.classifications["internal"] == 7
    assert (cred.rotation_days, cred.max_rotation_days) == (7, 7)


# ---- names: short ones unchanged, long ones shortened, stable and unique ----


def test_short_names_are_unchanged() -> None:
    s = settings()
    assert naming.role_name(s, "research") == "agents-dev-research"
    assert naming.rotation_role_name(s, "research") == "agents-dev-research-rotation"
    exactly_64 = "x" * (64 - len("agents-dev-"))
    assert naming.role_name(s, exactly_64) == f"agents-dev-{exactly_64}"
    assert len(naming.role_name(s, exactly_64 + "y")) == 64
    assert naming.role_name(s, exactly_64 + "y") != f"agents-dev-{exactly_64}"[:64]


def test_longest_names_fit_iam_and_are_pinned() -> None:
    # 20-char prefix + 20-char environment + 40-char agent = 82 characters before shortening.
    s = settings(environment="e" * 20, secret_prefix="p" * 20)
    name = naming.role_name(s, "a" * 40)
    assert len(name) <= naming.ROLE_NAME_MAX
    # Pinned: a changed algorithm would rename (replace) every long-named role on the next `up`.
    assert name == "pppppppppppppppppppp-eeeeeeeeeeeeeeeeeeee-aaaaaaaaaaaaa-43fc771a"
    assert naming.role_name(s, "a" * 40) == name


def lookalike_long_names(n: int) -> list[str]:
    """40-char names: a shared 22-char stem, then variations down to the very last character."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    out = []
    for combo in itertools.product(alphabet, repeat=3):
        tail = "".join(combo)
        out.append(f"research-agent-variant-{'x' * 14}{tail}")  # differ only in the last 3 chars
        if len(out) == n:
            break
    return out


@pytest.mark.parametrize("environment", ["dev", "production-eu-west-1"])
def test_many_long_lookalike_names_stay_unique(environment: str) -> None:
    s = settings(environment=environment)
    agents = lookalike_long_names(3000)
    assert all(len(a) == 40 for a in agents)
    roles = [naming.role_name(s, a) for a in agents]
    rotators = [naming.rotation_role_name(s, a) for a in agents]
    every = roles + rotators
    assert all(len(r) <= naming.ROLE_NAME_MAX for r in every)
    assert len(set(every)) == len(every)
    # The shortened names share a 50-character prefix: only the hash tells them apart.
    if environment != "dev":
        assert len({r[:50] for r in roles}) == 1
    # Deterministic: a second computation gives the same names.
    assert [naming.role_name(s, a) for a in agents] == roles


def test_generated_lookalike_fleet_plans_without_collisions() -> None:
    fleet = generate_fleet(60, 2)
    assert any(a.name.startswith(LONG_PREFIX) for a in fleet.agents)
    s = settings(environment="production-eu-west-1")
    plan = build_plan(fleet, s)
    roles = [a["iam_role_name"] for a in plan["agents"]]
    assert len(set(roles)) == len(roles) == 60
    assert all(len(r) <= naming.ROLE_NAME_MAX for r in roles)
    long_ones = [a for a in fleet.agents if len(f"agents-production-eu-west-1-{a.name}") > 64]
    assert long_ones and all(naming.role_name(s, a.name).startswith("agents-production-eu-west-1-") for a in long_ones)


# ---- collisions that shortening cannot fix are refused, never merged ----

TWO = """agents:
  - name: {first}
    runtime: {{service: ecs-tasks.amazonaws.com}}
    credentials: [{{name: k1, service: svc, type: token}}]
  - name: {second}
    runtime: {{service: ecs-tasks.amazonaws.com}}
    credentials: [{{name: openai, service: openai, type: api_key, rotation: {{strategy: openai}}}}]
"""


def test_agent_role_colliding_with_a_rotation_role_is_refused() -> None:
    fleet = fleet_of(TWO.format(first="research-rotation", second="research"))
    with pytest.raises(NameCollision, match="agents-dev-research-rotation"):
        check_unique_names(settings(), fleet)


def test_agent_role_colliding_with_the_shared_rotation_role_is_refused() -> None:
    # Agent `rotation-openai` would get the name of the shared role that rotates every openai key
    # (and with it a place in every openai secret's resource policy).
    fleet = fleet_of(TWO.format(first="rotation-openai", second="research"))
    check_unique_names(settings(), fleet)  # per-agent rotators: no shared role, no collision
    with pytest.raises(NameCollision, match="agents-dev-rotation-openai"):
        build_plan(fleet, settings(rotation_isolation="shared"))
