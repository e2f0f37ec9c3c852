#!/usr/bin/env bash
# What limits cost per request, in one run: three llm-proxy nodes in front of the same nginx mock, one
# with an unlimited key, one enforcing limits locally, one enforcing them globally through Redis (limits
# high enough that nothing is refused: the cost of checking, not of refusing). Also counts Redis calls
# per admitted request, and redis-benchmark on the same admission script for the ceiling.
#   DUR=5 ROUNDS=3 bash bench/limits.sh
cd "$(dirname "$0")/.." || exit 1
source bench/lib.sh
DUR=${DUR:-5}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-"16"}
swift build -c release --product llm-proxy >/dev/null 2>&1 || { echo "build failed"; exit 1; }
BIN=$(swift build -c release --show-bin-path)/llm-proxy
printf '%s' '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}],"max_tokens":64}' >"$BENCH_TMP/req.json"
write_mock_body "$BENCH_TMP/body.json"
MOCK=$(free_port); REDIS=$(free_port); P_NONE=$(free_port); P_LOCAL=$(free_port); P_GLOBAL=$(free_port)
start_nginx_static mock "$MOCK" /v1/chat/completions "$BENCH_TMP/body.json" 0
start_bg redis 0 redis-server --port "$REDIS" --bind 127.0.0.1 --save '' --appendonly no
wait_port "$REDIS" 10 || exit 1
export LLM_PROXY_DATABASE_URL="sqlite:$BENCH_TMP/store/db.sqlite" LLM_PROXY_MASTER_KEY=bench-master-key-123456
CONN=$("$BIN" connection add --name mock --provider openai --endpoint "http://127.0.0.1:$MOCK/v1" --api-key sk-up --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
K_NONE=$("$BIN" vkey add --name none --conn-id "$CONN" --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
K_LIM=$("$BIN" vkey add --name limited --conn-id "$CONN" --tps 1000000 --tokens 1000000000000 --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
start_bg none 1 "$BIN" serve --listen "127.0.0.1:$P_NONE" --event-loops 1 --log-level warning
start_bg local 1 "$BIN" serve --listen "127.0.0.1:$P_LOCAL" --event-loops 1 --log-level warning
start_bg global 1 "$BIN" serve --listen "127.0.0.1:$P_GLOBAL" --event-loops 1 --log-level warning --redis-url "redis://127.0.0.1:$REDIS"
for p in $MOCK $P_NONE $P_LOCAL $P_GLOBAL; do wait_port "$p" 15 || { echo "port $p did not open"; exit 1; }; done
write_wrk_script "$BENCH_TMP/none.lua" "$BENCH_TMP/req.json" "$K_NONE"
write_wrk_script "$BENCH_TMP/lim.lua" "$BENCH_TMP/req.json" "$K_LIM"
sleep 1.5
RES="$BENCH_TMP/res.txt"; : >"$RES"
for ((r = 1; r <= ROUNDS; r++)); do
  for c in $CONNS; do
    for t in none local global; do
      case $t in none) port=$P_NONE; s=none.lua ;; local) port=$P_LOCAL; s=lim.lua ;; global) port=$P_GLOBAL; s=lim.lua ;; esac
      timeout 20 taskset -c 0 wrk -t1 -c"$c" -d1s -s "$BENCH_TMP/$s" "http://127.0.0.1:$port/v1/chat/completions" >/dev/null 2>&1  # warm-up
      before=$(redis-cli -p "$REDIS" INFO commandstats | awk -F'[=,]' '/cmdstat_evalsha/{print $2}'); before=${before:-0}
      line=$(WARM=0 run_wrk "$t" "$(cat "$BENCH_TMP/$t.pid")" "http://127.0.0.1:$port/v1/chat/completions" "$c" "$DUR" "$BENCH_TMP/$s" 0)
      after=$(redis-cli -p "$REDIS" INFO commandstats | awk -F'[=,]' '/cmdstat_evalsha/{print $2}'); after=${after:-0}
      echo "$r $t $c $line $((after - before))" >>"$RES"
      log "round $r $t c=$c: rps p50 p99 cpu_us errors = $line; evalsha calls $((after - before))"
    done
  done
done
SHA=$(redis-cli -p "$REDIS" SCRIPT LOAD "$(sed -n '/static let admitScript = RedisScript("""/,/""")/p' Sources/Node/Limits/GlobalLimiter.swift | sed '1d;$d')")
RB=$(timeout 60 taskset -c 0 redis-benchmark -p "$REDIS" -c 16 -P 16 -n 400000 -r 100000 --csv EVALSHA "$SHA" 1 'llmp:rl:{vk:__rand_int__}' 1000000 1000 1000000000000 16666666 80 0 2>/dev/null | tail -1 | tr -d '"' | cut -d, -f2)
echo
echo "| limits | conns | req/s | p99 µs | CPU µs/req | added CPU µs/req vs none | Redis calls per request |"
echo "|---|---|---|---|---|---|---|"
for c in $CONNS; do
  base=$(awk -v c="$c" '$2=="none" && $3==c {print $7}' "$RES" | median)
  for t in none local global; do
    m() { awk -v t="$t" -v c="$c" -v f="$1" '$2==t && $3==c {print $f}' "$RES" | median; }
    rps=$(m 4); cpu=$(m 7)
    calls=$(awk -v t="$t" -v c="$c" '$2==t && $3==c {n+=$4*'"$DUR"'; k+=$9} END{ if (n>0) printf "%.2f", k/n; else print 0}' "$RES")
    echo "| $t | $c | $rps | $(m 6) | $cpu | $(awk -v a="$cpu" -v b="$base" 'BEGIN{printf "%.1f", a-b}') | $calls |"
  done
done
echo
echo "redis-benchmark on the admission script (-c 16 -P 16): $RB checks/s"
