"""Webhooks end to end (docs/webhooks.md): the REST API through the gateway,
deliveries to a real HTTPS receiver on loopback (Python http.server + ssl,
with a certificate from a CA made by the openssl CLI), every delivery's
signature checked with the receiver recipes of docs/webhooks.md (the Python
snippet executed here, the Node one by node), retries while the receiver
is down, and the address rules at creation and at send time."""

import json
import os
import re
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc

import harness
from harness.tls import Pki

ADMIN = "/t/acme/api/v1/admin"


def doc_snippet(language):
    """The code block of `language` in docs/webhooks.md."""
    path = os.path.join(harness.source_dir(), "docs", "webhooks.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    found = re.search(r"```" + language + r"\n(.*?)```", text, re.S)
    if found is None:
        raise AssertionError(f"no {language} block in docs/webhooks.md")
    return found.group(1)


def python_verifier():
    namespace = {}
    exec(doc_snippet("python"), namespace)  # the documented recipe, as is
    return namespace["verify_lumo_signature"]


class NodeVerifier:
    """The documented Node recipe, run by node on one request."""

    def __init__(self, directory):
        self.script = os.path.join(directory, "verify.js")
        with open(self.script, "w", encoding="utf-8") as f:
            f.write(doc_snippet("js"))
            f.write("\nconst [secret, header] = process.argv.slice(2);\n"
                    "const body = require('fs').readFileSync(0);\n"
                    "console.log(verifyLumoSignature(secret, header, body) "
                    "? 'valid' : 'invalid');\n")

    def __call__(self, secret, header, body):
        result = subprocess.run(["node", self.script, secret, header],
                                input=body, capture_output=True, timeout=60)
        if result.returncode != 0:
            raise AssertionError("node failed: " + result.stderr.decode())
        return result.stdout.decode().strip() == "valid"


def receiver_pki(cls):
    """A temporary directory that lives as long as test class `cls`, a CA
    made there by the openssl CLI and a receiver certificate it signs: sets
    cls.tmp, cls.pki, cls.cert and cls.key; returns the CA's file."""
    cls.tmp = tempfile.TemporaryDirectory()
    cls.addClassCleanup(cls.tmp.cleanup)
    cls.pki = Pki(cls.tmp.name)
    ca = cls.pki.ca("hooks-ca")
    cls.cert, cls.key = cls.pki.leaf("receiver", "hooks-ca", "serverAuth")
    return ca


class Receiver:
    """An HTTPS receiver on 127.0.0.1: records every request (headers,
    body) and answers `status`. Restartable on the same port."""

    def __init__(self, cert, key, port=0):
        self.lock = threading.Lock()
        self.requests = []
        self.status = 200
        self.delay = 0  # seconds each answer takes
        self._cert, self._key = cert, key
        self._start(port)

    def _start(self, port):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if receiver.delay:
                    time.sleep(receiver.delay)  # a slow receiver
                with receiver.lock:
                    receiver.requests.append(
                        ({k.lower(): v for k, v in self.headers.items()},
                         body))
                    status = receiver.status
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self._cert, self._key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket,
                                                server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def url(self, path="/hook"):
        return f"https://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()

    def restart(self):
        self._start(self.port)

    def received(self):
        with self.lock:
            return list(self.requests)

    def events(self):
        """(event id, parsed body, headers, raw body) of every request."""
        return [(h.get("lumo-event-id"), json.loads(b), h, b)
                for h, b in self.received()]


class WebhooksE2eTest(harness.LumoServerTestCase):
    with_gateway = True

    @classmethod
    def setUpClass(cls):
        ca = receiver_pki(cls)
        cls.server_args = [
            "--webhook_allow_cidrs=127.0.0.1/32",
            f"--webhook_ca_file={ca}",
            "--webhook_retry_base=100ms",
            "--webhook_poll_interval=50ms",
            "--webhook_timeout=3s",
        ]
        super().setUpClass()
        cls.admin = cls.server.create_tenant("acme")
        cls.verify_python = staticmethod(python_verifier())
        cls.verify_node = NodeVerifier(cls.tmp.name)

    def setUp(self):
        self.receiver = Receiver(self.cert, self.key)
        self.addCleanup(self.receiver.stop)

    def call(self, method, path, body=None, key=None):
        status, _, raw = self.gw.request(
            method, ADMIN + path, body=body,
            headers={"Authorization": "Bearer " + (key or self.admin)})
        return status, (json.loads(raw) if raw else None)

    def create_endpoint(self, **fields):
        body = {"url": self.receiver.url(), "description": "e2e"}
        body.update(fields)
        status, reply = self.call("POST", "/webhooks", body)
        self.assertEqual(status, 201, reply)
        return reply["data"]

    def delete_endpoint(self, endpoint_id):
        status, _ = self.call("DELETE", f"/webhooks/{endpoint_id}")
        self.assertEqual(status, 204)

    def deliveries(self, endpoint_id, status=""):
        query = f"?status={status}" if status else ""
        code, reply = self.call(
            "GET", f"/webhooks/{endpoint_id}/deliveries{query}")
        self.assertEqual(code, 200, reply)
        return reply["data"]

    def assert_signed(self, secrets, headers, body):
        """Every secret in `secrets` signs the request, by both recipes."""
        header = headers["lumo-signature"]
        for secret in secrets:
            self.assertTrue(self.verify_python(secret, header, body), header)
            self.assertTrue(self.verify_node(secret, header, body), header)
        self.assertFalse(self.verify_python("whsec_wrong", header, body))
        self.assertFalse(self.verify_python(secrets[0], header, body + b" "))

    def test_rest_api_and_signed_deliveries(self):
        endpoint = self.create_endpoint(eventTypes=["api_key.created"])
        secret = endpoint["secret"]
        self.assertRegex(secret, r"^whsec_[A-Za-z0-9]{43}$")
        self.assertEqual(endpoint["secretPrefix"], secret[:10])
        self.assertTrue(endpoint["enabled"])
        self.assertIsNone(endpoint["disabledReason"])
        wid = endpoint["id"]

        status, got = self.call("GET", f"/webhooks/{wid}")
        self.assertEqual(status, 200)
        self.assertNotIn("secret", got["data"])  # shown once
        status, listed = self.call("GET", "/webhooks")
        self.assertEqual(status, 200)
        self.assertIn(wid, [w["id"] for w in listed["data"]])
        self.assertEqual(listed["meta"]["page"], 1)

        # A key lifecycle event: one signed delivery.
        key = self.server.tenant_cli_json("acme", self.admin, "keys", "create",
                                          "--name", "hooked", "--scopes",
                                          "admin:read")
        harness.wait_for(lambda: len(self.receiver.received()) >= 1,
                         "the api_key.created delivery")
        event_id, payload, headers, raw = self.receiver.events()[0]
        self.assertEqual(payload["type"], "api_key.created")
        self.assertEqual(payload["id"], event_id)
        self.assertEqual(payload["tenant"], "acme")
        self.assertEqual(payload["data"]["target"]["id"], key["id"])
        self.assertEqual(payload["data"]["target"]["prefix"], "lmk_" + key["id"])
        self.assertNotIn(key["key"].encode(), raw)
        self.assertNotIn(secret.encode(), raw)
        self.assertEqual(headers["lumo-delivery-attempt"], "1")
        self.assert_signed([secret], headers, raw)
        harness.wait_for(
            lambda: [d["status"] for d in self.deliveries(wid)] ==
            ["delivered"], "the delivery log says delivered")
        log = self.deliveries(wid, "delivered")
        self.assertEqual(log[0]["eventId"], event_id)
        self.assertEqual(log[0]["lastHttpStatus"], 200)
        self.assertEqual(log[0]["attempts"], 1)

        # Not subscribed: a revocation sends nothing; subscribing does.
        status, patched = self.call("PATCH", f"/webhooks/{wid}",
                                    {"eventTypes": []})
        self.assertEqual(status, 200, patched)
        self.assertEqual(patched["data"]["eventTypes"], [])

        # Rotation with overlap: a test ping carries both signatures.
        status, rotated = self.call("POST", f"/webhooks/{wid}/rotate-secret",
                                    {"gracePeriodSeconds": 3600})
        self.assertEqual(status, 200, rotated)
        new_secret = rotated["data"]["secret"]
        self.assertNotEqual(new_secret, secret)
        self.assertIsNotNone(rotated["data"]["previousSecretValidUntil"])
        status, ping = self.call("POST", f"/webhooks/{wid}/test", {})
        self.assertEqual(status, 202, ping)
        self.assertEqual(ping["data"]["eventType"], "ping")
        harness.wait_for(
            lambda: any(p["type"] == "ping"
                        for _, p, _, _ in self.receiver.events()),
            "the ping")
        _, payload, headers, raw = [e for e in self.receiver.events()
                                    if e[1]["type"] == "ping"][0]
        self.assertEqual(payload["data"], {"webhookId": wid})
        self.assertEqual(headers["lumo-signature"].count("v1="), 2)
        self.assert_signed([new_secret, secret], headers, raw)

        # Secrets never reach the audit log.
        rows = self.server.rows(
            "SELECT CONCAT(action, metadata) FROM audit_events")
        text = "\n".join(r[0] for r in rows)
        self.assertIn("webhook.secret_rotated", text)
        self.assertNotIn(secret, text)
        self.assertNotIn(new_secret, text)

        # The delivery log pages by token (keyset), one at a time: every
        # delivery once, newest first; the first page counts the total.
        for _ in range(2):
            status, _ = self.call("POST", f"/webhooks/{wid}/test", {})
            self.assertEqual(status, 202)
        everything = [d["id"] for d in self.deliveries(wid)]
        self.assertEqual(len(everything), 4)
        status, page = self.call("GET", f"/webhooks/{wid}/deliveries?limit=1")
        self.assertEqual(status, 200, page)
        self.assertEqual(page["meta"]["total"], 4)
        walked = [d["id"] for d in page["data"]]
        while "nextPageToken" in page["meta"]:
            status, page = self.call(
                "GET", f"/webhooks/{wid}/deliveries?limit=1&pageToken=" +
                page["meta"]["nextPageToken"])
            self.assertEqual(status, 200, page)
            self.assertEqual(page["meta"]["totalRelation"], "unknown")
            walked += [d["id"] for d in page["data"]]
        self.assertEqual(walked, everything)
        status, refused = self.call(
            "GET", f"/webhooks/{wid}/deliveries?pageToken=p1.bogus")
        self.assertEqual(status, 400, refused)
        self.assertEqual(refused["details"]["field"], "pageToken")

        self.delete_endpoint(wid)
        status, _ = self.call("GET", f"/webhooks/{wid}")
        self.assertEqual(status, 404)

    def test_the_cli_manages_endpoints(self):
        """`lumokeys webhooks ...` against the real server: the secret is
        printed by create and rotate-secret only, a test ping arrives
        signed with it, the delivery log shows it, delete removes it."""
        cli = lambda *args: self.server.tenant_cli_json(  # noqa: E731
            "acme", self.admin, *args)
        created = cli("webhooks", "create", "--url", self.receiver.url(),
                      "--events", "api_key.revoked,api_key.leaked",
                      "--description", "from the CLI")
        wid, secret = created["id"], created["secret"]
        self.assertEqual(created["eventTypes"],
                         ["api_key.leaked", "api_key.revoked"])
        got = cli("webhooks", "get", wid)
        self.assertNotIn("secret", got)
        self.assertEqual(got["description"], "from the CLI")
        self.assertIn(wid, [w["id"] for w in cli("webhooks", "list")["data"]])
        updated = cli("webhooks", "update", wid, "--events", "",
                      "--enabled", "false")
        self.assertEqual(updated.get("eventTypes", []), [])
        self.assertFalse(updated.get("enabled", False))  # proto3 JSON
        self.assertEqual(updated["disabledReason"], "manual")
        self.assertTrue(cli("webhooks", "update", wid, "--enabled",
                            "true")["enabled"])
        # Human output: the secret once, with the note on stderr.
        human = self.server.cli("--tenant", "acme", "webhooks",
                                "rotate-secret", wid, "--grace-period", "0",
                                env={"LUMOKEYS_API_KEY": self.admin})
        self.assertEqual(human.returncode, 0, human.stderr)
        new_secret = re.search(r"^secret:\s+(whsec_\S+)$", human.stdout,
                               re.M).group(1)
        self.assertNotEqual(new_secret, secret)
        self.assertIn("shown only once", human.stderr)

        ping = cli("webhooks", "test", wid)
        self.assertEqual(ping["eventType"], "ping")
        harness.wait_for(lambda: len(self.receiver.received()) >= 1,
                         "the ping")
        _, payload, headers, raw = self.receiver.events()[0]
        self.assertEqual(payload["data"], {"webhookId": wid})
        self.assert_signed([new_secret], headers, raw)
        self.assertFalse(self.verify_python(secret, headers["lumo-signature"],
                                            raw))
        harness.wait_for(
            lambda: [d["status"] for d in cli("webhooks", "deliveries", wid,
                                              "--status", "delivered")
                     .get("data", [])] == ["delivered"],
            "the delivery log shows the ping delivered")
        log = self.server.cli("--tenant", "acme", "webhooks", "deliveries",
                              wid, env={"LUMOKEYS_API_KEY": self.admin})
        self.assertEqual(log.returncode, 0, log.stderr)
        self.assertIn("delivered", log.stdout)
        self.assertNotIn(new_secret, log.stdout)

        self.assertEqual(cli("webhooks", "delete", wid), {})
        gone = self.server.cli("--tenant", "acme", "webhooks", "get", wid,
                               env={"LUMOKEYS_API_KEY": self.admin})
        self.assertEqual(gone.returncode, 3)
        self.assertIn("NOT_FOUND", gone.stderr)

    def test_a_receiver_that_is_down_gets_the_event_when_it_returns(self):
        endpoint = self.create_endpoint(eventTypes=["api_key.revoked"])
        wid = endpoint["id"]
        self.addCleanup(self.delete_endpoint, wid)
        key = self.server.tenant_cli_json("acme", self.admin, "keys", "create",
                                          "--name", "doomed", "--scopes",
                                          "admin:read")
        self.receiver.status = 503
        self.server.tenant_cli_json("acme", self.admin, "keys", "revoke",
                                    key["id"])
        # Failed attempts are retried with backoff, each recorded.
        harness.wait_for(
            lambda: any(d["attempts"] >= 2 and d["lastHttpStatus"] == 503
                        for d in self.deliveries(wid, "pending")),
            "two failed attempts")
        pending = self.deliveries(wid, "pending")[0]
        self.assertEqual(pending["lastError"], "HTTP 503")
        self.receiver.stop()
        harness.wait_for(
            lambda: any(d["lastError"].startswith("cannot connect")
                        for d in self.deliveries(wid, "pending")),
            "an attempt while the receiver is down")
        self.receiver.status = 200
        self.receiver.restart()
        harness.wait_for(
            lambda: [d["status"] for d in self.deliveries(wid)] ==
            ["delivered"], "delivery once the receiver is back")
        ids = {e[0] for e in self.receiver.events()}
        self.assertEqual(ids, {pending["eventId"]})
        last = [e for e in self.receiver.events()][-1]
        self.assertGreaterEqual(int(last[2]["lumo-delivery-attempt"]), 3)
        self.assert_signed([endpoint["secret"]], last[2], last[3])

    def test_a_decoy_answers_like_an_unknown_key_and_alerts(self):
        endpoint = self.create_endpoint(eventTypes=["api_key.decoy_used"])
        self.addCleanup(self.delete_endpoint, endpoint["id"])
        status, created = self.call("POST", "/api-keys", {
            "name": "bait", "scopes": ["admin:write"], "decoy": True})
        self.assertEqual(status, 201, created)
        decoy = created["data"]
        self.assertTrue(decoy["decoy"])
        self.assertRegex(decoy["key"], harness.KEY_RE)
        status, listed = self.call("GET", "/api-keys?limit=100")
        self.assertNotIn(decoy["id"], [k["id"] for k in listed["data"]])
        status, decoys = self.call("GET", "/api-keys?decoy=true")
        self.assertEqual([k["id"] for k in decoys["data"]], [decoy["id"]])
        status, one = self.call("GET", f"/api-keys/{decoy['id']}")
        self.assertEqual(status, 200)
        self.assertTrue(one["data"]["decoy"])

        # REST: byte for byte the answer to a key that never existed.
        unknown = harness.forge("Zz" + decoy["id"][2:])
        answers = []
        for key in (unknown, decoy["key"]):
            status, headers, raw = self.gw.request(
                "GET", ADMIN + "/api-keys",
                headers={"Authorization": "Bearer " + key,
                         "User-Agent": "decoy-scanner/1.0"})
            answers.append((status, raw, headers.get("content-type"),
                            headers.get("www-authenticate")))
        self.assertEqual(answers[0][0], 401)
        self.assertEqual(answers[0], answers[1])
        # gRPC: VerifyApiKey says NOT_FOUND, exactly as for the unknown key.
        s = harness.stubs()
        with grpc.insecure_channel(self.server.address) as channel:
            auth = s.auth_grpc.AuthServiceStub(channel)
            replies = [auth.VerifyApiKey(
                s.auth_pb2.VerifyApiKeyRequest(key=key, tenant_slug="acme"),
                metadata=self.server.service_md(),
                timeout=30 * harness.TIME_SCALE) for key in (unknown,
                                                             decoy["key"])]
        self.assertEqual(replies[0].reason, s.auth_pb2.NOT_FOUND)
        self.assertEqual(replies[0].SerializeToString(),
                         replies[1].SerializeToString())

        # The trap: a critical suspicious event and its webhook, with the
        # presenter's address and agent.
        def rest_use():
            return [(p, h, raw) for _, p, h, raw in self.receiver.events()
                    if p["type"] == "api_key.decoy_used" and
                    p["data"]["userAgent"] == "decoy-scanner/1.0"]
        harness.wait_for(rest_use, "the decoy webhook of the REST call")
        payload, headers, raw = rest_use()[0]
        self.assertEqual(payload["data"]["target"]["id"], decoy["id"])
        self.assertTrue(payload["data"]["suspicious"])
        self.assertEqual(payload["data"]["metadata"]["severity"], "critical")
        self.assertEqual(payload["data"]["ipAddress"], "127.0.0.1")
        self.assertNotIn(decoy["key"].encode(), raw)
        self.assert_signed([endpoint["secret"]], headers, raw)
        # Both presentations (REST and VerifyApiKey) are in the audit log.
        harness.wait_for(
            lambda: self.call(
                "GET", "/audit-logs?action=api_key.decoy_used&suspicious=true"
            )[1]["meta"]["total"] >= 2, "both decoy events")

    def test_rotation_stragglers_are_listed_during_the_grace_period(self):
        status, created = self.call("POST", "/api-keys", {
            "name": "rotating", "scopes": ["admin:read"]})
        self.assertEqual(status, 201, created)
        old = created["data"]
        status, rotated = self.call("POST", f"/api-keys/{old['id']}/rotate",
                                    {"gracePeriodSeconds": 3600})
        self.assertEqual(status, 200, rotated)
        new_key = rotated["data"]["key"]
        status, got = self.call("GET", f"/api-keys/{old['id']}")
        self.assertEqual(status, 200, got)
        self.assertIsNotNone(got["data"]["previousSecretValidUntil"])
        self.assertNotIn("previousSecretUsers", got["data"])  # nobody yet

        def rest_call(key, agent):
            status, _, raw = self.gw.request(
                "GET", ADMIN + "/api-keys?limit=1",
                headers={"Authorization": "Bearer " + key,
                         "User-Agent": agent})
            self.assertEqual(status, 200, raw)
        rest_call(old["key"], "straggler-rest/1.0")
        rest_call(old["key"], "straggler-rest/1.0")
        rest_call(new_key, "switched/2.0")
        s = harness.stubs()
        with grpc.insecure_channel(self.server.address) as channel:
            auth = s.auth_grpc.AuthServiceStub(channel)
            for key, client in ((old["key"], "203.0.113.7"),
                                (new_key, "203.0.113.8")):
                reply = auth.VerifyApiKey(
                    s.auth_pb2.VerifyApiKeyRequest(
                        key=key, tenant_slug="acme", client_ip=client),
                    # The verifying service passes its client's agent on.
                    metadata=self.server.service_md() +
                    (("x-lumo-user-agent", "straggler-grpc/3"),),
                    timeout=30 * harness.TIME_SCALE)
                self.assertEqual(reply.reason, s.auth_pb2.VALID)

        def stragglers():
            status, got = self.call("GET", f"/api-keys/{old['id']}")
            self.assertEqual(status, 200, got)
            return {(u["ipAddress"], u["userAgent"]): u
                    for u in got["data"].get("previousSecretUsers", [])}
        expected = {("127.0.0.1", "straggler-rest/1.0"): 2,
                    ("203.0.113.7", "straggler-grpc/3"): 1}
        # The uses are written by the batched audit writer: wait for all.
        harness.wait_for(
            lambda: {k: u["count"] for k, u in stragglers().items()} ==
            expected, "both clients of the previous secret listed")
        users = stragglers()
        for user in users.values():
            self.assertRegex(user["lastSeenAt"], r"^\d{4}-\d\d-\d\dT")
        # The audit explains each entry: uses marked as the previous secret.
        status, audit = self.call(
            "GET", f"/audit-logs?action=api_key.used&actorId={old['id']}")
        marked = [e for e in audit["data"]
                  if e["actor"]["id"] == old["id"] and
                  e["metadata"].get("secret") == "previous"]
        # Two REST calls and one verification summary.
        self.assertEqual(len(marked), 3, marked)
        # Once the grace period is over (a rotation without grace ends it)
        # there is nobody left to chase: no list.
        status, again = self.call("POST", f"/api-keys/{old['id']}/rotate",
                                  {"gracePeriodSeconds": 0})
        self.assertEqual(status, 200, again)
        status, got = self.call("GET", f"/api-keys/{old['id']}")
        self.assertNotIn("previousSecretUsers", got["data"])
        self.assertIsNone(got["data"]["previousSecretValidUntil"])

    def test_addresses_deliveries_may_not_reach_are_refused(self):
        for url in ("https://10.0.0.1/hook", "https://172.16.0.1/hook",
                    "https://192.168.0.1/hook", "https://169.254.169.254/",
                    "https://100.64.0.1/hook", "https://127.0.0.2/hook",
                    "https://[::1]/hook", "https://[fe80::1]/hook",
                    "https://[fd00:ec2::254]/", "https://0.0.0.0/hook",
                    "https://[::ffff:10.0.0.1]/hook",
                    "http://hooks.example.com/hook",
                    "http://127.0.0.1:1/hook"):
            status, reply = self.call("POST", "/webhooks", {"url": url})
            self.assertEqual(status, 400, url)
            self.assertEqual(reply["code"], "validation_error", url)
            self.assertEqual(reply["details"]["field"], "url", url)
        status, listed = self.call("GET", "/webhooks")
        self.assertEqual(listed["meta"]["total"], 0)



class WebhookSendTimeRefusalE2eTest(harness.LumoServerTestCase):
    """Without --webhook_allow_cidrs, a URL whose *name* resolves to a
    refused address is accepted at creation (names are checked when sent)
    and every attempt is refused before connecting: the receiver, listening
    on that very address, gets nothing, and the log names the address and
    its class."""
    with_gateway = True

    @classmethod
    def setUpClass(cls):
        ca = receiver_pki(cls)
        cls.server_args = [
            f"--webhook_ca_file={ca}",
            "--webhook_retry_base=100ms",
            "--webhook_poll_interval=50ms",
        ]
        super().setUpClass()
        cls.admin = cls.server.create_tenant("acme")

    def call(self, method, path, body=None):
        status, _, raw = self.gw.request(
            method, ADMIN + path, body=body,
            headers={"Authorization": "Bearer " + self.admin})
        return status, (json.loads(raw) if raw else None)

    def test_a_name_resolving_to_loopback_is_refused_when_sent(self):
        receiver = Receiver(self.cert, self.key)
        self.addCleanup(receiver.stop)
        status, created = self.call("POST", "/webhooks", {
            "url": f"https://localhost:{receiver.port}/hook"})
        self.assertEqual(status, 201, created)
        wid = created["data"]["id"]
        status, _ = self.call("POST", f"/webhooks/{wid}/test", {})
        self.assertEqual(status, 202)

        def refused():
            status, log = self.call("GET", f"/webhooks/{wid}/deliveries")
            self.assertEqual(status, 200, log)
            return [d for d in log["data"] if d["attempts"] >= 2 and
                    "refused address" in d["lastError"]]
        # Retried (a refusal is a failed attempt), and refused each time.
        harness.wait_for(refused, "two refused attempts")
        delivery = refused()[0]
        self.assertRegex(delivery["lastError"],
                         r"^refused address (127\.0\.0\.1|::1) \(loopback\)$")
        self.assertEqual(delivery["lastHttpStatus"], 0)
        self.assertEqual(delivery["status"], "pending")
        self.assertEqual(receiver.received(), [])


class DecoyBlockE2eTest(harness.LumoServerTestCase):
    """--decoy_block_seconds: once a decoy is presented for an end client,
    the decoy's tenant's keys answer that client exactly as an unknown key
    does, other clients and other tenants are unaffected, and the refusals
    are suspicious events naming the block."""
    server_args = ["--decoy_block_seconds=3600"]

    def test_a_decoys_presenter_gets_unknown_key_for_the_tenants_keys(self):
        admin = self.server.create_tenant("acme")
        other_admin = self.server.create_tenant("other")
        real = self.server.tenant_cli_json("acme", admin, "keys", "create",
                                           "--name", "real", "--scopes",
                                           "admin:read")["key"]
        decoy = self.server.tenant_cli_json("acme", admin, "keys", "create",
                                            "--name", "bait", "--scopes",
                                            "admin:read", "--decoy")["key"]
        unknown = harness.forge("Zz" + harness.key_id(real)[2:])
        s = harness.stubs()
        with grpc.insecure_channel(self.server.address) as channel:
            auth = s.auth_grpc.AuthServiceStub(channel)

            def verify(key, tenant, client):
                return auth.VerifyApiKey(
                    s.auth_pb2.VerifyApiKeyRequest(
                        key=key, tenant_slug=tenant, client_ip=client),
                    metadata=self.server.service_md(),
                    timeout=30 * harness.TIME_SCALE)
            self.assertEqual(verify(real, "acme", "198.51.100.7").reason,
                             s.auth_pb2.VALID)
            self.assertEqual(verify(decoy, "acme", "198.51.100.7").reason,
                             s.auth_pb2.NOT_FOUND)
            held = verify(real, "acme", "198.51.100.7")
            self.assertEqual(held.reason, s.auth_pb2.NOT_FOUND)
            self.assertEqual(
                held.SerializeToString(),
                verify(unknown, "acme", "198.51.100.7").SerializeToString())
            self.assertEqual(verify(real, "acme", "198.51.100.8").reason,
                             s.auth_pb2.VALID)
            self.assertEqual(verify(other_admin, "other", "198.51.100.7")
                             .reason, s.auth_pb2.VALID)
        harness.wait_for(lambda: int(self.server.rows(
            "SELECT COUNT(*) FROM audit_events WHERE action ="
            " 'auth.api_key.failed' AND suspicious = 1 AND metadata LIKE"
            " '%decoy_block%' AND ip_address = '198.51.100.7'")[0][0]) >= 1,
            "the blocked verification audited as suspicious")


class WebhookDeliveryAcrossProcessesE2eTest(harness.LumoServerTestCase):
    """At least once across a crash, once across replicas: three server
    processes on one database, one HTTPS receiver."""

    @classmethod
    def setUpClass(cls):
        ca = receiver_pki(cls)
        cls.server_args = [
            "--webhook_allow_cidrs=127.0.0.1/32",
            f"--webhook_ca_file={ca}",
            "--webhook_retry_base=100ms",
            "--webhook_poll_interval=50ms",
            # The lease after a crash is 2 x timeout + 30 s.
            "--webhook_timeout=1s",
        ]
        super().setUpClass()
        cls.admin = cls.server.create_tenant("acme")

    def setUp(self):
        self.receiver = Receiver(self.cert, self.key)
        self.addCleanup(self.receiver.stop)
        self.endpoint = self._create_endpoint()

    def _create_endpoint(self):
        # Over gRPC with the generated stubs: this class runs no gateway.
        s = harness.stubs()
        with grpc.insecure_channel(self.server.address) as channel:
            stub = s.webhooks_grpc.WebhookServiceStub(channel)
            reply = stub.CreateWebhook(
                s.webhooks_pb2.CreateWebhookRequest(
                    tenant_slug="acme", url=self.receiver.url(),
                    event_types=["api_key.created"]),
                metadata=harness.key_md(self.admin),
                timeout=30 * harness.TIME_SCALE)
        self.addCleanup(self._delete_endpoint, reply.id)
        return reply

    def _delete_endpoint(self, endpoint_id):
        self.server.sql(
            f"DELETE FROM webhook_deliveries WHERE endpoint_id = '{endpoint_id}'")
        self.server.sql(
            f"DELETE FROM webhook_endpoints WHERE id = '{endpoint_id}'")

    def create_keys(self, n, prefix):
        for i in range(n):
            self.server.tenant_cli_json("acme", self.admin, "keys", "create",
                                        "--name", f"{prefix}-{i}",
                                        "--scopes", "admin:read")

    def event_ids(self):
        """The ids of every event written for this test's endpoint."""
        return {row[0] for row in self.server.rows(
            "SELECT e.event_id FROM webhook_events e JOIN webhook_deliveries d"
            f" ON d.event_row = e.id WHERE d.endpoint_id = '{self.endpoint.id}'")}

    def received_ids(self):
        return [e[0] for e in self.receiver.events()]

    def test_kill_9_mid_delivery_loses_no_event(self):
        self.receiver.delay = 0.3
        self.create_keys(10, "crash")
        expected = self.event_ids()
        self.assertEqual(len(expected), 10)
        harness.wait_for(lambda: len(self.receiver.received()) >= 1,
                         "the first delivery in flight")
        self.server.kill()
        before_restart = len(self.received_ids())
        self.server.start()
        self.receiver.delay = 0
        harness.wait_for(lambda: set(self.received_ids()) >= expected,
                         "every event delivered after the restart",
                         timeout_s=120)
        received = self.received_ids()
        harness.figure("webhook_kill9", events=len(expected),
                       requests=len(received),
                       duplicates=len(received) - len(set(received)),
                       received_before_restart=before_restart)
        self.assertEqual(set(received), expected)

    def test_three_replicas_deliver_each_event_once(self):
        replicas = [harness.LumoReplica(self.server, name).start()
                    for name in ("b", "c")]
        for r in replicas:
            self.addCleanup(r.stop)
        self.create_keys(30, "replicas")
        expected = self.event_ids()
        self.assertEqual(len(expected), 30)
        harness.wait_for(lambda: set(self.received_ids()) >= expected,
                         "every event delivered")
        # Every delivery is recorded as delivered, by one attempt each.
        harness.wait_for(lambda: self.server.rows(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE endpoint_id ="
            f" '{self.endpoint.id}' AND state = 'delivered'") == [["30"]],
            "every delivery recorded")
        received = self.received_ids()
        self.assertEqual(sorted(received), sorted(expected),
                         "an event was delivered more than once")
        self.assertEqual(self.server.rows(
            "SELECT MAX(attempts) FROM webhook_deliveries WHERE endpoint_id ="
            f" '{self.endpoint.id}'"), [["1"]])


if __name__ == "__main__":
    unittest.main()
