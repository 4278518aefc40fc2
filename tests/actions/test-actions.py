#!/usr/bin/env python3
"""tests/actions (meson suite 'actions'): after the call (issue 13,
src/host/host-actions.h) with real zoomrtms-sim and zoomrtms-host processes
and a real S3-compatible server (npm `s3rver`, started on loopback; objects
fetched back with the curl command line's own SigV4, not our client).

    test-actions.py Upload      a call: every file uploaded, byte-identical;
                                the exec hook's manifest hashes = sha256sum's;
                                engagement.json, GET /engagements and /metrics
                                (promtool) show the actions
    test-actions.py StoreDown   the store is down during a call: retried with
                                backoff (visible as pending), uploaded once it
                                is back
    test-actions.py Crash       the host is SIGKILLed in the middle of a
                                multipart upload (the store paused with
                                SIGSTOP): after a restart the upload completes
                                once, byte-identical
    test-actions.py Revocation  stop reason 8 from the stream (sim
                                --stop-reason 8) and from a stopped webhook
                                after the upload, and DELETE ?purge=true:
                                nothing left but the receipt, locally and in
                                the bucket
    test-actions.py HookTimeout a crashed engagement recovered at start runs its
                                actions; a hanging hook is killed after
                                exec-timeout-s, its output kept; a hook writing
                                50 MB finishes, 16 KiB kept, nothing on disk
    test-actions.py SharedQueue two hosts on one output root (a fleet's shared
                                queue): each job's hook runs once, on one
                                node; the other adopts the pending uploads of
                                a SIGKILLed node and completes them
    test-actions.py Retention   aged engagements swept at start, oldest first,
                                by max-age-days and max-bytes; symlinks in the
                                output root (directory, engagement.json) never
                                followed, their targets untouched

Exit status 0 passed, 1 failed, 77 (skipped) without node or s3rver
(tools/test.sh installs it).
"""
import fcntl
import glob
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import wave
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from zoomrtms_testlib import free_port, metric, run_tests, wait_for  # noqa: E402

E = os.environ
HOST = E["ZOOMRTMS_HOST"]
SIM = E["ZOOMRTMS_SIM"]
SOURCE = E["ZOOMRTMS_SOURCE_DIR"]
OUT = E.get("ZOOMRTMS_TEST_OUT", tempfile.gettempdir())
S3RVER = E.get("S3RVER", "")
PROMTOOL = E.get("PROMTOOL") or shutil.which("promtool")
NODE = shutil.which("node")
CURL = shutil.which("curl")
CREDS = {
    "ZOOM_APP_CLIENT_ID": "actions_test_client_id",
    "ZOOM_APP_CLIENT_SECRET": "actions-test-client-secret-4a1b",
    "ZOOM_SECRET_TOKEN": "actions-test-secret-token-77c2",
    # s3rver's built-in account
    "AWS_ACCESS_KEY_ID": "S3RVER",
    "AWS_SECRET_ACCESS_KEY": "S3RVER",
}
BUCKET = "recordings"
PREFIX = "zcc/test"


def sha256_of(path):
    """sha256sum(1)'s answer (a tool we did not write)."""
    r = subprocess.run(["sha256sum", path], capture_output=True, check=True, timeout=60)
    return r.stdout.split()[0].decode()


def request(port, path, method="GET", timeout=15):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


class S3:
    """s3rver on loopback, data in @work/s3."""

    def __init__(self, work, port=None):
        self.work = work
        self.port = port or free_port()
        self.data = os.path.join(work, "s3")
        self.p = None
        self.log = open(os.path.join(work, "s3rver.log"), "a")

    def start(self):
        os.makedirs(self.data, exist_ok=True)
        self.p = subprocess.Popen(
            [NODE, S3RVER, "-d", self.data, "-a", "127.0.0.1", "-p", str(self.port),
             "--configure-bucket", BUCKET],
            stdout=self.log, stderr=subprocess.STDOUT)
        def up():
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return True
            except OSError:
                return False
        wait_for(up, 30, "s3rver to listen")
        time.sleep(0.3)

    def stop(self):
        if self.p and self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGCONT)
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.p = None

    def url(self, key):
        return "http://127.0.0.1:%d/%s/%s" % (self.port, BUCKET, key)

    def curl(self, *args):
        return subprocess.run(
            [CURL, "-sS", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", "S3RVER:S3RVER",
             # S3 wants the body's hash (here: empty) in every request
             "-H", "x-amz-content-sha256: " + hashlib.sha256(b"").hexdigest()]
            + list(args), capture_output=True, timeout=60)

    def get(self, key):
        """(HTTP status, body) of GetObject, with curl's own SigV4."""
        out = os.path.join(self.work, "get.bin")
        r = self.curl("-o", out, "-w", "%{http_code}", self.url(key))
        status = int(r.stdout.decode() or 0)
        with open(out, "rb") as f:
            body = f.read()
        os.remove(out)
        return status, body

    def keys(self, prefix):
        r = self.curl("http://127.0.0.1:%d/%s?list-type=2&prefix=%s" % (
            self.port, BUCKET, prefix))
        text = r.stdout.decode()
        keys = []
        while "<Key>" in text:
            a = text.index("<Key>") + 5
            b = text.index("</Key>", a)
            keys.append(text[a:b])
            text = text[b:]
        return keys


class Host:
    def __init__(self, work, config, extra_env=None, name="host"):
        self.work = work
        self.name = name
        self.out = os.path.join(work, "recordings")
        self.ready = os.path.join(work, "ready.json" if name == "host" else name + "-ready.json")
        if os.path.exists(self.ready):
            os.remove(self.ready)
        path = os.path.join(work, name + ".conf")
        with open(path, "w") as f:
            f.write(config)
        argv = [HOST, "--port", "0", "--ready-file", self.ready, "--output-root", self.out,
                "--pipeline-dir", os.path.join(SOURCE, "pipelines"), "--config", path]
        env = {k: v for k, v in E.items() if not k.startswith(("ZOOM", "AWS_"))}
        env.update(CREDS)
        env.update(extra_env or {})
        self.log = open(os.path.join(work, name + ".log"), "a+")
        self.p = subprocess.Popen(argv, cwd=work, env=env, stdout=self.log,
                                  stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(self.ready) or self.p.poll() is not None, 60,
                 "the host to start")
        if not os.path.exists(self.ready):
            raise AssertionError("host did not start: " + self.read_log())
        time.sleep(0.1)
        with open(self.ready) as f:
            self.port = json.load(f)["port"]

    def read_log(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def engagements(self):
        status, body = request(self.port, "/engagements")
        assert status == 200, status
        return json.loads(body)["engagements"]

    def metrics(self):
        status, body = request(self.port, "/metrics")
        assert status == 200, status
        return body.decode()

    def kill(self):
        self.p.kill()
        self.p.wait()
        self.log.close()

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        if not self.log.closed:
            self.log.close()


def data_files(d):
    """The files of an engagement directory but engagement.json (and its
    temporary files while the host rewrites it)."""
    return sorted(f for f in os.listdir(d) if not f.startswith("engagement.json"))


def engagement_json(d):
    with open(os.path.join(d, "engagement.json")) as f:
        return json.load(f)


def upload_config(s3_port, extra=""):
    return """[actions]
retry-min-s=1
retry-max-s=2
%s
[upload]
endpoint=http://127.0.0.1:%d
bucket=%s
region=us-east-1
prefix=%s
""" % (extra, s3_port, BUCKET, PREFIX)


class Base(unittest.TestCase):
    def setUp(self):
        if not NODE or not S3RVER or not os.path.exists(S3RVER):
            self.skipTest("no node or s3rver (tools/test.sh installs s3rver)")
        if not CURL:
            self.skipTest("no curl")
        self.work = tempfile.mkdtemp(prefix="actions-", dir=OUT)
        self.hosts, self.stores, self.procs = [], [], []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for h in self.hosts:
            h.stop()
        for s in self.stores:
            s.stop()
        if not E.get("ZOOMRTMS_KEEP"):
            shutil.rmtree(self.work, ignore_errors=True)

    def store(self, port=None, start=True):
        s = S3(self.work, port)
        self.stores.append(s)
        if start:
            s.start()
        return s

    def host(self, config, **kw):
        h = Host(self.work, config, **kw)
        self.hosts.append(h)
        return h

    def call(self, h, *extra):
        """One simulated call (speed 0: as fast as possible); its directory."""
        before = set(glob.glob(os.path.join(h.out, "*")))
        r = subprocess.run([SIM, "run", "--webhook-url", "http://127.0.0.1:%d/webhook" % h.port,
                            "--speed", "0"] + list(extra),
                           env=dict(E, **CREDS), capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr.decode()[-2000:])
        d = wait_for(lambda: set(glob.glob(os.path.join(h.out, "*"))) - before, 30,
                     "the engagement directory")
        d = sorted(d)[0]
        wait_for(lambda: os.path.exists(os.path.join(d, "engagement.json")) and
                 engagement_json(d)["state"] not in ("starting", "running", "stopping"),
                 60, "the engagement to end")
        return d

    def wait_actions(self, d, state="done", timeout=60):
        def ok():
            a = engagement_json(d).get("actions")
            return a if a and a["state"] == state else None
        try:
            return wait_for(ok, timeout, "actions " + state)
        except AssertionError:
            raise AssertionError("actions not %s: %s\n%s" % (
                state, json.dumps(engagement_json(d).get("actions"), indent=1),
                self.hosts[-1].read_log()[-4000:]))

    def promtool(self, text):
        if not PROMTOOL:
            return
        r = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())

    def assert_uploaded(self, s3, d, names=None):
        """Every file of @d (but engagement.json) is in the bucket,
        byte-identical."""
        name = os.path.basename(d)
        files = names or data_files(d)
        self.assertTrue(files)
        for f in files:
            status, body = s3.get("%s/%s/%s" % (PREFIX, name, f))
            self.assertEqual(status, 200, f)
            with open(os.path.join(d, f), "rb") as fh:
                self.assertEqual(body, fh.read(), "object %s differs from the file" % f)


class Upload(Base):
    def test_call_uploaded_and_hook_manifest(self):
        s3 = self.store()
        hook_out = os.path.join(self.work, "hook")
        os.makedirs(hook_out)
        hook = os.path.join(self.work, "hook.py")
        with open(hook, "w") as f:
            f.write("import json, os, sys\n"
                    "m = json.load(sys.stdin)\n"
                    "json.dump({'manifest': m, 'cwd': os.getcwd(), 'env': sorted(os.environ)},"
                    " open(os.path.join(sys.argv[1], m['dir_name'] + '.json'), 'w'))\n"
                    "print('hook saw', len(m['files']), 'files')\n")
        h = self.host(upload_config(s3.port, "exec=%s %s %s" % (sys.executable, hook, hook_out)))
        d = self.call(h)
        a = self.wait_actions(d)
        name = os.path.basename(d)
        files = data_files(d)
        self.assertIn("audio.wav", files)
        # the exec hook: the manifest on stdin, its hashes = sha256sum's
        execs = [t for t in a["tasks"] if t["type"] == "exec"]
        self.assertEqual(len(execs), 1)
        self.assertEqual(execs[0]["exit_status"], 0)
        self.assertIn("hook saw %d files" % len(files), execs[0]["output"])
        with open(os.path.join(hook_out, name + ".json")) as f:
            seen = json.load(f)
        m = seen["manifest"]
        self.assertEqual(os.path.realpath(seen["cwd"]), os.path.realpath(d))
        for secret in ("ZOOM_APP_CLIENT_SECRET", "ZOOM_SECRET_TOKEN", "AWS_SECRET_ACCESS_KEY"):
            self.assertNotIn(secret, seen["env"])
        self.assertEqual(m["engagement"]["rtms_stream_id"], engagement_json(d)["rtms_stream_id"])
        self.assertEqual(m["engagement"]["stop_reason"]["code"], 21)
        self.assertIn("interruptions", m["engagement"])
        self.assertEqual(sorted(x["name"] for x in m["files"]), files)
        for x in m["files"]:
            self.assertEqual(x["sha256"], sha256_of(os.path.join(d, x["name"])), x["name"])
            self.assertEqual(x["bytes"], os.path.getsize(os.path.join(d, x["name"])))
        self.assertEqual(m["upload"]["bucket"], BUCKET)
        # uploads: one per file, verified, byte-identical in the bucket
        ups = {t["file"]: t for t in a["tasks"] if t["type"] == "upload"}
        self.assertEqual(sorted(ups), files)
        for f, t in ups.items():
            self.assertEqual(t["state"], "done")
            self.assertEqual(t["attempts"], 1)
            self.assertEqual(t["key"], "%s/%s/%s" % (PREFIX, name, f))
            self.assertEqual(t["sha256"], sha256_of(os.path.join(d, f)))
            self.assertEqual(t["verified"], "size+etag+sha256")
        self.assert_uploaded(s3, d)
        self.assertEqual(sorted(s3.keys(PREFIX + "/" + name + "/")),
                         ["%s/%s/%s" % (PREFIX, name, f) for f in files])
        # visible in GET /engagements and /metrics
        e = [x for x in h.engagements() if x["directory"] == d]
        self.assertEqual(e[0]["actions"]["state"], "done")
        text = h.metrics()
        self.promtool(text)
        self.assertEqual(metric(text, "zoomrtms_uploads_total", {"result": "ok"}), len(files))
        self.assertEqual(metric(text, "zoomrtms_exec_hooks_total", {"result": "ok"}), 1)
        self.assertEqual(metric(text, "zoomrtms_actions_pending"), 0)
        self.assertEqual(metric(text, "zoomrtms_upload_bytes_total"),
                         sum(os.path.getsize(os.path.join(d, f)) for f in files))
        # the queue forgot the job
        self.assertEqual(glob.glob(os.path.join(h.out, ".state", "actions", "*.json")), [])


class StoreDown(Base):
    def test_uploaded_after_the_store_returns(self):
        s3 = self.store(start=False)          # its port, nobody listening yet
        h = self.host(upload_config(s3.port))
        d = self.call(h)
        # retried with backoff while the store is down, and visible
        def failing():
            a = engagement_json(d).get("actions")
            if not a:
                return None
            ups = [t for t in a["tasks"] if t["type"] == "upload"]
            return ups and all(t["state"] in ("pending", "running") for t in ups) and \
                any(t["attempts"] >= 2 and t.get("error") for t in ups)
        wait_for(failing, 60, "failed attempts")
        e = [x for x in h.engagements() if x["directory"] == d][0]
        self.assertEqual(e["actions"]["state"], "pending")
        text = h.metrics()
        self.assertGreater(metric(text, "zoomrtms_actions_pending"), 0)
        self.assertGreater(metric(text, "zoomrtms_uploads_total", {"result": "error"}), 0)
        self.assertEqual(metric(text, "zoomrtms_uploads_total", {"result": "ok"}), 0)
        # the queue file in the state directory holds the pending work
        q = glob.glob(os.path.join(h.out, ".state", "actions", "*.json"))
        self.assertEqual(len(q), 1)
        # the store comes back: uploaded, byte-identical
        s3.start()
        a = self.wait_actions(d, timeout=60)
        for t in a["tasks"]:
            self.assertEqual(t["state"], "done")
            self.assertGreaterEqual(t["attempts"], 2)
        self.assert_uploaded(s3, d)
        text = h.metrics()
        self.assertEqual(metric(text, "zoomrtms_actions_pending"), 0)


def write_wav(path, seconds, rate=16000, channels=2):
    with wave.open(path, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(os.urandom(seconds * rate * channels * 2))


def fake_engagement(root, name, state, stop_time=None, wav_seconds=0, extra_files=None):
    """An engagement directory as a host leaves it."""
    d = os.path.join(root, name)
    os.makedirs(d)
    if wav_seconds:
        write_wav(os.path.join(d, "audio.wav"), wav_seconds)
    for f, data in (extra_files or {}).items():
        with open(os.path.join(d, f), "wb") as fh:
            fh.write(data)
    e = {"engagement_id": name, "id_key": "engagement_id", "rtms_stream_id": "s-" + name,
         "directory": d, "dir_name": name, "state": state, "pipeline": "record-wav",
         "start_time": stop_time, "stop_time": stop_time, "display_names": {"1": "Someone"},
         "interruptions": []}
    with open(os.path.join(d, "engagement.json"), "w") as f:
        json.dump(e, f)
    return d


def iso_days_ago(days):
    t = time.time() - days * 86400
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))


class Crash(Base):
    def test_killed_mid_multipart_upload_completes_once(self):
        s3 = self.store()
        out = os.path.join(self.work, "recordings")
        # a recording a killed host left "running" (recovered at start, then
        # uploaded): 40 MiB of WAV, 8 parts of 5 MiB
        d = fake_engagement(out, "big-call", "running", iso_days_ago(0), wav_seconds=700)
        size = os.path.getsize(os.path.join(d, "audio.wav"))
        self.assertGreater(size, 40 * 1024 * 1024)
        cfg = upload_config(s3.port) + "part-size-bytes=5242880\nmultipart-threshold-bytes=5242880\n"
        h = self.host(cfg)
        q = os.path.join(h.out, ".state", "actions", "big-call.json")

        def upload_started():
            try:
                with open(q) as f:
                    j = json.load(f)
            except (OSError, ValueError):
                return False
            return any(t.get("upload_id") for t in j["tasks"])
        wait_for(upload_started, 60, "the multipart upload to start", step=0.01)
        # pause the store (the upload cannot finish), then kill the host
        os.kill(s3.p.pid, signal.SIGSTOP)
        # the upload waits on a worker thread: the main context still answers
        status, body = request(h.port, "/health", timeout=20)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["status"], "ok")
        h.kill()
        self.hosts.remove(h)
        os.kill(s3.p.pid, signal.SIGCONT)
        key = "%s/big-call/audio.wav" % PREFIX
        self.assertEqual(s3.get(key)[0], 404, "the upload was complete before the kill")
        with open(q) as f:
            j = json.load(f)
        t = [t for t in j["tasks"] if t["type"] == "upload" and t["file"] == "audio.wav"][0]
        self.assertEqual(t["state"], "running")
        # restart: taken up from the queue, completed once
        h2 = self.host(cfg)
        a = self.wait_actions(d, timeout=120)
        t = [t for t in a["tasks"] if t["file"] == "audio.wav"][0]
        self.assertEqual(t["state"], "done")
        self.assertEqual(t["attempts"], 2)
        self.assertEqual(t["sha256"], sha256_of(os.path.join(d, "audio.wav")))
        self.assert_uploaded(s3, d)
        self.assertEqual(s3.keys("%s/big-call/" % PREFIX), [key])
        text = h2.metrics()
        self.assertEqual(metric(text, "zoomrtms_uploads_total", {"result": "ok"}), 1)
        self.assertFalse(os.path.exists(q))
        # a further restart uploads nothing again
        h2.stop()
        self.hosts.remove(h2)
        h3 = self.host(cfg)
        time.sleep(1.5)
        text = h3.metrics()
        self.assertEqual(metric(text, "zoomrtms_uploads_total", {"result": "ok"}), 0)
        self.assertEqual(metric(text, "zoomrtms_actions_pending"), 0)


class Revocation(Base):
    def assert_receipt(self, d, state, reason, s3, remote):
        name = os.path.basename(d)
        self.assertEqual(data_files(d), [])
        e = engagement_json(d)
        self.assertEqual(e["state"], state)
        self.assertEqual(e["erasure"]["reason"], reason)
        self.assertIsNotNone(e["erasure"]["completed"])
        self.assertFalse(e["erasure"]["remote_pending"])
        self.assertEqual(e["display_names"], {})
        local = {x["name"]: x for x in e["deleted"] if x["where"] == "local"}
        self.assertIn("audio.wav", local)
        for x in e["deleted"]:
            self.assertTrue(x["when"])
            self.assertEqual(len(x["sha256"]), 64)
        objs = [x for x in e["deleted"] if x["where"].startswith("s3://")]
        if remote:
            self.assertEqual(sorted(x["name"] for x in objs), sorted(local))
            for x in objs:
                self.assertEqual(x["sha256"], local[x["name"]]["sha256"])
                self.assertEqual(x["bytes"], local[x["name"]]["bytes"])
                self.assertEqual(x["where"], "s3://%s/%s/%s/%s" % (BUCKET, PREFIX, name, x["name"]))
        self.assertEqual(s3.keys("%s/%s/" % (PREFIX, name)), [])
        return e

    def test_stop_reason_8_and_purge_leave_only_a_receipt(self):
        s3 = self.store()
        h = self.host(upload_config(s3.port))
        # 1. a call uploaded, then revoked by a stopped webhook (reason 8)
        d1 = self.call(h)
        self.wait_actions(d1)
        before = {f: sha256_of(os.path.join(d1, f)) for f in data_files(d1)}
        self.assertTrue(s3.keys("%s/%s/" % (PREFIX, os.path.basename(d1))))
        sid = engagement_json(d1)["rtms_stream_id"]
        r = subprocess.run([SIM, "webhook", "--webhook-url", "http://127.0.0.1:%d/webhook" % h.port,
                            "--event", "stopped", "--engagement-id", engagement_json(d1)["engagement_id"],
                            "--rtms-stream-id", sid, "--stop-reason", "8"],
                           env=dict(E, **CREDS), capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        # the webhook's stop reason and the erasure are written by two
        # threads, in either order; neither may lose the other's
        wait_for(lambda: engagement_json(d1).get("erasure", {}).get("completed") and
                 (engagement_json(d1).get("stop_reason") or {}).get("code") == 8, 60,
                 "the revocation and its stop reason")
        e = self.assert_receipt(d1, "revoked", "stream-revoked", s3, remote=True)
        self.assertEqual({x["name"]: x["sha256"] for x in e["deleted"] if x["where"] == "local"},
                         before)
        self.assertEqual(e["stop_reason"]["code"], 8)
        # 2. the stream itself ends with stop reason 8 (msg 8 and the webhook)
        d2 = self.call(h, "--stop-reason", "8")
        wait_for(lambda: engagement_json(d2).get("erasure", {}).get("completed"), 60,
                 "the revocation")
        e = self.assert_receipt(d2, "revoked", "stream-revoked", s3, remote=False)
        self.assertEqual(e["stop_reason"]["code"], 8)
        # 3. an operator's erasure: DELETE /engagements/{id}?purge=true
        d3 = self.call(h)
        self.wait_actions(d3)
        status, body = request(h.port, "/engagements/%s?purge=true" % os.path.basename(d3),
                               "DELETE")
        self.assertEqual(status, 202, body)
        wait_for(lambda: engagement_json(d3).get("erasure", {}).get("completed"), 60,
                 "the purge")
        self.assert_receipt(d3, "purged", "operator", s3, remote=True)
        listed = {x["directory"]: x for x in h.engagements()}
        self.assertEqual(listed[d1]["state"], "revoked")
        self.assertEqual(listed[d3]["state"], "purged")
        text = h.metrics()
        self.promtool(text)
        self.assertEqual(metric(text, "zoomrtms_erasures_total", {"reason": "stream-revoked"}), 2)
        self.assertEqual(metric(text, "zoomrtms_erasures_total", {"reason": "operator"}), 1)
        # nothing of the three calls in the bucket
        self.assertEqual(s3.keys(PREFIX + "/"), [])
        # unknown and traversing ids
        self.assertEqual(request(h.port, "/engagements/nope?purge=true", "DELETE")[0], 404)
        self.assertIn(request(h.port, "/engagements/..%2F..%2Fetc?purge=true", "DELETE")[0],
                      (400, 404))


    def test_live_purge_and_revocation_while_the_store_is_down(self):
        s3 = self.store(start=False)
        h = self.host(upload_config(s3.port))
        # the store is down: the uploads of a call stay pending …
        d1 = self.call(h)
        wait_for(lambda: any(t["attempts"] >= 1 and t.get("error") for t in
                             (engagement_json(d1).get("actions") or {}).get("tasks", [])
                             if t["type"] == "upload"), 60, "a failed upload")
        # … until a revocation cancels them: local files go at once, the
        # bucket's side waits for the store
        sid = engagement_json(d1)["rtms_stream_id"]
        r = subprocess.run([SIM, "webhook", "--webhook-url", "http://127.0.0.1:%d/webhook" % h.port,
                            "--event", "stopped", "--engagement-id", engagement_json(d1)["engagement_id"],
                            "--rtms-stream-id", sid, "--stop-reason", "8"],
                           env=dict(E, **CREDS), capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        wait_for(lambda: engagement_json(d1).get("erasure", {}).get("remote_pending"), 30,
                 "the local erasure")
        e = engagement_json(d1)
        self.assertEqual(e["state"], "revoked")
        self.assertEqual(data_files(d1), [])
        self.assertIsNone(e["erasure"]["completed"])
        self.assertGreater(e["erasure"]["cancelled_tasks"], 0)
        ups = [t for t in e["actions"]["tasks"] if t["type"] == "upload"]
        self.assertTrue(ups)
        self.assertTrue(all(t["state"] == "cancelled" for t in ups), ups)
        s3.start()
        wait_for(lambda: engagement_json(d1)["erasure"]["completed"], 60, "the erasure")
        self.assert_receipt(d1, "revoked", "stream-revoked", s3, remote=False)
        # a live engagement purged: stopped, then erased (a call at speed 1)
        before = set(glob.glob(os.path.join(h.out, "*")))
        sim = subprocess.Popen([SIM, "run", "--webhook-url", "http://127.0.0.1:%d/webhook" % h.port,
                                "--speed", "1"], env=dict(E, **CREDS),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(sim)
        d2 = sorted(wait_for(lambda: set(glob.glob(os.path.join(h.out, "*"))) - before, 60,
                             "the live engagement"))[0]
        wait_for(lambda: os.path.exists(os.path.join(d2, "audio.wav")) and
                 os.path.getsize(os.path.join(d2, "audio.wav")) > 64000, 60, "audio")
        live = [x for x in h.engagements() if x["directory"] == d2][0]
        self.assertTrue(live["live"]["active"])
        status, body = request(h.port, "/engagements/%s?purge=true" % os.path.basename(d2),
                               "DELETE")
        self.assertEqual(status, 202, body)
        wait_for(lambda: engagement_json(d2).get("erasure", {}).get("completed"), 60,
                 "the purge")
        self.assert_receipt(d2, "purged", "operator", s3, remote=False)
        sim.wait(120)
        # Zoom's answer to our msg 21 (stop reason 20, and the sim's stopped
        # webhook after it) fills in the code; the stop stays the operator's
        wait_for(lambda: (engagement_json(d2).get("stop_reason") or {}).get("code") == 20,
                 30, "stop reason 20")
        self.assertEqual(engagement_json(d2)["stop_reason"]["source"], "api")
        self.assert_receipt(d2, "purged", "operator", s3, remote=False)


class HookTimeout(Base):
    def test_recovered_engagement_hook_killed_after_its_timeout(self):
        out = os.path.join(self.work, "recordings")
        # a recording a killed host left "running": recovered at start, then
        # its actions run (a hook that hangs, killed after 1 s)
        d = fake_engagement(out, "crashed", "running", iso_days_ago(0), wav_seconds=1)
        # the hook starts a process of its own: killed with it (its process
        # group)
        pidfile = os.path.join(self.work, "child.pid")
        h = self.host("[actions]\nexec=/bin/sh -c 'echo started; sleep 300 & "
                      "echo $! > %s; exec sleep 60'\nexec-timeout-s=1\n" % pidfile)
        a = self.wait_actions(d, state="failed", timeout=60)
        t = a["tasks"][0]
        self.assertEqual(t["type"], "exec")
        self.assertEqual(t["state"], "failed")
        self.assertIn("timed out after 1 s", t["error"])
        self.assertEqual(t["output"], "started\n")
        with open(pidfile) as f:
            child = int(f.read())
        def gone():
            try:
                with open("/proc/%d/stat" % child) as f:
                    return f.read().rsplit(")", 1)[1].split()[0] == "Z"
            except FileNotFoundError:
                return True
        wait_for(gone, 30, "the hook's child to be killed")
        self.assertEqual(engagement_json(d)["state"], "recovered")
        text = h.metrics()
        self.assertEqual(metric(text, "zoomrtms_exec_hooks_total", {"result": "timeout"}), 1)
        self.assertEqual(metric(text, "zoomrtms_actions_pending"), 0)

    def test_hook_output_bounded_and_never_on_disk(self):
        out = os.path.join(self.work, "recordings")
        d = fake_engagement(out, "chatty", "running", iso_days_ago(0), wav_seconds=1)
        # ~50 MB on stdout: the host keeps the first 16 KiB, drains the rest
        # (the hook finishes, never blocked on a full pipe) and writes none of
        # it to disk: the hook itself lists the large files under the work
        # directory once it has written everything
        big = os.path.join(self.work, "large-files.txt")
        h = self.host("[actions]\nexec=/bin/sh -c 'yes | head -c 50000000; "
                      "find %s -type f -size +1M > %s; echo listed >&2'\n"
                      "exec-timeout-s=120\n" % (self.work, big))
        a = self.wait_actions(d, state="done", timeout=180)
        t = a["tasks"][0]
        self.assertEqual(t["type"], "exec")
        self.assertEqual(t["exit_status"], 0)
        self.assertEqual(len(t["output"]), 16384)
        self.assertEqual(t["output"], "y\n" * 8192)
        with open(big) as f:
            self.assertEqual(f.read(), "", "hook output written to disk")
        large = [os.path.join(r, f) for r, _, fs in os.walk(self.work) for f in fs
                 if os.path.getsize(os.path.join(r, f)) > 1024 * 1024]
        self.assertEqual(large, [])
        self.assertIn("past the first 16384 dropped", h.read_log())


class SharedQueue(Base):
    """Two hosts on one output root share its state directory and so the
    queue (<output root>/.state/actions), as the nodes of a fleet do."""

    def test_each_job_runs_on_one_node_and_is_adopted_when_it_dies(self):
        s3 = self.store(start=False)          # down: the uploads stay pending
        out = os.path.join(self.work, "recordings")
        runs = os.path.join(self.work, "hook-runs.txt")
        # three recordings a killed host left "running": host a recovers them
        # at start and queues their actions; the hook (3 s each, one after
        # the other) appends one line per run
        names = ["call-%d" % i for i in range(3)]
        dirs = [fake_engagement(out, n, "running", iso_days_ago(0), wav_seconds=1) for n in names]
        cfg = upload_config(s3.port, "exec=/bin/sh -c 'echo \"$ZOOMRTMS_ENGAGEMENT_DIR\" "
                            ">> %s; sleep 3'" % runs)
        a = self.host(cfg, name="a")
        # host b starts on the same output root while a's hooks run: none of
        # a's jobs is loaded there
        b = self.host(cfg, name="b")
        text = b.metrics()
        self.assertEqual(metric(text, "zoomrtms_actions_pending"), 0, b.read_log())
        self.assertNotIn("taken up again", b.read_log())

        def hooks_done():
            for d in dirs:
                a_ = engagement_json(d).get("actions") or {}
                if not [t for t in a_.get("tasks", []) if t["type"] == "exec" and
                        t["state"] == "done"]:
                    return False
            return True
        wait_for(hooks_done, 90, "the three hooks")
        with open(runs) as f:
            self.assertEqual(sorted(os.path.basename(x) for x in f.read().split()),
                             names, "a hook ran twice")
        text = b.metrics()
        self.assertEqual(metric(text, "zoomrtms_exec_hooks_total", {"result": "ok"}), 0)
        self.assertEqual(metric(text, "zoomrtms_actions_pending"), 0)
        self.assertGreater(metric(a.metrics(), "zoomrtms_actions_pending"), 0)
        # a dies with the uploads pending: b adopts them within its scan
        # interval (30 s), and completes them once the store is back
        a.kill()
        self.hosts.remove(a)
        killed = time.time()
        wait_for(lambda: b.read_log().count("adopted from a node that stopped") == 3, 90,
                 "b to adopt a's three jobs")
        print("[ FIGURE ] jobs of a SIGKILLed node adopted after %.1f s" % (time.time() - killed))
        self.assertGreater(metric(b.metrics(), "zoomrtms_actions_pending"), 0)
        s3.start()
        for d in dirs:
            self.wait_actions(d, timeout=90)
            self.assert_uploaded(s3, d)
        # the hooks were done before the kill: not run again
        with open(runs) as f:
            self.assertEqual(sorted(os.path.basename(x) for x in f.read().split()),
                             names, "a hook ran twice")
        text = b.metrics()
        self.assertEqual(metric(text, "zoomrtms_uploads_total", {"result": "ok"}),
                         sum(len(data_files(d)) for d in dirs))
        self.assertEqual(metric(text, "zoomrtms_actions_pending"), 0)
        # nothing left in the queue: no job, no lock
        q = os.path.join(out, ".state", "actions")
        self.assertEqual([n for n in os.listdir(q) if n != "sweep.retention.lock"], [])


class Retention(Base):
    def test_aged_engagements_swept_oldest_first(self):
        out = os.path.join(self.work, "recordings")
        kb = b"x" * 100000
        old = fake_engagement(out, "old", "stopped", iso_days_ago(10),
                              extra_files={"audio.wav": kb, "transcript.txt": b"hello"})
        mid = fake_engagement(out, "mid", "recovered", iso_days_ago(5),
                              extra_files={"audio.wav": kb})
        new1 = fake_engagement(out, "new1", "stopped", iso_days_ago(2),
                               extra_files={"audio.wav": kb})
        new2 = fake_engagement(out, "new2", "failed", iso_days_ago(1),
                               extra_files={"audio.wav": kb})
        live = fake_engagement(out, "live", "detached", iso_days_ago(30),
                               extra_files={"audio.wav": kb})
        # its after-call actions still pending on another node of a fleet
        # (shared output root), which holds the job's lock: not this node's
        # queue, not erased either
        busy = fake_engagement(out, "busy", "stopped", iso_days_ago(20),
                               extra_files={"audio.wav": kb})
        # "pending" in engagement.json, but no queue file and a free lock: a
        # node that died before writing the end; swept (by age)
        stale = fake_engagement(out, "stale", "stopped", iso_days_ago(15),
                                extra_files={"audio.wav": kb})
        for d in (busy, stale):
            e = engagement_json(d)
            e["actions"] = {"state": "pending",
                            "tasks": [{"type": "upload", "state": "pending"}]}
            with open(os.path.join(d, "engagement.json"), "w") as f:
                json.dump(e, f)
        q = os.path.join(out, ".state", "actions")
        os.makedirs(q, mode=0o700)
        lock = os.open(os.path.join(q, "busy.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        self.addCleanup(os.close, lock)
        fcntl.flock(lock, fcntl.LOCK_EX)
        # symlinks in the output root are not the host's: a symlinked
        # engagement directory and a symlinked engagement.json (both aged
        # enough, their targets outside the root) are never swept
        elsewhere = os.path.join(self.work, "elsewhere")
        os.makedirs(elsewhere)
        far = fake_engagement(elsewhere, "far", "stopped", iso_days_ago(30),
                              extra_files={"audio.wav": kb})
        os.symlink(far, os.path.join(out, "linked-dir"))
        far2 = fake_engagement(elsewhere, "far2", "stopped", iso_days_ago(25),
                               extra_files={"audio.wav": kb})
        linked_json = os.path.join(out, "linked-json")
        os.makedirs(linked_json)
        with open(os.path.join(linked_json, "audio.wav"), "wb") as f:
            f.write(kb)
        os.symlink(os.path.join(far2, "engagement.json"),
                   os.path.join(linked_json, "engagement.json"))
        # max-age 7 days takes "stale" and "old"; 250 kB for the rest takes
        # "mid" too
        h = self.host("[retention]\nmax-age-days=7\nmax-bytes=250000\n")
        for d, why in ((stale, "age"), (old, "age"), (mid, "size")):
            wait_for(lambda: engagement_json(d).get("erasure", {}).get("completed"), 30,
                     "the sweep of " + d)
            self.assertEqual(data_files(d), [])
            e = engagement_json(d)
            self.assertEqual(e["state"], "expired")
            self.assertEqual(e["erasure"]["reason"], "retention")
            dl = {x["name"]: x for x in e["deleted"]}
            self.assertEqual(dl["audio.wav"]["bytes"], len(kb))
            self.assertEqual(dl["audio.wav"]["sha256"], hashlib.sha256(kb).hexdigest())
            self.assertEqual(dl["audio.wav"]["where"], "local")
        for d in (new1, new2, live, busy, far, far2, linked_json):
            self.assertIn("audio.wav", os.listdir(d))
            self.assertNotIn("erasure", engagement_json(d))
        self.assertTrue(os.path.islink(os.path.join(out, "linked-dir")))
        self.assertTrue(os.path.islink(os.path.join(linked_json, "engagement.json")))
        text = h.metrics()
        self.assertEqual(metric(text, "zoomrtms_erasures_total", {"reason": "retention"}), 3)
        self.assertEqual(metric(text, "zoomrtms_erased_files_total", {"where": "local"}), 4)
        self.assertIn("retention: erasing old", h.read_log())


if __name__ == "__main__":
    sys.exit(run_tests(globals(), ["Upload", "StoreDown", "Crash", "Revocation",
                                  "HookTimeout", "SharedQueue", "Retention"]))
