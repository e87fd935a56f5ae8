// An audit log written before hash versions existed still verifies after
// the upgrade (docs/audit.md "Hash versions"), and rows appended by this
// release (hash version 2) continue its chains. The log is
// testdata/audit_chain_v1.sql, written by the previous release's server.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "server/storage/audit_chain.h"
#include "server/storage/audit_store.h"
#include "server/storage/key_store.h"
#include "tests/storage/mysql_test_backend.h"

namespace lumo::testing {
namespace {

constexpr int64_t kTenant = 1;  // `old-chain` in the dump
constexpr int kOldRows = 20;

class AuditOldChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<MysqlTestBackend>> backend =
        MysqlTestBackend::Create();
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = *std::move(backend);
    std::ifstream in(LUMO_TESTDATA_DIR "/audit_chain_v1.sql");
    ASSERT_TRUE(in) << "cannot read " LUMO_TESTDATA_DIR "/audit_chain_v1.sql";
    std::stringstream text;
    text << in.rdbuf();
    int statements = 0;
    for (absl::string_view line : absl::StrSplit(text.str(), '\n')) {
      if (!absl::StartsWith(line, "INSERT ")) continue;
      ASSERT_TRUE(db().Execute(absl::StripSuffix(line, ";")).ok())
          << line.substr(0, 80);
      ++statements;
    }
    ASSERT_GT(statements, kOldRows);
  }
  TestDatabase& db() { return backend_->db(); }
  storage::AuditStore& audit() { return backend_->backend()->audit(); }
  storage::ChainVerification Verify() {
    absl::StatusOr<storage::ChainVerification> v = audit().VerifyChain(kTenant);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.value_or(storage::ChainVerification());
  }
  std::string Count(absl::string_view where) {
    return db()
        .QueryValue(absl::StrCat(
            "SELECT COUNT(*) FROM audit_events WHERE tenant_id = ", kTenant,
            " AND ", where))
        .value_or("error");
  }

  // Creates key `id` of `tenant_id` the way the server does: one audited
  // transaction, which appends on the next transaction lane.
  void InsertKey(int64_t tenant_id, absl::string_view id) {
    storage::NewKey key;
    key.id = std::string(id);
    key.tenant_id = tenant_id;
    key.name = "after the upgrade";
    key.scopes = {"admin:read"};
    key.created_by_type = "system";
    key.created_by_id = "test";
    key.secret.pepper_version = 1;
    storage::AuditEvent created;
    created.action = "api_key.created";
    created.category = "api_keys";
    created.actor_type = "system";
    created.actor_id = "test";
    ASSERT_TRUE(backend_->backend()->keys().InsertKey(key, created).ok()) << id;
  }

  std::unique_ptr<MysqlTestBackend> backend_;
};

TEST_F(AuditOldChainTest, TheOldChainVerifiesUnderVersionOne) {
  EXPECT_EQ(Count("hash_version = 1"), absl::StrCat(kOldRows));
  EXPECT_EQ(Count("chain_lane > 0"), "7");
  const storage::ChainVerification v = Verify();
  EXPECT_TRUE(v.ok) << v.problem << " at id " << v.broken_id;
  EXPECT_EQ(v.rows_checked, kOldRows);
}

TEST_F(AuditOldChainTest, NewRowsContinueTheOldChainUnderVersionTwo) {
  storage::PendingAuditEvent usage;
  usage.tenant_id = kTenant;
  usage.event.action = "api_key.used";
  usage.event.category = "authentication";
  usage.event.actor_type = "api_key";
  usage.event.actor_id = "ocHCkCxWkDaj";
  ASSERT_TRUE(audit().AppendEvents({usage, usage}).ok());
  InsertKey(kTenant, "upgradeKey01");

  EXPECT_EQ(Count("hash_version = 2"), "3");
  // The writer lane's old rows are followed by new ones.
  EXPECT_EQ(Count("hash_version = 2 AND chain_lane = 0 AND seq > 13"), "2");
  const storage::ChainVerification v = Verify();
  EXPECT_TRUE(v.ok) << v.problem << " at id " << v.broken_id;
  EXPECT_EQ(v.rows_checked, kOldRows + 3);
}

TEST_F(AuditOldChainTest, TamperingWithAnOldRowIsStillDetected) {
  ASSERT_TRUE(db().Execute("UPDATE audit_events SET ip_address = '198.51.100.7'"
                           " WHERE id = 9")
                  .ok());
  const storage::ChainVerification v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.broken_id, 9) << v.problem;
}

// The version is part of what a row claims: read under the other rule, an
// old row does not verify (so the test above is not passing by accident).
TEST_F(AuditOldChainTest, AnOldRowClaimingVersionTwoDoesNotVerify) {
  ASSERT_TRUE(
      db().Execute("UPDATE audit_events SET hash_version = 2 WHERE id = 3")
          .ok());
  const storage::ChainVerification v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.broken_id, 3) << v.problem;
}

// A release before chain lanes created a tenant with the head of lane 0
// only; while it still runs next to this one in an upgrade, such tenants
// keep appearing after the migration that adds the other lanes' heads.
// Their first transaction on each other lane creates that lane's head.
TEST_F(AuditOldChainTest, LanesWithoutAHeadGetOneOnTheirFirstAppend) {
  constexpr int64_t kPreLanes = 2;
  ASSERT_TRUE(db().Execute(absl::StrCat("INSERT INTO tenants (id, slug, name,"
                                        " created_at) VALUES (",
                                        kPreLanes,
                                        ", 'pre-lanes', 'Pre Lanes',"
                                        " UTC_TIMESTAMP(6))"))
                  .ok());
  ASSERT_TRUE(db().Execute(absl::StrCat("INSERT INTO audit_chain_heads"
                                        " (tenant_id, last_seq, last_hash)"
                                        " VALUES (",
                                        kPreLanes,
                                        ", 0, UNHEX(REPEAT('00',"
                                        " 32)))"))
                  .ok());
  auto heads = [&] {
    return db()
        .QueryValue(absl::StrCat(
            "SELECT COUNT(*) FROM audit_chain_heads WHERE tenant_id = ",
            kPreLanes))
        .value_or("error");
  };
  ASSERT_EQ(heads(), "1");
  // Transactions take the lanes 1..kTransactionChainLanes in turn, so this
  // many consecutive ones append once on every transaction lane.
  for (int i = 0; i < storage::kTransactionChainLanes; ++i) {
    InsertKey(kPreLanes, absl::StrFormat("preLanes%04d", i));
  }
  EXPECT_EQ(heads(), absl::StrCat(storage::kChainLaneCount));
  absl::StatusOr<storage::ChainVerification> v = audit().VerifyChain(kPreLanes);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->ok) << v->problem << " at id " << v->broken_id;
  EXPECT_EQ(v->rows_checked, storage::kTransactionChainLanes);
}

}  // namespace
}  // namespace lumo::testing
