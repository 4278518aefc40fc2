#!/usr/bin/env python3
"""Restart/kill gap of zoomrtms-host (issue 9): audio lost and time to rejoin.

Runs the end-to-end tests HostRestart.SigtermDetaches… and
HostRestart.SigkillLoses… of tests/host/test-host-restart.cpp RUNS times
(real zoomrtms-sim and zoomrtms-host processes on loopback: a 14 s call at
speed 1, the host signalled ≈2.5 s in and a new host started on the same
port 500 ms later (SIGTERM) or at once (SIGKILL)) and prints, per scenario,
the p50 and max of

  * time to rejoin: how long the sim's stream had no consumer (sent.json
    gaps[0].resumed_at_ms - lost_at_ms), ms;
  * audio lost: samples of the final WAV that differ from what the sim sent
    (its --dump-dir, zeros where nothing was sent), per channel, as ms at
    16 kHz.

  bench/restart-gap.py --build-dir build --runs 5
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

FIG_TERM = re.compile(r"SIGTERM \+ restart after 500 ms: stream without a consumer "
                      r"(-?\d+) ms .*customer (\d+), agent (\d+)")
FIG_KILL = re.compile(r"SIGKILL \+ immediate restart: stream without a consumer "
                      r"(-?\d+) ms .*customer ([\d.]+) ms, agent ([\d.]+) ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    build = os.path.abspath(a.build_dir)
    env = dict(os.environ,
               GST_PLUGIN_PATH_1_0=os.path.join(build, "plugins", "zoomrtms"),
               GST_REGISTRY_1_0=os.path.join(build, "tests", "registry.bin"),
               ZOOMRTMS_SOURCE_DIR=src, ZOOMRTMS_BUILD_DIR=build,
               GST_DEBUG="*:1")
    exe = os.path.join(build, "tests", "host", "test-host-restart")
    term, kill = [], []
    for i in range(a.runs):
        p = subprocess.run([exe, "--gtest_filter=HostRestart.Sig*"], env=env,
                           capture_output=True, text=True)
        out = p.stdout + p.stderr
        if p.returncode != 0:
            print(f"run {i + 1}: tests failed (exit {p.returncode})", file=sys.stderr)
        for m in FIG_TERM.finditer(out):
            term.append((int(m.group(1)), int(m.group(2)) / 16.0, int(m.group(3)) / 16.0))
        for m in FIG_KILL.finditer(out):
            kill.append((int(m.group(1)), float(m.group(2)), float(m.group(3))))
        print(f"run {i + 1}/{a.runs}: sigterm {term[-1] if term else '-'} "
              f"sigkill {kill[-1] if kill else '-'}", flush=True)

    def show(name, rows):
        if not rows:
            print(f"{name}: no figures")
            return
        rejoin = [r[0] for r in rows]
        lost = [max(r[1], r[2]) for r in rows]
        print(f"{name} ({len(rows)} runs): time to rejoin p50 "
              f"{statistics.median(rejoin):.0f} ms, max {max(rejoin)} ms; "
              f"audio lost per channel p50 {statistics.median(lost):.1f} ms, "
              f"max {max(lost):.1f} ms")
    show("SIGTERM, restart after 500 ms", term)
    show("SIGKILL, restart at once", kill)


if __name__ == "__main__":
    main()
