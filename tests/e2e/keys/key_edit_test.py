"""Editing, disabling and enabling API keys end to end (docs/api-keys.md,
"Managing a key over years"): real lumokeys-server, lumokeys-gateway,
`lumokeys` and MariaDB, over REST, gRPC (Python stubs) and the CLI."""

import json
import secrets

import grpc

import harness


class KeyEditE2ETest(harness.LumoServerTestCase):
    with_gateway = True

    @classmethod
    def setUpClass(cls):
        cls.stubs = harness.stubs()
        super().setUpClass()
        cls.tenant = "edit-" + secrets.token_hex(3)
        cls.root = cls.server.create_tenant(cls.tenant)
        cls.channel = grpc.insecure_channel(cls.server.address)
        cls.addClassCleanup(cls.channel.close)
        cls.keys = cls.stubs.keys_grpc.KeyServiceStub(cls.channel)
        cls.auth = cls.stubs.auth_grpc.AuthServiceStub(cls.channel)

    # ----- helpers -----------------------------------------------------

    def base(self):
        return "/t/%s/api/v1/admin/api-keys" % self.tenant

    def call(self, method, path, body=None, key=None):
        headers = {"Authorization": "Bearer " + (key or self.root)}
        status, _, raw = self.gw.request(method, path, body, headers)
        return status, (json.loads(raw) if raw else None)

    def create(self, **fields):
        body = {"name": "svc", "scopes": ["admin:read", "admin:users"]}
        body.update(fields)
        status, doc = self.call("POST", self.base(), body)
        self.assertEqual(status, 201, doc)
        return doc["data"]

    def verify(self, key, ip="10.1.2.3"):
        reply = self.auth.VerifyApiKey(
            self.stubs.auth_pb2.VerifyApiKeyRequest(
                key=key, tenant_slug=self.tenant, client_ip=ip),
            metadata=self.server.service_md(), timeout=10)
        return self.stubs.auth_pb2.VerifyReason.Name(reply.reason)

    def key_md(self, key=None):
        return (("authorization", "Bearer " + (key or self.root)),)

    def audit(self, action, key_id):
        status, doc = self.call(
            "GET", "/t/%s/api/v1/admin/audit-logs?action=%s&targetId=%s"
            % (self.tenant, action, key_id))
        self.assertEqual(status, 200, doc)
        return doc["data"]

    # ----- REST ---------------------------------------------------------

    def test_rest_patch_changes_only_the_members_sent(self):
        key = self.create(allowedCidrs=["10.0.0.0/8"], rateLimitPerMinute=50,
                          externalId="svc-billing",
                          metadata={"team": "payments"})
        self.assertEqual(key["externalId"], "svc-billing")
        self.assertEqual(key["metadata"], {"team": "payments"})
        status, doc = self.call("PATCH", self.base() + "/" + key["id"],
                                {"name": "renamed", "scopes": ["admin:read"],
                                 "metadata": {"x": "<img src=x onerror=1>"}})
        self.assertEqual(status, 200, doc)
        data = doc["data"]
        self.assertEqual(data["name"], "renamed")
        self.assertEqual(data["scopes"], ["admin:read"])
        self.assertEqual(data["metadata"], {"x": "<img src=x onerror=1>"})
        self.assertEqual(data["allowedCidrs"], ["10.0.0.0/8"])
        self.assertEqual(data["rateLimitPerMinute"], 50)
        self.assertEqual(data["externalId"], "svc-billing")
        self.assertEqual(data["version"], key["version"] + 1)
        self.assertNotIn("key", data)

        events = self.audit("api_key.updated", key["id"])
        self.assertEqual(len(events), 1, events)
        changes = events[0]["metadata"]["changes"]
        self.assertEqual(sorted(changes), ["metadata", "name", "scopes"])
        self.assertEqual(changes["name"], {"before": "svc", "after": "renamed"})
        self.assertEqual(changes["scopes"]["after"], ["admin:read"])

        # Clearing with an explicit empty value.
        status, doc = self.call("PATCH", self.base() + "/" + key["id"],
                                {"allowedCidrs": [], "externalId": ""})
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["data"]["allowedCidrs"], [])
        self.assertEqual(doc["data"]["externalId"], "")
        self.assertEqual(doc["data"]["name"], "renamed")

    def test_rest_bad_edits_get_the_documented_error_and_change_nothing(self):
        key = self.create()
        path = self.base() + "/" + key["id"]
        cases = [
            ({}, 400, "validation_error", "updateMask"),
            ({"name": "x", "updateMask": "secret"}, 400, "validation_error",
             "updateMask"),
            ({"allowedCidrs": ["10.0.0.0/8"] * 33}, 400, "validation_error",
             "allowedCidrs"),
            ({"metadata": {"a": "x" * 4097}}, 400, "validation_error",
             "metadata"),
            ({"metadata": {"a": 1}}, 400, "validation_error", None),
            ({"expiresAt": "2001-01-01T00:00:00Z"}, 400, "validation_error",
             "expiresAt"),
            ({"rateLimitPerMinute": -1}, 400, "validation_error",
             "rateLimitPerMinute"),
        ]
        for body, status, code, field in cases:
            with self.subTest(body=str(body)[:60]):
                got, doc = self.call("PATCH", path, body)
                self.assertEqual(got, status, doc)
                self.assertEqual(doc["code"], code, doc)
                if field is not None:
                    self.assertEqual(doc["details"].get("field"), field, doc)
        status, doc = self.call("GET", path)
        self.assertEqual(doc["data"]["version"], key["version"])
        self.assertEqual(self.audit("api_key.updated", key["id"]), [])

    def test_rest_patch_replaces_the_named_limits(self):
        key = self.create(rateLimits=[
            {"name": "hourly", "limit": 5000, "durationSeconds": 3600}])
        path = self.base() + "/" + key["id"]
        limits = [{"name": "minute", "limit": 3, "durationSeconds": 60},
                  {"name": "burst", "limit": 2, "durationSeconds": 1}]
        status, doc = self.call("PATCH", path, {"rateLimits": limits})
        self.assertEqual(status, 200, doc)
        # Ordered by name, the old limit gone.
        self.assertEqual(doc["data"]["rateLimits"],
                         sorted(limits, key=lambda l: l["name"]))
        self.assertEqual(doc["data"]["version"], key["version"] + 1)
        changes = self.audit("api_key.updated", key["id"])[0]["metadata"][
            "changes"]
        self.assertEqual(changes["rateLimits"]["before"], [
            {"name": "hourly", "limit": 5000, "durationSeconds": 3600}])
        self.assertEqual(len(changes["rateLimits"]["after"]), 2)
        # The edited key is limited by its new limits at once: the tightest
        # one is reported, and "minute" (3 a minute) refuses the fourth
        # call whatever the burst limit's second.
        status, headers, _ = self.gw.request(
            "GET", "/t/%s/api/v1/admin/api-keys?limit=1" % self.tenant, None,
            {"Authorization": "Bearer " + key["key"]})
        self.assertEqual(status, 200)
        self.assertIn(headers.get("x-ratelimit-limit"), ("2", "3"))
        refused = 0
        for _ in range(6):
            status, headers, _ = self.gw.request(
                "GET", "/t/%s/api/v1/admin/api-keys?limit=1" % self.tenant,
                None, {"Authorization": "Bearer " + key["key"]})
            self.assertIn(status, (200, 429))
            refused += status == 429
        # 7 calls, at most 3 admitted in any minute.
        self.assertGreaterEqual(refused, 4)

        # Bad lists: 400 naming the field; nothing changes.
        for body, field in [
                ({"rateLimits": [{"name": "x", "limit": 0,
                                  "durationSeconds": 1}]},
                 "rateLimits[0].limit"),
                ({"rateLimits": [{"name": "x", "limit": 1,
                                  "durationSeconds": 31536001}]},
                 "rateLimits[0].durationSeconds"),
                ({"rateLimits": [{"name": "n%d" % i, "limit": 1,
                                  "durationSeconds": 1} for i in range(11)]},
                 "rateLimits")]:
            with self.subTest(field=field):
                status, doc = self.call("PATCH", path, body)
                self.assertEqual((status, doc["code"]),
                                 (400, "validation_error"), doc)
                self.assertEqual(doc["details"].get("field"), field, doc)
        status, doc = self.call("GET", path)
        self.assertEqual(doc["data"]["version"], key["version"] + 1)

        # An empty list removes them.
        status, doc = self.call("PATCH", path, {"rateLimits": []})
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["data"].get("rateLimits", []), [])

    def test_rest_a_restricted_key_cannot_loosen_a_key_by_editing(self):
        # admin:write holds every scope, so the escalation an edit can try is
        # past the caller's own restrictions (docs/api-keys.md).
        limited = self.create(scopes=["admin:write"], rateLimitPerMinute=10)
        child = self.create(name="child", rateLimitPerMinute=5)
        path = self.base() + "/" + child["id"]
        status, doc = self.call("PATCH", path, {"rateLimitPerMinute": 0},
                                key=limited["key"])
        self.assertEqual((status, doc["code"]), (403, "insufficient_scope"))
        self.assertTrue(doc["message"].startswith("rateLimitPerMinute"), doc)
        status, doc = self.call("PATCH", path, {"rateLimitPerMinute": 8},
                                key=limited["key"])
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["data"]["rateLimitPerMinute"], 8)

    def test_rest_revoked_and_deleted_keys_cannot_be_edited(self):
        key = self.create()
        path = self.base() + "/" + key["id"]
        self.assertEqual(self.call("POST", path + "/revoke", {})[0], 200)
        status, doc = self.call("PATCH", path, {"name": "x"})
        self.assertEqual((status, doc["code"]), (400, "invalid_request"), doc)
        status, doc = self.call("POST", path + "/disable", {})
        self.assertEqual((status, doc["code"]), (400, "invalid_request"), doc)
        other = self.create()
        opath = self.base() + "/" + other["id"]
        self.assertEqual(self.call("DELETE", opath)[0], 204)
        status, doc = self.call("PATCH", opath, {"name": "x"})
        self.assertEqual((status, doc["code"]), (404, "resource_not_found"))

    def test_rest_disable_looks_like_an_unknown_key_until_enabled(self):
        key = self.create(scopes=["admin:read"])
        full = key["key"]
        path = self.base() + "/" + key["id"]
        self.assertEqual(self.call("GET", self.base(), key=full)[0], 200)
        status, doc = self.call("POST", path + "/disable", {})
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["data"]["status"], "disabled")
        self.assertIsNotNone(doc["data"]["disabledAt"])
        unknown = harness.forge(key["id"][::-1])
        got_disabled = self.call("GET", self.base(), key=full)
        got_unknown = self.call("GET", self.base(), key=unknown)
        self.assertEqual(got_disabled[0], 401)
        self.assertEqual(got_disabled[1], got_unknown[1])
        self.assertEqual(self.verify(full), "DISABLED")

        # The use of a paused key is suspicious (dead_key), like a revoked
        # one's; when the batched writer shows it is not asserted.
        def suspicious():
            status, doc = self.call(
                "GET", "/t/%s/api/v1/admin/audit-logs?suspicious=true&actorId=%s"
                % (self.tenant, key["id"]))
            self.assertEqual(status, 200, doc)
            return doc["data"]
        events = harness.wait_for(suspicious, "a suspicious event")
        self.assertIn("dead_key", events[0]["metadata"]["suspiciousReasons"])

        status, doc = self.call("POST", path + "/enable", {})
        self.assertEqual((status, doc["data"]["status"]), (200, "active"))
        self.assertEqual(self.call("GET", self.base(), key=full)[0], 200)
        self.assertEqual(len(self.audit("api_key.disabled", key["id"])), 1)
        self.assertEqual(len(self.audit("api_key.enabled", key["id"])), 1)

    # ----- gRPC --------------------------------------------------------

    def test_grpc_update_with_a_mask_and_disable(self):
        pb = self.stubs.keys_pb2
        key = self.create(allowedCidrs=["10.0.0.0/8"])
        self.assertEqual(self.verify(key["key"]), "VALID")
        request = pb.UpdateApiKeyRequest(
            tenant_slug=self.tenant, id=key["id"],
            allowed_cidrs=["192.168.0.0/16"], name="ignored: not in the mask")
        request.update_mask.paths.append("allowed_cidrs")
        reply = self.keys.UpdateApiKey(request, metadata=self.key_md(),
                                       timeout=10)
        self.assertEqual(list(reply.allowed_cidrs), ["192.168.0.0/16"])
        self.assertEqual(reply.name, "svc")
        # Restricting: the old address is refused as soon as the call returned.
        self.assertEqual(self.verify(key["key"]), "IP_NOT_ALLOWED")
        self.keys.DisableApiKey(
            pb.SetApiKeyDisabledRequest(tenant_slug=self.tenant, id=key["id"]),
            metadata=self.key_md(), timeout=10)
        self.assertEqual(self.verify(key["key"], "192.168.1.1"), "DISABLED")
        with self.assertRaises(grpc.RpcError) as caught:
            self.keys.UpdateApiKey(
                pb.UpdateApiKeyRequest(tenant_slug=self.tenant, id=key["id"]),
                metadata=self.key_md(), timeout=10)
        self.assertEqual(caught.exception.code(),
                         grpc.StatusCode.INVALID_ARGUMENT)

    def test_verify_reply_carries_owner_metadata_and_expiry(self):
        key = self.create(externalId="svc-42", metadata={"team": "ops"},
                          expiresAt="2099-01-01T00:00:00Z")
        reply = self.auth.VerifyApiKey(
            self.stubs.auth_pb2.VerifyApiKeyRequest(
                key=key["key"], tenant_slug=self.tenant),
            metadata=self.server.service_md(), timeout=10)
        self.assertTrue(reply.valid)
        self.assertEqual(reply.key.external_id, "svc-42")
        self.assertEqual(dict(reply.key.metadata), {"team": "ops"})
        self.assertEqual(reply.key.expires_at.ToJsonString(),
                         "2099-01-01T00:00:00Z")
        status, doc = self.call("PATCH", self.base() + "/" + key["id"],
                                {"metadata": {"team": "sre"}})
        self.assertEqual(status, 200, doc)
        reply = self.auth.VerifyApiKey(
            self.stubs.auth_pb2.VerifyApiKeyRequest(
                key=key["key"], tenant_slug=self.tenant),
            metadata=self.server.service_md(), timeout=10)
        self.assertEqual(dict(reply.key.metadata), {"team": "sre"})

    # ----- CLI ---------------------------------------------------------

    def test_cli_update_disable_enable(self):
        key = self.create()
        env = {"LUMOKEYS_API_KEY": self.root}
        run = lambda *args: self.server.cli("--json", "--tenant", self.tenant,
                                            *args, env=env)
        result = run("keys", "update", key["id"], "--name", "cli-renamed",
                     "--metadata", "team=ops,env=prod", "--expires-at",
                     "2099-01-01T00:00:00Z")
        self.assertEqual(result.returncode, 0, result.stderr)
        data = json.loads(result.stdout)
        self.assertEqual(data["name"], "cli-renamed")
        self.assertEqual(data["metadata"], {"team": "ops", "env": "prod"})
        self.assertEqual(data["expiresAt"], "2099-01-01T00:00:00Z")
        result = run("keys", "update", key["id"], "--expires-at", "never")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIsNone(json.loads(result.stdout).get("expiresAt"))
        result = run("keys", "disable", key["id"])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout)["status"], "disabled")
        self.assertEqual(self.verify(key["key"]), "DISABLED")
        result = run("keys", "enable", key["id"])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.verify(key["key"]), "VALID")
        result = run("keys", "update", key["id"])
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("at least one field", result.stderr)

    def test_cli_named_limits_on_create_and_update(self):
        env = {"LUMOKEYS_API_KEY": self.root}
        run = lambda *args: self.server.cli("--tenant", self.tenant, *args,
                                            env=env)
        result = self.server.cli("--json", "--tenant", self.tenant, "keys",
                                 "create", "--name", "cli-limits", "--scopes",
                                 "admin:read", "--rate-limits",
                                 "burst:5:1,hourly:500:3600", env=env)
        self.assertEqual(result.returncode, 0, result.stderr)
        key = json.loads(result.stdout)
        self.assertEqual([l["name"] for l in key["rateLimits"]],
                         ["burst", "hourly"])
        result = run("keys", "update", key["id"], "--rate-limits",
                     "minute:30:60")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("minute 30/60s", result.stdout)
        status, doc = self.call("GET", self.base() + "/" + key["id"])
        self.assertEqual(doc["data"]["rateLimits"],
                         [{"name": "minute", "limit": 30,
                           "durationSeconds": 60}])
        result = run("keys", "update", key["id"], "--rate-limits", "")
        self.assertEqual(result.returncode, 0, result.stderr)
        status, doc = self.call("GET", self.base() + "/" + key["id"])
        self.assertEqual(doc["data"].get("rateLimits", []), [])
        # A malformed list is a usage error; a bad value the server's 400.
        result = run("keys", "update", key["id"], "--rate-limits", "x:1")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("name:limit:seconds", result.stderr)
        result = run("keys", "update", key["id"], "--rate-limits", "x:0:1")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("rateLimits[0].limit", result.stderr)


    def test_cli_credits_and_identity_limits(self):
        env = {"LUMOKEYS_API_KEY": self.root}
        run = lambda *args: self.server.cli("--tenant", self.tenant, *args,
                                            env=env)
        key = self.create(credits={"remaining": 5}, externalId="cli-user")
        # The key shows its quota; `keys credits` reads and changes it.
        result = run("keys", "get", key["id"])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("credits", result.stdout)
        self.assertIn("5 left", result.stdout)
        result = run("keys", "credits", key["id"])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("5 left", result.stdout)
        result = run("keys", "credits", key["id"], "--set", "100",
                     "--refill", "100:86400")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("100 left, refilled to 100 every 86400s", result.stdout)
        self.assertIn("next refill", result.stdout)
        result = run("keys", "credits", key["id"], "--add", "-30")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("70 left", result.stdout)
        status, doc = self.call("GET", self.base() + "/" + key["id"] +
                                "/credits")
        self.assertEqual(doc["data"]["remaining"], 70)
        result = run("keys", "credits", key["id"], "--remove")
        self.assertEqual(result.returncode, 0, result.stderr)
        status, doc = self.call("GET", self.base() + "/" + key["id"] +
                                "/credits")
        self.assertEqual(doc["data"]["hasQuota"], False)
        # Usage errors and the server's 400 naming the field.
        result = run("keys", "credits", key["id"], "--set", "1", "--add", "1")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("at most one of", result.stderr)
        result = run("keys", "credits", key["id"], "--set", "-1")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("value", result.stderr)

        # Identity limits: set, shown, enforced on the identity's key,
        # removed.
        result = run("identity", "set-limits", "cli-user", "--rate-limits",
                     "minute:2:60")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("minute 2/60s", result.stdout)
        result = self.server.cli("--json", "--tenant", self.tenant,
                                 "identity", "limits", "cli-user", env=env)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout)["rateLimits"],
                         [{"name": "minute", "limit": 2,
                           "durationSeconds": 60}])
        reasons = [self.verify(key["key"]) for _ in range(3)]
        self.assertEqual(reasons, ["VALID", "VALID", "RATE_LIMITED"])
        result = run("identity", "set-limits", "cli-user", "--rate-limits",
                     "")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.verify(key["key"]), "VALID")
        result = run("identity", "set-limits", "cli-user", "--rate-limits",
                     "x:0:1")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("rateLimits[0].limit", result.stderr)


if __name__ == "__main__":
    import unittest
    unittest.main()
