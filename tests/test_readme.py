"""The README matches the code: settings table, CLI verbs, and CI runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

from agentfleet.cli.main import build_parser
from agentfleet.core.settings import settings_markdown


def readme(repo: Path) -> str:
    return (repo / "README.md").read_text(encoding="utf-8")


def test_settings_table_is_generated_from_the_code(repo: Path) -> None:
    text = readme(repo)
    m = re.search(r"<!-- settings:begin[^>]*-->\n(.*?)<!-- settings:end -->", text, re.S)
    assert m, "README lost its generated settings section"
    assert m.group(1) == settings_markdown(), (
        "README settings table is stale: regenerate it from agentfleet.core.settings.settings_markdown()"
    )


def test_every_cli_verb_is_in_the_readme(repo: Path) -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    verbs = set(sub.choices)  # type: ignore[arg-type]
    assert verbs >= {"validate", "plan", "preview", "check", "audit", "diff", "scan", "schema"}
    text = readme(repo)
    missing = [v for v in verbs if f".venv/bin/agentfleet {v}" not in text]
    assert not missing


def test_ci_runs_the_readme_test_command(repo: Path) -> None:
    text = readme(repo)
    assert "bash scripts/test.sh" in text and "bash scripts/setup.sh && .venv/bin/agentfleet preview" in text
    assert "bash scripts/test.sh" in (repo / ".ci" / "run").read_text()
