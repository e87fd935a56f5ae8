"""Fail closed with the database stopped, recover when it returns.

Runs its own private MariaDB (tools/dev/mariadb.sh with a temporary run
folder and port) so that stopping it cannot disturb other tests, a real
lumokeys-server process, and the real `lumokeys` CLI.
"""
import json
import os
import socket
import subprocess
import tempfile
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SRC = os.environ.get("LUMO_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "../..")))
BIN = os.environ.get("LUMO_BINARY_DIR", os.path.join(SRC, "build"))
SERVER = os.path.join(BIN, "server", "lumokeys-server")
CLI = os.path.join(BIN, "client", "lumokeys")
MARIADB_SH = os.path.join(SRC, "tools", "dev", "mariadb.sh")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FailClosedTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="lumo-failclosed-")
        self.dir = self.tmp.name
        self.db_env = dict(os.environ, LUMO_RUN_DIR=os.path.join(self.dir, "run"),
                           LUMO_MYSQL_PORT=str(free_port()))
        self.db("start")
        self.addCleanup(self.db, "stop")
        dsn = subprocess.run([MARIADB_SH, "admin-dsn"], env=self.db_env, check=True,
                             capture_output=True, text=True).stdout.strip() + "lumo_failclosed"
        for name, content in [("pepper", "1:" + os.urandom(32).hex()),
                              ("operator.token", os.urandom(24).hex()),
                              ("service.token", os.urandom(24).hex())]:
            path = os.path.join(self.dir, name)
            with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
                f.write(content + "\n")
        subprocess.run([SERVER, "--mysql=" + dsn, "--migrate",
                        "--migrations_dir=" + os.path.join(SRC, "sql", "migrations")],
                       check=True, capture_output=True)
        self.addr = "127.0.0.1:%d" % free_port()
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.server = subprocess.Popen(
            [SERVER, "--listen=" + self.addr, "--mysql=" + dsn,
             "--pepper_file=" + os.path.join(self.dir, "pepper"),
             "--operator_token_file=" + os.path.join(self.dir, "operator.token"),
             "--service_token_file=" + os.path.join(self.dir, "service.token")],
            stderr=self.log)
        self.addCleanup(self.stop_server)
        self.cli_env = dict(os.environ, LUMOKEYS_ADDRESS=self.addr, LUMOKEYS_TENANT="failclosed",
                            LUMOKEYS_OPERATOR_TOKEN_FILE=os.path.join(self.dir, "operator.token"),
                            LUMOKEYS_SERVICE_TOKEN_FILE=os.path.join(self.dir, "service.token"))
        deadline = time.time() + 20 * harness.TIME_SCALE
        while self.cli("tenant", "get", "nobody").returncode != 3 or \
                "NOT_FOUND" not in self.cli("tenant", "get", "nobody").stderr:
            self.assertLess(time.time(), deadline, "server did not come up")
            time.sleep(0.2)

    def stop_server(self):
        self.server.terminate()
        try:
            self.server.wait(10)
        except subprocess.TimeoutExpired:
            self.server.kill()
        self.log.close()
        if hasattr(self, "_outcome") and not all(
                e is None for _, e in getattr(self._outcome, "errors", [])):
            print(open(os.path.join(self.dir, "server.log")).read())

    def db(self, action):
        subprocess.run([MARIADB_SH, action], env=self.db_env, check=True)

    def cli(self, *args, key=None, stdin=None, timeout_s=None):
        env = dict(self.cli_env)
        if key is not None:
            env["LUMOKEYS_API_KEY"] = key
        cmd = [CLI] + (["--timeout", str(timeout_s)] if timeout_s else []) + list(args)
        return subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True, timeout=60)

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

        self.db("stop")
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

        self.db("start")
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
        self.assertIsNone(self.server.poll(), "the server must not have exited")


if __name__ == "__main__":
    unittest.main()
