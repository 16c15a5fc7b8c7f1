"""`audit`: one row per credential, read off build_plan, in markdown, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ruamel.yaml import YAML

from agentfleet.review.audit import COLUMNS, audit_rows
from agentfleet.cli.main import main
from agentfleet.core.loader import load_fleet
from agentfleet.core.model import Fleet
from agentfleet.core.plan import build_plan
from agentfleet.core.settings import StackSettings


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def write_fleet(tmp_path: Path, root: Path, text: str) -> Path:
    (tmp_path / "Pulumi.dev.yaml").write_text((root / "Pulumi.dev.yaml").read_text())
    path = tmp_path / "agents.yaml"
    path.write_text(text)
    return path


def test_rows_match_the_plan_for_the_sample_fleet(sample_fleet: Fleet, dev_settings: StackSettings) -> None:
    plan = build_plan(sample_fleet, dev_settings)
    rows = audit_rows(plan)
    expected = {
        (a["name"], c["name"]): (a, c) for a in plan["agents"] for c in a["credentials"]
    }
    assert len(rows) == len(expected) == sum(len(a.credentials) for a in sample_fleet.agents) == 11
    assert {(r.agent, r.credential) for r in rows} == set(expected)
    for r in rows:
        a, c = expected[(r.agent, r.credential)]
        assert (r.owner, r.paused) == (a["owner"], a["paused"])
        assert (r.service, r.type, r.classification) == (c["service"], c["type"], c["classification"])
        assert (r.rotation_strategy, r.rotation_days) == (c["rotation_strategy"], c["rotation_days"])
        assert list(r.stores) == sorted(c["stores"])
        assert (r.secret_name, r.vault_mount, r.vault_path) == (c["secret_name"], c["vault_mount"], c["vault_path"])
    # Stores decide the location: a vault-only credential has no Secrets Manager name and back.
    github = next(r for r in rows if (r.agent, r.credential) == ("release-notes", "github"))
    assert github.stores == ("vault",) and github.secret_name is None and github.vault_path is not None
    stripe = next(r for r in rows if (r.agent, r.credential) == ("billing", "stripe"))
    assert stripe.stores == ("aws",) and stripe.vault_path is None and stripe.vault_mount is None
    assert stripe.secret_name is not None


def test_json_is_stable_and_ignores_file_order(tmp_path: Path, root: Path) -> None:
    code, first, err = run("audit", str(root / "agents.yaml"), "--format", "json")
    assert code == 0, err
    assert run("audit", str(root / "agents.yaml"), "--format", "json")[1] == first
    # Reverse the agents in the file: same table.
    yaml = YAML(typ="rt")
    doc = yaml.load((root / "agents.yaml").read_text())
    doc["agents"] = list(reversed(doc["agents"]))
    buf = io.StringIO()
    yaml.dump(doc, buf)
    swapped = write_fleet(tmp_path, root, buf.getvalue())
    assert load_fleet(swapped).agents[0].name != load_fleet(root / "agents.yaml").agents[0].name
    assert run("audit", str(swapped), "--format", "json")[1] == first
    doc = json.loads(first)
    assert [(c["agent"], c["credential"]) for c in doc["credentials"]] == sorted(
        (c["agent"], c["credential"]) for c in doc["credentials"]
    )
    assert set(doc["credentials"][0]) == set(COLUMNS)


def test_csv_parses_back_to_the_rows(sample_fleet: Fleet, dev_settings: StackSettings, root: Path) -> None:
    code, out, _ = run("audit", str(root / "agents.yaml"), "--format", "csv")
    assert code == 0
    parsed = list(csv.DictReader(io.StringIO(out)))
    rows = audit_rows(build_plan(sample_fleet, dev_settings))
    assert len(parsed) == len(rows)
    for got, row in zip(parsed, rows):
        assert got["agent"] == row.agent and got["credential"] == row.credential
        assert got["stores"].split() == list(row.stores)
        assert got["secret_name"] == (row.secret_name or "")
        assert got["vault_path"] == (row.vault_path or "")
        assert int(got["rotation_days"]) == row.rotation_days
        assert got["paused"] == "false"


def test_markdown_has_one_table_row_per_credential(root: Path) -> None:
    code, out, _ = run("audit", str(root / "agents.yaml"))
    assert code == 0
    table = [line for line in out.splitlines() if line.startswith("| `")]
    assert len(table) == 11
    header = next(line for line in out.splitlines() if line.startswith("| Agent"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert "Location" in cells and "Paused" in cells and "Rotation" in cells
    row = next(line for line in table if line.startswith("| `research` ") and "`openai`" in line)
    values = dict(zip(cells, [c.strip() for c in row.strip("|").split("|")]))
    assert values["Location"] == "`Secrets Manager agents/dev/research/openai`<br>`Vault kv/dev/research/openai`"
    assert values["Rotation"] == "openai" and values["Paused"] == "no"


def test_paused_agent_is_marked_in_every_format(tmp_path: Path, root: Path) -> None:
    text = (root / "agents.yaml").read_text().replace(
        "  - name: billing\n", "  - name: billing\n    paused: true\n"
    )
    path = write_fleet(tmp_path, root, text)
    doc = json.loads(run("audit", str(path), "--format", "json")[1])
    paused = {(c["agent"], c["credential"]) for c in doc["credentials"] if c["paused"]}
    assert paused == {("billing", "stripe"), ("billing", "webhook-signing"), ("billing", "ledger-api")}
    rows = list(csv.DictReader(io.StringIO(run("audit", str(path), "--format", "csv")[1])))
    assert {r["agent"] for r in rows if r["paused"] == "true"} == {"billing"}
    md = run("audit", str(path))[1]
    flagged = [line for line in md.splitlines() if line.startswith("| `") and line.endswith("| **yes** |")]
    assert len(flagged) == 3 and all(line.startswith("| `billing` ") for line in flagged)
    assert "(1 paused)" in md


def test_invalid_fleet_gives_the_validate_errors(tmp_path: Path, root: Path) -> None:
    bad = write_fleet(tmp_path, root, "version: 1\nagents:\n  - name: Bad\n    credentials: []\n")
    code_v, _, err_v = run("validate", str(bad))
    for fmt in ("markdown", "csv", "json"):
        code, out, err = run("audit", str(bad), "--format", fmt)
        assert (code, out) == (1, "")
        assert err == err_v and code_v == 1
    assert f"{bad}:3:" in err_v
