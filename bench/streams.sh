#!/usr/bin/env bash
# Many slow SSE streams through one node at once: RSS per stream and time to first chunk.
# The mock streams N_CHUNKS chunks CHUNK_MS apart; a Python asyncio client opens STREAMS streams at RATE
# per second, so that all are open together before the first ones end.
#   STREAMS=9500 bash bench/streams.sh
# Each stream holds two descriptors in the node (client and upstream): with a hard limit of 20000 open
# files (this sandbox's), 10,000 streams do not fit in one process; 9,500 do.
cd "$(dirname "$0")/.." || exit 1
source bench/lib.sh
STREAMS=${STREAMS:-9500}
CHUNK_MS=${CHUNK_MS:-1000}
N_CHUNKS=${N_CHUNKS:-12}
RATE=${RATE:-1500}
ulimit -n "$(ulimit -Hn)" || { echo "cannot raise the descriptor limit"; exit 1; }
echo "descriptor limit: $(ulimit -n)"
swift build -c release --product llm-proxy --product mock-provider >/dev/null 2>&1 || { swift build -c release >/dev/null 2>&1 || exit 1; }
BINDIR=${BINDIR:-$(swift build -c release --show-bin-path)}
MOCK=$(free_port); NODE=$(free_port)
start_bg mock - "$BINDIR/mock-provider" --listen "127.0.0.1:$MOCK" --event-loops 1
wait_port "$MOCK" 10 || exit 1
export LLM_PROXY_DATABASE_URL="sqlite:$BENCH_TMP/store/db.sqlite" LLM_PROXY_MASTER_KEY=bench-master-key-123456
CONN=$("$BINDIR/llm-proxy" connection add --name mock --provider openai --endpoint "http://127.0.0.1:$MOCK/v1" --api-key sk-up --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
KEY=$("$BINDIR/llm-proxy" vkey add --name s --conn-id "$CONN" --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
start_bg node - "$BINDIR/llm-proxy" serve --listen "127.0.0.1:$NODE" --max-connections 60000 --log-level warning
wait_port "$NODE" 10 || exit 1
NODE_PID=$(cat "$BENCH_TMP/node.pid")
# Warm the key cache and the connection path with one stream.
curl -sN -H "Authorization: Bearer $KEY" -H "x-mock-chunks: 1" -d '{"model":"gpt-4o-mini","stream":true,"messages":[]}' "http://127.0.0.1:$NODE/v1/chat/completions" >/dev/null
BASE=$(rss_kib "$NODE_PID")
python3 - "$NODE" "$KEY" "$STREAMS" "$CHUNK_MS" "$N_CHUNKS" "$NODE_PID" "$BASE" "$RATE" <<'PY'
import asyncio, sys, time, statistics
port, key, n, chunk_ms, chunks, pid, base = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6], int(sys.argv[7])
rate = float(sys.argv[8])
body = b'{"model":"gpt-4o-mini","stream":true,"messages":[]}'
req = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n"
       f"x-mock-chunk-delay-ms: {chunk_ms}\r\nx-mock-chunks: {chunks}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
firsts, done, failed = [], 0, 0
peak = 0
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
    return 0
async def one(sem):
    global done, failed
    try:
        async with sem:
            r, w = await asyncio.open_connection("127.0.0.1", port)
        t0 = time.monotonic()
        w.write(req)
        await w.drain()
        got_first = False
        while True:
            line = await asyncio.wait_for(r.readline(), 60)
            if not line:
                break
            if line.startswith(b"data:") and not got_first:
                firsts.append((time.monotonic() - t0) * 1000)
                got_first = True
            if line.startswith(b"data: [DONE]"):
                done += 1
                break
        w.close()
    except Exception:
        failed += 1
async def sample():
    global peak
    while True:
        peak = max(peak, rss())
        await asyncio.sleep(0.2)
async def main():
    sem = asyncio.Semaphore(2000)
    s = asyncio.create_task(sample())
    t0 = time.monotonic()
    # Open streams at RATE per second; each lasts N_CHUNKS x CHUNK_MS, so all are open together at the end.
    tasks = []
    for _ in range(n):
        tasks.append(asyncio.create_task(one(sem)))
        await asyncio.sleep(1 / rate)
    await asyncio.gather(*tasks)
    s.cancel()
    firsts.sort()
    q = lambda p: firsts[min(len(firsts) - 1, int(p * len(firsts)))] if firsts else float("nan")
    print(f"streams={n} completed={done} failed={failed} wall_s={time.monotonic()-t0:.1f}")
    print(f"rss_base_kib={base} rss_peak_kib={peak} rss_per_stream_kib={(peak - base) / max(1, n):.1f}")
    print(f"first_chunk_ms p50={q(0.5):.1f} p99={q(0.99):.1f} max={firsts[-1] if firsts else float('nan'):.1f}")
asyncio.run(main())
PY
