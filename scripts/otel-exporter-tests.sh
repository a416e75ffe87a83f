#!/usr/bin/env bash
# Real OpenTelemetry exporters and GenAI instrumentations against the real server (`POST
# /v1/traces`): Python (opentelemetry-sdk, the OTLP protobuf exporter, the official openai-v2 and
# OpenLLMetry's anthropic instrumentation around the real openai and anthropic packages) and Node
# (the OTLP JSON and protobuf exporters). Installs what it needs itself: a venv under target/ and
# `npm ci`. Needs target/debug/tokentally (scripts/build.sh debug).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/dev/venv.sh
venv=target/otel-venv
venv "$venv" server/tests/exporters/requirements.txt
echo "== OTLP exporters: Python"
"$venv/bin/python" server/tests/exporters/python_otel.py
echo "== OTLP exporters: Node"
(cd server/tests/exporters/node && npm ci --no-audit --no-fund --silent && npm test)
