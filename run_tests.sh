#!/usr/bin/env bash
# Sets up (venv, test tools, Debian chromium) and runs the whole test suite, browser tests included.
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh --dev
exec .venv/bin/python -m pytest "$@"
