"""The walk-throughs of docs/operations.md, run as written against a real
server and a private MariaDB (tests/docs/walkthrough.py explains the
conventions): backups and restores with the revocation journal, and pepper
rotation and retirement. Between steps the test acts as the tenants do
(creating, rotating, revoking keys with the CLI and OAuth clients over the
gateway) and checks the outcome with real verification.

`systemctl` is tests/e2e/docs/bin/systemctl (runs the server from a config
file like the systemd unit); `lumokeys-server` and `lumokeys` are the
build's binaries, first on PATH."""

import glob
import json
import os
import stat
import subprocess
import time
import unittest

import harness
import walkthrough

OPERATIONS_MD = os.path.join(harness.source_dir(), "docs", "operations.md")
# The systemctl stand-in.
STAND_IN_BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin")


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


class WalkthroughTestCase(harness.LogOnFailure, unittest.TestCase):
    """A migrated database, secrets and a server run by the systemctl
    stand-in from a config file, fresh for every test."""

    def setUp(self):
        self.server = harness.LumoServer()
        self.server.start()
        self.addCleanup(self.server.stop)
        # From here on the stand-in runs the server, on the same address.
        self.server.terminate()
        self.dir = self.server.tmpdir
        self.state_dir = os.path.join(self.dir, "systemd")
        os.mkdir(self.state_dir, 0o700)
        self.server_conf = os.path.join(self.dir, "server.conf")
        s = self.server
        conf = [
            f"listen = {s.address}",
            f"mysql = {s.mysql.without_password(s.database)}",
            f"mysql_password_file = {s.mysql_password_path}",
            f"pepper_file = {s.pepper_path}",
            f"operator_token_file = {s.operator_token_path}",
            f"service_token_file = {s.service_token_path}",
        ]
        if os.environ.get("LUMO_TEST_ALLOW_NONDURABLE_DB") == "1":
            conf.append("allow_nondurable_db = true")
        with open(self.server_conf, "w") as f:
            f.write("\n".join(conf) + "\n")
        # The walk-throughs pass the database password in their option file
        # only.
        self.env = {k: v for k, v in os.environ.items() if k != "MYSQL_PWD"}
        self.env["PATH"] = os.pathsep.join([
            STAND_IN_BIN,
            os.path.join(s.binary_dir, "server"),
            os.path.join(s.binary_dir, "client"),
            self.env.get("PATH", "/usr/bin:/bin")])
        self.env.update({
            "LUMO_DOCS_STATE_DIR": self.state_dir,
            "LUMO_DOCS_SERVER_CONF": self.server_conf,
            "LUMO_DOCS_SERVER_ADDRESS": s.address,
        })
        self.addCleanup(self.systemctl, "stop")
        # Runs before server.stop removes the directory; failure_log()
        # returns it.
        self.addCleanup(self.keep_server_log)
        self.systemctl("start")

    def keep_server_log(self):
        self.kept_log = self.server_log()

    def failure_log(self):
        return getattr(self, "kept_log", None) or self.server_log()

    def server_log(self):
        path = os.path.join(getattr(self, "state_dir", ""), "server.log")
        if not os.path.exists(path):
            return "(no log)\n"
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def systemctl(self, action):
        r = subprocess.run(
            ["systemctl", action, "lumokeys-server"], env=self.env,
            capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)

    def runner(self, name, settings):
        return walkthrough.Runner(OPERATIONS_MD, name, settings, self.env,
                                  harness.source_dir())

    def step(self, runner, name, expect_ok=True):
        r = runner.run(name)
        if expect_ok:
            self.assertEqual(r.returncode, 0,
                             f"step {name} failed:\n{r.stdout}\n{r.stderr}")
        return r

    def db_settings(self):
        s = self.server
        return {
            "DB": s.database,
            "DB_HOST": s.mysql.host,
            "DB_PORT": str(s.mysql.port),
            "DB_USER": s.mysql.user,
            "DB_PASSWORD_FILE": s.mysql_password_path,
            "OPS_CNF": os.path.join(self.dir, "ops.cnf"),
        }

    # ----- acting as tenants -------------------------------------------

    def cli_json(self, tenant, *args, key):
        return self.server.tenant_cli_json(tenant, key, *args)

    def new_tenant(self, slug):
        return self.server.create_tenant(slug)

    def new_key(self, tenant, root, name):
        return self.cli_json(tenant, "keys", "create", "--name", name,
                             "--scopes", "admin:read", key=root)["key"]

    def verify(self, tenant, key):
        return self.server.verify_reason(tenant, key)

    def listed_ids(self, tenant, root):
        ids = set()
        page = 1
        while True:
            reply = self.cli_json(tenant, "keys", "list", "--limit", "100",
                                  "--page", str(page), key=root)
            ids.update(k["id"] for k in reply["data"])
            if page >= reply["meta"]["totalPages"]:
                return ids
            page += 1


class BackupRestoreWalkthroughTest(WalkthroughTestCase):
    def test_restore_with_journal_as_documented(self):
        settings = self.db_settings()
        settings["BACKUP_DIR"] = os.path.join(self.dir, "backups")
        settings["JOURNAL"] = os.path.join(self.dir, "journal",
                                           "lumokeys.journal")
        os.mkdir(settings["BACKUP_DIR"], 0o700)
        os.mkdir(os.path.dirname(settings["JOURNAL"]), 0o700)
        run = self.runner("backup-restore", settings)

        self.step(run, "option-file")
        self.assertEqual(mode(settings["OPS_CNF"]), 0o600)

        root = self.new_tenant("walk-acme")
        keys = {name: self.new_key("walk-acme", root, name)
                for name in ("kept", "revoked", "rotated", "deleted")}
        ids = {name: key[4:16] for name, key in keys.items()}

        self.step(run, "backup")
        backups = glob.glob(os.path.join(settings["BACKUP_DIR"], "*"))
        self.assertEqual(len(backups), 1, backups)
        self.assertRegex(os.path.basename(backups[0]),
                         r"^lumokeys-\d{8}T\d{6}Z\.sql$")
        self.assertEqual(mode(backups[0]), 0o600)

        # After the backup: changes, each made before a journal export.
        self.cli_json("walk-acme", "keys", "revoke", ids["revoked"], key=root)
        rotated_new = self.cli_json("walk-acme", "keys", "rotate",
                                    ids["rotated"], key=root)["key"]
        self.cli_json("walk-acme", "keys", "delete", ids["deleted"], key=root)
        late = self.new_key("walk-acme", root, "late")
        self.cli_json("walk-acme", "keys", "revoke", late[4:16], key=root)
        self.step(run, "journal")
        self.step(run, "journal")  # every minute: a second run adds nothing
        self.assertEqual(mode(settings["JOURNAL"]), 0o600)
        with open(settings["JOURNAL"]) as f:
            lines = sorted(f.read().split("\n")[:-1])
        self.assertEqual(lines, sorted([
            f"{ids['revoked']}\t2\trevoked", f"{ids['rotated']}\t2\trotated",
            f"{ids['deleted']}\t2\tdeleted", f"{late[4:16]}\t2\trevoked"]))

        r = self.step(run, "restore")
        self.assertIn("revoked 2 key(s) and deleted 1 key(s) changed after "
                      "the backup", r.stdout)
        self.assertIn("journal: 4 key(s); 1 not in this database", r.stdout)

        self.assertEqual(self.verify("walk-acme", keys["kept"]), "VALID")
        self.assertEqual(self.verify("walk-acme", root), "VALID")
        self.assertEqual(self.verify("walk-acme", keys["revoked"]), "REVOKED")
        self.assertEqual(self.verify("walk-acme", keys["rotated"]), "REVOKED")
        self.assertEqual(self.verify("walk-acme", rotated_new), "NOT_FOUND")
        self.assertEqual(self.verify("walk-acme", keys["deleted"]),
                         "NOT_FOUND")
        self.assertEqual(self.verify("walk-acme", late), "NOT_FOUND")
        listed = self.listed_ids("walk-acme", root)
        self.assertNotIn(ids["deleted"], listed)
        self.assertTrue({ids["kept"], ids["revoked"], ids["rotated"]}
                        <= listed, listed)
        self.assertEqual(run.not_run(), [])

    def test_every_command_of_the_sections_is_in_a_walkthrough(self):
        for section in ("Backups and restores", "Pepper rotation"):
            self.assertEqual(
                walkthrough.unmarked_shell_blocks(OPERATIONS_MD, section), [],
                f"shell blocks in '{section}' that no test runs")


class PepperRotationWalkthroughTest(WalkthroughTestCase):
    def test_rotate_then_retire_version_1_as_documented(self):
        s = self.server
        settings = {
            "PEPPER_FILE": s.pepper_path,
            "SERVER_CONF": self.server_conf,
            "DB": s.database,
            "OPS_CNF": os.path.join(self.dir, "ops.cnf"),
        }
        setup = self.runner("backup-restore", dict(
            self.db_settings(), BACKUP_DIR=self.dir,
            JOURNAL=os.path.join(self.dir, "unused.journal")))
        self.step(setup, "option-file")
        run = self.runner("pepper-rotation", settings)
        gateway = harness.LumoGateway(s)
        self.addCleanup(gateway.stop)

        root = self.new_tenant("walk-pepper")
        live = self.new_key("walk-pepper", root, "live")
        graced = self.new_key("walk-pepper", root, "graced")
        revoked = self.new_key("walk-pepper", root, "revoked")
        self.cli_json("walk-pepper", "keys", "revoke", revoked[4:16],
                      key=root)
        status, _, body = gateway.request(
            "POST", "/t/walk-pepper/api/v1/admin/clients",
            {"name": "svc", "grantTypes": ["client_credentials"]},
            {"Authorization": "Bearer " + root})
        self.assertEqual(status, 201, body)
        client = json.loads(body)["data"]

        self.step(run, "add-version")
        self.step(run, "reload")
        deadline = time.monotonic() + 30 * harness.TIME_SCALE
        while '"current_pepper_version":2' not in self.server_log():
            self.assertLess(time.monotonic(), deadline, "no pepper reload")
            time.sleep(0.1)
        # A rotation with a grace period: the old secret (version 1) keeps
        # verifying for a day; the new one is hashed with version 2.
        graced_new = self.cli_json("walk-pepper", "keys", "rotate",
                                   graced[4:16], "--grace-period", "86400",
                                   key=root)["key"]
        newer = self.new_key("walk-pepper", root, "newer")
        self.assertEqual(self.verify("walk-pepper", graced), "VALID")

        r = self.step(run, "check")
        self.assertRegex(r.stdout, r"\n\s+1\s+present\s+2\s+1\s+1\s+1\s+0\n")
        self.assertIn("OK:", r.stdout)
        r = self.step(run, "list")
        self.assertIn(root[4:16], r.stdout)
        self.assertIn(live[4:16], r.stdout)
        self.assertIn(graced[4:16], r.stdout)
        self.assertIn(client["clientId"], r.stdout)
        self.assertNotIn(revoked[4:16], r.stdout)

        with open(s.pepper_path) as f:
            pepper_before = f.read()
        r = self.step(run, "retire", expect_ok=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("REFUSED: pepper version 1 is missing from the pepper "
                      "file but live secrets use it (2 keys, 1 rotated-away "
                      "secret in its grace period, 1 OAuth client secret)",
                      r.stdout)
        with open(s.pepper_path) as f:
            self.assertEqual(f.read(), pepper_before)
        self.assertEqual(self.verify("walk-pepper", live), "VALID")

        # The owners act: rotate the keys and the client secret, revoke the
        # key whose old secret is in its grace period.
        root_old = root
        root = self.cli_json("walk-pepper", "keys", "rotate", root[4:16],
                             key=root)["key"]
        live_new = self.cli_json("walk-pepper", "keys", "rotate", live[4:16],
                                 key=root)["key"]
        self.cli_json("walk-pepper", "keys", "revoke", graced[4:16], key=root)
        status, _, body = gateway.request(
            "POST", f"/t/walk-pepper/api/v1/admin/clients/{client['id']}"
            "/rotate-secret", {}, {"Authorization": "Bearer " + root})
        self.assertEqual(status, 200, body)
        self.assertEqual(self.verify("walk-pepper", live), "ROTATED")
        self.assertEqual(self.verify("walk-pepper", revoked), "REVOKED")
        self.assertEqual(self.step(run, "list").stdout, "")

        file_mode = mode(s.pepper_path)
        r = self.step(run, "retire")
        self.assertIn("WARNING: pepper version 1 is missing from the pepper "
                      "file and dead secrets use it", r.stdout)
        with open(s.pepper_path) as f:
            remaining = f.read()
        self.assertNotIn("\n1:", "\n" + remaining)
        self.assertIn("\n2:", "\n" + remaining)
        self.assertEqual(mode(s.pepper_path), file_mode)
        self.assertIn("pepper version 1 is missing from the pepper file and "
                      "dead secrets use it", self.server_log())

        # Restarted without version 1: what lives works, what is dead stays
        # refused (now as NOT_FOUND, as documented).
        self.assertEqual(self.verify("walk-pepper", live_new), "VALID")
        self.assertEqual(self.verify("walk-pepper", root), "VALID")
        self.assertEqual(self.verify("walk-pepper", root_old), "NOT_FOUND")
        self.assertEqual(self.verify("walk-pepper", newer), "VALID")
        self.assertEqual(self.verify("walk-pepper", live), "NOT_FOUND")
        self.assertEqual(self.verify("walk-pepper", revoked), "NOT_FOUND")
        self.assertEqual(self.verify("walk-pepper", graced), "NOT_FOUND")
        self.assertEqual(self.verify("walk-pepper", graced_new), "REVOKED")
        self.assertEqual(run.not_run(), [])


if __name__ == "__main__":
    unittest.main()
