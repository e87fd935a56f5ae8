"""The end-to-end test harness: real lumokeys-server, lumokeys-gateway,
`lumokeys` and MariaDB processes for the Python tests under tests/e2e
(docs/testing.md). Python 3 standard library plus Debian's python3-grpcio
and python3-protobuf; run with /usr/bin/python3.

    env        TIME_SCALE, where the build is, wait_for(), figure()
    mariadb    MysqlDsn (admin DSN + mariadb/mysqldump), PrivateMariaDb
    galera     GaleraCluster (a private three-node Galera cluster)
    server     LumoServer (server on a fresh database), LumoReplica
    gateway    LumoGateway (gateway + HTTP client)
    stubs      stubs(): generated gRPC stubs, once per run; key_md()
    keys       the key format: KEY_RE, checksum(), forge()
    testcase   LumoServerTestCase, ReplicaSetTestCase, LogOnFailure

Environment:
  LUMO_TEST_MYSQL_DSN  admin DSN without a database, e.g.
                       mysql://lumo_admin:PW@127.0.0.1:3307/ (required by
                       LumoServer unless given one: the harness fails, never
                       skips, without it)
  LUMO_BINARY_DIR      the CMake build directory (default <source>/build)
  LUMO_SOURCE_DIR      the source tree (default: this repository)
  LUMO_TEST_STUBS_DIR  generated gRPC stubs of this run (set by ctest)
  LUMO_TEST_TIME_SCALE factor for every bounding wait (default 1)
  LUMO_TEST_ALLOW_NONDURABLE_DB=1  pass --allow_nondurable_db to the server
  LUMO_TEST_KEEP_DIR=1 keep a server's temp dir after teardown

Usage:

    class MyTest(harness.LumoServerTestCase):
        with_gateway = True

        def test_something(self):
            key = self.server.create_tenant("acme")
            status, headers, body = self.gw.request(
                "GET", "/t/acme/api/v1/admin/api-keys",
                headers={"Authorization": "Bearer " + key})
"""

from harness.env import (TIME_SCALE, HarnessError, binary_dir, built_program,
                         figure, free_loopback_port, read_log, require_env,
                         run_as_prefix, source_dir, stop_process, wait_for,
                         write_secret)
from harness.galera import GaleraCluster
from harness.gateway import LumoGateway, metrics_port_from_log
from harness.keys import KEY_RE, checksum, forge, key_id
from harness.mariadb import MysqlDsn, PrivateMariaDb
from harness.server import FAST_PORTAL_HASHING, LumoReplica, LumoServer
from harness.stubs import (HEALTH_NOT_SERVING, HEALTH_SERVING, Stubs,
                           health_status, key_md, stubs)
from harness.testcase import (LogOnFailure, LumoServerTestCase,
                              ReplicaSetTestCase)

__all__ = [
    "FAST_PORTAL_HASHING", "HEALTH_NOT_SERVING", "HEALTH_SERVING", "KEY_RE",
    "TIME_SCALE", "GaleraCluster", "HarnessError", "LogOnFailure",
    "LumoGateway",
    "LumoReplica", "LumoServer", "LumoServerTestCase", "MysqlDsn",
    "PrivateMariaDb", "ReplicaSetTestCase", "Stubs", "binary_dir",
    "built_program", "checksum", "figure", "forge", "free_loopback_port", "health_status", "key_id",
    "key_md", "metrics_port_from_log", "read_log", "require_env",
    "run_as_prefix", "source_dir", "stop_process", "stubs", "wait_for",
    "write_secret",
]
