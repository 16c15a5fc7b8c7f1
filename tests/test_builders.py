"""The builders' documents are exactly least privilege, checked on the parsed plan output.

IAM documents are read back from `plan_json` (the contract reviewers see), Vault policies are
parsed by a small HCL block parser below, so a test can never pass because a string merely
"contains" the right words.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from agentfleet.core import naming
from agentfleet.core.loader import parse_fleet
from agentfleet.core.model import Fleet, ResolvedAgent
from agentfleet.core.plan import build_plan, plan_json, secret_readers, secret_resource_policy, trust_policy, vault_policy
from agentfleet.core.settings import StackSettings
from tests.fleetgen import generate_fleet
from tests.iam_eval import wildcard_match

GET, DESCRIBE = "secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"
GITHUB = "token.actions.githubusercontent.com"


def as_set(value: str | list[str]) -> set[str]:
    return {value} if isinstance(value, str) else set(value)


def parsed_plan(fleet: Fleet, s: StackSettings) -> dict[str, Any]:
    plan: dict[str, Any] = json.loads(plan_json(build_plan(fleet, s)))
    return plan


def agent_entry(plan: dict[str, Any], name: str) -> dict[str, Any]:
    entry: dict[str, Any] = next(a for a in plan["agents"] if a["name"] == name)
    return entry


def by_sid(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert doc["Version"] == "2012-10-17"
    sids = [st["Sid"] for st in doc["Statement"]]
    assert len(sids) == len(set(sids)), "duplicate Sids"
    return {st["Sid"]: st for st in doc["Statement"]}


def settings(**over: object) -> StackSettings:
    base: dict[str, object] = {"stack": "dev", "environment": "dev", "aws_region": "eu-west-1", "aws_account_id": "123456789012"}
    base.update(over)
    return StackSettings.model_validate(base)


# ---- the agent's IAM policy ----


def expected_identity_statements(s: StackSettings, agent: ResolvedAgent) -> dict[str, dict[str, Any]]:
    """What the agent's policy must be, statement by statement (nothing more)."""
    out: dict[str, dict[str, Any]] = {}
    arns = {naming.secret_arn_pattern(s, agent.name, c.name) for c in agent.credentials if "aws" in c.stores}
    if agent.paused:
        out["AgentPaused"] = {"Effect": "Deny", "Action": {"*"}, "Resource": {"*"}, "Condition": None}
    if arns:
        out["ReadOwnSecrets"] = {"Effect": "Allow", "Action": {GET, DESCRIBE}, "Resource": arns, "Condition": None}
        out["DecryptOwnSecretsViaSecretsManager"] = {
            "Effect": "Allow", "Action": {"kms:Decrypt"}, "Resource": {naming.kms_key_placeholder(s)},
            "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{s.aws_region}.amazonaws.com"}},
        }
    if s.usage_metrics:
        out["PublishOwnUsageMetrics"] = {
            "Effect": "Allow", "Action": {"cloudwatch:PutMetricData"}, "Resource": {"*"},
            "Condition": {"StringEquals": {"cloudwatch:namespace": naming.metrics_namespace(s, agent.name)}},
        }
    return out


def normalised(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for sid, st in by_sid(doc).items():
        assert set(st) <= {"Sid", "Effect", "Action", "Resource", "Condition"}, f"{sid}: unexpected keys {set(st)}"
        out[sid] = {"Effect": st["Effect"], "Action": as_set(st["Action"]), "Resource": as_set(st["Resource"]),
                    "Condition": st.get("Condition")}
    return out


@pytest.mark.parametrize("usage_metrics", [True, False])
def test_agent_policy_is_exactly_least_privilege(sample_fleet: Fleet, dev_settings: StackSettings, usage_metrics: bool) -> None:
    s = dev_settings.model_copy(update={"usage_metrics": usage_metrics})
    plan = parsed_plan(sample_fleet, s)
    for agent in sample_fleet.agents:
        doc = agent_entry(plan, agent.name)["iam_policy"]
        assert normalised(doc) == expected_identity_statements(s, agent)


def test_secret_patterns_name_one_secret_each(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    plan = parsed_plan(sample_fleet, dev_settings)
    for agent in sample_fleet.agents:
        doc = agent_entry(plan, agent.name)["iam_policy"]
        read = by_sid(doc).get("ReadOwnSecrets")
        for arn in as_set(read["Resource"]) if read else set():
            head, _, tail = arn.partition(":secret:")
            assert head == f"arn:aws:secretsmanager:{dev_settings.aws_region}:{dev_settings.aws_account_id}"
            assert "*" not in arn
            assert tail.endswith("-??????") and "?" not in tail[: -len("-??????")]
            assert tail.startswith(f"{dev_settings.secret_prefix}/{dev_settings.environment}/{agent.name}/")


def test_vault_only_agent_gets_no_secretsmanager_or_kms(sample_fleet: Fleet) -> None:
    body = """version: 1
agents:
  - name: vault-only
    runtime: {service: ecs-tasks.amazonaws.com}
    credentials: [{name: k1, service: svc, type: token, stores: [vault]}]
"""
    fleet = parse_fleet(body, "<t>")
    s = settings()
    doc = agent_entry(parsed_plan(fleet, s), "vault-only")["iam_policy"]
    assert set(by_sid(doc)) == {"PublishOwnUsageMetrics"}


def test_paused_agent_policy_starts_with_deny_everything() -> None:
    fleet = generate_fleet(12, 3, paused=(4,))
    s = settings()
    plan = parsed_plan(fleet, s)
    for agent in fleet.agents:
        doc = agent_entry(plan, agent.name)["iam_policy"]
        assert normalised(doc) == expected_identity_statements(s, agent)
        first = doc["Statement"][0]
        if agent.paused:
            assert (first["Effect"], first["Action"], first["Resource"]) == ("Deny", "*", "*")
            assert "Condition" not in first
        else:
            assert all(st["Effect"] == "Allow" for st in doc["Statement"])


# ---- trust policies per runtime kind ----


def runtime_fleet(runtime: str) -> Fleet:
    return parse_fleet(f"""version: 1
agents:
  - name: runner
    runtime: {runtime}
    credentials: [{{name: k1, service: svc, type: token}}]
""", "<t>")


def only_statement(doc: dict[str, Any]) -> dict[str, Any]:
    assert doc["Version"] == "2012-10-17"
    assert len(doc["Statement"]) == 1
    st: dict[str, Any] = doc["Statement"][0]
    assert st["Effect"] == "Allow"
    assert "Resource" not in st and "NotPrincipal" not in st and "NotAction" not in st
    return st


def test_trust_service() -> None:
    st = only_statement(json.loads(json.dumps(trust_policy(settings(), runtime_fleet("{service: ecs-tasks.amazonaws.com}").agents[0]))))
    assert st["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert st["Action"] == "sts:AssumeRole"
    # Confused-deputy guard: only this account's tasks may make ECS assume the role.
    assert st["Condition"] == {"StringEquals": {"aws:SourceAccount": settings().aws_account_id}}


def test_trust_role_arns() -> None:
    arns = ["arn:aws:iam::123456789012:role/runner-b", "arn:aws:iam::123456789012:role/runner-a"]
    fleet = runtime_fleet("{role_arns: [" + ", ".join(arns) + "]}")
    st = only_statement(agent_entry(parsed_plan(fleet, settings()), "runner")["trust_policy"])
    assert set(st["Principal"]) == {"AWS"}
    assert as_set(st["Principal"]["AWS"]) == set(arns)
    assert st["Action"] == "sts:AssumeRole"
    assert "Condition" not in st


@pytest.mark.parametrize(
    ("selector", "subject"),
    [("ref: refs/heads/main", "repo:example-org/product:ref:refs/heads/main"),
     ("environment: production", "repo:example-org/product:environment:production")],
)
def test_trust_github_oidc_pins_audience_and_subject(selector: str, subject: str) -> None:
    fleet = runtime_fleet("{github_oidc: {repository: example-org/product, " + selector + "}}")
    st = only_statement(agent_entry(parsed_plan(fleet, settings()), "runner")["trust_policy"])
    assert st["Principal"] == {"Federated": f"arn:aws:iam::123456789012:oidc-provider/{GITHUB}"}
    assert st["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert st["Condition"] == {"StringEquals": {f"{GITHUB}:aud": "sts.amazonaws.com", f"{GITHUB}:sub": subject}}


def test_sample_trust_policies_match_their_runtime(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    plan = parsed_plan(sample_fleet, dev_settings)
    kinds = {a.name: a.runtime.kind for a in sample_fleet.agents}
    assert set(kinds.values()) == {"service", "role_arns", "github_oidc"}
    for agent in sample_fleet.agents:
        st = only_statement(agent_entry(plan, agent.name)["trust_policy"])
        principal_kind = {"service": "Service", "role_arns": "AWS", "github_oidc": "Federated"}[agent.runtime.kind]
        assert set(st["Principal"]) == {principal_kind}
        assert "*" not in json.dumps(st)


# ---- the secret's resource policy ----


@pytest.mark.parametrize("isolation", ["per-agent", "shared"])
def test_secret_resource_policy_denies_all_but_owner_rotator_and_admins(sample_fleet: Fleet, dev_settings: StackSettings, isolation: str) -> None:
    s = dev_settings.model_copy(update={"rotation_isolation": isolation})
    assert s.admin_principals
    for agent in sample_fleet.agents:
        own_role = naming.role_arn(s, naming.role_name(s, agent.name))
        for cred in agent.credentials:
            doc = json.loads(json.dumps(secret_resource_policy(s, agent, cred)))
            assert doc["Version"] == "2012-10-17" and len(doc["Statement"]) == 1
            st = doc["Statement"][0]
            assert set(st) == {"Sid", "Effect", "Principal", "Action", "Resource", "Condition"}
            assert (st["Effect"], st["Principal"], st["Action"], st["Resource"]) == ("Deny", {"AWS": "*"}, GET, "*")
            assert set(st["Condition"]) == {"StringNotEquals"}
            assert set(st["Condition"]["StringNotEquals"]) == {"aws:PrincipalArn"}
            allowed = as_set(st["Condition"]["StringNotEquals"]["aws:PrincipalArn"])
            expected = {own_role, *s.admin_principals}
            if cred.rotation_strategy != "manual":
                rotator = (naming.shared_rotation_role_name(s, cred.rotation_strategy) if isolation == "shared"
                           else naming.rotation_role_name(s, agent.name))
                expected.add(naming.role_arn(s, rotator))
            assert allowed == expected == set(secret_readers(s, agent, cred))
            other_roles = {naming.role_arn(s, naming.role_name(s, a.name)) for a in sample_fleet.agents if a.name != agent.name}
            assert not allowed & other_roles


def test_manual_credentials_have_no_rotator_among_readers(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    manual = [(a, c) for a in sample_fleet.agents for c in a.credentials if c.rotation_strategy == "manual"]
    assert manual
    for agent, cred in manual:
        readers = set(secret_readers(dev_settings, agent, cred))
        assert not any("rotation" in r for r in readers)
        assert len(readers) == 1 + len(dev_settings.admin_principals)


# ---- Vault policies: parsed HCL ----


@dataclass(frozen=True)
class HclBlock:
    kind: str
    label: str
    attrs: dict[str, str | list[str]]


class HclError(ValueError):
    pass


def hcl_tokens(text: str) -> list[tuple[str, str]]:
    """(kind, text) tokens of the HCL subset Vault policies use; comments dropped."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == "#" or text.startswith("//", i):
            while i < len(text) and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise HclError("unterminated comment")
            i = end + 2
        elif ch == '"':
            i += 1
            buf = []
            while True:
                if i >= len(text) or text[i] == "\n":
                    raise HclError("unterminated string")
                if text[i] == "\\":
                    buf.append(text[i + 1])
                    i += 2
                    continue
                if text[i] == '"':
                    i += 1
                    break
                buf.append(text[i])
                i += 1
            out.append(("str", "".join(buf)))
        elif ch in "{}[]=,":
            out.append((ch, ch))
            i += 1
        elif ch.isalpha() or ch == "_":
            start = i
            while i < len(text) and (text[i].isalnum() or text[i] in "_-"):
                i += 1
            out.append(("ident", text[start:i]))
        else:
            raise HclError(f"unexpected character {ch!r}")
    return out


def parse_hcl(text: str) -> list[HclBlock]:
    """`kind "label" { key = "v" | ["a", "b"] ... }` blocks; anything else raises."""
    toks = hcl_tokens(text)
    pos = 0

    def take(kind: str) -> str:
        nonlocal pos
        if pos >= len(toks) or toks[pos][0] != kind:
            got = toks[pos] if pos < len(toks) else "end of input"
            raise HclError(f"expected {kind}, got {got}")
        pos += 1
        return toks[pos - 1][1]

    blocks = []
    while pos < len(toks):
        kind = take("ident")
        label = take("str")
        take("{")
        attrs: dict[str, str | list[str]] = {}
        while toks[pos][0] != "}":
            key = take("ident")
            take("=")
            if key in attrs:
                raise HclError(f"duplicate attribute {key}")
            if toks[pos][0] == "[":
                take("[")
                items: list[str] = []
                while toks[pos][0] != "]":
                    items.append(take("str"))
                    if toks[pos][0] == ",":
                        take(",")
                take("]")
                attrs[key] = items
            else:
                attrs[key] = take("str")
        take("}")
        blocks.append(HclBlock(kind, label, attrs))
    return blocks


def test_hcl_parser_reads_blocks_and_rejects_garbage() -> None:
    text = '# c\npath "a/*" {\n  capabilities = ["read", "list",]\n}\npath "b" { capabilities = ["deny"] }\n'
    assert parse_hcl(text) == [HclBlock("path", "a/*", {"capabilities": ["read", "list"]}),
                               HclBlock("path", "b", {"capabilities": ["deny"]})]
    for bad in ('path "a" {', 'path a { }', 'path "a" { capabilities = ["read" }', 'path "a" { x = "1"\n x = "2" }', 'path "a {}'):
        with pytest.raises((HclError, IndexError)):
            parse_hcl(bad)


def policy_paths(hcl: str) -> dict[str, list[str]]:
    blocks = parse_hcl(hcl)
    out: dict[str, list[str]] = {}
    for b in blocks:
        assert b.kind == "path"
        assert set(b.attrs) == {"capabilities"}, f"{b.label}: only capabilities may be set"
        caps = b.attrs["capabilities"]
        assert isinstance(caps, list)
        assert b.label not in out, f"duplicate path {b.label}"
        out[b.label] = sorted(caps)
    return out


def test_vault_policy_grants_only_its_own_folder(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    plan = parsed_plan(sample_fleet, dev_settings)
    m, env = dev_settings.vault_mount, dev_settings.environment
    for agent in sample_fleet.agents:
        entry = agent_entry(plan, agent.name)
        paths = policy_paths(entry["vault_policy"])
        assert paths == {
            f"{m}/data/{env}/{agent.name}/*": ["read"],
            f"{m}/metadata/{env}/{agent.name}/*": ["list", "read"],
        }
        for path in paths:
            assert path.count("*") == 1 and path.endswith("/*") and "+" not in path
        assert entry["vault_policy_name"] == naming.vault_policy_name(dev_settings, agent.name)


def test_vault_credential_paths_are_inside_the_policy_folder(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    plan = parsed_plan(sample_fleet, dev_settings)
    for agent in sample_fleet.agents:
        entry = agent_entry(plan, agent.name)
        for cred in entry["credentials"]:
            if "vault" in cred["stores"]:
                assert cred["vault_mount"] == dev_settings.vault_mount
                assert cred["vault_path"] == f"{dev_settings.environment}/{agent.name}/{cred['name']}"
                assert cred["vault_path"].startswith(naming.vault_agent_prefix(dev_settings, agent.name))
            else:
                assert cred["vault_path"] is None and cred["vault_mount"] is None


def test_paused_vault_policy_only_denies() -> None:
    fleet = generate_fleet(6, 2, paused=(2,))
    s = settings()
    for agent in fleet.agents:
        paths = policy_paths(vault_policy(s, agent))
        caps = {c for cs in paths.values() for c in cs}
        if agent.paused:
            assert caps == {"deny"}
            assert set(paths) == {f"kv/data/dev/{agent.name}/*", f"kv/metadata/dev/{agent.name}/*"}
        else:
            assert caps == {"read", "list"}
        assert "sudo" not in caps


def test_no_vault_policy_path_matches_another_agents_paths() -> None:
    """Vault globs: a trailing `*` is a prefix match. `bill/*` must not reach `billing/...`."""
    fleet = generate_fleet(40, 2)
    s = settings()
    concrete = {(a.name, f"{s.vault_mount}/{api}/{naming.vault_path(s, a.name, c.name)}")
                for a in fleet.agents for c in a.credentials for api in ("data", "metadata")}
    for agent in fleet.agents:
        for path in policy_paths(vault_policy(s, agent)):
            reached = {owner for owner, p in concrete if wildcard_match(path, p)}
            assert reached == {agent.name}, (path, reached)
