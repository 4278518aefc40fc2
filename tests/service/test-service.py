#!/usr/bin/env python3
"""tests/service (meson suite 'service'): the installed service.

Installs the build into a DESTDIR (`meson install --destdir`), then checks what a
user gets from `meson install`: the file layout, the config that is not
overwritten, `--version`, the man pages, the generated unit (`systemd-analyze
verify` and `security --offline`), and the installed host run with the unit's
ExecStart command line as the unit would run it: paths rewritten to the DESTDIR,
the unit's Environment=, a credentials directory for LoadCredential=, a notify
socket for Type=notify (READY/STATUS/WATCHDOG/STOPPING), UMask=, and the unit's
SystemCallFilter=, MemoryDenyWriteExecute= and RestrictAddressFamilies= applied
with seccomp
(seccomp-exec.c), as the current user with temporary state and output roots.

    test-service.py TestClass [TestClass...]

Exit status: 0 passed, 1 failed, 77 (meson's "skipped") when every test ran
was skipped, which only happens without systemd-analyze.
Configure-time facts come from the environment (tests/service/meson.build).
"""
import json
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from zoomrtms_testlib import run_tests  # noqa: E402

E = os.environ
BUILD = E["ZOOMRTMS_BUILD_DIR"]
MESON = E.get("MESON", "meson")
PREFIX = E["ZOOMRTMS_PREFIX"]
BINDIR = E["ZOOMRTMS_BINDIR"]
DATADIR = E["ZOOMRTMS_DATADIR"]
SYSCONFDIR = E["ZOOMRTMS_SYSCONFDIR"]
MANDIR = E["ZOOMRTMS_MANDIR"]
PLUGINDIR = E["ZOOMRTMS_PLUGINDIR"]
UNITDIR = E["ZOOMRTMS_UNITDIR"]
SYSUSERSDIR = E["ZOOMRTMS_SYSUSERSDIR"]
TMPFILESDIR = E["ZOOMRTMS_TMPFILESDIR"]
VERSION = E["ZOOMRTMS_VERSION"]
HAVE_LIBSYSTEMD = E.get("ZOOMRTMS_HAVE_LIBSYSTEMD") == "1"
SECCOMP_EXEC = E.get("ZOOMRTMS_SECCOMP_EXEC", "")

# Test credentials: docs/protocol.md §9.3 style values, only for this test.
CREDS = {
    "zoom-client-id": "svc_test_client_id",
    "zoom-client-secret": "svc-test-client-secret-4f9c",
    "zoom-secret-token": "svc-test-secret-token-77ab",
}
SIM_ENV = {
    "ZOOM_APP_CLIENT_ID": CREDS["zoom-client-id"],
    "ZOOM_APP_CLIENT_SECRET": CREDS["zoom-client-secret"],
    "ZOOM_SECRET_TOKEN": CREDS["zoom-secret-token"],
}


def destdir_install(dest):
    """meson install --destdir @dest (no rebuild: meson test built it)."""
    r = subprocess.run([MESON, "install", "-C", BUILD, "--no-rebuild",
                        "--destdir", dest], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError("meson install failed:\n" + r.stdout + r.stderr)
    return r.stdout


def in_dest(dest, path):
    return dest + path


def parse_unit(path):
    """[Section] Key=Value with repeated keys kept in order."""
    unit, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            k, _, v = line.partition("=")
            unit.setdefault((section, k), []).append(v)
    return unit


def syscall_groups():
    out = subprocess.run(["systemd-analyze", "syscall-filter"],
                         capture_output=True, text=True).stdout
    groups, cur = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            cur = line.strip()
            groups[cur] = []
        elif cur and line.strip() and not line.strip().startswith("#"):
            groups[cur].append(line.strip())
    return groups


def expand(groups, name):
    if not name.startswith("@"):
        return {name}
    if name not in groups:
        raise AssertionError("unknown syscall group " + name)
    out = set()
    for item in groups[name]:
        out |= expand(groups, item)
    return out


def unit_syscall_allow_list(unit):
    """The allow list systemd builds from the unit's SystemCallFilter= lines:
    the first line (not ~) starts an allow list, ~ lines remove from it."""
    groups = syscall_groups()
    allow = None
    for value in unit.get(("Service", "SystemCallFilter"), []):
        deny = value.startswith("~")
        names = set()
        for item in value.lstrip("~").split():
            names |= expand(groups, item)
        if allow is None:
            if deny:
                raise AssertionError("the unit's filter should be an allow list")
            allow = names
        elif deny:
            allow -= names
        else:
            allow |= names
    return allow


class Notify:
    """The manager's end of $NOTIFY_SOCKET (sd_notify(3) datagrams)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages = []

    def wait_for(self, key, timeout):
        """Returns the first message (dict) with @key, reading until then."""
        deadline = time.monotonic() + timeout
        while True:
            for m in self.messages:
                if key in m:
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                return None
            m = dict(l.split("=", 1) for l in data.split("\n") if "=" in l)
            m["_t"] = time.monotonic()
            self.messages.append(m)

    def drain(self):
        """Reads every datagram already queued."""
        self.sock.setblocking(False)
        try:
            while True:
                data = self.sock.recv(4096).decode()
                m = dict(l.split("=", 1) for l in data.split("\n") if "=" in l)
                m["_t"] = time.monotonic()
                self.messages.append(m)
        except BlockingIOError:
            pass
        finally:
            self.sock.setblocking(True)

    def count(self, key):
        return sum(1 for m in self.messages if key in m)

    def close(self):
        self.sock.close()


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


class Installed(unittest.TestCase):
    """Each test class gets its own DESTDIR install."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="zoomrtms-service-")
        cls.dest = os.path.join(cls.tmp, "dest")
        cls.install_log = destdir_install(cls.dest)
        cls.unit_path = in_dest(cls.dest, UNITDIR + "/zoomrtms-host.service")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def d(self, path):
        return in_dest(self.dest, path)


class Layout(Installed):
    def test_files_where_systemd_gstreamer_and_man_find_them(self):
        expect = {
            BINDIR + "/zoomrtms-host": 0o755,
            BINDIR + "/zoomrtms-sim": 0o755,
            PLUGINDIR + "/libgstzoomrtms.so": None,
            UNITDIR + "/zoomrtms-host.service": 0o644,
            SYSUSERSDIR + "/zoomrtms.conf": 0o644,
            TMPFILESDIR + "/zoomrtms.conf": 0o644,
            SYSCONFDIR + "/zoomrtms/host.conf": None,
            DATADIR + "/zoomrtms/zoomrtms-host.conf.example": 0o644,
            DATADIR + "/zoomrtms/default-call.conf": 0o644,
            DATADIR + "/zoomrtms/pipelines/record-wav.pipeline": 0o644,
            MANDIR + "/man1/zoomrtms-host.1": 0o644,
            MANDIR + "/man1/zoomrtms-sim.1": 0o644,
        }
        for path, mode in expect.items():
            with self.subTest(path=path):
                st = os.stat(self.d(path))
                self.assertTrue(stat.S_ISREG(st.st_mode))
                if mode is not None:
                    self.assertEqual(stat.S_IMODE(st.st_mode), mode, path)
        # host.conf carries no secret but may get one ([http] api-token):
        # never world-writable, never executable
        m = stat.S_IMODE(os.stat(self.d(SYSCONFDIR + "/zoomrtms/host.conf")).st_mode)
        self.assertIn(m, (0o640, 0o644))
        # the unit and sysusers/tmpfiles go where this systemd reads them
        if PREFIX in ("/usr", "/usr/local"):
            self.assertEqual(UNITDIR, PREFIX + "/lib/systemd/system")
            self.assertEqual(SYSUSERSDIR, PREFIX + "/lib/sysusers.d")
            self.assertEqual(TMPFILESDIR, PREFIX + "/lib/tmpfiles.d")

    def test_generated_files_use_the_prefix_not_the_build(self):
        for path in (UNITDIR + "/zoomrtms-host.service",
                     SYSCONFDIR + "/zoomrtms/host.conf",
                     MANDIR + "/man1/zoomrtms-host.1"):
            with self.subTest(path=path), open(self.d(path)) as f:
                text = f.read()
                self.assertNotIn(BUILD, text)
                self.assertNotIn(self.dest, text)
                self.assertNotRegex(text, r"@[A-Z_]+@", "an unsubstituted @VAR@")
        unit = parse_unit(self.unit_path)
        argv = shlex.split(unit[("Service", "ExecStart")][0])
        self.assertEqual(argv[0], BINDIR + "/zoomrtms-host")
        self.assertEqual(argv[1:], ["--config", SYSCONFDIR + "/zoomrtms/host.conf"])
        with open(self.d(SYSCONFDIR + "/zoomrtms/host.conf")) as f:
            conf = f.read()
        self.assertIn("\npipeline-dir=" + DATADIR + "/zoomrtms/pipelines\n", conf)
        self.assertIn("\noutput-root=/var/lib/zoomrtms/recordings\n", conf)
        # the recordings directory of host.conf is the one tmpfiles.d makes 0750
        with open(self.d(TMPFILESDIR + "/zoomrtms.conf")) as f:
            tmpfiles = [l.split() for l in f if l.strip() and not l.startswith("#")]
        self.assertIn(["d", "/var/lib/zoomrtms/recordings", "0750", "zoomrtms",
                       "zoomrtms", "-"], tmpfiles)
        self.assertIn(["d", "/var/lib/zoomrtms", "0750", "zoomrtms", "zoomrtms", "-"],
                      tmpfiles)
        with open(self.d(SYSUSERSDIR + "/zoomrtms.conf")) as f:
            users = [shlex.split(l) for l in f if l.strip() and not l.startswith("#")]
        self.assertEqual(users, [["u", "zoomrtms", "-", "zoomrtms-host RTMS recorder",
                                  "/var/lib/zoomrtms"]])
        self.assertEqual(unit[("Service", "User")], ["zoomrtms"])

    def test_sysusers_and_tmpfiles_make_the_user_and_directories(self):
        """systemd-sysusers and systemd-tmpfiles (what install-config.sh runs
        as root) applied to an empty root directory."""
        need_systemd_analyze(self)
        if os.geteuid() != 0:
            self.skipTest("systemd-tmpfiles --root chowns: needs root")
        root = os.path.join(self.tmp, "root")
        os.makedirs(os.path.join(root, "etc"))
        r = subprocess.run(["systemd-sysusers", "--root", root,
                            self.d(SYSUSERSDIR + "/zoomrtms.conf")],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(root, "etc/passwd")) as f:
            users = [l.strip().split(":") for l in f]
        (user,) = [u for u in users if u[0] == "zoomrtms"]
        self.assertEqual(user[5:], ["/var/lib/zoomrtms", "/usr/sbin/nologin"])
        self.assertLess(int(user[2]), 1000, "a system user")
        r = subprocess.run(["systemd-tmpfiles", "--root", root, "--create",
                            self.d(TMPFILESDIR + "/zoomrtms.conf")],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        for d in ("var/lib/zoomrtms", "var/lib/zoomrtms/recordings"):
            st = os.stat(os.path.join(root, d))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o750, d)
            self.assertEqual(st.st_uid, int(user[2]), d)
            self.assertEqual(st.st_gid, int(user[3]), d)

    def test_existing_config_is_kept_on_reinstall(self):
        conf = self.d(SYSCONFDIR + "/zoomrtms/host.conf")
        with open(conf, "a") as f:
            f.write("\n# edited by the operator\n")
        with open(conf) as f:
            edited = f.read()
        destdir_install(self.dest)
        with open(conf) as f:
            self.assertEqual(f.read(), edited)
        os.remove(conf)
        destdir_install(self.dest)
        with open(conf) as f, open(self.d(DATADIR + "/zoomrtms/zoomrtms-host.conf.example")) as g:
            self.assertEqual(f.read(), g.read())

    def test_version(self):
        for prog in ("zoomrtms-host", "zoomrtms-sim"):
            with self.subTest(prog=prog):
                r = subprocess.run([self.d(BINDIR + "/" + prog), "--version"],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout, "%s %s\n" % (prog, VERSION))

    def test_man_pages_render_without_warnings_and_list_every_option(self):
        if not shutil.which("man"):
            self.fail("man not found (man-db; tools/setup-debian.sh installs it)")
        for prog in ("zoomrtms-host", "zoomrtms-sim"):
            with self.subTest(prog=prog):
                page = self.d(MANDIR + "/man1/%s.1" % prog)
                r = subprocess.run(["man", "--warnings", "-l", page],
                                   capture_output=True, text=True,
                                   env=dict(E, MANWIDTH="80", MAN_KEEP_FORMATTING="0"))
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stderr, "", "groff warnings")
                text = re.sub(r".\x08", "", r.stdout)
                self.assertIn("NAME", text)
                self.assertIn(VERSION, text)
                # every long option of --help is documented
                h = subprocess.run([self.d(BINDIR + "/" + prog), "--help"],
                                   capture_output=True, text=True, timeout=30)
                opts = set(re.findall(r"^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)", h.stdout, re.M))
                opts -= {"--help", "--help-all", "--help-gst"}
                self.assertGreater(len(opts), 5)
                flat = text.replace("\u2010", "-").replace("\u2011", "-")
                flat = re.sub(r"-\n\s*", "-", flat)
                for o in sorted(opts):
                    self.assertRegex(flat, re.escape(o) + r"\b", "%s(1) lacks %s" % (prog, o))


def need_systemd_analyze(test):
    if not shutil.which("systemd-analyze"):
        raise unittest.SkipTest("systemd-analyze not found (Debian package systemd)")


class Unit(Installed):
    def setUp(self):
        need_systemd_analyze(self)

    def test_verify(self):
        """systemd-analyze verify on the unit, its ExecStart pointed at the
        DESTDIR binary (verify checks it is executable) and MANPATH at the
        DESTDIR man pages (verify runs man for Documentation=man:…)."""
        vdir = os.path.join(self.tmp, "verify")
        os.makedirs(vdir, exist_ok=True)
        with open(self.unit_path) as f:
            text = f.read()
        self.assertIn("ExecStart=" + BINDIR + "/zoomrtms-host ", text)
        text = text.replace("ExecStart=" + BINDIR, "ExecStart=" + self.d(BINDIR))
        path = os.path.join(vdir, "zoomrtms-host.service")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run(["systemd-analyze", "verify", "--man=yes", path],
                           capture_output=True, text=True,
                           env=dict(E, MANPATH=self.d(MANDIR)))
        self.assertEqual(r.returncode, 0, r.stderr)
        # verify exits 0 on settings it ignores; they are printed
        self.assertEqual(r.stdout + r.stderr, "")
        # and it does complain when it should (the check can fail)
        with open(path, "w") as f:
            f.write(text.replace("ProtectHome=yes", "ProtectHome=bogus"))
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", path],
                           capture_output=True, text=True)
        self.assertIn("bogus", r.stdout + r.stderr)

    def test_security_exposure_at_most_3(self):
        r = subprocess.run(["systemd-analyze", "security", "--offline=true",
                            "--no-pager", self.unit_path],
                           capture_output=True, text=True)
        m = re.search(r"Overall exposure level for zoomrtms-host\.service: ([0-9.]+) (\w+)",
                      r.stdout)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        print("systemd-analyze security: %s %s" % (m.group(1), m.group(2)))
        self.assertLessEqual(float(m.group(1)), 3.0, r.stdout)

    def test_hardening_settings(self):
        unit = parse_unit(self.unit_path)
        s = lambda k: unit.get(("Service", k), [None])[-1]
        self.assertEqual(s("Type"), "notify" if HAVE_LIBSYSTEMD else "simple")
        if HAVE_LIBSYSTEMD:
            self.assertIsNotNone(s("WatchdogSec"))
        for k, v in {"NoNewPrivileges": "yes", "ProtectSystem": "strict",
                     "PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectHome": "yes",
                     "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
                     "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes",
                     "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
                     "RestrictNamespaces": "yes", "LockPersonality": "yes",
                     "MemoryDenyWriteExecute": "yes",
                     "SystemCallArchitectures": "native", "CapabilityBoundingSet": "",
                     "UMask": "0027", "LimitNOFILE": "65536", "Restart": "on-failure",
                     "RestartPreventExitStatus": "2", "StateDirectory": "zoomrtms"}.items():
            with self.subTest(key=k):
                self.assertEqual(s(k), v)
        self.assertEqual(unit[("Service", "SystemCallFilter")][0], "@system-service")
        self.assertEqual(sorted(unit[("Service", "LoadCredential")]),
                         ["zoom-client-id", "zoom-client-secret", "zoom-secret-token"])
        # systemctl reload: SIGHUP re-reads the configuration and pipelines
        self.assertEqual(unit[("Service", "ExecReload")], ["/bin/kill -HUP $MAINPID"])


class Run(Installed):
    """The installed host, started like the unit starts it."""

    def setUp(self):
        need_systemd_analyze(self)
        if os.environ.get("ZOOMRTMS_SANITIZE", "none") != "none":
            # the ASan runtime maps its shadow memory and calls what the
            # unit's SystemCallFilter/MemoryDenyWriteExecute forbid (the
            # probe aborts): these run in the normal build (tools/test.sh)
            self.skipTest("unit sandbox not applicable to a sanitizer build")
        self.assertTrue(SECCOMP_EXEC, "seccomp-exec not built: libseccomp-dev is "
                        "missing (tools/setup-debian.sh installs it)")
        self.unit = parse_unit(self.unit_path)
        self.work = tempfile.mkdtemp(dir=self.tmp)
        self.state = os.path.join(self.work, "state")     # %S
        self.cache = os.path.join(self.work, "cache")     # %C
        self.home = os.path.join(self.state, "zoomrtms")  # the user's home
        for d in (self.home, os.path.join(self.cache, "zoomrtms")):
            os.makedirs(d, mode=0o750)
        self.creds = os.path.join(self.work, "credentials")
        os.makedirs(self.creds, mode=0o700)
        for name, value in CREDS.items():
            with open(os.path.join(self.creds, name), "w") as f:
                f.write(value + "\n")
        self.allow_file = os.path.join(self.work, "syscalls.allow")
        with open(self.allow_file, "w") as f:
            f.write("\n".join(sorted(unit_syscall_allow_list(self.unit))) + "\n")
        self.families = self.unit[("Service", "RestrictAddressFamilies")][-1]
        probe = subprocess.run([SECCOMP_EXEC, "--probe", "--mdwe",
                                "--families", self.families,
                                "--allow-file", self.allow_file],
                               capture_output=True, text=True)
        self.assertEqual(probe.returncode, 0, "seccomp rules do not bite: " + probe.stdout)
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    def spec(self, s):
        return s.replace("%S", self.state).replace("%C", self.cache)

    def rewrite_config(self, extra=""):
        """The installed host.conf with the DESTDIR's paths, a free port and
        the temporary state directory."""
        conf = self.d(SYSCONFDIR + "/zoomrtms/host.conf")
        with open(self.d(DATADIR + "/zoomrtms/zoomrtms-host.conf.example")) as f:
            text = f.read()          # what host.conf was installed from
        text = text.replace("pipeline-dir=" + DATADIR, "pipeline-dir=" + self.d(DATADIR))
        text = text.replace("/var/lib/zoomrtms", self.home)
        text, n = re.subn(r"(\[server\][^\[]*?\n)port=\d+\n", r"\1port=0\n", text)
        self.assertEqual(n, 1, "no [server] port= in host.conf")
        with open(conf, "w") as f:
            f.write(text + extra)

    def start_host(self, name, pipeline_dir=None, extra=()):
        argv = shlex.split(self.unit[("Service", "ExecStart")][0])
        argv = [self.d(a) if a.startswith(PREFIX + "/") or a.startswith(SYSCONFDIR + "/")
                else a for a in argv]
        if pipeline_dir:
            argv += ["--pipeline-dir", pipeline_dir]
        argv += list(extra)
        env = {k: v for k, v in E.items()
               if not k.startswith("ZOOM_") and k not in ("PORT", "GST_REGISTRY_1_0")}
        for assignment in self.unit.get(("Service", "Environment"), []):
            for kv in shlex.split(assignment):
                k, _, v = kv.partition("=")
                env[k] = self.spec(v)
        self.assertEqual(env.get("GST_REGISTRY_1_0"),
                         self.cache + "/zoomrtms/gstreamer-registry.bin")
        env.update({
            "HOME": self.home,
            "CREDENTIALS_DIRECTORY": self.creds,
            # the DESTDIR's plugin: the host's own fallback looks at PLUGINDIR,
            # which is not the DESTDIR (tested in MissingPlugin)
            "GST_PLUGIN_PATH_1_0": self.d(PLUGINDIR),
            "G_DEBUG": "fatal-criticals",
        })
        wd = self.spec(self.unit[("Service", "WorkingDirectory")][0])
        self.assertEqual(wd, self.home)
        notify = None
        if HAVE_LIBSYSTEMD:
            notify = Notify(os.path.join(self.work, name + ".notify"))
            env["NOTIFY_SOCKET"] = notify.path
            env["WATCHDOG_USEC"] = "400000"   # pings every 200 ms
        umask = int(self.unit[("Service", "UMask")][0], 8)
        log = open(os.path.join(self.work, name + ".log"), "w+")
        cmd = [SECCOMP_EXEC, "--allow-file", self.allow_file, "--families", self.families]
        if self.unit[("Service", "MemoryDenyWriteExecute")] == ["yes"]:
            cmd.append("--mdwe")
        p = subprocess.Popen(cmd + ["--"] + argv, cwd=wd, env=env, stdout=log,
                             stderr=subprocess.STDOUT, preexec_fn=lambda: os.umask(umask))
        self.procs.append(p)
        return p, notify, log

    def wait_port(self, p, notify, log):
        if notify:
            deadline = time.monotonic() + 30
            ready = None
            while ready is None and p.poll() is None and time.monotonic() < deadline:
                ready = notify.wait_for("READY", 0.5)
            self.assertIsNotNone(ready, "no READY=1: " + self.read(log))
            m = re.match(r"listening on 127\.0\.0\.1:(\d+)$", ready.get("STATUS", ""))
            self.assertIsNotNone(m, ready)
            port = int(m.group(1))
        else:
            deadline = time.monotonic() + 30
            port = None
            while port is None and time.monotonic() < deadline and p.poll() is None:
                m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.read(log))
                port = int(m.group(1)) if m else time.sleep(0.1)
            self.assertIsNotNone(port, self.read(log))
        return port

    @staticmethod
    def read(log):
        log.flush()
        with open(log.name) as f:
            return f.read()

    def sim(self, *args, timeout=120):
        r = subprocess.run([self.d(BINDIR + "/zoomrtms-sim")] + list(args),
                           capture_output=True, text=True, timeout=timeout,
                           cwd=self.work, env=dict(E, **SIM_ENV))
        return r

    def test_execstart_serves_records_and_stops(self):
        self.rewrite_config()
        p, notify, log = self.start_host("host")
        port = self.wait_port(p, notify, log)
        base = "http://127.0.0.1:%d" % port
        status, body = http_get(base + "/health")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["status"], "ok")
        if notify:
            first = notify.wait_for("WATCHDOG", 5)
            self.assertIsNotNone(first, "no WATCHDOG=1 with WATCHDOG_USEC set")
            time.sleep(1.0)
            notify.drain()
            self.assertGreaterEqual(notify.count("WATCHDOG"), 3)
            self.assertEqual(notify.count("STOPPING"), 0)
        # the secrets came from the credentials directory: the sim signs
        # with them and the host accepts; a wrong token is refused
        r = self.sim("validate", "--webhook-url", base + "/webhook")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = self.sim("webhook", "--webhook-url", base + "/webhook", "--event", "stopped",
                     "--engagement-id", "x", "--rtms-stream-id", "y", "--bad-signature")
        self.assertNotEqual(r.returncode, 0)
        # a call, recorded by the shipped default pipeline
        dump = os.path.join(self.work, "dump")
        r = self.sim("run", "--webhook-url", base + "/webhook", "--speed", "0",
                     "--dump-dir", dump, "--call", self.d(DATADIR + "/zoomrtms/default-call.conf"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        deadline = time.monotonic() + 30
        while json.loads(http_get(base + "/health")[1])["activeEngagements"] and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        out = os.path.join(self.home, "recordings")
        # ".state": the journal of live engagements (no $STATE_DIRECTORY here)
        dirs = [d for d in os.listdir(out) if d != ".state"]
        self.assertEqual(len(dirs), 1, dirs)
        eng = os.path.join(out, dirs[0])
        wav = os.path.join(eng, "audio.wav")
        self.assertGreater(os.path.getsize(wav), 44 + 16000 * 2 * 2)
        # UMask=0027: nothing for "other" in what the host wrote
        for root, ds, fs in os.walk(out):
            for n in ds + fs + ["."]:
                try:
                    m = stat.S_IMODE(os.stat(os.path.join(root, n)).st_mode)
                except FileNotFoundError:
                    continue    # unlinked meanwhile (the journal's entry of the call)
                self.assertEqual(m & 0o007, 0, "%s is %o" % (os.path.join(root, n), m))
        with open(os.path.join(eng, "engagement.json")) as f:
            self.assertIn("stop", f.read())
        # SIGTERM: STOPPING=1, exit 0
        p.send_signal(signal.SIGTERM)
        if notify:
            self.assertIsNotNone(notify.wait_for("STOPPING", 15), "no STOPPING=1")
        self.assertEqual(p.wait(30), 0, self.read(log))
        text = self.read(log)
        for value in CREDS.values():
            self.assertNotIn(value, text, "a secret in the log")
        self.assertIn("secret from systemd credential zoom-secret-token", text)
        if notify:
            notify.close()

    def test_orc_jit_under_memory_deny_write_execute(self):
        """GStreamer's orc compiles code under the unit's MDWE rules: its code
        is mapped r-x from a second (shared) mapping, never W+X. A pipeline
        with conversions that orc compiles records a call; the host's
        /proc/PID/maps shows the executable orc mapping."""
        if self.unit[("Service", "MemoryDenyWriteExecute")] != ["yes"]:
            self.skipTest("the unit does not set MemoryDenyWriteExecute=yes")
        pdir = os.path.join(self.work, "pipelines")
        shutil.copytree(self.d(DATADIR + "/zoomrtms/pipelines"), pdir)
        with open(os.path.join(pdir, "orc-convert.pipeline"), "w") as f:
            f.write("zoomrtmssrc name=src layout=stereo ! audioconvert ! "
                    "audio/x-raw,format=F32LE ! volume volume=0.5 ! audioconvert ! "
                    "audio/x-raw,format=S16LE ! wavenc ! "
                    "filesink location=${OUTPUT_DIR}/audio.wav\n")
        self.rewrite_config()
        conf = self.d(SYSCONFDIR + "/zoomrtms/host.conf")
        with open(conf) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(re.sub(r"(?m)^default-pipeline=.*$", "default-pipeline=orc-convert", text))
        p, notify, log = self.start_host("orc", pipeline_dir=pdir)
        port = self.wait_port(p, notify, log)
        base = "http://127.0.0.1:%d" % port
        r = self.sim("run", "--webhook-url", base + "/webhook", "--speed", "0",
                     "--call", self.d(DATADIR + "/zoomrtms/default-call.conf"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        deadline = time.monotonic() + 30
        while json.loads(http_get(base + "/health")[1])["activeEngagements"] and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        with open("/proc/%d/maps" % p.pid) as f:
            maps = [l.split() for l in f if "orcexec" in l]
        perms = sorted(m[1] for m in maps)
        self.assertIn("r-xs", perms, "orc compiled nothing")
        self.assertNotIn("rwxs", perms)
        self.assertNotIn("rwxp", perms)
        out = os.path.join(self.home, "recordings")
        (eng,) = [d for d in os.listdir(out) if d != ".state"]
        self.assertGreater(os.path.getsize(os.path.join(out, eng, "audio.wav")),
                           44 + 16000 * 2 * 2)
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(30), 0, self.read(log))


    def test_check_passes_the_installed_config_and_fails_a_misspelled_group(self):
        """`zoomrtms-host --check` with the unit's command line (sandbox
        included): the installed configuration and pipelines pass with a
        summary; a misspelled group fails with its file and line."""
        self.rewrite_config()
        p, _, log = self.start_host("check", extra=["--check"])
        self.assertEqual(p.wait(60), 0, self.read(log))
        out = self.read(log)
        self.assertIn("configuration %s: ok" % self.d(SYSCONFDIR + "/zoomrtms/host.conf"), out)
        self.assertIn("pipeline record-wav (%s/zoomrtms/pipelines/record-wav.pipeline): ok"
                      % self.d(DATADIR), out)
        self.assertRegex(out, r"check passed: \d+ pipeline\(s\), default record-wav")
        self.rewrite_config(extra="\n[limit]\nmax-engagements=1\n")
        conf = self.d(SYSCONFDIR + "/zoomrtms/host.conf")
        with open(conf) as f:
            line = f.read().split("\n").index("[limit]") + 1
        p, _, log = self.start_host("check-bad", extra=["--check"])
        self.assertEqual(p.wait(60), 2, self.read(log))
        self.assertIn("%s:%d: unknown group [limit], its keys are ignored (did you mean "
                      "[limits]?)" % (conf, line), self.read(log))


class MissingPlugin(Installed):
    def test_reported_as_a_missing_plugin(self):
        real = os.path.join(PLUGINDIR, "libgstzoomrtms.so")
        if os.path.exists(real):
            self.skipTest("%s is installed on this machine: the host would find it" % real)
        work = tempfile.mkdtemp(dir=self.tmp)
        empty = os.path.join(work, "no-plugins")
        os.makedirs(empty)
        env = {k: v for k, v in E.items() if not k.startswith("GST_PLUGIN_PATH")}
        env.update(SIM_ENV)
        # nothing from GStreamer's paths: only the host's own fallback,
        # PLUGINDIR, could provide zoomrtmssrc
        env.update({"GST_PLUGIN_PATH_1_0": empty, "GST_PLUGIN_SYSTEM_PATH_1_0": empty,
                    "GST_REGISTRY_1_0": os.path.join(work, "registry.bin")})
        r = subprocess.run([self.d(BINDIR + "/zoomrtms-host"), "--port", "0",
                            "--output-root", os.path.join(work, "out"),
                            "--pipeline-dir", self.d(DATADIR + "/zoomrtms/pipelines")],
                           capture_output=True, text=True, env=env, cwd=work, timeout=60)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("GStreamer element zoomrtmssrc not found: is the zoomrtms plugin "
                      "installed in %s?" % PLUGINDIR, r.stderr)
        self.assertNotIn("broken pipeline template", r.stderr)
        # with the plugin found, the same command starts
        env["GST_PLUGIN_PATH_1_0"] = self.d(PLUGINDIR)
        del env["GST_PLUGIN_SYSTEM_PATH_1_0"]
        env["GST_REGISTRY_1_0"] = os.path.join(work, "registry2.bin")
        p = subprocess.Popen([self.d(BINDIR + "/zoomrtms-host"), "--port", "0",
                              "--output-root", os.path.join(work, "out"),
                              "--ready-file", os.path.join(work, "ready.json"),
                              "--pipeline-dir", self.d(DATADIR + "/zoomrtms/pipelines")],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=work)
        try:
            deadline = time.monotonic() + 30
            while not os.path.exists(os.path.join(work, "ready.json")) and \
                    p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertTrue(os.path.exists(os.path.join(work, "ready.json")))
        finally:
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(30), 0)


def main():
    return run_tests(globals(), ["Layout", "Unit", "Run", "MissingPlugin"])


if __name__ == "__main__":
    sys.exit(main())
