#!/usr/bin/env bash
# Sets up, builds the release binary and runs `tokentally serve` with an embedded SQLite file.
# Usage: scripts/serve.sh [--demo] [serve options, e.g. --db PATH --addr HOST:PORT]
#   --demo   fill the database with realistic demo traffic first (only if it has no events yet)
set -euo pipefail
cd "$(dirname "$0")/.."
demo=false
args=()
for a in "$@"; do
  if [ "$a" = --demo ]; then demo=true; else args+=("$a"); fi
done
scripts/build.sh release
bin=target/release/tokentally
db=${TOKENTALLY_DB:-./tokentally.db}
db_given=false
for ((i = 0; i < ${#args[@]}; i++)); do
  if [ "${args[$i]}" = --db ]; then db=${args[$((i + 1))]:-$db}; db_given=true; fi
done
$db_given || args+=(--db "$db")
if $demo; then
  if [ ! -s "$db" ]; then
    "$bin" demo --db "$db"
  else
    echo "serve: $db already exists; not adding demo data again (delete it for a fresh demo)"
  fi
fi
echo "serve: create an ingest key with: $bin keys create --scope ingest --db $db"
# The dashboard asks for an admin password on first start. Without a terminal to ask on (and no
# TOKENTALLY_ADMIN_PASSWORD), serve a local-only dashboard without login instead.
if [ ! -t 0 ] && [ -z "${TOKENTALLY_ADMIN_PASSWORD:-}" ] && [[ " ${args[*]} " != *" --no-login "* ]]; then
  echo "serve: no terminal to ask for an admin password: starting with --no-login (loopback only)"
  args+=(--no-login)
fi
exec "$bin" serve "${args[@]}"
