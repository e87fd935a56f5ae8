"""MariaDB for the end-to-end tests: the admin DSN and its command-line
tools (MysqlDsn), and a private MariaDB a test may stop or kill
(PrivateMariaDb).

The admin password never goes on a command line: the MariaDB tools get it
through MYSQL_PWD, the server through --mysql_password_file.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse

from harness.env import HarnessError, TIME_SCALE, free_loopback_port, \
    source_dir


class MysqlDsn:
    """A parsed mysql://user:password@host:port/[database] admin DSN and the
    mariadb/mysqldump command lines that use it. Immutable."""

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
        """The process environment plus MYSQL_PWD."""
        env = dict(os.environ)
        env["MYSQL_PWD"] = self.password
        return env

    def sql(self, statement, database=None, check=True):
        """Runs one statement with the mariadb client in `database` (None: no
        database); returns the CompletedProcess (text, --batch: a header line
        with the column names, then tab-separated rows). HarnessError on
        failure when `check`."""
        args = ["mariadb", *self.tool_args(), "--batch", "-e", statement]
        if database:
            args.append(database)
        result = subprocess.run(args, env=self.tool_env(),
                                capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise HarnessError(f"mariadb failed: {result.stderr.strip()}")
        return result

    def rows(self, statement, database=None):
        """The rows of one query, each a list of column texts (no header).
        HarnessError on failure."""
        args = ["mariadb", *self.tool_args(), "--batch", "--skip-column-names",
                "-e", statement] + ([database] if database else [])
        result = subprocess.run(args, env=self.tool_env(),
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise HarnessError(f"mariadb failed: {result.stderr.strip()}")
        return [line.split("\t") for line in result.stdout.splitlines()]

    def hold(self, script, database=None):
        """Starts the mariadb client on `script` with its stdin kept open (a
        session that holds its locks) and returns the Popen; the caller
        closes stdin and waits. Rows come without a header line."""
        args = ["mariadb", *self.tool_args(), "--batch", "--skip-column-names",
                "--unbuffered"] + ([database] if database else [])
        process = subprocess.Popen(
            args, env=self.tool_env(), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        process.stdin.write(script)
        process.stdin.flush()
        return process

    def mysqldump(self, database, *extra_args):
        """The full mysqldump of `database`, as text."""
        result = subprocess.run(
            ["mysqldump", *self.tool_args(), *extra_args, database],
            env=self.tool_env(), capture_output=True, timeout=120)
        if result.returncode != 0:
            raise HarnessError("mysqldump failed: "
                               + result.stderr.decode("utf-8", "replace"))
        return result.stdout.decode("utf-8", "replace")


class PrivateMariaDb:
    """A MariaDB of the test's own (tools/dev/mariadb.sh with a temporary run
    folder and a free port, binary log on), which the test may stop, start
    again or kill without disturbing other tests. Not thread-safe.

        db = PrivateMariaDb()
        db.start()
        server = LumoServer(mysql_dsn=db.admin_dsn())
        ...
        db.destroy()     # stops it and removes its folder
    """

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="lumo-mariadb-")
        self.port = free_loopback_port()
        self.env = dict(os.environ, LUMO_RUN_DIR=os.path.join(self.dir, "run"),
                        LUMO_MYSQL_PORT=str(self.port))
        self._script = os.path.join(source_dir(), "tools", "dev", "mariadb.sh")

    def _run(self, action):
        result = subprocess.run([self._script, action], env=self.env,
                                capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise HarnessError(f"mariadb.sh {action} failed:\n"
                               f"{result.stdout}{result.stderr}")
        return result.stdout

    def start(self):
        """Starts it (bootstrapping the data folder the first time); returns
        when it accepts connections."""
        self._run("start")

    def stop(self):
        """A clean shutdown."""
        self._run("stop")

    def kill9(self):
        """SIGKILL of mariadbd; returns when the process is gone."""
        with open(os.path.join(self.env["LUMO_RUN_DIR"], "mariadb",
                               "mysqld.pid")) as f:
            pid = int(f.read().strip())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10 * TIME_SCALE
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        raise HarnessError("mariadbd survived SIGKILL")

    def admin_dsn(self):
        """mysql://lumo_admin:PW@127.0.0.1:PORT/ (no database)."""
        return self._run("admin-dsn").strip()

    def destroy(self):
        """Stops it (if running) and removes its folder. Safe to repeat."""
        if self.dir is None:
            return
        subprocess.run([self._script, "stop"], env=self.env,
                       capture_output=True, timeout=300)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
