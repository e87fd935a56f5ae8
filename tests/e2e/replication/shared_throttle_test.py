"""Failure throttles shared by the replicas (docs/limits.md "Shared
throttles").

Three lumokeys-server processes on one MariaDB database, each with an
address budget of B = 12 failures refilled at one a minute. An attacker
guesses keys for one client address through all three replicas at once
(AuthService.VerifyApiKey with `client_ip`, one attempt at a time per
replica): the attempts that are verified (answered NOT_FOUND rather than
RESOURCE_EXHAUSTED) stay within the single-replica budget plus the
documented bound, B + N x batch + m x (1 + batch) = 12 + 3 + 2m for a run
of m started minutes (batch = max(1, B / 4N) = 1 failure each replica may
count without a token per round; a refilled token is granted once and may
start one more round). Replicas that count alone verify 3 x B = 36. The same for
the failures on one key id (answered NOT_FOUND rather than throttled).

Prints the verified counts.
"""

import math
import secrets
import threading
import time
import unittest

import grpc

import harness
from harness import forge

BURST = 12
REPLICAS = 3
BATCH = max(1, BURST // (4 * REPLICAS))
# Plus one refilled token per started minute of a run (a run takes
# seconds; each refilled token is granted once, and the replicas refuse for
# N token intervals after a round that found the bucket empty).
BOUND = BURST + REPLICAS * BATCH
ATTEMPTS = 30  # per replica


class SharedThrottleTest(harness.ReplicaSetTestCase):
    server_args = ("--auth_failures_per_ip_burst=%d" % BURST,
                   "--auth_failures_per_ip_per_minute=1",
                   "--auth_failures_per_key_burst=%d" % BURST,
                   "--auth_failures_per_key_per_minute=1")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        slug = "thr-" + secrets.token_hex(4)
        reply = cls.ops.CreateTenant(
            cls.stubs.ops_pb2.CreateTenantRequest(
                slug=slug, initial_key=cls.stubs.ops_pb2.InitialKey(
                    name="admin", scopes=["admin:read"])),
            metadata=cls.server.operator_md(), timeout=10)
        cls.key = reply.initial_key.key
        cls.slug = slug

    def setUp(self):
        # Every replica counts N = 3: the server's default key limit is
        # reported at each replica's share, ceil(1 000 000 / 3).
        share = str(math.ceil(1_000_000 / REPLICAS))
        md = harness.key_md(self.key)

        def knows_all(r):
            _, call = self.keys[r].ListApiKeys.with_call(
                self.stubs.keys_pb2.ListApiKeysRequest(tenant_slug=self.slug),
                metadata=md, timeout=10)
            return dict(call.trailing_metadata()).get(
                "x-ratelimit-limit") == share

        for r in range(REPLICAS):
            harness.wait_for(lambda: knows_all(r),
                             f"replica {r} to count {REPLICAS} replicas")

    def attack(self, make_key, client_ip):
        """ATTEMPTS guesses through each replica at once (one at a time per
        replica); returns the number verified (not throttled), per replica,
        and the bound for the run's length."""
        verified = []
        errors = []

        def run(replica):
            for i in range(ATTEMPTS):
                try:
                    reply = self.auth[replica].VerifyApiKey(
                        self.stubs.auth_pb2.VerifyApiKeyRequest(
                            key=make_key(replica, i), client_ip=client_ip(i)),
                        metadata=self.server.service_md(), timeout=30)
                except grpc.RpcError as e:
                    if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                        errors.append((replica, e.code(), e.details()))
                    continue
                if reply.valid:
                    errors.append((replica, "a guess was valid"))
                verified.append(replica)

        threads = [threading.Thread(target=run, args=(r,))
                   for r in range(REPLICAS)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        minutes = math.floor((time.monotonic() - started) / 60) + 1
        self.assertEqual(errors, [])
        return (len(verified), {r: verified.count(r) for r in range(REPLICAS)},
                BOUND + minutes * (1 + BATCH))

    def test_an_address_gets_the_budget_of_one_replica(self):
        attacker = "203.0.113.%d" % (secrets.randbelow(200) + 1)
        total, per_replica, bound = self.attack(
            lambda r, i: forge("G%d%010d" % (r, i)), lambda i: attacker)
        print(f"address throttle, burst {BURST}, {REPLICAS} replicas, "
              f"{REPLICAS * ATTEMPTS} guesses: verified {total} (bound "
              f"{bound}; counted alone: {REPLICAS * BURST}), per replica "
              f"{per_replica}")
        self.assertLessEqual(total, bound)
        # The bound is the promise. Below it the count depends on how long
        # the lease statements take (while one is in flight a replica
        # verifies at most `batch` failures counted without a token and
        # refuses the address for a second), so on a loaded machine fewer
        # than the burst may be verified; each replica verifies its first
        # attempt (the shared bucket starts full).
        for replica, count in per_replica.items():
            self.assertGreaterEqual(count, 1, replica)

    def test_a_key_id_gets_the_budget_of_one_replica(self):
        target = "H" + secrets.token_hex(3) + "AAAAA"
        total, per_replica, bound = self.attack(
            lambda r, i: forge(target, "K%d%041d" % (r, i)),
            lambda i: "198.51.100.%d" % (i % 250 + 1))
        print(f"key-id throttle, burst {BURST}, {REPLICAS} replicas, "
              f"{REPLICAS * ATTEMPTS} guesses: answered {total} (bound "
              f"{bound}; counted alone: {REPLICAS * BURST}), per replica "
              f"{per_replica}")
        self.assertLessEqual(total, bound)
        # Every failure on the id takes a token, also one answered as
        # throttled while a lease statement was in flight, so fewer than
        # the burst may be answered; each replica answers its first.
        self.assertGreaterEqual(total, REPLICAS)
        self.assertLess(total, REPLICAS * ATTEMPTS)


if __name__ == "__main__":
    unittest.main()
