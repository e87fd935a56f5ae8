"""Rate limits counted across replicas (docs/limits.md).

Three lumokeys-server processes on one MariaDB database. A key limited to
L requests a minute is hammered through all three at once: in any minute
the cluster admits at most L plus the documented overdraft (each replica
floor(0.05 * L / N)), and no replica admits more than L (each kept its own
count before: about 3 L). A replica killed with SIGKILL while holding a
lease does not let the survivors exceed the same bound.

Prints the admitted counts and the measured excess over L (epsilon).
"""

import secrets
import threading
import time
import unittest

import grpc

import harness

LIMIT = 60
REPLICAS = 3
# Each replica's overdraft: floor(0.05 * LIMIT / N), N = 3 (and 2 after a
# replica died: floor(1.5) = 1 as well).
BOUND = LIMIT + REPLICAS * int(0.05 * LIMIT / REPLICAS)


def most_in_a_minute(admitted):
    """The most admissions certainly inside one minute: for each admitted
    request (start, end), those that started no earlier and ended less
    than 60 s after its start (an admission happens between a request's
    start and its end)."""
    starts = sorted(admitted)
    most = 0
    for i, (start, _) in enumerate(starts):
        inside = sum(1 for (s, e) in starts[i:] if e < start + 60.0)
        most = max(most, inside)
    return most


class LimitsAcrossReplicasTest(harness.ReplicaSetTestCase):
    def limited_key(self):
        slug = "lim-" + secrets.token_hex(4)
        reply = self.ops.CreateTenant(
            self.stubs.ops_pb2.CreateTenantRequest(
                slug=slug, initial_key=self.stubs.ops_pb2.InitialKey(
                    name="admin", scopes=["admin:write"])),
            metadata=self.server.operator_md(), timeout=10)
        md = harness.key_md(reply.initial_key.key)
        k = self.stubs.keys_pb2
        created = self.keys[0].CreateApiKey(
            k.CreateApiKeyRequest(tenant_slug=slug, name="limited",
                                  scopes=["admin:read"],
                                  rate_limit_per_minute=LIMIT),
            metadata=md, timeout=10)
        return slug, created.key

    def hammer(self, replicas, key, slug, per_replica):
        """`per_replica` verifications through each of `replicas` at once;
        returns {replica: [(start, end) of each VALID]} and the count of
        RATE_LIMITED answers."""
        admitted = {r: [] for r in replicas}
        limited = []
        errors = []

        def run(replica):
            for _ in range(per_replica):
                start = time.monotonic()
                try:
                    reply = self.auth[replica].VerifyApiKey(
                        self.stubs.auth_pb2.VerifyApiKeyRequest(
                            key=key, tenant_slug=slug),
                        metadata=self.server.service_md(), timeout=30)
                except grpc.RpcError as e:
                    errors.append((replica, e.code(), e.details()))
                    continue
                reason = self.stubs.auth_pb2.VerifyReason.Name(reply.reason)
                if reason == "VALID":
                    admitted[replica].append((start, time.monotonic()))
                elif reason == "RATE_LIMITED":
                    limited.append(replica)
                else:
                    errors.append((replica, reason))

        threads = [threading.Thread(target=run, args=(r,)) for r in replicas]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        return admitted, len(limited)

    def test_a_limit_holds_across_three_replicas(self):
        slug, key = self.limited_key()
        admitted, limited = self.hammer(range(REPLICAS), key, slug, 3 * LIMIT)
        everything = [a for r in admitted for a in admitted[r]]
        cluster = most_in_a_minute(everything)
        per_replica = {r: most_in_a_minute(a) for r, a in admitted.items()}
        print(f"limit {LIMIT}/min, 3 replicas, {3 * 3 * LIMIT} requests: "
              f"admitted {len(everything)} (most in one minute {cluster}, "
              f"epsilon {(cluster - LIMIT) / LIMIT:.1%}; bound {BOUND}), "
              f"per replica {per_replica}, refused {limited}")
        self.assertLessEqual(cluster, BOUND)
        for r, most in per_replica.items():
            self.assertLessEqual(most, LIMIT, f"replica {r}")
        # Not vacuous: the limit was reached (less the leases at most
        # stranded on the other replicas, floor(L / 4N) = 5 each) and
        # requests beyond it were refused.
        self.assertGreaterEqual(len(everything), LIMIT - REPLICAS * 5)
        self.assertGreater(limited, 0)

    def test_b_a_killed_replica_leaves_the_bound_intact(self):
        slug, key = self.limited_key()
        # Replica c takes a lease (and spends part of it), then dies.
        first, _ = self.hammer([2], key, slug, 3)
        self.assertEqual(len(first[2]), 3)
        self.replicas[1].kill()
        try:
            admitted, limited = self.hammer([0, 1], key, slug, 2 * LIMIT)
            everything = first[2] + [a for r in admitted for a in admitted[r]]
            cluster = most_in_a_minute(everything)
            print(f"after SIGKILL of a replica holding a lease: admitted "
                  f"{len(everything)} (most in one minute {cluster}; bound "
                  f"{BOUND}), refused {limited}")
            self.assertLessEqual(cluster, BOUND)
            self.assertGreater(limited, 0)
        finally:
            self.replicas[1].start()


if __name__ == "__main__":
    unittest.main()
