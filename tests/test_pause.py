"""Pausing one agent: only its access changes, nothing is deleted, unpausing restores it exactly.

Under mocks (the real program) and on a real OpenBao: the paused agent's token stops reading
its paths at once while every other agent keeps reading its own.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Iterator

import hvac
import hvac.exceptions
import pytest

from agentfleet.core import naming
from agentfleet.runner.mockrun import ProgramRun
from agentfleet.core.model import Fleet
from agentfleet.core.plan import build_plan, vault_token_policies
from agentfleet.core.settings import StackSettings
from tests.openbao_server import OpenBao, mount_kv_v2
from tests.pulumi_harness import (
    ROLE_POLICY,
    SECRET,
    SECRET_POLICY,
    SECRET_VERSION,
    VAULT_LOGIN,
    VAULT_POLICY,
    VAULT_SECRET,
    fingerprint,
    run_fleet,
    sample_doc,
)

PAUSED = "research"
VALUE_BEARING = (SECRET, SECRET_POLICY, SECRET_VERSION, VAULT_SECRET, "aws:kms/key:Key")


def with_pause(doc: dict[str, Any], agent: str, paused: bool) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for a in out["agents"]:
        if a["name"] == agent:
            a["paused"] = paused
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[ProgramRun, ProgramRun, ProgramRun]:
    folder = tmp_path_factory.mktemp("pause")
    base = sample_doc()
    before = run_fleet(folder, base)
    paused = run_fleet(folder, with_pause(base, PAUSED, True))
    after = run_fleet(folder, with_pause(base, PAUSED, False))
    return before, paused, after


def changed(a: ProgramRun, b: ProgramRun) -> dict[str, tuple[str, str]]:
    fa, fb = fingerprint(a), fingerprint(b)
    assert set(fa) == set(fb), "pausing must neither add nor remove resources"
    index = a.by_urn()
    return {urn: (index[urn].type, index[urn].name) for urn in fa if fa[urn] != fb[urn]}


def test_pause_changes_only_the_agents_access_documents(runs: tuple[ProgramRun, ProgramRun, ProgramRun]) -> None:
    before, paused, _ = runs
    diff = changed(before, paused)
    assert sorted(diff.values()) == sorted([
        (ROLE_POLICY, f"{PAUSED}/policy"),
        (VAULT_POLICY, f"{PAUSED}/vault-policy"),
        (VAULT_LOGIN, f"{PAUSED}/vault-login"),
    ])
    assert not any(t in VALUE_BEARING for t, _ in diff.values())  # secrets, keys, history untouched


def test_paused_role_gets_an_explicit_deny_and_vault_login_maps_to_nothing(
    runs: tuple[ProgramRun, ProgramRun, ProgramRun],
) -> None:
    _, paused, _ = runs
    doc = json.loads(paused.named(f"{PAUSED}/policy", ROLE_POLICY).props["policy"])
    deny = [s for s in doc["Statement"] if s["Effect"] == "Deny"]
    assert deny[0] == {"Sid": "AgentPaused", "Effect": "Deny", "Action": "*", "Resource": "*"}
    assert [s["Sid"] for s in deny] == ["AgentPaused", "DenyPrivilegeEscalation"]
    login = paused.named(f"{PAUSED}/vault-login", VAULT_LOGIN)
    assert login.props.get("tokenPolicies", []) == []
    assert login.props["tokenNoDefaultPolicy"] is True  # not even `default`: the login grants nothing
    hcl = paused.named(f"{PAUSED}/vault-policy", VAULT_POLICY).props["policy"]
    assert '"read"' not in hcl and '"list"' not in hcl and '["deny"]' in hcl
    for other in ("billing", "crm", "support", "release-notes"):
        other_doc = json.loads(paused.named(f"{other}/policy", ROLE_POLICY).props["policy"])
        assert [s["Sid"] for s in other_doc["Statement"] if s["Effect"] == "Deny"] == ["DenyPrivilegeEscalation"]


def test_unpause_restores_exactly(runs: tuple[ProgramRun, ProgramRun, ProgramRun]) -> None:
    before, _, after = runs
    assert changed(before, after) == {}


# ---- on a real OpenBao ----


def _reads(client: hvac.Client, mount: str, path: str) -> bool:
    try:
        client.secrets.kv.v2.read_secret_version(path=path, mount_point=mount, raise_on_deleted_version=True)
        return True
    except hvac.exceptions.Forbidden:
        return False


@pytest.fixture()
def vault_world(openbao: OpenBao, sample_fleet: Fleet, dev_settings: StackSettings) -> Iterator[tuple[hvac.Client, dict[str, hvac.Client], StackSettings]]:
    s = StackSettings.model_validate({**dev_settings.model_dump(), "environment": "pausetest", "vault_mount": "kvpause"})
    root = openbao.client()
    mount_kv_v2(root, s.vault_mount)
    plan = build_plan(sample_fleet, s)
    tokens: dict[str, hvac.Client] = {}
    for a in plan["agents"]:
        for c in a["credentials"]:
            if c["vault_path"]:
                root.secrets.kv.v2.create_or_update_secret(c["vault_path"], secret={"value": "dummy"}, mount_point=s.vault_mount)
        root.sys.create_or_update_policy(a["vault_policy_name"], a["vault_policy"])
        token = root.auth.token.create(policies=[a["vault_policy_name"]], no_default_policy=True, ttl="30m")["auth"]["client_token"]
        tokens[a["name"]] = openbao.client(token)
    yield root, tokens, s
    root.sys.disable_secrets_engine(s.vault_mount)


@pytest.mark.openbao
def test_paused_agent_token_stops_reading_others_keep_reading(
    vault_world: tuple[hvac.Client, dict[str, hvac.Client], StackSettings], sample_fleet: Fleet,
) -> None:
    root, tokens, s = vault_world
    paths = {a.name: [naming.vault_path(s, a.name, c.name) for c in a.credentials if "vault" in c.stores]
             for a in sample_fleet.agents}
    assert paths[PAUSED], "the paused agent must have Vault credentials for this test to mean anything"

    def matrix() -> dict[str, bool]:
        return {f"{a}:{p}": _reads(tokens[a], s.vault_mount, p) for a, ps in paths.items() for p in ps}

    assert all(matrix().values())
    paused_fleet = Fleet(source="paused", classifications=sample_fleet.classifications, agents=tuple(
        a.model_copy(update={"paused": a.name == PAUSED}) for a in sample_fleet.agents))
    paused_plan = {a["name"]: a for a in build_plan(paused_fleet, s)["agents"]}
    # What `pulumi up` does on pause: rewrite the agent's policy (same name) in place.
    root.sys.create_or_update_policy(paused_plan[PAUSED]["vault_policy_name"], paused_plan[PAUSED]["vault_policy"])
    got = matrix()
    assert {k for k, ok in got.items() if not ok} == {f"{PAUSED}:{p}" for p in paths[PAUSED]}
    # The AWS-auth login role of a paused agent maps to no policy at all.
    assert vault_token_policies(s, paused_fleet.agent(PAUSED)) == []
    assert vault_token_policies(s, paused_fleet.agent("crm")) == [naming.vault_policy_name(s, "crm")]
    # Unpause: the original policy back, the same token reads again.
    active = {a["name"]: a for a in build_plan(sample_fleet, s)["agents"]}
    root.sys.create_or_update_policy(active[PAUSED]["vault_policy_name"], active[PAUSED]["vault_policy"])
    assert all(matrix().values())


def test_stack_without_vault_aws_auth_creates_no_login_roles(tmp_path: Path) -> None:
    """OpenBao 2.x has no AWS auth plugin: `vaultAwsAuth: false` must drop backend and roles only."""
    with_auth = run_fleet(tmp_path, sample_doc())
    without = run_fleet(tmp_path, sample_doc(), **{"agentfleet:vaultAwsAuth": "false"})
    agent_logins = [r for r in with_auth.of_type(VAULT_LOGIN) if not r.name.endswith("/rotation/vault-login")]
    assert len(agent_logins) == 5 and len(with_auth.of_type("vault:index/authBackend:AuthBackend")) == 1
    assert without.of_type(VAULT_LOGIN) == [] and without.of_type("vault:index/authBackend:AuthBackend") == []
    gone = {r.urn for r in with_auth.resources} - {r.urn for r in without.resources}
    assert {with_auth.by_urn()[u].type for u in gone} == {VAULT_LOGIN, "vault:index/authBackend:AuthBackend"}
    assert len(without.of_type(VAULT_POLICY)) == len(with_auth.of_type(VAULT_POLICY))
