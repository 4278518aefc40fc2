"""A fleet of zoomrtms-host processes on one redis-server, behind a round-robin
TCP proxy, driven by zoomrtms-sim (issue 10). Used by tests/cluster/test-cluster.py
and bench/fleet.py. Everything listens on 127.0.0.1 only.
"""
import asyncio
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
import wave

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from zoomrtms_testlib import free_port, wait_for  # noqa: E402,F401

BUILD = os.environ.get("ZOOMRTMS_BUILD_DIR", "build")
SOURCE = os.environ.get("ZOOMRTMS_SOURCE_DIR", ".")
HOST_BIN = os.path.join(BUILD, "src", "host", "zoomrtms-host")
SIM_BIN = os.path.join(BUILD, "src", "sim", "zoomrtms-sim")
CREDS = {
    "ZOOM_APP_CLIENT_ID": "fleet_client_id",
    "ZOOM_APP_CLIENT_SECRET": "fleet_client_secret",
    "ZOOM_SECRET_TOKEN": "fleet_secret_token",
}


def http(method, url, timeout=10):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body or b"null")
        except ValueError:
            return e.code, None
    except (OSError, ValueError):
        return 0, None


class Proxy:
    """Round-robin TCP proxy: each connection goes to the next live backend."""

    def __init__(self):
        self.port = free_port()
        self.backends = []
        self.next = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", self.port))
        self.ready.set()
        self.loop.run_forever()

    async def _pipe(self, r, w):
        try:
            while True:
                data = await r.read(65536)
                if not data:
                    break
                w.write(data)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                w.close()
            except Exception:
                pass

    async def _client(self, cr, cw):
        backends = list(self.backends)
        for _ in range(len(backends)):
            port = backends[self.next % len(backends)]
            self.next += 1
            try:
                br, bw = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port), 2)
            except (OSError, asyncio.TimeoutError):
                continue
            await asyncio.gather(self._pipe(cr, bw), self._pipe(br, cw))
            return
        cw.close()

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class Fleet:
    def __init__(self, tmp, hosts=3, capacity=20, lease_ms=3000, redis=True):
        self.tmp = tmp
        self.out = os.path.join(tmp, "out")
        self.redis_port = free_port()
        self.redis = None
        self.hosts = {}
        self.ports = {}
        self.conf = os.path.join(tmp, "host.conf")
        with open(self.conf, "w") as f:
            f.write("[cluster]\nredis-url=redis://127.0.0.1:%d\ncapacity=%d\nlease-ms=%d\n"
                    % (self.redis_port, capacity, lease_ms))
        self.sim = None
        self.extra_sims = []
        self.proxy = None
        try:
            if redis:
                self.start_redis()
            self.proxy = Proxy()
            for i in range(hosts):
                self.start_host("h%d" % i)
        except BaseException:
            self.close()  # nothing left running when the fleet cannot start
            raise

    def start_redis(self):
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=open(os.path.join(self.tmp, "redis.log"), "ab"),
            stderr=subprocess.STDOUT)
        ok = wait_for(lambda: self._redis_ping(), 10)
        assert ok, "redis-server did not start"

    def _redis_ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.redis_port), 0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop_redis(self):
        self.redis.terminate()
        self.redis.wait(10)

    def start_host(self, name):
        ready = os.path.join(self.tmp, name + "-ready.json")
        env = dict(os.environ)
        env.update(CREDS)
        env.pop("PORT", None)
        log = open(os.path.join(self.tmp, name + ".log"), "ab")
        p = subprocess.Popen(
            [HOST_BIN, "--config", self.conf, "--port", "0", "--ready-file", ready,
             "--output-root", self.out, "--pipeline-dir",
             os.path.join(SOURCE, "pipelines"), "--stop-timeout-ms", "5000"],
            cwd=self.tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
        ok = wait_for(lambda: os.path.exists(ready) and os.path.getsize(ready) > 0, 20)
        assert ok, "host %s did not start: %s" % (name, self.log(name))
        with open(ready) as f:
            port = json.load(f)["port"]
        self.hosts[name] = p
        self.ports[name] = port
        self.proxy.backends = list(self.ports.values())
        return port

    def log(self, name):
        try:
            with open(os.path.join(self.tmp, name + ".log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def url(self, name, path):
        return "http://127.0.0.1:%d%s" % (self.ports[name], path)

    def remove_backend(self, name):
        self.ports.pop(name, None)
        self.proxy.backends = list(self.ports.values())

    def kill(self, name, sig):
        p = self.hosts[name]
        if sig == signal.SIGKILL:
            self.remove_backend(name)
        p.send_signal(sig)

    def engagements(self, name):
        return http("GET", self.url(name, "/engagements"))[1]

    def owner_of(self, sid):
        for name in list(self.ports):
            d = self.engagements(name)
            for row in (d or {}).get("fleet", []):
                if row["rtms_stream_id"] == sid and row["lease"]:
                    return row["owner"]
        return None

    def node_ids(self):
        ids = {}
        for name in list(self.ports):
            d = self.engagements(name)
            if d and "node" in d:
                ids[name] = d["node"]
        return ids

    def run_sim(self, engagements, duration, extra=(), name="sim"):
        env = dict(os.environ)
        env.update(CREDS)
        p = subprocess.Popen(
            [SIM_BIN, "run", "--webhook-url",
             "http://127.0.0.1:%d/webhook" % self.proxy.port,
             "--engagements", str(engagements), "--duration", str(duration),
             "--duplicate", "--dump-dir", os.path.join(self.tmp, "sim-dump"),
             "--ready-file", os.path.join(self.tmp, name + "-ready.json"),
             "--summary-json", os.path.join(self.tmp, name + "-summary.json")] + list(extra),
            cwd=self.tmp, env=env,
            stdout=open(os.path.join(self.tmp, name + ".log"), "ab"),
            stderr=subprocess.STDOUT)
        if name == "sim":
            self.sim = p
        else:
            self.extra_sims.append(p)
        ready = os.path.join(self.tmp, name + "-ready.json")
        ok = wait_for(lambda: os.path.exists(ready) and os.path.getsize(ready) > 0, 20)
        assert ok, "sim did not start"
        with open(ready) as f:
            return json.load(f)["streams"]

    def idle(self, timeout):
        def all_idle():
            for name in list(self.ports):
                st, d = http("GET", self.url(name, "/health"))
                if st != 200 or d.get("activeEngagements", 1) != 0:
                    return False
            return True
        return wait_for(all_idle, timeout, step=0.5)

    def close(self):
        for name, p in self.hosts.items():
            if p.poll() is None:
                p.kill()
                p.wait(10)
        for sim in [self.sim] + self.extra_sims:
            if sim and sim.poll() is None:
                sim.kill()
                sim.wait(10)
        if self.redis and self.redis.poll() is None:
            self.redis.kill()
            self.redis.wait(10)
        if self.proxy:
            self.proxy.close()


def engagement_dirs(out):
    """rtms_stream_id → [directories whose engagement.json names it]"""
    m = {}
    for name in sorted(os.listdir(out)):
        p = os.path.join(out, name, "engagement.json")
        if name.startswith(".") or not os.path.exists(p):
            continue
        with open(p) as f:
            j = json.load(f)
        m.setdefault(j.get("rtms_stream_id"), []).append(os.path.join(out, name))
    return m


def read_pcm(path):
    with open(path, "rb") as f:
        data = f.read()
    return struct.unpack("<%dh" % (len(data) // 2), data[: len(data) // 2 * 2])


def compare(wav_path, dump_dir):
    """Per channel: samples that differ from what the sim sent (its dump has
    zeros where nothing was sent), and the frame counts."""
    cu = read_pcm(os.path.join(dump_dir, "customer.pcm"))
    ag = read_pcm(os.path.join(dump_dir, "agent.pcm"))
    with wave.open(wav_path) as w:
        assert w.getnchannels() == 2 and w.getsampwidth() == 2
        frames = w.getnframes()
        raw = w.readframes(frames)
    s = struct.unpack("<%dh" % (len(raw) // 2), raw)
    n = max(len(cu), len(ag), frames)
    differ = [0, 0]
    for ch, ref in ((0, cu), (1, ag)):
        got = s[ch::2]
        for i in range(n):
            a = ref[i] if i < len(ref) else 0
            b = got[i] if i < len(got) else 0
            if a != b:
                differ[ch] += 1
    return {"differ": differ, "expected_frames": max(len(cu), len(ag)),
            "frames": frames}


class FleetTestCase(unittest.TestCase):
    """A test with a fleet (self.fleet, started by the test) in its own
    temporary directory (self.tmp, kept with KEEP_TMP=1). A subclass sets
    tmp_prefix, and may override clean_up() (runs after the fleet closed)."""
    tmp_prefix = "zoomrtms-fleet-"

    def setUp(self):
        if not shutil.which("redis-server"):
            self.fail("redis-server not found (tools/setup-debian.sh installs it)")
        self.tmp = tempfile.mkdtemp(prefix=self.tmp_prefix)
        self.fleet = None

    def clean_up(self):
        pass

    def tearDown(self):
        if self.fleet:
            self.fleet.close()
        self.clean_up()
        if os.environ.get("KEEP_TMP"):
            print("kept", self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def logs(self):
        """the end of each host's log and of the sim's (for failure messages)"""
        return "\n".join("---- %s\n%s" % (n, self.fleet.log(n)[-4000:])
                         for n in self.fleet.hosts) + \
            "\n---- sim\n" + self.fleet.log("sim")[-3000:]


def main(module_name):
    """runs the tests of @module_name (those named on the command line, else
    all) and exits with their result"""
    names = sys.argv[1:] or None
    loader = unittest.TestLoader()
    mod = sys.modules[module_name]
    suite = loader.loadTestsFromNames(names, mod) if names else loader.loadTestsFromModule(mod)
    r = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if r.wasSuccessful() else 1)
