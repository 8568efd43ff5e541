#!/usr/bin/env bash
# The benchmark command: installs what is missing, then runs the harness (`python -m bench`).
# Arguments go to the harness, e.g. bench/run.sh --quick, bench/run.sh --sizes 500,2000 --latency-ms 40.
# Writes docs/benchmarks.md and bench/results/latest.json.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m bench "$@"
