#!/usr/bin/env bash
# Sets up everything and runs every test: unit and integration tests (the real server on
# 127.0.0.1 with a real SQLite file) and browser tests (Debian's Chromium via playwright-core).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-deps.sh
scripts/build.sh debug

echo "== cargo test (unit + integration)"
cargo test --workspace

echo "== browser tests (end2end)"
(cd end2end && npm ci --no-audit --no-fund && npm test)
echo "== all tests passed"
