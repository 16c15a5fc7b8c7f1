"""The rehearsal: the program applied to real local servers (moto_server, OpenBao), then a day.

Runs `rehearse` on the sample (with terraform, if the image has it) and on a second fixture
fleet, checks that a broken policy fails the day (so the steps can fail), and that the applier
lists what it cannot apply and reports what the servers refuse. Every server is on 127.0.0.1
and stopped by `local_servers`.
"""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path
from typing import Iterator

import pulumi
import pulumi_aws as aws
import pytest

from agentfleet.cli.main import main
from agentfleet.core import naming
from agentfleet.core import plan as plan_mod
from agentfleet.core.settings import load_stack_settings
from agentfleet.core import vault_policies
from agentfleet.rehearse import terraform
from agentfleet.rehearse.apply import APPLIED, FAILED, LOCAL, UNSUPPORTED, ApplyMocks, Clients
from agentfleet.rehearse.run import rehearse, report
from agentfleet.rehearse.servers import Servers, local_servers
from agentfleet.runner.mockrun import run_program
from tests.conftest import PROJECT, REPO

pytestmark = pytest.mark.openbao
OTHER_FLEET = REPO / "tests" / "fleets" / "rehearse" / "lookalikes.yaml"
STEPS = (
    "every agent assumes its own role", "each agent may read only its own secrets", "the operator writes the external values",
    "each agent reads only its own Vault paths", "each agent reads its own secret through its assumed role",
    "rotation runs through the deployed function's own configuration", "old keys are revoked only after the grace period",
    "a pause cuts the agent's access", "an emergency rotation revokes the old key at once", "no credential value reached a log line",
)


def test_rehearse_the_sample_on_the_local_stack() -> None:
    started = time.monotonic()
    r = rehearse(PROJECT, "local")
    text = report(r)
    print(text, f"wall time {time.monotonic() - started:.1f} s")
    assert r.ok, text
    offline = {x.type for x in run_program("local").resources if x.custom and not x.type.startswith("pulumi:providers:")}
    applied = {o.type for o in r.outcomes if o.status in (APPLIED, LOCAL)}
    assert offline == applied, f"declared but not applied: {offline - applied}"  # every type the sample declares
    assert not [o for o in r.outcomes if o.status in (FAILED, UNSUPPORTED)]
    names = [s.name for s in r.steps]
    assert len(names) == len(STEPS) and all(n.startswith(want) for n, want in zip(names, STEPS))
    assert all(s.ok for s in r.steps)
    if shutil.which("terraform") and terraform.find_mirror():
        assert r.terraform is not None and r.terraform.stage_ok == {"init": True, "validate+plan": True}
        assert sum(r.terraform.validated.values()) == len([x for x in r.outcomes if x.type.startswith("aws:")])
    else:
        assert r.terraform is not None and r.terraform.skipped
    assert "PASSED in" in text and "A day in the life:" in text


def test_rehearse_verb_on_another_fleet_with_shared_rotation(tmp_path: Path) -> None:
    """A project of its own: another fleet, and one rotation function per strategy (shared mode)."""
    shutil.copy(PROJECT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copy(REPO / "__main__.py", tmp_path / "__main__.py")
    shutil.copy(OTHER_FLEET, tmp_path / "agents.yaml")
    local = (PROJECT / "Pulumi.local.yaml").read_text()
    (tmp_path / "Pulumi.local.yaml").write_text(local.replace("config:\n", "config:\n  agentfleet:rotationIsolation: shared\n", 1))
    out, err = io.StringIO(), io.StringIO()
    code = main(["rehearse", "--project", str(tmp_path), "--no-terraform"], out, err)
    assert code == 0, out.getvalue() + err.getvalue()
    text = out.getvalue()
    assert "agents-local-rotation-openai's sweep" in text  # the shared function rotated both openai keys
    assert "3 agents x 1 SSM parameters: 1 reads allowed, all by their owner" in text  # Parameter Store too
    assert "network-scoped agents (billing2): their own reads from another network are denied" in text
    assert "aws:ssm/parameter:Parameter                             1 applied" in text
    assert '"SecretIds": ["agents/local/bill/openai", "agents/local/billing/openai"]' in text
    assert "3 agents x " in text and "PASSED in" in text and "Terraform" not in text
    assert text.count("  PASS  ") == len(STEPS) and "  FAIL  " not in text
    assert "`paused: true` on bill re-applied" in text  # the pause is a real update of the applied policies


def test_a_broken_policy_fails_the_day(monkeypatch: pytest.MonkeyPatch) -> None:
    """Widen the agents' IAM and Vault policies: the evaluator and OpenBao must both notice."""
    real_hcl = vault_policies.agent_policy_hcl
    s = load_stack_settings(PROJECT / "Pulumi.local.yaml", "local")
    monkeypatch.setattr(plan_mod, "agent_secret_arns",
                        lambda s, agent: [f"arn:aws:secretsmanager:{s.aws_region}:{s.aws_account_id}:secret:{s.secret_prefix}/*"])
    everyone = [naming.role_arn(s, naming.role_name(s, n)) for n in ("bill", "billing", "billing2")]
    monkeypatch.setattr(plan_mod, "secret_readers", lambda s_, agent, cred: everyone)
    monkeypatch.setattr(plan_mod, "agent_policy_hcl",
                        lambda s, agent, paused=False: real_hcl(s, agent, paused=paused) + f'\npath "{s.vault_mount}/data/*" {{ capabilities = ["read"] }}\n')
    out = io.StringIO()
    assert main(["rehearse", "--fleet", str(OTHER_FLEET), "--no-terraform"], out, io.StringIO()) == 1
    text = out.getvalue()
    assert "FAIL  each agent may read only its own secrets" in text
    assert "FAIL bill may read agents/local/billing/openai" in text
    assert "FAIL  each agent reads only its own Vault paths (OpenBao enforces)" in text
    assert "bill reading kv/local/billing/openai: ok, expected forbidden" in text
    assert "FAILED in" in text


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    with local_servers("123456789012", "us-east-1") as s:
        yield s


def test_the_applier_lists_what_it_cannot_apply_and_what_the_servers_refuse(servers: Servers) -> None:
    def program() -> None:
        aws.sqs.Queue("queue", name="rehearse-queue")  # a type without an applier
        key = aws.kms.Key("key", description="k")
        aws.kms.Alias("bad-alias", name="no-alias-prefix", target_key_id=key.key_id)  # KMS requires alias/...
        # (a 65-character role name passes moto and botocore, which check no maximum length: the
        # terraform step's validators catch that class of error, see the terraform test below)
        pulumi.export("done", True)

    mocks = ApplyMocks(Clients(servers))
    run_program("local", root=PROJECT, program=program, mocks=mocks)
    by = {o.name: o for o in mocks.outcomes}
    assert by["queue"].status == UNSUPPORTED and "no applier" in by["queue"].detail
    assert by["key"].status == APPLIED and by["key"].id
    assert by["bad-alias"].status == FAILED and "alias" in by["bad-alias"].detail.lower()



def test_servers_listen_on_loopback_and_stop(tmp_path: Path) -> None:
    import urllib.request

    with local_servers("123456789012", "us-east-1") as s:
        assert s.aws_endpoint.startswith("http://127.0.0.1:") and s.vault_address.startswith("http://127.0.0.1:")
        assert urllib.request.urlopen(f"{s.vault_address}/v1/sys/health", timeout=5).status == 200
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{s.vault_address}/v1/sys/health", timeout=2)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{s.aws_endpoint}/moto-api/data.json", timeout=2)


def test_terraform_translation_and_its_validators(tmp_path: Path) -> None:
    assert terraform.tf_type("aws:iam/rolePolicy:RolePolicy") == "aws_iam_role_policy"
    assert terraform.tf_type("aws:cloudtrail/trail:Trail") == "aws_cloudtrail"
    assert terraform.tf_type("vault:index/policy:Policy") is None
    body = terraform.resource_body("aws_lambda_function", {"name": "f", "code": {"FileArchive": "/x.zip"},
                                                           "environment": {"variables": {"MY_VAR": "1"}}, "memorySize": 256.0})
    assert body == {"function_name": "f", "filename": "/x.zip", "environment": {"variables": {"MY_VAR": "1"}}, "memory_size": 256}

    class R:
        def __init__(self, name: str, props: dict[str, object]):
            self.type, self.name, self.custom, self.props = "aws:iam/role:Role", name, True, props

    s = load_stack_settings(PROJECT / "Pulumi.local.yaml", "local")
    trust = '{"Version":"2012-10-17","Statement":[]}'
    res = terraform.validate([R("ok", {"name": "ok", "assumeRolePolicy": trust}),
                              R("bad", {"name": "bad", "assumeRolePolicy": trust, "maxSessionDuration": 99999.0}),
                              R("long", {"name": "r" * 65, "assumeRolePolicy": trust})],
                             s, "http://127.0.0.1:9", tmp_path)
    if shutil.which("terraform") is None or terraform.find_mirror() is None:
        assert res.skipped and res.ok  # said, not hidden: the report prints the reason
        return
    assert not res.ok and res.stage_ok["validate+plan"] is False
    assert any("max_session_duration" in e and "3600 - 43200" in e for e in res.errors), res.errors
    assert any("name" in e and "64" in e for e in res.errors), res.errors  # what moto lets through
