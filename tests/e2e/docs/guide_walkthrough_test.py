"""docs/guide.md run as written against a live server and gateway: every
shell block of the guide is a step of the `guide` walk-through, and each
step prints the statuses the guide says it prints."""

import os
import tempfile
import unittest

import harness
import walkthrough

GUIDE_MD = os.path.join(harness.source_dir(), "docs", "guide.md")


class GuideWalkthroughTest(harness.LumoServerTestCase):
    with_gateway = True

    def test_every_shell_block_is_a_step(self):
        for section in self.sections():
            self.assertEqual(
                walkthrough.unmarked_shell_blocks(GUIDE_MD, section), [],
                f"shell blocks in '{section}' that no test runs")

    def sections(self):
        with open(GUIDE_MD, encoding="utf-8") as f:
            return [line.lstrip("#").strip() for line in f
                    if line.startswith("#") and not line.startswith("###")]

    def test_key_lifecycle_as_documented(self):
        work = tempfile.mkdtemp(prefix="guide-", dir=self.server.tmpdir)
        admin = self.server.create_tenant("guide-acme")
        admin_file = os.path.join(work, "admin.key")
        harness.write_secret(admin_file, admin + "\n")
        keys_dir = os.path.join(work, "keys")
        run = walkthrough.Runner(
            GUIDE_MD, "guide",
            {"BASE": f"http://127.0.0.1:{self.gw.port}",
             "TENANT": "guide-acme", "ADMIN_KEY_FILE": admin_file,
             "KEYS_DIR": keys_dir},
            env=dict(os.environ), cwd=harness.source_dir())

        def step(name, statuses):
            result = run.run(name, timeout=120 * harness.TIME_SCALE)
            self.assertEqual(result.returncode, 0,
                             f"{name}: {result.stderr}")
            self.assertEqual(result.stdout.split(), statuses, name)

        step("create", ["201"])
        step("copy", [])
        with open(os.path.join(keys_dir, "ci.key")) as f:
            key = f.read().strip()
        self.assertRegex(key, harness.KEY_RE)
        self.assertEqual(os.stat(os.path.join(keys_dir, "ci.key")).st_mode
                         & 0o077, 0)
        self.assertEqual(self.server.verify_reason("guide-acme", key),
                         "VALID")
        step("use", ["200", "200"])
        step("rotate", ["401", "200"])
        self.assertEqual(self.server.verify_reason("guide-acme", key),
                         "ROTATED")
        step("revoke", ["200", "401"])
        step("delete", ["204"])
        self.assertFalse(os.path.exists(os.path.join(keys_dir, "ci.key")))
        self.assertEqual(run.not_run(), [])


if __name__ == "__main__":
    unittest.main()
