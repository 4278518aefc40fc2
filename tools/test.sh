#!/usr/bin/env bash
# The README's test command: installs dependencies, builds, runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup-debian.sh
bash tools/build.sh
# tests/actions: an S3-compatible server on loopback, the npm package s3rver
# (pinned), installed into the build directory (ignored by git); skipped when
# already there
S3RVER_VERSION=3.7.1
if [ ! -f build/node-s3rver/node_modules/s3rver/package.json ] ||
   ! grep -q "\"version\": \"$S3RVER_VERSION\"" build/node-s3rver/node_modules/s3rver/package.json; then
  npm install --prefix build/node-s3rver --no-audit --no-fund --loglevel=error \
    "s3rver@$S3RVER_VERSION"
fi
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
