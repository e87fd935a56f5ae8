// MysqlAuditStore against the real MariaDB: the query plans of the audit
// list on a large log (docs/admin-api.md, "Paging large lists"). The store's
// behaviour on both backends is held by the audit store conformance tests.
#include "server/storage/mysql/mysql_audit_store.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "server/storage/mysql/connection_pool.h"
#include "tests/storage/mysql_grammar/statement_capture.h"
#include "tests/storage/status_testing.h"
#include "tests/storage/test_database.h"

namespace lumo::storage {
namespace {

using ::lumo::testing::TestDatabase;

// Events of the large tenant: every 10th is an `api_key.revoked`, every
// 100th suspicious. Enough rows for MariaDB's optimizer to prefer, without
// a named index, intersecting the filter's index with (tenant_id, id) and
// sorting what both hold.
constexpr int kEvents = 100000;

class MysqlAuditStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (absl::Status st = Prepare(); !st.ok()) {
      setup_error_ = new std::string(st.ToString());
    }
  }
  // The database, the seeded tenant and its events, and the store.
  static absl::Status Prepare() {
    absl::StatusOr<std::unique_ptr<TestDatabase>> db = TestDatabase::Create();
    if (!db.ok()) return db.status();
    db_ = db->release();
    lumo::testing::IgnoreStatements fixture;  // MariaDB-only seeding
    const std::string slug = "audit-plans";
    if (absl::Status st = db_->Execute(absl::StrCat(
            "INSERT INTO tenants (slug, name, created_at) VALUES ('", slug,
            "', 'Audit plans', UTC_TIMESTAMP(6))"));
        !st.ok()) {
      return st;
    }
    absl::StatusOr<std::string> id = db_->QueryValue(
        absl::StrCat("SELECT id FROM tenants WHERE slug = '", slug, "'"));
    if (!id.ok()) return id.status();
    tenant_id_ = std::stoll(*id);
    if (absl::Status st = db_->Execute(absl::StrCat(
            "INSERT INTO audit_events (tenant_id, action, category,"
            " actor_type, actor_id, target_type, target_id, outcome,"
            " suspicious, metadata, created_at) SELECT ",
            tenant_id_,
            ", IF(seq % 10 = 0, 'api_key.revoked', 'api_key.used'),"
            " 'api_keys', 'api_key', 'seed', 'api_key', CONCAT('k', seq %"
            " 1000), 'success', seq % 100 = 0, '{}', UTC_TIMESTAMP(6) -"
            " INTERVAL (",
            kEvents, " - seq) SECOND FROM seq_1_to_", kEvents));
        !st.ok()) {
      return st;
    }
    if (absl::Status st = db_->Execute("ANALYZE TABLE audit_events");
        !st.ok()) {
      return st;
    }
    absl::StatusOr<std::unique_ptr<ConnectionPool>> pool =
        ConnectionPool::Create(db_->options());
    if (!pool.ok()) return pool.status();
    store_ =
        new MysqlAuditStore(std::shared_ptr<ConnectionPool>(std::move(*pool)));
    return absl::OkStatus();
  }
  static void TearDownTestSuite() {
    delete store_;
    store_ = nullptr;
    delete db_;
    db_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(store_, nullptr) << *setup_error_; }

  // The plan rows of the page statement ListEvents sends for `q` (the
  // tenant's id and the filter's value bound in place of its parameters).
  static std::vector<std::vector<std::string>> PlanOfList(
      const AuditQuery& q, absl::string_view filter_value) {
    lumo::testing::StatementCapture capture;
    absl::StatusOr<AuditPage> page = store_->ListEvents(tenant_id_, q);
    EXPECT_TRUE(page.ok()) << page.status();
    std::string list;
    for (const std::string& sql : capture.Statements()) {
      if (absl::StrContains(sql, "ORDER BY id DESC")) list = sql;
    }
    EXPECT_FALSE(list.empty());
    // The statement's parameters: the tenant, then the filter's value.
    std::string bound;
    int n = 0;
    for (char c : list) {
      if (c != '?') {
        bound.push_back(c);
      } else if (n++ == 0) {
        absl::StrAppend(&bound, tenant_id_);
      } else {
        absl::StrAppend(&bound, "'", filter_value, "'");
      }
    }
    lumo::testing::IgnoreStatements explain_is_ours;
    absl::StatusOr<std::vector<std::vector<std::string>>> plan =
        db_->Query(absl::StrCat("EXPLAIN ", bound));
    EXPECT_TRUE(plan.ok()) << plan.status();
    return plan.ok() ? *plan : std::vector<std::vector<std::string>>();
  }

  static void ExpectWalksIndex(
      const std::vector<std::vector<std::string>>& plan,
      const std::string& index) {
    ASSERT_EQ(plan.size(), 1u);
    const std::string row = absl::StrJoin(plan[0], " | ");
    // EXPLAIN's columns: id, select_type, table, type, possible_keys, key.
    ASSERT_GE(plan[0].size(), 6u) << row;
    EXPECT_EQ(plan[0][5], index) << row;
    EXPECT_FALSE(absl::StrContains(row, "filesort")) << row;
    EXPECT_FALSE(absl::StrContains(row, "intersect")) << row;
  }

  static TestDatabase* db_;
  static MysqlAuditStore* store_;
  static int64_t tenant_id_;
  static std::string* setup_error_;
};

TestDatabase* MysqlAuditStoreTest::db_ = nullptr;
MysqlAuditStore* MysqlAuditStoreTest::store_ = nullptr;
int64_t MysqlAuditStoreTest::tenant_id_ = 0;
std::string* MysqlAuditStoreTest::setup_error_ = nullptr;

TEST_F(MysqlAuditStoreTest, AnActionFilterWalksTheActionIndex) {
  AuditQuery q;
  q.action = "api_key.revoked";
  q.count.wanted = false;
  {
    ASSERT_OK_AND_ASSIGN(AuditPage page, store_->ListEvents(tenant_id_, q));
    ASSERT_EQ(page.events.size(), 25u);
    for (size_t i = 0; i < page.events.size(); ++i) {
      EXPECT_EQ(page.events[i].event.action, "api_key.revoked");
      if (i > 0) EXPECT_LT(page.events[i].id, page.events[i - 1].id);
    }
    EXPECT_TRUE(page.has_more);
  }
  ExpectWalksIndex(PlanOfList(q, q.action), "idx_audit_tenant_action");
}

TEST_F(MysqlAuditStoreTest, ASuspiciousFilterWalksTheSuspiciousIndex) {
  for (const bool suspicious : {true, false}) {
    SCOPED_TRACE(suspicious);
    AuditQuery q;
    q.suspicious = suspicious;
    q.count.wanted = false;
    ASSERT_OK_AND_ASSIGN(AuditPage page, store_->ListEvents(tenant_id_, q));
    ASSERT_EQ(page.events.size(), 25u);
    for (const StoredAuditEvent& e : page.events) {
      EXPECT_EQ(e.event.suspicious, suspicious);
    }
    ExpectWalksIndex(PlanOfList(q, ""), "idx_audit_tenant_suspicious");
  }
}

}  // namespace
}  // namespace lumo::storage
