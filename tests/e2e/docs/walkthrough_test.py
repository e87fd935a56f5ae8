"""The walk-throughs of docs/operations.md, run as written against a real
server and a private MariaDB (tests/e2e/docs/walkthrough.py explains the
conventions): TLS and mTLS, backups and restores with the revocation
journal, pepper rotation and retirement, and upgrading (install, migrate,
grants, a draining restart). Between steps the test acts as the tenants do
(creating, rotating, revoking keys with the CLI and OAuth clients over the
gateway) and checks the outcome with real verification.

`systemctl` is tests/e2e/docs/bin/systemctl (runs the server from a config
file like the systemd unit); `lumokeys-server` and `lumokeys` are the
build's binaries, first on PATH."""

import glob
import hashlib
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import threading
import time
import unittest

import grpc

import harness
import walkthrough

OPERATIONS_MD = os.path.join(harness.source_dir(), "docs", "operations.md")
# The systemctl stand-in.
STAND_IN_BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin")
DEPLOY_DIR = os.path.join(harness.source_dir(), "tools", "deploy")
# The operator walk-throughs: every shell block of these sections belongs to
# one.
WALKTHROUGH_SECTIONS = ("TLS and mTLS, step by step", "Backups and restores",
                        "Pepper rotation", "Upgrading with migrations")


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


class WalkthroughTestCase(harness.LogOnFailure, unittest.TestCase):
    """A migrated database, secrets and a server run by the systemctl
    stand-in from a config file, fresh for every test."""

    def new_server(self):
        return harness.LumoServer()

    def setUp(self):
        self.server = self.new_server()
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

    # ----- the restore scenario of both backup walk-throughs -------------

    def journal_settings(self):
        settings = self.db_settings()
        settings["BACKUP_DIR"] = os.path.join(self.dir, "backups")
        settings["JOURNAL"] = os.path.join(self.dir, "journal",
                                           "lumokeys.journal")
        os.mkdir(settings["BACKUP_DIR"], 0o700)
        os.mkdir(os.path.dirname(settings["JOURNAL"]), 0o700)
        return settings

    def assert_one_backup(self, settings, name_pattern, want_mode):
        """BACKUP_DIR holds one backup, named by `name_pattern`, with mode
        `want_mode` (and no leftover partial one)."""
        backups = glob.glob(os.path.join(settings["BACKUP_DIR"], "*"))
        self.assertEqual(len(backups), 1, backups)
        self.assertRegex(os.path.basename(backups[0]), name_pattern)
        self.assertEqual(mode(backups[0]), want_mode)

    def restore_keeps_changed_keys_dead(self, run, settings, backup,
                                        restore):
        """Keys revoked, rotated or deleted after the backup stay dead once
        it is restored with the journal. `run` runs the option-file and
        journal steps; backup() takes the backup; restore() restores it and
        returns the restore step's CompletedProcess."""
        self.step(run, "option-file")
        self.assertEqual(mode(settings["OPS_CNF"]), 0o600)

        root = self.new_tenant("walk-acme")
        keys = {name: self.new_key("walk-acme", root, name)
                for name in ("kept", "revoked", "rotated", "deleted")}
        ids = {name: key[4:16] for name, key in keys.items()}

        backup()

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

        r = restore()
        self.assertEqual(r.returncode, 0, f"restore:\n{r.stdout}\n{r.stderr}")
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


class BackupRestoreWalkthroughTest(WalkthroughTestCase):
    def test_restore_with_journal_as_documented(self):
        settings = self.journal_settings()
        run = self.runner("backup-restore", settings)

        def backup():
            self.step(run, "backup")
            self.assert_one_backup(settings, r"^lumokeys-\d{8}T\d{6}Z\.sql$",
                                   0o600)

        self.restore_keeps_changed_keys_dead(
            run, settings, backup, lambda: run.run("restore"))
        self.assertEqual(run.not_run(), [])

    def test_every_command_of_the_sections_is_in_a_walkthrough(self):
        for section in WALKTHROUGH_SECTIONS:
            self.assertEqual(
                walkthrough.unmarked_shell_blocks(OPERATIONS_MD, section), [],
                f"shell blocks in '{section}' that no test runs")


class PhysicalBackupWalkthroughTest(WalkthroughTestCase):
    """mariabackup's walk-through on a MariaDB of the test's own (the
    restore stops it and replaces its data folder)."""

    def new_server(self):
        self.mariadb = harness.PrivateMariaDb()
        self.addCleanup(self.mariadb.destroy)
        self.mariadb.start()
        return harness.LumoServer(mysql_dsn=self.mariadb.admin_dsn())

    def test_physical_restore_with_journal_as_documented(self):
        settings = self.journal_settings()
        self.env.update({
            "LUMO_DOCS_MARIADB_RUN_DIR": self.mariadb.env["LUMO_RUN_DIR"],
            "LUMO_DOCS_MARIADB_PORT": self.mariadb.env["LUMO_MYSQL_PORT"],
        })
        datadir = os.path.join(self.mariadb.env["LUMO_RUN_DIR"], "mariadb",
                               "data")
        physical = self.runner("physical-backup", {
            "DB": settings["DB"], "OPS_CNF": settings["OPS_CNF"],
            "BACKUP_DIR": settings["BACKUP_DIR"],
            "JOURNAL": settings["JOURNAL"], "DATADIR": datadir,
            "DB_OWNER": f"{os.getuid()}:{os.getgid()}"})
        journal = self.runner("backup-restore", settings)

        def backup():
            self.step(physical, "backup")
            self.assert_one_backup(settings, r"^lumokeys-\d{8}T\d{6}Z$", 0o700)

        self.restore_keeps_changed_keys_dead(
            journal, settings, backup, lambda: physical.run("restore"))
        # The old data folder is kept aside, as the restore step says.
        self.assertTrue(os.path.isdir(datadir + ".before-restore"))
        self.assertEqual(physical.not_run(), [])


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
        # Version 1: pepper file present; 2 live keys, 1 in-grace secret,
        # 1 client secret, 0 webhook secrets, 1 dead key, 0 past-grace.
        self.assertRegex(r.stdout,
                         r"\n\s+1\s+present\s+2\s+1\s+1\s+0\s+1\s+0\n")
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


def alive(pid):
    """True while process `pid` runs (a zombie has ended: the processes a
    step starts in the background are reaped by whoever adopts them)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


class TlsWalkthroughTest(harness.LogOnFailure, unittest.TestCase):
    """The TLS and mTLS walk-through: a database and the secrets
    tools/dev/up.sh would have made (tenant acme-corp with its demo key), a
    temporary folder for the run folder, free ports."""

    def setUp(self):
        s = self.server = harness.LumoServer()
        s.start()
        self.addCleanup(self.server.stop)
        self.demo_key = s.create_tenant("acme-corp", scopes="admin:read")
        s.terminate()
        self.run_dir = os.path.join(s.tmpdir, "run")
        secrets_dir = os.path.join(self.run_dir, "secrets")
        os.makedirs(secrets_dir, 0o700)
        for name, source in (("mysql-app.password", s.mysql_password_path),
                             ("pepper", s.pepper_path),
                             ("operator.token", s.operator_token_path),
                             ("service.token", s.service_token_path)):
            with open(source) as f:
                harness.write_secret(os.path.join(secrets_dir, name),
                                     f.read())
        harness.write_secret(os.path.join(secrets_dir, "demo.key"),
                             self.demo_key + "\n")
        # Runs before server.stop removes the folder.
        self.addCleanup(self.stop_background)
        self.env = {k: v for k, v in os.environ.items()
                    if k != "MYSQL_PWD" and not k.startswith("LUMOKEYS_")}

    def read_run(self, name):
        path = os.path.join(self.run_dir, name)
        if not os.path.exists(path):
            return f"(no {name})\n"
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def failure_log(self):
        return (getattr(self, "kept_logs", None) or
                self.read_run("server.log") + self.read_run("gateway.log"))

    def pid(self, name):
        text = self.read_run(f"{name}.pid").strip()
        return int(text) if text.isdigit() else None

    def stop_background(self):
        self.kept_logs = (self.read_run("server.log") +
                          self.read_run("gateway.log"))
        for name in ("gateway", "server"):
            pid = self.pid(name)
            if pid is not None and alive(pid):
                os.kill(pid, signal.SIGKILL)

    def step(self, run, name):
        r = run.run(name)
        self.assertEqual(r.returncode, 0,
                         f"step {name} failed:\n{r.stdout}\n{r.stderr}")
        return r

    def test_tls_and_mtls_as_documented(self):
        s = self.server
        ports = {name: str(harness.free_loopback_port())
                 for name in ("PUBLIC_PORT", "INTERNAL_PORT", "HTTPS_PORT")}
        settings = dict(RUN=self.run_dir, BUILD=harness.binary_dir(),
                        DB_DSN=s.mysql.without_password(s.database), **ports)
        run = walkthrough.Runner(OPERATIONS_MD, "tls", settings, self.env,
                                 harness.source_dir())

        self.step(run, "pki")
        pki = os.path.join(self.run_dir, "pki")
        for key in ("ca.key", "server.key", "gateway.key"):
            self.assertEqual(mode(os.path.join(pki, key)), 0o600, key)

        r = self.step(run, "server")
        serving = json.loads(r.stdout.strip().split("\n")[-1])
        self.assertEqual(serving["msg"], "serving")
        self.assertIs(serving["tls"], True)
        self.assertEqual(serving["port"], int(ports["PUBLIC_PORT"]))
        self.assertEqual(serving["internal_port"], int(ports["INTERNAL_PORT"]))

        r = self.step(run, "cli")
        lines = r.stdout.strip().split("\n")
        self.assertEqual(lines[0], "SERVING", r.stdout)
        self.assertIn("reason:  VALID", lines, r.stdout)
        self.assertIn(f"id:      {self.demo_key[4:16]}", lines, r.stdout)
        self.assertEqual(lines[-1], "refused: exit status 3", r.stdout)

        r = self.step(run, "gateway")
        healthz, _, listed = r.stdout.partition("}")
        # "upstream": the server answered health over the mTLS upstream.
        self.assertEqual(json.loads(healthz + "}"), {
            "status": "ok", "gateway": "ok", "upstream": "serving"})
        ids = [k["id"] for k in json.loads(listed)["data"]]
        self.assertEqual(ids, [self.demo_key[4:16]])

        server_pid, gateway_pid = self.pid("server"), self.pid("gateway")
        self.step(run, "stop")
        self.assertFalse(alive(server_pid))
        self.assertFalse(alive(gateway_pid))
        for log in ("server.log", "gateway.log"):
            last = json.loads(self.read_run(log).strip().split("\n")[-1])
            self.assertEqual(last["msg"], "stopped", log)
        self.assertEqual(run.not_run(), [])


def conf_values(path):
    """The `flag = value` settings of config file `path`."""
    values = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, value = line.partition("=")
                values[name.strip()] = value.strip()
    return values


class ShippedConfigTest(unittest.TestCase):
    """tools/deploy/{server,gateway}.conf, which the deployment section
    installs."""

    def test_shipped_configs_name_only_existing_flags(self):
        # A config error exits 2 before the command is looked at; a clean
        # file reaches the (unknown) command and exits 1 naming it.
        for conf, binary in (
                ("server.conf", harness.built_program(
                    "server", "lumokeys-server")),
                ("gateway.conf", harness.built_program(
                    "gateway", "lumokeys-gateway"))):
            r = subprocess.run(
                [binary, f"--config={os.path.join(DEPLOY_DIR, conf)}",
                 "no-such-command"], capture_output=True, text=True,
                timeout=60)
            self.assertEqual(r.returncode, 1, f"{conf}: {r.stderr}")
            self.assertIn("no-such-command", r.stderr)


class UpgradeWalkthroughTest(WalkthroughTestCase):
    PROBE_TABLE = "walkthrough_probe"

    def runtime_select(self, user, password):
        """SELECT on the probe table as the runtime account."""
        s = self.server
        env = dict(self.env, MYSQL_PWD=password)
        return subprocess.run(
            ["mariadb", "--no-defaults", f"--host={s.mysql.host}",
             f"--port={s.mysql.port}", f"--user={user}", s.database, "-e",
             f"SELECT COUNT(*) FROM {self.PROBE_TABLE}"],
            env=env, capture_output=True, text=True, timeout=60)

    def test_install_migrate_grant_and_restart_as_documented(self):
        s = self.server
        drain_delay = conf_values(os.path.join(DEPLOY_DIR, "server.conf"))[
            "drain_delay"]
        self.assertNotIn(drain_delay, ("0", "0s"))
        # The operator's option file, as "Backups and restores" makes it.
        self.step(self.runner("backup-restore", dict(
            self.db_settings(), BACKUP_DIR=self.dir,
            JOURNAL=os.path.join(self.dir, "unused.journal"))), "option-file")
        user = "lk_" + secrets.token_hex(6)
        password = secrets.token_hex(16)
        # By its hash: the password itself is never a process argument.
        digest = hashlib.sha1(hashlib.sha1(password.encode()).digest())
        s.sql(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY PASSWORD "
              f"'*{digest.hexdigest().upper()}'")
        self.addCleanup(s.sql, f"DROP USER '{user}'@'127.0.0.1'", check=False)
        install = os.path.join(self.dir, "install")
        settings = dict(self.db_settings(), ACCOUNT=f"{user}@127.0.0.1",
                        BUILD=harness.binary_dir(),
                        BIN_DIR=os.path.join(install, "bin"),
                        MIGRATIONS_DIR=os.path.join(install, "migrations"))
        os.makedirs(settings["BIN_DIR"])
        run = self.runner("upgrade", settings)

        # The first grants ("Database grants"), then the server runs as the
        # runtime account with the shipped drain delay.
        self.step(run, "grants")
        password_file = s.write_secret("runtime.password", password + "\n")
        with open(self.server_conf) as f:
            conf = [line for line in f.read().split("\n")
                    if line and not line.startswith("mysql")]
        conf += [f"mysql = mysql://{user}@127.0.0.1:{s.mysql.port}/"
                 f"{s.database}",
                 f"mysql_password_file = {password_file}",
                 f"drain_delay = {drain_delay}"]
        with open(self.server_conf, "w") as f:
            f.write("\n".join(conf) + "\n")
        self.systemctl("restart")
        root = self.new_tenant("walk-upgrade")
        key = self.new_key("walk-upgrade", root, "live")

        # The next release: one more migration, adding a table.
        os.makedirs(settings["MIGRATIONS_DIR"])
        probe = "9000_walkthrough_probe.sql"
        with open(os.path.join(settings["MIGRATIONS_DIR"], probe), "w") as f:
            f.write(f"CREATE TABLE {self.PROBE_TABLE} "
                    "(id INT NOT NULL PRIMARY KEY) ENGINE=InnoDB;\n")

        self.step(run, "install")
        for binary in ("lumokeys-server", "lumokeys-gateway"):
            self.assertEqual(
                mode(os.path.join(settings["BIN_DIR"], binary)), 0o755)
        shipped = sorted(os.listdir(os.path.join(harness.source_dir(), "sql",
                                                 "migrations")))
        self.assertEqual(sorted(os.listdir(settings["MIGRATIONS_DIR"])),
                         sorted(shipped + [probe]))

        r = self.step(run, "migrate")
        applied = [json.loads(line) for line in r.stderr.split("\n")
                   if '"applied migration"' in line]
        self.assertEqual([a.get("migration") for a in applied], [probe],
                         r.stderr)
        self.assertIn('"msg":"migrations applied"', r.stderr)
        refused = self.runtime_select(user, password)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("denied", refused.stderr)

        r = self.step(run, "grants")
        self.assertIn(f"GRANT SELECT, INSERT, UPDATE, DELETE ON "
                      f"`{s.database}`.`{self.PROBE_TABLE}` TO "
                      f"'{user}'@'127.0.0.1';", r.stdout.split("\n"))
        allowed = self.runtime_select(user, password)
        self.assertEqual(allowed.returncode, 0, allowed.stderr)

        # The rolling restart, from the installed binary: during the drain
        # health says NOT_SERVING and verification still answers.
        with open(os.path.join(self.state_dir, "server.pid")) as f:
            old_pid = int(f.read())
        self.env["PATH"] = os.pathsep.join([STAND_IN_BIN, settings["BIN_DIR"],
                                            self.env["PATH"]])
        restart = {}
        thread = threading.Thread(
            target=lambda: restart.update(result=run.run("restart")))
        thread.start()
        try:
            with grpc.insecure_channel(s.address) as channel:
                def not_serving():
                    try:
                        return (harness.health_status(channel, timeout=5) ==
                                harness.HEALTH_NOT_SERVING)
                    except grpc.RpcError:
                        return False
                harness.wait_for(not_serving, "health NOT_SERVING on restart",
                                 interval_s=0.05)
            self.assertEqual(self.verify("walk-upgrade", key), "VALID")
            # Answered by the draining process, not by its successor.
            self.assertTrue(alive(old_pid))
        finally:
            thread.join()
        r = restart["result"]
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(os.path.join(self.state_dir, "server.pid")) as f:
            new_pid = int(f.read())
        self.assertFalse(alive(old_pid))
        self.assertEqual(os.readlink(f"/proc/{new_pid}/exe"),
                         os.path.join(settings["BIN_DIR"], "lumokeys-server"))
        self.assertEqual(self.verify("walk-upgrade", key), "VALID")
        self.assertEqual(run.not_run(), [])


if __name__ == "__main__":
    unittest.main()
