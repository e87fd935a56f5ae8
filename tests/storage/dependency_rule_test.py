"""The dependency rule of the storage seam (docs/storage.md).

The layers above storage (server/service, server/rpc, server/app,
server/bench) see only the store interfaces: none of their sources may
include a storage backend (server/storage/mysql/..., the backend factory,
Connector/C++ headers), directly or through the project headers they
include, and none of their CMake targets may link a backend library,
directly or transitively.

The link closures come from CMake (tests/storage/CMakeLists.txt writes them
at configure time to LUMO_LINK_CLOSURE_FILE); the include closures are
computed here from the sources. Each check also runs on a target or file
that legitimately uses the backend, so that it cannot pass by finding
nothing.
"""

import os
import re
import unittest

SOURCE_DIR = os.environ.get(
    "LUMO_SOURCE_DIR",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
LINK_CLOSURE_FILE = os.environ.get("LUMO_LINK_CLOSURE_FILE", "")

# The directories above storage, and their CMake targets.
GUARDED_DIRS = ["server/service", "server/rpc", "server/app", "server/bench"]
GUARDED_TARGETS = ["lumo_service", "lumo_rpc", "lumo_app", "lumo_bench_service"]

# What they must not reach.
FORBIDDEN_LIBRARIES = {"lumo_storage_mysql", "lumo_storage_backends"}
FORBIDDEN_PROJECT_HEADER = re.compile(
    r"^server/storage/(mysql/|backend_factory\.h$)")
FORBIDDEN_SYSTEM_HEADER = re.compile(r"^(cppconn/|mysql)")

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.MULTILINE)


def read_link_closures():
    """{target: set(libraries)} as CMake computed them."""
    closures = {}
    with open(LINK_CLOSURE_FILE, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            target, _, libraries = line.partition(":")
            closures[target.strip()] = set(
                l for l in libraries.strip().split(";") if l)
    return closures


def include_violations(path):
    """Forbidden includes reachable from `path` (relative to the source
    root), each as the include chain that reaches it."""
    violations = []
    seen = set()

    def walk(relative, chain):
        if relative in seen:
            return
        seen.add(relative)
        full = os.path.join(SOURCE_DIR, relative)
        if not os.path.isfile(full):
            return  # a generated or external header
        with open(full, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for kind, included in INCLUDE.findall(text):
            here = chain + [included]
            if kind == "<":
                if FORBIDDEN_SYSTEM_HEADER.match(included):
                    violations.append(" -> ".join(here))
                continue
            if FORBIDDEN_PROJECT_HEADER.match(included):
                violations.append(" -> ".join(here))
                continue
            walk(included, here)

    walk(path, [path])
    return violations


def guarded_sources():
    for directory in GUARDED_DIRS:
        root = os.path.join(SOURCE_DIR, directory)
        for dirpath, _, files in os.walk(root):
            for name in sorted(files):
                if name.endswith((".h", ".cc")):
                    yield os.path.relpath(os.path.join(dirpath, name),
                                          SOURCE_DIR)


class DependencyRuleTest(unittest.TestCase):

    def test_no_layer_above_storage_includes_a_backend(self):
        sources = list(guarded_sources())
        self.assertGreater(len(sources), 20, "found too few sources to check")
        violations = []
        for source in sources:
            violations.extend(include_violations(source))
        print(f"checked the include closure of {len(sources)} sources in "
              f"{', '.join(GUARDED_DIRS)}")
        self.assertEqual(violations, [],
                         "sources above storage reach a storage backend:\n" +
                         "\n".join(violations))

    def test_the_include_check_finds_a_backend_where_there_is_one(self):
        # The factory is the one library meant to name the backend.
        found = include_violations("server/storage/backend_factory.cc")
        self.assertTrue(
            any("server/storage/mysql/" in v for v in found), found)
        # And a backend header reaches Connector/C++.
        found = include_violations("server/storage/mysql/mysql_session.h")
        self.assertTrue(any("cppconn/" in v for v in found), found)

    def test_no_layer_above_storage_links_a_backend(self):
        self.assertTrue(LINK_CLOSURE_FILE, "LUMO_LINK_CLOSURE_FILE is not set")
        closures = read_link_closures()
        violations = []
        for target in GUARDED_TARGETS:
            self.assertIn(target, closures)
            self.assertIn("lumo_storage", closures[target],
                          f"{target}: the closure looks incomplete")
            bad = sorted(closures[target] & FORBIDDEN_LIBRARIES)
            if bad:
                violations.append(f"{target} links {', '.join(bad)}")
        self.assertEqual(violations, [],
                         "targets above storage link a storage backend:\n" +
                         "\n".join(violations))

    def test_the_link_check_finds_a_backend_where_there_is_one(self):
        closures = read_link_closures()
        # The server's main links the factory, and through it the backend.
        self.assertIn("lumo_storage_mysql", closures["lumokeys-server"])
        self.assertIn("lumo_storage_backends", closures["lumokeys-server"])


if __name__ == "__main__":
    unittest.main()
