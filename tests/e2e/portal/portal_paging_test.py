"""The portal's key page over a tenant with 10,000 keys, in headless
Debian chromium (paging_flow.js, playwright-core): time to the first page
(printed as a FIGURE line, never asserted), Next/Previous through the
keyset pages, search, sort and the state filter. The keys are seeded with
one INSERT ... SELECT (docs/admin-api.md, "Paging large lists")."""
import os
import subprocess
import sys
import unittest

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
PASSWORD = "paging-test-password-123"
KEYS = 10000


class PortalPagingTest(harness.LumoServerTestCase):
    server_args = harness.FAST_PORTAL_HASHING
    with_gateway = True

    def test_paging_over_ten_thousand_keys(self):
        slug, email = "acme-paging", "admin@acme-paging.example"
        r = self.server.cli("tenant", "create", slug, "--admin-email",
                            email, "--admin-password-file", "-",
                            input=PASSWORD + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        tenant_id = self.server.rows(
            "SELECT id FROM tenants WHERE slug = '%s'" % slug)[0][0]
        # bulk-00001 is the oldest; every 3rd key expires within 1..400
        # days (so some are within the 7-day warning), every 50th is
        # revoked, every 2nd was used.
        self.server.sql(
            "INSERT INTO api_keys (id, tenant_id, name, digest,"
            " pepper_version, scopes, allowed_cidrs, revoked, version,"
            " created_by_type, created_by_id, created_at, last_used_at,"
            " expires_at, metadata)"
            " SELECT CONCAT('P', seq), %s, CONCAT('bulk-', LPAD(seq, 5, '0')),"
            " UNHEX(SHA2(CONCAT('P', seq), 256)), 1, 'admin:read', '',"
            " seq %% 50 = 0, 1, 'system', 'seed',"
            " UTC_TIMESTAMP(6) - INTERVAL (%d - seq) MINUTE,"
            " IF(seq %% 2 = 0, UTC_TIMESTAMP(6) - INTERVAL seq MINUTE, NULL),"
            " IF(seq %% 3 = 0, UTC_TIMESTAMP(6) + INTERVAL 1 + seq %% 400 DAY,"
            " NULL), ''"
            " FROM seq_1_to_%d" % (tenant_id, KEYS + 1, KEYS))
        shots = os.path.join(harness.binary_dir(), "tests", "e2e", "portal")
        os.makedirs(shots, exist_ok=True)
        shot = os.path.join(shots, "key-list-10k.png")
        if os.path.exists(shot):
            os.remove(shot)
        env = dict(os.environ)
        env.update({
            "PORTAL_URL": "http://127.0.0.1:%d" % self.gw.port,
            "TENANT": slug, "EMAIL": email, "PASSWORD": PASSWORD,
            "SCREENSHOT_DIR": shots, "KEYS": str(KEYS),
        })
        result = subprocess.run(
            ["node", os.path.join(HERE, "paging_flow.js")], env=env,
            cwd=HERE, capture_output=True, text=True, timeout=300)
        sys.stderr.write(result.stdout + result.stderr)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        for line in result.stdout.splitlines():
            if line.startswith("FIGURE"):
                print(line)
        self.assertGreater(os.path.getsize(shot), 1000)


if __name__ == "__main__":
    unittest.main()
