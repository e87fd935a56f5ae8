"""Acknowledged revocation on a three-node MariaDB Galera cluster
(docs/replication.md, "On a Galera cluster"; docs/operations.md).

Three lumokeys-server replicas, each on a different Galera node of a
private cluster (tools/dev/galera.sh through harness.galera), each given
all three nodes (a multi-host --mysql, its own node first). Verifiers
hammer all three while keys are revoked, rotated, deleted, narrowed and
disabled through different replicas; no verification that started after
the call returned may honour the key. Every replica reads the per-writer
change streams, so no acknowledgement waits on a hole of the cluster's
auto-increment sequence: the test reads each replica's count of stream
positions given up after the gap timeout (must be 0).

Then one node is killed with SIGKILL under load: every replica moves to a
live node and serves mutations again; the calls that failed meanwhile
carry a clean gRPC status; no acknowledged write is missing on any node,
also on the killed node once it rejoined; no killed secret is accepted;
and the replica that lists the killed node first returns to it once it is
Synced again (failback, read from its /metrics).

Prints Revoke latency p50/p99 on the cluster and, from the same run, with
three replicas on the suite's single MariaDB (the two deployments run side
by side and their calls alternate, so machine load falls on both alike);
the failover time and the calls that failed during it.
"""

import http.client
import math
import random
import secrets
import sys
import threading
import time
import unittest
import urllib.parse

import grpc

import harness
from harness import KEY_RE
from harness.galera import GaleraCluster
from harness.mariadb import MysqlDsn
from hammer import VerifyHammer

ACTIONS = ("revoke", "rotate", "delete", "scopes", "disable")
# gRPC codes a call may fail with while its database node dies: each says
# what happened (not served, out of time, conflict: nothing done; or
# committed but unacknowledged, which UNAVAILABLE's message states).
CLEAN_FAILURES = {grpc.StatusCode.UNAVAILABLE,
                  grpc.StatusCode.DEADLINE_EXCEEDED,
                  grpc.StatusCode.ABORTED}
METRICS_ARGS = ("--metrics_listen=127.0.0.1:0",)


def percentile(values, p):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


def metric(port, name):
    """The value of an unlabelled series on a process's /metrics."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        body = conn.getresponse().read().decode("utf-8")
    finally:
        conn.close()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not on /metrics")


def multi_host_dsn(dsns, first, database):
    """A --mysql value naming every node of `dsns`, starting at `first`."""
    nodes = [MysqlDsn(d) for d in dsns[first:] + dsns[:first]]
    user = urllib.parse.quote(nodes[0].user, safe="")
    hosts = ",".join(f"{n.host}:{n.port}" for n in nodes)
    return f"mysql://{user}@{hosts}/{database}"


class Deployment:
    """A LumoServer plus two replicas. On a cluster (`dsns` of distinct
    nodes) replica i is given every node, node i first; on one database
    (`dsns` all equal) each is given that one."""

    def __init__(self, dsns):
        self.server = harness.LumoServer(mysql_dsn=dsns[0],
                                         extra_args=METRICS_ARGS)
        self.replicas = []
        cluster = len(set(dsns)) > 1
        if cluster:
            # The server's own --mysql (which migrates through node 1) is
            # overridden for serving by this later flag.
            self.server.extra_args.append(
                "--mysql=" + multi_host_dsn(dsns, 0, self.server.database))
        self.server.start()
        try:
            for i, name in ((1, "b"), (2, "c")):
                args = list(METRICS_ARGS)
                if cluster:
                    args.append("--mysql=" + multi_host_dsn(
                        dsns, i, self.server.database))
                self.replicas.append(
                    harness.LumoReplica(self.server, name, args).start())
        except BaseException:
            self.stop()
            raise
        self.processes = [self.server] + self.replicas
        self.channels = [grpc.insecure_channel(p.address)
                         for p in self.processes]
        stubs = harness.stubs()
        self.keys = [stubs.keys_grpc.KeyServiceStub(c) for c in self.channels]
        self.auth = [stubs.auth_grpc.AuthServiceStub(c) for c in self.channels]
        self.ops = stubs.ops_grpc.OperatorServiceStub(self.channels[0])
        deadline = time.monotonic() + 30 * harness.TIME_SCALE
        self.metrics_ports = [
            harness.metrics_port_from_log(self.server.log_path, deadline)] + [
            harness.metrics_port_from_log(r.log_path, deadline)
            for r in self.replicas]

    def log(self):
        out = self.server.server_log()
        for r in self.replicas:
            out += f"\n===== replica {r.name} log =====\n" + r.log()
        return out

    def stop(self):
        for channel in getattr(self, "channels", []):
            channel.close()
        for replica in self.replicas:
            replica.stop()
        self.server.stop()


class GaleraReplicaTest(harness.LogOnFailure, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stubs = harness.stubs()
        cls.cluster = GaleraCluster()
        cls.deployment = None
        try:
            cls.cluster.start()
            cls.deployment = Deployment(
                [cls.cluster.admin_dsn(n) for n in GaleraCluster.NODES])
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.deployment is not None:
            cls.deployment.stop()
        cls.cluster.destroy()

    def failure_log(self):
        return self.deployment.log() if self.deployment else ""

    # ----- helpers -----------------------------------------------------

    def create_tenant(self, d):
        slug = "gal-" + secrets.token_hex(4)
        reply = d.ops.CreateTenant(
            self.stubs.ops_pb2.CreateTenantRequest(
                slug=slug, initial_key=self.stubs.ops_pb2.InitialKey(
                    name="admin", scopes=["admin:write"])),
            metadata=d.server.operator_md(), timeout=30)
        return slug, harness.key_md(reply.initial_key.key)

    def create_key(self, d, slug, md, replica):
        reply = d.keys[replica].CreateApiKey(
            self.stubs.keys_pb2.CreateApiKeyRequest(
                tenant_slug=slug, name="w",
                scopes=["admin:read", "admin:users"],
                allowed_cidrs=["10.0.0.0/8"]),
            metadata=md, timeout=30)
        self.assertRegex(reply.key, KEY_RE)
        return reply.id, reply.key

    def verify(self, d, replica, key, slug):
        """The reason for an end client in 10.1.0.0/16 asking for
        admin:users (inside the key's first scopes and CIDR, outside the
        narrowed ones); THROTTLED when the failure throttle refused it."""
        client_ip = "10.1.%d.%d" % (random.randrange(256),
                                    random.randrange(1, 255))
        try:
            reply = d.auth[replica].VerifyApiKey(
                self.stubs.auth_pb2.VerifyApiKeyRequest(
                    key=key, tenant_slug=slug,
                    required_scopes=["admin:users"], client_ip=client_ip),
                metadata=d.server.service_md(), timeout=30)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                return "THROTTLED"
            raise
        return self.stubs.auth_pb2.VerifyReason.Name(reply.reason)

    def kill(self, d, via, action, slug, md, key_id):
        """Kills (or restricts) the key through replica `via`; returns the
        secret a rotation issued, else None."""
        k = self.stubs.keys_pb2
        stub = d.keys[via]
        if action == "revoke":
            stub.RevokeApiKey(k.RevokeApiKeyRequest(tenant_slug=slug,
                                                    id=key_id),
                              metadata=md, timeout=30)
        elif action == "rotate":
            return stub.RotateApiKey(
                k.RotateApiKeyRequest(tenant_slug=slug, id=key_id),
                metadata=md, timeout=30).key
        elif action == "delete":
            stub.DeleteApiKey(k.DeleteApiKeyRequest(tenant_slug=slug,
                                                    id=key_id),
                              metadata=md, timeout=30)
        elif action == "scopes":
            stub.UpdateApiKey(
                k.UpdateApiKeyRequest(tenant_slug=slug, id=key_id,
                                      update_mask={"paths": ["scopes"]},
                                      scopes=["admin:read"]),
                metadata=md, timeout=30)
        else:
            stub.DisableApiKey(
                k.SetApiKeyDisabledRequest(tenant_slug=slug, id=key_id),
                metadata=md, timeout=30)
        return None

    def revoke_latencies(self, deployments, count):
        """Revokes `count` keys through each deployment, one call at a time,
        alternating between them (which goes first alternates too), so that
        the load of a shared machine falls on both alike. The latencies in
        ms, one list per deployment."""
        prepared = []
        for d in deployments:
            slug, md = self.create_tenant(d)
            prepared.append((d, slug, md, [
                self.create_key(d, slug, md, i % 3)[0] for i in range(count)]))
        out = [[] for _ in deployments]
        for i in range(count):
            order = list(range(len(prepared)))
            if i % 2:
                order.reverse()
            for j in order:
                d, slug, md, ids = prepared[j]
                started = time.monotonic()
                self.kill(d, i % 3, "revoke", slug, md, ids[i])
                out[j].append((time.monotonic() - started) * 1000.0)
        return out

    def wait(self, condition, what, timeout_s=60):
        return harness.wait_for(condition, what, timeout_s=timeout_s,
                                interval_s=0.02)

    def stream_holes_given_up(self, d):
        return sum(metric(port, "lumo_change_stream_abandoned_total")
                   for port in d.metrics_ports)

    # ----- tests -------------------------------------------------------

    def test_a_no_replica_honours_a_key_after_the_call_that_killed_it(self):
        d = self.deployment
        slug, md = self.create_tenant(d)
        took = {a: [] for a in ACTIONS}
        rounds = 30
        with VerifyHammer(3, lambda r, key: self.verify(d, r, key, slug)) \
                as hammer:
            for i in range(rounds):
                key_id, secret = self.create_key(d, slug, md, i % 3)
                # Every replica has the live secret cached before the kill.
                for replica in range(3):
                    self.assertEqual(self.verify(d, replica, secret, slug),
                                     "VALID")
                hammer.watch(secret)
                action = ACTIONS[i % len(ACTIONS)]
                started = time.monotonic()
                new = self.kill(d, (i + 1) % 3, action, slug, md, key_id)
                took[action].append(time.monotonic() - started)
                hammer.killed(secret, successor=new)
                # Right after the call returned, ask every replica directly.
                hammer.check_now(secret)

        self.assertEqual(hammer.errors, [])
        after = hammer.after_kill()
        honoured = [(r, reason) for (r, s, t, reason) in after
                    if reason == "VALID"]
        self.assertEqual(honoured, [],
                         "a replica honoured a key after the call that "
                         "killed or restricted it returned")
        # Not vacuous: every replica was asked after every kill and
        # accepted live keys, and the restricting edits were seen refusing.
        for replica in range(3):
            self.assertGreaterEqual(
                sum(1 for (r, _, _, _) in after if r == replica), rounds)
            self.assertTrue(hammer.accepted_by(replica))
        reasons = {reason for (_, _, _, reason) in after}
        self.assertTrue({"INSUFFICIENT_SCOPE", "DISABLED", "REVOKED"}
                        <= reasons, reasons)
        # Prompt: no acknowledgement waited on a hole (a hole is given up
        # only after the gap timeout, and counted).
        self.assertEqual(self.stream_holes_given_up(d), 0)
        slowest = max(max(v) for v in took.values())
        print("\ngalera_replica_test: %d verifications, %d after a kill "
              "returned, none honoured; slowest kill call %.0f ms (%s)" % (
                  len(hammer.records), len(after), slowest * 1000.0,
                  ", ".join("%s max %.0f ms" % (a, max(v) * 1000.0)
                            for a, v in took.items())), file=sys.stderr)

    def test_b_revoke_latency_on_the_cluster_and_on_one_node(self):
        # 300 calls on each side: the nearest-rank p99 is then the 297th
        # value, not one of the two largest of a hundred.
        count = 300
        single = Deployment([harness.require_env(
            "LUMO_TEST_MYSQL_DSN", "the suite's MariaDB")] * 3)
        try:
            cluster, one_node = self.revoke_latencies(
                [self.deployment, single], count)
        finally:
            single.stop()
        self.assertEqual(self.stream_holes_given_up(self.deployment), 0)

        def summary(values):
            return "p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms" % (
                percentile(values, 50), percentile(values, 90),
                percentile(values, 99), max(values))
        print("\nRevoke latency, 3 replicas, gRPC client one call at a time, "
              "%d calls each, cluster and one-node calls interleaved:\n"
              "  Galera (3 nodes, one replica per node): %s\n"
              "  one MariaDB:                             %s\n"
              "  cluster p99 / one-node p99: %.2f"
              % (count, summary(cluster), summary(one_node),
                 percentile(cluster, 99) / percentile(one_node, 99)),
              file=sys.stderr)

    def test_c_a_killed_node_fails_over_and_loses_no_acknowledged_write(self):
        d = self.deployment
        slug, md = self.create_tenant(d)
        k = self.stubs.keys_pb2
        lock = threading.Lock()
        calls = []     # (replica, started, finished, code or None)
        created = set()  # key ids whose create returned OK
        revoked = set()  # key ids whose revoke returned OK
        stop = threading.Event()

        def load(replica, hammer):
            while not stop.is_set():
                started = time.monotonic()
                code = None
                try:
                    reply = d.keys[replica].CreateApiKey(
                        k.CreateApiKeyRequest(
                            tenant_slug=slug, name="f",
                            scopes=["admin:read", "admin:users"],
                            allowed_cidrs=["10.0.0.0/8"]),
                        metadata=md, timeout=10)
                    with lock:
                        created.add(reply.id)
                    hammer.watch(reply.key)
                    d.keys[(replica + 1) % 3].RevokeApiKey(
                        k.RevokeApiKeyRequest(tenant_slug=slug, id=reply.id),
                        metadata=md, timeout=10)
                    hammer.killed(reply.key)
                    with lock:
                        revoked.add(reply.id)
                except grpc.RpcError as e:
                    code = e.code()
                with lock:
                    calls.append((replica, started, time.monotonic(), code))
                if code is not None:
                    time.sleep(0.02)  # a failing node: do not spin

        def served_since(t, replica):
            with lock:
                return [c for c in calls
                        if c[0] == replica and c[3] is None and c[1] > t]

        with VerifyHammer(3, lambda r, key: self.verify(d, r, key, slug)) \
                as hammer:
            threads = [threading.Thread(target=load, args=(r, hammer))
                       for r in range(3)]
            for t in threads:
                t.start()
            try:
                self.wait(lambda: all(len(served_since(0, r)) >= 5
                                      for r in range(3)), "load running")
                killed = time.monotonic()
                self.cluster.kill9(2)
                # Every replica serves mutations again (the bound only ends
                # a failing test; the figure is printed below).
                self.wait(lambda: all(len(served_since(killed, r)) >= 3
                                      for r in range(3)),
                          "every replica serves mutations after the kill")
            finally:
                stop.set()
                for t in threads:
                    t.join()

        recovered = [min(c[2] for c in served_since(killed, r)) - killed
                     for r in range(3)]
        failed = [(r, code.name) for (r, s, f, code) in calls
                  if code is not None]
        unclean = [f for f in failed
                   if grpc.StatusCode[f[1]] not in CLEAN_FAILURES]
        self.assertEqual(unclean, [], "calls failed without a clean status")
        after = hammer.after_kill()
        accepted = [(r, reason) for (r, s, t, reason) in after
                    if reason == "VALID"]
        self.assertEqual(accepted, [], "a replica accepted a revoked key")
        verify_failures = sorted({code.name for (_, code, _) in hammer.errors})
        self.assertTrue(set(verify_failures) <= {c.name for c in CLEAN_FAILURES},
                        verify_failures)

        # Replica b lists node 2 first: its request pool moved off it.
        b_metrics = d.metrics_ports[1]
        self.assertNotEqual(metric(b_metrics, "lumo_db_pool_preferred_host"),
                            0, "replica b still prefers the killed node")
        failbacks_before = metric(b_metrics, "lumo_db_pool_failbacks_total")

        # The killed node rejoins; every acknowledged write is on every node.
        self.cluster.start_node(2)
        rejoined = time.monotonic()
        for node in GaleraCluster.NODES:
            dsn = MysqlDsn(self.cluster.admin_dsn(node))
            rows = dsn.rows("SET SESSION wsrep_sync_wait = 1; SELECT id,"
                            " revoked FROM api_keys", d.server.database)
            state = {r[0]: r[1] == "1" for r in rows}
            missing = sorted(created - state.keys())
            unrevoked = sorted(i for i in revoked if not state.get(i, False))
            self.assertEqual((missing, unrevoked), ([], []),
                             f"acknowledged writes missing on node {node}")
        # Failback: replica b returns to node 2 once it is Synced again
        # (the pool probes its first host every 5 s).
        self.wait(lambda: metric(b_metrics,
                                 "lumo_db_pool_preferred_host") == 0,
                  "replica b back on node 2 after the rejoin", timeout_s=120)
        failed_back_s = time.monotonic() - rejoined
        self.assertGreater(metric(b_metrics, "lumo_db_pool_failbacks_total"),
                           failbacks_before)
        print("galera_replica_test: replica b (node 2 first) failed back to "
              "node 2 %.2f s after the node was restarted" % failed_back_s,
              file=sys.stderr)
        print("\ngalera_replica_test: node 2 killed with SIGKILL under load "
              "(3 replicas, each preferring its own node): every replica "
              "served mutations again %.2f s after the kill (per replica: "
              "%s); %d calls failed meanwhile (%s), all with a clean status; "
              "%d creates and %d revokes acknowledged, none missing on any "
              "node after the rejoin; %d verifications of revoked keys after "
              "the revoke returned, none accepted" % (
                  max(recovered),
                  ", ".join("%.2f s" % t for t in recovered), len(failed),
                  ", ".join("%s x%d" % (c, sum(1 for f in failed
                                               if f[1] == c))
                            for c in sorted({f[1] for f in failed})) or "-",
                  len(created), len(revoked), len(after)), file=sys.stderr)
        harness.figure("galera_failover", recovered_max_s="%.2f" %
                       max(recovered), failed_calls=len(failed),
                       missing_writes=0, accepted_killed=len(accepted))

    def test_d_the_webhook_endpoint_cap_holds_across_nodes(self):
        """Webhook endpoints of one tenant created at once through the three
        replicas (three nodes) never exceed the per-tenant cap: each
        creation writes the tenant row, so concurrent ones conflict at
        certification and the retried one counts the other's endpoint
        (docs/replication.md, "Row locks are local to a node")."""
        d = self.deployment
        s = self.stubs
        slug, md = self.create_tenant(d)
        cap = 20  # the documented per-tenant cap (docs/webhooks.md)
        stubs = [s.webhooks_grpc.WebhookServiceStub(c) for c in d.channels]

        def create(replica):
            stubs[replica].CreateWebhook(
                s.webhooks_pb2.CreateWebhookRequest(
                    tenant_slug=slug, url="https://hooks.example.com/lumo",
                    enabled=False),
                metadata=md, timeout=30 * harness.TIME_SCALE)

        lock = threading.Lock()
        outcomes = []
        start = threading.Barrier(3)

        def burst(replica):
            start.wait()
            for _ in range(12):
                try:
                    create(replica)
                    code = None
                except grpc.RpcError as e:
                    code = e.code()
                with lock:
                    outcomes.append(code)

        threads = [threading.Thread(target=burst, args=(r,))
                   for r in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        def stored():
            counts = set()
            for node in GaleraCluster.NODES:
                dsn = MysqlDsn(self.cluster.admin_dsn(node))
                rows = dsn.rows(
                    "SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM"
                    " webhook_endpoints w JOIN tenants t ON t.id ="
                    " w.tenant_id WHERE t.slug = '%s'" % slug,
                    d.server.database)
                counts.add(int(rows[0][0]))
            self.assertEqual(len(counts), 1, f"nodes disagree: {counts}")
            return counts.pop()

        created = outcomes.count(None)
        unexpected = [c.name for c in outcomes
                      if c not in (None, grpc.StatusCode.FAILED_PRECONDITION,
                                   grpc.StatusCode.ABORTED)]
        self.assertEqual(unexpected, [], "creations failed unexpectedly")
        self.assertLessEqual(created, cap, "more creations acknowledged "
                             "than the cap allows")
        self.assertEqual(stored(), created)
        # The rest of the cap fills one at a time; the next is refused.
        for i in range(cap - created):
            create(i % 3)
        self.assertEqual(stored(), cap)
        with self.assertRaises(grpc.RpcError) as refused:
            create(1)
        self.assertEqual(refused.exception.code(),
                         grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual(stored(), cap)
        print("galera_replica_test: %d concurrent endpoint creations of one "
              "tenant through 3 nodes: %d acknowledged (cap %d), %d refused "
              "at the cap, %d aborted after repeated conflicts" % (
                  len(outcomes), created, cap,
                  outcomes.count(grpc.StatusCode.FAILED_PRECONDITION),
                  outcomes.count(grpc.StatusCode.ABORTED)), file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
