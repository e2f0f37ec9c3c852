# Shared helpers for the side-by-side benchmarks (sourced). Method from ../shared/bench/peers-baseline.sh:
# wrk with a Lua script that prints one RESULT line, targets alternated inside every round, CPU time per
# request read from /proc, medians over rounds. Everything targets 127.0.0.1 and is bounded in time.
set -uo pipefail

BENCH_TMP=${BENCH_TMP:-$(mktemp -d /tmp/llmp-bench.XXXXXX)}
PIDS=()
NGINX_PIDFILES=()
HZ=$(getconf CLK_TCK)

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

cleanup() {
  for pf in "${NGINX_PIDFILES[@]}"; do [ -s "$pf" ] && kill -QUIT "$(cat "$pf")" 2>/dev/null; done
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() { # port timeout_s
  local i
  for ((i=0; i<$2*20; i++)); do
    ss -ltn "sport = :$1" | grep -q LISTEN && return 0
    sleep 0.05
  done
  return 1
}

# start_bg NAME CPU CMD... : runs CMD pinned to CPU (or unpinned with CPU=-), records its PID
start_bg() {
  local name=$1 cpu=$2; shift 2
  if [ "$cpu" = - ]; then "$@" >"$BENCH_TMP/$name.log" 2>&1 </dev/null &
  else taskset -c "$cpu" "$@" >"$BENCH_TMP/$name.log" 2>&1 </dev/null &
  fi
  local pid=$!
  PIDS+=("$pid")
  echo "$pid" >"$BENCH_TMP/$name.pid"
}

# CPU ticks of a process and its threads (utime+stime)
ticks_of() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss_kib() { awk '/VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# nginx serving a fixed body on PORT for POST|GET PATH
start_nginx_static() { # name port path body_file cpu
  local name=$1 port=$2 path=$3 body_file=$4 cpu=$5
  local dir="$BENCH_TMP/$name"; mkdir -p "$dir"
  local body; body=$(cat "$body_file")
  cat >"$dir/nginx.conf" <<NGX
worker_processes 1;
master_process off;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  client_body_temp_path $dir/cbt;
  proxy_temp_path $dir/pt;
  fastcgi_temp_path $dir/ft;
  uwsgi_temp_path $dir/ut;
  scgi_temp_path $dir/st;
  server {
    listen 127.0.0.1:$port backlog=4096;
    location = $path { default_type application/json; return 200 '$body'; }
    location / { return 404; }
  }
}
NGX
  start_bg "$name" "$cpu" nginx -c "$dir/nginx.conf" -e "$dir/error.log"
}

write_wrk_script() { # file request_body_file bearer
  cat >"$1" <<LUA
local f = io.open("$2", "r")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $3"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d rps=%.1f p50_us=%d p99_us=%d err=%d non2xx=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))
end
LUA
}

# As write_wrk_script, but each request carries the next of the keys in keys_file (one a line), in turn:
# load spread over many virtual keys, as a shared gateway sees it.
write_wrk_script_keys() { # file request_body_file keys_file
  write_wrk_script "$1" "$2" unused
  { printf 'local keys = {'; sed 's/.*/"&",/' "$3" | tr -d '\n'; printf '}\n'
    cat <<'LUA'
local turn = 0
request = function()
  turn = turn % #keys + 1
  wrk.headers["Authorization"] = "Bearer " .. keys[turn]
  return wrk.format()
end
LUA
  } >>"$1"
}

# run_wrk NAME PID URL CONNS DUR SCRIPT CPU -> prints "rps p50_us p99_us cpu_us_per_req errors"
run_wrk() {
  local name=$1 pid=$2 url=$3 conns=$4 dur=$5 script=$6 cpu=$7
  local t0 t1 out
  [ "${WARM:-1}" != 0 ] && timeout $((dur + 10)) taskset -c "$cpu" wrk -t1 -c"$conns" -d1s -s "$script" "$url" >/dev/null 2>&1  # warm-up
  t0=$(ticks_of "$pid")
  out=$(timeout $((dur + 20)) taskset -c "$cpu" wrk -t1 -c"$conns" -d"${dur}s" --timeout 5s --latency -s "$script" "$url" 2>&1 | grep '^RESULT')
  t1=$(ticks_of "$pid")
  [ -n "$out" ] || { echo "nan nan nan nan 1"; return; }
  local requests rps p50 p99 err non2xx
  eval "$(echo "${out#RESULT }" | tr ' ' '\n' | sed 's/^/local_/' | sed 's/^local_\([a-z0-9_]*\)=/\1=/')"
  local cpu_us; cpu_us=$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" -v n="$requests" 'BEGIN{ if (n>0) printf "%.1f", (b-a)/hz*1e6/n; else print "nan"}')
  echo "$rps $p50_us $p99_us $cpu_us $((err + non2xx))"
}

# median of numbers on stdin
median() { sort -g | awk '{a[NR]=$1} END{ if (NR==0) {print "nan"} else if (NR%2) {print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2} }'; }

# The mock provider's fixed 570-byte chat completion (from Tests/MockProvider), for the nginx mock to serve.
write_mock_body() { # file
  python3 - "$1" <<'PY'
import re, sys
src = open("Tests/MockProvider/MockProvider.swift").read()
open(sys.argv[1], "w").write(re.search(r'#"(\{"id":"chatcmpl-mock0001".*?)"#', src).group(1))
PY
}

# The chat completion request the proxy benchmarks send.
write_chat_request() { # file
  printf '%s' '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a concise assistant."},{"role":"user","content":"In one sentence, why should an API gateway add as little latency as possible to each request it forwards to the model?"}],"max_tokens":64,"temperature":0.2,"user":"bench-user-1"}' >"$1"
}

# The one-node set-up of bench/profile.sh and bench/instructions.sh: BIN (a release build unless given), the
# chat request and the mock's body in $BENCH_TMP, the nginx mock on CPU 0 at MOCK, a free port OURS for the
# node, and a SQLite store (exported as LLM_PROXY_DATABASE_URL) with a connection to the mock and KEYS
# virtual keys (default 1), one a line in $BENCH_TMP/keys.txt.
one_node_setup() {
  [ -n "${BIN:-}" ] || swift build -c release --product llm-proxy >/dev/null 2>&1 || { echo "build failed"; exit 1; }
  BIN=${BIN:-$(swift build -c release --show-bin-path)/llm-proxy}
  write_chat_request "$BENCH_TMP/req.json"
  write_mock_body "$BENCH_TMP/body.json"
  MOCK=$(free_port); OURS=$(free_port)
  start_nginx_static mock "$MOCK" /v1/chat/completions "$BENCH_TMP/body.json" 0
  mkdir -p "$BENCH_TMP/store"
  export LLM_PROXY_DATABASE_URL="sqlite:$BENCH_TMP/store/llm-proxy.db"
  local conn i
  conn=$("$BIN" connection add --name mock --provider openai --endpoint "http://127.0.0.1:$MOCK/v1" --api-key sk-upstream --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  for i in $(seq 1 "${KEYS:-1}"); do
    "$BIN" vkey add --name "bench-$i" --conn-id "$conn" --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'
  done >"$BENCH_TMP/keys.txt"
}
