#!/usr/bin/python3
"""The LumoKeys benchmark (docs/benchmarks.md).

Starts a private MariaDB (unless LUMO_TEST_MYSQL_DSN names one), migrates a
fresh database, starts lumokeys-server(s) with --bench_service pinned to
CPU 0 and lumokeys-gateway beside them, runs every scenario beside its
baseline with lumokeys-bench pinned to CPU 1, and prints one table: QPS,
p50/p90/p99/p99.9, server CPU per call (from /proc/<pid>/stat), the ratio
to the baseline and the target. Everything it started is stopped and the
database dropped at the end.

    tools/bench/run.py [--seconds 10] [--warmup 2] [--inflight 16]
                       [--big-keys 1000000] [--json out.json]
    tools/bench/run.py --smoke     # seconds per scenario, 20k "big" keys
    tools/bench/run.py --only limits   # only the limits rows

Environment: LUMO_BUILD_DIR (default <root>/build); LUMO_TEST_MYSQL_DSN
(an admin DSN; otherwise a private MariaDB is started under
<build>/bench-run on LUMO_BENCH_MYSQL_PORT, default a free port).
Exit status: 0 when the table was produced and the bad-key scenarios caused
no database query; 1 otherwise. Targets that are missed are reported in the
table, not by the exit status (timings are never asserted).
"""

import argparse
import concurrent.futures
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402  (MysqlDsn, free_loopback_port)

SERVER_CPU = "0"
LOAD_CPU = "1"


def mean_of_rounds(one, two):
    """Two load results of the same row as one: numbers averaged, errors and
    wrong answers summed, the first error kept."""
    merged = {k: (one[k] + two[k]) / 2 for k in one
              if isinstance(one[k], (int, float))}
    merged["errors"] = one["errors"] + two["errors"]
    merged["unexpected"] = one["unexpected"] + two["unexpected"]
    merged["first_error"] = one["first_error"] or two["first_error"]
    return merged


class Bench:
    def __init__(self, args):
        self.args = args
        self.build = os.environ.get("LUMO_BUILD_DIR",
                                    os.path.join(ROOT, "build"))
        self.server_bin = os.path.join(self.build, "server",
                                       "lumokeys-server")
        self.gateway_bin = os.path.join(self.build, "gateway",
                                        "lumokeys-gateway")
        self.bench_bin = os.path.join(self.build, "tools", "lumokeys-bench")
        self.tmp = tempfile.mkdtemp(prefix="lumo-bench-")
        os.chmod(self.tmp, 0o700)
        self.procs = []
        self.own_mariadb = None
        self.database = "lumo_bench_" + secrets.token_hex(4)
        self.db_created = False
        self.results = {}
        self.notes = []

    # ----- processes ---------------------------------------------------

    def path(self, name):
        return os.path.join(self.tmp, name)

    def write_secret(self, name, content):
        fd = os.open(self.path(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                     0o600)
        with os.fdopen(fd, "w") as f:
            f.write(content)
        return self.path(name)

    def start_mariadb(self):
        dsn = os.environ.get("LUMO_TEST_MYSQL_DSN")
        if not dsn:
            run_dir = os.path.join(self.build, "bench-run")
            port = os.environ.get("LUMO_BENCH_MYSQL_PORT") or str(
                harness.free_loopback_port())
            env = dict(os.environ, LUMO_RUN_DIR=run_dir,
                       LUMO_MYSQL_PORT=port)
            subprocess.run([os.path.join(ROOT, "tools/dev/mariadb.sh"),
                            "start"], env=env, check=True)
            self.own_mariadb = env
            dsn = subprocess.run(
                [os.path.join(ROOT, "tools/dev/mariadb.sh"), "admin-dsn"],
                env=env, check=True, capture_output=True,
                text=True).stdout.strip()
        self.mysql = harness.MysqlDsn(dsn)
        self.password_file = self.write_secret("mysql.password",
                                               self.mysql.password + "\n")
        self.dsn = self.mysql.without_password(self.database)

    def sql(self, statement, database=None):
        """Runs `statement` with the admin user, in `database` when given;
        a failure raises with the client's error message."""
        args = ["mariadb", *self.mysql.tool_args(), "--batch"]
        if database:
            args.append(f"--database={database}")
        result = subprocess.run([*args, "-e", statement],
                                env=self.mysql.tool_env(),
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"mariadb failed ({result.returncode}): "
                               f"{result.stderr.strip()}")

    def start_server(self, name, *flags):
        port = harness.free_loopback_port()
        log = open(self.path(name + ".log"), "wb")
        proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, self.server_bin,
             f"--listen=127.0.0.1:{port}", f"--mysql={self.dsn}",
             f"--mysql_password_file={self.password_file}",
             f"--pepper_file={self.pepper}",
             f"--operator_token_file={self.operator_token}",
             f"--service_token_file={self.service_token}",
             # Background work on the server's pool is off: the zero-query
             # rows read the pool's statement counter around their load, so
             # anything periodic would be counted as the bad keys' queries.
             # No scenario sends webhooks (the delivery worker polls), and
             # none needs key-state events (the sweeper's round every 60 s
             # is a few statements: a lease transaction and the pending read).
             "--webhook_workers=0", "--key_state_sweep_interval=0s",
             "--bench_service", *flags],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited; log:\n" +
                                   open(self.path(name + ".log")).read())
            if self.tool("--mode=stats", f"--target={address}",
                         check=False) is not None:
                return proc, address
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not start")

    def start_gateway(self, upstream):
        port = harness.free_loopback_port()
        log = open(self.path("gateway.log"), "wb")
        proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, self.gateway_bin,
             f"--listen=127.0.0.1:{port}", f"--upstream={upstream}",
             f"--service_token_file={self.service_token}"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        import socket
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), 0.5):
                    return proc, f"127.0.0.1:{port}"
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("gateway did not start; log:\n" +
                           open(self.path("gateway.log")).read())

    def start_peer_gateway(self, upstream):
        """grpc-gateway's reverse proxy over `upstream` (KeyService routes;
        tools/bench/peer_gateway), built on first use under the build
        folder, pinned like ours. Returns (process, address)."""
        out = os.path.join(self.build, "peer_gateway")
        built = subprocess.run(
            [os.path.join(ROOT, "tools/bench/peer_gateway/build.sh"), out],
            capture_output=True, text=True, timeout=900)
        if built.returncode != 0:
            raise RuntimeError("building the peer gateway failed:\n" +
                               built.stdout[-2000:] + built.stderr[-4000:])
        log = open(self.path("peer_gateway.log"), "wb")
        proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU,
             os.path.join(out, "bin", "peer_gateway"),
             "--listen=127.0.0.1:0", f"--backend={upstream}"],
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        line = proc.stdout.readline().decode()
        if not line.startswith("listening on "):
            raise RuntimeError("peer gateway did not start; log:\n" +
                               open(self.path("peer_gateway.log")).read())
        return proc, line.split()[-1]

    def run_beside_peer(self, ours, peer, *flags):
        """REST GET through our gateway and through the peer, both in front
        of the same server and pinned beside it, loaded at the same time by
        two loaders, twice (as run_states, for the same reason: whatever
        else the machine runs slows both alike). CPU per call is each
        gateway's own (the server serves both)."""
        runs = {}
        for round_no in (1, 2):
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                futures = {
                    name: pool.submit(self.load,
                                      f"rest_get_beside_{name}_{round_no}",
                                      address, [proc.pid], *flags)
                    for name, (proc, address) in (("ours", ours),
                                                  ("peer", peer))}
                for name, future in futures.items():
                    runs[f"{name}_{round_no}"] = future.result()
        for name in ("ours", "peer"):
            self.results[f"rest_get_beside_{name}"] = mean_of_rounds(
                runs[name + "_1"], runs[name + "_2"])

    def same_key_through(self, addresses, path, admin_key_file):
        """GETs `path` through each gateway; fails unless every one answers
        200 with the same key (id and name): the peer's row measures real
        answers, not errors."""
        import urllib.request
        with open(admin_key_file) as f:
            admin_key = f.read().strip()
        seen = []
        for address in addresses:
            request = urllib.request.Request(
                f"http://{address}{path}", headers={"x-api-key": admin_key})
            with urllib.request.urlopen(request, timeout=30) as reply:
                body = json.loads(reply.read())
            # Ours wraps the message in the documented {"data": ...}.
            body = body.get("data", body)
            seen.append((body.get("id"), body.get("name")))
            if not seen[-1][0]:
                raise RuntimeError(f"{address} answered {path} without a "
                                   f"key: {json.dumps(body)[:2000]}")
        if len(set(seen)) != 1:
            raise RuntimeError(f"the gateways answered {path} differently: "
                               f"{seen}")

    def stop(self, proc):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def cleanup(self):
        for proc in self.procs:
            self.stop(proc)
        if self.db_created:
            try:
                self.sql(f"DROP DATABASE IF EXISTS `{self.database}`")
            except Exception as e:  # report, keep cleaning up
                print(f"bench: dropping the database failed: {e}",
                      file=sys.stderr)
        if self.own_mariadb is not None:
            subprocess.run([os.path.join(ROOT, "tools/dev/mariadb.sh"),
                            "stop"], env=self.own_mariadb, check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ----- the tool ----------------------------------------------------

    def tool(self, *flags, check=True, pin=True):
        """Runs lumokeys-bench (pinned to the load CPU); returns the JSON
        of its last output line, or None when check is False and it
        failed."""
        cmd = [self.bench_bin, f"--service_token_file={self.service_token}",
               *flags]
        if pin:
            cmd = ["taskset", "-c", LOAD_CPU] + cmd
        result = subprocess.run(cmd, capture_output=True, text=True,
                                timeout=3600)
        if result.returncode != 0:
            if not check:
                return None
            raise RuntimeError(f"lumokeys-bench {' '.join(flags)} failed:\n"
                               + result.stderr)
        return json.loads(result.stdout.strip().splitlines()[-1])

    def load(self, name, target, pids, *flags, seconds=None, warmup=None):
        a = self.args
        r = self.tool("--mode=load", f"--target={target}",
                      "--server_pids=" + ",".join(str(p) for p in pids),
                      f"--inflight={a.inflight}", f"--channels={a.channels}",
                      f"--seconds={seconds or a.seconds}",
                      f"--warmup_seconds={a.warmup if warmup is None else warmup}",
                      *flags)
        self.results[name] = r
        print(f"  {name}: {json.dumps(r)}", file=sys.stderr, flush=True)
        return r

    def load_beside_db(self, name, target, pid, *flags):
        """load() of one server, with the database server's CPU per call
        of the same calls in results[name]["db_cpu_us_per_call"] when
        MariaDB runs on this machine (the server's alone stays in
        server_cpu_us_per_call)."""
        db = self.db_pid()
        r = self.load(name, target, [pid, db] if db else [pid], *flags)
        by_pid = r.get("cpu_us_per_call_by_pid") or []
        if db and len(by_pid) == 2:
            r["server_cpu_us_per_call"] = by_pid[0]
            r["db_cpu_us_per_call"] = by_pid[1]
        return r

    def count_statements(self, name, target, *flags):
        """Records in results[name] the pool's round trips per call of
        exactly --max_calls calls (no warm-up), read from the server's
        counter (a statement batch counts once). The
        servers run no periodic work on the pool (start_server), so the
        difference is the calls' own."""
        calls = 50 if self.args.smoke else 500
        before = self.stats(target)["db_queries"]
        db_pid = self.db_pid()
        db_before = self.cpu_seconds(db_pid) if db_pid else None
        r = self.tool("--mode=load", f"--target={target}",
                      f"--inflight={self.args.inflight}",
                      f"--channels={self.args.channels}", "--seconds=3600",
                      "--warmup_seconds=0", f"--max_calls={calls}", *flags)
        db_after = self.cpu_seconds(db_pid) if db_pid else None
        after = self.stats(target)["db_queries"]
        if r["errors"] or r["unexpected"]:
            raise RuntimeError(f"counting the statements of {name}: "
                               f"{r['first_error']}")
        self.results[name]["statements_per_call"] = (after - before) / calls
        if db_before is not None and db_after is not None:
            # The database server's own CPU for those calls (it serves
            # nothing else during a bench run on a private MariaDB).
            self.results[name]["db_cpu_us_per_call"] = (
                (db_after - db_before) * 1e6 / calls)

    def db_pid(self):
        """The MariaDB server's pid when it runs on this machine (its
        @@pid_file is readable), else None."""
        result = subprocess.run(
            ["mariadb", *self.mysql.tool_args(), "--batch", "-N", "-e",
             "SELECT @@pid_file"], env=self.mysql.tool_env(),
            capture_output=True, text=True, timeout=60)
        try:
            with open(result.stdout.strip()) as f:
                pid = int(f.read().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    @staticmethod
    def cpu_seconds(pid):
        """User + system CPU seconds of `pid` so far, None when gone."""
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stats(self, address):
        return self.tool("--mode=stats", f"--target={address}")

    def metric(self, port, name):
        """The value of metric `name` (no labels) on a server's
        --metrics_listen port, or None."""
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                    timeout=10) as reply:
            for line in reply.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return None

    def settled_memory(self, pid, metrics_port, rss_before, entries):
        """Memory per cached key once the warm-up's burst is over: the audit
        queue the warm-up filled (one event per cold verification) has
        drained, and the heap trimmer (docs/operations.md "Heap trimming")
        has had the chance to give the burst's free heap back: until a trim,
        or 40 s after the queue emptied. The figure taken right after the
        warm-up is printed as before."""
        t = time.monotonic()
        trims_at_start = self.metric(metrics_port, "lumo_heap_trims_total") or 0
        deadline = t + (30 if self.args.smoke else 300)
        while (self.metric(metrics_port, "lumo_audit_queue_depth") or 0) > 0:
            if time.monotonic() > deadline:
                self.notes.append("settled memory: the audit queue did not "
                                  "drain; not measured")
                return
            time.sleep(1)
        drained = time.monotonic() - t
        trims = self.metric(metrics_port, "lumo_heap_trims_total") or 0
        wait_until = time.monotonic() + (2 if self.args.smoke else 40)
        while time.monotonic() < wait_until:
            if (self.metric(metrics_port, "lumo_heap_trims_total") or 0) > trims:
                break
            time.sleep(1)
        rss = self.rss_kib(pid)
        trimmed = ((self.metric(metrics_port, "lumo_heap_trims_total") or 0) -
                   trims_at_start)
        per_key = (rss - rss_before) * 1024 / entries
        self.notes.append(
            f"memory per cached key, settled: {per_key:.0f} bytes (server RSS "
            f"{rss // 1024} MiB; the audit queue drained {drained:.0f} s after "
            f"the warm-up, then {time.monotonic() - t - drained:.0f} s more, "
            f"{trimmed:.0f} heap trims since the warm-up ended; target <= "
            "300 bytes)")

    def rss_kib(self, pid):
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    # ----- the scenarios -----------------------------------------------

    def run(self):
        a = self.args
        self.pepper = self.write_secret(
            "pepper", f"1:{secrets.token_hex(32)}\n")
        self.operator_token = self.write_secret(
            "operator.token", secrets.token_urlsafe(32) + "\n")
        self.service_token = self.write_secret(
            "service.token", secrets.token_urlsafe(32) + "\n")
        self.start_mariadb()
        self.db_created = True
        subprocess.run(
            [self.server_bin, "migrate", f"--mysql={self.dsn}",
             f"--mysql_password_file={self.password_file}",
             f"--migrations_dir={os.path.join(ROOT, 'sql/migrations')}"],
            check=True, capture_output=True)

        # The main server: cache TTL long enough that a warmed million
        # stays warm for the whole run.
        main, addr = self.start_server("server-main",
                                       "--verify_cache_ttl=3600s")
        tenant = "bench-" + secrets.token_hex(3)
        admin_key = self.path("admin.key")
        self.tool("--mode=setup", f"--target={addr}",
                  f"--operator_token_file={self.operator_token}",
                  f"--tenant={tenant}", f"--key_file={admin_key}")
        small = self.path("small.keys")
        rotate = self.path("rotate.keys")
        big = self.path("big.keys")

        def load_keys(count, out):
            return self.tool("--mode=load_keys", f"--mysql={self.dsn}",
                             f"--mysql_password_file={self.password_file}",
                             f"--pepper_file={self.pepper}",
                             f"--tenant={tenant}", f"--count={count}",
                             f"--keys_out={out}", pin=False)

        load_keys(a.small_keys, small)
        load_keys(max(a.inflight, 1), rotate)
        common = [f"--tenant={tenant}"]
        pid = [main.pid]

        if self.want("limits"):
            print("bench: one key with two named limits and a quota vs the "
                  "same without", file=sys.stderr, flush=True)
            self.limits_scenario(addr, pid, load_keys, common)

        # The main server's RSS at start and after the small-key runs (the
        # memory note of the cache rows).
        rss0 = rss_small = self.rss_kib(main.pid)
        if self.want("classic"):
            print("bench: warm verify vs Echo", file=sys.stderr, flush=True)
            rss0 = self.rss_kib(main.pid)
            self.load("echo", addr, pid, "--rpc=echo")
            self.load("verify_warm", addr, pid, "--rpc=verify",
                      f"--key_file={small}", *common)
            rss_small = self.rss_kib(main.pid)
            # The same figure, named for the 1k-vs-1M comparison.
            self.results["verify_1k"] = dict(self.results["verify_warm"])

        if self.want("classic") or self.want("mutations"):
            print("bench: Create/Rotate vs raw INSERT+COMMIT", file=sys.stderr,
                  flush=True)
            self.load("insert_raw", addr, pid, "--rpc=insert")
            self.load("create", addr, pid, "--rpc=create",
                      f"--admin_key_file={admin_key}", *common)
            self.load("rotate", addr, pid, "--rpc=rotate",
                      f"--admin_key_file={admin_key}", f"--ids_file={rotate}",
                      *common)
            # Round trips per call, what the ratios above pay:
            # the pool's counter around a fixed number of calls.
            self.count_statements("insert_raw", addr, "--rpc=insert")
            self.count_statements("create", addr, "--rpc=create",
                                  f"--admin_key_file={admin_key}", *common)
            self.count_statements("rotate", addr, "--rpc=rotate",
                                  f"--admin_key_file={admin_key}",
                                  f"--ids_file={rotate}", *common)

        if self.want("classic") or self.want("gateway"):
            print("bench: REST through the gateway vs direct gRPC",
                  file=sys.stderr, flush=True)
            gateway, gw_addr = self.start_gateway(addr)
            self.load("get_grpc", addr, pid, "--rpc=get",
                      f"--admin_key_file={admin_key}", f"--ids_file={small}",
                      *common)
            profile = None
            if a.profile_gateway:
                # perf's cpu-clock event (no hardware counters on this VM),
                # with call graphs, over the REST row only.
                profile = subprocess.Popen(
                    ["perf", "record", "-e", "cpu-clock", "-g", "-q",
                     "-o", a.profile_gateway, "-p", str(gateway.pid)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.load("rest_get", gw_addr, [main.pid, gateway.pid], "--rpc=http",
                      f"--admin_key_file={admin_key}", f"--ids_file={small}",
                      f"--http_path=/t/{tenant}/api/v1/admin/api-keys/{{id}}")
            if profile is not None:
                profile.send_signal(signal.SIGINT)
                profile.wait(timeout=120)
                self.notes.append(f"gateway profile of the REST row: "
                                  f"{a.profile_gateway} (perf report -i)")
            self.load("livez", gw_addr, [gateway.pid], "--rpc=http",
                      "--http_path=/livez")
            # The same REST GET through grpc-gateway, same server, same
            # load generator (docs/benchmarks.md "A peer gateway").
            peer, peer_addr = self.start_peer_gateway(addr)
            with open(small) as f:
                first = f.readline().strip()
            # A key's id, as lumokeys-bench reads --ids_file (lmk_<id>_...).
            first_id = first[4:16] if first.startswith("lmk_") else first
            self.same_key_through(
                [gw_addr, peer_addr],
                f"/t/{tenant}/api/v1/admin/api-keys/{first_id}", admin_key)
            self.run_beside_peer(
                (gateway, gw_addr), (peer, peer_addr), "--rpc=http",
                f"--admin_key_file={admin_key}", f"--ids_file={small}",
                f"--http_path=/t/{tenant}/api/v1/admin/api-keys/{{id}}")
            self.stop(peer)
            self.stop(gateway)
        self.stop(main)

        if self.want("classic") or self.want("cache"):
            # The key-count comparison runs on its own server with one audit row
            # per verification (--verify_usage_window=0s): with per-key
            # summaries, 1M keys used uniformly fold nothing while 1k keys fold
            # almost everything, so the default would compare audit volumes
            # rather than cache sizes (docs/benchmarks.md).
            metrics_port = harness.free_loopback_port()
            main, addr = self.start_server(
                "server-big", "--verify_cache_ttl=3600s",
                "--verify_usage_window=0s",
                f"--metrics_listen=127.0.0.1:{metrics_port}")
            pid = [main.pid]
            print(f"bench: {a.big_keys} keys vs {a.small_keys}", file=sys.stderr,
                  flush=True)
            t0 = time.monotonic()
            loaded = load_keys(a.big_keys, big)
            self.notes.append(f"loaded {a.big_keys} keys in "
                              f"{loaded['seconds']} s (multi-row INSERTs)")
            entries0 = self.stats(addr)["verify_cache_entries"]
            rss_before_big = self.rss_kib(main.pid)
            t1 = time.monotonic()
            warm = self.tool("--mode=load", f"--target={addr}", "--rpc=verify",
                             f"--key_file={big}", f"--tenant={tenant}",
                             f"--inflight={a.inflight}",
                             f"--channels={a.channels}", "--seconds=3000",
                             "--warmup_seconds=0", f"--max_calls={a.big_keys}")
            entries1 = self.stats(addr)["verify_cache_entries"]
            rss_big = self.rss_kib(main.pid)
            self.notes.append(
                f"warmed the cache with {int(warm['calls'])} cold verifies in "
                f"{time.monotonic() - t1:.0f} s ({warm['qps']:.0f}/s, "
                f"{int(warm['unexpected'])} not valid); cache entries "
                f"{entries0} -> {entries1}")
            if entries1 > entries0:
                per_key = (rss_big - rss_before_big) * 1024 / (entries1 - entries0)
                self.notes.append(
                    f"memory per cached key: {per_key:.0f} bytes (server RSS "
                    f"{rss_before_big // 1024} MiB -> {rss_big // 1024} MiB for "
                    f"{entries1 - entries0} more entries; RSS at start "
                    f"{rss0 // 1024} MiB, after the {a.small_keys}-key runs "
                    f"{rss_small // 1024} MiB)")
                self.settled_memory(main.pid, metrics_port, rss_before_big,
                                    entries1 - entries0)
            self.load("verify_1k_again", addr, pid, "--rpc=verify",
                      f"--key_file={small}", *common)
            self.load("verify_1m", addr, pid, "--rpc=verify",
                      f"--key_file={big}", *common)
            del t0
            self.stop(main)

        if self.want("classic") or self.want("queries"):
            print("bench: cold verify vs raw select", file=sys.stderr,
                  flush=True)
            cold, cold_addr = self.start_server("server-cold",
                                                "--verify_cache_ttl=0s")
            q0 = self.stats(cold_addr)["db_queries"]
            self.load_beside_db("select_raw", cold_addr, cold.pid,
                                "--rpc=select", f"--key_file={small}")
            q1 = self.stats(cold_addr)["db_queries"]
            # The same SELECT through MariaDB's C client library
            # (connections of its own, not counted by the pool), and an
            # empty call on the same server: what a call costs without a
            # query.
            self.load_beside_db("select_c", cold_addr, cold.pid,
                                "--rpc=select_c", f"--key_file={small}")
            self.load("echo_cold", cold_addr, [cold.pid], "--rpc=echo")
            # The key store's verification read alone (the same call path
            # as the raw select): how much of a cold verification is the
            # read, and how much the verifier's own work.
            self.load_beside_db("verify_read", cold_addr, cold.pid,
                                "--rpc=verify_read", f"--key_file={small}")
            q_verify = self.stats(cold_addr)["db_queries"]
            self.load_beside_db("verify_cold", cold_addr, cold.pid,
                                "--rpc=verify", f"--key_file={small}", *common)
            q2 = self.stats(cold_addr)["db_queries"]
            self.stop(cold)
            # Both include warm-up calls; queries per call over all calls made
            # are only approximate, so report the totals.
            self.notes.append(f"cold server: {q1 - q0} queries during the raw "
                              f"select run, {q2 - q_verify} during the cold verify run "
                              "(includes warm-up calls and batched audit writes)")

        if self.want("classic"):
            print("bench: bad keys vs warm verify, audit on vs off",
                  file=sys.stderr, flush=True)
            # Audit on and off measured back to back (two servers, one idle
            # while the other is loaded), so machine noise hits both alike.
            loud, loud_addr = self.start_server("server-audit-on",
                                                "--verify_cache_ttl=3600s")
            quiet, quiet_addr = self.start_server(
                "server-audit-off", "--verify_cache_ttl=3600s",
                "--bench_disable_usage_audit")
            # One audit row per verification (the summary window off), the
            # behaviour before verification summaries (docs/audit.md).
            percall, percall_addr = self.start_server(
                "server-audit-per-call", "--verify_cache_ttl=3600s",
                "--verify_usage_window=0s")
            # Usage rollups off (docs/usage.md): the same audit, without the
            # per-batch rollup upserts. The pair runs on, off, off, on (each
            # row the mean of its two rounds): the group starts right after
            # the heavier rows before it, whose background work in MariaDB
            # (purge, page flushing) fades during the group and weighed on
            # whichever server ran first.
            norollup, norollup_addr = self.start_server(
                "server-rollups-off", "--verify_cache_ttl=3600s",
                "--usage_rollups=false")
            qpid = [quiet.pid]
            on_first = self.load("verify_warm_audit", loud_addr, [loud.pid],
                                 "--rpc=verify", f"--key_file={small}",
                                 *common)
            off_rounds = [
                self.load(f"verify_rollups_off_{n}", norollup_addr,
                          [norollup.pid], "--rpc=verify",
                          f"--key_file={small}", *common)
                for n in (1, 2)]
            on_second = self.load("verify_rollups_on_2", loud_addr, [loud.pid],
                                  "--rpc=verify", f"--key_file={small}",
                                  *common)
            self.results["verify_rollups_off"] = mean_of_rounds(*off_rounds)
            self.results["verify_rollups_on"] = mean_of_rounds(on_first,
                                                               on_second)
            self.notes.append(
                "rollups pair, QPS in order on, off, off, on: "
                f"{on_first['qps']:.0f}, {off_rounds[0]['qps']:.0f}, "
                f"{off_rounds[1]['qps']:.0f}, {on_second['qps']:.0f}")
            self.stop(norollup)
            self.load("verify_audit_off", quiet_addr, qpid, "--rpc=verify",
                      f"--key_file={small}", *common)
            self.load("verify_audit_per_call", percall_addr, [percall.pid],
                      "--rpc=verify", f"--key_file={small}", *common)
            self.stop(loud)
            self.stop(percall)
            with open(small) as f:
                good = f.readline().strip()
            malformed = self.write_secret("malformed.key",
                                          "lmk_" + "x" * 20 + "\n")
            last = good[-1]
            flipped = good[:-1] + ("A" if last != "A" else "B")
            badsum = self.write_secret("badsum.key", flipped + "\n")
            for name, keyfile in (("malformed", malformed),
                                  ("bad_checksum", badsum)):
                before = self.stats(quiet_addr)["db_queries"]
                self.load(name, quiet_addr, qpid, "--rpc=verify",
                          f"--key_file={keyfile}", "--expect=invalid", *common)
                after = self.stats(quiet_addr)["db_queries"]
                self.results[name]["db_queries"] = after - before
            self.stop(quiet)
        if self.want("lists"):
            self.run_lists()
        if self.want("states"):
            self.run_states(small, common)
        # Last: its webhook endpoint would add outbox rows to every later
        # mutation (it is deleted at the end, but nothing depends on that).
        if self.want("webhooks"):
            print("bench: warm verify with webhook deliveries flowing vs "
                  "none", file=sys.stderr, flush=True)
            self.webhooks_scenario(small, common, tenant, admin_key)

    def want(self, group):
        return not self.args.only or group in self.args.only.split(",")

    def sql_value(self, statement):
        out = subprocess.run(
            ["mariadb", *self.mysql.tool_args(), "--batch",
             "--skip-column-names", "-e", statement],
            env=self.mysql.tool_env(), check=True, capture_output=True,
            text=True, timeout=3600)
        return out.stdout.strip()

    def seed(self, what, statement):
        t = time.monotonic()
        subprocess.run(["mariadb", *self.mysql.tool_args(), "--batch", "-e",
                        statement], env=self.mysql.tool_env(), check=True,
                       capture_output=True, timeout=3600)
        seconds = time.monotonic() - t
        self.notes.append(f"seeded {what} in {seconds:.0f} s "
                          "(one INSERT ... SELECT from seq_1_to_N)")

    def run_lists(self):
        """List p50 at a small tenant vs a large one (docs/admin-api.md,
        "Paging large lists"), keys and audit events, REST through the
        gateway (what the portal calls), first page without a count."""
        a = self.args
        server, addr = self.start_server("server-lists",
                                         "--verify_cache_ttl=3600s")
        gateway, gw_addr = self.start_gateway(addr)
        pids = [server.pid, gateway.pid]
        tenants = {}
        for size, keys, events, prefix in (
                ("small", 100, 100, "S"),
                ("big", a.list_keys, a.list_events, "L")):
            slug = f"list-{size}-" + secrets.token_hex(3)
            key_file = self.path(f"list-{size}.key")
            self.tool("--mode=setup", f"--target={addr}",
                      f"--operator_token_file={self.operator_token}",
                      f"--tenant={slug}", f"--key_file={key_file}")
            tid = self.sql_value(f"SELECT id FROM {self.database}.tenants "
                                 f"WHERE slug = '{slug}'")
            print(f"bench: seeding {keys} keys and {events} audit events "
                  f"({size})", file=sys.stderr, flush=True)
            # Every 2nd key used, every 3rd with an expiry, 1 in 50 revoked.
            self.seed(f"{keys} keys ({size} tenant)", f"""
                INSERT INTO {self.database}.api_keys (id, tenant_id, name,
                  digest, pepper_version, scopes, allowed_cidrs, revoked,
                  version, created_by_type, created_by_id, created_at,
                  last_used_at, expires_at, metadata)
                SELECT CONCAT('{prefix}', seq), {tid}, CONCAT('bulk-', seq),
                  UNHEX(SHA2(CONCAT('{prefix}', seq), 256)), 1, 'admin:read',
                  '', seq % 50 = 0, 1, 'system', 'bench',
                  UTC_TIMESTAMP(6) - INTERVAL seq SECOND,
                  IF(seq % 2 = 0, UTC_TIMESTAMP(6) - INTERVAL seq % 5000
                     MINUTE, NULL),
                  IF(seq % 3 = 0, UTC_TIMESTAMP(6) + INTERVAL seq % 400 DAY,
                     NULL), ''
                FROM {self.database}.seq_1_to_{keys}""")
            # Chain lane 0 from a seq far above the tenant's own events;
            # the rows carry no hashes (the lists never verify the chain).
            self.seed(f"{events} audit events ({size} tenant)", f"""
                INSERT INTO {self.database}.audit_events (tenant_id, action,
                  category, actor_type, actor_id, target_type, target_id,
                  outcome, suspicious, metadata, created_at, seq, chain_lane)
                SELECT {tid}, IF(seq % 10 = 0, 'api_key.revoked',
                  'api_key.used'), 'api_keys', 'api_key', 'bench', 'api_key',
                  CONCAT('{prefix}', seq % 1000), 'success', 0, '{{}}',
                  UTC_TIMESTAMP(6) - INTERVAL ({events} - seq) SECOND,
                  1000000000 + seq, 0
                FROM {self.database}.seq_1_to_{events}""")
            tenants[size] = (slug, key_file)
        self.sql(f"ANALYZE TABLE {self.database}.api_keys, "
                 f"{self.database}.audit_events")

        def rest(name, size, path):
            slug, key_file = tenants[size]
            self.load(name, gw_addr, pids, "--rpc=http",
                      f"--admin_key_file={key_file}",
                      f"--http_path=/t/{slug}/api/v1/admin{path}")

        first = "?limit=25&includeTotal=false"
        for size in ("small", "big"):
            rest(f"list_keys_{size}", size, "/api-keys" + first)
        rest("list_keys_big_total", "big", "/api-keys?limit=25")
        rest("list_keys_big_name", "big",
             "/api-keys" + first + "&sortBy=name&sortDir=ASC")
        rest("list_keys_big_expiring", "big",
             "/api-keys" + first + "&state=expiring")
        # The second page, by its token.
        slug, key_file = tenants["big"]
        token = self.first_page_token(gw_addr, slug, key_file)
        tokens = self.write_secret("list-token", token + "\n")
        self.load("list_keys_big_next", gw_addr, pids, "--rpc=http",
                  f"--admin_key_file={key_file}", f"--ids_file={tokens}",
                  f"--http_path=/t/{slug}/api/v1/admin/api-keys?limit=25"
                  "&pageToken={id}")
        for size in ("small", "big"):
            rest(f"list_audit_{size}", size, "/audit-logs" + first)
        rest("list_audit_big_total", "big", "/audit-logs?limit=25")
        rest("list_audit_big_action", "big",
             "/audit-logs" + first + "&action=api_key.revoked")
        self.stop(gateway)
        self.stop(server)

    def first_page_token(self, gw_addr, slug, key_file):
        import http.client
        with open(key_file) as f:
            key = f.read().strip()
        conn = http.client.HTTPConnection(gw_addr, timeout=60)
        conn.request("GET", f"/t/{slug}/api/v1/admin/api-keys?limit=25"
                     "&includeTotal=false", headers={"x-api-key": key})
        doc = json.loads(conn.getresponse().read())
        conn.close()
        return doc["meta"]["nextPageToken"]

    def run_states(self, small, common):
        """Warm verify with and without the key-policy states
        (--bench_disable_key_states): two servers, both pinned to the server
        CPU, loaded at the same time by two loaders (both on the load CPU),
        twice. Whatever else the machine runs meanwhile slows both alike,
        so the QPS ratio is the ratio of what a call costs each server;
        back-to-back runs let the machine's load move between the two
        halves of a comparison by more than the difference measured."""
        print("bench: warm verify, key states on vs off (simultaneous)",
              file=sys.stderr, flush=True)
        on, on_addr = self.start_server("server-states-on",
                                        "--verify_cache_ttl=3600s")
        off, off_addr = self.start_server("server-states-off",
                                          "--verify_cache_ttl=3600s",
                                          "--bench_disable_key_states")
        runs = {}
        for round_no in (1, 2):
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                futures = {
                    f"{name}_{round_no}": pool.submit(
                        self.load, f"verify_states_{name}_{round_no}", addr,
                        [server.pid], "--rpc=verify", f"--key_file={small}",
                        *common)
                    for name, server, addr in (("off", off, off_addr),
                                               ("on", on, on_addr))}
                for key, future in futures.items():
                    runs[key] = future.result()
        for state in ("on", "off"):
            self.results[f"verify_states_{state}"] = mean_of_rounds(
                runs[state + "_1"], runs[state + "_2"])
        self.stop(on)
        self.stop(off)

    def limits_scenario(self, addr, pid, load_keys, common):
        """Warm verification of one key with two named limits (a minute and
        an hour) and a quota, against one key without them, back to back
        on the same server; and the database statements limiting costs per
        1,000 verifications (docs/limits.md "Cost in statements"). The
        limits and the balance are far above what the run can spend, so
        every verification is admitted: the cost of counting is measured,
        not refusals."""
        plain = self.path("plain.key")
        limited = self.path("limited.key")
        load_keys(1, plain)
        load_keys(1, limited)
        with open(limited) as f:
            key_id = f.readline().strip().split("_")[1]
        self.sql(
            "INSERT INTO key_limits (key_id, tenant_id, name, limit_count,"
            " duration_ms) SELECT id, tenant_id, n.name, 1000000000, n.ms"
            " FROM api_keys, (SELECT 'minute' AS name, 60000 AS ms UNION ALL"
            " SELECT 'hour', 3600000) n WHERE id = '%s';"
            "INSERT INTO key_quotas (key_id, tenant_id, remaining,"
            " period_start_us, epoch) SELECT id, tenant_id, 1000000000000,"
            " CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED), 0"
            " FROM api_keys WHERE id = '%s';"
            # The key's presence flags, as the server writes them with the
            # rows (docs/storage.md "Presence flags").
            "UPDATE api_keys SET has_limits = 1, has_quota = 1"
            " WHERE id = '%s'" % (key_id, key_id, key_id),
            database=self.database)
        self.load("verify_one_key", addr, pid, "--rpc=verify",
                  f"--key_file={plain}", *common)
        self.load("verify_limited", addr, pid, "--rpc=verify",
                  f"--key_file={limited}", *common)
        # What limiting costs the database: exactly `calls` verifications
        # of each key (both warm, no warm-up), read from the server's
        # counters; the plain key's are the baseline (audit summaries and
        # the like). Counted in statements (every statement sent, those of
        # a batch each: the unit of the target) and, beside them, in round
        # trips (a batch once).
        calls = 5000 if self.args.smoke else 200000

        def count(key_file):
            before = self.stats(addr)
            r = self.tool("--mode=load", f"--target={addr}",
                          f"--inflight={self.args.inflight}",
                          f"--channels={self.args.channels}",
                          "--seconds=3600", "--warmup_seconds=0",
                          f"--max_calls={calls}", "--rpc=verify",
                          f"--key_file={key_file}", *common)
            after = self.stats(addr)
            if r["errors"] or r["unexpected"]:
                raise RuntimeError("counting the statements of limiting: "
                                   f"{r['first_error']}")
            return (after["db_statements"] - before["db_statements"],
                    after["db_queries"] - before["db_queries"], r["qps"])

        limited_st, limited_rt, limited_qps = count(limited)
        # The limited key's lease statements after its run (the return of
        # its idle credits after 5 s, its last slots' returns) fall in this
        # pause, not in the plain key's count.
        time.sleep(7)
        plain_st, plain_rt, plain_qps = count(plain)
        per_1000 = max(0, limited_st - plain_st) * 1000 / calls
        rt_per_1000 = max(0, limited_rt - plain_rt) * 1000 / calls
        x = self.results["verify_limited"]
        x["limit_statements_per_1000"] = per_1000
        x["limit_round_trips_per_1000"] = rt_per_1000
        self.notes.append(
            f"limits: {calls} verifications of each key counted: the limited "
            f"key {limited_st} statements in {limited_rt} round trips (at "
            f"{limited_qps:.0f} QPS), the plain key {plain_st} in {plain_rt} "
            f"(at {plain_qps:.0f} QPS): limiting costs {per_1000:.2f} "
            f"statements ({rt_per_1000:.2f} round trips) per 1,000 "
            f"verifications for two named limits and a quota (target <= 10 "
            f"statements)")

    WEBHOOKS_PER_SECOND = 10

    def webhooks_scenario(self, small, common, tenant, admin_key):
        """Warm verification on a server whose delivery workers deliver
        WEBHOOKS_PER_SECOND events a second to a loopback HTTPS receiver
        (TLS certificates from the openssl CLI), against a server without
        delivery workers: both pinned to the server CPU and loaded at the
        same time, twice, as the key-state rows are (run_states), so the
        QPS ratio is the ratio of what a call costs each. The events are
        written to the outbox by SQL, as another replica's mutations would
        be, so the webhook server pays the deliveries only (claims,
        payloads, signatures, TLS sends, completions) and its workers'
        polls, not the mutations that cause them (docs/benchmarks.md
        "Webhook delivery during verification")."""
        import http.server
        import ssl
        import threading
        from harness.tls import Pki

        pki = Pki(self.tmp)
        ca = pki.ca("hooks-ca")
        cert, key = pki.leaf("receiver", "hooks-ca", "serverAuth")
        received = []

        class Receiver(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append(time.monotonic())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()

        off, off_addr = self.start_server("server-webhooks-off",
                                          "--verify_cache_ttl=3600s")
        # Later flags win: this one runs the default 4 delivery workers.
        on, on_addr = self.start_server(
            "server-webhooks-on", "--verify_cache_ttl=3600s",
            "--webhook_workers=4", f"--webhook_ca_file={ca}",
            "--webhook_allow_cidrs=127.0.0.1/32")
        with open(admin_key) as f:
            cli_env = dict(os.environ, LUMOKEYS_ADDRESS=on_addr,
                           LUMOKEYS_API_KEY=f.read().strip(),
                           LUMOKEYS_SERVICE_TOKEN_FILE=self.service_token)
        cli = [os.path.join(self.build, "client", "lumokeys"), "--json",
               "--tenant", tenant, "webhooks"]
        created = subprocess.run(
            cli + ["create", "--url",
                   f"https://127.0.0.1:{httpd.server_address[1]}/hook",
                   "--events", "api_key.updated"],
            env=cli_env, capture_output=True, text=True, timeout=60)
        if created.returncode != 0:
            raise RuntimeError("webhooks create failed: " + created.stderr)
        endpoint = json.loads(created.stdout)["id"]
        tenant_id = int(self.sql_value(
            f"SELECT id FROM `{self.database}`.tenants WHERE slug = "
            f"'{tenant}'"))

        feeder = subprocess.Popen(
            ["mariadb", *self.mysql.tool_args(), "--batch",
             f"--database={self.database}"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            env=self.mysql.tool_env(), text=True)
        stop = threading.Event()
        fed = []

        def feed():
            tick = 1.0 / self.WEBHOOKS_PER_SECOND
            next_at = time.monotonic()
            while not stop.is_set():
                n = len(fed)
                feeder.stdin.write(
                    "INSERT INTO webhook_events (event_id, tenant_id,"
                    " event_type, action, category, actor_type, target_type,"
                    " target_id, outcome, metadata, created_at) VALUES"
                    f" ('evt_bench{n:017d}', {tenant_id}, 'api_key.updated',"
                    " 'api_key.updated', 'api_keys', 'system', 'api_key',"
                    " 'bench', 'success', '{}', UTC_TIMESTAMP(6));"
                    " INSERT INTO webhook_deliveries (tenant_id, endpoint_id,"
                    " event_row, state, next_attempt_at, created_at) VALUES"
                    f" ({tenant_id}, '{endpoint}', LAST_INSERT_ID(), 'pending',"
                    " UTC_TIMESTAMP(6), UTC_TIMESTAMP(6));\n")
                feeder.stdin.flush()
                fed.append(time.monotonic())
                next_at += tick
                stop.wait(max(0.0, next_at - time.monotonic()))

        def cpu_seconds(pid):
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf(
                "SC_CLK_TCK")

        # The webhook server's own CPU without verification load: idle (its
        # workers' polls), then with the events flowing (the windows are
        # measurement intervals, nothing waits on them).
        window = 2.0 if self.args.smoke else 10.0
        c0 = cpu_seconds(on.pid)
        time.sleep(window)
        idle_cpu = cpu_seconds(on.pid) - c0
        thread = threading.Thread(target=feed, daemon=True)
        thread.start()
        c0, fed0, received0 = cpu_seconds(on.pid), len(fed), len(received)
        time.sleep(window)
        flowing_cpu = cpu_seconds(on.pid) - c0
        delivered = len(received) - received0
        self.notes.append(
            f"webhooks, no verification load: the webhook server used "
            f"{1000 * idle_cpu / window:.1f} ms CPU/s idle (4 workers "
            f"polling), {1000 * flowing_cpu / window:.1f} ms CPU/s with "
            f"{len(fed) - fed0} events fed and {delivered} delivered in "
            f"{window:g} s: "
            + (f"{1000 * (flowing_cpu - idle_cpu) / delivered:.2f} ms CPU "
               "per delivery" if delivered else "no delivery"))
        runs = {}
        measured = 0
        try:
            for round_no in (1, 2):
                with concurrent.futures.ThreadPoolExecutor(2) as pool:
                    futures = {
                        f"{name}_{round_no}": pool.submit(
                            self.load, f"verify_webhooks_{name}_{round_no}",
                            addr, [server.pid], "--rpc=verify",
                            f"--key_file={small}", *common)
                        for name, server, addr in (("off", off, off_addr),
                                                   ("on", on, on_addr))}
                    for name, future in futures.items():
                        runs[name] = future.result()
                ended = time.monotonic()
                # Deliveries inside the round's measured window (the load
                # tool's last `seconds`, after its warm-up).
                measured += sum(1 for t in received
                                if ended - self.args.seconds <= t <= ended)
        finally:
            stop.set()
            thread.join()
            feeder.stdin.close()
            feeder.wait(timeout=60)
        # Every fed event delivered once all is drained (polled; the
        # deadline only bounds a failure).
        deadline = time.monotonic() + 60 * harness.TIME_SCALE
        while len(received) < len(fed) and time.monotonic() < deadline:
            time.sleep(0.1)
        for name in ("off", "on"):
            self.results[f"verify_webhooks_{name}"] = mean_of_rounds(
                runs[name + "_1"], runs[name + "_2"])
        on_row = self.results["verify_webhooks_on"]
        on_row["webhooks_fed"] = len(fed)
        on_row["webhooks_received"] = len(received)
        on_row["webhooks_per_second"] = measured / (2 * self.args.seconds)
        self.notes.append(
            f"webhooks: {len(fed)} events fed at {self.WEBHOOKS_PER_SECOND}/s "
            f"over both rounds; {measured} deliveries received in the two "
            f"measured windows ({on_row['webhooks_per_second']:.1f}/s), "
            f"{len(received)} in all")
        subprocess.run(cli + ["delete", endpoint], env=cli_env,
                       capture_output=True, text=True, timeout=60,
                       check=True)
        self.stop(on)
        self.stop(off)
        httpd.shutdown()
        httpd.server_close()

    # ----- the table ---------------------------------------------------

    ROWS = [
        # name, baseline, QPS target (ratio), p99 target (max ratio), label
        ("echo", None, None, None, "Echo (empty unary RPC)"),
        ("verify_warm", "echo", 0.8, 1.5, "VerifyApiKey warm"),
        ("verify_one_key", None, None, None, "verify warm, one key"),
        ("verify_limited", "verify_one_key", 0.9, None,
         "same, 2 limits + quota"),
        ("echo_cold", None, None, None, "Echo (cold server)"),
        ("select_c", None, None, None, "PK select, C client"),
        ("select_raw", "select_c", None, None, "raw PK select (cold server)"),
        ("verify_read", "select_raw", None, None, "  key store's verify read"),
        ("verify_cold", "select_raw", 0.6, None, "VerifyApiKey cold"),
        ("verify_1k_again", None, None, None, "verify, 1k keys cached"),
        ("verify_1m", "verify_1k_again", 0.9, 1.1, "verify, 1M keys cached"),
        ("verify_audit_off", None, None, None, "verify warm, audit off"),
        ("malformed", "verify_audit_off", 1.0, None, "malformed key"),
        ("bad_checksum", "verify_audit_off", 1.0, None, "bad-checksum key"),
        ("verify_warm_audit", "verify_audit_off", None, None,
         "verify warm, audit on"),
        ("verify_audit_per_call", "verify_audit_off", None, None,
         "verify warm, audit row/call"),
        ("verify_rollups_off", None, None, None, "verify warm, rollups off"),
        ("verify_rollups_on", "verify_rollups_off", 0.95, None,
         "verify warm, rollups on"),
        ("insert_raw", None, None, None, "raw INSERT+COMMIT"),
        ("create", "insert_raw", 0.5, None, "CreateApiKey"),
        ("rotate", "insert_raw", 0.4, None, "RotateApiKey"),
        ("get_grpc", None, None, None, "GetApiKey direct gRPC"),
        ("rest_get", "get_grpc", 0.8, None, "REST GET via gateway"),
        ("livez", "get_grpc", None, None, "gateway /livez (static)"),
        ("rest_get_beside_ours", None, None, None, "REST GET, ours beside peer"),
        ("rest_get_beside_peer", "rest_get_beside_ours", None, None,
         "  grpc-gateway, same time"),
        ("verify_states_off", None, None, None,
         "verify warm, key states off"),
        ("verify_states_on", "verify_states_off", 0.95, None,
         "verify warm, key states on"),
        ("verify_webhooks_off", None, None, None,
         "verify, no webhook workers"),
        ("verify_webhooks_on", "verify_webhooks_off", 0.95, None,
         "same, 10 webhooks/s flowing"),
        ("list_keys_small", None, None, None, "list keys p1, 100 keys"),
        ("list_keys_big", "list_keys_small", None, None,
         "list keys p1, big tenant"),
        ("list_keys_big_total", "list_keys_small", None, None,
         "  same + total (capped)"),
        ("list_keys_big_next", "list_keys_small", None, None,
         "  page 2 by pageToken"),
        ("list_keys_big_name", "list_keys_small", None, None,
         "  sortBy=name"),
        ("list_keys_big_expiring", "list_keys_small", None, None,
         "  state=expiring"),
        ("list_audit_small", None, None, None, "list audit p1, 100 events"),
        ("list_audit_big", "list_audit_small", None, None,
         "list audit p1, big log"),
        ("list_audit_big_total", "list_audit_small", None, None,
         "  same + total (capped)"),
        ("list_audit_big_action", "list_audit_small", None, None,
         "  action filter (1 in 10)"),
    ]
    # Rows whose target is on the median latency: at most this ratio.
    P50_TARGETS = {"list_keys_big": 1.5, "list_audit_big": 1.5}
    # The scenario groups of --only and the prefixes of their rows' names
    # (rows of no other group are "classic").
    GROUPS = {"classic": None, "lists": ("list_",),
              "queries": ("select_", "verify_read", "verify_cold",
                          "echo_cold"),
              "states": ("verify_states_",),
              "webhooks": ("verify_webhooks_",),
              "limits": ("verify_one_key", "verify_limited"),
              "mutations": ("insert_raw", "create", "rotate"),
              "cache": ("verify_1k_again", "verify_1m"),
              "gateway": ("get_grpc", "rest_get", "livez")}

    def table(self):
        r = self.results
        a = self.args
        lines = []
        lines.append(
            f"LumoKeys benchmark: server (and gateway) pinned to CPU "
            f"{SERVER_CPU}, lumokeys-bench to CPU {LOAD_CPU} (taskset); "
            f"MariaDB unpinned; {a.inflight} in flight over {a.channels} "
            f"channels (HTTP: {a.inflight} keep-alive connections); "
            f"{a.seconds} s measured after {a.warmup} s warm-up; "
            f"{os.cpu_count()} CPUs")
        head = (f"{'scenario':<28}{'QPS':>9}{'p50':>8}{'p90':>8}{'p99':>8}"
                f"{'p99.9':>8}{'CPU/call':>10}{'errors':>8}  "
                f"{'vs baseline':<34}{'target':<28}{'met':<4}")
        lines.append(head)
        lines.append("-" * len(head))
        failed = False
        for name, base, qps_t, p99_t, label in self.ROWS:
            if name not in r:
                continue
            x = r[name]
            errors = int(x["errors"] + x["unexpected"])
            cmp_text, target_text, met = "", "", ""
            if base and base in r and r[base]["qps"] > 0:
                b = r[base]
                qr = x["qps"] / b["qps"]
                pr = x["p99_us"] / b["p99_us"] if b["p99_us"] else 0
                cmp_text = f"{qr:.2f}x QPS, {pr:.2f}x p99"
                ok = True
                targets = []
                if name.startswith("list_"):
                    p50r = x["p50_us"] / b["p50_us"] if b["p50_us"] else 0
                    cmp_text = f"{p50r:.2f}x p50, {qr:.2f}x QPS"
                    if name in self.P50_TARGETS:
                        targets.append(f"p50<={self.P50_TARGETS[name]}x")
                        ok &= p50r <= self.P50_TARGETS[name]
                if qps_t is not None:
                    targets.append(f">={qps_t}x QPS")
                    ok &= qr >= qps_t
                if p99_t is not None:
                    targets.append(f"p99<={p99_t}x")
                    ok &= pr <= p99_t
                if "statements_per_call" in x:
                    cmp_text += (f", {x['statements_per_call']:.1f} vs "
                                 f"{b.get('statements_per_call', 0):.1f} "
                                 "round trips")
                if "db_cpu_us_per_call" in x and "db_cpu_us_per_call" in b:
                    cmp_text += (f", DB CPU {x['db_cpu_us_per_call']:.0f} vs "
                                 f"{b['db_cpu_us_per_call']:.0f} us")
                if "limit_statements_per_1000" in x:
                    targets.append("<=10 stmts/1k")
                    ok &= x["limit_statements_per_1000"] <= 10
                    cmp_text += (f", {x['limit_statements_per_1000']:.2f} "
                                 f"stmts/1k ("
                                 f"{x['limit_round_trips_per_1000']:.2f} "
                                 f"round trips)")
                if "db_queries" in x:
                    targets.append("0 queries")
                    ok &= x["db_queries"] == 0
                    cmp_text += f", {x['db_queries']} queries"
                    if x["db_queries"] != 0:
                        failed = True
                target_text = ", ".join(targets)
                met = ("yes" if ok else "NO") if targets else ""
            lines.append(
                f"{label:<28}{x['qps']:>9.0f}{x['p50_us']:>8.0f}"
                f"{x['p90_us']:>8.0f}{x['p99_us']:>8.0f}{x['p999_us']:>8.0f}"
                f"{x['server_cpu_us_per_call']:>10.1f}{errors:>8}  "
                f"{cmp_text:<33} {target_text:<28}{met:<4}")
        if "rest_get" in r and "get_grpc" in r:
            g, w = r["get_grpc"], r["rest_get"]
            lines.append(
                f"gateway overhead per request: "
                f"{w['server_cpu_us_per_call'] - g['server_cpu_us_per_call']:.1f}"
                f" us CPU (server+gateway vs server), "
                f"{w['p50_us'] - g['p50_us']:.0f} us added at p50")
            # The REST row's --server_pids are [server, gateway]: the
            # gateway process's own CPU, which does not depend on the
            # server costing the same per call on both paths.
            by_pid = w.get("cpu_us_per_call_by_pid") or []
            if len(by_pid) == 2:
                lines.append(
                    f"gateway CPU per forwarded request (its own process): "
                    f"{by_pid[1]:.1f} us; server CPU per REST call "
                    f"{by_pid[0]:.1f} us (direct gRPC "
                    f"{g['server_cpu_us_per_call']:.1f} us)")
            switches = w.get("voluntary_switches_per_call_by_pid") or []
            if len(switches) == 2:
                lines.append(
                    f"voluntary context switches per forwarded request "
                    f"(threads going to sleep to wait: the hand-offs): "
                    f"gateway {switches[1]:.2f}, server {switches[0]:.2f}")
        if "select_raw" in r and "select_c" in r:
            ours = r["select_raw"]["server_cpu_us_per_call"]
            c = r["select_c"]["server_cpu_us_per_call"]
            ratio = ours / c if c else 0
            text = (f"per-query CPU: Connector/C++ {ours:.1f} vs C client "
                    f"{c:.1f} us per call = {ratio:.2f}x (target <=1.5x: "
                    f"{'yes' if 0 < ratio <= 1.5 else 'NO'})")
            if "echo_cold" in r:
                call = r["echo_cold"]["server_cpu_us_per_call"]
                if c > call:
                    text += (f"; beyond an empty call ({call:.1f} us): "
                             f"{(ours - call) / (c - call):.2f}x")
            lines.append(text)
        if "rest_get_beside_ours" in r and "rest_get_beside_peer" in r:
            w, p = r["rest_get_beside_ours"], r["rest_get_beside_peer"]
            ratio = w["qps"] / p["qps"] if p["qps"] else 0
            ours_cpu = w["server_cpu_us_per_call"]
            peer_cpu = p["server_cpu_us_per_call"]
            met = "yes" if ratio >= 1.5 and ours_cpu < peer_cpu else "NO"
            lines.append(
                f"ours vs grpc-gateway (same server, loaded at the same time, "
                f"mean of 2 rounds): {ratio:.2f}x QPS, gateway CPU per request "
                f"{ours_cpu:.1f} vs {peer_cpu:.1f} us (target >=1.5x QPS at "
                f"lower CPU: {met})")
        lines.append("latencies in us; CPU/call = server (+gateway for REST "
                     "rows, gateway only for /livez and the rows beside the "
                     "peer) CPU us per call from /proc/<pid>/stat")
        for note in self.notes:
            lines.append("note: " + note)
        return "\n".join(lines), failed


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--warmup", type=float, default=2)
    p.add_argument("--inflight", type=int, default=16)
    p.add_argument("--channels", type=int, default=4)
    p.add_argument("--small-keys", type=int, default=1000)
    p.add_argument("--big-keys", type=int, default=1000000)
    p.add_argument("--list-keys", type=int, default=1000000,
                   help="keys of the large tenant in the list rows")
    p.add_argument("--list-events", type=int, default=10000000,
                   help="audit events of the large tenant in the list rows")
    p.add_argument("--only", default="",
                   help="comma-separated scenario groups to run (also "
                        "webhooks: warm verify with webhook deliveries "
                        "flowing vs none): classic "
                        "(verify, create/rotate, REST, 1M cache, cold, "
                        "audit), mutations (create/rotate only), cache "
                        "(the big-key rows and memory per key), gateway "
                        "(REST GET vs gRPC, /livez, the peer gateway), "
                        "queries (the point select through Connector/C++ "
                        "and through the C client, cold verify), lists, "
                        "states, limits "
                        "(default: all)")
    p.add_argument("--profile-gateway", metavar="FILE",
                   help="record a perf cpu-clock profile of the gateway "
                        "during the REST row into FILE")
    p.add_argument("--json", help="also write every raw result here")
    p.add_argument("--smoke", action="store_true",
                   help="1 s per scenario, 20,000 big keys")
    args = p.parse_args()
    if args.smoke:
        args.seconds, args.warmup, args.big_keys = 1, 0.5, 20000
        args.list_keys, args.list_events = 20000, 20000
    bench = Bench(args)
    try:
        bench.run()
    finally:
        table, failed = bench.table()
        bench.cleanup()
    print(table, flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": bench.results, "notes": bench.notes}, f,
                      indent=1)
    def selected(row):
        group = next((g for g, prefixes in Bench.GROUPS.items()
                      if prefixes and row[0].startswith(prefixes)), "classic")
        return bench.want(group)
    missing = [row[0] for row in Bench.ROWS
               if selected(row) and row[0] not in bench.results]
    if missing:
        print("bench: missing scenarios: " + ", ".join(missing),
              file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
