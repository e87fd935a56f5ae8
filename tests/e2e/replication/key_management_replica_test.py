"""Key management across three replicas (docs/api-keys.md, "Managing a key
over years"; docs/replication.md).

Three lumokeys-server processes on one MariaDB database:
- a restricting edit (fewer scopes, narrower CIDRs) or a disable made
  through any replica is never honoured by any replica for a verification
  that started after the call returned (counted like the revocation test);
- the leased state sweep writes each api_key.rotation_due, api_key.expiring
  and api_key.inactive event exactly once per key and state, whichever
  replicas run, also after the lease holder dies and another takes over.
  Days pass in the database: the test moves the keys' times back with SQL.
"""

import random
import secrets
import sys
import time
import unittest

import grpc
from google.protobuf import timestamp_pb2

import harness
from hammer import VerifyHammer
from harness import KEY_RE

SWEEP_INTERVAL_S = 0.2
SWEEP_ACTIONS = ("api_key.rotation_due", "api_key.expiring",
                 "api_key.inactive")


class KeyManagementReplicaTest(harness.ReplicaSetTestCase):
    server_args = (
        "--key_state_sweep_interval=%dms" % (SWEEP_INTERVAL_S * 1000),)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.settings = [cls.stubs.settings_grpc.SettingsServiceStub(c)
                        for c in cls.channels]

    # ----- helpers -----------------------------------------------------

    def create_tenant(self):
        slug = "km-" + secrets.token_hex(4)
        reply = self.ops.CreateTenant(
            self.stubs.ops_pb2.CreateTenantRequest(
                slug=slug, initial_key=self.stubs.ops_pb2.InitialKey(
                    name="admin", scopes=["admin:write"])),
            metadata=self.server.operator_md(), timeout=10)
        return slug, harness.key_md(reply.initial_key.key)

    def create_key(self, slug, md, replica=0, **fields):
        k = self.stubs.keys_pb2
        reply = self.keys[replica].CreateApiKey(
            k.CreateApiKeyRequest(tenant_slug=slug, name="w", **fields),
            metadata=md, timeout=10)
        self.assertRegex(reply.key, KEY_RE)
        return reply.id, reply.key

    def verify(self, replica, key, slug):
        """The verify reason for an end client in 10.1.0.0/16 (inside the
        keys' first CIDR, outside the narrowed one); THROTTLED when the
        failure throttle refused the attempt (a disabled key's use counts
        as a failure on its id, like a revoked key's)."""
        client_ip = "10.1.%d.%d" % (random.randrange(256),
                                    random.randrange(1, 255))
        try:
            reply = self.auth[replica].VerifyApiKey(
                self.stubs.auth_pb2.VerifyApiKeyRequest(
                    key=key, tenant_slug=slug,
                    required_scopes=["admin:users"], client_ip=client_ip),
                metadata=self.server.service_md(), timeout=10)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                return "THROTTLED"
            raise
        return self.stubs.auth_pb2.VerifyReason.Name(reply.reason)

    def tenant_id(self, slug):
        return int(self.server.rows(
            "SELECT id FROM tenants WHERE slug = '%s'" % slug)[0][0])

    def sweep_events(self, tenant_id):
        """{(key id, action): count} of the sweep's events."""
        rows = self.server.rows(
            "SELECT target_id, action, COUNT(*) FROM audit_events"
            " WHERE tenant_id = %d AND action IN ('%s')"
            " GROUP BY target_id, action" % (tenant_id,
                                             "','".join(SWEEP_ACTIONS)))
        return {(r[0], r[1]): int(r[2]) for r in rows}

    def wait_for(self, condition, what):
        return harness.wait_for(condition, what, timeout_s=60,
                                interval_s=0.05)

    def lease(self):
        rows = self.server.rows(
            "SELECT holder, expires_at FROM key_state_sweep_lease")
        return (rows[0][0], rows[0][1]) if rows else (None, None)

    def process_of(self, holder):
        """The index of the process holding the lease ("<replica id>:<its
        incarnation>")."""
        replica_id, _, incarnation = holder.partition(":")
        rows = self.server.rows(
            "SELECT address FROM replicas WHERE id = '%s'"
            " AND incarnation = '%s'" % (replica_id, incarnation))
        addresses = {r[0] for r in rows}
        for i, address in enumerate(self.addresses):
            if address in addresses:
                return i
        self.fail("no replica holds the lease %r (rows %r)" % (holder, rows))

    # ----- tests -------------------------------------------------------

    def test_a_restricting_edits_hold_on_every_replica_when_they_return(self):
        slug, md = self.create_tenant()
        k = self.stubs.keys_pb2
        edits = ("scopes", "cidrs", "disable")
        with VerifyHammer(3, lambda r, key: self.verify(r, key, slug)) as hammer:
            for i in range(18):
                key_id, secret = self.create_key(
                    slug, md, replica=i % 3,
                    scopes=["admin:read", "admin:users"],
                    allowed_cidrs=["10.0.0.0/8"])
                for replica in range(3):
                    self.assertEqual(self.verify(replica, secret, slug),
                                     "VALID")
                hammer.watch(secret)
                time.sleep(0.05)
                via = (i + 1) % 3
                edit = edits[i % 3]
                if edit == "scopes":
                    self.keys[via].UpdateApiKey(
                        k.UpdateApiKeyRequest(
                            tenant_slug=slug, id=key_id,
                            update_mask={"paths": ["scopes"]},
                            scopes=["admin:read"]),
                        metadata=md, timeout=30)
                elif edit == "cidrs":
                    self.keys[via].UpdateApiKey(
                        k.UpdateApiKeyRequest(
                            tenant_slug=slug, id=key_id,
                            update_mask={"paths": ["allowed_cidrs"]},
                            allowed_cidrs=["10.9.9.0/24"]),
                        metadata=md, timeout=30)
                else:
                    self.keys[via].DisableApiKey(
                        k.SetApiKeyDisabledRequest(tenant_slug=slug,
                                                   id=key_id),
                        metadata=md, timeout=30)
                hammer.killed(secret)
                hammer.check_now(secret)
                time.sleep(0.05)

        self.assertEqual(hammer.errors, [])
        after = hammer.after_kill()
        honoured = [(r, reason) for (r, s, t, reason) in after
                    if reason == "VALID"]
        self.assertEqual(honoured, [],
                         "a replica honoured a key after its restricting edit")
        # Not vacuous: every replica was asked after the edits and accepted
        # the keys before, and every kind of edit was seen refusing.
        for replica in range(3):
            self.assertGreaterEqual(
                sum(1 for (r, _, _, _) in after if r == replica), 18)
            self.assertTrue(hammer.accepted_by(replica))
        reasons = {reason for (_, _, _, reason) in after}
        self.assertTrue({"INSUFFICIENT_SCOPE", "IP_NOT_ALLOWED",
                         "DISABLED"} <= reasons, reasons)
        print(f"\nkey_management_replica_test: {len(hammer.records)} "
              f"verifications, {len(after)} after a restricting edit "
              "returned, none honoured", file=sys.stderr)

    def test_b_the_sweep_announces_each_state_once_whoever_sweeps(self):
        slug, md = self.create_tenant()
        tid = self.tenant_id(slug)
        s = self.stubs.settings_pb2
        self.settings[1].UpdateSettings(
            s.UpdateSettingsRequest(
                tenant_slug=slug, key_policy=s.KeyPolicyPatch(
                    rotation_period_days=30, inactive_after_days=60)),
            metadata=md, timeout=10)
        ids = {"due": [], "idle": [], "expiring": [], "fresh": []}
        for group in ids:
            for i in range(6):
                fields = {"scopes": ["admin:read"]}
                if group == "expiring":
                    ts = timestamp_pb2.Timestamp()
                    ts.FromSeconds(int(time.time()) + 3 * 86400)
                    fields["expires_at"] = ts
                key_id, _ = self.create_key(slug, md, replica=i % 3, **fields)
                ids[group].append(key_id)

        def age(key_ids, days):
            self.server.sql(
                "UPDATE api_keys SET created_at = created_at - INTERVAL %d DAY,"
                " rotated_at = rotated_at - INTERVAL %d DAY WHERE id IN ('%s')"
                % (days, days, "','".join(key_ids)))

        age(ids["due"], 31)
        age(ids["idle"], 61)
        expected = {}
        for key_id in ids["due"]:
            expected[(key_id, "api_key.rotation_due")] = 1
        for key_id in ids["idle"]:
            expected[(key_id, "api_key.rotation_due")] = 1
            expected[(key_id, "api_key.inactive")] = 1
        for key_id in ids["expiring"]:
            expected[(key_id, "api_key.expiring")] = 1
        self.wait_for(lambda: sum(self.sweep_events(tid).values())
                      >= len(expected), "the sweep's first events")

        # The holder dies; another replica takes the lease over when it
        # runs out, and sweeps (it renews the lease twice) without
        # announcing anything again.
        holder, _ = self.lease()
        victim = self.process_of(holder)
        self.processes[victim].kill()
        new_holder = self.wait_for(
            lambda: self.lease()[0] if self.lease()[0] not in (None, holder)
            else None, "another replica to take the sweep lease")
        first_expiry = self.lease()[1]
        self.wait_for(lambda: self.lease()[1] > first_expiry,
                      "the new holder to sweep")
        second_expiry = self.lease()[1]
        self.wait_for(lambda: self.lease()[1] > second_expiry,
                      "the new holder to sweep again")
        self.assertEqual(self.sweep_events(tid), expected)

        # A rotation restarts the period: due again a period later, announced
        # once more; a key left unused turns inactive, announced once.
        survivor = next(i for i in range(3) if i != victim)
        due_key = ids["due"][0]
        self.keys[survivor].RotateApiKey(
            self.stubs.keys_pb2.RotateApiKeyRequest(tenant_slug=slug,
                                                    id=due_key),
            metadata=md, timeout=30)
        self.server.sql(
            "UPDATE api_keys SET rotated_at = rotated_at - INTERVAL 31 DAY"
            " WHERE id = '%s'" % due_key)
        age(ids["fresh"][:1], 61)
        expected[(due_key, "api_key.rotation_due")] = 2
        expected[(ids["fresh"][0], "api_key.rotation_due")] = 1
        expected[(ids["fresh"][0], "api_key.inactive")] = 1
        self.wait_for(lambda: sum(self.sweep_events(tid).values())
                      >= sum(expected.values()), "the new states' events")
        expiry = self.lease()[1]
        self.wait_for(lambda: self.lease()[1] > expiry, "one more sweep")
        expiry = self.lease()[1]
        self.wait_for(lambda: self.lease()[1] > expiry, "one more sweep")
        self.assertEqual(self.sweep_events(tid), expected)
        self.assertNotEqual(new_holder, holder)
        print(f"\nkey_management_replica_test: {sum(expected.values())} sweep "
              "events, each once, across a lease takeover", file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
