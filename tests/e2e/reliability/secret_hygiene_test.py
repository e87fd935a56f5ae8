"""Secret hygiene (docs/quality.md §3 "Secrets").

Runs a scenario that creates every kind of secret the product hands out —
API keys (tenant bootstrap, create, rotate, with a grace period, verify,
revoke, delete), OAuth client secrets (create, rotate-secret, RFC 7591
registration) — plus the process secrets (pepper, operator and service
tokens) and keys an attacker presents (well-formed but unknown, wrong
secret, and bad-checksum). Server and gateway run at their most verbose log
level (LUMO_SERVER_LOG_LEVEL=debug, LUMO_GATEWAY_LOG_LEVEL=debug), on a
private MariaDB of this test with the binary log on (tools/dev/mariadb.sh
enables it).

Then every place a secret could leak to is searched for every secret, in
several encodings: plain, the secret part of a key alone, hex (lower and
upper case) and base64 (standard and URL-safe, with and without padding) of
the secret's bytes. Places: the server's and the gateway's whole output
(stdout+stderr), every error body the scenario received, the audit table,
mysqldump (text and --hex-blob), the binary log files' raw bytes and
mysqlbinlog's decoded rows. Expected hits: zero; the test prints how many
secrets x encodings x places it checked.

Positive controls keep it honest: each key's public id is found in the dump
and in the binlog (so the data is really there), and the search finds a
secret planted in a scratch copy of a place.
"""
import base64
import json
import os
import subprocess
import sys
import unittest

import harness

REDIRECT = "https://app.example.com/callback"


def encodings(secret):
    """The forms in which `secret` (text) could be written somewhere."""
    raw = secret.encode()
    forms = {
        "plain": raw,
        "hex": raw.hex().encode(),
        "HEX": raw.hex().upper().encode(),
        "base64": base64.b64encode(raw),
        "base64url": base64.urlsafe_b64encode(raw),
        "base64-nopad": base64.b64encode(raw).rstrip(b"="),
        "base64url-nopad": base64.urlsafe_b64encode(raw).rstrip(b"="),
    }
    return forms


class SecretHygieneTest(unittest.TestCase):
    def setUp(self):
        mariadb = harness.PrivateMariaDb()
        self.addCleanup(mariadb.destroy)
        mariadb.start()
        self.server = harness.LumoServer(
            mysql_dsn=mariadb.admin_dsn(),
            env={"LUMO_SERVER_LOG_LEVEL": "debug"})
        self.server.start()
        self.addCleanup(self.server.stop)
        self.gw = harness.LumoGateway(
            self.server, env={"LUMO_GATEWAY_LOG_LEVEL": "debug"})
        self.addCleanup(self.gw.stop)
        self.secrets = {}        # label -> secret text
        self.key_ids = []        # public ids that must be in the data
        self.responses = []      # every non-2xx body received

    # ----- scenario --------------------------------------------------------

    def remember(self, label, secret):
        self.assertTrue(secret and len(secret) >= 16, label)
        self.secrets[label] = secret
        if secret.startswith("lmk_"):
            # The secret part alone (after lmk_<id>_), checksum included
            # and not.
            self.secrets[label + " (secret part)"] = secret[17:]
            self.secrets[label + " (secret part, no checksum)"] = secret[17:-6]

    def call(self, method, path, key=None, body=None, expect=None):
        headers = {"Authorization": "Bearer " + key} if key else {}
        status, _, raw = self.gw.request(method, path, body, headers)
        if status >= 300:
            self.responses.append(raw)
        if expect is not None:
            self.assertEqual(status, expect, (method, path, raw[:300]))
        return status, (json.loads(raw) if raw else None)

    def run_scenario(self):
        slug = "hygiene"
        admin = "/t/%s/api/v1/admin/" % slug
        r = self.server.cli("--json", "tenant", "create", slug, "--scopes", "admin:write")
        self.assertEqual(r.returncode, 0, r.stderr)
        root = json.loads(r.stdout)["initialKey"]["key"]
        self.remember("tenant initial key", root)
        self.key_ids.append(root[4:16])

        _, doc = self.call("POST", admin + "api-keys", root,
                           {"name": "all", "scopes": ["admin:write", "admin:clients", "admin:users"]}, 201)
        power = doc["data"]["key"]
        self.remember("created key", power)
        keys = []
        for i in range(3):
            _, doc = self.call("POST", admin + "api-keys", power,
                               {"name": "svc %d" % i, "scopes": ["admin:read"]}, 201)
            keys.append(doc["data"])
            self.remember("created key %d" % i, doc["data"]["key"])
            self.key_ids.append(doc["data"]["id"])
        # The CLI's create path too (gRPC directly).
        r = self.server.cli("--json", "keys", "create", "--name", "cli", "--scopes", "admin:read",
                            env={"LUMOKEYS_TENANT": slug, "LUMOKEYS_API_KEY": power})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.remember("cli key", json.loads(r.stdout)["key"])

        # Use, verify, fail.
        for k in keys:
            self.call("GET", admin + "api-keys/" + k["id"], k["key"], expect=200)
            r = self.server.cli("verify", "--tenant", slug, "--scopes", "admin:read",
                                input=k["key"] + "\n")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # Rotate: immediately, and with a grace period (old and new both valid).
        _, doc = self.call("POST", admin + "api-keys/%s/rotate" % keys[0]["id"], power, {}, 200)
        self.remember("rotated key", doc["data"]["key"])
        _, doc = self.call("POST", admin + "api-keys/%s/rotate" % keys[1]["id"], power,
                           {"gracePeriodSeconds": 3600}, 200)
        self.remember("rotated key (grace)", doc["data"]["key"])
        self.call("GET", admin + "api-keys/" + keys[1]["id"], keys[1]["key"], expect=200)
        # The old key after rotation, and attacker-presented keys.
        self.call("GET", admin + "api-keys", keys[0]["key"], expect=401)
        r = self.server.cli("verify", "--tenant", slug, input=keys[0]["key"] + "\n")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        forged = keys[2]["key"][:17] + "Z" * 43
        forged += harness.checksum(forged)
        self.remember("forged secret for a real id", forged)
        unknown = "lmk_" + "Q" * 12 + "_" + "R" * 43
        unknown += harness.checksum(unknown)
        self.remember("unknown well-formed key", unknown)
        bad_checksum = keys[2]["key"][:-6] + ("000000" if not keys[2]["key"].endswith("000000") else "000001")
        self.remember("bad-checksum key", bad_checksum)
        for presented in (forged, unknown, bad_checksum):
            self.call("GET", admin + "api-keys", presented, expect=401)
            self.gw.request("GET", admin + "api-keys", headers={"X-API-Key": presented})
            r = self.server.cli("verify", "--tenant", slug, input=presented + "\n")
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        # A key in the query string is refused (and must not be logged).
        self.call("GET", admin + "api-keys?api_key=" + keys[2]["key"], power, expect=400)
        # Revoke and delete.
        self.call("POST", admin + "api-keys/%s/revoke" % keys[2]["id"], power, expect=200)
        self.call("GET", admin + "api-keys", keys[2]["key"], expect=401)
        self.call("DELETE", admin + "api-keys/" + keys[1]["id"], power, expect=204)

        # OAuth clients: create, rotate-secret, registration.
        _, doc = self.call("POST", admin + "clients", power,
                           {"name": "web", "redirectUris": [REDIRECT]}, 201)
        client = doc["data"]
        self.remember("client secret", client["clientSecret"])
        _, doc = self.call("POST", admin + "clients/%s/rotate-secret" % client["id"], power, {}, 200)
        self.remember("rotated client secret", doc["data"]["clientSecret"])
        self.call("PATCH", admin + "settings", root,
                  {"dynamicRegistration": {"enabled": True, "requireApiKey": True}}, 200)
        _, doc = self.call("POST", "/t/%s/api/v1/connect/register" % slug, power,
                           {"redirect_uris": [REDIRECT], "client_name": "dyn"}, 201)
        self.remember("registered client secret", doc["client_secret"])

        # Process secrets of the harness.
        self.remember("operator token", self.server.operator_token)
        self.remember("service token", self.server.service_token)
        with open(self.server.pepper_path) as f:
            pepper_hex = f.read().strip().split(":", 1)[1]
        self.remember("pepper (hex)", pepper_hex)
        self.secrets["pepper (bytes as base64)"] = base64.b64encode(
            bytes.fromhex(pepper_hex)).decode()

    # ----- places ------------------------------------------------------------

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def sql_bytes(self, statement):
        """The raw output of one statement (binary columns kept as bytes)."""
        result = subprocess.run(
            ["mariadb", *self.server.mysql.tool_args(), "--batch", "-e", statement,
             self.server.database],
            env=self.server.mysql.tool_env(), capture_output=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def places(self):
        server = self.server
        places = {}
        places["server output"] = self.read(server.log_path)
        places["gateway output"] = self.read(self.gw.log_path)
        places["error bodies"] = b"\n".join(self.responses)
        tables = server.sql("SHOW TABLES").stdout.split("\n")[1:]
        audit_tables = [t for t in tables if "audit" in t]
        self.assertTrue(audit_tables, tables)
        places["audit table"] = b"\n".join(
            self.sql_bytes("SELECT * FROM `%s`" % t) for t in audit_tables)
        places["mysqldump"] = server.mysqldump().encode()
        places["mysqldump --hex-blob"] = server.mysqldump("--hex-blob").encode()
        basename = server.sql("SELECT @@log_bin_basename", database=None).stdout.split("\n")[1].strip()
        self.assertTrue(basename and basename != "NULL", "the binary log is off")
        directory = os.path.dirname(basename)
        files = sorted(os.path.join(directory, f) for f in os.listdir(directory)
                       if f.startswith(os.path.basename(basename) + ".") and
                       f[len(os.path.basename(basename)) + 1:].isdigit())
        self.assertTrue(files, directory)
        places["binlog files"] = b"".join(self.read(f) for f in files)
        decoded = subprocess.run(["mysqlbinlog", "--no-defaults", "--verbose",
                                  "--base64-output=DECODE-ROWS", *files],
                                 capture_output=True, timeout=120)
        self.assertEqual(decoded.returncode, 0, decoded.stderr[-500:])
        places["binlog decoded"] = decoded.stdout
        return places

    # ----- the test ------------------------------------------------------------

    def test_no_secret_anywhere(self):
        self.run_scenario()
        # SIGTERM both processes: the server flushes its audit queue and
        # both logs are complete, so the scan sees everything they wrote.
        self.gw.stop()
        self.assertEqual(self.server.terminate(timeout=60), 0)
        places = self.places()

        # Positive controls: the data is in the dump and binlog, and the
        # search finds a planted secret.
        for kid in self.key_ids:
            self.assertIn(kid.encode(), places["mysqldump"], kid)
            self.assertIn(kid.encode(), places["binlog decoded"] + places["binlog files"], kid)
        planted = b"xx" + encodings(self.secrets["created key"])["base64"] + b"yy"
        self.assertTrue(self.hits({"scratch": planted}, {"created key": self.secrets["created key"]}))

        hits = self.hits(places, self.secrets)
        checks = len(self.secrets) * len(encodings("x")) * len(places)
        print("\nsecret hygiene: %d secrets x %d encodings x %d places = %d checks, %d hits"
              % (len(self.secrets), len(encodings("x")), len(places), checks, len(hits)),
              file=sys.stderr)
        self.assertEqual(hits, [], "secrets found: %s" % hits)

    @staticmethod
    def hits(places, secrets):
        found = []
        for label, secret in secrets.items():
            for form, needle in encodings(secret).items():
                for place, haystack in places.items():
                    if form in ("hex", "HEX"):
                        present = needle.lower() in haystack.lower()
                    else:
                        present = needle in haystack
                    if present:
                        found.append((label, form, place))
        return found


if __name__ == "__main__":
    unittest.main()
