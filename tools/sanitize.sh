#!/usr/bin/env bash
# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer
# (README "Tests"): builds ./build-asan with g++ and runs `meson test` there.
#   bash tools/sanitize.sh                 # everything
#   bash tools/sanitize.sh --suite fuzz    # extra arguments go to meson test
# Any ASan/UBSan report fails the test that triggered it (halt_on_error=1).
# Suppressions (tools/sanitizer/lsan.supp): LeakSanitizer only, for one-time
# allocations GLib/GStreamer keep for the life of the process by design;
# nothing of zoomrtms is suppressed. UBSan has no suppressions.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup-debian.sh
if [ -f build-asan/build.ninja ]; then
  meson setup --reconfigure build-asan >/dev/null
else
  meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
    -Dbuildtype=debugoptimized
fi
meson compile -C build-asan -j "${ZOOMRTMS_JOBS:-2}"
here=$(pwd)
# fast_unwind_on_malloc=0: GLib/GStreamer are built without frame pointers,
# the fast unwinder stops at g_malloc and leak reports say nothing.
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:fast_unwind_on_malloc=0:malloc_context_size=30:detect_stack_use_after_return=0:strict_string_checks=1:check_initialization_order=1:allocator_may_return_null=0:max_allocation_size_mb=3072:hard_rss_limit_mb=3072:print_summary=1"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:report_error_type=1"
export LSAN_OPTIONS="suppressions=$here/tools/sanitizer/lsan.supp:print_suppressions=0"
# GLib's slice allocator hides heap errors from ASan; always-malloc exposes them
export G_SLICE=always-malloc
# The plugin (libgstzoomrtms.so) is built with ASan: GStreamer must scan it
# in-process (no gst-plugin-scanner child, which has no ASan runtime), and
# programs not built with ASan that load it (gst-launch-1.0,
# gst-discoverer-1.0 in the element/host tests) need the runtime preloaded:
# the --wrapper below preloads it into every test process and its children.
export GST_REGISTRY_FORK=no
# a registry written by an earlier run may have blacklisted the plugin
rm -f build-asan/tests/registry.bin
# libstdc++ is preloaded with it: in a C program (gst-launch-1.0) libstdc++
# arrives later (libproxy, through GIO's proxy resolver), and ASan's
# __cxa_throw interceptor then has no real function to call (CHECK failure).
preload="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libstdc++.so)"
rc=0
logs=(build-asan/meson-logs/testlog-env.json)
if [ $# -gt 0 ]; then
  meson test -C build-asan --print-errorlogs --num-processes 2 \
    --wrapper "env LD_PRELOAD=$preload" \
    --timeout-multiplier "${ZOOMRTMS_TIMEOUT_MULTIPLIER:-4}" "$@" || rc=$?
else
  meson test -C build-asan --print-errorlogs --num-processes 2 \
    --wrapper "env LD_PRELOAD=$preload" --no-suite service \
    --timeout-multiplier "${ZOOMRTMS_TIMEOUT_MULTIPLIER:-4}" || rc=$?
  # The service suite runs man, troff, systemd-analyze and a seccomp probe
  # (programs that never load our plugin and abort with the ASan runtime
  # preloaded); the ASan-built host it installs and runs carries its own.
  meson test -C build-asan --print-errorlogs --num-processes 2 --suite service \
    --timeout-multiplier "${ZOOMRTMS_TIMEOUT_MULTIPLIER:-4}" || rc=$?
  logs+=(build-asan/meson-logs/testlog.json)
fi
python3 - "${logs[@]}" <<'PY'
import json, sys
results = [json.loads(line) for f in sys.argv[1:] for line in open(f) if line.strip()]
bad = [r["name"] for r in results if r["result"] not in ("OK", "EXPECTEDFAIL", "SKIP")]
print(f"sanitize: {len(results) - len(bad)} passed, {len(bad)} failed" + (": " + ", ".join(bad) if bad else ""))
PY
exit $rc
