#!/usr/bin/env bash
# The demo: installs what is missing, starts Azurite and the Graph emulator with a demo tenant,
# polls, serves the HTTP API and keeps polling while it runs. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m devtools.demo "$@"
