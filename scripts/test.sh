#!/usr/bin/env bash
# Installs what is missing and runs every test: unit and integration tests (`swift test`; integration
# tests start their own throwaway servers on free loopback ports) and a bounded libFuzzer run of every
# parser of untrusted bytes. Under CI=true an integration test that cannot find its server fails.
#   FUZZ_SECONDS=N (default 30) per fuzzer
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
export LLM_PROXY_TEST_VENV="$PWD/.venv"

# Builds before the node released libmongoc's counter segment at start left /dev/shm/mongoc-PID behind
# when killed; a new process given such an id prints a plain-text warning before its first log line.
for segment in /dev/shm/mongoc-*; do
  [ -e "$segment" ] && [ ! -d "/proc/${segment##*-}" ] && rm -f "$segment"
done

log=$(mktemp /tmp/llmp-test.XXXXXX)
trap 'rm -f "$log"' EXIT

echo "== swift test"
# Serial: many tests block a thread on sockets or child processes, and Swift's cooperative pool has one
# thread per core (2 here), so running suites side by side would starve each other's timers.
set +e
swift test --no-parallel 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  echo "swift test failed (exit $status)" >&2
  exit "$status"
fi
tests=$(grep -Eo 'Test run with [0-9]+ tests?' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
[ "$tests" -gt 0 ] || { echo "swift test ran no test" >&2; exit 1; }

echo "== deployment files (compose validity, runtime libraries)"
scripts/verify-deploy.sh

echo "== fuzz (${FUZZ_SECONDS:-30}s per target)"
scripts/fuzz.sh "${FUZZ_SECONDS:-30}"

echo "tests: $tests passed, 0 failed"
