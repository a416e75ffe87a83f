#!/usr/bin/env bash
# Installs the system packages the tests need when missing: Debian's Chromium (browser tests) and
# Node.js with npm (browser tests, SDK, OpenTelemetry exporter tests), Python 3 with venv (the
# Python OpenTelemetry exporter tests), a C++ compiler (libFuzzer, built by the fuzz targets'
# libfuzzer-sys). Needs root (or sudo) only when something is missing.
set -euo pipefail
need=()
command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v c++ >/dev/null || need+=(g++)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "system-deps: installing ${need[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${need[@]}"
