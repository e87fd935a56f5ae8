"""Both binaries run with core dumps off (docs/hardening.md): their
RLIMIT_CORE is 0, soft and hard (/proc/<pid>/limits), and they are not
dumpable: a process of the same user without CAP_SYS_PTRACE cannot read
their /proc/<pid>/environ, which it can for an ordinary process (checked
first, so the probe itself is shown to work).

As root, the programs and the probe run as `nobody` (setpriv), because root's
CAP_SYS_PTRACE would read any process; otherwise all run as the test's user.
The server runs on a real MariaDB through the harness; the gateway needs no
upstream to serve /livez.
"""
import os
import subprocess
import time
import unittest
import urllib.request

import harness

NOBODY = 65534
GATEWAY = harness.built_program("gateway", "lumokeys-gateway")


def core_limit(pid):
    """(soft, hard) of "Max core file size" in /proc/<pid>/limits."""
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max core file size"):
                fields = line.split()
                return fields[4], fields[5]
    raise AssertionError(f"no core limit in /proc/{pid}/limits")


def environ_readable(pid):
    """Whether a same-user process without CAP_SYS_PTRACE may read the
    environment of `pid` (refused for a non-dumpable process)."""
    probe = subprocess.run(
        harness.run_as_prefix(NOBODY) + ["cat", f"/proc/{pid}/environ"],
        capture_output=True, timeout=30)
    return probe.returncode == 0


class CoreDumpTest(unittest.TestCase):
    def assert_no_core_dumps(self, pid):
        self.assertEqual(core_limit(pid), ("0", "0"))
        self.assertFalse(environ_readable(pid),
                         "the process is dumpable: its environment is "
                         "readable by a same-user process")

    def test_the_probe_reads_an_ordinary_process(self):
        sleeper = subprocess.Popen(
            harness.run_as_prefix(NOBODY) + ["sleep", "300"])
        self.addCleanup(sleeper.wait)
        self.addCleanup(sleeper.kill)
        deadline = time.monotonic() + 30 * harness.TIME_SCALE
        # setpriv execs sleep in the same process: wait for the exec.
        while not os.path.exists(f"/proc/{sleeper.pid}/exe") or \
                not os.readlink(f"/proc/{sleeper.pid}/exe").endswith("sleep"):
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        self.assertTrue(environ_readable(sleeper.pid))

    def test_gateway(self):
        port = harness.free_loopback_port()
        with open(os.devnull, "wb") as devnull:
            gateway = subprocess.Popen(
                harness.run_as_prefix(NOBODY) + [
                    GATEWAY, f"--listen=127.0.0.1:{port}",
                    "--upstream=127.0.0.1:1", "--portal_dir=",
                    "--insecure_dev_no_service_token"],
                stdout=devnull, stderr=devnull)
        self.addCleanup(gateway.wait)
        self.addCleanup(gateway.terminate)
        deadline = time.monotonic() + 30 * harness.TIME_SCALE
        while True:
            self.assertIsNone(gateway.poll(), "the gateway exited")
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/livez", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            self.assertLess(time.monotonic(), deadline, "no /livez")
            time.sleep(0.1)
        self.assert_no_core_dumps(gateway.pid)

    def test_server(self):
        server = harness.LumoServer(run_as=NOBODY)
        server.start()
        self.addCleanup(server.stop)
        self.assert_no_core_dumps(server.process.pid)


if __name__ == "__main__":
    unittest.main()
