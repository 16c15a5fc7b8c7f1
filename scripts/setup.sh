#!/usr/bin/env bash
# Create .venv in the repo root (the virtualenv Pulumi.yaml names) with the pinned dependencies.
# Idempotent: re-installs only when requirements.txt changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
want="$(sha256sum requirements.txt | cut -d' ' -f1)"
have="$(cat .venv/.requirements.sha256 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  .venv/bin/python -m pip check
  echo "$want" > .venv/.requirements.sha256
fi
# The project itself, editable: the `agentfleet` command and `import agentfleet` from any folder
# (no dependencies: the pinned set above is the one that is tested).
if [ ! -x .venv/bin/agentfleet ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
fi
