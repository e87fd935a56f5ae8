"""The standard route annotations are read the same way by the ecosystem's
generator as by our gateway (docs/gateway.md, "Routes come from the protos").

Debian's golang-grpc-gateway ships protoc-gen-swagger (the generator later
renamed protoc-gen-openapiv2). It is run on our protos and its document is
compared, method by method, with the OpenAPI document our gateway prints
(`lumokeys-gateway --print_openapi`, built from the route table it serves):
same verb, same path template, same path variables, a request body on both
or on neither. Both must cover exactly the methods that carry
`google.api.http` in the protos.

Debian's generator (1.6.4) predates proto3 `optional`, and protoc refuses to
hand such files to a plugin that does not declare support. The test
therefore calls the plugin itself, with the CodeGeneratorRequest protoc would
send, in which each `optional` field is presented as what it is on the wire
and in the descriptor: a field in a one-field oneof (the `proto3_optional`
mark cleared). Routes do not depend on that mark.
"""

import json
import os
import re
import subprocess
import tempfile
import unittest

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2

import harness
from harness.stubs import googleapis_proto_dir

SWAGGER_PLUGIN = "/usr/bin/protoc-gen-swagger"
VERBS = ("get", "put", "post", "delete", "patch")


def _normalise(path):
    """`{id=*}` and `{path=**}` name the variable the same as `{id}`."""
    return re.sub(r"\{([^}=]+)=[^}]*\}", r"{\1}", path)


def _clear_proto3_optional(message):
    for field in message.field:
        field.proto3_optional = False
    for nested in message.nested_type:
        _clear_proto3_optional(nested)


def _descriptor_set(root, protos):
    with tempfile.TemporaryDirectory() as work:
        out = os.path.join(work, "all.pb")
        subprocess.run(
            ["protoc", f"--proto_path={root}",
             f"--proto_path={googleapis_proto_dir()}", "--include_imports",
             "--include_source_info", f"--descriptor_set_out={out}",
             *[os.path.relpath(p, root) for p in protos]],
            check=True, capture_output=True, timeout=300)
        with open(out, "rb") as f:
            return descriptor_pb2.FileDescriptorSet.FromString(f.read())


def annotated_methods(files, http_extension):
    """{"pkg.Service.Method"} of every method with google.api.http."""
    names = set()
    for f in files.file:
        if not f.name.startswith("lumo/"):
            continue
        for service in f.service:
            for method in service.method:
                if method.options.HasExtension(http_extension):
                    names.add(f"{f.package}.{service.name}.{method.name}")
    return names


def generator_routes(files):
    """Routes as Debian's protoc-gen-swagger sees them: {"pkg.S.M": (verb,
    path, path variables, has body)}. One plugin call per file (the plugin
    refuses several packages in one request)."""
    routes = {}
    for f in files.file:
        if not f.name.startswith("lumo/") or not f.service:
            continue
        request = plugin_pb2.CodeGeneratorRequest()
        request.file_to_generate.append(f.name)
        request.parameter = "logtostderr=true"
        for proto in files.file:
            copy = request.proto_file.add()
            copy.CopyFrom(proto)
            for message in copy.message_type:
                _clear_proto3_optional(message)
        result = subprocess.run([SWAGGER_PLUGIN],
                                input=request.SerializeToString(),
                                capture_output=True, timeout=120)
        if result.returncode != 0:
            raise AssertionError(f"{SWAGGER_PLUGIN} failed on {f.name}: "
                                 f"{result.stderr.decode(errors='replace')}")
        response = plugin_pb2.CodeGeneratorResponse.FromString(result.stdout)
        if response.error:
            raise AssertionError(f"{SWAGGER_PLUGIN} on {f.name}: "
                                 f"{response.error}")
        services = {s.name for s in f.service}
        for out in response.file:
            document = json.loads(out.content)
            for path, item in document.get("paths", {}).items():
                for verb, op in item.items():
                    if verb not in VERBS:
                        continue
                    (service,) = op["tags"]
                    if service not in services:
                        raise AssertionError(f"unknown service tag {service}")
                    params = op.get("parameters", [])
                    name = f"{f.package}.{service}.{op['operationId']}"
                    if name in routes:
                        raise AssertionError(f"{name} has two routes")
                    routes[name] = (
                        verb.upper(), _normalise(path),
                        tuple(sorted(p["name"] for p in params
                                     if p["in"] == "path")),
                        any(p["in"] == "body" for p in params))
    return routes


def gateway_routes():
    """Routes our gateway serves, from the document it prints."""
    result = subprocess.run(
        [harness.built_program("gateway", "lumokeys-gateway"),
         "--print_openapi"], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"--print_openapi failed: {result.stderr}")
    document = json.loads(result.stdout)
    routes = {}
    for path, item in document["paths"].items():
        for verb, op in item.items():
            if verb not in VERBS:
                continue
            name = op["summary"]  # the method's full name
            if name in routes:
                raise AssertionError(f"{name} has two routes")
            routes[name] = (
                verb.upper(), _normalise(path),
                tuple(sorted(p["name"] for p in op.get("parameters", [])
                             if p["in"] == "path")),
                "requestBody" in op)
    return routes


class AnnotationsInteropTest(unittest.TestCase):

    def test_generator_routes_equal_gateway_routes_method_by_method(self):
        stubs = harness.stubs()  # makes google.api.annotations_pb2 importable
        del stubs
        from google.api import annotations_pb2

        root = os.path.join(harness.source_dir(), "proto")
        protos = [os.path.join(d, name)
                  for d, _, names in os.walk(os.path.join(root, "lumo"))
                  for name in names if name.endswith(".proto")]
        files = _descriptor_set(root, protos)
        annotated = annotated_methods(files, annotations_pb2.http)
        generated = generator_routes(files)
        ours = gateway_routes()

        self.assertGreater(len(annotated), 0)
        self.assertEqual(set(generated), annotated,
                         "methods the generator routes vs annotated methods")
        self.assertEqual(set(ours), annotated,
                         "methods the gateway routes vs annotated methods")
        for name in sorted(annotated):
            with self.subTest(method=name):
                self.assertEqual(generated[name], ours[name])
        print(f"routes equal, method by method: {len(annotated)} of "
              f"{len(annotated)} annotated methods")


if __name__ == "__main__":
    unittest.main()
