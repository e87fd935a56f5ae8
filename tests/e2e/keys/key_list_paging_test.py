"""Keyset paging of the key list end to end (docs/admin-api.md, "Paging
large lists"): pageToken / meta.nextPageToken over REST and gRPC, the
bounded page-number form, the total on request, and refused tokens."""

import json
import secrets
import urllib.parse

import grpc

import harness


class KeyListPagingE2ETest(harness.LumoServerTestCase):
    with_gateway = True

    @classmethod
    def setUpClass(cls):
        cls.stubs = harness.stubs()
        super().setUpClass()
        cls.tenant = "pg-" + secrets.token_hex(3)
        cls.root = cls.server.create_tenant(cls.tenant)
        cls.other = "pg-" + secrets.token_hex(3)
        cls.other_root = cls.server.create_tenant(cls.other)
        cls.channel = grpc.insecure_channel(cls.server.address)
        cls.addClassCleanup(cls.channel.close)
        cls.keys = cls.stubs.keys_grpc.KeyServiceStub(cls.channel)
        # Names with ties (also in letter case) so the id breaks them.
        for i in range(23):
            status, doc = cls.call_as(cls.tenant, cls.root, "POST",
                                      "/api-keys",
                                      {"name": "key-%s" % "abcAB"[i % 5],
                                       "scopes": ["admin:read"]})
            assert status == 201, doc

    @classmethod
    def call_as(cls, tenant, token, method, path, body=None):
        status, _, raw = cls.gw.request(
            method, "/t/%s/api/v1/admin%s" % (tenant, path), body,
            {"Authorization": "Bearer " + token})
        return status, (json.loads(raw) if raw else None)

    def list(self, **params):
        return self.call_as(self.tenant, self.root, "GET",
                            "/api-keys?" + urllib.parse.urlencode(params))

    def walk(self, **params):
        """The ids of every page, following nextPageToken."""
        ids, metas = [], []
        token = None
        while True:
            query = dict(params)
            if token is not None:
                query["pageToken"] = token
            status, doc = self.list(**query)
            self.assertEqual(status, 200, doc)
            ids += [k["id"] for k in doc["data"]]
            metas.append(doc["meta"])
            token = doc["meta"].get("nextPageToken")
            if token is None:
                return ids, metas
            self.assertLessEqual(len(metas), 50, "the walk does not end")

    def test_walk_with_tokens_matches_the_whole_list(self):
        for sort_by in ("name", "createdAt", "lastUsedAt", "expiresAt"):
            for sort_dir in ("ASC", "DESC"):
                with self.subTest(sortBy=sort_by, sortDir=sort_dir):
                    status, whole = self.list(limit=100, sortBy=sort_by,
                                              sortDir=sort_dir)
                    self.assertEqual(status, 200, whole)
                    expected = [k["id"] for k in whole["data"]]
                    self.assertEqual(len(expected), 24)  # + the root key
                    self.assertEqual(whole["meta"]["total"], 24)
                    self.assertNotIn("totalRelation", whole["meta"])
                    self.assertNotIn("nextPageToken", whole["meta"])
                    ids, metas = self.walk(limit=5, sortBy=sort_by,
                                           sortDir=sort_dir)
                    self.assertEqual(ids, expected)
                    self.assertEqual(len(metas), 5)
                    first, later = metas[0], metas[1:]
                    self.assertEqual((first["page"], first["total"],
                                      first["totalPages"]), (1, 24, 5))
                    self.assertTrue(first["hasNextPage"])
                    self.assertFalse(first["hasPreviousPage"])
                    for meta in later:
                        self.assertEqual(meta["page"], 0)
                        self.assertEqual(meta["total"], 0)
                        self.assertEqual(meta["totalRelation"], "unknown")
                        self.assertTrue(meta["hasPreviousPage"])
                    self.assertFalse(metas[-1]["hasNextPage"])

    def test_total_on_request_and_keys_added_during_a_walk(self):
        status, doc = self.list(limit=10, includeTotal="false")
        self.assertEqual(status, 200, doc)
        self.assertEqual((doc["meta"]["total"], doc["meta"]["totalRelation"]),
                         (0, "unknown"))
        token = doc["meta"]["nextPageToken"]
        seen = [k["id"] for k in doc["data"]]
        # A key created now (the newest) is before the walk's position.
        status, created = self.call_as(self.tenant, self.root, "POST",
                                       "/api-keys",
                                       {"name": "late", "scopes": ["admin:read"]})
        self.assertEqual(status, 201, created)
        status, doc = self.list(limit=100, pageToken=token,
                                includeTotal="true")
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["meta"]["total"], 25)
        self.assertNotIn("totalRelation", doc["meta"])
        rest = [k["id"] for k in doc["data"]]
        self.assertNotIn(created["data"]["id"], seen + rest)
        self.assertEqual(len(set(seen + rest)), 24)
        status, _ = self.call_as(self.tenant, self.root, "DELETE",
                                 "/api-keys/" + created["data"]["id"])
        self.assertEqual(status, 204)

    def test_refused_tokens_and_pages(self):
        status, doc = self.list(limit=5, sortBy="name")
        token = doc["meta"]["nextPageToken"]
        self.assertTrue(token.startswith("p1."), token)
        status, _, raw = self.gw.request(
            "GET", "/t/%s/api/v1/admin/api-keys?limit=5&sortBy=name" %
            self.other, None, {"Authorization": "Bearer " + self.other_root})
        other_token = json.loads(raw)["meta"].get("nextPageToken")
        bad = [
            ({"pageToken": "garbage"}, "pageToken"),
            ({"pageToken": token[:-4]}, "pageToken"),
            ({"pageToken": token + "AAAA"}, "pageToken"),
            # Made for another order or another filter.
            ({"pageToken": token, "sortBy": "createdAt"}, "pageToken"),
            ({"pageToken": token, "sortBy": "name", "status": "active"},
             "pageToken"),
            ({"pageToken": token, "sortBy": "name", "page": 2}, "page"),
            ({"page": 401, "limit": 25}, "page"),
            ({"page": 101, "limit": 100}, "page"),
        ]
        for params, field in bad:
            with self.subTest(params=params):
                status, doc = self.list(**params)
                self.assertEqual(status, 400, doc)
                self.assertEqual(doc["code"], "validation_error", doc)
                self.assertEqual(doc["details"].get("field"), field, doc)
        # Another tenant's token (its own list is too short to have one, so
        # one of this tenant's is used there).
        self.assertIsNone(other_token)
        status, _, raw = self.gw.request(
            "GET", "/t/%s/api/v1/admin/api-keys?sortBy=name&pageToken=%s" %
            (self.other, token), None,
            {"Authorization": "Bearer " + self.other_root})
        self.assertEqual(status, 400, raw)
        self.assertEqual(json.loads(raw)["details"]["field"], "pageToken")
        # The deepest numbered page is still served.
        status, doc = self.list(page=400, limit=25)
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["data"], [])

    def test_grpc_pages_with_tokens(self):
        msgs = self.stubs.keys_pb2
        md = [("authorization", "Bearer " + self.root)]
        ids, token = [], ""
        while True:
            reply = self.keys.ListApiKeys(
                msgs.ListApiKeysRequest(tenant_slug=self.tenant, limit=7,
                                        sort_by="name", page_token=token),
                metadata=md, timeout=30)
            ids += [k.id for k in reply.data]
            if not reply.meta.HasField("next_page_token"):
                break
            token = reply.meta.next_page_token
        status, whole = self.list(limit=100, sortBy="name")
        self.assertEqual(ids, [k["id"] for k in whole["data"]])
        with self.assertRaises(grpc.RpcError) as refused:
            self.keys.ListApiKeys(
                msgs.ListApiKeysRequest(tenant_slug=self.tenant,
                                        page_token="p1.AAAA"),
                metadata=md, timeout=30)
        self.assertEqual(refused.exception.code(),
                         grpc.StatusCode.INVALID_ARGUMENT)


if __name__ == "__main__":
    harness.main()
