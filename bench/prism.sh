#!/usr/bin/env bash
# The stand-in a user would otherwise choose: the Prism mock server (npm
# @stoplight/prism-cli) answering from Patchbay's own Network OpenAPI document.
# Measured once, on one operation, with the same wrk settings as bench/run.sh.
#
#   bench/prism.sh SERVER_URL PATH TOKEN     # prints one wrk-report.lua JSON line
#
# SERVER_URL is a running Patchbay (for its OpenAPI document); Prism is
# installed from the npm registry into bench/.prism on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
server="$1" path="$2" token="$3"
DURATION="${DURATION:-10}"
CONNS="${CONNS:-64}"
PRISM_PORT="${PRISM_PORT:-18402}"
dir=bench/.prism
if [ ! -x "$dir/node_modules/.bin/prism" ]; then
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "@stoplight/prism-cli@${PRISM_VERSION:-5}" >/dev/null
fi
curl -sf "$server/api/network/v1/openapi.json" >"$dir/network.json"
"$dir/node_modules/.bin/prism" mock --host 127.0.0.1 --port "$PRISM_PORT" "$dir/network.json" >"$dir/prism.log" 2>&1 &
prism=$!
trap 'kill $prism 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  curl -s -o /dev/null "http://127.0.0.1:$PRISM_PORT/" && break
  sleep 0.1
done
status=$(curl -s -o "$dir/answer.json" -w '%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:$PRISM_PORT$path")
echo "prism answered $status: $(head -c 200 "$dir/answer.json")" >&2
wrk -t2 -c"$CONNS" -d"${DURATION}s" -s bench/wrk-report.lua -H "Authorization: Bearer $token" "http://127.0.0.1:$PRISM_PORT$path" | tail -1
