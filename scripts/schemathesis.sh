#!/usr/bin/env bash
# A third-party check of the API contract: schemathesis (PyPI, pinned in
# server/tests/schemathesis/requirements.txt) generates requests from /v1/openapi.json and runs
# every check it has (`--checks all`) against the real server on a small demo database, with a
# fixed seed. The read operations and the user deletion run with an admin key, ingest with an
# ingest key. Any failure fails this script. Installs what it needs itself (a venv under target/).
# Usage: scripts/schemathesis.sh [path/to/tokentally]   (default target/debug/tokentally)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/tokentally}
source scripts/dev/venv.sh
venv=target/schemathesis-venv
venv "$venv" server/tests/schemathesis/requirements.txt

work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

db=$work/st.db
"$bin" demo --db "$db" --events 20000 --users 200 --days 7 --seed 7 >/dev/null
admin_key=$("$bin" keys create --scope admin --db "$db" | tail -1)
ingest_key=$("$bin" keys create --scope ingest --db "$db" | tail -1)
TOKENTALLY_LOG=warn "$bin" serve --db "$db" --addr 127.0.0.1:0 --no-login >"$work/serve.out" &
server_pid=$!
for _ in $(seq 100); do
  base=$(grep -o 'http://[^/[:space:]]*' "$work/serve.out" | head -1 || true)
  [ -n "$base" ] && break
  sleep 0.1
done
[ -n "$base" ] || { echo "schemathesis: the server did not start" >&2; exit 1; }

run() {
  local key=$1
  shift
  "$venv/bin/schemathesis" --config-file server/tests/schemathesis/schemathesis.toml run "$base/v1/openapi.json" --checks all --seed 20261202 \
    --max-examples 40 --workers 1 -H "Authorization: Bearer $key" \
    --report junit --report-dir "$work/report" --output-truncate false "$@"
}
status=0
echo "== schemathesis: read API and deletion (admin key)"
run "$admin_key" --exclude-operation-id ingestEvents --exclude-operation-id exportTraces || status=1
echo "== schemathesis: ingest (ingest key)"
run "$ingest_key" --include-operation-id ingestEvents || status=1
kill -0 "$server_pid" || { echo "schemathesis: the server died" >&2; exit 1; }
exit $status
