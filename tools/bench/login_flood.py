#!/usr/bin/python3
"""Login flood benchmark (docs/benchmarks.md "Login flood").

Starts a private lumokeys-server + gateway (the e2e harness, tests/e2e/harness;
needs LUMO_TEST_MYSQL_DSN, LUMO_BINARY_DIR, LUMO_SOURCE_DIR like the e2e tests),
makes a tenant with an admin key and a portal admin, then:

  1. before: an admin call (GET .../admin/api-keys through the gateway) in
     a loop for --seconds, from its own process;
  2. during: the same loop while --logins parallel portal logins with wrong
     passwords (made-up accounts) arrive through the gateway from
     --addresses loopback source addresses (127.0.1.1, 127.0.1.2, ...).
     A login refused for capacity ("in progress", Retry-After: 1) was not
     checked and is retried; a throttled one (429) or a checked one (401)
     is final.

Prints the admin call's p50/p99 before and during the flood, their ratio,
and the failed logins checked per source address (the server's per-address
limit, --portal_login_max_failures_per_ip, 20 by default). Figures only:
nothing is asserted; the exit status is 0 when the run completed.

    tools/bench/login_flood.py [--logins 1000] [--addresses 10]
                               [--seconds 10] [--scrypt-log-n 17]
                               [--server-flag=--portal_hash_threads=1 ...]
"""

import argparse
import collections
import concurrent.futures
import http.client
import json
import os
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402

# The admin-call loop, run in a process of its own so that the flood's
# threads do not delay its measurements in this interpreter.
ADMIN_LOOP = r"""
import http.client, json, sys, time
port, key, path, seconds = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
out, end = [], time.monotonic() + seconds
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
while time.monotonic() < end:
    start = time.monotonic()
    conn.request("GET", path, headers={"Authorization": "Bearer " + key})
    resp = conn.getresponse(); resp.read()
    out.append((time.monotonic() - start, resp.status))
print(json.dumps(out))
"""


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100.0 * len(ordered)))]


class Flood:
    def __init__(self, args):
        self.args = args
        flags = [f"--portal_scrypt_log_n={args.scrypt_log_n}"]
        flags += args.server_flag
        self.server = harness.LumoServer(extra_args=flags)
        self.gw = None

    def __enter__(self):
        self.server.start()
        try:
            self.gw = harness.LumoGateway(self.server, request_timeout="60s")
        except BaseException:
            self.server.stop()
            raise
        return self

    def __exit__(self, *exc):
        if self.gw is not None:
            self.gw.stop()
        self.server.stop()

    def setup(self):
        r = self.server.cli("--json", "tenant", "create", "flood",
                            "--scopes", "admin:write")
        if r.returncode != 0:
            raise SystemExit(r.stderr)
        self.key = json.loads(r.stdout)["initialKey"]["key"]
        r = self.server.cli("tenant", "set-admin", "flood", "--admin-email",
                            "admin@flood.example", "--admin-password-file",
                            "-", input="a long admin password\n")
        if r.returncode != 0:
            raise SystemExit(r.stderr)

    def admin_loop(self, seconds):
        return subprocess.Popen(
            [sys.executable, "-c", ADMIN_LOOP, str(self.gw.port), self.key,
             "/t/flood/api/v1/admin/api-keys?limit=5", str(seconds)],
            stdout=subprocess.PIPE, text=True)

    def login(self, i, address):
        """One login, retried while refused for capacity; returns the final
        HTTP status."""
        body = json.dumps({"email": "nobody%d@flood.example" % i,
                           "password": "wrong password %d" % i})
        origin = "http://127.0.0.1:%d" % self.gw.port
        while True:
            conn = http.client.HTTPConnection(
                "127.0.0.1", self.gw.port, timeout=120,
                source_address=(address, 0))
            try:
                conn.request("POST", "/t/flood/api/v1/portal/login", body,
                             {"Content-Type": "application/json",
                              "X-Requested-With": "XMLHttpRequest",
                              "Origin": origin})
                resp = conn.getresponse()
                doc = resp.read()
            finally:
                conn.close()
            if resp.status == 429 and b"in progress" in doc:
                # As a well-behaved client: wait the announced time.
                time.sleep(float(resp.getheader("Retry-After", "1")))
                continue
            return resp.status

    def run(self):
        a = self.args
        self.setup()
        self.load = open("/proc/loadavg").read().split()[0]
        before = json.loads(self.admin_loop(a.seconds).communicate()[0])
        addresses = ["127.0.1.%d" % (n + 1) for n in range(a.addresses)]
        checked = collections.Counter()
        throttled = collections.Counter()
        lock = threading.Lock()

        def one(i):
            address = addresses[i % len(addresses)]
            status = self.login(i, address)
            with lock:
                if status == 401:
                    checked[address] += 1
                elif status == 429:
                    throttled[address] += 1
                else:
                    checked["other status %d" % status] += 1

        started = time.monotonic()
        during_proc = None
        with concurrent.futures.ThreadPoolExecutor(a.logins) as pool:
            futures = [pool.submit(one, i) for i in range(a.logins)]
            during_proc = self.admin_loop(a.seconds)
            concurrent.futures.wait(futures)
        flood_s = time.monotonic() - started
        during = json.loads(during_proc.communicate()[0])

        def figures(samples):
            ok = [s for s, status in samples if status == 200]
            return (len(samples), len(ok), percentile(ok, 50) * 1000,
                    percentile(ok, 99) * 1000)
        b, d = figures(before), figures(during)
        print("login flood: %d logins from %d addresses, scrypt log2 N = %d, "
              "server flags %s, flood took %.1f s; load average before/after "
              "%s / %s" % (a.logins, a.addresses, a.scrypt_log_n,
                           a.server_flag or "default", flood_s, self.load,
                           open("/proc/loadavg").read().split()[0]))
        print("admin call  calls  ok     p50 ms   p99 ms")
        print("before      %5d  %5d  %7.2f  %7.2f" % b)
        print("during      %5d  %5d  %7.2f  %7.2f" % d)
        print("p99 during / before: %.2fx (target <= 2x); p50: %.2fx"
              % (d[3] / b[3], d[2] / b[2]))
        print("failed logins checked per address (limit %d):"
              % a.expected_limit)
        for address in addresses:
            print("  %s  checked %3d  throttled %3d" % (
                address, checked[address], throttled[address]))
        others = {k: v for k, v in checked.items() if k not in addresses}
        if others:
            print("  unexpected answers:", others)
        print("FIGURE login_flood p99_before_ms=%.2f p99_during_ms=%.2f "
              "ratio=%.2f checked_per_address=%s" % (
                  b[3], d[3], d[3] / b[3],
                  sorted(set(checked[x] for x in addresses))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--logins", type=int, default=1000)
    parser.add_argument("--addresses", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--scrypt-log-n", type=int, default=17)
    parser.add_argument("--server-flag", action="append", default=[],
                        help="extra lumokeys-server flag (repeatable), e.g. "
                        "--server-flag=--portal_hash_threads=1")
    parser.add_argument("--expected-limit", type=int, default=20,
                        help="the server's per-address limit (for the "
                        "printout)")
    args = parser.parse_args()
    with Flood(args) as flood:
        flood.run()


if __name__ == "__main__":
    main()
