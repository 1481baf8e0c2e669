#!/usr/bin/env bash
# Sets up (first run: a few minutes, ~5 GB for torch) and starts the app on http://localhost:8501
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
exec .venv/bin/streamlit run app.py "$@"
