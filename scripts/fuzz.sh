#!/usr/bin/env bash
# Builds each libFuzzer target (release, -sanitize=fuzzer, its own build folder) and runs it for a bounded
# time on its seed corpus. Exits non-zero on a crash, leaving the reproducer in fuzz-artifacts/.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
targets=(http-parser proxy-parsers)
mkdir -p fuzz-artifacts
for t in "${targets[@]}"; do
  product="$t-fuzzer"
  swift build -c release --scratch-path .build/fuzz --product "$product" --sanitize=fuzzer -Xswiftc -DFUZZING >/dev/null
  corpus=$(mktemp -d /tmp/llmp-corpus.XXXXXX)
  cp Tests/Fuzz/corpus/"$t"/* "$corpus"/
  echo "fuzz: $product for ${secs}s"
  if ! SWIFT_BACKTRACE=enable=no .build/fuzz/release/"$product" -max_total_time="$secs" -max_len=8192 \
       -artifact_prefix=fuzz-artifacts/"$t"- -print_final_stats=1 "$corpus" >"$corpus.log" 2>&1; then
    tail -40 "$corpus.log" >&2
    echo "fuzz: $product crashed; reproducer in fuzz-artifacts/" >&2
    exit 1
  fi
  grep -E 'stat::number_of_executed_units|Done' "$corpus.log" | tail -2
  rm -rf "$corpus" "$corpus.log"
done
