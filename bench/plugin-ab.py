#!/usr/bin/env python3
"""CPU of one capture, two builds of the plugin in alternating turns.

For each round and each build: `zoomrtms-sim serve --speed 0` plays one ZCC
call of --duration s as fast as it can, and
`gst-launch-1.0 -e zoomrtmssrc … layout=stereo PROPS ! wavenc ! filesink`
records it; the figure is gst-launch's user+sys CPU (wait4). The order of the
builds alternates between rounds; the medians and their ratio are printed,
and every output file must have the call's length.

    python3 bench/plugin-ab.py --a main=DIR_A --b branch=DIR_B \\
        --duration 600 --rounds 7 --props 'block-ms=100 packet-log={dir}/ab.plog'

A burst measures the work per message without the scheduling noise of a
paced run (docs/benchmarks.md "Memory per engagement": the packet log's
checksum). Output goes to a directory in /dev/shm ("{dir}" in PROPS), removed
at the end.
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def one(sim, label, pdir, dur, props, workdir):
    ready = os.path.join(workdir, "ready.json")
    if os.path.exists(ready):
        os.unlink(ready)
    s = subprocess.Popen([sim, "serve", "--port", "0", "--speed", "0",
                          "--duration", str(dur), "--client-id", "ab-id",
                          "--client-secret", "ab-secret", "--ready-file", ready],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not (os.path.exists(ready) and os.path.getsize(ready) > 0):
            if s.poll() is not None or time.monotonic() > deadline:
                sys.exit("plugin-ab: zoomrtms-sim did not start")
            time.sleep(0.05)
        with open(ready) as f:
            st = json.load(f)["streams"][0]
        wav = os.path.join(workdir, "ab.wav")
        env = dict(os.environ, GST_PLUGIN_PATH_1_0=pdir, GST_DEBUG="*:1",
                   GST_REGISTRY_1_0=os.path.join(workdir, f"registry-{label}.bin"))
        cmd = ["gst-launch-1.0", "-q", "-e", "zoomrtmssrc",
               "server-urls=" + st["server_urls"],
               "engagement-id=" + st["engagement_id"],
               "rtms-stream-id=" + st["rtms_stream_id"],
               "client-id=ab-id", "client-secret=ab-secret", "layout=stereo"]
        cmd += shlex.split(props.replace("{dir}", workdir)) + [
            "!", "wavenc", "!", "filesink",
            "location=" + wav]
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        size = os.path.getsize(wav) if os.path.exists(wav) else 0
        expect = 44 + int(dur * 16000) * 4          # 16 kHz stereo S16
        if status != 0 or size != expect:
            sys.exit(f"plugin-ab: {label}: exit {status}, {size} bytes "
                     f"(expected {expect})")
        return ru.ru_utime + ru.ru_stime
    finally:
        s.terminate()
        s.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a", required=True, metavar="LABEL=PLUGIN_DIR")
    ap.add_argument("--b", required=True, metavar="LABEL=PLUGIN_DIR")
    ap.add_argument("--build-dir", default=os.path.join(SRC, "build"))
    ap.add_argument("--duration", type=int, default=600, help="call, s")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--props", default="",
                    help="extra zoomrtmssrc properties ({dir}: the work dir)")
    a = ap.parse_args()
    builds = [tuple(x.split("=", 1)) for x in (a.a, a.b)]
    sim = os.path.join(os.path.abspath(a.build_dir), "src", "sim", "zoomrtms-sim")
    workdir = "/dev/shm/zoomrtms-ab-%d" % os.getpid()
    os.makedirs(workdir)
    cpu = {label: [] for label, _ in builds}
    try:
        for r in range(a.rounds):
            for label, pdir in (builds if r % 2 == 0 else builds[::-1]):
                c = one(sim, label, os.path.abspath(pdir), a.duration, a.props,
                        workdir)
                cpu[label].append(c)
                print(f"round {r + 1} {label}: {c:.3f} s", file=sys.stderr)
    finally:
        subprocess.run(["rm", "-rf", workdir])
    msgs = a.duration * 50 * 2
    med = {k: statistics.median(v) for k, v in cpu.items()}
    for label, _ in builds:
        print(f"{label}: median {med[label]:.3f} s CPU "
              f"({med[label] * 1e6 / msgs:.2f} µs per msg 14), runs "
              + ", ".join(f"{x:.3f}" for x in cpu[label]))
    (la, _), (lb, _) = builds
    print(f"ratio {lb}/{la}: {med[lb] / med[la]:.3f}")


if __name__ == "__main__":
    main()
