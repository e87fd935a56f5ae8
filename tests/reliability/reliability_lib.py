"""Shared pieces of the reliability and security tests.

Python 3 standard library plus Debian's python3-grpcio/python3-protobuf
(run with /usr/bin/python3). Everything runs against real processes:

  PrivateMariaDb  a MariaDB of the test's own (tools/dev/mariadb.sh with a
                  temporary run folder and a free port), which a test may
                  stop, restart or kill -9 without disturbing other tests.
  ServerProcess   one lumokeys-server process on a database, which a test
                  may kill -9 and start again.
  Stubs           Python gRPC stubs generated from proto/ at test time.

Environment: LUMO_SOURCE_DIR, LUMO_BINARY_DIR (set by ctest).
"""

import glob
import importlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

import grpc

SRC = os.environ.get("LUMO_SOURCE_DIR", os.path.abspath(
    os.path.join(os.path.dirname(__file__), "../..")))
BIN = os.environ.get("LUMO_BINARY_DIR", os.path.join(SRC, "build"))
SERVER = os.path.join(BIN, "server", "lumokeys-server")
GATEWAY = os.path.join(BIN, "gateway", "lumokeys-gateway")
MARIADB_SH = os.path.join(SRC, "tools", "dev", "mariadb.sh")
GRPC_PYTHON_PLUGIN = "/usr/bin/grpc_python_plugin"


def free_port():
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_secret(path, content):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(content + "\n")


# ----------------------------------------------------------------------------
# gRPC stubs

class Stubs:
    """Generated modules: keys_pb2/keys_grpc, auth_pb2/auth_grpc,
    ops_pb2/ops_grpc. Generated once per process."""

    _dir = None

    def __init__(self):
        if Stubs._dir is None:
            out = tempfile.mkdtemp(prefix="lumo-relstubs-")
            proto_root = os.path.join(SRC, "proto")
            protos = sorted(glob.glob(os.path.join(proto_root, "lumo", "**",
                                                   "*.proto"), recursive=True))
            subprocess.run(
                ["protoc", f"--proto_path={proto_root}",
                 f"--python_out={out}", f"--grpc_python_out={out}",
                 f"--plugin=protoc-gen-grpc_python={GRPC_PYTHON_PLUGIN}",
                 *protos], check=True, capture_output=True)
            for directory, _, _ in os.walk(os.path.join(out, "lumo")):
                open(os.path.join(directory, "__init__.py"), "a").close()
            sys.path.insert(0, out)
            Stubs._dir = out
        imp = importlib.import_module
        self.keys_pb2 = imp("lumo.keys.v1.keys_pb2")
        self.keys_grpc = imp("lumo.keys.v1.keys_pb2_grpc")
        self.auth_pb2 = imp("lumo.auth.v1.auth_pb2")
        self.auth_grpc = imp("lumo.auth.v1.auth_pb2_grpc")
        self.ops_pb2 = imp("lumo.ops.v1.ops_pb2")
        self.ops_grpc = imp("lumo.ops.v1.ops_pb2_grpc")

    @classmethod
    def cleanup(cls):
        if cls._dir is not None:
            if cls._dir in sys.path:
                sys.path.remove(cls._dir)
            shutil.rmtree(cls._dir, ignore_errors=True)
            cls._dir = None


# ----------------------------------------------------------------------------
# MariaDB

class PrivateMariaDb:
    """A MariaDB of the test's own: start(), stop(), kill9()."""

    def __init__(self, tmpdir):
        self.run_dir = os.path.join(tmpdir, "run")
        self.port = free_port()
        self.env = dict(os.environ, LUMO_RUN_DIR=self.run_dir,
                        LUMO_MYSQL_PORT=str(self.port))

    def _sh(self, action):
        return subprocess.run([MARIADB_SH, action], env=self.env, check=True,
                              capture_output=True, text=True).stdout

    def start(self):
        self._sh("start")

    def stop(self):
        self._sh("stop")

    def pid(self):
        with open(os.path.join(self.run_dir, "mariadb", "mysqld.pid")) as f:
            return int(f.read().strip())

    def kill9(self):
        """SIGKILL of mariadbd; returns when it is gone."""
        pid = self.pid()
        os.kill(pid, signal.SIGKILL)
        for _ in range(200):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        raise AssertionError("mariadbd survived SIGKILL")

    def admin_dsn(self):
        return self._sh("admin-dsn").strip()


class Sql:
    """The mariadb command-line client as the admin of a DSN."""

    def __init__(self, admin_dsn):
        parts = urllib.parse.urlsplit(admin_dsn)
        self.user = urllib.parse.unquote(parts.username)
        self.password = urllib.parse.unquote(parts.password or "")
        self.host = parts.hostname
        self.port = parts.port
        self.env = dict(os.environ, MYSQL_PWD=self.password)

    def args(self):
        return ["mariadb", "--no-defaults", f"-h{self.host}",
                f"-P{self.port}", f"-u{self.user}", "--batch",
                "--skip-column-names"]

    def rows(self, statement, database=None, check=True):
        cmd = self.args() + ["-e", statement]
        if database:
            cmd.append(database)
        r = subprocess.run(cmd, env=self.env, capture_output=True, text=True,
                           timeout=120)
        if check and r.returncode != 0:
            raise AssertionError(f"mariadb failed: {r.stderr.strip()}")
        return [line.split("\t") for line in r.stdout.splitlines()]

    def hold(self, script, database=None):
        """Starts the client on `script` (stdin kept open) and returns the
        Popen; the caller ends it."""
        cmd = self.args() + ["--unbuffered"] + ([database] if database else [])
        p = subprocess.Popen(cmd, env=self.env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        p.stdin.write(script)
        p.stdin.flush()
        return p


# ----------------------------------------------------------------------------
# lumokeys-server

class ServerProcess:
    """lumokeys-server on `database` of `admin_dsn`, with its own secrets in
    `tmpdir`. start() migrates on first use and waits for health."""

    def __init__(self, tmpdir, admin_dsn, database, extra_args=()):
        self.tmpdir = tmpdir
        self.admin_dsn = admin_dsn
        self.database = database
        self.extra_args = list(extra_args)
        self.pepper = os.path.join(tmpdir, "pepper")
        self.operator_token_path = os.path.join(tmpdir, "operator.token")
        self.service_token_path = os.path.join(tmpdir, "service.token")
        self.password_path = os.path.join(tmpdir, "mysql.password")
        self.operator_token = secrets.token_urlsafe(24)
        self.service_token = secrets.token_urlsafe(24)
        parts = urllib.parse.urlsplit(admin_dsn)
        write_secret(self.pepper, "1:" + secrets.token_hex(32))
        write_secret(self.operator_token_path, self.operator_token)
        write_secret(self.service_token_path, self.service_token)
        write_secret(self.password_path,
                     urllib.parse.unquote(parts.password or ""))
        user = parts.username
        self.dsn = f"mysql://{user}@{parts.hostname}:{parts.port}/{database}"
        self.log_path = os.path.join(tmpdir, f"server-{database}.log")
        self.process = None
        self.address = None
        self.migrated = False
        self.starts = 0

    def _common(self):
        return [SERVER, "--mysql=" + self.dsn,
                "--mysql_password_file=" + self.password_path,
                "--pepper_file=" + self.pepper,
                "--operator_token_file=" + self.operator_token_path,
                "--service_token_file=" + self.service_token_path]

    def start(self, timeout=60):
        if not self.migrated:
            with open(self.log_path, "ab") as log:
                subprocess.run(
                    self._common() + ["--migrate", "--migrations_dir=" +
                                      os.path.join(SRC, "sql", "migrations")],
                    check=True, stdout=log, stderr=log, cwd=SRC)
            self.migrated = True
        self.address = "127.0.0.1:%d" % free_port()
        log = open(self.log_path, "ab")
        log.write(f"=== start {self.starts}\n".encode())
        log.flush()
        self.starts += 1
        self.process = subprocess.Popen(
            self._common() + ["--listen=" + self.address] + self.extra_args,
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=SRC)
        log.close()
        channel = grpc.insecure_channel(self.address)
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise AssertionError("server did not come up:\n" + self.log())
        finally:
            channel.close()
        if self.process.poll() is not None:
            raise AssertionError("server exited:\n" + self.log())

    def kill9(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process = None

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def threads(self):
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
        raise AssertionError("no Threads: line")

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-20000:]
        except OSError:
            return "(no log)"


def server_with_flags(flags):
    """A harness.LumoServer (tests/e2e/harness.py) started with extra
    lumokeys-server flags."""
    import harness

    class _Server(harness.LumoServer):
        def _server_args(self):
            # --migrate runs with the same arguments; they are harmless there.
            return super()._server_args() + list(flags)
    return _Server()


def operator_md(server):
    return (("x-lumo-operator-token", server.operator_token),)


def key_md(key):
    return (("authorization", "Bearer " + key),)


def create_tenant(stubs, channel, server, slug, scopes=("admin:write",)):
    """Creates `slug` with an initial key; returns the full key."""
    ops = stubs.ops_grpc.OperatorServiceStub(channel)
    req = stubs.ops_pb2.CreateTenantRequest(slug=slug, name=slug)
    req.initial_key.name = "root"
    req.initial_key.scopes.extend(scopes)
    resp = ops.CreateTenant(req, metadata=operator_md(server), timeout=30)
    return resp.initial_key.key
