"""The generated modules (lumokeys.generate), imported from LUMOKEYS_STUBS_DIR
or lumokeys/_generated. Thread-safe; imports once."""

import importlib
import os
import sys
import threading
import types

from lumokeys.generate import DEFAULT_OUT

_lock = threading.Lock()
_modules = None


def modules():
    """A namespace with `<name>_pb2` and `<name>_pb2_grpc` for every
    lumo/<package>/v1/<name>.proto (auth_pb2, keys_pb2_grpc, ...)."""
    global _modules
    with _lock:
        if _modules is None:
            directory = os.environ.get("LUMOKEYS_STUBS_DIR") or DEFAULT_OUT
            if not os.path.isdir(os.path.join(directory, "lumo")):
                raise RuntimeError(
                    f"no generated stubs in {directory}: run "
                    "`python3 -m lumokeys.generate` first")
            if directory not in sys.path:
                sys.path.insert(0, directory)
            found = types.SimpleNamespace()
            for package in ("auth", "keys"):
                base = f"lumo.{package}.v1.{package}"
                setattr(found, f"{package}_pb2",
                        importlib.import_module(base + "_pb2"))
                setattr(found, f"{package}_pb2_grpc",
                        importlib.import_module(base + "_pb2_grpc"))
            _modules = found
        return _modules
