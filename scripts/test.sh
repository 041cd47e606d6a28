#!/usr/bin/env bash
# Install everything into ./.venv (with the test tools), then run the whole test suite offline.
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -m "not slow" -x
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest "$@"
