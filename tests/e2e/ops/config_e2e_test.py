"""Configuration of the real binaries: environment variables and
config files for every flag, precedence, and start-up failures that name
the setting. Needs no database: each case stops before connecting."""
import os
import subprocess
import tempfile
import time
import unittest
import urllib.request

import harness
from harness import free_loopback_port

SERVER = harness.built_program("server", "lumokeys-server")
GATEWAY = harness.built_program("gateway", "lumokeys-gateway")
# A DSN that parses; nothing listens on port 1, and no case gets that far
# unless it says so.
DSN = "--mysql=mysql://lumo@127.0.0.1:1/lumo"


def wait_for_livez(port, process, timeout=30):
    """True once GET /livez answers 200; False if `process` exits first or
    nothing answers within `timeout` x TIME_SCALE seconds."""
    deadline = time.monotonic() + timeout * harness.TIME_SCALE
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez",
                                        timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def run(args, env=None):
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("LUMO_SERVER_", "LUMO_GATEWAY_"))}
    clean.update(env or {})
    return subprocess.run(args, env=clean, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


class ServerConfigTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def config(self, text):
        path = os.path.join(self.dir.name, "server.conf")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_unknown_environment_variable_stops_start(self):
        r = run([SERVER, DSN], {"LUMO_SERVER_LISTN": "127.0.0.1:1"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("LUMO_SERVER_LISTN", r.stderr)
        self.assertIn("no flag --listn", r.stderr)

    def test_invalid_environment_value_names_variable_and_flag(self):
        r = run([SERVER, DSN], {"LUMO_SERVER_WORKERS": "lots"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("environment variable LUMO_SERVER_WORKERS", r.stderr)
        self.assertIn("--workers", r.stderr)

    def test_unknown_config_key_names_file_and_line(self):
        path = self.config("# comment\nworkers = 4\nlisten_adress = x\n")
        r = run([SERVER, DSN, f"--config={path}"])
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"{path}:3: unknown setting 'listen_adress'", r.stderr)

    def test_invalid_config_value_names_file_line_and_flag(self):
        path = self.config("shutdown_grace = soon\n")
        r = run([SERVER, DSN], {"LUMO_SERVER_CONFIG": path})
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"{path}:1: invalid value for --shutdown_grace",
                      r.stderr)

    def test_precedence_command_line_over_environment_over_file(self):
        # A non-loopback plaintext --listen is refused, naming the value:
        # that shows which source won.
        path = self.config("listen = 10.1.1.1:1\n")
        r = run([SERVER, DSN, f"--config={path}"])
        self.assertIn("--listen=10.1.1.1:1 is not loopback", r.stderr)
        r = run([SERVER, DSN, f"--config={path}"],
                {"LUMO_SERVER_LISTEN": "10.2.2.2:1"})
        self.assertIn("--listen=10.2.2.2:1 is not loopback", r.stderr)
        r = run([SERVER, DSN, f"--config={path}", "--listen=127.0.0.1:0"],
                {"LUMO_SERVER_LISTEN": "10.2.2.2:1"})
        self.assertNotIn("is not loopback", r.stderr)
        # It got past the listen check, to the next required setting.
        self.assertIn("--pepper_file is required", r.stderr)

    def test_tls_key_without_certificate_names_both(self):
        r = run([SERVER, DSN, "--tls_key_file=/x.key"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("--tls_cert_file and --tls_key_file must be set together",
                      r.stderr)

    def test_client_ca_without_tls_is_refused(self):
        r = run([SERVER, DSN, "--tls_client_ca_file=/ca.crt"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("--tls_client_ca_file needs --tls_cert_file", r.stderr)

    def test_internal_listen_needs_client_ca(self):
        r = run([SERVER, DSN], {"LUMO_SERVER_INTERNAL_LISTEN": "127.0.0.1:0"})
        self.assertEqual(r.returncode, 1)
        self.assertIn("--internal_listen needs --tls_client_ca_file", r.stderr)

    def test_unreadable_tls_file_is_named(self):
        r = run([SERVER, DSN, "--tls_cert_file=/nonexistent/s.crt",
                 "--tls_key_file=/nonexistent/s.key"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("--tls_cert_file: cannot read /nonexistent/s.crt",
                      r.stderr)

    def test_help_documents_every_flag_and_the_environment(self):
        r = run([SERVER, "--help"])
        for flag in ("--listen", "--tls_cert_file", "--tls_client_ca_file",
                     "--internal_listen", "--drain_delay", "--config",
                     "--pepper_file", "--shutdown_grace"):
            self.assertIn(flag, r.stdout + r.stderr)
        self.assertIn("LUMO_SERVER_", r.stdout + r.stderr)


class GatewayConfigTest(unittest.TestCase):
    def test_unknown_environment_variable_stops_start(self):
        r = run([GATEWAY], {"LUMO_GATEWAY_UPSTREEM": "x"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("LUMO_GATEWAY_UPSTREEM", r.stderr)

    def test_environment_sets_flag(self):
        r = run([GATEWAY], {"LUMO_GATEWAY_LISTEN": "10.3.3.3:8080"})
        self.assertEqual(r.returncode, 1)
        self.assertIn("--listen=10.3.3.3:8080 is not loopback", r.stderr)

    def test_remote_plaintext_upstream_is_refused(self):
        r = run([GATEWAY, "--upstream=10.4.4.4:50051"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("--upstream=10.4.4.4:50051 is not loopback", r.stderr)

    def test_tls_cert_without_key_names_both(self):
        r = run([GATEWAY, "--tls_cert_file=/x.crt"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("--tls_cert_file and --tls_key_file must be set together",
                      r.stderr)

    def test_bad_tls_files_stop_start(self):
        with tempfile.NamedTemporaryFile("w", suffix=".pem") as f:
            f.write("not a certificate\n")
            f.flush()
            r = run([GATEWAY, "--listen=127.0.0.1:0", f"--tls_cert_file={f.name}",
                     f"--tls_key_file={f.name}",
                     "--insecure_dev_no_service_token"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("TLS certificate file", r.stderr)

    def test_no_service_token_stops_start_unless_told_it_is_development(self):
        r = run([GATEWAY, "--listen=127.0.0.1:0"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("--service_token_file is required", r.stderr)
        self.assertIn("--insecure_dev_no_service_token", r.stderr)
        # With the development flag it serves (and says so in its log).
        port = free_loopback_port()
        with tempfile.TemporaryFile() as log:
            gateway = subprocess.Popen(
                [GATEWAY, f"--listen=127.0.0.1:{port}", "--portal_dir=",
                 "--insecure_dev_no_service_token"],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL)
            try:
                self.assertTrue(wait_for_livez(port, gateway))
            finally:
                gateway.terminate()
                gateway.wait(30)
            log.seek(0)
            self.assertIn(b"no service token", log.read())

    def test_service_token_settings_that_contradict_or_are_empty_stop_start(self):
        with tempfile.TemporaryDirectory() as d:
            empty = os.path.join(d, "empty.token")
            token = os.path.join(d, "service.token")
            with open(empty, "w") as f:
                f.write("\n")
            with open(token, "w") as f:
                f.write("tok\n")
            for path in (empty, token):  # secret files must be private
                os.chmod(path, 0o600)
            r = run([GATEWAY, f"--service_token_file={empty}"])
            self.assertEqual(r.returncode, 1)
            self.assertIn("--service_token_file: the file holds no token",
                          r.stderr)
            r = run([GATEWAY, f"--service_token_file={token}",
                     "--insecure_dev_no_service_token"])
            self.assertEqual(r.returncode, 1)
            self.assertIn("contradicts --service_token_file", r.stderr)
            with open(token, "w") as f:
                f.write("t\u00f6k\n")
            r = run([GATEWAY, f"--service_token_file={token}"])
            self.assertEqual(r.returncode, 1)
            self.assertIn("service token holds characters", r.stderr)

    def test_bad_trusted_proxy_settings_stop_start(self):
        r = run([GATEWAY, "--insecure_dev_no_service_token",
                 "--trusted_proxies=10.0.0.0/8"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("--trusted_proxies needs --service_token_file", r.stderr)
        r = run([GATEWAY, "--insecure_dev_no_service_token",
                 "--trusted_proxies=10.0.0.0/8,proxy.local"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("proxy.local", r.stderr)
        self.assertIn("is not a CIDR block or an IP address", r.stderr)
        r = run([GATEWAY, "--insecure_dev_no_service_token",
                 "--forwarded_header=x-real-ip"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("x-real-ip", r.stderr)

    def test_help_documents_tls_flags_and_the_environment(self):
        r = run([GATEWAY, "--help"])
        for flag in ("--tls_cert_file", "--upstream_tls_ca_file",
                     "--allow_remote_plaintext", "--config", "--listen",
                     "--insecure_dev_no_service_token", "--trusted_proxies",
                     "--forwarded_header"):
            self.assertIn(flag, r.stdout + r.stderr)
        self.assertIn("LUMO_GATEWAY_", r.stdout + r.stderr)


class TokenFileRuleTest(unittest.TestCase):
    """Both binaries read token files with one rule (docs/operations.md
    "Secret files"): one line of printable ASCII, at least 16 characters.
    The gateway once read only the first line and took any length; the
    server read the whole file."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def secret(self, name, text):
        path = os.path.join(self.dir.name, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return path

    def test_server_and_gateway_refuse_the_same_token_files(self):
        pepper = self.secret("pepper", "1:" + "ab" * 32 + "\n")
        cases = (
            ("short", "short-token\n",
             "the service token must be at least 16 characters"),
            ("two-lines", "0123456789abcdef\nsecond-line-0123\n",
             "the service token holds characters gRPC metadata cannot "
             "carry"),
        )
        for name, text, message in cases:
            token = self.secret(name, text)
            server = run([SERVER, DSN, f"--pepper_file={pepper}",
                          f"--service_token_file={token}"])
            gateway = run([GATEWAY, "--listen=127.0.0.1:0", "--portal_dir=",
                           f"--service_token_file={token}"])
            for r in (server, gateway):
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn(f"--service_token_file: {message}", r.stderr)
                self.assertNotIn("second-line", r.stderr)

    def test_a_token_both_accept_reaches_the_next_step(self):
        pepper = self.secret("pepper", "1:" + "ab" * 32 + "\n")
        token = self.secret("good", "0123456789abcdef\n")
        # The server then tries the database (nothing listens on port 1).
        r = run([SERVER, DSN, f"--pepper_file={pepper}",
                 f"--service_token_file={token}",
                 f"--operator_token_file={token}"])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("database: ", r.stderr)


class CommandLineTest(unittest.TestCase):
    def test_unknown_server_command_is_refused(self):
        r = run([SERVER, DSN, "serv"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown command 'serv' (commands: serve, migrate, "
                      "purge-audit, purge-usage, check-peppers)", r.stderr)

    def test_gateway_takes_no_arguments(self):
        r = run([GATEWAY, "--insecure_dev_no_service_token", "serve"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("unexpected argument 'serve'", r.stderr)

    def test_help_names_the_commands(self):
        r = run([SERVER, "--help"])
        for command in ("migrate", "purge-audit", "check-peppers"):
            self.assertIn(f"lumokeys-server {command}", r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
