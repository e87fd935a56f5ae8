"""Throwaway TLS material and a TLS-serving LumoServer, for the tests that
speak TLS/mTLS to a real server (ops TLS tests, the clients in client/).
Certificates are made with the openssl CLI."""

import os
import subprocess

from harness.env import HarnessError, free_loopback_port
from harness.server import LumoServer


class Pki:
    """Throwaway CAs and leaf certificates (EC P-256) in `directory`."""

    def __init__(self, directory):
        self.dir = directory

    def path(self, name):
        return os.path.join(self.dir, name)

    def _openssl(self, *args):
        result = subprocess.run(["openssl", *args], cwd=self.dir,
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise HarnessError("openssl failed: " + result.stderr)

    def ca(self, name):
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                      "ec_paramgen_curve:prime256v1", "-nodes",
                      "-keyout", f"{name}.key", "-out", f"{name}.crt",
                      "-subj", f"/CN={name}", "-days", "2")
        return self.path(f"{name}.crt")

    def leaf(self, name, ca, usage):
        """A certificate for localhost/127.0.0.1 signed by `ca`; `usage` is
        serverAuth or clientAuth. Returns (cert path, key path)."""
        with open(self.path(f"{name}.ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                    f"extendedKeyUsage={usage}\n")
        self._openssl("req", "-newkey", "ec", "-pkeyopt",
                      "ec_paramgen_curve:prime256v1", "-nodes",
                      "-keyout", f"{name}.key", "-out", f"{name}.csr",
                      "-subj", f"/CN={name}")
        self._openssl("x509", "-req", "-in", f"{name}.csr",
                      "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
                      "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
                      "-extfile", f"{name}.ext")
        return self.path(f"{name}.crt"), self.path(f"{name}.key")

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()


class TlsServer(LumoServer):
    """A LumoServer serving TLS; with `internal`, a second mTLS port; with
    `client_ca` and no `internal`, mTLS on the main port. The CLI gets the
    matching LUMOKEYS_TLS_* variables."""

    def __init__(self, pki, internal=True, client_ca=True, extra=()):
        super().__init__()
        self.pki = pki
        self.internal = internal
        self.client_ca = client_ca
        self.extra = list(extra)
        self.internal_port = free_loopback_port() if internal else None
        self.cert_path = pki.path("server-live.crt")
        self.key_path = pki.path("server-live.key")

    def server_command(self):
        args = super().server_command() + [
            f"--tls_cert_file={self.cert_path}",
            f"--tls_key_file={self.key_path}"] + self.extra
        if self.client_ca:
            args.append(f"--tls_client_ca_file={self.pki.path('ca.crt')}")
        if self.internal:
            args.append(f"--internal_listen=127.0.0.1:{self.internal_port}")
        return args

    def cli_env(self, env=None):
        tls = {"LUMOKEYS_TLS_CA_FILE": self.pki.path("ca.crt")}
        if self.client_ca:
            tls["LUMOKEYS_TLS_CERT_FILE"] = self.pki.path("client.crt")
            tls["LUMOKEYS_TLS_KEY_FILE"] = self.pki.path("client.key")
        if self.internal:
            # Operator and service tokens are accepted only on the mTLS
            # internal listener.
            tls["LUMOKEYS_ADDRESS"] = f"127.0.0.1:{self.internal_port}"
        tls.update(env or {})
        return super().cli_env(tls)


def make_pki(directory):
    """A CA (`ca`) with server, client and a second server certificate, and
    an unrelated CA (`other-ca`) with a client certificate (`intruder`).
    """
    pki = Pki(directory)
    pki.ca("ca")
    pki.ca("other-ca")
    pki.leaf("server", "ca", "serverAuth")
    pki.leaf("server2", "ca", "serverAuth")
    pki.leaf("client", "ca", "clientAuth")
    pki.leaf("intruder", "other-ca", "clientAuth")
    for ext in ("crt", "key"):
        with open(pki.path(f"server-live.{ext}"), "wb") as f:
            f.write(pki.read(f"server.{ext}"))
    # Private keys are secret files: the binaries refuse them readable by
    # others (docs/operations.md "Secret files").
    os.chmod(pki.path("server-live.key"), 0o600)
    return pki
