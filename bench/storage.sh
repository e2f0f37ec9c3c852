#!/usr/bin/env bash
# Usage inserts (batched) and key lookups by hash per backend: SQLite file, throwaway PostgreSQL 15,
# SecantusDB (MongoDB wire protocol). Needs `scripts/install-deps.sh test` first.
#   bash bench/storage.sh [records] [lookups] [concurrency] [batch]    (BACKENDS=sqlite: only those)
cd "$(dirname "$0")/.." || exit 1
export LLM_PROXY_TEST_VENV="$PWD/.venv"
swift build -c release --product store-bench >/dev/null && "$(swift build -c release --show-bin-path)/store-bench" "$@"
