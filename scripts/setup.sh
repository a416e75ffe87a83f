#!/usr/bin/env bash
# Installs what building tokentally needs and is missing: the wasm32 target and the
# wasm-bindgen CLI at exactly the version in Cargo.lock. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust (rustup) first" >&2; exit 1; }
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  echo "setup: adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock 2>/dev/null || true)
if [ -z "$want" ]; then
  cargo generate-lockfile
  want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
fi
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  echo "setup: installing wasm-bindgen-cli $want (found: ${have:-none}); this takes a few minutes once"
  # Not --locked: its lockfile pins a crate version the registry mirror lacks.
  cargo install wasm-bindgen-cli --version "$want" --force
  have=$(wasm-bindgen --version | awk '{print $2}')
  [ "$have" = "$want" ] || { echo "setup: wasm-bindgen CLI is $have but the crate is $want; they must match" >&2; exit 1; }
fi
