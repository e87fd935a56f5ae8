"""The client address behind reverse proxies, end to end: real
lumokeys-gateway (with --trusted_proxies), real lumokeys-server, real
MariaDB (docs/gateway.md, "The client address behind proxies").

A key limited to 203.0.113.0/24 is used through gateways that trust
127.0.0.2 as a proxy. Requests are sent from 127.0.0.2 (a trusted proxy)
or from 127.0.0.1 (not one) by binding the client socket's source address,
so the same gateway shows both sides: only a trusted peer's forwarding
header decides the address the server checks the key's CIDRs against (and
audits), the right-most untrusted hop wins, a spoofed header from an
untrusted peer is ignored, and a malformed one from a trusted peer is 400.
"""
import http.client
import json
import os
import time
import unittest

import harness

PROXY = "127.0.0.2"  # trusted
DIRECT = "127.0.0.1"  # not trusted


class TrustedProxyTest(harness.LumoServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.xff = harness.LumoGateway(
            cls.server, extra_args=[f"--trusted_proxies={PROXY}/32"],
            name="gateway-xff")
        cls.addClassCleanup(cls.xff.stop)
        cls.fwd = harness.LumoGateway(
            cls.server, extra_args=[f"--trusted_proxies={PROXY}",
                                    "--forwarded_header=forwarded"],
            name="gateway-forwarded")
        cls.addClassCleanup(cls.fwd.stop)
        cls.slug = "proxied-%d" % (os.getpid() % 100000)
        root = cls.server.create_tenant(cls.slug)
        cls.cidr_key = cls.create_key(root, ["203.0.113.0/24"])
        # Limited to the loopback range the proxies live in.
        cls.loopback_key = cls.create_key(root, ["127.0.0.0/8"])

    @classmethod
    def create_key(cls, root, cidrs):
        status, _, raw = cls.xff.request(
            "POST", cls.path(), {"name": "cidr " + cidrs[0],
                                 "scopes": ["admin:read"],
                                 "allowedCidrs": cidrs},
            {"Authorization": "Bearer " + root})
        if status != 201:
            raise harness.HarnessError("create key: %d %r" % (status, raw))
        return json.loads(raw)["data"]

    @classmethod
    def path(cls, rest=""):
        return "/t/%s/api/v1/admin/api-keys%s" % (cls.slug, rest)

    def get(self, gw, source, key, headers=None, path=None):
        """GET as `key` from source address `source`: (status, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30,
                                          source_address=(source, 0))
        try:
            hdrs = {"Authorization": "Bearer " + key["key"]}
            hdrs.update(headers or {})
            conn.request("GET", path or self.path(), headers=hdrs)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"null")
        finally:
            conn.close()

    def assert_status(self, want, gw, source, key, headers=None):
        status, doc = self.get(gw, source, key, headers)
        self.assertEqual(status, want, (source, headers, doc))
        return doc

    def test_a_trusted_proxys_forwarded_address_decides_the_cidr_check(self):
        xff = "X-Forwarded-For"
        self.assert_status(200, self.xff, PROXY, self.cidr_key,
                           {xff: "203.0.113.7"})
        doc = self.assert_status(403, self.xff, PROXY, self.cidr_key,
                                 {xff: "198.51.100.1"})
        self.assertEqual(doc["code"], "permission_denied", doc)
        # The right-most hop that is not a trusted proxy is the client: a
        # client cannot get in by writing an allowed address further left.
        self.assert_status(403, self.xff, PROXY, self.cidr_key,
                           {xff: "203.0.113.7, 198.51.100.1"})
        self.assert_status(200, self.xff, PROXY, self.cidr_key,
                           {xff: "198.51.100.1, 203.0.113.7"})
        self.assert_status(200, self.xff, PROXY, self.cidr_key,
                           {xff: "203.0.113.7, 127.0.0.2"})
        # Without the header the proxy itself is the client.
        self.assert_status(403, self.xff, PROXY, self.cidr_key)
        # A key limited to the proxies' range no longer works from anywhere.
        self.assert_status(403, self.xff, PROXY, self.loopback_key,
                           {xff: "198.51.100.1"})
        self.assert_status(200, self.xff, PROXY, self.loopback_key)

    def test_an_untrusted_peers_forwarding_headers_are_ignored(self):
        for headers in ({"X-Forwarded-For": "203.0.113.7"},
                        {"Forwarded": "for=203.0.113.7"},
                        {"X-Forwarded-For": "not an address"}):
            self.assert_status(403, self.xff, DIRECT, self.cidr_key, headers)
            self.assert_status(200, self.xff, DIRECT, self.loopback_key,
                               headers)
            self.assert_status(403, self.fwd, DIRECT, self.cidr_key, headers)

    def test_a_malformed_header_from_a_trusted_proxy_is_refused(self):
        for value in ("203.0.113.7:http", "203.0.113.999", "[203.0.113.7]"):
            doc = self.assert_status(400, self.xff, PROXY, self.cidr_key,
                                     {"X-Forwarded-For": value})
            self.assertEqual(doc["code"], "invalid_request", doc)
            self.assertEqual(doc["message"],
                             "malformed X-Forwarded-For header", doc)
        doc = self.assert_status(400, self.fwd, PROXY, self.cidr_key,
                                 {"Forwarded": 'for="203.0.113.7'})
        self.assertEqual(doc["message"], "malformed Forwarded header", doc)

    def test_rfc_7239_forwarded_when_configured(self):
        self.assert_status(200, self.fwd, PROXY, self.cidr_key,
                           {"Forwarded": 'for="203.0.113.7:4711";proto=https'})
        self.assert_status(403, self.fwd, PROXY, self.cidr_key,
                           {"Forwarded": "for=203.0.113.7, for=198.51.100.1"})
        # The other header is not read by this gateway.
        self.assert_status(403, self.fwd, PROXY, self.cidr_key,
                           {"X-Forwarded-For": "203.0.113.7"})

    def test_the_audit_log_records_the_forwarded_address(self):
        key = self.cidr_key
        self.assert_status(200, self.xff, PROXY, key,
                           {"X-Forwarded-For": "203.0.113.99",
                            "X-Request-Id": "proxied-audit-1"})
        deadline = time.monotonic() + 30 * harness.TIME_SCALE
        while True:
            status, doc = self.get(
                self.xff, DIRECT, self.loopback_key,
                path="/t/%s/api/v1/admin/audit-logs?actorId=%s"
                     % (self.slug, key["id"]))
            self.assertEqual(status, 200, doc)
            addresses = {e["ipAddress"] for e in doc["data"]
                         if e["requestId"] == "proxied-audit-1"}
            if addresses:
                break
            self.assertLess(time.monotonic(), deadline, doc)
            time.sleep(0.2)
        self.assertEqual(addresses, {"203.0.113.99"})


if __name__ == "__main__":
    unittest.main()
