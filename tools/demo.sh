#!/usr/bin/env bash
# The README's main job: install, build, then run zoomrtms-sim → zoomrtms-host →
# recordings on the bundled default call (real LibriVox speech, two parties),
# and print what was recorded.
#
#   SPEED=4 bash tools/demo.sh      # play the call 4× faster than real time
#   ENGAGEMENTS=3 bash tools/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup-debian.sh
bash tools/build.sh

# The sim plays Zoom, so both sides share demo credentials unless you set real ones.
export ZOOM_APP_CLIENT_ID="${ZOOM_APP_CLIENT_ID:-demo_client_id}"
export ZOOM_APP_CLIENT_SECRET="${ZOOM_APP_CLIENT_SECRET:-demo_client_secret}"
export ZOOM_SECRET_TOKEN="${ZOOM_SECRET_TOKEN:-demo_secret_token}"
export GST_PLUGIN_PATH_1_0="$PWD/build/plugins/zoomrtms${GST_PLUGIN_PATH_1_0:+:$GST_PLUGIN_PATH_1_0}"

out="recordings/demo-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
ready="$out/.host-ready.json"
./build/src/host/zoomrtms-host --port 0 --ready-file "$ready" \
  --output-root "$out" --pipeline-dir pipelines >"$out/host.log" 2>&1 &
host=$!
trap 'kill $host 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$ready" ] && break; sleep 0.1; done
[ -s "$ready" ] || { echo "zoomrtms-host did not start:"; cat "$out/host.log"; exit 1; }
port=$(sed -n 's/.*"port"[^0-9]*\([0-9]*\).*/\1/p' "$ready")
echo "zoomrtms-host listening on 127.0.0.1:$port (log: $out/host.log)"

./build/src/sim/zoomrtms-sim run --webhook-url "http://127.0.0.1:$port/webhook" \
  --speed "${SPEED:-1}" --engagements "${ENGAGEMENTS:-1}"

# Graceful stop: every pipeline gets EOS, every file is finalized.
kill -TERM $host
wait $host || { echo "zoomrtms-host exited with an error:"; tail -20 "$out/host.log"; exit 1; }
trap - EXIT
./build/src/host/zoomrtms-host --summary "$out"
