"""A restore must not resurrect revoked or rotated keys (issue 9,
docs/operations.md): backup, then revoke/rotate, then restore the backup.
Without tools/ops/revocation_journal.sh the revoked key verifies again (the
hazard); after `apply` it and the rotated-away secret are refused, and a key
untouched since the backup still works."""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
import harness  # noqa: E402

JOURNAL_TOOL = os.path.join(os.path.dirname(__file__), "..", "..", "tools",
                            "ops", "revocation_journal.sh")


class RestoreTest(harness.LumoServerTestCase):
    def cli_json(self, *args, key):
        r = self.server.cli("--json", "--tenant", "restore-acme", *args,
                            env={"LUMOKEYS_API_KEY": key})
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def verifies(self, key):
        r = self.server.cli("--tenant", "restore-acme", "verify",
                            input=key + "\n")
        self.assertIn(r.returncode, (0, 1), r.stderr)
        self.last_verify = r.stdout + r.stderr
        return r.returncode == 0

    def journal(self, mode, stdin=None):
        s = self.server
        r = subprocess.run(
            [JOURNAL_TOOL, mode, *s.mysql.tool_args(), s.database],
            input=stdin, env=s.mysql.tool_env(), capture_output=True,
            text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def restart_with(self, dump):
        s = self.server
        s.process.terminate()
        s.process.wait(timeout=30)
        s.process = None
        r = subprocess.run(["mariadb", *s.mysql.tool_args(), s.database],
                           input=dump, env=s.mysql.tool_env(),
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)

    def relaunch(self):
        self.server._launch_and_wait()

    def test_restore_then_journal_apply_refuses_changed_keys(self):
        r = self.server.cli("--json", "tenant", "create", "restore-acme",
                            "--scopes", "admin:write")
        self.assertEqual(r.returncode, 0, r.stderr)
        root = json.loads(r.stdout)["initialKey"]["key"]
        kept = self.cli_json("keys", "create", "--name", "kept", "--scopes",
                             "admin:read", key=root)["key"]
        revoked = self.cli_json("keys", "create", "--name", "revoked",
                                "--scopes", "admin:read", key=root)["key"]
        rotated = self.cli_json("keys", "create", "--name", "rotated",
                                "--scopes", "admin:read", key=root)["key"]

        # --hex-blob: the digests are binary and the dump travels as text.
        backup = self.server.mysqldump("--single-transaction", "--hex-blob")

        self.cli_json("keys", "revoke", revoked[4:16], key=root)
        self.cli_json("keys", "rotate", rotated[4:16], key=root)
        self.assertFalse(self.verifies(revoked))
        self.assertFalse(self.verifies(rotated))
        journal = self.journal("export")
        self.assertIn(revoked[4:16] + "\t", journal)
        self.assertIn(rotated[4:16] + "\t", journal)

        # The hazard: the restored database knows nothing of the changes.
        self.restart_with(backup)
        self.relaunch()
        self.assertTrue(self.verifies(revoked), self.last_verify + self.server.sql(
            "SELECT id, revoked, version FROM api_keys").stdout)

        # The procedure: restore, apply the journal, then start.
        self.restart_with(backup)
        out = self.journal("apply", stdin=journal)
        self.assertIn("revoked 2 key(s)", out)
        self.relaunch()
        self.assertFalse(self.verifies(revoked))
        self.assertFalse(self.verifies(rotated))
        self.assertTrue(self.verifies(kept))
        self.assertTrue(self.verifies(root))

        # Applying again changes nothing more.
        self.assertIn("revoked 0 key(s)", self.journal("apply", stdin=journal))

    def test_corrupt_journal_is_refused(self):
        s = self.server
        r = subprocess.run(
            [JOURNAL_TOOL, "apply", *s.mysql.tool_args(), s.database],
            input="abc'; DROP TABLE api_keys; --\t1\n",
            env=s.mysql.tool_env(), capture_output=True, text=True,
            timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("journal line 1", r.stderr)


if __name__ == "__main__":
    unittest.main()
