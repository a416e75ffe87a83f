#!/usr/bin/env bash
# Builds the browser bundle into target/site and then the server binary, which embeds it.
# Usage: scripts/build.sh [debug|release]   (the binary: target/<mode>/tokentally)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-debug}
scripts/setup.sh

site=target/site
rm -rf "$site"
mkdir -p "$site/pkg"
if [ "$mode" = release ]; then
  cargo build -p app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate --profile wasm-release
  wasm=target/wasm32-unknown-unknown/wasm-release/app.wasm
  strip_flags=(--remove-name-section --remove-producers-section)
else
  cargo build -p app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate
  wasm=target/wasm32-unknown-unknown/debug/app.wasm
  strip_flags=()
fi
wasm-bindgen --target web --out-dir "$site/pkg" --out-name tokentally "${strip_flags[@]}" "$wasm"
mv "$site/pkg/tokentally_bg.wasm" "$site/pkg/tokentally.wasm"
cp style/main.css "$site/pkg/tokentally.css"
cp -r public/. "$site/"

if [ "$mode" = release ]; then
  cargo build -p server --release
else
  cargo build -p server
fi
echo "build: target/$mode/tokentally (site embedded from $site)"
