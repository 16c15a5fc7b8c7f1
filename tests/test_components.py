"""The Pulumi program under mocks: inventory, wiring, documents, options, stability.

Every test runs the real `__main__.py` through `agentfleet.runner.mockrun` (offline), then checks what
the engine would have received. Exact inventories are about this package's own components, so
those runs switch the fleet's extensions (rotation, monitoring) off; whole-program properties
(explicit providers, unique names, add/remove/reorder stability, no invokes) run with every
extension on, so they hold for whatever is plugged in.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterator

import pytest

from agentfleet.components import fleet as fleet_module
from agentfleet.core import iam_documents as iam
from agentfleet.core import naming
from agentfleet.core import plan
from agentfleet.core.loader import load_fleet
from agentfleet.runner.mockrun import ProgramRun, RegisteredResource, run_program
from agentfleet.core.model import Fleet
from agentfleet.core.settings import StackSettings, load_stack_settings
from tests.pulumi_harness import (
    AGENT_ACCESS, AGENT_FLEET, ENVIRONMENT, KMS_ALIAS, KMS_KEY, RANDOM_PASSWORD, ROLE, ROLE_POLICY,
    SECRET, SECRET_POLICY, SECRET_VERSION, VAULT_AUTH, VAULT_LOGIN, VAULT_MOUNT, VAULT_POLICY,
    VAULT_SECRET, agent_resources, fingerprint, json_prop, only, run_fleet, sample_doc, write_fleet,
)

from tests.conftest import ROOT

# A fleet exercising every store/strategy combination, a paused agent and a vault-only agent.
EXTRA_AGENTS: list[dict[str, Any]] = [
    {
        "name": "ops",
        "owner": "team-ops",
        "runtime": {"service": "ecs-tasks.amazonaws.com"},
        "credentials": [
            {"name": "webhook", "service": "internal", "type": "token", "classification": "confidential",
             "rotation": {"strategy": "generated"}, "stores": ["aws", "vault"]},
            {"name": "pager", "service": "pagerduty", "type": "api_key", "stores": ["vault"]},
        ],
    },
    {
        "name": "frozen",
        "paused": True,
        "runtime": {"role_arns": ["arn:aws:iam::123456789012:role/runner-frozen"]},
        # Each stack's account runs it with its own role (a prod stack never trusts dev's).
        "environments": {"prod": {"runtime": {"role_arns": ["arn:aws:iam::210987654321:role/runner-frozen"]}},
                         "local": {"runtime": {"role_arns": ["arn:aws:iam::000000000000:role/runner-frozen"]}}},
        "credentials": [{"name": "key", "service": "openai", "type": "api_key", "rotation": {"strategy": "openai"}}],
    },
]

OIDC_PROVIDER = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
TAGGABLE = {ROLE, SECRET, KMS_KEY, OIDC_PROVIDER}
NOT_TAGGABLE = {ROLE_POLICY, SECRET_POLICY, SECRET_VERSION, KMS_ALIAS}
VALUE_PROPS = {SECRET_VERSION: ("secretString", "secretBinary", "secretStringWo"), VAULT_SECRET: ("dataJson", "data")}
IGNORED_WITH = {"secretStringWo": "secretStringWoVersion"}
"""A write-only input is never diffed; its version is what a change would bump, so that is ignored."""


def mixed_doc() -> dict[str, Any]:
    doc = sample_doc()
    doc["agents"] = doc["agents"] + copy.deepcopy(EXTRA_AGENTS)
    return doc


def core_only(mp: pytest.MonkeyPatch) -> None:
    """Only this package's components: no extension modules (rotation, monitoring)."""
    mp.setattr(fleet_module, "DEFAULT_EXTENSIONS", ())


@pytest.fixture
def core(monkeypatch: pytest.MonkeyPatch) -> None:
    core_only(monkeypatch)


@pytest.fixture(scope="module")
def dev_run() -> Iterator[ProgramRun]:
    with pytest.MonkeyPatch.context() as mp:
        core_only(mp)
        yield run_program("dev")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ProgramRun, Fleet]]:
    folder = tmp_path_factory.mktemp("mixed")
    path = write_fleet(folder, mixed_doc(), "mixed.yaml")
    with pytest.MonkeyPatch.context() as mp:
        core_only(mp)
        yield run_program("dev", config_overrides={"agentfleet:fleetFile": str(path)}), load_fleet(path)


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[ProgramRun, Fleet]:
    """The whole program as deployed, every extension module included."""
    folder = tmp_path_factory.mktemp("full")
    path = write_fleet(folder, mixed_doc(), "mixed.yaml")
    return run_program("dev", config_overrides={"agentfleet:fleetFile": str(path)}), load_fleet(path)


@pytest.fixture(scope="module")
def settings() -> StackSettings:
    return load_stack_settings(ROOT / "Pulumi.dev.yaml", "dev")


def key_arn(run: ProgramRun) -> str:
    (key,) = run.of_type(KMS_KEY)
    return str(key.outputs["arn"])


# ---- the runner really ran ----


def test_program_evaluated_without_invokes(full: tuple[ProgramRun, Fleet]) -> None:
    run, fleet = full
    assert len(run.of_type(AGENT_ACCESS)) == len(fleet.agents) == 7
    assert run.invokes == []  # no blocking invokes: they make evaluation quadratic
    assert run.outputs["environment"] == "dev"


# ---- inventory ----


def expected_inventory(fleet: Fleet) -> dict[str, dict[str, int]]:
    """Per agent, type -> count, computed from the model (what the issue promises)."""
    out: dict[str, dict[str, int]] = {}
    for a in fleet.agents:
        inv = {ROLE: 1, ROLE_POLICY: 1, VAULT_POLICY: 1, VAULT_LOGIN: 1}
        for c in a.credentials:
            gen = c.rotation_strategy == "generated"
            if "aws" in c.stores:
                inv[SECRET] = inv.get(SECRET, 0) + 1
                inv[SECRET_POLICY] = inv.get(SECRET_POLICY, 0) + 1
                if gen:
                    inv[SECRET_VERSION] = inv.get(SECRET_VERSION, 0) + 1
            if gen:
                inv[RANDOM_PASSWORD] = inv.get(RANDOM_PASSWORD, 0) + 1
                if "vault" in c.stores:
                    inv[VAULT_SECRET] = inv.get(VAULT_SECRET, 0) + 1
        out[a.name] = inv
    return out


def actual_inventory(run: ProgramRun, agent: str) -> dict[str, int]:
    inv: dict[str, int] = {}
    for r in agent_resources(run, agent):
        inv[r.type] = inv.get(r.type, 0) + 1
    return inv


def test_inventory_per_agent_and_store(mixed: tuple[ProgramRun, Fleet]) -> None:
    run, fleet = mixed
    for agent, inv in expected_inventory(fleet).items():
        assert actual_inventory(run, agent) == inv, agent
    # Spot-check the named resources of each store combination.
    only(run, SECRET, "ops/webhook/secret")
    only(run, SECRET_VERSION, "ops/webhook/initial-version")
    only(run, VAULT_SECRET, "ops/webhook/vault-initial-version")
    names = {r.name for r in run.resources}
    assert not any(n.startswith("ops/pager/") for n in names)  # external vault value: nothing from code
    assert "release-notes/github/secret" not in names


def test_environment_resources(dev_run: ProgramRun, settings: StackSettings) -> None:
    (env,) = dev_run.of_type(ENVIRONMENT)
    kinds = sorted(r.type for r in dev_run.children(env.urn))
    # The sample's release-notes agent runs in GitHub Actions: its trust names the account's GitHub
    # OIDC provider, which the stack creates (no `githubOidcProviderArn` set).
    assert kinds == sorted([KMS_KEY, KMS_ALIAS, VAULT_MOUNT, VAULT_AUTH, OIDC_PROVIDER])
    provider = only(dev_run, OIDC_PROVIDER, "oidc-provider/token.actions.githubusercontent.com")
    assert provider.props["url"] == "https://token.actions.githubusercontent.com"
    key = only(dev_run, KMS_KEY, "kms-key")
    assert key.props["enableKeyRotation"] is True
    alias = only(dev_run, KMS_ALIAS, "kms-alias")
    assert alias.props["name"] == naming.kms_alias(settings)
    assert alias.props["targetKeyId"] == key.outputs["keyId"]
    mount = only(dev_run, VAULT_MOUNT, "kv-mount")
    assert (mount.props["path"], mount.props["type"], mount.props["options"]) == ("kv", "kv", {"version": "2"})
    auth = only(dev_run, VAULT_AUTH, "aws-auth")
    assert (auth.props["type"], auth.props["path"]) == ("aws", settings.vault_aws_auth_path)


def test_existing_mount_and_auth_backend_are_reused(core: None, tmp_path: Path) -> None:
    run = run_fleet(tmp_path, sample_doc(), **{
        "agentfleet:vaultMountExists": "true", "agentfleet:vaultAwsAuthExists": "true",
        "agentfleet:vaultMount": "secret", "agentfleet:vaultAwsAuthPath": "aws-prod",
    })
    assert run.of_type(VAULT_MOUNT) == [] and run.of_type(VAULT_AUTH) == []
    assert {r.props["backend"] for r in run.of_type(VAULT_LOGIN)} == {"aws-prod"}
    assert all('path "secret/data/dev/' in r.props["policy"] for r in run.of_type(VAULT_POLICY))


def test_kms_key_policy_is_account_admin_only(dev_run: ProgramRun, settings: StackSettings) -> None:
    doc = json_prop(only(dev_run, KMS_KEY, "kms-key"), "policy")
    assert doc == plan.kms_key_policy(settings)
    (stmt,) = doc["Statement"]
    assert stmt["Principal"] == {"AWS": f"arn:aws:iam::{settings.aws_account_id}:root"}
    assert stmt["Effect"] == "Allow"
    assert "Condition" not in stmt  # uses are granted by IAM policies (agents: via Secrets Manager only)


# ---- parents ----


def test_everything_lives_under_the_fleet_component(full: tuple[ProgramRun, Fleet]) -> None:
    """Whatever extensions add, nothing but providers and the fleet itself sits at the top."""
    run, _ = full
    (top,) = run.of_type(AGENT_FLEET)
    below = {r.urn for r in run.descendants(top.urn)}
    for r in run.resources:
        if r.type.startswith("pulumi:providers:") or r.type == AGENT_FLEET:
            assert r.parent == run.stack_urn, r.name
        else:
            assert r.urn in below, f"{r.type} {r.name} is not under the AgentFleet component"


def test_every_resource_is_parented_to_its_component(mixed: tuple[ProgramRun, Fleet]) -> None:
    run, fleet = mixed
    by_urn = run.by_urn()
    (top,) = run.of_type(AGENT_FLEET)
    assert top.parent == run.stack_urn
    for r in run.resources:
        if r.type.startswith("pulumi:providers:") or r.type == AGENT_FLEET:
            assert r.parent == run.stack_urn, r.name
        elif r.type in (AGENT_ACCESS, ENVIRONMENT):
            assert r.parent == top.urn, r.name
        else:
            parent = by_urn[r.parent or ""]
            assert parent.type in (AGENT_ACCESS, ENVIRONMENT), r.name
            if parent.type == AGENT_ACCESS:
                assert r.name.startswith(f"{parent.name}/"), (r.name, parent.name)
    assert {r.name for r in run.of_type(AGENT_ACCESS)} == {a.name for a in fleet.agents}


# ---- documents ----


def test_inline_policy_is_least_privilege(mixed: tuple[ProgramRun, Fleet], settings: StackSettings) -> None:
    run, fleet = mixed
    key = key_arn(run)
    all_secret_names = {r.props["name"] for r in run.of_type(SECRET)}
    for a in fleet.agents:
        policy_res = only(run, ROLE_POLICY, f"{a.name}/policy")
        assert policy_res.props["role"] == naming.role_name(settings, a.name)
        doc = json_prop(policy_res, "policy")
        assert doc == plan.agent_iam_policy(settings, a, key)
        stmts = {s["Sid"]: s for s in doc["Statement"]}
        own = {naming.secret_name(settings, a.name, c.name) for c in a.credentials if "aws" in c.stores}
        if a.paused:
            assert stmts["AgentPaused"] == {"Sid": "AgentPaused", "Effect": "Deny", "Action": "*", "Resource": "*"}
        read = stmts["ReadOwnSecrets"]
        resources = read["Resource"] if isinstance(read["Resource"], list) else [read["Resource"]]
        assert {r.split(":secret:", 1)[1].removesuffix("-??????") for r in resources} == own
        assert all(r.endswith("-??????") for r in resources)
        others = all_secret_names - own
        assert not any(o in r for o in others for r in resources), a.name  # negative: nobody else's
        kms = stmts["DecryptOwnSecretsViaSecretsManager"]
        assert kms["Resource"] == key and kms["Action"] == "kms:Decrypt"
        assert kms["Condition"]["StringEquals"] == {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
        # Decrypt only data keys of its own secrets: the encryption context names exactly those ARNs.
        assert set(iam_list(kms["Condition"]["StringLike"]["kms:EncryptionContext:SecretARN"])) == set(resources)
        assert stmts["DenyPrivilegeEscalation"]["Effect"] == "Deny" and "iam:PutRolePolicy" in stmts["DenyPrivilegeEscalation"]["Action"]
        assert set(stmts) <= {"AgentPaused", "ReadOwnSecrets", "DecryptOwnSecretsViaSecretsManager", "PublishOwnUsageMetrics", "DenyPrivilegeEscalation"}


def test_secret_resource_policy_denies_all_but_owner(mixed: tuple[ProgramRun, Fleet], settings: StackSettings) -> None:
    run, fleet = mixed
    all_roles = {naming.role_arn(settings, naming.role_name(settings, a.name)) for a in fleet.agents}
    for a in fleet.agents:
        own_role = naming.role_arn(settings, naming.role_name(settings, a.name))
        for c in a.credentials:
            if "aws" not in c.stores:
                continue
            secret = only(run, SECRET, f"{a.name}/{c.name}/secret")
            pol = only(run, SECRET_POLICY, f"{a.name}/{c.name}/secret-policy")
            assert pol.props["secretArn"] == secret.outputs["arn"]
            assert pol.props["blockPublicPolicy"] is True
            doc = json_prop(pol, "policy")
            assert doc == plan.secret_resource_policy(settings, a, c)
            (stmt,) = doc["Statement"]
            assert (stmt["Effect"], stmt["Action"], stmt["Principal"]) == ("Deny", "secretsmanager:GetSecretValue", {"AWS": "*"})
            allowed = set(stmt["Condition"]["StringNotEquals"]["aws:PrincipalArn"])
            expected = {own_role, *settings.admin_principals}
            if c.rotation_strategy != "manual":
                expected.add(naming.role_arn(settings, naming.rotation_role_name(settings, a.name)))
            assert allowed == expected
            assert not (allowed & (all_roles - {own_role})), "another agent's role may read"


def test_trust_policies(mixed: tuple[ProgramRun, Fleet], settings: StackSettings) -> None:
    run, fleet = mixed
    for a in fleet.agents:
        role = only(run, ROLE, f"{a.name}/role")
        assert role.props["name"] == naming.role_name(settings, a.name)
        assert role.props["maxSessionDuration"] == settings.max_session_seconds
        doc = json_prop(role, "assumeRolePolicy")
        assert doc == plan.trust_policy(settings, a)
        (stmt,) = doc["Statement"]
        assert stmt["Principal"] != "*" and stmt["Principal"].get("AWS") != "*"
    research = json_prop(only(run, ROLE, "research/role"), "assumeRolePolicy")["Statement"][0]
    assert research["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    crm = json_prop(only(run, ROLE, "crm/role"), "assumeRolePolicy")["Statement"][0]
    assert crm["Principal"] == {"AWS": "arn:aws:iam::123456789012:role/agent-runner-crm"}
    gh = json_prop(only(run, ROLE, "release-notes/role"), "assumeRolePolicy")["Statement"][0]
    assert gh["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert gh["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] == (
        "repo:example-org/product:ref:refs/heads/main"
    )


def test_vault_policy_and_login(mixed: tuple[ProgramRun, Fleet], settings: StackSettings) -> None:
    run, fleet = mixed
    for a in fleet.agents:
        pol = only(run, VAULT_POLICY, f"{a.name}/vault-policy")
        assert pol.props == {"name": naming.vault_policy_name(settings, a.name), "policy": plan.vault_policy(settings, a)}
        login = only(run, VAULT_LOGIN, f"{a.name}/vault-login")
        role = only(run, ROLE, f"{a.name}/role")
        assert login.props["authType"] == "iam"
        assert login.props["boundIamPrincipalArns"] == [role.outputs["arn"]]  # this agent's role only
        assert login.props["role"] == naming.vault_auth_role_name(settings, a.name)
        assert login.props["tokenTtl"] == settings.vault_token_ttl_seconds
        assert login.props["tokenMaxTtl"] == 2 * settings.vault_token_ttl_seconds
        assert login.props.get("tokenPolicies", []) == plan.vault_token_policies(settings, a)
        assert role.urn in login.dependencies
    assert only(run, VAULT_LOGIN, "frozen/vault-login").props.get("tokenPolicies", []) == []


def test_every_secret_uses_the_environment_key(mixed: tuple[ProgramRun, Fleet]) -> None:
    run, _ = mixed
    secrets = run.of_type(SECRET)
    assert secrets
    assert {s.props["kmsKeyId"] for s in secrets} == {key_arn(run)}


# ---- values: never from code for external credentials, never undone after a rotation ----


def iam_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else [v]


def test_value_resources_ignore_later_changes(mixed: tuple[ProgramRun, Fleet]) -> None:
    run, _ = mixed
    value_bearing = [r for r in run.resources if r.type in VALUE_PROPS]
    assert {r.type for r in value_bearing} == set(VALUE_PROPS)
    for r in value_bearing:
        present = [p for p in VALUE_PROPS[r.type] if p in r.props]
        assert present, r.name
        assert {IGNORED_WITH.get(p, p) for p in present} <= set(r.ignore_changes), r.name
        assert not r.delete_before_replace


def test_a_rotated_value_is_never_undone(mixed: tuple[ProgramRun, Fleet]) -> None:
    """The three ways a later `pulumi up` could overwrite a rotated value, each closed."""
    run, _ = mixed
    for v in run.of_type(SECRET_VERSION):
        # 1. a changed input is ignored (the write-only value is never diffed, its version is ignored);
        assert {"secretStringWoVersion", "versionStages"} <= set(v.ignore_changes)
        # 1b. the value is write-only: it reaches AWS but never the Pulumi state;
        assert "secretString" not in v.props and v.props["secretStringWoVersion"] == 1
        # 2. the initial version never claims AWSCURRENT (AWS gives the first version that label by
        #    itself), so even a re-created initial version cannot displace a rotated value;
        assert v.props["versionStages"] == [naming.INITIAL_VERSION_STAGE]
        assert "secretStringWo" in v.secret_props
    # 3. the generated value itself never changes: no keepers, so nothing regenerates it.
    for p in run.of_type(RANDOM_PASSWORD):
        assert "keepers" not in p.props
    for s in run.of_type(VAULT_SECRET):
        assert s.props["disableRead"] is True  # a rotated Vault value is never read into state
        assert "dataJson" in s.secret_props


def test_generated_values_flow_from_random_only(mixed: tuple[ProgramRun, Fleet]) -> None:
    run, _ = mixed
    by_urn = run.by_urn()
    for v in run.of_type(SECRET_VERSION) + run.of_type(VAULT_SECRET):
        sources = [by_urn[d] for d in v.dependencies if d in by_urn]
        assert any(s.type == RANDOM_PASSWORD for s in sources), v.name


def test_value_targets_cover_exactly_external_credentials(mixed: tuple[ProgramRun, Fleet], settings: StackSettings) -> None:
    from agentfleet.operate.values import value_targets

    _, fleet = mixed
    targets = value_targets(plan.build_plan(fleet, settings))
    got = {(t.agent, t.credential, st) for t in targets for st in t.stores}
    want = {(a.name, c.name, st) for a in fleet.agents for c in a.credentials
            for st in c.stores if c.rotation_strategy != "generated"}
    assert got == want
    for t in targets:
        if "aws" in t.stores:
            assert t.secret_name == naming.secret_name(settings, t.agent, t.credential)
        if "vault" in t.stores:
            assert (t.vault_mount, t.vault_path) == (settings.vault_mount, naming.vault_path(settings, t.agent, t.credential))


# ---- removal safety by stack ----


PROTECTABLE = {SECRET, KMS_KEY, VAULT_MOUNT, VAULT_AUTH, VAULT_SECRET}


@pytest.mark.parametrize("stack, window, protected", [("dev", 30, False), ("prod", 30, True), ("local", 7, False)])
def test_recovery_window_and_protect_by_stack(core: None, tmp_path: Path, stack: str, window: int, protected: bool) -> None:
    run = run_fleet(tmp_path, mixed_doc(), stack=stack)
    for r in run.resources:
        if r.type in PROTECTABLE:
            assert r.protect is protected, (stack, r.name)
        elif r.custom:
            assert r.protect is False, (stack, r.name)  # only what holds or guards data
    assert {r.props["recoveryWindowInDays"] for r in run.of_type(SECRET)} == {window}


def test_recovery_window_comes_from_config(core: None, tmp_path: Path) -> None:
    run = run_fleet(tmp_path, sample_doc(), **{"agentfleet:recoveryWindowDays": "14"})
    assert {r.props["recoveryWindowInDays"] for r in run.of_type(SECRET)} == {14}


# ---- tags ----


def test_tags_on_every_taggable_resource(mixed: tuple[ProgramRun, Fleet], settings: StackSettings) -> None:
    run, fleet = mixed
    aws_types = {r.type for r in run.resources if r.custom and r.package == "aws" and not r.type.startswith("pulumi:")}
    assert aws_types <= TAGGABLE | NOT_TAGGABLE, f"decide whether these take tags: {aws_types - TAGGABLE - NOT_TAGGABLE}"
    by_urn = run.by_urn()
    for r in run.resources:
        if r.type not in TAGGABLE:
            continue
        tags = r.props["tags"]
        for key in naming.REQUIRED_TAGS:
            assert tags.get(key), (r.name, key)
        assert tags[naming.TAG_ENVIRONMENT] == "dev" and tags[naming.TAG_MANAGED_BY] == naming.MANAGED_BY
        parent = by_urn[r.parent or ""]
        if parent.type == AGENT_ACCESS:
            agent = fleet.agent(parent.name)
            assert (tags[naming.TAG_AGENT], tags[naming.TAG_OWNER]) == (agent.name, agent.owner)
        else:
            assert tags[naming.TAG_AGENT] == naming.SHARED_AGENT_TAG
    for a in fleet.agents:
        for c in a.credentials:
            if "aws" in c.stores:
                tags = only(run, SECRET, f"{a.name}/{c.name}/secret").props["tags"]
                assert tags[naming.TAG_CLASSIFICATION] == c.classification
    for s in run.of_type(VAULT_SECRET):
        assert s.props["customMetadata"]["data"][naming.TAG_CLASSIFICATION]


# ---- providers ----


def test_every_resource_uses_an_explicit_provider(full: tuple[ProgramRun, Fleet]) -> None:
    run, _ = full
    providers = {r.urn: r for r in run.resources if r.type.startswith("pulumi:providers:")}
    assert sorted(p.name for p in providers.values()) == ["aws", "random", "vault"]
    for r in run.resources:
        if not r.custom or r.urn in providers:
            continue
        assert r.provider_urn in providers, f"{r.name} would use a default provider"
        assert providers[r.provider_urn].type == f"pulumi:providers:{r.package}", r.name
    for comp in run.of_type(AGENT_ACCESS) + run.of_type(AGENT_FLEET):
        assert set(comp.providers) == {"aws", "vault", "random"}  # inherited by anything added below


def test_provider_settings_from_stack_config(core: None, tmp_path: Path) -> None:
    local = run_fleet(tmp_path, sample_doc(), stack="local")
    aws_p = only(local, "pulumi:providers:aws", "aws").props
    assert aws_p["region"] == "us-east-1"
    assert aws_p["skipCredentialsValidation"] == "true" and aws_p["skipRequestingAccountId"] == "true"
    endpoints = aws_p["endpoints"]
    endpoints = endpoints if isinstance(endpoints, list) else __import__("json").loads(endpoints)
    urls = {v for e in endpoints for v in e.values()}
    assert urls == {"http://127.0.0.1:4566"}  # loopback only
    assert "allowedAccountIds" not in aws_p
    assert only(local, "pulumi:providers:vault", "vault").props["address"] == "http://127.0.0.1:8200"
    # The local stack targets OpenBao, which has no AWS auth plugin: no backend, no client.
    assert local.of_type("vault:aws/authBackendClient:AuthBackendClient") == []
    assert local.of_type("vault:index/authBackend:AuthBackend") == []
    # Against a Vault that has it, logins are verified by the same (emulated) IAM/STS as the
    # stack; never on real AWS.
    local = run_fleet(tmp_path, sample_doc(), stack="local", **{"agentfleet:vaultAwsAuth": "true"})
    client = only(local, "vault:aws/authBackendClient:AuthBackendClient", "aws-auth-client").props
    assert (client["iamEndpoint"], client["stsEndpoint"]) == ("http://127.0.0.1:4566", "http://127.0.0.1:4566")
    assert "accessKey" not in client and "secretKey" not in client
    assert "token" not in only(local, "pulumi:providers:vault", "vault").props  # secrets only via --secret
    dev = run_fleet(tmp_path, sample_doc(), stack="dev")
    allowed = only(dev, "pulumi:providers:aws", "aws").props["allowedAccountIds"]
    allowed = allowed if isinstance(allowed, list) else __import__("json").loads(allowed)
    assert allowed == ["123456789012"]
    assert dev.of_type("vault:aws/authBackendClient:AuthBackendClient") == []


# ---- stability: names derive from agent and credential names only ----


def test_adding_an_agent_changes_no_other_resource(tmp_path: Path) -> None:
    base = run_fleet(tmp_path, sample_doc())
    doc = sample_doc()
    doc["agents"].insert(2, copy.deepcopy(EXTRA_AGENTS[0]))  # in the middle, not at the end
    grown = run_fleet(tmp_path, doc)
    before, after = fingerprint(base), fingerprint(grown)
    assert set(before) < set(after)
    changed = {u for u in before if before[u] != after[u]}
    # Only the fleet component's output map may differ: every resource keeps its inputs.
    assert changed == set(), changed
    (ops,) = [r for r in grown.of_type(AGENT_ACCESS) if r.name == "ops"]
    added = set(after) - set(before)
    assert added == {ops.urn} | {r.urn for r in grown.descendants(ops.urn)}


def test_removing_an_agent_leaves_the_others_alone(tmp_path: Path) -> None:
    base = run_fleet(tmp_path, sample_doc())
    doc = sample_doc()
    doc["agents"] = [a for a in doc["agents"] if a["name"] != "crm"]
    shrunk = run_fleet(tmp_path, doc)
    before, after = fingerprint(base), fingerprint(shrunk)
    assert set(after) < set(before)
    assert all(before[u] == after[u] for u in after)
    assert all("crm" in u for u in set(before) - set(after))


def test_reordering_agents_and_credentials_changes_nothing(tmp_path: Path) -> None:
    base = run_fleet(tmp_path, mixed_doc())
    doc = mixed_doc()
    doc["agents"].reverse()
    for a in doc["agents"]:
        a["credentials"].reverse()
    shuffled = run_fleet(tmp_path, doc)
    assert fingerprint(base) == fingerprint(shuffled)
    assert base.outputs == shuffled.outputs


def test_unique_names_and_urns(full: tuple[ProgramRun, Fleet]) -> None:
    run, _ = full
    urns = [r.urn for r in run.resources]
    assert len(urns) == len(set(urns))
    names = [(r.type, r.name) for r in run.resources]
    assert len(names) == len(set(names))
    physical = {
        ROLE: "name", SECRET: "name", VAULT_POLICY: "name", VAULT_LOGIN: "role", VAULT_SECRET: "name",
    }
    for type_, key in physical.items():
        values = [r.props[key] for r in run.of_type(type_)]
        assert len(values) == len(set(values)), type_


def test_lookalike_names_do_not_collide(core: None, tmp_path: Path) -> None:
    """`a` + credential `b-c` and `a-b` + credential `c` would both be `a-b-c-secret` with dashes.
    (Generated credentials: manual ones would also share the physical reminder and overdue-alarm
    names, which the loader refuses: tests/test_names.py.)"""
    doc = {"version": 1, "agents": [
        {"name": "aa", "runtime": {"service": "lambda.amazonaws.com"},
         "credentials": [{"name": "bb-cc", "service": "x", "type": "token", "rotation": {"strategy": "generated"}}]},
        {"name": "aa-bb", "runtime": {"service": "lambda.amazonaws.com"},
         "credentials": [{"name": "cc", "service": "x", "type": "token", "rotation": {"strategy": "generated"}}]},
    ]}
    run = run_fleet(tmp_path, doc)
    secrets = sorted(r.name for r in run.of_type(SECRET))
    assert secrets == ["aa-bb/cc/secret", "aa/bb-cc/secret"]


# ---- outputs ----


def test_stack_outputs_map_each_agent(mixed: tuple[ProgramRun, Fleet], settings: StackSettings) -> None:
    run, fleet = mixed
    agents = run.outputs["agents"]
    assert set(agents) == {a.name for a in fleet.agents}
    for a in fleet.agents:
        out = agents[a.name]
        assert out["role_arn"] == naming.role_arn(settings, naming.role_name(settings, a.name))
        assert out["vault_policy_name"] == naming.vault_policy_name(settings, a.name)
        aws_creds = {c.name for c in a.credentials if "aws" in c.stores}
        assert set(out["secret_arns"]) == aws_creds
        for c, arn in out["secret_arns"].items():
            assert arn == only(run, SECRET, f"{a.name}/{c}/secret").outputs["arn"]
    assert run.outputs["kmsKeyArn"] == key_arn(run)
    assert run.outputs["kmsKeyAlias"] == naming.kms_alias(settings)


def test_iam_documents_serialise_in_one_place(dev_run: ProgramRun) -> None:
    """The components pass `iam.to_json` output through untouched (byte-identical)."""
    for r in dev_run.of_type(ROLE_POLICY):
        assert r.props["policy"] == iam.to_json(json_prop(r, "policy"))


def _names(rs: list[RegisteredResource]) -> list[str]:
    return sorted(r.name for r in rs)
