"""OAuth clients, tenant settings and RFC 7591 dynamic client registration
end to end: real lumokeys-server, real lumokeys-gateway, real MariaDB."""
import json
import os
import time
import unittest

import harness

REDIRECT = "https://app.example.com/callback"


class ClientsE2ETest(harness.LumoServerTestCase):
    with_gateway = True
    counter = 0

    # ----- helpers -----------------------------------------------------

    def new_tenant(self):
        """A fresh tenant (so tests do not share settings); returns
        (slug, root key with admin:write)."""
        type(self).counter += 1
        slug = "clients-%d-%d" % (os.getpid() % 10000, type(self).counter)
        return slug, self.server.create_tenant(slug)

    def call(self, method, path, key=None, body=None, headers=None):
        hdrs = dict(headers or {})
        if key is not None:
            hdrs["Authorization"] = "Bearer " + key
        status, resp_headers, raw = self.gw.request(method, path, body, hdrs)
        self.assertTrue(resp_headers.get("x-request-id"), (method, path))
        return status, resp_headers, (json.loads(raw) if raw else None)

    def new_key(self, slug, root, scopes):
        status, _, doc = self.call(
            "POST", "/t/%s/api/v1/admin/api-keys" % slug, root,
            {"name": "k " + " ".join(scopes), "scopes": scopes})
        self.assertEqual(status, 201, doc)
        return doc["data"]["key"]

    def clients(self, slug):
        return "/t/%s/api/v1/admin/clients" % slug

    def settings(self, slug):
        return "/t/%s/api/v1/admin/settings" % slug

    def register_path(self, slug):
        return "/t/%s/api/v1/connect/register" % slug

    def assert_error(self, result, status, code):
        got, _, doc = result
        self.assertEqual(got, status, doc)
        self.assertEqual(doc["error"], True, doc)
        self.assertEqual(doc["code"], code, doc)

    def assert_rfc_error(self, result, status, error):
        got, _, doc = result
        self.assertEqual(got, status, doc)
        self.assertEqual(set(doc), {"error", "error_description"}, doc)
        self.assertEqual(doc["error"], error, doc)
        self.assertIsInstance(doc["error_description"], str)

    def enable_registration(self, slug, root, require_api_key=True):
        status, _, doc = self.call(
            "PATCH", self.settings(slug), root,
            {"dynamicRegistration": {"enabled": True,
                                     "requireApiKey": require_api_key}})
        self.assertEqual(status, 200, doc)

    # ----- admin API: OAuth clients -------------------------------------

    def test_client_lifecycle_through_every_endpoint(self):
        slug, root = self.new_tenant()
        key = self.new_key(slug, root, ["admin:clients"])
        base = self.clients(slug)

        status, _, doc = self.call("POST", base, key, {
            "name": "Web app", "redirectUris": [REDIRECT],
            "scopes": ["openid", "profile"],
            "grantTypes": ["authorization_code", "refresh_token"]})
        self.assertEqual(status, 201, doc)
        self.assertIn("message", doc)
        client = doc["data"]
        secret = client["clientSecret"]
        self.assertTrue(secret.startswith("cls_") and len(secret) == 47)
        self.assertTrue(client["clientId"].startswith("cli_"))
        self.assertEqual(len(client["clientId"]), 28)
        for field in ("id", "name", "clientId", "redirectUris", "scopes",
                      "grantTypes", "isPublic", "pkceRequired", "isActive",
                      "createdAt", "updatedAt"):
            self.assertIn(field, client)
        self.assertEqual(client["redirectUris"], [REDIRECT])
        self.assertFalse(client["isPublic"])
        self.assertTrue(client["pkceRequired"])
        self.assertTrue(client["isActive"])
        cid = client["id"]

        # The secret is never shown again.
        for path in (base + "/" + cid, base + "/" + client["clientId"],
                     base + "?search=Web"):
            status, _, doc = self.call("GET", path, key)
            self.assertEqual(status, 200, doc)
            self.assertNotIn(secret, json.dumps(doc))
        status, _, doc = self.call("GET", base + "/" + cid, key)
        self.assertIsNone(doc["data"].get("clientSecret"))
        self.assertEqual(doc["data"]["clientId"], client["clientId"])

        status, _, doc = self.call("GET", base + "?search=Web&limit=5", key)
        self.assertEqual(status, 200)
        self.assertEqual(set(doc["meta"]), {"total", "page", "limit",
                                            "totalPages", "hasNextPage",
                                            "hasPreviousPage"})
        self.assertEqual([c["id"] for c in doc["data"]], [cid])

        # PUT replaces: absent fields take their defaults.
        status, _, doc = self.call("PUT", base + "/" + cid, key, {
            "name": "Renamed", "redirectUris": [REDIRECT,
                                                 "http://localhost:8080/cb"]})
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["data"]["name"], "Renamed")
        self.assertEqual(doc["data"]["scopes"], [])
        self.assertEqual(doc["data"]["grantTypes"], ["authorization_code"])
        self.assertEqual(doc["data"]["clientId"], client["clientId"])

        # PATCH changes only what it names.
        status, _, doc = self.call("PATCH", base + "/" + cid, key,
                                   {"scopes": ["openid"]})
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["data"]["name"], "Renamed")
        self.assertEqual(doc["data"]["scopes"], ["openid"])
        self.assertEqual(len(doc["data"]["redirectUris"]), 2)

        status, _, doc = self.call("POST", base + "/" + cid + "/rotate-secret",
                                   key, {})
        self.assertEqual(status, 200, doc)
        new_secret = doc["data"]["clientSecret"]
        self.assertNotEqual(new_secret, secret)
        self.assertTrue(new_secret.startswith("cls_"))
        status, _, doc = self.call("GET", base + "/" + cid, key)
        self.assertNotIn(new_secret, json.dumps(doc))

        status, _, doc = self.call("POST", base + "/" + cid + "/disable", key)
        self.assertEqual(status, 200, doc)
        self.assertFalse(doc["data"]["isActive"])
        status, _, doc = self.call("POST", base + "/" + cid + "/enable", key)
        self.assertEqual(status, 200, doc)
        self.assertTrue(doc["data"]["isActive"])

        status, _, doc = self.call("DELETE", base + "/" + cid, key)
        self.assertEqual(status, 204)
        self.assertIsNone(doc)
        self.assert_error(self.call("GET", base + "/" + cid, key), 404,
                          "resource_not_found")
        self.assert_error(self.call("DELETE", base + "/" + cid, key), 404,
                          "resource_not_found")

        # Neither secret is anywhere in the database.
        dump = self.server.mysqldump()
        self.assertIn(client["clientId"], dump)
        self.assertNotIn(secret, dump)
        self.assertNotIn(new_secret, dump)
        # One audit event per write.
        out = self.server.sql(
            "SELECT action, COUNT(*) FROM audit_events WHERE target_id = '%s'"
            " GROUP BY action ORDER BY action" % client["clientId"]).stdout
        self.assertEqual(out.split("\n")[1:-1], [
            "client.created\t1", "client.deleted\t1", "client.disabled\t1",
            "client.enabled\t1", "client.secret_rotated\t1",
            "client.updated\t2"])

    def test_public_client_has_no_secret(self):
        slug, root = self.new_tenant()
        status, _, doc = self.call("POST", self.clients(slug), root, {
            "name": "SPA", "redirectUris": ["http://127.0.0.1:5173/cb"],
            "isPublic": True})
        self.assertEqual(status, 201, doc)
        self.assertTrue(doc["data"]["isPublic"])
        self.assertIsNone(doc["data"].get("clientSecret"))
        self.assertEqual(doc["data"]["tokenEndpointAuthMethod"], "none")
        self.assert_error(self.call(
            "POST", self.clients(slug) + "/" + doc["data"]["id"] +
            "/rotate-secret", root, {}), 400, "invalid_request")

    def test_client_validation_errors(self):
        slug, root = self.new_tenant()
        base = self.clients(slug)
        before = self.call("GET", base, root)[2]["meta"]["total"]
        for uris in (["http://evil.example/cb"], [REDIRECT + "#frag"],
                     ["/relative"], ["https://user@app.example.com/cb"],
                     ["https://app.example.com/" + "a" * 2048],
                     ["https://app.example.com/%d" % i for i in range(21)]):
            with self.subTest(uris=uris[0][:40]):
                self.assert_error(self.call("POST", base, root, {
                    "name": "x", "redirectUris": uris}), 400,
                    "validation_error")
        self.assert_error(self.call("POST", base, root, {
            "name": "", "redirectUris": [REDIRECT]}), 400, "validation_error")
        self.assert_error(self.call("POST", base, root, {
            "name": "x", "redirectUris": [REDIRECT],
            "grantTypes": ["implicit"]}), 400, "validation_error")
        self.assert_error(self.call("POST", base, root, {
            "name": "x", "redirectUris": [REDIRECT], "isPublic": True,
            "pkceRequired": False}), 400, "validation_error")
        self.assert_error(self.call("POST", base, root, {
            "name": "x", "redirectUris": [REDIRECT], "clientSecret": "mine"}),
            400, "validation_error")
        self.assertEqual(self.call("GET", base, root)[2]["meta"]["total"],
                         before)
        self.assert_error(self.call("GET", base + "/AAAAAAAAAAAAAAAA", root),
                          404, "resource_not_found")
        self.assert_error(self.call("GET", base + "?limit=101", root), 400,
                          "validation_error")

    def test_scopes_and_tenant_isolation(self):
        slug, root = self.new_tenant()
        other_slug, other_root = self.new_tenant()
        base = self.clients(slug)
        reader = self.new_key(slug, root, ["admin:read"])
        users = self.new_key(slug, root, ["admin:users"])
        clients = self.new_key(slug, root, ["admin:clients"])
        body = {"name": "x", "redirectUris": [REDIRECT]}

        status, _, doc = self.call("POST", base, clients, body)
        self.assertEqual(status, 201, doc)
        cid = doc["data"]["id"]
        self.assertEqual(self.call("GET", base, reader)[0], 200)
        self.assertEqual(self.call("GET", base + "/" + cid, reader)[0], 200)
        self.assert_error(self.call("POST", base, reader, body), 403,
                          "insufficient_scope")
        self.assert_error(self.call("DELETE", base + "/" + cid, reader), 403,
                          "insufficient_scope")
        self.assert_error(self.call("GET", base, users), 403,
                          "insufficient_scope")
        self.assert_error(self.call("POST", base + "/" + cid + "/disable",
                                    users), 403, "insufficient_scope")
        # Settings: read with admin:read, write only with admin:write.
        self.assertEqual(self.call("GET", self.settings(slug), reader)[0], 200)
        self.assert_error(self.call("PATCH", self.settings(slug), clients, {
            "dynamicRegistration": {"enabled": True}}), 403,
            "insufficient_scope")

        # Another tenant's key is a 401 here; our client id is a 404 there.
        self.assert_error(self.call("GET", base, other_root), 401,
                          "invalid_token")
        self.assert_error(self.call(
            "GET", self.clients(other_slug) + "/" + cid, other_root), 404,
            "resource_not_found")
        self.assertEqual(self.call("GET", self.clients(other_slug),
                                   other_root)[2]["data"], [])

    # ----- settings -----------------------------------------------------

    def test_settings_defaults_and_patch(self):
        slug, root = self.new_tenant()
        status, _, doc = self.call("GET", self.settings(slug), root)
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["data"]["dynamicRegistration"],
                         {"enabled": False, "requireApiKey": True})
        self.assertIsNone(doc["data"]["updatedAt"])

        status, _, doc = self.call("PATCH", self.settings(slug), root, {
            "dynamicRegistration": {"enabled": True}})
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["data"]["dynamicRegistration"],
                         {"enabled": True, "requireApiKey": True})
        self.assertIsNotNone(doc["data"]["updatedAt"])
        status, _, doc = self.call("PATCH", self.settings(slug), root, {
            "dynamicRegistration": {"requireApiKey": False}})
        self.assertEqual(doc["data"]["dynamicRegistration"],
                         {"enabled": True, "requireApiKey": False})
        status, _, doc = self.call("GET", self.settings(slug), root)
        self.assertEqual(doc["data"]["dynamicRegistration"],
                         {"enabled": True, "requireApiKey": False})
        self.assert_error(self.call("PATCH", self.settings(slug), root, {
            "dynamicRegistration": {"enabeld": False}}), 400,
            "validation_error")
        self.assert_error(self.call("PATCH", self.settings(slug), root, {
            "dynamicRegistration": {"enabled": 0}}), 400, "validation_error")
        out = self.server.sql(
            "SELECT COUNT(*) FROM audit_events WHERE action ="
            " 'settings.updated' AND category = 'configuration'"
            " AND target_id = '%s'" % slug).stdout
        self.assertEqual(out.split("\n")[1], "2")

    # ----- RFC 7591 registration ----------------------------------------

    def register(self, slug, body, key=None):
        return self.call("POST", self.register_path(slug), key, body)

    def test_registration_disabled_by_default(self):
        slug, root = self.new_tenant()
        body = {"redirect_uris": [REDIRECT]}
        self.assert_rfc_error(self.register(slug, body, root), 403,
                              "registration_not_allowed")
        self.assert_rfc_error(self.register(slug, body), 403,
                              "registration_not_allowed")
        # An unknown tenant answers the same to anonymous callers.
        self.assert_rfc_error(self.register("no-such-tenant-x", body), 403,
                              "registration_not_allowed")

    def test_registration_with_required_api_key(self):
        slug, root = self.new_tenant()
        self.enable_registration(slug, root, require_api_key=True)
        users = self.new_key(slug, root, ["admin:users"])
        clients = self.new_key(slug, root, ["admin:clients"])
        body = {"redirect_uris": [REDIRECT]}

        self.assert_rfc_error(self.register(slug, body), 401, "invalid_token")
        self.assert_rfc_error(self.register(slug, body, users), 403,
                              "insufficient_scope")
        before = time.time()
        status, _, doc = self.register(slug, body, clients)
        self.assertEqual(status, 201, doc)
        # RFC 7591 §3.2.1: credentials, then the metadata with defaults.
        self.assertTrue(doc["client_id"].startswith("cli_"))
        self.assertTrue(doc["client_secret"].startswith("cls_"))
        self.assertIsInstance(doc["client_id_issued_at"], int)
        self.assertLessEqual(abs(doc["client_id_issued_at"] - before), 60)
        self.assertIs(type(doc["client_secret_expires_at"]), int)
        self.assertEqual(doc["client_secret_expires_at"], 0)
        self.assertEqual(doc["redirect_uris"], [REDIRECT])
        self.assertEqual(doc["grant_types"], ["authorization_code"])
        self.assertEqual(doc["response_types"], ["code"])
        self.assertEqual(doc["token_endpoint_auth_method"],
                         "client_secret_basic")
        self.assertEqual(doc["application_type"], "web")
        self.assertNotIn("client_name", doc)
        self.assertNotIn("scope", doc)
        self.assertNotIn("data", doc)
        # admin:write grants admin:clients.
        status, _, doc2 = self.register(slug, {
            "redirect_uris": [REDIRECT], "client_name": "Tool",
            "scope": "openid email", "client_uri": "https://tool.example",
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "client_secret_post",
            "application_type": "native",
            "post_logout_redirect_uris": ["https://tool.example/bye"],
            "contacts": ["ops@tool.example"]}, root)
        self.assertEqual(status, 201, doc2)
        self.assertEqual(doc2["client_name"], "Tool")
        self.assertEqual(doc2["scope"], "openid email")
        self.assertEqual(doc2["client_uri"], "https://tool.example")
        self.assertEqual(doc2["grant_types"],
                         ["authorization_code", "refresh_token"])
        self.assertEqual(doc2["token_endpoint_auth_method"],
                         "client_secret_post")
        self.assertEqual(doc2["application_type"], "native")
        self.assertEqual(doc2["post_logout_redirect_uris"],
                         ["https://tool.example/bye"])

        # Registered clients are ordinary clients of the tenant; the
        # secret is not shown again.
        status, _, listing = self.call("GET", self.clients(slug), root)
        by_client_id = {c["clientId"]: c for c in listing["data"]}
        self.assertIn(doc["client_id"], by_client_id)
        self.assertIn(doc2["client_id"], by_client_id)
        self.assertEqual(by_client_id[doc["client_id"]]["createdVia"],
                         "registration")
        self.assertEqual(by_client_id[doc2["client_id"]]["name"], "Tool")
        self.assertNotIn(doc["client_secret"], json.dumps(listing))
        self.assertNotIn(doc["client_secret"], self.server.mysqldump())
        out = self.server.sql(
            "SELECT actor_type, category FROM audit_events WHERE action ="
            " 'client.registered' AND target_id = '%s'"
            % doc["client_id"]).stdout
        self.assertEqual(out.split("\n")[1:-1], ["api_key\tclients"])

    def test_registration_public_client_has_no_secret(self):
        slug, root = self.new_tenant()
        self.enable_registration(slug, root)
        status, headers, doc = self.register(slug, {
            "redirect_uris": ["http://127.0.0.1:8765/callback"],
            "token_endpoint_auth_method": "none",
            "client_name": "CLI"}, root)
        self.assertEqual(status, 201, doc)
        self.assertNotIn("client_secret", doc)
        self.assertEqual(doc["client_secret_expires_at"], 0)
        self.assertEqual(doc["token_endpoint_auth_method"], "none")
        status, _, got = self.call("GET", self.clients(slug) + "/" +
                                   doc["client_id"], root)
        self.assertEqual(status, 200, got)
        self.assertTrue(got["data"]["isPublic"])
        self.assertTrue(got["data"]["pkceRequired"])

    def test_registration_metadata_errors(self):
        slug, root = self.new_tenant()
        self.enable_registration(slug, root)
        cases = [
            ({"redirect_uris": ["http://evil.example"]},
             "invalid_redirect_uri"),
            ({"redirect_uris": [REDIRECT + "#fragment"]},
             "invalid_redirect_uri"),
            ({"redirect_uris": ["/relative/callback"]},
             "invalid_redirect_uri"),
            ({"redirect_uris": []}, "invalid_redirect_uri"),
            ({"client_name": "no uris"}, "invalid_redirect_uri"),
            ({"redirect_uris": [REDIRECT], "grant_types": ["password"]},
             "invalid_client_metadata"),
            ({"redirect_uris": [REDIRECT], "grant_types": ["bogus"]},
             "invalid_client_metadata"),
            ({"redirect_uris": [REDIRECT], "response_types": ["token"]},
             "invalid_client_metadata"),
            ({"redirect_uris": [REDIRECT],
              "token_endpoint_auth_method": "private_key_jwt"},
             "invalid_client_metadata"),
            ({"redirect_uris": [REDIRECT], "application_type": "desktop"},
             "invalid_client_metadata"),
            ({"redirect_uris": [REDIRECT], "logo_uri": "ftp://x.example/l"},
             "invalid_client_metadata"),
            ({"redirect_uris": [REDIRECT], "token_endpoint_auth_method":
              "none", "grant_types": ["client_credentials"],
              "response_types": []}, "invalid_client_metadata"),
            (b"{not json", "invalid_client_metadata"),
        ]
        for body, error in cases:
            with self.subTest(body=str(body)[:60]):
                self.assert_rfc_error(self.register(slug, body, root), 400,
                                      error)
        status, _, listing = self.call("GET", self.clients(slug), root)
        self.assertEqual(listing["meta"]["total"], 0)

    def test_registration_native_redirect_forms(self):
        """RFC 8252: a native client registers private-use schemes in
        reverse domain name form and loopback http on any port; a web
        client cannot use a private-use scheme; the refusals change
        nothing."""
        slug, root = self.new_tenant()
        self.enable_registration(slug, root)
        uris = ["com.example.app:/oauth2redirect/example-provider",
                "com.example.app://callback",
                "http://127.0.0.1:51004/cb", "http://[::1]:61023/cb"]
        status, _, doc = self.register(slug, {
            "application_type": "native", "redirect_uris": uris,
            "token_endpoint_auth_method": "none",
            "post_logout_redirect_uris": ["com.example.app:/logged-out"],
            "client_name": "Mobile"}, root)
        self.assertEqual(status, 201, doc)
        self.assertEqual(doc["application_type"], "native")
        self.assertEqual(doc["redirect_uris"], uris)
        self.assertEqual(doc["post_logout_redirect_uris"],
                         ["com.example.app:/logged-out"])
        refused = [
            {"redirect_uris": ["com.example.app:/cb"]},  # web (default)
            {"application_type": "web",
             "redirect_uris": ["com.example.app:/cb"]},
            {"application_type": "native", "redirect_uris": ["myapp:/cb"]},
            {"application_type": "native",
             "redirect_uris": ["com.example.app:cb"]},
            {"application_type": "native",
             "redirect_uris": ["http://192.0.2.1:8080/cb"]},
            {"application_type": "native",
             "redirect_uris": ["com.example.app:/cb#x"]},
        ]
        for body in refused:
            with self.subTest(body=body):
                self.assert_rfc_error(self.register(slug, body, root), 400,
                                      "invalid_redirect_uri")
        status, _, listing = self.call("GET", self.clients(slug), root)
        self.assertEqual(listing["meta"]["total"], 1, listing)

    def test_admin_api_native_client_and_type_change(self):
        """The admin API applies the same rules; turning a native client
        with a private-use scheme into a web client is refused and leaves
        it unchanged."""
        slug, root = self.new_tenant()
        status, _, doc = self.call("POST", self.clients(slug), root, {
            "name": "Desktop", "applicationType": "native",
            "redirectUris": ["com.example.desktop:/cb"], "isPublic": True})
        self.assertEqual(status, 201, doc)
        client_id = doc["data"]["id"]
        self.assert_error(self.call(
            "PATCH", self.clients(slug) + "/" + client_id, root,
            {"applicationType": "web"}), 400, "validation_error")
        self.assert_error(self.call("POST", self.clients(slug), root, {
            "name": "Web", "redirectUris": ["com.example.web:/cb"]}),
            400, "validation_error")
        status, _, got = self.call("GET", self.clients(slug) + "/" +
                                   client_id, root)
        self.assertEqual(status, 200, got)
        self.assertEqual(got["data"]["applicationType"], "native")
        self.assertEqual(got["data"]["redirectUris"],
                         ["com.example.desktop:/cb"])

    def test_open_registration_anonymous_201_then_429(self):
        slug, root = self.new_tenant()
        self.enable_registration(slug, root, require_api_key=False)
        statuses = []
        for _ in range(12):
            status, headers, doc = self.register(
                slug, {"redirect_uris": [REDIRECT]})
            statuses.append(status)
            if status == 201:
                self.assertIn("client_secret", doc)
            else:
                self.assert_rfc_error((status, headers, doc), 429,
                                      "rate_limit_exceeded")
        # 10 per minute per source address (the bucket refills one every
        # 6 s, so a slow run may squeeze in one more).
        self.assertEqual(statuses[:10], [201] * 10)
        self.assertEqual(statuses[-1], 429)
        out = self.server.sql(
            "SELECT COUNT(*) FROM audit_events WHERE action ="
            " 'client.registered' AND actor_type = 'anonymous'"
            " AND ip_address = '127.0.0.1'").stdout
        self.assertEqual(int(out.split("\n")[1]), statuses.count(201))

    def test_open_registration_retry_after_header(self):
        # The per-IP limit of open registration answers 429 with the
        # server's Retry-After, in the RFC error style.
        slug, root = self.new_tenant()
        self.enable_registration(slug, root, require_api_key=False)
        for _ in range(12):
            status, headers, doc = self.register(
                slug, {"redirect_uris": [REDIRECT]})
            if status == 429:
                break
        self.assertEqual(status, 429, doc)
        self.assertGreaterEqual(int(headers["retry-after"]), 1)
        self.assertLessEqual(int(headers["retry-after"]), 60)


if __name__ == "__main__":
    unittest.main()
