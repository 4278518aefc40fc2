#!/usr/bin/env python3
"""Where zoomrtms-host's memory per engagement goes (issue 12).

Starts zoomrtms-host (record-wav, as bench/run.py does) and `zoomrtms-sim run`
with N engagements, and reads /proc/PID/smaps of the host once before the sim
starts (idle) and once in the middle of the calls (all N live). Prints the
resident memory by kind of mapping, idle and mid-run, and the difference per
engagement:

- malloc arenas of threads: the rw part of glibc's per-thread arenas (the
  I/O threads and the streaming threads allocate there);
- main heap: the main thread's brk heap (the host's objects, the pipelines'
  GObjects built on the main context);
- thread stacks: the resident part of every 8 MiB thread stack;
- file-backed: code and data of the libraries (the first pipeline loads and
  touches GStreamer plugins: a fixed cost, not one per engagement).

    python3 bench/memory.py --engagements 200 --duration 10
    python3 bench/memory.py --plugin-dir DIR ...      # another build of the plugin
    python3 bench/memory.py --engagements 50 --heaptrack OUT   # + heaptrack (Debian: heaptrack)

then `heaptrack_print -f OUT.zst --print-peaks 1` lists the allocation sites at
the peak. Figures: docs/benchmarks.md "Memory per engagement".
"""
import argparse
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CREDS = {"ZOOM_APP_CLIENT_ID": "bench_client_id",
         "ZOOM_APP_CLIENT_SECRET": "bench_client_secret",
         "ZOOM_SECRET_TOKEN": "bench_secret_token"}


def breakdown(pid):
    """Resident KiB by kind of mapping, from /proc/PID/smaps."""
    kib = collections.Counter()
    kind = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                parts = line.split()
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                size, perm = hi - lo, parts[1]
                name = parts[5] if len(parts) > 5 else ""
                if name == "[heap]":
                    kind = "main heap"
                elif name:
                    kind = "file-backed and other named"
                elif size == 8 << 20 and perm == "rw-p":
                    kind = "thread stacks"
                elif perm == "rw-p" and size >= 1 << 20:
                    kind = "malloc arenas of threads"
                else:
                    kind = "other anonymous"
            elif line.startswith("Rss:") and kind:
                kib[kind] += int(line.split()[1])
    return kib


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                out[k] = int(v.split()[0])
    return out


def host_pid(wrapper_pid, wrapped):
    """The zoomrtms-host process (a child of heaptrack's script if wrapped)."""
    if not wrapped:
        return wrapper_pid
    todo = [wrapper_pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/comm") as f:
                if f.read().strip().startswith("zoomrtms-host"):
                    return p
        except OSError:
            pass
        kids = subprocess.run(["pgrep", "-P", str(p)], capture_output=True,
                              text=True).stdout.split()
        todo += [int(k) for k in kids]
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engagements", type=int, default=200)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--build-dir", default=os.path.join(SRC, "build"))
    ap.add_argument("--plugin-dir", default=None,
                    help="libgstzoomrtms.so to load (default: the build's)")
    ap.add_argument("--heaptrack", metavar="OUT", default=None,
                    help="run the host under heaptrack, data in OUT.zst")
    a = ap.parse_args()
    n = a.engagements
    build = os.path.abspath(a.build_dir)
    run = tempfile.mkdtemp(prefix="zoomrtms-mem-")
    try:
        os.makedirs(os.path.join(run, "rec"))
        conf = os.path.join(run, "host.conf")
        with open(conf, "w") as f:
            f.write("[recording]\noutput-root=%s/rec\npipeline-dir=%s/pipelines\n"
                    "default-pipeline=record-wav\n[limits]\nmax-engagements=%d\n"
                    "stop-timeout-ms=10000\n" % (run, SRC, max(2 * n, 64)))
        env = dict(os.environ, **CREDS)
        env["GST_PLUGIN_PATH_1_0"] = a.plugin_dir or os.path.join(
            build, "plugins", "zoomrtms")
        env["GST_REGISTRY_1_0"] = os.path.join(run, "registry.bin")
        env.setdefault("GST_DEBUG", "*:1")
        ready = os.path.join(run, "ready.json")
        wrap = ["heaptrack", "-o", a.heaptrack] if a.heaptrack else []
        log = open(os.path.join(run, "host.log"), "w")
        host = subprocess.Popen(wrap + [
            os.path.join(build, "src", "host", "zoomrtms-host"), "--config",
            conf, "--port", "0", "--ready-file", ready], cwd=run, env=env,
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not (os.path.exists(ready) and os.path.getsize(ready) > 0):
            if host.poll() is not None or time.monotonic() > deadline:
                sys.exit("memory: zoomrtms-host did not start, see " + log.name)
            time.sleep(0.05)
        time.sleep(1.0)
        pid = host_pid(host.pid, bool(wrap))
        idle, idle_kib = status(pid), breakdown(pid)
        with open(ready) as f:
            port = json.load(f)["port"]
        sim = subprocess.Popen([
            os.path.join(build, "src", "sim", "zoomrtms-sim"), "run",
            "--webhook-url", f"http://127.0.0.1:{port}/webhook",
            "--engagements", str(n), "--duration", str(a.duration),
            "--speed", "1", "--stagger-ms", str(max(1, min(20, 5000 // n))),
            "--connect-timeout", "120"], cwd=run, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(5 + a.duration / 2)     # every start within 5 s
        mid, mid_kib = status(pid), breakdown(pid)
        sim.wait()
        print(f"N = {n}, {a.duration:g} s calls; host threads {idle['Threads']} "
              f"idle, {mid['Threads']} mid-run")
        print("| resident memory | idle MiB | mid-run MiB | KiB / engagement |")
        print("|---|---|---|---|")
        for k in sorted(set(idle_kib) | set(mid_kib), key=lambda k: -mid_kib[k]):
            print(f"| {k} | {idle_kib[k] / 1024:.1f} | {mid_kib[k] / 1024:.1f} "
                  f"| {(mid_kib[k] - idle_kib[k]) / n:.1f} |")
        print(f"| **VmRSS** | {idle['VmRSS'] / 1024:.1f} | {mid['VmRSS'] / 1024:.1f} "
              f"| **{(mid['VmRSS'] - idle['VmRSS']) / n:.1f}** "
              f"({(mid['VmRSS'] - idle['VmRSS']) / 1024 / n:.3f} MiB) |")
        os.kill(pid, signal.SIGTERM)
        try:
            host.wait(60)
        except subprocess.TimeoutExpired:
            host.kill()
            host.wait()
    finally:
        shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    main()
