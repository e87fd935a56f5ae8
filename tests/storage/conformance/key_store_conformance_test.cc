// The KeyStore contract (server/storage/key_store.h), run against every
// implementation.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/storage/key_store.h"
#include "tests/storage/conformance/store_fixture.h"

namespace lumo::testing {
namespace {

using ::testing::ElementsAre;

template <typename Impl>
class KeyStoreConformanceTest : public SharedStoreTest<Impl> {};
TYPED_TEST_SUITE(KeyStoreConformanceTest, Implementations, ImplementationName);

TYPED_TEST(KeyStoreConformanceTest, TenantsAreFoundBySlugAndSlugsAreUnique) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  absl::StatusOr<storage::Tenant> found = f.keys().GetTenantBySlug(tenant.slug);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->id, tenant.id);
  EXPECT_EQ(found->name, tenant.name);
  EXPECT_EQ(
      f.keys().CreateTenant(tenant.slug, "again", nullptr, {}).status().code(),
      absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(f.keys().GetTenantBySlug(Unique("absent")).status().code(),
            absl::StatusCode::kNotFound);
}

TYPED_TEST(KeyStoreConformanceTest, CreateTenantWithInitialKeyStoresBoth) {
  StoreFixture& f = this->f();
  const std::string slug = Unique("t");
  storage::NewKey key = NewKey(0, "first");
  absl::StatusOr<storage::Tenant> tenant =
      f.keys().CreateTenant(slug, "With key", &key, {Event("tenant.created")});
  ASSERT_TRUE(tenant.ok()) << tenant.status();
  absl::StatusOr<storage::ApiKeyRecord> got =
      f.keys().GetKey(tenant->id, key.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->tenant_id, tenant->id);
  EXPECT_EQ(got->name, "first");
  EXPECT_EQ(EventsOf(f, tenant->id, "tenant.created").size(), 1u);
}

TYPED_TEST(KeyStoreConformanceTest, InsertedKeyReadsBackAsWritten) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  storage::NewKey key = NewKey(tenant.id, "Billing job");
  key.scopes = {"keys:read", "keys:write"};
  key.allowed_cidrs = {"10.0.0.0/8"};
  key.rate_limit_per_minute = 120;
  absl::StatusOr<absl::Time> now = f.keys().Now();
  ASSERT_TRUE(now.ok()) << now.status();
  key.expires_at =
      absl::FromUnixMicros(absl::ToUnixMicros(*now)) + absl::Hours(24);
  ASSERT_TRUE(f.keys().InsertKey(key, Event("api_key.created")).ok());

  absl::StatusOr<storage::ApiKeyRecord> got =
      f.keys().GetKey(tenant.id, key.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->id, key.id);
  EXPECT_EQ(got->name, "Billing job");
  EXPECT_THAT(got->scopes, ElementsAre("keys:read", "keys:write"));
  EXPECT_THAT(got->allowed_cidrs, ElementsAre("10.0.0.0/8"));
  EXPECT_EQ(got->rate_limit_per_minute, 120);
  EXPECT_FALSE(got->revoked);
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(got->created_by_type, "system");
  EXPECT_EQ(got->created_by_id, "conformance");
  EXPECT_EQ(got->expires_at, key.expires_at);
  EXPECT_FALSE(got->last_used_at.has_value());
  EXPECT_FALSE(got->rotated_at.has_value());
  EXPECT_EQ(EventsOf(f, tenant.id, "api_key.created").size(), 1u);

  absl::StatusOr<storage::VerifyRecord> verify = f.keys().LoadForVerify(key.id);
  ASSERT_TRUE(verify.ok()) << verify.status();
  EXPECT_EQ(verify->tenant_slug, tenant.slug);
  EXPECT_FALSE(verify->deleted);
  EXPECT_EQ(verify->current.digest, key.secret.digest);
  EXPECT_EQ(verify->current.pepper_version, 1);
  EXPECT_TRUE(verify->retired.empty());
}

TYPED_TEST(KeyStoreConformanceTest,
           DecoysAreListedOnlyWhenAskedAndNeverRotate) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const storage::NewKey plain = NewKey(tenant.id, "plain");
  storage::NewKey decoy = NewKey(tenant.id, "bait");
  decoy.decoy = true;
  ASSERT_TRUE(f.keys().InsertKey(plain, Event("api_key.created")).ok());
  ASSERT_TRUE(f.keys().InsertKey(decoy, Event("api_key.created")).ok());

  absl::StatusOr<storage::ApiKeyRecord> got =
      f.keys().GetKey(tenant.id, decoy.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->decoy);
  absl::StatusOr<storage::ApiKeyRecord> other =
      f.keys().GetKey(tenant.id, plain.id);
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_FALSE(other->decoy);
  absl::StatusOr<storage::VerifyRecord> loaded =
      f.keys().LoadForVerify(decoy.id);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(loaded->key.decoy);

  storage::ListKeysQuery query;
  absl::StatusOr<storage::KeyPage> ordinary =
      f.keys().ListKeys(tenant.id, query);
  ASSERT_TRUE(ordinary.ok()) << ordinary.status();
  ASSERT_EQ(ordinary->total, 1);
  EXPECT_EQ(ordinary->keys[0].id, plain.id);
  query.decoys = true;
  absl::StatusOr<storage::KeyPage> decoys = f.keys().ListKeys(tenant.id, query);
  ASSERT_TRUE(decoys.ok()) << decoys.status();
  ASSERT_EQ(decoys->total, 1);
  EXPECT_EQ(decoys->keys[0].id, decoy.id);

  EXPECT_EQ(f.keys()
                .RotateKey(tenant.id, decoy.id, {RandomDigest(), 1},
                           absl::ZeroDuration(), Event("api_key.rotated"))
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(EventsOf(f, tenant.id, "api_key.rotated").empty());
  absl::StatusOr<storage::RevokeResult> revoked =
      f.keys().RevokeKey(tenant.id, decoy.id, Event("api_key.revoked"));
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_TRUE(revoked->key.decoy);
}

TYPED_TEST(KeyStoreConformanceTest, KeysAreScopedByTenant) {
  StoreFixture& f = this->f();
  const storage::Tenant a = NewTenant(f);
  const storage::Tenant b = NewTenant(f);
  const storage::NewKey key = NewKey(a.id);
  ASSERT_TRUE(f.keys().InsertKey(key, Event("api_key.created")).ok());
  EXPECT_EQ(f.keys().GetKey(b.id, key.id).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(f.keys().RevokeKey(b.id, key.id, Event("x")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(f.keys().DeleteKey(b.id, key.id, Event("x")).status().code(),
            absl::StatusCode::kNotFound);
  absl::StatusOr<storage::KeyPage> page =
      f.keys().ListKeys(b.id, storage::ListKeysQuery());
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->total, 0);
  EXPECT_TRUE(f.keys().GetKey(a.id, key.id).ok());
}

TYPED_TEST(KeyStoreConformanceTest, InsertRefusesATakenIdAndAnUnknownTenant) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const storage::NewKey key = NewKey(tenant.id);
  ASSERT_TRUE(f.keys().InsertKey(key, Event("api_key.created")).ok());
  storage::NewKey again = NewKey(tenant.id, "other");
  again.id = key.id;
  EXPECT_EQ(f.keys().InsertKey(again, Event("api_key.created")).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(
      f.keys()
          .InsertKey(NewKey(tenant.id + 1000000), Event("api_key.created"))
          .code(),
      absl::StatusCode::kNotFound);
}

TYPED_TEST(KeyStoreConformanceTest, ListSearchesSortsPagesAndFilters) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const std::vector<std::string> names = {"Charlie", "alpha-Worker",
                                          "bravo-worker", "delta"};
  std::vector<std::string> ids;
  for (const std::string& name : names) {
    storage::NewKey key = NewKey(tenant.id, name);
    ASSERT_TRUE(f.keys().InsertKey(key, Event("api_key.created")).ok());
    ids.push_back(key.id);
  }
  ASSERT_TRUE(f.keys().RevokeKey(tenant.id, ids[3], Event("r")).ok());

  storage::ListKeysQuery by_name;
  by_name.sort_by = storage::KeySortField::kName;
  by_name.descending = false;
  by_name.limit = 2;
  absl::StatusOr<storage::KeyPage> first =
      f.keys().ListKeys(tenant.id, by_name);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->total, 4);
  ASSERT_EQ(first->keys.size(), 2u);
  EXPECT_EQ(first->keys[0].name, "alpha-Worker");
  EXPECT_EQ(first->keys[1].name, "bravo-worker");
  by_name.page = 2;
  absl::StatusOr<storage::KeyPage> second =
      f.keys().ListKeys(tenant.id, by_name);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second->keys.size(), 2u);
  EXPECT_EQ(second->keys[0].name, "Charlie");
  EXPECT_EQ(second->keys[1].name, "delta");

  storage::ListKeysQuery search;
  search.search = "WORKER";
  search.sort_by = storage::KeySortField::kName;
  search.descending = true;
  absl::StatusOr<storage::KeyPage> found = f.keys().ListKeys(tenant.id, search);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->total, 2);
  ASSERT_EQ(found->keys.size(), 2u);
  EXPECT_EQ(found->keys[0].name, "bravo-worker");
  EXPECT_EQ(found->keys[1].name, "alpha-Worker");

  storage::ListKeysQuery by_id;
  by_id.search = ids[0];
  absl::StatusOr<storage::KeyPage> one = f.keys().ListKeys(tenant.id, by_id);
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_EQ(one->keys.size(), 1u);
  EXPECT_EQ(one->keys[0].id, ids[0]);

  storage::ListKeysQuery revoked;
  revoked.status = storage::KeyStatusFilter::kRevoked;
  absl::StatusOr<storage::KeyPage> gone = f.keys().ListKeys(tenant.id, revoked);
  ASSERT_TRUE(gone.ok()) << gone.status();
  ASSERT_EQ(gone->keys.size(), 1u);
  EXPECT_EQ(gone->keys[0].id, ids[3]);
  storage::ListKeysQuery active;
  active.status = storage::KeyStatusFilter::kActive;
  absl::StatusOr<storage::KeyPage> live = f.keys().ListKeys(tenant.id, active);
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_EQ(live->total, 3);
}

TYPED_TEST(KeyStoreConformanceTest, ExpiredIsJudgedByTheDatabaseClock) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  absl::StatusOr<absl::Time> now = f.keys().Now();
  ASSERT_TRUE(now.ok()) << now.status();
  storage::NewKey soon = NewKey(tenant.id, "soon");
  soon.expires_at = *now + absl::Milliseconds(200);
  ASSERT_TRUE(f.keys().InsertKey(soon, Event("api_key.created")).ok());
  ASSERT_TRUE(
      f.keys().InsertKey(NewKey(tenant.id, "forever"), Event("c")).ok());
  f.LetTimePass(absl::Milliseconds(300));

  storage::ListKeysQuery expired;
  expired.status = storage::KeyStatusFilter::kExpired;
  absl::StatusOr<storage::KeyPage> page = f.keys().ListKeys(tenant.id, expired);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->keys.size(), 1u);
  EXPECT_EQ(page->keys[0].id, soon.id);
  EXPECT_EQ(f.keys()
                .RotateKey(tenant.id, soon.id, {RandomDigest(), 1},
                           absl::ZeroDuration(), Event("api_key.rotated"))
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
}

TYPED_TEST(KeyStoreConformanceTest, RotationRetiresTheSecretForTheGrace) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const storage::NewKey key = NewKey(tenant.id);
  ASSERT_TRUE(f.keys().InsertKey(key, Event("api_key.created")).ok());
  const storage::StoredSecret second{RandomDigest(), 2};
  absl::StatusOr<storage::ApiKeyRecord> rotated = f.keys().RotateKey(
      tenant.id, key.id, second, absl::Hours(1), Event("api_key.rotated"));
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(rotated->version, 2);
  ASSERT_TRUE(rotated->rotated_at.has_value());
  ASSERT_TRUE(rotated->previous_secret_valid_until.has_value());
  EXPECT_EQ(*rotated->previous_secret_valid_until,
            *rotated->rotated_at + absl::Hours(1));

  absl::StatusOr<storage::VerifyRecord> verify = f.keys().LoadForVerify(key.id);
  ASSERT_TRUE(verify.ok()) << verify.status();
  EXPECT_EQ(verify->current.digest, second.digest);
  EXPECT_EQ(verify->current.pepper_version, 2);
  ASSERT_EQ(verify->retired.size(), 1u);
  EXPECT_EQ(verify->retired[0].secret.digest, key.secret.digest);
  EXPECT_EQ(verify->retired[0].valid_until,
            *rotated->rotated_at + absl::Hours(1));

  // A rotation without grace ends the earlier grace period too.
  const storage::StoredSecret third{RandomDigest(), 2};
  absl::StatusOr<storage::ApiKeyRecord> again = f.keys().RotateKey(
      tenant.id, key.id, third, absl::ZeroDuration(), Event("api_key.rotated"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->version, 3);
  EXPECT_FALSE(again->previous_secret_valid_until.has_value());
  verify = f.keys().LoadForVerify(key.id);
  ASSERT_TRUE(verify.ok()) << verify.status();
  ASSERT_EQ(verify->retired.size(), 2u);
  EXPECT_EQ(verify->retired[0].secret.digest, second.digest);
  EXPECT_EQ(verify->retired[1].secret.digest, key.secret.digest);
  for (const storage::RetiredSecret& retired : verify->retired) {
    EXPECT_LE(retired.valid_until, *again->rotated_at);
  }
  EXPECT_EQ(EventsOf(f, tenant.id, "api_key.rotated").size(), 2u);
}

TYPED_TEST(KeyStoreConformanceTest, RetiredSecretsAreCapped) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const storage::NewKey key = NewKey(tenant.id);
  ASSERT_TRUE(f.keys().InsertKey(key, Event("api_key.created")).ok());
  for (int i = 0; i < storage::kMaxRetiredSecrets + 3; ++i) {
    ASSERT_TRUE(f.keys()
                    .RotateKey(tenant.id, key.id, {RandomDigest(), 1},
                               absl::ZeroDuration(), Event("api_key.rotated"))
                    .ok());
  }
  absl::StatusOr<storage::VerifyRecord> verify = f.keys().LoadForVerify(key.id);
  ASSERT_TRUE(verify.ok()) << verify.status();
  EXPECT_EQ(verify->retired.size(),
            static_cast<size_t>(storage::kMaxRetiredSecrets));
  EXPECT_EQ(verify->key.version, storage::kMaxRetiredSecrets + 4);
}

TYPED_TEST(KeyStoreConformanceTest, RevokeIsPermanentAndWritesOnce) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const storage::NewKey key = NewKey(tenant.id);
  ASSERT_TRUE(f.keys().InsertKey(key, Event("api_key.created")).ok());
  absl::StatusOr<storage::RevokeResult> first =
      f.keys().RevokeKey(tenant.id, key.id, Event("api_key.revoked"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->changed);
  EXPECT_TRUE(first->key.revoked);
  EXPECT_TRUE(first->key.revoked_at.has_value());
  EXPECT_EQ(first->key.version, 2);
  absl::StatusOr<storage::RevokeResult> second =
      f.keys().RevokeKey(tenant.id, key.id, Event("api_key.revoked"));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->changed);
  EXPECT_EQ(second->key.version, 2);
  EXPECT_EQ(EventsOf(f, tenant.id, "api_key.revoked").size(), 1u);
  EXPECT_EQ(f.keys()
                .RotateKey(tenant.id, key.id, {RandomDigest(), 1},
                           absl::ZeroDuration(), Event("api_key.rotated"))
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
}

TYPED_TEST(KeyStoreConformanceTest, DeletedKeysVanishButAreRecognised) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const storage::NewKey key = NewKey(tenant.id);
  ASSERT_TRUE(f.keys().InsertKey(key, Event("api_key.created")).ok());
  absl::StatusOr<storage::DeleteResult> first =
      f.keys().DeleteKey(tenant.id, key.id, Event("api_key.deleted"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->changed);
  EXPECT_EQ(first->version, 2);
  EXPECT_EQ(f.keys().GetKey(tenant.id, key.id).status().code(),
            absl::StatusCode::kNotFound);
  absl::StatusOr<storage::KeyPage> page =
      f.keys().ListKeys(tenant.id, storage::ListKeysQuery());
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->total, 0);
  absl::StatusOr<storage::VerifyRecord> verify = f.keys().LoadForVerify(key.id);
  ASSERT_TRUE(verify.ok()) << verify.status();
  EXPECT_TRUE(verify->deleted);

  absl::StatusOr<storage::DeleteResult> second =
      f.keys().DeleteKey(tenant.id, key.id, Event("api_key.deleted"));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->changed);
  EXPECT_EQ(second->version, 2);
  EXPECT_EQ(EventsOf(f, tenant.id, "api_key.deleted").size(), 1u);
  EXPECT_EQ(f.keys().RevokeKey(tenant.id, key.id, Event("r")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(
      f.keys().DeleteKey(tenant.id, "neverhadit", Event("d")).status().code(),
      absl::StatusCode::kNotFound);
  EXPECT_EQ(f.keys().LoadForVerify("neverhadit").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace lumo::testing
