"""A test process that dies mid-run (ctest kills it at its timeout) leaves
no lumokeys-server or lumokeys-gateway behind: the harness starts them so
that the kernel kills them when it dies (docs/testing.md). A child Python
process starts a server and a gateway through the harness, prints their
pids and kills itself with SIGKILL (no cleanup runs); both programs must
be gone soon after."""
import os
import signal
import subprocess
import sys
import textwrap
import unittest

import harness

CHILD = textwrap.dedent("""
    import os
    import signal
    import harness
    server = harness.LumoServer()
    server.start()
    gateway = harness.LumoGateway(server)
    print(server.process.pid, gateway.process.pid, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def running(pid):
    """Whether `pid` is a live process (a zombie is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


class HarnessOrphansTest(unittest.TestCase):
    def test_programs_die_with_a_killed_harness(self):
        child = subprocess.run([sys.executable, "-c", CHILD],
                               capture_output=True, text=True,
                               timeout=300 * harness.TIME_SCALE)
        self.assertEqual(child.returncode, -signal.SIGKILL, child.stderr)
        pids = [int(p) for p in child.stdout.split()]
        self.assertEqual(len(pids), 2, child.stdout + child.stderr)
        try:
            harness.wait_for(lambda: not any(running(p) for p in pids),
                             "the server and gateway of a killed harness "
                             "to exit", timeout_s=30)
        finally:
            for pid in pids:
                if running(pid):
                    os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    unittest.main()
