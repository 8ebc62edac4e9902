#!/usr/bin/env bash
# Sandbox snapshots (docs/sandbox.md) at N connections per face on SQLite: the time of
# a save and of a restore through the admin API, each against a baseline measured in the
# same run on the same data: copying the database file (the same bytes, written once).
#
#   bench/sandbox.sh                 # N=10000, 5 rounds
#   N=100000 ROUNDS=3 bench/sandbox.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-10000}"
ROUNDS="${ROUNDS:-5}"
PORT="${PORT:-18410}"
KEYS="bench:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
ADMIN="bench-admin-token"

cargo build --release -q -p patchbay -p patchbay-bench
WORK="$(mktemp -d)"
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
DB="$WORK/bench.db"
SERVER=
target/release/pb-dataset --database-url "sqlite://$DB" --connections "$N" --master-keys "$KEYS" >/dev/null
PATCHBAY_ADMIN_TOKEN="$ADMIN" PATCHBAY_MASTER_KEYS="$KEYS" PATCHBAY_DATA_DIR="$WORK/data" \
  target/release/patchbay serve --sandbox --listen "127.0.0.1:$PORT" --database-url "sqlite://$DB" >"$WORK/log" 2>&1 &
SERVER=$!
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.05; done

ms() { python3 -c 'import sys; print(f"{float(sys.argv[1]) * 1000:.1f}")' "$1"; }
call() { # method path [body]: prints the seconds it took; fails on a non-2xx answer
  curl -sf -o /dev/null -w '%{time_total}' -X "$1" -H "Authorization: Bearer $ADMIN" \
    -H 'content-type: application/json' ${3:+--data "$3"} "http://127.0.0.1:$PORT/admin/v1/sandbox$2"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

save=(); restore=(); copy=()
for i in $(seq 1 "$ROUNDS"); do
  save+=("$(call POST /snapshots "{\"name\":\"bench\"}")")
  restore+=("$(call POST /snapshots/bench/restore)")
  s=$(date +%s.%N); cp "$DB" "$WORK/copy.db"; sync "$WORK/copy.db"; e=$(date +%s.%N)
  copy+=("$(python3 -c "print($e - $s)")"); rm -f "$WORK/copy.db"
done
rows=$(call GET "" >/dev/null; curl -sf -H "Authorization: Bearer $ADMIN" "http://127.0.0.1:$PORT/admin/v1/sandbox/snapshots" |
  python3 -c 'import json, sys; r = json.load(sys.stdin)["snapshots"][0]["rows"]; print(sum(r.values()))')
size=$(du -m "$DB" | cut -f1)
s=$(printf '%s\n' "${save[@]}" | median); r=$(printf '%s\n' "${restore[@]}" | median); c=$(printf '%s\n' "${copy[@]}" | median)
echo "sandbox snapshots, SQLite, $N connections per face ($rows rows, ${size} MB database), median of $ROUNDS:"
printf '| operation | ms | × copying the database file (%s ms) |\n|---|---|---|\n' "$(ms "$c")"
python3 - "$s" "$r" "$c" <<'PY'
import sys
s, r, c = map(float, sys.argv[1:])
for name, v in (("save", s), ("restore", r)):
    print(f"| {name} | {v * 1000:.1f} | {v / c:.2f} |")
PY
