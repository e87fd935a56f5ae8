// The MySQL counter store's locking, beyond the contract the conformance
// tests hold every implementation to (tests/storage/conformance).
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/storage/counter_store.h"
#include "server/storage/mysql/mysql_backend.h"
#include "tests/storage/mysql_test_backend.h"
#include "tests/storage/status_testing.h"

namespace lumo::storage {
namespace {

using ::lumo::testing::MysqlTestBackend;

// The sweep of window heads must not lock the heads of live counters: a
// lease holds its counter's head row for its whole transaction, and a
// sweep that waited for it (or made it wait) would stall rate-limited
// verifications. Another session holds a live counter's head as a lease
// does; the sweep still forgets a stale counter, without waiting for that
// lock (the pool's lock wait timeout is 3 s: a sweep that waited would
// fail).
TEST(MysqlCounterStoreTest, TheHeadSweepLocksNoLiveCounter) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MysqlTestBackend> backend,
                       MysqlTestBackend::Create());
  CounterStore& counters = backend->backend()->counters();
  const WindowSpec hour{10, absl::Hours(1)};
  ASSERT_OK(counters.LeaseWindow("w:live", hour, 1, 0).status());
  ASSERT_OK(counters.LeaseWindow("w:stale", hour, 1, 0).status());
  // The stale counter's slot is gone (as the slot sweep leaves it).
  ASSERT_OK(backend->db().Execute(
      "DELETE FROM limit_windows WHERE counter_key = 'w:stale'"));
  ASSERT_OK(backend->db().Execute("START TRANSACTION"));
  ASSERT_OK(
      backend->db().Execute("SELECT counter_key FROM limit_window_heads"
                            " WHERE counter_key = 'w:live' FOR UPDATE"));
  absl::StatusOr<int64_t> swept =
      counters.SweepStale(absl::Hours(48), absl::Hours(48), 1000);
  ASSERT_OK(backend->db().Execute("ROLLBACK"));
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_EQ(*swept, 1);
  EXPECT_EQ(
      *backend->db().QueryValue("SELECT COUNT(*) FROM limit_window_heads"
                                " WHERE counter_key IN ('w:live', 'w:stale')"),
      "1");
}

}  // namespace
}  // namespace lumo::storage
