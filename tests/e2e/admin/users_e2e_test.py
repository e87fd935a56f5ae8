"""Users and roles end to end: real lumokeys-server, real lumokeys-gateway,
real MariaDB (docs/admin-api.md "Users and roles")."""
import json
import unittest
import urllib.parse
from datetime import datetime

import harness

USER_FIELDS = {"id", "email", "name", "blocked", "roles", "createdAt",
               "updatedAt"}
ROLE_FIELDS = {"id", "slug", "name", "description", "permissions"}
META_FIELDS = {"total", "page", "limit", "totalPages", "hasNextPage",
               "hasPreviousPage"}


def ts(text):
    """An RFC 3339 timestamp of a reply, comparable."""
    return datetime.fromisoformat(text)


class UsersE2ETest(harness.LumoServerTestCase):
    with_gateway = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant = "acme-users"
        cls.root = cls.server.create_tenant(cls.tenant)
        cls.other_tenant = "globex-users"
        cls.other_root = cls.server.create_tenant(cls.other_tenant)
        cls.users_key = cls.new_key(["admin:users"])
        cls.roles_key = cls.new_key(["admin:roles"])
        cls.reader = cls.new_key(["admin:read"])
        cls.clients_key = cls.new_key(["admin:clients"])

    @classmethod
    def new_key(cls, scopes):
        status, _, raw = cls.gw.request(
            "POST", "/t/%s/api/v1/admin/api-keys" % cls.tenant,
            {"name": " ".join(scopes), "scopes": scopes},
            {"Authorization": "Bearer " + cls.root})
        if status != 201:
            raise harness.HarnessError(raw.decode())
        return json.loads(raw)["data"]["key"]

    # ----- helpers -----------------------------------------------------

    def path(self, rest, tenant=None):
        return "/t/%s/api/v1/admin/%s" % (tenant or self.tenant, rest)

    def call(self, method, rest, key=None, body=None, tenant=None):
        headers = {"X-API-Key": key} if key else {}
        status, resp_headers, raw = self.gw.request(
            method, self.path(rest, tenant), body, headers)
        self.assertTrue(resp_headers.get("x-request-id"))
        return status, (json.loads(raw) if raw else None), raw

    def ok(self, method, rest, key, body=None, expect=200):
        status, doc, _ = self.call(method, rest, key, body)
        self.assertEqual(status, expect, (method, rest, doc))
        return doc

    def assert_error(self, result, status, code, mentions=None):
        got, doc, _ = result
        self.assertEqual(got, status, doc)
        self.assertEqual(doc["error"], True)
        self.assertEqual(doc["status"], status)
        self.assertEqual(doc["code"], code, doc)
        self.assertIsInstance(doc["message"], str)
        self.assertIsInstance(doc["details"], dict)
        if code == "validation_error" and doc["details"]:
            # The field named in details is the one the message starts with.
            self.assertTrue(doc["message"].startswith(doc["details"]["field"])
                            or '"%s"' % doc["details"]["field"] in doc["message"], doc)
        if mentions:
            self.assertIn(mentions, doc["message"])

    def create_role(self, slug, **fields):
        body = {"slug": slug, "name": fields.pop("name", slug.title())}
        body.update(fields)
        return self.ok("POST", "roles", self.roles_key, body, 201)["data"]

    def create_user(self, email, **fields):
        body = {"email": email}
        body.update(fields)
        return self.ok("POST", "users", self.users_key, body, 201)["data"]

    # ----- users -------------------------------------------------------

    def test_user_lifecycle_by_id_and_by_email(self):
        self.create_role("crud-viewer")
        doc = self.ok("POST", "users", self.users_key,
                      {"email": "Ada.Lovelace@Example.com", "name": "Ada",
                       "roles": ["crud-viewer"]}, 201)
        self.assertIn("message", doc)
        user = doc["data"]
        self.assertEqual(set(user), USER_FIELDS)
        self.assertRegex(user["id"], r"^usr_[0-9A-Za-z]{16}$")
        self.assertEqual(user["email"], "Ada.Lovelace@Example.com")
        self.assertEqual(user["roles"], ["crud-viewer"])
        self.assertFalse(user["blocked"])
        self.assertEqual(user["createdAt"], user["updatedAt"])

        for ref in (user["id"], "ada.lovelace@example.com",
                    urllib.parse.quote("ADA.LOVELACE@EXAMPLE.COM", safe="")):
            got = self.ok("GET", "users/" + ref, self.reader)["data"]
            self.assertEqual(got, user)

        # PATCH changes only what the body names.
        patched = self.ok("PATCH", "users/" + user["id"], self.users_key,
                          {"name": "Augusta Ada"})["data"]
        self.assertEqual(patched["name"], "Augusta Ada")
        self.assertEqual(patched["email"], user["email"])
        self.assertEqual(patched["roles"], ["crud-viewer"])
        self.assertGreater(ts(patched["updatedAt"]), ts(user["updatedAt"]))
        patched = self.ok("PATCH", "users/ada.lovelace@example.com",
                          self.users_key, {"blocked": True})["data"]
        self.assertTrue(patched["blocked"])
        self.assertEqual(patched["name"], "Augusta Ada")
        # null counts as absent; an empty patch changes nothing.
        same = self.ok("PATCH", "users/" + user["id"], self.users_key,
                       {"name": None})["data"]
        self.assertEqual(same, patched)
        same = self.ok("PATCH", "users/" + user["id"], self.users_key,
                       {})["data"]
        self.assertEqual(same, patched)

        # PUT replaces everything: absent fields take their defaults.
        replaced = self.ok("PUT", "users/" + user["id"], self.users_key,
                           {"email": "ada@example.com"})["data"]
        self.assertEqual(replaced["email"], "ada@example.com")
        self.assertEqual(replaced["name"], "")
        self.assertFalse(replaced["blocked"])
        self.assertEqual(replaced["roles"], [])
        self.assertEqual(replaced["createdAt"], user["createdAt"])
        self.assert_error(self.call("PUT", "users/" + user["id"],
                                    self.users_key, {"name": "no email"}),
                          400, "validation_error", "email")

        status, doc, raw = self.call("DELETE", "users/ADA@example.com",
                                     self.users_key)
        self.assertEqual(status, 204)
        self.assertEqual(raw, b"")
        for ref in (user["id"], "ada@example.com"):
            self.assert_error(self.call("GET", "users/" + ref, self.reader),
                              404, "resource_not_found")
        self.assert_error(self.call("DELETE", "users/" + user["id"],
                                    self.users_key), 404, "resource_not_found")

    def test_block_and_unblock_are_idempotent(self):
        user = self.create_user("blocky@example.com")
        for _ in range(2):
            got = self.ok("POST", "users/%s/block" % user["id"],
                          self.users_key)["data"]
            self.assertTrue(got["blocked"])
        updated_at = got["updatedAt"]
        got = self.ok("POST", "users/blocky@example.com/block",
                      self.users_key)["data"]
        self.assertEqual(got["updatedAt"], updated_at)  # nothing written
        listed = self.ok("GET", "users?blocked=true&search=blocky",
                         self.reader)
        self.assertEqual([u["id"] for u in listed["data"]], [user["id"]])
        got = self.ok("POST", "users/%s/unblock" % user["id"],
                      self.users_key)["data"]
        self.assertFalse(got["blocked"])
        self.assert_error(self.call("POST", "users/usr_AAAAAAAAAAAAAAAA/block",
                                    self.users_key), 404, "resource_not_found")

    def test_set_roles_by_slug_or_id(self):
        a = self.create_role("assign-a")
        self.create_role("assign-b")
        user = self.create_user("roles@example.com")
        got = self.ok("PUT", "users/%s/roles" % user["id"], self.users_key,
                      {"roles": ["assign-b", a["id"], "assign-a"]})["data"]
        self.assertEqual(got["roles"], ["assign-a", "assign-b"])
        got = self.ok("PUT", "users/roles@example.com/roles", self.users_key,
                      {"roles": ["assign-b"]})["data"]
        self.assertEqual(got["roles"], ["assign-b"])
        # An unknown role is a validation error and changes nothing.
        self.assert_error(self.call("PUT", "users/%s/roles" % user["id"],
                                    self.users_key,
                                    {"roles": ["assign-a", "no-such-role"]}),
                          400, "validation_error", "no-such-role")
        self.assert_error(self.call("PUT", "users/%s/roles" % user["id"],
                                    self.users_key, {"roles": ["Not A Slug"]}),
                          400, "validation_error", "roles")
        self.assertEqual(self.ok("GET", "users/" + user["id"],
                                 self.reader)["data"]["roles"], ["assign-b"])
        # Another tenant's role is unknown here.
        status, doc, _ = self.call("POST", "roles", self.other_root,
                                   {"slug": "theirs", "name": "Theirs"},
                                   tenant=self.other_tenant)
        self.assertEqual(status, 201, doc)
        self.assert_error(self.call("PUT", "users/%s/roles" % user["id"],
                                    self.users_key,
                                    {"roles": [doc["data"]["id"]]}),
                          400, "validation_error")
        got = self.ok("PUT", "users/%s/roles" % user["id"], self.users_key,
                      {"roles": []})["data"]
        self.assertEqual(got["roles"], [])

    def test_list_users_pages_searches_filters_and_sorts(self):
        self.create_role("list-admin")
        for email, name, roles, blocked in (
                ("list-c@example.com", "Carol", ["list-admin"], False),
                ("list-a@example.com", "alice", [], True),
                ("list-b@example.org", "Bob", ["list-admin"], False)):
            self.create_user(email, name=name, roles=roles, blocked=blocked)
        doc = self.ok("GET", "users?search=list-&limit=2", self.reader)
        # A page with a next one carries its token (docs/admin-api.md).
        self.assertEqual(set(doc["meta"]), META_FIELDS | {"nextPageToken"})
        self.assertEqual(doc["meta"]["total"], 3)
        self.assertEqual(doc["meta"]["totalPages"], 2)
        self.assertTrue(doc["meta"]["hasNextPage"])
        self.assertEqual([u["email"] for u in doc["data"]],
                         ["list-b@example.org", "list-a@example.com"])
        doc = self.ok("GET", "users?search=list-&limit=2&page=2", self.reader)
        self.assertEqual([u["email"] for u in doc["data"]],
                         ["list-c@example.com"])
        self.assertTrue(doc["meta"]["hasPreviousPage"])
        doc = self.ok("GET", "users?search=LIST-&sortBy=email&sortDir=asc",
                      self.reader)
        self.assertEqual([u["email"] for u in doc["data"]],
                         ["list-a@example.com", "list-b@example.org",
                          "list-c@example.com"])
        doc = self.ok("GET", "users?search=list-&sortBy=name&sortDir=ASC",
                      self.users_key)
        self.assertEqual([u["name"] for u in doc["data"]],
                         ["alice", "Bob", "Carol"])
        doc = self.ok("GET", "users?role=list-admin&blocked=false"
                      "&sortBy=email&sortDir=ASC", self.reader)
        self.assertEqual([u["email"] for u in doc["data"]],
                         ["list-b@example.org", "list-c@example.com"])
        doc = self.ok("GET", "users?search=example.org", self.reader)
        self.assertEqual([u["email"] for u in doc["data"]],
                         ["list-b@example.org"])
        doc = self.ok("GET", "users?role=list-nobody", self.reader)
        self.assertEqual(doc["meta"]["total"], 0)
        for query, mentions in (("sortBy=password", "sortBy"),
                                ("sortDir=UP", "sortDir"),
                                ("limit=0", "limit"), ("limit=101", "limit"),
                                ("page=0", "page"),
                                ("role=Bad%20Role", "role"),
                                ("blocked=maybe", "blocked")):
            self.assert_error(self.call("GET", "users?" + query, self.reader),
                              400, "validation_error", mentions)

    def test_validation_errors_and_conflicts(self):
        for body, field in (({"email": "not-an-email"}, "email"),
                            ({}, "email"),
                            ({"email": "x@" + "a" * 250 + ".com"}, "email"),
                            ({"email": "ok@example.com", "name": "x" * 201},
                             "name"),
                            ({"email": "ok@example.com", "roles": ["x"] * 51},
                             "roles")):
            self.assert_error(self.call("POST", "users", self.users_key, body),
                              400, "validation_error", field)
        self.assert_error(self.call("POST", "users", self.users_key,
                                    {"email": "a@example.com", "admin": True}),
                          400, "validation_error")
        self.create_user("taken@example.com")
        self.assert_error(self.call("POST", "users", self.users_key,
                                    {"email": "TAKEN@example.com"}),
                          409, "duplicate_resource", "email")
        other = self.create_user("other-taken@example.com")
        self.assert_error(self.call("PATCH", "users/" + other["id"],
                                    self.users_key,
                                    {"email": "Taken@Example.com"}),
                          409, "duplicate_resource", "email")
        self.assert_error(self.call("PATCH", "users/" + other["id"],
                                    self.users_key, {"email": "bad"}),
                          400, "validation_error", "email")

        for body, field in (({"slug": "Bad_Slug", "name": "x"}, "slug"),
                            ({"slug": "-x", "name": "x"}, "slug"),
                            ({"slug": "ok-slug"}, "name"),
                            ({"slug": "ok-slug", "name": "x",
                              "permissions": ["has space"]}, "permissions"),
                            ({"slug": "ok-slug", "name": "x",
                              "description": "d" * 501}, "description")):
            self.assert_error(self.call("POST", "roles", self.roles_key, body),
                              400, "validation_error", field)
        self.create_role("dup-role")
        self.assert_error(self.call("POST", "roles", self.roles_key,
                                    {"slug": "dup-role", "name": "Again"}),
                          409, "duplicate_resource", "slug")

    # ----- roles -------------------------------------------------------

    def test_role_lifecycle_by_id_and_by_slug(self):
        doc = self.ok("POST", "roles", self.roles_key,
                      {"slug": "support", "name": "Support",
                       "description": "Front line",
                       "permissions": ["tickets:read", "tickets:write",
                                       "tickets:read"]}, 201)
        self.assertIn("message", doc)
        role = doc["data"]
        self.assertEqual(set(role), ROLE_FIELDS)
        self.assertRegex(role["id"], r"^rol_[0-9A-Za-z]{16}$")
        self.assertEqual(role["permissions"], ["tickets:read",
                                               "tickets:write"])
        for ref in (role["id"], "support"):
            self.assertEqual(self.ok("GET", "roles/" + ref,
                                     self.reader)["data"], role)
        doc = self.ok("GET", "roles?search=SUPPORT", self.reader)
        self.assertEqual([r["id"] for r in doc["data"]], [role["id"]])
        self.assertEqual(set(doc["meta"]), META_FIELDS)

        # PUT is a full replace, the slug included.
        updated = self.ok("PUT", "roles/support", self.roles_key,
                          {"slug": "support-l1", "name": "Support L1"})["data"]
        self.assertEqual(updated["id"], role["id"])
        self.assertEqual(updated["slug"], "support-l1")
        self.assertEqual(updated["description"], "")
        self.assertEqual(updated["permissions"], [])
        self.assert_error(self.call("GET", "roles/support", self.reader),
                          404, "resource_not_found")

        # Holders; a held role cannot be deleted.
        user = self.create_user("holder@example.com", roles=["support-l1"])
        doc = self.ok("GET", "roles/support-l1/users", self.reader)
        self.assertEqual([u["id"] for u in doc["data"]], [user["id"]])
        self.assertEqual(doc["meta"]["total"], 1)
        self.assertEqual(self.ok("GET", "users/" + user["id"],
                                 self.reader)["data"]["roles"], ["support-l1"])
        self.assert_error(self.call("DELETE", "roles/" + role["id"],
                                    self.roles_key),
                          400, "invalid_request", "assigned to 1 user")
        self.ok("PUT", "users/%s/roles" % user["id"], self.users_key,
                {"roles": []})
        status, _, raw = self.call("DELETE", "roles/support-l1",
                                   self.roles_key)
        self.assertEqual((status, raw), (204, b""))
        self.assert_error(self.call("GET", "roles/" + role["id"],
                                    self.reader), 404, "resource_not_found")
        self.assert_error(self.call("GET", "roles/%s/users" % role["id"],
                                    self.reader), 404, "resource_not_found")

    # ----- authorization -----------------------------------------------

    def test_scopes(self):
        role = self.create_role("scoped-role")
        user = self.create_user("scoped@example.com")
        uid, rid = user["id"], role["id"]
        reads = [("GET", "users"), ("GET", "users/" + uid),
                 ("GET", "roles"), ("GET", "roles/" + rid),
                 ("GET", "roles/%s/users" % rid)]
        user_writes = [("POST", "users", {"email": "nope@example.com"}),
                       ("PUT", "users/" + uid, {"email": "scoped@example.com"}),
                       ("PATCH", "users/" + uid, {"name": "x"}),
                       ("POST", "users/%s/block" % uid, None),
                       ("POST", "users/%s/unblock" % uid, None),
                       ("PUT", "users/%s/roles" % uid, {"roles": []}),
                       ("DELETE", "users/usr_AAAAAAAAAAAAAAAA", None)]
        role_writes = [("POST", "roles", {"slug": "nope", "name": "Nope"}),
                       ("PUT", "roles/" + rid,
                        {"slug": "scoped-role", "name": "Scoped-Role"}),
                       ("DELETE", "roles/no-such-role", None)]
        # admin:read reads everything and writes nothing.
        for method, rest in reads:
            self.assertEqual(self.call(method, rest, self.reader)[0], 200,
                             rest)
        for method, rest, body in user_writes + role_writes:
            self.assert_error(self.call(method, rest, self.reader, body),
                              403, "insufficient_scope")
        # admin:users manages users (and reads a role's holders) but not
        # roles.
        for method, rest, body in user_writes:
            self.assertNotIn(self.call(method, rest, self.users_key, body)[0],
                             (401, 403), rest)
        for method, rest in (("GET", "roles"), ("GET", "roles/" + rid)):
            self.assert_error(self.call(method, rest, self.users_key),
                              403, "insufficient_scope")
        for method, rest, body in role_writes:
            self.assert_error(self.call(method, rest, self.users_key, body),
                              403, "insufficient_scope")
        # admin:roles manages roles but not users.
        for method, rest, body in role_writes:
            self.assertNotIn(self.call(method, rest, self.roles_key, body)[0],
                             (401, 403), rest)
        for method, rest in (("GET", "users"), ("GET", "users/" + uid)):
            self.assert_error(self.call(method, rest, self.roles_key),
                              403, "insufficient_scope")
        for method, rest, body in user_writes:
            self.assert_error(self.call(method, rest, self.roles_key, body),
                              403, "insufficient_scope")
        # Unrelated scope, no key, a bad key.
        self.assert_error(self.call("GET", "users", self.clients_key),
                          403, "insufficient_scope")
        self.assert_error(self.call("GET", "users"), 401, "invalid_token")
        self.assert_error(self.call("GET", "roles", "lmk_garbage"),
                          401, "invalid_token")

    def test_other_tenants_are_indistinguishable_from_missing(self):
        user = self.create_user("mine@example.com")
        role = self.create_role("mine-role")
        # Our key on another tenant's URL: the same 401 as for no tenant.
        for rest in ("users", "users/" + user["id"], "roles"):
            on_other = self.gw.request("GET", self.path(rest,
                                                        self.other_tenant),
                                       headers={"X-API-Key": self.root})
            on_none = self.gw.request("GET", self.path(rest, "no-such-tenant"),
                                      headers={"X-API-Key": self.root})
            self.assertEqual(on_other[0], 401)
            self.assertEqual((on_other[0], on_other[2]),
                             (on_none[0], on_none[2]))
        # Our ids, emails and slugs through the other tenant: the same 404 as
        # for ones that never existed.
        pairs = (("users/" + user["id"], "users/usr_AAAAAAAAAAAAAAAA"),
                 ("users/mine@example.com", "users/never@example.com"),
                 ("roles/" + role["id"], "roles/rol_AAAAAAAAAAAAAAAA"),
                 ("roles/mine-role", "roles/never-role"))
        for mine, missing in pairs:
            for method, body in (("GET", None), ("DELETE", None)):
                a = self.call(method, mine, self.other_root,
                              tenant=self.other_tenant)
                b = self.call(method, missing, self.other_root,
                              tenant=self.other_tenant)
                self.assertEqual(a[0], 404, mine)
                self.assertEqual((a[0], a[2]), (b[0], b[2]))
        a = self.call("PATCH", "users/" + user["id"], self.other_root,
                      {"name": "pwned"}, tenant=self.other_tenant)
        self.assertEqual(a[0], 404)
        # Nothing leaked into or out of the other tenant's lists.
        doc = self.ok("GET", "users?search=mine", self.reader)
        self.assertEqual(doc["data"][0]["name"], "")
        status, doc, _ = self.call("GET", "users?search=mine", self.other_root,
                                   tenant=self.other_tenant)
        self.assertEqual((status, doc["meta"]["total"]), (200, 0))

    def test_writes_are_audited(self):
        user = self.create_user("audited@example.com")
        self.ok("POST", "users/%s/block" % user["id"], self.users_key)
        self.ok("POST", "users/%s/block" % user["id"], self.users_key)
        self.call("DELETE", "users/" + user["id"], self.users_key)
        result = self.server.sql(
            "SELECT action, category, actor_type, target_id FROM "
            "audit_events WHERE target_id = '%s' ORDER BY id" % user["id"])
        rows = [line.split("\t") for line in
                result.stdout.strip().splitlines()[1:]]
        self.assertEqual([r[0] for r in rows],
                         ["user.created", "user.blocked", "user.deleted"])
        self.assertEqual({r[1] for r in rows}, {"user_management"})
        self.assertEqual({r[2] for r in rows}, {"api_key"})


if __name__ == "__main__":
    unittest.main()
