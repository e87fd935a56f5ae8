"""Python gRPC clients against a real lumokeys-server (interoperability and
the metadata conventions, independent of the C++ client), with the stubs
generated from proto/ (harness.stubs()).
"""

import secrets
import unittest

import grpc

import harness
from harness import KEY_RE


class GrpcClientTest(harness.LumoServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.stubs = harness.stubs()
        super().setUpClass()
        cls.channel = grpc.insecure_channel(cls.server.address)
        cls.addClassCleanup(cls.channel.close)
        cls.keys = cls.stubs.keys_grpc.KeyServiceStub(cls.channel)
        cls.auth = cls.stubs.auth_grpc.AuthServiceStub(cls.channel)
        cls.ops = cls.stubs.ops_grpc.OperatorServiceStub(cls.channel)

    # ----- helpers -----------------------------------------------------

    def create_tenant(self, scopes=("admin:write",)):
        slug = "py-" + secrets.token_hex(4)
        ops = self.stubs.ops_pb2
        reply = self.ops.CreateTenant(
            ops.CreateTenantRequest(
                slug=slug,
                initial_key=ops.InitialKey(name="Admin key",
                                           scopes=list(scopes))),
            metadata=self.server.operator_md(), timeout=10)
        self.assertEqual(reply.tenant.slug, slug)
        self.assertRegex(reply.initial_key.key, KEY_RE)
        return slug, reply.initial_key.key

    def verify(self, key, slug, scopes=()):
        return self.auth.VerifyApiKey(
            self.stubs.auth_pb2.VerifyApiKeyRequest(
                key=key, tenant_slug=slug, required_scopes=list(scopes)),
            metadata=self.server.service_md(), timeout=10)

    def assert_reason(self, key, slug, reason_name):
        reply = self.verify(key, slug)
        self.assertEqual(self.stubs.auth_pb2.VerifyReason.Name(reply.reason),
                         reason_name)
        self.assertEqual(reply.valid, reason_name == "VALID")
        return reply

    def assert_code(self, code, call, *args, **kwargs):
        with self.assertRaises(grpc.RpcError) as caught:
            call(*args, timeout=10, **kwargs)
        self.assertEqual(caught.exception.code(), code,
                         caught.exception.details())
        return caught.exception

    # ----- tests -------------------------------------------------------

    def test_health_serving(self):
        check = self.channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=lambda raw: raw,
            response_deserializer=lambda raw: raw)
        # HealthCheckResponse{status: SERVING}: field 1, varint 1.
        self.assertEqual(check(b"", timeout=10), b"\x08\x01")

    def test_key_lifecycle(self):
        slug, admin_key = self.create_tenant()
        reply = self.assert_reason(admin_key, slug, "VALID")
        self.assertEqual(reply.key.tenant_slug, slug)
        self.assertEqual(reply.key.id, admin_key[4:16])
        self.assertEqual(list(reply.key.scopes), ["admin:write"])

        k = self.stubs.keys_pb2
        md = harness.key_md(admin_key)
        created = self.keys.CreateApiKey(
            k.CreateApiKeyRequest(tenant_slug=slug, name="worker",
                                  scopes=["admin:read"]),
            metadata=md, timeout=10)
        self.assertRegex(created.key, KEY_RE)
        self.assertEqual(created.prefix, f"lmk_{created.id}")
        self.assertEqual(created.status, "active")
        self.assert_reason(created.key, slug, "VALID")

        listing = self.keys.ListApiKeys(k.ListApiKeysRequest(tenant_slug=slug),
                                        metadata=md, timeout=10)
        self.assertEqual({x.id for x in listing.data},
                         {admin_key[4:16], created.id})
        self.assertTrue(all(x.key == "" for x in listing.data),
                        "List must never return a full key")
        self.assertEqual(listing.meta.total, 2)
        got = self.keys.GetApiKey(k.GetApiKeyRequest(tenant_slug=slug,
                                                     id=created.id),
                                  metadata=md, timeout=10)
        self.assertEqual(got.key, "", "Get must never return a full key")

        rotated = self.keys.RotateApiKey(
            k.RotateApiKeyRequest(tenant_slug=slug, id=created.id),
            metadata=md, timeout=10)
        self.assertEqual(rotated.id, created.id)
        self.assertRegex(rotated.key, KEY_RE)
        self.assertNotEqual(rotated.key, created.key)
        self.assert_reason(created.key, slug, "ROTATED")
        self.assert_reason(rotated.key, slug, "VALID")

        revoked = self.keys.RevokeApiKey(
            k.RevokeApiKeyRequest(tenant_slug=slug, id=created.id),
            metadata=md, timeout=10)
        self.assertEqual(revoked.status, "revoked")
        self.assertEqual(revoked.key, "")
        self.assert_reason(rotated.key, slug, "REVOKED")
        self.assert_code(grpc.StatusCode.FAILED_PRECONDITION,
                         self.keys.RotateApiKey,
                         k.RotateApiKeyRequest(tenant_slug=slug,
                                               id=created.id),
                         metadata=md)

        self.keys.DeleteApiKey(k.DeleteApiKeyRequest(tenant_slug=slug,
                                                     id=created.id),
                               metadata=md, timeout=10)
        self.assert_code(grpc.StatusCode.NOT_FOUND, self.keys.GetApiKey,
                         k.GetApiKeyRequest(tenant_slug=slug, id=created.id),
                         metadata=md)
        self.assert_reason(rotated.key, slug, "NOT_FOUND")

    def test_rotate_with_grace_period(self):
        slug, admin_key = self.create_tenant()
        k = self.stubs.keys_pb2
        md = harness.key_md(admin_key)
        created = self.keys.CreateApiKey(
            k.CreateApiKeyRequest(tenant_slug=slug, name="graceful",
                                  scopes=["admin:read"]),
            metadata=md, timeout=10)
        rotated = self.keys.RotateApiKey(
            k.RotateApiKeyRequest(tenant_slug=slug, id=created.id,
                                  grace_period_seconds=600),
            metadata=md, timeout=10)
        self.assertTrue(rotated.HasField("previous_secret_valid_until"))
        self.assert_reason(created.key, slug, "VALID")
        self.assert_reason(rotated.key, slug, "VALID")

    def test_unauthenticated_callers(self):
        slug, admin_key = self.create_tenant()
        k = self.stubs.keys_pb2
        request = k.ListApiKeysRequest(tenant_slug=slug)
        self.assert_code(grpc.StatusCode.UNAUTHENTICATED,
                         self.keys.ListApiKeys, request)
        bogus = "lmk_" + "A" * 12 + "_" + "B" * 49
        error = self.assert_code(grpc.StatusCode.UNAUTHENTICATED,
                                 self.keys.ListApiKeys, request,
                                 metadata=harness.key_md(bogus))
        self.assertNotIn("B" * 43, error.details() or "")
        self.assert_code(grpc.StatusCode.UNAUTHENTICATED,
                         self.keys.ListApiKeys, request,
                         metadata=harness.key_md("not-a-key"))
        # Two different keys: refused, never "first one wins".
        other_slug, other_key = self.create_tenant()
        self.assert_code(grpc.StatusCode.UNAUTHENTICATED,
                         self.keys.ListApiKeys, request,
                         metadata=harness.key_md(admin_key) +
                         (("x-api-key", other_key),))
        # A key of another tenant.
        self.assert_code(grpc.StatusCode.UNAUTHENTICATED,
                         self.keys.ListApiKeys, request,
                         metadata=harness.key_md(other_key))
        # Verify and the operator service need their own tokens.
        verify_request = self.stubs.auth_pb2.VerifyApiKeyRequest(key=admin_key)
        self.assert_code(grpc.StatusCode.UNAUTHENTICATED,
                         self.auth.VerifyApiKey, verify_request)
        self.assert_code(grpc.StatusCode.UNAUTHENTICATED,
                         self.auth.VerifyApiKey, verify_request,
                         metadata=(("x-lumo-service-token", "wrong"),))
        self.assert_code(grpc.StatusCode.UNAUTHENTICATED,
                         self.ops.GetTenant,
                         self.stubs.ops_pb2.GetTenantRequest(slug=slug))
        self.assert_code(grpc.StatusCode.UNAUTHENTICATED,
                         self.ops.GetTenant,
                         self.stubs.ops_pb2.GetTenantRequest(slug=slug),
                         metadata=(("x-lumo-operator-token",
                                    self.server.service_token),))
        # An API key is not an operator credential.
        with self.assertRaises(grpc.RpcError) as caught:
            self.ops.GetTenant(
                self.stubs.ops_pb2.GetTenantRequest(slug=slug),
                metadata=harness.key_md(admin_key), timeout=10)
        self.assertIn(caught.exception.code(),
                      (grpc.StatusCode.UNAUTHENTICATED,
                       grpc.StatusCode.PERMISSION_DENIED))

    def test_key_presentation_forms_and_scopes(self):
        slug, admin_key = self.create_tenant()
        k = self.stubs.keys_pb2
        request = k.ListApiKeysRequest(tenant_slug=slug)
        for md in (harness.key_md(admin_key), harness.key_md(admin_key, "ApiKey"),
                   (("x-api-key", admin_key),)):
            with self.subTest(header=md[0][0], scheme=md[0][1].split()[0]):
                self.keys.ListApiKeys(request, metadata=md, timeout=10)
        reader = self.keys.CreateApiKey(
            k.CreateApiKeyRequest(tenant_slug=slug, name="reader",
                                  scopes=["admin:read"]),
            metadata=harness.key_md(admin_key), timeout=10).key
        self.keys.ListApiKeys(request, metadata=harness.key_md(reader),
                              timeout=10)
        # admin:read may not write, nor mint admin:write (no escalation).
        self.assert_code(grpc.StatusCode.PERMISSION_DENIED,
                         self.keys.CreateApiKey,
                         k.CreateApiKeyRequest(tenant_slug=slug, name="x",
                                               scopes=["admin:read"]),
                         metadata=harness.key_md(reader))
        users = self.keys.CreateApiKey(
            k.CreateApiKeyRequest(tenant_slug=slug, name="users",
                                  scopes=["admin:users"]),
            metadata=harness.key_md(admin_key), timeout=10).key
        self.assert_code(grpc.StatusCode.PERMISSION_DENIED,
                         self.keys.ListApiKeys, request,
                         metadata=harness.key_md(users))
        self.assertEqual(
            self.stubs.auth_pb2.VerifyReason.Name(
                self.verify(reader, slug, ["admin:write"]).reason),
            "INSUFFICIENT_SCOPE")
        self.assert_code(grpc.StatusCode.INVALID_ARGUMENT,
                         self.keys.CreateApiKey,
                         k.CreateApiKeyRequest(tenant_slug=slug, name="",
                                               scopes=["admin:read"]),
                         metadata=harness.key_md(admin_key))
        self.assert_code(grpc.StatusCode.INVALID_ARGUMENT,
                         self.keys.CreateApiKey,
                         k.CreateApiKeyRequest(tenant_slug=slug, name="x",
                                               scopes=[]),
                         metadata=harness.key_md(admin_key))


if __name__ == "__main__":
    unittest.main()
