#!/usr/bin/env bash
# Soak (not a test; prints a report for docs/performance.md):
#   scripts/soak.sh DB SECONDS RATE USERS
# e.g. scripts/soak.sh bench-data/soak.db 1800 10000 10000   on a copy of a demo database
# Starts the release server on DB (retention set to 27 days, checked every 5 minutes), samples its
# RSS every 10 s into DB.rss.csv, and runs `bench soak` for SECONDS: ingest paced at RATE events/s,
# every read view and the Users page in a loop, a demo user deleted every 10 s (wait=false).
# Prints the RSS curve's start, max and end. Build first: scripts/build.sh release and
# cargo build --release -p server --example bench.
set -euo pipefail
cd "$(dirname "$0")/.."
db=${1:?db}
secs=${2:-1800}
rate=${3:-10000}
users=${4:-100000}
port=${PORT:-3098}
base="http://127.0.0.1:$port"
bin=target/release/tokentally
bench=target/release/examples/bench

"$bin" projects set default --retention-days 27 --db "$db" >/dev/null
ikey=$("$bin" keys create --scope ingest --db "$db" | tail -1)
rkey=$("$bin" keys create --scope read --db "$db" | tail -1)
akey=$("$bin" keys create --scope admin --db "$db" | tail -1)
TOKENTALLY_LOG=info TOKENTALLY_RETENTION_INTERVAL_SECS=300 "$bin" serve --db "$db" --addr "127.0.0.1:$port" \
  --no-login >/dev/null 2>"$db.serve.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  curl -sf -o /dev/null "$base/healthz" && break
  sleep 1
done
echo "server ready; soak of $secs s at $rate events/s"
csv="$db.rss.csv"
echo "seconds,rss_mib" >"$csv"
(
  t=0
  while kill -0 $pid 2>/dev/null; do
    rss=$(awk '/VmRSS/ { print int($2 / 1024) }' /proc/$pid/status 2>/dev/null || echo 0)
    echo "$t,$rss" >>"$csv"
    sleep 10
    t=$((t + 10))
  done
) &
sampler=$!
"$bench" soak "$base" "$ikey" "$rkey" "$akey" "$secs" "$rate" "$users"
kill $sampler 2>/dev/null || true
awk -F, 'NR == 2 { s = $2 } NR > 1 { if ($2 > m) { m = $2; mt = $1 }; e = $2; et = $1 }
  END { printf "RSS: start %d MiB, max %d MiB (at %d s), end %d MiB (at %d s); %d samples in %s\n", s, m, mt, e, et, NR - 1, FILENAME }' "$csv"
grep -c "scrubbed the file" "$db.serve.log" | sed 's/^/scrubs: /'
grep -c "retention removed\|deleted a user" "$db.serve.log" | sed 's/^/deletion and retention log lines: /'
grep -E "ERROR|panicked" "$db.serve.log" | head -5 || true
