"""The odd-network signal (issue 15): one metric filter per environment, the role as a dimension,
one alarm per agent; the pattern is tested against CloudTrail records of both kinds (reads from
inside the expected set and from outside it), through tests/logfilter_eval.py, whose own rules are
tested first."""

from __future__ import annotations

import ipaddress
import json
import random
from pathlib import Path
from typing import Any

import pytest

from agentfleet.core import monitoring_plan as mp
from agentfleet.core import naming
from agentfleet.core.loader import build_fleet
from agentfleet.core.model import Fleet
from agentfleet.core.settings import StackSettings
from tests.conftest import REPO
from tests.logfilter_eval import PatternError, dimension_values, matches

RECORDS = REPO / "tests" / "fixtures" / "cloudtrail"
EP, VPC = "vpce-0abc1234def567890", "vpc-0abc1234def567890"

# ---- the evaluator ----


def test_evaluator_rules() -> None:
    e = {"a": "x-1", "n": {"b": "vpce-1"}, "z": None}
    assert matches('{ $.a = "x-*" }', e) and matches('{ $.a = "*1" }', e) and not matches('{ $.a = "x" }', e)
    assert matches('{ $.a != "y*" }', e) and not matches('{ $.a != "x*" }', e)
    assert not matches('{ $.missing = "*" }', e) and not matches('{ $.missing != "x" }', e)  # absent: both false
    assert matches('{ $.missing NOT EXISTS }', e) and not matches('{ $.n.b NOT EXISTS }', e) and matches('{ $.n.b EXISTS }', e)
    assert matches('{ $.z IS NULL }', e)
    assert matches('{ ($.a = "q" || $.n.b = "vpce-1") && $.a = "x*" }', e)
    assert not matches('{ $.a = "q" || ($.n.b = "vpce-1" && $.a = "y") }', e)
    for bad in ('{ $.a = "x" && $.a = "y" || $.a = "z" }', '{ $.a = 1 }', '{ $.a = %x% }', '$.a = "x"', '{ ($.a = "x" }'):
        with pytest.raises(PatternError):
            matches(bad, e)
    assert dimension_values({"Role": "$.n.b"}, e) == {"Role": "vpce-1"}
    with pytest.raises(PatternError):
        dimension_values({"Role": "$.nope"}, e)


# ---- the expected set ----


@pytest.mark.parametrize("cidr", ["203.0.113.0/24", "10.0.0.0/8", "198.51.100.7/32", "172.16.0.0/12",
                                  "192.0.2.0/23", "192.0.2.128/25", "100.64.0.0/10", "192.0.2.64/27"])
def test_ipv4_patterns_match_exactly_the_range_or_say_why_wider(cidr: str) -> None:
    patterns, note = mp.ipv4_patterns(cidr)
    net = ipaddress.IPv4Network(cidr)
    rng = random.Random(cidr)
    wider = net.supernet(new_prefix=(net.prefixlen // 8) * 8) if note else net
    samples = [str(net.network_address), str(net.broadcast_address),
               str(net.network_address - 1), str(net.broadcast_address + 1)]
    samples += [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(300)]
    samples += [str(net.network_address + rng.randrange(net.num_addresses)) for _ in range(100)]
    for ip in samples:
        if ip in ("255.255.255.255", "0.0.0.0"):
            continue
        hit = any(matches(f'{{ $.ip = "{p}" }}', {"ip": ip}) for p in patterns)
        assert hit is (ipaddress.IPv4Address(ip) in wider), (cidr, ip, patterns)
    assert len(patterns) <= mp.WILDCARDS_PER_RANGE_MAX
    assert (note is not None) is (cidr in ("192.0.2.128/25", "192.0.2.64/27", "100.64.0.0/10"))


def test_widening_only_when_splitting_needs_too_many_parts() -> None:
    assert mp.ipv4_patterns("192.0.2.0/23") == (["192.0.2.*", "192.0.3.*"], None)
    assert mp.ipv4_patterns("172.16.0.0/12")[1] is None and len(mp.ipv4_patterns("172.16.0.0/12")[0]) == 16
    patterns, note = mp.ipv4_patterns("192.0.2.128/25")
    assert patterns == ["192.0.2.*"] and note and "widened to 192.0.2.0/24" in note
    assert mp.ipv4_patterns("198.51.100.7/32") == (["198.51.100.7"], None)


def fleet(*agents: dict[str, Any]) -> Fleet:
    return build_fleet({"version": 1, "agents": list(agents)})


def agent(name: str, network: dict[str, Any] | None = None, stores: list[str] | None = None) -> dict[str, Any]:
    a: dict[str, Any] = {"name": name, "runtime": {"service": "ecs-tasks.amazonaws.com"},
                         "credentials": [{"name": "key", "service": "svc", "type": "api_key", "stores": stores or ["aws", "ssm"]}]}
    if network:
        a["network"] = network
    return a


SCOPED = agent("scoped", {"vpc_endpoints": [EP], "source_cidrs": ["203.0.113.0/24", "2001:db8::/32"]})
OPEN = agent("open")


def settings(dev: StackSettings, **over: Any) -> StackSettings:
    return StackSettings.model_validate({**dev.model_dump(), **over})


def test_expected_set_is_the_declared_scopes_plus_configuration(dev_settings: StackSettings) -> None:
    s = settings(dev_settings, expected_networks=("198.18.0.0/15", "vpce-0123456789abcdef0"))
    got = mp.expected_networks(s, fleet(SCOPED, OPEN))
    assert got.vpc_endpoints == ("vpce-0123456789abcdef0", EP)
    assert got.ip_patterns == ("198.18.*", "198.19.*", "203.0.113.*")
    assert len(got.notes) == 1 and "IPv6 range 2001:db8::/32" in got.notes[0]


def test_no_filter_while_nothing_is_expected(dev_settings: StackSettings) -> None:
    f = fleet(OPEN, agent("other"))
    assert mp.odd_network_filter(dev_settings, f) is None
    assert mp.odd_network_alarms(dev_settings, f) == []
    assert mp.odd_network_filter(settings(dev_settings, expected_networks=("192.0.2.0/24",)), f) is not None


def test_settings_validate_expected_networks(dev_settings: StackSettings) -> None:
    for bad in ("vpce-xyz", "10.0.0.1/8", "2001:db8::/32", "0.0.0.0/0", "10.0.0.0"):
        with pytest.raises(ValueError, match="expectedNetworks"):
            settings(dev_settings, expected_networks=(bad,))


# ---- one filter, dimension per role, one alarm per agent ----


def test_one_filter_per_environment_whatever_the_fleet_size(dev_settings: StackSettings) -> None:
    small = fleet(SCOPED, OPEN)
    big = fleet(SCOPED, *[agent(f"agent-{i:03d}") for i in range(300)])
    for f in (small, big):
        spec = mp.odd_network_filter(dev_settings, f)
        assert spec is not None and spec.dimensions == {mp.ROLE_DIMENSION: mp.ROLE_SELECTOR}
        assert spec.namespace == naming.audit_environment_namespace(dev_settings)
        alarms = mp.odd_network_alarms(dev_settings, f)
        assert [a.dimensions for a in alarms] == [{mp.ROLE_DIMENSION: naming.role_name(dev_settings, a.name)}
                                                  for a in sorted(f.agents, key=lambda a: a.name)]
        assert {(a.namespace, a.metric_name, a.threshold) for a in alarms} == {(spec.namespace, spec.metric_name, 1.0)}
    assert mp.odd_network_filter(dev_settings, small) == mp.odd_network_filter(dev_settings, big)  # same pattern
    assert mp.odd_network_alarms(settings(dev_settings, alarms=False), small) == []


def test_too_many_sources_is_an_error_with_the_fix(dev_settings: StackSettings) -> None:
    many = [agent(f"agent-{i:02d}", {"vpc_endpoints": [f"vpce-{i:017x}"]}) for i in range(40)]
    with pytest.raises(mp.FilterTooLong, match="share endpoints between agents"):
        mp.odd_network_filter(dev_settings, fleet(*many))


# ---- the pattern against CloudTrail records of both kinds ----

# record -> (counted as an odd-network read?, why)
VERDICTS: dict[str, tuple[bool, str]] = {
    "sm-read-via-declared-endpoint.json": (False, "through a declared endpoint"),
    "sm-read-from-declared-range.json": (False, "from a declared public range"),
    "sm-read-from-internet-denied.json": (True, "a scoped agent's read attempt from the internet (denied by IAM)"),
    "ssm-read-via-unknown-endpoint-denied.json": (True, "through an endpoint nobody declared"),
    "ssm-reads-from-internet.json": (True, "an unscoped agent reading from a source the stack has never seen"),
    "ssm-read-from-configured-source.json": (False, "from a source configured in expectedNetworks"),
    "sm-read-by-service-on-behalf.json": (False, "a service calling on the role's behalf"),
    "sm-read-by-another-environment.json": (False, "another environment's role"),
    "sm-describe-from-internet.json": (False, "metadata only, not a credential read"),
}


def test_every_recorded_event_has_a_verdict() -> None:
    assert sorted(p.name for p in RECORDS.glob("*.json")) == sorted(VERDICTS)
    kinds = {v for v, _ in VERDICTS.values()}
    assert kinds == {True, False}


@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_filter_against_recorded_cloudtrail_events(name: str, dev_settings: StackSettings) -> None:
    s = settings(dev_settings, expected_networks=("198.18.0.0/15",))
    spec = mp.odd_network_filter(s, fleet(SCOPED, OPEN))
    assert spec is not None
    record = json.loads((RECORDS / name).read_text())
    odd, why = VERDICTS[name]
    assert matches(spec.pattern, record) is odd, why
    if odd:
        role = dimension_values(spec.dimensions, record)[mp.ROLE_DIMENSION]
        owner = next(a for a in ("scoped", "open") if naming.role_name(s, a) == role)
        alarm = next(a for a in mp.odd_network_alarms(s, fleet(SCOPED, OPEN)) if a.name.endswith(f"-{owner}-odd-network"))
        assert alarm.dimensions[mp.ROLE_DIMENSION] == role


def test_without_the_configured_source_the_unscoped_read_is_odd(dev_settings: StackSettings) -> None:
    spec = mp.odd_network_filter(dev_settings, fleet(SCOPED, OPEN))
    assert spec is not None
    record = json.loads((RECORDS / "ssm-read-from-configured-source.json").read_text())
    assert matches(spec.pattern, record)


def test_learning_query_lists_the_sources_of_the_same_reads(dev_settings: StackSettings) -> None:
    q = mp.learn_sources_query(dev_settings)
    for e in mp.CREDENTIAL_READ_EVENTS:
        assert f'"{e}"' in q
    assert f"/^{naming.environment_role_prefix(dev_settings)}/" in q and "by role, vpcEndpointId, sourceIPAddress" in q
