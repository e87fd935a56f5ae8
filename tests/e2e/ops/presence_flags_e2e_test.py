"""A quota written by a server of the previous release, which knows no
presence flags (docs/storage.md "Presence flags"), is enforced once a
server of this release starts: serving reconciles the flags before the
first verification.

The previous release's write is the row alone, added with SQL while the
server is stopped, as a replica of that release adds it during a rolling
upgrade. The key's verification answers USAGE_EXCEEDED afterwards (the
quota has no credits), where the flag alone would have said the key has
no quota and let it through."""
import unittest

import harness


class PresenceFlagsAtStartTest(unittest.TestCase):
    def setUp(self):
        self.server = harness.LumoServer()
        self.server.start()
        self.addCleanup(self.server.stop)

    def test_a_quota_added_without_its_flag_is_enforced_after_a_restart(self):
        slug = "flags-acme"
        key = self.server.create_tenant(slug, scopes="admin:read")
        self.assertEqual(self.server.verify_reason(slug, key), "VALID")
        rows = self.server.rows(
            "SELECT k.id, k.tenant_id, k.has_quota FROM api_keys k"
            f" JOIN tenants t ON t.id = k.tenant_id WHERE t.slug = '{slug}'")
        self.assertEqual(len(rows), 1, rows)
        key_id, tenant_id, has_quota = rows[0]
        self.assertEqual(has_quota, "0")

        self.assertEqual(self.server.terminate(), 0)
        self.server.sql(
            "INSERT INTO key_quotas (key_id, tenant_id, remaining,"
            " refill_amount, refill_interval_ms, period_start_us, epoch)"
            f" VALUES ('{key_id}', {tenant_id}, 0, NULL, NULL, 0, 0)")
        self.server.start()

        self.assertEqual(self.server.verify_reason(slug, key),
                         "USAGE_EXCEEDED")
        self.assertEqual(
            self.server.rows(
                f"SELECT has_quota FROM api_keys WHERE id = '{key_id}'"),
            [["1"]])
        self.assertIn("set 1 presence flags left unset by an earlier release",
                      self.server.server_log())


if __name__ == "__main__":
    unittest.main()
