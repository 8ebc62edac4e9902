"""Merges the wrk-report.lua lines of one server's slices of a scenario into one.

Throughput is all requests over all the slices' time; p50 is the slices' mean;
p99 and p99.9 are the worst slice's (wrk keeps no histogram to merge, and the
worst never flatters); counts are summed.
"""
import json
import sys

runs = [json.loads(a) for a in sys.argv[1:]]
secs = sum(r["requests"] / r["rps"] for r in runs if r["rps"])
requests = sum(r["requests"] for r in runs)
print(json.dumps({
    "rps": round(requests / secs, 1) if secs else 0,
    "p50": round(sum(r["p50"] for r in runs) / len(runs), 3),
    "p99": max(r["p99"] for r in runs),
    "p999": max(r["p999"] for r in runs),
    "requests": requests,
    "non2xx": sum(r["non2xx"] for r in runs),
    "errors": sum(r["errors"] for r in runs),
}, separators=(",", ":")))
