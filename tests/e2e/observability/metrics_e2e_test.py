"""Metrics and logs of the real lumokeys-server and lumokeys-gateway: both
admin endpoints are scraped while load runs, every scrape is parsed with a
strict Prometheus text-format (0.0.4) parser, the counters must move by at
least the calls made, and the captured logs (at debug, the most verbose
level) must be one JSON object per line and hold none of the run's secrets.
"""
import http.client
import json
import math
import re
import secrets
import threading
import time
import unittest

import harness

# ---------------------------------------------------------------- parser

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
_VALUE = r"(?:[+-]?Inf|NaN|[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
_SAMPLE_RE = re.compile(
    r"^(" + _NAME + r")(?:\{(.*)\})? (" + _VALUE + r")$")
_LABEL_PAIR_RE = re.compile(r'(' + _LABEL + r')="((?:[^"\\\n]|\\\\|\\"|\\n)*)"')


class ExpositionError(AssertionError):
    pass


def _unescape(value):
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c == "\\":
            nxt = value[i + 1]
            out.append({"\\": "\\", '"': '"', "n": "\n"}[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _parse_labels(text, line):
    labels = {}
    pos = 0
    while pos < len(text):
        m = _LABEL_PAIR_RE.match(text, pos)
        if not m:
            raise ExpositionError(f"bad labels: {line!r}")
        name = m.group(1)
        if name in labels:
            raise ExpositionError(f"duplicate label {name}: {line!r}")
        labels[name] = _unescape(m.group(2))
        pos = m.end()
        if pos < len(text):
            if text[pos] != ",":
                raise ExpositionError(f"bad label separator: {line!r}")
            pos += 1
    return labels


def parse_exposition(text):
    """Strictly parses Prometheus text format 0.0.4 as we emit it. Returns
    {family: {"type", "help", "samples": {(name, frozenset(labels)): value}}}
    and raises ExpositionError on anything malformed: unknown line shapes,
    samples without a TYPE, a family's samples split up, repeated HELP/TYPE
    or series, histogram buckets that are not cumulative or disagree with
    _count, negative counters."""
    if text and not text.endswith("\n"):
        raise ExpositionError("exposition must end with a newline")
    families = {}
    current = None
    closed = set()

    def family_of(sample_name):
        for suffix in ("_bucket", "_sum", "_count"):
            base = sample_name[:-len(suffix)]
            if (sample_name.endswith(suffix) and base in families
                    and families[base]["type"] == "histogram"):
                return base
        return sample_name

    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, rest = line[2:6], line[7:]
            name, _, value = rest.partition(" ")
            if not re.fullmatch(_NAME, name):
                raise ExpositionError(f"bad metric name: {line!r}")
            if name in closed:
                raise ExpositionError(f"family {name} split: {line!r}")
            if current is not None and current != name:
                closed.add(current)
            current = name
            fam = families.setdefault(
                name, {"type": None, "help": None, "samples": {}})
            if kind == "HELP":
                if fam["help"] is not None:
                    raise ExpositionError(f"second HELP: {line!r}")
                fam["help"] = value
            else:
                if fam["type"] is not None or fam["samples"]:
                    raise ExpositionError(f"late or second TYPE: {line!r}")
                if value not in ("counter", "gauge", "histogram", "summary",
                                 "untyped"):
                    raise ExpositionError(f"bad type: {line!r}")
                fam["type"] = value
            continue
        if line.startswith("#") or not line:
            raise ExpositionError(f"unexpected line: {line!r}")
        m = _SAMPLE_RE.match(line)
        if not m:
            raise ExpositionError(f"bad sample line: {line!r}")
        sample_name, label_text, value_text = m.groups()
        labels = _parse_labels(label_text or "", line)
        base = family_of(sample_name)
        if base not in families or families[base]["type"] is None:
            raise ExpositionError(f"sample without TYPE: {line!r}")
        if base != current:
            raise ExpositionError(f"sample outside its family: {line!r}")
        fam = families[base]
        key = (sample_name, frozenset(labels.items()))
        if key in fam["samples"]:
            raise ExpositionError(f"duplicate series: {line!r}")
        value = float(value_text)
        if fam["type"] == "counter" and not value >= 0:
            raise ExpositionError(f"negative counter: {line!r}")
        fam["samples"][key] = value
    for name, fam in families.items():
        if fam["type"] == "histogram":
            check_histogram(name, fam)
    return families


def check_histogram(name, fam):
    series = {}
    for (sample_name, labels), value in fam["samples"].items():
        labels = dict(labels)
        le = labels.pop("le", None)
        group = series.setdefault(frozenset(labels.items()),
                                  {"buckets": [], "sum": None, "count": None})
        if sample_name == name + "_bucket":
            if le is None:
                raise ExpositionError(f"{name}: bucket without le")
            group["buckets"].append((float(le), value))
        elif sample_name == name + "_sum":
            group["sum"] = value
        elif sample_name == name + "_count":
            group["count"] = value
        else:
            raise ExpositionError(f"{name}: stray sample {sample_name}")
    for labels, group in series.items():
        buckets = sorted(group["buckets"])
        if not buckets or buckets[-1][0] != math.inf:
            raise ExpositionError(f"{name}{dict(labels)}: no +Inf bucket")
        counts = [c for _, c in buckets]
        if any(b < a for a, b in zip(counts, counts[1:])):
            raise ExpositionError(f"{name}{dict(labels)}: not cumulative")
        if group["count"] != counts[-1] or group["sum"] is None:
            raise ExpositionError(f"{name}{dict(labels)}: _count/_sum wrong")


def value_of(families, name, **labels):
    """The sample `name` with exactly `labels` (0 if absent)."""
    base = name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[:-len(suffix)] in families:
            base = name[:-len(suffix)]
    fam = families.get(base)
    if fam is None:
        return 0.0
    return fam["samples"].get((name, frozenset(labels.items())), 0.0)


def all_series(families):
    for fam in families.values():
        for key, value in fam["samples"].items():
            yield key, value


# ------------------------------------------------------------- processes

def scrape(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        body = resp.read().decode("utf-8")
        if resp.status != 200:
            raise AssertionError(f"scrape returned {resp.status}")
        ctype = resp.getheader("Content-Type")
        if ctype != "text/plain; version=0.0.4; charset=utf-8":
            raise AssertionError(f"content type {ctype}")
        return parse_exposition(body)
    finally:
        conn.close()


# ------------------------------------------------------------------ test

LIST_ROUTE = "/t/{tenant_slug}/api/v1/admin/api-keys"
LIST_RPC = "lumo.keys.v1.KeyService/ListApiKeys"
VERIFY_RPC = "lumo.auth.v1.AuthService/VerifyApiKey"
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


class MetricsAndLogsE2ETest(harness.LumoServerTestCase):
    """A server and a gateway with metrics ports and debug logs."""

    server_args = ("--metrics_listen=127.0.0.1:0", "--log_level=debug")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server_metrics_port = harness.metrics_port_from_log(
            cls.server.log_path, time.monotonic() + 20 * harness.TIME_SCALE)
        # Idle keep-alive connections stay open for the gateway's default
        # request timeout (30 s), across the scrapes that count them.
        cls.gw = harness.LumoGateway(cls.server, request_timeout="30s",
                                     extra_args=["--log_level=debug"],
                                     metrics=True)
        cls.tenant = "obs-" + secrets.token_hex(4)
        cls.key = cls.server.create_tenant(cls.tenant)
        cls.cookie = "session=" + secrets.token_urlsafe(24)

    def list_path(self):
        return f"/t/{self.tenant}/api/v1/admin/api-keys"

    def verify_cli(self, key, expect):
        r = self.server.cli("--tenant", self.tenant, "verify",
                            input=key + "\n")
        self.assertEqual(r.returncode, expect, r.stdout + r.stderr)

    def bad_checksum_key(self):
        last = self.key[-1]
        return self.key[:-1] + ("A" if last != "A" else "B")

    # --------------------------------------------------------------

    def test_metrics_move_under_load_and_logs_hold_no_secret(self):
        before_gw = scrape(self.gw.metrics_port)
        before_srv = scrape(self.server_metrics_port)

        ok_calls_per_thread, threads_n = 25, 3
        unauthenticated_calls = 5
        errors = []
        stop_scraping = threading.Event()
        scrapes = []

        def rest_load():
            try:
                for _ in range(ok_calls_per_thread):
                    status, _, _ = self.gw.request(
                        "GET", self.list_path(),
                        headers={"Authorization": "Bearer " + self.key,
                                 "Cookie": self.cookie})
                    if status != 200:
                        errors.append(status)
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        def scraper():
            while not stop_scraping.is_set():
                scrapes.append((scrape(self.gw.metrics_port),
                                scrape(self.server_metrics_port)))
                time.sleep(0.05)

        scraping = threading.Thread(target=scraper)
        scraping.start()
        load = [threading.Thread(target=rest_load) for _ in range(threads_n)]
        for t in load:
            t.start()
        # Meanwhile: internal verification with valid, malformed and
        # bad-checksum keys, and REST calls with a wrong key.
        for _ in range(3):
            self.verify_cli(self.key, 0)
        for _ in range(2):
            self.verify_cli("lmk_not-a-key", 1)
        for _ in range(2):
            self.verify_cli(self.bad_checksum_key(), 1)
        for _ in range(unauthenticated_calls):
            status, _, _ = self.gw.request(
                "GET", self.list_path(),
                headers={"X-API-Key": self.bad_checksum_key()})
            self.assertEqual(status, 401)
        status, _, _ = self.gw.request("GET", "/no/such/route")
        self.assertEqual(status, 404)
        for t in load:
            t.join()
        # A keep-alive connection that stays open while we scrape.
        held = http.client.HTTPConnection("127.0.0.1", self.gw.port,
                                          timeout=10)
        status, headers, _ = self.gw.request(
            "GET", self.list_path(),
            headers={"Authorization": "Bearer " + self.key}, conn=held)
        request_id = headers.get("x-request-id")
        self.assertEqual(status, 200)
        stop_scraping.set()
        scraping.join()
        self.assertEqual(errors, [])
        self.assertGreaterEqual(len(scrapes), 2, "scrapes ran during load")

        after_gw = scrape(self.gw.metrics_port)
        after_srv = scrape(self.server_metrics_port)
        held.close()
        ok_calls = ok_calls_per_thread * threads_n + 1

        # Counters and histogram counts never go down between scrapes.
        sequence = [(before_gw, before_srv)] + scrapes + [(after_gw, after_srv)]
        for index in (0, 1):
            for earlier, later in zip(sequence, sequence[1:]):
                old, new = earlier[index], later[index]
                for name, fam in old.items():
                    if fam["type"] not in ("counter", "histogram"):
                        continue
                    for key, value in fam["samples"].items():
                        if key[0].endswith("_sum"):
                            continue
                        self.assertGreaterEqual(
                            new[name]["samples"].get(key, -1), value,
                            f"{key} went down")

        def delta(after, before, name, **labels):
            return (value_of(after, name, **labels)
                    - value_of(before, name, **labels))

        # ----- gateway
        self.assertGreaterEqual(
            delta(after_gw, before_gw, "lumo_gateway_requests_total",
                  route=LIST_ROUTE, method="GET", status="200"), ok_calls)
        self.assertGreaterEqual(
            delta(after_gw, before_gw, "lumo_gateway_requests_total",
                  route=LIST_ROUTE, method="GET", status="401"),
            unauthenticated_calls)
        self.assertGreaterEqual(
            delta(after_gw, before_gw, "lumo_gateway_requests_total",
                  route="unmatched", method="GET", status="404"), 1)
        self.assertGreaterEqual(
            delta(after_gw, before_gw,
                  "lumo_gateway_request_duration_seconds_count",
                  route=LIST_ROUTE, method="GET"),
            ok_calls + unauthenticated_calls)
        self.assertGreaterEqual(
            delta(after_gw, before_gw, "lumo_gateway_upstream_errors_total",
                  code="UNAUTHENTICATED"), unauthenticated_calls)
        self.assertGreaterEqual(
            value_of(after_gw, "lumo_gateway_open_connections"), 1)

        # ----- server
        self.assertGreaterEqual(
            delta(after_srv, before_srv, "lumo_grpc_server_requests_total",
                  rpc=LIST_RPC, code="OK"), ok_calls)
        self.assertGreaterEqual(
            delta(after_srv, before_srv, "lumo_grpc_server_requests_total",
                  rpc=LIST_RPC, code="UNAUTHENTICATED"),
            unauthenticated_calls)
        self.assertGreaterEqual(
            delta(after_srv, before_srv, "lumo_grpc_server_requests_total",
                  rpc=VERIFY_RPC, code="OK"), 7)
        self.assertGreaterEqual(
            delta(after_srv, before_srv,
                  "lumo_grpc_server_request_duration_seconds_count",
                  rpc=LIST_RPC), ok_calls + unauthenticated_calls)
        self.assertGreater(
            delta(after_srv, before_srv,
                  "lumo_grpc_server_request_duration_seconds_sum",
                  rpc=LIST_RPC), 0)
        # Authentication of the REST calls verifies the key too.
        self.assertGreaterEqual(
            delta(after_srv, before_srv, "lumo_verify_outcomes_total",
                  reason="valid"), ok_calls + 3)
        self.assertGreaterEqual(
            delta(after_srv, before_srv, "lumo_verify_outcomes_total",
                  reason="malformed"), 2 + 2 + unauthenticated_calls)
        self.assertGreaterEqual(
            delta(after_srv, before_srv, "lumo_verify_outcomes_total",
                  reason="bad_checksum"), 2 + unauthenticated_calls)
        # Every authenticated call looked its key up in the cache: a hit,
        # or a miss while the cache was not trusted (a loaded machine can
        # let the replica lease lapse for a moment, which is correct).
        hits = delta(after_srv, before_srv, "lumo_verify_cache_hits_total")
        misses = delta(after_srv, before_srv, "lumo_verify_cache_misses_total")
        self.assertGreaterEqual(hits + misses, ok_calls)
        self.assertGreater(hits, 0)
        self.assertGreaterEqual(
            value_of(after_srv, "lumo_verify_cache_entries"), 1)
        self.assertGreater(
            delta(after_srv, before_srv, "lumo_db_queries_total"), 0)
        self.assertGreaterEqual(
            value_of(after_srv, "lumo_db_pool_connections_open"), 1)
        self.assertIn("lumo_db_pool_connections_in_use", after_srv)
        self.assertIn("lumo_db_pool_waits_total", after_srv)
        self.assertIn("lumo_db_pool_wait_seconds_total", after_srv)
        # Every key use is an audit event; they are written within the
        # flush interval.
        self.assertGreaterEqual(
            delta(after_srv, before_srv, "lumo_audit_events_enqueued_total"),
            ok_calls)
        self.assertIn("lumo_audit_queue_depth", after_srv)
        self.assertEqual(after_srv["lumo_change_feed_lag_seconds"]["type"],
                         "gauge")
        # The server is a replica (--replication defaults on): it reads the
        # change feed every few tens of ms. Once it has caught up, its lag
        # is under its 3 s lease and its cache is trusted (a loaded machine
        # may delay that moment, which is not what is tested here).
        self.assertIn(("lumo_change_feed_lag_seconds", frozenset()),
                      after_srv["lumo_change_feed_lag_seconds"]["samples"])
        deadline = time.monotonic() + 20 * harness.TIME_SCALE
        while True:
            current = scrape(self.server_metrics_port)
            lag = value_of(current, "lumo_change_feed_lag_seconds")
            trusted = value_of(current, "lumo_verify_cache_trusted")
            if (lag < 3.0 and trusted == 1.0) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertLess(lag, 3.0)
        self.assertEqual(trusted, 1.0)
        self.assertGreaterEqual(
            value_of(after_srv, "lumo_change_feed_applied_seq"), 0.0)
        deadline = time.monotonic() + 20 * harness.TIME_SCALE
        while True:
            latest = scrape(self.server_metrics_port)
            written = delta(latest, before_srv,
                            "lumo_audit_events_written_total")
            flushes = delta(latest, before_srv,
                            "lumo_audit_flush_duration_seconds_count")
            if (written >= ok_calls and flushes >= 1) or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertGreaterEqual(written, ok_calls)
        self.assertGreaterEqual(flushes, 1)

        # No metric carries a secret, in a name or a label.
        exposition = json.dumps(
            [repr(k) for k, _ in all_series(latest)]
            + [repr(k) for k, _ in all_series(after_gw)])
        for secret in self.secrets():
            self.assertNotIn(secret, exposition)

        self.check_logs(request_id)

    # --------------------------------------------------------------

    def secrets(self):
        with open(self.server.pepper_path) as f:
            pepper = f.read().strip().split(":", 1)[1]
        key = self.key
        return [key, key[17:], key[17:60], self.bad_checksum_key()[17:],
                self.server.service_token, self.server.operator_token,
                self.server.mysql.password, pepper,
                self.cookie.split("=", 1)[1]]

    def json_lines(self, path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        lines = []
        for line in text.splitlines():
            if line.startswith("=== "):  # the harness's own markers
                continue
            record = json.loads(line)
            self.assertIsInstance(record, dict, line)
            self.assertRegex(record["time"], RFC3339_UTC, line)
            self.assertIn(record["level"],
                          ("debug", "info", "warning", "error", "fatal"), line)
            self.assertIsInstance(record["msg"], str, line)
            lines.append(record)
        return text, lines

    def check_logs(self, last_request_id):
        # The gateway writes its lines before it exits; read after a flush
        # point: the last request's line is there once it has answered.
        server_text, server_lines = self.json_lines(self.server.log_path)
        gw_text, gw_lines = self.json_lines(self.gw.log_path)
        for secret in self.secrets():
            self.assertTrue(secret)
            self.assertNotIn(secret, server_text, "secret in server log")
            self.assertNotIn(secret, gw_text, "secret in gateway log")

        rpc_lines = [r for r in server_lines if r["msg"] == "rpc"]
        self.assertTrue(any(r["level"] == "debug" and r["rpc"] == VERIFY_RPC
                            for r in rpc_lines),
                        "OK VerifyApiKey calls are logged at debug")
        for r in rpc_lines:
            for field in ("rpc", "code", "latency_ms", "request_id",
                          "tenant"):
                self.assertIn(field, r)
        http_lines = [r for r in gw_lines if r["msg"] == "http"]
        for r in http_lines:
            for field in ("method", "route", "status", "latency_ms",
                          "request_id", "tenant"):
                self.assertIn(field, r)
        # One request, followed across both processes by its request id.
        gw_line = [r for r in http_lines
                   if r["request_id"] == last_request_id]
        self.assertEqual(len(gw_line), 1, last_request_id)
        self.assertEqual(gw_line[0]["route"], LIST_ROUTE)
        self.assertEqual(gw_line[0]["status"], 200)
        self.assertEqual(gw_line[0]["tenant"], self.tenant)
        srv_line = [r for r in rpc_lines
                    if r["request_id"] == last_request_id]
        self.assertEqual(len(srv_line), 1, last_request_id)
        self.assertEqual(srv_line[0]["rpc"], LIST_RPC)
        self.assertEqual(srv_line[0]["code"], "OK")
        self.assertEqual(srv_line[0]["tenant"], self.tenant)
        self.assertEqual(srv_line[0]["level"], "info")


class ParserSelfTest(unittest.TestCase):
    """The strict parser rejects what it must (so the e2e test's parse is
    a real check)."""

    GOOD = ("# HELP a_total A.\n# TYPE a_total counter\n"
            'a_total{x="1"} 2\n'
            "# HELP h H.\n# TYPE h histogram\n"
            'h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3\nh_count 2\n')

    def test_accepts_valid_exposition(self):
        families = parse_exposition(self.GOOD)
        self.assertEqual(value_of(families, "a_total", x="1"), 2)
        self.assertEqual(value_of(families, "h_count"), 2)

    def test_rejects_malformed_exposition(self):
        bad = {
            "no TYPE": "a_total 1\n",
            "bad label": '# TYPE a counter\na{x=1} 1\n',
            "unescaped quote": '# TYPE a counter\na{x="a"b"} 1\n',
            "duplicate": '# TYPE a counter\na 1\na 1\n',
            "negative counter": "# TYPE a counter\na -1\n",
            "not cumulative": ('# TYPE h histogram\nh_bucket{le="1"} 2\n'
                               'h_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'),
            "count mismatch": ('# TYPE h histogram\nh_bucket{le="+Inf"} 2\n'
                               "h_sum 1\nh_count 1\n"),
            "no +Inf": '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
            "split family": "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n",
            "no newline": "# TYPE a gauge\na 1",
            "bad value": "# TYPE a gauge\na one\n",
        }
        for what, text in bad.items():
            with self.subTest(what):
                with self.assertRaises(ExpositionError):
                    parse_exposition(text)


if __name__ == "__main__":
    unittest.main()
