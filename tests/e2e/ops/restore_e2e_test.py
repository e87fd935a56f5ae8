"""A restore must not bring back revoked, rotated-away or deleted keys
(docs/operations.md, "Backups and restores"): backup, change keys, restore
the backup. Without tools/ops/revocation_journal.sh a revoked key verifies
again (the hazard); after `apply` every key changed after the backup is
refused by a real server - also for a 100,000-line journal covering 1,000
changed keys - deleted keys are gone from the key list, and untouched keys
keep working. Also: the journal file's mode, compaction and merge across a
restore, corrupt journals, and passwords kept off the command line."""
import concurrent.futures
import os
import stat
import subprocess
import sys
import time
import unittest

import harness

JOURNAL_TOOL = os.path.join(harness.source_dir(), "tools", "ops",
                            "revocation_journal.sh")
# Verification and key changes run this many CLI processes at once.
PARALLEL = 4


class RestoreTestCase(harness.LumoServerTestCase):
    """One server and database per class; helpers for restores."""

    # A thousand dead keys verified from one address must not trip the
    # per-address brute-force throttle (docs/reliability.md), which would
    # answer RESOURCE_EXHAUSTED instead of the reason under test.
    server_args = ("--auth_failures_per_ip_burst=0",)

    def setUp(self):
        # A test that failed between stop and start leaves no server.
        if self.server.process is None:
            self.server.start()

    def cli_json(self, tenant, *args, key):
        return self.server.tenant_cli_json(tenant, key, *args)

    def new_tenant(self, slug):
        return self.server.create_tenant(slug)

    def verify(self, tenant, key):
        return self.server.verify_reason(tenant, key)

    def parallel(self, fn, items):
        with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
            return list(pool.map(fn, items))

    def journal(self, mode, *args, stdin=None, check=True, env=None):
        """Runs the journal tool; checks that it left no scratch file (they
        hold journal lines) in its TMPDIR, whatever the outcome."""
        s = self.server
        env = dict(env if env is not None else s.mysql.tool_env())
        env["TMPDIR"] = os.path.join(s.tmpdir, "journal-scratch")
        os.makedirs(env["TMPDIR"], exist_ok=True)
        r = subprocess.run([JOURNAL_TOOL, mode, *args], input=stdin, env=env,
                           capture_output=True, text=True, timeout=600)
        if check:
            self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.listdir(env["TMPDIR"]), [], "scratch files left")
        return r

    def export(self, *tool_args):
        s = self.server
        return self.journal("export", *tool_args, *s.mysql.tool_args(),
                            s.database).stdout

    def apply(self, journal_text, check=True):
        s = self.server
        return self.journal("apply", *s.mysql.tool_args(), s.database,
                            stdin=journal_text, check=check)

    def stop_server(self):
        self.server.terminate(timeout=30)

    def load(self, dump):
        s = self.server
        r = subprocess.run(["mariadb", *s.mysql.tool_args(), s.database],
                           input=dump, env=s.mysql.tool_env(),
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)

    def start_server(self):
        self.server.start()

    def listed(self, tenant, root):
        """{key id: status} of every key the list API shows (all pages)."""
        keys = {}
        page = 1
        while True:
            reply = self.cli_json(tenant, "keys", "list", "--limit", "100",
                                  "--page", str(page), key=root)
            keys.update((k["id"], k["status"]) for k in reply["data"])
            if page >= reply["meta"]["totalPages"]:
                return keys
            page += 1


class RestoreTest(RestoreTestCase):
    def test_restore_then_journal_apply_refuses_changed_keys(self):
        root = self.new_tenant("restore-acme")
        kept, revoked, rotated = [
            self.cli_json("restore-acme", "keys", "create", "--name", name,
                          "--scopes", "admin:read", key=root)["key"]
            for name in ("kept", "revoked", "rotated")]

        # --hex-blob: the digests are binary and the dump travels as text.
        backup = self.server.mysqldump("--single-transaction", "--hex-blob")

        self.cli_json("restore-acme", "keys", "revoke", revoked[4:16],
                      key=root)
        self.cli_json("restore-acme", "keys", "rotate", rotated[4:16],
                      key=root)
        self.assertEqual(self.verify("restore-acme", revoked), "REVOKED")
        self.assertEqual(self.verify("restore-acme", rotated), "ROTATED")
        journal = self.export()
        self.assertIn(revoked[4:16] + "\t2\trevoked\n", journal)
        self.assertIn(rotated[4:16] + "\t2\trotated\n", journal)

        # The hazard: the restored database knows nothing of the changes.
        self.stop_server()
        self.load(backup)
        self.start_server()
        self.assertEqual(self.verify("restore-acme", revoked), "VALID")
        self.assertEqual(self.verify("restore-acme", rotated), "VALID")

        # The procedure: restore, apply the journal, then start.
        self.stop_server()
        self.load(backup)
        out = self.apply(journal).stdout
        self.assertIn("revoked 2 key(s) and deleted 0 key(s) changed after "
                      "the backup", out)
        self.start_server()
        self.assertEqual(self.verify("restore-acme", revoked), "REVOKED")
        self.assertEqual(self.verify("restore-acme", rotated), "REVOKED")
        self.assertEqual(self.verify("restore-acme", kept), "VALID")
        self.assertEqual(self.verify("restore-acme", root), "VALID")

        # Applying again changes nothing more.
        self.assertIn("revoked 0 key(s) and deleted 0 key(s)",
                      self.apply(journal).stdout)

    def test_journal_file_is_private_compact_and_survives_a_restore(self):
        tenant = "restore-file"
        root = self.new_tenant(tenant)
        a, b = [self.cli_json(tenant, "keys", "create", "--name", n,
                              "--scopes", "admin:read", key=root)["key"]
                for n in ("a", "b")]
        path = os.path.join(self.server.tmpdir, "journal", "keys.journal")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        backup = self.server.mysqldump("--single-transaction", "--hex-blob")
        self.cli_json(tenant, "keys", "rotate", a[4:16], key=root)
        self.export(f"--journal={path}")
        self.cli_json(tenant, "keys", "delete", a[4:16], key=root)
        self.cli_json(tenant, "keys", "revoke", b[4:16], key=root)
        self.export(f"--journal={path}")
        self.export(f"--journal={path}")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(path + ".lock").st_mode), 0o600)
        with open(path) as f:
            content = f.read()
        # One line per key, its latest state.
        self.assertEqual(content.count(a[4:16]), 1, content)
        self.assertIn(f"{a[4:16]}\t3\tdeleted\n", content)
        self.assertIn(f"{b[4:16]}\t2\trevoked\n", content)

        # An export after a restore (before `apply`, or of an older
        # database) must not make the journal forget newer states.
        self.stop_server()
        self.load(backup)
        self.export(f"--journal={path}")
        with open(path) as f:
            merged = f.read()
        self.assertIn(f"{a[4:16]}\t3\tdeleted\n", merged)
        self.assertIn(f"{b[4:16]}\t2\trevoked\n", merged)
        self.assertEqual(merged.count(a[4:16]), 1, merged)
        out = self.apply(merged).stdout
        self.assertIn("revoked 1 key(s) and deleted 1 key(s)", out)
        self.start_server()
        self.assertEqual(self.verify(tenant, a), "NOT_FOUND")
        self.assertEqual(self.verify(tenant, b), "REVOKED")
        self.assertNotIn(a[4:16], self.listed(tenant, root))

        # `compact` gives the same latest state from a raw concatenation.
        r = self.journal("compact", stdin=content + self.export() + content)
        self.assertIn(f"{a[4:16]}\t4\tdeleted\n", r.stdout)

    def test_first_format_lines_still_apply(self):
        tenant = "restore-v1"
        root = self.new_tenant(tenant)
        key = self.cli_json(tenant, "keys", "create", "--name", "old",
                            "--scopes", "admin:read", key=root)["key"]
        backup = self.server.mysqldump("--single-transaction", "--hex-blob")
        self.cli_json(tenant, "keys", "revoke", key[4:16], key=root)
        self.stop_server()
        self.load(backup)
        out = self.apply(f"{key[4:16]}\t2\n").stdout
        self.assertIn("revoked 1 key(s) and deleted 0 key(s)", out)
        self.start_server()
        self.assertEqual(self.verify(tenant, key), "REVOKED")

    def test_corrupt_journal_is_refused_and_changes_nothing(self):
        tenant = "restore-corrupt"
        root = self.new_tenant(tenant)
        key = self.cli_json(tenant, "keys", "create", "--name", "k",
                            "--scopes", "admin:read", key=root)["key"]
        good = f"{key[4:16]}\t7\trevoked\n" * 5000
        for bad in ("abc'; DROP TABLE api_keys; --\t1\n",
                    f"{key[4:16]}\t7\tgone\n",
                    f"{key[4:16]}\t-1\trevoked\n",
                    f"{key[4:16]}\t2\trevoked\textra\n"):
            r = self.apply(good + bad + good, check=False)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("stdin line 5001: expected", r.stderr)
            self.assertNotIn("DROP", r.stderr)
            self.assertIn("nothing was changed", r.stderr)
        self.assertEqual(self.verify(tenant, key), "VALID")

    def test_password_stays_off_the_command_line(self):
        s = self.server
        secret = "s3cret-Not-For-ps"
        for option in (f"-p{secret}", f"--password={secret}"):
            r = self.journal("export", *s.mysql.tool_args(), option,
                             s.database, check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("refusing a password on the command line",
                          r.stderr)
            self.assertNotIn(secret, r.stderr)
        # An option file works wherever it is given (the client accepts it
        # only first; the tool moves it there), without MYSQL_PWD.
        cnf = s.write_secret(
            "journal.cnf", f'[client]\npassword="{s.mysql.password}"\n')
        env = {k: v for k, v in os.environ.items() if k != "MYSQL_PWD"}
        r = self.journal("export", f"-h{s.mysql.host}", f"-P{s.mysql.port}",
                         f"-u{s.mysql.user}", f"--defaults-extra-file={cnf}",
                         s.database, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)


class LargeJournalTest(RestoreTestCase):
    """Its own database, so the journal holds exactly its 1,000 keys."""

    def test_large_journal_keeps_every_changed_key_dead(self):
        tenant = "restore-large"
        root = self.new_tenant(tenant)
        groups = {  # name: how many keys
            "revoked": 250, "rotated": 125, "rotated_grace": 125,
            "deleted": 250, "rotated_then_revoked": 100,
            "rotated_then_deleted": 75, "revoked_then_deleted": 75,
            "untouched": 200,
        }
        names = [(g, i) for g, n in groups.items() for i in range(n)]
        created = self.parallel(
            lambda gi: self.cli_json(tenant, "keys", "create", "--name",
                                     f"{gi[0]}-{gi[1]}", "--scopes",
                                     "admin:read", key=root)["key"], names)
        keys = {}
        for (g, _), key in zip(names, created):
            keys.setdefault(g, []).append(key)
        changed = sum(n for g, n in groups.items() if g != "untouched")
        self.assertEqual(changed, 1000)

        backup = self.server.mysqldump("--single-transaction", "--hex-blob")

        def change(action, key, *extra):
            return self.cli_json(tenant, "keys", action, key[4:16], *extra,
                                 key=root)

        # The routine the journal had to survive: after each round of
        # changes, a full export appended to the journal.
        journal_parts = []
        new_secret = {}
        for g in ("rotated", "rotated_then_revoked", "rotated_then_deleted"):
            for key, reply in zip(keys[g], self.parallel(
                    lambda k: change("rotate", k), keys[g])):
                new_secret[key] = reply["key"]
        for key, reply in zip(keys["rotated_grace"], self.parallel(
                lambda k: change("rotate", k, "--grace-period", "86400"),
                keys["rotated_grace"])):
            new_secret[key] = reply["key"]
        self.parallel(lambda k: change("revoke", k),
                      keys["revoked"] + keys["revoked_then_deleted"])
        journal_parts.append(self.export())
        self.parallel(lambda k: change("revoke", k),
                      keys["rotated_then_revoked"])
        self.parallel(lambda k: change("delete", k),
                      keys["deleted"] + keys["rotated_then_deleted"]
                      + keys["revoked_then_deleted"])
        lines = sum(p.count("\n") for p in journal_parts)
        while lines < 100000:
            journal_parts.append(self.export())
            lines += journal_parts[-1].count("\n")
        journal = "".join(journal_parts)
        self.assertGreaterEqual(journal.count("\n"), 100000)
        print(f"\njournal: {journal.count(chr(10))} lines, "
              f"{len(journal)} bytes, {len(journal_parts)} exports",
              file=sys.stderr)
        # Before the restore, the rotated-with-grace keys' old secrets still
        # verify: the journal must not rely on grace periods ending.
        self.assertEqual(self.verify(tenant, keys["rotated_grace"][0]),
                         "VALID")

        self.stop_server()
        self.load(backup)
        started = time.monotonic()
        out = self.apply(journal).stdout
        print(f"apply of {journal.count(chr(10))} lines: "
              f"{time.monotonic() - started:.2f} s", file=sys.stderr)
        self.assertIn("revoked 600 key(s) and deleted 400 key(s) changed "
                      "after the backup", out)
        self.assertIn("journal: 1000 key(s); 0 not in this database", out)
        self.start_server()

        expected = {  # group: (reason of the backup's secret, of the new)
            "revoked": ("REVOKED", None),
            "rotated": ("REVOKED", "NOT_FOUND"),
            "rotated_grace": ("REVOKED", "NOT_FOUND"),
            "rotated_then_revoked": ("REVOKED", "NOT_FOUND"),
            "deleted": ("NOT_FOUND", None),
            "rotated_then_deleted": ("NOT_FOUND", "NOT_FOUND"),
            "revoked_then_deleted": ("NOT_FOUND", None),
            "untouched": ("VALID", None),
        }
        checks = []
        for g, (old_reason, new_reason) in expected.items():
            for key in keys[g]:
                checks.append((g, key, old_reason))
                if new_reason is not None:
                    checks.append((g, new_secret[key], new_reason))
        reasons = self.parallel(lambda c: self.verify(tenant, c[1]), checks)
        wrong = [(g, key[4:16], want, got)
                 for (g, key, want), got in zip(checks, reasons)
                 if got != want]
        self.assertEqual(wrong, [], f"{len(wrong)} of {len(checks)} wrong")
        print(f"verified {len(checks)} secrets", file=sys.stderr)

        listed = self.listed(tenant, root)
        for g in ("deleted", "rotated_then_deleted", "revoked_then_deleted"):
            shown = [k[4:16] for k in keys[g] if k[4:16] in listed]
            self.assertEqual(shown, [], f"deleted keys of {g} still listed")
        for g in ("revoked", "rotated", "rotated_grace",
                  "rotated_then_revoked"):
            statuses = {listed.get(k[4:16]) for k in keys[g]}
            self.assertEqual(statuses, {"revoked"}, g)
        self.assertEqual({listed.get(k[4:16]) for k in keys["untouched"]},
                         {"active"})

        # Idempotent, and nothing of it is left to do.
        self.assertIn("revoked 0 key(s) and deleted 0 key(s)",
                      self.apply(journal).stdout)


if __name__ == "__main__":
    unittest.main()
