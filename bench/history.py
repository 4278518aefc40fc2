#!/usr/bin/env python3
"""GET /engagements with a large history on disk (issue 11: the history is
read from the output root on request, bounded by ?limit=).

Makes N engagement directories (each with a 2.5 kB engagement.json like the
host writes), starts zoomrtms-host on that output root, and times
GET /engagements?limit=L (wall clock of the request, median of R) and the
host's VmHWM before and after: the scan is one stat(2) per directory, at most
L names kept, L files parsed, on a worker thread: the main loop (webhooks, /health) is
not blocked meanwhile — the last column is the slowest GET /health answered
while history requests ran back to back.

    python3 bench/history.py                    # N = 1000, 10000, 50000
    python3 bench/history.py --counts 2000 --limits 10,100

Prints a Markdown table (docs/benchmarks.md "History from disk").
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)


def make_root(root, n, template):
    os.makedirs(root, exist_ok=True)
    t0 = time.time() - n
    for i in range(n):
        d = os.path.join(root, "eng%07d" % i)
        os.mkdir(d)
        p = os.path.join(d, "engagement.json")
        with open(p, "w") as f:
            f.write(template.replace("ENGID", "eng%07d" % i))
        os.utime(p, (t0 + i, t0 + i))


def vm(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default=os.path.join(SRC, "build"))
    ap.add_argument("--counts", default="1000,10000,50000")
    ap.add_argument("--limits", default="10,100,1000")
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    host = os.path.join(a.build_dir, "src/host/zoomrtms-host")
    template = json.dumps({
        "engagement_id": "ENGID", "id_key": "engagement_id",
        "rtms_stream_id": "0123456789abcdef0123456789abcdef", "state": "stopped",
        "pipeline": "record-wav", "frames": 30000, "errors": [],
        "stats": {"frames_received": 30000, "channel_stats": [{"channel": "a" * 12}] * 2},
        "padding": "x" * 1800}, indent=2)
    env = dict(os.environ, ZOOM_APP_CLIENT_ID="bench", ZOOM_APP_CLIENT_SECRET="bench",
               ZOOM_SECRET_TOKEN="bench",
               GST_PLUGIN_PATH_1_0=os.path.join(a.build_dir, "plugins/zoomrtms"))
    print("| engagements on disk | ?limit= | GET /engagements, median ms | response bytes | host VmHWM before → after, MB | slowest /health meanwhile, ms |")
    print("|---:|---:|---:|---:|---|---:|")
    for n in [int(x) for x in a.counts.split(",")]:
        tmp = tempfile.mkdtemp(prefix="zoomrtms-history-")
        try:
            root = os.path.join(tmp, "out")
            make_root(root, n, template)
            ready = os.path.join(tmp, "ready.json")
            p = subprocess.Popen([host, "--port", "0", "--output-root", root,
                                  "--state-dir", os.path.join(tmp, "state"),
                                  "--ready-file", ready,
                                  "--pipeline-dir", os.path.join(SRC, "pipelines")],
                                 env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            while not os.path.exists(ready):
                time.sleep(0.05)
            time.sleep(0.2)
            port = json.load(open(ready))["port"]
            for lim in [int(x) for x in a.limits.split(",")]:
                before = vm(p.pid, "VmHWM")
                times, size = [], 0
                health, running = [], [True]

                def probe():
                    while running[0]:
                        t = time.perf_counter()
                        urllib.request.urlopen("http://127.0.0.1:%d/health" % port).read()
                        health.append((time.perf_counter() - t) * 1000)
                        time.sleep(0.005)
                th = threading.Thread(target=probe)
                th.start()
                for _ in range(a.repeat):
                    t = time.perf_counter()
                    body = urllib.request.urlopen(
                        "http://127.0.0.1:%d/engagements?limit=%d" % (port, lim)).read()
                    times.append((time.perf_counter() - t) * 1000)
                    size = len(body)
                    got = json.loads(body)
                    assert got["history"] == min(lim, n), got["history"]
                running[0] = False
                th.join()
                after = vm(p.pid, "VmHWM")
                print("| %d | %d | %.1f | %d | %.1f → %.1f | %.1f |" % (
                    n, lim, statistics.median(times), size, before / 1024, after / 1024,
                    max(health)))
                sys.stdout.flush()
            p.send_signal(signal.SIGTERM)
            p.wait(30)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
