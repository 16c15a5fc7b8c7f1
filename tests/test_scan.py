"""`scan`: planted fake keys of several shapes are found, masked, and mapped to the fleet.

The keys are assembled at test time from fragments and a seeded generator, so the repository
never carries a key-shaped string; they are random, not real credentials.
"""

from __future__ import annotations

import io
import random
import re
import string
from pathlib import Path

import pytest

from agentfleet.cli.main import main
from agentfleet.core.model import Fleet
from agentfleet.core.plan import build_plan
from agentfleet.review.scan import Finding, is_env_file, scan_paths
from agentfleet.core.settings import StackSettings

ALNUM = string.ascii_letters + string.digits
UPPER = string.ascii_uppercase + string.digits
CLEAN = Path(__file__).parent / "fixtures" / "scan" / "clean"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


class Planted:
    """A fixture tree with one fake key per shape; `expected` is (file, line) -> service."""

    def __init__(self, root: Path):
        rnd = random.Random(6)

        def chars(n: int, alphabet: str = ALNUM) -> str:
            return "".join(rnd.choice(alphabet) for _ in range(n))

        self.root = root
        self.openai = "sk" + "-" + "proj" + "-" + chars(48)
        self.aws = "AK" + "IA" + chars(16, UPPER)
        self.password = chars(24)
        self.stripe_here = "sk" + "_live_" + chars(24)
        self.stripe_billing = "sk" + "_live_" + chars(24)
        self.stripe_env = "rk" + "_live_" + chars(24)
        self.anthropic = "sk" + "-ant-" + "api03-" + chars(40)
        self.zendesk = chars(40, "0123456789abcdef")
        self.anthropic_note = "sk" + "-ant-" + "api03-" + chars(40)  # unquoted prose: no keyword, no quotes
        self.pem_body = chars(64)
        self.github = "gh" + "p_" + chars(36)
        self.allowed = "sk" + "-" + "proj" + "-" + chars(48)
        self.values = [self.openai, self.aws, self.password, self.stripe_here, self.stripe_billing,
                       self.stripe_env, self.anthropic, self.anthropic_note, self.zendesk, self.pem_body,
                       self.github, self.allowed]
        self.files = {
            "agents/research/main.py": (
                "import os\n"
                f'OPENAI_KEY = "{self.openai}"\n'
                f'AWS_ACCESS_KEY_ID = "{self.aws}"\n'
                f'db_password = "{self.password}"\n'
                f'payments = "{self.stripe_here}"\n'
                "TIMEOUT = 30\n"
            ),
            "agents/billing/config.py": f'STRIPE_KEY = "{self.stripe_billing}"\n',
            "agents/billing/.env": f"DEBUG=1\nSTRIPE_API_KEY={self.stripe_env}\n",
            "agents/support/settings.py": (
                f'ANTHROPIC_API_KEY = "{self.anthropic}"\n'
                f'ZENDESK_API_TOKEN = "{self.zendesk}"\n'
            ),
            "agents/support/.env.example": "ZENDESK_API_TOKEN=\n",
            "deploy/key.pem": "-----BEGIN " + "RSA PRIVATE" + " KEY-----\n" + self.pem_body + "\n-----END RSA PRIVATE KEY-----\n",
            "agents/research/README.md": "Reads its key from Secrets Manager at run time.\n",
            "agents/release-notes/run.sh": (
                f"export GH_TOKEN={self.github}\n"
                "curl -s http://203.0.113.7/health  # an address is not a credential\n"
                f'EXAMPLE = "{self.allowed}"  # pragma: allowlist secret\n'
            ),
            "agents/support/NOTES.md": f"Until the store exists, use {self.anthropic_note} for local tests.\n",
            ".git/leak.py": f'OPENAI_KEY = "{self.openai}"\n',  # VCS and tool folders are skipped
            ".venv/lib/site.py": f'OPENAI_KEY = "{self.openai}"\n',
        }
        for rel, text in self.files.items():
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        self.expected: dict[tuple[str, int], str] = {
            ("agents/research/main.py", 2): "openai",
            ("agents/research/main.py", 3): "aws",
            ("agents/research/main.py", 4): "unknown",
            ("agents/research/main.py", 5): "stripe",
            ("agents/billing/config.py", 1): "stripe",
            ("agents/billing/.env", 0): "-",
            ("agents/billing/.env", 2): "stripe",
            ("agents/support/settings.py", 1): "anthropic",
            ("agents/support/settings.py", 2): "zendesk",
            ("agents/support/NOTES.md", 1): "anthropic",
            ("deploy/key.pem", 1): "pem",
            ("agents/release-notes/run.sh", 1): "github",
        }


@pytest.fixture
def planted(tmp_path: Path) -> Planted:
    return Planted(tmp_path / "code")


def by_place(findings: list[Finding], root: Path) -> dict[tuple[str, int], Finding]:
    out = {(Path(f.file).relative_to(root).as_posix(), f.line): f for f in findings}
    assert len(out) == len(findings), "one finding per place"
    return out


def test_finds_every_planted_shape_and_nothing_else(planted: Planted, sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    findings = scan_paths([str(planted.root)], build_plan(sample_fleet, dev_settings), "agents.yaml")
    got = by_place(findings, planted.root)
    assert {place: f.service for place, f in got.items()} == planted.expected
    assert got[("agents/billing/.env", 0)].kind == "committed .env file"
    assert got[("agents/research/main.py", 3)].kind == "AWS Access Key"
    assert got[("deploy/key.pem", 1)].kind == "Private Key"


def test_findings_map_to_the_plans_secret_names(planted: Planted, sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    plan = build_plan(sample_fleet, dev_settings)
    cred = {(a["name"], c["name"]): c for a in plan["agents"] for c in a["credentials"]}
    role = {a["name"]: a["iam_role_name"] for a in plan["agents"]}
    got = by_place(scan_paths([str(planted.root)], plan, "agents.yaml"), planted.root)

    openai = got[("agents/research/main.py", 2)].advice
    research_openai = cred[("research", "openai")]
    assert f"Secrets Manager {research_openai['secret_name']}" in openai
    assert f"Vault {research_openai['vault_mount']}/{research_openai['vault_path']}" in openai
    # The folder names the agent: crm also declares openai, but its secret is not suggested.
    assert str(cred[("crm", "openai")]["secret_name"]) not in openai

    assert f"`{role['research']}`" in got[("agents/research/main.py", 3)].advice
    # research declares no stripe key: the advice says so and names billing's.
    stray = got[("agents/research/main.py", 5)].advice
    assert stray.startswith("agent research declares no stripe credential")
    assert str(cred[("billing", "stripe")]["secret_name"]) in stray
    billing = got[("agents/billing/config.py", 1)].advice
    assert billing.startswith("move it to ") and str(cred[("billing", "stripe")]["secret_name"]) in billing
    support = got[("agents/support/settings.py", 1)].advice
    assert str(cred[("support", "anthropic")]["secret_name"]) in support
    assert str(cred[("support", "zendesk")]["secret_name"]) in got[("agents/support/settings.py", 2)].advice
    github = cred[("release-notes", "github")]
    assert got[("agents/release-notes/run.sh", 1)].advice == (
        f"move it to Vault {github['vault_mount']}/{github['vault_path']} (agent release-notes, credential github)"
    )


def test_secrets_are_masked_everywhere(planted: Planted, root: Path) -> None:
    code, out, err = run("scan", str(planted.root), "--fleet", str(root / "agents.yaml"))
    assert code == 1
    for value in planted.values:
        assert value not in out and value not in err
        assert value[4:] not in out and value[-8:] not in out  # not even a usable tail
    findings = scan_paths([str(planted.root)])
    assert not any(v in repr(f) for f in findings for v in planted.values)
    got = by_place(findings, planted.root)
    assert got[("agents/research/main.py", 4)].masked == "********(24 chars)"  # no prefix of a password
    assert got[("agents/research/main.py", 2)].masked == f"{planted.openai[:4]}********({len(planted.openai)} chars)"
    # detect-secrets captures only `ghp` of a GitHub token; the whole token is what gets masked.
    assert got[("agents/release-notes/run.sh", 1)].masked == f"ghp_********({len(planted.github)} chars)"


def test_cli_report_lines_and_exit_code(planted: Planted, root: Path) -> None:
    code, out, err = run("scan", str(planted.root), "--fleet", str(root / "agents.yaml"))
    assert code == 1, err
    lines = out.splitlines()
    pattern = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<kind>.+?) \(likely service: (?P<service>[^)]+)\)")
    parsed = {}
    for line in lines[:-1]:
        m = pattern.match(line)
        assert m, line
        parsed[(Path(m["file"]).relative_to(planted.root).as_posix(), int(m["line"]))] = m["service"]
    assert parsed == planted.expected
    assert lines[-1].startswith(f"{len(planted.expected)} finding(s) in 7 file(s)")


def test_without_a_fleet_the_advice_asks_for_one(planted: Planted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./agents.yaml here
    code, out, _ = run("scan", str(planted.root / "agents" / "research"))
    assert code == 1
    assert "pass --fleet agents.yaml" in out and "Secrets Manager" not in out


def test_default_fleet_is_the_local_agents_yaml(planted: Planted, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(root)
    code, out, _ = run("scan", str(planted.root / "agents" / "research"))
    assert code == 1 and "agents/dev/research/openai" in out


def test_clean_code_exits_0(root: Path) -> None:
    assert (CLEAN / "research" / ".env.example").is_file()
    code, out, err = run("scan", str(CLEAN), "--fleet", str(root / "agents.yaml"))
    assert (code, out, err) == (0, "no hard-coded credentials found\n", "")


def test_env_file_names() -> None:
    for name in (".env", ".env.local", ".env.production", "prod.env"):
        assert is_env_file(Path(name)), name
    for name in (".env.example", ".env.sample", ".env.template", "env.py", ".envrc"):
        assert not is_env_file(Path(name)), name


def test_invalid_fleet_gives_validate_errors(tmp_path: Path, root: Path) -> None:
    bad = tmp_path / "agents.yaml"
    bad.write_text("version: 1\nagents:\n  - name: Bad\n    credentials: []\n")
    (tmp_path / "Pulumi.dev.yaml").write_text((root / "Pulumi.dev.yaml").read_text())
    code, out, err = run("scan", str(CLEAN), "--fleet", str(bad))
    assert (code, out) == (1, "")
    assert err == run("validate", str(bad))[2]


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = run("scan", str(tmp_path / "nope"))
    assert code == 2 and "no such file" in err
