"""LumoKeys on a three-node MariaDB Galera cluster (tools/dev/galera.sh
through harness.galera): the migrations apply on the cluster and every node
holds them; a server serves on a node; a node killed with SIGKILL rejoins by
incremental state transfer and holds what was written while it was down.
"""

import glob
import os
import subprocess
import unittest

from harness.env import TIME_SCALE, built_program
from harness.galera import GaleraCluster
from harness.mariadb import MysqlDsn
from harness.server import LumoServer


def _causal_rows(dsn, statement, database):
    """Rows of `statement` on one node, after that node applied everything
    the cluster committed before it (wsrep_sync_wait)."""
    return dsn.rows(f"SET SESSION wsrep_sync_wait = 1; {statement}", database)


class GaleraClusterTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.cluster = GaleraCluster()
        try:
            cls.cluster.start()
        except BaseException:
            cls.cluster.destroy()
            raise
        cls.nodes = {n: MysqlDsn(cls.cluster.admin_dsn(n))
                     for n in GaleraCluster.NODES}

    @classmethod
    def tearDownClass(cls):
        cls.cluster.destroy()

    def test_migrations_apply_on_the_cluster_and_a_killed_node_rejoins(self):
        server = LumoServer(mysql_dsn=self.cluster.admin_dsn(1))
        try:
            server.start()  # migrates through node 1, then serves on it
            migration_files = sorted(
                os.path.basename(p) for p in glob.glob(
                    os.path.join(server.migrations_dir, "[0-9]*_*.sql")))
            for node, dsn in self.nodes.items():
                rows = _causal_rows(
                    dsn, "SELECT name FROM schema_migrations ORDER BY version",
                    server.database)
                self.assertEqual([r[0] for r in rows], migration_files,
                                 f"node {node}")
                size = dsn.rows("SELECT VARIABLE_VALUE FROM "
                                "information_schema.GLOBAL_STATUS WHERE "
                                "VARIABLE_NAME = 'WSREP_CLUSTER_SIZE'")
                self.assertEqual(size, [["3"]], f"node {node}")

            self.cluster.kill9(2)
            self.nodes[1].sql("CREATE TABLE galera_probe (id INT PRIMARY KEY)",
                              server.database)
            self.nodes[3].sql("INSERT INTO galera_probe VALUES (7)",
                              server.database)
            self.cluster.start_node(2)
            self.assertEqual(
                _causal_rows(self.nodes[2], "SELECT id FROM galera_probe",
                             server.database), [["7"]])
        finally:
            server.stop()

    def run_gtests_on_node(self, node, program, tests, **env):
        """Runs the named tests of a gtest program against one node."""
        result = subprocess.run(
            [built_program("tests", "storage", program),
             "--gtest_filter=" + ":".join(tests)],
            env=dict(os.environ,
                     LUMO_TEST_MYSQL_DSN=self.cluster.admin_dsn(node), **env),
            capture_output=True, text=True, timeout=300 * TIME_SCALE)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn(f"{len(tests)} test{'s' if len(tests) > 1 else ''} "
                      "from 1 test suite ran", result.stdout)

    def test_sessions_on_a_node_read_causally(self):
        # The pool's session set-up test, run against a Galera node: there
        # it requires wsrep_sync_wait = 1 (on the plain MariaDB of the suite
        # it requires 0).
        self.run_gtests_on_node(2, "mysql_key_store_test", [
            "ConnectionPoolTest.SessionsAreSetUpForUtcRepeatableReadAndCeilings"])

    def test_streams_hold_back_only_their_own_writer_on_a_node(self):
        # On a node, seq steps by the cluster size (the legacy feed's holes);
        # the per-writer streams have none: an open row holds back only its
        # own writer, and a failed mutation leaves a void, not a hole.
        self.run_gtests_on_node(2, "change_feed_store_test", [
            "ChangeFeedStoreTest.AnOpenRowHoldsBackOnlyItsOwnWritersStream",
            "ChangeFeedStoreTest.AFailedMutationLeavesAVoidNotAHole"])

    def test_a_transaction_another_nodes_write_aborts_runs_again(self):
        # A transaction on node 2 holds a row that a write through node 1
        # commits: the transaction is aborted (never reported committed
        # without its write) and, retry-safe, runs again.
        self.run_gtests_on_node(
            2, "galera_conflict_test",
            ["GaleraConflictTest.ATransactionAnotherNodesWriteAbortsRunsAgain"],
            LUMO_TEST_GALERA_PEER_DSN=self.cluster.admin_dsn(1))


if __name__ == "__main__":
    unittest.main()
