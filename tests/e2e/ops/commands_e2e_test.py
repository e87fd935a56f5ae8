"""lumokeys-server's operator commands by name (docs/operations.md
"Commands"): `migrate`, `purge-audit` and `check-peppers` run against a real
MariaDB and exit with the documented status and output, and a command line
that names no valid command, or two, is refused before anything runs. The
earlier flag spellings (--migrate, ...) are what the harness and the other
tests use, so both forms are covered."""
import os
import secrets
import subprocess
import unittest

import harness


class CommandsTest(harness.LumoServerTestCase):
    def run_server(self, *words, database=None):
        """Runs the server binary with the database and secret settings
        every command takes (LumoServer.base_command) plus `words`, to
        completion (a one-shot command must exit by itself). `database`
        replaces the test server's database in --mysql."""
        s = self.server
        args = s.base_command()
        if database is not None:
            args = [a if not a.startswith("--mysql=") else
                    "--mysql=" + s.mysql.without_password(database)
                    for a in args]
        return subprocess.run(
            args + list(words), cwd=s.source_dir, capture_output=True,
            text=True, timeout=120 * harness.TIME_SCALE,
            stdin=subprocess.DEVNULL)

    def test_migrate_applies_every_migration_then_reports_up_to_date(self):
        s = self.server
        database = "lumo_e2e_cmd_" + secrets.token_hex(6)
        try:
            r = self.run_server("migrate",
                                f"--migrations_dir={s.migrations_dir}",
                                database=database)
            self.assertEqual(r.returncode, 0, r.stderr)
            migrations = sorted(f for f in os.listdir(s.migrations_dir)
                                if f.endswith(".sql"))
            self.assertEqual(r.stderr.count('"msg":"applied migration"'),
                             len(migrations), r.stderr)
            self.assertIn('"msg":"migrations applied"', r.stderr)
            r = self.run_server("migrate",
                                f"--migrations_dir={s.migrations_dir}",
                                database=database)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn('"msg":"schema is up to date"', r.stderr)
            self.assertNotIn("applied migration", r.stderr)
        finally:
            s.sql(f"DROP DATABASE IF EXISTS `{database}`", database=None,
                  check=False)

    def test_check_peppers_prints_the_verdict_as_exit_status(self):
        s = self.server
        s.create_tenant("commands-peppers")
        r = self.run_server("check-peppers")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("OK: the pepper file holds every pepper version", r.stdout)
        # A pepper file without version 1, which the tenant's key uses.
        other = s.write_secret("pepper-v2-only",
                               f"2:{secrets.token_hex(32)}\n")
        r = self.run_server("check-peppers", f"--pepper_file={other}")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("REFUSED: pepper version 1 is missing", r.stdout)

    def test_purge_audit_runs_the_retention_job(self):
        # (Which rows it deletes, and that chains still verify: the audit
        # tests, through the earlier spelling.)
        s = self.server
        s.create_tenant("commands-purge")  # rows of today only
        r = self.run_server("purge-audit", "--older_than_days=30")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('"msg":"audit rows purged","deleted":0', r.stderr)
        r = self.run_server("purge-audit")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("purge-audit needs --older_than_days=N with N at least 1",
                      r.stderr)

    def test_bad_command_lines_are_refused_before_anything_runs(self):
        for words, message in (
                (["migrat"], "unknown command 'migrat'"),
                (["migrate", "now"], "unexpected argument 'now'"),
                (["migrate", "--check_peppers"],
                 "'migrate' and --check_peppers name different commands")):
            r = self.run_server(*words)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(message, r.stderr)
            self.assertNotIn("applied migration", r.stderr)


if __name__ == "__main__":
    unittest.main()
