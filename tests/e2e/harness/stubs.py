"""Python gRPC stubs of proto/lumo, generated once per test run.

Every test that speaks gRPC gets its stubs here, the same way:

    stubs = harness.stubs()
    keys = stubs.keys_grpc.KeyServiceStub(channel)
    reply = keys.GetApiKey(stubs.keys_pb2.GetApiKeyRequest(...),
                           metadata=harness.key_md(key), timeout=10)

Each generated file lumo/<package>/v1/<name>.proto gives `<name>_pb2` and
`<name>_grpc` (its *_pb2_grpc module).

Generation: client/python's generator (lumokeys.generate: protoc with
Debian's grpc_python_plugin over every proto/lumo/**/*.proto, plus the
standard google/api protos they import from the system's googleapis
folder), into a folder with a GENERATED file holding a digest
of the protos. ctest runs `python3 -m harness.stubs <build>/tests/e2e/stubs`
once per run (the e2e_python_stubs fixture, docs/testing.md) and points
LUMO_TEST_STUBS_DIR at it; a folder generated from other protos than the
current ones is refused. Without LUMO_TEST_STUBS_DIR (a test run by hand) a
process generates its own copy once, in a temporary folder removed at exit.
"""

import atexit
import glob
import hashlib
import importlib
import os
import shutil
import sys
import tempfile
import threading

from harness.env import HarnessError, source_dir

STUBS_DIR_ENV = "LUMO_TEST_STUBS_DIR"
_MARKER = "GENERATED"


def _protos():
    root = os.path.join(source_dir(), "proto")
    protos = sorted(glob.glob(os.path.join(root, "lumo", "**", "*.proto"),
                              recursive=True))
    if not protos:
        raise HarnessError(f"no .proto files under {root}")
    return root, protos


def _digest(root, protos):
    """SHA-256 over the protos' relative paths and contents."""
    h = hashlib.sha256()
    for path in protos:
        h.update(os.path.relpath(path, root).encode() + b"\0")
        with open(path, "rb") as f:
            h.update(f.read() + b"\0")
    return h.hexdigest()


def _client_generator():
    """client/python's generator (lumokeys.generate): the tests generate
    their stubs the way a Python service does."""
    client = os.path.join(source_dir(), "client", "python")
    if client not in sys.path:
        sys.path.insert(0, client)
    from lumokeys import generate as client_generate
    return client_generate


def googleapis_proto_dir():
    """The system's googleapis folder the protos import from."""
    return _client_generator().GOOGLEAPIS_PROTO_DIR


def generate(out_dir):
    """Generates the stubs of every proto into `out_dir` (replaced whole,
    so a reader never sees a half-written folder), with a GENERATED marker
    holding the protos' digest."""
    root, protos = _protos()
    _client_generator().generate(out_dir, root)
    with open(os.path.join(out_dir, _MARKER), "w") as f:
        f.write(_digest(root, protos) + "\n")


def _check(directory):
    """HarnessError unless `directory` holds stubs of the current protos."""
    marker = os.path.join(directory, _MARKER)
    try:
        with open(marker) as f:
            recorded = f.read().strip()
    except OSError:
        raise HarnessError(
            f"{STUBS_DIR_ENV}={directory} holds no generated stubs; ctest "
            "generates them (fixture e2e_python_stubs), or unset "
            f"{STUBS_DIR_ENV} to generate a private copy") from None
    if recorded != _digest(*_protos()):
        raise HarnessError(
            f"the stubs in {directory} were generated from other protos; "
            "run the tests through ctest (it regenerates them) or unset "
            f"{STUBS_DIR_ENV}")


class Stubs:
    """The generated modules of every proto, imported from one folder.
    Immutable after construction."""

    def __init__(self, directory):
        if directory not in sys.path:
            sys.path.insert(0, directory)
        for path in sorted(glob.glob(os.path.join(directory, "lumo", "**",
                                                  "*_pb2.py"),
                                     recursive=True)):
            dotted = os.path.relpath(path, directory)[:-len(".py")].replace(
                os.sep, ".")
            name = os.path.basename(path)[:-len("_pb2.py")]
            if hasattr(self, name + "_pb2"):
                raise HarnessError(f"two protos named {name}.proto")
            pb2 = importlib.import_module(dotted)
            grpc_module = importlib.import_module(dotted + "_grpc")
            setattr(self, name + "_pb2", pb2)
            setattr(self, name + "_grpc", grpc_module)


_lock = threading.Lock()
_stubs = None


def stubs():
    """The stubs of this run (generated or checked on first use, then the
    same object). Thread-safe."""
    global _stubs
    with _lock:
        if _stubs is None:
            directory = os.environ.get(STUBS_DIR_ENV)
            if directory:
                _check(directory)
            else:
                directory = tempfile.mkdtemp(prefix="lumo-pystubs-")
                atexit.register(shutil.rmtree, directory, True)
                generate(directory)
            _stubs = Stubs(directory)
        return _stubs


def key_md(key, scheme="Bearer"):
    """gRPC metadata presenting the API key `key`."""
    return (("authorization", f"{scheme} {key}"),)


# grpc.health.v1.HealthCheckResponse.ServingStatus values. The health
# service is gRPC's own (no proto of ours), so its two tiny messages are
# encoded here: an empty request, a reply of at most field 1 (a varint).
HEALTH_UNKNOWN, HEALTH_SERVING, HEALTH_NOT_SERVING = 0, 1, 2


def health_status(channel, timeout):
    """The serving status grpc.health.v1.Health/Check reports for the
    whole server (service ""); grpc.RpcError when the call fails."""
    check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                request_serializer=lambda b: b,
                                response_deserializer=lambda b: b)
    reply = check(b"", timeout=timeout)
    if reply == b"":
        return HEALTH_UNKNOWN
    if len(reply) != 2 or reply[0] != 0x08 or reply[1] > 0x7f:
        raise HarnessError(f"unexpected health reply {reply!r}")
    return reply[1]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python3 -m harness.stubs OUT_DIR")
    generate(sys.argv[1])
    print(f"generated Python gRPC stubs in {sys.argv[1]}")
