#!/usr/bin/env bash
# User-space instructions a proxied request costs, counted by valgrind's callgrind: one llm-proxy node
# (one event loop) in front of the nginx mock, loaded by wrk for DUR seconds at C connections, counted
# only while the load runs (after a warm-up). Counts do not move with the machine's noise, so two builds
# compare on one run each — what `bench/ab.sh` needs six alternated pairs of timed runs for — but they
# are instructions, not time: SWAR loops retire many cheap ones, a cache miss costs none. Confirm a
# change that counts fewer with `bench/ab.sh` when the machine is quiet.
# Kernel work (the system calls) is not counted; the node runs ~50x slower under valgrind, so a loop
# iteration holds fewer requests than at full speed (figures are for comparison, not absolute).
# Prints instructions a request for the event loop and for the other threads, then the loop's TOP
# functions by their own instructions a request; CALLERS=pat1,pat2 also lists who calls functions whose
# mangled names contain a pattern, with the instructions a request of each call edge; OTHERS=N lists the
# other threads' (the usage store's) top N functions.
#   BIN=/path/to/llm-proxy C=16 DUR=6 TOP=30 bash bench/instructions.sh
cd "$(dirname "$0")/.." || exit 1
source bench/lib.sh
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)"; exit 1; }
C=${C:-16}; DUR=${DUR:-6}
one_node_setup
KEY=$(head -1 "$BENCH_TMP/keys.txt")
mkdir -p "$BENCH_TMP/cg"
start_bg ours 1 valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$BENCH_TMP/cg/out" \
  "$BIN" serve --listen "127.0.0.1:$OURS" --event-loops 1 --log-level warning
wait_port "$MOCK" 10 && wait_port "$OURS" 120 || { echo "a server did not start"; exit 1; }
write_wrk_script "$BENCH_TMP/key.lua" "$BENCH_TMP/req.json" "$KEY"
url="http://127.0.0.1:$OURS/v1/chat/completions"
pid=$(cat "$BENCH_TMP/ours.pid")
# Warm-up: caches, pools, and some of the store's prepared statements. Under valgrind each store thread
# still meets statement sizes it has not prepared inside the window (~2k instructions a request counted
# in sqlite3_prepare_v2; at full speed a node prepares about one statement in 10 s once warm), so read
# the other threads' figure as an upper bound.
taskset -c 0 wrk -t1 -c"$C" -d"${WARMUP:-8}s" -s "$BENCH_TMP/key.lua" "$url" >/dev/null 2>&1
sleep 2
callgrind_control -z "$pid" >/dev/null
out=$(taskset -c 0 wrk -t1 -c"$C" -d"${DUR}s" --timeout 10s -s "$BENCH_TMP/key.lua" "$url" | grep '^RESULT')
sleep 2  # the usage records of the last requests reach the store
callgrind_control -d "$pid" >/dev/null
sleep 1
echo "$out"
requests=$(echo "$out" | sed -n 's/.*requests=\([0-9]*\).*/\1/p')
python3 bench/callgrind_split.py "$BENCH_TMP/cg" "${requests:-0}" "${TOP:-30}" "${CALLERS:-}" "${OTHERS:-0}"
