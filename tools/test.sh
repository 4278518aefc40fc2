#!/usr/bin/env bash
# The README's test command: installs dependencies, builds, runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup-debian.sh
bash tools/build.sh
meson test -C build --print-errorlogs --num-processes 2 "$@"
