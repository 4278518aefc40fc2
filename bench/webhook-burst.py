#!/usr/bin/env python3
"""Webhook burst against zoomrtms-host: N signed webhooks sent at once, one
connection each (as Zoom delivers them), and the time each took to be
answered, from the start of its connect() to the end of the answer.

Zoom counts a delivery as failed when the answer takes more than 3 s
(docs/protocol.md §2.6), so the figure that matters is the maximum.

    # against a running host (its secret token in ZOOM_SECRET_TOKEN):
    bench/webhook-burst.py --url http://127.0.0.1:8080/webhook -n 5000
    # or let the script start build/src/host/zoomrtms-host on a free port:
    bench/webhook-burst.py --host-bin build/src/host/zoomrtms-host -n 5000

The webhook is a signed `contact_center.voice_rtms_stopped` for an unknown
stream: verified, answered 200, then a no-op (docs/protocol.md §2.6), so the
figures are those of the HTTP path, not of starting pipelines. Prints p50,
p90, p99 and max in ms and the count of each status. Needs only Python 3.
"""
import argparse
import asyncio
import hashlib
import hmac
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlsplit


def signed_request(host, port, path, token):
    body = json.dumps({
        "event": "contact_center.voice_rtms_stopped",
        "event_ts": 1738392099000,
        "payload": {"engagement_id": "burst", "rtms_stream_id": "no-such-stream",
                    "stop_reason": 22}}, separators=(",", ":")).encode()
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(token.encode(), b"v0:" + ts.encode() + b":" + body,
                           hashlib.sha256).hexdigest()
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"x-zm-request-timestamp: {ts}\r\nx-zm-signature: {sig}\r\n\r\n")
    return head.encode() + body


async def one(host, port, request, results, timeout):
    t0 = time.monotonic()
    status = "error"
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), timeout)
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await asyncio.wait_for(reader.readexactly(length), timeout)
        data = head
        writer.close()
        if data.startswith(b"HTTP/1.1 "):
            status = data[9:12].decode()
    except asyncio.TimeoutError:
        status = "timeout"
    except (OSError, asyncio.IncompleteReadError) as e:
        status = type(e).__name__
    results.append((time.monotonic() - t0, status))


async def burst(host, port, path, token, n, timeout):
    request = signed_request(host, port, path, token)
    results = []
    t0 = time.monotonic()
    await asyncio.gather(*(one(host, port, request, results, timeout)
                           for _ in range(n)))
    return results, time.monotonic() - t0


def pct(sorted_ms, p):
    return sorted_ms[min(len(sorted_ms) - 1, int(p / 100.0 * len(sorted_ms)))]


def start_host(host_bin, token):
    tmp = tempfile.mkdtemp(prefix="zoomrtms-burst-")
    ready = os.path.join(tmp, "ready.json")
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, ZOOM_APP_CLIENT_ID="burst", ZOOM_APP_CLIENT_SECRET="burst",
               ZOOM_SECRET_TOKEN=token)
    build = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(host_bin))))
    env.setdefault("GST_PLUGIN_PATH_1_0", os.path.join(build, "plugins", "zoomrtms"))
    proc = subprocess.Popen([os.path.abspath(host_bin), "--port", "0", "--ready-file", ready,
                             "--output-root", os.path.join(tmp, "out"),
                             "--pipeline-dir", os.path.join(src, "pipelines")],
                            cwd=tmp, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(tmp, "host.log"), "w"))
    for _ in range(300):
        if os.path.exists(ready):
            try:
                return proc, json.load(open(ready))["port"], tmp
            except ValueError:
                pass
        if proc.poll() is not None:
            sys.exit(f"zoomrtms-host exited, see {tmp}/host.log")
        time.sleep(0.05)
    proc.kill()
    sys.exit("zoomrtms-host did not start")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="webhook URL of a running host")
    ap.add_argument("--host-bin", help="start this zoomrtms-host instead")
    ap.add_argument("-n", type=int, default=5000, help="webhooks at once (5000)")
    ap.add_argument("--timeout", type=float, default=30.0, help="per request, s")
    ap.add_argument("--secret-token",
                    default=os.environ.get("ZOOM_SECRET_TOKEN", "test_secret_token"))
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < a.n + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, a.n + 1024), hard))
    proc = None
    if a.host_bin:
        proc, port, tmp = start_host(a.host_bin, a.secret_token)
        host, path = "127.0.0.1", "/webhook"
        print(f"zoomrtms-host pid {proc.pid} on port {port} ({tmp})")
    elif a.url:
        u = urlsplit(a.url)
        host, port, path = u.hostname, u.port or 80, u.path or "/webhook"
    else:
        ap.error("give --url or --host-bin")
    def cpu_s():
        if not proc:
            return 0.0
        f = open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    cpu0 = cpu_s()
    try:
        results, wall = asyncio.run(burst(host, port, path, a.secret_token, a.n,
                                          a.timeout))
        cpu = cpu_s() - cpu0
    finally:
        if proc:
            proc.terminate()
            proc.wait(15)
    ms = sorted(r[0] * 1000 for r in results)
    statuses = {}
    for _, s in results:
        statuses[s] = statuses.get(s, 0) + 1
    print(f"{a.n} webhooks at once, answered in {wall:.2f} s: "
          f"p50 {pct(ms, 50):.0f} ms, p90 {pct(ms, 90):.0f} ms, "
          f"p99 {pct(ms, 99):.0f} ms, max {ms[-1]:.0f} ms; "
          f"over 3 s: {sum(1 for x in ms if x > 3000)}; statuses {statuses}")
    if proc:
        print(f"host CPU {cpu:.2f} s ({cpu / a.n * 1e6:.0f} us per webhook); "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
              "(the client shares them)")
    return 0 if statuses.get("200", 0) == a.n else 1


if __name__ == "__main__":
    sys.exit(main())
