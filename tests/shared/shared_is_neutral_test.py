"""server/shared holds the libraries both binaries link, so it must stay
neutral (server/shared/CMakeLists.txt): its sources include only
server/shared, the neutral observability library (server/observability),
Abseil and the C/C++ standard headers, and its CMake targets link only
those. A server domain library (core, storage, service, rpc, app, ...)
reached from here would be pulled into lumokeys-gateway."""
import os
import re
import unittest

SOURCE_DIR = os.environ.get("LUMO_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.path.join(SOURCE_DIR, "server", "shared")

ALLOWED_INCLUDES = ("server/shared/", "server/observability/", "absl/")
# Targets of server/observability (all Abseil only), Abseil, threads.
ALLOWED_LINKS = re.compile(
    r"^(PUBLIC|PRIVATE|INTERFACE|lumo_process|lumo_log|lumo_metrics|"
    r"lumo_observability_flags|absl::\w+|Threads::Threads)$")


def shared_files(suffixes):
    for root, _, names in os.walk(SHARED):
        for name in sorted(names):
            if name.endswith(suffixes):
                yield os.path.join(root, name)


class SharedIsNeutralTest(unittest.TestCase):
    def test_sources_include_only_neutral_headers(self):
        found = 0
        for path in shared_files((".h", ".cc")):
            with open(path) as f:
                for number, line in enumerate(f, 1):
                    m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                    if not m:
                        continue
                    found += 1
                    self.assertTrue(
                        m.group(1).startswith(ALLOWED_INCLUDES),
                        f"{os.path.relpath(path, SOURCE_DIR)}:{number} "
                        f"includes {m.group(1)}: server/shared may include "
                        f"only {', '.join(ALLOWED_INCLUDES)}")
        self.assertGreater(found, 0, f"no sources found under {SHARED}")

    def test_targets_link_only_neutral_libraries(self):
        found = 0
        for path in shared_files(("CMakeLists.txt",)):
            with open(path) as f:
                text = re.sub(r"#[^\n]*", "", f.read())
            for m in re.finditer(r"target_link_libraries\(([^)]*)\)", text):
                found += 1
                for word in m.group(1).split()[1:]:
                    self.assertRegex(
                        word, ALLOWED_LINKS,
                        f"{os.path.relpath(path, SOURCE_DIR)} links {word}: "
                        "server/shared may link only the observability "
                        "libraries, Abseil and threads")
        self.assertGreater(found, 0, f"no link rules found under {SHARED}")


if __name__ == "__main__":
    unittest.main()
