"""Vault isolation on a real OpenBao: every agent's token against every path of two fleets.

The sample fleet (environment `dev`) and a generated 36-agent look-alike fleet (environment
`lookalike`, one agent paused) share one KV v2 mount. Every credential path with the vault store
is written, every generated policy is loaded, and each agent gets a token holding only its policy.
Then the full matrix: each agent reads and lists exactly its own folder; every other read or list
(other agents, the environment folder, the mount root, the other environment) is refused with 403.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Iterator

import hvac
import hvac.exceptions
import pytest

from agentfleet.core import naming
from agentfleet.core.model import Fleet
from agentfleet.core.plan import build_plan
from agentfleet.core.settings import StackSettings
from tests.fleetgen import generate_fleet
from tests.openbao_server import OpenBao, mount_kv_v2, outcome

pytestmark = pytest.mark.openbao

PAUSED_INDEX = 5


@dataclass(frozen=True)
class Cred:
    agent_key: str  # "<env>/<agent>": agents of two environments may share a name
    path: str  # under the mount, e.g. dev/research/openai
    value: str


@dataclass
class AgentUnderTest:
    key: str
    name: str
    environment: str
    paused: bool
    policy_name: str
    folder: str  # dev/research (no trailing slash: what `list` takes)
    own: list[Cred]
    client: hvac.Client


@dataclass
class World:
    mount: str
    agents: list[AgentUnderTest]
    creds: list[Cred]
    environments: list[str]
    root: hvac.Client


def settings_for(base: StackSettings, environment: str) -> StackSettings:
    return StackSettings.model_validate({**base.model_dump(), "environment": environment})


@pytest.fixture(scope="module")
def world(openbao: OpenBao, sample_fleet: Fleet, dev_settings: StackSettings) -> Iterator[World]:
    root = openbao.client()
    mount = dev_settings.vault_mount
    mount_kv_v2(root, mount)
    kv = root.secrets.kv.v2
    fleets: list[tuple[Fleet, StackSettings]] = [
        (sample_fleet, dev_settings),
        (generate_fleet(36, 3, paused=(PAUSED_INDEX,)), settings_for(dev_settings, "lookalike")),
    ]
    agents: list[AgentUnderTest] = []
    creds: list[Cred] = []
    for fleet, s in fleets:
        plan = build_plan(fleet, s)
        for entry in plan["agents"]:
            key = f"{s.environment}/{entry['name']}"
            own = [
                Cred(key, c["vault_path"], f"dummy-{s.environment}-{entry['name']}-{c['name']}")
                for c in entry["credentials"] if c["vault_path"] is not None
            ]
            for cred in own:
                assert all(c["vault_mount"] == mount for c in entry["credentials"] if c["vault_path"])
                kv.create_or_update_secret(cred.path, secret={"value": cred.value}, mount_point=mount)
            root.sys.create_or_update_policy(entry["vault_policy_name"], entry["vault_policy"])
            token = root.auth.token.create(
                policies=[entry["vault_policy_name"]], no_default_policy=True, ttl="30m", renewable=False,
            )["auth"]["client_token"]
            agents.append(AgentUnderTest(
                key=key, name=entry["name"], environment=s.environment, paused=entry["paused"],
                policy_name=entry["vault_policy_name"],
                folder=naming.vault_agent_prefix(s, entry["name"]).rstrip("/"),
                own=own, client=openbao.client(token),
            ))
            creds += own
    yield World(mount, agents, creds, [s.environment for _, s in fleets], root)
    for a in agents:
        a.client.adapter.close()


def test_fleets_under_test_are_big_and_confusable(world: World) -> None:
    names = {a.name for a in world.agents if a.environment == "lookalike"}
    assert len(names) >= 30
    assert {"bill", "billing", "bill-ing", "billing2", "aa", "aaa", "a-a", "ab", "a-b"} <= names
    assert sum(a.paused for a in world.agents) == 1
    assert all(a.own for a in world.agents if a.environment == "lookalike")
    assert [a.name for a in world.agents if not a.own] == ["billing"]  # sample: Stripe keys in AWS only
    assert len(world.creds) >= 60


def test_tokens_carry_only_their_agent_policy(world: World) -> None:
    for a in world.agents:
        info = world.root.auth.token.lookup(a.client.token)["data"]
        assert info["policies"] == [a.policy_name], a.name
        # Not even the default policy: the token cannot look itself up.
        assert outcome(partial(a.client.auth.token.lookup_self)) == "forbidden"


def test_each_agent_reads_exactly_its_own_paths(world: World) -> None:
    """The full N x M matrix on data reads (values checked where allowed)."""

    def row(a: AgentUnderTest) -> list[tuple[str, str, str, str]]:
        wrong = []
        kv = a.client.secrets.kv.v2
        for cred in world.creds:
            expected = "ok" if cred.agent_key == a.key and not a.paused else "forbidden"
            got_value: list[str] = []

            def read(c: Cred = cred) -> None:
                got = kv.read_secret_version(c.path, mount_point=world.mount, raise_on_deleted_version=True)
                got_value.append(got["data"]["data"]["value"])

            got = outcome(read)
            if got != expected or (got == "ok" and got_value != [cred.value]):
                wrong.append((a.key, cred.path, expected, got))
        return wrong

    with ThreadPoolExecutor(max_workers=4) as pool:
        wrong = [w for rows in pool.map(row, world.agents) for w in rows]
    n = len(world.agents) * len(world.creds)
    assert n >= 40 * 60
    assert not wrong, f"{len(wrong)} of {n} decisions wrong, e.g. {wrong[:5]}"


def test_each_agent_lists_and_reads_metadata_of_only_its_own_folder(world: World) -> None:
    folders = sorted({a.folder for a in world.agents})

    def row(a: AgentUnderTest) -> list[tuple[str, str, str, str]]:
        wrong = []
        kv = a.client.secrets.kv.v2
        for folder in folders:
            mine = folder == a.folder and not a.paused
            keys: list[list[str]] = []

            def listing(f: str = folder) -> None:
                keys.append(sorted(kv.list_secrets(f, mount_point=world.mount)["data"]["keys"]))

            got = outcome(listing)
            expected = ("ok" if a.own else "missing") if mine else "forbidden"
            if got != expected:
                wrong.append((a.key, f"list {folder}", expected, got))
            elif got == "ok" and keys != [sorted(c.path.rsplit("/", 1)[1] for c in a.own)]:
                wrong.append((a.key, f"list {folder}", "own keys", str(keys)))
        for cred in world.creds:
            expected = "ok" if cred.agent_key == a.key and not a.paused else "forbidden"
            got = outcome(partial(kv.read_secret_metadata, cred.path, mount_point=world.mount))
            if got != expected:
                wrong.append((a.key, f"metadata {cred.path}", expected, got))
        return wrong

    with ThreadPoolExecutor(max_workers=4) as pool:
        wrong = [w for rows in pool.map(row, world.agents) for w in rows]
    assert not wrong, f"{len(wrong)} wrong, e.g. {wrong[:5]}"


def test_environment_folder_and_mount_root_are_closed(world: World) -> None:
    for a in world.agents:
        kv = a.client.secrets.kv.v2
        for env in world.environments:
            assert outcome(partial(kv.list_secrets, env, mount_point=world.mount)) == "forbidden", (a.key, env)
        assert outcome(lambda: kv.list_secrets("", mount_point=world.mount)) == "forbidden", a.key
        # Sibling prefixes of its own folder: `bill` must not see `billing`, nor `bil` see `bill`.
        assert outcome(lambda: kv.read_secret_version(a.folder + "x/k", mount_point=world.mount,
                                                      raise_on_deleted_version=True)) == "forbidden", a.key


def test_agents_cannot_write_or_delete_even_their_own(world: World) -> None:
    for a in world.agents:
        kv = a.client.secrets.kv.v2
        for own in a.own[:1]:
            assert outcome(lambda: kv.create_or_update_secret(own.path, secret={"value": "x"}, mount_point=world.mount)) == "forbidden"
            assert outcome(lambda: kv.delete_latest_version_of_secret(own.path, mount_point=world.mount)) == "forbidden"
            assert outcome(lambda: kv.delete_metadata_and_all_versions(own.path, mount_point=world.mount)) == "forbidden"
        assert outcome(lambda: kv.create_or_update_secret(f"{a.folder}/new", secret={"v": "x"}, mount_point=world.mount)) == "forbidden"
        assert outcome(lambda: a.client.sys.list_policies()) == "forbidden"
    # The values are untouched.
    for cred in world.creds:
        got = world.root.secrets.kv.v2.read_secret_version(cred.path, mount_point=world.mount, raise_on_deleted_version=True)
        assert got["data"]["data"] == {"value": cred.value}


def test_own_missing_path_is_404_not_403(world: World) -> None:
    """Inside its folder an agent may look (404 for a missing key): the 403s above are policy, not absence."""
    active = [a for a in world.agents if not a.paused]
    for a in active[:10]:
        got = outcome(lambda: a.client.secrets.kv.v2.read_secret_version(
            f"{a.folder}/no-such-key", mount_point=world.mount, raise_on_deleted_version=True))
        assert got == "missing", a.key


def test_default_policy_alone_reads_nothing(openbao: OpenBao, world: World) -> None:
    token = world.root.auth.token.create(policies=["default"], ttl="5m")["auth"]["client_token"]
    client = openbao.client(token)
    kv = client.secrets.kv.v2
    for cred in world.creds[:: max(1, len(world.creds) // 10)]:
        assert outcome(partial(kv.read_secret_version, cred.path, mount_point=world.mount,
                               raise_on_deleted_version=True)) == "forbidden"
    assert outcome(lambda: kv.list_secrets("", mount_point=world.mount)) == "forbidden"
