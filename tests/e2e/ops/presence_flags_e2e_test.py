"""A quota written by a server of the previous release, which knows no
presence flags (docs/storage.md "Presence flags"), is enforced once a
server of this release starts: serving reconciles the flags before the
first verification. Likewise a key changed by the previous release, which
knows no retired secrets' copy (docs/storage.md "What the verification
read names"): its rotated-away secret keeps verifying through its grace
period, and the copy is built again when a server starts.

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
        self.assertIn(
            "corrected 1 presence flags or copies left stale by an earlier"
            " release", self.server.server_log())

    def test_a_key_changed_by_the_previous_release_keeps_its_grace(self):
        slug = "copy-acme"
        root = self.server.create_tenant(slug, scopes="admin:write")
        old = self.server.tenant_cli_json(
            slug, root, "keys", "create", "--name", "rotated", "--scopes",
            "admin:read")["key"]
        new = self.server.tenant_cli_json(
            slug, root, "keys", "rotate", old[4:16], "--grace-period",
            "86400")["key"]
        key_id = old[4:16]
        current = (f"SELECT retired_copy_version = version FROM api_keys"
                   f" WHERE id = '{key_id}'")
        self.assertEqual(self.server.rows(current), [["1"]])

        # As the previous release edits the key: the version moves on, the
        # copy (which it does not know) stays where it was.
        self.assertEqual(self.server.terminate(), 0)
        self.server.sql("UPDATE api_keys SET name = 'edited',"
                        f" version = version + 1 WHERE id = '{key_id}'")
        self.assertEqual(self.server.rows(current), [["0"]])
        self.server.start()

        self.assertIn(
            "corrected 1 presence flags or copies left stale by an earlier"
            " release", self.server.server_log())
        self.assertEqual(self.server.rows(current), [["1"]])
        self.assertEqual(self.server.verify_reason(slug, old), "VALID")
        self.assertEqual(self.server.verify_reason(slug, new), "VALID")


if __name__ == "__main__":
    unittest.main()
