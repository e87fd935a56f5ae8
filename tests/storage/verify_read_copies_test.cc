// The copies the MySQL verification read uses instead of naming more
// tables (docs/storage.md "What the verification read names"): the tenant
// row's copy of its key policy and the key row's copy of its retired
// secrets. Every write of this release keeps them equal to what they copy;
// a copy left stale by a server of an earlier release is corrected when a
// server starts serving (ReconcileDerivedState), and a retired secrets'
// copy that is not current or does not parse is never used: the read falls
// back to the table. The retired secrets are compared against that
// fallback, which reads the table as the verification read used to.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/crypto.h"
#include "server/storage/client_store.h"
#include "server/storage/key_store.h"
#include "server/storage/mysql/mysql_backend.h"
#include "server/storage/mysql/retired_copy.h"
#include "tests/storage/key_audit_event.h"
#include "tests/storage/mysql_grammar/statement_capture.h"
#include "tests/storage/mysql_test_backend.h"
#include "tests/storage/status_testing.h"

namespace lumo::storage {
namespace {

using ::lumo::testing::MysqlTestBackend;
using ::testing::SizeIs;

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
    return lumo::testing::KeyAuditEvent(action, id);
  }

  std::string InsertKey(int digest_from = 9) {
    NewKey key;
    key.id = core::RandomBase62(12).value();
    key.tenant_id = tenant_id_;
    key.name = "copied";
    key.scopes = {"admin:read"};
    key.created_by_type = "user";
    key.created_by_id = "user-1";
    key.secret = SecretFrom(digest_from);
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

  // The retired secrets as compared: digest bytes, pepper version and end
  // of grace, in the record's order.
  static std::string RetiredText(const VerifyRecord& record) {
    std::vector<std::string> parts;
    for (const RetiredSecret& r : record.retired) {
      parts.push_back(absl::StrCat(absl::StrJoin(r.secret.digest, ","), "/",
                                   r.secret.pepper_version, "/",
                                   absl::ToUnixMicros(r.valid_until)));
    }
    return absl::StrJoin(parts, " ");
  }

  // LoadForVerify of `id` and the statements it sent.
  VerifyRecord Load(const std::string& id, uint64_t* statements) {
    MysqlKeyStore& store = backend_->backend()->key_store();
    const uint64_t before = store.queries_executed();
    absl::StatusOr<VerifyRecord> record = keys().LoadForVerify(id);
    EXPECT_TRUE(record.ok()) << record.status();
    *statements = store.queries_executed() - before;
    return record.ok() ? *std::move(record) : VerifyRecord();
  }

  // What the key row says of its copy: "current" or "stale".
  std::string CopyState(const std::string& id) {
    lumo::testing::IgnoreStatements ours;
    return db()
        .QueryValue(absl::StrCat(
            "SELECT IF(retired_copy_version = version, 'current', 'stale')"
            " FROM api_keys WHERE id = '",
            id, "'"))
        .value_or("error");
  }

  // The key's retired secrets through its copy (one statement, the copy
  // current) and through the table (the copy marked not current for one
  // read, then marked current again): equal, with the same grace end.
  void ExpectCopyMatchesTable(const std::string& id, size_t retired) {
    ASSERT_EQ(CopyState(id), "current");
    uint64_t statements = 0;
    const VerifyRecord copied = Load(id, &statements);
    EXPECT_EQ(statements, 1u);
    Exec(
        absl::StrCat("UPDATE api_keys SET retired_copy_version = 0"
                     " WHERE id = '",
                     id, "'"));
    const VerifyRecord table = Load(id, &statements);
    EXPECT_EQ(statements, 2u);
    Exec(
        absl::StrCat("UPDATE api_keys SET retired_copy_version = version"
                     " WHERE id = '",
                     id, "'"));
    EXPECT_THAT(copied.retired, SizeIs(retired));
    EXPECT_EQ(RetiredText(copied), RetiredText(table));
    // The copy holds exactly the table's rows (the read keeps the newest
    // sixteen of whatever it holds, so a copy that kept pruned secrets
    // would read the same while it grew).
    lumo::testing::IgnoreStatements ours;
    const std::string raw =
        db().QueryValue(
                absl::StrCat("SELECT COALESCE(retired_copy, '0;') FROM api_keys"
                             " WHERE id = '",
                             id, "'"))
            .value_or("error");
    absl::StatusOr<std::vector<CopiedRetiredSecret>> entries =
        ParseRetiredCopy(raw);
    ASSERT_TRUE(entries.ok()) << raw;
    EXPECT_EQ(absl::StrCat(entries->size()),
              db().QueryValue(absl::StrCat(
                                  "SELECT COUNT(*) FROM api_key_retired_secrets"
                                  " WHERE key_id = '",
                                  id, "'"))
                  .value_or("error"));
    EXPECT_EQ(copied.key.previous_secret_valid_until,
              table.key.previous_secret_valid_until);
    EXPECT_EQ(copied.key.version, table.key.version);
  }

  // A digest whose bytes are `first`, first + 1, ... (mod 256).
  static StoredSecret SecretFrom(int first) {
    StoredSecret secret;
    for (size_t i = 0; i < secret.digest.size(); ++i) {
      secret.digest[i] = static_cast<uint8_t>((first + i) % 256);
    }
    secret.pepper_version = 1 + first % 3;
    return secret;
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

// A copy as MariaDB builds it (kRetiredCopyExpression), for the parser.
std::string CopyOf(const std::vector<CopiedRetiredSecret>& secrets) {
  std::vector<std::string> entries;
  for (const CopiedRetiredSecret& s : secrets) {
    std::string hex;
    for (uint8_t b : s.retired.secret.digest) {
      absl::StrAppend(&hex, absl::Hex(b, absl::kZeroPad2));
    }
    entries.push_back(
        absl::StrCat(s.key_version, "/", absl::AsciiStrToUpper(hex), "/",
                     s.retired.secret.pepper_version, "/",
                     absl::ToUnixMicros(s.retired.valid_until), "."));
  }
  return absl::StrCat(secrets.size(), ";", absl::StrJoin(entries, ","));
}

std::vector<CopiedRetiredSecret> SampleSecrets() {
  std::vector<CopiedRetiredSecret> secrets(8);
  for (int i = 0; i < 8; ++i) {
    for (size_t j = 0; j < 32; ++j) {
      secrets[i].retired.secret.digest[j] = static_cast<uint8_t>(i * 32 + j);
    }
    secrets[i].retired.secret.pepper_version = i == 7 ? 2147483647 : i;
    secrets[i].retired.valid_until = absl::FromUnixMicros(
        i == 6 ? 253402300799999999 : 1700000000123456 + i);
    secrets[i].key_version = i == 5 ? 9223372036854775807 : i + 1;
  }
  return secrets;
}

// Every byte value in the digests, the extremes of each number.
TEST(RetiredCopyTest, ParsesWhatMariaDbBuilds) {
  const std::vector<CopiedRetiredSecret> secrets = SampleSecrets();
  ASSERT_OK_AND_ASSIGN(std::vector<CopiedRetiredSecret> parsed,
                       ParseRetiredCopy(CopyOf(secrets)));
  ASSERT_THAT(parsed, SizeIs(secrets.size()));
  for (size_t i = 0; i < secrets.size(); ++i) {
    EXPECT_EQ(parsed[i].retired.secret.digest,
              secrets[i].retired.secret.digest);
    EXPECT_EQ(parsed[i].retired.secret.pepper_version,
              secrets[i].retired.secret.pepper_version);
    EXPECT_EQ(parsed[i].retired.valid_until, secrets[i].retired.valid_until);
    EXPECT_EQ(parsed[i].key_version, secrets[i].key_version);
  }
  ASSERT_OK_AND_ASSIGN(parsed, ParseRetiredCopy("0;"));
  EXPECT_THAT(parsed, SizeIs(0));
}

// What a rotation writes itself is what MariaDB would build.
TEST(RetiredCopyTest, FormatsAsMariaDbBuilds) {
  EXPECT_EQ(FormatRetiredCopy(SampleSecrets()), CopyOf(SampleSecrets()));
  EXPECT_EQ(FormatRetiredCopy({}), "0;");
}

// A copy cut anywhere short of its end, as GROUP_CONCAT cuts at its length
// limit (the count stays whole), is refused, not read as other secrets.
TEST(RetiredCopyTest, RefusesEveryCopyCutShort) {
  const std::string copy = CopyOf(SampleSecrets());
  const size_t semicolon = copy.find(';');
  for (size_t length = semicolon + 1; length < copy.size(); ++length) {
    EXPECT_FALSE(ParseRetiredCopy(copy.substr(0, length)).ok()) << length;
  }
  for (size_t length = 0; length <= semicolon; ++length) {
    EXPECT_FALSE(ParseRetiredCopy(copy.substr(0, length)).ok()) << length;
  }
}

TEST(RetiredCopyTest, RefusesAnythingElse) {
  const std::string hex(64, 'A');
  const std::string entry = absl::StrCat("2/", hex, "/1/1700000000000000.");
  for (const std::string& bad : std::vector<std::string>{
           "",
           ";",
           "x;",
           "-1;",
           "1;",
           "0;" + entry,
           "2;" + entry,
           "1;" + entry + ",",
           "2;" + entry + ",," + entry,
           "99999999999999999999;" + entry,
           "1;" + entry + entry,
           absl::StrCat("1;2/", std::string(64, 'a'), "/1/1."),
           absl::StrCat("1;2/", std::string(63, 'A'), "/1/1."),
           absl::StrCat("1;2/", std::string(65, 'A'), "/1/1."),
           absl::StrCat("1;2/", std::string(62, 'A'), "G0/1/1."),
           absl::StrCat("1;2/", hex, "/1/1"),
           absl::StrCat("1;2/", hex, "/1/1/."),
           absl::StrCat("1;2/", hex, "/1."),
           absl::StrCat("1;/", hex, "/1/1."),
           absl::StrCat("1;2x/", hex, "/1/1."),
           absl::StrCat("1;+2/", hex, "/1/1."),
           absl::StrCat("1;2/", hex, "/2147483648/1."),
           absl::StrCat("1;2/", hex, "/1/9223372036854775808."),
           absl::StrCat("1;2/", hex, "/1/ 1."),
           absl::StrCat(" 1;2/", hex, "/1/1."),
           std::string("1;2/\0", 1) + hex.substr(1) + "/1/1."}) {
    EXPECT_FALSE(ParseRetiredCopy(bad).ok()) << bad;
  }
}

// Rotations with and without grace (a grace-0 rotation caps the running
// ones), past the kMaxRetiredSecrets the key keeps, with digests covering
// every byte value, and a grace ended early: after each, the copy the
// verification read takes equals the table.
TEST_F(VerifyReadCopiesTest, RotationsAndGraceEndsBuildTheCopyAgain) {
  const std::string id = InsertKey(0);
  ExpectCopyMatchesTable(id, 0);
  const absl::Duration graces[] = {absl::Hours(2), absl::Hours(1),
                                   absl::ZeroDuration(), absl::Hours(3),
                                   absl::Minutes(5)};
  // Rotation i's new secret; the first eight digests (the key's own and
  // seven rotations') hold every byte value between them.
  auto secret = [](int i) { return SecretFrom(i * 32 + i / 8); };
  for (int i = 1; i <= kMaxRetiredSecrets + 4; ++i) {
    ASSERT_OK(keys()
                  .RotateKey(tenant_id_, id, secret(i), graces[i % 5],
                             RotateOptions(), Event("api_key.rotated", id))
                  .status());
    ExpectCopyMatchesTable(id, std::min(i, kMaxRetiredSecrets));
  }
  // End the grace of the newest retired secret (retired by the last
  // rotation, with 2 h).
  ASSERT_OK_AND_ASSIGN(
      UpdateResult ended,
      keys().EndRetiredSecretGrace(tenant_id_, id,
                                   secret(kMaxRetiredSecrets + 3).digest,
                                   Event("api_key.updated", id)));
  EXPECT_TRUE(ended.changed);
  ExpectCopyMatchesTable(id, kMaxRetiredSecrets);
}

// Mutations that leave the retired secrets alone carry the copy along
// (one statement after each); so does deleting the key.
TEST_F(VerifyReadCopiesTest, OtherMutationsKeepTheCopyCurrent) {
  const std::string id = InsertKey(1);
  ASSERT_OK(keys()
                .RotateKey(tenant_id_, id, SecretFrom(100), absl::Hours(1),
                           RotateOptions(), Event("api_key.rotated", id))
                .status());
  ExpectCopyMatchesTable(id, 1);
  ASSERT_OK_AND_ASSIGN(ApiKeyRecord key, keys().GetKey(tenant_id_, id));
  KeyEdit edit;
  edit.name = "renamed";
  ASSERT_OK(keys()
                .UpdateKey(tenant_id_, id, key.version, edit,
                           Event("api_key.updated", id))
                .status());
  ExpectCopyMatchesTable(id, 1);
  ASSERT_OK(
      keys()
          .SetKeyDisabled(tenant_id_, id, true, Event("api_key.disabled", id))
          .status());
  ExpectCopyMatchesTable(id, 1);
  ASSERT_OK(
      keys()
          .SetKeyDisabled(tenant_id_, id, false, Event("api_key.enabled", id))
          .status());
  ExpectCopyMatchesTable(id, 1);
  ASSERT_OK(
      keys().RevokeKey(tenant_id_, id, Event("api_key.revoked", id)).status());
  ExpectCopyMatchesTable(id, 1);
  ASSERT_OK(
      keys().DeleteKey(tenant_id_, id, Event("api_key.deleted", id)).status());
  ExpectCopyMatchesTable(id, 1);
}

// A rotation as a server of the previous release writes it (the retired
// secret and the key row, no copy) leaves the copy not current: the read
// takes the secrets from the table (two statements) until the copies are
// reconciled, which builds it under the key's row lock.
TEST_F(VerifyReadCopiesTest, ACopyLeftStaleIsNotUsedUntilReconciled) {
  const std::string id = InsertKey(2);
  const std::string untouched = InsertKey(3);
  ASSERT_OK(keys()
                .RotateKey(tenant_id_, id, SecretFrom(200), absl::Hours(1),
                           RotateOptions(), Event("api_key.rotated", id))
                .status());
  ASSERT_OK_AND_ASSIGN(int64_t corrected, Reconcile());
  ASSERT_EQ(corrected, 0);

  // As the previous release rotates: version 2 -> 3, secret 200 retired.
  Exec(absl::StrCat(
      "INSERT INTO api_key_retired_secrets (key_id, key_version, tenant_id,"
      " digest, pepper_version, retired_at, valid_until) SELECT id, version,"
      " tenant_id, digest, pepper_version, UTC_TIMESTAMP(6),"
      " UTC_TIMESTAMP(6) + INTERVAL 1 HOUR FROM api_keys WHERE id = '",
      id, "'"));
  Exec(
      absl::StrCat("UPDATE api_keys SET digest = UNHEX(REPEAT('AB', 32)),"
                   " version = version + 1 WHERE id = '",
                   id, "'"));
  EXPECT_EQ(CopyState(id), "stale");
  uint64_t statements = 0;
  VerifyRecord record = Load(id, &statements);
  EXPECT_EQ(statements, 2u);
  ASSERT_THAT(record.retired, SizeIs(2));
  EXPECT_EQ(record.retired[0].secret.digest, SecretFrom(200).digest);
  // A get reads the grace from the table too (its guard skips the table
  // only for a current copy with no secrets).
  ASSERT_OK_AND_ASSIGN(ApiKeyRecord got, keys().GetKey(tenant_id_, id));
  EXPECT_EQ(got.previous_secret_valid_until,
            record.key.previous_secret_valid_until);
  EXPECT_TRUE(got.previous_secret_valid_until.has_value());

  // The batch read takes the same path.
  ASSERT_OK_AND_ASSIGN(std::vector<VerifyRecord> many,
                       keys().LoadManyForVerify({id, untouched}));
  ASSERT_THAT(many, SizeIs(2));
  for (const VerifyRecord& r : many) {
    EXPECT_EQ(RetiredText(r), r.key.id == id ? RetiredText(record) : "");
  }

  ASSERT_OK_AND_ASSIGN(corrected, Reconcile());
  EXPECT_EQ(corrected, 1);
  ExpectCopyMatchesTable(id, 2);
  const VerifyRecord after = Load(id, &statements);
  EXPECT_EQ(RetiredText(after), RetiredText(record));
  ASSERT_OK_AND_ASSIGN(corrected, Reconcile());
  EXPECT_EQ(corrected, 0);

  // Stale again; a rotation of this release then builds the copy from the
  // table (it cannot start from a copy that is not current).
  Exec(absl::StrCat("UPDATE api_keys SET version = version + 1 WHERE id = '",
                    id, "'"));
  EXPECT_EQ(CopyState(id), "stale");
  ASSERT_OK(keys()
                .RotateKey(tenant_id_, id, SecretFrom(210),
                           absl::ZeroDuration(), RotateOptions(),
                           Event("api_key.rotated", id))
                .status());
  ExpectCopyMatchesTable(id, 3);
}

// A current copy that does not parse is never taken: the read falls back
// to the table.
TEST_F(VerifyReadCopiesTest, ACopyThatDoesNotParseFallsBackToTheTable) {
  const std::string id = InsertKey(4);
  ASSERT_OK(keys()
                .RotateKey(tenant_id_, id, SecretFrom(150), absl::Hours(1),
                           RotateOptions(), Event("api_key.rotated", id))
                .status());
  uint64_t statements = 0;
  const VerifyRecord good = Load(id, &statements);
  ASSERT_EQ(statements, 1u);
  ASSERT_THAT(good.retired, SizeIs(1));
  for (const char* bad : {"", "1;", "2;garbage.", "1;1/00/1/1."}) {
    Exec(absl::StrCat("UPDATE api_keys SET retired_copy = '", bad,
                      "' WHERE id = '", id, "'"));
    const VerifyRecord read = Load(id, &statements);
    EXPECT_EQ(statements, 2u) << bad;
    EXPECT_EQ(RetiredText(read), RetiredText(good)) << bad;
  }
}

}  // namespace
}  // namespace lumo::storage
