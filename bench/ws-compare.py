#!/usr/bin/env python3
"""ws-compare: libsoup's WebSocket receive path against rtms-ws (issue 12).

Runs bench/ws-compare.cpp (built as build/bench/ws-compare): for each
scenario and run, a sender process and a receiver process per
implementation, alternating the order between runs so drift on this shared
machine hits both alike. Prints the median CPU µs per message (getrusage of
the receiver, from all connections open to the last message), user/sys
split, context switches per message, the ratios, and (with --syscalls)
syscalls per message from one extra receiver run per implementation under
`perf stat` syscall tracepoints (or `strace -c -f` without perf; those runs
are not used for CPU figures).

  python3 bench/ws-compare.py --build-dir build
  python3 bench/ws-compare.py --build-dir build --runs 5 --syscalls --markdown

Scenarios (both 1 KiB msg 14-shaped text frames, docs/protocol.md §4.4):
  paced: 400 connections (200 engagements x 2 channels), one frame per
         connection every 20 ms (the RTMS packet clock), 250 frames each;
  paced1k: the same with 1000 connections (500 engagements), 150 frames each;
  burst: 200 connections, 2000 frames each, as fast as the receiver reads.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

SCENARIOS = {
    "paced": {"connections": 400, "messages": 250, "rate": 50},
    "paced1k": {"connections": 1000, "messages": 150, "rate": 50},
    "burst": {"connections": 200, "messages": 2000, "rate": 0},
}


def start_sender(exe, sc):
    p = subprocess.Popen(
        [exe, "sender", "--connections", str(sc["connections"]),
         "--messages", str(sc["messages"]), "--rate", str(sc["rate"])],
        stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    m = re.match(r"PORT (\d+)", line)
    if not m:
        p.kill()
        sys.exit("ws-compare: sender did not start")
    return p, int(m.group(1))


def receive(exe, impl, sc, port, prefix=()):
    cmd = list(prefix) + [
        exe, "receive", "--impl", impl, "--port", str(port),
        "--connections", str(sc["connections"]),
        "--messages", str(sc["messages"]), "--rate", str(sc["rate"])]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True,
                         timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def one_run(exe, impl, sc, prefix=()):
    sender, port = start_sender(exe, sc)
    try:
        r = receive(exe, impl, sc, port, prefix)
    finally:
        try:
            sender.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sender.kill()
    return r


PERF_EVENTS = ["raw_syscalls:sys_enter"] + [
    f"syscalls:sys_enter_{n}" for n in
    ("recvfrom", "read", "poll", "epoll_wait", "write", "futex", "sendto")]


def perf_counts(exe, impl, sc):
    """Syscalls per message of one receiver run, counted by `perf stat`
    tracepoints (cheap: the run keeps its timing). Whole process lifetime:
    connection setup included (a few dozen per connection)."""
    with tempfile.NamedTemporaryFile("r", suffix=".perf") as f:
        r = one_run(exe, impl, sc, ("perf", "stat", "-x,", "-o", f.name,
                                    "-e", ",".join(PERF_EVENTS)))
        text = open(f.name).read()
    counts = {}
    for line in text.splitlines():
        parts = line.split(",")
        if len(parts) > 3 and parts[0].strip().isdigit():
            counts[parts[2].split(":")[-1].replace("sys_enter_", "")] = int(parts[0])
    n = r["messages"]
    total = counts.pop("sys_enter", 0)
    top = {k: v / n for k, v in sorted(counts.items(), key=lambda kv: -kv[1]) if v}
    return total / n, top


def strace_counts(exe, impl, sc):
    """Fallback without perf: `strace -c -f` (slows the receiver, so it wakes
    less often and polls less than in a real run)."""
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as f:
        r = one_run(exe, impl, sc, ("strace", "-f", "-c", "-o", f.name))
        text = open(f.name).read()
    calls = {}
    for line in text.splitlines():
        parts = line.split()
        # % time, seconds, usecs/call, calls, [errors], syscall
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
            try:
                calls[parts[-1]] = int(parts[3])
            except ValueError:
                pass
    n = r["messages"]
    total = sum(calls.values())
    top = sorted(calls.items(), key=lambda kv: -kv[1])[:6]
    return total / n, {k: v / n for k, v in top}


def syscall_counts(exe, impl, sc):
    if shutil.which("perf"):
        try:
            return perf_counts(exe, impl, sc)
        except (subprocess.CalledProcessError, json.JSONDecodeError, IndexError):
            pass
    return strace_counts(exe, impl, sc)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--scenarios", default="paced,paced1k,burst")
    ap.add_argument("--impls", default="soup,ws,ws-epoll")
    ap.add_argument("--syscalls", action="store_true",
                    help="one more run per receiver under perf stat (or strace -c)")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    exe = os.path.join(a.build_dir, "bench", "ws-compare")
    if not os.access(exe, os.X_OK):
        sys.exit(f"ws-compare: build {exe} first (meson compile -C {a.build_dir} ws-compare)")
    impls = a.impls.split(",")
    results = {}
    for name in a.scenarios.split(","):
        sc = SCENARIOS[name]
        rows = {i: [] for i in impls}
        for run in range(a.runs):
            order = impls if run % 2 == 0 else list(reversed(impls))
            for impl in order:
                r = one_run(exe, impl, sc)
                rows[impl].append(r)
                print(f"{name} run {run + 1} {impl}: {r['cpu_us_per_msg']:.2f} µs/msg "
                      f"(user {r['user_us_per_msg']:.2f}, sys {r['sys_us_per_msg']:.2f}), "
                      f"wall {r['wall_s']:.2f} s", file=sys.stderr)
        res = {}
        for impl in impls:
            cpu = [r["cpu_us_per_msg"] for r in rows[impl]]
            res[impl] = {
                "cpu_median": statistics.median(cpu),
                "cpu_min": min(cpu), "cpu_max": max(cpu),
                "user_median": statistics.median(r["user_us_per_msg"] for r in rows[impl]),
                "sys_median": statistics.median(r["sys_us_per_msg"] for r in rows[impl]),
                "csw_median": statistics.median(r["csw_per_msg"] for r in rows[impl]),
                "wall_median": statistics.median(r["wall_s"] for r in rows[impl]),
                "runs": cpu,
            }
            if a.syscalls:
                total, top = syscall_counts(exe, impl, sc)
                res[impl]["syscalls_per_msg"] = total
                res[impl]["syscalls_top"] = top
        results[name] = res

    print(json.dumps(results, indent=1))
    if a.markdown:
        print()
        print("| scenario | receiver | CPU µs/msg median (min–max) | user | sys "
              "| ctx switches/msg | wall s (sender's pace) | syscalls/msg (top) |")
        print("|---|---|---|---|---|---|---|---|")
        for name, res in results.items():
            for impl in impls:
                r = res[impl]
                sc = r.get("syscalls_per_msg")
                top = ", ".join(f"{k} {v:.2f}" for k, v in r.get("syscalls_top", {}).items())
                sc0 = SCENARIOS[name]
                pace = f"{0.3 + sc0['messages'] / sc0['rate']:.1f}" if sc0["rate"] else "—"
                print(f"| {name} | {impl} | {r['cpu_median']:.2f} ({r['cpu_min']:.2f}–{r['cpu_max']:.2f}) "
                      f"| {r['user_median']:.2f} | {r['sys_median']:.2f} | {r['csw_median']:.4f} "
                      f"| {r['wall_median']:.2f} ({pace}) "
                      f"| {'' if sc is None else f'{sc:.2f} ({top})'} |")
            for other in ("ws", "ws-epoll"):
                if "soup" in res and other in res:
                    print(f"| {name} | ratio soup/{other} | "
                          f"{res['soup']['cpu_median'] / res[other]['cpu_median']:.2f}× | | | | | |")


if __name__ == "__main__":
    main()
