"""Runs Debian's protoc-gen-grpc-gateway (1.6.4) on lumo/keys/v1/keys.proto.

    generate.py <descriptor set> <GOPATH src dir> <go import path>

Writes <src dir>/<go import path>/keys.pb.gw.go.

The plugin predates proto3 `optional`, and protoc refuses to hand such files
to a plugin that does not declare support, so this calls the plugin itself
with the CodeGeneratorRequest protoc would send, each `optional` field
presented as what it is on the wire and in the descriptor: a field in a
one-field oneof (the `proto3_optional` mark cleared). The generated handlers
read path variables and query parameters by name and never depend on that
mark.
"""

import os
import subprocess
import sys

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2

PLUGIN = "/usr/bin/protoc-gen-grpc-gateway"
PROTO = "lumo/keys/v1/keys.proto"


def clear_proto3_optional(message):
    for field in message.field:
        field.proto3_optional = False
    for nested in message.nested_type:
        clear_proto3_optional(nested)


def main(descriptor_set, out_dir, import_path):
    with open(descriptor_set, "rb") as f:
        files = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    request = plugin_pb2.CodeGeneratorRequest()
    request.file_to_generate.append(PROTO)
    request.parameter = f"logtostderr=true,M{PROTO}={import_path}"
    for proto in files.file:
        copy = request.proto_file.add()
        copy.CopyFrom(proto)
        for message in copy.message_type:
            clear_proto3_optional(message)
    result = subprocess.run([PLUGIN], input=request.SerializeToString(),
                            capture_output=True, timeout=300)
    if result.returncode != 0:
        sys.exit(f"{PLUGIN} failed: {result.stderr.decode(errors='replace')}")
    response = plugin_pb2.CodeGeneratorResponse.FromString(result.stdout)
    if response.error:
        sys.exit(f"{PLUGIN}: {response.error}")
    for generated in response.file:
        path = os.path.join(out_dir, generated.name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(generated.content)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
