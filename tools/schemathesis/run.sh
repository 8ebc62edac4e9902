#!/usr/bin/env bash
# Property-based API tests: schemathesis against each face's generated OpenAPI
# document, on a server started with the demo seed. Runs with valid tokens (all
# checks) and with invalid and missing tokens. Exits non-zero on any failure.
#
#   tools/schemathesis/run.sh [path/to/patchbay] [max-examples]
#   SCHEMATHESIS_DATABASE_URL=postgres://... tools/schemathesis/run.sh ...   # the demo on that
#     database (recreated first: it must be one made for the purpose) instead of SQLite
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${1:-target/debug/patchbay}"
EXAMPLES="${2:-40}"
PORT="${SCHEMATHESIS_PORT:-18765}"
# shellcheck source=tools/schemathesis/demo.sh
. tools/schemathesis/demo.sh
start_demo
ADMIN=$(awk '/admin token:/ {print $3}' "$LOG")

status=0
# Each document is valid OpenAPI 3.1.
for doc in /api/network/v1/openapi.json /export/openapi.json /v1/openapi.json /admin/v1/openapi.json; do
  if curl -sf "$BASE$doc" | python3 -c 'import json, sys; from openapi_spec_validator import validate; validate(json.load(sys.stdin))'; then
    echo "== valid OpenAPI 3.1: $doc"
  else
    echo "== INVALID OpenAPI document: $doc"
    status=1
  fi
done

run() {
  local name="$1" config="$2" doc="$3"; shift 3
  echo "== schemathesis: $name"
  if ! "$ST" --config-file "tools/schemathesis/$config" --no-color run "$BASE$doc" --url "$BASE" --checks all \
      --max-examples "$EXAMPLES" --seed 1 --generation-deterministic "$@"; then
    status=1
  fi
}

# Valid tokens, all checks.
run "network" network.toml /api/network/v1/openapi.json -H "Authorization: Bearer alice-token-1"
run "export" default.toml /export/openapi.json -H "Authorization: Bearer bob-token-1"
run "integrations" default.toml /v1/openapi.json -H "Authorization: Bearer key_demo_org_1"
# The sandbox's controls are off here (they answer 404); they get their own server below.
run "admin" default.toml /admin/v1/openapi.json -H "Authorization: Bearer $ADMIN" --exclude-path-regex '^/admin/v1/sandbox'

# Invalid and missing tokens: the fuzzing phase only. Every such request is refused before
# its parameters or body are read, so the coverage phase's exhaustive boundary cases add
# nothing, and on the Integrations document (171-connector bodies, v1 and v2) they took
# five minutes a run.
for face in /api/network/v1/openapi.json /export/openapi.json /v1/openapi.json /admin/v1/openapi.json; do
  cfg=default.toml
  [ "$face" = /api/network/v1/openapi.json ] && cfg=network.toml
  run "$face with an invalid token" "$cfg" "$face" -H "Authorization: Bearer not-a-valid-token" --phases fuzzing
  run "$face without a token" "$cfg" "$face" --phases fuzzing
done
# The sandbox's controls, on a demo with the sandbox on (a server of their own: fuzzed fault
# rules and resets would change what every other operation answers; the controls' own
# routes are never faulted).
stop_demo
DEMO_ARGS=--sandbox start_demo
ADMIN=$(awk '/admin token:/ {print $3}' "$LOG")
run "admin: sandbox controls" default.toml /admin/v1/openapi.json -H "Authorization: Bearer $ADMIN" --include-path-regex '^/admin/v1/sandbox'
run "admin: sandbox controls without a token" default.toml /admin/v1/openapi.json --include-path-regex '^/admin/v1/sandbox' --phases fuzzing
exit $status
