#!/usr/bin/env bash
# Sets up everything and runs every test: formatting and lint gates (rustfmt, clippy for both
# targets, warnings are errors; the committed OpenAPI file is the generated one), unit and
# integration tests (the real server on 127.0.0.1 with a real SQLite file), schemathesis against
# the API document, browser tests (Debian's Chromium via playwright-core) and the
# TypeScript SDK's tests, real OpenTelemetry exporters (Python, Node) against /v1/traces, and a
# short coverage-guided fuzzing run of the parsers (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-deps.sh
scripts/build.sh debug

echo "== formatting, lints and the OpenAPI file (cargo fmt --check; clippy for the server, the ssr app and the wasm app)"
for c in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
done
cargo fmt --all --check
rustfmt --check --edition 2024 server/fuzz/fuzz_targets/*.rs
cargo clippy -p server --all-targets -- -D warnings
cargo clippy -p app --lib --features ssr --tests -- -D warnings
cargo clippy -p app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate -- -D warnings
# The committed OpenAPI file must be the one the code generates (a unit test in server/src/http/openapi.rs).

echo "== cargo test (unit + integration)"
cargo test --workspace

echo "== coverage-guided fuzzing (libFuzzer, an instrumented release build): a short run of each target"
scripts/fuzz.sh 20000

echo "== the API document against the real server: schemathesis --checks all, fixed seed"
scripts/schemathesis.sh

echo "== OpenTelemetry exporters (Python and Node, real packages, POST /v1/traces)"
scripts/otel-exporter-tests.sh

echo "== browser tests (end2end)"
(cd end2end && npm ci --no-audit --no-fund && npm test)
echo "== SDK tests (sdk/node: real openai and @anthropic-ai/sdk against a fake provider and the real server)"
(cd sdk/node && npm ci --no-audit --no-fund && npm run build && npm test)
echo "== all tests passed"
