"""Fail closed with the database stopped, recover when it returns.

Runs its own private MariaDB (tools/dev/mariadb.sh with a temporary run
folder and port) so that stopping it cannot disturb other tests, a real
lumokeys-server process, and the real `lumokeys` CLI.
"""
import json
import time
import unittest

import harness


class FailClosedTest(harness.LogOnFailure, unittest.TestCase):
    def setUp(self):
        self.mariadb = harness.PrivateMariaDb()
        self.addCleanup(self.mariadb.destroy)
        self.mariadb.start()
        self.server = harness.LumoServer(mysql_dsn=self.mariadb.admin_dsn())
        self.server.start()
        self.addCleanup(self.server.stop)

    def failure_log(self):
        return self.server.server_log()

    def cli(self, *args, key=None, stdin=None, timeout_s=None):
        env = {"LUMOKEYS_TENANT": "failclosed"}
        if key is not None:
            env["LUMOKEYS_API_KEY"] = key
        return self.server.cli(
            *(["--timeout", str(timeout_s)] if timeout_s else []), *args,
            env=env, input=stdin)

    def verify(self, key):
        return self.cli("verify", "-", stdin=key + "\n")

    def test_database_down_fails_closed_and_recovers_without_restart(self):
        created = self.cli("--json", "tenant", "create", "failclosed",
                           "--key-name", "root", "--scopes", "admin:write")
        self.assertEqual(created.returncode, 0, created.stderr)
        root = json.loads(created.stdout)["initialKey"]["key"]
        made = self.cli("--json", "keys", "create", "--name", "never verified",
                        "--scopes", "admin:read", key=root)
        self.assertEqual(made.returncode, 0, made.stderr)
        uncached = json.loads(made.stdout)["key"]
        self.assertEqual(self.verify(root).returncode, 0)  # now cached

        self.mariadb.stop()
        down = self.verify(uncached)
        self.assertEqual(down.returncode, 3, down.stdout + down.stderr)
        self.assertIn("UNAVAILABLE", down.stderr)
        start = time.time()
        mutation = self.cli("keys", "create", "--name", "x", "--scopes", "admin:read",
                            key=root, timeout_s=10)
        self.assertEqual(mutation.returncode, 3, mutation.stdout + mutation.stderr)
        self.assertIn("UNAVAILABLE", mutation.stderr)
        self.assertLess(time.time() - start, 10)
        garbage = self.verify("lmk_not_a_key")
        self.assertEqual(garbage.returncode, 1)
        self.assertIn("MALFORMED", garbage.stdout + garbage.stderr)

        self.mariadb.start()
        deadline = time.time() + 30 * harness.TIME_SCALE
        while True:
            again = self.verify(uncached)
            if again.returncode == 0:
                break
            self.assertNotEqual(again.returncode, 1, "a valid key was refused: " + again.stdout)
            self.assertLess(time.time(), deadline, "no recovery: " + again.stderr)
            time.sleep(0.5)
        after = self.cli("keys", "create", "--name", "after", "--scopes", "admin:read", key=root)
        self.assertEqual(after.returncode, 0, after.stderr)
        self.assertIsNone(self.server.process.poll(),
                          "the server must not have exited")


if __name__ == "__main__":
    unittest.main()
