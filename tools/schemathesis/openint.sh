#!/usr/bin/env bash
# Property-based API tests against OpenInt's OWN v1 spec
# (tools/vendor-specs/openint-openapi.json: 21 operations, 171 connectors), not Patchbay's
# generated document: schemathesis on a server started with the demo seed, as the demo
# organisation. The checks are the issue's bar for a vendor's own spec: no server error
# (not_a_server_error) and every answer valid against the spec's response schemas
# (response_schema_conformance). Statuses the spec does not list (404 on check, 409 on
# deleting a config still in use, 413, 429) and the positive/negative data checks are
# left to tools/schemathesis/run.sh, which runs every check on Patchbay's own document.
# Exits non-zero on any failure.
#
#   tools/schemathesis/openint.sh [path/to/patchbay] [max-examples]
#   SCHEMATHESIS_DATABASE_URL=postgres://... tools/schemathesis/openint.sh ...   # the demo on
#     that database (recreated first: it must be one made for the purpose)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${1:-target/debug/patchbay}"
EXAMPLES="${2:-30}"
PORT="${SCHEMATHESIS_PORT:-18803}"
BASE="http://127.0.0.1:$PORT"
ST="${ST:-$(python3 -c 'import os, sys; print(os.path.join(os.path.dirname(sys.executable), "st"))')}"

DB="${SCHEMATHESIS_DATABASE_URL:-}"
if [ -n "$DB" ]; then
  name="${DB##*/}"
  psql -q "${DB%/*}/postgres" -c "DROP DATABASE IF EXISTS \"$name\"" -c "CREATE DATABASE \"$name\""
fi

WORK="$(mktemp -d)"
LOG="$WORK/server.log"
# Negative runs send many malformed requests from one address: keep the failed-authentication
# limit out of the way (tested on its own in crates/patchbay/tests/hardening.rs).
PATCHBAY_AUTH_FAILURE_LIMIT__PER_SECOND=0 "$BIN" demo --listen "127.0.0.1:$PORT" ${DB:+--database-url "$DB"} >"$LOG" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
up=0
for _ in $(seq 1 100); do
  if curl -sf "$BASE/healthz" >/dev/null 2>&1; then up=1; break; fi
  sleep 0.1
done
if [ "$up" != 1 ]; then
  echo "== the demo server did not come up on $BASE:"
  cat "$LOG"
  exit 1
fi

echo "== schemathesis: OpenInt's own spec (tools/vendor-specs/openint-openapi.json) against /v1, $EXAMPLES examples per operation"
# The demo organisation's key is not a secret: --output-sanitize false keeps it in the printed
# curl commands. --continue-on-failure: one failure does not hide the others.
"$ST" --config-file tools/schemathesis/openint.toml --no-color run tools/vendor-specs/openint-openapi.json \
    --url "$BASE/v1" -H "Authorization: Bearer key_demo_org_1" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples "$EXAMPLES" --seed 1 --generation-deterministic --continue-on-failure --output-sanitize false
