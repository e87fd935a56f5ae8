"""The portal in headless Debian chromium: runs browser_flow.js
(playwright-core from npm, installed by tools/dev/test.sh) against a real
server, gateway and MariaDB. Screenshots go to <build>/tests/e2e/portal."""
import os
import subprocess
import sys
import unittest

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
PASSWORD = "browser-test-password-123"


class PortalBrowserTest(harness.LumoServerTestCase):
    server_args = harness.FAST_PORTAL_HASHING
    with_gateway = True

    def test_browser_flow(self):
        slug, email = "acme-browser", "admin@acme-browser.example"
        r = self.server.cli("tenant", "create", slug, "--admin-email",
                            email, "--admin-password-file", "-",
                            input=PASSWORD + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        shots = os.path.join(harness.binary_dir(), "tests", "e2e", "portal")
        os.makedirs(shots, exist_ok=True)
        checked = ("key-list.png", "show-once-dialog.png", "audit-page.png",
                   "edit-dialog.png", "key-policy.png", "key-states.png",
                   "usage-tenant.png", "usage-key.png")
        for shot in checked:  # only this run's screenshots count
            if os.path.exists(os.path.join(shots, shot)):
                os.remove(os.path.join(shots, shot))
        env = dict(os.environ)
        env.update({
            "PORTAL_URL": "http://127.0.0.1:%d" % self.gw.port,
            "TENANT": slug, "EMAIL": email, "PASSWORD": PASSWORD,
            "SCREENSHOT_DIR": shots,
        })
        result = subprocess.run(
            ["node", os.path.join(HERE, "browser_flow.js")], env=env,
            cwd=HERE, capture_output=True, text=True, timeout=300)
        sys.stderr.write(result.stdout + result.stderr)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        for shot in checked:
            self.assertGreater(os.path.getsize(os.path.join(shots, shot)),
                               1000, shot)


if __name__ == "__main__":
    unittest.main()
