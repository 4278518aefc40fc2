#!/usr/bin/env bash
# Fuzz one target (or all, one after the other) with libFuzzer for a while.
#   bash tools/fuzz.sh                    # list the targets
#   bash tools/fuzz.sh messages 600       # 10 minutes on one target
#   bash tools/fuzz.sh all 120            # 2 minutes on each target
# aligner-bounded = the aligner target with ZOOMRTMS_FUZZ_ALIGNER_BOUNDED_START
# (tests/fuzz/fuzz-aligner.cpp), to fuzz past the known unbounded-start bug.
# Extra arguments after the seconds go to libFuzzer (e.g. -jobs=2).
#
# Seeds: tests/fuzz/corpus/<target> minus tests/fuzz/known-failing.txt.
# Builds build-fuzz/ with clang, -fsanitize=fuzzer-no-link on every library
# (coverage), ASan + UBSan on everything, and -Dfuzzing=enabled (the
# <target>-fuzzer binaries of tests/fuzz/meson.build). Runs from a scratch
# corpus in build-fuzz/corpus/<target> seeded with the committed
# tests/fuzz/corpus/<target>; new inputs stay there (not in git). Crashes
# are written to build-fuzz/crashes/<target>/ (not in git either): minimize
# one with
#   build-fuzz/tests/fuzz/<target>-fuzzer -minimize_crash=1 -runs=10000 FILE
# and, if it shows a bug, add the minimized file to tests/fuzz/corpus/<target>/
# as crash-<what> (tests/fuzz/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(messages json webhook base64 template aligner aligner-bounded packetlog journal)
if [ $# -lt 1 ]; then
  echo "usage: bash tools/fuzz.sh TARGET|all [SECONDS] [libFuzzer args...]"
  echo "targets: ${targets[*]}"
  exit 2
fi
what=$1; secs=${2:-60}; shift; if [ $# -gt 0 ]; then shift; fi
if [ "$what" = all ]; then run=("${targets[@]}"); else run=("$what"); fi
for t in "${run[@]}"; do
  [[ " ${targets[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target $t"; exit 2; }
done

bash tools/setup-debian.sh
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang CXX=clang++ CFLAGS=-fsanitize=fuzzer-no-link \
  CXXFLAGS=-fsanitize=fuzzer-no-link \
  meson setup build-fuzz -Dfuzzing=enabled -Db_sanitize=address,undefined \
    -Db_lundef=false -Dbuildtype=debugoptimized
fi
meson compile -C build-fuzz -j "${ZOOMRTMS_JOBS:-2}" \
  $(for t in "${run[@]}"; do echo "${t%-bounded}-fuzzer"; done | sort -u)

export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=0:allocator_may_return_null=0"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
# the targets do not report again the bugs of tests/fuzz/known-failing.txt
# (ZOOMRTMS_FUZZ_SKIP_KNOWN=0 bash tools/fuzz.sh … to see them)
if [ "${ZOOMRTMS_FUZZ_SKIP_KNOWN:-1}" = 1 ]; then export ZOOMRTMS_FUZZ_SKIP_KNOWN=1; else unset ZOOMRTMS_FUZZ_SKIP_KNOWN; fi
export G_DEBUG=fatal-criticals G_SLICE=always-malloc GST_DEBUG='*:1'
export GST_REGISTRY_1_0="$PWD/build-fuzz/registry.bin"
rc=0
for t in "${run[@]}"; do
  work=build-fuzz/corpus/$t; crashes=build-fuzz/crashes/$t
  bin=${t%-bounded}
  # seeds: the committed corpus minus the files of known, unfixed bugs
  seeds=build-fuzz/seeds/$bin
  rm -rf "$seeds"; mkdir -p "$work" "$crashes" "$seeds"
  for f in tests/fuzz/corpus/$bin/*; do
    grep -qx "$bin/$(basename "$f")" tests/fuzz/known-failing.txt || cp "$f" "$seeds/"
  done
  echo "== fuzz.sh: $t for ${secs}s (corpus $work, crashes $crashes)"
  # -rss_limit_mb / -malloc_limit_mb: an input that makes the code allocate
  # more than 2 GiB is reported as a crash (unbounded memory is a bug here).
  if [ "$t" = aligner-bounded ]; then export ZOOMRTMS_FUZZ_ALIGNER_BOUNDED_START=1; fi
  build-fuzz/tests/fuzz/$bin-fuzzer "$work" "$seeds" \
    -max_total_time="$secs" -rss_limit_mb=2560 -malloc_limit_mb=2048 \
    -max_len=1048576 -timeout=20 -print_final_stats=1 \
    -artifact_prefix="$crashes/" "$@" || rc=$?
  unset ZOOMRTMS_FUZZ_ALIGNER_BOUNDED_START
done
exit $rc
