// On a Galera cluster: a transaction that a write committed through another
// node aborts (a brute-force abort or a failed certification) runs again,
// and is never reported committed without its write. Not a test of the
// suite on its own: galera_cluster_test runs it with LUMO_TEST_MYSQL_DSN
// naming one node and LUMO_TEST_GALERA_PEER_DSN another node of the same
// cluster (docs/replication.md, "Certification conflicts").
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/storage/mysql/connection_pool.h"
#include "server/storage/mysql/mysql_options.h"
#include "server/storage/mysql/mysql_session.h"
#include "tests/storage/status_testing.h"
#include "tests/storage/test_database.h"

namespace lumo::storage {
namespace {

using ::lumo::testing::TestDatabase;
using ::lumo::testing::TestTimeScale;

TEST(GaleraConflictTest, ATransactionAnotherNodesWriteAbortsRunsAgain) {
  const char* peer_dsn = std::getenv("LUMO_TEST_GALERA_PEER_DSN");
  ASSERT_NE(peer_dsn, nullptr)
      << "LUMO_TEST_GALERA_PEER_DSN must name another node of the cluster";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TestDatabase> db,
                       TestDatabase::Create());
  ASSERT_OK(db->Execute(
      "CREATE TABLE conflict_pair (id INT PRIMARY KEY, v INT NOT NULL)"));
  ASSERT_OK(db->Execute("INSERT INTO conflict_pair VALUES (1, 0)"));

  MysqlOptions here = db->options();
  here.pool_size = 1;
  ASSERT_OK_AND_ASSIGN(MysqlOptions peer_node, ParseMysqlDsn(peer_dsn));
  MysqlOptions there = here;
  there.host = peer_node.host;
  there.port = peer_node.port;
  there.other_hosts.clear();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> pool,
                       ConnectionPool::Create(here));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ConnectionPool> peer,
                       ConnectionPool::Create(there));
  {
    ASSERT_OK_AND_ASSIGN(ConnectionLease lease, pool->Acquire());
    ASSERT_TRUE(lease->is_galera())
        << "LUMO_TEST_MYSQL_DSN is not a Galera node";
  }
  // The database, the table and its row reach the peer node by
  // replication, applied there a moment after they committed here (DDL
  // too). The pool's sessions read causally on a cluster
  // (wsrep_sync_wait), so once one read of the row succeeds on the peer,
  // the peer's writes below find the table.
  const absl::Time deadline = absl::Now() + absl::Seconds(30 * TestTimeScale());
  absl::Status peer_sees_row;
  while (true) {
    peer_sees_row = storage::Run(*peer, "peer reads the row", [](Session& p) {
      std::unique_ptr<sql::ResultSet> rs =
          p.Query(p.Prepare("SELECT v FROM conflict_pair WHERE id = 1"));
      if (!rs->next()) return absl::NotFoundError("the row is not there yet");
      return absl::OkStatus();
    });
    if (peer_sees_row.ok() || absl::Now() > deadline) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_OK(peer_sees_row);

  int attempts = 0;
  absl::Status peer_write;
  absl::Status status = storage::Run(
      *pool, "aborted by another node", OnConflict::kRetry,
      [&](Session& s) -> absl::Status {
        ++attempts;
        s.Begin();
        s.Update(s.Prepare("UPDATE conflict_pair SET v = v + 1 WHERE id = 1"));
        if (attempts == 1) {
          // The same row, written and committed through the other node:
          // its write set reaches this node while this transaction holds
          // the row, and only one of the two can commit.
          peer_write = storage::Run(*peer, "peer write", [](Session& p) {
            p.Update(
                p.Prepare("UPDATE conflict_pair SET v = v + 10 WHERE id = 1"));
            return absl::OkStatus();
          });
        }
        s.Commit();
        return absl::OkStatus();
      });
  ASSERT_OK(peer_write);
  EXPECT_OK(status);
  EXPECT_EQ(attempts, 2);
  // Both writes, each once (this session reads causally).
  std::string v;
  ASSERT_OK(storage::Run(*pool, "read back", [&](Session& s) {
    std::unique_ptr<sql::ResultSet> rs =
        s.Query(s.Prepare("SELECT v FROM conflict_pair WHERE id = 1"));
    if (!rs->next()) return absl::InternalError("no row");
    v = rs->getString(1).asStdString();
    return absl::OkStatus();
  }));
  EXPECT_EQ(v, "11");
}

}  // namespace
}  // namespace lumo::storage
