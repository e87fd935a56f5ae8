"""The audit log end to end: real lumokeys-server, gateway and
MariaDB. The read side over HTTP, exports, chain verification with the CLI,
and a graceful stop that loses no usage event."""
import csv
import io
import json
import subprocess
import threading
import time
import unittest
import urllib.parse

import grpc

import harness

FORMULA = "=cmd|' /C calc'!A0"


class AuditE2ETest(harness.LumoServerTestCase):
    with_gateway = True
    # The 10,000-row export can take several seconds on a busy machine.
    gateway_request_timeout = "%ds" % (30 * harness.TIME_SCALE)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant = "acme-audit"
        cls.root = cls.server.create_tenant(cls.tenant)
        cls.root_id = cls.root[4:16]
        cls.other_tenant = "globex-audit"
        cls.other_root = cls.server.create_tenant(cls.other_tenant)
        cls.secrets = [cls.root, cls.other_root]

    # ----- helpers -----------------------------------------------------

    def call(self, method, path, key=None, body=None, headers=None):
        hdrs = dict(headers or {})
        if key is not None:
            hdrs["Authorization"] = "Bearer " + key
        status, resp_headers, raw = self.gw.request(method, path, body, hdrs)
        self.assertEqual(resp_headers.get("x-content-type-options"), "nosniff")
        self.assertEqual(resp_headers.get("cache-control"), "no-store")
        return status, resp_headers, raw

    def json_call(self, method, path, key=None, body=None, headers=None):
        status, _, raw = self.call(method, path, key, body, headers)
        return status, (json.loads(raw) if raw else None)

    def admin(self, tenant=None):
        return "/t/%s/api/v1/admin" % (tenant or self.tenant)

    def logs(self, key=None, tenant=None, **query):
        path = self.admin(tenant) + "/audit-logs"
        if query:
            path += "?" + urllib.parse.urlencode(query)
        return self.json_call("GET", path, key or self.root)

    def create_key(self, name, scopes=("admin:read",), headers=None):
        status, doc = self.json_call(
            "POST", self.admin() + "/api-keys", self.root,
            {"name": name, "scopes": list(scopes)}, headers)
        self.assertEqual(status, 201, doc)
        self.secrets.append(doc["data"]["key"])
        return doc["data"]

    def wait_for(self, predicate, timeout=20.0 * harness.TIME_SCALE):
        """Polls `predicate` until it returns something true or `timeout`
        seconds pass; returns its last result. The timeout only bounds a
        failing test: a passing one returns as soon as the event is there."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result or time.monotonic() > deadline:
                return result
            time.sleep(0.1)

    def cli_with_key(self, *args, key=None):
        return self.server.cli(
            "--tenant", self.tenant, *args,
            env={"LUMOKEYS_API_KEY": key or self.root})

    # ----- tests -------------------------------------------------------

    def test_lifecycle_events_have_actor_target_outcome(self):
        key = self.create_key("lifecycle")
        kid = key["id"]
        s, _ = self.json_call("POST", self.admin() + "/api-keys/%s/rotate" % kid,
                              self.root, {})
        self.assertEqual(s, 200)
        s, _ = self.json_call("POST", self.admin() + "/api-keys/%s/revoke" % kid,
                              self.root, {})
        self.assertEqual(s, 200)
        s, _ = self.json_call("DELETE", self.admin() + "/api-keys/%s" % kid,
                              self.root)
        self.assertEqual(s, 204)
        for action in ("api_key.created", "api_key.rotated",
                       "api_key.revoked", "api_key.deleted"):
            with self.subTest(action=action):
                status, doc = self.logs(action=action, targetId=kid)
                self.assertEqual(status, 200, doc)
                self.assertEqual(doc["meta"]["total"], 1, doc)
                e = doc["data"][0]
                self.assertEqual(
                    set(e), {"id", "action", "category", "actor", "target",
                             "outcome", "suspicious", "ipAddress",
                             "userAgent", "metadata", "timestamp",
                             "requestId"})
                self.assertEqual(e["action"], action)
                self.assertEqual(e["category"], "api_keys")
                self.assertEqual(e["actor"], {"type": "api_key",
                                              "id": self.root_id,
                                              "email": None})
                self.assertEqual(e["target"], {"type": "api_key", "id": kid})
                self.assertEqual(e["outcome"], "success")
                self.assertFalse(e["suspicious"])
                self.assertEqual(e["ipAddress"], "127.0.0.1")
                self.assertRegex(e["timestamp"],
                                 r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")

    def test_rotated_away_key_use_is_recorded_as_suspicious(self):
        key = self.create_key("leaky")
        s, _ = self.json_call(
            "POST", self.admin() + "/api-keys/%s/rotate" % key["id"],
            self.root, {})
        self.assertEqual(s, 200)
        s, _ = self.json_call("GET", self.admin() + "/api-keys", key["key"])
        self.assertEqual(s, 401)

        def found():
            status, doc = self.logs(suspicious="true", actorId=key["id"])
            self.assertEqual(status, 200, doc)
            return doc["data"]
        # How soon it appears is the writer's flush interval, measured by
        # no test (timing is not asserted); that it appears is.
        events = self.wait_for(found)
        self.assertTrue(events, "no suspicious event")
        e = events[0]
        self.assertEqual(e["action"], "auth.api_key.failed")
        self.assertTrue(e["suspicious"])
        self.assertIn("dead_key", e["metadata"]["suspiciousReasons"])
        # The count of suspicious events among the filtered ones.
        s, doc = self.json_call(
            "GET", self.admin() + "/audit-logs/summary?actorId=" + key["id"],
            self.root)
        self.assertEqual(s, 200, doc)
        self.assertGreaterEqual(doc["data"]["suspiciousCount"], 1)
        self.assertGreaterEqual(doc["data"]["total"],
                                doc["data"]["suspiciousCount"])

    def test_filters_paging_and_validation(self):
        for i in range(3):
            self.create_key("page-%d" % i)
        s, doc = self.logs(action="api_key.created", limit=2)
        self.assertEqual(s, 200, doc)
        self.assertEqual(len(doc["data"]), 2)
        meta = doc["meta"]
        self.assertGreaterEqual(meta["total"], 3)
        self.assertEqual(meta["limit"], 2)
        self.assertEqual(meta["page"], 1)
        self.assertTrue(meta["hasNextPage"])
        self.assertFalse(meta["hasPreviousPage"])
        ids = [int(e["id"]) for e in doc["data"]]
        self.assertEqual(ids, sorted(ids, reverse=True))  # newest first
        s, doc2 = self.logs(action="api_key.created", limit=2, page=2)
        self.assertTrue(doc2["meta"]["hasPreviousPage"])
        self.assertTrue(set(ids).isdisjoint(int(e["id"]) for e in doc2["data"]))
        s, asc = self.logs(action="api_key.created", sortDir="ASC", limit=100)
        asc_ids = [int(e["id"]) for e in asc["data"]]
        self.assertEqual(asc_ids, sorted(asc_ids))
        # category and outcome
        s, doc = self.logs(category="api_keys", limit=100)
        self.assertTrue(all(e["category"] == "api_keys" for e in doc["data"]))
        self.json_call("GET", self.admin() + "/api-keys", "lmk_garbage")
        s, doc = self.wait_for(
            lambda: (lambda r: r if r[1]["data"] else None)(
                self.logs(outcome="failure")))
        self.assertTrue(all(e["outcome"] == "failure" for e in doc["data"]))
        # dates
        s, doc = self.logs(startDate="2999-01-01T00:00:00Z")
        self.assertEqual((s, doc["meta"]["total"]), (200, 0))
        s, doc = self.logs(endDate="2000-01-01T00:00:00Z")
        self.assertEqual((s, doc["meta"]["total"]), (200, 0))
        s, doc = self.logs(startDate="2000-01-01T00:00:00Z",
                           endDate="2999-01-01T00:00:00Z")
        self.assertGreater(doc["meta"]["total"], 0)
        # bad values are 400
        for bad in ({"limit": 0}, {"limit": 101}, {"page": 0},
                    {"outcome": "maybe"}, {"sortDir": "sideways"},
                    {"startDate": "yesterday"},
                    {"startDate": "2030-01-01T00:00:00Z",
                     "endDate": "2029-01-01T00:00:00Z"},
                    {"suspicious": "perhaps"}, {"bogus": "1"}):
            with self.subTest(bad=bad):
                s, doc = self.logs(**bad)
                self.assertEqual(s, 400, doc)
                self.assertEqual(doc["code"], "validation_error")

    def test_get_by_id_and_tenant_isolation(self):
        key = self.create_key("get-me")
        s, doc = self.logs(action="api_key.created", targetId=key["id"])
        event_id = doc["data"][0]["id"]
        s, one = self.json_call(
            "GET", self.admin() + "/audit-logs/" + event_id, self.root)
        self.assertEqual(s, 200, one)
        self.assertEqual(one["data"], doc["data"][0])
        # The other tenant cannot read it, nor guess it.
        s, err = self.json_call(
            "GET", self.admin(self.other_tenant) + "/audit-logs/" + event_id,
            self.other_root)
        self.assertEqual(s, 404, err)
        s, other = self.logs(key=self.other_root, tenant=self.other_tenant,
                             limit=100)
        self.assertNotIn(event_id, [e["id"] for e in other["data"]])
        for bad_id in ("999999999", "abc", "0", "-1"):
            s, err = self.json_call(
                "GET", self.admin() + "/audit-logs/" + bad_id, self.root)
            self.assertEqual(s, 404, (bad_id, err))

    def test_scopes(self):
        auditor = self.create_key("auditor", ("admin:audit",))
        users = self.create_key("users-only", ("admin:users",))
        s, _ = self.logs(key=auditor["key"])
        self.assertEqual(s, 200)
        s, _, _ = self.call("GET", self.admin() + "/audit-logs/export",
                            auditor["key"])
        self.assertEqual(s, 200)
        s, doc = self.logs(key=users["key"])
        self.assertEqual(s, 403, doc)
        s, _, _ = self.call("GET", self.admin() + "/audit-logs/export",
                            users["key"])
        self.assertEqual(s, 403)

    def test_export_csv_neutralises_formulas(self):
        key = self.create_key(FORMULA, headers={"User-Agent": FORMULA})
        status, headers, raw = self.call(
            "GET", self.admin() + "/audit-logs/export?format=csv", self.root)
        self.assertEqual(status, 200, raw)
        self.assertTrue(headers["content-type"].startswith("text/csv"))
        self.assertRegex(headers["content-disposition"],
                         r'^attachment; filename="audit-acme-audit-'
                         r'\d{8}T\d{6}Z\.csv"$')
        self.assertEqual(headers.get("x-frame-options"), "DENY")
        self.assertEqual(headers.get("transfer-encoding"), "chunked")
        self.assertNotIn("content-length", headers)
        text = raw.decode("utf-8")
        self.assertTrue(text.startswith(
            "id,timestamp,action,category,actor_type,actor_id,actor_email,"
            "target_type,target_id,outcome,suspicious,ip_address,user_agent,"
            "request_id,metadata,tenant_id,chain_lane,seq,prev_hash,hash,"
            "hash_version\r\n"))
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        created = [r for r in rows if r["action"] == "api_key.created"
                   and r["target_id"] == key["id"]]
        self.assertEqual(len(created), 1)
        row = created[0]
        # The user agent cell is neutralised; the name sits inside the
        # metadata JSON cell, which starts with "{".
        self.assertEqual(row["user_agent"], "'" + FORMULA)
        self.assertTrue(row["metadata"].startswith("{"))
        self.assertEqual(json.loads(row["metadata"])["name"], FORMULA)
        for r in rows:
            for cell in r.values():
                self.assertFalse(cell[:1] in ("=", "+", "-", "@", "\t", "\r"),
                                 r)
        # Filters as on the list: only this key's creation.
        status, _, raw = self.call(
            "GET", self.admin() + "/audit-logs/export?action=api_key.created"
            "&targetId=" + key["id"], self.root)
        self.assertEqual(status, 200, raw)
        only = list(csv.DictReader(io.StringIO(raw.decode(), newline="")))
        self.assertEqual([(r["action"], r["target_id"]) for r in only],
                         [("api_key.created", key["id"])])
        for secret in self.secrets:
            self.assertNotIn(secret, text)
            self.assertNotIn(secret[17:], text)

    def test_export_json_and_range(self):
        before = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                               time.gmtime(time.time() - 3600))
        status, headers, raw = self.call(
            "GET", self.admin() + "/audit-logs/export?format=json&from=" +
            before, self.root)
        self.assertEqual(status, 200, raw)
        # JSON Lines: one event object per line.
        self.assertTrue(
            headers["content-type"].startswith("application/x-ndjson"))
        self.assertIn(".jsonl\"", headers["content-disposition"])
        self.assertTrue(raw.endswith(b"\n"))
        events = [json.loads(line) for line in raw.decode().splitlines()]
        self.assertTrue(events)
        for e in events:
            self.assertEqual(set(e["chain"]), {"tenantId", "lane", "seq",
                                               "prevHash", "hash",
                                               "hashVersion"})
        ids = [int(e["id"]) for e in events]
        self.assertEqual(ids, sorted(ids))  # oldest first
        self.assertIn("tenant.created", [e["action"] for e in events])
        for secret in self.secrets:
            self.assertNotIn(secret, raw.decode())
        s, _, raw = self.call(
            "GET", self.admin() + "/audit-logs/export?format=xml", self.root)
        self.assertEqual(s, 400)
        s, _, raw = self.call(
            "GET", self.admin() + "/audit-logs/export?to=2000-01-01T00:00:00Z",
            self.root)
        self.assertEqual(s, 200)
        self.assertEqual(raw.decode().count("\r\n"), 1)  # the header alone

    def test_export_beyond_10000_rows_streams_and_grpc_unary_keeps_its_cap(
            self):
        # A tenant of its own: rows inserted behind the chain's back break
        # its verification.
        slug = "bulk-audit"
        key = self.server.create_tenant(slug)
        self.secrets.append(key)
        cut = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
        time.sleep(1.2)
        after = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

        def insert(rows):
            # Rows of a realistic size (~600 bytes of JSON each), so that
            # 10,000 of them exceed gRPC's default 4 MiB message size.
            self.server.sql(
                "INSERT INTO audit_events (tenant_id, action, category,"
                " actor_type, actor_id, outcome, user_agent, request_id,"
                " metadata, created_at)"
                " SELECT t.id, 'test.bulk', 'configuration', 'system',"
                " 'AAAAAAAAAAAA', 'success', REPEAT('u', 200),"
                " REPEAT('r', 36), CONCAT('{\"pad\":\"', REPEAT('m', 200),"
                " '\"}'), UTC_TIMESTAMP(6) FROM tenants t, seq_1_to_%d s"
                " WHERE t.slug = '%s'" % (rows, slug))
        insert(10001)
        path = "/t/%s/api/v1/admin/audit-logs/export" % slug
        # Streamed over REST: every row (the 10,000-row cap is gone).
        status, headers, raw = self.call(
            "GET", path + "?format=json&from=" + after, key)
        self.assertEqual(status, 200, raw[:500])
        self.assertEqual(headers.get("transfer-encoding"), "chunked")
        self.assertGreater(len(raw), 4 << 20)
        lines = raw.decode().splitlines()
        self.assertEqual(len(lines), 10001)
        self.assertEqual({json.loads(l)["action"] for l in lines},
                         {"test.bulk"})
        status, _, raw = self.call("GET", path + "?to=" + cut, key)
        self.assertEqual(status, 200, raw)
        self.assertNotIn(b"test.bulk", raw)
        # The unary gRPC export of earlier releases keeps its cap.
        stubs = harness.stubs()
        request = stubs.audit_pb2.ExportAuditLogsRequest(
            tenant_slug=slug, format="csv", action="test.bulk")
        with grpc.insecure_channel(self.server.address) as channel:
            audit = stubs.audit_grpc.AuditServiceStub(channel)
            with self.assertRaises(grpc.RpcError) as refused:
                audit.ExportAuditLogs(request, metadata=harness.key_md(key),
                                      timeout=60)
            self.assertEqual(refused.exception.code(),
                             grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("narrow", refused.exception.details())
            request.action = "tenant.created"
            reply = audit.ExportAuditLogs(request,
                                          metadata=harness.key_md(key),
                                          timeout=60)
            rows = list(csv.DictReader(io.StringIO(reply.data.decode(),
                                                   newline="")))
            self.assertEqual([r["action"] for r in rows], ["tenant.created"])
        # The list still pages through everything; its total is counted up
        # to 10,000 (a lower bound beyond), the summary counts exactly.
        s, doc = self.json_call(
            "GET", "/t/%s/api/v1/admin/audit-logs?action=test.bulk&limit=1"
            % slug, key)
        self.assertEqual((doc["meta"]["total"], doc["meta"]["totalRelation"]),
                         (10000, "gte"))
        self.assertIn("nextPageToken", doc["meta"])
        s, doc = self.json_call(
            "GET", "/t/%s/api/v1/admin/audit-logs/summary?action=test.bulk"
            % slug, key)
        self.assertEqual(doc["data"]["total"], 10001)

    def test_verify_cli_detects_a_tampered_row(self):
        slug = "tamper-audit"
        key = self.server.create_tenant(slug)
        self.secrets.append(key)
        for i in range(3):
            s, _ = self.json_call(
                "POST", "/t/%s/api/v1/admin/api-keys" % slug, key,
                {"name": "k%d" % i, "scopes": ["admin:read"]})
            self.assertEqual(s, 201)
        r = self.server.cli("--tenant", slug, "audit", "verify")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("intact", r.stdout)
        r = self.server.cli("--json", "--tenant", slug, "audit", "verify")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(json.loads(r.stdout)["ok"])
        target = self.server.sql(
            "SELECT e.id, e.seq, e.chain_lane FROM audit_events e JOIN tenants"
            " t ON t.id = e.tenant_id WHERE t.slug = '%s' AND e.seq IS NOT"
            " NULL ORDER BY e.id LIMIT 1 OFFSET 2" % slug
        ).stdout.splitlines()[1].split("\t")
        row_id, seq, lane = int(target[0]), int(target[1]), int(target[2])
        self.server.sql("UPDATE audit_events SET outcome = 'failure'"
                        " WHERE id = %d" % row_id)
        r = self.server.cli("--tenant", slug, "audit", "verify")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("BROKEN at row id %d (seq %d, lane %d)"
                      % (row_id, seq, lane), r.stdout)
        r = self.server.cli("--json", "--tenant", slug, "audit", "verify")
        self.assertEqual(r.returncode, 1)
        doc = json.loads(r.stdout)
        self.assertEqual(int(doc["firstBrokenId"]), row_id)
        self.assertEqual(int(doc["firstBrokenSeq"]), seq)
        self.assertEqual(int(doc.get("firstBrokenLane", 0)), lane)
        # An unknown tenant is an RPC error; no token is a usage error.
        r = self.server.cli("--tenant", "no-such-tenant", "audit", "verify")
        self.assertEqual(r.returncode, 3)
        r = self.server.cli("--tenant", slug, "audit", "verify",
                            env={"LUMOKEYS_OPERATOR_TOKEN_FILE": None})
        self.assertEqual(r.returncode, 2)

    def test_retention_purge_keeps_the_chain_verifiable(self):
        slug = "retention-audit"
        key = self.server.create_tenant(slug)
        self.secrets.append(key)
        for i in range(4):
            s, _ = self.json_call(
                "POST", "/t/%s/api/v1/admin/api-keys" % slug, key,
                {"name": "r%d" % i, "scopes": ["admin:read"]})
            self.assertEqual(s, 201)
        tenant_id = int(self.server.sql(
            "SELECT id FROM tenants WHERE slug = '%s'" % slug
        ).stdout.splitlines()[1])
        count = lambda where="TRUE": int(self.server.sql(  # noqa: E731
            "SELECT COUNT(*) FROM audit_events WHERE tenant_id = %d"
            " AND seq IS NOT NULL AND %s" % (tenant_id, where)
        ).stdout.splitlines()[1])
        # The calls' usage events are batched: wait for all four, so that
        # nothing arrives after `before` is taken.
        self.assertTrue(self.wait_for(
            lambda: count("action = 'api_key.used'") == 4,
            20 * harness.TIME_SCALE))
        before = count()
        self.assertGreaterEqual(before, 5)
        # Age the first three rows of the writer's chain lane (0: the
        # api_key.used rows of the calls above) past the retention period
        # (this edits them, but they are exactly the rows the purge removes).
        self.server.sql(
            "UPDATE audit_events SET created_at = created_at - INTERVAL 40 DAY"
            " WHERE tenant_id = %d AND chain_lane = 0 AND seq IS NOT NULL"
            " AND seq <= 3" % tenant_id)
        r = self.server.cli("--tenant", slug, "audit", "verify")
        self.assertEqual(r.returncode, 1, "aged rows must not verify")
        purge = self.server.run_once("--purge_audit_older_than_days=30",
                                     timeout=60)
        self.assertEqual(purge.returncode, 0, purge.stderr)
        self.assertEqual(count(), before - 3)
        head = self.server.sql(
            "SELECT base_seq FROM audit_chain_heads WHERE tenant_id = %d"
            " AND lane = 0" % tenant_id).stdout.splitlines()[1]
        self.assertEqual(int(head), 3)
        r = self.server.cli("--json", "--tenant", slug, "audit", "verify")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(json.loads(r.stdout)["ok"])
        # Days < 1 is refused; nothing younger than the period is touched.
        bad = self.server.run_once("--purge_audit_older_than_days=-1",
                                   timeout=60)
        self.assertNotEqual(bad.returncode, 0)
        self.assertEqual(count(), before - 3)

    def test_cli_list_and_tail(self):
        key = self.create_key("cli-listed")
        r = self.cli_with_key("--json", "audit", "list", "--action",
                              "api_key.created", "--limit", "5")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertIn(key["id"], [e["target"]["id"] for e in doc["data"]])
        r = self.cli_with_key("audit", "list", "--suspicious")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.cli_with_key("audit", "list", "--limit", "0")
        self.assertEqual(r.returncode, 2)
        # --count counts the initial lines too: exits on its own. (A key of
        # its own: tail hides the list calls of its key, such as the ones
        # above, so with the root key the newest lines could all be hidden.)
        reader = self.create_key("tail-count")
        r = self.cli_with_key("--json", "audit", "tail", "--lines", "2",
                              "--count", "2", key=reader["key"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(r.stdout.splitlines()), 2, r.stdout)

    def lane_rows(self, tenant_id):
        """{event id: (chain lane, seq, actor id, rpc)} of a tenant."""
        out = self.server.sql(
            "SELECT id, chain_lane, seq, actor_id,"
            " COALESCE(JSON_VALUE(metadata, '$.rpc'), '')"
            " FROM audit_events WHERE tenant_id = %d" % tenant_id).stdout
        rows = {}
        for line in out.splitlines()[1:]:
            eid, lane, seq, actor, rpc = line.split("\t")
            rows[eid] = (int(lane), int(seq), actor, rpc)
        return rows

    def test_cli_tail_prints_every_new_event_once_in_lane_order(self):
        """What tail promises, whatever the writer's flush timing and the
        order in which transactions commit: every event committed after it
        started is printed exactly once, in commit order within each chain
        lane; its own polls are not printed."""
        slug = "tail-audit"
        root = self.server.create_tenant(slug)
        self.secrets.append(root)
        admin = "/t/%s/api/v1/admin" % slug
        tenant_id = int(self.server.sql(
            "SELECT id FROM tenants WHERE slug = '%s'" % slug
        ).stdout.splitlines()[1])

        def create(name, scopes):
            status, headers, raw = self.call(
                "POST", admin + "/api-keys", root,
                {"name": name, "scopes": scopes})
            self.assertEqual(status, 201, raw)
            data = json.loads(raw)["data"]
            self.secrets.append(data["key"])
            return data, headers.get("x-request-id")

        reader, _ = create("tail-reader", ["admin:read"])
        before = self.lane_rows(tenant_id)
        lines = []
        tail = subprocess.Popen(
            [self.server.cli_binary, "--tenant", slug, "--json", "audit",
             "tail", "--lines", "1", "--interval", "0.1"],
            env=self.server.cli_env({"LUMOKEYS_API_KEY": reader["key"]}),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        reader_thread = threading.Thread(
            target=lambda: lines.extend(iter(tail.stdout.readline, "")),
            daemon=True)
        reader_thread.start()
        try:
            # The first line is the newest event when tail started; act
            # only after it, so everything below is new to tail.
            self.assertTrue(self.wait_for(lambda: len(lines) >= 1,
                                          20 * harness.TIME_SCALE),
                            tail.stderr.read() if tail.poll() else "")
            made = [create("tailed-%d" % i, ["admin:read"]) for i in range(2)]
            s, _ = self.json_call(
                "POST", admin + "/api-keys/%s/revoke" % made[0][0]["id"], root,
                {})
            self.assertEqual(s, 200)
            expected_created = {k["id"] for k, _ in made}
            expected_requests = {rid for _, rid in made}

            def seen():
                events = [json.loads(line) for line in list(lines)[1:]]
                created = {e["target"]["id"] for e in events
                           if e["action"] == "api_key.created"}
                used = {e.get("requestId") for e in events
                        if e["action"] == "api_key.used"}
                revoked = any(e["action"] == "api_key.revoked"
                              for e in events)
                return (expected_created <= created and
                        expected_requests <= used and revoked)
            self.assertTrue(self.wait_for(seen, 30 * harness.TIME_SCALE),
                            "tail did not print every new event: %s" % lines)
        finally:
            tail.terminate()
            tail.wait(timeout=10)
            reader_thread.join(timeout=10)
            tail.stdout.close()
            tail.stderr.close()
        printed = [json.loads(line) for line in lines[1:]]
        ids = [e["id"] for e in printed]
        self.assertEqual(len(ids), len(set(ids)), "printed twice: %s" % ids)
        rows = self.lane_rows(tenant_id)
        own = "lumo.audit.v1.AuditService.ListAuditLogs"
        by_lane = {}
        for eid in ids:
            lane, seq, actor, rpc = rows[eid]
            self.assertFalse(actor == reader["id"] and rpc == own,
                             "tail printed its own poll %s" % eid)
            self.assertNotIn(eid, before, "printed an event older than tail")
            by_lane.setdefault(lane, []).append(seq)
        for lane, seqs in by_lane.items():
            self.assertEqual(seqs, sorted(seqs),
                             "lane %d printed out of order" % lane)
            # Nothing skipped between the first and last printed event of
            # a lane, except tail's own polls.
            printed_or_own = set(seqs) | {
                seq for (l, seq, actor, rpc) in rows.values()
                if l == lane and actor == reader["id"] and rpc == own}
            for seq in range(seqs[0], seqs[-1] + 1):
                self.assertIn(seq, printed_or_own,
                              "lane %d: seq %d was skipped" % (lane, seq))


class GracefulStopTest(harness.LumoServerTestCase):
    """N verified calls, SIGTERM at once: api_key.used summaries counting
    all N."""

    CALLS = 2000

    def test_graceful_stop_loses_no_usage_event(self):
        r = self.server.cli("--json", "tenant", "create", "stop-audit",
                            "--scopes", "admin:read")
        self.assertEqual(r.returncode, 0, r.stderr)
        key = json.loads(r.stdout)["initialKey"]["key"]
        stubs = harness.stubs()
        request = stubs.auth_pb2.VerifyApiKeyRequest(key=key)
        with grpc.insecure_channel(self.server.address) as channel:
            auth = stubs.auth_grpc.AuthServiceStub(channel)
            futures = [auth.VerifyApiKey.future(
                request, metadata=self.server.service_md(), timeout=30)
                for _ in range(self.CALLS)]
            for f in futures:
                self.assertTrue(f.result().valid)
        self.assertEqual(self.server.terminate(timeout=30), 0,
                         self.server.server_log())
        # Valid verifications are audited as summaries with a count
        # (docs/audit.md "Verification summaries"); the stop writes the
        # open ones, so the counts add up to every call.
        out = self.server.sql(
            "SELECT COUNT(*), SUM(JSON_VALUE(metadata, '$.count'))"
            " FROM audit_events WHERE action = 'api_key.used'"
            " AND actor_id = '%s'" % key[4:16]).stdout.splitlines()
        rows, counted = out[1].split("\t")
        self.assertEqual(int(counted), self.CALLS)
        self.assertLess(int(rows), self.CALLS // 10)


if __name__ == "__main__":
    unittest.main()
