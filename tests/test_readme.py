"""The README matches the code: settings table, CLI verbs, and CI runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

from components.cli import build_parser
from components.settings import settings_markdown


def readme(root: Path) -> str:
    return (root / "README.md").read_text(encoding="utf-8")


def test_settings_table_is_generated_from_the_code(root: Path) -> None:
    text = readme(root)
    m = re.search(r"<!-- settings:begin[^>]*-->\n(.*?)<!-- settings:end -->", text, re.S)
    assert m, "README lost its generated settings section"
    assert m.group(1) == settings_markdown(), (
        "README settings table is stale: regenerate it from components.settings.settings_markdown()"
    )


def test_every_cli_verb_is_in_the_readme(root: Path) -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    verbs = set(sub.choices)  # type: ignore[arg-type]
    assert verbs >= {"validate", "plan", "preview", "check", "audit", "diff", "scan", "schema"}
    text = readme(root)
    missing = [v for v in verbs if f"python -m components {v}" not in text]
    assert not missing


def test_ci_runs_the_readme_test_command(root: Path) -> None:
    text = readme(root)
    assert "bash scripts/test.sh" in text and "bash scripts/setup.sh && .venv/bin/python -m components preview" in text
    assert "bash scripts/test.sh" in (root / ".ci" / "run").read_text()
