#!/usr/bin/env bash
# Installs what is missing, builds a release binary and runs one node on the embedded default
# (0.0.0.0:8132). Extra arguments go to `llm-proxy serve` (see `--help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh run
swift build -c release --product llm-proxy
exec "$(swift build -c release --show-bin-path)/llm-proxy" serve "$@"
