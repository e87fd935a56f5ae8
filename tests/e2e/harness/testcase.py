"""unittest base classes: a failing test prints the logs of the processes
it drove."""

import sys
import unittest

from harness.gateway import LumoGateway
from harness.server import LumoServer


class LogOnFailure:
    """unittest.TestCase mixin: after a failing or erroring test, prints
    what failure_log() returns to stderr."""

    def failure_log(self):
        raise NotImplementedError

    def run(self, result=None):
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        outcome = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            log = self.failure_log()
            if not log.endswith("\n"):
                log += "\n"
            sys.stderr.write(f"\n===== log for {self.id()} =====\n{log}"
                             "===== end of log =====\n")
        return outcome


class LumoServerTestCase(LogOnFailure, unittest.TestCase):
    """One LumoServer per test class (`cls.server`), and with
    `with_gateway` a LumoGateway in front of it (`cls.gw`); both are
    stopped after the class, also when a subclass's setUpClass fails after
    this one. A failing test prints their logs.

    Class settings: `server_args` (extra lumokeys-server flags),
    `server_class` (a LumoServer subclass taking `extra_args`),
    `with_gateway`, `gateway_request_timeout` (the gateway's
    --request_timeout, default LumoGateway's)."""

    server_class = LumoServer
    server_args = ()
    with_gateway = False
    gateway_request_timeout = None
    server = None
    gw = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.addClassCleanup(cls._stop_processes)
        cls.server = cls.server_class(extra_args=cls.server_args)
        cls.server.start()
        if cls.with_gateway:
            cls.gw = LumoGateway(cls.server,
                                 request_timeout=cls.gateway_request_timeout)

    @classmethod
    def _stop_processes(cls):
        if cls.gw is not None:
            cls.gw.stop()
            cls.gw = None
        if cls.server is not None:
            cls.server.stop()
            cls.server = None

    def failure_log(self):
        cls = type(self)
        log = cls.server.server_log() if cls.server is not None else "(none)\n"
        if cls.gw is not None:
            log += "\n===== gateway =====\n" + cls.gw.output()
        return log


class ReplicaSetTestCase(LogOnFailure, unittest.TestCase):
    """Three lumokeys-server processes on one database, per test class: the
    first (`server`) and the replicas "b" and "c". `addresses`,
    `channels` and the per-replica `keys` / `auth` stubs are indexed 0-2 in
    that order, as are the processes in `processes`; `ops` talks to the
    first. Every process serves with the flags of the class attribute
    `server_args`. A failing test prints every process's log (and those of
    `self.extra`, replicas a test added)."""

    server_args = ()

    @classmethod
    def setUpClass(cls):
        # Imported here: the other test cases need no gRPC channel.
        import grpc
        from harness.server import LumoReplica
        from harness.stubs import stubs
        cls.stubs = stubs()
        cls.server = None
        cls.replicas = []
        try:
            cls.server = LumoServer(extra_args=cls.server_args)
            cls.server.start()
            for name in ("b", "c"):
                cls.replicas.append(LumoReplica(cls.server, name).start())
        except BaseException:
            cls.tearDownClass()
            raise
        cls.processes = [cls.server] + cls.replicas
        cls.addresses = [p.address for p in cls.processes]
        cls.channels = [grpc.insecure_channel(a) for a in cls.addresses]
        cls.keys = [cls.stubs.keys_grpc.KeyServiceStub(c) for c in cls.channels]
        cls.auth = [cls.stubs.auth_grpc.AuthServiceStub(c) for c in cls.channels]
        cls.ops = cls.stubs.ops_grpc.OperatorServiceStub(cls.channels[0])

    @classmethod
    def tearDownClass(cls):
        for channel in getattr(cls, "channels", []):
            channel.close()
        for replica in cls.replicas:
            replica.stop()
        if cls.server is not None:
            cls.server.stop()

    def failure_log(self):
        log = self.server.server_log()
        for r in self.replicas + getattr(self, "extra", []):
            log += f"\n===== replica {r.name} log =====\n" + r.log()
        return log
