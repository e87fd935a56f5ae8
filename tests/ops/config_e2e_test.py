"""Configuration of the real binaries (issue 9): environment variables and
config files for every flag, precedence, and start-up failures that name
the setting. Needs no database: each case stops before connecting."""
import os
import subprocess
import tempfile
import unittest

BINARY_DIR = os.environ["LUMO_BINARY_DIR"]
SERVER = os.path.join(BINARY_DIR, "server", "lumokeys-server")
GATEWAY = os.path.join(BINARY_DIR, "gateway", "lumokeys-gateway")
# A DSN that parses; nothing listens on port 1, and no case gets that far
# unless it says so.
DSN = "--mysql=mysql://lumo@127.0.0.1:1/lumo"


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
                     f"--tls_key_file={f.name}"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("TLS certificate file", r.stderr)

    def test_help_documents_tls_flags_and_the_environment(self):
        r = run([GATEWAY, "--help"])
        for flag in ("--tls_cert_file", "--upstream_tls_ca_file",
                     "--allow_remote_plaintext", "--config", "--listen"):
            self.assertIn(flag, r.stdout + r.stderr)
        self.assertIn("LUMO_GATEWAY_", r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
