#!/usr/bin/env python3
"""Fleet benchmark (issue 10): 3 zoomrtms-host processes in cluster mode on a
redis-server, behind a round-robin proxy, zoomrtms-sim sending every webhook
twice. Per run: one host SIGKILLed, then another SIGTERMed (drain), mid-call.

Figures (p50 / p99 / max over every engagement of every run):
  dispatch        start webhook queued → claimed by a host (host logs)
  claim→stream    claimed → the sim streams (signaling + media handshakes
                  done: the sim's started_ms)
  takeover        SIGKILL → another host took the engagement over (its log)
  gap (takeover)  how long the sim's stream had no consumer after a SIGKILL
                  (the sim's sent.json gaps: the silence in the recording)
  gap (hand-off)  the same after a drain (SIGTERM)
  lost            samples per channel that differ from what the sim sent

    python3 bench/fleet.py --build-dir build --runs 3 [--engagements 12]
        [--duration 24] [--lease-ms 3000] [--json out.json]

Everything listens on 127.0.0.1; each run stops by itself.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def pct(v, p):
    if not v:
        return float("nan")
    v = sorted(v)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


def one_run(fh, args, tmp, figs):
    fleet = fh.Fleet(tmp, hosts=3, capacity=50, lease_ms=args.lease_ms)
    try:
        streams = fleet.run_sim(args.engagements, args.duration, ["--speed", "1"])
        ok = fh.wait_for(lambda: len([r for r in (fleet.engagements("h0") or {})
                                      .get("fleet", []) if r["lease"]]) == len(streams),
                         30, 0.2)
        if not ok:
            raise RuntimeError("not every engagement was claimed")
        ids = fleet.node_ids()
        time.sleep(args.duration * 0.2)
        per = {}
        for r in fleet.engagements("h0")["fleet"]:
            per.setdefault(r["owner"], []).append(r["rtms_stream_id"])
        victim = max(ids, key=lambda n: len(per.get(ids[n], [])))
        killed_sids = set(per.get(ids[victim], []))
        t_kill_ms = time.time() * 1000
        fleet.kill(victim, signal.SIGKILL)
        fleet.hosts[victim].wait(10)
        fh.wait_for(lambda: all(r["lease"] and r["owner"] != ids[victim]
                                for r in (fleet.engagements(list(fleet.ports)[0]) or {})
                                .get("fleet", [])), 30, 0.1)
        time.sleep(args.duration * 0.2)
        drained = list(fleet.ports)[0]
        per = {}
        for r in fleet.engagements(drained)["fleet"]:
            per.setdefault(r["owner"], []).append(r["rtms_stream_id"])
        drained_sids = set(per.get(ids[drained], []))
        t_term_ms = time.time() * 1000
        fleet.kill(drained, signal.SIGTERM)
        fleet.hosts[drained].wait(90)
        fleet.remove_backend(drained)
        fleet.sim.wait(180)
        fleet.idle(60)
        time.sleep(1)
        logs = "\n".join(fleet.log(n) for n in fleet.hosts)
        queued = {m.group(1): int(m.group(2)) for m in re.finditer(
            r"claimed the start of stream (\w+) \(dispatch: queued (-?\d+) ms\) at (\d+)", logs)}
        claimed_at = {m.group(1): int(m.group(3)) for m in re.finditer(
            r"claimed the start of stream (\w+) \(dispatch: queued (-?\d+) ms\) at (\d+)", logs)}
        took = {m.group(1): int(m.group(2)) for m in re.finditer(
            r"took over stream (\w+) from \S+ \(lease expired\) at (\d+)", logs)}
        figs["dispatch"] += list(queued.values())
        with open(os.path.join(tmp, "sim-summary.json")) as f:
            summary = json.load(f)
        for s in summary.get("streams", []):
            sid = s["rtms_stream_id"]
            if sid in claimed_at and s.get("started_ms", 0) > 0:
                figs["claim_to_stream"].append(s["started_ms"] - claimed_at[sid])
        for sid in killed_sids:
            if sid in took:
                figs["takeover"].append(took[sid] - t_kill_ms)
        dirs = fh.engagement_dirs(fleet.out)
        for s in streams:
            sid = s["rtms_stream_id"]
            with open(os.path.join(tmp, "sim-dump", sid, "sent.json")) as f:
                sent = json.load(f)
            for g in sent.get("gaps", []):
                if g.get("resumed_at_ms", 0) > 0:
                    gap = g["resumed_at_ms"] - g["lost_at_ms"]
                    if sid in killed_sids and g["lost_at_ms"] < t_term_ms:
                        figs["gap_takeover"].append(gap)
                    elif sid in drained_sids and g["lost_at_ms"] >= t_term_ms:
                        figs["gap_handoff"].append(gap)
            if len(dirs.get(sid, [])) != 1:
                figs["errors"].append("%s recorded %d times" % (sid, len(dirs.get(sid, []))))
                continue
            c = fh.compare(os.path.join(dirs[sid][0], "audio.wav"),
                           os.path.join(tmp, "sim-dump", sid))
            figs["lost"] += [d * 1000.0 / 16000 for d in c["differ"]]
    finally:
        fleet.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--engagements", type=int, default=12)
    ap.add_argument("--duration", type=int, default=24)
    ap.add_argument("--lease-ms", type=int, default=3000)
    ap.add_argument("--json")
    args = ap.parse_args()
    build = os.path.abspath(args.build_dir)
    os.environ["ZOOMRTMS_BUILD_DIR"] = build
    os.environ.setdefault("ZOOMRTMS_SOURCE_DIR", os.path.dirname(HERE))
    os.environ["GST_PLUGIN_PATH_1_0"] = os.path.join(build, "plugins", "zoomrtms")
    os.environ["GST_REGISTRY_1_0"] = os.path.join(build, "bench-fleet-registry.bin")
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "cluster"))
    import fleet_harness as fh
    figs = {k: [] for k in ("dispatch", "claim_to_stream", "takeover", "gap_takeover",
                            "gap_handoff", "lost", "errors")}
    for i in range(args.runs):
        tmp = tempfile.mkdtemp(prefix="zoomrtms-fleet-bench-")
        try:
            one_run(fh, args, tmp, figs)
        finally:
            if os.environ.get("KEEP_TMP"):
                print("kept", tmp, file=sys.stderr)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
        print("run %d/%d done" % (i + 1, args.runs), file=sys.stderr)
    names = {
        "dispatch": "dispatch: queued → claimed (ms)",
        "claim_to_stream": "claimed → streaming, handshakes done (ms)",
        "takeover": "SIGKILL → taken over (ms)",
        "gap_takeover": "audio gap per takeover (ms)",
        "gap_handoff": "audio gap per hand-off, drain (ms)",
        "lost": "audio lost per channel (ms)",
    }
    print("| figure | n | p50 | p99 | max |")
    print("|---|---|---|---|---|")
    for k, label in names.items():
        v = figs[k]
        print("| %s | %d | %.0f | %.0f | %.0f |" % (label, len(v), pct(v, 50), pct(v, 99),
                                                     max(v) if v else float("nan")))
    if figs["errors"]:
        print("errors:", figs["errors"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "figures": figs}, f, indent=1)
    return 1 if figs["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
