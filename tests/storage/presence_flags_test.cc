// The presence flags of the MySQL backend (docs/storage.md "Presence
// flags"): the verification read names only the tables every key needs,
// and reads a key's named limits, quota and identity limits in a second
// statement only when the flags say the key may have them. A flag that is
// 0 must mean "no such row": these tests follow every path that adds or
// removes such rows, and the reconciliation of rows a server of an earlier
// release wrote without the flags.
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/crypto.h"
#include "server/storage/counter_store.h"
#include "server/storage/key_store.h"
#include "server/storage/mysql/mysql_backend.h"
#include "tests/storage/key_audit_event.h"
#include "tests/storage/mysql_grammar/statement_capture.h"
#include "tests/storage/mysql_test_backend.h"
#include "tests/storage/status_testing.h"

namespace lumo::storage {
namespace {

using ::lumo::testing::MysqlTestBackend;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class PresenceFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(backend_, MysqlTestBackend::Create());
    ASSERT_OK_AND_ASSIGN(
        Tenant tenant,
        keys().CreateTenant(
            absl::StrCat("flags-", core::RandomBase62(6).value()), "Flags",
            nullptr, {}));
    tenant_id_ = tenant.id;
  }

  KeyStore& keys() { return backend_->backend()->keys(); }
  CounterStore& counters() { return backend_->backend()->counters(); }
  lumo::testing::TestDatabase& db() { return backend_->db(); }

  static AuditEvent Event(const std::string& action, const std::string& id) {
    return lumo::testing::KeyAuditEvent(action, id);
  }

  NewKey MakeKey(const std::string& external_id = "") {
    NewKey key;
    key.id = core::RandomBase62(12).value();
    key.tenant_id = tenant_id_;
    key.name = "flagged";
    key.scopes = {"admin:read"};
    key.created_by_type = "user";
    key.created_by_id = "user-1";
    key.secret.digest.fill(7);
    key.secret.pepper_version = 1;
    key.external_id = external_id;
    return key;
  }

  std::string Insert(NewKey key) {
    const std::string id = key.id;
    absl::Status s = keys().InsertKey(key, Event("api_key.created", id));
    EXPECT_TRUE(s.ok()) << s;
    return id;
  }

  // Applies `edit` to the key at its current version.
  void Update(const std::string& id, const KeyEdit& edit) {
    ASSERT_OK_AND_ASSIGN(ApiKeyRecord key, keys().GetKey(tenant_id_, id));
    ASSERT_OK(keys()
                  .UpdateKey(tenant_id_, id, key.version, edit,
                             Event("api_key.updated", id))
                  .status());
  }

  // "has_limits has_quota" as stored.
  std::string KeyFlags(const std::string& id) {
    lumo::testing::IgnoreStatements ours;
    absl::StatusOr<std::vector<std::vector<std::string>>> rows = db().Query(
        absl::StrCat("SELECT has_limits, has_quota FROM api_keys WHERE id = '",
                     id, "'"));
    EXPECT_TRUE(rows.ok()) << rows.status();
    if (!rows.ok() || rows->size() != 1) return "no row";
    return absl::StrCat((*rows)[0][0], " ", (*rows)[0][1]);
  }
  std::string TenantFlag() {
    lumo::testing::IgnoreStatements ours;
    return db()
        .QueryValue(absl::StrCat(
            "SELECT has_identity_limits FROM tenants WHERE id = ", tenant_id_))
        .value_or("error");
  }
  void Exec(const std::string& sql) {
    lumo::testing::IgnoreStatements ours;
    ASSERT_OK(db().Execute(sql));
  }

  // Statements LoadForVerify sent for `id` (prepared ones included).
  uint64_t StatementsOfVerify(const std::string& id, VerifyRecord* out) {
    MysqlKeyStore& store = backend_->backend()->key_store();
    const uint64_t before = store.queries_executed();
    absl::StatusOr<VerifyRecord> record = keys().LoadForVerify(id);
    EXPECT_TRUE(record.ok()) << record.status();
    if (record.ok()) *out = *std::move(record);
    return store.queries_executed() - before;
  }

  std::unique_ptr<MysqlTestBackend> backend_;
  int64_t tenant_id_ = 0;
};

const KeyRateLimit kBurst{"burst", 10, absl::Seconds(1)};

// A key without limits, quota or identity limits is read by one statement
// that names none of their tables; each part a key has is read by a second
// statement that names only that part's table.
TEST_F(PresenceFlagsTest, TheVerifyReadNamesOnlyTheTablesOfTheKeysParts) {
  const std::string plain = Insert(MakeKey());
  NewKey with_limits = MakeKey();
  with_limits.rate_limits = {kBurst};
  const std::string limited = Insert(with_limits);
  NewKey with_quota = MakeKey();
  with_quota.quota = KeyQuota{5, 0, absl::ZeroDuration()};
  const std::string metered = Insert(with_quota);
  const std::string of_identity = Insert(MakeKey("customer-1"));
  ASSERT_OK(counters()
                .SetIdentityLimits(tenant_id_, "customer-1", {kBurst},
                                   [&](const std::vector<KeyRateLimit>&) {
                                     return Event("identity.limits_set",
                                                  "customer-1");
                                   })
                .status());
  // A key without an external id in a tenant with identity limits.
  const std::string no_identity = Insert(MakeKey());

  lumo::testing::StatementCapture capture;
  VerifyRecord record;
  EXPECT_EQ(StatementsOfVerify(plain, &record), 1u);
  EXPECT_THAT(record.key.rate_limits, IsEmpty());
  EXPECT_FALSE(record.key.quota.has_value());
  EXPECT_EQ(StatementsOfVerify(no_identity, &record), 1u);
  EXPECT_THAT(record.identity_limits, IsEmpty());
  EXPECT_EQ(StatementsOfVerify(limited, &record), 2u);
  EXPECT_THAT(record.key.rate_limits, ElementsAre(kBurst));
  EXPECT_EQ(StatementsOfVerify(metered, &record), 2u);
  ASSERT_TRUE(record.key.quota.has_value());
  EXPECT_EQ(record.key.quota->remaining, 5);
  EXPECT_EQ(StatementsOfVerify(of_identity, &record), 2u);
  EXPECT_THAT(record.identity_limits, ElementsAre(kBurst));

  // As the statements name them (a flag column's name contains one). The
  // capture holds every statement text the process sent (a set shared by
  // all captures): the verify read has one text, checked whatever sent it.
  const std::vector<std::string> rare_tables = {
      "FROM key_limits", "FROM key_quotas", "FROM identity_limits"};
  bool saw_verify_read = false;
  std::set<std::string> one_part_reads;
  for (const std::string& sql : capture.Statements()) {
    if (absl::StrContains(sql, "FROM api_keys k JOIN tenants t")) {
      for (const std::string& table : rare_tables) {
        EXPECT_FALSE(absl::StrContains(sql, table)) << sql;
      }
      // Nor the columns verification does not use (VerifyRecord::key).
      for (const char* unused :
           {"k.created_by", "k.revoked_at", "k.disabled_at"}) {
        EXPECT_FALSE(absl::StrContains(sql, unused)) << sql;
      }
      if (absl::EndsWith(sql, "WHERE k.id = ?")) saw_verify_read = true;
    } else if (absl::StartsWith(sql, "SELECT") &&
               absl::EndsWith(sql, "FROM api_keys k WHERE k.id = ?")) {
      std::string named;
      for (const std::string& table : rare_tables) {
        if (absl::StrContains(sql, table)) {
          named = named.empty() ? table : "several";
        }
      }
      if (named != "several") one_part_reads.insert(named);
    }
  }
  EXPECT_TRUE(saw_verify_read);
  EXPECT_EQ(one_part_reads,
            std::set<std::string>(rare_tables.begin(), rare_tables.end()));
}

// Every path that adds or removes a key's limits or quota, or a tenant's
// identity limits, writes the flag with it; the verify read follows.
TEST_F(PresenceFlagsTest, EveryPathThatAddsOrRemovesAPartWritesItsFlag) {
  NewKey key = MakeKey("customer-2");
  key.rate_limits = {kBurst};
  key.quota = KeyQuota{3, 0, absl::ZeroDuration()};
  const std::string id = Insert(key);
  EXPECT_EQ(KeyFlags(id), "1 1");
  const std::string bare = Insert(MakeKey("customer-2"));
  EXPECT_EQ(KeyFlags(bare), "0 0");

  // Limits edited away, then back, then an edit of something else.
  KeyEdit no_limits;
  no_limits.rate_limits = std::vector<KeyRateLimit>{};
  Update(id, no_limits);
  EXPECT_EQ(KeyFlags(id), "0 1");
  VerifyRecord record;
  StatementsOfVerify(id, &record);
  EXPECT_THAT(record.key.rate_limits, IsEmpty());
  KeyEdit limits;
  limits.rate_limits = std::vector<KeyRateLimit>{kBurst};
  Update(id, limits);
  EXPECT_EQ(KeyFlags(id), "1 1");
  KeyEdit rename;
  rename.name = "renamed";
  Update(id, rename);
  EXPECT_EQ(KeyFlags(id), "1 1");
  StatementsOfVerify(id, &record);
  EXPECT_THAT(record.key.rate_limits, ElementsAre(kBurst));

  // Quotas: cleared, set, removed through ChangeCredits, set through it.
  ASSERT_OK(counters().ClearQuota(id));
  EXPECT_EQ(KeyFlags(id), "1 0");
  StatementsOfVerify(id, &record);
  EXPECT_FALSE(record.key.quota.has_value());
  ASSERT_OK(counters().SetQuota(bare, 9, std::nullopt).status());
  EXPECT_EQ(KeyFlags(bare), "0 1");
  StatementsOfVerify(bare, &record);
  ASSERT_TRUE(record.key.quota.has_value());
  EXPECT_EQ(record.key.quota->remaining, 9);
  const auto audit = [&](const CreditsChange&) {
    return Event("api_key.credits_changed", bare);
  };
  ASSERT_OK(
      counters()
          .ChangeCredits(bare, CreditsUpdate{CreditsOp::kRemove, 0, {}}, audit)
          .status());
  EXPECT_EQ(KeyFlags(bare), "0 0");
  StatementsOfVerify(bare, &record);
  EXPECT_FALSE(record.key.quota.has_value());
  ASSERT_OK(
      counters()
          .ChangeCredits(bare, CreditsUpdate{CreditsOp::kSet, 4, {}}, audit)
          .status());
  EXPECT_EQ(KeyFlags(bare), "0 1");

  // Identity limits: set for two identities, cleared for one, then both.
  const auto identity_audit = [&](const std::vector<KeyRateLimit>&) {
    return Event("identity.limits_set", "customer");
  };
  EXPECT_EQ(TenantFlag(), "0");
  ASSERT_OK(
      counters()
          .SetIdentityLimits(tenant_id_, "customer-2", {kBurst}, identity_audit)
          .status());
  ASSERT_OK(
      counters()
          .SetIdentityLimits(tenant_id_, "customer-3", {kBurst}, identity_audit)
          .status());
  EXPECT_EQ(TenantFlag(), "1");
  StatementsOfVerify(bare, &record);
  EXPECT_THAT(record.identity_limits, ElementsAre(kBurst));
  ASSERT_OK(counters()
                .SetIdentityLimits(tenant_id_, "customer-2", {}, identity_audit)
                .status());
  EXPECT_EQ(TenantFlag(), "1");  // customer-3 still has limits
  StatementsOfVerify(bare, &record);
  EXPECT_THAT(record.identity_limits, IsEmpty());
  ASSERT_OK(counters()
                .SetIdentityLimits(tenant_id_, "customer-3", {}, identity_audit)
                .status());
  EXPECT_EQ(TenantFlag(), "0");
}

// Rows a server of the previous release adds (without the flags, during a
// rolling upgrade) are not read until the flags are reconciled, which every
// server does when it starts serving.
TEST_F(PresenceFlagsTest, ReconcilingSetsTheFlagsOfRowsWrittenWithoutThem) {
  const std::string id = Insert(MakeKey("customer-4"));
  // As the previous release writes them: rows alone.
  Exec(absl::StrCat(
      "INSERT INTO key_limits (key_id, tenant_id, name, limit_count,"
      " duration_ms) VALUES ('",
      id, "', ", tenant_id_, ", 'burst', 10, 1000)"));
  Exec(absl::StrCat(
      "INSERT INTO key_quotas (key_id, tenant_id, remaining, refill_amount,"
      " refill_interval_ms, period_start_us, epoch) VALUES ('",
      id, "', ", tenant_id_, ", 6, NULL, NULL, 0, 0)"));
  Exec(
      absl::StrCat("INSERT INTO identity_limits (tenant_id, external_id, name,"
                   " limit_count, duration_ms) VALUES (",
                   tenant_id_, ", 'customer-4', 'burst', 10, 1000)"));
  VerifyRecord record;
  EXPECT_EQ(StatementsOfVerify(id, &record), 1u);
  EXPECT_THAT(record.key.rate_limits, IsEmpty());  // the flags say none
  // So does a get, whose subqueries the flags guard.
  ASSERT_OK_AND_ASSIGN(ApiKeyRecord got, keys().GetKey(tenant_id_, id));
  EXPECT_THAT(got.rate_limits, IsEmpty());
  EXPECT_FALSE(got.quota.has_value());

  ASSERT_OK_AND_ASSIGN(int64_t corrected,
                       backend_->backend()->ReconcileDerivedState());
  EXPECT_EQ(corrected, 3);
  EXPECT_EQ(KeyFlags(id), "1 1");
  EXPECT_EQ(TenantFlag(), "1");
  EXPECT_EQ(StatementsOfVerify(id, &record), 2u);
  EXPECT_THAT(record.key.rate_limits, ElementsAre(kBurst));
  ASSERT_TRUE(record.key.quota.has_value());
  EXPECT_EQ(record.key.quota->remaining, 6);
  EXPECT_THAT(record.identity_limits, ElementsAre(kBurst));
  ASSERT_OK_AND_ASSIGN(got, keys().GetKey(tenant_id_, id));
  EXPECT_THAT(got.rate_limits, ElementsAre(kBurst));
  ASSERT_TRUE(got.quota.has_value());
  EXPECT_EQ(got.quota->remaining, 6);

  // Nothing left to correct.
  ASSERT_OK_AND_ASSIGN(corrected, backend_->backend()->ReconcileDerivedState());
  EXPECT_EQ(corrected, 0);
}

}  // namespace
}  // namespace lumo::storage
