"""TLS and mTLS end to end: throwaway certificates made with the
openssl CLI, a real lumokeys-server (TLS on --listen, mTLS on
--internal_listen), Debian's python3-grpcio, the C++ CLI, the gateway over
HTTPS with curl, and SIGHUP reloads of certificates and peppers."""
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import grpc

import harness
from harness.tls import TlsServer, make_pki


def presented_certificate(port, ca_file, alpn=True):
    """The DER certificate a new TLS connection to 127.0.0.1:port gets."""
    context = ssl.create_default_context(cafile=ca_file)
    context.check_hostname = False
    if alpn:
        context.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with context.wrap_socket(sock) as tls:
            return tls.getpeercert(binary_form=True)


def pem_to_der(pem_bytes):
    return ssl.PEM_cert_to_DER_cert(pem_bytes.decode())


class ServerTestCase(harness.LogOnFailure, unittest.TestCase):
    """One TLS server per class (its own PKI in a temp dir)."""

    INTERNAL = True
    CLIENT_CA = True

    @classmethod
    def setUpClass(cls):
        cls.pki_dir = tempfile.mkdtemp(prefix="lumo-pki-")
        cls.pki = make_pki(cls.pki_dir)
        cls.server = TlsServer(cls.pki, internal=cls.INTERNAL,
                               client_ca=cls.CLIENT_CA)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.pki_dir, ignore_errors=True)

    def failure_log(self):
        return type(self).server.server_log()

    def new_tenant_key(self, slug):
        r = self.server.cli("--json", "tenant", "create", slug, "--scopes",
                            "admin:write")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)["initialKey"]["key"]

    def channel(self, port, client=None, ca="ca.crt"):
        """A TLS channel to 127.0.0.1:port trusting `ca`, presenting the
        certificate `client` (a name in the PKI) when given."""
        kwargs = {"root_certificates": self.pki.read(ca)}
        if client is not None:
            kwargs["private_key"] = self.pki.read(f"{client}.key")
            kwargs["certificate_chain"] = self.pki.read(f"{client}.crt")
        credentials = grpc.ssl_channel_credentials(**kwargs)
        return grpc.secure_channel(f"127.0.0.1:{port}", credentials)

    def verify(self, channel, key):
        stubs = harness.stubs()
        return stubs.auth_grpc.AuthServiceStub(channel).VerifyApiKey(
            stubs.auth_pb2.VerifyApiKeyRequest(key=key), timeout=10,
            metadata=self.server.service_md())


class TlsAndInternalMtlsTest(ServerTestCase):
    """TLS on --listen, mTLS on --internal_listen."""

    def public(self, env=None):
        """CLI settings for the public TLS port, without client
        certificate."""
        result = {"LUMOKEYS_ADDRESS": self.server.address,
                  "LUMOKEYS_TLS_CERT_FILE": None,
                  "LUMOKEYS_TLS_KEY_FILE": None}
        result.update(env or {})
        return result

    def test_cli_manages_keys_over_tls(self):
        key = self.new_tenant_key("tls-cli")
        r = self.server.cli("--tenant", "tls-cli", "keys", "list",
                            env=self.public({"LUMOKEYS_API_KEY": key}))
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.server.cli("--tenant", "tls-cli", "verify", input=key + "\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_plaintext_client_is_refused_by_tls_port(self):
        r = self.server.cli("health", "--timeout", "3",
                            env=self.public({"LUMOKEYS_TLS_CA_FILE": None}))
        self.assertNotEqual(r.returncode, 0, r.stdout)

    def test_client_that_does_not_trust_the_ca_is_refused(self):
        with self.channel(self.server.port, ca="other-ca.crt") as channel:
            with self.assertRaises(grpc.RpcError) as caught:
                self.verify(channel, "lmk_x")
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_public_port_refuses_internal_credentials(self):
        """Service token, operator token and forwarded client facts work on
        the mTLS internal listener only."""
        key = self.new_tenant_key("boundary")
        token = (("x-lumo-service-token", self.server.service_token),)
        with self.channel(self.server.port) as channel:
            with self.assertRaises(grpc.RpcError) as caught:
                self.verify(channel, key)
            self.assertEqual(caught.exception.code(),
                             grpc.StatusCode.UNAUTHENTICATED)
            self.assertEqual(harness.health_status(channel, timeout=10),
                             harness.HEALTH_SERVING)
        with self.channel(self.server.internal_port, client="client") as ch:
            self.assertTrue(self.verify(ch, key).valid)
        # The operator token: refused on the public port.
        r = self.server.cli("--json", "tenant", "create", "boundary-2",
                            env=self.public())
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertEqual(self.new_tenant_key("boundary-3")[:4], "lmk_")
        # A key limited to 10.0.0.0/8 cannot borrow a forwarded address on
        # the public port, with or without the service token.
        r = self.server.cli("--json", "--tenant", "boundary", "keys", "create",
                            "--name", "ten", "--scopes", "admin:read",
                            "--allowed-cidrs", "10.0.0.0/8",
                            env={"LUMOKEYS_API_KEY": key})
        self.assertEqual(r.returncode, 0, r.stderr)
        limited = json.loads(r.stdout)["key"]
        stubs = harness.stubs()
        request = stubs.keys_pb2.ListApiKeysRequest(tenant_slug="boundary")
        auth = harness.key_md(limited)
        forwarded = (("x-lumo-client-ip", "10.1.2.3"),)
        with self.channel(self.server.port) as channel:
            call = stubs.keys_grpc.KeyServiceStub(channel).ListApiKeys
            for metadata, code in (
                    (auth, grpc.StatusCode.PERMISSION_DENIED),
                    (auth + forwarded + token,
                     grpc.StatusCode.UNAUTHENTICATED),
                    (auth + forwarded, grpc.StatusCode.UNAUTHENTICATED)):
                with self.assertRaises(grpc.RpcError) as caught:
                    call(request, timeout=10, metadata=metadata)
                self.assertEqual(caught.exception.code(), code, metadata)
        # Through the internal listener (as the gateway), the forwarded
        # address is the client's.
        with self.channel(self.server.internal_port, client="client") as ch:
            stubs.keys_grpc.KeyServiceStub(ch).ListApiKeys(
                request, timeout=10, metadata=auth + forwarded + token)

    def test_internal_port_accepts_good_client_certificate(self):
        key = self.new_tenant_key("mtls-ok")
        with self.channel(self.server.internal_port, client="client") as ch:
            reply = self.verify(ch, key)
        self.assertTrue(reply.valid)
        # The C++ CLI with a client certificate, on the internal port.
        r = self.server.cli(
            "--tenant", "mtls-ok", "verify", input=key + "\n",
            env={"LUMOKEYS_ADDRESS": f"127.0.0.1:{self.server.internal_port}",
                 "LUMOKEYS_TLS_CERT_FILE": self.pki.path("client.crt"),
                 "LUMOKEYS_TLS_KEY_FILE": self.pki.path("client.key")})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_internal_port_refuses_client_without_certificate(self):
        with self.channel(self.server.internal_port) as channel:
            with self.assertRaises(grpc.RpcError) as caught:
                self.verify(channel, "lmk_x")
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAVAILABLE)
        r = self.server.cli(
            "health", "--timeout", "3",
            env={"LUMOKEYS_ADDRESS": f"127.0.0.1:{self.server.internal_port}",
                 "LUMOKEYS_TLS_CERT_FILE": None,
                 "LUMOKEYS_TLS_KEY_FILE": None})
        self.assertNotEqual(r.returncode, 0)

    def test_internal_port_refuses_certificate_of_another_ca(self):
        with self.channel(self.server.internal_port,
                          client="intruder") as channel:
            with self.assertRaises(grpc.RpcError) as caught:
                self.verify(channel, "lmk_x")
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_https_gateway_to_tls_server(self):
        key = self.new_tenant_key("tls-gw")
        port = harness.free_loopback_port()
        binary = os.path.join(self.server.binary_dir, "gateway",
                              "lumokeys-gateway")
        log_path = os.path.join(self.server.tmpdir, "gateway-tls.log")
        for ext in ("crt", "key"):
            with open(self.pki.path(f"gw-live.{ext}"), "wb") as f:
                f.write(self.pki.read(f"server.{ext}"))
        os.chmod(self.pki.path("gw-live.key"), 0o600)
        with open(log_path, "wb") as log:
            gateway = subprocess.Popen(
                [binary, f"--listen=127.0.0.1:{port}",
                 f"--upstream=127.0.0.1:{self.server.internal_port}",
                 f"--service_token_file={self.server.service_token_path}",
                 f"--tls_cert_file={self.pki.path('gw-live.crt')}",
                 f"--tls_key_file={self.pki.path('gw-live.key')}",
                 f"--upstream_tls_ca_file={self.pki.path('ca.crt')}",
                 f"--upstream_tls_cert_file={self.pki.path('client.crt')}",
                 f"--upstream_tls_key_file={self.pki.path('client.key')}"],
                stdout=log, stderr=log)
        try:
            base = f"https://localhost:{port}"
            curl = ["curl", "-sS", "--cacert", self.pki.path("ca.crt"),
                    "--resolve", f"localhost:{port}:127.0.0.1"]
            deadline = time.monotonic() + 20 * harness.TIME_SCALE
            while True:
                r = subprocess.run(curl + ["-o", "/dev/null", "-w",
                                           "%{http_code}", base + "/healthz"],
                                   capture_output=True, text=True)
                if r.stdout == "200":
                    break
                if gateway.poll() is not None or time.monotonic() > deadline:
                    with open(log_path) as f:
                        self.fail("gateway did not serve HTTPS: " + f.read())
                time.sleep(0.2)
            # An authenticated call: HTTPS in, mTLS gRPC to the server.
            r = subprocess.run(
                curl + ["-w", "\n%{http_code}", "-H",
                        "Authorization: Bearer " + key,
                        base + "/t/tls-gw/api/v1/admin/api-keys"],
                capture_output=True, text=True)
            body, _, status = r.stdout.rpartition("\n")
            self.assertEqual(status, "200", r.stdout + r.stderr)
            self.assertIn(key[4:16], body)
            # Without the CA, curl refuses the certificate (exit 60).
            r = subprocess.run(["curl", "-sS", "--resolve",
                                f"localhost:{port}:127.0.0.1",
                                base + "/healthz"], capture_output=True)
            self.assertEqual(r.returncode, 60)
            # Plain HTTP to the HTTPS port gets no HTTP answer.
            r = subprocess.run(["curl", "-sS", "-m", "5",
                                f"http://127.0.0.1:{port}/healthz"],
                               capture_output=True)
            self.assertNotEqual(r.returncode, 0)
            # SIGHUP: new connections get the new certificate.
            ca = self.pki.path("ca.crt")
            self.assertEqual(presented_certificate(port, ca, alpn=False),
                             pem_to_der(self.pki.read("server.crt")))
            for ext in ("crt", "key"):
                with open(self.pki.path(f"gw-live.{ext}"), "wb") as f:
                    f.write(self.pki.read(f"server2.{ext}"))
            gateway.send_signal(signal.SIGHUP)
            new = pem_to_der(self.pki.read("server2.crt"))
            deadline = time.monotonic() + 10 * harness.TIME_SCALE
            while presented_certificate(port, ca, alpn=False) != new:
                self.assertLess(time.monotonic(), deadline,
                                "gateway kept its old certificate")
                time.sleep(0.2)
        finally:
            gateway.send_signal(signal.SIGTERM)
            self.assertEqual(gateway.wait(timeout=20), 0)


class SighupReloadTest(ServerTestCase):
    """SIGHUP reloads the certificate and the pepper set."""

    def test_sighup_reloads_certificate_for_new_connections(self):
        ca = self.pki.path("ca.crt")
        old = pem_to_der(self.pki.read("server.crt"))
        new = pem_to_der(self.pki.read("server2.crt"))
        self.assertEqual(presented_certificate(self.server.port, ca), old)
        # The files change; without SIGHUP nothing changes.
        for ext in ("crt", "key"):
            with open(self.server.cert_path if ext == "crt"
                      else self.server.key_path, "wb") as f:
                f.write(self.pki.read(f"server2.{ext}"))
        time.sleep(2.5)
        self.assertEqual(presented_certificate(self.server.port, ca), old)
        self.server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10 * harness.TIME_SCALE
        while presented_certificate(self.server.port, ca) != new:
            self.assertLess(time.monotonic(), deadline,
                            "new certificate not served after SIGHUP")
            time.sleep(0.2)
        # The internal port reloads too, on its own watcher (its handshake
        # needs a client certificate); each port's credentials pick the new
        # files up independently, so wait for this one as well.
        context = ssl.create_default_context(cafile=ca)
        context.check_hostname = False
        context.set_alpn_protocols(["h2"])
        context.load_cert_chain(self.pki.path("client.crt"),
                                self.pki.path("client.key"))

        def internal_certificate():
            with socket.create_connection(
                    ("127.0.0.1", self.server.internal_port), 5) as sock:
                with context.wrap_socket(sock) as tls:
                    return tls.getpeercert(binary_form=True)
        deadline = time.monotonic() + 10 * harness.TIME_SCALE
        while internal_certificate() != new:
            self.assertLess(time.monotonic(), deadline,
                            "internal port kept its old certificate")
            time.sleep(0.2)
        # And the server still works over TLS for the CLI.
        self.assertEqual(self.server.cli("health").returncode, 0)

    def test_sighup_with_broken_certificate_keeps_serving_the_old_one(self):
        ca = self.pki.path("ca.crt")
        before = presented_certificate(self.server.port, ca)
        with open(self.server.key_path, "wb") as f:
            f.write(self.pki.read("client.key"))  # does not match the cert
        try:
            self.server.process.send_signal(signal.SIGHUP)
            # Once the reload has been tried (and failed), the old pair is
            # still served.
            deadline = time.monotonic() + 10 * harness.TIME_SCALE
            while "TLS reload failed" not in self.server.server_log():
                self.assertLess(time.monotonic(), deadline, "no reload error")
                time.sleep(0.1)
            self.assertEqual(presented_certificate(self.server.port, ca),
                             before)
            self.assertIsNone(self.server.process.poll())
        finally:
            # Restore a matching pair for the other tests.
            cert = self.pki.read("server-live.crt")
            for name in ("server", "server2"):
                if self.pki.read(f"{name}.crt") == cert:
                    with open(self.server.key_path, "wb") as f:
                        f.write(self.pki.read(f"{name}.key"))

    def test_sighup_adds_a_pepper_and_old_keys_keep_verifying(self):
        old_key = self.new_tenant_key("pepper-a")
        with open(self.server.pepper_path) as f:
            original = f.read()
        os.chmod(self.server.pepper_path, 0o600)
        with open(self.server.pepper_path, "a") as f:
            f.write(f"2:{secrets.token_hex(32)}\n")
        self.server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10 * harness.TIME_SCALE
        while '"current_pepper_version":2' not in self.server.server_log():
            self.assertLess(time.monotonic(), deadline, "no pepper reload")
            time.sleep(0.1)
        new_key = self.new_tenant_key("pepper-b")
        versions = self.server.sql(
            "SELECT id, pepper_version FROM api_keys WHERE id IN ('%s','%s')"
            % (old_key[4:16], new_key[4:16])).stdout
        self.assertIn(f"{old_key[4:16]}\t1", versions)
        self.assertIn(f"{new_key[4:16]}\t2", versions)
        for slug, key in (("pepper-a", old_key), ("pepper-b", new_key)):
            r = self.server.cli("--tenant", slug, "verify", input=key + "\n")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # A reload that drops version 1 is refused; both keys still verify.
        with open(self.server.pepper_path, "w") as f:
            f.write(original.replace("1:", "3:", 1))
        self.server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10 * harness.TIME_SCALE
        while "pepper reload failed" not in self.server.server_log():
            self.assertLess(time.monotonic(), deadline, "no reload error")
            time.sleep(0.1)
        self.assertIn("version 1 is missing", self.server.server_log())
        r = self.server.cli("--tenant", "pepper-a", "verify",
                            input=old_key + "\n")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class WholeServerMtlsTest(ServerTestCase):
    """A client CA without --internal_listen: --listen requires client
    certificates."""

    INTERNAL = False

    def test_listen_requires_client_certificate(self):
        self.assertEqual(self.server.cli("health").returncode, 0)
        r = self.server.cli("health", "--timeout", "3",
                            env={"LUMOKEYS_TLS_CERT_FILE": None,
                                 "LUMOKEYS_TLS_KEY_FILE": None})
        self.assertNotEqual(r.returncode, 0)
        r = self.server.cli(
            "health", "--timeout", "3",
            env={"LUMOKEYS_TLS_CERT_FILE": self.pki.path("intruder.crt"),
                 "LUMOKEYS_TLS_KEY_FILE": self.pki.path("intruder.key")})
        self.assertNotEqual(r.returncode, 0)


if __name__ == "__main__":
    unittest.main()
