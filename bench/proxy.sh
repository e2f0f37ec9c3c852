#!/usr/bin/env bash
# The proxy path side by side in one run, all in front of the same nginx mock upstream serving the fixed
# 570-byte chat completion:
#   direct     wrk → mock
#   nginx      wrk → nginx proxy_pass (upstream keepalive) → mock            (the floor)
#   llm-proxy  wrk → llm-proxy (virtual-key auth, provider key injected, usage recorded) → mock
#   litellm    wrk → LiteLLM proxy (master key, 1 worker) → mock              (if LITELLM=path/to/litellm)
# wrk (1 thread) and the mock on CPU 0, the proxy under test on CPU 1; rounds alternate the order.
#   DUR=10 ROUNDS=3 LITELLM=/tmp/litellm-venv/bin/litellm bash bench/proxy.sh
cd "$(dirname "$0")/.." || exit 1
source bench/lib.sh
DUR=${DUR:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-"1 16 64"}
LITELLM=${LITELLM:-}

log "building llm-proxy (release)"
swift build -c release --product llm-proxy >/dev/null 2>&1 || { echo "build failed"; exit 1; }
BIN=$(swift build -c release --show-bin-path)/llm-proxy

write_chat_request "$BENCH_TMP/req.json"
write_mock_body "$BENCH_TMP/body.json"

MOCK=$(free_port); NGX=$(free_port); OURS=$(free_port); LIT=$(free_port)
start_nginx_static mock "$MOCK" /v1/chat/completions "$BENCH_TMP/body.json" 0
mkdir -p "$BENCH_TMP/nginx-proxy"
cat >"$BENCH_TMP/nginx-proxy/nginx.conf" <<NGX
worker_processes 1;
master_process off;
daemon off;
pid $BENCH_TMP/nginx-proxy/nginx.pid;
error_log $BENCH_TMP/nginx-proxy/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  client_body_temp_path $BENCH_TMP/nginx-proxy/cbt;
  proxy_temp_path $BENCH_TMP/nginx-proxy/pt;
  fastcgi_temp_path $BENCH_TMP/nginx-proxy/ft;
  uwsgi_temp_path $BENCH_TMP/nginx-proxy/ut;
  scgi_temp_path $BENCH_TMP/nginx-proxy/st;
  upstream mock { server 127.0.0.1:$MOCK; keepalive 256; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$NGX backlog=4096;
    location / { proxy_pass http://mock; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGX
start_bg nginx 1 nginx -c "$BENCH_TMP/nginx-proxy/nginx.conf"

export LLM_PROXY_DATABASE_URL="sqlite:$BENCH_TMP/store/llm-proxy.db"
CONN=$("$BIN" connection add --name mock --provider openai --endpoint "http://127.0.0.1:$MOCK/v1" --api-key sk-upstream --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
KEY=$("$BIN" vkey add --name bench --conn-id "$CONN" --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
start_bg ours 1 "$BIN" serve --listen "127.0.0.1:$OURS" --event-loops 1 --log-level warning

TARGETS="direct nginx ours"
if [ -n "$LITELLM" ]; then
  cat >"$BENCH_TMP/litellm.yaml" <<YAML
model_list:
  - model_name: gpt-4o-mini
    litellm_params: { model: openai/gpt-4o-mini, api_base: "http://127.0.0.1:$MOCK/v1", api_key: sk-upstream }
litellm_settings: { num_retries: 0, request_timeout: 30, callbacks: [] }
general_settings: { master_key: sk-bench-master-1234 }
YAML
  start_bg litellm 1 "$LITELLM" --config "$BENCH_TMP/litellm.yaml" --host 127.0.0.1 --port "$LIT" --num_workers 1
  TARGETS="$TARGETS litellm"
fi
for p in $MOCK $NGX $OURS; do wait_port "$p" 15 || { echo "port $p did not open"; tail "$BENCH_TMP"/*.log; exit 1; }; done
[ -n "$LITELLM" ] && { wait_port "$LIT" 120 || { echo "litellm did not start"; tail -20 "$BENCH_TMP/litellm.log"; exit 1; }; }

write_wrk_script "$BENCH_TMP/key.lua" "$BENCH_TMP/req.json" "$KEY"
write_wrk_script "$BENCH_TMP/master.lua" "$BENCH_TMP/req.json" sk-bench-master-1234
target() { # name -> "pid url script"
  case $1 in
    direct) echo "$(cat "$BENCH_TMP/mock.pid") http://127.0.0.1:$MOCK/v1/chat/completions $BENCH_TMP/key.lua" ;;
    nginx) echo "$(cat "$BENCH_TMP/nginx.pid") http://127.0.0.1:$NGX/v1/chat/completions $BENCH_TMP/key.lua" ;;
    ours) echo "$(cat "$BENCH_TMP/ours.pid") http://127.0.0.1:$OURS/v1/chat/completions $BENCH_TMP/key.lua" ;;
    litellm) echo "$(cat "$BENCH_TMP/litellm.pid") http://127.0.0.1:$LIT/v1/chat/completions $BENCH_TMP/master.lua" ;;
  esac
}
log "check: $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" -d @"$BENCH_TMP/req.json" "http://127.0.0.1:$OURS/v1/chat/completions") from llm-proxy"
[ -n "$LITELLM" ] && { log "warming LiteLLM"; taskset -c 0 wrk -t1 -c16 -d10s -s "$BENCH_TMP/master.lua" "http://127.0.0.1:$LIT/v1/chat/completions" >/dev/null 2>&1; }

RES="$BENCH_TMP/results.txt"; : >"$RES"
set -- $TARGETS; n=$#
for ((r = 1; r <= ROUNDS; r++)); do
  for c in $CONNS; do
    order=$(echo $TARGETS | tr ' ' '\n' | awk -v r=$r -v n=$n '{a[NR]=$0} END{for(i=0;i<n;i++) print a[(i+r-1)%n+1]}')
    for t in $order; do
      read -r pid url script <<<"$(target "$t")"
      line=$(run_wrk "$t" "$pid" "$url" "$c" "$DUR" "$script" 0)
      echo "$r $t $c $line" >>"$RES"
      log "round $r $t c=$c: rps p50_us p99_us cpu_us/req errors = $line"
    done
  done
done
echo "RSS KiB after the run: nginx $(rss_kib "$(cat "$BENCH_TMP/nginx.pid")"), llm-proxy $(rss_kib "$(cat "$BENCH_TMP/ours.pid")")$([ -n "$LITELLM" ] && echo ", litellm $(rss_kib "$(cat "$BENCH_TMP/litellm.pid")")")"
sleep 2
echo "llm-proxy usage counters: $(curl -s "http://127.0.0.1:$OURS/metrics" | awk '/^llmp_usage_(queue_depth|dropped_total|written_total) /{printf "%s=%s ", $1, $2}')(dropped must be 0)"
echo "usage rows written by llm-proxy: $("$BIN" usage --output json | python3 -c 'import json,sys; print(sum(r["requests"] for r in json.load(sys.stdin)))')"

echo
echo "| target | conns | req/s | p50 µs | p99 µs | CPU µs/req (proxy) | errors | req/s vs nginx | p99 vs nginx |"
echo "|---|---|---|---|---|---|---|---|---|"
for c in $CONNS; do
  for t in $TARGETS; do
    m() { awk -v t="$1" -v c="$c" -v f="$2" '$2==t && $3==c {print $f}' "$RES" | median; }
    rps=$(m "$t" 4); p50=$(m "$t" 5); p99=$(m "$t" 6); cpu=$(m "$t" 7); nr=$(m nginx 4); n99=$(m nginx 6)
    errs=$(awk -v t="$t" -v c="$c" '$2==t && $3==c {s+=$8} END{print s+0}' "$RES")
    echo "| $t | $c | $rps | $p50 | $p99 | $cpu | $errs | $(awk -v a="$rps" -v b="$nr" 'BEGIN{printf "%.2f", a/b}') | $(awk -v a="$p99" -v b="$n99" 'BEGIN{printf "%.2f", a/b}') |"
  done
done
