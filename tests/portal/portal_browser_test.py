"""The portal in headless Debian chromium: runs browser_flow.js
(playwright-core from npm, installed by tools/dev/test.sh) against a real
server, gateway and MariaDB. Screenshots go to the working directory (the
ctest build folder, build/tests/portal)."""
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import harness  # noqa: E402
import portal_harness  # noqa: E402

PASSWORD = "browser-test-password-123"


class PortalBrowserTest(portal_harness.PortalServerTestCase):
    def test_browser_flow(self):
        gw = harness.LumoGateway(self.server)
        try:
            slug, email = "acme-browser", "admin@acme-browser.example"
            r = self.server.cli("tenant", "create", slug, "--admin-email",
                                email, "--admin-password-file", "-",
                                input=PASSWORD + "\n")
            self.assertEqual(r.returncode, 0, r.stderr)
            env = dict(os.environ)
            env.update({
                "PORTAL_URL": "http://127.0.0.1:%d" % gw.port,
                "TENANT": slug, "EMAIL": email, "PASSWORD": PASSWORD,
                "SCREENSHOT_DIR": os.getcwd(),
            })
            result = subprocess.run(
                ["node", os.path.join(HERE, "browser_flow.js")], env=env,
                cwd=HERE, capture_output=True, text=True, timeout=300)
            sys.stderr.write(result.stdout + result.stderr)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            for shot in ("key-list.png", "show-once-dialog.png",
                         "audit-page.png"):
                self.assertGreater(os.path.getsize(shot), 1000, shot)
        finally:
            gw.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
