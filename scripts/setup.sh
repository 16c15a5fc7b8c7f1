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
# A real PostgreSQL for the database-rotation tests (tests/postgres_server.py starts it on 127.0.0.1).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    # Binaries only: no system cluster (the tests start their own, on a random loopback port).
    if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
      mkdir -p /etc/postgresql-common && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
    fi
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
      || echo "setup.sh: could not install postgresql; tests/test_rotation_postgres.py will fail" >&2
  else
    echo "setup.sh: PostgreSQL binaries missing: sudo apt-get install -y postgresql" >&2
  fi
fi
# The project itself, editable: the `agentfleet` command and `import agentfleet` from any folder
# (no dependencies: the pinned set above is the one that is tested).
if [ ! -x .venv/bin/agentfleet ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
fi
# Byte-compile the project's own modules, as `pip install` does for an installed package: with an
# editable install under PYTHONDONTWRITEBYTECODE (set on this project's machines) every command
# would compile them again (about 0.1 s of each short verb). Python rechecks each file's source
# before using its cache, so an edited file is never run stale.
.venv/bin/python -m compileall -q -j 0 agentfleet components > /dev/null
