"""The portal's webhooks page in headless Debian chromium
(portal_webhooks_flow.js, playwright-core installed under tests/e2e/portal
by tools/dev/test.sh) against a real server, gateway, MariaDB and HTTPS
receiver: add (secret shown once), refused URL, edit, disable/enable,
rotate the secret with an overlap, send test pings, the delivery log paged
by token and filtered, delete; on the key page a decoy key and the list of
clients still presenting a rotated key's old secret. Every request the
receiver got is checked against the secrets the page showed."""
import os
import subprocess
import sys
import unittest

import harness
from webhooks_e2e_test import Receiver, python_verifier, receiver_pki

HERE = os.path.dirname(os.path.abspath(__file__))
PORTAL_DIR = os.path.join(os.path.dirname(HERE), "portal")
PASSWORD = "webhooks-portal-password-123"


class PortalWebhooksTest(harness.LumoServerTestCase):
    with_gateway = True

    @classmethod
    def setUpClass(cls):
        ca = receiver_pki(cls)
        cls.server_args = list(harness.FAST_PORTAL_HASHING) + [
            "--webhook_allow_cidrs=127.0.0.1/32",
            f"--webhook_ca_file={ca}",
            "--webhook_poll_interval=50ms",
        ]
        super().setUpClass()

    def test_webhooks_page(self):
        receiver = Receiver(self.cert, self.key)
        self.addCleanup(receiver.stop)
        slug, email = "acme-hooks", "admin@acme-hooks.example"
        r = self.server.cli("tenant", "create", slug, "--admin-email",
                            email, "--admin-password-file", "-",
                            input=PASSWORD + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        shots = os.path.join(harness.binary_dir(), "tests", "e2e", "portal")
        os.makedirs(shots, exist_ok=True)
        checked = ("webhooks.png", "webhook-deliveries.png", "stragglers.png")
        for shot in checked:  # only this run's screenshots count
            if os.path.exists(os.path.join(shots, shot)):
                os.remove(os.path.join(shots, shot))
        env = dict(os.environ)
        env.update({
            "PORTAL_URL": "http://127.0.0.1:%d" % self.gw.port,
            "TENANT": slug, "EMAIL": email, "PASSWORD": PASSWORD,
            "RECEIVER_URL": receiver.url(), "SCREENSHOT_DIR": shots,
            "NODE_PATH": os.path.join(PORTAL_DIR, "node_modules"),
        })
        result = subprocess.run(
            ["node", os.path.join(HERE, "portal_webhooks_flow.js")], env=env,
            cwd=PORTAL_DIR, capture_output=True, text=True,
            timeout=300 * harness.TIME_SCALE)
        sys.stderr.write(result.stdout + result.stderr)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        for shot in checked:
            self.assertGreater(os.path.getsize(os.path.join(shots, shot)),
                               1000, shot)

        # What the receiver got is signed with the secrets the page showed:
        # the first ping with the first secret, every later one with both.
        secrets = dict(line.split(" ")[1:] for line in
                       result.stdout.splitlines() if line.startswith("SECRET"))
        verify = python_verifier()
        pings = [(h, raw) for _, p, h, raw in receiver.events()
                 if p["type"] == "ping"]
        self.assertGreaterEqual(len(pings), 22)
        for i, (headers, raw) in enumerate(pings):
            signature = headers["lumo-signature"]
            if i == 0:
                self.assertEqual(signature.count("v1="), 1)
                self.assertTrue(verify(secrets["first"], signature, raw))
            else:
                self.assertEqual(signature.count("v1="), 2)
                self.assertTrue(verify(secrets["second"], signature, raw))
                self.assertTrue(verify(secrets["first"], signature, raw))


if __name__ == "__main__":
    unittest.main()
