#!/usr/bin/env bash
# Sets up (venv, test tools, Debian chromium), lints with ruff, and runs the whole test suite, browser tests
# included.
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh --dev
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
