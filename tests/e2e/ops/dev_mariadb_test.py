"""tools/dev/mariadb.sh with a relative LUMO_RUN_DIR, as docs/operations.md
runs it (`LUMO_RUN_DIR=run ... tools/dev/mariadb.sh start`): the folder is
taken relative to where the command runs, and the database starts, answers
and stops."""

import os
import shutil
import subprocess
import tempfile
import unittest

import harness

SCRIPT = os.path.join(harness.source_dir(), "tools", "dev", "mariadb.sh")


class DevMariaDbTest(unittest.TestCase):

    def test_relative_run_dir(self):
        cwd = tempfile.mkdtemp(prefix="dev-mariadb-")
        self.addCleanup(shutil.rmtree, cwd, True)
        env = dict(os.environ, LUMO_RUN_DIR="run",
                   LUMO_MYSQL_PORT=str(harness.free_loopback_port()))

        def script(*args):
            return subprocess.run([SCRIPT, *args], cwd=cwd, env=env,
                                  capture_output=True, text=True,
                                  timeout=180 * harness.TIME_SCALE)

        started = script("start")
        self.addCleanup(script, "stop")
        self.assertEqual(started.returncode, 0,
                         started.stdout + started.stderr)
        status = script("status")
        self.assertEqual(status.returncode, 0, status.stdout)
        self.assertIn(os.path.join(cwd, "run", "mariadb", "mysqld.sock"),
                      status.stdout)
        dsn = script("admin-dsn")
        self.assertEqual(dsn.returncode, 0, dsn.stderr)
        mysql = harness.MysqlDsn(dsn.stdout.strip())
        self.assertEqual(mysql.rows("SELECT 1"), [["1"]])
        stopped = script("stop")
        self.assertEqual(stopped.returncode, 0, stopped.stderr)
        self.assertNotEqual(script("status").returncode, 0)


if __name__ == "__main__":
    unittest.main()
