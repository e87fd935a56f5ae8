"""Usage rollups end to end (docs/usage.md): 10,000 uses of three keys with
known outcomes, through gRPC (VerifyApiKey) and REST (the admin API behind
the gateway), read back from the usage API exactly: per key, per outcome,
and per hour (against the audit rows the same batches wrote)."""
import collections
import datetime
import http.client
import json
import unittest
import urllib.parse

import grpc

import harness


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class UsageE2ETest(harness.LumoServerTestCase):
    with_gateway = True
    # Failures are what this test counts: the failure throttle would turn
    # them into 429s after 100 per key.
    server_args = ("--auth_failures_per_ip_burst=0",
                   "--auth_failures_per_key_burst=0")

    # (key, channel, outcome) -> uses made by the test.
    PLAN = {
        ("alpha", "verify", "valid"): 3000,
        ("alpha", "api", "valid"): 500,
        ("alpha", "api", "insufficient_scope"): 500,
        ("beta", "verify", "revoked"): 1500,
        ("beta", "api", "revoked"): 500,
        ("gamma", "verify", "valid"): 1500,
        ("gamma", "verify", "ip_not_allowed"): 1500,
        ("gamma", "api", "ip_not_allowed"): 1000,
    }

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant = "acme-usage"
        cls.root = cls.server.create_tenant(cls.tenant)
        cls.started = datetime.datetime.now(datetime.timezone.utc)

    def admin(self):
        return "/t/%s/api/v1/admin" % self.tenant

    def json_call(self, method, path, key, body=None, conn=None):
        status, _, raw = self.gw.request(
            method, path, body, {"Authorization": "Bearer " + key}, conn=conn)
        return status, (json.loads(raw) if raw else None)

    def create_key(self, name, scopes, cidrs=()):
        status, doc = self.json_call(
            "POST", self.admin() + "/api-keys", self.root,
            {"name": name, "scopes": list(scopes),
             "allowedCidrs": list(cidrs)})
        self.assertEqual(status, 201, doc)
        return doc["data"]

    def verify(self, key, client_ip, count, want):
        stubs = harness.stubs()
        request = stubs.auth_pb2.VerifyApiKeyRequest(
            key=key, tenant_slug=self.tenant, client_ip=client_ip)
        with grpc.insecure_channel(self.server.address) as channel:
            auth = stubs.auth_grpc.AuthServiceStub(channel)
            done = 0
            while done < count:
                n = min(500, count - done)
                futures = [auth.VerifyApiKey.future(
                    request, metadata=self.server.service_md(),
                    timeout=60 * harness.TIME_SCALE) for _ in range(n)]
                for f in futures:
                    self.assertEqual(
                        stubs.auth_pb2.VerifyReason.Name(f.result().reason),
                        want)
                done += n

    def rest(self, key, method, path, body, count, want_status):
        conn = http.client.HTTPConnection("127.0.0.1", self.gw.port,
                                          timeout=30 * harness.TIME_SCALE)
        try:
            for _ in range(count):
                status, doc = self.json_call(method, path, key, body,
                                             conn=conn)
                self.assertEqual(status, want_status, doc)
        finally:
            conn.close()

    def usage(self, path, key=None, **query):
        if query:
            path += "?" + urllib.parse.urlencode(query)
        return self.json_call("GET", path, key or self.root)

    def key_usage(self, key_id, **query):
        return self.usage(self.admin() + "/api-keys/%s/usage" % key_id,
                          **query)

    def range_query(self, granularity="hour"):
        start = self.started - datetime.timedelta(hours=1)
        end = (datetime.datetime.now(datetime.timezone.utc) +
               datetime.timedelta(hours=1))
        return {"from": iso(start), "to": iso(end),
                "granularity": granularity}

    def audit_counts_by_hour(self, key_id):
        """{(hour start 'YYYY-MM-DD HH', outcome): uses} from the audit rows
        of `key_id` (summaries count their `count`)."""
        rows = self.server.rows(
            "SELECT DATE_FORMAT(created_at, '%%Y-%%m-%%d %%H'),"
            " CASE WHEN action = 'api_key.used' THEN 'valid'"
            " ELSE JSON_VALUE(metadata, '$.reason') END,"
            " SUM(COALESCE(JSON_VALUE(metadata, '$.count'), 1))"
            " FROM audit_events WHERE actor_id = '%s' AND action IN"
            " ('api_key.used', 'auth.api_key.failed') GROUP BY 1, 2" % key_id)
        return {(r[0], r[1]): int(r[2]) for r in rows}

    def test_ten_thousand_uses_read_back_per_key_outcome_and_hour(self):
        keys = {
            "alpha": self.create_key("alpha", ["admin:read"]),
            "beta": self.create_key("beta", ["admin:read"]),
            "gamma": self.create_key("gamma", ["admin:read"], ["10.0.0.0/8"]),
        }
        s, doc = self.json_call(
            "POST", self.admin() + "/api-keys/%s/revoke" % keys["beta"]["id"],
            self.root, {})
        self.assertEqual(s, 200, doc)

        self.verify(keys["alpha"]["key"], "192.0.2.1", 3000, "VALID")
        self.verify(keys["beta"]["key"], "192.0.2.1", 1500, "REVOKED")
        self.verify(keys["gamma"]["key"], "10.1.2.3", 1500, "VALID")
        self.verify(keys["gamma"]["key"], "192.0.2.7", 1500,
                    "IP_NOT_ALLOWED")
        listing = self.admin() + "/api-keys"
        self.rest(keys["alpha"]["key"], "GET", listing, None, 500, 200)
        self.rest(keys["alpha"]["key"], "POST", listing,
                  {"name": "not allowed", "scopes": ["admin:read"]}, 500, 403)
        self.rest(keys["beta"]["key"], "GET", listing, None, 500, 401)
        self.rest(keys["gamma"]["key"], "GET", listing, None, 1000, 403)
        self.assertEqual(sum(self.PLAN.values()), 10000)

        expected = collections.defaultdict(lambda: collections.Counter())
        channels = collections.defaultdict(lambda: collections.Counter())
        for (name, channel, outcome), n in self.PLAN.items():
            expected[name][outcome] += n
            channels[name][channel] += n

        def read_all():
            out = {}
            for name, key in keys.items():
                status, doc = self.key_usage(key["id"], **self.range_query())
                self.assertEqual(status, 200, doc)
                out[name] = doc["data"]
            return out

        def complete():
            got = read_all()
            calls = sum(d["totals"]["calls"] for d in got.values())
            return got if calls >= 10000 else None
        # Valid verifications are written as summaries when their window
        # ends: wait until every use is counted, then compare exactly.
        got = harness.wait_for(complete, "10,000 uses in the rollups",
                               timeout_s=60)

        for name, data in got.items():
            with self.subTest(key=name):
                totals = data["totals"]
                self.assertEqual(dict(totals["outcomes"]),
                                 dict(expected[name]))
                self.assertEqual(totals["verifications"],
                                 channels[name]["verify"])
                self.assertEqual(totals["apiCalls"], channels[name]["api"])
                self.assertEqual(totals["failures"],
                                 sum(n for o, n in expected[name].items()
                                     if o != "valid"))
                self.assertEqual(data["granularity"], "hour")
                # Dense: consecutive hours, oldest first.
                starts = [b["start"] for b in data["buckets"]]
                self.assertEqual(starts, sorted(starts))
                self.assertGreaterEqual(len(starts), 2)
                # Per hour and outcome: what the audit rows of those hours
                # add up to.
                by_hour = collections.Counter()
                for b in data["buckets"]:
                    hour = b["start"][:13].replace("T", " ")
                    for outcome, n in b["counts"]["outcomes"].items():
                        by_hour[(hour, outcome)] += n
                self.assertEqual(dict(by_hour),
                                 self.audit_counts_by_hour(keys[name]["id"]))
                # The day series holds the same totals.
                status, day = self.key_usage(
                    keys[name]["id"], **self.range_query("day"))
                self.assertEqual(status, 200, day)
                self.assertEqual(day["data"]["totals"], totals)

        # The CLI prints the same numbers as a table.
        q = self.range_query()
        r = self.server.cli("--tenant", self.tenant, "usage", "key",
                            keys["alpha"]["id"], "--from", q["from"],
                            "--to", q["to"],
                            env={"LUMOKEYS_API_KEY": self.root})
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        header = lines[1].split()
        total = [l for l in lines if l.startswith("total")][0].split()
        self.assertEqual(header[-2:], ["INSUFFICIENT_SCOPE", "VALID"], r.stdout)
        # total, calls, verify, api, failures, insufficient_scope, valid
        self.assertEqual(total, ["total", "4000", "3000", "1000", "500",
                                 "500", "3500"], r.stdout)

        # The tenant's overview: the same counts, the failing keys ranked.
        status, doc = self.usage(self.admin() + "/usage", limit=5,
                                 **self.range_query())
        self.assertEqual(status, 200, doc)
        tenant = doc["data"]
        for outcome in ("revoked", "ip_not_allowed", "insufficient_scope"):
            self.assertEqual(
                tenant["totals"]["outcomes"][outcome],
                sum(expected[n][outcome] for n in expected))
        failing = [(k["keyId"], k["name"], k["failures"])
                   for k in tenant["topKeysByFailures"]]
        self.assertEqual(failing, [
            (keys["gamma"]["id"], "gamma", 2500),
            (keys["beta"]["id"], "beta", 2000),
            (keys["alpha"]["id"], "alpha", 500)])
        by_calls = {k["keyId"]: k["calls"] for k in tenant["topKeysByCalls"]}
        self.assertEqual(by_calls[keys["alpha"]["id"]], 4000)
        self.assertEqual(by_calls[keys["gamma"]["id"]], 4000)
        # Suspicious events per UTC day: every day the range touches, each
        # equal to the audit summary of that day (uses of the revoked key
        # and refused scopes are flagged, so some day holds them).
        rq = self.range_query()
        first = datetime.datetime.fromisoformat(rq["from"][:10]).replace(
            tzinfo=datetime.timezone.utc)
        last = datetime.datetime.fromisoformat(rq["to"][:10]).replace(
            tzinfo=datetime.timezone.utc)
        want_days = [first + datetime.timedelta(days=i)
                     for i in range((last - first).days + 1)]
        days = tenant["suspiciousPerDay"]
        self.assertEqual([d["day"] for d in days],
                         [iso(d) for d in want_days])
        for d, start in zip(days, want_days):
            status, summary = self.json_call(
                "GET", self.admin() + "/audit-logs/summary?" +
                urllib.parse.urlencode({
                    "suspicious": "true", "startDate": iso(start),
                    "endDate": iso(start + datetime.timedelta(days=1))}),
                self.root)
            self.assertEqual(status, 200, summary)
            self.assertEqual(int(d.get("count", 0)),
                             summary["data"]["suspiciousCount"], d)
        self.assertGreaterEqual(sum(int(d.get("count", 0)) for d in days),
                                2500)

        # A deleted key: its own usage is 404, the tenant keeps its counts.
        s, _ = self.json_call(
            "DELETE", self.admin() + "/api-keys/%s" % keys["gamma"]["id"],
            self.root)
        self.assertEqual(s, 204)
        status, doc = self.key_usage(keys["gamma"]["id"],
                                     **self.range_query())
        self.assertEqual(status, 404, doc)
        status, doc = self.usage(self.admin() + "/usage", **self.range_query())
        self.assertEqual(status, 200, doc)
        gone = [k for k in doc["data"]["topKeysByFailures"]
                if k["keyId"] == keys["gamma"]["id"]]
        self.assertEqual(len(gone), 1, doc)
        self.assertTrue(gone[0]["deleted"])
        self.assertEqual(gone[0]["name"], "")
        self.assertEqual(gone[0]["failures"], 2500)

    def test_rollups_survive_the_audit_purge_and_have_their_own_retention(self):
        slug = "acme-usage-retention"
        root = self.server.create_tenant(slug)
        admin = "/t/%s/api/v1/admin" % slug
        tenant_id = int(self.server.rows(
            "SELECT id FROM tenants WHERE slug = '%s'" % slug)[0][0])
        stubs = harness.stubs()
        request = stubs.auth_pb2.VerifyApiKeyRequest(key=root,
                                                     tenant_slug=slug)
        with grpc.insecure_channel(self.server.address) as channel:
            auth = stubs.auth_grpc.AuthServiceStub(channel)
            for _ in range(20):
                self.assertTrue(auth.VerifyApiKey(
                    request, metadata=self.server.service_md(),
                    timeout=30 * harness.TIME_SCALE).valid)
        root_id = harness.key_id(root)
        path = admin + "/api-keys/%s/usage" % root_id

        def verifications(granularity="hour"):
            status, doc = self.usage(path, root,
                                     **self.range_query(granularity))
            self.assertEqual(status, 200, doc)
            return doc["data"]["totals"]["verifications"]
        harness.wait_for(lambda: verifications() == 20,
                         "20 verifications in the rollups")

        # Raw audit rows purged: the rollups stay.
        self.server.sql(
            "UPDATE audit_events SET created_at = created_at - INTERVAL 40 DAY"
            " WHERE tenant_id = %d AND seq IS NOT NULL" % tenant_id)
        purge = self.server.run_once("purge-audit", "--older_than_days=30",
                                     timeout=60)
        self.assertEqual(purge.returncode, 0, purge.stderr)
        left = self.server.rows(
            "SELECT COUNT(*) FROM audit_events WHERE tenant_id = %d"
            " AND action = 'api_key.used' AND actor_id = '%s'"
            " AND JSON_VALUE(metadata, '$.rpc') ="
            " 'lumo.auth.v1.AuthService.VerifyApiKey'" % (tenant_id, root_id))
        self.assertEqual(int(left[0][0]), 0)
        self.assertEqual(verifications(), 20)

        # purge-usage: hourly buckets older than 90 days go, daily ones stay
        # for 400 days.
        self.server.sql(
            "UPDATE usage_hourly SET bucket_start = bucket_start"
            " - INTERVAL 100 DAY WHERE tenant_id = %d" % tenant_id)
        purge = self.server.run_once("purge-usage", timeout=60)
        self.assertEqual(purge.returncode, 0, purge.stderr)
        # (The usage reads above are admin API calls of the same key, which
        # the writer may still add to the current hour: verify rows only.)
        hourly = self.server.rows(
            "SELECT COUNT(*) FROM usage_hourly WHERE tenant_id = %d"
            " AND channel = 'verify'" % tenant_id)
        self.assertEqual(int(hourly[0][0]), 0)
        self.assertEqual(verifications(), 0)
        self.assertEqual(verifications("day"), 20)
        bad = self.server.run_once("purge-usage", "--hourly_older_than_days=0",
                                   timeout=60)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("--hourly_older_than_days", bad.stderr)

    def test_scopes_ranges_and_bad_values(self):
        # A tenant of its own: the refusals below are counted uses too.
        tenant = "acme-usage-scopes"
        root = self.server.create_tenant(tenant)
        admin = "/t/%s/api/v1/admin" % tenant
        status, doc = self.json_call(
            "POST", admin + "/api-keys", root,
            {"name": "auditor", "scopes": ["admin:audit"]})
        self.assertEqual(status, 201, doc)
        auditor = doc["data"]["key"]
        status, doc = self.json_call(
            "POST", admin + "/api-keys", root,
            {"name": "users only", "scopes": ["admin:users"]})
        self.assertEqual(status, 201, doc)
        users_only = doc["data"]["key"]
        root_id = harness.key_id(root)
        status, doc = self.usage(admin + "/usage", auditor)
        self.assertEqual(status, 200, doc)
        # Defaults: the last 24 hours, hourly, up to the end of this hour.
        self.assertEqual(doc["data"]["granularity"], "hour")
        self.assertEqual(len(doc["data"]["buckets"]), 24)
        status, doc = self.usage(
            admin + "/api-keys/%s/usage" % root_id, auditor,
            granularity="day")
        self.assertEqual(status, 200, doc)
        self.assertEqual(len(doc["data"]["buckets"]), 30)
        self.assertTrue(doc["data"]["buckets"][0]["start"].endswith(
            "T00:00:00Z"), doc["data"]["buckets"][0])
        status, doc = self.usage(admin + "/usage", users_only)
        self.assertEqual(status, 403, doc)
        status, doc = self.usage(
            admin + "/api-keys/%s/usage" % "zzzzzzzzzzzz", root)
        self.assertEqual(status, 404, doc)
        for bad in ({"granularity": "minute"},
                    {"from": "2026-01-02T00:00:00Z",
                     "to": "2026-01-01T00:00:00Z"},
                    {"from": "2020-01-01T00:00:00Z",
                     "to": "2026-01-01T00:00:00Z"},
                    {"from": "yesterday"}, {"limit": 0}, {"limit": 101}):
            with self.subTest(bad=bad):
                status, doc = self.usage(admin + "/usage", root, **bad)
                self.assertEqual(status, 400, doc)
                self.assertEqual(doc["code"], "validation_error")


if __name__ == "__main__":
    unittest.main()
