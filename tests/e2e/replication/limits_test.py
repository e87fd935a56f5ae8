"""Rate limits counted across replicas (docs/limits.md).

Three lumokeys-server processes on one MariaDB database. A key limited to
L requests a minute is hammered through all three at once: in any minute
the cluster admits at most L plus the documented overdraft (each replica
floor(0.05 * L / N)), and no replica admits more than L (each kept its own
count before: about 3 L). A replica killed with SIGKILL while holding a
lease does not let the survivors exceed the same bound.

Usage quotas (credits, docs/limits.md "Usage quotas"): a key with Q credits
verified through all three replicas at once is accepted at most Q times
(no overdraft), and exactly Q times through one replica.

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
QUOTA = 60


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
    def limited_key(self, **fields):
        """A new tenant and a key with `fields` (default: the per-minute
        limit LIMIT)."""
        slug, created, _ = self.new_key(**fields)
        return slug, created.key

    def new_key(self, **fields):
        """limited_key's tenant slug, the created key (ApiKey) and the
        metadata of the tenant's admin key."""
        fields = fields or {"rate_limit_per_minute": LIMIT}
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
                                  **fields),
            metadata=md, timeout=10)
        return slug, created, md

    def hammer(self, replicas, key, slug, per_replica, refused="RATE_LIMITED"):
        """`per_replica` verifications through each of `replicas` at once
        (of `key`, or of key[replica] when it is a dict);
        returns {replica: [(start, end) of each VALID]} and the count of
        `refused` answers (any other answer fails the test)."""
        admitted = {r: [] for r in replicas}
        limited = []
        errors = []

        def run(replica):
            presented = key[replica] if isinstance(key, dict) else key
            for _ in range(per_replica):
                start = time.monotonic()
                try:
                    reply = self.auth[replica].VerifyApiKey(
                        self.stubs.auth_pb2.VerifyApiKeyRequest(
                            key=presented, tenant_slug=slug),
                        metadata=self.server.service_md(), timeout=30)
                except grpc.RpcError as e:
                    errors.append((replica, e.code(), e.details()))
                    continue
                reason = self.stubs.auth_pb2.VerifyReason.Name(reply.reason)
                if reason == "VALID":
                    admitted[replica].append((start, time.monotonic()))
                elif reason == refused:
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
            # Back on a new port: the stubs of index 2 follow it.
            cls = type(self)
            cls.replicas[1].start()
            cls.channels[2].close()
            cls.addresses[2] = cls.replicas[1].address
            cls.channels[2] = grpc.insecure_channel(cls.addresses[2])
            cls.keys[2] = cls.stubs.keys_grpc.KeyServiceStub(cls.channels[2])
            cls.auth[2] = cls.stubs.auth_grpc.AuthServiceStub(cls.channels[2])

    def quota_key(self, credits):
        return self.limited_key(
            credits=self.stubs.keys_pb2.Credits(remaining=credits))

    def test_c_a_quota_is_spent_once_across_three_replicas(self):
        slug, key = self.quota_key(QUOTA)
        admitted, refused = self.hammer(range(REPLICAS), key, slug, QUOTA,
                                        refused="USAGE_EXCEEDED")
        accepted = sum(len(a) for a in admitted.values())
        print(f"quota {QUOTA}, 3 replicas, {REPLICAS * QUOTA} requests: "
              f"accepted {accepted}, per replica "
              f"{ {r: len(a) for r, a in admitted.items()} }, refused "
              f"{refused}")
        self.assertLessEqual(accepted, QUOTA)
        # Not vacuous: most credits were spent (leases of at most
        # floor(Q / 4N) may sit on the replicas until returned) and the
        # rest was refused.
        self.assertGreaterEqual(accepted,
                                QUOTA - REPLICAS * (QUOTA // (4 * REPLICAS)))
        self.assertEqual(accepted + refused, REPLICAS * QUOTA)

    def test_d_exactly_the_quota_through_one_replica(self):
        slug, key = self.quota_key(25)
        a = self.stubs.auth_pb2

        def verify(**fields):
            return self.auth[0].VerifyApiKey(
                a.VerifyApiKeyRequest(key=key, tenant_slug=slug, **fields),
                metadata=self.server.service_md(), timeout=30)

        # A cost of 0 checks nothing and spends nothing; too high a cost is
        # refused and spends nothing either.
        reply = verify(cost=0)
        self.assertEqual(a.VerifyReason.Name(reply.reason), "VALID")
        with self.assertRaises(grpc.RpcError) as cm:
            verify(cost=10001)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        reasons = []
        for _ in range(30):
            reply = verify()
            reasons.append(a.VerifyReason.Name(reply.reason))
        self.assertEqual(reasons, ["VALID"] * 25 + ["USAGE_EXCEEDED"] * 5)
        self.assertTrue(reply.HasField("credits"))
        self.assertEqual(reply.credits.remaining, 0)
        # A cost above what is left spends nothing (no partial spend).
        slug, key = self.quota_key(5)
        reply = verify(cost=3)
        self.assertEqual(a.VerifyReason.Name(reply.reason), "VALID")
        self.assertEqual(reply.credits.remaining, 2)
        reply = verify(cost=3)
        self.assertEqual(a.VerifyReason.Name(reply.reason), "USAGE_EXCEEDED")
        reply = verify(cost=2)
        self.assertEqual(a.VerifyReason.Name(reply.reason), "VALID")
        self.assertEqual(reply.credits.remaining, 0)

    def test_e_limits_and_credits_are_trailing_metadata_over_grpc(self):
        slug, key = self.limited_key(
            rate_limit_per_minute=LIMIT,
            credits=self.stubs.keys_pb2.Credits(remaining=10))
        md = harness.key_md(key)
        _, call = self.keys[1].ListApiKeys.with_call(
            self.stubs.keys_pb2.ListApiKeysRequest(tenant_slug=slug),
            metadata=md, timeout=10)
        trailers = dict(call.trailing_metadata())
        self.assertEqual(trailers["x-ratelimit-limit"], str(LIMIT))
        self.assertLess(int(trailers["x-ratelimit-remaining"]), LIMIT)
        self.assertGreater(int(trailers["x-ratelimit-reset"]), time.time() - 1)
        self.assertLessEqual(int(trailers["x-credits-remaining"]), 9)
        # The same values as initial metadata (the gateway's headers).
        initial = dict(call.initial_metadata())
        for name in ("x-ratelimit-limit", "x-ratelimit-remaining",
                     "x-ratelimit-reset", "x-credits-remaining"):
            self.assertEqual(initial[name], trailers[name], name)

    def test_f_a_lowered_limit_holds_on_every_replica_once_edited(self):
        k = self.stubs.keys_pb2
        slug, created, md = self.new_key(rate_limits=[
            k.RateLimit(name="minute", limit=50, duration_seconds=60)])
        # Every replica verifies the key once, on a lease taken under the
        # limit of 50 (floor(50 / 12) = 4 tokens each; no overdraft below
        # 60: floor(0.05 * 50 / 3) = 0, so every admission is a token the
        # database granted and counted first).
        first, _ = self.hammer(range(REPLICAS), created.key, slug, 1)
        self.assertEqual(sum(len(a) for a in first.values()), REPLICAS)
        edit = k.UpdateApiKeyRequest(
            tenant_slug=slug, id=created.id,
            rate_limits=[k.RateLimit(name="minute", limit=5,
                                     duration_seconds=60)])
        edit.update_mask.paths.append("rateLimits")
        edited = self.keys[0].UpdateApiKey(edit, metadata=md, timeout=30)
        self.assertEqual([(l.name, l.limit) for l in edited.rate_limits],
                         [("minute", 5)])
        # The edit returned once every replica acknowledged it: each one
        # now counts against 5 and none keeps spending the 3 tokens left of
        # the lease it took under 50, so the cluster admits at most 5 in the
        # minute, the three admissions before the edit included. Spending
        # the old leases would admit 3 x 4 = 12.
        for r in range(REPLICAS):
            reply = self.auth[r].VerifyApiKey(
                self.stubs.auth_pb2.VerifyApiKeyRequest(
                    key=created.key, tenant_slug=slug),
                metadata=self.server.service_md(), timeout=30)
            self.assertEqual(reply.rate_limit.limit, 5, f"replica {r}")
            if reply.valid:
                first[r].append((0.0, 0.0))
        admitted, limited = self.hammer(range(REPLICAS), created.key, slug, 10)
        total = sum(len(a) for a in first.values()) + sum(
            len(a) for a in admitted.values())
        print(f"limit lowered from 50 to 5/min on 3 replicas: admitted "
              f"{total} in the minute (bound 5), refused {limited}")
        self.assertLessEqual(total, 5)
        self.assertGreater(limited, 0)

    def test_g_a_changed_balance_reaches_every_replica_before_it_returns(self):
        k = self.stubs.keys_pb2
        slug, created, md = self.new_key(credits=k.Credits(remaining=100))
        # Replicas b and c each spend two credits: a first lease of one
        # (the balance unknown), then one of about floor(98 / 12) = 8.
        first, _ = self.hammer([1, 2], created.key, slug, 2,
                               refused="USAGE_EXCEEDED")
        self.assertEqual(sum(len(a) for a in first.values()), 4)
        # Replica a sets the balance to 3: the call returns once b and c
        # applied it, so neither spends the 6 or 7 credits left of its
        # lease of the old balance (that would accept up to 3 + 14).
        reply = self.keys[0].UpdateApiKeyCredits(
            k.UpdateApiKeyCreditsRequest(
                tenant_slug=slug, id=created.id,
                op=k.UpdateApiKeyCreditsRequest.SET, value=3),
            metadata=md, timeout=30)
        self.assertEqual(reply.remaining, 3)
        admitted, refused = self.hammer([1, 2], created.key, slug, 5,
                                        refused="USAGE_EXCEEDED")
        accepted = sum(len(a) for a in admitted.values())
        print(f"balance set to 3 after two replicas leased credits: "
              f"accepted {accepted} of 10 (bound 3), refused {refused}")
        self.assertLessEqual(accepted, 3)
        self.assertGreater(refused, 0)

    def test_h_an_identity_limit_holds_for_its_keys_across_replicas(self):
        k = self.stubs.keys_pb2
        slug, first, md = self.new_key(external_id="user-1")
        keys = {0: first.key}
        for r in (1, 2):
            keys[r] = self.keys[0].CreateApiKey(
                k.CreateApiKeyRequest(tenant_slug=slug, name="same user",
                                      scopes=["admin:read"],
                                      external_id="user-1"),
                metadata=md, timeout=10).key
        # Every replica has its key cached without identity limits ...
        before, _ = self.hammer(range(REPLICAS), keys, slug, 1)
        self.assertEqual(sum(len(a) for a in before.values()), REPLICAS)
        # ... and the change returns once every replica reloaded them.
        reply = self.keys[1].SetIdentityLimits(
            k.SetIdentityLimitsRequest(
                tenant_slug=slug, external_id="user-1",
                rate_limits=[k.RateLimit(name="minute", limit=LIMIT,
                                         duration_seconds=60)]),
            metadata=md, timeout=30)
        self.assertEqual([(l.name, l.limit) for l in reply.rate_limits],
                         [("minute", LIMIT)])
        # Three keys of one identity, each through its own replica: the
        # identity's LIMIT holds for them together (each key alone would
        # be admitted LIMIT times: 3 LIMIT).
        admitted, limited = self.hammer(range(REPLICAS), keys, slug, LIMIT)
        everything = [a for r in admitted for a in admitted[r]]
        cluster = most_in_a_minute(everything)
        print(f"identity limit {LIMIT}/min, its 3 keys through 3 replicas, "
              f"{REPLICAS * LIMIT} requests: admitted {len(everything)} "
              f"(most in one minute {cluster}; bound {BOUND}), per replica "
              f"{ {r: len(a) for r, a in admitted.items()} }, refused "
              f"{limited}")
        self.assertLessEqual(cluster, BOUND)
        self.assertGreater(limited, 0)
        reply = self.auth[2].VerifyApiKey(
            self.stubs.auth_pb2.VerifyApiKeyRequest(key=keys[2],
                                                    tenant_slug=slug),
            metadata=self.server.service_md(), timeout=30)
        self.assertEqual(reply.rate_limit.name, "identity:minute")
        got = self.keys[2].GetIdentityLimits(
            k.GetIdentityLimitsRequest(tenant_slug=slug,
                                       external_id="user-1"),
            metadata=md, timeout=10)
        self.assertEqual([(l.name, l.limit, l.duration_seconds)
                          for l in got.rate_limits], [("minute", LIMIT, 60)])


if __name__ == "__main__":
    unittest.main()
