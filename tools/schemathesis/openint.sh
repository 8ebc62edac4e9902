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
# shellcheck source=tools/schemathesis/demo.sh
. tools/schemathesis/demo.sh
start_demo

echo "== schemathesis: OpenInt's own spec (tools/vendor-specs/openint-openapi.json) against /v1, $EXAMPLES examples per operation"
# The demo organisation's key is not a secret: --output-sanitize false keeps it in the printed
# curl commands. --continue-on-failure: one failure does not hide the others.
"$ST" --config-file tools/schemathesis/openint.toml --no-color run tools/vendor-specs/openint-openapi.json \
    --url "$BASE/v1" -H "Authorization: Bearer key_demo_org_1" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples "$EXAMPLES" --seed 1 --generation-deterministic --continue-on-failure --output-sanitize false
