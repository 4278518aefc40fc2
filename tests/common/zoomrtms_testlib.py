"""Helpers shared by the Python test programs (tests/actions, tests/status,
tests/cluster, tests/service). Imported with

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "common"))
    from zoomrtms_testlib import free_port, metric, run_tests, wait_for
"""
import socket
import sys
import time
import unittest


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, what=None, step=0.1):
    """Polls pred() every @step s for up to @timeout s; returns its first
    truthy value. On timeout: raises AssertionError naming @what, or (what
    None) returns pred()'s last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    if what is not None:
        raise AssertionError("timed out waiting for " + what)
    return pred()


def metric(text, name, labels=None):
    """The value of one series in Prometheus exposition text (labels in the
    order the host writes them), None if absent."""
    want = ""
    if labels:
        want = "{" + ",".join('%s="%s"' % kv for kv in labels.items()) + "}"
    for line in text.splitlines():
        if line.startswith(name + want + " "):
            return float(line.split(" ")[1])
    return None


def run_tests(module_globals, default_names, argv=None):
    """Runs the unittest.TestCase classes named on the command line (else
    @default_names) from @module_globals. Returns the exit status: 0 passed,
    1 failed, 77 (meson's "skipped") when every test that ran was skipped."""
    names = (argv if argv is not None else sys.argv[1:]) or default_names
    suite = unittest.TestSuite()
    for n in names:
        suite.addTests(unittest.defaultTestLoader.loadTestsFromTestCase(module_globals[n]))
    r = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    if not r.wasSuccessful():
        return 1
    if r.testsRun and len(r.skipped) == r.testsRun:
        return 77
    return 0
