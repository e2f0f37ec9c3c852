#!/usr/bin/env bash
# One llm-proxy node (one event loop, pinned to CPU 1) in front of the nginx mock (CPU 0), loaded by wrk
# (CPU 0) for DUR seconds at C connections — the set-up of bench/proxy.sh, for one target — and, while the
# load runs, optionally one of:
#   PERF=1    perf record -g of the node            -> $OUT/perf.data  (perf report -i …)
#   STRACE=1  strace -c of the node's system calls  -> $OUT/strace.txt
#   MALLOC=1  every malloc of the node for 2 s      -> $OUT/malloc.data (needs: perf probe -x <libc> malloc)
#   IPI=1     wake-ups and inter-processor interrupts the event loop causes, per request (on this VM an
#             IPI to wake a process on the other core costs several µs: the largest kernel item)
# SPLIT=1 leaves only the event loop on CPU 1 (the store, log and other threads go to CPU 0).
# Prints wrk's RESULT line, the node's CPU µs per request, and per thread (by name) its CPU µs per request
# and how long it sat runnable but waiting for a core (/proc/PID/task/TID/schedstat) — who starves whom on a
# shared core. EXTRA adds serve flags (EXTRA="--log-level info"
# measures the access log); KEYS=N spreads the requests over N virtual keys, in turn (default 1);
# BIN=path runs another build (A/B). For comparing builds back to back;
# bench/proxy.sh makes the recorded figures.
#   C=16 DUR=8 PERF=1 bash bench/profile.sh
cd "$(dirname "$0")/.." || exit 1
source bench/lib.sh
C=${C:-16}; DUR=${DUR:-8}; OUT=${OUT:-/tmp}
one_node_setup
# shellcheck disable=SC2086
start_bg ours 1 "$BIN" serve --listen "127.0.0.1:$OURS" --event-loops 1 --log-level warning ${EXTRA:-}
wait_port "$MOCK" 10 && wait_port "$OURS" 10 || { echo "a server did not start"; exit 1; }
if [ "${KEYS:-1}" -gt 1 ]; then write_wrk_script_keys "$BENCH_TMP/key.lua" "$BENCH_TMP/req.json" "$BENCH_TMP/keys.txt"
else write_wrk_script "$BENCH_TMP/key.lua" "$BENCH_TMP/req.json" "$(cat "$BENCH_TMP/keys.txt")"; fi
pid=$(cat "$BENCH_TMP/ours.pid")
url="http://127.0.0.1:$OURS/v1/chat/completions"
taskset -c 0 wrk -t1 -c"$C" -d2s -s "$BENCH_TMP/key.lua" "$url" >/dev/null 2>&1  # warm-up
# SPLIT=1: every thread but the event loop moves to CPU 0 (with wrk and the mock), to see what sharing
# the loop's core with the store and log threads costs.
if [ -n "${SPLIT:-}" ]; then
  for tid in $(ls "/proc/$pid/task"); do
    [ "$(cat "/proc/$pid/task/$tid/comm")" = llmp-loop-0 ] || taskset -pc 0 "$tid" >/dev/null
  done
fi
watcher=""
if [ -n "${PERF:-}" ]; then perf record -F 2000 -g -p "$pid" -o "$OUT/perf.data" -- sleep "$DUR" >/dev/null 2>&1 & watcher=$!
elif [ -n "${STRACE:-}" ]; then timeout -s INT "$DUR" strace -c -f -p "$pid" -o "$OUT/strace.txt" & watcher=$!
elif [ -n "${MALLOC:-}" ]; then perf record -e probe_libc:malloc -g -p "$pid" -o "$OUT/malloc.data" -- sleep 2 >/dev/null 2>&1 & watcher=$!
elif [ -n "${IPI:-}" ]; then
  loop_tid=$(for t in /proc/"$pid"/task/*; do [ "$(cat "$t/comm")" = llmp-loop-0 ] && basename "$t"; done)
  perf stat -x, -e sched:sched_wakeup,ipi:ipi_send_cpu -t "$loop_tid" -o "$OUT/ipi.txt" -- sleep "$DUR" & watcher=$!
fi
t0=$(ticks_of "$pid")
threads() { for t in /proc/"$pid"/task/*; do echo "$(basename "$t") $(tr ' ' _ <"$t/comm") $(awk '{print $14+$15}' "$t/stat") $(cat "$t/schedstat")"; done | sort; }
threads >"$OUT/threads.0"
out=$(taskset -c 0 wrk -t1 -c"$C" -d"${DUR}s" -s "$BENCH_TMP/key.lua" "$url" | grep '^RESULT')
t1=$(ticks_of "$pid")
threads >"$OUT/threads.1"
[ -n "$watcher" ] && wait "$watcher"
requests=$(echo "$out" | sed 's/.*requests=\([0-9]*\).*/\1/')
echo "$out"
echo "node CPU µs/request: $(awk -v a="$t0" -v b="$t1" -v hz="$HZ" -v n="$requests" 'BEGIN{ if (n>0) printf "%.1f", (b-a)/hz*1e6/n; else print "nan"}')"
echo "node RSS KiB: $(rss_kib "$pid")"
echo "per thread: CPU µs/request, ms runnable but waiting for a core, times scheduled"
join "$OUT/threads.0" "$OUT/threads.1" | awk -v hz="$HZ" -v n="$requests" '
  { cpu[$2] += ($8 - $3) / hz * 1e6 / (n > 0 ? n : 1); wait[$2] += ($10 - $5) / 1e6; runs[$2] += $11 - $6 }
  END { for (k in cpu) if (runs[k] > 0) printf "  %-16s %6.2f µs  %8.1f ms  %7d\n", k, cpu[k], wait[k], runs[k] }' | sort -k2 -nr
if [ -n "${IPI:-}" ]; then
  echo "loop per request: $(awk -F, -v n="$requests" '/sched_wakeup|ipi_send_cpu/ {printf "%s %.3f  ", $3, $1 / n}' "$OUT/ipi.txt")"
fi
# A node that drops usage under load is not faster, it is broken: say so next to the figures.
echo "usage right after the run: $(curl -s "http://127.0.0.1:$OURS/metrics" | awk '/^llmp_usage_(queue_depth|dropped_total|written_total) /{printf "%s=%s ", $1, $2}')"
