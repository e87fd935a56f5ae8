// MysqlKeyStore against the real MariaDB. One database for the suite (made
// by the migrator); each test works in its own tenants, so tests do not see
// each other's rows.
#include "server/storage/mysql/mysql_key_store.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/crypto.h"
#include "server/storage/mysql/datetime.h"
#include "tests/storage/key_audit_event.h"
#include "tests/storage/mysql_grammar/statement_capture.h"
#include "tests/storage/status_testing.h"
#include "tests/storage/test_database.h"

namespace lumo::storage {
namespace {

using ::lumo::testing::TestDatabase;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;

using Rows = std::vector<std::vector<std::string>>;

// A plausible time from the database (not the zero absl::Time).
MATCHER(IsDatabaseTime, "") {
  return arg >
         absl::FromCivil(absl::CivilSecond(2020, 1, 1), absl::UTCTimeZone());
}

StoredSecret RandomSecret(int pepper_version = 1) {
  StoredSecret s;
  s.digest = core::Sha256(core::RandomBase62(43).value());
  s.pepper_version = pepper_version;
  return s;
}

std::string Hex(const core::Digest& d) {
  return core::HexEncode(core::AsStringView(d));
}

std::vector<std::string> Ids(const std::vector<ApiKeyRecord>& keys) {
  std::vector<std::string> ids;
  for (const ApiKeyRecord& k : keys) ids.push_back(k.id);
  return ids;
}

class MysqlKeyStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<TestDatabase>> db = TestDatabase::Create();
    if (!db.ok()) {
      setup_error_ = new std::string(db.status().ToString());
      return;
    }
    absl::StatusOr<std::unique_ptr<MysqlKeyStore>> store =
        MysqlKeyStore::Open((*db)->options());
    if (!store.ok()) {
      setup_error_ = new std::string(store.status().ToString());
      return;
    }
    db_ = db->release();
    store_ = store->release();
  }
  static void TearDownTestSuite() {
    delete store_;
    store_ = nullptr;
    delete db_;
    db_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(store_, nullptr) << *setup_error_; }

  static Tenant NewTenant() {
    static std::atomic<int> counter{0};
    std::string slug =
        absl::StrCat("t", counter++, "-",
                     absl::AsciiStrToLower(core::RandomBase62(8).value()));
    return store_
        ->CreateTenant(slug, absl::StrCat("Tenant ", slug), nullptr, {})
        .value();
  }

  static NewKey MakeKey(int64_t tenant_id, const std::string& name) {
    NewKey key;
    key.id = core::RandomBase62(12).value();
    key.tenant_id = tenant_id;
    key.name = name;
    key.scopes = {"admin:read", "admin:users"};
    key.created_by_type = "user";
    key.created_by_id = "user-1";
    key.secret = RandomSecret();
    return key;
  }

  static AuditEvent Event(const std::string& action,
                          const std::string& target_id) {
    return lumo::testing::KeyAuditEvent(action, target_id,
                                        R"({"source":"test"})");
  }

  // Inserts a key named `name` in `tenant_id` and returns it as stored.
  static ApiKeyRecord Insert(int64_t tenant_id, const std::string& name,
                             std::optional<absl::Time> expires_at = {}) {
    NewKey key = MakeKey(tenant_id, name);
    key.expires_at = expires_at;
    absl::Status s = store_->InsertKey(key, Event("api_key.created", key.id));
    EXPECT_TRUE(s.ok()) << s;
    return store_->GetKey(tenant_id, key.id).value();
  }

  static int64_t Count(const std::string& sql) {
    std::string value = db_->QueryValue(sql).value();
    int64_t n = -1;
    EXPECT_TRUE(absl::SimpleAtoi(value, &n)) << value;
    return n;
  }

  static int64_t AuditCount(int64_t tenant_id) {
    return Count(
        absl::StrCat("SELECT COUNT(*) FROM audit_events WHERE "
                     "tenant_id = ",
                     tenant_id));
  }
  static int64_t ChangeCount(int64_t tenant_id) {
    return Count(
        absl::StrCat("SELECT COUNT(*) FROM key_changes WHERE "
                     "tenant_id = ",
                     tenant_id));
  }
  static Rows Changes(const std::string& key_id) {
    return db_
        ->Query(absl::StrCat("SELECT change_type, key_version, tenant_id FROM "
                             "key_changes WHERE key_id = '",
                             key_id, "' ORDER BY seq"))
        .value();
  }
  static Rows AuditActions(const std::string& key_id) {
    return db_
        ->Query(absl::StrCat("SELECT action FROM audit_events WHERE "
                             "target_id = '",
                             key_id, "' ORDER BY id"))
        .value();
  }

  static TestDatabase* db_;
  static MysqlKeyStore* store_;
  static std::string* setup_error_;
};

TestDatabase* MysqlKeyStoreTest::db_ = nullptr;
MysqlKeyStore* MysqlKeyStoreTest::store_ = nullptr;
std::string* MysqlKeyStoreTest::setup_error_ = nullptr;

// ---------------------------------------------------------------------------
// Tenants

TEST_F(MysqlKeyStoreTest, CreateTenantThenGetBySlug) {
  ASSERT_OK_AND_ASSIGN(absl::Time now, store_->Now());
  ASSERT_OK_AND_ASSIGN(
      Tenant created,
      store_->CreateTenant("acme-corp-1", "Acme Corp", nullptr, {}));
  EXPECT_GT(created.id, 0);
  EXPECT_EQ(created.slug, "acme-corp-1");
  EXPECT_EQ(created.name, "Acme Corp");
  EXPECT_GE(created.created_at, now);
  ASSERT_OK_AND_ASSIGN(Tenant got, store_->GetTenantBySlug("acme-corp-1"));
  EXPECT_EQ(got.id, created.id);
  EXPECT_EQ(got.name, "Acme Corp");
  EXPECT_EQ(got.created_at, created.created_at);
}

TEST_F(MysqlKeyStoreTest, GetTenantBySlugOfUnknownSlugIsNotFound) {
  EXPECT_CODE(store_->GetTenantBySlug("no-such-tenant"),
              absl::StatusCode::kNotFound);
  // Slugs compare exactly.
  Tenant tenant = NewTenant();
  EXPECT_CODE(store_->GetTenantBySlug(absl::AsciiStrToUpper(tenant.slug)),
              absl::StatusCode::kNotFound);
}

TEST_F(MysqlKeyStoreTest, CreateTenantWithInitialKeyWritesEverythingAtOnce) {
  NewKey key = MakeKey(/*tenant_id=*/0, "bootstrap");
  std::vector<AuditEvent> events = {Event("tenant.created", ""),
                                    Event("api_key.created", key.id)};
  ASSERT_OK_AND_ASSIGN(
      Tenant tenant,
      store_->CreateTenant("initial-key-tenant", "Initial", &key, events));
  ASSERT_OK_AND_ASSIGN(ApiKeyRecord got, store_->GetKey(tenant.id, key.id));
  EXPECT_EQ(got.tenant_id, tenant.id);
  EXPECT_EQ(got.name, "bootstrap");
  EXPECT_THAT(Changes(key.id), ElementsAre(ElementsAre(
                                   "created", "1", std::to_string(tenant.id))));
  EXPECT_EQ(AuditCount(tenant.id), 2);
}

TEST_F(MysqlKeyStoreTest, DuplicateSlugIsAlreadyExistsAndWritesNothing) {
  Tenant first = NewTenant();
  NewKey key = MakeKey(0, "never stored");
  absl::StatusOr<Tenant> again = store_->CreateTenant(
      first.slug, "Other", &key, {Event("tenant.created", "")});
  EXPECT_CODE(again, absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Count(absl::StrCat("SELECT COUNT(*) FROM api_keys WHERE id = '",
                               key.id, "'")),
            0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit_events WHERE action = "
                  "'tenant.created' AND tenant_id NOT IN (SELECT id FROM "
                  "tenants)"),
            0);
}

TEST_F(MysqlKeyStoreTest, TooLongSlugIsInvalidArgument) {
  EXPECT_CODE(store_->CreateTenant(std::string(64, 'a'), "x", nullptr, {}),
              absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// Insert and get

TEST_F(MysqlKeyStoreTest, InsertThenGetRoundTripsEveryField) {
  Tenant tenant = NewTenant();
  ASSERT_OK_AND_ASSIGN(absl::Time before, store_->Now());
  NewKey key = MakeKey(tenant.id, "Déploiement CI ✓ 'quoted'; DROP TABLE x;--");
  key.scopes = {"admin:read", "admin:write"};
  key.allowed_cidrs = {"10.0.0.0/8", "2001:db8::/32"};
  key.rate_limit_per_minute = 600;
  key.created_by_type = "api_key";
  key.created_by_id = "AbCdEf123456";
  key.secret.pepper_version = 3;
  const absl::Time expires =
      absl::FromCivil(absl::CivilSecond(2031, 5, 6, 7, 8, 9),
                      absl::UTCTimeZone()) +
      absl::Microseconds(123456);
  key.expires_at = expires;
  ASSERT_OK(store_->InsertKey(key, Event("api_key.created", key.id)));

  ASSERT_OK_AND_ASSIGN(ApiKeyRecord got, store_->GetKey(tenant.id, key.id));
  EXPECT_EQ(got.id, key.id);
  EXPECT_EQ(got.tenant_id, tenant.id);
  EXPECT_EQ(got.name, key.name);
  EXPECT_THAT(got.scopes, ElementsAre("admin:read", "admin:write"));
  EXPECT_THAT(got.allowed_cidrs, ElementsAre("10.0.0.0/8", "2001:db8::/32"));
  EXPECT_EQ(got.rate_limit_per_minute, 600);
  EXPECT_FALSE(got.revoked);
  EXPECT_EQ(got.version, 1);
  EXPECT_EQ(got.created_by_type, "api_key");
  EXPECT_EQ(got.created_by_id, "AbCdEf123456");
  EXPECT_GE(got.created_at, before);
  EXPECT_LE(got.created_at, got.db_now);
  EXPECT_EQ(got.last_used_at, std::nullopt);
  EXPECT_EQ(got.expires_at, expires);
  EXPECT_EQ(got.rotated_at, std::nullopt);
  EXPECT_EQ(got.revoked_at, std::nullopt);
  EXPECT_EQ(got.previous_secret_valid_until, std::nullopt);
  EXPECT_THAT(got.db_now, IsDatabaseTime());

  ASSERT_OK_AND_ASSIGN(VerifyRecord verify, store_->LoadForVerify(key.id));
  EXPECT_EQ(verify.current.digest, key.secret.digest);
  EXPECT_EQ(verify.current.pepper_version, 3);
}

TEST_F(MysqlKeyStoreTest, EmptyListsRoundTripAsEmpty) {
  Tenant tenant = NewTenant();
  NewKey key = MakeKey(tenant.id, "no cidrs");
  key.allowed_cidrs.clear();
  ASSERT_OK(store_->InsertKey(key, Event("api_key.created", key.id)));
  ASSERT_OK_AND_ASSIGN(ApiKeyRecord got, store_->GetKey(tenant.id, key.id));
  EXPECT_THAT(got.allowed_cidrs, IsEmpty());
  EXPECT_EQ(got.rate_limit_per_minute, 0);
}

TEST_F(MysqlKeyStoreTest, InsertWritesOneChangeRowAndOneAuditEvent) {
  Tenant tenant = NewTenant();
  NewKey key = MakeKey(tenant.id, "audited");
  AuditEvent event = Event("api_key.created", key.id);
  event.suspicious = true;
  event.outcome = "success";
  event.ip_address = "2001:db8::1";
  event.user_agent = "curl/8.0";
  event.request_id = "req-42";
  event.metadata_json = R"({"name":"audited","scopes":["admin:read"]})";
  ASSERT_OK(store_->InsertKey(key, event));

  EXPECT_THAT(Changes(key.id), ElementsAre(ElementsAre(
                                   "created", "1", std::to_string(tenant.id))));
  ASSERT_OK_AND_ASSIGN(
      Rows audit,
      db_->Query(absl::StrCat(
          "SELECT tenant_id, action, category, actor_type, actor_id, "
          "target_type, target_id, outcome, suspicious, ip_address, "
          "user_agent, request_id, metadata, "
          "created_at <= UTC_TIMESTAMP(6) AND created_at > UTC_TIMESTAMP(6) "
          "- INTERVAL 1 MINUTE FROM audit_events WHERE tenant_id = ",
          tenant.id)));
  EXPECT_THAT(audit, ElementsAre(ElementsAre(
                         std::to_string(tenant.id), "api_key.created",
                         "api_keys", "user", "user-1", "api_key", key.id,
                         "success", "1", "2001:db8::1", "curl/8.0", "req-42",
                         event.metadata_json, "1")));
}

TEST_F(MysqlKeyStoreTest, DuplicateKeyIdIsAlreadyExistsInAnyTenant) {
  Tenant a = NewTenant();
  Tenant b = NewTenant();
  NewKey key = MakeKey(a.id, "first");
  ASSERT_OK(store_->InsertKey(key, Event("api_key.created", key.id)));

  NewKey same_tenant = key;
  same_tenant.name = "second";
  same_tenant.secret = RandomSecret();
  absl::Status s =
      store_->InsertKey(same_tenant, Event("api_key.created", key.id));
  EXPECT_CODE(s, absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(s.message()),
              Not(HasSubstr(Hex(same_tenant.secret.digest))));

  NewKey other_tenant = same_tenant;
  other_tenant.tenant_id = b.id;
  EXPECT_CODE(store_->InsertKey(other_tenant, Event("api_key.created", key.id)),
              absl::StatusCode::kAlreadyExists);

  // The failed inserts left nothing behind.
  EXPECT_EQ(AuditCount(a.id), 1);
  EXPECT_EQ(AuditCount(b.id), 0);
  EXPECT_EQ(ChangeCount(a.id), 1);
  EXPECT_EQ(ChangeCount(b.id), 0);
  ASSERT_OK_AND_ASSIGN(ApiKeyRecord got, store_->GetKey(a.id, key.id));
  EXPECT_EQ(got.name, "first");
}

TEST_F(MysqlKeyStoreTest, InsertIntoUnknownTenantIsNotFound) {
  NewKey key = MakeKey(/*tenant_id=*/987654321, "orphan");
  EXPECT_CODE(store_->InsertKey(key, Event("api_key.created", key.id)),
              absl::StatusCode::kNotFound);
  EXPECT_EQ(AuditCount(987654321), 0);
}

TEST_F(MysqlKeyStoreTest, InsertRejectsValuesTheSchemaCannotHold) {
  Tenant tenant = NewTenant();
  NewKey bad_id = MakeKey(tenant.id, "bad id");
  bad_id.id = "has space 12";
  EXPECT_CODE(store_->InsertKey(bad_id, Event("api_key.created", "")),
              absl::StatusCode::kInvalidArgument);

  NewKey long_name = MakeKey(tenant.id, std::string(101, 'n'));
  EXPECT_CODE(store_->InsertKey(long_name, Event("api_key.created", "")),
              absl::StatusCode::kInvalidArgument);

  NewKey far_future = MakeKey(tenant.id, "forever");
  far_future.expires_at = absl::InfiniteFuture();
  EXPECT_CODE(store_->InsertKey(far_future, Event("api_key.created", "")),
              absl::StatusCode::kInvalidArgument);

  NewKey bad_metadata = MakeKey(tenant.id, "bad metadata");
  AuditEvent event = Event("api_key.created", bad_metadata.id);
  event.metadata_json = "not json";
  EXPECT_CODE(store_->InsertKey(bad_metadata, event),
              absl::StatusCode::kInvalidArgument);
  // Rolled back: the key row of the failed transaction is gone too.
  EXPECT_CODE(store_->GetKey(tenant.id, bad_metadata.id),
              absl::StatusCode::kNotFound);
  EXPECT_EQ(ChangeCount(tenant.id), 0);
  EXPECT_EQ(AuditCount(tenant.id), 0);
}

TEST_F(MysqlKeyStoreTest, LongUserAgentIsCutToTheColumnWidth) {
  Tenant tenant = NewTenant();
  NewKey key = MakeKey(tenant.id, "ua");
  AuditEvent event = Event("api_key.created", key.id);
  event.user_agent = std::string(500, 'a') + std::string(100, 'e') + "\xc3\xa9";
  for (int i = 0; i < 20; ++i) event.user_agent += "\xc3\xa9";  // é
  ASSERT_OK(store_->InsertKey(key, event));
  EXPECT_EQ(Count(absl::StrCat("SELECT CHAR_LENGTH(user_agent) FROM "
                               "audit_events WHERE tenant_id = ",
                               tenant.id)),
            512);
}

TEST_F(MysqlKeyStoreTest, GetIsNotFoundForUnknownMalformedOrForeignIds) {
  Tenant a = NewTenant();
  Tenant b = NewTenant();
  ApiKeyRecord key = Insert(a.id, "mine");
  EXPECT_CODE(store_->GetKey(b.id, key.id), absl::StatusCode::kNotFound);
  EXPECT_CODE(store_->GetKey(a.id, "AAAAAAAAAAAA"),
              absl::StatusCode::kNotFound);
  EXPECT_CODE(store_->GetKey(a.id, ""), absl::StatusCode::kNotFound);
  EXPECT_CODE(store_->GetKey(a.id, key.id + " "), absl::StatusCode::kNotFound);
  EXPECT_CODE(store_->GetKey(a.id, "' OR '1'='1"), absl::StatusCode::kNotFound);
  // Ids are case-sensitive.
  std::string flipped = key.id;
  for (char& c : flipped) {
    c = absl::ascii_isupper(c) ? absl::ascii_tolower(c)
                               : absl::ascii_toupper(c);
  }
  if (flipped != key.id) {
    EXPECT_CODE(store_->GetKey(a.id, flipped), absl::StatusCode::kNotFound);
  }
}

// ---------------------------------------------------------------------------
// Tenant scoping

TEST_F(MysqlKeyStoreTest, EveryTenantScopedMethodIgnoresOtherTenantsKeys) {
  Tenant owner = NewTenant();
  Tenant other = NewTenant();
  ApiKeyRecord key = Insert(owner.id, "owned");
  const int64_t owner_audit = AuditCount(owner.id);

  EXPECT_CODE(store_->GetKey(other.id, key.id), absl::StatusCode::kNotFound);
  EXPECT_CODE(
      store_->RotateKey(other.id, key.id, RandomSecret(), absl::ZeroDuration(),
                        Event("api_key.rotated", key.id)),
      absl::StatusCode::kNotFound);
  EXPECT_CODE(
      store_->RevokeKey(other.id, key.id, Event("api_key.revoked", key.id)),
      absl::StatusCode::kNotFound);
  EXPECT_CODE(
      store_->DeleteKey(other.id, key.id, Event("api_key.deleted", key.id)),
      absl::StatusCode::kNotFound);
  ListKeysQuery query;
  query.search = key.id;
  ASSERT_OK_AND_ASSIGN(KeyPage page, store_->ListKeys(other.id, query));
  EXPECT_THAT(page.keys, IsEmpty());
  EXPECT_EQ(page.total, 0);

  // Nothing changed, nothing was written anywhere.
  ASSERT_OK_AND_ASSIGN(ApiKeyRecord after, store_->GetKey(owner.id, key.id));
  EXPECT_EQ(after.version, 1);
  EXPECT_FALSE(after.revoked);
  EXPECT_EQ(AuditCount(owner.id), owner_audit);
  EXPECT_EQ(AuditCount(other.id), 0);
  EXPECT_EQ(ChangeCount(other.id), 0);
  EXPECT_EQ(Count(absl::StrCat("SELECT COUNT(*) FROM api_key_retired_secrets "
                               "WHERE key_id = '",
                               key.id, "'")),
            0);
}

// ---------------------------------------------------------------------------
// List

TEST_F(MysqlKeyStoreTest, ListPagesThroughAllKeysWithTheTotal) {
  Tenant tenant = NewTenant();
  Tenant other = NewTenant();
  std::set<std::string> inserted;
  for (int i = 0; i < 7; ++i) {
    inserted.insert(Insert(tenant.id, absl::StrCat("key ", i)).id);
  }
  Insert(other.id, "someone else's");

  ListKeysQuery query;
  query.limit = 3;
  std::set<std::string> seen;
  for (int page_number = 1; page_number <= 3; ++page_number) {
    query.page = page_number;
    ASSERT_OK_AND_ASSIGN(KeyPage page, store_->ListKeys(tenant.id, query));
    EXPECT_EQ(page.total, 7);
    EXPECT_EQ(page.keys.size(), page_number < 3 ? 3u : 1u);
    for (const ApiKeyRecord& k : page.keys) {
      EXPECT_EQ(k.tenant_id, tenant.id);
      EXPECT_THAT(k.db_now, IsDatabaseTime());
      seen.insert(k.id);
    }
  }
  EXPECT_EQ(seen, inserted);

  query.page = 4;
  ASSERT_OK_AND_ASSIGN(KeyPage past_end, store_->ListKeys(tenant.id, query));
  EXPECT_THAT(past_end.keys, IsEmpty());
  EXPECT_EQ(past_end.total, 7);

  Tenant empty = NewTenant();
  query.page = 1;
  ASSERT_OK_AND_ASSIGN(KeyPage none, store_->ListKeys(empty.id, query));
  EXPECT_THAT(none.keys, IsEmpty());
  EXPECT_EQ(none.total, 0);
}

TEST_F(MysqlKeyStoreTest, ListRejectsOutOfRangePaging) {
  Tenant tenant = NewTenant();
  ListKeysQuery query;
  query.page = 0;
  EXPECT_CODE(store_->ListKeys(tenant.id, query),
              absl::StatusCode::kInvalidArgument);
  query.page = 1;
  query.limit = 0;
  EXPECT_CODE(store_->ListKeys(tenant.id, query),
              absl::StatusCode::kInvalidArgument);
  query.limit = 101;
  EXPECT_CODE(store_->ListKeys(tenant.id, query),
              absl::StatusCode::kInvalidArgument);
  query.limit = 100;
  query.page = 1000000;
  ASSERT_OK_AND_ASSIGN(KeyPage page, store_->ListKeys(tenant.id, query));
  EXPECT_THAT(page.keys, IsEmpty());
}

TEST_F(MysqlKeyStoreTest, ListSearchMatchesNameCaseInsensitivelyOrId) {
  Tenant tenant = NewTenant();
  ApiKeyRecord bot = Insert(tenant.id, "Deploy Bot");
  ApiKeyRecord ci = Insert(tenant.id, "deploy-ci");
  ApiKeyRecord backup = Insert(tenant.id, "Backup");

  ListKeysQuery query;
  query.search = "DEPLOY";
  ASSERT_OK_AND_ASSIGN(KeyPage page, store_->ListKeys(tenant.id, query));
  EXPECT_THAT(Ids(page.keys), UnorderedElementsAre(bot.id, ci.id));
  EXPECT_EQ(page.total, 2);

  // A piece of the id, and the display prefix `lmk_<id>`.
  query.search = backup.id.substr(3, 7);
  ASSERT_OK_AND_ASSIGN(page, store_->ListKeys(tenant.id, query));
  EXPECT_THAT(Ids(page.keys), ElementsAre(backup.id));
  query.search = absl::StrCat("lmk_", backup.id);
  ASSERT_OK_AND_ASSIGN(page, store_->ListKeys(tenant.id, query));
  EXPECT_THAT(Ids(page.keys), ElementsAre(backup.id));
  query.search = absl::StrCat("lmk_", backup.id.substr(0, 5));
  ASSERT_OK_AND_ASSIGN(page, store_->ListKeys(tenant.id, query));
  EXPECT_THAT(Ids(page.keys), ElementsAre(backup.id));
  // A whole key pasted into the box finds its record.
  query.search =
      absl::StrCat("lmk_", backup.id, "_", std::string(43, 'x'), "abcdef");
  ASSERT_OK_AND_ASSIGN(page, store_->ListKeys(tenant.id, query));
  EXPECT_THAT(Ids(page.keys), ElementsAre(backup.id));

  query.search = "no such key";
  ASSERT_OK_AND_ASSIGN(page, store_->ListKeys(tenant.id, query));
  EXPECT_THAT(page.keys, IsEmpty());
  EXPECT_EQ(page.total, 0);
}

TEST_F(MysqlKeyStoreTest, ListSearchTreatsWildcardsLiterally) {
  Tenant tenant = NewTenant();
  ApiKeyRecord percent = Insert(tenant.id, "100% coverage");
  Insert(tenant.id, "100 coverage");
  ApiKeyRecord underscore = Insert(tenant.id, "a_b");
  Insert(tenant.id, "axb");
  ApiKeyRecord backslash = Insert(tenant.id, "back\\slash");
  Insert(tenant.id, "back/slash");
  ApiKeyRecord bang = Insert(tenant.id, "bang!");
  ApiKeyRecord quote = Insert(tenant.id, "it's");

  const std::pair<std::string, std::string> cases[] = {
      {"%", percent.id},      {"0%", percent.id},   {"_", underscore.id},
      {"a_b", underscore.id}, {"\\", backslash.id}, {"k\\s", backslash.id},
      {"!", bang.id},         {"g!", bang.id},      {"'", quote.id},
  };
  for (const auto& [search, expected] : cases) {
    SCOPED_TRACE(search);
    ListKeysQuery query;
    query.search = search;
    ASSERT_OK_AND_ASSIGN(KeyPage page, store_->ListKeys(tenant.id, query));
    EXPECT_THAT(Ids(page.keys), ElementsAre(expected));
  }
}

TEST_F(MysqlKeyStoreTest, ListSortsByEveryFieldInBothDirections) {
  Tenant tenant = NewTenant();
  // Names, creation times, last use and expiry in unrelated orders, with
  // NULLs and a tie on last_used_at.
  struct Row {
    const char* name;
    const char* created_at;
    const char* last_used_at;  // nullptr: never
    const char* expires_at;    // nullptr: never
  };
  const Row rows[] = {
      {"delta", "2025-01-04 00:00:00.000001", "2025-02-01 00:00:00", nullptr},
      {"Alpha", "2025-01-02 00:00:00", nullptr, "2030-01-01 00:00:00"},
      {"charlie", "2025-01-05 00:00:00", "2025-02-01 00:00:00",
       "2029-01-01 00:00:00"},
      {"Bravo", "2025-01-01 00:00:00", "2025-03-01 00:00:00", nullptr},
      {"echo", "2025-01-03 00:00:00", nullptr, "2031-01-01 00:00:00"},
  };
  for (const Row& row : rows) {
    ApiKeyRecord key = Insert(tenant.id, row.name);
    auto value = [](const char* t) {
      return t == nullptr ? std::string("NULL") : absl::StrCat("'", t, "'");
    };
    ASSERT_OK(db_->Execute(absl::StrCat(
        "UPDATE api_keys SET created_at = ", value(row.created_at),
        ", last_used_at = ", value(row.last_used_at), ", expires_at = ",
        value(row.expires_at), " WHERE id = '", key.id, "'")));
  }
  ListKeysQuery all;
  all.limit = 100;
  ASSERT_OK_AND_ASSIGN(KeyPage everything, store_->ListKeys(tenant.id, all));
  std::vector<ApiKeyRecord> keys = everything.keys;
  ASSERT_EQ(keys.size(), 5u);

  // The expected order, ascending; descending is its exact reverse.
  auto expected = [&](KeySortField field) {
    std::vector<ApiKeyRecord> sorted = keys;
    auto key_of = [field](const ApiKeyRecord& k) {
      switch (field) {
        case KeySortField::kName:
          return std::make_pair(absl::Time(), absl::AsciiStrToLower(k.name));
        case KeySortField::kLastUsedAt:
          return std::make_pair(k.last_used_at.value_or(absl::InfinitePast()),
                                std::string());
        case KeySortField::kExpiresAt:
          return std::make_pair(k.expires_at.value_or(absl::InfiniteFuture()),
                                std::string());
        case KeySortField::kCreatedAt:
        default:
          return std::make_pair(k.created_at, std::string());
      }
    };
    std::sort(sorted.begin(), sorted.end(),
              [&](const ApiKeyRecord& a, const ApiKeyRecord& b) {
                auto ka = key_of(a);
                auto kb = key_of(b);
                if (ka != kb) return ka < kb;
                return a.id < b.id;
              });
    return Ids(sorted);
  };

  for (KeySortField field :
       {KeySortField::kCreatedAt, KeySortField::kName,
        KeySortField::kLastUsedAt, KeySortField::kExpiresAt}) {
    for (bool descending : {false, true}) {
      SCOPED_TRACE(absl::StrCat("field ", static_cast<int>(field),
                                descending ? " DESC" : " ASC"));
      ListKeysQuery query;
      query.sort_by = field;
      query.descending = descending;
      ASSERT_OK_AND_ASSIGN(KeyPage page, store_->ListKeys(tenant.id, query));
      std::vector<std::string> want = expected(field);
      if (descending) std::reverse(want.begin(), want.end());
      EXPECT_THAT(Ids(page.keys), ElementsAreArray(want));
    }
  }
  // Spot checks that do not depend on the helper above.
  ListKeysQuery by_created;
  by_created.sort_by = KeySortField::kCreatedAt;
  by_created.descending = false;
  ASSERT_OK_AND_ASSIGN(KeyPage page, store_->ListKeys(tenant.id, by_created));
  std::vector<std::string> names;
  for (const ApiKeyRecord& k : page.keys) names.push_back(k.name);
  EXPECT_THAT(names, ElementsAre("Bravo", "Alpha", "echo", "delta", "charlie"));
  ListKeysQuery by_expiry;
  by_expiry.sort_by = KeySortField::kExpiresAt;
  by_expiry.descending = false;
  ASSERT_OK_AND_ASSIGN(page, store_->ListKeys(tenant.id, by_expiry));
  names.clear();
  for (const ApiKeyRecord& k : page.keys) names.push_back(k.name);
  EXPECT_EQ(names[0], "charlie");  // expires soonest; never-expiring last
  EXPECT_EQ(names[2], "echo");
}

TEST_F(MysqlKeyStoreTest, ListFiltersByStatusUsingTheDatabaseClock) {
  Tenant tenant = NewTenant();
  ASSERT_OK_AND_ASSIGN(absl::Time now, store_->Now());
  ApiKeyRecord active = Insert(tenant.id, "active");
  ApiKeyRecord future =
      Insert(tenant.id, "expires later", now + absl::Hours(1));
  ApiKeyRecord expired = Insert(tenant.id, "expired", now - absl::Seconds(1));
  ApiKeyRecord revoked = Insert(tenant.id, "revoked");
  ApiKeyRecord revoked_expired =
      Insert(tenant.id, "revoked and expired", now - absl::Hours(1));
  ApiKeyRecord deleted = Insert(tenant.id, "deleted");
  ASSERT_OK(store_->RevokeKey(tenant.id, revoked.id,
                              Event("api_key.revoked", revoked.id)));
  ASSERT_OK(store_->RevokeKey(tenant.id, revoked_expired.id,
                              Event("api_key.revoked", revoked_expired.id)));
  ASSERT_OK(store_->DeleteKey(tenant.id, deleted.id,
                              Event("api_key.deleted", deleted.id)));

  auto list = [&](KeyStatusFilter status) {
    ListKeysQuery query;
    query.status = status;
    KeyPage page = store_->ListKeys(tenant.id, query).value();
    EXPECT_EQ(page.total, static_cast<int64_t>(page.keys.size()));
    return Ids(page.keys);
  };
  EXPECT_THAT(list(KeyStatusFilter::kAny),
              UnorderedElementsAre(active.id, future.id, expired.id, revoked.id,
                                   revoked_expired.id));
  EXPECT_THAT(list(KeyStatusFilter::kActive),
              UnorderedElementsAre(active.id, future.id));
  EXPECT_THAT(list(KeyStatusFilter::kRevoked),
              UnorderedElementsAre(revoked.id, revoked_expired.id));
  EXPECT_THAT(list(KeyStatusFilter::kExpired), ElementsAre(expired.id));
}

// ---------------------------------------------------------------------------
// Rotate

TEST_F(MysqlKeyStoreTest, RotateWithoutGraceRetiresTheOldSecretAtOnce) {
  Tenant tenant = NewTenant();
  NewKey key = MakeKey(tenant.id, "rotating");
  ASSERT_OK(store_->InsertKey(key, Event("api_key.created", key.id)));
  StoredSecret fresh = RandomSecret(2);

  ASSERT_OK_AND_ASSIGN(
      ApiKeyRecord rotated,
      store_->RotateKey(tenant.id, key.id, fresh, absl::ZeroDuration(),
                        Event("api_key.rotated", key.id)));
  EXPECT_EQ(rotated.version, 2);
  ASSERT_TRUE(rotated.rotated_at.has_value());
  EXPECT_THAT(rotated.db_now, IsDatabaseTime());
  EXPECT_EQ(*rotated.rotated_at, rotated.db_now);
  EXPECT_EQ(rotated.previous_secret_valid_until, std::nullopt);
  EXPECT_EQ(rotated.name, "rotating");
  EXPECT_EQ(rotated.scopes, key.scopes);

  ASSERT_OK_AND_ASSIGN(VerifyRecord verify, store_->LoadForVerify(key.id));
  EXPECT_EQ(verify.current.digest, fresh.digest);
  EXPECT_EQ(verify.current.pepper_version, 2);
  ASSERT_EQ(verify.retired.size(), 1u);
  EXPECT_EQ(verify.retired[0].secret.digest, key.secret.digest);
  EXPECT_EQ(verify.retired[0].secret.pepper_version, 1);
  EXPECT_EQ(verify.retired[0].valid_until, *rotated.rotated_at);
  EXPECT_LE(verify.retired[0].valid_until, verify.key.db_now);
  EXPECT_EQ(verify.key.previous_secret_valid_until, std::nullopt);
  EXPECT_EQ(verify.key.version, 2);

  ASSERT_OK_AND_ASSIGN(ApiKeyRecord got, store_->GetKey(tenant.id, key.id));
  EXPECT_EQ(got.rotated_at, rotated.rotated_at);
  EXPECT_EQ(got.version, 2);

  EXPECT_THAT(
      Changes(key.id),
      ElementsAre(ElementsAre("created", "1", std::to_string(tenant.id)),
                  ElementsAre("rotated", "2", std::to_string(tenant.id))));
  EXPECT_THAT(AuditActions(key.id),
              ElementsAre(ElementsAre("api_key.created"),
                          ElementsAre("api_key.rotated")));
}

TEST_F(MysqlKeyStoreTest, RotateWithGraceKeepsTheOldSecretUntilNowPlusGrace) {
  Tenant tenant = NewTenant();
  NewKey key = MakeKey(tenant.id, "graceful");
  ASSERT_OK(store_->InsertKey(key, Event("api_key.created", key.id)));

  ASSERT_OK_AND_ASSIGN(
      ApiKeyRecord rotated,
      store_->RotateKey(tenant.id, key.id, RandomSecret(), absl::Hours(1),
                        Event("api_key.rotated", key.id)));
  ASSERT_TRUE(rotated.rotated_at.has_value());
  const absl::Time until = *rotated.rotated_at + absl::Hours(1);
  EXPECT_EQ(rotated.previous_secret_valid_until, until);

  ASSERT_OK_AND_ASSIGN(VerifyRecord verify, store_->LoadForVerify(key.id));
  ASSERT_EQ(verify.retired.size(), 1u);
  EXPECT_EQ(verify.retired[0].secret.digest, key.secret.digest);
  EXPECT_EQ(verify.retired[0].valid_until, until);
  EXPECT_EQ(verify.key.previous_secret_valid_until, until);

  ASSERT_OK_AND_ASSIGN(ApiKeyRecord got, store_->GetKey(tenant.id, key.id));
  EXPECT_EQ(got.previous_secret_valid_until, until);

  // A second rotation without grace ends the first grace period (the
  // earlier secret is capped at the rotation time): the returned record
  // says so, as a read right after does.
  ASSERT_OK_AND_ASSIGN(
      ApiKeyRecord again,
      store_->RotateKey(tenant.id, key.id, RandomSecret(), absl::ZeroDuration(),
                        Event("api_key.rotated", key.id)));
  EXPECT_EQ(again.previous_secret_valid_until, std::nullopt);
  EXPECT_EQ(again.version, 3);
  ASSERT_OK_AND_ASSIGN(ApiKeyRecord reread, store_->GetKey(tenant.id, key.id));
  EXPECT_EQ(reread.previous_secret_valid_until, std::nullopt);
  ASSERT_OK_AND_ASSIGN(verify, store_->LoadForVerify(key.id));
  ASSERT_EQ(verify.retired.size(), 2u);
  EXPECT_EQ(verify.retired[1].valid_until, *again.rotated_at);
}

TEST_F(MysqlKeyStoreTest, RotateKeepsAtMostSixteenRetiredSecretsNewestFirst) {
  Tenant tenant = NewTenant();
  NewKey key = MakeKey(tenant.id, "often rotated");
  ASSERT_OK(store_->InsertKey(key, Event("api_key.created", key.id)));
  std::vector<core::Digest> secrets = {key.secret.digest};  // by version
  for (int i = 0; i < 20; ++i) {
    StoredSecret next = RandomSecret();
    ASSERT_OK(store_->RotateKey(tenant.id, key.id, next, absl::ZeroDuration(),
                                Event("api_key.rotated", key.id)));
    secrets.push_back(next.digest);
  }
  ASSERT_OK_AND_ASSIGN(VerifyRecord verify, store_->LoadForVerify(key.id));
  EXPECT_EQ(verify.key.version, 21);
  EXPECT_EQ(verify.current.digest, secrets[20]);
  ASSERT_EQ(verify.retired.size(), static_cast<size_t>(kMaxRetiredSecrets));
  for (int i = 0; i < kMaxRetiredSecrets; ++i) {
    EXPECT_EQ(verify.retired[i].secret.digest, secrets[19 - i]) << i;
  }
  EXPECT_EQ(Count(absl::StrCat("SELECT COUNT(*) FROM api_key_retired_secrets "
                               "WHERE key_id = '",
                               key.id, "'")),
            kMaxRetiredSecrets);
}

// A cold verification's read is planned without a temporary table:
// sorting the retired secrets in SQL, with TEXT columns in the select
// list, made MariaDB write an on-disk temporary table (a file created and
// removed) for every verification. Both verify reads are captured as sent
// and explained with the key's id in place of the parameters.
TEST_F(MysqlKeyStoreTest, VerifyReadsNeedNoTemporaryTable) {
  Tenant tenant = NewTenant();
  NewKey key = MakeKey(tenant.id, "explained");
  ASSERT_OK(store_->InsertKey(key, Event("api_key.created", key.id)));
  for (int i = 0; i < 2; ++i) {
    ASSERT_OK(store_->RotateKey(tenant.id, key.id, RandomSecret(),
                                absl::Hours(1),
                                Event("api_key.rotated", key.id)));
  }
  std::vector<std::string> reads;
  {
    // A store of its own: its connections prepare every statement afresh
    // (a connection that prepared one before reuses it unseen).
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<MysqlKeyStore> fresh,
                         MysqlKeyStore::Open(db_->options()));
    lumo::testing::StatementCapture capture;
    ASSERT_OK_AND_ASSIGN(VerifyRecord one, fresh->LoadForVerify(key.id));
    EXPECT_EQ(one.retired.size(), 2u);
    ASSERT_OK_AND_ASSIGN(std::vector<VerifyRecord> many,
                         fresh->LoadManyForVerify({key.id}));
    ASSERT_EQ(many.size(), 1u);
    EXPECT_EQ(many[0].retired.size(), 2u);
    for (const std::string& sql : capture.Statements()) {
      if (absl::StrContains(sql, "FROM api_keys k JOIN tenants t")) {
        reads.push_back(sql);
      }
    }
  }
  ASSERT_EQ(reads.size(), 2u);
  for (const std::string& sql : reads) {
    lumo::testing::IgnoreStatements explain_is_ours;
    const std::string bound =
        absl::StrReplaceAll(sql, {{"?", absl::StrCat("'", key.id, "'")}});
    ASSERT_OK_AND_ASSIGN(std::vector<std::vector<std::string>> plan,
                         db_->Query(absl::StrCat("EXPLAIN ", bound)));
    ASSERT_FALSE(plan.empty());
    for (const std::vector<std::string>& row : plan) {
      for (const std::string& column : row) {
        EXPECT_FALSE(absl::StrContains(column, "Using temporary"))
            << absl::StrJoin(row, " | ") << "\n"
            << sql;
      }
    }
  }
}

TEST_F(MysqlKeyStoreTest, PrunedSecretsDoNotExtendTheGracePeriod) {
  Tenant tenant = NewTenant();
  NewKey key = MakeKey(tenant.id, "long grace then many rotations");
  ASSERT_OK(store_->InsertKey(key, Event("api_key.created", key.id)));
  ASSERT_OK(store_->RotateKey(tenant.id, key.id, RandomSecret(),
                              absl::Hours(24 * 365),
                              Event("api_key.rotated", key.id)));
  absl::StatusOr<ApiKeyRecord> last;
  for (int i = 0; i < kMaxRetiredSecrets; ++i) {
    last = store_->RotateKey(tenant.id, key.id, RandomSecret(),
                             absl::ZeroDuration(),
                             Event("api_key.rotated", key.id));
    ASSERT_OK(last);
  }
  // The year-long grace belonged to the secret pruned by the last rotation.
  EXPECT_EQ(last->previous_secret_valid_until, std::nullopt);
  ASSERT_OK_AND_ASSIGN(ApiKeyRecord got, store_->GetKey(tenant.id, key.id));
  EXPECT_EQ(got.previous_secret_valid_until, std::nullopt);
}

TEST_F(MysqlKeyStoreTest, RotatingARevokedOrExpiredKeyIsFailedPrecondition) {
  Tenant tenant = NewTenant();
  ASSERT_OK_AND_ASSIGN(absl::Time now, store_->Now());
  ApiKeyRecord revoked = Insert(tenant.id, "revoked");
  ASSERT_OK(store_->RevokeKey(tenant.id, revoked.id,
                              Event("api_key.revoked", revoked.id)));
  ApiKeyRecord expired = Insert(tenant.id, "expired", now - absl::Minutes(1));
  const int64_t audit = AuditCount(tenant.id);
  const int64_t changes = ChangeCount(tenant.id);

  EXPECT_CODE(store_->RotateKey(tenant.id, revoked.id, RandomSecret(),
                                absl::ZeroDuration(),
                                Event("api_key.rotated", revoked.id)),
              absl::StatusCode::kFailedPrecondition);
  EXPECT_CODE(store_->RotateKey(tenant.id, expired.id, RandomSecret(),
                                absl::ZeroDuration(),
                                Event("api_key.rotated", expired.id)),
              absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(AuditCount(tenant.id), audit);
  EXPECT_EQ(ChangeCount(tenant.id), changes);
  EXPECT_EQ(store_->GetKey(tenant.id, expired.id)->version, 1);
}

TEST_F(MysqlKeyStoreTest, RotateRejectsANegativeGracePeriod) {
  Tenant tenant = NewTenant();
  ApiKeyRecord key = Insert(tenant.id, "k");
  EXPECT_CODE(
      store_->RotateKey(tenant.id, key.id, RandomSecret(), -absl::Seconds(1),
                        Event("api_key.rotated", key.id)),
      absl::StatusCode::kInvalidArgument);
}

TEST_F(MysqlKeyStoreTest, ConcurrentRotationsSerialiseOnTheRowLock) {
  Tenant tenant = NewTenant();
  NewKey key = MakeKey(tenant.id, "contended");
  ASSERT_OK(store_->InsertKey(key, Event("api_key.created", key.id)));

  constexpr int kThreads = 8;
  constexpr int kRotationsEach = 10;
  absl::Mutex mu;
  std::vector<int64_t> versions;
  std::map<int64_t, absl::Time> rotated_at;  // by version
  std::vector<absl::Status> errors;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kRotationsEach; ++i) {
        absl::StatusOr<ApiKeyRecord> r = store_->RotateKey(
            tenant.id, key.id, RandomSecret(), absl::ZeroDuration(),
            Event("api_key.rotated", key.id));
        absl::MutexLock lock(&mu);
        if (r.ok()) {
          versions.push_back(r->version);
          rotated_at[r->version] = r->rotated_at.value_or(absl::InfinitePast());
        } else {
          errors.push_back(r.status());
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();

  EXPECT_THAT(errors, IsEmpty());
  std::vector<int64_t> want;
  for (int v = 2; v <= 1 + kThreads * kRotationsEach; ++v) want.push_back(v);
  EXPECT_THAT(versions, UnorderedElementsAreArray(want));
  // Each rotation read the clock after it got the row lock, so rotation
  // times increase with the version.
  absl::Time previous = absl::InfinitePast();
  for (const auto& [version, at] : rotated_at) {
    EXPECT_GT(at, previous) << "version " << version;
    previous = at;
  }
  ASSERT_OK_AND_ASSIGN(VerifyRecord verify, store_->LoadForVerify(key.id));
  EXPECT_EQ(verify.key.version, 1 + kThreads * kRotationsEach);
  EXPECT_EQ(verify.retired.size(), static_cast<size_t>(kMaxRetiredSecrets));
  EXPECT_EQ(Count(absl::StrCat("SELECT COUNT(*) FROM api_key_retired_secrets "
                               "WHERE key_id = '",
                               key.id, "'")),
            kMaxRetiredSecrets);
  EXPECT_EQ(Count(absl::StrCat("SELECT COUNT(DISTINCT key_version) FROM "
                               "key_changes WHERE change_type = 'rotated' AND "
                               "key_id = '",
                               key.id, "'")),
            kThreads * kRotationsEach);
  EXPECT_EQ(Count(absl::StrCat("SELECT COUNT(*) FROM audit_events WHERE "
                               "action = 'api_key.rotated' AND tenant_id = ",
                               tenant.id)),
            kThreads * kRotationsEach);
}

// ---------------------------------------------------------------------------
// Revoke and delete

TEST_F(MysqlKeyStoreTest, RevokeIsPermanentAndIdempotent) {
  Tenant tenant = NewTenant();
  ApiKeyRecord key = Insert(tenant.id, "to revoke");

  ASSERT_OK_AND_ASSIGN(
      RevokeResult first,
      store_->RevokeKey(tenant.id, key.id, Event("api_key.revoked", key.id)));
  EXPECT_TRUE(first.changed);
  EXPECT_TRUE(first.key.revoked);
  EXPECT_EQ(first.key.version, 2);
  ASSERT_TRUE(first.key.revoked_at.has_value());
  EXPECT_EQ(*first.key.revoked_at, first.key.db_now);

  ASSERT_OK_AND_ASSIGN(
      RevokeResult second,
      store_->RevokeKey(tenant.id, key.id, Event("api_key.revoked", key.id)));
  EXPECT_FALSE(second.changed);
  EXPECT_TRUE(second.key.revoked);
  EXPECT_EQ(second.key.version, 2);
  EXPECT_EQ(second.key.revoked_at, first.key.revoked_at);
  EXPECT_THAT(second.key.db_now, IsDatabaseTime());

  EXPECT_THAT(AuditActions(key.id),
              ElementsAre(ElementsAre("api_key.created"),
                          ElementsAre("api_key.revoked")));
  EXPECT_THAT(
      Changes(key.id),
      ElementsAre(ElementsAre("created", "1", std::to_string(tenant.id)),
                  ElementsAre("revoked", "2", std::to_string(tenant.id))));
  ASSERT_OK_AND_ASSIGN(VerifyRecord verify, store_->LoadForVerify(key.id));
  EXPECT_TRUE(verify.key.revoked);
  EXPECT_FALSE(verify.deleted);
}

TEST_F(MysqlKeyStoreTest, DeleteHidesTheKeyButVerifyStillRecognisesIt) {
  Tenant tenant = NewTenant();
  ApiKeyRecord key = Insert(tenant.id, "to delete");
  ApiKeyRecord kept = Insert(tenant.id, "kept");

  ASSERT_OK(
      store_->DeleteKey(tenant.id, key.id, Event("api_key.deleted", key.id)));
  EXPECT_CODE(store_->GetKey(tenant.id, key.id), absl::StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(KeyPage page, store_->ListKeys(tenant.id, {}));
  EXPECT_THAT(Ids(page.keys), ElementsAre(kept.id));
  EXPECT_EQ(page.total, 1);

  ASSERT_OK_AND_ASSIGN(VerifyRecord verify, store_->LoadForVerify(key.id));
  EXPECT_TRUE(verify.deleted);
  EXPECT_EQ(verify.key.version, 2);
  EXPECT_EQ(verify.tenant_slug, tenant.slug);

  // Deleting again writes nothing and says so (the service answers
  // NOT_FOUND after the replicas acknowledged the deletion again); every
  // other mutation is NOT_FOUND and writes nothing.
  ASSERT_OK_AND_ASSIGN(
      DeleteResult again,
      store_->DeleteKey(tenant.id, key.id, Event("api_key.deleted", key.id)));
  EXPECT_FALSE(again.changed);
  EXPECT_EQ(again.version, 2);
  Tenant other = NewTenant();
  EXPECT_CODE(
      store_->DeleteKey(other.id, key.id, Event("api_key.deleted", key.id)),
      absl::StatusCode::kNotFound);
  EXPECT_CODE(
      store_->RevokeKey(tenant.id, key.id, Event("api_key.revoked", key.id)),
      absl::StatusCode::kNotFound);
  EXPECT_CODE(
      store_->RotateKey(tenant.id, key.id, RandomSecret(), absl::ZeroDuration(),
                        Event("api_key.rotated", key.id)),
      absl::StatusCode::kNotFound);
  EXPECT_THAT(AuditActions(key.id),
              ElementsAre(ElementsAre("api_key.created"),
                          ElementsAre("api_key.deleted")));
  EXPECT_THAT(
      Changes(key.id),
      ElementsAre(ElementsAre("created", "1", std::to_string(tenant.id)),
                  ElementsAre("deleted", "2", std::to_string(tenant.id))));
}

TEST_F(MysqlKeyStoreTest, ChangeFeedRecordsEveryMutationInOrder) {
  Tenant tenant = NewTenant();
  ApiKeyRecord key = Insert(tenant.id, "lifecycle");
  ASSERT_OK(store_->RotateKey(tenant.id, key.id, RandomSecret(),
                              absl::ZeroDuration(),
                              Event("api_key.rotated", key.id)));
  ASSERT_OK(
      store_->RevokeKey(tenant.id, key.id, Event("api_key.revoked", key.id)));
  ASSERT_OK(
      store_->DeleteKey(tenant.id, key.id, Event("api_key.deleted", key.id)));
  const std::string t = std::to_string(tenant.id);
  EXPECT_THAT(Changes(key.id), ElementsAre(ElementsAre("created", "1", t),
                                           ElementsAre("rotated", "2", t),
                                           ElementsAre("revoked", "3", t),
                                           ElementsAre("deleted", "4", t)));
  EXPECT_THAT(AuditActions(key.id),
              ElementsAre(ElementsAre("api_key.created"),
                          ElementsAre("api_key.rotated"),
                          ElementsAre("api_key.revoked"),
                          ElementsAre("api_key.deleted")));
  ASSERT_OK_AND_ASSIGN(
      Rows stamped,
      db_->Query(absl::StrCat("SELECT COUNT(*) FROM key_changes WHERE key_id "
                              "= '",
                              key.id,
                              "' AND created_at <= UTC_TIMESTAMP(6) AND "
                              "created_at > UTC_TIMESTAMP(6) - INTERVAL 1 "
                              "MINUTE")));
  EXPECT_THAT(stamped, ElementsAre(ElementsAre("4")));
}

// ---------------------------------------------------------------------------
// Verify lookups and the clock

TEST_F(MysqlKeyStoreTest, LoadForVerifyIsOneQueryAcrossTenants) {
  Tenant tenant = NewTenant();
  NewKey key = MakeKey(tenant.id, "hot path");
  key.allowed_cidrs = {"192.0.2.0/24"};
  ASSERT_OK(store_->InsertKey(key, Event("api_key.created", key.id)));
  ASSERT_OK(store_->RotateKey(tenant.id, key.id, RandomSecret(),
                              absl::Minutes(5),
                              Event("api_key.rotated", key.id)));
  ASSERT_OK(store_->LoadForVerify(key.id));  // prepares the statement

  const uint64_t before = store_->queries_executed();
  ASSERT_OK_AND_ASSIGN(VerifyRecord verify, store_->LoadForVerify(key.id));
  EXPECT_EQ(store_->queries_executed() - before, 1u);

  EXPECT_EQ(verify.key.id, key.id);
  EXPECT_EQ(verify.key.tenant_id, tenant.id);
  EXPECT_EQ(verify.tenant_slug, tenant.slug);
  EXPECT_FALSE(verify.deleted);
  EXPECT_THAT(verify.key.allowed_cidrs, ElementsAre("192.0.2.0/24"));
  EXPECT_THAT(verify.key.db_now, IsDatabaseTime());
  ASSERT_EQ(verify.retired.size(), 1u);
  EXPECT_GT(verify.retired[0].valid_until, verify.key.db_now);
  EXPECT_EQ(verify.key.previous_secret_valid_until,
            verify.retired[0].valid_until);
}

TEST_F(MysqlKeyStoreTest, LoadManyForVerifyIsOneQueryPerChunkOfIds) {
  Tenant tenant = NewTenant();
  Tenant other = NewTenant();
  NewKey key = MakeKey(tenant.id, "reported");
  NewKey elsewhere = MakeKey(other.id, "reported too");
  ASSERT_OK(store_->InsertKey(key, Event("api_key.created", key.id)));
  ASSERT_OK(
      store_->InsertKey(elsewhere, Event("api_key.created", elsewhere.id)));
  ASSERT_OK(store_->LoadManyForVerify({key.id}));  // prepares the statement

  // Two chunks of ids no key has, then the two keys (one repeated) and a
  // string that is no id: three chunks of distinct well-formed ids.
  constexpr int kChunk = MysqlKeyStore::kVerifyBatchChunk;
  std::vector<std::string> ids;
  for (int i = 0; i < 2 * kChunk; ++i) {
    ids.push_back(absl::StrCat("Mq", 1000000000 + i));
  }
  ids.insert(ids.end(), {key.id, "bad id!", elsewhere.id, key.id});
  uint64_t before = store_->queries_executed();
  ASSERT_OK_AND_ASSIGN(std::vector<VerifyRecord> records,
                       store_->LoadManyForVerify(ids));
  EXPECT_EQ(store_->queries_executed() - before, 3u);
  std::vector<std::string> found;
  for (const VerifyRecord& r : records) {
    found.push_back(absl::StrCat(r.key.id, "/", r.tenant_slug));
    EXPECT_THAT(r.key.db_now, IsDatabaseTime());
  }
  EXPECT_THAT(
      found, UnorderedElementsAre(absl::StrCat(key.id, "/", tenant.slug),
                                  absl::StrCat(elsewhere.id, "/", other.slug)));

  // Nothing that can be an id: no statement at all.
  before = store_->queries_executed();
  ASSERT_OK_AND_ASSIGN(records, store_->LoadManyForVerify({"bad id!", ""}));
  EXPECT_TRUE(records.empty());
  EXPECT_EQ(store_->queries_executed() - before, 0u);
}

// Mutations send their statements in batches (docs/benchmarks.md,
// "Statements per mutation"): the round trips of each, counted by the pool.
TEST_F(MysqlKeyStoreTest, MutationsSendTheirStatementsInAFewRoundTrips) {
  const Tenant tenant = NewTenant();
  const ApiKeyRecord warm = Insert(tenant.id, "warm");  // connection opened
  NewKey key = MakeKey(tenant.id, "counted");
  uint64_t before = store_->queries_executed();
  ASSERT_OK(store_->InsertKey(key, Event("api_key.created", key.id)));
  // START + key row + webhook endpoints + audit lane lock; audit row +
  // lane head + change row + COMMIT.
  EXPECT_EQ(store_->queries_executed() - before, 2u);

  before = store_->queries_executed();
  ASSERT_OK(store_->RotateKey(tenant.id, key.id, RandomSecret(), absl::Hours(1),
                              Event("api_key.rotated", key.id)));
  // START + key lock; retired secret + key row + its row count + webhook
  // endpoints + lane lock; audit row + head + change row + COMMIT.
  EXPECT_EQ(store_->queries_executed() - before, 3u);

  before = store_->queries_executed();
  ASSERT_OK(
      store_->RevokeKey(tenant.id, key.id, Event("api_key.revoked", key.id)));
  EXPECT_EQ(store_->queries_executed() - before, 3u);

  // What was written is what a read returns.
  ASSERT_OK_AND_ASSIGN(ApiKeyRecord got, store_->GetKey(tenant.id, key.id));
  EXPECT_TRUE(got.revoked);
  EXPECT_EQ(got.version, 3);
  EXPECT_EQ(Changes(key.id), (Rows{{"created", "1", absl::StrCat(tenant.id)},
                                   {"rotated", "2", absl::StrCat(tenant.id)},
                                   {"revoked", "3", absl::StrCat(tenant.id)}}));
  EXPECT_EQ(
      AuditActions(key.id),
      (Rows{{"api_key.created"}, {"api_key.rotated"}, {"api_key.revoked"}}));
  EXPECT_NE(warm.id, key.id);
}

// Values reach the database as literals inside batches: text that looks
// like SQL, quotes, backslashes and non-ASCII read back exactly.
TEST_F(MysqlKeyStoreTest, BatchedValuesReadBackExactly) {
  const Tenant tenant = NewTenant();
  NewKey key = MakeKey(tenant.id, "it's \\ a \"key\"; -- ? /* */ \xc3\xa9");
  key.external_id = "ext'; DROP TABLE api_keys; --";
  key.metadata = {{"k'1", "v\\1\n\xf0\x9f\x94\x91"}};
  ASSERT_OK(store_->InsertKey(key, Event("api_key.created", key.id)));
  ASSERT_OK_AND_ASSIGN(ApiKeyRecord got, store_->GetKey(tenant.id, key.id));
  EXPECT_EQ(got.name, key.name);
  EXPECT_EQ(got.external_id, key.external_id);
  EXPECT_EQ(got.metadata, key.metadata);
  EXPECT_EQ(got.scopes, key.scopes);

  KeyEdit edit;
  edit.name = std::string("renamed \\' ?");
  ASSERT_OK_AND_ASSIGN(UpdateResult updated,
                       store_->UpdateKey(tenant.id, key.id, got.version, edit,
                                         Event("api_key.updated", key.id)));
  ASSERT_OK_AND_ASSIGN(got, store_->GetKey(tenant.id, key.id));
  EXPECT_EQ(got.name, "renamed \\' ?");
  EXPECT_EQ(got.version, updated.key.version);
}

TEST_F(MysqlKeyStoreTest, LoadForVerifyOfUnknownIdIsNotFound) {
  EXPECT_CODE(store_->LoadForVerify("ZZZZZZZZZZZZ"),
              absl::StatusCode::kNotFound);
  EXPECT_CODE(store_->LoadForVerify("bad id!"), absl::StatusCode::kNotFound);
}

TEST_F(MysqlKeyStoreTest, NowIsTheDatabaseUtcClock) {
  ASSERT_OK_AND_ASSIGN(absl::Time a, store_->Now());
  ASSERT_OK_AND_ASSIGN(absl::Time b, store_->Now());
  EXPECT_LE(a, b);
  // The database runs on this machine: same clock, any time zone setting.
  EXPECT_LT(absl::AbsDuration(a - absl::Now()), absl::Seconds(30));
}

TEST_F(MysqlKeyStoreTest, DatabaseIsDurable) {
  ASSERT_OK_AND_ASSIGN(int flush, store_->FlushLogAtTrxCommit());
  EXPECT_EQ(flush, 1);  // tools/dev/mariadb.sh starts it that way
}

// ---------------------------------------------------------------------------
// Failure handling

class MysqlKeyStoreFaultTest : public MysqlKeyStoreTest {
 protected:
  // A store with its own pool (and, when asked, its own database, so that
  // killing "every connection of the database" hits only this store).
  static std::unique_ptr<MysqlKeyStore> OpenStore(const MysqlOptions& options) {
    return MysqlKeyStore::Open(options).value();
  }
};

TEST_F(MysqlKeyStoreFaultTest, RecoversTransparentlyAfterConnectionsAreKilled) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TestDatabase> db,
                       TestDatabase::Create());
  MysqlOptions options = db->options();
  options.pool_size = 4;
  std::unique_ptr<MysqlKeyStore> store = OpenStore(options);
  ASSERT_OK_AND_ASSIGN(Tenant tenant,
                       store->CreateTenant("killed", "Killed", nullptr, {}));
  NewKey key = MakeKey(tenant.id, "survivor");
  ASSERT_OK(store->InsertKey(key, Event("api_key.created", key.id)));
  {
    // Open all four connections.
    std::vector<ConnectionLease> leases;
    for (int i = 0; i < 4; ++i) {
      ASSERT_OK_AND_ASSIGN(ConnectionLease lease, store->pool()->Acquire());
      leases.push_back(std::move(lease));
    }
  }
  EXPECT_EQ(store->pool_stats().connections_open, 4);
  // At least the pool's four (sessions that are closing may still be
  // listed and get killed too).
  ASSERT_OK_AND_ASSIGN(int killed, db->KillOtherConnections());
  EXPECT_GE(killed, 4);

  // Reads and a mutation each succeed without the caller seeing the loss.
  ASSERT_OK_AND_ASSIGN(ApiKeyRecord got, store->GetKey(tenant.id, key.id));
  EXPECT_EQ(got.name, "survivor");
  ASSERT_OK_AND_ASSIGN(int killed_again, db->KillOtherConnections());
  EXPECT_GE(killed_again, 1);
  ASSERT_OK_AND_ASSIGN(
      ApiKeyRecord rotated,
      store->RotateKey(tenant.id, key.id, RandomSecret(), absl::ZeroDuration(),
                       Event("api_key.rotated", key.id)));
  EXPECT_EQ(rotated.version, 2);  // applied exactly once
  ASSERT_OK(db->KillOtherConnections());
  ASSERT_OK(store->LoadForVerify(key.id));
  EXPECT_GE(store->pool_stats().connections_discarded, 3u);
  ASSERT_OK_AND_ASSIGN(std::string rotations,
                       db->QueryValue("SELECT COUNT(*) FROM key_changes WHERE "
                                      "change_type = 'rotated'"));
  EXPECT_EQ(rotations, "1");
}

TEST_F(MysqlKeyStoreFaultTest, ExhaustedPoolIsUnavailableThenRecovers) {
  MysqlOptions options = db_->options();
  options.pool_size = 2;
  options.acquire_timeout = absl::Milliseconds(200);
  std::unique_ptr<MysqlKeyStore> store = OpenStore(options);
  Tenant tenant = NewTenant();
  ApiKeyRecord key = Insert(tenant.id, "busy");
  {
    std::vector<ConnectionLease> held;
    for (int i = 0; i < 2; ++i) {
      ASSERT_OK_AND_ASSIGN(ConnectionLease lease, store->pool()->Acquire());
      held.push_back(std::move(lease));
    }
    EXPECT_CODE(store->GetKey(tenant.id, key.id),
                absl::StatusCode::kUnavailable);
    EXPECT_CODE(
        store->RevokeKey(tenant.id, key.id, Event("api_key.revoked", key.id)),
        absl::StatusCode::kUnavailable);
    EXPECT_GE(store->pool_stats().acquire_timeouts, 2u);
  }
  ASSERT_OK(store->GetKey(tenant.id, key.id));
  EXPECT_EQ(AuditCount(tenant.id), 1);  // the refused revoke wrote nothing
}

TEST_F(MysqlKeyStoreFaultTest, LockWaitTimeoutIsDeadlineExceededAndRollsBack) {
  MysqlOptions options = db_->options();
  options.lock_wait_timeout_seconds = 1;
  std::unique_ptr<MysqlKeyStore> store = OpenStore(options);
  Tenant tenant = NewTenant();
  ApiKeyRecord key = Insert(tenant.id, "locked");

  // Another session holds the row lock.
  ASSERT_OK(db_->Execute("START TRANSACTION"));
  ASSERT_OK(db_->Query(absl::StrCat("SELECT id FROM api_keys WHERE id = '",
                                    key.id, "' FOR UPDATE")));
  const absl::Time start = absl::Now();
  EXPECT_CODE(
      store->RotateKey(tenant.id, key.id, RandomSecret(), absl::ZeroDuration(),
                       Event("api_key.rotated", key.id)),
      absl::StatusCode::kDeadlineExceeded);
  EXPECT_CODE(
      store->RevokeKey(tenant.id, key.id, Event("api_key.revoked", key.id)),
      absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  ASSERT_OK(db_->Execute("ROLLBACK"));

  // Nothing of the timed-out calls stayed; the key works normally.
  EXPECT_EQ(AuditCount(tenant.id), 1);
  EXPECT_EQ(ChangeCount(tenant.id), 1);
  ASSERT_OK_AND_ASSIGN(
      ApiKeyRecord rotated,
      store->RotateKey(tenant.id, key.id, RandomSecret(), absl::ZeroDuration(),
                       Event("api_key.rotated", key.id)));
  EXPECT_EQ(rotated.version, 2);
}

TEST_F(MysqlKeyStoreFaultTest, OpenFailsClearlyWhenTheDatabaseIsUnreachable) {
  MysqlOptions options = db_->options();
  options.port = 1;
  options.host = "127.0.0.1";
  options.unix_socket.clear();
  EXPECT_CODE(MysqlKeyStore::Open(options), absl::StatusCode::kUnavailable);

  options = db_->options();
  options.database = "lumo_no_such_database";
  EXPECT_CODE(MysqlKeyStore::Open(options), absl::StatusCode::kUnavailable);

  options.database.clear();
  EXPECT_CODE(MysqlKeyStore::Open(options), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lumo::storage
