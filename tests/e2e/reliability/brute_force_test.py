"""Brute force and rate limits (docs/quality.md §3).

Real server + gateway + MariaDB. Failed verifications are throttled per
source address and per key id (server flags --auth_failures_per_*,
docs/reliability.md "Brute force"): through the gateway a throttled
attempt is 429 with Retry-After and the documented error body; over gRPC,
AuthService.VerifyApiKey answers RESOURCE_EXHAUSTED with `retry-after`
trailing metadata. The key-id throttle applies to failures only, so the
owner's right secret still works. Per-key request limits (set on the key
at creation) are checked through the gateway with X-RateLimit-* headers.
"""

import json
import secrets
import sys
import time
import unittest
import urllib.parse

import grpc

import harness
from harness import forge, key_id


class BruteForceBase(harness.LumoServerTestCase):
    with_gateway = True

    @classmethod
    def setUpClass(cls):
        cls.stubs = harness.stubs()
        super().setUpClass()
        cls.slug = "brute"
        cls.root = cls.server.create_tenant(cls.slug)
        cls.channel = grpc.insecure_channel(cls.server.address)
        cls.addClassCleanup(cls.channel.close)
        cls.auth = cls.stubs.auth_grpc.AuthServiceStub(cls.channel)

    def base(self):
        return "/t/%s/api/v1/admin/api-keys" % self.slug

    def get(self, key, path=None):
        status, headers, raw = self.gw.request(
            "GET", path or self.base() + "?limit=1",
            headers={"Authorization": "Bearer " + key})
        return status, headers, (json.loads(raw) if raw else None)

    def new_key(self, **fields):
        body = {"name": "k", "scopes": ["admin:read"]}
        body.update(fields)
        status, _, raw = self.gw.request(
            "POST", self.base(), body,
            {"Authorization": "Bearer " + self.root})
        self.assertEqual(status, 201, raw)
        return json.loads(raw)["data"]

    def verify(self, key, client_ip):
        return self.auth.VerifyApiKey(
            self.stubs.auth_pb2.VerifyApiKeyRequest(key=key,
                                                    client_ip=client_ip),
            metadata=self.server.service_md(),
            timeout=10)

    def assert_throttled_grpc(self, key, client_ip):
        with self.assertRaises(grpc.RpcError) as cm:
            self.verify(key, client_ip)
        self.assertEqual(cm.exception.code(),
                         grpc.StatusCode.RESOURCE_EXHAUSTED)
        trailers = dict(cm.exception.trailing_metadata() or ())
        self.assertGreaterEqual(int(trailers["retry-after"]), 1)
        return int(trailers["retry-after"])

    def assert_429(self, result):
        status, headers, doc = result
        self.assertEqual(status, 429, doc)
        self.assertEqual(doc["code"], "rate_limit_exceeded")
        self.assertNotIn("lmk_", json.dumps(doc))
        wait = int(headers["retry-after"])
        self.assertGreaterEqual(wait, 1)
        return wait


class PerAddressThrottleTest(BruteForceBase):
    # 5 failures, then one more every 10 seconds (far longer than the few
    # requests between the burst and the checks take, even on a loaded
    # machine); no key-id throttle.
    server_args = ("--auth_failures_per_ip_burst=5",
                   "--auth_failures_per_ip_per_minute=6",
                   "--auth_failures_per_key_burst=0")

    def test_failures_from_one_address_get_429_then_recover(self):
        self.assertEqual(self.get(self.root)[0], 200)
        garbage = ["lmk_not_a_key", forge("AAAAAAAAAAAA"),
                   forge(key_id(self.root)), "x" * 50, "lmk_" + "9" * 60]
        for bad in garbage:
            status, _, doc = self.get(bad)
            self.assertEqual(status, 401, doc)
        # Over budget: every attempt from the address is refused, the right
        # key too, without verifying anything.
        wait = self.assert_429(self.get("lmk_still_garbage"))
        self.assertLessEqual(wait, 10)
        self.assert_429(self.get(self.root))
        time.sleep(wait + 0.2)
        self.assertEqual(self.get(self.root)[0], 200)
        print("FIGURE brute_force_ip attempts=%d throttled_after=5 "
              "retry_after_s=%d" % (len(garbage) + 2, wait), file=sys.stderr)

    def test_verify_api_key_throttles_per_client_ip(self):
        attacker, bystander = "203.0.113.7", "198.51.100.9"
        for i in range(5):
            r = self.verify(forge("BBBBBBBBBBB%d" % i), attacker)
            self.assertFalse(r.valid)
        self.assert_throttled_grpc(self.root, attacker)
        # Another end client is not affected; without an address the
        # caller is trusted to throttle its own clients.
        self.assertTrue(self.verify(self.root, bystander).valid)
        self.assertTrue(self.verify(self.root, "").valid)


class PerKeyIdThrottleTest(BruteForceBase):
    # No address throttle; 3 failures per key id, then one per 10 s.
    server_args = ("--auth_failures_per_ip_burst=0",
                   "--auth_failures_per_key_burst=3",
                   "--auth_failures_per_key_per_minute=6")

    def test_failures_on_one_key_id_get_429_but_the_owner_still_gets_in(
            self):
        owner = self.new_key()["key"]
        other = self.new_key()["key"]
        self.assertEqual(self.get(owner)[0], 200)
        for i in range(3):
            status, _, doc = self.get(forge(key_id(owner), "C" * 42 + str(i)))
            self.assertEqual(status, 401, doc)
        wait = self.assert_429(self.get(forge(key_id(owner))))
        self.assertLessEqual(wait, 10)
        self.assert_429(self.get(forge(key_id(owner), "D" * 43)))
        # Failures only: the right secret is accepted, and other ids are
        # unaffected.
        self.assertEqual(self.get(owner)[0], 200)
        self.assertEqual(self.get(forge(key_id(other)))[0], 401)
        self.assertEqual(self.get(other)[0], 200)
        print("FIGURE brute_force_key_id failures_before_429=3 "
              "owner_after_throttle=200 retry_after_s=%d" % wait,
              file=sys.stderr)

    def test_verify_api_key_throttles_per_key_id(self):
        owner = self.new_key()["key"]
        for i in range(3):
            r = self.verify(forge(key_id(owner), "E" * 42 + str(i)),
                            "192.0.2.%d" % i)
            self.assertFalse(r.valid)
        self.assert_throttled_grpc(forge(key_id(owner)), "192.0.2.99")
        self.assertTrue(self.verify(owner, "192.0.2.99").valid)


class PerKeyRateLimitTest(BruteForceBase):

    def test_rate_limit_set_on_the_key_is_enforced_with_headers(self):
        # A sliding window of one minute (docs/limits.md): no calendar edge
        # to avoid.
        created = self.new_key(rateLimitPerMinute=3)
        self.assertEqual(created["rateLimitPerMinute"], 3)
        status, _, doc = self.get(self.root, self.base() + "/" + created["id"])
        self.assertEqual(doc["data"]["rateLimitPerMinute"], 3)
        limited = created["key"]
        remaining = []
        for _ in range(3):
            status, headers, doc = self.get(limited)
            self.assertEqual(status, 200, doc)
            self.assertEqual(headers["x-ratelimit-limit"], "3")
            remaining.append(int(headers["x-ratelimit-remaining"]))
            reset = int(headers["x-ratelimit-reset"])
            self.assertGreater(reset, time.time() - 1)
            self.assertLessEqual(reset, time.time() + 61)
        self.assertEqual(remaining, [2, 1, 0])
        result = self.get(limited)
        wait = self.assert_429(result)
        # The first request's one-second slot leaves the window 60-61 s
        # after it.
        self.assertLessEqual(wait, 61)
        self.assertEqual(result[1]["x-ratelimit-remaining"], "0")
        # A key without a limit of its own is under the server's default
        # limit (1 000 000 a minute, this replica's share of it), with the
        # same headers (docs/limits.md "What callers see").
        status, headers, _ = self.get(self.root)
        self.assertEqual(status, 200)
        limit = int(headers["x-ratelimit-limit"])
        self.assertGreater(limit, 0)
        self.assertLessEqual(limit, 1000000)
        self.assertLess(int(headers["x-ratelimit-remaining"]), limit)
        self.assertGreater(int(headers["x-ratelimit-reset"]), time.time() - 1)

    def test_named_limits_every_one_must_admit(self):
        created = self.new_key(rateLimits=[
            {"name": "hourly", "limit": 100, "durationSeconds": 3600},
            {"name": "burst", "limit": 2, "durationSeconds": 3600}])
        limits = [{"name": "burst", "limit": 2, "durationSeconds": 3600},
                  {"name": "hourly", "limit": 100, "durationSeconds": 3600}]
        self.assertEqual(created["rateLimits"], limits)
        status, _, doc = self.get(self.root, self.base() + "/" + created["id"])
        self.assertEqual(doc["data"]["rateLimits"], limits)
        remaining = []
        for _ in range(2):
            status, headers, doc = self.get(created["key"])
            self.assertEqual(status, 200, doc)
            # The tightest limit is reported: burst.
            self.assertEqual(headers["x-ratelimit-limit"], "2")
            remaining.append(int(headers["x-ratelimit-remaining"]))
        self.assertEqual(remaining, [1, 0])
        result = self.get(created["key"])
        wait = self.assert_429(result)
        self.assertGreater(wait, 3000)  # an hour's window
        self.assertEqual(result[1]["x-ratelimit-limit"], "2")

    def test_bad_named_limits_are_400_naming_the_field(self):
        def post(limits, **extra):
            body = {"name": "k", "scopes": ["admin:read"], "rateLimits": limits}
            body.update(extra)
            status, _, raw = self.gw.request(
                "POST", self.base(), body,
                {"Authorization": "Bearer " + self.root})
            return status, json.loads(raw)

        one = {"name": "x", "limit": 1, "durationSeconds": 60}
        cases = [
            ([dict(one, limit=0)], {}, "rateLimits[0].limit"),
            ([dict(one, limit=-3)], {}, "rateLimits[0].limit"),
            ([one, dict(one, name="y", durationSeconds=0)], {},
             "rateLimits[1].durationSeconds"),
            ([dict(one, durationSeconds=31536001)], {},
             "rateLimits[0].durationSeconds"),
            ([dict(one, name="Bad name")], {}, "rateLimits[0].name"),
            ([one, one], {}, "rateLimits[1].name"),
            ([dict(one, name="default")], {"rateLimitPerMinute": 5},
             "rateLimits[0].name"),
            ([dict(one, name="l%d" % i) for i in range(11)], {}, "rateLimits"),
        ]
        for limits, extra, field in cases:
            with self.subTest(field=field, limits=limits):
                status, doc = post(limits, **extra)
                self.assertEqual(status, 400, doc)
                self.assertEqual(doc["code"], "validation_error")
                self.assertEqual(doc["details"], {"field": field}, doc)


class CreditsTest(BruteForceBase):
    """Usage quotas over REST (docs/limits.md "Usage quotas"): every
    authenticated call spends one credit; an empty balance is 429
    usage_exceeded (not rate_limit_exceeded); the credits API reads, sets,
    adds to and removes the balance."""

    def credits(self, key_id, body=None):
        path = self.base() + "/" + key_id + "/credits"
        status, _, raw = self.gw.request(
            "POST" if body is not None else "GET", path, body,
            {"Authorization": "Bearer " + self.root})
        return status, json.loads(raw)

    def test_calls_spend_credits_and_an_empty_balance_is_429(self):
        created = self.new_key(credits={"remaining": 2})
        self.assertEqual(created["credits"], {"remaining": 2, "refill": None})
        key = created["key"]
        left = []
        for _ in range(2):
            status, headers, doc = self.get(key)
            self.assertEqual(status, 200, doc)
            left.append(int(headers["x-credits-remaining"]))
        self.assertEqual(left, [1, 0])
        status, headers, doc = self.get(key)
        self.assertEqual(status, 429, doc)
        self.assertEqual(doc["code"], "usage_exceeded")
        self.assertGreaterEqual(int(headers["retry-after"]), 1)
        # The API: the balance as stored, then topped up.
        status, doc = self.credits(created["id"])
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["data"]["hasQuota"], True)
        self.assertEqual(doc["data"]["remaining"], 0)
        status, doc = self.credits(created["id"], {"op": "ADD", "value": 3})
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["data"]["remaining"], 3)
        status, headers, doc = self.get(key)
        self.assertEqual(status, 200, doc)
        self.assertEqual(headers["x-credits-remaining"], "2")
        # SET with a refill: the next refill is announced.
        status, doc = self.credits(created["id"], {
            "op": "SET", "value": 1,
            "refill": {"amount": 1, "intervalSeconds": 3600}})
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["data"]["refill"],
                         {"amount": 1, "intervalSeconds": 3600})
        self.assertIsNotNone(doc["data"]["nextRefill"])
        status, headers, doc = self.get(key)
        self.assertEqual(status, 200, doc)
        self.assertIn("x-credits-reset", headers)
        status, headers, doc = self.get(key)
        self.assertEqual(status, 429, doc)
        self.assertEqual(doc["code"], "usage_exceeded")
        # Until the refill, an hour away.
        self.assertGreater(int(headers["retry-after"]), 3000)
        # REMOVE: no quota any more, calls pass again.
        status, doc = self.credits(created["id"], {"op": "REMOVE"})
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["data"]["hasQuota"], False)
        status, headers, doc = self.get(key)
        self.assertEqual(status, 200, doc)
        self.assertNotIn("x-credits-remaining", headers)
        # A key cannot top itself up (and any key may only change keys
        # within its own scopes).
        admin = self.new_key(scopes=["admin:write"])
        status, _, raw = self.gw.request(
            "POST", self.base() + "/" + admin["id"] + "/credits",
            {"op": "ADD", "value": 5},
            {"Authorization": "Bearer " + admin["key"]})
        self.assertEqual(status, 403, raw)

    def test_bad_credits_are_400_naming_the_field(self):
        def create(credits):
            body = {"name": "k", "scopes": ["admin:read"], "credits": credits}
            status, _, raw = self.gw.request(
                "POST", self.base(), body,
                {"Authorization": "Bearer " + self.root})
            return status, json.loads(raw)

        target = self.new_key()["id"]
        cases = [
            (lambda: create({"remaining": -1}), "credits.remaining"),
            (lambda: create({"remaining": 10**12 + 1}), "credits.remaining"),
            (lambda: create({"remaining": 5, "refill": {"amount": 5}}),
             "credits.refill.intervalSeconds"),
            (lambda: create({"remaining": 5,
                             "refill": {"intervalSeconds": 60}}),
             "credits.refill.amount"),
            (lambda: create({"remaining": 5, "refill": {
                "amount": 5, "intervalSeconds": 31536001}}),
             "credits.refill.intervalSeconds"),
            (lambda: self.credits(target, {"op": "SET", "value": -1}),
             "value"),
            (lambda: self.credits(target, {"value": 5}), "op"),
            (lambda: self.credits(target, {"op": "ADD", "value": 1, "refill": {
                "amount": 1, "intervalSeconds": 60}}), "refill"),
        ]
        for call, field in cases:
            with self.subTest(field=field):
                status, doc = call()
                self.assertEqual(status, 400, doc)
                self.assertEqual(doc["code"], "validation_error")
                self.assertEqual(doc["details"], {"field": field}, doc)
        # Nothing was changed: the target still has no quota.
        status, doc = self.credits(target)
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["data"]["hasQuota"], False)
        # Verification's cost: 0 to 10 000.
        with self.assertRaises(grpc.RpcError) as cm:
            self.auth.VerifyApiKey(
                self.stubs.auth_pb2.VerifyApiKeyRequest(
                    key=self.root, cost=-1),
                metadata=self.server.service_md(), timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)



class IdentityLimitsTest(BruteForceBase):
    """Identity limits over REST (docs/limits.md "Identity limits"): the
    named limits of one externalId are shared by all its keys, read and
    replaced whole through /identity-limits, reported as
    "identity:<name>"; bad input is a 400 naming the field and changes
    nothing."""

    def limits_path(self):
        return "/t/%s/api/v1/admin/identity-limits" % self.slug

    def read(self, external_id, key=None):
        status, _, raw = self.gw.request(
            "GET", self.limits_path() + "?externalId=" +
            urllib.parse.quote(external_id),
            headers={"Authorization": "Bearer " + (key or self.root)})
        return status, json.loads(raw)

    def replace(self, body, key=None):
        status, _, raw = self.gw.request(
            "PUT", self.limits_path(), body,
            {"Authorization": "Bearer " + (key or self.root)})
        return status, json.loads(raw)

    def test_the_keys_of_one_identity_share_its_limits(self):
        who = "user/" + secrets.token_hex(4)  # '/' is fine in a query
        first = self.new_key(externalId=who)["key"]
        second = self.new_key(externalId=who)["key"]
        status, doc = self.read(who)
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["data"], {"externalId": who, "rateLimits": []})
        status, doc = self.replace({"externalId": who, "rateLimits": [
            {"name": "minute", "limit": 3, "durationSeconds": 60}]})
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["data"]["rateLimits"], [
            {"name": "minute", "limit": 3, "durationSeconds": 60}])
        status, doc = self.read(who)
        self.assertEqual(doc["data"]["rateLimits"], [
            {"name": "minute", "limit": 3, "durationSeconds": 60}])
        # Three calls between the two keys, then both are refused: the
        # identity's window, not one per key.
        remaining = []
        for key in (first, second, first):
            status, headers, doc = self.get(key)
            self.assertEqual(status, 200, doc)
            self.assertEqual(headers["x-ratelimit-limit"], "3")
            remaining.append(int(headers["x-ratelimit-remaining"]))
        self.assertEqual(remaining, [2, 1, 0])
        for key in (first, second):
            self.assert_429(self.get(key))
        # The verify reply names the identity's limit.
        reply = self.auth.VerifyApiKey(
            self.stubs.auth_pb2.VerifyApiKeyRequest(key=second),
            metadata=self.server.service_md(), timeout=10)
        self.assertEqual(reply.rate_limit.name, "identity:minute")
        # Removed: both keys pass again.
        status, doc = self.replace({"externalId": who, "rateLimits": []})
        self.assertEqual(status, 200, doc)
        for key in (first, second):
            status, _, doc = self.get(key)
            self.assertEqual(status, 200, doc)
        # A key may not loosen the limits of its own identity.
        own = self.new_key(externalId=who, scopes=["admin:write"])["key"]
        status, doc = self.replace({"externalId": who, "rateLimits": []},
                                   key=own)
        self.assertEqual(status, 403, doc)

    def test_bad_identity_limits_are_400_naming_the_field(self):
        who = "user-" + secrets.token_hex(4)
        one = {"name": "minute", "limit": 5, "durationSeconds": 60}
        cases = [
            ({"rateLimits": [one]}, "externalId"),
            ({"externalId": who, "rateLimits": [dict(one, limit=0)]},
             "rateLimits[0].limit"),
            ({"externalId": who,
              "rateLimits": [dict(one, durationSeconds=31536001)]},
             "rateLimits[0].durationSeconds"),
            ({"externalId": who, "rateLimits": [one, one]},
             "rateLimits[1].name"),
            ({"externalId": who,
              "rateLimits": [dict(one, name="l%d" % i) for i in range(11)]},
             "rateLimits"),
        ]
        for body, field in cases:
            with self.subTest(field=field):
                status, doc = self.replace(body)
                self.assertEqual(status, 400, doc)
                self.assertEqual(doc["code"], "validation_error")
                self.assertEqual(doc["details"], {"field": field}, doc)
        status, doc = self.read(who)
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["data"]["rateLimits"], [])
        status, doc = self.read("")
        self.assertEqual(status, 400, doc)
        self.assertEqual(doc["details"], {"field": "externalId"}, doc)


if __name__ == "__main__":
    unittest.main()
