"""Reads the per-thread callgrind dumps `bench/instructions.sh` makes and prints instructions a request:
the event loop's (the thread that ran `EventLoop.run`), the other threads' together, then the loop's top
functions by their own count, and optionally the call edges into functions matching patterns.

    python3 bench/callgrind_split.py DIR REQUESTS [TOP] [PATTERN,PATTERN...] [OTHERS_TOP]
"""
import collections
import glob
import re
import subprocess
import sys


def parse(path):
    """Self cost per function id, inclusive cost per (caller, callee) edge, and the id -> name table.
    Callgrind's format: `fn=`/`cfn=` lines name (and compress) functions; after `calls=`, the next cost
    line is the inclusive cost of that call; other cost lines are the current function's own."""
    names, own, edges = {}, collections.Counter(), collections.Counter()
    fn = cfn = None
    after_calls = False

    def ident(token):
        m = re.match(r"\((\d+)\)(?: (.*))?", token)
        if m is None:
            return token
        if m.group(2):
            names[m.group(1)] = m.group(2)
        return m.group(1)

    with open(path) as f:
        for line in f:
            if line.startswith("fn="):
                fn, after_calls = ident(line[3:].strip()), False
            elif line.startswith("cfn="):
                cfn = ident(line[4:].strip())
            elif line.startswith("calls="):
                after_calls = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                parts = line.split()
                if len(parts) < 2:
                    continue
                if after_calls:
                    edges[(fn, cfn)] += int(parts[1])
                    after_calls = False
                else:
                    own[fn] += int(parts[1])
    return names, own, edges


def demangle(symbols):
    try:
        out = subprocess.run(["swift", "demangle", "--simplified", "--compact"], input="\n".join(symbols),
                             capture_output=True, text=True, timeout=60).stdout.splitlines()
        return dict(zip(symbols, out)) if len(out) == len(symbols) else {s: s for s in symbols}
    except (OSError, subprocess.SubprocessError):
        return {s: s for s in symbols}


def main():
    directory, requests = sys.argv[1], int(sys.argv[2])
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    patterns = [p for p in (sys.argv[4] if len(sys.argv) > 4 else "").split(",") if p]
    others_top = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    if requests <= 0:
        sys.exit("no requests were served")
    threads = [parse(p) for p in sorted(glob.glob(directory + "/out*")) if re.search(r"-\d+$", p)]
    loop = [t for t in threads if any("EventLoopC3run" in n for n in t[0].values()) and sum(t[1].values()) > 0]
    if not loop:
        sys.exit("no event-loop thread in the dumps")
    names, own, edges = max(loop, key=lambda t: sum(t[1].values()))
    loop_total = sum(own.values())
    other = sum(sum(t[1].values()) for t in threads) - loop_total
    print(f"instructions a request: event loop {loop_total / requests:,.0f}, other threads {other / requests:,.0f}"
          f" ({requests} requests)")
    shown = own.most_common(top)
    # Call edges into matching functions, from every thread (the loop's and the others' apart).
    edge_rows = []
    for t in threads:
        where = "loop" if t[1] is own else "other"
        for (caller, callee), v in t[2].items():
            callee_name = t[0].get(callee, callee)
            if any(p in callee_name for p in patterns) and v / requests >= 50:
                edge_rows.append((where, t[0].get(caller, caller), callee_name, v))
    merged_edges = collections.Counter()
    for where, a, b, v in edge_rows:
        merged_edges[(where, a, b)] += v
    symbols = {names.get(k, k) for k, _ in shown} | {x for (_, a, b) in merged_edges for x in (a, b)}
    readable = demangle(sorted(symbols))
    for k, v in shown:
        print(f"{v / requests:9,.0f}  {100 * v / loop_total:5.1f}%  {readable[names.get(k, k)][:140]}")
    if others_top:
        merged, merged_names = collections.Counter(), {}
        for t in threads:
            if t[1] is own:
                continue
            for k, v in t[1].items():
                name = t[0].get(k, k)
                merged[name] += v
        print("other threads' top functions (their own instructions a request):")
        readable_others = demangle(sorted(n for n, _ in merged.most_common(others_top)))
        for n, v in merged.most_common(others_top):
            print(f"{v / requests:9,.0f}  {100 * v / max(other, 1):5.1f}%  {readable_others[n][:140]}")
    if merged_edges:
        print("call edges (inclusive instructions a request):")
        for (where, caller, callee), v in merged_edges.most_common():
            print(f"{v / requests:9,.0f}  {where:5}  {readable[caller][:80]}  ->  {readable[callee][:80]}")

if __name__ == "__main__":
    main()
