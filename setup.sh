#!/usr/bin/env bash
# Creates .venv and installs the pinned requirements (a no-op when they are already there).
#   ./setup.sh          the app's needs
#   ./setup.sh --dev    plus the test tools and Debian's chromium for the browser tests
set -euo pipefail
cd "$(dirname "$0")"
requirements=requirements.txt
[ "${1:-}" = "--dev" ] && requirements=requirements-dev.txt
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
.venv/bin/python -m pip install --quiet --no-cache-dir -r "$requirements"
if [ "${1:-}" = "--dev" ] && ! command -v chromium >/dev/null; then
  echo "Installing Debian's chromium for the browser tests…"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
