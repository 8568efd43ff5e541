#!/usr/bin/env bash
# Installs what the project needs, idempotently: a Python 3.11 venv with requirements-dev.txt,
# Azurite and playwright-core from package-lock.json, and with --browser (the test command)
# Debian's chromium for the dashboard's browser test. Re-running installs only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))'; then
  echo "setup: Python 3.11 or newer is needed (found $("$python" --version 2>&1)); set PYTHON=" >&2
  exit 1
fi
command -v npm >/dev/null || { echo "setup: npm (Node.js 20+) is needed for Azurite and the browser test" >&2; exit 1; }

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
  echo "setup: installing Azurite and playwright-core (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock" > node_modules/.lock.sha
fi

# The dashboard's browser test drives Debian's Chromium (tests/api/test_dashboard.py). CI runs as
# root on a fresh Debian machine: install it there; elsewhere say how (the test fails without it).
if [ "${1:-}" = "--browser" ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian's chromium (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "setup: /usr/bin/chromium is missing; the browser test needs it:" \
      "sudo apt-get install --no-install-recommends chromium" >&2
  fi
fi
