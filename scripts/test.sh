#!/usr/bin/env bash
# Sets up everything and runs every test: unit and integration tests (the real server on
# 127.0.0.1 with a real SQLite file), browser tests (Debian's Chromium via playwright-core) and the
# TypeScript SDK's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-deps.sh
scripts/build.sh debug

echo "== cargo test (unit + integration)"
cargo test --workspace

echo "== browser tests (end2end)"
(cd end2end && npm ci --no-audit --no-fund && npm test)
echo "== SDK tests (sdk/node: real openai and @anthropic-ai/sdk against a fake provider and the real server)"
(cd sdk/node && npm ci --no-audit --no-fund && npm run build && npm test)
echo "== all tests passed"
