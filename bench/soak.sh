#!/usr/bin/env bash
# A long run of one node (one event loop on CPU 1; the nginx mock and wrk on CPU 0) with a usage retention:
# every STEP seconds, usage rows written, pruned and kept, dropped and queued records, the database's size
# on disk and the node's RSS — whether the store and the process level off. BIN=path runs another build.
#   DUR=900 STEP=60 RET=2m C=1 bash bench/soak.sh
cd "$(dirname "$0")/.." || exit 1
source bench/lib.sh
DUR=${DUR:-900}; STEP=${STEP:-60}; RET=${RET:-2m}; C=${C:-1}
[ -n "${BIN:-}" ] || swift build -c release --product llm-proxy >/dev/null 2>&1 || { echo "build failed"; exit 1; }
BIN=${BIN:-$(swift build -c release --show-bin-path)/llm-proxy}
write_chat_request "$BENCH_TMP/req.json"; write_mock_body "$BENCH_TMP/body.json"
MOCK=$(free_port); OURS=$(free_port)
start_nginx_static mock "$MOCK" /v1/chat/completions "$BENCH_TMP/body.json" 0
mkdir -p "$BENCH_TMP/store"; export LLM_PROXY_DATABASE_URL="sqlite:$BENCH_TMP/store/llm-proxy.db"
CONN=$("$BIN" connection add --name mock --provider openai --endpoint "http://127.0.0.1:$MOCK/v1" --api-key sk-upstream --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
KEY=$("$BIN" vkey add --name bench --conn-id "$CONN" --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
start_bg ours 1 "$BIN" serve --listen "127.0.0.1:$OURS" --event-loops 1 --log-level warning --access-log false --usage-retention "$RET"
wait_port "$MOCK" 10 && wait_port "$OURS" 10 || { echo "a server did not start"; exit 1; }
write_wrk_script "$BENCH_TMP/key.lua" "$BENCH_TMP/req.json" "$KEY"
pid=$(cat "$BENCH_TMP/ours.pid")
taskset -c 0 wrk -t1 -c"$C" -d"${DUR}s" -s "$BENCH_TMP/key.lua" "http://127.0.0.1:$OURS/v1/chat/completions" >"$BENCH_TMP/wrk.txt" 2>&1 &
w=$!
metric() { echo "$1" | awk -v name="$2" '$1 == name {print $2}'; }
for i in $(seq 1 $((DUR / STEP))); do
  sleep "$STEP"
  m=$(curl -s "http://127.0.0.1:$OURS/metrics")
  written=$(metric "$m" llmp_usage_written_total); pruned=$(metric "$m" llmp_usage_pruned_total)
  echo "t=$((i * STEP))s written=$written pruned=${pruned:-0}" \
    "kept=$(awk -v a="${written:-0}" -v b="${pruned:-0}" 'BEGIN{printf "%d", a - b}')" \
    "dropped=$(metric "$m" llmp_usage_dropped_total) queue=$(metric "$m" llmp_usage_queue_depth)" \
    "db_mb=$(du -sm "$BENCH_TMP/store" | cut -f1) rss_kib=$(rss_kib "$pid")"
done
wait "$w"; grep RESULT "$BENCH_TMP/wrk.txt"
rm -rf "$BENCH_TMP/store"
