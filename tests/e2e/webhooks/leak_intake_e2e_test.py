"""The leaked-key intake end to end (docs/webhooks.md, "Leaked-key
intake"): reports in the secret-scanning partner format through the
gateway, signed with ECDSA P-256 keys made by the openssl CLI; the tenant's
leakResponse (revoke, disable, notify), a retired secret's grace ended, the
api_key.leaked event and its signed webhook, repeats that change nothing,
refused signatures and hostile bodies that change nothing, a 1,000-token
batch (time printed as a FIGURE), and a reported key refused on every
replica when the reply returns."""

import base64
import hashlib
import http.client
import json
import os
import subprocess
import tempfile
import time
import unittest

import harness
from harness.tls import Pki
from webhooks_e2e_test import Receiver

ADMIN = "/t/acme/api/v1/admin"
REPORTS = "/api/v1/secret-scanning/reports"


class ScannerKeys:
    """ECDSA P-256 key pairs made by the openssl CLI, and the public-key file
    in the scanner's format: "current" (is_current true) and "previous"
    (false) are in the file, "stranger" is not."""

    def __init__(self, directory):
        self.dir = directory
        self.private = {}
        entries = []
        for name, current in (("current", True), ("previous", False),
                              ("stranger", None)):
            key = os.path.join(directory, f"{name}.pem")
            subprocess.run(["openssl", "ecparam", "-name", "prime256v1",
                            "-genkey", "-noout", "-out", key],
                           check=True, capture_output=True)
            public = subprocess.run(["openssl", "ec", "-in", key, "-pubout"],
                                    check=True, capture_output=True).stdout
            self.private[name] = key
            if current is not None:
                entries.append({"key_identifier": self.identifier(name),
                                "key": public.decode(),
                                "is_current": current})
        self.file = os.path.join(directory, "scanner-keys.json")
        with open(self.file, "w", encoding="utf-8") as f:
            json.dump({"public_keys": entries}, f)

    @staticmethod
    def identifier(name):
        return hashlib.sha256(name.encode()).hexdigest()

    def sign(self, name, body):
        """base64 of the DER signature of `body` by key `name`."""
        path = os.path.join(self.dir, "body.bin")
        with open(path, "wb") as f:
            f.write(body)
        der = subprocess.run(["openssl", "dgst", "-sha256", "-sign",
                              self.private[name], path],
                             check=True, capture_output=True).stdout
        return base64.b64encode(der).decode()

    def headers(self, name, body, identifier=None):
        return {"Github-Public-Key-Identifier":
                identifier or self.identifier(name),
                "Github-Public-Key-Signature": self.sign(name, body)}


def entry(token, url="https://github.com/acme/app/blob/main/.env"):
    return {"token": token, "type": "lumokeys_api_key", "url": url,
            "source": "content"}


def token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def timed_report(test, gateway_name, tokens):
    """POSTs a report of `tokens`, signed by test.scanner's current key,
    through a gateway of its own on test.server with deadlines far beyond
    the time expected (a second or two): the time is a figure, not a
    pass/fail bound, and a loaded machine must not turn it into a 503.
    Returns (status, raw reply, seconds)."""
    body = json.dumps([entry(t) for t in tokens]).encode()
    slack = "%ds" % (120 * harness.TIME_SCALE)
    gateway = harness.LumoGateway(
        test.server, request_timeout=slack, name=gateway_name,
        extra_args=["--upstream_deadline=" + slack])
    test.addCleanup(gateway.stop)
    headers = test.scanner.headers("current", body)
    headers["Content-Type"] = "application/json"
    started = time.monotonic()
    status, _, raw = gateway.request("POST", REPORTS, body=body,
                                     headers=headers)
    return status, raw, time.monotonic() - started


class LeakIntakeE2eTest(harness.LumoServerTestCase):
    with_gateway = True

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.scanner = ScannerKeys(cls.tmp.name)
        cls.pki = Pki(cls.tmp.name)
        ca = cls.pki.ca("hooks-ca")
        cls.cert, cls.key = cls.pki.leaf("receiver", "hooks-ca", "serverAuth")
        cls.server_args = [
            f"--secret_scanning_keys_file={cls.scanner.file}",
            "--webhook_allow_cidrs=127.0.0.1/32",
            f"--webhook_ca_file={ca}",
            "--webhook_poll_interval=50ms",
        ]
        super().setUpClass()
        cls.admin = cls.server.create_tenant("acme")

    def call(self, method, path, body=None, key=None):
        status, _, raw = self.gw.request(
            method, ADMIN + path, body=body,
            headers={"Authorization": "Bearer " + (key or self.admin)})
        return status, (json.loads(raw) if raw else None)

    def create_key(self, name, **fields):
        body = {"name": name, "scopes": ["admin:read"]}
        body.update(fields)
        status, reply = self.call("POST", "/api-keys", body)
        self.assertEqual(status, 201, reply)
        return reply["data"]

    def key_status(self, key_id):
        status, reply = self.call("GET", f"/api-keys/{key_id}")
        self.assertEqual(status, 200, reply)
        return reply["data"]["status"]

    def works(self, key):
        status, _, _ = self.gw.request(
            "GET", ADMIN + "/api-keys?limit=1",
            headers={"Authorization": "Bearer " + key})
        return status == 200

    def report(self, body, signer="current", headers=None):
        """POSTs `body` (a list, or raw bytes) signed by `signer` (None: no
        signature headers); `headers` replace or add headers. Returns
        (status, parsed JSON or raw body)."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent = self.scanner.headers(signer, raw) if signer else {}
        sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        status, _, reply = self.gw.request("POST", REPORTS, body=raw,
                                           headers=sent)
        try:
            return status, json.loads(reply)
        except ValueError:
            return status, reply

    def leaked_events(self, key_id):
        status, reply = self.call(
            "GET", f"/audit-logs?action=api_key.leaked&targetId={key_id}")
        self.assertEqual(status, 200, reply)
        return reply["data"]

    def events_of(self, action, key_id):
        status, reply = self.call(
            "GET", f"/audit-logs?action={action}&targetId={key_id}")
        self.assertEqual(status, 200, reply)
        return reply["data"]

    def test_a_reported_live_key_is_revoked_once_with_its_event_and_webhook(self):
        receiver = Receiver(self.cert, self.key)
        self.addCleanup(receiver.stop)
        status, endpoint = self.call("POST", "/webhooks", {
            "url": receiver.url(), "eventTypes": ["api_key.leaked"]})
        self.assertEqual(status, 201, endpoint)
        self.addCleanup(self.call, "DELETE",
                        f"/webhooks/{endpoint['data']['id']}")
        live = self.create_key("published")
        self.assertTrue(self.works(live["key"]))
        wrong_secret = harness.forge(live["id"])
        unknown = harness.forge("Zz" + live["id"][2:])
        body = [entry(live["key"]), entry("lmk_this is not a key"),
                entry(wrong_secret), entry(unknown)]

        status, reply = self.report(body)
        self.assertEqual(status, 200, reply)
        self.assertEqual(reply, [
            {"token_hash": token_hash(e["token"]),
             "token_type": "lumokeys_api_key",
             "label": label}
            for e, label in zip(body, ["true_positive", "false_positive",
                                       "false_positive", "false_positive"])])
        # Revoked by the time the reply came back (the default response).
        self.assertEqual(self.key_status(live["id"]), "revoked")
        self.assertFalse(self.works(live["key"]))
        events = self.leaked_events(live["id"])
        self.assertEqual(len(events), 1, events)
        event = events[0]
        self.assertTrue(event["suspicious"])
        self.assertEqual((event["actor"]["type"], event["actor"]["id"]),
                         ("system", "secret-scanning"))
        self.assertEqual(event["metadata"], {
            "url": body[0]["url"], "source": "content",
            "type": "lumokeys_api_key", "response": "revoke",
            "secret": "current"})
        revoked = self.events_of("api_key.revoked", live["id"])
        self.assertEqual(len(revoked), 1, revoked)
        self.assertEqual(revoked[0]["metadata"], {"reason": "leaked"})

        # The webhook, signed with the endpoint's secret, without the token.
        def delivered():
            return [(p, raw) for _, p, _, raw in receiver.events()
                    if p["type"] == "api_key.leaked"]
        harness.wait_for(delivered, "the api_key.leaked webhook")
        payload, raw = delivered()[0]
        self.assertEqual(payload["data"]["target"]["id"], live["id"])
        self.assertNotIn(live["key"].encode(), raw)

        # The scanner repeats the report: the same answer, nothing again.
        status, again = self.report(body)
        self.assertEqual(status, 200, again)
        self.assertEqual(again, reply)
        self.assertEqual(len(self.leaked_events(live["id"])), 1)
        self.assertEqual(len(self.events_of("api_key.revoked", live["id"])), 1)
        self.assertEqual(len(delivered()), 1)

    def test_refused_signatures_change_nothing(self):
        live = self.create_key("kept")
        body = json.dumps([entry(live["key"])]).encode()
        other = json.dumps([entry(live["key"], url="https://x")]).encode()
        current = self.scanner.identifier("current")
        refusals = {
            "no headers": self.report(body, signer=None),
            "no signature": self.report(
                body, signer=None,
                headers={"Github-Public-Key-Identifier": current}),
            "unknown identifier": self.report(
                body, headers={"Github-Public-Key-Identifier": "nope"}),
            "a key not in the file": self.report(
                body, signer="stranger",
                headers={"Github-Public-Key-Identifier": current}),
            "another body's signature": self.report(
                body, headers={"Github-Public-Key-Signature":
                               self.scanner.sign("current", other)}),
            "one byte changed": self.report(
                body + b" ", headers={"Github-Public-Key-Signature":
                                      self.scanner.sign("current", body)}),
            "not base64": self.report(
                body, headers={"Github-Public-Key-Signature": "%%%"}),
        }
        for what, (status, reply) in refusals.items():
            self.assertEqual(status, 401, what)
            self.assertEqual(reply["code"], "invalid_token", what)
        self.assertEqual(self.key_status(live["id"]), "active")
        self.assertTrue(self.works(live["key"]))
        self.assertEqual(self.leaked_events(live["id"]), [])

    def test_hostile_bodies_are_refused_and_change_nothing(self):
        live = self.create_key("hostile")
        token = live["key"]
        cases = {
            "not JSON": b"[{\"token\": ",
            "an object": json.dumps({"token": token}).encode(),
            "a string entry": json.dumps([token]).encode(),
            "a number token": json.dumps([{"token": 12}]).encode(),
            "no token": json.dumps([{"type": "x", "url": token}]).encode(),
            "1,001 entries": json.dumps(
                [entry(token)] + [entry("x")] * 1000).encode(),
        }
        for what, raw in cases.items():
            status, reply = self.report(raw)
            self.assertEqual(status, 400, (what, reply))
            self.assertEqual(reply["code"], "validation_error", what)
        # Over 1 MiB: refused by the gateway before anything is read.
        huge = json.dumps([entry(token, url="u" * (1024 * 1024))]).encode()
        status, _ = self.report(huge)
        self.assertEqual(status, 413)
        self.assertEqual(self.key_status(live["id"]), "active")
        self.assertEqual(self.leaked_events(live["id"]), [])

    def test_the_tenant_chooses_disable_or_notify(self):
        status, reply = self.call("PATCH", "/settings",
                                  {"leakResponse": "ignore"})
        self.assertEqual(status, 400, reply)
        self.assertEqual(reply["details"]["field"], "leakResponse")
        self.addCleanup(self.call, "PATCH", "/settings",
                        {"leakResponse": "revoke"})

        status, reply = self.call("PATCH", "/settings",
                                  {"leakResponse": "disable"})
        self.assertEqual(status, 200, reply)
        self.assertEqual(reply["data"]["leakResponse"], "disable")
        paused = self.create_key("paused")
        # Signed with the scanner's previous key, still in the file.
        status, reply = self.report([entry(paused["key"])], signer="previous")
        self.assertEqual(status, 200, reply)
        self.assertEqual(reply[0]["label"], "true_positive")
        self.assertEqual(self.key_status(paused["id"]), "disabled")
        self.assertEqual(
            self.leaked_events(paused["id"])[0]["metadata"]["response"],
            "disable")
        # The tenant enables it again: a repeated report leaves it alone.
        status, _ = self.call("POST", f"/api-keys/{paused['id']}/enable")
        self.assertEqual(status, 200)
        status, _ = self.report([entry(paused["key"])])
        self.assertEqual(status, 200)
        self.assertEqual(self.key_status(paused["id"]), "active")

        status, _ = self.call("PATCH", "/settings", {"leakResponse": "notify"})
        self.assertEqual(status, 200)
        told = self.create_key("told")
        status, reply = self.report([entry(told["key"])])
        self.assertEqual((status, reply[0]["label"]), (200, "true_positive"))
        self.assertEqual(self.key_status(told["id"]), "active")
        self.assertTrue(self.works(told["key"]))
        self.assertEqual(
            self.leaked_events(told["id"])[0]["metadata"]["response"],
            "notify")

    def test_a_leaked_retired_secret_stops_working_before_its_grace_ends(self):
        key = self.create_key("rotating")
        status, rotated = self.call("POST", f"/api-keys/{key['id']}/rotate",
                                    {"gracePeriodSeconds": 3600})
        self.assertEqual(status, 200, rotated)
        new_key = rotated["data"]["key"]
        self.assertTrue(self.works(key["key"]))  # in its grace period
        status, reply = self.report([entry(key["key"])])
        self.assertEqual((status, reply[0]["label"]), (200, "true_positive"))
        self.assertFalse(self.works(key["key"]))
        self.assertTrue(self.works(new_key))
        self.assertEqual(self.key_status(key["id"]), "active")
        event = self.leaked_events(key["id"])[0]
        self.assertEqual(event["metadata"]["secret"], "previous")
        self.assertEqual(event["metadata"]["response"], "end_grace")

    def test_a_decoy_is_a_true_positive_and_stays_a_decoy(self):
        decoy = self.create_key("bait", decoy=True)
        status, reply = self.report([entry(decoy["key"])])
        self.assertEqual((status, reply[0]["label"]), (200, "true_positive"))
        self.assertEqual(self.key_status(decoy["id"]), "active")
        self.assertEqual(
            self.leaked_events(decoy["id"])[0]["metadata"]["response"], "none")

    def test_a_batch_of_1000_tokens(self):
        live = [self.create_key(f"batch-{i}") for i in range(20)]
        forged = [harness.forge("Zz" + k["id"][2:10] + "%02d" % i)
                  for i in range(24) for k in live[:20]][:480]
        garbage = [f"ghp_{i:036d}" for i in range(500)]
        tokens = [k["key"] for k in live] + forged + garbage
        self.assertEqual(len(tokens), 1000)
        status, raw, took = timed_report(self, "batch-gateway", tokens)
        reply = json.loads(raw)
        print(f"FIGURE leak_report_batch tokens=1000 live=20 "
              f"unknown_ids=480 garbage=500 status={status} "
              f"seconds={took:.3f}", flush=True)
        self.assertEqual(status, 200, reply)
        self.assertEqual(len(reply), 1000)
        self.assertEqual(
            [r["label"] == "true_positive" for r in reply],
            [True] * 20 + [False] * 980)
        for k in live:
            self.assertEqual(self.key_status(k["id"]), "revoked")


def db_statements(metrics_port):
    """The server's lumo_db_queries_total (statements on pooled
    connections)."""
    conn = http.client.HTTPConnection("127.0.0.1", metrics_port,
                                      timeout=10 * harness.TIME_SCALE)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        body = resp.read().decode()
        if resp.status != 200:
            raise AssertionError(f"scrape returned {resp.status}")
    finally:
        conn.close()
    for line in body.splitlines():
        if line.startswith("lumo_db_queries_total "):
            return int(float(line.split()[1]))
    raise AssertionError("no lumo_db_queries_total in the scrape")


class LeakIntakeStatementsE2eTest(harness.LumoServerTestCase):
    """The statements and the time a report of 1,000 well-formed tokens of
    ids no key has costs (FIGUREs), on a server with no delivery workers
    polling, against the same count over an idle interval as long."""

    with_gateway = True

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.scanner = ScannerKeys(cls.tmp.name)
        cls.server_args = [
            f"--secret_scanning_keys_file={cls.scanner.file}",
            "--webhook_workers=0", "--metrics_listen=127.0.0.1:0"]
        super().setUpClass()
        cls.metrics_port = harness.metrics_port_from_log(
            cls.server.log_path, time.monotonic() + 20 * harness.TIME_SCALE)

    def test_a_report_of_1000_unknown_ids(self):
        tokens = [harness.forge("Zq%010d" % i) for i in range(1000)]
        before = db_statements(self.metrics_port)
        status, raw, took = timed_report(self, "unknown-ids-gateway", tokens)
        statements = db_statements(self.metrics_port) - before
        # The background's statements over an interval as long.
        idle_start = db_statements(self.metrics_port)
        time.sleep(took)
        idle = db_statements(self.metrics_port) - idle_start
        print(f"FIGURE leak_report_unknown_ids tokens=1000 status={status} "
              f"seconds={took:.3f} db_statements={statements} "
              f"idle_db_statements_same_interval={idle}", flush=True)
        self.assertEqual(status, 200, raw)
        reply = json.loads(raw)
        self.assertEqual([r["label"] for r in reply],
                         ["false_positive"] * 1000)
        self.assertEqual([r["token_hash"] for r in reply],
                         [token_hash(t) for t in tokens])


class LeakIntakeAcrossReplicasE2eTest(harness.ReplicaSetTestCase):
    """A reported key is refused by every replica when the reply returns."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.scanner = ScannerKeys(cls.tmp.name)
        cls.server_args = [f"--secret_scanning_keys_file={cls.scanner.file}"]
        super().setUpClass()
        cls.admin = cls.server.create_tenant("acme")

    def verify(self, replica, key):
        s = self.stubs
        return self.auth[replica].VerifyApiKey(
            s.auth_pb2.VerifyApiKeyRequest(key=key, tenant_slug="acme"),
            metadata=self.server.service_md(),
            timeout=30 * harness.TIME_SCALE).reason

    def test_a_reported_key_is_refused_on_every_replica(self):
        s = self.stubs
        created = self.keys[0].CreateApiKey(
            s.keys_pb2.CreateApiKeyRequest(tenant_slug="acme", name="leaky",
                                           scopes=["admin:read"]),
            metadata=harness.key_md(self.admin),
            timeout=30 * harness.TIME_SCALE)
        key = created.key
        # Every replica has it cached as valid.
        for replica in range(3):
            self.assertEqual(self.verify(replica, key), s.auth_pb2.VALID)
        body = json.dumps([entry(key)]).encode()
        scanning = s.secret_scanning_grpc.SecretScanningServiceStub(
            self.channels[1])
        reply = scanning.ReportLeakedTokens(
            s.secret_scanning_pb2.ReportLeakedTokensRequest(
                body=s.annotations_pb2.HttpBody(
                    content_type="application/json", data=body)),
            metadata=tuple((k.lower(), v) for k, v in
                           self.scanner.headers("current", body).items()),
            timeout=60 * harness.TIME_SCALE)
        self.assertEqual(json.loads(reply.data)[0]["label"], "true_positive")
        for replica in range(3):
            self.assertEqual(self.verify(replica, key), s.auth_pb2.REVOKED,
                             f"replica {replica}")


if __name__ == "__main__":
    unittest.main()
