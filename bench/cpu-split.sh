#!/usr/bin/env bash
# Where a proxied request's CPU goes, nginx `proxy_pass` beside llm-proxy in alternated runs against the same
# mock: user and kernel CPU µs a request (the whole process: llm-proxy's store threads included) and TCP
# segments a request (`OutSegs` of /proc/net/snmp; both ends are on loopback, so four is the minimum).
#   C=16 DUR=5 RUNS=2 bash bench/cpu-split.sh        (BIN=path: an llm-proxy binary instead of a release build)
cd "$(dirname "$0")/.." || exit 1
source bench/lib.sh
C=${C:-16}; DUR=${DUR:-5}; RUNS=${RUNS:-2}
[ -n "${BIN:-}" ] || swift build -c release --product llm-proxy >/dev/null 2>&1 || { echo "build failed"; exit 1; }
BIN=${BIN:-$(swift build -c release --show-bin-path)/llm-proxy}
write_chat_request "$BENCH_TMP/req.json"
write_mock_body "$BENCH_TMP/body.json"
MOCK=$(free_port); OURS=$(free_port); NGX=$(free_port)
start_nginx_static mock "$MOCK" /v1/chat/completions "$BENCH_TMP/body.json" 0
mkdir -p "$BENCH_TMP/proxy/pt" "$BENCH_TMP/store"
cat >"$BENCH_TMP/proxy/nginx.conf" <<NGX
worker_processes 1;
master_process off;
daemon off;
pid $BENCH_TMP/proxy/nginx.pid;
error_log $BENCH_TMP/proxy/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  client_body_temp_path $BENCH_TMP/proxy/cb;
  proxy_temp_path $BENCH_TMP/proxy/pt;
  upstream mock { server 127.0.0.1:$MOCK; keepalive 256; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$NGX;
    location / { proxy_pass http://mock; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGX
start_bg nginx 1 nginx -c "$BENCH_TMP/proxy/nginx.conf" -p "$BENCH_TMP/proxy"
export LLM_PROXY_DATABASE_URL="sqlite:$BENCH_TMP/store/llm-proxy.db"
CONN=$("$BIN" connection add --name mock --provider openai --endpoint "http://127.0.0.1:$MOCK/v1" --api-key sk-upstream --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
KEY=$("$BIN" vkey add --name bench --conn-id "$CONN" --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
start_bg ours 1 "$BIN" serve --listen "127.0.0.1:$OURS" --event-loops 1 --log-level warning
wait_port "$MOCK" 10 && wait_port "$NGX" 10 && wait_port "$OURS" 10 || { echo "a server did not start"; exit 1; }
write_wrk_script "$BENCH_TMP/key.lua" "$BENCH_TMP/req.json" "$KEY"
out_segments() { awk '/^Tcp:/ { if (seen) print $12; seen = 1 }' /proc/net/snmp; }
field() { awk -v f="$2" '{print $f}' "/proc/$1/stat"; }
echo "target conns req/s p99_us user_us/req kernel_us/req segments/req"
for i in $(seq 1 "$RUNS"); do
  for target in nginx ours; do
    port=$NGX; [ "$target" = ours ] && port=$OURS
    pid=$(cat "$BENCH_TMP/$target.pid")
    url="http://127.0.0.1:$port/v1/chat/completions"
    taskset -c 0 wrk -t1 -c"$C" -d2s -s "$BENCH_TMP/key.lua" "$url" >/dev/null 2>&1  # warm-up
    u0=$(field "$pid" 14); k0=$(field "$pid" 15); s0=$(out_segments)
    out=$(taskset -c 0 wrk -t1 -c"$C" -d"${DUR}s" -s "$BENCH_TMP/key.lua" "$url" | grep '^RESULT')
    u1=$(field "$pid" 14); k1=$(field "$pid" 15); s1=$(out_segments)
    n=$(echo "$out" | sed 's/.*requests=\([0-9]*\).*/\1/')
    rps=$(echo "$out" | sed 's/.*rps=\([0-9.]*\).*/\1/'); p99=$(echo "$out" | sed 's/.*p99_us=\([0-9]*\).*/\1/')
    awk -v t="$target" -v c="$C" -v r="$rps" -v p="$p99" -v n="$n" -v hz="$HZ" -v u="$((u1 - u0))" -v k="$((k1 - k0))" -v s="$((s1 - s0))" \
      'BEGIN { printf "%s %s %s %s %.1f %.1f %.2f\n", t, c, r, p, u / hz * 1e6 / n, k / hz * 1e6 / n, s / n }'
  done
done
