#!/usr/bin/env bash
# User-space instructions per request of one GET, counted by callgrind: steadier
# than wall-clock runs on a shared machine, for comparing two builds of one change.
#
#   bench/callgrind.sh DATABASE_URL PATH TOKEN [BINARY]
#   bench/callgrind.sh sqlite:///tmp/bench.db /v1/connection/conn_x key_bench_1
#   BASELINE=responses.json bench/callgrind.sh - PATH TOKEN target/release/pb-baseline
#
# The server (or, with BASELINE, pb-baseline answering that recorded file) runs
# under valgrind with instrumentation off, is warmed up for 2 s, then counted
# for a 5 s `wrk -c4` run. The database is one pb-dataset made (run.sh prints how).
# It does not see the kernel, and valgrind's CPU lacks some extensions (SHA-NI),
# so such code shows in its software form.
set -euo pipefail
url="$1" path="$2" token="$3" bin="${4:-target/release/patchbay}"
port=18409
KEYS="bench:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
out=$(mktemp -d)
if [ -n "${BASELINE:-}" ]; then
  valgrind --tool=callgrind --callgrind-out-file="$out/cg" --instr-atstart=no \
    "$bin" --listen "127.0.0.1:$port" --responses "$BASELINE" >"$out/log" 2>&1 &
else
  data=$(mktemp -d)
  trap 'rm -rf "$data"' EXIT
  PATCHBAY_DATA_DIR="$data" PATCHBAY_MASTER_KEYS="$KEYS" RUST_LOG=warn valgrind --tool=callgrind \
    --callgrind-out-file="$out/cg" --instr-atstart=no \
    "$bin" serve --listen "127.0.0.1:$port" --database-url "$url" >"$out/log" 2>&1 &
fi
vg=$!
for _ in $(seq 1 120); do curl -s "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.5; done
wrk -t1 -c4 -d2s -H "Authorization: Bearer $token" "http://127.0.0.1:$port$path" >/dev/null
callgrind_control -i on "$vg" >/dev/null 2>&1
run=$(wrk -t1 -c4 -d5s -H "Authorization: Bearer $token" "http://127.0.0.1:$port$path")
callgrind_control -d "$vg" >/dev/null 2>&1
callgrind_control -i off "$vg" >/dev/null 2>&1
sleep 1
kill "$vg"; wait "$vg" 2>/dev/null || true
requests=$(echo "$run" | awk '/requests in/ {print $1}')
dump=$(ls -t "$out"/cg.* | head -1)
ir=$(awk '/^summary:/ {print $2}' "$dump")
echo "$ir instructions / $requests requests = $((ir / requests)) per request (profile: $dump)"
