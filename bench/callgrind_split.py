"""Reads the per-thread callgrind dumps `bench/instructions.sh` makes and prints instructions a request:
the event loop's (the thread that ran `EventLoop.run`), the other threads' together, then the loop's top
functions by their own count, and optionally the call edges into functions matching patterns.

    python3 bench/callgrind_split.py DIR REQUESTS [TOP] [PATTERN,PATTERN...]
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
    edge_rows = [(k, v) for k, v in edges.items()
                 if any(p in names.get(k[1], "") for p in patterns) and v / requests >= 50]
    symbols = {names.get(k, k) for k, _ in shown} | {names.get(x, x) for k, _ in edge_rows for x in k}
    readable = demangle(sorted(symbols))
    for k, v in shown:
        print(f"{v / requests:9,.0f}  {100 * v / loop_total:5.1f}%  {readable[names.get(k, k)][:140]}")
    if edge_rows:
        print("call edges (inclusive instructions a request):")
        for (caller, callee), v in sorted(edge_rows, key=lambda kv: -kv[1]):
            print(f"{v / requests:9,.0f}  {readable[names.get(caller, caller)][:80]}  ->  {readable[names.get(callee, callee)][:80]}")


if __name__ == "__main__":
    main()
