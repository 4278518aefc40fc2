#!/usr/bin/env bash
# The README's test command: installs dependencies, builds, runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup-debian.sh
bash tools/build.sh
rc=0
meson test -C build --print-errorlogs --num-processes 2 "$@" || rc=$?
# One plain closing line: every test program of the suite, passed and failed.
python3 - build/meson-logs/testlog.json <<'PY'
import json, sys
results = [json.loads(line)["result"] for line in open(sys.argv[1]) if line.strip()]
passed = sum(r in ("OK", "EXPECTEDFAIL") for r in results)
print(f"{passed} passed, {len(results) - passed} failed")
PY
exit $rc
