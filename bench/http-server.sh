#!/usr/bin/env bash
# Side by side in one run: the project's HTTP server (mock-provider, release build) and nginx (Debian), each
# serving the same fixed 570-byte chat completion on one core, driven by wrk (one thread, the other core)
# at 1, 16 and 64 connections, ROUNDS rounds with the targets alternated. Prints req/s, p50, p99, CPU µs per
# request, medians over rounds, and the ratios llm-proxy / nginx.
#
#   bash bench/http-server.sh                 # DUR=10 ROUNDS=3
#   DUR=3 ROUNDS=1 bash bench/http-server.sh  # quick look
cd "$(dirname "$0")/.." || exit 1
source bench/lib.sh
DUR=${DUR:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-"1 16 64"}
SERVER_CPU=1
CLIENT_CPU=0

command -v nginx >/dev/null && command -v wrk >/dev/null || { echo "needs nginx and wrk (apt-get install nginx-light wrk)"; exit 1; }
log "building mock-provider (release)"
swift build -c release --product mock-provider >/dev/null 2>&1 || { echo "build failed"; exit 1; }
BIN=$(swift build -c release --show-bin-path)/mock-provider

printf '%s' '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}],"max_tokens":64}' >"$BENCH_TMP/req.json"
python3 - "$BENCH_TMP/body.json" <<'PY'
import re, sys
src = open("Tests/MockProvider/MockProvider.swift").read()
body = re.search(r'#"(\{"id":"chatcmpl-mock0001".*?)"#', src).group(1)
open(sys.argv[1], "w").write(body)
PY
write_wrk_script "$BENCH_TMP/post.lua" "$BENCH_TMP/req.json" none

NGINX_PORT=$(free_port); OURS_PORT=$(free_port)
start_nginx_static nginx "$NGINX_PORT" /v1/chat/completions "$BENCH_TMP/body.json" $SERVER_CPU
start_bg ours $SERVER_CPU "$BIN" --listen "127.0.0.1:$OURS_PORT" --event-loops 1 --bench
wait_port "$NGINX_PORT" 10 && wait_port "$OURS_PORT" 10 || { echo "servers did not start"; cat "$BENCH_TMP"/*.log; exit 1; }
NGINX_PID=$(cat "$BENCH_TMP/nginx.pid"); OURS_PID=$(cat "$BENCH_TMP/ours.pid")
log "body bytes: $(stat -c %s "$BENCH_TMP/body.json") (nginx) / $(curl -s -XPOST "http://127.0.0.1:$OURS_PORT/v1/chat/completions" | wc -c) (ours)"

RES="$BENCH_TMP/results.txt"; : >"$RES"
for ((r = 1; r <= ROUNDS; r++)); do
  for c in $CONNS; do
    order="nginx ours"; [ $((r % 2)) = 0 ] && order="ours nginx"
    for t in $order; do
      if [ "$t" = nginx ]; then pid=$NGINX_PID port=$NGINX_PORT; else pid=$OURS_PID port=$OURS_PORT; fi
      line=$(run_wrk "$t" "$pid" "http://127.0.0.1:$port/v1/chat/completions" "$c" "$DUR" "$BENCH_TMP/post.lua" $CLIENT_CPU)
      echo "$r $t $c $line" >>"$RES"
      log "round $r $t c=$c: rps p50_us p99_us cpu_us/req errors = $line"
    done
  done
done
echo "RSS KiB after the run: nginx $(rss_kib "$NGINX_PID"), llm-proxy server $(rss_kib "$OURS_PID")"

echo
echo "| conns | nginx req/s | llm-proxy req/s | ratio | nginx p50 µs | ours p50 µs | nginx p99 µs | ours p99 µs | p99 ratio | nginx CPU µs/req | ours CPU µs/req | errors |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for c in $CONNS; do
  m() { awk -v t="$1" -v c="$c" -v f="$2" '$2==t && $3==c {print $f}' "$RES" | median; }
  nr=$(m nginx 4); or=$(m ours 4); n50=$(m nginx 5); o50=$(m ours 5); n99=$(m nginx 6); o99=$(m ours 6); ncpu=$(m nginx 7); ocpu=$(m ours 7)
  errs=$(awk -v c="$c" '$3==c {s+=$8} END{print s+0}' "$RES")
  echo "| $c | $nr | $or | $(awk -v a="$or" -v b="$nr" 'BEGIN{printf "%.2f", a/b}') | $n50 | $o50 | $n99 | $o99 | $(awk -v a="$o99" -v b="$n99" 'BEGIN{printf "%.2f", a/b}') | $ncpu | $ocpu | $errs |"
done
