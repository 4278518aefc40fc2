#!/usr/bin/env bash
# Installs what zoomrtms needs to build, run and test on Debian 12 (run as root,
# or with sudo available). Safe to run again.
set -euo pipefail
pkgs=(
  build-essential meson ninja-build pkg-config
  libglib2.0-dev libjson-glib-dev libsoup-3.0-dev libssl-dev glib-networking
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-base-apps
  libgtest-dev libsndfile1-dev libopus-dev libsimdjson-dev
  # the packet log's record checksum (XXH3-64, issue 12)
  libxxhash-dev
  # bench/packet-log-checksum compares it with zlib's crc32
  zlib1g-dev
  pocketsphinx-testdata
  clang libclang-rt-14-dev
  sox libsox-fmt-all opus-tools ffmpeg gnuplot-nox
  libsystemd-dev systemd libseccomp-dev man-db
  # cluster mode (issue 10): the Redis client library the host links
  libhiredis-dev
  # cluster mode: the tests/cluster suite and bench/fleet.py start their own
  redis-server
  # tests/status: promtool checks /metrics, headless Chromium the status page
  prometheus
  chromium
  imagemagick
  # tests/actions: the S3 API (libcurl's AWS SigV4), curl's command line to
  # read objects back, sha256sum (coreutils)
  libcurl4-openssl-dev
  curl
)
# tests/actions: Node.js runs s3rver (tools/test.sh installs it with npm);
# Debian's packages only when no node is installed some other way
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  pkgs+=(nodejs npm)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-debian: all ${#pkgs[@]} packages already installed"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup-debian: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q "${missing[@]}"
