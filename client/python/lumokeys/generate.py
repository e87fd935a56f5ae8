"""Generates the Python gRPC stubs of LumoKeys' protos with protoc and
Debian's grpc_python_plugin (python3-grpcio), the ordinary tool.

    python3 -m lumokeys.generate [<out dir>]

Default out dir: lumokeys/_generated beside this file (not committed). The
protos are read from the repository's proto/ (or LUMOKEYS_PROTO_DIR) and the
standard google/api protos they import from the system's googleapis folder
(LUMO_GOOGLEAPIS_PROTO_DIR, default where Debian's
golang-github-gogo-googleapis-dev installs them).
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile

GRPC_PYTHON_PLUGIN = "/usr/bin/grpc_python_plugin"
GOOGLEAPIS_PROTO_DIR = os.environ.get(
    "LUMO_GOOGLEAPIS_PROTO_DIR",
    "/usr/share/gocode/src/github.com/gogo/googleapis")
GOOGLEAPIS_PROTOS = ("google/api/http.proto", "google/api/annotations.proto")
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "_generated")


def proto_root():
    """proto/ of the repository this package sits in, or
    LUMOKEYS_PROTO_DIR."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.environ.get("LUMOKEYS_PROTO_DIR") or os.path.normpath(
        os.path.join(here, "..", "..", "..", "proto"))


def lumo_protos(root):
    protos = sorted(glob.glob(os.path.join(root, "lumo", "**", "*.proto"),
                              recursive=True))
    if not protos:
        raise RuntimeError(f"no .proto files under {root}")
    return protos


def generate(out_dir, root=None):
    """Generates every proto's messages and stubs into `out_dir`, replacing
    it whole (a reader never sees a half-written folder). Python packages
    get an __init__.py under lumo/; google/ stays a namespace package so
    that it merges with the installed google.protobuf."""
    root = root or proto_root()
    protos = lumo_protos(root)
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".gen-", dir=parent)
    try:
        for args in (
                [f"--proto_path={GOOGLEAPIS_PROTO_DIR}",
                 f"--python_out={work}", *GOOGLEAPIS_PROTOS],
                [f"--proto_path={root}",
                 f"--proto_path={GOOGLEAPIS_PROTO_DIR}",
                 f"--python_out={work}", f"--grpc_python_out={work}",
                 f"--plugin=protoc-gen-grpc_python={GRPC_PYTHON_PLUGIN}",
                 *protos]):
            result = subprocess.run(["protoc", *args], capture_output=True,
                                    text=True, timeout=300)
            if result.returncode != 0:
                raise RuntimeError(f"protoc failed:\n{result.stderr}")
        for directory, _, _ in os.walk(os.path.join(work, "lumo")):
            open(os.path.join(directory, "__init__.py"), "a").close()
        shutil.rmtree(out_dir, ignore_errors=True)
        os.rename(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return protos


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT
    generate(out)
    print(f"generated LumoKeys Python stubs in {out}")
