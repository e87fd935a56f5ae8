"""Hostile input through the real gateway + server + MariaDB (docs/hardening.md,
docs/quality.md §3 "Bad input").

Table-driven: SQL metacharacters in every string field of every write route
(the field list is generated from the /openapi.json the gateway serves, so a
new route is covered without touching this file) and in every string query
parameter of every read route; path tricks (`..%2f`, double encoding, `%00`,
10 kB ids); deep / huge / duplicate-key / invalid UTF-8 JSON; CR/LF, NUL and
huge headers and other malformed HTTP on raw sockets; slow clients.

Every input must get an answer that is not 5xx: a refusal is one of the
documented 4xx statuses with the documented error body (docs/gateway.md),
and a refused input stores nothing (row counts of every table of the
database compared before/after); an accepted one (a SQL metacharacter is
legitimate text in a name) must come back byte-identical. The server and the
gateway must be alive afterwards, and a key of another tenant still works.
The number of hostile inputs tried is printed.
"""
import json
import os
import socket
import sys
import threading
import time
import unittest
import urllib.parse

import harness

# Documented client errors (docs/gateway.md) -> their default error code.
# The server's lumo-error-code may override the code (e.g. 403
# permission_denied), so for server-produced statuses any snake_case code is
# accepted; the gateway's own ones are fixed.
DOCUMENTED_4XX = {400, 401, 403, 404, 405, 408, 409, 413, 414, 415, 429, 431}
GATEWAY_CODES = {405: "method_not_allowed", 408: "request_timeout",
                 413: "payload_too_large", 414: "uri_too_long",
                 415: "unsupported_media_type", 431: "header_too_large"}

SQL_PAYLOADS = [
    "' OR '1'='1",
    "\" OR \"\"=\"",
    "x'; DROP TABLE api_keys; --",
    "') UNION SELECT secret_hash, 1 FROM api_keys -- ",
    "%' AND SLEEP(5) AND '%'='",
    "\\'; SELECT 1; #",
    "admin'/*",
    "1; DELETE FROM tenants",
]

ALL_SCOPES = ["admin:read", "admin:write", "admin:users", "admin:roles",
              "admin:clients", "admin:audit"]
REDIRECT = "https://app.example.com/callback"


def walk_strings(value):
    """Every string inside a decoded JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from walk_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk_strings(v)


class HostileInputTest(harness.LumoServerTestCase):
    with_gateway = True
    tried = 0

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        suffix = "%d-%d" % (os.getpid() % 100000, int(time.time()) % 100000)
        cls.slug = "hostile-" + suffix
        cls.root = cls.server.create_tenant(cls.slug)
        cls.other_slug = "bystander-" + suffix
        cls.other_root = cls.server.create_tenant(cls.other_slug)
        cls.key = cls.must(201, "POST", cls.admin("api-keys"), cls.root,
                           {"name": "everything", "scopes": ALL_SCOPES})["data"]["key"]
        cls.must(200, "PATCH", cls.admin("settings"), cls.root,
                 {"dynamicRegistration": {"enabled": True, "requireApiKey": True}})
        # One resource of each kind, so that {id} routes reach validation.
        cls.ids = {
            "api-keys": cls.must(201, "POST", cls.admin("api-keys"), cls.key,
                                 {"name": "victim", "scopes": ["admin:read"]})["data"]["id"],
            "users": cls.must(201, "POST", cls.admin("users"), cls.key,
                              {"email": "victim@example.com", "name": "Victim"})["data"]["id"],
            "roles": cls.must(201, "POST", cls.admin("roles"), cls.key,
                              {"slug": "victim-role", "name": "Victim"})["data"]["id"],
            "clients": cls.must(201, "POST", cls.admin("clients"), cls.key,
                                {"name": "victim", "redirectUris": [REDIRECT]})["data"]["id"],
        }
        cls.openapi = json.loads(cls.gw.request("GET", "/openapi.json")[2])

    @classmethod
    def tearDownClass(cls):
        print("\nhostile inputs tried: %d" % cls.tried, file=sys.stderr)
        super().tearDownClass()

    # ----- helpers -----------------------------------------------------

    @classmethod
    def admin(cls, rest, slug=None):
        return "/t/%s/api/v1/admin/%s" % (slug or cls.slug, rest)

    @classmethod
    def must(cls, status, method, path, key, body=None):
        got, _, raw = cls.gw.request(method, path, body, {"Authorization": "Bearer " + key})
        if got != status:
            raise harness.HarnessError("%s %s: %d %r" % (method, path, got, raw[:300]))
        return json.loads(raw) if raw else None

    def counts(self):
        """{table: row count} of every table of the test database (one
        query; the table list is read once)."""
        cls = type(self)
        if not getattr(cls, "count_query", None):
            tables = self.server.sql(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = DATABASE() ORDER BY table_name").stdout.split("\n")[1:]
            # Audit tables excluded: every key-authenticated call is audited
            # whatever its result (docs/audit.md, api_key.used and
            # auth.api_key.failed), so refusals add audit events by design;
            # so are the usage rollups that count those events
            # (docs/usage.md), written by the same batches.
            # So are the tables the server's background work keeps: the
            # key-state sweeper's lease, the replicas' registrations and
            # published feed positions (written by timers, whenever they
            # run, never by a request); and the failure throttles' shared
            # bucket of the address, which every failed authentication
            # draws on (limit_buckets, docs/limits.md "Shared throttles").
            background = {"key_state_sweep_lease", "replicas",
                          "feed_positions", "limit_buckets"}
            tables = [t for t in tables if t and not t.startswith("audit_")
                      and not t.startswith("usage_")
                      and t not in background]
            self.assertGreater(len(tables), 5, tables)
            cls.count_query = " UNION ALL ".join(
                "SELECT '%s', COUNT(*) FROM `%s`" % (t, t) for t in tables)
        out = self.server.sql(cls.count_query).stdout.split("\n")[1:]
        return dict(line.split("\t") for line in out if line)

    def assert_alive(self):
        self.assertIsNone(self.server.process.poll(), "lumokeys-server died")
        self.assertIsNone(self.gw.process.poll(), "lumokeys-gateway died")
        self.assertEqual(self.gw.request("GET", "/healthz")[0], 200)

    def assert_refusal(self, what, status, headers, raw, rfc_style=False):
        """`status` is a documented 4xx with the documented error body."""
        self.assertIn(status, DOCUMENTED_4XX, (what, status, raw[:300]))
        self.assertTrue(headers.get("x-request-id"), what)
        doc = json.loads(raw)
        if rfc_style and set(doc) == {"error", "error_description"}:
            # RFC 7591 routes answer the server's errors RFC-style; the
            # gateway's own refusals (413, 415, ...) keep the envelope.
            self.assertRegex(doc["error"], r"^[a-z_]+$", (what, doc))
            self.assertIsInstance(doc["error_description"], str, (what, doc))
            return
        self.assertIs(doc["error"], True, (what, doc))
        self.assertEqual(doc["status"], status, (what, doc))
        self.assertRegex(doc["code"], r"^[a-z_]+$", (what, doc))
        if status in GATEWAY_CODES:
            self.assertEqual(doc["code"], GATEWAY_CODES[status], (what, doc))
        self.assertIsInstance(doc["message"], str, (what, doc))
        if status == 405:
            self.assertTrue(headers.get("allow"), what)

    def send(self, what, method, path, body=None, headers=None, key=None,
             rfc_style=False):
        """One hostile request: not 5xx; a refusal is documented. Returns
        (status, decoded body or None)."""
        type(self).tried += 1
        hdrs = {"Authorization": "Bearer " + (key or self.key)}
        hdrs.update(headers or {})
        status, resp_headers, raw = self.gw.request(method, path, body, hdrs)
        self.assertLess(status, 500, (what, method, path, raw[:300]))
        if status >= 400:
            self.assert_refusal(what, status, resp_headers, raw, rfc_style)
        if raw and not resp_headers.get("content-type", "").startswith(
                "application/json"):
            # A file (the audit export): its text.
            return status, raw.decode("utf-8", "replace")
        return status, (json.loads(raw) if raw else None)

    def write_routes(self):
        """(method, templated path, request body schema, rfc_style) of every
        route with a JSON request body, from the served OpenAPI document.
        Raw-body routes (a `format: binary` body forwarded unparsed, e.g.
        the signed leaked-key reports) are left to their own tests."""
        for path, ops in sorted(self.openapi["paths"].items()):
            for method, op in sorted(ops.items()):
                content = op.get("requestBody", {}).get("content", {})
                if "application/json" not in content:
                    continue
                if content["application/json"]["schema"].get("format") == "binary":
                    continue
                yield (method.upper(), path, content["application/json"]["schema"],
                       "/connect/" in path)

    def resolve(self, schema):
        while "$ref" in schema:
            schema = self.openapi["components"]["schemas"][schema["$ref"].split("/")[-1]]
        return schema

    def string_fields(self, schema, prefix=(), depth=0):
        """Paths (tuples of JSON names) of every string-typed field, and
        whether it is an array of strings; nested objects up to 3 deep."""
        schema = self.resolve(schema)
        for name, prop in sorted(schema.get("properties", {}).items()):
            prop = self.resolve(prop)
            if prop.get("readOnly"):
                continue
            if prop.get("type") == "string":
                yield prefix + (name,), False
            elif prop.get("type") == "array" and self.resolve(prop.get("items", {})).get("type") == "string":
                yield prefix + (name,), True
            elif prop.get("type") == "object" and "properties" in prop and depth < 3:
                yield from self.string_fields(prop, prefix + (name,), depth + 1)

    def concrete(self, template):
        """The templated path with our tenant and an existing id."""
        path = template.replace("{tenant_slug}", self.slug).replace("{tenantSlug}", self.slug)
        parts = path.split("/")
        for i, part in enumerate(parts):
            if part.startswith("{"):
                parts[i] = self.ids.get(parts[i - 1], "AAAAAAAAAAAA")
        return "/".join(parts)

    BASE_BODIES = {
        ("POST", "api-keys"): {"name": "n", "scopes": ["admin:read"]},
        ("POST", "users"): {"email": "n@example.com", "name": "n"},
        ("POST", "roles"): {"slug": "n", "name": "n"},
        ("POST", "clients"): {"name": "n", "redirectUris": [REDIRECT]},
        ("POST", "register"): {"redirect_uris": [REDIRECT]},
    }

    BASE_BODY_KEYS = {(m, k) for m, k in BASE_BODIES}

    @staticmethod
    def lookup(doc, field, rfc_style):
        """The value at `field` in a reply (its `data` unless RFC style), or
        None."""
        value = doc if rfc_style else (doc or {}).get("data")
        for name in field:
            if not isinstance(value, dict):
                return None
            if rfc_style:
                name = "".join("_" + c.lower() if c.isupper() else c for c in name)
            value = value.get(name)
        return value

    def base_body(self, method, template):
        last = template.rstrip("/").split("/")[-1]
        return json.loads(json.dumps(self.BASE_BODIES.get((method, last), {})))

    # ----- SQL metacharacters ----------------------------------------------

    def test_sql_metacharacters_in_every_string_field_of_every_write_route(self):
        routes = list(self.write_routes())
        # The product's own write routes must be among them (the generator
        # really sees the document).
        self.assertGreaterEqual(len(routes), 15, routes)
        fields_tried = 0
        for method, template, schema, rfc_style in routes:
            path = self.concrete(template)
            # Fields bound by the path are overridden by it (the path wins).
            bound = {"tenantSlug", "tenant_slug"} | ({"id"} if "{id}" in template else set())
            fields = [f for f in self.string_fields(schema) if f[0][0] not in bound]
            for field, is_array in fields:
                fields_tried += 1
                before = self.counts()
                for payload in SQL_PAYLOADS:
                    with self.subTest(route=method + " " + template, field=".".join(field),
                                      payload=payload):
                        body = self.base_body(method, template)
                        target = body
                        for name in field[:-1]:
                            target = target.setdefault(name, {})
                        target[field[-1]] = [payload] if is_array else payload
                        status, doc = self.send("sql", method, path, body, rfc_style=rfc_style)
                        after = self.counts()
                        if status >= 400:
                            self.assertEqual(after, before, (method, path, body))
                        before = after  # a success may store legitimately
                        echoed = self.lookup(doc, field, rfc_style)
                        if status < 400 and (method, template.rsplit("/", 1)[-1]) in \
                                self.BASE_BODY_KEYS and echoed is not None:
                            # Created: stored as data, returned verbatim (an
                            # OAuth `scope` is a set of space-separated
                            # tokens, normalised as a set).
                            if field[-1] == "scope":
                                self.assertEqual(set(echoed.split()), set(payload.split()), doc)
                            else:
                                self.assertEqual(echoed, [payload] if is_array else payload,
                                                 (method, path, doc))
        self.assertGreater(fields_tried, 30)
        self.assert_alive()
        # The bystander tenant is untouched and its key still works.
        self.must(200, "GET", self.admin("api-keys", self.other_slug), self.other_root)

    def test_sql_metacharacters_in_query_parameters_and_ids(self):
        for path, ops in sorted(self.openapi["paths"].items()):
            op = ops.get("get")
            if op is None or "{" in path.replace("{tenant_slug}", ""):
                continue
            for param in op.get("parameters", []):
                if param.get("in") != "query" or self.resolve(param.get("schema", {})).get("type") != "string":
                    continue
                for payload in SQL_PAYLOADS:
                    with self.subTest(path=path, param=param["name"], payload=payload):
                        url = self.concrete(path) + "?" + param["name"] + "=" + \
                            urllib_quote(payload)
                        status, doc = self.send("sql query", "GET", url)
                        if status == 200 and isinstance(doc, dict) and isinstance(doc.get("data"), list):
                            # Never another tenant's rows: the bystander's
                            # resources carry its slug nowhere in ours.
                            self.assertNotIn(self.other_slug, json.dumps(doc))
                        elif status == 200 and isinstance(doc, str):
                            self.assertNotIn(self.other_slug, doc)
        before = self.counts()
        for resource in ("api-keys", "users", "roles", "clients"):
            for payload in SQL_PAYLOADS:
                with self.subTest(resource=resource, payload=payload):
                    base = self.admin(resource) + "/" + urllib_quote(payload)
                    self.send("sql id", "GET", base)
                    self.send("sql id", "DELETE", base)
        self.assertEqual(self.counts(), before)
        self.assert_alive()

    # ----- path tricks -------------------------------------------------------

    def test_path_tricks_are_refused(self):
        kid = self.ids["api-keys"]
        tricks = {
            "dotdot %2f": "..%2f..%2fusers",
            "dotdot %2F upper": "..%2F..%2F..%2Fopenapi.json",
            "dot segments": "%2e%2e",
            "mixed dots": ".%2e",
            "double encoding": "%252e%252e%252fusers",
            "double encoded id": "%25" + kid,
            "nul": "%00",
            "nul in id": kid + "%00",
            "nul then dotdot": "%00..%2f",
            "overlong utf-8 dot": "%c0%ae%c0%ae",
            "invalid utf-8": "%ff%fe",
            "backslash": "..%5c..%5cusers",
            "bad escape": "%zz",
            "truncated escape": "%2",
            "encoded slash in id": kid + "%2frotate",
            "10 kB id": "A" * 10240,
            "7 kB id": "B" * 7000,
            "unicode id": "%e2%80%ae" + kid,
        }
        before = self.counts()
        for name, segment in tricks.items():
            for method, suffix in (("GET", ""), ("DELETE", ""), ("POST", "/rotate"),
                                   ("POST", "/revoke")):
                with self.subTest(trick=name, method=method, suffix=suffix):
                    status, _ = self.send(name, method,
                                          self.admin("api-keys/") + segment + suffix,
                                          body={} if method == "POST" else None)
                    self.assertIn(status, (400, 404, 414), name)
        # Traversal in the tenant segment and around it.
        for path in ("/t/%2e%2e/api/v1/admin/api-keys", "/t/..%2f/api/v1/admin/api-keys",
                     "/t/%s/api/v1/admin/../admin/api-keys" % self.slug,
                     "/t/%s/api/v1/admin//api-keys" % self.slug,
                     "/t/%s%%00/api/v1/admin/api-keys" % self.slug,
                     "/t/%s/api/v1/admin/api-keys/%s/../../users" % (self.slug, kid)):
            with self.subTest(path=path):
                status, _ = self.send("tenant path", "GET", path)
                self.assertIn(status, (400, 401, 404), path)
        self.assertEqual(self.counts(), before)
        self.assert_alive()

    # ----- hostile JSON ----------------------------------------------------

    def test_hostile_json_bodies_on_every_write_route(self):
        bodies = {
            "deep arrays": ("[" * 10000 + "]" * 10000).encode(),
            "deep objects": ('{"a":' * 5000 + "1" + "}" * 5000).encode(),
            "33 levels": ('{"name":' + "[" * 33 + "]" * 33 + "}").encode(),
            "duplicate keys": b'{"name":"a","name":"b"}',
            "duplicate keys escaped": b'{"name":"a","n\\u0061me":"b"}',
            "invalid utf-8": b'{"name":"\xff\xfe"}',
            "overlong utf-8": b'{"name":"\xc0\xaf"}',
            "utf-8 surrogate": b'{"name":"\xed\xa0\x80"}',
            "lone surrogate escape": b'{"name":"\\ud800"}',
            "nul escape": b'{"name":"a\\u0000b"}',
            "raw control char": b'{"name":"a\x01b"}',
            "truncated": b'{"name":',
            "trailing garbage": b'{"name":"x"} {}',
            "not an object": b'"just a string"',
            "array top": b"[]",
            "NaN": b'{"name":NaN}',
            "single quotes": b"{'name':'x'}",
            "comment": b'{"name":"x" /* hi */}',
            "bom": b'\xef\xbb\xbf{"name":"x"}',
            "huge number": b'{"name":1' + b"0" * 5000 + b"}",
            "many unknown keys": ("{" + ",".join('"k%d":1' % i for i in range(30000)) + "}").encode(),
            "huge string": b'{"name":"' + b"x" * (900 * 1024) + b'"}',
            "over 1 MiB": b'{"name":"' + b"x" * (1100 * 1024) + b'"}',
        }
        for method, template, _, rfc_style in self.write_routes():
            path = self.concrete(template)
            before = self.counts()
            for name, body in bodies.items():
                with self.subTest(route=method + " " + template, body=name):
                    status, _ = self.send(name, method, path, body,
                                          {"Content-Type": "application/json"},
                                          rfc_style=rfc_style)
                    self.assertGreaterEqual(status, 400, name)
                    if name == "over 1 MiB":
                        self.assertEqual(status, 413)
            with self.subTest(route=method + " " + template, body="wrong content type"):
                status, _ = self.send("content type", method, path,
                                      json.dumps(self.base_body(method, template)),
                                      {"Content-Type": "text/plain"}, rfc_style=rfc_style)
                self.assertEqual(status, 415)
            self.assertEqual(self.counts(), before, template)
        self.assert_alive()

    # ----- malformed HTTP on raw sockets -------------------------------------

    def raw_status(self, data, read_timeout=None):
        reply = self.gw.raw(data, read_timeout)
        return reply.split(b"\r\n", 1)[0], reply

    def test_malformed_http_gets_4xx(self):
        base = self.admin("api-keys").encode()
        auth = b"Authorization: Bearer " + self.key.encode() + b"\r\n"
        body = b'{"name":"smuggled","scopes":["admin:read"]}'
        post = b"POST " + base + b" HTTP/1.1\r\nHost: x\r\n" + auth + \
            b"Content-Type: application/json\r\n"
        cases = {
            "cr in value": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
            "lf in value": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\nb\r\n\r\n",
            "crlf injection into request id":
                b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\r\nSet-Cookie: x=1\r\n\r\n"
                .replace(b"a\r\nSet", b"a\rSet"),
            "bare lf lines": b"GET /healthz HTTP/1.1\nHost: x\n\n",
            "nul in value": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
            "nul in target": b"GET /healthz\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
            "obs-fold": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
            "space before colon": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A : a\r\n\r\n",
            "huge header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n",
            "many headers": b"GET /healthz HTTP/1.1\r\nHost: x\r\n" +
                b"".join(b"X-%d: a\r\n" % i for i in range(300)) + b"\r\n",
            "huge target": b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            "absolute form": b"GET http://evil/healthz HTTP/1.1\r\nHost: x\r\n\r\n",
            "no host": b"GET /healthz HTTP/1.1\r\n\r\n",
            "two hosts": b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            # 505 is the documented answer here (gateway/http/wire.h).
            "http/2 version": b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n",
            "garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
            "cl+te smuggling": post + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(body) + body,
            "two content-lengths": post + b"Content-Length: %d\r\nContent-Length: 5\r\n\r\n" % len(body) + body,
            "signed content-length": post + b"Content-Length: +%d\r\n\r\n" % len(body) + body,
            "te not chunked": post + b"Transfer-Encoding: gzip\r\n\r\n" + body,
            "te chunked twice": post + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
            "bad chunk size": post + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + body + b"\r\n0\r\n\r\n",
            "content-length over limit": post + b"Content-Length: 99999999999\r\n\r\n",
        }
        before = self.counts()
        for name, data in cases.items():
            with self.subTest(case=name):
                type(self).tried += 1
                status_line, reply = self.raw_status(data)
                expected = {505} if name == "http/2 version" else DOCUMENTED_4XX
                self.assertRegex(status_line, rb"^HTTP/1\.1 \d\d\d ", (name, reply[:300]))
                self.assertIn(int(status_line.split()[1]), expected, (name, reply[:300]))
                self.assertNotIn(b"Set-Cookie", reply, name)
        self.assertEqual(self.counts(), before)
        self.assert_alive()

    # ----- header values gRPC refuses -----------------------------------------

    # Bytes the HTTP layer accepts inside a field value (RFC 9110: HTAB and
    # obs-text) but gRPC refuses in metadata; the C++ library used to abort
    # the gateway on them.
    GRPC_REFUSED = {
        "utf-8": "caf\u00e9".encode(),
        "tab": b"a\tb",
        "latin-1": b"\xe9",
        "0x80": b"\x80",
        "0xff": b"\xff",
    }

    def raw_get(self, header_lines):
        return (b"GET " + self.admin("api-keys").encode() +
                b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" +
                b"".join(line + b"\r\n" for line in header_lines) + b"\r\n")

    def test_header_values_grpc_refuses_never_kill_the_gateway(self):
        """Every request header the gateway forwards as metadata, with each
        kind of byte gRPC refuses: descriptive ones are escaped (200),
        credentials and the CSRF token refused with the documented 400 body
        naming the header, the rest ignored as before; the gateway lives."""
        auth = b"Authorization: Bearer " + self.key.encode()
        before = self.counts()
        for kind, bad in self.GRPC_REFUSED.items():
            cases = {
                "user-agent": ([auth, b"User-Agent: app/" + bad], 200, None),
                "authorization": ([auth + bad], 400, "Authorization"),
                "x-api-key": ([b"X-API-Key: " + self.key.encode() + bad], 400,
                              "X-API-Key"),
                "csrf header with a session cookie":
                    ([b"Cookie: lumo_session=abc123",
                      b"X-CSRF-Token: tok" + bad], 400, "X-CSRF-Token"),
                # Not a cookie token: no session, so no credential at all.
                "session cookie": ([b"Cookie: lumo_session=abc" + bad], 401,
                                   None),
                "x-request-id": ([auth, b"X-Request-Id: id" + bad], 200, None),
                "x-forwarded-for": ([auth, b"X-Forwarded-For: 203.0.113.7" + bad],
                                    200, None),
                "forwarded": ([auth, b"Forwarded: for=" + bad], 200, None),
            }
            for name, (lines, want, header) in cases.items():
                with self.subTest(header=name, bytes=kind):
                    type(self).tried += 1
                    status_line, reply = self.raw_status(self.raw_get(lines))
                    self.assertRegex(status_line, rb"^HTTP/1\.1 \d\d\d ",
                                     (name, kind, reply[:300]))
                    status = int(status_line.split()[1])
                    self.assertEqual(status, want, (name, kind, reply[:300]))
                    head, _, body = reply.partition(b"\r\n\r\n")
                    if status >= 400:
                        doc = json.loads(body)
                        self.assertEqual(
                            (doc["error"], doc["status"]), (True, status), doc)
                        if header is not None:
                            self.assertEqual(doc["code"], "invalid_request")
                            self.assertIn(header, doc["message"])
                    # Alive, and still serving.
                    self.assertIsNone(self.gw.process.poll(),
                                      "lumokeys-gateway died")
                    self.assertEqual(self.gw.request("GET", "/livez")[0], 200)
        self.assertEqual(self.counts(), before)
        self.assert_alive()

    def test_oversized_credential_headers_are_431(self):
        """An Authorization or X-API-Key the server's gRPC would refuse as
        too large (its 8 KiB metadata limit) is the gateway's own 431, not
        the server's RESOURCE_EXHAUSTED read as 429 rate_limit_exceeded."""
        for header in ("Authorization", "X-API-Key"):
            with self.subTest(header=header):
                type(self).tried += 1
                status, headers, raw = self.gw.request(
                    "GET", self.admin("api-keys"),
                    headers={header: "Bearer " + "a" * 9000})
                self.assertEqual(status, 431, raw[:300])
                self.assert_refusal(header, status, headers, raw)
        self.assert_alive()

    def test_non_ascii_user_agent_reaches_the_audit_log_escaped(self):
        """A real client's non-ASCII app name is not refused: the key is
        created, and the audit event carries the agent with the bytes gRPC
        refuses written as %XX (docs/gateway.md)."""
        body = json.dumps({"name": "ua", "scopes": ["admin:read"]}).encode()
        request = (b"POST " + self.admin("api-keys").encode() +
                   b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                   b"Authorization: Bearer " + self.key.encode() + b"\r\n"
                   b"User-Agent: caf\xc3\xa9-app/1.0\t(Linux)\r\n"
                   b"Content-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(body) + body)
        status_line, reply = self.raw_status(request)
        self.assertIn(b" 201 ", status_line, reply[:300])
        key_id = json.loads(reply.partition(b"\r\n\r\n")[2])["data"]["id"]
        deadline = time.monotonic() + 30 * harness.TIME_SCALE
        while True:
            status, _, raw = self.gw.request(
                "GET", self.admin("audit-logs?action=api_key.created&targetId="
                                  + key_id),
                headers={"Authorization": "Bearer " + self.key})
            self.assertEqual(status, 200, raw[:300])
            events = json.loads(raw)["data"]
            if events:
                break
            self.assertLess(time.monotonic(), deadline, "no audit event")
            time.sleep(0.2)
        self.assertEqual(events[0]["userAgent"], "caf%C3%A9-app/1.0%09(Linux)")

    # ----- slow clients ------------------------------------------------------

    def test_slow_clients_time_out_and_do_not_block_others(self):
        """Slowloris heads and stalled bodies get 408 (the harness runs the
        gateway with --request_timeout=3s, scaled by TIME_SCALE) while
        normal requests go on."""
        results = []
        connected = []

        def slow_head(trickle):
            type(self).tried += 1
            try:
                with socket.create_connection(("127.0.0.1", self.gw.port), timeout=15) as s:
                    start = time.monotonic()
                    reply = b""
                    s.settimeout(0.5)
                    for i, b in enumerate(trickle):
                        try:
                            s.sendall(bytes([b]))
                        except OSError:
                            break
                        if i == 0:
                            connected.append(1)
                        try:
                            chunk = s.recv(4096)
                            if chunk:
                                reply += chunk
                                break
                        except socket.timeout:
                            pass
                        if time.monotonic() - start > 12 * harness.TIME_SCALE:
                            break
                    s.settimeout(10)
                    while not reply.endswith(b"}"):
                        try:
                            chunk = s.recv(4096)
                        except OSError:
                            break
                        if not chunk:
                            break
                        reply += chunk
                    results.append((reply, time.monotonic() - start))
            except OSError as e:
                results.append((repr(e).encode(), 0))

        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
        stalled_body = b"POST " + self.admin("api-keys").encode() + \
            b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"na"
        threads = [threading.Thread(target=slow_head, args=(head,)) for _ in range(10)]
        threads += [threading.Thread(target=slow_head, args=(stalled_body + b" " * 200,))
                    for _ in range(2)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20 * harness.TIME_SCALE
        while len(connected) < len(threads) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(len(connected), len(threads))
        # Meanwhile an ordinary client is served while the slow ones are
        # still held (none has had its 408 yet).
        self.assertEqual(self.gw.request("GET", "/healthz")[0], 200)
        self.assertEqual(results, [], "served only after the slow clients")
        for t in threads:
            t.join(30 * harness.TIME_SCALE)
        self.assertEqual(len(results), len(threads))
        for reply, elapsed in results:
            self.assertTrue(reply.startswith(b"HTTP/1.1 408 "), reply[:200])
            self.assertIn(b'"request_timeout"', reply)
            self.assertLess(elapsed, 12 * harness.TIME_SCALE)
        self.assert_alive()


def urllib_quote(text):
    return urllib.parse.quote(text, safe="")


if __name__ == "__main__":
    unittest.main()
