#!/usr/bin/env bash
# Install everything into ./.venv, then launch the demo (on the embedded model unless --model says otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python app.py "$@"
