"""Retiring a pepper version (docs/operations.md, "Pepper rotation"): the
server refuses to start without a version that live secrets use (keys,
rotated-away secrets in their grace period), says why, starts anyway only
with --allow_missing_pepper_versions (and then those secrets do break:
the harm the refusal prevents), and starts with a warning when only dead
secrets use the version (REVOKED becomes NOT_FOUND). --check_peppers
gives the same verdict as an exit status."""
import secrets
import unittest

import harness


class PepperRetirementTest(harness.LumoServerTestCase):
    def cli_json(self, *args, key):
        return self.server.tenant_cli_json("pepper-retire", key, *args)

    def verify(self, key):
        return self.server.verify_reason("pepper-retire", key)

    def write_peppers(self, versions):
        with open(self.server.pepper_path, "w") as f:
            f.write("".join(f"{v}:{self.peppers[v]}\n" for v in versions))

    def stop(self):
        self.server.terminate(timeout=30)

    def run_server(self, *flags):
        """Runs the server binary to completion (it must exit by itself)."""
        s = self.server
        return s.run_once(f"--listen={s.address}", *flags, timeout=120)

    def test_retirement_refused_while_live_secrets_use_the_version(self):
        s = self.server
        with open(s.pepper_path) as f:
            self.peppers = {1: f.read().strip().split(":", 1)[1],
                            2: secrets.token_hex(32)}
        root = s.create_tenant("pepper-retire")
        live, graced, revoked = [
            self.cli_json("keys", "create", "--name", n, "--scopes",
                          "admin:read", key=root)["key"]
            for n in ("live", "graced", "revoked")]
        self.cli_json("keys", "revoke", revoked[4:16], key=root)

        # Version 2 added; a rotation with a day of grace keeps the version-1
        # secret of `graced` valid.
        self.stop()
        self.write_peppers([1, 2])
        s.start()
        graced_new = self.cli_json("keys", "rotate", graced[4:16],
                                   "--grace-period", "86400",
                                   key=root)["key"]
        self.assertEqual(self.verify(graced), "VALID")
        self.assertEqual(self.verify(revoked), "REVOKED")

        # Version 1 removed while live secrets use it: refused.
        self.stop()
        self.write_peppers([2])
        r = self.run_server()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("pepper version 1 is missing from the pepper file but "
                      "live secrets use it (2 keys, 1 rotated-away secret in "
                      "its grace period): they would stop verifying", r.stderr)
        self.assertIn("Refusing to start", r.stderr)
        r = self.run_server("--check_peppers")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("REFUSED: pepper version 1", r.stdout)

        # Forced: exactly the harm the refusal prevents.
        s.extra_args.append("--allow_missing_pepper_versions")
        try:
            s.start()
        finally:
            s.extra_args.remove("--allow_missing_pepper_versions")
        self.assertIn('"level":"error"', s.server_log())
        self.assertEqual(self.verify(live), "NOT_FOUND")    # was VALID
        self.assertEqual(self.verify(graced), "NOT_FOUND")  # grace cut short
        self.assertEqual(self.verify(revoked), "NOT_FOUND")  # was REVOKED
        self.assertEqual(self.verify(graced_new), "VALID")

        # With version 1 back, the owners rotate or revoke; then only dead
        # secrets use it and the retirement goes ahead with a warning.
        self.stop()
        self.write_peppers([1, 2])
        s.start()
        root = self.cli_json("keys", "rotate", root[4:16], key=root)["key"]
        live_new = self.cli_json("keys", "rotate", live[4:16],
                                 key=root)["key"]
        self.cli_json("keys", "revoke", graced[4:16], key=root)
        self.stop()
        self.write_peppers([2])
        r = self.run_server("--check_peppers")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("WARNING: pepper version 1 is missing from the pepper "
                      "file and dead secrets use it (1 revoked or expired "
                      "key, 3 rotated-away secrets past their grace period)",
                      r.stdout)
        log_before = len(s.server_log())
        s.start()
        self.assertIn("dead secrets use it", s.server_log()[log_before:])
        self.assertEqual(self.verify(live_new), "VALID")
        self.assertEqual(self.verify(root), "VALID")
        self.assertEqual(self.verify(revoked), "NOT_FOUND")
        self.assertEqual(self.verify(live), "NOT_FOUND")


if __name__ == "__main__":
    unittest.main()
