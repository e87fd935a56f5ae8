// The pepper usage query and the coverage check on a real MariaDB: every
// kind of stored secret is counted under its pepper version as live or
// dead by the verifier's rules, deleted keys are not counted, and a pepper
// set that lacks a version is refused or warned about accordingly.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/pepper.h"
#include "server/service/pepper_coverage.h"
#include "server/storage/mysql/mysql_key_store.h"
#include "server/storage/mysql/mysql_pepper_usage_store.h"
#include "tests/storage/status_testing.h"
#include "tests/storage/test_database.h"

namespace lumo::storage {
namespace {

using ::lumo::testing::TestDatabase;
using ::testing::HasSubstr;

class PepperUsageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<TestDatabase>> db = TestDatabase::Create();
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    absl::StatusOr<std::unique_ptr<MysqlKeyStore>> keys =
        MysqlKeyStore::Open(db_->options());
    ASSERT_TRUE(keys.ok()) << keys.status();
    keys_ = *std::move(keys);
    usage_ = std::make_unique<MysqlPepperUsageStore>(keys_->shared_pool());
    ASSERT_OK(db_->Execute(
        "INSERT INTO tenants (id, slug, name, created_at)"
        " VALUES (1, 'pepper-usage', 'Pepper usage', UTC_TIMESTAMP(6))"));
  }

  // `state`: SQL for (revoked, expires_at, deleted_at).
  void Key(const std::string& id, int pepper_version,
           const std::string& state = "0, NULL, NULL") {
    ASSERT_OK(db_->Execute(absl::StrCat(
        "INSERT INTO api_keys (id, tenant_id, name, digest, pepper_version,"
        " scopes, allowed_cidrs, revoked, expires_at, deleted_at, version,"
        " created_by_type, created_by_id, created_at) VALUES ('",
        id, "', 1, '", id, "', RANDOM_BYTES(32), ", pepper_version,
        ", 'admin:read', '', ", state, ", 2, 'user', 'u', UTC_TIMESTAMP(6))")));
  }
  // A rotated-away secret of `key_id` valid until now + `valid_for`
  // (an SQL interval; negative: past its grace period).
  void Retired(const std::string& key_id, int key_version, int pepper_version,
               const std::string& valid_for) {
    ASSERT_OK(db_->Execute(absl::StrCat(
        "INSERT INTO api_key_retired_secrets (key_id, key_version, tenant_id,"
        " digest, pepper_version, retired_at, valid_until) VALUES ('",
        key_id, "', ", key_version, ", 1, RANDOM_BYTES(32), ", pepper_version,
        ", UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) + INTERVAL ", valid_for, ")")));
  }
  // An OAuth client; pepper_version 0 makes a public client (no secret).
  void Client(const std::string& id, int pepper_version, bool active = true) {
    const bool is_public = pepper_version == 0;
    ASSERT_OK(db_->Execute(absl::StrCat(
        "INSERT INTO oauth_clients (id, tenant_id, client_id, name,"
        " secret_digest, secret_pepper_version, redirect_uris,"
        " post_logout_redirect_uris, scopes, grant_types, response_types,"
        " application_type, token_endpoint_auth_method, is_public,"
        " pkce_required, is_active, created_via, created_by_type, created_at,"
        " updated_at) VALUES ('",
        id, "', 1, 'cli_", id, "', '", id, "', ",
        is_public ? "NULL, NULL"
                  : absl::StrCat("RANDOM_BYTES(32), ", pepper_version),
        ", '', '', '', 'client_credentials', '', 'web', '",
        is_public ? "none" : "client_secret_basic", "', ", is_public ? 1 : 0,
        ", 1, ", active ? 1 : 0,
        ", 'admin', 'system', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))")));
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<MysqlKeyStore> keys_;
  std::unique_ptr<MysqlPepperUsageStore> usage_;
};

TEST_F(PepperUsageStoreTest, EmptyDatabaseUsesNoVersion) {
  absl::StatusOr<std::vector<PepperVersionUsage>> usage = usage_->PepperUsage();
  ASSERT_OK(usage);
  EXPECT_TRUE(usage->empty());
}

TEST_F(PepperUsageStoreTest, CountsEverySecretUnderItsVersionAsLiveOrDead) {
  // Version 1: one of each kind.
  Key("liveKey00001", 1);
  Key("revokedKey01", 1, "1, NULL, NULL");
  Key("expiredKey01", 1, "0, UTC_TIMESTAMP(6) - INTERVAL 1 HOUR, NULL");
  Key("futureExp001", 1, "0, UTC_TIMESTAMP(6) + INTERVAL 1 HOUR, NULL");
  Key("deletedKey01", 1, "0, NULL, UTC_TIMESTAMP(6)");
  // Version 2 keys carrying version-1 rotated-away secrets.
  Key("rotatedKey01", 2);
  Retired("rotatedKey01", 1, 1, "1 DAY");      // live: in grace, live key
  Retired("liveKey00001", 1, 1, "-1 SECOND");  // dead: past its grace
  Key("rotRevoked01", 2, "1, NULL, NULL");
  Retired("rotRevoked01", 1, 1, "1 DAY");  // dead: its key is revoked
  Key("rotDeleted01", 2, "0, NULL, UTC_TIMESTAMP(6)");
  Retired("rotDeleted01", 1, 1, "1 DAY");  // not counted: key deleted
  // Version 3: OAuth client secrets (an inactive client counts as live);
  // a public client has no secret.
  Client("confidential01", 3);
  Client("inactiveCli001", 3, /*active=*/false);
  Client("publicClient01", 0);

  absl::StatusOr<std::vector<PepperVersionUsage>> usage = usage_->PepperUsage();
  ASSERT_OK(usage);
  ASSERT_EQ(usage->size(), 3u);
  const PepperVersionUsage& v1 = (*usage)[0];
  EXPECT_EQ(v1.version, 1);
  EXPECT_EQ(v1.live_keys, 2);             // liveKey00001, futureExp001
  EXPECT_EQ(v1.live_retired_secrets, 1);  // rotatedKey01's
  EXPECT_EQ(v1.client_secrets, 0);
  EXPECT_EQ(v1.dead_keys, 2);             // revokedKey01, expiredKey01
  EXPECT_EQ(v1.dead_retired_secrets, 2);  // liveKey00001's, rotRevoked01's
  const PepperVersionUsage& v2 = (*usage)[1];
  EXPECT_EQ(v2.version, 2);
  EXPECT_EQ(v2.live_keys, 1);  // rotatedKey01
  EXPECT_EQ(v2.dead_keys, 1);  // rotRevoked01
  EXPECT_EQ(
      v2.live_retired_secrets + v2.dead_retired_secrets + v2.client_secrets, 0);
  const PepperVersionUsage& v3 = (*usage)[2];
  EXPECT_EQ(v3.version, 3);
  EXPECT_EQ(v3.client_secrets, 2);
  EXPECT_EQ(v3.live_keys + v3.live_retired_secrets + v3.dead(), 0);
}

std::shared_ptr<const core::PepperSet> Peppers(const std::vector<int>& v) {
  std::string file;
  for (int version : v) {
    absl::StrAppend(&file, version, ":", std::string(64, 'a' + version % 6),
                    "\n");
  }
  return core::PepperSet::Parse(file).value();
}

TEST_F(PepperUsageStoreTest, CoverageRefusesASetMissingAVersionLiveSecretsUse) {
  Key("rotatedKey01", 2);
  Retired("rotatedKey01", 1, 1, "1 DAY");
  absl::StatusOr<service::PepperCoverage> coverage =
      service::CheckPepperCoverage(*Peppers({2}), *usage_);
  ASSERT_OK(coverage);
  EXPECT_TRUE(coverage->refused());
  EXPECT_THAT(coverage->RefusalMessage(),
              HasSubstr("pepper version 1 is missing from the pepper file but "
                        "live secrets use it (1 rotated-away secret in its "
                        "grace period)"));
  // With version 1 back, nothing is missing.
  coverage = service::CheckPepperCoverage(*Peppers({1, 2}), *usage_);
  ASSERT_OK(coverage);
  EXPECT_FALSE(coverage->refused());
  EXPECT_FALSE(coverage->degraded());
}

TEST_F(PepperUsageStoreTest,
       CoverageWarnsWhenOnlyDeadSecretsUseAMissingVersion) {
  Key("revokedKey01", 1, "1, NULL, NULL");
  Key("deletedKey01", 1, "0, NULL, UTC_TIMESTAMP(6)");
  Client("confidential01", 2);
  absl::StatusOr<service::PepperCoverage> coverage =
      service::CheckPepperCoverage(*Peppers({2}), *usage_);
  ASSERT_OK(coverage);
  EXPECT_FALSE(coverage->refused());
  EXPECT_TRUE(coverage->degraded());
  EXPECT_THAT(coverage->WarningMessage(),
              HasSubstr("pepper version 1 is missing from the pepper file and "
                        "dead secrets use it (1 revoked or expired key)"));
  // The client secret's version is the one that must stay.
  coverage = service::CheckPepperCoverage(*Peppers({1}), *usage_);
  ASSERT_OK(coverage);
  EXPECT_TRUE(coverage->refused());
  EXPECT_THAT(coverage->RefusalMessage(),
              HasSubstr("pepper version 2 is missing from the pepper file but "
                        "live secrets use it (1 OAuth client secret)"));
}

}  // namespace
}  // namespace lumo::storage
