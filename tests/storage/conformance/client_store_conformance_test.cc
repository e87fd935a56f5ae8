// The ClientStore contract (server/storage/client_store.h): OAuth clients
// and tenant settings, run against every implementation.
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/storage/client_store.h"
#include "tests/storage/conformance/store_fixture.h"

namespace lumo::testing {
namespace {

using ::testing::ElementsAre;

template <typename Impl>
class ClientStoreConformanceTest : public SharedStoreTest<Impl> {
 protected:
  // A confidential client (or a public one) of `tenant_id`.
  static storage::NewClient Client(int64_t tenant_id, absl::string_view name,
                                   bool is_public = false) {
    storage::NewClient c;
    c.id = core::RandomBase62(16).value_or("");
    c.tenant_id = tenant_id;
    c.client_id = absl::StrCat("lkc_", core::RandomBase62(20).value_or(""));
    c.fields.name = std::string(name);
    c.fields.redirect_uris = {"https://app.example.com/cb"};
    c.fields.scopes = {"openid", "profile"};
    c.fields.grant_types = {"authorization_code"};
    c.fields.response_types = {"code"};
    if (is_public) {
      c.fields.token_endpoint_auth_method = "none";
    } else {
      c.secret = storage::StoredSecret{RandomDigest(), 1};
    }
    c.created_by_type = "system";
    c.created_by_id = "conformance";
    return c;
  }
};
TYPED_TEST_SUITE(ClientStoreConformanceTest, Implementations,
                 ImplementationName);

TYPED_TEST(ClientStoreConformanceTest, ListPagesWithPositionsInEverySortOrder) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  for (const char* name : {"b", "A", "a", "c", "B", "b", "d"}) {
    ASSERT_TRUE(f.clients()
                    .InsertClient(this->Client(tenant.id, name),
                                  Event("client.created"))
                    .ok());
  }
  using Sort = storage::ClientSortField;
  for (Sort sort : {Sort::kCreatedAt, Sort::kName, Sort::kUpdatedAt}) {
    for (bool descending : {true, false}) {
      storage::ListClientsQuery all;
      all.sort_by = sort;
      all.descending = descending;
      all.limit = 100;
      absl::StatusOr<storage::ClientPage> whole =
          f.clients().ListClients(tenant.id, all);
      ASSERT_TRUE(whole.ok()) << whole.status();
      std::vector<std::string> expected;
      for (const auto& c : whole->clients) expected.push_back(c.id);
      ASSERT_EQ(expected.size(), 7u);
      for (int limit : {1, 2, 3}) {
        storage::ListClientsQuery walk = all;
        walk.limit = limit;
        walk.count.wanted = false;
        std::vector<std::string> ids;
        for (int pages = 0; pages < 20; ++pages) {
          absl::StatusOr<storage::ClientPage> page =
              f.clients().ListClients(tenant.id, walk);
          ASSERT_TRUE(page.ok()) << page.status();
          EXPECT_EQ(page->total_kind, storage::TotalKind::kNotCounted);
          for (const auto& c : page->clients) ids.push_back(c.id);
          if (!page->has_more) break;
          ASSERT_EQ(page->clients.size(), static_cast<size_t>(limit));
          walk.after = storage::PositionOf(page->clients.back(), sort);
        }
        EXPECT_EQ(ids, expected)
            << "sort " << static_cast<int>(sort) << " descending " << descending
            << " limit " << limit;
      }
    }
  }
  storage::ListClientsQuery capped;
  capped.limit = 2;
  capped.count.cap = 3;
  absl::StatusOr<storage::ClientPage> page =
      f.clients().ListClients(tenant.id, capped);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->total, 3);
  EXPECT_EQ(page->total_kind, storage::TotalKind::kAtLeast);
  EXPECT_TRUE(page->has_more);
}

TYPED_TEST(ClientStoreConformanceTest, ClientsAreFoundByEitherIdInTheirTenant) {
  StoreFixture& f = this->f();
  const storage::Tenant a = NewTenant(f);
  const storage::Tenant b = NewTenant(f);
  const storage::NewClient c = this->Client(a.id, "Portal app");
  ASSERT_TRUE(f.clients().InsertClient(c, Event("client.created")).ok());

  absl::StatusOr<storage::ClientRecord> by_id =
      f.clients().GetClient(a.id, c.id);
  ASSERT_TRUE(by_id.ok()) << by_id.status();
  EXPECT_EQ(by_id->client_id, c.client_id);
  EXPECT_EQ(by_id->fields.name, "Portal app");
  EXPECT_THAT(by_id->fields.redirect_uris,
              ElementsAre("https://app.example.com/cb"));
  EXPECT_THAT(by_id->fields.scopes, ElementsAre("openid", "profile"));
  EXPECT_TRUE(by_id->is_active);
  EXPECT_TRUE(by_id->has_secret);
  EXPECT_EQ(by_id->created_via, "admin");
  EXPECT_EQ(by_id->version, 1);
  EXPECT_FALSE(by_id->secret_rotated_at.has_value());
  absl::StatusOr<storage::ClientRecord> by_client_id =
      f.clients().GetClient(a.id, c.client_id);
  ASSERT_TRUE(by_client_id.ok()) << by_client_id.status();
  EXPECT_EQ(by_client_id->id, c.id);
  EXPECT_EQ(f.clients().GetClient(b.id, c.id).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(f.clients().GetClient(b.id, c.client_id).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(EventsOf(f, a.id, "client.created").size(), 1u);

  storage::NewClient same_id = this->Client(a.id, "Again");
  same_id.id = c.id;
  EXPECT_EQ(f.clients().InsertClient(same_id, Event("client.created")).code(),
            absl::StatusCode::kAlreadyExists);
  storage::NewClient same_client_id = this->Client(a.id, "Again");
  same_client_id.client_id = c.client_id;
  EXPECT_EQ(
      f.clients().InsertClient(same_client_id, Event("client.created")).code(),
      absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(f.clients()
                .InsertClient(this->Client(a.id + 1000000, "x"),
                              Event("client.created"))
                .code(),
            absl::StatusCode::kNotFound);
}

TYPED_TEST(ClientStoreConformanceTest, UpdateChecksTheVersion) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const storage::NewClient c = this->Client(tenant.id, "Before");
  ASSERT_TRUE(f.clients().InsertClient(c, Event("client.created")).ok());
  storage::ClientFields fields = c.fields;
  fields.name = "After";
  fields.redirect_uris = {"https://a.example.com/1", "https://a.example.com/2"};
  absl::StatusOr<storage::ClientRecord> updated = f.clients().UpdateClient(
      tenant.id, c.id, 1, fields, Event("client.updated"));
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->version, 2);
  EXPECT_EQ(updated->fields.name, "After");
  EXPECT_THAT(
      updated->fields.redirect_uris,
      ElementsAre("https://a.example.com/1", "https://a.example.com/2"));
  EXPECT_EQ(
      f.clients()
          .UpdateClient(tenant.id, c.id, 1, fields, Event("client.updated"))
          .status()
          .code(),
      absl::StatusCode::kAborted);
  storage::ClientFields to_public = fields;
  to_public.token_endpoint_auth_method = "none";
  EXPECT_EQ(
      f.clients()
          .UpdateClient(tenant.id, c.id, 2, to_public, Event("client.updated"))
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.clients()
                .UpdateClient(tenant.id, "nosuchclient", 1, fields,
                              Event("client.updated"))
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(EventsOf(f, tenant.id, "client.updated").size(), 1u);
}

TYPED_TEST(ClientStoreConformanceTest,
           SecretsRotateForConfidentialClientsOnly) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const storage::NewClient confidential = this->Client(tenant.id, "conf");
  const storage::NewClient pub = this->Client(tenant.id, "pub", true);
  ASSERT_TRUE(
      f.clients().InsertClient(confidential, Event("client.created")).ok());
  ASSERT_TRUE(f.clients().InsertClient(pub, Event("client.created")).ok());
  absl::StatusOr<storage::ClientRecord> rotated =
      f.clients().RotateClientSecret(tenant.id, confidential.id,
                                     {RandomDigest(), 2},
                                     Event("client.secret_rotated"));
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(rotated->version, 2);
  EXPECT_TRUE(rotated->secret_rotated_at.has_value());
  absl::StatusOr<storage::ClientRecord> p =
      f.clients().GetClient(tenant.id, pub.id);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->has_secret);
  EXPECT_EQ(f.clients()
                .RotateClientSecret(tenant.id, pub.id, {RandomDigest(), 2},
                                    Event("client.secret_rotated"))
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(EventsOf(f, tenant.id, "client.secret_rotated").size(), 1u);
}

TYPED_TEST(ClientStoreConformanceTest, ActivationWritesOnlyOnAChange) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const storage::NewClient c = this->Client(tenant.id, "toggle");
  ASSERT_TRUE(f.clients().InsertClient(c, Event("client.created")).ok());
  bool changed = true;
  absl::StatusOr<storage::ClientRecord> same = f.clients().SetClientActive(
      tenant.id, c.id, true, Event("client.activation"), &changed);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_FALSE(changed);
  EXPECT_EQ(same->version, 1);
  absl::StatusOr<storage::ClientRecord> off = f.clients().SetClientActive(
      tenant.id, c.id, false, Event("client.activation"), &changed);
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_TRUE(changed);
  EXPECT_FALSE(off->is_active);
  EXPECT_EQ(off->version, 2);
  EXPECT_EQ(EventsOf(f, tenant.id, "client.activation").size(), 1u);
}

TYPED_TEST(ClientStoreConformanceTest, DeleteTwiceIsNotFound) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const storage::NewClient c = this->Client(tenant.id, "gone");
  ASSERT_TRUE(f.clients().InsertClient(c, Event("client.created")).ok());
  EXPECT_TRUE(
      f.clients().DeleteClient(tenant.id, c.id, Event("client.deleted")).ok());
  EXPECT_EQ(f.clients().GetClient(tenant.id, c.id).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(
      f.clients().DeleteClient(tenant.id, c.id, Event("client.deleted")).code(),
      absl::StatusCode::kNotFound);
  EXPECT_EQ(EventsOf(f, tenant.id, "client.deleted").size(), 1u);
}

TYPED_TEST(ClientStoreConformanceTest, ListSortsPagesAndSearches) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  for (const char* name : {"Zulu", "alpha", "Mike"}) {
    ASSERT_TRUE(f.clients()
                    .InsertClient(this->Client(tenant.id, name),
                                  Event("client.created"))
                    .ok());
  }
  storage::ListClientsQuery q;
  q.sort_by = storage::ClientSortField::kName;
  q.descending = false;
  q.limit = 2;
  absl::StatusOr<storage::ClientPage> page =
      f.clients().ListClients(tenant.id, q);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->total, 3);
  ASSERT_EQ(page->clients.size(), 2u);
  EXPECT_EQ(page->clients[0].fields.name, "alpha");
  EXPECT_EQ(page->clients[1].fields.name, "Mike");
  q.search = "ZUL";
  page = f.clients().ListClients(tenant.id, q);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->clients.size(), 1u);
  EXPECT_EQ(page->clients[0].fields.name, "Zulu");
  q.page = 0;
  EXPECT_EQ(f.clients().ListClients(tenant.id, q).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TYPED_TEST(ClientStoreConformanceTest, SettingsStartAtDefaultsAndChangeOnce) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  absl::StatusOr<storage::TenantSettings> defaults =
      f.clients().GetSettings(tenant.id);
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_FALSE(defaults->dynamic_registration.enabled);
  EXPECT_TRUE(defaults->dynamic_registration.require_api_key);
  EXPECT_EQ(defaults->version, 0);
  EXPECT_FALSE(defaults->updated_at.has_value());

  bool changed = true;
  storage::SettingsUpdate nothing;
  nothing.dynamic_registration_enabled = false;
  absl::StatusOr<storage::TenantSettings> same = f.clients().UpdateSettings(
      tenant.id, nothing, Event("settings.updated"), &changed);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_FALSE(changed);
  EXPECT_EQ(same->version, 0);

  storage::SettingsUpdate enable;
  enable.dynamic_registration_enabled = true;
  absl::StatusOr<storage::TenantSettings> on = f.clients().UpdateSettings(
      tenant.id, enable, Event("settings.updated"), &changed);
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_TRUE(changed);
  EXPECT_TRUE(on->dynamic_registration.enabled);
  EXPECT_TRUE(on->dynamic_registration.require_api_key);
  EXPECT_EQ(on->version, 1);
  EXPECT_TRUE(on->updated_at.has_value());
  EXPECT_EQ(EventsOf(f, tenant.id, "settings.updated").size(), 1u);
  EXPECT_EQ(f.clients()
                .UpdateSettings(tenant.id + 1000000, enable,
                                Event("settings.updated"), nullptr)
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TYPED_TEST(ClientStoreConformanceTest, KeyPolicyIsPartOfTheSettings) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  absl::StatusOr<storage::TenantSettings> defaults =
      f.clients().GetSettings(tenant.id);
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->key_policy, storage::KeyPolicy());
  EXPECT_EQ(defaults->key_policy.expiry_warning_days, 7);
  absl::StatusOr<storage::KeyPolicy> read = f.keys().GetKeyPolicy(tenant.id);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, storage::KeyPolicy());

  bool changed = false;
  storage::SettingsUpdate update;
  update.key_require_expiry = true;
  update.key_max_lifetime_days = 90;
  update.key_rotation_period_days = 30;
  update.key_inactive_after_days = 60;
  absl::StatusOr<storage::TenantSettings> after = f.clients().UpdateSettings(
      tenant.id, update, Event("settings.updated"), &changed);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(changed);
  storage::KeyPolicy want;
  want.require_expiry = true;
  want.max_lifetime_days = 90;
  want.rotation_period_days = 30;
  want.expiry_warning_days = 7;  // not in the update
  want.inactive_after_days = 60;
  EXPECT_EQ(after->key_policy, want);
  EXPECT_FALSE(after->dynamic_registration.enabled);
  read = f.keys().GetKeyPolicy(tenant.id);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, want);

  // Only the warning changes; the rest stays.
  storage::SettingsUpdate warn;
  warn.key_expiry_warning_days = 14;
  after = f.clients().UpdateSettings(tenant.id, warn, Event("settings.updated"),
                                     &changed);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(changed);
  want.expiry_warning_days = 14;
  EXPECT_EQ(after->key_policy, want);
  EXPECT_EQ(EventsOf(f, tenant.id, "settings.updated").size(), 2u);
  // The same values again: nothing written.
  after = f.clients().UpdateSettings(tenant.id, warn, Event("settings.updated"),
                                     &changed);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_FALSE(changed);
  EXPECT_EQ(EventsOf(f, tenant.id, "settings.updated").size(), 2u);

  // Pinned to a version: applied at that version only.
  storage::SettingsUpdate pinned;
  pinned.key_inactive_after_days = 90;
  pinned.expected_version = after->version - 1;
  EXPECT_EQ(f.clients()
                .UpdateSettings(tenant.id, pinned, Event("settings.updated"),
                                &changed)
                .status()
                .code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(EventsOf(f, tenant.id, "settings.updated").size(), 2u);
  pinned.expected_version = after->version;
  after = f.clients().UpdateSettings(tenant.id, pinned,
                                     Event("settings.updated"), &changed);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(changed);
  EXPECT_EQ(after->key_policy.inactive_after_days, 90);
}

TYPED_TEST(ClientStoreConformanceTest, LeakResponseIsPartOfTheSettings) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  absl::StatusOr<storage::TenantSettings> defaults =
      f.clients().GetSettings(tenant.id);
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->leak_response, "revoke");

  bool changed = false;
  storage::SettingsUpdate update;
  update.leak_response = "notify";
  absl::StatusOr<storage::TenantSettings> after = f.clients().UpdateSettings(
      tenant.id, update, Event("settings.updated"), &changed);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(changed);
  EXPECT_EQ(after->leak_response, "notify");
  EXPECT_EQ(after->key_policy, storage::KeyPolicy());
  absl::StatusOr<storage::TenantSettings> read =
      f.clients().GetSettings(tenant.id);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->leak_response, "notify");

  // Another member changes; the response stays. The same value: nothing.
  storage::SettingsUpdate warn;
  warn.key_expiry_warning_days = 3;
  after = f.clients().UpdateSettings(tenant.id, warn, Event("settings.updated"),
                                     &changed);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->leak_response, "notify");
  after = f.clients().UpdateSettings(tenant.id, update,
                                     Event("settings.updated"), &changed);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_FALSE(changed);
  EXPECT_EQ(EventsOf(f, tenant.id, "settings.updated").size(), 2u);
}

TYPED_TEST(ClientStoreConformanceTest, RegistrationFollowsTheSettings) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  storage::NewClient c = this->Client(tenant.id, "registered");
  c.created_via = "registration";
  EXPECT_EQ(f.clients()
                .InsertRegisteredClient(c, storage::RegistrationAuth::kApiKey,
                                        Event("client.registered"))
                .code(),
            absl::StatusCode::kFailedPrecondition);
  storage::SettingsUpdate enable;
  enable.dynamic_registration_enabled = true;
  ASSERT_TRUE(
      f.clients()
          .UpdateSettings(tenant.id, enable, Event("settings.updated"), nullptr)
          .ok());
  EXPECT_EQ(
      f.clients()
          .InsertRegisteredClient(c, storage::RegistrationAuth::kAnonymous,
                                  Event("client.registered"))
          .code(),
      absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(f.clients().GetClient(tenant.id, c.id).status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(f.clients()
                  .InsertRegisteredClient(c, storage::RegistrationAuth::kApiKey,
                                          Event("client.registered"))
                  .ok());
  absl::StatusOr<storage::ClientRecord> got =
      f.clients().GetClient(tenant.id, c.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->created_via, "registration");
  EXPECT_EQ(EventsOf(f, tenant.id, "client.registered").size(), 1u);
}

}  // namespace
}  // namespace lumo::testing
