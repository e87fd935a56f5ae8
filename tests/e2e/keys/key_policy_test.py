"""The tenant key policy end to end (docs/api-keys.md, "Tenant key policy"):
GET/PATCH /settings over the real gateway and server on MariaDB."""

import json
import secrets

import harness


class KeyPolicyE2ETest(harness.LumoServerTestCase):
    with_gateway = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant = "pol-" + secrets.token_hex(3)
        cls.root = cls.server.create_tenant(cls.tenant)

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


if __name__ == "__main__":
    import unittest
    unittest.main()
