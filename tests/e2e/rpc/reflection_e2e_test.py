"""gRPC server reflection on a real lumokeys-server: a generic tool (grpcurl,
Postman, Evans) lists our services and describes a method, with its standard
google.api.http route, without our protos.

The client is generated at run time from the reflection protocol's proto as
Debian ships it (golang-google-grpc-dev), the same way a tool's would be.
"""

import shutil
import subprocess
import sys
import tempfile
import unittest

import grpc
from google.protobuf import descriptor_pb2

import harness

REFLECTION_PROTO_DIR = "/usr/share/gocode/src/google.golang.org/grpc/reflection"
REFLECTION_PROTO = "grpc_reflection_v1alpha/reflection.proto"
GRPC_PYTHON_PLUGIN = "/usr/bin/grpc_python_plugin"


def _reflection_modules(work):
    subprocess.run(
        ["protoc", f"--proto_path={REFLECTION_PROTO_DIR}",
         f"--python_out={work}", f"--grpc_python_out={work}",
         f"--plugin=protoc-gen-grpc_python={GRPC_PYTHON_PLUGIN}",
         REFLECTION_PROTO], check=True, capture_output=True, timeout=120)
    sys.path.insert(0, work)
    from grpc_reflection_v1alpha import reflection_pb2, reflection_pb2_grpc
    return reflection_pb2, reflection_pb2_grpc


def _our_services():
    """Full names of every service in proto/lumo (from the test stubs)."""
    stubs = harness.stubs()
    names = set()
    for attr in dir(stubs):
        if attr.endswith("_pb2"):
            names.update(s.full_name for s in
                         getattr(stubs, attr).DESCRIPTOR.services_by_name
                         .values())
    return names


class ReflectionTest(harness.LumoServerTestCase):

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="reflection-")
        cls.addClassCleanup(shutil.rmtree, cls.work, True)
        cls.pb2, cls.pb2_grpc = _reflection_modules(cls.work)
        cls.ours = _our_services()
        super().setUpClass()
        cls.channel = grpc.insecure_channel(cls.server.address)
        cls.addClassCleanup(cls.channel.close)
        cls.stub = cls.pb2_grpc.ServerReflectionStub(cls.channel)

    def ask(self, **request):
        replies = list(self.stub.ServerReflectionInfo(
            iter([self.pb2.ServerReflectionRequest(**request)]),
            timeout=30 * harness.TIME_SCALE))
        self.assertEqual(len(replies), 1)
        reply = replies[0]
        self.assertFalse(reply.HasField("error_response"),
                         reply.error_response.error_message)
        return reply

    def test_lists_our_services(self):
        reply = self.ask(list_services="")
        listed = {s.name for s in reply.list_services_response.service}
        self.assertIn("grpc.reflection.v1alpha.ServerReflection", listed)
        self.assertIn("grpc.health.v1.Health", listed)
        lumo = {name for name in listed if name.startswith("lumo.")}
        # Every listed service of ours is one the protos define, and the
        # services callers need are there.
        self.assertLessEqual(lumo, self.ours)
        for needed in ("lumo.keys.v1.KeyService", "lumo.auth.v1.AuthService",
                       "lumo.audit.v1.AuditService",
                       "lumo.admin.v1.RegistrationService"):
            self.assertIn(needed, lumo)

    def test_describes_a_method_with_its_route(self):
        reply = self.ask(file_containing_symbol="lumo.keys.v1.KeyService")
        files = {}
        for raw in reply.file_descriptor_response.file_descriptor_proto:
            f = descriptor_pb2.FileDescriptorProto.FromString(raw)
            files[f.name] = f
        self.assertIn("lumo/keys/v1/keys.proto", files)
        keys = files["lumo/keys/v1/keys.proto"]
        (service,) = [s for s in keys.service if s.name == "KeyService"]
        (method,) = [m for m in service.method if m.name == "RotateApiKey"]
        self.assertEqual(method.input_type, ".lumo.keys.v1.RotateApiKeyRequest")
        self.assertFalse(method.client_streaming or method.server_streaming)
        # The standard route travels with the descriptor: generic tools see
        # it. The options arrive as bytes of the extension; decode with the
        # standard annotation (generated in the test stubs).
        from google.api import annotations_pb2
        options = descriptor_pb2.MethodOptions.FromString(
            method.options.SerializeToString())
        route = options.Extensions[annotations_pb2.http]
        self.assertEqual(route.post,
                         "/t/{tenant_slug}/api/v1/admin/api-keys/{id}/rotate")
        self.assertIn("google/api/annotations.proto", keys.dependency)
        # The request message is described too (the file holds it).
        (request,) = [m for m in keys.message_type
                      if m.name == "RotateApiKeyRequest"]
        self.assertIn("id", [f.name for f in request.field])


if __name__ == "__main__":
    unittest.main()
