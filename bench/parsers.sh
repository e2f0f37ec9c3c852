#!/usr/bin/env bash
# The proxy path's parsers alone, on the benchmark's own messages: ns per message, median of rounds.
# For comparing one build with the next where the whole proxy's figures are too noisy to tell 2%.
#   bash bench/parsers.sh [rounds]
cd "$(dirname "$0")/.." || exit 1
swift build -c release --product parsers-bench >/dev/null && "$(swift build -c release --show-bin-path)/parsers-bench" "$@"
