"""Keyset paging of the audit log end to end (docs/admin-api.md, "Paging
large lists"; docs/audit.md): pageToken / meta.nextPageToken newest and
oldest first, with filters, the total on request, refused tokens."""

import json
import secrets
import urllib.parse

import harness


class AuditPagingE2ETest(harness.LumoServerTestCase):
    with_gateway = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant = "ap-" + secrets.token_hex(3)
        cls.root = cls.server.create_tenant(cls.tenant)
        # 11 creations and 4 revocations: api_key.* events of this tenant.
        for i in range(11):
            status, doc = cls.call("POST", "/api-keys",
                                   {"name": "k%d" % i,
                                    "scopes": ["admin:read"]})
            assert status == 201, doc
            if i % 3 == 0:
                status, doc = cls.call(
                    "POST", "/api-keys/%s/revoke" % doc["data"]["id"])
                assert status == 200, doc

    @classmethod
    def call(cls, method, path, body=None):
        status, _, raw = cls.gw.request(
            method, "/t/%s/api/v1/admin%s" % (cls.tenant, path), body,
            {"Authorization": "Bearer " + cls.root})
        return status, (json.loads(raw) if raw else None)

    def list(self, **params):
        return self.call("GET",
                         "/audit-logs?" + urllib.parse.urlencode(params))

    def test_walks_match_the_whole_log(self):
        for sort_dir in ("DESC", "ASC"):
            for action in ("", "api_key.revoked"):
                with self.subTest(sortDir=sort_dir, action=action):
                    base = {"sortDir": sort_dir}
                    if action:
                        base["action"] = action
                    status, whole = self.list(limit=100, **base)
                    self.assertEqual(status, 200, whole)
                    expected = [e["id"] for e in whole["data"]]
                    self.assertGreaterEqual(len(expected), 4)
                    ids, token, pages, first_total = [], None, 0, None
                    while True:
                        params = dict(base, limit=3)
                        if token:
                            params["pageToken"] = token
                        status, doc = self.list(**params)
                        self.assertEqual(status, 200, doc)
                        pages += 1
                        if token:
                            self.assertEqual(doc["meta"]["totalRelation"],
                                             "unknown")
                            self.assertEqual(doc["meta"]["page"], 0)
                        else:
                            first_total = doc["meta"]["total"]
                        ids += [e["id"] for e in doc["data"]]
                        token = doc["meta"].get("nextPageToken")
                        self.assertEqual(doc["meta"]["hasNextPage"],
                                         token is not None)
                        if token is None:
                            break
                        self.assertLess(pages, 40)
                    # Every event that existed for the whole walk, once,
                    # in order; events committed meanwhile (usage of the
                    # calls themselves) may join it where they sort.
                    self.assertEqual(len(ids), len(set(ids)))
                    as_int = [int(i) for i in ids]
                    self.assertEqual(as_int, sorted(
                        as_int, reverse=sort_dir == "DESC"))
                    self.assertEqual([i for i in ids if i in expected],
                                     expected)
                    # The first page's total counts the events committed
                    # when it was read: at least those of the whole list
                    # read before it, and each of them is in the walk. The
                    # REST calls' own api_key.used events are written by
                    # the batched audit path, so a batch may land between
                    # the two reads.
                    self.assertGreaterEqual(first_total, len(expected))
                    self.assertLessEqual(first_total, len(ids))

    def test_total_on_request_and_refusals(self):
        status, doc = self.list(limit=2, includeTotal="false")
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["meta"]["totalRelation"], "unknown")
        token = doc["meta"]["nextPageToken"]
        status, doc = self.list(limit=2, pageToken=token, includeTotal="true")
        self.assertEqual(status, 200, doc)
        self.assertGreaterEqual(doc["meta"]["total"], 15)
        self.assertNotIn("totalRelation", doc["meta"])
        status, follow = self.list(limit=1, returnCursor="true")
        self.assertEqual(status, 200, follow)
        bad = [
            ({"pageToken": "p1.!!"}, "pageToken"),
            ({"pageToken": token, "sortDir": "ASC"}, "pageToken"),
            ({"pageToken": token, "action": "api_key.created"}, "pageToken"),
            ({"pageToken": token, "page": 1}, "page"),
            ({"pageToken": token,
              "afterCursor": follow["meta"]["nextCursor"]}, "pageToken"),
            ({"page": 101, "limit": 100}, "page"),
        ]
        for params, field in bad:
            with self.subTest(params=params):
                status, doc = self.list(**params)
                self.assertEqual(status, 400, doc)
                self.assertEqual(doc["code"], "validation_error", doc)
                self.assertEqual(doc["details"].get("field"), field, doc)


if __name__ == "__main__":
    harness.main()
