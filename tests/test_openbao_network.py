"""Vault logins bound to the agent's network, on a real OpenBao (issue 15).

The stack binds the agent's Vault login role with `token_bound_cidrs = plan.vault_bound_cidrs(agent)`.
OpenBao has no AWS auth method, so the same token parameter is exercised on AppRole (plus its
`secret_id_bound_cidrs`) and userpass. Clients connect from chosen loopback addresses (127.0.0.x,
all local): the server on 127.0.0.1 sees each one as the client's source address.
"""

from __future__ import annotations

from typing import Any, Iterator

import hvac
import pytest

from agentfleet.core import naming
from agentfleet.core.loader import build_fleet
from agentfleet.core.model import ResolvedAgent
from agentfleet.core.plan import vault_bound_cidrs, vault_policy
from agentfleet.core.settings import StackSettings
from tests.openbao_server import OpenBao, mount_kv_v2, outcome

pytestmark = pytest.mark.openbao

INSIDE, INSIDE_2, OUTSIDE = "127.0.0.2", "127.0.0.3", "127.0.0.9"
SCOPE = ["127.0.0.2/32", "127.0.0.3/32"]  # a range of two loopback hosts; 127.0.0.9 is outside it
VALUE = "not-a-real-credential"


@pytest.fixture(scope="module")
def agent() -> ResolvedAgent:
    fleet = build_fleet({"version": 1, "agents": [{
        "name": "scoped", "runtime": {"service": "ecs-tasks.amazonaws.com"},
        "network": {"vpcs": ["vpc-0abc1234def567890"], "vault_cidrs": SCOPE},
        "credentials": [{"name": "key", "service": "svc", "type": "api_key", "stores": ["vault"]}],
    }]})
    return fleet.agent("scoped")


@pytest.fixture(scope="module")
def bound(openbao: OpenBao, agent: ResolvedAgent, dev_settings: StackSettings) -> Iterator[dict[str, Any]]:
    s = StackSettings.model_validate({**dev_settings.model_dump(), "vault_mount": "netkv"})
    root = openbao.client()
    mount_kv_v2(root, s.vault_mount)
    root.secrets.kv.v2.create_or_update_secret(
        mount_point=s.vault_mount, path=naming.vault_path(s, agent.name, "key"), secret={naming.VAULT_VALUE_KEY: VALUE})
    policy = naming.vault_policy_name(s, agent.name)
    root.sys.create_or_update_policy(policy, vault_policy(s, agent))
    cidrs = vault_bound_cidrs(agent)
    assert cidrs == SCOPE
    for method in ("approle", "userpass"):
        if f"{method}/" not in root.sys.list_auth_methods()["data"]:
            root.sys.enable_auth_method(method)
    role = naming.vault_auth_role_name(s, agent.name)
    root.auth.approle.create_or_update_approle(
        role, token_policies=[policy], token_bound_cidrs=cidrs, secret_id_bound_cidrs=cidrs, token_ttl="5m")
    role_id = root.auth.approle.read_role_id(role)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id(role)["data"]["secret_id"]
    root.auth.userpass.create_or_update_user(role, password=secret_id, policies=[policy], token_bound_cidrs=cidrs)
    # The control: the same login without any bound range works from everywhere.
    root.auth.approle.create_or_update_approle("unbound", token_policies=[policy], token_ttl="5m")
    yield {"s": s, "role": role, "role_id": role_id, "secret_id": secret_id, "policy": policy,
           "unbound_role_id": root.auth.approle.read_role_id("unbound")["data"]["role_id"],
           "unbound_secret_id": root.auth.approle.generate_secret_id("unbound")["data"]["secret_id"]}
    root.sys.disable_secrets_engine(s.vault_mount)
    for method in ("approle", "userpass"):
        root.sys.disable_auth_method(method)


def _approle(openbao: OpenBao, source: str, role_id: str, secret_id: str) -> str:
    c = openbao.client_from(source)
    token: str = c.auth.approle.login(role_id, secret_id, use_token=False)["auth"]["client_token"]
    return token


def _read(openbao: OpenBao, source: str, token: str, b: dict[str, Any]) -> str:
    c = openbao.client_from(source, token)
    s = b["s"]
    return outcome(lambda: c.secrets.kv.v2.read_secret_version(
        mount_point=s.vault_mount, path=naming.vault_path(s, "scoped", "key"), raise_on_deleted_version=True))


def test_clients_bind_loopback_sources_only(openbao: OpenBao) -> None:
    """Whether the server sees the chosen source is proven by the pairs below: the same login works
    from 127.0.0.2 and is refused from 127.0.0.1 (the default source), which it could not be if the
    bound socket were ignored."""
    assert openbao.client_from(OUTSIDE, openbao.root_token).sys.read_health_status(method="GET")["sealed"] is False
    with pytest.raises(ValueError):
        openbao.client_from("10.0.0.1")


@pytest.mark.parametrize("source", [INSIDE, INSIDE_2])
def test_approle_login_from_inside_the_bound_range_reads_the_agents_secret(openbao: OpenBao, bound: dict[str, Any], source: str) -> None:
    token = _approle(openbao, source, bound["role_id"], bound["secret_id"])
    assert _read(openbao, source, token, bound) == "ok"
    # The token is bound too: the same token used from outside the range is refused.
    assert _read(openbao, OUTSIDE, token, bound) == "forbidden"


@pytest.mark.parametrize("source", [OUTSIDE, "127.0.0.1", "127.0.0.4"])
def test_approle_login_from_outside_the_bound_range_is_refused(openbao: OpenBao, bound: dict[str, Any], source: str) -> None:
    assert outcome(lambda: _approle(openbao, source, bound["role_id"], bound["secret_id"])) in ("forbidden", "InvalidRequest")
    # ... while an unbound role logs in from the very same address (the refusal is the range, not the client).
    token = _approle(openbao, source, bound["unbound_role_id"], bound["unbound_secret_id"])
    assert _read(openbao, source, token, bound) == "ok"


def test_userpass_login_bound_the_same_way(openbao: OpenBao, bound: dict[str, Any]) -> None:
    def login(source: str) -> str:
        c = openbao.client_from(source)
        token: str = c.auth.userpass.login(bound["role"], bound["secret_id"], use_token=False)["auth"]["client_token"]
        return token

    token = login(INSIDE)
    assert _read(openbao, INSIDE, token, bound) == "ok"
    assert outcome(lambda: login(OUTSIDE)) in ("forbidden", "InvalidRequest")
    assert isinstance(openbao.client(), hvac.Client)
