"""`put-values`: hidden prompts, batch input, shape checks, resume, `.env` import with mapping.

AWS is moto (in-process) and Vault the session's real OpenBao; the verb's clients are replaced
by clients for those two. Every test also checks that no value reached the output unmasked.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from moto import mock_aws

from agentfleet.cli import cmd_values
from agentfleet.cli.main import main
from agentfleet.core.plan import build_plan
from agentfleet.core.settings import load_stack_settings
from agentfleet.operate import values as v
from tests.conftest import PROJECT
from tests.openbao_server import OpenBao, mount_kv_v2

pytestmark = pytest.mark.openbao
MOUNT = "putvalues"
OPENAI = '{"api_key": "sk-proj-%s", "key_id": "key_%s", "project_id": "proj_abc"}'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the fixture project whose dev stack uses a mount of its own."""
    for name in ("Pulumi.yaml", "agents.yaml"):
        shutil.copy(PROJECT / name, tmp_path / name)
    text = (PROJECT / "Pulumi.dev.yaml").read_text().replace("agentfleet:vaultMount: kv", f"agentfleet:vaultMount: {MOUNT}")
    (tmp_path / "Pulumi.dev.yaml").write_text(text)
    return tmp_path


@pytest.fixture
def targets(project: Path) -> list[v.ValueTarget]:
    from agentfleet.core.loader import load_fleet

    plan = build_plan(load_fleet(project / "agents.yaml"), load_stack_settings(project / "Pulumi.dev.yaml", "dev"))
    return v.value_targets(plan)


class Env:
    def __init__(self, sm: Any, bao: Any):
        self.sm, self.bao = sm, bao

    def aws(self, name: str | None) -> dict[str, Any] | None:
        if not name:
            return None
        try:
            return json.loads(self.sm.get_secret_value(SecretId=name)["SecretString"])  # type: ignore[no-any-return]
        except self.sm.exceptions.ResourceNotFoundException:
            return None

    def vault(self, path: str | None) -> str | None:
        if not path:
            return None
        try:
            return str(self.bao.secrets.kv.v2.read_secret_version(mount_point=MOUNT, path=path, raise_on_deleted_version=True)["data"]["data"]["value"])
        except Exception:
            return None


@pytest.fixture
def env(openbao: OpenBao, targets: list[v.ValueTarget], monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    bao = openbao.client()
    mount_kv_v2(bao, MOUNT)
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        for t in targets:
            if t.secret_name:
                sm.create_secret(Name=t.secret_name)  # what `pulumi up` created: a secret without a value
        e = Env(sm, bao)
        monkeypatch.setattr(cmd_values, "make_clients", lambda *a: v.Clients({"aws": lambda: sm, "vault": lambda: bao}))
        yield e


def run(project: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["put-values", str(project / "agents.yaml"), "--stack", "dev", "--project", str(project), *args], out, err)
    return code, out.getvalue(), err.getvalue()


def values_for(targets: list[v.ValueTarget]) -> dict[str, str]:
    out = {}
    for i, t in enumerate(targets):
        tok = f"{i:02d}deadbeefcafe0123456789"
        out[t.key] = OPENAI % (tok, tok) if t.strategy == "openai" else f"tok-{tok}"
    return out


def lines(values: dict[str, str]) -> str:
    return "".join(f"{k}={val}\n" for k, val in values.items())


def no_raw(values: dict[str, str], *texts: str) -> None:
    for val in values.values():
        secret = json.loads(val)["api_key"] if val.startswith("{") else val
        for text in texts:
            assert secret not in text


def test_targets_are_every_external_credential_in_every_store(targets: list[v.ValueTarget]) -> None:
    keys = {t.key for t in targets}
    assert "billing/ledger-api" not in keys  # generated: the program writes it
    assert {"research/openai", "crm/salesforce", "billing/stripe", "research/search"} <= keys
    by = {t.key: t for t in targets}
    assert by["crm/salesforce"].stores == ("aws", "vault") and by["research/search"].stores == ("aws",)
    assert by["crm/salesforce"].secret_name == "agents/dev/crm/salesforce"
    assert (by["crm/salesforce"].vault_mount, by["crm/salesforce"].vault_path) == (MOUNT, "dev/crm/salesforce")


def test_batch_writes_every_store_and_verifies(project: Path, env: Env, targets: list[v.ValueTarget], tmp_path: Path) -> None:
    vals = values_for(targets)
    (tmp_path / "vals.txt").write_text(lines(vals))
    code, out, err = run(project, "--values-from", str(tmp_path / "vals.txt"))
    assert code == 0, err
    for t in targets:
        want = vals[t.key]
        key = json.loads(want)["api_key"] if want.startswith("{") else want
        if "aws" in t.stores:
            assert env.aws(t.secret_name)["api_key"] == key  # type: ignore[index]
        if t.strategy == "openai":
            assert env.aws(t.secret_name) == json.loads(want)  # ids kept for revocation
        assert env.vault(t.vault_path) == (key if "vault" in t.stores else None)
        assert f"{t.key}: " in out and "verified" in out
    no_raw(vals, out, err)
    assert not v.progress_path(project, "dev").exists()  # finished: nothing to resume


def test_a_bad_shape_writes_nothing(project: Path, env: Env, targets: list[v.ValueTarget], tmp_path: Path) -> None:
    vals = values_for(targets)
    vals["research/openai"] = '{"apikey": "sk-proj-typo1234567890abcdef"}'
    vals["crm/salesforce"] = "two words"
    (tmp_path / "vals.txt").write_text(lines(vals))
    code, out, err = run(project, "--values-from", str(tmp_path / "vals.txt"))
    assert code == 1
    assert "research/openai: the value unknown field(s) ['apikey']" in err
    assert "crm/salesforce: the value contains whitespace" in err and "nothing was written" in err
    assert all(env.aws(t.secret_name) is None for t in targets)
    assert "sk-proj-typo" not in err + out and "two words" not in err + out


def test_unknown_credential_line_writes_nothing(project: Path, env: Env, targets: list[v.ValueTarget]) -> None:
    r, w = os.pipe()
    os.write(w, b"research/openai=" + (OPENAI % ("a" * 20, "a")).encode() + b"\nbilling/ledger-api=x\n")
    os.close(w)
    try:
        code, _, err = run(project, "--values-fd", str(r))
    finally:
        os.close(r)
    assert code == 1 and "'billing/ledger-api' is not an external credential" in err
    assert env.aws("agents/dev/research/openai") is None


def test_values_fd_form(project: Path, env: Env) -> None:
    r, w = os.pipe()
    os.write(w, b"support/zendesk=zd-0123456789abcdefXYZ\n")
    os.close(w)
    try:
        code, out, err = run(project, "--values-fd", str(r), "--agent", "support")
    finally:
        os.close(r)
    assert code == 0, err
    assert env.aws("agents/dev/support/zendesk") == {"api_key": "zd-0123456789abcdefXYZ"}
    assert env.vault("dev/support/zendesk") == "zd-0123456789abcdefXYZ"
    assert "no value given for support/anthropic" in out


def test_interrupted_interactive_run_resumes(project: Path, env: Env, targets: list[v.ValueTarget],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    vals = values_for(targets)
    asked: list[str] = []

    def prompt_then_interrupt(text: str) -> str:
        key = text.split("value for ", 1)[1].split(" ", 1)[0]
        asked.append(key)
        if len(asked) == 3:
            raise KeyboardInterrupt
        return vals[key]

    monkeypatch.setattr(cmd_values, "PROMPT", prompt_then_interrupt)
    code, out, err = run(project)
    assert code == 1 and "run the same command again to resume" in err
    first = asked[:2]
    assert json.loads(v.progress_path(project, "dev").read_text())["done"] == sorted(first)
    assert env.aws(f"agents/dev/{asked[2]}") is None

    asked.clear()
    def answer(text: str) -> str:
        asked.append(text.split("value for ", 1)[1].split(" ", 1)[0])
        return vals[asked[-1]]

    monkeypatch.setattr(cmd_values, "PROMPT", answer)
    code, out2, err2 = run(project)
    assert code == 0, err2
    assert "resuming: 2 credential(s) already written" in out2
    assert set(asked) == set(vals) - set(first) and not set(asked) & set(first)  # never asked twice
    assert all(env.aws(t.secret_name) is not None or env.vault(t.vault_path) is not None for t in targets)
    no_raw(vals, out, err, out2, err2)
    assert not v.progress_path(project, "dev").exists()  # finished: the next run (a rotation) asks again
    asked.clear()
    code, _, _ = run(project, "--agent", "support")
    assert code == 0 and asked == ["support/zendesk", "support/anthropic"]


def test_restart_forgets_an_interrupted_run(project: Path, env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    v.Progress(v.progress_path(project, "dev")).mark("support/zendesk")
    asked: list[str] = []
    def skip_all(text: str) -> str:
        asked.append(text)
        return ""

    monkeypatch.setattr(cmd_values, "PROMPT", skip_all)
    assert run(project, "--agent", "support")[0] == 0 and len(asked) == 1  # resumed: zendesk skipped
    v.Progress(v.progress_path(project, "dev")).mark("support/zendesk")
    asked.clear()
    assert run(project, "--agent", "support", "--restart")[0] == 0 and len(asked) == 2


def test_interactive_rejects_a_bad_shape_and_asks_again(project: Path, env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["not json {", '{"api_key": "sk-proj-0123456789abcdefghij", "key_id": "key_1"}'])
    monkeypatch.setattr(cmd_values, "PROMPT", lambda text: next(answers))
    code, out, err = run(project, "--agent", "research", "--credential", "openai")
    assert code == 0, err
    assert "try again" in err
    assert env.aws("agents/dev/research/openai") == {"api_key": "sk-proj-0123456789abcdefghij", "key_id": "key_1"}
    assert "no project_id" in out  # the note the openai strategy needs the operator to know
    assert "sk-proj-0123456789abcdefghij" not in out + err


def test_a_failed_write_stops_and_keeps_progress(project: Path, env: Env, targets: list[v.ValueTarget], tmp_path: Path) -> None:
    vals = values_for(targets)
    env.sm.delete_secret(SecretId="agents/dev/crm/salesforce", ForceDeleteWithoutRecovery=True)
    (tmp_path / "vals.txt").write_text(lines(vals))
    code, out, err = run(project, "--values-from", str(tmp_path / "vals.txt"))
    assert code == 1 and "crm/salesforce: NOT written: Secrets Manager agents/dev/crm/salesforce: ResourceNotFoundException" in err
    done = json.loads(v.progress_path(project, "dev").read_text())["done"]
    assert "crm/salesforce" not in done and done == sorted(k for k in done)
    assert all(k < "crm/salesforce" or k in done for k in done)


ENV_FILE = """# the team's shared keys
export OPENAI_API_KEY="sk-proj-sharedteamkey0123456789abcd"
STRIPE_SECRET_KEY=sk_live_51Hsharedstripekey0123456789  # prod
SERPAPI_KEY='serp0123456789abcdef0123'
DEBUG=true
"""


def test_env_file_with_an_ambiguous_variable_writes_nothing(project: Path, env: Env, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(ENV_FILE)
    code, out, err = run(project, "--from-env-file", str(tmp_path / ".env"))
    assert code == 1
    assert "OPENAI_API_KEY is ambiguous: crm/openai, research/openai" in err
    assert "OPENAI_API_KEY: null   # one of: crm/openai, research/openai" in err  # the mapping template
    assert "nothing was written" in err
    assert env.aws("agents/dev/billing/stripe") is None and env.aws("agents/dev/research/search") is None
    for raw in ("sharedteamkey", "sharedstripekey", "serp0123456789"):
        assert raw not in out + err


def test_env_file_with_a_mapping_imports_and_says_what_is_left(project: Path, env: Env, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(ENV_FILE)
    (tmp_path / "map.yaml").write_text("OPENAI_API_KEY: research/openai\nDEBUG: null\n")
    code, out, err = run(project, "--from-env-file", str(tmp_path / ".env"), "--mapping", str(tmp_path / "map.yaml"))
    assert code == 0, err
    assert env.aws("agents/dev/research/openai") == {"api_key": "sk-proj-sharedteamkey0123456789abcd"}
    assert env.vault("dev/research/openai") == "sk-proj-sharedteamkey0123456789abcd"
    assert env.aws("agents/dev/billing/stripe") == {"api_key": "sk_live_51Hsharedstripekey0123456789"}
    assert env.aws("agents/dev/research/search") == {"api_key": "serp0123456789abcdef0123"}
    assert env.aws("agents/dev/crm/openai") is None  # mapped to one credential only
    assert f"delete {tmp_path / '.env'}" in out
    assert "openai: the imported key was shared by the team; revoke it at openai once every agent has its own key; first give crm/openai" in out
    for raw in ("sharedteamkey", "sharedstripekey", "serp0123456789abcdef"):
        assert raw not in out + err


def test_two_variables_for_one_credential_are_ambiguous(targets: list[v.ValueTarget]) -> None:
    env = v.parse_env_file("STRIPE_KEY=a1\nSTRIPE_SECRET=b2\n")
    m = v.map_env_vars(env, targets)
    assert not m.mapped and set(m.ambiguous) == {"STRIPE_KEY", "STRIPE_SECRET"}
    m = v.map_env_vars(env, targets, {"STRIPE_SECRET": None})
    assert m.mapped == {"STRIPE_KEY": next(t for t in targets if t.key == "billing/stripe")} and m.skipped == ["STRIPE_SECRET"]


def test_agent_option_narrows_the_mapping(targets: list[v.ValueTarget]) -> None:
    env = v.parse_env_file("OPENAI_API_KEY=k\nUNRELATED=1\n")
    m = v.map_env_vars(env, targets, agent="crm")
    assert {k: t.key for k, t in m.mapped.items()} == {"OPENAI_API_KEY": "crm/openai"} and m.unmapped == ["UNRELATED"]


def test_parse_env_file_forms() -> None:
    got = v.parse_env_file("export A='x y'\nB=\"q\"\nC=plain # note\n# D=no\nE=\nnot a line\n")
    assert [(e.name, e.value, e.line) for e in got] == [("A", "x y", 1), ("B", "q", 2), ("C", "plain", 3)]


@pytest.mark.parametrize("strategy, raw, ok", [
    ("manual", "abc123", True), ("manual", " abc", False), ("manual", "", False), ("manual", "a\nb", False),
    ("manual", '{"api_key": "k1"}', True), ("manual", '{"api_key": "k1", "x": 1}', False), ("manual", "[1]", True),
    ("openai", '{"api_key": "sk-1", "key_id": "key_1", "project_id": "proj_1"}', True),
    ("openai", '{"api_key": "sk-1", "key_id": "../x"}', False), ("openai", '{"key_id": "key_1"}', False),
    ("openai", "{broken", False),
])
def test_shapes(strategy: str, raw: str, ok: bool) -> None:
    if ok:
        cred, _ = v.shape_value(strategy, raw)
        assert isinstance(cred["api_key"], str) and cred["api_key"]
    else:
        with pytest.raises(v.ShapeError) as exc:
            v.shape_value(strategy, raw)
        if len(raw) > 3:
            assert raw not in str(exc.value)


def test_the_prompt_is_hidden() -> None:
    import getpass

    assert cmd_values.PROMPT is getpass.getpass


def test_a_store_without_a_writer_fails_loudly(targets: list[v.ValueTarget]) -> None:
    """A credential in a store this module cannot write yet is never reported as written."""
    import dataclasses

    t = dataclasses.replace(next(x for x in targets if x.key == "billing/stripe"), stores=("aws", "carrier-pigeon"))
    written: list[str] = []
    fake = type("SM", (), {"put_secret_value": lambda self, **kw: written.append(kw["SecretId"]),
                           "get_secret_value": lambda self, **kw: {"SecretString": '{"api_key":"k1"}'}})()
    with pytest.raises(v.StoreError, match=r"no writer for store\(s\) \['carrier-pigeon'\]"):
        v.write_value(t, {"api_key": "k1"}, v.Clients({"aws": lambda: fake}))
    assert written == []  # checked before any write: no store is updated alone
    assert t.where("carrier-pigeon") == "store 'carrier-pigeon'"
