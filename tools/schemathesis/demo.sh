# Sourced by the schemathesis scripts: the schemathesis console script, and a demo server to
# test. Expects BIN and PORT; SCHEMATHESIS_DATABASE_URL names a PostgreSQL database to run
# the demo on (recreated first: it must be one made for the purpose) instead of SQLite.
# Sets ST, BASE, WORK (a temporary folder, removed on exit), LOG (the server's output) and
# SERVER (its pid, stopped on exit).

# The console script lives beside the Python that pip installed it for.
ST="${ST:-$(python3 -c 'import os, sys; print(os.path.join(os.path.dirname(sys.executable), "st"))')}"
BASE="http://127.0.0.1:$PORT"

start_demo() {
  local db="${SCHEMATHESIS_DATABASE_URL:-}"
  if [ -n "$db" ]; then
    local name="${db##*/}"
    psql -q "${db%/*}/postgres" -c "DROP DATABASE IF EXISTS \"$name\"" -c "CREATE DATABASE \"$name\""
  fi
  WORK="$(mktemp -d)"
  LOG="$WORK/server.log"
  # Negative runs send many malformed requests and wrong tokens from one address: keep the
  # failed-authentication limit out of the way (tested on its own in
  # crates/patchbay/tests/hardening.rs).
  # DEMO_ARGS: more flags for the demo (e.g. --sandbox).
  # shellcheck disable=SC2086
  PATCHBAY_AUTH_FAILURE_LIMIT__PER_SECOND=0 "$BIN" demo --listen "127.0.0.1:$PORT" ${db:+--database-url "$db"} ${DEMO_ARGS:-} >"$LOG" 2>&1 &
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
  local _
  for _ in $(seq 1 100); do
    # Our server, not another one left on the port (it would have failed to bind).
    if ! kill -0 "$SERVER" 2>/dev/null; then break; fi
    if curl -sf "$BASE/healthz" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "== the demo server did not come up on $BASE:"
  cat "$LOG"
  exit 1
}

# Stops the demo started last (so another can take the port).
stop_demo() {
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  rm -rf "$WORK"
}
