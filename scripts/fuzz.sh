#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers that read untrusted bytes, in an instrumented build of
# its own; prints a report for the issue notes. The test command runs `scripts/fuzz.sh 20000`.
#   scripts/fuzz.sh [RUNS_PER_TARGET] [TARGET...]
# Targets (server/fuzz/fuzz_targets, each calling server::fuzz): ingest_body gzip_body
# query_string otlp_export. Default: 2,500,000 runs of each, 10M in all.
# libFuzzer (the libfuzzer-sys crate) on the stable toolchain: sanitizer-coverage is switched on
# with stable codegen flags (-C passes=sancov-module and its LLVM options); overflow checks and
# debug assertions are on, so an arithmetic overflow is a crash too. Seeds: server/tests/fuzz/<dir>
# (committed); what the fuzzer finds grows target/fuzz/corpus/<target> (git-ignored), kept between
# runs. A crash leaves its input in target/fuzz/artifacts/<target>/ and fails this script.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-2500000}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(ingest_body gzip_body query_string otlp_export)

host=$(rustc -vV | awk '/^host:/ { print $2 }')
export CARGO_TARGET_DIR="$PWD/target/fuzz"
# The embedded dashboard plays no part in the parsers: build without it (the build script warns).
export TOKENTALLY_SITE_DIR="$CARGO_TARGET_DIR/no-site"
# --target keeps these flags off build scripts and proc macros, which can't be instrumented.
export RUSTFLAGS="-C passes=sancov-module -C llvm-args=-sanitizer-coverage-level=4 \
-C llvm-args=-sanitizer-coverage-inline-8bit-counters -C llvm-args=-sanitizer-coverage-pc-table \
-C llvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -C debug-assertions -C overflow-checks"
cargo build --release --locked --manifest-path server/fuzz/Cargo.toml --target "$host" --bins >&2

seeds_of() {
  case $1 in
    ingest_body) echo server/tests/fuzz/ingest ;;
    gzip_body) echo server/tests/fuzz/gzip ;;
    query_string) echo server/tests/fuzz/query ;;
    otlp_export) echo server/tests/fuzz/otlp_json server/tests/fuzz/otlp_protobuf ;;
    *) echo "fuzz: unknown target $1" >&2; exit 2 ;;
  esac
}

echo "## scripts/fuzz.sh $runs ${targets[*]}  ($(date -u +%FT%TZ), $(git rev-parse --short HEAD))"
total=0
for t in "${targets[@]}"; do
  seeds=$(seeds_of "$t")
  corpus="$CARGO_TARGET_DIR/corpus/$t"
  artifacts="$CARGO_TARGET_DIR/artifacts/$t/"
  mkdir -p "$corpus" "$artifacts"
  log="$CARGO_TARGET_DIR/$t.log"
  start=$(date +%s.%N)
  status=0
  "$CARGO_TARGET_DIR/$host/release/$t" -runs="$runs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -dict=server/fuzz/parsers.dict -artifact_prefix="$artifacts" -print_final_stats=1 \
    "$corpus" $seeds >"$log" 2>&1 || status=$?
  end=$(date +%s.%N)
  execs=$(awk '/stat::number_of_executed_units:/ { print $2 }' "$log")
  cov=$(awk '{ for (i = 1; i < NF; i++) if ($i == "cov:") c = $(i + 1) } END { print c }' "$log")
  printf '%-13s %10s runs  %6s s  coverage %s edges  corpus %s inputs  exit %s\n' \
    "$t" "${execs:-?}" "$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", e - s }')" "${cov:-?}" "$(ls "$corpus" | wc -l)" "$status"
  if [ "$status" != 0 ]; then
    echo "fuzz: $t failed; its log: $log; the input: $(ls "$artifacts" 2>/dev/null | head -1)" >&2
    tail -40 "$log" >&2
    exit 1
  fi
  total=$((total + ${execs:-0}))
done
echo "total: $total runs, 0 crashes, 0 panics"
