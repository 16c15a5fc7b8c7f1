"""More secret shapes (loader and scanner), values masked; scan reports what it cannot scan and
reports none of this repository's own source.

Keys are assembled at test time from fragments and a seeded generator: the repository never
carries a key-shaped string.
"""

from __future__ import annotations

import base64
import io
import random
import string
from pathlib import Path

import pytest

from agentfleet.cli.main import main
from agentfleet.core.loader import FleetError, parse_fleet
from agentfleet.core.secretlike import find_secrets
from agentfleet.review.scan import NotScanned, scan_paths

from tests.conftest import REPO

RND = random.Random(12)
ALNUM = string.ascii_letters + string.digits


def chars(n: int, alphabet: str = ALNUM) -> str:
    return "".join(RND.choice(alphabet) for _ in range(n))


SHAPES: dict[str, str] = {
    "Hugging Face token": "hf" + "_" + chars(34),
    "Google API key": "AI" + "za" + chars(35, ALNUM + "_-"),
    "Groq API key": "gs" + "k_" + chars(52),
    "GitHub fine-grained token": "github" + "_pat_" + "11A" + chars(19, string.ascii_uppercase + string.digits) + "_" + chars(59),
    "AWS secret access key": chars(18) + "/" + chars(9) + "+" + chars(11),
    "Basic Auth Credentials": "postgres://app:" + chars(16) + "@db.internal:5432/app",
    "base64 of a Stripe-style key": base64.b64encode(("sk" + "_live_" + chars(24)).encode()).decode(),
}
NOT_SECRETS = (
    "https://user:<password>@example.com", "https://user:${PASSWORD}@example.com",
    "da39a3ee5e6b4b0d3255bfef95601890afd80709",  # a git SHA, 40 lowercase hex  # pragma: allowlist secret
    "arn:aws:iam::123456789012:role/agent-runner-crm", "agents-dev-research-rotation",
    base64.b64encode(b"just some harmless configuration text").decode(),
)


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_each_shape_is_found(kind: str) -> None:
    value = SHAPES[kind]
    hits = list(find_secrets(f'x = "{value}"'))
    assert [h.kind for h in hits][:1] == [kind] or (kind.startswith("base64") and hits[0].kind.startswith("base64 of a Stripe")), hits


@pytest.mark.parametrize("text", NOT_SECRETS)
def test_look_alikes_are_not_secrets(text: str) -> None:
    assert list(find_secrets(text)) == []


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_the_loader_refuses_each_shape_masked_in_values_and_comments(kind: str) -> None:
    value = SHAPES[kind]
    fleet = ("version: 1\nagents:\n  - name: aa\n    description: '{v}'\n    runtime: {{service: lambda.amazonaws.com}}\n"
             "    credentials: [{{name: kk, service: svc, type: token}}]  # {v}\n")
    with pytest.raises(FleetError) as exc:
        parse_fleet(fleet.format(v=value), "f.yaml")
    found = {(p.line, "credential" in p.message) for p in exc.value.problems}
    assert found == {(4, True), (6, True)}, exc.value.problems
    assert all(value not in p.message for p in exc.value.problems)


def test_scan_finds_the_new_shapes_masked(tmp_path: Path) -> None:
    code = tmp_path / "agent"
    code.mkdir()
    (code / "main.py").write_text("".join(f'K{i} = "{v}"\n' for i, v in enumerate(SHAPES.values())))
    findings = scan_paths([str(code)])
    assert {f.line for f in findings} == set(range(1, len(SHAPES) + 1))
    for f in findings:
        assert all(v not in f.masked for v in SHAPES.values())


def test_scan_reports_what_it_cannot_read_and_reads_utf16_and_nul_padded(tmp_path: Path) -> None:
    code = tmp_path / "agent"
    code.mkdir()
    key = "sk" + "-proj-" + chars(48)
    (code / "utf16.py").write_bytes(f'KEY = "{key}"\n'.encode("utf-16"))
    (code / "nul.py").write_bytes(b"\x00\x00" + f'KEY = "{key}"\n'.encode())
    (code / "big.py").write_bytes(b"# filler\n" * 300_000 + f'KEY = "{key}"\n'.encode())  # > 2 MB
    (code / "image.bin").write_bytes(bytes(range(256)) * 64)
    skipped: list[NotScanned] = []
    findings = scan_paths([str(code)], not_scanned=skipped)
    assert {Path(f.file).name for f in findings} == {"utf16.py", "nul.py", "big.py"}
    assert [(Path(n.file).name, n.reason) for n in skipped] == [("image.bin", "binary")]
    out, err = io.StringIO(), io.StringIO()
    assert main(["scan", str(code)], out, err) == 1
    assert f"{code / 'image.bin'}:0: not scanned: binary" in out.getvalue()


SOURCE = ("agentfleet", "components", "policy", "docs", "scripts", "bench", ".github", "tests/project",
          "tests/fleets/teams", "README.md", "agents.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml", "Pulumi.local.yaml")


def test_scanning_this_repository_reports_none_of_its_own_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its source, docs, stack files and fixture fleets yield no finding. (The test modules are
    left out for time; `agentfleet scan .` from the root covers them too, without findings.)"""
    monkeypatch.chdir(REPO)
    findings = scan_paths([p for p in SOURCE if (REPO / p).exists()])
    assert findings == [], "\n".join(str(f) for f in findings)


def test_the_ignore_file_lists_deliberate_fakes_as_not_scanned(tmp_path: Path) -> None:
    key = "sk" + "-proj-" + chars(48)
    (tmp_path / "fakes").mkdir()
    (tmp_path / "fakes" / "planted.py").write_text(f'KEY = "{key}"\n')
    (tmp_path / "real.py").write_text(f'KEY = "{key}"\n')
    (tmp_path / ".agentfleet-scan-ignore").write_text("# deliberate test fakes\nfakes/\n")
    skipped: list[NotScanned] = []
    findings = scan_paths([str(tmp_path)], not_scanned=skipped)
    assert [Path(f.file).name for f in findings] == ["real.py"]
    assert [(Path(n.file).name, "fakes/" in n.reason) for n in skipped] == [("planted.py", True)]
    # The repository's own ignore file names only the loader's corpus of bad fleets.
    assert (REPO / ".agentfleet-scan-ignore").read_text().split("\n")[2:] == ["tests/fleets/bad/", ""]
