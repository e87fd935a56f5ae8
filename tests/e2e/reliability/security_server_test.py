"""Server-side security findings of the second security review, end to end.

Real lumokeys-server + gateway + MariaDB, driven over REST (the gateway)
and gRPC (Python stubs generated from proto/). Each class is the
regression test of one finding (docs/portal.md, docs/api-keys.md,
docs/admin-api.md, docs/audit.md, docs/operations.md):

  RestrictionsInheritedTest  a restricted key cannot mint or rotate a key
                             that expires later, has wider CIDRs or a looser
                             rate limit (REST and gRPC)
  PortalAdminProtectionTest  admin:users cannot block, unblock or delete a
                             portal admin; the last active one stays
  LoginAccountingTest        120 parallel logins from one address: exactly
                             the per-address limit is processed; throttled
                             attempts are summarised in the audit log
  LoginWorkersTest           logins waiting for password hashing do not hold
                             the RPC workers
  AuditPrivacyTest           failed-login emails normalised / hashed; a key
                             of tenant A tried on tenant B audited in B
                             without A's key id
  SecretFilesTest            secret files readable by others refuse start
"""

import concurrent.futures
import datetime
import json
import os
import subprocess
import sys
import threading
import time
import unittest

import grpc

import harness
from harness import TIME_SCALE, forge, wait_for

PASSWORD = "correct horse battery staple"


class Base(harness.LumoServerTestCase):
    """One server + gateway per class, tenant `cls.slug` with an admin:write
    root key `cls.root`."""

    with_gateway = True
    gateway_request_timeout = "30s"
    SLUG = "sec"

    @classmethod
    def setUpClass(cls):
        cls.stubs = harness.stubs()
        cls.portal_pb2 = cls.stubs.portal_pb2
        cls.portal_grpc = cls.stubs.portal_grpc
        super().setUpClass()
        cls.slug = cls.SLUG
        cls.root = cls.server.create_tenant(cls.slug)
        cls.channel = grpc.insecure_channel(cls.server.address)
        cls.addClassCleanup(cls.channel.close)

    def rest(self, method, path, key, body=None, slug=None):
        status, headers, raw = self.gw.request(
            method, "/t/%s/api/v1/admin%s" % (slug or self.slug, path), body,
            {"Authorization": "Bearer " + key})
        doc = json.loads(raw) if raw else None
        return status, doc

    def new_key(self, key, **fields):
        body = {"name": "k", "scopes": ["admin:read"]}
        body.update(fields)
        status, doc = self.rest("POST", "/api-keys", key, body)
        self.assertEqual(status, 201, doc)
        return doc["data"]

    def audit_rows(self, action, tenant_id=None):
        where = f"action = '{action}'"
        if tenant_id is not None:
            where += f" AND tenant_id = {int(tenant_id)}"
        out = self.server.sql(
            "SELECT tenant_id, actor_id, target_id, suspicious, metadata "
            f"FROM audit_events WHERE {where} ORDER BY id").stdout
        rows = []
        for line in out.splitlines()[1:]:
            tenant, actor, target, suspicious, meta = line.split("\t", 4)
            rows.append({"tenant_id": int(tenant), "actor_id": actor,
                         "target_id": target, "suspicious": suspicious == "1",
                         "metadata": json.loads(meta)})
        return rows

    def tenant_id(self, slug):
        out = self.server.sql(
            f"SELECT id FROM tenants WHERE slug = '{slug}'").stdout
        return int(out.splitlines()[1])

    def portal_login(self, email, password, slug=None, metadata=()):
        stub = self.portal_grpc.PortalServiceStub(self.channel)
        return stub.Login(self.portal_pb2.LoginRequest(
            tenant_slug=slug or self.slug, email=email, password=password),
            metadata=metadata, timeout=120 * TIME_SCALE)


# ---------------------------------------------------------------------------


class RestrictionsInheritedTest(Base):
    SLUG = "restricted"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        expires = (datetime.datetime.now(datetime.timezone.utc)
                   + datetime.timedelta(hours=1)).replace(microsecond=0)
        cls.parent_expiry = expires
        status, _, raw = cls.gw.request(
            "POST", "/t/%s/api/v1/admin/api-keys" % cls.slug,
            {"name": "restricted", "scopes": ["admin:write"],
             "expiresAt": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
             "allowedCidrs": ["127.0.0.0/8"], "rateLimitPerMinute": 600},
            {"Authorization": "Bearer " + cls.root})
        assert status == 201, raw
        cls.parent = json.loads(raw)["data"]["key"]

    def child(self, **override):
        body = {"name": "child", "scopes": ["admin:read"],
                "expiresAt": (self.parent_expiry - datetime.timedelta(
                    minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "allowedCidrs": ["127.0.0.1/32"], "rateLimitPerMinute": 60}
        for k, v in override.items():
            if v is None:
                body.pop(k, None)
            else:
                body[k] = v
        return body

    def assert_refused_rest(self, body, field):
        status, doc = self.rest("POST", "/api-keys", self.parent, body)
        self.assertEqual(status, 403, doc)
        self.assertEqual(doc["code"], "insufficient_scope", doc)
        self.assertTrue(doc["message"].startswith(field + ":"), doc)

    def test_rest_each_dimension(self):
        self.assertEqual(
            self.rest("POST", "/api-keys", self.parent, self.child())[0], 201)
        later = (self.parent_expiry + datetime.timedelta(hours=1)).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        self.assert_refused_rest(self.child(expiresAt=None), "expiresAt")
        self.assert_refused_rest(self.child(expiresAt=later), "expiresAt")
        self.assert_refused_rest(self.child(allowedCidrs=None), "allowedCidrs")
        self.assert_refused_rest(self.child(allowedCidrs=["0.0.0.0/0"]),
                                 "allowedCidrs")
        self.assert_refused_rest(
            self.child(allowedCidrs=["127.0.0.1/32", "10.0.0.0/8"]),
            "allowedCidrs")
        self.assert_refused_rest(self.child(rateLimitPerMinute=None),
                                 "rateLimitPerMinute")
        self.assert_refused_rest(self.child(rateLimitPerMinute=601),
                                 "rateLimitPerMinute")
        # Nothing was created by the refusals.
        status, doc = self.rest("GET", "/api-keys?limit=100&search=child",
                                self.root)
        self.assertEqual(status, 200, doc)
        self.assertEqual(len(doc["data"]), 1, doc)

    def test_rest_rotate_of_a_less_restricted_key(self):
        unrestricted = self.new_key(self.root, name="free")
        status, doc = self.rest(
            "POST", "/api-keys/%s/rotate" % unrestricted["id"], self.parent,
            {})
        self.assertEqual(status, 403, doc)
        self.assertEqual(doc["code"], "insufficient_scope")
        # Its own children it may rotate.
        status, doc = self.rest("POST", "/api-keys", self.parent,
                                self.child(name="mine"))
        self.assertEqual(status, 201, doc)
        status, doc = self.rest("POST",
                                "/api-keys/%s/rotate" % doc["data"]["id"],
                                self.parent, {})
        self.assertEqual(status, 200, doc)

    def test_grpc_each_dimension(self):
        pb = self.stubs.keys_pb2
        stub = self.stubs.keys_grpc.KeyServiceStub(self.channel)
        md = (("authorization", "Bearer " + self.parent),)

        def request(**override):
            body = self.child(**override)
            req = pb.CreateApiKeyRequest(tenant_slug=self.slug,
                                         name=body["name"],
                                         scopes=body["scopes"])
            if "expiresAt" in body:
                req.expires_at.FromJsonString(body["expiresAt"])
            req.allowed_cidrs.extend(body.get("allowedCidrs", []))
            req.rate_limit_per_minute = body.get("rateLimitPerMinute", 0)
            return req

        stub.CreateApiKey(request(name="grpc-ok"), metadata=md, timeout=30)
        for override, field in (({"expiresAt": None}, "expiresAt"),
                                ({"allowedCidrs": None}, "allowedCidrs"),
                                ({"allowedCidrs": ["::/0"]}, "allowedCidrs"),
                                ({"rateLimitPerMinute": None},
                                 "rateLimitPerMinute")):
            with self.assertRaises(grpc.RpcError) as cm:
                stub.CreateApiKey(request(**override), metadata=md,
                                  timeout=30)
            self.assertEqual(cm.exception.code(),
                             grpc.StatusCode.PERMISSION_DENIED, override)
            self.assertTrue(cm.exception.details().startswith(field + ":"),
                            cm.exception.details())
            trailers = dict(cm.exception.trailing_metadata() or ())
            self.assertEqual(trailers.get("lumo-error-code"),
                             "insufficient_scope")


# ---------------------------------------------------------------------------


class PortalAdminProtectionTest(Base):
    SLUG = "admins"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        status, _, raw = cls.gw.request(
            "POST", "/t/%s/api/v1/admin/api-keys" % cls.slug,
            {"name": "users", "scopes": ["admin:users"]},
            {"Authorization": "Bearer " + cls.root})
        assert status == 201, raw
        cls.users_key = json.loads(raw)["data"]["key"]

    def set_admin(self, email):
        r = self.server.cli("tenant", "set-admin", self.slug, "--admin-email",
                            email, "--admin-password-file", "-",
                            input=PASSWORD + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)

    def user(self, email):
        status, doc = self.rest("GET", "/users/" + email, self.root)
        self.assertEqual(status, 200, doc)
        return doc["data"]

    def test_admin_users_scope_cannot_touch_portal_admins(self):
        self.set_admin("first@admins.example")
        self.set_admin("second@admins.example")
        for method, path, body in (
                ("POST", "/users/first@admins.example/block", {}),
                ("PATCH", "/users/first@admins.example", {"blocked": True}),
                ("DELETE", "/users/first@admins.example", None)):
            status, doc = self.rest(method, path, self.users_key, body)
            self.assertEqual(status, 403, (method, path, doc))
            self.assertEqual(doc["code"], "insufficient_scope")
        self.assertFalse(self.user("first@admins.example")["blocked"])
        # admin:write may block; admin:users may not unblock (a suspended
        # admin stays suspended).
        status, doc = self.rest("POST", "/users/second@admins.example/block",
                                self.root, {})
        self.assertEqual(status, 200, doc)
        status, doc = self.rest("POST",
                                "/users/second@admins.example/unblock",
                                self.users_key, {})
        self.assertEqual(status, 403, doc)
        self.assertTrue(self.user("second@admins.example")["blocked"])
        # Ordinary users stay within admin:users.
        status, doc = self.rest("POST", "/users", self.users_key,
                                {"email": "plain@admins.example"})
        self.assertEqual(status, 201, doc)
        status, doc = self.rest("POST", "/users/plain@admins.example/block",
                                self.users_key, {})
        self.assertEqual(status, 200, doc)
        # The last active admin can be neither blocked nor deleted.
        for method, path in (("POST", "/users/first@admins.example/block"),
                             ("DELETE", "/users/first@admins.example")):
            status, doc = self.rest(method, path, self.root,
                                    {} if method == "POST" else None)
            self.assertEqual(status, 400, (method, doc))
            self.assertEqual(doc["code"], "invalid_request")
            self.assertIn("last active portal admin", doc["message"])
        self.assertFalse(self.user("first@admins.example")["blocked"])
        status, doc = self.rest("POST",
                                "/users/second@admins.example/unblock",
                                self.root, {})
        self.assertEqual(status, 200, doc)

    def test_concurrent_blocks_leave_one_admin(self):
        emails = ["c1@admins.example", "c2@admins.example"]
        # Only these two are admins of a fresh tenant.
        slug = "admins-race"
        root = self.server.create_tenant(slug)
        for e in emails:
            r = self.server.cli("tenant", "set-admin", slug, "--admin-email",
                                e, "--admin-password-file", "-",
                                input=PASSWORD + "\n")
            self.assertEqual(r.returncode, 0, r.stderr)
        for _ in range(3):
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                results = list(pool.map(
                    lambda e: self.rest("POST", "/users/%s/block" % e, root,
                                        {}, slug=slug), emails))
            statuses = sorted(s for s, _ in results)
            self.assertEqual(statuses, [200, 400], results)
            blocked = [e for e in emails
                       if self.rest("GET", "/users/" + e, root,
                                    slug=slug)[1]["data"]["blocked"]]
            self.assertEqual(len(blocked), 1)
            self.assertEqual(
                self.rest("POST", "/users/%s/unblock" % blocked[0], root, {},
                          slug=slug)[0], 200)


# ---------------------------------------------------------------------------


class LoginAccountingTest(Base):
    SLUG = "logins"
    # Cheap hashes; the per-address limit of 20 is the default.
    server_args = harness.FAST_PORTAL_HASHING

    def test_parallel_logins_from_one_address_process_exactly_the_limit(self):
        # 120 attempts at made-up accounts, all at once, from 127.0.0.1.
        # An attempt refused because no hashing slot was free ("in
        # progress", Retry-After 1) was not made: it is retried.
        outcomes = []
        lock = threading.Lock()

        def attempt(i):
            while True:
                try:
                    self.portal_login("nobody%d@logins.example" % i,
                                      "wrong password %d" % i)
                    result = "ok"
                except grpc.RpcError as e:
                    if (e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                            and "in progress" in e.details()):
                        time.sleep(0.05)
                        continue
                    result = e.code().name
                with lock:
                    outcomes.append(result)
                return

        with concurrent.futures.ThreadPoolExecutor(120) as pool:
            list(pool.map(attempt, range(120)))
        counts = {o: outcomes.count(o) for o in set(outcomes)}
        print("FIGURE parallel_logins outcomes=%s" % counts, file=sys.stderr)
        self.assertEqual(counts.get("UNAUTHENTICATED", 0), 20, counts)
        self.assertEqual(counts.get("RESOURCE_EXHAUSTED", 0), 100, counts)

        # The 100 throttled attempts are summarised, not one row each: every
        # throttled row stands for `count` attempts, adding up to 100.
        def throttled_rows():
            return [r for r in self.audit_rows("portal.login.failed")
                    if r["metadata"].get("reason") == "throttled"
                    and r["metadata"].get("network") == "127.0.0.1"]
        wait_for(lambda: sum(r["metadata"].get("count", 1)
                             for r in throttled_rows()) >= 100,
                 "the throttled-login summaries", 60, 0.05)
        rows = throttled_rows()
        total = sum(r["metadata"].get("count", 1) for r in rows)
        print("FIGURE throttled_login_rows=%d attempts=%d" % (len(rows),
                                                             total),
              file=sys.stderr)
        self.assertEqual(total, 100)
        self.assertLessEqual(len(rows), 10, rows)
        for r in rows:
            self.assertTrue(r["suspicious"])

    def test_known_address_logs_in_while_the_account_is_locked_elsewhere(self):
        email = "owner@logins.example"
        r = self.server.cli("tenant", "set-admin", self.slug, "--admin-email",
                            email, "--admin-password-file", "-",
                            input=PASSWORD + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        svc = (("x-lumo-service-token", self.server.service_token),)

        def from_ip(ip):
            return svc + (("x-lumo-client-ip", ip),)
        # The admin's usual address.
        self.portal_login(email, PASSWORD, metadata=from_ip("192.0.2.10"))
        # An attacker guesses from one address: after 5 failures that
        # address is refused for this account, even with the right password.
        for i in range(5):
            with self.assertRaises(grpc.RpcError) as cm:
                self.portal_login(email, "guess %d" % i,
                                  metadata=from_ip("203.0.113.5"))
            self.assertEqual(cm.exception.code(),
                             grpc.StatusCode.UNAUTHENTICATED)
        with self.assertRaises(grpc.RpcError) as cm:
            self.portal_login(email, PASSWORD,
                              metadata=from_ip("203.0.113.5"))
        self.assertEqual(cm.exception.code(),
                         grpc.StatusCode.RESOURCE_EXHAUSTED)
        # The admin is not locked out: from the usual address, and from a
        # new one, the right password works at once.
        self.portal_login(email, PASSWORD, metadata=from_ip("192.0.2.10"))
        self.portal_login(email, PASSWORD, metadata=from_ip("198.51.100.20"))


class LoginWorkersTest(Base):
    SLUG = "workers"
    # Two RPC workers; hashing at a cost that takes a while on this machine;
    # the per-address limit out of the way.
    server_args = ("--workers=2", "--portal_scrypt_log_n=16",
                   "--portal_login_max_failures_per_ip=1000")

    def test_logins_waiting_for_hashing_do_not_hold_the_rpc_workers(self):
        answered = []
        lock = threading.Lock()

        def attempt(i):
            try:
                self.portal_login("n%d@workers.example" % i, "wrong pw %d" % i)
            except grpc.RpcError:
                pass
            with lock:
                answered.append(i)

        total = 40
        pool = concurrent.futures.ThreadPoolExecutor(total)
        try:
            futures = [pool.submit(attempt, i) for i in range(total)]
            # Half of them answered: every login has reached the server.
            wait_for(lambda: len(answered) >= total // 2,
                     "half of the logins", 300, 0.05)
            stub = self.stubs.keys_grpc.KeyServiceStub(self.channel)
            stub.ListApiKeys(
                self.stubs.keys_pb2.ListApiKeysRequest(tenant_slug=self.slug),
                metadata=(("authorization", "Bearer " + self.root),),
                timeout=300 * TIME_SCALE)
            with lock:
                pending = total - len(answered)
            print("FIGURE logins_pending_when_admin_call_answered=%d"
                  % pending, file=sys.stderr)
            # The admin call did not queue behind the password checks.
            self.assertGreaterEqual(pending, 5)
            concurrent.futures.wait(futures)
        finally:
            pool.shutdown(wait=True)


# ---------------------------------------------------------------------------


class AuditPrivacyTest(Base):
    SLUG = "privacy"
    server_args = harness.FAST_PORTAL_HASHING

    def test_failed_login_emails_are_normalised_or_hashed(self):
        typed_password = "Hunter2-Summer-Secret!"
        for email in ("  Someone@Privacy.EXAMPLE ", typed_password):
            with self.assertRaises(grpc.RpcError):
                self.portal_login(email, "wrong password")

        def emails():
            return [r["metadata"].get("email")
                    for r in self.audit_rows("portal.login.failed")]
        wait_for(lambda: len(emails()) >= 2, "two failed-login events", 30,
                 0.05)
        seen = emails()
        self.assertIn("someone@privacy.example", seen)
        self.assertNotIn("  Someone@Privacy.EXAMPLE ", seen)
        markers = [e for e in seen if e.startswith("not-an-email:")]
        self.assertEqual(len(markers), 1, seen)
        dump = self.server.sql("SELECT metadata FROM audit_events").stdout
        self.assertNotIn(typed_password.lower(), dump.lower())

    def test_other_tenants_key_is_audited_without_its_id(self):
        self.server.create_tenant("privacy-other")
        other_key = self.new_key(self.root)["key"]  # a key of `privacy`
        key_id = other_key.split("_")[1]
        status, _ = self.rest("GET", "/api-keys", other_key,
                              slug="privacy-other")
        self.assertEqual(status, 401)
        # A wrong secret for the same id (well-formed: right checksum), too.
        self.rest("GET", "/api-keys", forge(key_id), slug="privacy-other")
        b = self.tenant_id("privacy-other")

        def failures():
            return self.audit_rows("auth.api_key.failed", tenant_id=b)
        wait_for(lambda: len(failures()) >= 2,
                 "both failures in the addressed tenant", 30, 0.05)
        for row in failures():
            self.assertNotEqual(row["actor_id"], key_id, row)
            self.assertNotEqual(row["target_id"], key_id, row)
            self.assertNotIn(key_id, json.dumps(row["metadata"]))


# ---------------------------------------------------------------------------


class SecretFilesTest(unittest.TestCase):
    """The server and the gateway refuse secret files that other accounts
    can read, unless --allow_insecure_secret_files."""

    @classmethod
    def setUpClass(cls):
        cls.server = harness.LumoServer()
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def run_briefly(self, args):
        """Runs a binary that should refuse to start; returns (exit code,
        output). One that keeps running is stopped after its start-up."""
        p = subprocess.Popen(args, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        try:
            out, _ = p.communicate(timeout=20 * TIME_SCALE)
            return p.returncode, out
        except subprocess.TimeoutExpired:
            p.terminate()
            out, _ = p.communicate()
            return None, out

    def test_server_refuses_a_world_readable_pepper(self):
        loose = self.server.write_secret("loose.pepper",
                                         open(self.server.pepper_path).read())
        os.chmod(loose, 0o644)
        args = [a if not a.startswith("--pepper_file=")
                else "--pepper_file=" + loose
                for a in self.server.server_command()]
        args.append("--listen=127.0.0.1:%d" % harness.free_loopback_port())
        code, out = self.run_briefly(args)
        self.assertNotEqual(code, 0, out)
        self.assertIsNotNone(code, "the server started:\n" + out)
        self.assertIn("--pepper_file", out)
        self.assertIn("0644", out)
        # The override starts it (and says so).
        code, out = self.run_briefly(args + ["--allow_insecure_secret_files"])
        self.assertIsNone(code, out)
        self.assertIn("0644", out)

    def test_gateway_refuses_a_group_writable_token(self):
        loose = self.server.write_secret("loose.token",
                                         self.server.service_token)
        os.chmod(loose, 0o660)
        binary = harness.built_program("gateway", "lumokeys-gateway")
        code, out = self.run_briefly(
            [binary, "--listen=127.0.0.1:%d" % harness.free_loopback_port(),
             "--upstream=" + self.server.address,
             "--service_token_file=" + loose])
        self.assertIsNotNone(code, "the gateway started:\n" + out)
        self.assertNotEqual(code, 0)
        self.assertIn("--service_token_file", out)
        os.chmod(loose, 0o640)  # group-readable is accepted
        code, out = self.run_briefly(
            [binary, "--listen=127.0.0.1:%d" % harness.free_loopback_port(),
             "--upstream=" + self.server.address,
             "--service_token_file=" + loose])
        self.assertIsNone(code, out)


if __name__ == "__main__":
    unittest.main()
