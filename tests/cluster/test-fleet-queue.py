#!/usr/bin/env python3
"""tests/cluster (meson suite 'cluster'): the after-call queue of a fleet
(issue 13 in fleet mode, src/host/host-actions.h "Ownership").

Hosts in fleet mode (a real redis-server on loopback, fleet_harness.py) share
the output root and so the queue directory (<output root>/.state/actions).
6 calls on 2 hosts of capacity 3; an exec hook, 4 s, appends "start DIR PID"
and "end DIR PID TIME" lines to a file. While the hooks run, the host running
one is SIGKILLed and a third host starts. The killed host's hook dies with it
(PR_SET_PDEATHSIG: it never writes its "end" after the kill), and every
engagement's hook ends exactly once — the killed node's jobs run again on one
node, the live node's jobs on it alone — except the hook of the killed node,
which may have ended just before the kill (before its node recorded it): a
hook runs at least once.

    test-fleet-queue.py [TestClass...]
"""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fleet_harness as fh  # noqa: E402


def parent_of(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


class FleetQueue(fh.FleetTestCase):
    tmp_prefix = "zoomrtms-fleetqueue-"

    def clean_up(self):
        # nothing of the hooks outlives the test (each is its own process
        # group: the sh, and the sleep it started)
        for r in self.runs():
            if r[0] == "start":
                pid = int(r[2])
                # the hook's process group (it leads it): its sleep outlives
                # a dead leader, whose getpgid() would fail
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def runs(self):
        try:
            with open(getattr(self, "runs_file", "")) as f:
                return [line.split() for line in f if line.strip()]
        except OSError:
            return []

    def test_each_hook_ends_once_across_a_kill_and_a_new_node(self):
        self.fleet = fh.Fleet(self.tmp, hosts=0, capacity=3, lease_ms=3000)
        self.runs_file = os.path.join(self.tmp, "hook-runs.txt")
        with open(self.fleet.conf, "a") as f:
            f.write("[actions]\nexec=/bin/sh -c 'echo start \"$ZOOMRTMS_ENGAGEMENT_DIR\" $$ "
                    ">> %s; sleep 4; echo end \"$ZOOMRTMS_ENGAGEMENT_DIR\" $$ "
                    "$(date +%%s.%%N) >> %s'\n"
                    "exec-timeout-s=60\n" % (self.runs_file, self.runs_file))
        self.fleet.start_host("h0")
        self.fleet.start_host("h1")
        streams = self.fleet.run_sim(6, 3, ["--speed", "1"])
        self.assertEqual(len(streams), 6)
        self.assertEqual(self.fleet.sim.wait(120), 0, self.logs())
        # a hook of h0 runs (its other jobs wait: one worker per node)
        h0 = self.fleet.hosts["h0"].pid

        def h0_hook():
            for r in self.runs():
                if r[0] == "start" and parent_of(int(r[2])) == h0:
                    return int(r[2])
            return None
        hook = fh.wait_for(h0_hook, 90)
        self.assertTrue(hook, "no hook of h0 ran\n" + self.logs())
        killed_at = time.time()
        self.fleet.kill("h0", signal.SIGKILL)
        self.fleet.hosts["h0"].wait(10)

        # the hook dies with its node (no killpg here: PR_SET_PDEATHSIG)
        def hook_gone():
            try:
                with open("/proc/%d/stat" % hook) as f:
                    return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
            except OSError:
                return True
        self.assertTrue(fh.wait_for(hook_gone, 30), "the killed node's hook still runs")
        # a new node starts while h1's hooks still run
        self.fleet.start_host("h2")
        dirs = [d for ds in fh.engagement_dirs(self.fleet.out).values() for d in ds]
        self.assertEqual(len(dirs), 6)

        def all_done():
            for d in dirs:
                with open(os.path.join(d, "engagement.json")) as f:
                    a = json.load(f).get("actions") or {}
                if a.get("state") != "done":
                    return False
            return True
        ok = fh.wait_for(all_done, 120, step=0.5)
        self.assertTrue(ok, json.dumps(self.runs()) + self.logs())
        ends = {}
        hook_dir, hook_ended = None, False
        for r in self.runs():
            if r[0] == "start" and int(r[2]) == hook:
                hook_dir = os.path.basename(r[1])
            if r[0] == "end":
                ends[os.path.basename(r[1])] = ends.get(os.path.basename(r[1]), 0) + 1
                if int(r[2]) == hook:
                    # killed with its node: no end written after the kill
                    self.assertLess(float(r[3]), killed_at, json.dumps(self.runs()))
                    hook_ended = True
        want = {os.path.basename(d): 1 for d in dirs}
        if hook_ended and ends.get(hook_dir) == 2:
            # it ended just before the kill, its node had not recorded it:
            # run again by the adopter (at least once)
            want[hook_dir] = 2
        self.assertEqual(ends, want, json.dumps(self.runs()) + self.logs())
        # h0's jobs were taken up by h2 at its start or adopted by h1's scan
        logs = self.fleet.log("h1") + self.fleet.log("h2")
        taken = logs.count("taken up again") + logs.count("adopted from a node that stopped")
        starts = sum(1 for r in self.runs() if r[0] == "start")
        print("[ FIGURE ] hook runs started %d, ended %d; jobs of the killed node taken "
              "up %d" % (starts, sum(ends.values()), taken))
        self.assertGreaterEqual(taken, 1, self.logs())
        self.assertLessEqual(taken, 3, self.logs())
        # the queue is empty: no job, no lock
        q = os.path.join(self.fleet.out, ".state", "actions")
        # (a finished job's files go right after its final view is written)

        def queue_left():
            return [n for n in os.listdir(q) if n != "sweep.retention.lock"]
        fh.wait_for(lambda: not queue_left(), 30)
        self.assertEqual(queue_left(), [])


if __name__ == "__main__":
    fh.main(__name__)
