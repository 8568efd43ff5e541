#!/usr/bin/env bash
# The test command: installs what is missing, then lint, type check and the test suite.
# Arguments go to pytest (e.g. scripts/test.sh -k pipeline).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --browser
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
