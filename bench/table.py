"""Prints the benchmark rows as a table, each result also as a ratio to the baseline.

For the read scenarios, p50, p99 and p99.9 are over both slices' requests (their
quantiles merged, bench/merge.py); the last column is the worse slice's own p99."""
import json
import sys

print(f"{'backend':9} {'N':>8} {'scenario':38} {'rps':>9} {'x base':>7} {'p50 ms':>7} {'p99 ms':>7} {'p99.9':>7} {'non2xx':>6} {'p99 worse slice':>15}")
for line in open(sys.argv[1]):
    backend, n, name, pb, bl = line.rstrip("\n").split("|", 4)
    pb, bl = json.loads(pb), json.loads(bl)
    if "rss_kib" in pb:
        print(f"{backend:9} {n:>8} {'peak RSS (MiB)':38} {pb['rss_kib'] / 1024:9.1f}")
        continue
    ratio = pb["rps"] / bl["rps"] if bl.get("rps") else 0
    print(f"{backend:9} {n:>8} {name:38} {pb['rps']:9.0f} {ratio:7.2f} {pb['p50']:7.2f} {pb['p99']:7.2f} {pb['p999']:7.2f} {pb['non2xx']:6d}"
          + (f" {pb['p99_worst']:15.2f}" if "p99_worst" in pb else ""))
