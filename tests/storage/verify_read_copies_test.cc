// The copies the MySQL verification read uses instead of naming more
// tables (docs/storage.md "What the verification read names"): the tenant
// row's copy of its key policy. Every settings write keeps the copy equal
// to the settings row; a copy left stale by a server of an earlier release
// is corrected when a server starts serving (ReconcileDerivedState).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/core/crypto.h"
#include "server/storage/client_store.h"
#include "server/storage/key_store.h"
#include "server/storage/mysql/mysql_backend.h"
#include "tests/storage/mysql_grammar/statement_capture.h"
#include "tests/storage/mysql_test_backend.h"
#include "tests/storage/status_testing.h"

namespace lumo::storage {
namespace {

using ::lumo::testing::MysqlTestBackend;

class VerifyReadCopiesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(backend_, MysqlTestBackend::Create());
    ASSERT_OK_AND_ASSIGN(
        Tenant tenant,
        keys().CreateTenant(
            absl::StrCat("copies-", core::RandomBase62(6).value()), "Copies",
            nullptr, {}));
    tenant_id_ = tenant.id;
  }

  KeyStore& keys() { return backend_->backend()->keys(); }
  ClientStore& clients() { return backend_->backend()->clients(); }
  lumo::testing::TestDatabase& db() { return backend_->db(); }

  static AuditEvent Event(const std::string& action, const std::string& id) {
    AuditEvent e;
    e.action = action;
    e.category = "api_keys";
    e.actor_type = "user";
    e.actor_id = "user-1";
    e.target_type = "api_key";
    e.target_id = id;
    e.request_id = "req-1";
    e.metadata_json = "{}";
    return e;
  }

  std::string InsertKey() {
    NewKey key;
    key.id = core::RandomBase62(12).value();
    key.tenant_id = tenant_id_;
    key.name = "copied";
    key.scopes = {"admin:read"};
    key.created_by_type = "user";
    key.created_by_id = "user-1";
    key.secret.digest.fill(9);
    key.secret.pepper_version = 1;
    absl::Status s = keys().InsertKey(key, Event("api_key.created", key.id));
    EXPECT_TRUE(s.ok()) << s;
    return key.id;
  }

  KeyPolicy VerifyPolicy(const std::string& id) {
    absl::StatusOr<VerifyRecord> record = keys().LoadForVerify(id);
    EXPECT_TRUE(record.ok()) << record.status();
    return record.ok() ? record->policy : KeyPolicy();
  }

  void Exec(const std::string& sql) {
    lumo::testing::IgnoreStatements ours;
    ASSERT_OK(db().Execute(sql));
  }

  absl::StatusOr<int64_t> Reconcile() {
    return backend_->backend()->ReconcileDerivedState();
  }

  std::unique_ptr<MysqlTestBackend> backend_;
  int64_t tenant_id_ = 0;
};

KeyPolicy PolicyOf(bool require, int lifetime, int rotation, int warning,
                   int inactive) {
  KeyPolicy p;
  p.require_expiry = require;
  p.max_lifetime_days = lifetime;
  p.rotation_period_days = rotation;
  p.expiry_warning_days = warning;
  p.inactive_after_days = inactive;
  return p;
}

// The verification read names the tenant for its slug and takes the policy
// from the tenant row: every settings write, whichever members it sets,
// leaves the read equal to the settings the store returns.
TEST_F(VerifyReadCopiesTest, EverySettingsWriteReachesTheVerifyRead) {
  const std::string id = InsertKey();
  EXPECT_EQ(VerifyPolicy(id), KeyPolicy());  // no settings row: defaults

  lumo::testing::StatementCapture capture;
  SettingsUpdate all;
  all.key_require_expiry = true;
  all.key_max_lifetime_days = 3650;
  all.key_rotation_period_days = 90;
  all.key_expiry_warning_days = 0;
  all.key_inactive_after_days = 1;
  ASSERT_OK_AND_ASSIGN(
      TenantSettings settings,
      clients().UpdateSettings(tenant_id_, all,
                               Event("settings.updated", "settings"), nullptr));
  EXPECT_EQ(settings.key_policy, PolicyOf(true, 3650, 90, 0, 1));
  EXPECT_EQ(VerifyPolicy(id), settings.key_policy);

  // One member at a time, and a change of another setting alone.
  SettingsUpdate one;
  one.key_rotation_period_days = 30;
  ASSERT_OK_AND_ASSIGN(
      settings,
      clients().UpdateSettings(tenant_id_, one,
                               Event("settings.updated", "settings"), nullptr));
  EXPECT_EQ(VerifyPolicy(id), PolicyOf(true, 3650, 30, 0, 1));
  SettingsUpdate other;
  other.dynamic_registration_enabled = true;
  ASSERT_OK_AND_ASSIGN(
      settings,
      clients().UpdateSettings(tenant_id_, other,
                               Event("settings.updated", "settings"), nullptr));
  EXPECT_EQ(VerifyPolicy(id), PolicyOf(true, 3650, 30, 0, 1));
  SettingsUpdate back;
  back.key_require_expiry = false;
  back.key_max_lifetime_days = 0;
  back.key_rotation_period_days = 0;
  back.key_expiry_warning_days = 7;
  back.key_inactive_after_days = 0;
  ASSERT_OK_AND_ASSIGN(
      settings,
      clients().UpdateSettings(tenant_id_, back,
                               Event("settings.updated", "settings"), nullptr));
  EXPECT_EQ(VerifyPolicy(id), KeyPolicy());

  // The read names neither the settings table nor needs it.
  bool saw_verify_read = false;
  for (const std::string& sql : capture.Statements()) {
    if (absl::StrContains(sql, "FROM api_keys k JOIN tenants t") &&
        absl::EndsWith(sql, "WHERE k.id = ?")) {
      saw_verify_read = true;
      EXPECT_FALSE(absl::StrContains(sql, "tenant_settings")) << sql;
    }
  }
  EXPECT_TRUE(saw_verify_read);
}

// A settings row written as a server of the previous release writes it
// (without the copy) is not seen by the verification read until the
// copies are reconciled, which every server does when it starts serving;
// other tenants' copies are left alone.
TEST_F(VerifyReadCopiesTest, ReconcilingCopiesPoliciesWrittenWithoutTheCopy) {
  const std::string id = InsertKey();
  ASSERT_OK_AND_ASSIGN(
      Tenant other,
      keys().CreateTenant(absl::StrCat("other-", core::RandomBase62(6).value()),
                          "Other", nullptr, {}));
  SettingsUpdate others;
  others.key_max_lifetime_days = 400;
  ASSERT_OK(clients()
                .UpdateSettings(other.id, others,
                                Event("settings.updated", "settings"), nullptr)
                .status());
  ASSERT_OK_AND_ASSIGN(int64_t corrected, Reconcile());
  ASSERT_EQ(corrected, 0);

  // As the previous release writes it: the settings row alone.
  Exec(absl::StrCat(
      "INSERT INTO tenant_settings (tenant_id, dynamic_registration_enabled,"
      " dynamic_registration_require_api_key, key_require_expiry,"
      " key_max_lifetime_days, key_rotation_period_days,"
      " key_expiry_warning_days, key_inactive_after_days, leak_response,"
      " version, updated_at) VALUES (",
      tenant_id_, ", 0, 0, 1, 365, 60, 14, 120, 'revoke', 1, NOW(6))"));
  EXPECT_EQ(VerifyPolicy(id), KeyPolicy());

  ASSERT_OK_AND_ASSIGN(corrected, Reconcile());
  EXPECT_EQ(corrected, 1);
  EXPECT_EQ(VerifyPolicy(id), PolicyOf(true, 365, 60, 14, 120));
  ASSERT_OK_AND_ASSIGN(TenantSettings settings,
                       clients().GetSettings(tenant_id_));
  EXPECT_EQ(settings.key_policy, PolicyOf(true, 365, 60, 14, 120));

  // An edit of the previous release changes one member.
  Exec(
      absl::StrCat("UPDATE tenant_settings SET key_expiry_warning_days = 3,"
                   " version = version + 1 WHERE tenant_id = ",
                   tenant_id_));
  ASSERT_OK_AND_ASSIGN(corrected, Reconcile());
  EXPECT_EQ(corrected, 1);
  EXPECT_EQ(VerifyPolicy(id), PolicyOf(true, 365, 60, 3, 120));

  // Nothing left to correct; the other tenant's copy is its own.
  ASSERT_OK_AND_ASSIGN(corrected, Reconcile());
  EXPECT_EQ(corrected, 0);
  lumo::testing::IgnoreStatements ours;
  EXPECT_EQ(db()
                .QueryValue(absl::StrCat(
                    "SELECT key_max_lifetime_days FROM tenants WHERE id = ",
                    other.id))
                .value_or("error"),
            "400");
}

}  // namespace
}  // namespace lumo::storage
