"""The streamed audit export end to end (docs/usage.md "Streaming audit
export"): 1,000,000 chained rows seeded with bulk SQL, exported through the
gateway with curl as CSV, read back as they arrive: every row, each
row's hash recomputed and linked to the one before it in its lane, while
the resident memory of the server and the gateway is sampled from /proc.
Then the bound (rows committed during an export are not in it), the
export's own audit event, a client that goes away, and a server that dies
in the middle of an export (the client sees a truncated transfer)."""
import calendar
import csv
import hashlib
import io
import json
import os
import signal
import struct
import subprocess
import threading
import time
import unittest

import harness

ROWS = 1_000_000
# Peak resident memory may grow by at most this much over its level before
# the export, in the server and in the gateway: an export that buffered
# its file (about 240 MB of CSV) would not fit.
MAX_RSS_GROWTH_KB = 96 * 1024
ZERO_HASH = bytes(32)


def field(data):
    """A canonical field: 4-byte big-endian length, then the bytes."""
    return struct.pack(">I", len(data)) + data


def int64(value):
    return struct.pack(">q", value)


def canonical_v2(tenant_id, lane, seq, row, created_us):
    """The version 2 canonical encoding of an audit row (docs/audit.md
    "Hash versions"), from the export's text values."""
    out = [field(b"lumo.audit.v2"), field(int64(tenant_id)),
           field(int64(lane)), field(int64(seq))]
    for name in ("action", "category", "actor_type", "actor_id",
                 "target_type", "target_id", "outcome"):
        out.append(field(row[name].encode()))
    out.append(field(b"\x01" if row["suspicious"] == "true" else b"\x00"))
    for name in ("ip_address", "user_agent", "request_id", "metadata"):
        out.append(field(row[name].encode()))
    out.append(field(int64(created_us)))
    return b"".join(out)


def micros_of(timestamp):
    """Microseconds since the epoch of an export timestamp
    (YYYY-MM-DDTHH:MM:SS.ffffffZ, UTC)."""
    seconds = calendar.timegm(time.strptime(timestamp[:19],
                                            "%Y-%m-%dT%H:%M:%S"))
    return seconds * 1_000_000 + int(timestamp[20:26])


def unneutralise(cell):
    """The stored value of a CSV cell: exports prefix one apostrophe to a
    cell starting with = + - @ TAB CR or an apostrophe."""
    return cell[1:] if cell.startswith("'") else cell


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS line")


class RssSampler:
    """Samples VmRSS of some processes every 50 ms until stopped; keeps the
    peaks."""

    def __init__(self, pids):
        self.pids = pids
        self.peak = {pid: rss_kb(pid) for pid in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.05):
            for pid in self.pids:
                self.peak[pid] = max(self.peak[pid], rss_kb(pid))

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.peak


class ChainChecker:
    """Checks exported CSV rows as they come: per lane, seqs consecutive
    from the lane's first, prev_hash the hash of the row before (zeros for
    seq 1), and every hash recomputed from the row's values."""

    def __init__(self, test):
        self.test = test
        self.lanes = {}  # lane -> (seq, hash)
        self.rows = 0
        self.last_id = 0

    def add(self, raw):
        row = {k: unneutralise(v) for k, v in raw.items()}
        self.rows += 1
        row_id = int(row["id"])
        if row_id <= self.last_id:
            self.test.fail("rows out of order at id %d" % row_id)
        self.last_id = row_id
        lane, seq = int(row["chain_lane"]), int(row["seq"])
        prev_hash = bytes.fromhex(row["prev_hash"])
        digest = bytes.fromhex(row["hash"])
        if lane in self.lanes:
            last_seq, last_hash = self.lanes[lane]
        else:
            last_seq, last_hash = 0, ZERO_HASH
        if seq != last_seq + 1 or prev_hash != last_hash:
            self.test.fail("chain broken at id %d (lane %d, seq %d)"
                           % (row_id, lane, seq))
        self.test.assertEqual(row["hash_version"], "2")
        canonical = canonical_v2(int(row["tenant_id"]), lane, seq, row,
                                 micros_of(row["timestamp"]))
        if hashlib.sha256(prev_hash + canonical).digest() != digest:
            self.test.fail("hash of id %d does not verify" % row_id)
        self.lanes[lane] = (seq, digest)


class StreamedExportTest(harness.LumoServerTestCase):
    with_gateway = True
    # Each piece of the body must come within the gateway's request timeout.
    gateway_request_timeout = "%ds" % (30 * harness.TIME_SCALE)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.slug = "export-million"
        cls.key = cls.server.create_tenant(cls.slug, scopes="admin:audit")
        cls.tenant_id = int(cls.server.rows(
            "SELECT id FROM tenants WHERE slug = '%s'" % cls.slug)[0][0])
        cls.seed_seconds = cls.seed()

    @classmethod
    def seed(cls):
        """Appends ROWS rows to lane 0 of the tenant's chain with one LOAD
        DATA (hashes computed here), and moves the lane's head. Nothing else
        writes lane 0 of this tenant before the first call with its key."""
        started = time.monotonic()
        head = cls.server.rows(
            "SELECT last_seq, HEX(last_hash) FROM audit_chain_heads"
            " WHERE tenant_id = %d AND lane = 0" % cls.tenant_id)
        seq, last_hash = int(head[0][0]), bytes.fromhex(head[0][1])
        base_us = (int(time.time()) - 86400) * 1_000_000
        cls.base_us = base_us
        path = os.path.join(cls.server.tmpdir, "rows.tsv")
        with open(path, "w") as f:
            for i in range(ROWS):
                seq += 1
                created_us = base_us + i * 1000
                row = {"action": "test.bulk", "category": "configuration",
                       "actor_type": "system", "actor_id": "",
                       "target_type": "", "target_id": "",
                       "outcome": "success", "suspicious": "false",
                       "ip_address": "", "user_agent": "",
                       "request_id": "", "metadata": '{"n":%d}' % i}
                digest = hashlib.sha256(last_hash + canonical_v2(
                    cls.tenant_id, 0, seq, row, created_us)).digest()
                when = time.strftime("%Y-%m-%d %H:%M:%S",
                                     time.gmtime(created_us // 1_000_000))
                f.write("%d\t%s.%06d\t%s\t%d\t%s\t%s\n" % (
                    cls.tenant_id, when, created_us % 1_000_000,
                    row["metadata"], seq, last_hash.hex(), digest.hex()))
                last_hash = digest
        script = (
            "START TRANSACTION;"
            "SELECT last_seq FROM audit_chain_heads WHERE tenant_id = %d"
            " AND lane = 0 FOR UPDATE;"
            "LOAD DATA LOCAL INFILE '%s' INTO TABLE audit_events"
            " (tenant_id, created_at, metadata, seq, @prev, @hash)"
            " SET action = 'test.bulk', category = 'configuration',"
            " actor_type = 'system', outcome = 'success', chain_lane = 0,"
            " prev_hash = UNHEX(@prev), hash = UNHEX(@hash),"
            " hash_version = 2;"
            "UPDATE audit_chain_heads SET last_seq = %d, last_hash = UNHEX('%s')"
            " WHERE tenant_id = %d AND lane = 0;"
            "COMMIT;" % (cls.tenant_id, path, seq, last_hash.hex(),
                         cls.tenant_id))
        mysql = cls.server.mysql
        result = subprocess.run(
            ["mariadb", *mysql.tool_args(), "--local-infile=1", "--batch",
             "-e", script, cls.server.database],
            env=mysql.tool_env(), capture_output=True, text=True,
            timeout=1800 * harness.TIME_SCALE)
        if result.returncode != 0:
            raise harness.HarnessError("seeding failed: " + result.stderr)
        os.unlink(path)
        return time.monotonic() - started

    def count_rows(self):
        return int(self.server.rows(
            "SELECT COUNT(*) FROM audit_events WHERE tenant_id = %d"
            % self.tenant_id)[0][0])

    def export_url(self, query=""):
        return "http://127.0.0.1:%d/t/%s/api/v1/admin/audit-logs/export%s" % (
            self.gw.port, self.slug, query)

    def curl(self, query="", extra=()):
        """curl fetching the export; its stdout is a pipe."""
        return subprocess.Popen(
            ["curl", "-sS", "-N", "-H", "Authorization: Bearer " + self.key,
             *extra, self.export_url(query)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def exported_events(self, request_ids=None):
        """The audit_log.exported events of the tenant, oldest first."""
        rows = self.server.rows(
            "SELECT metadata, outcome FROM audit_events WHERE tenant_id = %d"
            " AND action = 'audit_log.exported' ORDER BY id" % self.tenant_id)
        return [(json.loads(m), o) for m, o in rows]

    def wait_for(self, predicate, what, timeout=60):
        deadline = time.monotonic() + timeout * harness.TIME_SCALE
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() > deadline:
                self.fail("timed out waiting for " + what)
            time.sleep(0.1)

    def export_rows(self, query):
        """Streams the CSV export of `query`; returns the number of rows, the
        seconds it took and the peak RSS (kB) of server and gateway."""
        pids = [self.server.process.pid, self.gw.process.pid]
        sampler = RssSampler(pids)
        started = time.monotonic()
        curl = self.curl(query)
        lines = sum(1 for _ in curl.stdout) - 1  # the header
        curl.stdout.close()
        self.assertEqual(curl.wait(timeout=60), 0, curl.stderr.read())
        elapsed = time.monotonic() - started
        peak = sampler.stop()
        return lines, elapsed, [peak[pid] for pid in pids]

    def test_1_a_million_rows_stream_in_bounded_memory_with_their_chain(self):
        expected = self.count_rows()
        self.assertGreaterEqual(expected, ROWS)
        server_pid, gateway_pid = self.server.process.pid, self.gw.process.pid
        before = {server_pid: rss_kb(server_pid),
                  gateway_pid: rss_kb(gateway_pid)}
        # A tenth of the rows first (the seeded rows are 1 ms apart): the
        # peaks of both exports say whether memory grows with the rows.
        tenth_end = time.strftime(
            "%Y-%m-%dT%H:%M:%SZ",
            time.gmtime(self.base_us // 1_000_000 + ROWS // 10 // 1000))
        tenth, tenth_s, tenth_peak = self.export_rows("?to=" + tenth_end)
        self.assertEqual(tenth, ROWS // 10)
        sampler = RssSampler([server_pid, gateway_pid])
        started = time.monotonic()
        curl = self.curl(extra=("-D", "-"))
        text = io.TextIOWrapper(curl.stdout, encoding="utf-8", newline="")
        # The response head (curl -D -), then the CSV.
        head = []
        while True:
            line = text.readline()
            if line in ("\r\n", ""):
                break
            head.append(line.strip().lower())
        self.assertIn("http/1.1 200 ok", head)
        self.assertIn("transfer-encoding: chunked", head)
        checker = ChainChecker(self)
        reader = csv.DictReader(text)
        first = next(reader)
        checker.add(first)
        seeded = 1 if first["action"] == "test.bulk" else 0
        first_byte = time.monotonic() - started
        # The bound was fixed before the first byte, so the export holds at
        # most the rows committed by now. (The key's earlier calls write
        # their api_key.used events through the batched writer, so rows may
        # have joined since `expected` was counted.)
        at_first_byte = self.count_rows()
        # An event committed now (the refusal of a call the key's scope
        # does not allow, written by the batched writer) is not in it.
        status, _, raw = self.gw.request(
            "POST", "/t/%s/api/v1/admin/api-keys" % self.slug,
            {"name": "during", "scopes": ["admin:audit"]},
            {"Authorization": "Bearer " + self.key})
        self.assertEqual(status, 403, raw)
        refusals = self.wait_for(
            lambda: self.server.rows(
                "SELECT id FROM audit_events WHERE tenant_id = %d AND"
                " action = 'auth.api_key.failed'" % self.tenant_id),
            "the refusal committed during the export")
        self.assertEqual(len(refusals), 1, refusals)
        refusal_id = refusals[0][0]
        exported_refusals = []
        for row in reader:
            checker.add(row)
            if row["action"] == "auth.api_key.failed":
                exported_refusals.append(row["id"])
            if row["action"] == "test.bulk":
                seeded += 1
        curl.stdout.close()
        rc = curl.wait(timeout=60)
        elapsed = time.monotonic() - started
        peak = sampler.stop()
        self.assertEqual(rc, 0, curl.stderr.read())
        # Every row committed before the export began, and nothing after.
        self.assertGreaterEqual(checker.rows, expected)
        self.assertLessEqual(checker.rows, at_first_byte)
        self.assertNotIn(refusal_id, exported_refusals)
        # Every seeded row, in one unbroken lane 0 chain (the checker holds
        # the seqs consecutive from 1). The batched writer appends the key's
        # own api_key.used events to lane 0 too, after the seeded rows, so
        # the lane may end past ROWS.
        self.assertEqual(seeded, ROWS)
        self.assertGreaterEqual(checker.lanes[0][0], ROWS)
        growth = {pid: peak[pid] - before[pid] for pid in peak}
        print("\nexport of %d rows: seeded in %.1f s; first byte %.2f s,"
              " whole export %.1f s (%.0f rows/s, chain checked while"
              " reading); RSS kB server %d -> peak %d (+%d), gateway %d ->"
              " peak %d (+%d); the first %d rows alone: %.1f s, peak server"
              " %d, gateway %d" % (
                  checker.rows, self.seed_seconds, first_byte, elapsed,
                  checker.rows / elapsed, before[server_pid],
                  peak[server_pid], growth[server_pid], before[gateway_pid],
                  peak[gateway_pid], growth[gateway_pid], tenth, tenth_s,
                  tenth_peak[0], tenth_peak[1]))
        self.assertLess(growth[server_pid], MAX_RSS_GROWTH_KB)
        self.assertLess(growth[gateway_pid], MAX_RSS_GROWTH_KB)
        # The server's own verification agrees with the chain seeded here.
        verify = self.server.cli("--timeout", "600", "audit", "verify",
                                 "--tenant", self.slug,
                                 env={"LUMOKEYS_OPERATOR_TOKEN_FILE":
                                      self.server.operator_token_path},
                                 timeout=600 * harness.TIME_SCALE)
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)
        # The export is itself recorded, with what it sent.
        events = self.wait_for(self.exported_events, "audit_log.exported")
        metadata, outcome = events[-1]
        self.assertEqual(outcome, "success")
        self.assertEqual(metadata["rows"], checker.rows)
        self.assertTrue(metadata["complete"])
        self.assertEqual(metadata["format"], "csv")

    def test_3_a_client_that_goes_away_cancels_the_export(self):
        done = len(self.exported_events())
        curl = self.curl()
        curl.stdout.read(1 << 20)
        curl.kill()
        curl.wait()
        events = self.wait_for(
            lambda: self.exported_events()[done:] or None,
            "the cancelled export's audit event")
        metadata, outcome = events[0]
        self.assertEqual(outcome, "error")
        self.assertFalse(metadata["complete"])
        self.assertEqual(metadata["status"], "CANCELLED")
        self.assertLess(metadata["rows"], ROWS)

    def test_4_a_failure_midway_truncates_the_transfer(self):
        # Last: kills the server. The client has the status line and part of
        # the file; the transfer then ends without its last chunk, which
        # curl reports as a partial transfer (exit code 18), never as a
        # complete short file.
        complete = [m for m, _ in self.exported_events() if m["complete"]]
        self.assertTrue(complete)
        curl = self.curl()
        received = len(curl.stdout.read(1 << 20))
        self.server.process.send_signal(signal.SIGKILL)
        received += len(curl.stdout.read())
        rc = curl.wait(timeout=60)
        self.assertEqual(rc, 18, curl.stderr.read())
        self.assertLess(received, complete[-1]["bytes"])


if __name__ == "__main__":
    unittest.main()
