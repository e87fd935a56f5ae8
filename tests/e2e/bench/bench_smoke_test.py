"""Smoke run of the benchmark (tools/bench/run.py --smoke): every scenario
runs for about a second and the table is printed; malformed and
bad-checksum keys cause zero database queries; the webhook row's events
all reach its receiver. Timings are printed, never
asserted. Also: a server started without --bench_service does not serve
the benchmark-only RPCs, and the gateway's OpenAPI document never lists
them. The peer gateway's row (grpc-gateway built from our protos) runs
and answers every request with 200.

Needs LUMO_TEST_MYSQL_DSN.
"""

import json
import os
import subprocess
import tempfile
import unittest

import harness


class BenchSmokeTest(unittest.TestCase):
    def test_smoke_run_prints_the_table_and_bad_keys_cost_no_query(self):
        source = harness.source_dir()
        env = dict(os.environ, LUMO_BUILD_DIR=harness.binary_dir())
        harness.MysqlDsn(harness.require_env(  # must be set
            "LUMO_TEST_MYSQL_DSN", "the benchmark needs a MariaDB"))
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "results.json")
            result = subprocess.run(
                ["/usr/bin/python3",
                 os.path.join(source, "tools", "bench", "run.py"),
                 "--smoke", "--json", out],
                env=env, capture_output=True, text=True, timeout=900)
            print(result.stdout)
            self.assertEqual(result.returncode, 0, result.stderr[-4000:])
            with open(out) as f:
                results = json.load(f)["results"]
        for label in ("Echo (empty unary RPC)", "VerifyApiKey warm",
                      "VerifyApiKey cold", "raw PK select",
                      "PK select, C client", "per-query CPU: Connector/C++",
                      "verify, 1M keys cached", "malformed key",
                      "bad-checksum key", "verify warm, audit off",
                      "CreateApiKey", "RotateApiKey", "raw INSERT+COMMIT",
                      "GetApiKey direct gRPC", "REST GET via gateway",
                      "gateway /livez", "REST GET, ours beside peer",
                      "grpc-gateway, same time", "ours vs grpc-gateway"):
            self.assertIn(label, result.stdout)
        self.assertIn("CPU 0", result.stdout)
        self.assertIn("memory per cached key", result.stdout)
        # The gateway's own share of the REST row, per process.
        self.assertIn("gateway CPU per forwarded request (its own process)",
                      result.stdout)
        self.assertIn("voluntary context switches per forwarded request",
                      result.stdout)
        rest = results["rest_get"]
        self.assertEqual(len(rest["cpu_us_per_call_by_pid"]), 2)
        self.assertGreater(rest["cpu_us_per_call_by_pid"][1], 0)
        self.assertEqual(len(rest["voluntary_switches_per_call_by_pid"]), 2)
        for name in ("malformed", "bad_checksum"):
            self.assertEqual(results[name]["db_queries"], 0, name)
            self.assertGreater(results[name]["calls"], 0, name)
        # The webhook row ran with deliveries flowing: every event fed to
        # the outbox reached the HTTPS receiver (at least once).
        hooks = results["verify_webhooks_on"]
        self.assertGreater(hooks["webhooks_fed"], 0)
        self.assertGreaterEqual(hooks["webhooks_received"],
                                hooks["webhooks_fed"])
        self.assertIn("same, 10 webhooks/s flowing", result.stdout)
        # Every scenario made calls, and none failed or got a wrong answer
        # (a valid key rejected, a bad key accepted, a REST call not 200).
        for name, r in results.items():
            self.assertGreater(r["calls"], 0, name)
            self.assertEqual(r["errors"], 0, (name, r["first_error"]))
            self.assertEqual(r["unexpected"], 0, name)

    def test_openapi_document_does_not_expose_the_bench_service(self):
        gateway = harness.built_program("gateway", "lumokeys-gateway")
        doc = subprocess.run([gateway, "--print_openapi"],
                             capture_output=True, text=True, timeout=60,
                             check=True).stdout
        self.assertIn("/api-keys/{id}", doc)  # the document is the real one
        for word in ("bench", "Echo", "PointSelect", "InsertCommit"):
            self.assertNotIn(word, doc)

    def test_bench_service_is_off_by_default(self):
        server = harness.LumoServer()
        server.start()
        try:
            tool = harness.built_program("tools", "lumokeys-bench")
            result = subprocess.run(
                [tool, "--mode=stats", f"--target={server.address}",
                 f"--service_token_file={server.service_token_path}"],
                capture_output=True, text=True, timeout=60)
            self.assertNotEqual(result.returncode, 0)
            self.assertIn("Stats:", result.stderr)
        finally:
            server.stop()


if __name__ == "__main__":
    unittest.main()
