#!/usr/bin/env bash
# Benchmarks at one scale (not a test; prints a report for docs/performance.md):
#   scripts/bench.sh EVENTS USERS [DAYS] [INGEST_EVENTS]
# e.g. scripts/bench.sh 10000000 100000 28   and   scripts/bench.sh 1000000 20000 28
# Builds the release binary, loads `tokentally demo` into a fresh database (load rate), starts the
# server on it (start-up time, RSS), times every read view, ingests over HTTP into it (4 clients,
# batches of 100, random UUIDs) and, in the same run, the same number of rows into a bare SQLite
# table (the floor). Data goes to bench-data/ (git-ignored); pass REUSE=1 to keep a loaded database.
set -euo pipefail
cd "$(dirname "$0")/.."
events=${1:?events}
users=${2:?users}
days=${3:-28}
ingest_events=${4:-200000}
port=${PORT:-3099}
base="http://127.0.0.1:$port"

scripts/build.sh release >&2
cargo build --release -p server --example bench >&2
bin=target/release/tokentally
bench=target/release/examples/bench
mkdir -p bench-data
db="bench-data/demo-$events-$users-$days.db"

echo "## tokentally demo --events $events --users $users --days $days"
if [ "${REUSE:-0}" != 1 ] || [ ! -f "$db" ]; then
  rm -f "$db" "$db-wal" "$db-shm" "$db.aggregate"
  start=$(date +%s.%N)
  "$bin" demo --db "$db" --events "$events" --users "$users" --days "$days" --seed 1 2>/dev/null
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" -v n="$events" 'BEGIN { printf "demo load: %.1f s = %.0f events/s\n", e - s, n / (e - s) }'
fi
size=$(stat -c %s "$db")
awk -v s="$size" -v n="$events" 'BEGIN { printf "database file: %.2f GiB = %.0f bytes/event\n", s / 1073741824, s / n }'

key=$("$bin" keys create --scope read --db "$db" | tail -1)
ikey=$("$bin" keys create --scope ingest --db "$db" | tail -1)
rm -f "$db.aggregate"
start=$(date +%s.%N)
TOKENTALLY_LOG=warn "$bin" serve --db "$db" --addr "127.0.0.1:$port" --no-login >/dev/null 2>bench-data/serve.log &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
until curl -sf -o /dev/null -H "Authorization: Bearer $key" "$base/v1/me/ai-apps/overview?window=1d"; do sleep 0.05; done
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" 'BEGIN { printf "start to first answered request: %.2f s\n", e - s }'
rss() { awk '/VmRSS/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$pid/status"; }
echo "server RSS after start: $(rss)"
echo
"$bench" reads "$base" "$key" 10
echo
echo "server RSS after the reads: $(rss)"
"$bench" ingest "$base" "$ikey" "$ingest_events" 4 "$key"
echo "server RSS after ingest: $(rss)"
rm -f bench-data/floor.db bench-data/floor.db-wal bench-data/floor.db-shm
"$bench" floor bench-data/floor.db "$ingest_events"

# A clean stop saves the aggregate; the next start reads it instead of every call.
kill -TERM $pid; wait $pid || true
ls -l "$db.aggregate" | awk '{ printf "saved aggregate: %.0f MiB\n", $5 / 1048576 }'
start=$(date +%s.%N)
TOKENTALLY_LOG=warn "$bin" serve --db "$db" --addr "127.0.0.1:$port" --no-login >/dev/null 2>>bench-data/serve.log &
pid=$!
until curl -sf -o /dev/null -H "Authorization: Bearer $key" "$base/v1/me/ai-apps/overview?window=1d"; do sleep 0.05; done
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" 'BEGIN { printf "restart (saved aggregate) to first answered request: %.2f s\n", e - s }'
echo "server RSS after that start: $(rss)"
