// The KeyStore contract (server/storage/key_store.h), run against every
// implementation.
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/crypto.h"
#include "server/storage/client_store.h"
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
  key.rate_limits = {{"hourly", 5000, absl::Hours(1)},
                     {"burst", 20, absl::Seconds(1)}};
  key.external_id = "svc-billing";
  key.metadata = {{"team", "payments"}, {"quote\"d", "<b>x</b>\t\\"}};
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
  // Named limits come back ordered by name.
  const std::vector<storage::KeyRateLimit> limits = {
      {"burst", 20, absl::Seconds(1)}, {"hourly", 5000, absl::Hours(1)}};
  EXPECT_EQ(got->rate_limits, limits);
  EXPECT_EQ(got->external_id, "svc-billing");
  EXPECT_EQ(got->metadata, key.metadata);
  EXPECT_FALSE(got->revoked);
  EXPECT_FALSE(got->disabled);
  EXPECT_FALSE(got->disabled_at.has_value());
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
  EXPECT_EQ(verify->key.external_id, "svc-billing");
  EXPECT_EQ(verify->key.metadata, key.metadata);
  EXPECT_EQ(verify->key.rate_limits, limits);
}

TYPED_TEST(KeyStoreConformanceTest, BadNamedLimitsAreRefusedAndWriteNothing) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const std::vector<std::vector<storage::KeyRateLimit>> bad = {
      {{"", 1, absl::Seconds(1)}},
      {{"a:b", 1, absl::Seconds(1)}},
      {{"a,b", 1, absl::Seconds(1)}},
      {{"zero", 0, absl::Seconds(1)}},
      {{"short", 1, absl::Microseconds(10)}},
      {{"same", 1, absl::Seconds(1)}, {"same", 2, absl::Seconds(2)}},
  };
  for (const std::vector<storage::KeyRateLimit>& limits : bad) {
    storage::NewKey key = NewKey(tenant.id);
    key.rate_limits = limits;
    EXPECT_TRUE(absl::IsInvalidArgument(
        f.keys().InsertKey(key, Event("api_key.created"))))
        << limits[0].name;
    EXPECT_TRUE(absl::IsNotFound(f.keys().GetKey(tenant.id, key.id).status()));
  }
}

// A create call answers with RecordOfNewKey instead of reading the key
// back: with created_at from GetKeyPolicyAt, that is exactly what the store
// then holds.
TYPED_TEST(KeyStoreConformanceTest,
           AKeyInsertedAtAPolicyReadIsItsNewKeyRecord) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  absl::StatusOr<absl::Time> before = f.keys().Now();
  ASSERT_TRUE(before.ok()) << before.status();
  absl::StatusOr<storage::KeyPolicyAt> at = f.keys().GetKeyPolicyAt(tenant.id);
  ASSERT_TRUE(at.ok()) << at.status();
  absl::StatusOr<absl::Time> after = f.keys().Now();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(at->policy, storage::KeyPolicy());
  EXPECT_LE(*before, at->db_now);
  EXPECT_LE(at->db_now, *after);

  storage::NewKey key = NewKey(tenant.id, "Reply");
  key.scopes = {"keys:read", "keys:write"};
  key.allowed_cidrs = {"10.0.0.0/8", "2001:db8::/32"};
  key.rate_limit_per_minute = 60;
  key.rate_limits = {{"hourly", 5000, absl::Hours(1)},
                     {"burst", 20, absl::Seconds(1)}};
  key.quota = storage::KeyQuota{250, 1000, absl::Hours(24)};
  key.external_id = "svc-reply";
  key.metadata = {{"team", "payments"}};
  key.expires_at = at->db_now + absl::Hours(48);
  key.created_at = at->db_now;
  ASSERT_TRUE(f.keys().InsertKey(key, Event("api_key.created")).ok());
  const storage::ApiKeyRecord want = storage::RecordOfNewKey(key);
  absl::StatusOr<storage::ApiKeyRecord> got =
      f.keys().GetKey(tenant.id, key.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->id, want.id);
  EXPECT_EQ(got->tenant_id, want.tenant_id);
  EXPECT_EQ(got->name, want.name);
  EXPECT_EQ(got->external_id, want.external_id);
  EXPECT_EQ(got->metadata, want.metadata);
  EXPECT_EQ(got->scopes, want.scopes);
  EXPECT_EQ(got->allowed_cidrs, want.allowed_cidrs);
  EXPECT_EQ(got->rate_limit_per_minute, want.rate_limit_per_minute);
  EXPECT_EQ(got->rate_limits, want.rate_limits);
  EXPECT_EQ(got->quota, want.quota);
  EXPECT_EQ(got->revoked, want.revoked);
  EXPECT_EQ(got->disabled, want.disabled);
  EXPECT_EQ(got->decoy, want.decoy);
  EXPECT_EQ(got->version, want.version);
  EXPECT_EQ(got->created_by_type, want.created_by_type);
  EXPECT_EQ(got->created_by_id, want.created_by_id);
  EXPECT_EQ(got->created_at, at->db_now);
  EXPECT_EQ(got->created_at, want.created_at);
  EXPECT_EQ(got->expires_at, want.expires_at);
  EXPECT_EQ(got->last_used_at, want.last_used_at);
  EXPECT_EQ(got->rotated_at, want.rotated_at);
  EXPECT_EQ(got->revoked_at, want.revoked_at);
  EXPECT_EQ(got->disabled_at, want.disabled_at);
  EXPECT_EQ(got->previous_secret_valid_until, want.previous_secret_valid_until);
}

// The read before a rotation: the key as GetKey reads it and the policy as
// GetKeyPolicy and GetKeyPolicyAt read it, in one read.
TYPED_TEST(KeyStoreConformanceTest, KeyWithPolicyReadsBothTogether) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const storage::Tenant other = NewTenant(f);
  storage::NewKey key = NewKey(tenant.id, "With policy");
  key.scopes = {"keys:read"};
  ASSERT_TRUE(f.keys().InsertKey(key, Event("api_key.created")).ok());

  absl::StatusOr<storage::KeyWithPolicy> read =
      f.keys().GetKeyWithPolicy(tenant.id, key.id);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->policy, storage::KeyPolicy());  // never written: defaults
  EXPECT_EQ(read->key.id, key.id);
  EXPECT_EQ(read->key.name, "With policy");
  EXPECT_THAT(read->key.scopes, ElementsAre("keys:read"));
  EXPECT_EQ(read->key.version, 1);

  storage::SettingsUpdate update;
  update.key_max_lifetime_days = 90;
  update.key_rotation_period_days = 30;
  ASSERT_TRUE(
      f.clients()
          .UpdateSettings(tenant.id, update, Event("settings.updated"), nullptr)
          .ok());
  absl::StatusOr<storage::KeyPolicy> policy = f.keys().GetKeyPolicy(tenant.id);
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->max_lifetime_days, 90);
  read = f.keys().GetKeyWithPolicy(tenant.id, key.id);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->policy, *policy);
  absl::StatusOr<storage::ApiKeyRecord> got =
      f.keys().GetKey(tenant.id, key.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(read->key.created_at, got->created_at);
  EXPECT_EQ(read->key.version, got->version);
  absl::StatusOr<storage::KeyPolicyAt> at = f.keys().GetKeyPolicyAt(tenant.id);
  ASSERT_TRUE(at.ok()) << at.status();
  EXPECT_EQ(at->policy, *policy);

  // Like GetKey: another tenant's key and a malformed id are not found.
  EXPECT_TRUE(
      absl::IsNotFound(f.keys().GetKeyWithPolicy(other.id, key.id).status()));
  EXPECT_TRUE(absl::IsNotFound(
      f.keys().GetKeyWithPolicy(tenant.id, "no-such").status()));
}

TYPED_TEST(KeyStoreConformanceTest, AQuotaIsStoredWithItsKey) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  storage::NewKey plain = NewKey(tenant.id);
  ASSERT_TRUE(f.keys().InsertKey(plain, Event("api_key.created")).ok());
  storage::NewKey key = NewKey(tenant.id);
  key.quota = storage::KeyQuota{250, 1000, absl::Hours(24)};
  ASSERT_TRUE(f.keys().InsertKey(key, Event("api_key.created")).ok());
  absl::StatusOr<storage::ApiKeyRecord> got =
      f.keys().GetKey(tenant.id, key.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->quota, key.quota);
  absl::StatusOr<storage::VerifyRecord> verify = f.keys().LoadForVerify(key.id);
  ASSERT_TRUE(verify.ok()) << verify.status();
  EXPECT_EQ(verify->key.quota, key.quota);
  // The shared counters hold the same balance.
  absl::StatusOr<storage::QuotaState> state = f.counters().GetQuota(key.id);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->remaining, 250);
  // A key inserted without one has none.
  got = f.keys().GetKey(tenant.id, plain.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(got->quota.has_value());
  EXPECT_TRUE(absl::IsNotFound(f.counters().GetQuota(plain.id).status()));
}

TYPED_TEST(KeyStoreConformanceTest, BadQuotasAreRefusedAndWriteNothing) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const std::vector<storage::KeyQuota> bad = {
      {-1, 0, absl::ZeroDuration()},
      {10, 5, absl::ZeroDuration()},
      {10, 0, absl::Seconds(5)},
      {10, 5, absl::Microseconds(10)},
  };
  for (const storage::KeyQuota& quota : bad) {
    storage::NewKey key = NewKey(tenant.id);
    key.quota = quota;
    EXPECT_TRUE(absl::IsInvalidArgument(
        f.keys().InsertKey(key, Event("api_key.created"))))
        << quota.remaining << " " << quota.refill_amount;
    EXPECT_TRUE(absl::IsNotFound(f.keys().GetKey(tenant.id, key.id).status()));
  }
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

// The ids `query` lists when walked page by page with positions (each
// page's last key), checking each page's size and has_more on the way.
std::vector<std::string> WalkedIds(StoreFixture& f, int64_t tenant_id,
                                   storage::ListKeysQuery query) {
  std::vector<std::string> ids;
  query.count.wanted = false;
  for (int pages = 0; pages < 100; ++pages) {
    absl::StatusOr<storage::KeyPage> page = f.keys().ListKeys(tenant_id, query);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) break;
    EXPECT_EQ(page->total_kind, storage::TotalKind::kNotCounted);
    EXPECT_LE(page->keys.size(), static_cast<size_t>(query.limit));
    for (const storage::ApiKeyRecord& key : page->keys) ids.push_back(key.id);
    if (!page->has_more) break;
    EXPECT_EQ(page->keys.size(), static_cast<size_t>(query.limit));
    if (page->keys.empty()) break;
    query.after = storage::PositionOf(page->keys.back(), query.sort_by);
  }
  return ids;
}

TYPED_TEST(KeyStoreConformanceTest, ListPagesWithPositionsInEverySortOrder) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  absl::StatusOr<absl::Time> now = f.keys().Now();
  ASSERT_TRUE(now.ok()) << now.status();
  const absl::Duration day = absl::Hours(24);
  // Names with ties (also across letter case), expiries and last uses with
  // ties and NULLs, creation times spread by ageing.
  const std::vector<std::string> names = {"b", "A", "a", "c", "B", "b", "a",
                                          "d", "c", "e", "a", "B", "f"};
  std::vector<std::string> ids;
  for (size_t i = 0; i < names.size(); ++i) {
    storage::NewKey key = NewKey(tenant.id, names[i]);
    if (i % 3 != 0)
      key.expires_at = *now + day * (10 + static_cast<int>(i % 4));
    ASSERT_TRUE(f.keys().InsertKey(key, Event("api_key.created")).ok());
    ids.push_back(key.id);
  }
  for (size_t i = 0; i < ids.size(); i += 2) {
    storage::PendingAuditEvent used;
    used.tenant_id = tenant.id;
    used.event = Event("api_key.verified");
    used.used_key_id = ids[i];
    ASSERT_TRUE(f.audit().AppendEvents({used}).ok());
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    f.AgeKey(ids[i], day * static_cast<int>((i * 7) % 5));
  }
  ASSERT_TRUE(f.keys().RevokeKey(tenant.id, ids[4], Event("r")).ok());
  ASSERT_TRUE(f.keys().DeleteKey(tenant.id, ids[5], Event("d")).ok());

  using Sort = storage::KeySortField;
  for (Sort sort :
       {Sort::kCreatedAt, Sort::kName, Sort::kLastUsedAt, Sort::kExpiresAt}) {
    for (bool descending : {true, false}) {
      for (storage::KeyStatusFilter status :
           {storage::KeyStatusFilter::kAny,
            storage::KeyStatusFilter::kActive}) {
        storage::ListKeysQuery all;
        all.sort_by = sort;
        all.descending = descending;
        all.status = status;
        all.limit = 100;
        absl::StatusOr<storage::KeyPage> whole =
            f.keys().ListKeys(tenant.id, all);
        ASSERT_TRUE(whole.ok()) << whole.status();
        EXPECT_FALSE(whole->has_more);
        std::vector<std::string> expected;
        for (const storage::ApiKeyRecord& key : whole->keys) {
          expected.push_back(key.id);
        }
        ASSERT_EQ(expected.size(),
                  status == storage::KeyStatusFilter::kAny ? 12u : 11u);
        for (int limit : {1, 3, 5}) {
          storage::ListKeysQuery walk = all;
          walk.limit = limit;
          EXPECT_EQ(WalkedIds(f, tenant.id, walk), expected)
              << "sort " << static_cast<int>(sort) << " descending "
              << descending << " limit " << limit;
          // The page-number form gives the same pages.
          std::vector<std::string> numbered;
          for (walk.page = 1;; ++walk.page) {
            absl::StatusOr<storage::KeyPage> page =
                f.keys().ListKeys(tenant.id, walk);
            ASSERT_TRUE(page.ok()) << page.status();
            for (const storage::ApiKeyRecord& key : page->keys) {
              numbered.push_back(key.id);
            }
            if (!page->has_more) break;
          }
          EXPECT_EQ(numbered, expected) << "sort " << static_cast<int>(sort)
                                        << " page numbers, limit " << limit;
        }
      }
    }
  }

  // A search combines with positions.
  storage::ListKeysQuery search;
  search.search = "B";
  search.sort_by = Sort::kName;
  search.descending = false;
  search.limit = 1;
  storage::ListKeysQuery search_all = search;
  search_all.limit = 100;
  absl::StatusOr<storage::KeyPage> whole =
      f.keys().ListKeys(tenant.id, search_all);
  ASSERT_TRUE(whole.ok()) << whole.status();
  std::vector<std::string> expected;
  for (const storage::ApiKeyRecord& key : whole->keys) {
    expected.push_back(key.id);
  }
  // "b", "B" (revoked) and "B"; the deleted "b" is not listed.
  EXPECT_GE(expected.size(), 3u);
  EXPECT_EQ(WalkedIds(f, tenant.id, search), expected);
}

TYPED_TEST(KeyStoreConformanceTest, ListCountsTheTotalOnlyWhenAskedUpToACap) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(f.keys()
                    .InsertKey(NewKey(tenant.id, absl::StrCat("k", i)),
                               Event("api_key.created"))
                    .ok());
  }
  storage::ListKeysQuery query;
  query.limit = 2;
  query.count.cap = 5;
  absl::StatusOr<storage::KeyPage> page = f.keys().ListKeys(tenant.id, query);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->total, 5);
  EXPECT_EQ(page->total_kind, storage::TotalKind::kAtLeast);
  EXPECT_TRUE(page->has_more);
  query.count.cap = 7;
  page = f.keys().ListKeys(tenant.id, query);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->total, 7);
  EXPECT_EQ(page->total_kind, storage::TotalKind::kExact);
  query.count.wanted = false;
  page = f.keys().ListKeys(tenant.id, query);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->total, 0);
  EXPECT_EQ(page->total_kind, storage::TotalKind::kNotCounted);
  ASSERT_EQ(page->keys.size(), 2u);
  // The last page says so; a position with a page other than 1 is refused.
  query.page = 4;
  page = f.keys().ListKeys(tenant.id, query);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->keys.size(), 1u);
  EXPECT_FALSE(page->has_more);
  query.page = 2;
  query.after = storage::PositionOf(page->keys[0], query.sort_by);
  EXPECT_EQ(f.keys().ListKeys(tenant.id, query).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The ids of the tenant's keys that `query` lists, in list order.
std::vector<std::string> ListedIds(StoreFixture& f, int64_t tenant_id,
                                   storage::ListKeysQuery query) {
  query.sort_by = storage::KeySortField::kName;
  query.descending = false;
  query.limit = 100;
  absl::StatusOr<storage::KeyPage> page = f.keys().ListKeys(tenant_id, query);
  EXPECT_TRUE(page.ok()) << page.status();
  std::vector<std::string> ids;
  if (!page.ok()) return ids;
  EXPECT_EQ(page->total, static_cast<int64_t>(page->keys.size()));
  for (const storage::ApiKeyRecord& key : page->keys) ids.push_back(key.id);
  return ids;
}

std::vector<std::string> InState(StoreFixture& f, int64_t tenant_id,
                                 storage::KeyStateFilter state) {
  storage::ListKeysQuery query;
  query.state = state;
  return ListedIds(f, tenant_id, query);
}

TYPED_TEST(KeyStoreConformanceTest, ListFiltersByStateUnderTheTenantsPolicy) {
  StoreFixture& f = this->f();
  using State = storage::KeyStateFilter;
  const storage::Tenant tenant = NewTenant(f);
  absl::StatusOr<absl::Time> now = f.keys().Now();
  ASSERT_TRUE(now.ok()) << now.status();
  const absl::Duration day = absl::Hours(24);
  // Named so that the list (by name) gives this order.
  storage::NewKey a = NewKey(tenant.id, "a-expires-in-3-days");
  a.expires_at = *now + day * 3;
  storage::NewKey b = NewKey(tenant.id, "b-expires-in-30-days");
  b.expires_at = *now + day * 30;
  storage::NewKey c = NewKey(tenant.id, "c-disabled");
  storage::NewKey d = NewKey(tenant.id, "d-revoked-expiring");
  d.expires_at = *now + day * 3;
  storage::NewKey e = NewKey(tenant.id, "e-31-days-old");
  storage::NewKey g = NewKey(tenant.id, "g-61-days-old");
  for (const storage::NewKey* key : {&a, &b, &c, &d, &e, &g}) {
    ASSERT_TRUE(f.keys().InsertKey(*key, Event("api_key.created")).ok());
  }
  ASSERT_TRUE(f.keys().SetKeyDisabled(tenant.id, c.id, true, Event("x")).ok());
  ASSERT_TRUE(f.keys().RevokeKey(tenant.id, d.id, Event("x")).ok());
  f.AgeKey(e.id, day * 31);
  f.AgeKey(g.id, day * 61);

  // No settings row: the default policy (a 7-day expiry warning only).
  EXPECT_THAT(InState(f, tenant.id, State::kExpiring), ElementsAre(a.id));
  EXPECT_THAT(InState(f, tenant.id, State::kRotationDue), ElementsAre());
  EXPECT_THAT(InState(f, tenant.id, State::kInactive), ElementsAre());
  EXPECT_THAT(InState(f, tenant.id, State::kDisabled), ElementsAre(c.id));
  absl::StatusOr<storage::VerifyRecord> loaded = f.keys().LoadForVerify(a.id);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->policy, storage::KeyPolicy());

  storage::SettingsUpdate update;
  update.key_rotation_period_days = 30;
  update.key_inactive_after_days = 60;
  update.key_expiry_warning_days = 40;
  ASSERT_TRUE(
      f.clients()
          .UpdateSettings(tenant.id, update, Event("settings.updated"), nullptr)
          .ok());
  EXPECT_THAT(InState(f, tenant.id, State::kExpiring), ElementsAre(a.id, b.id));
  EXPECT_THAT(InState(f, tenant.id, State::kRotationDue),
              ElementsAre(e.id, g.id));
  EXPECT_THAT(InState(f, tenant.id, State::kInactive), ElementsAre(g.id));
  loaded = f.keys().LoadForVerify(g.id);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->policy.rotation_period_days, 30);
  EXPECT_EQ(loaded->policy.inactive_after_days, 60);
  EXPECT_EQ(loaded->policy.expiry_warning_days, 40);

  // A rotation restarts the period; the filter combines with the status.
  ASSERT_TRUE(f.keys()
                  .RotateKey(tenant.id, e.id, {RandomDigest(), 1},
                             absl::ZeroDuration(), Event("api_key.rotated"))
                  .ok());
  EXPECT_THAT(InState(f, tenant.id, State::kRotationDue), ElementsAre(g.id));
  storage::ListKeysQuery disabled_active;
  disabled_active.state = State::kDisabled;
  disabled_active.status = storage::KeyStatusFilter::kActive;
  EXPECT_THAT(ListedIds(f, tenant.id, disabled_active), ElementsAre());
  // A disabled key's status is "disabled", not "active".
  storage::ListKeysQuery by_status;
  by_status.status = storage::KeyStatusFilter::kDisabled;
  EXPECT_THAT(ListedIds(f, tenant.id, by_status), ElementsAre(c.id));
  by_status.status = storage::KeyStatusFilter::kActive;
  EXPECT_THAT(ListedIds(f, tenant.id, by_status),
              ElementsAre(a.id, b.id, e.id, g.id));
}

TYPED_TEST(KeyStoreConformanceTest, SearchMatchesAWholeExternalId) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  storage::NewKey owned = NewKey(tenant.id, "owned");
  owned.external_id = "svc-Billing-7";
  ASSERT_TRUE(f.keys().InsertKey(owned, Event("api_key.created")).ok());
  ASSERT_TRUE(f.keys().InsertKey(NewKey(tenant.id, "other"), Event("c")).ok());
  storage::ListKeysQuery query;
  query.search = "SVC-billing-7";
  EXPECT_THAT(ListedIds(f, tenant.id, query), ElementsAre(owned.id));
  query.search = "svc-Billing";  // a part is not enough
  EXPECT_THAT(ListedIds(f, tenant.id, query), ElementsAre());
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

// What a verification reads of a record (not the clock of the read).
std::string VerifyView(const storage::VerifyRecord& r) {
  std::string out = absl::StrCat(
      r.key.id, " tenant=", r.key.tenant_id, "/", r.tenant_slug,
      " version=", r.key.version, " revoked=", r.key.revoked,
      " deleted=", r.deleted, " decoy=", r.key.decoy,
      " current=", core::HexEncode(core::AsStringView(r.current.digest)), "@",
      r.current.pepper_version, " grace_until=",
      r.key.previous_secret_valid_until.has_value()
          ? absl::FormatTime(*r.key.previous_secret_valid_until)
          : "none",
      " retired=");
  for (const storage::RetiredSecret& retired : r.retired) {
    absl::StrAppend(&out,
                    core::HexEncode(core::AsStringView(retired.secret.digest)),
                    "@", retired.secret.pepper_version, "<",
                    absl::FormatTime(retired.valid_until), ",");
  }
  absl::StrAppend(&out, " limits=");
  for (const storage::KeyRateLimit& l : r.key.rate_limits) {
    absl::StrAppend(&out, l.name, ":", l.limit, "/",
                    absl::FormatDuration(l.duration), ",");
  }
  if (r.key.quota.has_value()) {
    absl::StrAppend(&out, " quota=", r.key.quota->remaining, "+",
                    r.key.quota->refill_amount, "/",
                    absl::FormatDuration(r.key.quota->refill_interval));
  }
  return out;
}

TYPED_TEST(KeyStoreConformanceTest,
           LoadManyForVerifyReadsWhatLoadForVerifyReads) {
  StoreFixture& f = this->f();
  const storage::Tenant a = NewTenant(f);
  const storage::Tenant b = NewTenant(f);
  const storage::NewKey plain = NewKey(a.id, "plain");
  const storage::NewKey rotated = NewKey(a.id, "rotated");
  const storage::NewKey deleted = NewKey(b.id, "deleted");
  const storage::NewKey revoked = NewKey(b.id, "revoked");
  // Limits and a quota (a store may read them apart from the key).
  const storage::NewKey limited = [&] {
    storage::NewKey key = NewKey(b.id, "limited");
    key.rate_limits = {{"burst", 5, absl::Seconds(1)},
                       {"daily", 900, absl::Hours(24)}};
    key.quota = storage::KeyQuota{40, 10, absl::Hours(1)};
    return key;
  }();
  for (const storage::NewKey* key :
       {&plain, &rotated, &deleted, &revoked, &limited}) {
    ASSERT_TRUE(f.keys().InsertKey(*key, Event("api_key.created")).ok());
  }
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(f.keys()
                    .RotateKey(a.id, rotated.id, {RandomDigest(), 1},
                               absl::Hours(1), Event("api_key.rotated"))
                    .ok());
  }
  ASSERT_TRUE(f.keys().DeleteKey(b.id, deleted.id, Event("d")).ok());
  ASSERT_TRUE(f.keys().RevokeKey(b.id, revoked.id, Event("r")).ok());

  // Ids no key has around and between the keys' (more than a few hundred,
  // so that a store reading in chunks crosses their borders), repeats and
  // strings that cannot be ids.
  std::vector<std::string> ids = {"", "bad id!", plain.id};
  for (int i = 0; i < 700; ++i) {
    ids.push_back(absl::StrCat("Nq", 1000000000 + i));
    if (i == 240) ids.push_back(rotated.id);
    if (i == 260) ids.push_back(deleted.id);
    if (i == 500) ids.push_back(plain.id);
    if (i == 510) ids.push_back(limited.id);
  }
  ids.push_back(revoked.id);
  absl::StatusOr<std::vector<storage::VerifyRecord>> many =
      f.keys().LoadManyForVerify(ids);
  ASSERT_TRUE(many.ok()) << many.status();

  std::map<std::string, std::string> got;
  for (const storage::VerifyRecord& r : *many) {
    EXPECT_TRUE(got.emplace(r.key.id, VerifyView(r)).second) << r.key.id;
  }
  std::map<std::string, std::string> want;
  for (const storage::NewKey* key :
       {&plain, &rotated, &deleted, &revoked, &limited}) {
    absl::StatusOr<storage::VerifyRecord> one = f.keys().LoadForVerify(key->id);
    ASSERT_TRUE(one.ok()) << one.status();
    want.emplace(key->id, VerifyView(*one));
  }
  EXPECT_EQ(got, want);
  for (const storage::VerifyRecord& r : *many) {
    if (r.key.id == rotated.id) EXPECT_EQ(r.retired.size(), 2u);
    if (r.key.id == plain.id) EXPECT_EQ(r.tenant_slug, a.slug);
    if (r.key.id == limited.id) {
      EXPECT_EQ(r.key.rate_limits.size(), 2u);
      EXPECT_EQ(r.key.quota, limited.quota);
    }
  }

  absl::StatusOr<std::vector<storage::VerifyRecord>> none =
      f.keys().LoadManyForVerify({"bad id!", "Nq1000000001"});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
  none = f.keys().LoadManyForVerify({});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
}

TYPED_TEST(KeyStoreConformanceTest, EndingAGraceKillsOnlyThatRetiredSecret) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const storage::NewKey key = NewKey(tenant.id);
  ASSERT_TRUE(f.keys().InsertKey(key, Event("api_key.created")).ok());
  const storage::StoredSecret second{RandomDigest(), 1};
  ASSERT_TRUE(f.keys()
                  .RotateKey(tenant.id, key.id, second, absl::Hours(1),
                             Event("api_key.rotated"))
                  .ok());
  const storage::StoredSecret third{RandomDigest(), 1};
  ASSERT_TRUE(f.keys()
                  .RotateKey(tenant.id, key.id, third, absl::Hours(1),
                             Event("api_key.rotated"))
                  .ok());

  // The first secret's grace ends; the second keeps its own.
  absl::StatusOr<storage::UpdateResult> ended = f.keys().EndRetiredSecretGrace(
      tenant.id, key.id, key.secret.digest, Event("api_key.updated"));
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_TRUE(ended->changed);
  EXPECT_EQ(ended->key.version, 4);
  absl::StatusOr<storage::VerifyRecord> verify = f.keys().LoadForVerify(key.id);
  ASSERT_TRUE(verify.ok()) << verify.status();
  EXPECT_EQ(verify->current.digest, third.digest);
  ASSERT_EQ(verify->retired.size(), 2u);
  EXPECT_EQ(verify->retired[0].secret.digest, second.digest);
  EXPECT_GT(verify->retired[0].valid_until, verify->key.db_now);
  EXPECT_EQ(verify->retired[1].secret.digest, key.secret.digest);
  EXPECT_LE(verify->retired[1].valid_until, verify->key.db_now);
  EXPECT_EQ(EventsOf(f, tenant.id, "api_key.updated").size(), 1u);

  // Again, or the current secret, or another tenant: nothing written.
  ended = f.keys().EndRetiredSecretGrace(tenant.id, key.id, key.secret.digest,
                                         Event("api_key.updated"));
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_FALSE(ended->changed);
  EXPECT_EQ(ended->key.version, 4);
  ended = f.keys().EndRetiredSecretGrace(tenant.id, key.id, third.digest,
                                         Event("api_key.updated"));
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_FALSE(ended->changed);
  EXPECT_EQ(EventsOf(f, tenant.id, "api_key.updated").size(), 1u);
  const storage::Tenant other = NewTenant(f);
  EXPECT_EQ(f.keys()
                .EndRetiredSecretGrace(other.id, key.id, second.digest,
                                       Event("api_key.updated"))
                .status()
                .code(),
            absl::StatusCode::kNotFound);
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

// The feed rows of `key_id` after `after`, as "<type>@<version>".
std::vector<std::string> ChangesOf(StoreFixture& f, absl::string_view key_id,
                                   int64_t after) {
  std::vector<std::string> out;
  absl::StatusOr<storage::FeedRead> read =
      f.feed().ReadChanges(after, storage::FeedPosition(), 10000);
  EXPECT_TRUE(read.ok()) << read.status();
  if (!read.ok()) return out;
  for (const storage::KeyChange& c : read->changes) {
    if (c.key_id == key_id) {
      out.push_back(absl::StrCat(c.change_type, "@", c.key_version));
    }
  }
  return out;
}

TYPED_TEST(KeyStoreConformanceTest, UpdateKeyAppliesOnlyTheEditAndFeedsIt) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  storage::NewKey key = NewKey(tenant.id, "before");
  key.scopes = {"admin:read", "admin:users"};
  key.allowed_cidrs = {"10.0.0.0/8"};
  key.rate_limit_per_minute = 100;
  key.metadata = {{"team", "a"}};
  ASSERT_TRUE(f.keys().InsertKey(key, Event("api_key.created")).ok());
  absl::StatusOr<int64_t> head = f.feed().Head();
  ASSERT_TRUE(head.ok()) << head.status();
  absl::StatusOr<absl::Time> now = f.keys().Now();
  ASSERT_TRUE(now.ok()) << now.status();
  const absl::Time expiry =
      absl::FromUnixMicros(absl::ToUnixMicros(*now)) + absl::Hours(5);

  storage::KeyEdit edit;
  edit.name = "after";
  edit.scopes = std::vector<std::string>{"admin:read"};
  edit.expires_at = expiry;
  edit.external_id = "owner-7";
  edit.metadata = core::StringMap{{"team", "b"}, {"env", "prod"}};
  absl::StatusOr<storage::UpdateResult> updated =
      f.keys().UpdateKey(tenant.id, key.id, 1, edit, Event("api_key.updated"));
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_TRUE(updated->changed);
  EXPECT_EQ(updated->key.version, 2);
  EXPECT_EQ(updated->key.name, "after");

  absl::StatusOr<storage::ApiKeyRecord> got =
      f.keys().GetKey(tenant.id, key.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->name, "after");
  EXPECT_THAT(got->scopes, ElementsAre("admin:read"));
  EXPECT_THAT(got->allowed_cidrs, ElementsAre("10.0.0.0/8"));  // not in edit
  EXPECT_EQ(got->rate_limit_per_minute, 100);                  // not in edit
  EXPECT_EQ(got->expires_at, expiry);
  EXPECT_EQ(got->external_id, "owner-7");
  EXPECT_EQ(got->metadata, *edit.metadata);
  EXPECT_EQ(got->version, 2);
  EXPECT_EQ(EventsOf(f, tenant.id, "api_key.updated").size(), 1u);
  EXPECT_THAT(ChangesOf(f, key.id, *head), ElementsAre("updated@2"));

  // Clearing: no expiry, any address, no limit, no owner, no metadata.
  storage::KeyEdit clear;
  clear.expires_at = std::optional<absl::Time>();
  clear.allowed_cidrs = std::vector<std::string>();
  clear.rate_limit_per_minute = 0;
  clear.external_id = "";
  clear.metadata = core::StringMap();
  ASSERT_TRUE(
      f.keys()
          .UpdateKey(tenant.id, key.id, 2, clear, Event("api_key.updated"))
          .ok());
  got = f.keys().GetKey(tenant.id, key.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(got->expires_at.has_value());
  EXPECT_TRUE(got->allowed_cidrs.empty());
  EXPECT_EQ(got->rate_limit_per_minute, 0);
  EXPECT_EQ(got->external_id, "");
  EXPECT_TRUE(got->metadata.empty());
  EXPECT_EQ(got->version, 3);
}

TYPED_TEST(KeyStoreConformanceTest, AnEditReplacesTheNamedLimitsWhole) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  storage::NewKey key = NewKey(tenant.id);
  key.rate_limits = {{"burst", 20, absl::Seconds(1)},
                     {"hourly", 5000, absl::Hours(1)}};
  ASSERT_TRUE(f.keys().InsertKey(key, Event("api_key.created")).ok());
  // A key of the same tenant keeps its own limits.
  storage::NewKey other = NewKey(tenant.id);
  other.rate_limits = {{"hourly", 7, absl::Hours(1)}};
  ASSERT_TRUE(f.keys().InsertKey(other, Event("api_key.created")).ok());

  storage::KeyEdit edit;
  edit.rate_limits = std::vector<storage::KeyRateLimit>{
      {"minute", 50, absl::Minutes(1)}, {"daily", 900, absl::Hours(24)}};
  absl::StatusOr<storage::UpdateResult> updated =
      f.keys().UpdateKey(tenant.id, key.id, 1, edit, Event("api_key.updated"));
  ASSERT_TRUE(updated.ok()) << updated.status();
  // Ordered by name, like every record.
  const std::vector<storage::KeyRateLimit> after = {
      {"daily", 900, absl::Hours(24)}, {"minute", 50, absl::Minutes(1)}};
  EXPECT_EQ(updated->key.rate_limits, after);
  absl::StatusOr<storage::ApiKeyRecord> got =
      f.keys().GetKey(tenant.id, key.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->rate_limits, after);
  EXPECT_EQ(got->version, 2);
  absl::StatusOr<storage::VerifyRecord> verify = f.keys().LoadForVerify(key.id);
  ASSERT_TRUE(verify.ok()) << verify.status();
  EXPECT_EQ(verify->key.rate_limits, after);
  absl::StatusOr<storage::ApiKeyRecord> untouched =
      f.keys().GetKey(tenant.id, other.id);
  ASSERT_TRUE(untouched.ok()) << untouched.status();
  EXPECT_EQ(untouched->rate_limits, other.rate_limits);

  // Bad limits are refused and change nothing.
  storage::KeyEdit bad;
  bad.rate_limits = std::vector<storage::KeyRateLimit>{
      {"same", 1, absl::Seconds(1)}, {"same", 2, absl::Seconds(2)}};
  EXPECT_TRUE(absl::IsInvalidArgument(
      f.keys()
          .UpdateKey(tenant.id, key.id, 2, bad, Event("api_key.updated"))
          .status()));
  got = f.keys().GetKey(tenant.id, key.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->rate_limits, after);
  EXPECT_EQ(got->version, 2);

  // An empty list removes them all.
  storage::KeyEdit none;
  none.rate_limits = std::vector<storage::KeyRateLimit>();
  ASSERT_TRUE(
      f.keys()
          .UpdateKey(tenant.id, key.id, 2, none, Event("api_key.updated"))
          .ok());
  got = f.keys().GetKey(tenant.id, key.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->rate_limits.empty());
  EXPECT_EQ(EventsOf(f, tenant.id, "api_key.updated").size(), 2u);
}

TYPED_TEST(KeyStoreConformanceTest, UpdateKeyRefusesWhatItMayNotChange) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const storage::NewKey key = NewKey(tenant.id);
  ASSERT_TRUE(f.keys().InsertKey(key, Event("api_key.created")).ok());
  storage::KeyEdit rename;
  rename.name = "renamed";

  EXPECT_EQ(f.keys()
                .UpdateKey(tenant.id, key.id, 1, storage::KeyEdit(),
                           Event("api_key.updated"))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      f.keys()
          .UpdateKey(tenant.id, key.id, 7, rename, Event("api_key.updated"))
          .status()
          .code(),
      absl::StatusCode::kAborted);
  const storage::Tenant other = NewTenant(f);
  EXPECT_EQ(
      f.keys()
          .UpdateKey(other.id, key.id, 1, rename, Event("api_key.updated"))
          .status()
          .code(),
      absl::StatusCode::kNotFound);
  EXPECT_TRUE(EventsOf(f, tenant.id, "api_key.updated").empty());

  // An expired key: other fields may change, its expiry may not.
  const storage::Tenant t2 = NewTenant(f);
  storage::NewKey expiring = NewKey(t2.id);
  absl::StatusOr<absl::Time> now = f.keys().Now();
  ASSERT_TRUE(now.ok()) << now.status();
  expiring.expires_at =
      absl::FromUnixMicros(absl::ToUnixMicros(*now)) + absl::Seconds(1);
  ASSERT_TRUE(f.keys().InsertKey(expiring, Event("api_key.created")).ok());
  f.LetTimePass(absl::Seconds(2));
  storage::KeyEdit extend;
  extend.expires_at = *now + absl::Hours(1);
  EXPECT_EQ(
      f.keys()
          .UpdateKey(t2.id, expiring.id, 1, extend, Event("api_key.updated"))
          .status()
          .code(),
      absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(
      f.keys()
          .UpdateKey(t2.id, expiring.id, 1, rename, Event("api_key.updated"))
          .ok());

  // A revoked key: nothing.
  ASSERT_TRUE(f.keys().RevokeKey(tenant.id, key.id, Event("x")).ok());
  EXPECT_EQ(
      f.keys()
          .UpdateKey(tenant.id, key.id, 2, rename, Event("api_key.updated"))
          .status()
          .code(),
      absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<storage::ApiKeyRecord> got =
      f.keys().GetKey(tenant.id, key.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->name, key.name);
  EXPECT_TRUE(EventsOf(f, tenant.id, "api_key.updated").empty());
}

TYPED_TEST(KeyStoreConformanceTest, DisableAndEnableChangeOnceEach) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const storage::NewKey key = NewKey(tenant.id);
  ASSERT_TRUE(f.keys().InsertKey(key, Event("api_key.created")).ok());
  absl::StatusOr<int64_t> head = f.feed().Head();
  ASSERT_TRUE(head.ok()) << head.status();

  absl::StatusOr<storage::UpdateResult> off = f.keys().SetKeyDisabled(
      tenant.id, key.id, true, Event("api_key.disabled"));
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_TRUE(off->changed);
  EXPECT_TRUE(off->key.disabled);
  ASSERT_TRUE(off->key.disabled_at.has_value());
  EXPECT_EQ(off->key.version, 2);
  absl::StatusOr<storage::VerifyRecord> verify = f.keys().LoadForVerify(key.id);
  ASSERT_TRUE(verify.ok()) << verify.status();
  EXPECT_TRUE(verify->key.disabled);
  EXPECT_EQ(verify->key.version, off->key.version);

  absl::StatusOr<storage::UpdateResult> again = f.keys().SetKeyDisabled(
      tenant.id, key.id, true, Event("api_key.disabled"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->changed);
  EXPECT_EQ(again->key.version, 2);
  EXPECT_EQ(EventsOf(f, tenant.id, "api_key.disabled").size(), 1u);

  absl::StatusOr<storage::UpdateResult> on = f.keys().SetKeyDisabled(
      tenant.id, key.id, false, Event("api_key.enabled"));
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_TRUE(on->changed);
  EXPECT_FALSE(on->key.disabled);
  EXPECT_FALSE(on->key.disabled_at.has_value());
  EXPECT_EQ(on->key.version, 3);
  absl::StatusOr<storage::ApiKeyRecord> got =
      f.keys().GetKey(tenant.id, key.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(got->disabled);
  EXPECT_THAT(ChangesOf(f, key.id, *head),
              ElementsAre("disabled@2", "enabled@3"));

  // Pinned to a version: applied at that version only.
  EXPECT_EQ(f.keys()
                .SetKeyDisabled(tenant.id, key.id, true, int64_t{2},
                                Event("api_key.disabled"))
                .status()
                .code(),
            absl::StatusCode::kAborted);
  EXPECT_FALSE(f.keys().GetKey(tenant.id, key.id)->disabled);
  absl::StatusOr<storage::UpdateResult> pinned = f.keys().SetKeyDisabled(
      tenant.id, key.id, true, int64_t{3}, Event("api_key.disabled"));
  ASSERT_TRUE(pinned.ok()) << pinned.status();
  EXPECT_TRUE(pinned->changed);
  EXPECT_EQ(pinned->key.version, 4);

  ASSERT_TRUE(f.keys().RevokeKey(tenant.id, key.id, Event("x")).ok());
  EXPECT_EQ(
      f.keys()
          .SetKeyDisabled(tenant.id, key.id, true, Event("api_key.disabled"))
          .status()
          .code(),
      absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(f.keys()
                .SetKeyDisabled(tenant.id, key.id + "0", true,
                                Event("api_key.disabled"))
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TYPED_TEST(KeyStoreConformanceTest, RotationOptionsRenewAndCheckTheVersion) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  storage::NewKey key = NewKey(tenant.id);
  absl::StatusOr<absl::Time> now = f.keys().Now();
  ASSERT_TRUE(now.ok()) << now.status();
  key.expires_at =
      absl::FromUnixMicros(absl::ToUnixMicros(*now)) + absl::Seconds(1);
  ASSERT_TRUE(f.keys().InsertKey(key, Event("api_key.created")).ok());
  f.LetTimePass(absl::Seconds(2));
  storage::StoredSecret secret{RandomDigest(), 1};

  // Expired: a plain rotation is refused, so is a past expiry.
  EXPECT_EQ(f.keys()
                .RotateKey(tenant.id, key.id, secret, absl::ZeroDuration(),
                           Event("api_key.rotated"))
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  storage::RotateOptions past;
  past.expires_at = *key.expires_at;
  EXPECT_EQ(f.keys()
                .RotateKey(tenant.id, key.id, secret, absl::ZeroDuration(),
                           past, Event("api_key.rotated"))
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  // A stale version is ABORTED and changes nothing.
  storage::RotateOptions renew;
  renew.expires_at = *key.expires_at + absl::Hours(24);
  renew.expected_version = 5;
  EXPECT_EQ(f.keys()
                .RotateKey(tenant.id, key.id, secret, absl::ZeroDuration(),
                           renew, Event("api_key.renewed"))
                .status()
                .code(),
            absl::StatusCode::kAborted);
  renew.expected_version = 1;
  absl::StatusOr<storage::ApiKeyRecord> renewed =
      f.keys().RotateKey(tenant.id, key.id, secret, absl::ZeroDuration(), renew,
                         Event("api_key.renewed"));
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(renewed->version, 2);
  EXPECT_EQ(renewed->expires_at, *renew.expires_at);
  absl::StatusOr<storage::VerifyRecord> verify = f.keys().LoadForVerify(key.id);
  ASSERT_TRUE(verify.ok()) << verify.status();
  EXPECT_EQ(verify->key.expires_at, *renew.expires_at);
  EXPECT_EQ(verify->current.digest, secret.digest);
  EXPECT_EQ(EventsOf(f, tenant.id, "api_key.renewed").size(), 1u);
}

// The state sweep's store contract: the lease, the pending announcements
// (the state predicates of key_states.h in each backend) and the
// conditional announcement that makes each event happen once. A fresh
// database per test: the lease and the sweep span every tenant.
template <typename Impl>
class KeyStateSweepConformanceTest : public FreshStoreTest<Impl> {};
TYPED_TEST_SUITE(KeyStateSweepConformanceTest, Implementations,
                 ImplementationName);

TYPED_TEST(KeyStateSweepConformanceTest, OneHolderAtATimeUntilTheLeaseEnds) {
  StoreFixture& f = this->f();
  // Long enough that no stall of a loaded machine between two calls
  // outlasts it (300 ms did once, and "b" took a lease "a" still meant to
  // hold); the database clock is waited out below.
  const absl::Duration lease = absl::Seconds(2);
  EXPECT_EQ(f.keys().TakeSweepLease("a", lease).value_or(false), true);
  EXPECT_EQ(f.keys().TakeSweepLease("b", lease).value_or(true), false);
  EXPECT_EQ(f.keys().TakeSweepLease("a", lease).value_or(false), true);
  f.LetTimePass(lease + absl::Milliseconds(50));
  EXPECT_EQ(f.keys().TakeSweepLease("b", lease).value_or(false), true);
  EXPECT_EQ(f.keys().TakeSweepLease("a", lease).value_or(true), false);
  EXPECT_EQ(f.keys().TakeSweepLease("", lease).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.keys().TakeSweepLease("a", absl::ZeroDuration()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// "<key name> <state>" for each announcement, with `names` mapping ids.
std::vector<std::string> Described(
    const std::vector<storage::StateAnnouncement>& list,
    const std::map<std::string, std::string>& names) {
  std::vector<std::string> out;
  for (const storage::StateAnnouncement& a : list) {
    static constexpr const char* kStates[] = {"rotation_due", "expiring",
                                              "inactive"};
    auto name = names.find(a.key_id);
    out.push_back(absl::StrCat(name == names.end() ? a.key_id : name->second,
                               " ", kStates[static_cast<int>(a.state)]));
  }
  std::sort(out.begin(), out.end());
  return out;
}

TYPED_TEST(KeyStateSweepConformanceTest, EachStateIsAnnouncedOncePerDate) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const absl::Duration day = absl::Hours(24);
  storage::SettingsUpdate update;
  update.key_rotation_period_days = 30;
  update.key_inactive_after_days = 90;
  ASSERT_TRUE(
      f.clients()
          .UpdateSettings(tenant.id, update, Event("settings.updated"), nullptr)
          .ok());
  absl::StatusOr<absl::Time> now = f.keys().Now();
  ASSERT_TRUE(now.ok()) << now.status();
  storage::NewKey expiring = NewKey(tenant.id, "expiring");
  expiring.expires_at = *now + day * 3;
  storage::NewKey due = NewKey(tenant.id, "due");
  storage::NewKey idle = NewKey(tenant.id, "idle");
  storage::NewKey fresh = NewKey(tenant.id, "fresh");
  storage::NewKey revoked = NewKey(tenant.id, "revoked");
  // A decoy is never announced: it is never meant to be used or rotated.
  storage::NewKey decoy = NewKey(tenant.id, "decoy");
  decoy.decoy = true;
  decoy.expires_at = *now + day * 3;
  std::map<std::string, std::string> names;
  for (const storage::NewKey* key :
       {&expiring, &due, &idle, &fresh, &revoked, &decoy}) {
    ASSERT_TRUE(f.keys().InsertKey(*key, Event("api_key.created")).ok());
    names[key->id] = key->name;
  }
  f.AgeKey(due.id, day * 31);
  f.AgeKey(idle.id, day * 91);
  f.AgeKey(revoked.id, day * 91);
  f.AgeKey(decoy.id, day * 91);
  ASSERT_TRUE(f.keys().RevokeKey(tenant.id, revoked.id, Event("r")).ok());

  absl::StatusOr<storage::AnnouncementBatch> batch =
      f.keys().PendingAnnouncements("", 1000);
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_THAT(Described(batch->announcements, names),
              ElementsAre("due rotation_due", "expiring expiring",
                          "idle inactive", "idle rotation_due"));
  EXPECT_EQ(batch->last_key_id, "");
  for (const storage::StateAnnouncement& a : batch->announcements) {
    EXPECT_FALSE(a.announced_for.has_value());
    if (a.state == storage::AnnouncedState::kExpiring) {
      EXPECT_EQ(a.for_date, *expiring.expires_at);
    }
    absl::StatusOr<bool> written =
        f.keys().AnnounceKeyState(a, Event("api_key.announced"));
    ASSERT_TRUE(written.ok()) << written.status();
    EXPECT_TRUE(*written);
    // A second sweeper with the same read writes nothing.
    written = f.keys().AnnounceKeyState(a, Event("api_key.announced"));
    ASSERT_TRUE(written.ok()) << written.status();
    EXPECT_FALSE(*written);
  }
  EXPECT_EQ(EventsOf(f, tenant.id, "api_key.announced").size(), 4u);
  batch = f.keys().PendingAnnouncements("", 1000);
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_THAT(batch->announcements, ElementsAre());

  // A rotation moves the due date: due again a period later, announced
  // again (from the date announced before).
  absl::StatusOr<storage::ApiKeyRecord> rotated =
      f.keys().RotateKey(tenant.id, due.id, {RandomDigest(), 1},
                         absl::ZeroDuration(), Event("api_key.rotated"));
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  batch = f.keys().PendingAnnouncements("", 1000);
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_THAT(batch->announcements, ElementsAre());
  f.AgeKey(due.id, day * 31);
  batch = f.keys().PendingAnnouncements("", 1000);
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_EQ(batch->announcements.size(), 1u);
  EXPECT_EQ(batch->announcements[0].key_id, due.id);
  EXPECT_TRUE(batch->announcements[0].announced_for.has_value());
  EXPECT_GT(batch->announcements[0].for_date,
            *batch->announcements[0].announced_for);
}

TYPED_TEST(KeyStateSweepConformanceTest, BatchesWalkTheKeysInIdOrder) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  absl::StatusOr<absl::Time> now = f.keys().Now();
  ASSERT_TRUE(now.ok()) << now.status();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    storage::NewKey key = NewKey(tenant.id);
    key.expires_at = *now + absl::Hours(1);  // expiring (7-day default)
    ASSERT_TRUE(f.keys().InsertKey(key, Event("api_key.created")).ok());
    ids.push_back(key.id);
  }
  std::sort(ids.begin(), ids.end());
  std::vector<std::string> seen;
  std::string after;
  for (int round = 0; round < 10; ++round) {
    absl::StatusOr<storage::AnnouncementBatch> batch =
        f.keys().PendingAnnouncements(after, 2);
    ASSERT_TRUE(batch.ok()) << batch.status();
    for (const storage::StateAnnouncement& a : batch->announcements) {
      seen.push_back(a.key_id);
    }
    if (batch->last_key_id.empty()) break;
    after = batch->last_key_id;
  }
  EXPECT_EQ(seen, ids);
  EXPECT_EQ(f.keys().PendingAnnouncements("", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lumo::testing
