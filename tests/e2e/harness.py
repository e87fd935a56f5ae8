"""End-to-end test harness: a real lumokeys-server on a fresh MariaDB database.

Python 3 standard library only (run with Debian's /usr/bin/python3).

Environment:
  LUMO_TEST_MYSQL_DSN  admin DSN without a database, e.g.
                       mysql://lumo_admin:PW@127.0.0.1:3307/  (required: the
                       harness fails, never skips, without it)
  LUMO_BINARY_DIR      the CMake build directory (holds server/lumokeys-server
                       and client/lumokeys)
  LUMO_SOURCE_DIR      the source tree (for sql/migrations)
  LUMO_TEST_ALLOW_NONDURABLE_DB=1  pass --allow_nondurable_db to the server
  LUMO_TEST_KEEP_DIR=1 keep the temporary directory after teardown

Usage:

    server = LumoServer()
    server.start()          # temp dir, secrets, database, migrations, server
    try:
        result = server.cli("tenant", "create", "acme")
    finally:
        server.stop()       # SIGTERM (SIGKILL after 10 s), DROP DATABASE

or derive test classes from LumoServerTestCase, which starts one server per
class and prints the server log when a test fails.

The temp dir holds the pepper file, the operator/service token files and
the database password file (all mode 0600) and server.log (the server's
stderr and stdout). The database password never goes on a command line: the
server reads it from --mysql_password_file, the MariaDB tools from
MYSQL_PWD.
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import http.client
import json

# Factor for waits that bound how long a test lets the product take (not
# for assertions about the product's own deadlines). 1 normally;
# tools/dev/sanitize.sh sets LUMO_TEST_TIME_SCALE because instrumented
# processes are several times slower.
TIME_SCALE = max(1, int(os.environ.get("LUMO_TEST_TIME_SCALE", "1") or "1"))


class HarnessError(Exception):
    """The test environment is incomplete or the server did not come up."""


def _require_env(name, hint):
    value = os.environ.get(name, "")
    if not value:
        raise HarnessError(f"{name} is not set: {hint}")
    return value


class MysqlDsn:
    """A parsed mysql://user:password@host:port/[database] DSN."""

    def __init__(self, dsn):
        parts = urllib.parse.urlsplit(dsn)
        if parts.scheme != "mysql" or not parts.hostname:
            raise HarnessError(
                "LUMO_TEST_MYSQL_DSN must look like "
                "mysql://user:password@127.0.0.1:3307/ (scheme and host "
                "are required)")
        self.dsn = dsn
        self.user = urllib.parse.unquote(parts.username or "")
        self.password = urllib.parse.unquote(parts.password or "")
        self.host = parts.hostname
        self.port = parts.port or 3306
        if not self.user:
            raise HarnessError("LUMO_TEST_MYSQL_DSN has no user name")

    def without_password(self, database):
        """The DSN of `database` with the user but no password (which goes
        to the server through --mysql_password_file)."""
        user = urllib.parse.quote(self.user, safe="")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mysql://{user}@{host}:{self.port}/{database}"

    def tool_args(self):
        """Connection arguments for mariadb/mysqldump (password via env)."""
        return ["--no-defaults", f"-h{self.host}", f"-P{self.port}",
                f"-u{self.user}"]

    def tool_env(self):
        env = dict(os.environ)
        env["MYSQL_PWD"] = self.password
        return env


def free_loopback_port():
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_as_prefix(uid):
    """The command prefix that runs a program as `uid` (and gid `uid`, no
    supplementary groups): setpriv when the harness is root, nothing
    otherwise (the program then runs as the harness's user)."""
    if uid is None or os.geteuid() != 0:
        return []
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]


def _write_secret(path, content):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(content)


class LumoServer:
    """One lumokeys-server process with its own database and secrets."""

    START_TIMEOUT_S = 60
    STOP_GRACE_S = 10

    def __init__(self, run_as=None):
        """`run_as`: a uid (and gid) to run the serving process as; when
        the harness runs as root, the temp dir and the secrets are handed to
        it and the server is started through setpriv. Otherwise ignored:
        the server runs as the harness's own user."""
        self.run_as = run_as
        self.mysql = MysqlDsn(_require_env(
            "LUMO_TEST_MYSQL_DSN",
            "the end-to-end tests need a MariaDB/MySQL admin DSN such as "
            "mysql://lumo_admin:PW@127.0.0.1:3307/ (tools/dev/test.sh starts "
            "a private MariaDB and exports it)"))
        self.binary_dir = _require_env(
            "LUMO_BINARY_DIR", "set it to the CMake build directory")
        self.source_dir = _require_env(
            "LUMO_SOURCE_DIR", "set it to the source tree")
        self.server_binary = os.path.join(
            self.binary_dir, "server", "lumokeys-server")
        self.cli_binary = os.path.join(self.binary_dir, "client", "lumokeys")
        for binary in (self.server_binary, self.cli_binary):
            if not os.access(binary, os.X_OK):
                raise HarnessError(
                    f"{binary} does not exist or is not executable; build it "
                    "first (cmake --build <build dir>)")
        self.migrations_dir = os.path.join(
            self.source_dir, "sql", "migrations")

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
        """Creates the secrets, migrates a fresh database, starts the server
        and waits until it answers health checks. Cleans up on failure."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self):
        self.tmpdir = tempfile.mkdtemp(prefix="lumo-e2e-")
        os.chmod(self.tmpdir, 0o700)
        self.log_path = os.path.join(self.tmpdir, "server.log")
        self.pepper_path = os.path.join(self.tmpdir, "pepper")
        self.operator_token_path = os.path.join(self.tmpdir, "operator.token")
        self.service_token_path = os.path.join(self.tmpdir, "service.token")
        self.mysql_password_path = os.path.join(self.tmpdir, "mysql.password")
        self.operator_token = secrets.token_urlsafe(32)
        self.service_token = secrets.token_urlsafe(32)
        _write_secret(self.pepper_path, f"1:{secrets.token_hex(32)}\n")
        _write_secret(self.operator_token_path, self.operator_token + "\n")
        _write_secret(self.service_token_path, self.service_token + "\n")
        _write_secret(self.mysql_password_path, self.mysql.password + "\n")
        if self.run_as is not None and os.geteuid() == 0:
            for path in (self.tmpdir, self.pepper_path,
                         self.operator_token_path, self.service_token_path,
                         self.mysql_password_path):
                os.chown(path, self.run_as, self.run_as)

        self._migrate()
        last_error = None
        for _ in range(3):
            self.port = free_loopback_port()
            self.address = f"127.0.0.1:{self.port}"
            try:
                self._launch_and_wait()
                return
            except HarnessError as e:
                # Only a lost race for the port is worth another try.
                last_error = e
                if "in use" not in self.server_log().lower():
                    raise
        raise last_error

    def _server_args(self):
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

    def _migrate(self):
        # As the serving process will run: the secret files belong to it.
        args = run_as_prefix(self.run_as) + self._server_args() + [
            "--migrate", f"--migrations_dir={self.migrations_dir}"]
        # From here on the database may exist: teardown drops it.
        self._database_created = True
        with open(self.log_path, "ab") as log:
            log.write(b"=== lumokeys-server --migrate\n")
            log.flush()
            result = subprocess.run(
                args, cwd=self.source_dir, stdout=log, stderr=log,
                stdin=subprocess.DEVNULL, timeout=120)
        if result.returncode != 0:
            raise HarnessError(
                f"lumokeys-server --migrate exited with {result.returncode}; "
                f"log:\n{self.server_log()}")

    def _launch_and_wait(self):
        args = run_as_prefix(self.run_as) + self._server_args() + [
            f"--listen={self.address}"]
        with open(self.log_path, "ab") as log:
            log.write(f"=== lumokeys-server --listen={self.address}\n"
                      .encode())
            log.flush()
            self.process = subprocess.Popen(
                args, cwd=self.source_dir, stdout=log, stderr=log,
                stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.START_TIMEOUT_S
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self.process = None
                raise HarnessError(
                    f"lumokeys-server exited with {code} during start-up; "
                    f"log:\n{self.server_log()}")
            if self._port_open() and self.cli(
                    "health", "--timeout", "2").returncode == 0:
                return
            time.sleep(0.2)
        raise HarnessError(
            f"lumokeys-server did not become SERVING within "
            f"{self.START_TIMEOUT_S} s; log:\n{self.server_log()}")

    def _port_open(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port),
                                          timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self):
        """Stops the server (SIGTERM, SIGKILL after 10 s), drops the
        database and removes the temp dir. Safe to call more than once."""
        errors = []
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=self.STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
                    errors.append("lumokeys-server ignored SIGTERM for "
                                  f"{self.STOP_GRACE_S} s; killed it")
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
        path = os.path.join(self.tmpdir, name)
        _write_secret(path, content)
        return path

    def server_log(self):
        """Everything the server wrote so far (migrate + serve)."""
        if not self.log_path or not os.path.exists(self.log_path):
            return "(no server log)"
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

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
        in `database` (default: the test database; None: no database)."""
        args = ["mariadb", *self.mysql.tool_args(), "--batch",
                "-e", statement]
        if database is not None:
            args.append(database or self.database)
        result = subprocess.run(args, env=self.mysql.tool_env(),
                                capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise HarnessError(f"mariadb failed: {result.stderr.strip()}")
        return result

    def mysqldump(self, *extra_args):
        """The full mysqldump of the test database, as text."""
        result = subprocess.run(
            ["mysqldump", *self.mysql.tool_args(), *extra_args,
             self.database],
            env=self.mysql.tool_env(), capture_output=True, timeout=120)
        if result.returncode != 0:
            raise HarnessError("mysqldump failed: "
                               + result.stderr.decode("utf-8", "replace"))
        return result.stdout.decode("utf-8", "replace")


class LogOnFailure:
    """unittest.TestCase mixin: after a failing or erroring test, prints
    what failure_log() returns to stderr."""

    def failure_log(self):
        raise NotImplementedError

    def run(self, result=None):
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        outcome = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            log = self.failure_log()
            if not log.endswith("\n"):
                log += "\n"
            sys.stderr.write(f"\n===== log for {self.id()} =====\n{log}"
                             "===== end of log =====\n")
        return outcome


class LumoServerTestCase(LogOnFailure, unittest.TestCase):
    """Starts one LumoServer per test class (as `cls.server`) and prints its
    log to stderr after a failing or erroring test. A class may set
    `server_class` to a LumoServer subclass (other server flags)."""

    server = None
    server_class = LumoServer

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = cls.server_class()
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        if cls.server is not None:
            cls.server.stop()
            cls.server = None
        super().tearDownClass()

    def failure_log(self):
        server = type(self).server
        return server.server_log() if server is not None else "(none)\n"


class LumoGateway:
    """A lumokeys-gateway process in front of a started LumoServer, with a
    tiny HTTP client (`request`) and a raw-socket helper (`raw`).
    `extra_args` go to the gateway's command line; `name` names its log
    (<server tmpdir>/<name>.log) when a test runs several.

    `request_timeout` is the gateway's --request_timeout: short by default so
    slow-client tests finish quickly (scaled by TIME_SCALE on slow
    machines); tests whose requests legitimately take long on a loaded
    machine (large exports) pass a longer one."""

    def __init__(self, server, request_timeout=None, extra_args=(),
                 name="gateway"):
        if request_timeout is None:
            request_timeout = "%ds" % (3 * TIME_SCALE)
        self.server = server
        self.port = free_loopback_port()
        self.log_path = os.path.join(server.tmpdir, name + ".log")
        binary = os.path.join(server.binary_dir, "gateway", "lumokeys-gateway")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [binary, "--listen=127.0.0.1:%d" % self.port,
             "--upstream=" + server.address,
             "--service_token_file=" + server.service_token_path,
             "--request_timeout=" + request_timeout, *extra_args],
            stdout=self.log, stderr=self.log)
        deadline = time.time() + 20 * TIME_SCALE
        while True:
            try:
                status, _, _ = self.request("GET", "/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            if self.process.poll() is not None or time.time() > deadline:
                raise HarnessError("gateway did not start:\n" + open(self.log_path).read())
            time.sleep(0.1)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=10 * TIME_SCALE)
        try:
            hdrs = dict(headers or {})
            data = None
            if body is not None:
                data = body if isinstance(body, (bytes, str)) else json.dumps(body)
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, raw
        finally:
            conn.close()

    def raw(self, data, read_timeout=None):
        """Sends raw bytes; returns what came back (one response, or all
        until EOF or `read_timeout`, default longer than the gateway's
        request timeout so that a 408 is seen)."""
        if read_timeout is None:
            read_timeout = 5 * TIME_SCALE
        with socket.create_connection(("127.0.0.1", self.port), timeout=read_timeout) as s:
            s.sendall(data)
            chunks = []
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    if b"\r\n\r\n" in b"".join(chunks):
                        head, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
                        length = 0
                        for line in head.split(b"\r\n")[1:]:
                            k, _, v = line.partition(b":")
                            if k.strip().lower() == b"content-length":
                                length = int(v.strip())
                        if len(rest) >= length:
                            break
            except socket.timeout:
                pass
            return b"".join(chunks)


# ----- replicas ----------------------------------------------


class LumoReplica:
    """One more lumokeys-server process on the database and secrets of a
    started LumoServer: another replica behind the same MariaDB. Its log is
    <server tmpdir>/<name>.log.

        replica = LumoReplica(server, "b")
        replica.start()      # waits until it answers health checks
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
        last_error = None
        for _ in range(3):
            self.port = free_loopback_port()
            self.address = f"127.0.0.1:{self.port}"
            try:
                self._launch_and_wait()
                return self
            except HarnessError as e:
                last_error = e
                self.stop()
                if "in use" not in self.log().lower():
                    raise
        raise last_error

    def _launch_and_wait(self):
        args = (self.server._server_args() + [f"--listen={self.address}"]
                + self.extra_args)
        with open(self.log_path, "ab") as log:
            log.write(f"=== replica {self.name} --listen={self.address}\n"
                      .encode())
            log.flush()
            self.process = subprocess.Popen(
                args, cwd=self.server.source_dir, stdout=log, stderr=log,
                stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + LumoServer.START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HarnessError(
                    f"replica {self.name} exited during start-up; log:\n"
                    f"{self.log()}")
            if self.server.cli("health", "--timeout", "2", env={
                    "LUMOKEYS_ADDRESS": self.address}).returncode == 0:
                return
            time.sleep(0.2)
        raise HarnessError(f"replica {self.name} did not become SERVING; "
                           f"log:\n{self.log()}")

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self):
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=LumoServer.STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log(self):
        if not os.path.exists(self.log_path):
            return "(no replica log)"
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")
