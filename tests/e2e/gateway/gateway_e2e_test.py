"""The REST surface end to end: real lumokeys-server, real lumokeys-gateway,
real MariaDB, Python's http.client (and a raw socket for malformed HTTP)."""
import json
import time
import unittest

import harness

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


class GatewayE2ETest(harness.LumoServerTestCase):
    with_gateway = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant = "acme-rest"
        cls.root = cls.server.create_tenant(cls.tenant)
        cls.other_tenant = "globex-rest"
        cls.other_root = cls.server.create_tenant(cls.other_tenant)

    def base(self, tenant=None):
        return "/t/%s/api/v1/admin/api-keys" % (tenant or self.tenant)

    def call(self, method, path, key=None, body=None, form="bearer", headers=None):
        hdrs = dict(headers or {})
        if key is not None:
            if form == "bearer":
                hdrs["Authorization"] = "Bearer " + key
            elif form == "apikey":
                hdrs["Authorization"] = "ApiKey " + key
            else:
                hdrs["X-API-Key"] = key
        status, resp_headers, raw = self.gw.request(method, path, body, hdrs)
        for name, value in SECURITY_HEADERS.items():
            self.assertEqual(resp_headers.get(name), value, (method, path, name))
        self.assertTrue(resp_headers.get("x-request-id"), (method, path))
        self.assertNotIn("access-control-allow-origin", resp_headers)
        doc = json.loads(raw) if raw else None
        return status, resp_headers, doc

    def assert_error(self, result, status, code):
        got_status, _, doc = result
        self.assertEqual(got_status, status, doc)
        self.assertEqual(doc["error"], True)
        self.assertEqual(doc["status"], status)
        self.assertEqual(doc["code"], code, doc)
        self.assertIsInstance(doc["message"], str)
        self.assertIn("details", doc)

    def count_keys(self):
        status, _, doc = self.call("GET", self.base() + "?limit=100", self.root)
        self.assertEqual(status, 200)
        return doc["meta"]["total"]

    # ------------------------------------------------------------------

    def test_lifecycle_with_each_header_form(self):
        for form in ("bearer", "apikey", "x-api-key"):
            with self.subTest(form=form):
                status, _, doc = self.call("POST", self.base(), self.root,
                                           {"name": "svc " + form, "scopes": ["admin:read"]}, form)
                self.assertEqual(status, 201, doc)
                key = doc["data"]["key"]
                kid = doc["data"]["id"]
                self.assertTrue(key.startswith("lmk_" + kid + "_"))
                self.assertEqual(doc["data"]["prefix"], "lmk_" + kid)
                self.assertEqual(doc["data"]["status"], "active")
                self.assertIsNone(doc["data"]["lastUsedAt"])
                self.assertIn("message", doc)

                status, _, doc = self.call("GET", self.base() + "/" + kid, key, form=form)
                self.assertEqual(status, 200, doc)
                self.assertNotIn(key, json.dumps(doc))
                self.assertNotIn("key", doc["data"])

                status, _, doc = self.call("GET", self.base() + "?search=svc&limit=5", self.root, form=form)
                self.assertEqual(status, 200)
                self.assertEqual(set(doc["meta"]), {"total", "page", "limit", "totalPages",
                                                     "hasNextPage", "hasPreviousPage"})
                self.assertNotIn(key, json.dumps(doc))

                status, _, doc = self.call("POST", self.base() + "/" + kid + "/rotate", self.root, {}, form)
                self.assertEqual(status, 200, doc)
                new_key = doc["data"]["key"]
                self.assertNotEqual(new_key, key)
                self.assert_error(self.call("GET", self.base() + "/" + kid, key, form=form), 401, "invalid_token")
                self.assertEqual(self.call("GET", self.base() + "/" + kid, new_key, form=form)[0], 200)

                status, _, doc = self.call("POST", self.base() + "/" + kid + "/revoke", self.root, form=form)
                self.assertEqual(status, 200, doc)
                self.assertEqual(doc["data"]["status"], "revoked")
                self.assert_error(self.call("GET", self.base() + "/" + kid, new_key, form=form), 401, "invalid_token")

                status, headers, doc = self.call("DELETE", self.base() + "/" + kid, self.root, form=form)
                self.assertEqual(status, 204)
                self.assertIsNone(doc)
                self.assert_error(self.call("GET", self.base() + "/" + kid, self.root, form=form),
                                  404, "resource_not_found")

    def test_cross_tenant_is_indistinguishable_from_missing(self):
        on_other = self.gw.request("GET", self.base(self.other_tenant),
                                   headers={"Authorization": "Bearer " + self.root})
        on_none = self.gw.request("GET", self.base("no-such-tenant"),
                                  headers={"Authorization": "Bearer " + self.root})
        self.assertEqual(on_other[0], 401)
        self.assertEqual(on_other[0], on_none[0])
        self.assertEqual(on_other[2], on_none[2])  # byte for byte
        # The other tenant's key id through our own tenant vs an unknown id.
        other_id = self.other_root[4:16]
        a = self.gw.request("GET", self.base() + "/" + other_id, headers={"X-API-Key": self.root})
        b = self.gw.request("GET", self.base() + "/AAAAAAAAAAAA", headers={"X-API-Key": self.root})
        self.assertEqual(a[0], 404)
        self.assertEqual((a[0], a[2]), (b[0], b[2]))

    def test_401_vs_403(self):
        self.assert_error(self.call("GET", self.base()), 401, "invalid_token")
        self.assert_error(self.call("GET", self.base(), "lmk_nope"), 401, "invalid_token")
        status, _, doc = self.call("POST", self.base(), self.root, {"name": "reader", "scopes": ["admin:read"]})
        self.assertEqual(status, 201)
        reader = doc["data"]["key"]
        self.assertEqual(self.call("GET", self.base(), reader)[0], 200)
        self.assert_error(self.call("POST", self.base(), reader, {"name": "x", "scopes": ["admin:read"]}),
                          403, "insufficient_scope")
        status, _, doc = self.call("POST", self.base(), self.root, {"name": "users", "scopes": ["admin:users"]})
        users = doc["data"]["key"]
        self.assert_error(self.call("GET", self.base(), users), 403, "insufficient_scope")
        # Two different keys in two headers.
        self.assert_error(self.call("GET", self.base(), headers={"Authorization": "Bearer " + self.root,
                                                                 "X-API-Key": reader}), 401, "invalid_token")

    def test_allowed_cidrs_give_permission_denied(self):
        status, _, doc = self.call("POST", self.base(), self.root,
                                   {"name": "office", "scopes": ["admin:read"], "allowedCidrs": ["10.9.0.0/16"]})
        self.assertEqual(status, 201, doc)
        self.assert_error(self.call("GET", self.base(), doc["data"]["key"]), 403, "permission_denied")

    def test_per_key_rate_limit_headers_and_429(self):
        status, _, doc = self.call("POST", self.base(), self.root,
                                   {"name": "limited", "scopes": ["admin:read"], "rateLimitPerMinute": 3})
        self.assertEqual(status, 201, doc)
        limited = doc["data"]["key"]
        seen = []
        for _ in range(6):
            status, headers, doc = self.call("GET", self.base() + "?limit=1", limited)
            seen.append(status)
            self.assertEqual(headers.get("x-ratelimit-limit"), "3")
            self.assertIn("x-ratelimit-remaining", headers)
            self.assertGreater(int(headers["x-ratelimit-reset"]), time.time() - 1)
            if status == 429:
                self.assertEqual(doc["code"], "rate_limit_exceeded")
                self.assertGreaterEqual(int(headers["retry-after"]), 1)
                # The first request's one-second slot leaves the sliding
                # window 60-61 s after it (docs/limits.md).
                self.assertLessEqual(int(headers["retry-after"]), 61)
        # A sliding window: no minute edge resets it inside the loop.
        self.assertEqual(seen, [200] * 3 + [429] * 3)
        self.assertEqual(seen[:3], [200, 200, 200])
        if seen.count(200) == 3:
            self.assertEqual(seen[3:], [429, 429, 429])

    def test_bad_input_gets_documented_errors_and_stores_nothing(self):
        before = self.count_keys()
        cases = [
            ("bad json", dict(body=b"{not json"), 400, "validation_error"),
            ("unknown field", dict(body={"name": "x", "scopes": ["admin:read"], "digest": "00"}),
             400, "validation_error"),
            ("duplicate keys", dict(body=b'{"name":"a","name":"b","scopes":["admin:read"]}'),
             400, "validation_error"),
            ("deep json", dict(body=("[" * 200 + "]" * 200).encode()), 400, "validation_error"),
            ("invalid utf-8 name", dict(body=b'{"name":"\xff\xfe","scopes":["admin:read"]}'),
             400, "validation_error"),
            ("empty name", dict(body={"name": "", "scopes": ["admin:read"]}), 400, "validation_error"),
            ("sql metacharacters as scope", dict(body={"name": "x", "scopes": ["admin:read' OR '1'='1"]}),
             400, "validation_error"),
            ("wrong content type", dict(body=b'{"name":"x","scopes":["admin:read"]}',
                                        headers={"Content-Type": "text/plain"}), 415, "unsupported_media_type"),
            ("oversized body", dict(body=b'{"name":"' + b"x" * (2 * 1024 * 1024) + b'"}'), 413, "payload_too_large"),
            ("key in query", dict(path_suffix="?api_key=" + self.root), 400, "invalid_request"),
        ]
        for name, kw, status, code in cases:
            with self.subTest(case=name):
                headers = {"Authorization": "Bearer " + self.root}
                headers.update(kw.get("headers", {}))
                result = self.call("POST", self.base() + kw.get("path_suffix", ""),
                                   body=kw.get("body", {}), headers=headers)
                self.assert_error(result, status, code)
        self.assertEqual(self.count_keys(), before)

    def test_validation_errors_name_the_field(self):
        for body, field in [({"name": "", "scopes": ["admin:read"]}, "name"),
                            ({"name": "x", "scopes": []}, "scopes"),
                            ({"name": "x", "scopes": ["admin:read"], "digest": "00"}, "digest"),
                            ({"name": "x", "scopes": ["admin:read"], "allowedCidrs": ["nope"]},
                             "allowedCidrs")]:
            with self.subTest(field=field):
                result = self.call("POST", self.base(), self.root, body)
                self.assert_error(result, 400, "validation_error")
                self.assertEqual(result[2]["details"], {"field": field}, result[2])

    def test_paging_and_unknown_routes(self):
        for query in ("?limit=100000", "?limit=0", "?page=-1", "?sortBy=digest", "?sortDir=up", "?bogus=1",
                      "?limit=abc"):
            with self.subTest(query=query):
                self.assert_error(self.call("GET", self.base() + query, self.root), 400, "validation_error")
        self.assertEqual(self.call("GET", self.base() + "?limit=1&page=1&sortBy=name&sortDir=ASC",
                                   self.root)[0], 200)
        self.assert_error(self.call("GET", "/t/%s/api/v1/admin/nothing" % self.tenant, self.root),
                          404, "resource_not_found")
        self.assert_error(self.call("GET", "/nope"), 404, "resource_not_found")
        status, headers, _ = self.call("PUT", self.base(), self.root, {})
        self.assertEqual(status, 405)
        self.assertIn("GET", headers.get("allow", ""))
        self.assertEqual(self.call("GET", self.base() + "/..%2f..%2fetc", self.root)[0] in (400, 404), True)

    def test_malformed_http_gets_400_and_the_gateway_survives(self):
        for name, data in [
            ("cr in header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\rb\r\n\r\n"),
            ("nul in header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n"),
            ("bad request line", b"GARBAGE\r\n\r\n"),
            ("huge header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n"),
        ]:
            with self.subTest(case=name):
                reply = self.gw.raw(data)
                status_line = reply.split(b"\r\n", 1)[0]
                self.assertTrue(status_line.startswith(b"HTTP/1.1 4"), (name, status_line))
        self.assertEqual(self.call("GET", "/healthz")[0], 200)

    def test_health_and_openapi(self):
        status, _, doc = self.call("GET", "/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(doc["upstream"], "serving")
        status, _, doc = self.call("GET", "/t/%s/api/v1/openapi.json" % self.tenant)
        self.assertEqual(status, 200)
        self.assertEqual(doc["openapi"], "3.0.3")
        paths = doc["paths"]
        base = "/t/{tenant_slug}/api/v1/admin/api-keys"
        expected = {(base, "get"), (base, "post"), (base + "/{id}", "get"),
                    (base + "/{id}/rotate", "post"), (base + "/{id}/revoke", "post"),
                    (base + "/{id}", "delete")}
        got = {(p, m) for p, ops in paths.items() for m in ops}
        self.assertLessEqual(expected, got)  # other resources add their own
        # Every operation is a tenant's but the secret-scanning partners'
        # intake, where each reported key's id names its tenant
        # (docs/webhooks.md, "Leaked-key intake").
        untenanted = {"/api/v1/secret-scanning/reports"}
        self.assertLessEqual(untenanted, set(paths))
        for path in paths:
            if path not in untenanted:
                self.assertTrue(path.startswith("/t/{tenant_slug}/api/v1/"),
                                path)
        self.assertEqual(self.call("GET", "/openapi.json")[2], doc)


if __name__ == "__main__":
    unittest.main()
