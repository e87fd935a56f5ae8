// MysqlClientStore, and ClientService / RegistrationService over it,
// against the real MariaDB. One database for the suite; each test works in
// its own tenants.
#include "server/storage/mysql/mysql_client_store.h"

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/crypto.h"
#include "server/core/pepper.h"
#include "server/rpc/status.h"
#include "server/service/client_service.h"
#include "server/service/key_service.h"
#include "server/service/registration_service.h"
#include "server/storage/mysql/connection_pool.h"
#include "server/storage/mysql/mysql_key_store.h"
#include "tests/storage/status_testing.h"
#include "tests/storage/test_database.h"

namespace lumo::storage {
namespace {

using ::lumo::testing::TestDatabase;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kPepper[] =
    "1:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";

class MysqlClientStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    InitMysqlDriver();
    absl::StatusOr<std::unique_ptr<TestDatabase>> db = TestDatabase::Create();
    if (!db.ok()) {
      setup_error_ = new std::string(db.status().ToString());
      return;
    }
    absl::StatusOr<std::unique_ptr<MysqlKeyStore>> keys =
        MysqlKeyStore::Open((*db)->options());
    if (!keys.ok()) {
      setup_error_ = new std::string(keys.status().ToString());
      return;
    }
    db_ = db->release();
    keys_ = keys->release();
    store_ = new MysqlClientStore(keys_->shared_pool());
  }
  static void TearDownTestSuite() {
    delete store_;
    delete keys_;
    delete db_;
    store_ = nullptr;
    keys_ = nullptr;
    db_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(store_, nullptr) << *setup_error_; }

  static Tenant NewTenant() {
    static std::atomic<int> counter{0};
    std::string slug =
        absl::StrCat("c", counter++, "-",
                     absl::AsciiStrToLower(core::RandomBase62(8).value()));
    return keys_->CreateTenant(slug, slug, nullptr, {}).value();
  }

  static NewClient MakeClient(int64_t tenant_id, bool is_public = false) {
    NewClient c;
    c.id = core::RandomBase62(16).value();
    c.tenant_id = tenant_id;
    c.client_id = "cli_" + core::RandomBase62(24).value();
    c.fields.name = "App";
    c.fields.redirect_uris = {"https://app.example.com/cb",
                              "http://localhost:8080/cb"};
    c.fields.scopes = {"openid", "profile"};
    c.fields.grant_types = {"authorization_code", "refresh_token"};
    c.fields.response_types = {"code"};
    if (is_public) {
      c.fields.token_endpoint_auth_method = "none";
    } else {
      StoredSecret s;
      s.digest = core::Sha256(core::RandomBase62(43).value());
      s.pepper_version = 1;
      c.secret = s;
    }
    c.created_by_type = "api_key";
    c.created_by_id = "key1";
    return c;
  }

  static AuditEvent Event(const std::string& action, const std::string& id) {
    AuditEvent e;
    e.action = action;
    e.category = "clients";
    e.actor_type = "api_key";
    e.actor_id = "key1";
    e.target_type = "oauth_client";
    e.target_id = id;
    e.metadata_json = "{}";
    return e;
  }

  static int64_t Count(const std::string& sql) {
    std::string value = db_->QueryValue(sql).value();
    int64_t n = -1;
    EXPECT_TRUE(absl::SimpleAtoi(value, &n)) << value;
    return n;
  }
  static int64_t AuditCount(int64_t tenant_id, const std::string& action,
                            const std::string& target_id) {
    return Count(absl::StrCat(
        "SELECT COUNT(*) FROM audit_events WHERE tenant_id = ", tenant_id,
        " AND action = '", action, "' AND target_id = '", target_id, "'"));
  }
  static int64_t AuditTotal(int64_t tenant_id) {
    return Count(absl::StrCat(
        "SELECT COUNT(*) FROM audit_events WHERE tenant_id = ", tenant_id));
  }

  // Every value of every table, as text.
  static std::string DumpAllTables() {
    std::string dump;
    auto tables = db_->Query("SHOW TABLES").value();
    for (const auto& row : tables) {
      auto rows = db_->Query("SELECT * FROM `" + row[0] + "`").value();
      for (const auto& r : rows) {
        for (const auto& v : r) absl::StrAppend(&dump, v, "\t");
        dump += "\n";
      }
    }
    return dump;
  }

  static inline std::string* setup_error_ = nullptr;
  static inline TestDatabase* db_ = nullptr;
  static inline MysqlKeyStore* keys_ = nullptr;
  static inline MysqlClientStore* store_ = nullptr;
};

TEST_F(MysqlClientStoreTest, InsertThenGetByRecordIdOrClientId) {
  Tenant t = NewTenant();
  NewClient c = MakeClient(t.id);
  c.fields.post_logout_redirect_uris = {"https://app.example.com/bye"};
  c.fields.client_uri = "https://app.example.com";
  ASSERT_OK(store_->InsertClient(c, Event("client.created", c.client_id)));

  ASSERT_OK_AND_ASSIGN(ClientRecord by_id, store_->GetClient(t.id, c.id));
  ASSERT_OK_AND_ASSIGN(ClientRecord by_client_id,
                       store_->GetClient(t.id, c.client_id));
  for (const ClientRecord& r : {by_id, by_client_id}) {
    EXPECT_EQ(r.id, c.id);
    EXPECT_EQ(r.client_id, c.client_id);
    EXPECT_EQ(r.fields.name, "App");
    EXPECT_THAT(
        r.fields.redirect_uris,
        ElementsAre("https://app.example.com/cb", "http://localhost:8080/cb"));
    EXPECT_THAT(r.fields.post_logout_redirect_uris,
                ElementsAre("https://app.example.com/bye"));
    EXPECT_THAT(r.fields.scopes, ElementsAre("openid", "profile"));
    EXPECT_THAT(r.fields.grant_types,
                ElementsAre("authorization_code", "refresh_token"));
    EXPECT_THAT(r.fields.response_types, ElementsAre("code"));
    EXPECT_EQ(r.fields.client_uri, "https://app.example.com");
    EXPECT_TRUE(r.has_secret);
    EXPECT_TRUE(r.is_active);
    EXPECT_TRUE(r.fields.pkce_required);
    EXPECT_EQ(r.created_via, "admin");
    EXPECT_EQ(r.version, 1);
    EXPECT_EQ(r.created_at, r.updated_at);
  }
  EXPECT_EQ(AuditCount(t.id, "client.created", c.client_id), 1);
}

TEST_F(MysqlClientStoreTest, UnknownOrMalformedIdsAreNotFound) {
  Tenant t = NewTenant();
  for (const std::string& id : std::vector<std::string>{
           "", "short", "cli_doesnotexist", "0123456789abcdef", "a b",
           "' OR 1=1 --", std::string(70, 'a')}) {
    SCOPED_TRACE(id);
    EXPECT_CODE(store_->GetClient(t.id, id), absl::StatusCode::kNotFound);
  }
}

TEST_F(MysqlClientStoreTest, PublicClientsHaveNoSecretAndCannotRotate) {
  Tenant t = NewTenant();
  NewClient c = MakeClient(t.id, /*is_public=*/true);
  ASSERT_OK(store_->InsertClient(c, Event("client.created", c.client_id)));
  ASSERT_OK_AND_ASSIGN(ClientRecord r, store_->GetClient(t.id, c.id));
  EXPECT_FALSE(r.has_secret);
  EXPECT_EQ(db_
                ->QueryValue(absl::StrCat(
                    "SELECT secret_digest IS NULL FROM oauth_clients WHERE id "
                    "= '",
                    c.id, "'"))
                .value(),
            "1");
  StoredSecret s;
  EXPECT_CODE(store_->RotateClientSecret(t.id, c.id, s,
                                         Event("client.secret_rotated", c.id)),
              absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(AuditCount(t.id, "client.secret_rotated", c.id), 0);

  NewClient bad = MakeClient(t.id, /*is_public=*/true);
  bad.secret = StoredSecret();
  EXPECT_CODE(store_->InsertClient(bad, Event("client.created", bad.client_id)),
              absl::StatusCode::kInvalidArgument);
}

TEST_F(MysqlClientStoreTest, EveryQueryIsScopedByTenant) {
  Tenant a = NewTenant();
  Tenant b = NewTenant();
  NewClient c = MakeClient(a.id);
  ASSERT_OK(store_->InsertClient(c, Event("client.created", c.client_id)));
  const int64_t b_events = AuditTotal(b.id);

  EXPECT_CODE(store_->GetClient(b.id, c.id), absl::StatusCode::kNotFound);
  EXPECT_CODE(store_->GetClient(b.id, c.client_id),
              absl::StatusCode::kNotFound);
  EXPECT_CODE(store_->UpdateClient(b.id, c.id, 1, c.fields,
                                   Event("client.updated", c.client_id)),
              absl::StatusCode::kNotFound);
  EXPECT_CODE(store_->RotateClientSecret(b.id, c.id, *c.secret,
                                         Event("client.secret_rotated", "x")),
              absl::StatusCode::kNotFound);
  EXPECT_CODE(store_->SetClientActive(b.id, c.id, false,
                                      Event("client.disabled", "x"), nullptr),
              absl::StatusCode::kNotFound);
  EXPECT_CODE(store_->DeleteClient(b.id, c.id, Event("client.deleted", "x")),
              absl::StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(ClientPage page, store_->ListClients(b.id, {}));
  EXPECT_THAT(page.clients, IsEmpty());
  EXPECT_EQ(page.total, 0);
  ASSERT_OK(store_->UpdateSettings(b.id, {true, false},
                                   Event("settings.updated", "b"), nullptr));
  ASSERT_OK_AND_ASSIGN(TenantSettings sa, store_->GetSettings(a.id));
  EXPECT_FALSE(sa.dynamic_registration.enabled);

  // Nothing of tenant A changed, and only B's own settings event exists.
  ASSERT_OK_AND_ASSIGN(ClientRecord still, store_->GetClient(a.id, c.id));
  EXPECT_TRUE(still.is_active);
  EXPECT_EQ(still.version, 1);
  EXPECT_EQ(AuditTotal(b.id), b_events + 1);
}

TEST_F(MysqlClientStoreTest, EachWriteWritesExactlyOneAuditEvent) {
  Tenant t = NewTenant();
  NewClient c = MakeClient(t.id);
  ASSERT_OK(store_->InsertClient(c, Event("client.created", c.client_id)));
  EXPECT_EQ(AuditCount(t.id, "client.created", c.client_id), 1);

  ClientFields f = c.fields;
  f.name = "Renamed";
  ASSERT_OK_AND_ASSIGN(
      ClientRecord updated,
      store_->UpdateClient(t.id, c.id, 1, f,
                           Event("client.updated", c.client_id)));
  EXPECT_EQ(updated.fields.name, "Renamed");
  EXPECT_EQ(updated.version, 2);
  EXPECT_GE(updated.updated_at, updated.created_at);
  EXPECT_EQ(AuditCount(t.id, "client.updated", c.client_id), 1);

  // A stale version writes nothing.
  EXPECT_CODE(store_->UpdateClient(t.id, c.id, 1, f,
                                   Event("client.updated", c.client_id)),
              absl::StatusCode::kAborted);
  EXPECT_EQ(AuditCount(t.id, "client.updated", c.client_id), 1);

  StoredSecret next;
  next.digest = core::Sha256("another");
  next.pepper_version = 1;
  ASSERT_OK_AND_ASSIGN(
      ClientRecord rotated,
      store_->RotateClientSecret(t.id, c.client_id, next,
                                 Event("client.secret_rotated", c.client_id)));
  EXPECT_TRUE(rotated.secret_rotated_at.has_value());
  EXPECT_EQ(AuditCount(t.id, "client.secret_rotated", c.client_id), 1);
  EXPECT_EQ(
      db_
          ->QueryValue(absl::StrCat(
              "SELECT HEX(secret_digest) FROM oauth_clients WHERE id = '", c.id,
              "'"))
          .value(),
      absl::AsciiStrToUpper(core::HexEncode(core::AsStringView(next.digest))));

  bool changed = true;
  ASSERT_OK_AND_ASSIGN(
      ClientRecord disabled,
      store_->SetClientActive(t.id, c.id, false,
                              Event("client.disabled", c.client_id), &changed));
  EXPECT_TRUE(changed);
  EXPECT_FALSE(disabled.is_active);
  ASSERT_OK(store_->SetClientActive(
      t.id, c.id, false, Event("client.disabled", c.client_id), &changed));
  EXPECT_FALSE(changed);
  EXPECT_EQ(AuditCount(t.id, "client.disabled", c.client_id), 1);

  ASSERT_OK(
      store_->DeleteClient(t.id, c.id, Event("client.deleted", c.client_id)));
  EXPECT_CODE(
      store_->DeleteClient(t.id, c.id, Event("client.deleted", c.client_id)),
      absl::StatusCode::kNotFound);
  EXPECT_EQ(AuditCount(t.id, "client.deleted", c.client_id), 1);
  EXPECT_CODE(store_->GetClient(t.id, c.id), absl::StatusCode::kNotFound);
}

TEST_F(MysqlClientStoreTest, AFailingAuditInsertRollsBackTheChange) {
  Tenant t = NewTenant();
  NewClient c = MakeClient(t.id);
  AuditEvent bad = Event("client.created", c.client_id);
  bad.metadata_json = "not json";  // violates the CHECK constraint
  EXPECT_FALSE(store_->InsertClient(c, bad).ok());
  EXPECT_CODE(store_->GetClient(t.id, c.id), absl::StatusCode::kNotFound);

  ASSERT_OK(store_->InsertClient(c, Event("client.created", c.client_id)));
  ClientFields f = c.fields;
  f.name = "Never";
  bad.action = "client.updated";
  EXPECT_FALSE(store_->UpdateClient(t.id, c.id, 1, f, bad).ok());
  ASSERT_OK_AND_ASSIGN(ClientRecord r, store_->GetClient(t.id, c.id));
  EXPECT_EQ(r.fields.name, "App");
  EXPECT_EQ(r.version, 1);
  EXPECT_FALSE(store_->DeleteClient(t.id, c.id, bad).ok());
  EXPECT_OK(store_->GetClient(t.id, c.id));
  EXPECT_FALSE(
      store_->UpdateSettings(t.id, {true, std::nullopt}, bad, nullptr).ok());
  ASSERT_OK_AND_ASSIGN(TenantSettings s, store_->GetSettings(t.id));
  EXPECT_FALSE(s.dynamic_registration.enabled);
  EXPECT_EQ(AuditTotal(t.id), 1);
}

TEST_F(MysqlClientStoreTest, IsPublicCannotChangeOnUpdate) {
  Tenant t = NewTenant();
  NewClient c = MakeClient(t.id);
  ASSERT_OK(store_->InsertClient(c, Event("client.created", c.client_id)));
  ClientFields f = c.fields;
  f.token_endpoint_auth_method = "none";
  EXPECT_CODE(store_->UpdateClient(t.id, c.id, 1, f,
                                   Event("client.updated", c.client_id)),
              absl::StatusCode::kInvalidArgument);
}

TEST_F(MysqlClientStoreTest, ListPagesSearchesAndSorts) {
  Tenant t = NewTenant();
  std::vector<NewClient> clients;
  for (const char* name : {"Charlie", "alpha", "Bravo 100%"}) {
    NewClient c = MakeClient(t.id);
    c.fields.name = name;
    ASSERT_OK(store_->InsertClient(c, Event("client.created", c.client_id)));
    clients.push_back(c);
  }
  ListClientsQuery q;
  q.sort_by = ClientSortField::kName;
  q.descending = false;
  q.limit = 2;
  ASSERT_OK_AND_ASSIGN(ClientPage p1, store_->ListClients(t.id, q));
  EXPECT_EQ(p1.total, 3);
  ASSERT_EQ(p1.clients.size(), 2u);
  EXPECT_EQ(p1.clients[0].fields.name, "alpha");
  EXPECT_EQ(p1.clients[1].fields.name, "Bravo 100%");
  q.page = 2;
  ASSERT_OK_AND_ASSIGN(ClientPage p2, store_->ListClients(t.id, q));
  ASSERT_EQ(p2.clients.size(), 1u);
  EXPECT_EQ(p2.clients[0].fields.name, "Charlie");
  q.page = 5;
  ASSERT_OK_AND_ASSIGN(ClientPage past, store_->ListClients(t.id, q));
  EXPECT_THAT(past.clients, IsEmpty());
  EXPECT_EQ(past.total, 3);

  ListClientsQuery search;
  search.search = "100%";  // % is literal
  ASSERT_OK_AND_ASSIGN(ClientPage found, store_->ListClients(t.id, search));
  ASSERT_EQ(found.clients.size(), 1u);
  EXPECT_EQ(found.clients[0].fields.name, "Bravo 100%");
  search.search = clients[0].client_id.substr(0, 10);
  ASSERT_OK_AND_ASSIGN(found, store_->ListClients(t.id, search));
  ASSERT_EQ(found.clients.size(), 1u);
  EXPECT_EQ(found.clients[0].id, clients[0].id);
  search.search = "%";
  ASSERT_OK_AND_ASSIGN(found, store_->ListClients(t.id, search));
  EXPECT_EQ(found.total, 1);

  ListClientsQuery bad;
  bad.limit = 101;
  EXPECT_CODE(store_->ListClients(t.id, bad),
              absl::StatusCode::kInvalidArgument);
}

TEST_F(MysqlClientStoreTest, SettingsDefaultUntilWrittenAndNoOpWritesNothing) {
  Tenant t = NewTenant();
  ASSERT_OK_AND_ASSIGN(TenantSettings s, store_->GetSettings(t.id));
  EXPECT_FALSE(s.dynamic_registration.enabled);
  EXPECT_TRUE(s.dynamic_registration.require_api_key);
  EXPECT_FALSE(s.updated_at.has_value());

  bool changed = true;
  ASSERT_OK_AND_ASSIGN(
      s, store_->UpdateSettings(t.id, {false, true},
                                Event("settings.updated", "t"), &changed));
  EXPECT_FALSE(changed);
  EXPECT_EQ(AuditTotal(t.id), 0);
  EXPECT_EQ(
      Count(absl::StrCat(
          "SELECT COUNT(*) FROM tenant_settings WHERE tenant_id = ", t.id)),
      0);

  ASSERT_OK_AND_ASSIGN(
      s, store_->UpdateSettings(t.id, {true, std::nullopt},
                                Event("settings.updated", "t"), &changed));
  EXPECT_TRUE(changed);
  EXPECT_TRUE(s.dynamic_registration.enabled);
  EXPECT_TRUE(s.dynamic_registration.require_api_key);
  EXPECT_TRUE(s.updated_at.has_value());
  ASSERT_OK_AND_ASSIGN(
      s, store_->UpdateSettings(t.id, {std::nullopt, false},
                                Event("settings.updated", "t"), &changed));
  EXPECT_TRUE(s.dynamic_registration.enabled);
  EXPECT_FALSE(s.dynamic_registration.require_api_key);
  EXPECT_EQ(AuditCount(t.id, "settings.updated", "t"), 2);

  EXPECT_CODE(store_->UpdateSettings(987654321, {true, std::nullopt},
                                     Event("settings.updated", "x"), nullptr),
              absl::StatusCode::kNotFound);
}

TEST_F(MysqlClientStoreTest,
       RegistrationInsertRechecksSettingsInItsTransaction) {
  Tenant t = NewTenant();
  NewClient c = MakeClient(t.id);
  c.created_via = "registration";
  const AuditEvent e = Event("client.registered", c.client_id);
  EXPECT_CODE(store_->InsertRegisteredClient(c, RegistrationAuth::kApiKey, e),
              absl::StatusCode::kFailedPrecondition);
  ASSERT_OK(store_->UpdateSettings(t.id, {true, std::nullopt},
                                   Event("settings.updated", "t"), nullptr));
  EXPECT_CODE(
      store_->InsertRegisteredClient(c, RegistrationAuth::kAnonymous, e),
      absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(AuditCount(t.id, "client.registered", c.client_id), 0);
  ASSERT_OK(store_->InsertRegisteredClient(c, RegistrationAuth::kApiKey, e));
  ASSERT_OK_AND_ASSIGN(ClientRecord r, store_->GetClient(t.id, c.client_id));
  EXPECT_EQ(r.created_via, "registration");
  EXPECT_EQ(AuditCount(t.id, "client.registered", c.client_id), 1);

  ASSERT_OK(store_->UpdateSettings(t.id, {std::nullopt, false},
                                   Event("settings.updated", "t"), nullptr));
  NewClient anon = MakeClient(t.id);
  anon.created_via = "registration";
  anon.created_by_type = "anonymous";
  anon.created_by_id = "";
  EXPECT_OK(store_->InsertRegisteredClient(
      anon, RegistrationAuth::kAnonymous,
      Event("client.registered", anon.client_id)));
}

// ---------------------------------------------------------------------------
// The domain services over the real store.

class ClientServiceOnMysqlTest : public MysqlClientStoreTest {
 protected:
  void SetUp() override {
    MysqlClientStoreTest::SetUp();
    peppers_ = *core::PepperSet::Parse(kPepper);
    clients_ = std::make_unique<service::ClientService>(store_, peppers_);
    tenant_ = NewTenant();
    caller_.kind = service::Principal::Kind::kApiKey;
    caller_.tenant_id = tenant_.id;
    caller_.tenant_slug = tenant_.slug;
    caller_.key_id = "AAAABBBBCCCC";
    caller_.scopes = {"admin:clients"};
    info_.ip_address = "192.0.2.7";
    info_.request_id = "req-7";
  }

  std::shared_ptr<const core::PepperSet> peppers_;
  std::unique_ptr<service::ClientService> clients_;
  Tenant tenant_;
  service::Principal caller_;
  service::RequestInfo info_;
};

TEST_F(ClientServiceOnMysqlTest, SecretIsShownOnceAndStoredOnlyAsHmac) {
  service::ClientParams params;
  params.name = "Web app";
  params.redirect_uris = {"https://app.example.com/cb"};
  ASSERT_OK_AND_ASSIGN(service::ClientWithSecret created,
                       clients_->CreateClient(caller_, info_, params));
  ASSERT_TRUE(created.secret.has_value());
  const std::string secret = *created.secret;
  EXPECT_TRUE(absl::StartsWith(secret, "cls_"));
  EXPECT_EQ(secret.size(), 4u + 43u);
  EXPECT_TRUE(absl::StartsWith(created.record.client_id, "cli_"));
  EXPECT_EQ(created.record.client_id.size(), 4u + 24u);
  EXPECT_THAT(created.record.fields.grant_types,
              ElementsAre("authorization_code"));
  EXPECT_THAT(created.record.fields.response_types, ElementsAre("code"));
  EXPECT_EQ(created.record.fields.token_endpoint_auth_method,
            "client_secret_basic");

  const std::string digest_hex = absl::AsciiStrToUpper(
      core::HexEncode(core::AsStringView(*peppers_->Mac(1, secret))));
  EXPECT_EQ(db_
                ->QueryValue(absl::StrCat(
                    "SELECT CONCAT(HEX(secret_digest), ':', "
                    "secret_pepper_version) FROM oauth_clients WHERE id = '",
                    created.record.id, "'"))
                .value(),
            digest_hex + ":1");

  ASSERT_OK_AND_ASSIGN(
      service::ClientWithSecret rotated,
      clients_->RotateClientSecret(caller_, info_, created.record.id));
  ASSERT_TRUE(rotated.secret.has_value());
  EXPECT_NE(*rotated.secret, secret);

  // Neither secret appears anywhere in the database (audit included).
  const std::string dump = DumpAllTables();
  EXPECT_THAT(dump, HasSubstr(created.record.client_id));
  EXPECT_THAT(dump, Not(HasSubstr(secret)));
  EXPECT_THAT(dump, Not(HasSubstr(*rotated.secret)));
  EXPECT_THAT(dump, Not(HasSubstr(secret.substr(4, 20))));

  EXPECT_EQ(AuditCount(tenant_.id, "client.created", created.record.client_id),
            1);
  EXPECT_EQ(
      AuditCount(tenant_.id, "client.secret_rotated", created.record.client_id),
      1);
  EXPECT_EQ(db_
                ->QueryValue(absl::StrCat(
                    "SELECT CONCAT(actor_type, ':', actor_id, ':', ip_address,"
                    " ':', category) FROM audit_events WHERE tenant_id = ",
                    tenant_.id, " AND action = 'client.created'"))
                .value(),
            "api_key:AAAABBBBCCCC:192.0.2.7:clients");
}

TEST_F(ClientServiceOnMysqlTest, PublicClientsGetNoSecret) {
  service::ClientParams params;
  params.name = "SPA";
  params.redirect_uris = {"http://localhost:3000/cb"};
  params.is_public = true;
  ASSERT_OK_AND_ASSIGN(service::ClientWithSecret created,
                       clients_->CreateClient(caller_, info_, params));
  EXPECT_FALSE(created.secret.has_value());
  EXPECT_EQ(created.record.fields.token_endpoint_auth_method, "none");
  absl::StatusOr<service::ClientWithSecret> rotated =
      clients_->RotateClientSecret(caller_, info_, created.record.id);
  EXPECT_CODE(rotated, absl::StatusCode::kFailedPrecondition);
  params.pkce_required = false;
  EXPECT_CODE(clients_->CreateClient(caller_, info_, params),
              absl::StatusCode::kInvalidArgument);
}

TEST_F(ClientServiceOnMysqlTest, PatchChangesOnlyTheGivenFieldsAndAuditsOnce) {
  service::ClientParams params;
  params.name = "Orig";
  params.redirect_uris = {"https://app.example.com/cb"};
  params.scopes = {"a", "b"};
  ASSERT_OK_AND_ASSIGN(service::ClientWithSecret created,
                       clients_->CreateClient(caller_, info_, params));
  service::ClientPatch patch;
  patch.name = "New";
  ASSERT_OK_AND_ASSIGN(
      ClientRecord r,
      clients_->PatchClient(caller_, info_, created.record.client_id, patch));
  EXPECT_EQ(r.fields.name, "New");
  EXPECT_THAT(r.fields.scopes, ElementsAre("a", "b"));
  EXPECT_THAT(r.fields.redirect_uris,
              ElementsAre("https://app.example.com/cb"));
  // The same patch again changes nothing and writes nothing.
  ASSERT_OK(clients_->PatchClient(caller_, info_, created.record.id, patch));
  EXPECT_EQ(AuditCount(tenant_.id, "client.updated", created.record.client_id),
            1);

  service::ClientPatch clear;
  clear.scopes = std::vector<std::string>{};
  ASSERT_OK_AND_ASSIGN(
      r, clients_->PatchClient(caller_, info_, created.record.id, clear));
  EXPECT_THAT(r.fields.scopes, IsEmpty());

  service::ClientPatch bad;
  bad.redirect_uris = std::vector<std::string>{"https://x.example/#f"};
  absl::Status s =
      clients_->PatchClient(caller_, info_, created.record.id, bad).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rpc::ErrorCodeOf(s), "validation_error");
}

TEST_F(ClientServiceOnMysqlTest, RegistrationFollowsTheTenantSettings) {
  service::RegistrationService registration(keys_, store_, clients_.get(),
                                            service::IpRateLimiterOptions());
  service::RegistrationRequest request;
  request.redirect_uris = {"https://app.example.com/cb"};
  auto code_of = [](const absl::Status& s) { return rpc::ErrorCodeOf(s); };

  absl::Status s =
      registration.Register(caller_, info_, tenant_.slug, request).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(code_of(s), "registration_not_allowed");

  ASSERT_OK(clients_->UpdateSettings(caller_, info_, {true, std::nullopt}));
  service::Principal anonymous;
  anonymous.kind = service::Principal::Kind::kAnonymous;
  s = registration.Register(anonymous, info_, tenant_.slug, request).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(code_of(s), "invalid_token");
  s = registration.Register(anonymous, info_, "no-such-tenant", request)
          .status();
  EXPECT_EQ(code_of(s), "registration_not_allowed");

  ASSERT_OK_AND_ASSIGN(
      service::ClientWithSecret created,
      registration.Register(caller_, info_, tenant_.slug, request));
  EXPECT_TRUE(created.secret.has_value());
  EXPECT_EQ(created.record.fields.name, created.record.client_id);
  EXPECT_EQ(created.record.created_via, "registration");
  EXPECT_EQ(
      AuditCount(tenant_.id, "client.registered", created.record.client_id), 1);
  EXPECT_THAT(DumpAllTables(), Not(HasSubstr(*created.secret)));

  ASSERT_OK(clients_->UpdateSettings(caller_, info_, {std::nullopt, false}));
  ASSERT_OK_AND_ASSIGN(
      created, registration.Register(anonymous, info_, tenant_.slug, request));
  EXPECT_EQ(created.record.created_by_type, "anonymous");
}

}  // namespace
}  // namespace lumo::storage
