"""Merges the wrk-report.lua lines of one server's slices of a scenario into one.

Arguments are the slices' report lines, each optionally followed by `@FILE`, the
quantile function wrk-report.lua wrote for that slice (WRK_QUANTILES: "percent
microseconds" lines; wrk's Lua API gives percentiles, not its histogram).
Throughput is all requests over all the slices' time (a slice that answered
nothing still counts its seconds); counts are summed.

When every slice has its quantiles, p50, p99 and p99.9 are percentiles of all the
slices' requests together: the smallest latency v at which the requests known to
be at or below it (each slice's share from the largest grid percent whose latency
is <= v, times its requests) reach p % of all. Each share is a lower bound, so
the result is never below the true merged percentile. `p99_worst` keeps the worse
slice's own p99 beside it. Without quantiles, p50 is the slices' mean weighted
by their requests and p99 and p99.9 the worst slice's. A slice whose line is
missing or unreadable counts as a failed one: nothing answered, one error.
Responses slower than wrk's timeout (2 s) count in the requests but not in wrk's
latencies, so with timeouts the merged percentile is no longer a bound (the
slowest PostgreSQL rows only).
"""
import bisect
import json
import sys

FAILED = {"rps": 0, "secs": 0, "p50": 0, "p99": 0, "p999": 0, "requests": 0, "non2xx": 0, "errors": 1}


def read_quantiles(path):
    """[(microseconds, percent)] sorted, the percent the largest seen at that latency or below."""
    pts = []
    with open(path) as f:
        for line in f:
            p, us = line.split()
            pts.append((int(us), float(p)))
    if not pts:
        raise ValueError("empty")
    pts.sort()
    best, out = 0.0, []
    for us, p in pts:
        best = max(best, p)
        out.append((us, best))
    return out


def merged_percentile(slices, p):
    """slices: [(requests, quantiles)]; p in percent; result in ms."""
    total = sum(n for n, _ in slices)
    if not total:
        return 0
    for v in sorted({us for _, q in slices for us, _ in q}):
        below = 0.0
        for n, q in slices:
            i = bisect.bisect_right(q, (v, float("inf"))) - 1
            if i >= 0:
                below += n * q[i][1] / 100
        if below >= p / 100 * total - 1e-9:
            return v / 1000
    return max(us for _, q in slices for us, _ in q) / 1000  # not reached: the grid ends at 99.999


runs, quantiles = [], []
for arg in sys.argv[1:]:
    if arg.startswith("@"):
        try:
            quantiles.append(read_quantiles(arg[1:]))
        except (OSError, ValueError):
            quantiles.append(None)
        continue
    try:
        runs.append(json.loads(arg))
    except ValueError:
        runs.append(dict(FAILED))
secs = sum(r.get("secs", 0) for r in runs)
requests = sum(r["requests"] for r in runs)
out = {"rps": round(requests / secs, 1) if secs else 0}
worst_p99 = max((r["p99"] for r in runs), default=0)
if runs and len(quantiles) == len(runs) and all(q is not None for q in quantiles) and requests:
    slices = [(r["requests"], q) for r, q in zip(runs, quantiles)]
    out.update({
        "p50": round(merged_percentile(slices, 50), 3),
        "p99": round(merged_percentile(slices, 99), 3),
        "p999": round(merged_percentile(slices, 99.9), 3),
        "p99_worst": worst_p99,
    })
else:
    if quantiles:
        print("merge.py: a slice's quantiles are missing; p99 and p99.9 are the worse slice's", file=sys.stderr)
    out.update({
        "p50": round(sum(r["p50"] * r["requests"] for r in runs) / requests, 3) if requests else 0,
        "p99": worst_p99,
        "p999": max((r["p999"] for r in runs), default=0),
    })
out.update({
    "requests": requests,
    "non2xx": sum(r["non2xx"] for r in runs),
    "errors": sum(r["errors"] for r in runs),
})
print(json.dumps(out, separators=(",", ":")))
