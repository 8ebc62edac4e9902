#!/usr/bin/env bash
# Patchbay benchmarks: for each backend and dataset size, fill a database, start
# the real server (release build) and a same-bytes baseline, drive both with wrk
# on loopback (fixed concurrency and duration) and print a results table.
#
#   SIZES="10000 100000 1000000" DURATION=10 bench/run.sh
#   PATCHBAY_BENCH_PG=postgres://postgres@127.0.0.1:5432/test bench/run.sh   # adds PostgreSQL
#   PRISM=0 bench/run.sh     # skips the one Prism mock measurement (npm @stoplight/prism-cli)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="${SIZES:-10000}"
DURATION="${DURATION:-10}"
CONNS="${CONNS:-64}"
PORT=18400
BASE_PORT=18401
KEYS="bench:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
OUT="${OUT:-bench/results}"
mkdir -p "$OUT"

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p patchbay -p patchbay-bench

rows=()
wait_up() { for _ in $(seq 1 200); do curl -sf "$1/healthz" >/dev/null 2>&1 && return 0; curl -sf "$1/__ping" >/dev/null 2>&1 && return 0; sleep 0.05; done; }

# Read the database into the OS page cache. This VM drops cached file pages that sit
# unused even with most memory free (docs/benchmarks.md, round 10): without this, a
# scenario that reads the 1M database measures the virtual disk, not the server.
warm_cache() { # url
  case "$1" in
    sqlite://*) local f="${1#sqlite://}"; cat "$f" >/dev/null || echo "warning: could not read $f into the cache" >&2 ;;
    postgres://*) PGOPTIONS=--client-min-messages=warning psql "$1" -qAt -c "CREATE EXTENSION IF NOT EXISTS pg_prewarm" \
      -c "SELECT sum(pg_prewarm(c.oid::regclass, 'read')) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'i', 't') AND n.nspname NOT IN ('pg_catalog', 'information_schema')" >/dev/null ||
      echo "warning: pg_prewarm failed (contrib extension, needs a superuser); the database is not warmed" >&2 ;;
  esac
}

slice() { # seconds token port path [quantiles file]: one wrk run, its report line
  WRK_QUANTILES="${5:-}" wrk -t2 -c"$CONNS" -d"$1s" -s bench/wrk-report.lua -H "Authorization: Bearer $2" "http://127.0.0.1:$3$4" | tail -1
}

bench_one() { # backend size url
  local backend="$1" n="$2" url="$3"
  echo "== $backend, $n connections per face"
  local reqs="$OUT/requests"
  rm -rf "$reqs"
  eval "$(target/release/pb-dataset --database-url "$url" --connections "$n" --master-keys "$KEYS" --requests-dir "$reqs")"
  # The dataset was written without fsync: let its writeback finish before anything is measured.
  sync
  # Export runs write files: keep them out of the working tree (PostgreSQL has no
  # database file for the data directory to sit beside).
  local data
  data=$(mktemp -d)
  PATCHBAY_DATA_DIR="$data" PATCHBAY_MASTER_KEYS="$KEYS" RUST_LOG=warn target/release/patchbay serve --listen "127.0.0.1:$PORT" --database-url "$url" \
    >"$OUT/server-$backend-$n.log" 2>&1 &
  local server=$!
  wait_up "http://127.0.0.1:$PORT"
  local net="/api/network/v1/enterprises"
  local scenarios=(
    "get-client-connection|bench-net-token|$net/ent-1/clients/connections/$NET_CONN"
    "list-partner-connections-p0|bench-net-token|$net/ent-partner/partners/connections?pageSize=100&active=true&partnerIds=$PARTNER"
    "list-partner-connections-p1000|bench-net-token|$net/ent-partner/partners/connections?pageSize=100&pageNumber=1000&active=true&partnerIds=$PARTNER"
    "list-export-connections|bench-export-token|/export/connections?imodelId=$IMODEL&\$top=100"
    "get-integration-connection|key_bench_1|/v1/connection/$IN_CONN"
    "get-integration-connection-secrets|key_bench_1|/v1/connection/$IN_CONN?include_secrets=true"
    "list-integration-search|key_bench_1|/v1/connection?search_query=connection%201&limit=100"
    "list-settlements|bench-net-token|$net/ent-partner/partners/settlements?pageSize=100"
  )
  # Scenarios whose every request differs (a fresh signed nonce, a connection
  # without an active run, another connection); their first line is used for recording.
  local writes=(
    "connect-to-partner|bench-net-token|$reqs/connect.tsv|POST /api/network/v1/enterprises/ent-1/clients/connections"
    "create-export-run|bench-export-token|$reqs/create-run.tsv|POST /export/connections/*/runs"
    "create-allocation|bench-net-token|$reqs/allocate.tsv|POST /api/network/v1/enterprises/*/clients/connections/*/allocations"
  )
  # Gets spread over up to 100,000 connections: what a get costs when the
  # process has not kept the connection from an earlier read.
  writes=(
    "get-client-connection-spread|bench-net-token|$reqs/get-spread.tsv|GET /api/network/v1/enterprises/*/clients/connections/*"
    "${writes[@]}"
  )
  # Record Patchbay's exact responses for the baseline.
  python3 - "$PORT" "$OUT/responses.json" "${scenarios[@]}" "${writes[@]}" <<'PY'
import base64, json, sys, urllib.request
port, out, specs = sys.argv[1], sys.argv[2], sys.argv[3:]
rec = {}
for spec in specs:
    parts = spec.split("|")
    if len(parts) == 4:  # a write: send the file's first request, record under the key
        name, token, file, key = parts
        lines = open(file).read().splitlines()
        method, path, body = lines[0].split("\t", 2)
        open(file + ".rest", "w").write("\n".join(lines[1:]) + "\n")
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body.encode(), method=method,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    else:
        name, token, path = parts
        key = f"GET {path}"
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"})
    try:
        r = urllib.request.urlopen(req)
        status, ctype, body = r.status, r.headers.get("content-type"), r.read()
    except urllib.error.HTTPError as e:
        status, ctype, body = e.code, e.headers.get("content-type"), e.read()
    if not 200 <= status < 300:
        print(f"warning: {name} answered {status}: {body[:300]!r}", file=sys.stderr)
    rec[key] = {"status": status, "content_type": ctype or "application/json", "body_base64": base64.b64encode(body).decode()}
json.dump(rec, open(out, "w"))
PY
  target/release/pb-baseline --listen "127.0.0.1:$BASE_PORT" --responses "$OUT/responses.json" >/dev/null 2>&1 &
  local baseline=$!
  sleep 0.3
  # Reads: Patchbay and the baseline take turns in four half-length slices,
  # Patchbay-baseline-baseline-Patchbay, so a change of the shared machine's
  # speed during the pair weighs on both sides alike (bench/merge.py).
  local half=$(((DURATION + 1) / 2))
  for spec in "${scenarios[@]}"; do
    IFS='|' read -r name token path <<<"$spec"
    local pb bl p1 b1 b2 p2
    warm_cache "$url"
    # One unmeasured second on each side first (connections, kept reads, allocator arenas).
    slice 1 "$token" "$PORT" "$path" >/dev/null
    slice 1 "$token" "$BASE_PORT" "$path" >/dev/null
    local h="$OUT/quantiles"
    rm -rf "$h" && mkdir -p "$h"
    p1=$(slice "$half" "$token" "$PORT" "$path" "$h/p1")
    b1=$(slice "$half" "$token" "$BASE_PORT" "$path" "$h/b1")
    b2=$(slice "$half" "$token" "$BASE_PORT" "$path" "$h/b2")
    p2=$(slice "$half" "$token" "$PORT" "$path" "$h/p2")
    pb=$(python3 bench/merge.py "$p1" "@$h/p1" "$p2" "@$h/p2")
    bl=$(python3 bench/merge.py "$b1" "@$h/b1" "$b2" "@$h/b2")
    rows+=("$backend|$n|$name|$pb|$bl")
    echo "  $name: patchbay $pb  baseline $bl"
    [ -n "${first_bl:-}" ] || first_bl="$bl"
  done
  for spec in "${writes[@]}"; do
    IFS='|' read -r name token file _ <<<"$spec"
    local pb bl
    warm_cache "$url"
    pb=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" -s bench/wrk-requests.lua -H "Authorization: Bearer $token" "http://127.0.0.1:$PORT" -- "$file.rest" 2 | tail -1)
    bl=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" -s bench/wrk-requests.lua -H "Authorization: Bearer $token" "http://127.0.0.1:$BASE_PORT" -- "$file.rest" 2 | tail -1)
    rows+=("$backend|$n|$name|$pb|$bl")
    echo "  $name: patchbay $pb  baseline $bl"
  done
  # Once per run: the Prism mock on our own document, for the first scenario.
  if [ "${PRISM:-1}" = 1 ] && [ -z "${prism_done:-}" ]; then
    prism_done=1
    IFS='|' read -r name token path <<<"${scenarios[0]}"
    local pr
    pr=$(DURATION="$DURATION" CONNS="$CONNS" bench/prism.sh "http://127.0.0.1:$PORT" "$path" "$token" ||
      echo '{"rps":0,"p50":0,"p99":0,"p999":0,"requests":0,"non2xx":0,"errors":-1}')
    rows+=("prism|$n|$name (Prism mock)|$pr|$first_bl")
    echo "  $name (Prism mock): $pr"
  fi
  local rss
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")
  rows+=("$backend|$n|peak-rss-kib|{\"rss_kib\":$rss}|{}")
  kill "$server" "$baseline" 2>/dev/null || true
  wait "$server" "$baseline" 2>/dev/null || true
  rm -rf "$data"
}

for n in $SIZES; do
  dir=$(mktemp -d)
  bench_one sqlite "$n" "sqlite://$dir/bench.db"
  rm -rf "$dir"
  if [ -n "${PATCHBAY_BENCH_PG:-}" ]; then
    db="pb_bench_$n"
    psql "$PATCHBAY_BENCH_PG" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
    bench_one postgres "$n" "${PATCHBAY_BENCH_PG%/*}/$db"
    psql "$PATCHBAY_BENCH_PG" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null ||
      echo "warning: could not drop $db" >&2
  fi
done

printf '%s\n' "${rows[@]}" > "$OUT/rows.txt"
python3 bench/table.py "$OUT/rows.txt"
