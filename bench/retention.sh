#!/usr/bin/env bash
# What usage pruning costs a node under load: the set-up of bench/profile.sh (one event loop on CPU 1,
# the nginx mock and wrk on CPU 0, C connections), run twice per round on the same kind of store — once
# with --usage-retention 0 (keeps everything) and once with RETENTION (default 40s). Each run first loads
# the node for FILL seconds (~30k usage records a second), then measures for DUR seconds starting when
# those records begin to pass the retention, so the pruning node deletes them while it serves. Prints
# per run req/s, p50/p99, node CPU µs/request, records pruned and dropped; medians per variant at the end.
#   ROUNDS=2 C=16 bash bench/retention.sh
cd "$(dirname "$0")/.." || exit 1
source bench/lib.sh
C=${C:-16}; FILL=${FILL:-20}; DUR=${DUR:-30}; ROUNDS=${ROUNDS:-2}; RETENTION=${RETENTION:-40s}
[ -n "${BIN:-}" ] || swift build -c release --product llm-proxy >/dev/null 2>&1 || { echo "build failed"; exit 1; }
BIN=${BIN:-$(swift build -c release --show-bin-path)/llm-proxy}
retention_s=$(( $(echo "$RETENTION" | tr -dc 0-9) ))
write_chat_request "$BENCH_TMP/req.json"
write_mock_body "$BENCH_TMP/body.json"
MOCK=$(free_port)
start_nginx_static mock "$MOCK" /v1/chat/completions "$BENCH_TMP/body.json" 0
wait_port "$MOCK" 10 || { echo "the mock did not start"; exit 1; }

# one_run NAME RETENTION -> prints "rps p50 p99 cpu pruned dropped"
one_run() {
  local name=$1 keep=$2 dir="$BENCH_TMP/$1-$RANDOM" port
  mkdir -p "$dir"
  export LLM_PROXY_DATABASE_URL="sqlite:$dir/llm-proxy.db"
  local conn key
  conn=$("$BIN" connection add --name mock --provider openai --endpoint "http://127.0.0.1:$MOCK/v1" --api-key sk-upstream --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  key=$("$BIN" vkey add --name bench --conn-id "$conn" --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
  port=$(free_port)
  start_bg "$name" 1 "$BIN" serve --listen "127.0.0.1:$port" --event-loops 1 --log-level warning --access-log false --usage-retention "$keep"
  local pid; pid=$(cat "$BENCH_TMP/$name.pid")
  wait_port "$port" 10 || { echo "nan nan nan nan nan nan"; return; }
  write_wrk_script "$dir/key.lua" "$BENCH_TMP/req.json" "$key"
  local url="http://127.0.0.1:$port/v1/chat/completions" started=$SECONDS
  taskset -c 0 wrk -t1 -c"$C" -d"${FILL}s" -s "$dir/key.lua" "$url" >/dev/null 2>&1
  # Start measuring when the first filled records are about to pass the retention.
  local wait_s=$(( retention_s - (SECONDS - started) - 2 ))
  [ "$wait_s" -gt 0 ] && sleep "$wait_s"
  local measured; measured=$(WARM=0 run_wrk "$name" "$pid" "$url" "$C" "$DUR" "$dir/key.lua" 0)
  local metrics; metrics=$(curl -s "http://127.0.0.1:$port/metrics")
  local pruned dropped
  pruned=$(echo "$metrics" | awk '/^llmp_usage_pruned_total /{print $2}')
  dropped=$(echo "$metrics" | awk '/^llmp_usage_dropped_total /{print $2}')
  kill -TERM "$pid"; wait "$pid" 2>/dev/null
  rm -rf "$dir"
  echo "$(echo "$measured" | cut -d' ' -f1-4) ${pruned:-0} ${dropped:-nan}"
}

echo "| run | variant | req/s | p50 µs | p99 µs | CPU µs/req | pruned | dropped |"
echo "|---|---|---|---|---|---|---|---|"
: >"$BENCH_TMP/keep.txt"; : >"$BENCH_TMP/prune.txt"
for r in $(seq "$ROUNDS"); do
  for v in keep prune; do
    keep=0; [ "$v" = prune ] && keep=$RETENTION
    res=$(one_run "$v" "$keep")
    echo "$res" >>"$BENCH_TMP/$v.txt"
    echo "| $r | $v ($keep) | $(echo "$res" | tr ' ' '|' | sed 's/|/ | /g') |"
  done
done
for v in keep prune; do
  echo "median $v: req/s $(cut -d' ' -f1 "$BENCH_TMP/$v.txt" | median), p99 µs $(cut -d' ' -f3 "$BENCH_TMP/$v.txt" | median), CPU µs/req $(cut -d' ' -f4 "$BENCH_TMP/$v.txt" | median), pruned $(cut -d' ' -f5 "$BENCH_TMP/$v.txt" | median)"
done
