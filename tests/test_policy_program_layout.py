"""The pack's settings when the engine passes no policy config: read from the program's fleet
component (`policyConfig`), never loosened by a second (forged) declaration."""

from __future__ import annotations

from typing import Any

from agentfleet.core.model import Fleet
from agentfleet.core.policy_config import policy_config
from agentfleet.core.settings import StackSettings
from agentfleet.policy.layout import layout, program_layout


def _declared(s: StackSettings, fleet: Fleet, **changes: Any) -> dict[str, Any]:
    return {**policy_config(s, fleet.classifications, ["111111111111"]), **changes}


def test_one_declaration_gives_the_stack_settings(dev_settings: StackSettings, sample_fleet: Fleet) -> None:
    lay = program_layout(layout({}), [_declared(dev_settings, sample_fleet)])
    assert lay.settings == layout(policy_config(dev_settings, sample_fleet.classifications)).settings
    assert lay.problem is None
    assert lay.trusted_accounts() == {dev_settings.aws_account_id, "111111111111"}


def test_declarations_that_disagree_are_a_problem(dev_settings: StackSettings, sample_fleet: Fleet) -> None:
    forged = _declared(dev_settings, sample_fleet, secretPrefix="other")
    lay = program_layout(layout({}), [_declared(dev_settings, sample_fleet), forged])
    assert lay.settings is None and lay.problem and "different stack settings" in lay.problem


def test_a_second_declaration_only_narrows(dev_settings: StackSettings, sample_fleet: Fleet) -> None:
    real = _declared(dev_settings, sample_fleet)
    forged = _declared(dev_settings, sample_fleet, trustedAccounts=["111111111111", "999999999999"],
                       classifications={"payments": 1000, "new-class": 500},
                       exceptions=[{"resource": "evil", "reason": "trust me"}])
    lay = program_layout(layout({}), [real, forged])
    assert lay.problem is None
    assert "999999999999" not in lay.trusted_accounts()
    assert lay.classifications["payments"] == 30  # a built-in limit is never relaxed
    assert lay.classifications["new-class"] == 500
    assert not lay.excepted("evil", "urn:evil")  # a program never grants itself an exception


def test_a_config_that_names_other_settings_than_the_program_is_a_problem(
        dev_settings: StackSettings, sample_fleet: Fleet) -> None:
    config = policy_config(dev_settings, sample_fleet.classifications)
    assert program_layout(layout(config), [_declared(dev_settings, sample_fleet)]).problem is None
    other = {**config, "environment": "prod"}
    problem = program_layout(layout(other), [_declared(dev_settings, sample_fleet)]).problem
    assert problem and "environment" in problem


def test_a_stack_with_alarm_subscriptions_passes_with_and_without_config(root: Any) -> None:
    """The builders' subscriptions are the reviewed ones: `check`'s config and, with no config, the
    fleet component's `policyConfig` carry `alarmSubscriptions`; another subscriber fails both ways."""
    from agentfleet.core.loader import load_fleet
    from agentfleet.core.settings import settings_from_config
    from agentfleet.runner import checkrun, mockrun

    subs = [{"protocol": "email", "endpoint": "oncall@example.com"}]
    run = mockrun.run_program("dev", root=root, config_overrides={"agentfleet:alarmSubscriptions": subs})
    assert len(run.of_type("aws:sns/topicSubscription:TopicSubscription")) == 1
    s = settings_from_config("dev", run.config.get)
    config = policy_config(s, load_fleet(root / "agents.yaml", s).classifications)
    for cfg in (config, {}):
        assert checkrun.check_program(run, cfg).exit_code == 0
    other = mockrun.run_program("dev", root=root, config_overrides={"agentfleet:alarmSubscriptions": subs})
    sub = next(r for r in other.resources if r.type == "aws:sns/topicSubscription:TopicSubscription")
    sub.props["endpoint"] = sub.outputs["endpoint"] = "https://evil.example/hook"
    for cfg in (config, {}):
        found = {v.policy for v in checkrun.check_program(other, cfg).mandatory}
        assert found == {"closed-world"}, (cfg, found)
