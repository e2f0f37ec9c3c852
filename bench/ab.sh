#!/usr/bin/env bash
# Two builds compared in alternated pairs of `bench/profile.sh` runs (A, B, A, B, …): this machine moves
# ±7% from one run to the next, so a difference counts when one build wins most pairs, not when one
# run's figure is higher.
#   N=6 C=16 DUR=6 bash bench/ab.sh /path/to/llm-proxy-A /path/to/llm-proxy-B
# Prints each run (req/s, p99 µs, node CPU µs a request), then how many pairs B won on req/s and on p99,
# and the median of B's req/s over A's.
cd "$(dirname "$0")/.." || exit 1
[ $# -eq 2 ] || { echo "usage: bash bench/ab.sh BIN_A BIN_B" >&2; exit 2; }
N=${N:-4}
runs=$(mktemp)
trap 'rm -f "$runs"' EXIT
for i in $(seq 1 "$N"); do
  for side in A B; do
    bin=$1; [ "$side" = B ] && bin=$2
    out=$(BIN="$bin" C="${C:-16}" DUR="${DUR:-6}" bash bench/profile.sh 2>&1)
    rps=$(echo "$out" | sed -n 's/^RESULT.* rps=\([0-9.]*\).*/\1/p')
    p99=$(echo "$out" | sed -n 's/^RESULT.* p99_us=\([0-9]*\).*/\1/p')
    cpu=$(echo "$out" | sed -n 's/^node CPU µs\/request: //p')
    echo "$i $side ${rps:-nan} ${p99:-nan} ${cpu:-nan}" | tee -a "$runs"
  done
done
awk '
  { rps[$1, $2] = $3; p99[$1, $2] = $4; if ($1 > n) n = $1 }
  END {
    for (i = 1; i <= n; i++) {
      if (rps[i, "B"] > rps[i, "A"]) w++
      if (p99[i, "B"] < p99[i, "A"]) pw++
      r[i] = rps[i, "B"] / rps[i, "A"]
    }
    # median of the ratios (insertion sort: n is small)
    for (i = 2; i <= n; i++) { v = r[i]; j = i - 1; while (j >= 1 && r[j] > v) { r[j + 1] = r[j]; j-- } r[j + 1] = v }
    m = n % 2 ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2
    printf "B won %d of %d pairs on req/s, %d on p99; median req/s B/A %.3f\n", w, n, pw, m
  }' "$runs"
