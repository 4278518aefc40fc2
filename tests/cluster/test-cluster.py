#!/usr/bin/env python3
"""tests/cluster (meson suite 'cluster'): a fleet of hosts on Redis (issue 10).

A real redis-server on a loopback port, 3 zoomrtms-host processes in cluster
mode sharing one output root, behind a round-robin TCP proxy
(fleet_harness.py), and zoomrtms-sim sending every webhook twice through the
proxy. Recordings are compared sample for sample with the sim's dump (zeros
where nothing was sent). No timed assertions: figures are printed.

    test-cluster.py [TestClass...]
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fleet_harness as fh  # noqa: E402

RATE = 16000
MAX_LOST = RATE  # ≤ 1 s of delivered audio lost per channel


class FleetCase(fh.FleetTestCase):
    tmp_prefix = "zoomrtms-cluster-"

    def check_recordings(self, streams, label):
        dirs = fh.engagement_dirs(self.fleet.out)
        for s in streams:
            sid = s["rtms_stream_id"]
            self.assertEqual(len(dirs.get(sid, [])), 1,
                             "stream %s recorded %d times\n%s" % (
                                 sid, len(dirs.get(sid, [])), self.logs()))
            d = dirs[sid][0]
            with open(os.path.join(d, "engagement.json")) as f:
                ej = json.load(f)
            self.assertEqual(ej["state"], "stopped", d)
            names = os.listdir(d)
            self.assertFalse([n for n in names if ".part" in n], names)
            c = fh.compare(os.path.join(d, "audio.wav"),
                           os.path.join(self.fleet.tmp, "sim-dump", sid))
            print("[ FIGURE ] %s: stream %s owners %s, interruptions %s, "
                  "samples differing from what was sent: customer %d, agent %d" % (
                      label, sid, [o["node"] for o in ej.get("owners", [])],
                      [(i["cause"], i["silence_ms"]) for i in ej["interruptions"]],
                      c["differ"][0], c["differ"][1]))
            self.assertLessEqual(c["differ"][0], MAX_LOST, d)
            self.assertLessEqual(c["differ"][1], MAX_LOST, d)
            self.assertLessEqual(abs(c["frames"] - c["expected_frames"]), MAX_LOST, d)
        # the fleet's journal is empty at the end
        state = os.path.join(self.fleet.out, ".state")
        left = [n for n in os.listdir(state) if n.endswith(".json") or n.endswith(".plog")]
        self.assertEqual(left, [], self.logs())


class KillAndDrain(FleetCase):
    """12 engagements, every webhook twice; one host SIGKILLed and another
    SIGTERMed (drain) mid-call: every call recorded once, to its end, ≤ 1 s
    lost per channel, the stop webhooks reach the owners."""

    def test_kill_and_drain(self):
        self.fleet = fh.Fleet(self.tmp, hosts=3, capacity=20, lease_ms=3000)
        streams = self.fleet.run_sim(12, 24, ["--speed", "1"])
        self.assertEqual(len(streams), 12)
        # every engagement owned by someone, each once
        ok = fh.wait_for(lambda: len([r for r in (self.fleet.engagements("h0") or {})
                                      .get("fleet", []) if r["lease"]]) == 12, 30, step=0.5)
        fleet = self.fleet.engagements("h0")["fleet"]
        self.assertTrue(ok, json.dumps(fleet) + self.logs())
        ids = self.fleet.node_ids()
        per_node = {}
        for r in fleet:
            per_node[r["owner"]] = per_node.get(r["owner"], 0) + 1
        print("[ FIGURE ] engagements per node after dispatch:", per_node)
        # the duplicate webhooks were dropped fleet-wide
        dups = sum(self.fleet.engagements(n)["cluster"]["duplicates"] for n in ids)
        self.assertGreaterEqual(dups, 12)
        time.sleep(4)
        victim = next(n for n in ("h1", "h0", "h2") if per_node.get(ids[n]))
        owned_by_victim = per_node.get(ids[victim], 0)
        killed = [r["rtms_stream_id"] for r in fleet if r["owner"] == ids[victim]]
        self.fleet.kill(victim, signal.SIGKILL)
        self.fleet.hosts[victim].wait(10)
        t_kill = time.monotonic()
        # its engagements are taken over by the others
        others = [n for n in self.fleet.ports]
        ok = fh.wait_for(lambda: all(
            r["lease"] and r["owner"] != ids[victim]
            for r in (self.fleet.engagements(others[0]) or {}).get("fleet", [])
            if r["state"] != "ended"), 30, step=0.2)
        print("[ FIGURE ] SIGKILL of %s (%d engagements): all taken over after %.1f s" % (
            victim, owned_by_victim, time.monotonic() - t_kill))
        self.assertTrue(ok, self.logs())
        time.sleep(3)
        drained = others[0]
        self.fleet.kill(drained, signal.SIGTERM)
        self.assertEqual(self.fleet.hosts[drained].wait(60), 0, self.logs())
        self.fleet.remove_backend(drained)
        self.assertIn("drain complete", self.fleet.log(drained))
        self.assertEqual(self.fleet.sim.wait(120), 0, self.logs())
        self.assertTrue(self.fleet.idle(40), self.logs())
        time.sleep(1)
        self.check_recordings(streams, "kill+drain")
        # the interrupted webhooks Zoom sent while the killed host's
        # engagements had no owner reached the hosts that took them over
        dirs = fh.engagement_dirs(self.fleet.out)
        for sid in killed:
            with open(os.path.join(dirs[sid][0], "events.jsonl")) as f:
                types = [json.loads(line).get("type") for line in f if line.strip()]
            self.assertIn("interrupted-webhook", types, sid)


class StopAndRedisOutage(FleetCase):
    """A DELETE sent to a host that does not own the engagement stops it;
    Redis stopped mid-run and restarted empty: no call lost, the fleet
    re-registered."""

    def test_stop_on_non_owner_and_redis_outage(self):
        self.fleet = fh.Fleet(self.tmp, hosts=3, capacity=20, lease_ms=3000)
        streams = self.fleet.run_sim(4, 32, ["--speed", "1"])
        ok = fh.wait_for(lambda: len([r for r in (self.fleet.engagements("h0") or {})
                                      .get("fleet", []) if r["lease"] and
                                      r["state"] == "live"]) == 4, 30, step=0.5)
        self.assertTrue(ok, self.logs())
        ids = self.fleet.node_ids()
        target = streams[0]["rtms_stream_id"]
        owner = self.fleet.owner_of(target)
        non_owner = next(n for n, i in ids.items() if i != owner)
        # any host shows it, with its owner and its engagement.json (once
        # that host's view of the fleet has caught up with the claim)
        got = fh.wait_for(lambda: (lambda r: r if r[0] == 200 else None)(
            fh.http("GET", self.fleet.url(non_owner, "/engagements/" + target))), 10, step=0.2)
        st, body = got or fh.http("GET", self.fleet.url(non_owner, "/engagements/" + target))
        self.assertEqual(st, 200, body)
        self.assertEqual(body.get("owner"), owner)
        self.assertEqual(body.get("engagement_id"), streams[0]["engagement_id"], body)
        st, body = fh.http("DELETE", self.fleet.url(non_owner, "/engagements/" + target))
        self.assertEqual(st, 202, body)
        self.assertEqual(body.get("forwarded_to"), owner)
        dirs = fh.wait_for(lambda: fh.engagement_dirs(self.fleet.out).get(target), 10)
        d = dirs[0]

        def stopped():
            with open(os.path.join(d, "engagement.json")) as f:
                j = json.load(f)
            return j["state"] == "stopped" and j

        ej = fh.wait_for(stopped, 20, step=0.2)
        self.assertTrue(ej, self.logs())
        self.assertEqual(ej["stop_reason"]["source"], "api")
        # a stopped webhook (reason 6, not the sim's own 21) sent straight to a
        # host that does not own the stream stops it, with that reason
        target2 = streams[1]["rtms_stream_id"]
        owner2 = self.fleet.owner_of(target2)
        non_owner2 = next(n for n, i in ids.items() if i != owner2)
        env = dict(os.environ)
        env.update(fh.CREDS)
        r = subprocess.run([fh.SIM_BIN, "webhook", "--webhook-url",
                            self.fleet.url(non_owner2, "/webhook"), "--event", "stopped",
                            "--engagement-id", streams[1]["engagement_id"],
                            "--rtms-stream-id", target2, "--stop-reason", "6"],
                           env=env, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        d2 = fh.wait_for(lambda: fh.engagement_dirs(self.fleet.out).get(target2), 10)[0]

        def stopped2():
            with open(os.path.join(d2, "engagement.json")) as f:
                j = json.load(f)
            return j["state"] == "stopped" and j

        ej2 = fh.wait_for(stopped2, 20, step=0.2)
        self.assertTrue(ej2, self.logs())
        self.assertEqual(ej2["stop_reason"]["source"], "webhook", ej2["stop_reason"])
        self.assertEqual(ej2["stop_reason"]["code"], 6)
        self.assertIn("forwarded by", self.fleet.log(
            next(n for n, i in ids.items() if i == owner2)))
        # Redis goes away for 8 s and comes back empty; 2 new calls start
        # meanwhile (every webhook twice, through the proxy)
        # and the owner of a third call is killed meanwhile
        time.sleep(1)
        target3 = streams[2]["rtms_stream_id"]
        owner3 = self.fleet.owner_of(target3)
        victim = next(n for n, i in ids.items() if i == owner3)
        self.fleet.stop_redis()
        time.sleep(1)
        self.fleet.kill(victim, signal.SIGKILL)
        self.fleet.hosts[victim].wait(10)
        streams2 = self.fleet.run_sim(2, 16, ["--speed", "1"], name="sim2")
        time.sleep(7)
        self.fleet.start_redis()
        # every live call re-registered by its owner, the killed host's
        # taken over from the shared journal
        survivor = next(n for n in self.fleet.ports)
        ok = fh.wait_for(lambda: len([r for r in (self.fleet.engagements(survivor) or {})
                                      .get("fleet", []) if r["lease"] and
                                      r["owner"] != owner3]) == 4, 40, step=0.5)
        self.assertTrue(ok, json.dumps(self.fleet.engagements(survivor)) + self.logs())
        self.assertEqual(self.fleet.sim.wait(120), 0, self.logs())
        self.assertEqual(self.fleet.extra_sims[0].wait(120), 0, self.logs())
        self.assertTrue(self.fleet.idle(40), self.logs())
        time.sleep(1)
        self.check_recordings(streams2, "started while Redis was down")
        # the stopped one ends early (shorter than the dump): checked above
        self.check_recordings([s for s in streams if s["rtms_stream_id"] not in
                               (target, target2)], "redis-outage")


class Capacity(FleetCase):
    """2 hosts of capacity 2 and 5 calls: no host ever owns more than 2, the
    fifth start waits in the queue (not refused) until a call ends, and every
    call is recorded whole."""

    def test_capacity(self):
        self.fleet = fh.Fleet(self.tmp, hosts=2, capacity=2, lease_ms=3000)
        streams = self.fleet.run_sim(5, 8, ["--speed", "1", "--connect-timeout", "60"])
        most = 0
        seen = set()
        end = time.monotonic() + 90
        while self.fleet.sim.poll() is None and time.monotonic() < end:
            d = self.fleet.engagements("h0") or {}
            per = {}
            for r in d.get("fleet", []):
                if r["lease"]:
                    per[r["owner"]] = per.get(r["owner"], 0) + 1
                    seen.add(r["rtms_stream_id"])
            most = max([most] + list(per.values()))
            for n in self.fleet.ports:
                st, h = fh.http("GET", self.fleet.url(n, "/health"))
                if st == 200:
                    most = max(most, h["activeEngagements"])
            time.sleep(0.2)
        print("[ FIGURE ] capacity 2: most engagements on one host %d, streams seen "
              "owned %d" % (most, len(seen)))
        self.assertEqual(self.fleet.sim.wait(60), 0, self.logs())
        self.assertLessEqual(most, 2, self.logs())
        self.assertTrue(self.fleet.idle(40), self.logs())
        time.sleep(1)
        self.check_recordings(streams, "capacity")
        # the fifth waited in the queue: claimed after a call ended
        logs = "\n".join(self.fleet.log(n) for n in self.fleet.hosts)
        waits = [int(m) for m in re.findall(r"dispatch: queued (\d+) ms", logs)]
        self.assertEqual(len(waits), 5, logs)
        self.assertGreater(max(waits), 4000, waits)


if __name__ == "__main__":
    fh.main(__name__)
