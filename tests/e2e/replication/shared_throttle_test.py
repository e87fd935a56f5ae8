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

The portal's login throttles likewise (docs/limits.md "Shared
throttles"): a password guesser moving between the replicas gets the
budget of one replica for an (account, network) pair (P = 5 failures a
window of 15 minutes, refilled at P per window: P + one per started 3
minutes of the run), and an account attacked from many networks gets
A = 6 failures in all, while its admin still logs in through every
replica from the network it logged in from before (the known networks
are shared).

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
PAIR_LIMIT = 5
ACCOUNT_LIMIT = 6
LOGIN_WINDOW_MINUTES = 15
PASSWORD = "correct horse battery staple"


class SharedThrottleTest(harness.ReplicaSetTestCase):
    server_args = ("--auth_failures_per_ip_burst=%d" % BURST,
                   "--auth_failures_per_ip_per_minute=1",
                   "--auth_failures_per_key_burst=%d" % BURST,
                   "--auth_failures_per_key_per_minute=1",
                   "--portal_login_max_failures=%d" % PAIR_LIMIT,
                   "--portal_login_max_failures_per_account=%d"
                   % ACCOUNT_LIMIT,
                   "--portal_login_max_failures_per_ip=100")

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

    # ----- portal logins ------------------------------------------------

    def create_admin(self):
        slug = "lgn-" + secrets.token_hex(4)
        email = "admin@%s.example" % slug
        r = self.server.cli("tenant", "create", slug, "--admin-email", email,
                            "--admin-password-file", "-", input=PASSWORD + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        return slug, email

    def login(self, replica, slug, email, password, client_ip):
        """The replica's answer: "ok", "denied" (wrong password) or
        "throttled" (with the Retry-After it sent)."""
        stub = self.stubs.portal_grpc.PortalServiceStub(self.channels[replica])
        md = self.server.service_md() + (("x-lumo-client-ip", client_ip),)
        try:
            stub.Login(self.stubs.portal_pb2.LoginRequest(
                tenant_slug=slug, email=email, password=password),
                metadata=md, timeout=120 * harness.TIME_SCALE)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNAUTHENTICATED:
                return "denied"
            if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                wait = dict(e.trailing_metadata() or ()).get("retry-after")
                self.assertIsNotNone(wait, e.details())
                self.assertGreater(int(wait), 0)
                return "throttled"
            raise
        return "ok"

    def login_bound(self, limit, started):
        """limit + one refilled failure per started limit-th of the window
        since `started`."""
        per_token = LOGIN_WINDOW_MINUTES * 60 / limit
        return limit + math.floor((time.monotonic() - started) / per_token) + 1

    def test_a_login_guesser_gets_the_pair_budget_of_one_replica(self):
        slug, email = self.create_admin()
        attacker = "192.0.2.%d" % (secrets.randbelow(200) + 1)
        started = time.monotonic()
        answers = {r: [] for r in range(REPLICAS)}

        def run(replica):
            for _ in range(2 * PAIR_LIMIT):
                answers[replica].append(self.login(
                    replica, slug, email, "wrong password %d" % replica,
                    attacker))

        threads = [threading.Thread(target=run, args=(r,))
                   for r in range(REPLICAS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        denied = sum(a.count("denied") for a in answers.values())
        bound = self.login_bound(PAIR_LIMIT, started)
        print(f"portal login pair throttle, limit {PAIR_LIMIT}, {REPLICAS} "
              f"replicas, {REPLICAS * 2 * PAIR_LIMIT} guesses: checked "
              f"{denied} (bound {bound}; counted alone: "
              f"{REPLICAS * PAIR_LIMIT}), per replica "
              f"{ {r: a.count('denied') for r, a in answers.items()} }")
        for a in answers.values():
            self.assertEqual(set(a) - {"denied", "throttled"}, set())
        self.assertLessEqual(denied, bound)
        self.assertGreaterEqual(denied, 1)
        # The pair stays refused on every replica, the right password
        # included; the admin's other networks are not.
        for r in range(REPLICAS):
            if self.login_bound(PAIR_LIMIT, started) > PAIR_LIMIT + 1:
                break  # a token was refilled meanwhile (a very slow run)
            self.assertEqual(self.login(r, slug, email, PASSWORD, attacker),
                             "throttled", r)
        if denied < ACCOUNT_LIMIT:  # the account counter has room left
            self.assertEqual(
                self.login(1, slug, email, PASSWORD, "198.18.0.1"), "ok")

    def test_an_attacked_account_spares_its_known_network_everywhere(self):
        slug, email = self.create_admin()
        home = "198.18.1.%d" % (secrets.randbelow(200) + 1)
        # The admin logs in from home through the first replica only.
        self.assertEqual(self.login(0, slug, email, PASSWORD, home), "ok")
        started = time.monotonic()
        answers = []
        # An attack on the account from many networks, through every
        # replica in turn.
        for i in range(4 * ACCOUNT_LIMIT):
            answers.append(self.login(i % REPLICAS, slug, email, "guess %d" % i,
                                      "203.0.113.%d" % (i + 1)))
        denied = answers.count("denied")
        bound = self.login_bound(ACCOUNT_LIMIT, started)
        print(f"portal login account throttle, limit {ACCOUNT_LIMIT}, "
              f"{REPLICAS} replicas, {len(answers)} guesses from "
              f"{len(answers)} networks: checked {denied} (bound {bound}; "
              f"counted alone: {REPLICAS * ACCOUNT_LIMIT})")
        self.assertEqual(set(answers) - {"denied", "throttled"}, set())
        self.assertLessEqual(denied, bound)
        self.assertGreaterEqual(denied, ACCOUNT_LIMIT)
        # A new network is refused on every replica; the admin's home
        # network is let in on every replica, also those that never saw
        # the admin log in.
        if self.login_bound(ACCOUNT_LIMIT, started) == ACCOUNT_LIMIT + 1:
            for r in range(REPLICAS):
                self.assertEqual(
                    self.login(r, slug, email, PASSWORD, "198.18.2.1"),
                    "throttled", r)
        for r in range(REPLICAS):
            self.assertEqual(self.login(r, slug, email, PASSWORD, home), "ok",
                             r)


if __name__ == "__main__":
    unittest.main()
