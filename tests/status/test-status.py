#!/usr/bin/env python3
"""tests/status (meson suite 'status'): /metrics and the status page of a live
zoomrtms-host (src/host/host-status.h), checked with tools we did not write.

    test-status.py Access   no api-token: the loopback rule (403 for a request
                            a proxy forwarded), event streams outlive the
                            request timeout, and at most 16 of them are open
    test-status.py Call     an api-token, a simulated call (zoomrtms-sim at
                            speed 1): 401 without the token; `promtool check
                            metrics` on a live /metrics during the call and
                            after it; packets counted = the sim's frames sent;
                            webhooks by event and status; the page in headless
                            Chromium (DevTools protocol over a pipe) shows the
                            engagement and meters that move; a screenshot is
                            saved in the build dir; the files endpoint serves
                            a recording and refuses traversal and symlinks.

Exit status 0 passed, 1 failed, 77 (skipped) without promtool or chromium.
"""
import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from zoomrtms_testlib import metric, run_tests  # noqa: E402

E = os.environ
HOST = E["ZOOMRTMS_HOST"]
SIM = E["ZOOMRTMS_SIM"]
SOURCE = E["ZOOMRTMS_SOURCE_DIR"]
OUT = E.get("ZOOMRTMS_TEST_OUT", tempfile.gettempdir())
PROMTOOL = E.get("PROMTOOL") or shutil.which("promtool")
CHROMIUM = E.get("CHROMIUM") or shutil.which("chromium")
CREDS = {
    "ZOOM_APP_CLIENT_ID": "status_test_client_id",
    "ZOOM_APP_CLIENT_SECRET": "status-test-client-secret-91d2",
    "ZOOM_SECRET_TOKEN": "status-test-secret-token-5e1f",
}
TOKEN = "status-test-api-token-c0ffee"


def request(port, path, method="GET", headers=None, timeout=15):
    """(status, headers, body bytes); the path is sent as given (no
    normalization of "..", unlike urllib)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        c.endheaders()
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def bearer(token=TOKEN):
    return {"Authorization": "Bearer " + token}


class Host:
    def __init__(self, work, extra_env=None, config=None):
        self.work = work
        self.out = os.path.join(work, "recordings")
        ready = os.path.join(work, "ready.json")
        argv = [HOST, "--port", "0", "--ready-file", ready, "--output-root", self.out,
                "--pipeline-dir", os.path.join(SOURCE, "pipelines")]
        if config:
            path = os.path.join(work, "host.conf")
            with open(path, "w") as f:
                f.write(config)
            argv += ["--config", path]
        env = {k: v for k, v in E.items() if not k.startswith("ZOOM")}
        env.update(CREDS)
        env.update(extra_env or {})
        self.log = open(os.path.join(work, "host.log"), "w+")
        self.p = subprocess.Popen(argv, cwd=work, env=env, stdout=self.log,
                                  stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not os.path.exists(ready) and time.monotonic() < deadline and self.p.poll() is None:
            time.sleep(0.1)
        if not os.path.exists(ready):
            raise AssertionError("host did not start: " + self.read_log())
        time.sleep(0.1)
        with open(ready) as f:
            self.port = json.load(f)["port"]

    def read_log(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


class Chromium:
    """Headless Chromium driven through the DevTools protocol over
    --remote-debugging-pipe (fd 3: commands in, fd 4: answers out, each a
    JSON text ending in NUL): no WebSocket client needed."""

    def __init__(self, work):
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()

        def fds():
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)
        self.profile = tempfile.mkdtemp(prefix="chromium-", dir=work)
        self.p = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--remote-debugging-pipe", "--user-data-dir=" + self.profile,
             "--no-first-run", "--window-size=1200,760", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "chromium.log"), "w"),
            preexec_fn=fds, close_fds=False)
        os.close(to_child_r)
        os.close(from_child_w)
        self.next_id = 0
        self.answers = {}
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]

    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self.from_child, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                with self.cond:
                    self.answers[None] = "closed"
                    self.cond.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                msg, buf = buf.split(b"\0", 1)
                m = json.loads(msg)
                if "id" in m:
                    with self.cond:
                        self.answers[m["id"]] = m
                        self.cond.notify_all()

    def call(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        mid = self.next_id
        m = {"id": mid, "method": method, "params": params or {}}
        if session:
            m["sessionId"] = session
        os.write(self.to_child, json.dumps(m).encode() + b"\0")
        with self.cond:
            ok = self.cond.wait_for(lambda: mid in self.answers or None in self.answers,
                                    timeout)
            if not ok or mid not in self.answers:
                raise AssertionError("no DevTools answer to " + method)
            a = self.answers.pop(mid)
        if "error" in a:
            raise AssertionError("%s: %s" % (method, a["error"]))
        return a["result"]

    def page(self, method, params=None):
        return self.call(method, params, session=self.session)

    def evaluate(self, expression):
        r = self.page("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return r["result"].get("value")

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        os.close(self.to_child)
        shutil.rmtree(self.profile, ignore_errors=True)


SAMPLE_JS = """JSON.stringify({
  href: location.href,
  conn: document.getElementById('conn').textContent,
  cards: Array.from(document.querySelectorAll('#live .eng')).map((c) => ({
    text: c.textContent,
    meters: Array.from(c.querySelectorAll('.meter')).map((m) => ({
      rms: Number(m.dataset.rmsDb), peak: Number(m.dataset.peakDb),
      width: m.querySelector('.rms').style.width}))})),
  recent: Array.from(document.querySelectorAll('#recent tbody tr')).map((r) => r.dataset.dir)
})"""


class Base(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="zoomrtms-status-")
        self.hosts, self.procs = [], []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for h in self.hosts:
            h.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    def host(self, **kw):
        h = Host(self.work, **kw)
        self.hosts.append(h)
        return h

    def promtool(self, text):
        r = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, "promtool check metrics:\n%s%s\n--- text:\n%s" % (
            r.stdout.decode(), r.stderr.decode(), text))


class Access(Base):
    """No api-token: the loopback rule; event streams and their bounds."""

    def open_stream(self, port, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        c.request("GET", "/status/events", headers=headers or {})
        return c, c.getresponse()

    def test_loopback_rule_and_event_streams(self):
        h = self.host(config="[http]\nrequest-timeout-s=2\n")
        status, hdrs, body = request(h.port, "/metrics")
        self.assertEqual(status, 200, body)
        self.assertTrue(hdrs["Content-Type"].startswith("text/plain; version=0.0.4"), hdrs)
        self.promtool(body.decode())
        self.assertEqual(metric(body.decode(), "zoomrtms_engagements_active"), 0)
        fwd = {"X-Forwarded-For": "203.0.113.9"}
        for path in ("/metrics", "/", "/status", "/status/app.js", "/status/live",
                     "/status/events", "/status/files/x/audio.wav"):
            status, _, body = request(h.port, path, headers=fwd)
            self.assertEqual(status, 403, "%s: %s" % (path, body))
        status, hdrs, body = request(h.port, "/")
        self.assertEqual(status, 200)
        self.assertIn("text/html", hdrs["Content-Type"])
        self.assertIn(b"Live engagements", body)
        self.assertIn("script-src 'self'", hdrs["Content-Security-Policy"])
        status, _, _ = request(h.port, "/nothing-here")
        self.assertEqual(status, 404)

        # an event stream lives past request-timeout-s=2
        c, r = self.open_stream(h.port)
        self.assertEqual(r.status, 200)
        self.assertTrue(r.getheader("Content-Type").startswith("text/event-stream"))
        t0, text = time.monotonic(), b""
        while time.monotonic() - t0 < 5:
            line = r.fp.readline()
            self.assertTrue(line, "the stream ended after %.1f s" % (time.monotonic() - t0))
            text += line
        self.assertIn(b"event: recent", text)
        self.assertGreaterEqual(text.count(b"event: live"), 5, text[:500])
        streams = [(c, r)]
        # at most 16 at once; the 17th gets 503, other requests still work
        for _ in range(15):
            c2, r2 = self.open_stream(h.port)
            self.assertEqual(r2.status, 200)
            streams.append((c2, r2))
        status, hdrs, body = request(h.port, "/status/events")
        self.assertEqual(status, 503, body)
        self.assertEqual(hdrs.get("Retry-After"), "10")
        self.assertEqual(request(h.port, "/metrics")[0], 200)
        for c2, r2 in streams:
            r2.close()
            c2.close()
        # closed streams are noticed at the next write (every 500 ms)
        deadline, status = time.monotonic() + 20, 0
        while time.monotonic() < deadline:
            c3 = http.client.HTTPConnection("127.0.0.1", h.port, timeout=15)
            c3.request("GET", "/status/events")
            r3 = c3.getresponse()
            status = r3.status
            r3.close()
            c3.close()
            if status == 200:
                break
            time.sleep(0.5)
        self.assertEqual(status, 200, "slots of closed event streams were not freed")

    def test_file_downloads_are_bounded(self):
        """A download may hold its connection for an hour, beyond the
        connection cap's reclaiming: at most 16 at once (503 beyond), so
        clients that stop reading cannot take every connection."""
        h = self.host()
        d = os.path.join(h.out, "eng-dl")
        os.makedirs(d)
        with open(os.path.join(d, "audio.wav"), "wb") as f:
            f.truncate(64 * 1024 * 1024)
        socks = []
        try:
            for _ in range(16):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.settimeout(30)
                s.connect(("127.0.0.1", h.port))
                s.sendall(b"GET /status/files/eng-dl/audio.wav HTTP/1.1\r\n"
                          b"Host: 127.0.0.1\r\n\r\n")
                self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 200"))
                socks.append(s)     # and reads no more
            status, hdrs, body = request(h.port, "/status/files/eng-dl/audio.wav")
            self.assertEqual(status, 503, body[:200])
            self.assertEqual(hdrs.get("Retry-After"), "10")
            self.assertEqual(request(h.port, "/status/live")[0], 200)
        finally:
            for s in socks:
                s.close()
        # closed downloads are noticed at the next write
        deadline, status = time.monotonic() + 30, 0
        while time.monotonic() < deadline:
            c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=15)
            c.request("GET", "/status/files/eng-dl/audio.wav")
            r = c.getresponse()
            status = r.status
            c.close()
            if status == 200:
                break
            time.sleep(0.5)
        self.assertEqual(status, 200, "slots of closed downloads were not freed")


class Call(Base):
    """An api-token and a simulated call."""

    def sim(self, *args, background=False, timeout=120):
        argv = [SIM] + list(args)
        env = dict(E, **CREDS)
        if background:
            p = subprocess.Popen(argv, cwd=self.work, env=env,
                                 stdout=open(os.path.join(self.work, "sim.log"), "w"),
                                 stderr=subprocess.STDOUT)
            self.procs.append(p)
            return p
        return subprocess.run(argv, cwd=self.work, env=env, capture_output=True,
                              text=True, timeout=timeout)

    def live(self, port):
        status, _, body = request(port, "/status/live", headers=bearer())
        self.assertEqual(status, 200, body)
        return json.loads(body)

    def test_metrics_page_and_files_during_a_call(self):
        h = self.host(extra_env={"ZOOMRTMS_API_TOKEN": TOKEN})
        port = h.port
        base = "http://127.0.0.1:%d" % port
        # the token guards every data path; the page shell is public
        for path in ("/metrics", "/status/live", "/status/events", "/status/files/a/b"):
            status, hdrs, _ = request(port, path)
            self.assertEqual(status, 401, path)
            self.assertEqual(hdrs.get("WWW-Authenticate"), 'Bearer realm="zoomrtms-host"')
            status, _, _ = request(port, path, headers=bearer("wrong"))
            self.assertEqual(status, 401, path)
        self.assertEqual(request(port, "/status")[0], 200)
        self.assertEqual(request(port, "/status/style.css")[0], 200)
        status, _, body = request(port, "/metrics", headers=bearer())
        self.assertEqual(status, 200)
        self.promtool(body.decode())

        r = self.sim("webhook", "--webhook-url", base + "/webhook", "--event", "stopped",
                     "--engagement-id", "x", "--rtms-stream-id", "y", "--bad-signature")
        self.assertNotEqual(r.returncode, 0)
        # the page is open before the call (Chromium's start-up is not in the
        # call's time on a loaded machine): connected, nothing live yet
        b = self.open_page(port)
        summary = os.path.join(self.work, "sim.json")
        # a media outage at 6 s: the element rejoins, the gap becomes silence
        sim = self.sim("run", "--webhook-url", base + "/webhook", "--speed", "1",
                       "--outage", "media:6000+1500", "--summary-json", summary,
                       background=True)

        # the engagement is live, with meters (the src pad is S16LE stereo)
        deadline, eng = time.monotonic() + 60, None
        while time.monotonic() < deadline and sim.poll() is None:
            lv = self.live(port)["live"]["engagements"]
            if lv and lv[0]["meters"]["rate"] > 0 and len(lv[0]["meters"]["rms_db"]) == 2:
                eng = lv[0]
                break
            time.sleep(0.2)
        self.assertIsNotNone(eng, "no live engagement with meters: " + h.read_log())
        status, _, body = request(port, "/metrics", headers=bearer())
        self.assertEqual(status, 200)
        text = body.decode()
        self.promtool(text)
        self.assertEqual(metric(text, "zoomrtms_engagements_active"), 1)
        self.assertGreater(metric(text, "zoomrtms_packets_received_total"), 0)

        self.check_page(b, eng)

        self.assertEqual(sim.wait(120), 0, open(os.path.join(self.work, "sim.log")).read())
        deadline = time.monotonic() + 30
        while self.live(port)["live"]["total"] and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.live(port)["live"]["total"], 0)
        status, _, body = request(port, "/metrics", headers=bearer())
        text = body.decode()
        self.promtool(text)
        with open(summary) as f:
            sent = json.load(f)
        self.assertEqual(metric(text, "zoomrtms_packets_received_total"), sent["frames_sent"],
                         text)
        self.assertEqual(metric(text, "zoomrtms_engagements_active"), 0)
        self.assertEqual(metric(text, "zoomrtms_webhooks_total", {
            "event": "contact_center.voice_rtms_started", "status": "200"}), 1, text)
        self.assertEqual(metric(text, "zoomrtms_webhooks_total", {
            "event": "contact_center.voice_rtms_stopped", "status": "200"}), 1, text)
        self.assertEqual(metric(text, "zoomrtms_webhooks_total", {
            "event": "unverified", "status": "401"}), 1, text)
        self.assertGreater(metric(text, "zoomrtms_frame_latency_seconds_count"), 0)
        self.assertEqual(metric(text, "zoomrtms_reconnects_total", {"cause": "media"}), 1, text)
        self.assertEqual(metric(text, "zoomrtms_reconnects_total", {"cause": "signaling"}), 0)
        # the outage's silence, per channel summed (two channels, ≈1.5 s each)
        silence = metric(text, "zoomrtms_silence_inserted_seconds_total")
        eng_json = os.path.join(h.out, eng["dir_name"], "engagement.json")
        with open(eng_json) as f:
            samples = json.load(f)["silence_inserted_samples"]
        self.assertGreater(samples, 0)
        self.assertAlmostEqual(silence, samples / 16000.0, places=6)
        self.assertGreater(metric(text, "process_resident_memory_bytes"), 1e6)

        self.check_files(h, eng["dir_name"])

    def open_page(self, port):
        if not CHROMIUM:
            self.skipTest("no chromium")
        b = Chromium(self.work)
        self.browser = b
        b.page("Emulation.setDeviceMetricsOverride", {
            "width": 1200, "height": 760, "deviceScaleFactor": 1, "mobile": False})
        # the token in the fragment: never sent, removed from the address
        b.page("Page.navigate", {"url": "http://127.0.0.1:%d/status#token=%s" % (port, TOKEN)})
        deadline, s = time.monotonic() + 60, {}
        while time.monotonic() < deadline:
            s = json.loads(b.evaluate(SAMPLE_JS) or "{}")
            if s.get("conn") == "live":
                break
            time.sleep(0.2)
        self.assertEqual(s.get("conn"), "live", s)
        self.assertEqual(s["cards"], [])
        self.assertNotIn(TOKEN, s["href"])
        return b

    def tearDown(self):
        if getattr(self, "browser", None):
            self.browser.close()
        super().tearDown()

    def check_page(self, b, eng):
        try:
            samples, moving = [], False
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                s = json.loads(b.evaluate(SAMPLE_JS) or "{}")
                if s.get("cards") and len(s["cards"][0]["meters"]) == 2:
                    samples.append(s)
                    # two samples with speech on a channel, and different
                    # levels: the meters move while someone talks
                    loud = {json.dumps(x["cards"][0]["meters"]) for x in samples
                            if any(m["rms"] > -60 for m in x["cards"][0]["meters"])}
                    named = "Jane Doe" in s["cards"][0]["text"]
                    if len(loud) >= 2 and named:
                        moving = True
                        break
                time.sleep(0.3)
            self.assertTrue(samples, "the page never showed the engagement with two meters: %s"
                            % b.evaluate(SAMPLE_JS))
            last = samples[-1]
            self.assertTrue(moving, "meters did not move or no party name: %s" %
                            [x["cards"][0] for x in samples[-3:]])
            self.assertIn(eng["id"], last["cards"][0]["text"])
            self.assertIn("Tom Agent", last["cards"][0]["text"])
            self.assertEqual(last["conn"], "live")
            self.assertNotIn(TOKEN, last["href"])
            shot = b.page("Page.captureScreenshot", {"format": "png"})["data"]
            path = os.path.join(OUT, "status-page.png")
            with open(path, "wb") as f:
                f.write(base64.b64decode(shot))
            print("screenshot:", path, "meter samples:",
                  [[m["rms"] for m in x["cards"][0]["meters"]] for x in samples[-4:]])
            ident = shutil.which("identify")
            if ident:
                r = subprocess.run([ident, path], capture_output=True, text=True)
                self.assertIn("PNG 1200x760", r.stdout, r.stdout + r.stderr)
        finally:
            b.close()
            self.browser = None

    def check_files(self, h, dir_name):
        port = h.port
        recent = self.live(port)["recent"]
        entry = next((e for e in recent if e["dir_name"] == dir_name), None)
        self.assertIsNotNone(entry, recent)
        names = [f["name"] for f in entry["files"]]
        for n in ("audio.wav", "engagement.json", "transcript.txt"):
            self.assertIn(n, names)
        self.assertEqual(entry["state"], "stopped")
        status, hdrs, body = request(port, "/status/files/%s/audio.wav" % dir_name,
                                     headers=bearer())
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["Content-Type"], "audio/wav")
        self.assertEqual(body[:4], b"RIFF")
        self.assertEqual(len(body), os.path.getsize(os.path.join(h.out, dir_name, "audio.wav")))
        status, _, body = request(port, "/status/files/%s/transcript.txt" % dir_name,
                                  headers=bearer())
        self.assertEqual(status, 200)
        self.assertIn(b"Jane Doe", body)
        # traversal and symlinks: never outside the output root
        secret = os.path.join(self.work, "secret.txt")
        with open(secret, "w") as f:
            f.write("SECRET")
        os.symlink(secret, os.path.join(h.out, dir_name, "link.txt"))
        os.symlink(self.work, os.path.join(h.out, "linkdir"))
        for path in (
                "/status/files/../secret.txt",
                "/status/files/%s/../../secret.txt" % dir_name,
                "/status/files/%2e%2e/secret.txt",
                "/status/files/%s/%%2e%%2e%%2fsecret.txt" % dir_name,
                "/status/files/%s/..%%2f..%%2fsecret.txt" % dir_name,
                "/status/files/%2e%2e%2f%2e%2e/secret.txt",
                "/status/files/%s/link.txt" % dir_name,
                "/status/files/linkdir/secret.txt",
                "/status/files/%s/.." % dir_name,
                "/status/files/%s/audio.wav%%00.txt" % dir_name,
                "/status/files/%s" % dir_name,
                "/status/files/%s/audio.wav/x" % dir_name):
            status, _, body = request(port, path, headers=bearer())
            self.assertIn(status, (400, 403, 404), "%s → %d" % (path, status))
            self.assertNotIn(b"SECRET", body, path)


def main():
    if not PROMTOOL:
        print("SKIP: no promtool (Debian package prometheus)")
        return 77
    return run_tests(globals(), ["Access", "Call"])


if __name__ == "__main__":
    sys.exit(main())
