"""Merges the wrk-report.lua lines of one server's slices of a scenario into one.

Throughput is all requests over all the slices' time (a slice that answered
nothing still counts its seconds); p50 is the slices' mean weighted by their
requests; p99 and p99.9 are the worst slice's (wrk keeps no histogram to merge,
and the worst never flatters); counts are summed. A slice whose line is missing
or unreadable counts as a failed one: nothing answered, one error.
"""
import json
import sys

runs = []
for arg in sys.argv[1:]:
    try:
        runs.append(json.loads(arg))
    except ValueError:
        runs.append({"rps": 0, "secs": 0, "p50": 0, "p99": 0, "p999": 0, "requests": 0, "non2xx": 0, "errors": 1})
secs = sum(r.get("secs", 0) for r in runs)
requests = sum(r["requests"] for r in runs)
print(json.dumps({
    "rps": round(requests / secs, 1) if secs else 0,
    "p50": round(sum(r["p50"] * r["requests"] for r in runs) / requests, 3) if requests else 0,
    "p99": max((r["p99"] for r in runs), default=0),
    "p999": max((r["p999"] for r in runs), default=0),
    "requests": requests,
    "non2xx": sum(r["non2xx"] for r in runs),
    "errors": sum(r["errors"] for r in runs),
}, separators=(",", ":")))
