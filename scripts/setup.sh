#!/usr/bin/env bash
# Installs what the project needs, idempotently: a Python 3.11 venv with requirements-dev.txt,
# and Azurite from package-lock.json. Re-running installs only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))'; then
  echo "setup: Python 3.11 or newer is needed (found $("$python" --version 2>&1)); set PYTHON=" >&2
  exit 1
fi
command -v npm >/dev/null || { echo "setup: npm (Node.js 18+) is needed for Azurite" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$python" -m venv .venv
fi
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat .venv/.requirements.sha 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > .venv/.requirements.sha
fi

lock=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.lock.sha 2>/dev/null)" != "$lock" ]; then
  echo "setup: installing Azurite (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock" > node_modules/.lock.sha
fi
