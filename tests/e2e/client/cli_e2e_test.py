"""End-to-end tests of the `lumokeys` CLI against a real server and MariaDB.

One server and database per class. Every full key the tests see is recorded
in `KEYS`; the last test (named to sort last) dumps the database and checks
that none of them, nor their secret parts, was stored.
"""

import json
import secrets
import unittest

import harness
from harness import KEY_RE


def secret_parts(key):
    """The strings that must never be shown or stored for `key`: the key
    itself, its secret with the checksum, and the secret alone."""
    assert KEY_RE.fullmatch(key), "not a LumoKeys key"
    return [key, key[17:], key[17:60]]


def fields(text):
    """Parses `label: value` lines of the CLI's human output."""
    result = {}
    for line in text.splitlines():
        label, sep, value = line.partition(":")
        if sep and label and not label.startswith(" "):
            result.setdefault(label.strip(), value.strip())
    return result


class CliE2eTest(harness.LumoServerTestCase):
    KEYS = []

    # ----- helpers -----------------------------------------------------

    def run_cli(self, *args, expect=0, env=None, input=None):
        result = self.server.cli(*args, env=env, input=input)
        # Never show a key in a failure message.
        self.assertEqual(
            result.returncode, expect,
            f"lumokeys {self.redact(' '.join(args))} exited "
            f"{result.returncode}, expected {expect}\n"
            f"stdout: {self.redact(result.stdout)}\n"
            f"stderr: {self.redact(result.stderr)}")
        return result

    @staticmethod
    def redact(text):
        return KEY_RE.sub("lmk_<redacted>", text)

    def remember(self, key):
        self.assertRegex(key, KEY_RE)
        type(self).KEYS.append(key)
        return key

    def assert_no_secret(self, text, keys=None):
        for key in keys if keys is not None else type(self).KEYS:
            for part in secret_parts(key):
                self.assertNotIn(part, text, "key material in output")

    def new_tenant(self, scopes="admin:write"):
        """Creates a tenant with a first key; returns (slug, key)."""
        slug = "t-" + secrets.token_hex(4)
        result = self.run_cli("--json", "tenant", "create", slug, "--name",
                              f"Tenant {slug}", "--scopes", scopes)
        reply = json.loads(result.stdout)
        self.assertEqual(reply["tenant"]["slug"], slug)
        key = self.remember(reply["initialKey"]["key"])
        self.assertEqual(reply["initialKey"]["name"], "Admin key")
        self.assertEqual(result.stdout.count("\n"), 1, "JSON is one line")
        return slug, key

    def verify(self, key, *args, expect=0, tenant=None):
        extra = ["--tenant", tenant] if tenant else []
        return self.run_cli(*extra, "verify", *args, expect=expect,
                            input=key + "\n")

    # ----- tests -------------------------------------------------------

    def test_key_lifecycle(self):
        slug, admin_key = self.new_tenant("admin:write")

        result = self.verify(admin_key, tenant=slug)
        info = fields(result.stdout)
        self.assertEqual(info["valid"], "yes")
        self.assertEqual(info["reason"], "VALID")
        self.assertEqual(info["tenant"], slug)
        self.assertEqual(info["id"], admin_key[4:16])
        self.assert_no_secret(result.stdout + result.stderr)

        env = {"LUMOKEYS_API_KEY": admin_key, "LUMOKEYS_TENANT": slug}
        result = self.run_cli("keys", "create", "--name", "ci deploy",
                              "--scopes", "admin:read, admin:users",
                              "--rate-limit", "600", env=env)
        created = fields(result.stdout)
        key = self.remember(created["key"])
        key_id = created["id"]
        self.assertEqual(key[4:16], key_id)
        self.assertEqual(created["prefix"], f"lmk_{key_id}")
        self.assertEqual(created["status"], "active")
        self.assertIn("shown only once", result.stderr)
        self.assert_no_secret(result.stderr)

        # Lists (JSON and human) show the key without any secret.
        result = self.run_cli("--json", "keys", "list", env=env)
        listing = json.loads(result.stdout)
        by_id = {k["id"]: k for k in listing["data"]}
        self.assertIn(key_id, by_id)
        self.assertEqual(by_id[key_id]["prefix"], f"lmk_{key_id}")
        self.assertEqual(by_id[key_id]["name"], "ci deploy")
        self.assertEqual(sorted(by_id[key_id]["scopes"]),
                         ["admin:read", "admin:users"])
        for entry in listing["data"]:
            self.assertNotIn("key", entry)
        self.assert_no_secret(result.stdout + result.stderr)
        self.assertGreaterEqual(listing["meta"]["total"], 2)

        result = self.run_cli("keys", "list", "--sort-by", "name",
                              "--sort-dir", "asc", env=env)
        self.assertIn(f"lmk_{key_id}", result.stdout)
        self.assertIn("ci deploy", result.stdout)
        self.assertIn("PREFIX", result.stdout.splitlines()[0])
        self.assert_no_secret(result.stdout + result.stderr)

        result = self.run_cli("keys", "list", "--search", "deploy", "--json",
                              env=env)
        self.assertEqual([k["id"] for k in json.loads(result.stdout)["data"]],
                         [key_id])

        result = self.run_cli("keys", "get", key_id, env=env)
        self.assertEqual(fields(result.stdout)["name"], "ci deploy")
        self.assertNotIn("key", fields(result.stdout))
        self.assert_no_secret(result.stdout + result.stderr)

        # Rotate: the old secret stops working at once.
        result = self.run_cli("--json", "keys", "rotate", key_id, env=env)
        rotated = json.loads(result.stdout)
        new_key = self.remember(rotated["key"])
        self.assertNotEqual(new_key, key)
        self.assertEqual(rotated["id"], key_id)
        self.assertNotIn("shown only once", result.stderr, "JSON mode")

        result = self.verify(key, expect=1, tenant=slug)
        self.assertEqual(fields(result.stdout)["reason"], "ROTATED")
        self.assertEqual(fields(result.stdout)["valid"], "no")
        self.verify(new_key, tenant=slug)
        # The key argument form works too.
        self.run_cli("verify", new_key)

        # Revoke (twice: not an error).
        result = self.run_cli("keys", "revoke", key_id, env=env)
        self.assertEqual(fields(result.stdout)["status"], "revoked")
        self.assert_no_secret(result.stdout)
        self.run_cli("keys", "revoke", key_id, env=env)
        result = self.verify(new_key, expect=1, tenant=slug)
        self.assertEqual(fields(result.stdout)["reason"], "REVOKED")

        # Delete: gone from get and from lists; never verifies again.
        result = self.run_cli("keys", "delete", key_id, env=env)
        result = self.run_cli("keys", "get", key_id, env=env, expect=3)
        self.assertRegex(result.stderr, r"^error: NOT_FOUND: ")
        result = self.run_cli("--json", "keys", "list", env=env)
        self.assertNotIn(key_id, [k["id"] for k in
                                  json.loads(result.stdout).get("data", [])])
        result = self.verify(new_key, expect=1, tenant=slug)
        self.assertEqual(fields(result.stdout)["reason"], "NOT_FOUND")

    def test_tenant_bootstrap_human_output_and_issue(self):
        slug = "h-" + secrets.token_hex(4)
        result = self.run_cli("tenant", "create", slug, "--key-name", "Root",
                              "--scopes", "admin:write")
        info = fields(result.stdout)
        self.assertEqual(info["slug"], slug)
        self.assertEqual(info["name"], slug, "name defaults to the slug")
        key = self.remember(info["key"])
        self.assertIn("Root", result.stdout)
        self.assertIn("shown only once", result.stderr)

        result = self.run_cli("tenant", "get", slug)
        self.assertEqual(fields(result.stdout)["slug"], slug)
        self.assert_no_secret(result.stdout)
        result = self.run_cli("tenant", "create", slug, expect=3)
        self.assertRegex(result.stderr, r"^error: [A-Z_]+: ")
        result = self.run_cli("tenant", "get", "no-such-" + slug, expect=3)
        self.assertRegex(result.stderr, r"^error: NOT_FOUND: ")

        # A tenant without a first key.
        bare = "b-" + secrets.token_hex(4)
        result = self.run_cli("--json", "tenant", "create", bare)
        self.assertNotIn("initialKey", json.loads(result.stdout))

        # Operator-issued key, API key from a file.
        result = self.run_cli("--tenant", slug, "keys", "issue", "--name",
                              "recovered", "--scopes", "admin:read")
        issued = self.remember(fields(result.stdout)["key"])
        self.assertIn("shown only once", result.stderr)
        key_file = self.server.write_secret("issued.key", issued + "\n")
        result = self.run_cli("--tenant", slug, "--api-key-file", key_file,
                              "keys", "list")
        self.assertIn(f"lmk_{issued[4:16]}", result.stdout)
        self.assert_no_secret(result.stdout + result.stderr)

        # Verify reasons.
        result = self.verify(issued, "--scopes", "admin:write", expect=1,
                             tenant=slug)
        self.assertEqual(fields(result.stdout)["reason"], "INSUFFICIENT_SCOPE")
        result = self.verify(issued, "--scopes", "admin:read", tenant=slug)
        self.assertEqual(fields(result.stdout)["reason"], "VALID")
        result = self.verify(issued, expect=1, tenant=bare)
        self.assertEqual(fields(result.stdout)["reason"], "WRONG_TENANT")
        result = self.verify(issued[:-1] + ("0" if issued[-1] != "0" else "1"),
                             expect=1, tenant=slug)
        self.assertEqual(fields(result.stdout)["reason"], "MALFORMED")
        result = self.run_cli("--json", "--tenant", slug, "verify", "-",
                              input=key)
        self.assertTrue(json.loads(result.stdout)["valid"])
        self.assertEqual(json.loads(result.stdout)["reason"], "VALID")

    def test_authentication_and_authorization_errors(self):
        slug, admin_key = self.new_tenant("admin:write")
        other, other_key = self.new_tenant("admin:write")
        env = {"LUMOKEYS_API_KEY": admin_key, "LUMOKEYS_TENANT": slug}
        result = self.run_cli("keys", "create", "--name", "reader",
                              "--scopes", "admin:read", env=env)
        reader = self.remember(fields(result.stdout)["key"])

        # A well-formed key that does not exist.
        result = self.run_cli("keys", "list", expect=3, env={
            "LUMOKEYS_API_KEY": "lmk_" + "A" * 12 + "_" + "B" * 49,
            "LUMOKEYS_TENANT": slug})
        self.assertRegex(result.stderr, r"^error: UNAUTHENTICATED: ")
        # A key of another tenant: UNAUTHENTICATED, not a hint.
        result = self.run_cli("keys", "list", expect=3, env={
            "LUMOKEYS_API_KEY": other_key, "LUMOKEYS_TENANT": slug})
        self.assertRegex(result.stderr, r"^error: UNAUTHENTICATED: ")
        # Read-only key: may list, may not write or escalate.
        reader_env = {"LUMOKEYS_API_KEY": reader, "LUMOKEYS_TENANT": slug}
        self.run_cli("keys", "list", env=reader_env)
        result = self.run_cli("keys", "create", "--name", "x", "--scopes",
                              "admin:read", expect=3, env=reader_env)
        self.assertRegex(result.stderr, r"^error: PERMISSION_DENIED: ")
        # Validation.
        result = self.run_cli("keys", "create", "--name", "x", "--scopes",
                              "admin:nonsense", expect=3, env=env)
        self.assertRegex(result.stderr, r"^error: INVALID_ARGUMENT: ")
        result = self.run_cli("keys", "create", "--name", "x" * 101,
                              "--scopes", "admin:read", expect=3, env=env)
        self.assertRegex(result.stderr, r"^error: INVALID_ARGUMENT: ")
        # Wrong operator and service tokens.
        wrong = self.server.write_secret("wrong.token",
                                         secrets.token_urlsafe(32) + "\n")
        result = self.run_cli("tenant", "get", slug, expect=3, env={
            "LUMOKEYS_OPERATOR_TOKEN_FILE": wrong})
        self.assertRegex(result.stderr, r"^error: UNAUTHENTICATED: ")
        result = self.run_cli("verify", expect=3, input=admin_key, env={
            "LUMOKEYS_SERVICE_TOKEN_FILE": wrong})
        self.assertRegex(result.stderr, r"^error: UNAUTHENTICATED: ")
        self.assert_no_secret(result.stderr)
        # The API key is no operator credential.
        key_file = self.server.write_secret("admin.key", admin_key)
        result = self.run_cli("tenant", "get", slug, expect=3, env={
            "LUMOKEYS_OPERATOR_TOKEN_FILE": key_file})
        self.assertRegex(result.stderr, r"^error: UNAUTHENTICATED: ")
        self.assert_no_secret(result.stderr)

    def test_usage_errors(self):
        cases = [
            [],
            ["frobnicate"],
            ["keys"],
            ["keys", "explode"],
            ["keys", "get"],
            ["keys", "get", "a", "b"],
            ["--tenant", "t", "keys", "create", "--scopes", "admin:read"],
            ["--tenant", "t", "keys", "create", "--name", "n"],
            ["keys", "create", "--name", "n", "--scopes", "admin:read"],
            ["--tenant", "t", "keys", "create", "--name", "n", "--scopes",
             "admin:read", "--expires-at", "tomorrow"],
            ["--tenant", "t", "keys", "list", "--limit", "1000"],
            ["--tenant", "t", "keys", "list", "--sort-dir", "UP"],
            ["--tenant", "t", "keys", "list", "--page", "0"],
            ["--tenant", "t", "keys", "rotate", "x", "--grace-period", "-1"],
            ["--tenant", "t", "keys", "list", "--bogus"],
            ["--api-key", "lmk_x", "keys", "list"],
            ["--timeout", "0", "health"],
            ["--timeout", "soon", "health"],
            ["--json=yes", "health"],
            ["--tenant", "a", "--tenant", "b", "keys", "list"],
            ["tenant", "create", "s", "--key-name", "k"],
            ["verify", "-x"],
        ]
        env = {"LUMOKEYS_API_KEY": "lmk_" + "A" * 12 + "_" + "B" * 49}
        for args in cases:
            with self.subTest(args=args):
                result = self.run_cli(*args, expect=2, env=env)
                if args:
                    self.assertRegex(result.stderr, r"^error: ")
                else:
                    self.assertIn("Usage", result.stderr)
                self.assertEqual(result.stdout, "")
        # Missing or conflicting credentials are usage errors too.
        self.run_cli("--tenant", "t", "keys", "list", expect=2)
        self.run_cli("--tenant", "t", "keys", "list", expect=2, env={
            "LUMOKEYS_API_KEY": "x", "LUMOKEYS_API_KEY_FILE": "/nonexistent"})
        self.run_cli("--tenant", "t", "--api-key-file", "/nonexistent",
                     "keys", "list", expect=2)
        self.run_cli("tenant", "get", "t", expect=2,
                     env={"LUMOKEYS_OPERATOR_TOKEN_FILE": None})
        self.run_cli("verify", expect=2, input="")
        self.run_cli("verify", expect=2, input="\n")
        # Help is not an error.
        for args in (["--help"], ["help"], ["keys", "--help"],
                     ["keys", "rotate", "-h"], ["help", "verify"]):
            with self.subTest(args=args):
                result = self.run_cli(*args)
                self.assertIn("Usage", result.stdout)
        self.assertIn("ps", self.run_cli("--help").stdout)
        # The server is still fine.
        self.assertEqual(self.run_cli("health").stdout.strip(), "SERVING")

    def test_zz_database_dump_has_no_key_material(self):
        # Named to run last: checks every key the other tests saw.
        if not type(self).KEYS:
            self.new_tenant()
        dump = self.server.mysqldump()
        hex_dump = self.server.mysqldump("--hex-blob")
        self.assertIn("CREATE TABLE", dump)
        for key in type(self).KEYS:
            for part in secret_parts(key):
                self.assertNotIn(part, dump, "key material in the database")
                self.assertNotIn(part.encode().hex().upper(), hex_dump,
                                 "hex-encoded key material in the database")


if __name__ == "__main__":
    unittest.main()
