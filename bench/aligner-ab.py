#!/usr/bin/env python3
"""The Aligner's CPU per packet: this tree's against a git revision's, in one
process (issue 12; docs/benchmarks.md "Aligner and element per packet").

Compiles bench/aligner-ab.cpp twice, once with plugins/zoomrtms/
zoomrtms-aligner.cpp as it is and once with that file (and its header) of
REV, its namespace renamed (-Dzoomrtms=zoomrtms_base), with the project's
flags (-O2 -g, as meson's debugoptimized), and runs them in turn:

    python3 bench/aligner-ab.py [--rev REV]     # REV: default main
    python3 bench/aligner-ab.py --diff [N]      # N random scenarios (20000)

Prints ns per packet for each workload and new / base; exits 1 if the two
builds' outputs differ (a checksum of every sample). With --diff, runs
bench/aligner-diff.cpp instead: both Aligners fed the same N random
scenarios, every block and counter compared; exits 1 at a difference.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN = os.path.join(SRC, "plugins", "zoomrtms")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rev", default="main",
                    help="git revision of the base Aligner (main)")
    ap.add_argument("--cxx", default=os.environ.get("CXX", "c++"))
    ap.add_argument("--diff", type=int, nargs="?", const=20000, default=None,
                    metavar="N", help="differential check of N random "
                    "scenarios instead of the timing")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="aligner-ab-")
    try:
        base = os.path.join(tmp, "base")
        os.mkdir(base)
        for f in ("zoomrtms-aligner.h", "zoomrtms-aligner.cpp"):
            text = subprocess.run(
                ["git", "-C", SRC, "show",
                 "%s:plugins/zoomrtms/%s" % (args.rev, f)],
                check=True, capture_output=True).stdout
            with open(os.path.join(base, f), "wb") as fh:
                fh.write(text)
        flags = ["-std=c++17", "-O2", "-g", "-Wall"]
        ab = os.path.join(SRC, "bench", "aligner-ab.cpp")
        if args.diff is not None:
            units = [
                (["-I", tmp, "-I", PLUGIN],
                 os.path.join(SRC, "bench", "aligner-diff.cpp")),
                (["-I", base, "-Dzoomrtms=zoomrtms_base"],
                 os.path.join(base, "zoomrtms-aligner.cpp")),
                (["-I", PLUGIN], os.path.join(PLUGIN, "zoomrtms-aligner.cpp")),
            ]
        else:
            units = [
                (["-I", base, "-Dzoomrtms=zoomrtms_base", "-DAB_FN=ab_base"],
                 ab),
                (["-I", base, "-Dzoomrtms=zoomrtms_base"],
                 os.path.join(base, "zoomrtms-aligner.cpp")),
                (["-I", PLUGIN, "-DAB_FN=ab_new"], ab),
                (["-I", PLUGIN], os.path.join(PLUGIN, "zoomrtms-aligner.cpp")),
                ([], os.path.join(SRC, "bench", "aligner-ab-main.cpp")),
            ]
        objs = []
        for i, (extra, src) in enumerate(units):
            obj = os.path.join(tmp, "%d.o" % i)
            subprocess.run([args.cxx] + flags + extra + ["-c", src, "-o", obj],
                           check=True)
            objs.append(obj)
        exe = os.path.join(tmp, "aligner-ab")
        subprocess.run([args.cxx] + objs + ["-o", exe], check=True)
        print("base: %s, new: this tree" % args.rev)
        sys.stdout.flush()
        cmd = [exe] + ([str(args.diff)] if args.diff is not None else [])
        return subprocess.run(cmd).returncode
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
