// The PepperUsageStore contract (server/storage/pepper_usage_store.h):
// which pepper versions the stored secrets use, run against every
// implementation. Each test has a database of its own (the counts are
// database-wide).
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/core/crypto.h"
#include "server/storage/client_store.h"
#include "server/storage/pepper_usage_store.h"
#include "server/storage/webhook_store.h"
#include "tests/storage/conformance/store_fixture.h"

namespace lumo::testing {
namespace {

template <typename Impl>
class PepperUsageStoreConformanceTest : public FreshStoreTest<Impl> {
 protected:
  std::vector<storage::PepperVersionUsage> Usage() {
    absl::StatusOr<std::vector<storage::PepperVersionUsage>> usage =
        this->f().pepper_usage().PepperUsage();
    EXPECT_TRUE(usage.ok()) << usage.status();
    return usage.value_or(std::vector<storage::PepperVersionUsage>());
  }
  std::string Insert(int64_t tenant_id, int pepper) {
    const storage::NewKey key = NewKey(tenant_id, "k", pepper);
    EXPECT_TRUE(this->f().keys().InsertKey(key, Event("c")).ok());
    return key.id;
  }
};
TYPED_TEST_SUITE(PepperUsageStoreConformanceTest, Implementations,
                 ImplementationName);

TYPED_TEST(PepperUsageStoreConformanceTest, AnEmptyDatabaseUsesNoPepper) {
  EXPECT_TRUE(this->Usage().empty());
}

TYPED_TEST(PepperUsageStoreConformanceTest, SecretsAreCountedLiveOrDead) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  // Pepper 1: two live keys, one revoked, one deleted (not counted).
  this->Insert(tenant.id, 1);
  this->Insert(tenant.id, 1);
  const std::string revoked = this->Insert(tenant.id, 1);
  ASSERT_TRUE(f.keys().RevokeKey(tenant.id, revoked, Event("v")).ok());
  const std::string deleted = this->Insert(tenant.id, 1);
  ASSERT_TRUE(f.keys().DeleteKey(tenant.id, deleted, Event("d")).ok());
  // Pepper 2: a key rotated to pepper 3 with grace (its pepper 2 secret is
  // a live retired one) and one rotated without (a dead retired one).
  const std::string graced = this->Insert(tenant.id, 2);
  ASSERT_TRUE(f.keys()
                  .RotateKey(tenant.id, graced, {RandomDigest(), 3},
                             absl::Hours(1), Event("r"))
                  .ok());
  const std::string abrupt = this->Insert(tenant.id, 2);
  ASSERT_TRUE(f.keys()
                  .RotateKey(tenant.id, abrupt, {RandomDigest(), 3},
                             absl::ZeroDuration(), Event("r"))
                  .ok());
  // Pepper 4: an expired key.
  absl::StatusOr<absl::Time> now = f.keys().Now();
  ASSERT_TRUE(now.ok()) << now.status();
  storage::NewKey expiring = NewKey(tenant.id, "e", 4);
  expiring.expires_at = *now + absl::Milliseconds(100);
  ASSERT_TRUE(f.keys().InsertKey(expiring, Event("c")).ok());
  // Pepper 5: an inactive confidential OAuth client.
  storage::NewClient client;
  client.id = core::RandomBase62(16).value_or("");
  client.tenant_id = tenant.id;
  client.client_id = absl::StrCat("lkc_", core::RandomBase62(20).value_or(""));
  client.fields.name = "client";
  client.secret = storage::StoredSecret{RandomDigest(), 5};
  client.created_by_type = "system";
  ASSERT_TRUE(f.clients().InsertClient(client, Event("c")).ok());
  ASSERT_TRUE(
      f.clients()
          .SetClientActive(tenant.id, client.id, false, Event("a"), nullptr)
          .ok());
  f.LetTimePass(absl::Milliseconds(150));

  const std::vector<storage::PepperVersionUsage> usage = this->Usage();
  ASSERT_EQ(usage.size(), 5u);
  EXPECT_EQ(usage[0].version, 1);
  EXPECT_EQ(usage[0].live_keys, 2);
  EXPECT_EQ(usage[0].dead_keys, 1);
  EXPECT_EQ(usage[0].live_retired_secrets + usage[0].dead_retired_secrets +
                usage[0].client_secrets,
            0);
  EXPECT_EQ(usage[1].version, 2);
  EXPECT_EQ(usage[1].live_retired_secrets, 1);
  EXPECT_EQ(usage[1].dead_retired_secrets, 1);
  EXPECT_EQ(usage[1].live_keys + usage[1].dead_keys, 0);
  EXPECT_EQ(usage[2].version, 3);
  EXPECT_EQ(usage[2].live_keys, 2);
  EXPECT_EQ(usage[3].version, 4);
  EXPECT_EQ(usage[3].dead_keys, 1);
  EXPECT_EQ(usage[3].live(), 0);
  EXPECT_EQ(usage[4].version, 5);
  EXPECT_EQ(usage[4].client_secrets, 1);
  EXPECT_EQ(usage[4].dead(), 0);
}

// Sealed webhook secrets are live: the current one of every endpoint
// (enabled or not), the previous one only while it still signs.
TYPED_TEST(PepperUsageStoreConformanceTest, WebhookSecretsAreLive) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  auto create = [&](int pepper, bool enabled) {
    storage::NewWebhookEndpoint e;
    e.id = absl::StrCat("whk_", core::RandomBase62(16).value_or(""));
    e.tenant_id = tenant.id;
    e.url = "https://hooks.example.com/in";
    e.enabled = enabled;
    e.secret = storage::SealedSecret{"sealed", pepper};
    e.secret_prefix = "whsec_abcd";
    EXPECT_TRUE(
        f.webhooks().CreateEndpoint(e, 20, Event("webhook.created")).ok());
    return e.id;
  };
  // Pepper 1 rotated to 2 with an overlap: both count. Pepper 3 rotated to
  // 2 without one: 3 no longer counts. Pepper 4: a disabled endpoint.
  const std::string overlapping = create(1, true);
  ASSERT_TRUE(f.webhooks()
                  .RotateSecret(tenant.id, overlapping, {"s2", 2}, "whsec_2",
                                absl::Hours(1), Event("r"))
                  .ok());
  const std::string abrupt = create(3, true);
  ASSERT_TRUE(f.webhooks()
                  .RotateSecret(tenant.id, abrupt, {"s2", 2}, "whsec_2",
                                absl::ZeroDuration(), Event("r"))
                  .ok());
  create(4, false);

  const std::vector<storage::PepperVersionUsage> usage = this->Usage();
  ASSERT_EQ(usage.size(), 3u);
  EXPECT_EQ(usage[0].version, 1);
  EXPECT_EQ(usage[0].webhook_secrets, 1);
  EXPECT_EQ(usage[1].version, 2);
  EXPECT_EQ(usage[1].webhook_secrets, 2);
  EXPECT_EQ(usage[2].version, 4);
  EXPECT_EQ(usage[2].webhook_secrets, 1);
  for (const storage::PepperVersionUsage& u : usage) {
    EXPECT_EQ(u.live(), u.webhook_secrets);
    EXPECT_EQ(u.dead(), 0);
  }
}

TYPED_TEST(PepperUsageStoreConformanceTest, RetiredSecretsOfDeadKeysAreDead) {
  StoreFixture& f = this->f();
  const storage::Tenant tenant = NewTenant(f);
  const std::string key = this->Insert(tenant.id, 1);
  ASSERT_TRUE(f.keys()
                  .RotateKey(tenant.id, key, {RandomDigest(), 2},
                             absl::Hours(1), Event("r"))
                  .ok());
  ASSERT_TRUE(f.keys().RevokeKey(tenant.id, key, Event("v")).ok());
  const std::vector<storage::PepperVersionUsage> usage = this->Usage();
  ASSERT_EQ(usage.size(), 2u);
  EXPECT_EQ(usage[0].version, 1);
  EXPECT_EQ(usage[0].dead_retired_secrets, 1);
  EXPECT_EQ(usage[0].live(), 0);
  EXPECT_EQ(usage[1].version, 2);
  EXPECT_EQ(usage[1].dead_keys, 1);
  EXPECT_EQ(usage[1].live(), 0);
}

}  // namespace
}  // namespace lumo::testing
