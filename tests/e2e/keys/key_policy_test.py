"""The tenant key policy end to end (docs/api-keys.md, "Tenant key policy"):
GET/PATCH /settings over the real gateway and server on MariaDB."""

import json
import secrets

import grpc

import harness


class KeyPolicyE2ETest(harness.LumoServerTestCase):
    with_gateway = True

    @classmethod
    def setUpClass(cls):
        cls.stubs = harness.stubs()
        super().setUpClass()
        cls.tenant = "pol-" + secrets.token_hex(3)
        cls.root = cls.server.create_tenant(cls.tenant)
        cls.channel = grpc.insecure_channel(cls.server.address)
        cls.addClassCleanup(cls.channel.close)
        cls.auth = cls.stubs.auth_grpc.AuthServiceStub(cls.channel)

    def call(self, method, path, body=None):
        status, _, raw = self.gw.request(
            method, "/t/%s/api/v1/admin%s" % (self.tenant, path), body,
            {"Authorization": "Bearer " + self.root})
        return status, (json.loads(raw) if raw else None)

    def test_policy_defaults_change_and_bad_values(self):
        status, doc = self.call("GET", "/settings")
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["data"]["keyPolicy"], {
            "requireExpiry": False, "maxLifetimeDays": 0,
            "rotationPeriodDays": 0, "expiryWarningDays": 7,
            "inactiveAfterDays": 0})

        status, doc = self.call("PATCH", "/settings", {"keyPolicy": {
            "requireExpiry": True, "maxLifetimeDays": 90,
            "rotationPeriodDays": 30}})
        self.assertEqual(status, 200, doc)
        policy = doc["data"]["keyPolicy"]
        self.assertEqual(policy["maxLifetimeDays"], 90)
        self.assertEqual(policy["expiryWarningDays"], 7)
        self.assertTrue(policy["requireExpiry"])
        self.assertFalse(doc["data"]["dynamicRegistration"]["enabled"])

        bad = [
            ({"maxLifetimeDays": -1}, "keyPolicy.maxLifetimeDays"),
            ({"rotationPeriodDays": 3651}, "keyPolicy.rotationPeriodDays"),
            ({"expiryWarningDays": 90}, "keyPolicy.expiryWarningDays"),
            ({"inactiveAfterDays": 99999999}, "keyPolicy.inactiveAfterDays"),
            ({"maxLifetimeDays": 1.5}, None),
            ({"maxLifetimeDays": "ninety"}, None),
            ({"maxLifetimeDays": 1e12}, None),
        ]
        for member, field in bad:
            with self.subTest(member=member):
                status, doc = self.call("PATCH", "/settings",
                                        {"keyPolicy": member})
                self.assertEqual(status, 400, doc)
                self.assertEqual(doc["code"], "validation_error", doc)
                if field is not None:
                    self.assertEqual(doc["details"].get("field"), field, doc)
        status, doc = self.call("GET", "/settings")
        self.assertEqual(doc["data"]["keyPolicy"]["maxLifetimeDays"], 90)
        self.assertEqual(doc["data"]["keyPolicy"]["expiryWarningDays"], 7)

        # States follow the policy at once: a fresh key is due in 30 days.
        status, doc = self.call("POST", "/api-keys", {
            "name": "stateful", "scopes": ["admin:read"],
            "expiresAt": "2000-01-01T00:00:00Z"})
        self.assertEqual((status, doc["details"].get("field")),
                         (400, "expiresAt"), doc)
        status, doc = self.call("GET", "/api-keys?limit=1")
        self.assertEqual(status, 200, doc)
        state = doc["data"][0]["state"]
        self.assertFalse(state["rotationDue"])
        self.assertIsNotNone(state["rotationDueAt"])
        self.assertFalse(state["disabled"])

        status, doc = self.call(
            "GET", "/audit-logs?action=settings.updated")
        self.assertEqual(status, 200, doc)
        self.assertEqual(len(doc["data"]), 1, doc)
        self.assertEqual(doc["data"][0]["metadata"]["keyPolicy.maxLifetimeDays"],
                         90)

    def test_state_filter_and_verify_reply_follow_the_database_clock(self):
        tenant = "st-" + secrets.token_hex(3)
        root = self.server.create_tenant(tenant)

        def call(method, path, body=None):
            status, _, raw = self.gw.request(
                method, "/t/%s/api/v1/admin%s" % (tenant, path), body,
                {"Authorization": "Bearer " + root})
            return status, (json.loads(raw) if raw else None)

        def listed(query):
            status, doc = call("GET", "/api-keys?limit=100&" + query)
            self.assertEqual(status, 200, doc)
            return sorted(k["name"] for k in doc["data"])

        status, doc = call("PATCH", "/settings", {"keyPolicy": {
            "rotationPeriodDays": 30, "inactiveAfterDays": 60}})
        self.assertEqual(status, 200, doc)
        keys = {}
        for name in ("old", "idle", "fresh"):
            status, doc = call("POST", "/api-keys", {
                "name": name, "scopes": ["admin:read"]})
            self.assertEqual(status, 201, doc)
            keys[name] = doc["data"]
        # Days pass in the database, not in the test: the keys' times move.
        for name, days in (("old", 31), ("idle", 61)):
            self.server.sql(
                "UPDATE api_keys SET created_at = created_at - INTERVAL %d DAY"
                " WHERE id = '%s'" % (days, keys[name]["id"]))
        self.assertEqual(listed("state=rotation_due"), ["idle", "old"])
        self.assertEqual(listed("state=inactive"), ["idle"])
        self.assertEqual(listed("state=expiring"), [])
        status, doc = call("POST", "/api-keys/%s/disable" % keys["fresh"]["id"])
        self.assertEqual(status, 200, doc)
        self.assertEqual(listed("state=disabled"), ["fresh"])
        self.assertEqual(listed("status=disabled"), ["fresh"])
        self.assertNotIn("fresh", listed("status=active"))
        status, doc = call("GET", "/api-keys?state=stale")
        self.assertEqual((status, doc["code"], doc["details"].get("field")),
                         (400, "validation_error", "state"), doc)

        reply = self.auth.VerifyApiKey(
            self.stubs.auth_pb2.VerifyApiKeyRequest(
                key=keys["idle"]["key"], tenant_slug=tenant),
            metadata=self.server.service_md(), timeout=10)
        self.assertTrue(reply.valid)
        self.assertTrue(reply.key.state.rotation_due)
        self.assertTrue(reply.key.state.inactive)
        self.assertFalse(reply.key.state.expiring_soon)
        self.assertTrue(reply.key.state.HasField("rotation_due_at"))
        reply = self.auth.VerifyApiKey(
            self.stubs.auth_pb2.VerifyApiKeyRequest(
                key=keys["fresh"]["key"], tenant_slug=tenant),
            metadata=self.server.service_md(), timeout=10)
        self.assertEqual(self.stubs.auth_pb2.VerifyReason.Name(reply.reason),
                         "DISABLED")
        self.assertTrue(reply.key.state.disabled)
        self.assertFalse(reply.key.state.rotation_due)


if __name__ == "__main__":
    import unittest
    unittest.main()
