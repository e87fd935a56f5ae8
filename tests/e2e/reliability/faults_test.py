"""Faults against real processes (docs/quality.md §2).

Each test class runs its own MariaDB (stopped, killed and restarted at
will) and real lumokeys-server processes, and drives them over gRPC:

  * database stopped mid-load: verify fails closed (false accepts counted,
    must be 0), mutations UNAVAILABLE within their deadline, recovery
    without a restart, threads and database connections back to baseline;
  * kill -9 of the server during bursts of create/rotate/revoke, and
    kill -9 of MariaDB during the same bursts: every acknowledged operation
    present, unacknowledged ones complete or absent, no live key without a
    usable secret, audit events matching the key state 1:1;
  * a slow database (a lock held on the key row by another session): the
    caller gets DEADLINE_EXCEEDED within its deadline and the pool is not
    exhausted (other calls are served meanwhile).

Every test prints its figures (FIGURE lines), collected in
docs/reliability.md.
"""

import random
import sys
import threading
import time
import unittest
import urllib.parse

import grpc

import harness
from harness import figure, key_md, wait_for

STATUS = grpc.StatusCode


class FaultsTestBase(unittest.TestCase):
    """One private MariaDB per class; a fresh database + server per test."""

    @classmethod
    def setUpClass(cls):
        cls.db = harness.PrivateMariaDb()
        cls.addClassCleanup(cls.db.destroy)
        cls.db.start()
        cls.admin_dsn = cls.db.admin_dsn()
        cls.sql = harness.MysqlDsn(cls.admin_dsn)
        cls.stubs = harness.stubs()

    def setUp(self):
        self.database = None
        self.server = None
        self.channels = []

    def tearDown(self):
        for ch in self.channels:
            ch.close()
        if self.server is not None:
            failed = any(e is not None for _, e in
                         getattr(self._outcome, "errors", []))
            log = self.server.server_log()
            self.server.stop()
            if failed:
                sys.stderr.write(log)

    def start_server(self, *extra):
        self.server = harness.LumoServer(extra_args=extra,
                                         mysql_dsn=self.admin_dsn)
        self.server.start()
        self.database = self.server.database
        return self.server

    def channel(self):
        ch = grpc.insecure_channel(self.server.address)
        self.channels.append(ch)
        return ch

    def keys_stub(self, channel=None):
        return self.stubs.keys_grpc.KeyServiceStub(channel or self.channel())

    def auth_stub(self, channel=None):
        return self.stubs.auth_grpc.AuthServiceStub(channel or self.channel())

    # The server's second pool: the replica change-feed tailer's own
    # connections (MysqlChangeFeedStore, docs/replication.md), on top of
    # --db_pool_size while --replication is on (the default).
    FEED_POOL_SIZE = 2

    def app_connections(self):
        """Sessions the server holds on its database (server side view)."""
        rows = self.sql.rows(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE "
            "DB = '%s' AND ID <> CONNECTION_ID()" % self.database)
        return int(rows[0][0])



class DatabaseDownTest(FaultsTestBase):

    def test_database_stopped_mid_load_fails_closed_and_recovers(self):
        pool = 6
        self.start_server("--db_pool_size=%d" % pool, "--verify_cache_ttl=2s")
        ch = self.channel()
        keys, auth = self.keys_stub(ch), self.auth_stub(ch)
        root = self.server.create_tenant("down")
        pb = self.stubs.keys_pb2

        def create(name):
            return keys.CreateApiKey(
                pb.CreateApiKeyRequest(tenant_slug="down", name=name,
                                       scopes=["admin:read"]),
                metadata=key_md(root), timeout=10)

        valid = [create("v%d" % i).key for i in range(20)]
        revoked = []
        for i in range(10):
            k = create("r%d" % i)
            keys.RevokeApiKey(pb.RevokeApiKeyRequest(tenant_slug="down",
                                                     id=k.id),
                              metadata=key_md(root), timeout=10)
            revoked.append(k.key)
        rotated_away = []
        for i in range(10):
            k = create("o%d" % i)
            keys.RotateApiKey(pb.RotateApiKeyRequest(tenant_slug="down",
                                                     id=k.id),
                              metadata=key_md(root), timeout=10)
            rotated_away.append(k.key)
        # Well formed, right checksum, never issued: the id of a valid key
        # with another secret is what a guesser sends.
        invalid = revoked + rotated_away
        apb = self.stubs.auth_pb2

        def verify(key):
            return auth.VerifyApiKey(apb.VerifyApiKeyRequest(key=key),
                                     metadata=self.server.service_md(), timeout=5)

        for k in valid[:10] + invalid:
            verify(k)
        # Baseline with the pool warmed up and the load's threads known.
        time.sleep(0.5)
        base_threads = self.server.threads()
        base_conns = self.app_connections()

        stop = threading.Event()
        lock = threading.Lock()
        counts = dict(verify_ok=0, verify_unavailable=0, false_accepts=0,
                      false_rejects=0, other=0, mutations_ok=0,
                      mutations_unavailable=0, mutations_deadline=0,
                      mutations_late=0,
                      mutations_other=0)
        other_codes = []
        max_mutation_s = [0.0]

        def bump(name):
            with lock:
                counts[name] += 1

        def verifier_loop(seed):
            rng = random.Random(seed)
            while not stop.is_set():
                good = rng.random() < 0.5
                key = rng.choice(valid if good else invalid)
                try:
                    r = verify(key)
                except grpc.RpcError as e:
                    if e.code() == STATUS.UNAVAILABLE:
                        bump("verify_unavailable")
                    else:
                        bump("other")
                        with lock:
                            other_codes.append(e.code().name)
                    continue
                if r.valid and not good:
                    bump("false_accepts")
                elif not r.valid and good:
                    bump("false_rejects")
                else:
                    bump("verify_ok")

        def mutator_loop():
            deadline_s = 3.0
            i = 0
            while not stop.is_set():
                i += 1
                start = time.monotonic()
                try:
                    keys.CreateApiKey(
                        pb.CreateApiKeyRequest(tenant_slug="down",
                                               name="m%d" % i,
                                               scopes=["admin:read"]),
                        metadata=key_md(root), timeout=deadline_s)
                    bump("mutations_ok")
                except grpc.RpcError as e:
                    took = time.monotonic() - start
                    with lock:
                        max_mutation_s[0] = max(max_mutation_s[0], took)
                    if took > deadline_s + 0.5:
                        bump("mutations_late")
                    if e.code() == STATUS.UNAVAILABLE:
                        bump("mutations_unavailable")
                    elif e.code() == STATUS.DEADLINE_EXCEEDED:
                        # A statement that was running when the database
                        # went away ends at the call's deadline (answered
                        # by the server, in time: see mutations_late).
                        bump("mutations_deadline")
                    else:
                        bump("mutations_other")
                        with lock:
                            other_codes.append(e.code().name)
                time.sleep(0.05)

        workers = [threading.Thread(target=verifier_loop, args=(s,))
                   for s in range(6)] + [threading.Thread(target=mutator_loop)]
        for w in workers:
            w.start()
        try:
            time.sleep(2)
            self.db.stop()
            down_at = time.monotonic()
            time.sleep(5)
            self.db.start()
            up_at = time.monotonic()
            # Recovery: an uncached valid key verifies again, a mutation
            # succeeds, with the server never restarted.
            fresh_key = valid[15]

            def recovered():
                try:
                    ok = verify(fresh_key).valid
                    create("after")
                    return ok
                except grpc.RpcError:
                    return False
            wait_for(recovered, "recovery after the restart", 30, 0.2)
            recovered_s = time.monotonic() - up_at
            time.sleep(2)
        finally:
            stop.set()
            for w in workers:
                w.join()
        self.assertIsNone(self.server.process.poll(), "server exited")

        # Back to baseline once the load is over.
        time.sleep(2)
        threads = self.server.threads()
        conns = self.app_connections()
        figure("db_stopped_mid_load", outage_s=round(up_at - down_at, 1),
               recovered_after_restart_s=round(recovered_s, 2),
               max_failed_mutation_s=round(max_mutation_s[0], 2),
               threads_before=base_threads, threads_after=threads,
               db_conns_before=base_conns, db_conns_after=conns,
               pool_size=pool, other_codes=sorted(set(other_codes)),
               **counts)
        self.assertEqual(counts["false_accepts"], 0)
        self.assertEqual(counts["false_rejects"], 0)
        self.assertEqual(counts["other"], 0)
        self.assertGreater(counts["verify_unavailable"], 0,
                           "the outage was not observed")
        self.assertGreater(counts["mutations_unavailable"], 0)
        self.assertEqual(counts["mutations_other"], 0)
        self.assertEqual(counts["mutations_late"], 0)
        self.assertLessEqual(conns, pool + self.FEED_POOL_SIZE)
        self.assertLessEqual(threads, base_threads + 2)


class DatabaseErrorTextTest(FaultsTestBase):
    """Database driver text (account and host names, error numbers) never
    reaches a client: the call gets a fixed message, the server log keeps
    the details under the request id."""

    def test_database_down_answers_without_driver_details(self):
        # One replica: its verify cache stays trusted while the database is
        # away (with replication it would stop answering from it).
        server = self.start_server("--replication=false")
        ops = self.stubs.ops_grpc.OperatorServiceStub(self.channel())
        req = self.stubs.ops_pb2.CreateTenantRequest(slug="quiet", name="q")
        req.initial_key.name = "root"
        req.initial_key.scopes.append("admin:write")
        root = ops.CreateTenant(req, metadata=server.operator_md(),
                                timeout=30).initial_key.key
        keys = self.keys_stub()
        pb = self.stubs.keys_pb2
        # Cached: the key verifies without the database, so the calls below
        # reach the store and fail there.
        keys.ListApiKeys(pb.ListApiKeysRequest(tenant_slug="quiet"),
                         metadata=key_md(root), timeout=30)
        dsn = urllib.parse.urlsplit(self.admin_dsn)
        self.db.stop()
        try:
            details = []
            for i in range(3):
                with self.assertRaises(grpc.RpcError) as cm:
                    keys.CreateApiKey(
                        pb.CreateApiKeyRequest(tenant_slug="quiet",
                                               name="k%d" % i,
                                               scopes=["admin:read"]),
                        metadata=key_md(root), timeout=10)
                self.assertIn(cm.exception.code(),
                              (STATUS.UNAVAILABLE, STATUS.DEADLINE_EXCEEDED))
                details.append(cm.exception.details())
            figure("database_down_client_message", message=details[-1])
            for text in details:
                for secret in (dsn.username, str(dsn.port), dsn.hostname,
                               "mysql", "MariaDB", "connect to"):
                    self.assertNotIn(secret, text)
            # The operator still learns what happened.
            self.assertIn("request failed", server.server_log())
        finally:
            self.db.start()


class BurstChecker:
    """Runs bursts of create/rotate/revoke on one tenant and checks the
    database against what was acknowledged."""

    def __init__(self, test, slug, root):
        self.t = test
        self.slug = slug
        self.root = root
        self.pb = test.stubs.keys_pb2
        self.lock = threading.Lock()
        # Acknowledged: key id -> list of (version, full key or None, op).
        self.acked = {}
        self.acked_ops = 0
        self.unacked = []  # (op, key id or None)
        self.codes = {}

    def seed(self, stub, n):
        for i in range(n):
            k = stub.CreateApiKey(
                self.pb.CreateApiKeyRequest(tenant_slug=self.slug,
                                            name="seed%d" % i,
                                            scopes=["admin:read"]),
                metadata=key_md(self.root), timeout=10)
            self.acked[k.id] = [(k.version, k.key, "create")]
            self.acked_ops += 1

    def run(self, channel_factory, stop, threads=6):
        def loop(seed):
            rng = random.Random(seed)
            stub = self.t.keys_stub(channel_factory())
            n = 0
            while not stop.is_set():
                n += 1
                with self.lock:
                    ids = list(self.acked)
                r = rng.random()
                op = "create" if r < 0.4 or not ids else (
                    "rotate" if r < 0.85 else "revoke")
                kid = None if op == "create" else rng.choice(ids)
                try:
                    if op == "create":
                        k = stub.CreateApiKey(self.pb.CreateApiKeyRequest(
                            tenant_slug=self.slug, name="b%d-%d" % (seed, n),
                            scopes=["admin:read"]),
                            metadata=key_md(self.root), timeout=5)
                        secret = k.key
                    elif op == "rotate":
                        k = stub.RotateApiKey(self.pb.RotateApiKeyRequest(
                            tenant_slug=self.slug, id=kid),
                            metadata=key_md(self.root), timeout=5)
                        secret = k.key
                    else:
                        k = stub.RevokeApiKey(self.pb.RevokeApiKeyRequest(
                            tenant_slug=self.slug, id=kid),
                            metadata=key_md(self.root), timeout=5)
                        secret = None
                except grpc.RpcError as e:
                    with self.lock:
                        self.codes[e.code().name] = \
                            self.codes.get(e.code().name, 0) + 1
                        if e.code() in (STATUS.UNAVAILABLE,
                                        STATUS.DEADLINE_EXCEEDED,
                                        STATUS.CANCELLED,
                                        STATUS.UNKNOWN):
                            # Outcome unknown to the client.
                            self.unacked.append((op, kid))
                    time.sleep(0.05)
                    continue
                with self.lock:
                    self.acked.setdefault(k.id, []).append(
                        (k.version, secret, op))
                    self.acked_ops += 1

        workers = [threading.Thread(target=loop, args=(s,))
                   for s in range(threads)]
        for w in workers:
            w.start()
        return workers

    def check(self, verify):
        """Compares the database with the acknowledged history; returns the
        figures. `verify(full_key) -> VerifyApiKeyResponse`."""
        t, db = self.t, self.t.database
        rows = t.sql.rows(
            "SELECT k.id, k.version, k.revoked, LENGTH(k.digest), "
            "k.pepper_version, k.deleted_at IS NULL FROM api_keys k "
            "JOIN tenants t ON t.id = k.tenant_id WHERE t.slug = '%s'"
            % self.slug, db)
        state = {r[0]: dict(version=int(r[1]), revoked=r[2] == "1",
                            digest_len=int(r[3]), live=r[5] == "1")
                 for r in rows}
        # Re-announcements of a change (docs/replication.md) are marked
        # and are not changes of their own; void rows close the feed
        # position of an attempt that did not commit (a writer's stream,
        # "On a Galera cluster") and name no key.
        changes = {}
        for kid, ctype, ver in t.sql.rows(
                "SELECT key_id, change_type, key_version FROM key_changes"
                " WHERE announcement = 0 AND change_type <> 'void'",
                db):
            changes.setdefault(kid, []).append((ctype, int(ver)))
        audit = {}
        for kid, action in t.sql.rows(
                "SELECT target_id, action FROM audit_events WHERE action IN "
                "('api_key.created','api_key.rotated','api_key.revoked',"
                "'api_key.deleted')", db):
            audit.setdefault(kid, []).append(action.split(".")[1])

        missing = []
        for kid, history in self.acked.items():
            if kid not in state:
                missing.append(kid)
                continue
            for version, _, op in history:
                if state[kid]["version"] < version:
                    missing.append((kid, version, op))
        # Every acknowledged secret of a key still at that version works.
        dead_acked_secret = []
        for kid, history in self.acked.items():
            version, secret, op = max(history, key=lambda h: h[0])
            if kid in state and secret is not None and \
                    state[kid]["version"] == version and \
                    not state[kid]["revoked"]:
                if not verify(secret).valid:
                    dead_acked_secret.append(kid)
        # Versions: created at 1, each change +1, no gap, no duplicate; the
        # audit log has exactly one event per change.
        inconsistent = []
        for kid, st in state.items():
            ch = sorted(changes.get(kid, []), key=lambda c: c[1])
            versions = [v for _, v in ch]
            if versions != list(range(1, st["version"] + 1)) or \
                    ch[0][0] != "created":
                inconsistent.append((kid, "changes", ch, st["version"]))
            expect = sorted({"created": "created", "rotated": "rotated",
                             "revoked": "revoked",
                             "deleted": "deleted"}[c] for c, _ in ch)
            if sorted(audit.get(kid, [])) != expect:
                inconsistent.append((kid, "audit", audit.get(kid), expect))
            revoked_changes = [c for c, _ in ch if c == "revoked"]
            if st["revoked"] != bool(revoked_changes):
                inconsistent.append((kid, "revoked flag", st, ch))
            if not st["revoked"] and st["digest_len"] != 32:
                inconsistent.append((kid, "no usable secret", st))
        orphans = [kid for kid in set(audit) | set(changes)
                   if kid not in state]
        unacked_creates = sum(1 for op, _ in self.unacked if op == "create")
        unacked_found = 0
        acked_ids = set(self.acked)
        created_unacked = [k for k in state if k not in acked_ids]
        unacked_found += len(created_unacked)
        figures = dict(acked_ops=self.acked_ops,
                       acked_found=self.acked_ops - len(missing),
                       unacked_ops=len(self.unacked),
                       unacked_creates=unacked_creates,
                       unacked_creates_completed=len(created_unacked),
                       keys=len(state), codes=self.codes)
        t.assertEqual(missing, [], "acknowledged operations lost")
        t.assertEqual(dead_acked_secret, [],
                      "acknowledged secrets that do not verify")
        t.assertEqual(inconsistent, [])
        t.assertEqual(orphans, [], "audit/change rows without a key")
        t.assertLessEqual(len(created_unacked), unacked_creates)
        return figures


class CrashTest(FaultsTestBase):

    def verify_fn(self, channel):
        auth = self.auth_stub(channel)
        apb = self.stubs.auth_pb2
        md = self.server.service_md()
        return lambda key: auth.VerifyApiKey(
            apb.VerifyApiKeyRequest(key=key), metadata=md, timeout=10)

    def test_kill9_server_during_bursts_keeps_acknowledged_state(self):
        self.start_server()
        ch = self.channel()
        root = self.server.create_tenant("crash")
        burst = BurstChecker(self, "crash", root)
        burst.seed(self.keys_stub(ch), 6)
        address = self.server.address
        for round_no in range(3):
            stop = threading.Event()
            workers = burst.run(lambda: self.channel(), stop)
            time.sleep(1.5)
            self.server.kill()
            time.sleep(0.3)
            stop.set()
            for w in workers:
                w.join()
            self.server.start()
            self.assertNotEqual(address, self.server.address)
        figures = burst.check(self.verify_fn(self.channel()))
        figure("kill9_server", rounds=3, **figures)

    def test_kill9_mariadb_during_writes_keeps_acknowledged_state(self):
        self.start_server()
        ch = self.channel()
        root = self.server.create_tenant("dbcrash")
        burst = BurstChecker(self, "dbcrash", root)
        burst.seed(self.keys_stub(ch), 6)
        stop = threading.Event()
        workers = burst.run(lambda: self.channel(), stop)
        try:
            time.sleep(1.5)
            self.db.kill9()
            time.sleep(1)
            self.db.start()
            time.sleep(2)
        finally:
            stop.set()
            for w in workers:
                w.join()
        # The same server recovers on its own.
        self.assertIsNone(self.server.process.poll(), "server exited")
        stub = self.keys_stub(ch)

        def serving():
            try:
                stub.CreateApiKey(self.stubs.keys_pb2.CreateApiKeyRequest(
                    tenant_slug="dbcrash", name="after",
                    scopes=["admin:read"]), metadata=key_md(root), timeout=5)
                return True
            except grpc.RpcError:
                return False
        wait_for(serving, "the server to write again", 30, 0.2)
        figures = burst.check(self.verify_fn(ch))
        figure("kill9_mariadb", **figures)


class SlowDatabaseTest(FaultsTestBase):

    def test_locked_key_row_gives_deadline_exceeded_and_pool_survives(self):
        pool = 4
        self.start_server("--db_pool_size=%d" % pool)
        ch = self.channel()
        stub = self.keys_stub(ch)
        pb = self.stubs.keys_pb2
        root = self.server.create_tenant("slow")

        def create(name):
            return stub.CreateApiKey(
                pb.CreateApiKeyRequest(tenant_slug="slow", name=name,
                                       scopes=["admin:read"]),
                metadata=key_md(root), timeout=10)
        locked, other = create("locked"), create("other")
        uncached = create("uncached")
        base_threads = self.server.threads()

        holder = self.sql.hold(
            "START TRANSACTION;\n"
            "SELECT id FROM `%s`.api_keys WHERE id = '%s' FOR UPDATE;\n"
            % (self.database, locked.id))
        try:
            # Wait until the row lock is held.
            line = holder.stdout.readline()
            self.assertEqual(line.strip(), locked.id, holder.stderr.read()
                             if not line else line)
            calls = 3 * pool
            deadline_s = 1.0
            results = [None] * calls

            def rotate(i):
                start = time.monotonic()
                try:
                    stub.RotateApiKey(pb.RotateApiKeyRequest(
                        tenant_slug="slow", id=locked.id),
                        metadata=key_md(root), timeout=deadline_s)
                    results[i] = ("OK", time.monotonic() - start)
                except grpc.RpcError as e:
                    results[i] = (e.code().name, time.monotonic() - start)
            threads = [threading.Thread(target=rotate, args=(i,))
                       for i in range(calls)]
            for th in threads:
                th.start()
            # Meanwhile and right after, other calls are served.
            time.sleep(0.3)
            served_during = 0
            other_start = time.monotonic()
            got = stub.GetApiKey(pb.GetApiKeyRequest(tenant_slug="slow",
                                                     id=other.id),
                                 metadata=key_md(root), timeout=5)
            self.assertEqual(got.id, other.id)
            served_during += 1
            other_latency = time.monotonic() - other_start
            for th in threads:
                th.join()
            codes = [r[0] for r in results]
            slowest = max(r[1] for r in results)
            # The server gave up on every waiting statement (the client's
            # own deadline alone would also say DEADLINE_EXCEEDED): no
            # transaction of ours is left waiting on the lock.
            def lock_waits():
                rows = self.sql.rows(
                    "SELECT COUNT(*) FROM information_schema.INNODB_TRX t "
                    "JOIN information_schema.PROCESSLIST p ON p.ID = "
                    "t.trx_mysql_thread_id WHERE t.trx_state = 'LOCK WAIT' "
                    "AND p.DB = '%s'" % self.database)
                return int(rows[0][0])
            wait_for(lambda: lock_waits() == 0,
                     "the server to abandon its lock waits", 20, 0.2)
            still_waiting = lock_waits()
            # With the lock still held, the pool serves everything else.
            auth = self.auth_stub(ch)
            apb = self.stubs.auth_pb2
            for _ in range(2 * pool):
                create("during")
                served_during += 1
            self.assertTrue(auth.VerifyApiKey(
                apb.VerifyApiKeyRequest(key=uncached.key),
                metadata=(("x-lumo-service-token",
                           self.server.service_token),), timeout=5).valid)
            served_during += 1
        finally:
            holder.stdin.close()
            holder.wait(10)
            holder.stdout.close()
            holder.stderr.close()
        after = stub.RotateApiKey(pb.RotateApiKeyRequest(
            tenant_slug="slow", id=locked.id), metadata=key_md(root),
            timeout=10)
        self.assertEqual(after.version, locked.version + 1)
        threads_after = self.server.threads()
        conns = self.app_connections()
        figure("slow_database", calls=calls, deadline_s=deadline_s,
               deadline_exceeded=codes.count("DEADLINE_EXCEEDED"),
               slowest_s=round(slowest, 2),
               other_call_latency_s=round(other_latency, 2),
               served_while_locked=served_during,
               statements_left_waiting=still_waiting,
               db_conns=conns, pool_size=pool,
               threads_before=base_threads, threads_after=threads_after)
        # How soon after the deadline each call ended is a figure (above),
        # not an assertion: load decides it.
        self.assertEqual(codes, ["DEADLINE_EXCEEDED"] * calls)
        self.assertEqual(still_waiting, 0)
        self.assertLessEqual(conns, pool + self.FEED_POOL_SIZE)
        self.assertLessEqual(threads_after, base_threads + 2)


if __name__ == "__main__":
    unittest.main()
