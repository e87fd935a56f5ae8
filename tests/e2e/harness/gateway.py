"""lumokeys-gateway processes in front of a LumoServer, with a small HTTP
client (`request`) and a raw-socket helper (`raw`)."""

import http.client
import json
import os
import re
import socket
import subprocess
import time

from harness import openapi
from harness.env import HarnessError, TIME_SCALE, built_program, \
    dies_with_harness_prefix, free_loopback_port, read_log, stop_process

_document = None


def api_document():
    """The gateway's OpenAPI document (`--print_openapi` of the built
    gateway: the same text it serves), read once per process."""
    global _document
    if _document is None:
        result = subprocess.run(
            [built_program("gateway", "lumokeys-gateway"), "--print_openapi"],
            capture_output=True, text=True, timeout=60 * TIME_SCALE)
        if result.returncode != 0:
            raise HarnessError(f"--print_openapi failed: {result.stderr}")
        _document = openapi.Document(result.stdout)
    return _document


class LumoGateway:
    """A lumokeys-gateway process in front of a started LumoServer. Starts
    in the constructor and returns once /healthz answers 200. Not
    thread-safe to start or stop; request() and raw() may run concurrently.

    `extra_args` go to the gateway's command line; `name` names its log
    (<server tmpdir>/<name>.log) when a test runs several; `env` adds
    environment variables; `upstream` overrides the server's address.

    `request_timeout` is the gateway's --request_timeout: short by default
    so slow-client tests finish quickly (scaled by TIME_SCALE on slow
    machines); tests whose requests legitimately take long on a loaded
    machine (large exports), or that hold idle connections, pass a longer
    one. With `metrics`, the gateway serves metrics on a port of its
    choosing, read from its log into `metrics_port`.
    """

    START_TIMEOUT_S = 20

    def __init__(self, server, request_timeout=None, extra_args=(),
                 name="gateway", env=None, upstream=None, metrics=False):
        if request_timeout is None:
            request_timeout = "%ds" % (3 * TIME_SCALE)
        self.server = server
        self.port = free_loopback_port()
        self.log_path = os.path.join(server.tmpdir, name + ".log")
        self.metrics_port = None
        args = [built_program("gateway", "lumokeys-gateway"),
                "--listen=127.0.0.1:%d" % self.port,
                "--upstream=" + (upstream or server.address),
                "--service_token_file=" + server.service_token_path,
                "--request_timeout=" + request_timeout]
        if metrics:
            args.append("--metrics_listen=127.0.0.1:0")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            dies_with_harness_prefix() + args + list(extra_args),
            stdout=self.log, stderr=self.log,
            env=dict(os.environ, **(env or {})))
        deadline = time.monotonic() + self.START_TIMEOUT_S * TIME_SCALE
        while True:
            try:
                status, _, _ = self.request("GET", "/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise HarnessError("gateway did not start:\n"
                                   + read_log(self.log_path))
            time.sleep(0.1)
        if metrics:
            self.metrics_port = metrics_port_from_log(self.log_path, deadline)

    def stop(self):
        """SIGTERM, SIGKILL after 10 s. Safe to repeat."""
        if self.process is not None:
            stop_process(self.process)
            self.process = None
            self.log.close()

    def output(self):
        """Everything the gateway wrote so far."""
        return read_log(self.log_path, "(no gateway log)")

    def request(self, method, path, body=None, headers=None, conn=None):
        """One HTTP request; returns (status, {lower-case header: value},
        raw body). `body` (not bytes or str) is sent as JSON. On `conn` (an
        open HTTPConnection to this gateway, left open) instead of a new
        connection. A reply of an API operation that the OpenAPI document
        does not describe raises openapi.ReplyMismatch (harness/openapi.py).
        """
        own = conn is None
        if own:
            conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                              timeout=10 * TIME_SCALE)
        try:
            hdrs = dict(headers or {})
            data = None
            if body is not None:
                data = body if isinstance(body, (bytes, str)) else json.dumps(body)
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
            got = {k.lower(): v for k, v in resp.getheaders()}
            openapi.check_reply(api_document(), method, path, resp.status,
                                got, raw)
            return resp.status, got, raw
        finally:
            if own:
                conn.close()

    def raw(self, data, read_timeout=None):
        """Sends raw bytes; returns what came back (one response, or all
        until EOF or `read_timeout`, default longer than the gateway's
        request timeout so that a 408 is seen)."""
        if read_timeout is None:
            read_timeout = 5 * TIME_SCALE
        with socket.create_connection(("127.0.0.1", self.port), timeout=read_timeout) as s:
            s.sendall(data)
            chunks = []
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    if b"\r\n\r\n" in b"".join(chunks):
                        head, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
                        length = 0
                        for line in head.split(b"\r\n")[1:]:
                            k, _, v = line.partition(b":")
                            if k.strip().lower() == b"content-length":
                                length = int(v.strip())
                        if len(rest) >= length:
                            break
            except socket.timeout:
                pass
            return b"".join(chunks)


_METRICS_LINE = re.compile(r'"msg":"serving metrics"')


def metrics_port_from_log(path, deadline):
    """The port of the last `serving metrics` line a process logged to
    `path` (the last start wins: the harness may retry on another port);
    polls until time.monotonic() passes `deadline`."""
    while time.monotonic() < deadline:
        port = None
        for line in read_log(path, "").splitlines():
            if _METRICS_LINE.search(line):
                port = json.loads(line)["metrics_port"]
        if port is not None:
            return port
        time.sleep(0.1)
    raise HarnessError(f"no 'serving metrics' line in {path}")
