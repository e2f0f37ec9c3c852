#!/usr/bin/env bash
# EVALSHA of the two-bucket limiter script (both buckets in one hash, Redis TIME as the clock), in one
# run: redis-benchmark (C, the ceiling) and our RedisClient, at 1 and 16 concurrent callers; with 16
# callers redis-benchmark pipelines 16 deep (-P 16) and our client pipelines the 16 callers' commands on
# one connection. Redis pinned to CPU 1, the clients to CPU 0.
#   DUR=5 ROUNDS=3 bash bench/redis.sh
cd "$(dirname "$0")/.." || exit 1
source bench/lib.sh
DUR=${DUR:-5}
ROUNDS=${ROUNDS:-3}
swift build -c release --product redis-bench >/dev/null 2>&1 || { echo "build failed"; exit 1; }
BIN=$(swift build -c release --show-bin-path)/redis-bench
PORT=$(free_port)
start_bg redis 1 redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no
wait_port "$PORT" 10 || { echo "redis did not start"; exit 1; }
cat >"$BENCH_TMP/limiter.lua" <<'LUA'
-- KEYS[1]: one hash holding both buckets. ARGV: req_cap, req_per_ms, tok_cap, tok_per_ms, req_cost, tok_cost
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('HMGET', KEYS[1], 'r', 'k', 'ts')
local rcap, rrate, tcap, trate = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local r, k, ts = tonumber(v[1]), tonumber(v[2]), tonumber(v[3])
if r == nil then r, k, ts = rcap, tcap, now end
local dt = math.max(0, now - ts)
r = math.min(rcap, r + dt * rrate)
k = math.min(tcap, k + dt * trate)
local ok = 0
if r >= tonumber(ARGV[5]) and k >= tonumber(ARGV[6]) then ok = 1; r = r - tonumber(ARGV[5]); k = k - tonumber(ARGV[6]) end
redis.call('HSET', KEYS[1], 'r', tostring(r), 'k', tostring(k), 'ts', now)
redis.call('PEXPIRE', KEYS[1], 120000)
return {ok, tostring(r), tostring(k)}
LUA
SHA=$(redis-cli -p "$PORT" SCRIPT LOAD "$(cat "$BENCH_TMP/limiter.lua")")
RES="$BENCH_TMP/res.txt"; : >"$RES"
for ((r = 1; r <= ROUNDS; r++)); do
  for c in 1 16; do
    P=1; [ "$c" = 16 ] && P=16
    rb=$(timeout 60 taskset -c 0 redis-benchmark -p "$PORT" -c "$c" -P "$P" -n $((c == 1 ? 60000 : 600000)) -r 100000 --csv \
         EVALSHA "$SHA" 1 'rl:{vk:__rand_int__}' 600 0.01 100000 1.6667 1 300 2>/dev/null | tail -1 | tr -d '"')
    rps=$(echo "$rb" | cut -d, -f2); p99=$(echo "$rb" | cut -d, -f7)
    echo "$r redis-benchmark $c $rps $(awk -v v="$p99" 'BEGIN{print v*1000}')" >>"$RES"
    ours=$(timeout 60 taskset -c 0 "$BIN" "$PORT" "$BENCH_TMP/limiter.lua" "$c" "$DUR" | grep RESULT)
    eval "$(echo "${ours#RESULT }" | tr ' ' '\n' | sed 's/^/o_/')"
    echo "$r ours $c $o_ops_per_s $o_p99_us" >>"$RES"
    log "round $r c=$c: redis-benchmark $rps ops/s (p99 ${p99} ms) | ours $o_ops_per_s ops/s (p99 $o_p99_us µs)"
  done
done
echo
echo "| callers | redis-benchmark ops/s | ours ops/s | ratio | redis-benchmark p99 µs | ours p99 µs |"
echo "|---|---|---|---|---|---|"
for c in 1 16; do
  m() { awk -v t="$1" -v c="$c" -v f="$2" '$2==t && $3==c {print $f}' "$RES" | median; }
  a=$(m redis-benchmark 4); b=$(m ours 4)
  echo "| $c | $a | $b | $(awk -v a="$b" -v b="$a" 'BEGIN{printf "%.2f", a/b}') | $(m redis-benchmark 5) | $(m ours 5) |"
done
