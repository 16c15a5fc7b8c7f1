#!/usr/bin/env bash
# The whole test suite: set up .venv, type-check against the provider SDKs' hints, run pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== mypy (type-checks resource arguments the mock runtime would accept blindly)"
.venv/bin/python -m mypy
echo "== pytest"
.venv/bin/python -m pytest "$@"
