"""lumokeys-server processes: LumoServer (one server on a fresh database
with its own secrets) and LumoReplica (another server process on the same
database and secrets).

The temp dir of a LumoServer holds the pepper file, the operator/service
token files and the database password file (all mode 0600) and server.log
(the server's stdout and stderr, every start appended with a `===` line).
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from harness.env import HarnessError, TIME_SCALE, binary_dir, \
    built_program, dies_with_harness_prefix, free_loopback_port, read_log, \
    require_env, run_as_prefix, source_dir, stop_process, write_secret
from harness.mariadb import MysqlDsn

# The portal's password hashing cost for tests (`--portal_scrypt_log_n`,
# docs/portal.md): on a 2-core test machine the production cost (N=2^17,
# 128 MiB) takes seconds per login under load, which would make every
# login-heavy test slow. portal_unit_test asserts the production default.
FAST_PORTAL_HASHING = ("--portal_scrypt_log_n=12",)

_DSN_HINT = ("the end-to-end tests need a MariaDB/MySQL admin DSN such as "
             "mysql://lumo_admin:PW@127.0.0.1:3307/ (tools/dev/test.sh starts "
             "a private MariaDB and exports it)")


def _launch(command, log_path, banner, env, ready, label, port_of):
    """Starts `command` (stdout and stderr appended to `log_path` after a
    `=== banner` line) and polls `ready()` until it is true. Retries on a
    fresh port (`port_of()` picks it and returns the command's listen flag
    values) when the port was taken meanwhile. Returns the Popen."""
    last_error = None
    for _ in range(3):
        listen = port_of()
        with open(log_path, "ab") as log:
            log.write(f"=== {banner} {listen}\n".encode())
            log.flush()
            process = subprocess.Popen(
                dies_with_harness_prefix() + command + [listen],
                cwd=source_dir(), stdout=log, stderr=log,
                stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + LumoServer.START_TIMEOUT_S * TIME_SCALE
        while True:
            code = process.poll()
            if code is not None:
                last_error = HarnessError(
                    f"{label} exited with {code} during start-up; log:\n"
                    f"{read_log(log_path)}")
                break
            if ready():
                return process
            if time.monotonic() > deadline:
                stop_process(process)
                raise HarnessError(
                    f"{label} did not become SERVING within "
                    f"{LumoServer.START_TIMEOUT_S * TIME_SCALE} s; log:\n"
                    f"{read_log(log_path)}")
            time.sleep(0.2)
        # Only a lost race for the port is worth another try.
        if "in use" not in read_log(log_path).lower():
            raise last_error
    raise last_error


def _port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class LumoServer:
    """One lumokeys-server process with its own database and secrets. Not
    thread-safe: one test drives it.

        server = LumoServer(extra_args=["--verify_cache_ttl=2s"])
        server.start()       # temp dir, secrets, migrated database, server
        try:
            key = server.create_tenant("acme")
            server.terminate()   # SIGTERM; database and secrets stay
            server.start()       # the same database, on a new port
        finally:
            server.stop()        # process, database and temp dir gone

    `extra_args` are lumokeys-server flags for serving (not for
    --migrate); a subclass may extend server_command() instead. `mysql_dsn`
    is the admin DSN (default LUMO_TEST_MYSQL_DSN: the harness fails, never
    skips, without one). `env` adds environment variables to the server's.
    `run_as`: a uid (and gid) to run the server as; when the harness runs
    as root, the temp dir, the secrets and a copy of the migrations are
    handed to it and the server is started through setpriv (otherwise
    ignored).

    LUMO_TEST_ALLOW_NONDURABLE_DB=1 passes --allow_nondurable_db;
    LUMO_TEST_KEEP_DIR=1 keeps the temp dir after stop().
    """

    START_TIMEOUT_S = 60
    STOP_GRACE_S = 10

    def __init__(self, extra_args=(), mysql_dsn=None, env=None, run_as=None):
        self.extra_args = list(extra_args)
        self.mysql = MysqlDsn(mysql_dsn or require_env(
            "LUMO_TEST_MYSQL_DSN", _DSN_HINT))
        self.env = dict(env or {})
        self.run_as = run_as
        self.source_dir = source_dir()
        self.binary_dir = binary_dir()
        self.server_binary = built_program("server", "lumokeys-server")
        self.cli_binary = built_program("client", "lumokeys")
        self.migrations_dir = os.path.join(self.source_dir, "sql",
                                           "migrations")
        self.database = "lumo_e2e_" + secrets.token_hex(6)
        self.tmpdir = None
        self.process = None
        self.port = None
        self.address = None
        self.log_path = None
        self.pepper_path = None
        self.operator_token_path = None
        self.service_token_path = None
        self.mysql_password_path = None
        self.operator_token = None
        self.service_token = None
        self._database_created = False

    # ----- lifecycle ---------------------------------------------------

    def start(self):
        """The first call creates the temp dir and secrets and migrates a
        fresh database (cleaning everything up if that or the start fails);
        every call starts the server on a free port and returns when it
        answers health checks. Returns self."""
        if self.process is not None:
            raise HarnessError("lumokeys-server is already running")
        first = self.tmpdir is None
        try:
            if first:
                self._prepare()
            self.process = _launch(
                run_as_prefix(self.run_as) + self.server_command(),
                self.log_path, "lumokeys-server", self._process_env(),
                self._serving, "lumokeys-server", self._pick_port)
        except BaseException:
            if first:
                self.stop()
            raise
        return self

    def _prepare(self):
        self.tmpdir = tempfile.mkdtemp(prefix="lumo-e2e-")
        os.chmod(self.tmpdir, 0o700)
        self.log_path = os.path.join(self.tmpdir, "server.log")
        self.pepper_path = os.path.join(self.tmpdir, "pepper")
        self.operator_token_path = os.path.join(self.tmpdir, "operator.token")
        self.service_token_path = os.path.join(self.tmpdir, "service.token")
        self.mysql_password_path = os.path.join(self.tmpdir, "mysql.password")
        self.operator_token = secrets.token_urlsafe(32)
        self.service_token = secrets.token_urlsafe(32)
        write_secret(self.pepper_path, f"1:{secrets.token_hex(32)}\n")
        write_secret(self.operator_token_path, self.operator_token + "\n")
        write_secret(self.service_token_path, self.service_token + "\n")
        write_secret(self.mysql_password_path, self.mysql.password + "\n")
        if self.run_as is not None and os.geteuid() == 0:
            for path in (self.tmpdir, self.pepper_path,
                         self.operator_token_path, self.service_token_path,
                         self.mysql_password_path):
                os.chown(path, self.run_as, self.run_as)
            # The checkout may sit in a folder only root can enter (a
            # `mktemp -d` clone is 0700): the server, once it runs as
            # `run_as`, reads its own copy of the migrations.
            copy = os.path.join(self.tmpdir, "migrations")
            shutil.copytree(self.migrations_dir, copy)
            for path in [copy] + [os.path.join(copy, name)
                                  for name in os.listdir(copy)]:
                os.chown(path, self.run_as, self.run_as)
            self.migrations_dir = copy
        self._migrate()

    def _migrate(self):
        # As the serving process will run: the secret files belong to it.
        args = run_as_prefix(self.run_as) + self.base_command() + [
            "--migrate", f"--migrations_dir={self.migrations_dir}"]
        # From here on the database may exist: teardown drops it.
        self._database_created = True
        with open(self.log_path, "ab") as log:
            log.write(b"=== lumokeys-server --migrate\n")
            log.flush()
            result = subprocess.run(
                args, cwd=self.source_dir, stdout=log, stderr=log,
                stdin=subprocess.DEVNULL, env=self._process_env(),
                timeout=120 * TIME_SCALE)
        if result.returncode != 0:
            raise HarnessError(
                f"lumokeys-server --migrate exited with {result.returncode}; "
                f"log:\n{self.server_log()}")

    def _pick_port(self):
        self.port = free_loopback_port()
        self.address = f"127.0.0.1:{self.port}"
        return f"--listen={self.address}"

    def _serving(self):
        return _port_open(self.port) and self.cli(
            "health", "--timeout", "2").returncode == 0

    def _process_env(self):
        env = dict(os.environ)
        env.update(self.env)
        return env

    def base_command(self):
        """The server binary with the database and secret flags: what every
        mode (serving, --migrate, one-shot checks) needs."""
        args = [
            self.server_binary,
            f"--mysql={self.mysql.without_password(self.database)}",
            f"--mysql_password_file={self.mysql_password_path}",
            f"--pepper_file={self.pepper_path}",
            f"--operator_token_file={self.operator_token_path}",
            f"--service_token_file={self.service_token_path}",
        ]
        if os.environ.get("LUMO_TEST_ALLOW_NONDURABLE_DB") == "1":
            args.append("--allow_nondurable_db")
        return args

    def server_command(self):
        """base_command() plus the serving flags (`extra_args`); the harness
        adds --listen. Subclasses extend it."""
        return self.base_command() + self.extra_args

    def run_once(self, *args, timeout=120):
        """Runs server_command() + `args` to completion (a one-shot mode
        such as a purge or a check, or a start that must be refused) and
        returns the CompletedProcess (text, output captured)."""
        return subprocess.run(
            run_as_prefix(self.run_as) + self.server_command() + list(args),
            cwd=self.source_dir, env=self._process_env(), capture_output=True,
            text=True, timeout=timeout * TIME_SCALE, stdin=subprocess.DEVNULL)

    def terminate(self, timeout=30):
        """SIGTERM and waits for the exit (SIGKILL after `timeout` x
        TIME_SCALE seconds); returns the exit code (-9 if it had to be
        killed). The database and secrets stay: start() serves again."""
        code, _ = stop_process(self.process, timeout)
        self.process = None
        return code

    def kill(self):
        """SIGKILL (a crash: nothing is flushed) and waits for the exit."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process = None

    def stop(self):
        """Stops the server (SIGTERM, SIGKILL after STOP_GRACE_S), drops the
        database and removes the temp dir. Safe to call more than once."""
        errors = []
        if self.process is not None:
            _, killed = stop_process(self.process, self.STOP_GRACE_S)
            if killed:
                errors.append("lumokeys-server ignored SIGTERM for "
                              f"{self.STOP_GRACE_S * TIME_SCALE} s; killed it")
            self.process = None
        if self._database_created:
            result = self.sql(f"DROP DATABASE IF EXISTS `{self.database}`",
                              database=None, check=False)
            if result.returncode != 0:
                errors.append(f"dropping {self.database} failed: "
                              f"{result.stderr.strip()}")
            self._database_created = False
        if self.tmpdir is not None:
            if os.environ.get("LUMO_TEST_KEEP_DIR") == "1":
                print(f"keeping {self.tmpdir}", file=sys.stderr)
            else:
                shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None
        if errors:
            print("harness teardown: " + "; ".join(errors), file=sys.stderr)

    # ----- helpers for tests -------------------------------------------

    def write_secret(self, name, content):
        """Writes `content` to a new mode-0600 file `name` in the temp dir
        and returns its path."""
        return write_secret(os.path.join(self.tmpdir, name), content)

    def server_log(self):
        """Everything the server wrote so far (migrate + every start)."""
        if not self.log_path:
            return "(no server log)"
        return read_log(self.log_path, "(no server log)")

    def threads(self):
        """The number of threads of the running server process."""
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
        raise HarnessError("no Threads: line")

    def operator_md(self):
        """gRPC metadata with the operator token."""
        return (("x-lumo-operator-token", self.operator_token),)

    def service_md(self):
        """gRPC metadata with the service token."""
        return (("x-lumo-service-token", self.service_token),)

    def cli_env(self, env=None):
        """The environment for the CLI: the process environment without any
        LUMOKEYS_* variable, plus the address and both token files, plus
        `env` (a value of None removes a variable)."""
        result = {k: v for k, v in os.environ.items()
                  if not k.startswith("LUMOKEYS_")}
        result["LUMOKEYS_ADDRESS"] = self.address or ""
        result["LUMOKEYS_OPERATOR_TOKEN_FILE"] = self.operator_token_path
        result["LUMOKEYS_SERVICE_TOKEN_FILE"] = self.service_token_path
        for key, value in (env or {}).items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = value
        return result

    def cli(self, *args, env=None, input=None, timeout=60):
        """Runs `lumokeys ARGS` and returns the CompletedProcess (text mode,
        stdout and stderr captured). `input` is fed to stdin (else stdin is
        empty)."""
        return subprocess.run(
            [self.cli_binary, *args], env=self.cli_env(env),
            input=input if input is not None else "",
            capture_output=True, text=True, timeout=timeout)

    def create_tenant(self, slug, scopes="admin:write"):
        """Creates tenant `slug` with a first key; returns that key."""
        result = self.cli("--json", "tenant", "create", slug, "--scopes",
                          scopes)
        if result.returncode != 0:
            raise HarnessError(f"tenant create failed: {result.stderr}")
        return json.loads(result.stdout)["initialKey"]["key"]

    def tenant_cli_json(self, tenant, key, *args):
        """Runs `lumokeys --json --tenant TENANT ARGS` authenticated with the
        API key `key`; returns the parsed output (HarnessError on failure)."""
        result = self.cli("--json", "--tenant", tenant, *args,
                          env={"LUMOKEYS_API_KEY": key})
        if result.returncode != 0:
            raise HarnessError(f"lumokeys {' '.join(args)} failed: "
                               f"{result.stderr}")
        return json.loads(result.stdout)

    def verify_reason(self, tenant, key):
        """The reason a real VerifyApiKey gives for `key` in `tenant`
        (VALID, REVOKED, NOT_FOUND, ...)."""
        result = self.cli("--json", "--tenant", tenant, "verify",
                          input=key + "\n")
        if result.returncode not in (0, 1):
            raise HarnessError(f"verify failed: {result.stderr}")
        return json.loads(result.stdout).get("reason", "")

    def sql(self, statement, database="", check=True):
        """Runs one SQL statement with the mariadb client as the admin user,
        in `database` (default: the test database; None: no database); see
        MysqlDsn.sql."""
        return self.mysql.sql(
            statement, self.database if database == "" else database, check)

    def rows(self, statement):
        """The rows of one query in the test database (no header)."""
        return self.mysql.rows(statement, self.database)

    def mysqldump(self, *extra_args):
        """The full mysqldump of the test database, as text."""
        return self.mysql.mysqldump(self.database, *extra_args)


class LumoReplica:
    """One more lumokeys-server process on the database and secrets of a
    started LumoServer: another replica behind the same MariaDB. Its log is
    <server tmpdir>/<name>.log. Not thread-safe.

        replica = LumoReplica(server, "b").start()  # waits for health
        replica.kill()       # SIGKILL (a crash: no deregistration)
        replica.stop()       # SIGTERM, SIGKILL after 10 s; safe to repeat
    """

    def __init__(self, server, name, extra_args=()):
        self.server = server
        self.name = name
        self.extra_args = list(extra_args)
        self.process = None
        self.port = None
        self.address = None
        self.log_path = os.path.join(server.tmpdir, f"{name}.log")

    def start(self):
        """Starts it on a free port; returns self once it is SERVING."""
        self.process = _launch(
            self.server.server_command() + self.extra_args, self.log_path,
            f"replica {self.name}", self.server._process_env(),
            lambda: self.server.cli("health", "--timeout", "2", env={
                "LUMOKEYS_ADDRESS": self.address}).returncode == 0,
            f"replica {self.name}", self._pick_port)
        return self

    def _pick_port(self):
        self.port = free_loopback_port()
        self.address = f"127.0.0.1:{self.port}"
        return f"--listen={self.address}"

    def kill(self):
        """SIGKILL and waits for the exit."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self):
        """SIGTERM, SIGKILL after STOP_GRACE_S. Safe to repeat."""
        if self.process is None:
            return
        stop_process(self.process, LumoServer.STOP_GRACE_S)
        self.process = None

    def log(self):
        """Everything the replica wrote so far."""
        return read_log(self.log_path, "(no replica log)")
