"""Rewrite the README's generated stack-settings table from `settings_markdown()` (tests/test_readme.py checks it)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from agentfleet.core.settings import settings_markdown

README = Path(__file__).resolve().parent.parent / "README.md"


def main() -> int:
    text = README.read_text(encoding="utf-8")
    new, n = re.subn(r"(<!-- settings:begin[^>]*-->\n)(.*?)(<!-- settings:end -->)",
                     lambda m: m.group(1) + settings_markdown() + m.group(3), text, flags=re.S)
    if n != 1:
        print("README.md has no settings:begin/end section", file=sys.stderr)
        return 1
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
