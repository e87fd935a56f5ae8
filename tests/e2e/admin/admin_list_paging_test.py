"""Keyset paging of the users and OAuth clients lists end to end
(docs/admin-api.md, "Paging large lists"): pageToken / meta.nextPageToken
in each sort order, the total on request, and refused tokens."""

import json
import secrets
import urllib.parse

import harness


class AdminListPagingE2ETest(harness.LumoServerTestCase):
    with_gateway = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant = "alp-" + secrets.token_hex(3)
        cls.root = cls.server.create_tenant(cls.tenant)
        # Names with ties in letter case, so the id breaks them.
        for i in range(9):
            status, doc = cls.call("POST", "/users", {
                "email": "user%d@Example.com" % i, "name": "ab"[i % 2] * 3})
            assert status == 201, doc
            status, doc = cls.call("POST", "/clients", {
                "name": "App " + "xyXY"[i % 4],
                "redirectUris": ["https://app.example.com/cb"],
                "scopes": ["openid"], "grantTypes": ["authorization_code"]})
            assert status == 201, doc

    @classmethod
    def call(cls, method, path, body=None):
        status, _, raw = cls.gw.request(
            method, "/t/%s/api/v1/admin%s" % (cls.tenant, path), body,
            {"Authorization": "Bearer " + cls.root})
        return status, (json.loads(raw) if raw else None)

    def get(self, path, **params):
        return self.call("GET", path + "?" + urllib.parse.urlencode(params))

    def walk(self, path, **params):
        ids, token = [], None
        for _ in range(40):
            query = dict(params)
            if token:
                query["pageToken"] = token
            status, doc = self.get(path, **query)
            self.assertEqual(status, 200, doc)
            ids += [item["id"] for item in doc["data"]]
            if token:
                self.assertEqual(doc["meta"]["totalRelation"], "unknown")
            token = doc["meta"].get("nextPageToken")
            self.assertEqual(doc["meta"]["hasNextPage"], token is not None)
            if token is None:
                return ids
        self.fail("the walk does not end")

    def check_list(self, path, sorts, count):
        for sort_by in sorts:
            for sort_dir in ("ASC", "DESC"):
                with self.subTest(path=path, sortBy=sort_by, sortDir=sort_dir):
                    status, whole = self.get(path, limit=100, sortBy=sort_by,
                                             sortDir=sort_dir)
                    self.assertEqual(status, 200, whole)
                    expected = [item["id"] for item in whole["data"]]
                    self.assertEqual(len(expected), count)
                    self.assertEqual(whole["meta"]["total"], count)
                    self.assertEqual(
                        self.walk(path, limit=2, sortBy=sort_by,
                                  sortDir=sort_dir), expected)

    def test_users_walk_in_every_order(self):
        self.check_list("/users", ("createdAt", "updatedAt", "email", "name"),
                        9)

    def test_clients_walk_in_every_order(self):
        self.check_list("/clients", ("createdAt", "name", "updatedAt"), 9)

    def test_refused_tokens(self):
        for path in ("/users", "/clients"):
            status, doc = self.get(path, limit=2, sortBy="name")
            self.assertEqual(status, 200, doc)
            token = doc["meta"]["nextPageToken"]
            for params, field in (
                    ({"pageToken": "p1.xx"}, "pageToken"),
                    ({"pageToken": token, "sortBy": "createdAt"}, "pageToken"),
                    ({"pageToken": token, "sortBy": "name", "search": "a"},
                     "pageToken"),
                    ({"pageToken": token, "sortBy": "name", "page": 2}, "page"),
                    ({"page": 201, "limit": 50}, "page")):
                with self.subTest(path=path, params=params):
                    status, doc = self.get(path, **params)
                    self.assertEqual(status, 400, doc)
                    self.assertEqual(doc["code"], "validation_error", doc)
                    self.assertEqual(doc["details"].get("field"), field, doc)
        # Counted on request with a token.
        status, doc = self.get("/users", limit=2)
        status, doc = self.get("/users", limit=2, includeTotal="true",
                               pageToken=doc["meta"]["nextPageToken"])
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["meta"]["total"], 9)
        self.assertNotIn("totalRelation", doc["meta"])


if __name__ == "__main__":
    harness.main()
