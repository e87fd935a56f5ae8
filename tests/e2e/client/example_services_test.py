"""The example web services of client/ (docs/clients.md), each built and run
against a real lumokeys-server over mTLS with the service token: a valid key
is accepted, and a rotated, an out-of-scope and a rate-limited key get 401,
403 and 429 with the documented bodies; no key gets 401; a key whose CIDR
list leaves out the caller's address gets 403 ip_not_allowed, and one whose
list holds it is accepted (the helper sends the TCP peer as the client
address).

Each language's example prints "listening on HOST:PORT" once it serves and
answers GET /hello, needing the scope admin:read.
"""

import http.client
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import unittest

import harness
from harness.tls import TlsServer, make_pki

PYTHON = "/usr/bin/python3"
NODE = shutil.which("node") or "node"


class ExampleService:
    """A running example service; stop() ends it."""

    def __init__(self, command, env, cwd, log_path):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(command, env=env, cwd=cwd,
                                        stdout=subprocess.PIPE,
                                        stderr=self.log, text=True)
        line = self.process.stdout.readline()
        match = re.match(r"listening on (\S+):(\d+)", line)
        if not match:
            self.stop()
            raise harness.HarnessError(
                f"{command[0]} did not start: {line!r}\n"
                f"{harness.read_log(log_path)}")
        self.port = int(match.group(2))

    def get(self, path, headers):
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=30 * harness.TIME_SCALE)
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, {k.lower(): v for k, v in
                                 resp.getheaders()}, body
        finally:
            conn.close()

    def stop(self):
        harness.stop_process(self.process)
        self.process.stdout.close()
        self.log.close()


class ExampleServicesTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="examples-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.pki = make_pki(cls.tmp)
        cls.server = TlsServer(cls.pki, internal=True, client_ca=True)
        cls.server.start()
        cls.addClassCleanup(cls.server.stop)
        cls.slug = "ex-" + secrets.token_hex(4)
        cls.admin = cls.server.create_tenant(cls.slug)
        cls.valid = cls.create_key("admin:read")
        cls.out_of_scope = cls.create_key("admin:users")
        cls.rotated = cls.create_key("admin:read")
        # The example services are called from 127.0.0.1.
        cls.other_network = cls.create_key("admin:read", "--allowed-cidrs",
                                           "10.0.0.0/8,2001:db8::/32")
        cls.loopback_only = cls.create_key("admin:read", "--allowed-cidrs",
                                           "127.0.0.0/8")
        cls.server.tenant_cli_json(cls.slug, cls.admin, "keys", "rotate",
                                   cls.rotated["id"])
        cls.env = cls.server.cli_env({"LUMOKEYS_TENANT": cls.slug})

    @classmethod
    def create_key(cls, scopes, *extra):
        return cls.server.tenant_cli_json(
            cls.slug, cls.admin, "keys", "create", "--name",
            "example " + scopes, "--scopes", scopes, *extra)

    # ----- one set of checks, run against each language's service --------

    def check_service(self, service):
        """`service` must be fresh to the rate-limited key made here."""
        limited_key = self.create_key("admin:read", "--rate-limit", "1")
        status, _, body = service.get("/hello", {
            "Authorization": "Bearer " + self.valid["key"]})
        self.assertEqual(status, 200, body)
        doc = json.loads(body)
        self.assertEqual(doc["keyId"], self.valid["id"])
        self.assertEqual(doc["scopes"], ["admin:read"])

        # The X-API-Key header is accepted too.
        status, _, body = service.get("/hello",
                                      {"X-API-Key": self.valid["key"]})
        self.assertEqual(status, 200, body)

        status, headers, body = service.get("/hello", {})
        self.assert_error(status, body, 401, "invalid_token")
        self.assertIn("www-authenticate", headers)

        status, headers, body = service.get("/hello", {
            "Authorization": "Bearer " + self.rotated["key"]})
        self.assert_error(status, body, 401, "invalid_token")
        self.assertEqual(headers.get("www-authenticate"),
                         'Bearer error="invalid_token"')

        status, headers, body = service.get("/hello", {
            "X-API-Key": self.out_of_scope["key"]})
        self.assert_error(status, body, 403, "insufficient_scope")
        self.assertIn('scope="admin:read"',
                      headers.get("www-authenticate", ""))

        status, headers, body = service.get("/hello", {
            "Authorization": "Bearer " + self.other_network["key"]})
        self.assert_error(status, body, 403, "ip_not_allowed")
        status, _, body = service.get("/hello", {
            "Authorization": "Bearer " + self.loopback_only["key"]})
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["keyId"], self.loopback_only["id"])

        # One request per minute: among three quick ones at most two fall
        # in different minutes, so one is refused.
        answers = [service.get("/hello", {
            "Authorization": "Bearer " + limited_key["key"]})
            for _ in range(3)]
        refused = [a for a in answers if a[0] != 200]
        self.assertTrue(refused, [a[0] for a in answers])
        status, _, body = refused[0]
        self.assert_error(status, body, 429, "rate_limit_exceeded")
        for status, _, body in answers:
            self.assertIn(status, (200, 429), body)

        # No answer carries a key.
        for key in (self.valid, self.rotated, self.out_of_scope,
                    self.other_network, self.loopback_only):
            self.assertNotIn(key["key"], harness.read_log(service.log_path))

    def assert_error(self, status, body, want_status, want_code):
        self.assertEqual(status, want_status, body)
        doc = json.loads(body)
        self.assertEqual(doc, {"error": True, "status": want_status,
                               "code": want_code,
                               "message": doc.get("message")})
        self.assertIsInstance(doc["message"], str)

    def start(self, command, cwd, name, extra_env=None):
        env = dict(self.env)
        env.update(extra_env or {})
        service = ExampleService(command, env, cwd,
                                 os.path.join(self.tmp, name + ".log"))
        self.addCleanup(service.stop)
        return service

    # ----- the languages ------------------------------------------------

    def test_python_example(self):
        client = os.path.join(harness.source_dir(), "client", "python")
        stubs_dir = os.path.join(self.tmp, "python-stubs")
        result = subprocess.run(
            [PYTHON, "-m", "lumokeys.generate", stubs_dir], cwd=client,
            capture_output=True, text=True, timeout=300)
        self.assertEqual(result.returncode, 0, result.stderr)
        service = self.start(
            [PYTHON, os.path.join("examples", "hello_service.py"),
             "127.0.0.1:0"], client, "python",
            {"PYTHONPATH": client, "LUMOKEYS_STUBS_DIR": stubs_dir})
        self.check_service(service)

    def test_node_example(self):
        client = os.path.join(harness.source_dir(), "client", "node")
        if not os.path.isdir(os.path.join(client, "node_modules", "@grpc")):
            raise harness.HarnessError(
                f"{client}/node_modules is missing: run `npm ci` there "
                "(tools/dev/test.sh does)")
        service = self.start(
            [NODE, os.path.join("examples", "hello_service.js"),
             "127.0.0.1:0"], client, "node")
        self.check_service(service)

    def test_go_example(self):
        client = os.path.join(harness.source_dir(), "client", "go")
        out = os.path.join(self.tmp, "go")
        result = subprocess.run([os.path.join(client, "build.sh"), out],
                                capture_output=True, text=True,
                                timeout=900 * harness.TIME_SCALE)
        self.assertEqual(result.returncode, 0, result.stderr)
        service = self.start(
            [os.path.join(out, "bin", "hello_service"), "127.0.0.1:0"],
            client, "go")
        self.check_service(service)


if __name__ == "__main__":
    unittest.main()
