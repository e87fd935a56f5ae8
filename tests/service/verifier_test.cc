#include "server/service/verifier.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/core/key_format.h"
#include "server/service/key_service.h"
#include "tests/storage/fakes/fake_database.h"
#include "tests/storage/fakes/fake_key_store.h"
#include "tests/storage/fakes/fake_stores.h"

namespace lumo::service {
namespace {

using testing::FakeKeyStore;

constexpr char kPepper[] =
    "1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";

class VerifierTest : public ::testing::Test {
 protected:
  void SetUpWith(absl::Duration ttl, bool key_states = true) {
    peppers_ = *core::PepperSet::Parse(kPepper);
    VerifierOptions options;
    options.cache_ttl = ttl;
    options.key_states = key_states;
    store_ = std::make_unique<FakeKeyStore>();
    verifier_ = std::make_unique<Verifier>(store_.get(), peppers_, options);
    keys_ =
        std::make_unique<KeyService>(store_.get(), peppers_, verifier_.get());
    CreateKeyParams first;
    first.name = "root";
    first.scopes = {"admin:write"};
    auto tenant = keys_->CreateTenant({}, "acme", "Acme", first);
    ASSERT_TRUE(tenant.ok()) << tenant.status();
    root_key_ = tenant->initial_key->full_key;
    root_.kind = Principal::Kind::kApiKey;
    root_.tenant_id = tenant->tenant.id;
    root_.tenant_slug = "acme";
    root_.key_id = tenant->initial_key->record.id;
    root_.scopes = {"admin:write"};
    ASSERT_TRUE(keys_->CreateTenant({}, "other", "", std::nullopt).ok());
  }
  void SetUp() override { SetUpWith(absl::Hours(1)); }

  KeyWithSecret Create(CreateKeyParams params) {
    auto created = keys_->CreateKey(root_, {}, params);
    EXPECT_TRUE(created.ok()) << created.status();
    return *created;
  }
  KeyWithSecret CreateSimple(std::vector<std::string> scopes = {"admin:read"}) {
    CreateKeyParams p;
    p.name = "k";
    p.scopes = std::move(scopes);
    return Create(p);
  }
  VerifyReason Reason(absl::string_view key, VerifyParams params = {}) {
    if (params.tenant_slug.empty()) params.tenant_slug = "acme";
    auto outcome = verifier_->Verify(key, params);
    EXPECT_TRUE(outcome.ok()) << outcome.status();
    return outcome.ok() ? outcome->reason : VerifyReason::kMalformed;
  }

  std::unique_ptr<FakeKeyStore> store_;
  std::shared_ptr<const core::PepperSet> peppers_;
  std::unique_ptr<Verifier> verifier_;
  std::unique_ptr<KeyService> keys_;
  std::string root_key_;
  Principal root_;
};

TEST_F(VerifierTest, FreshKeyVerifiesWithItsMetadata) {
  KeyWithSecret k = CreateSimple();
  auto outcome = verifier_->Verify(k.full_key, {"acme", {}, ""});
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->reason, VerifyReason::kValid);
  EXPECT_EQ(outcome->key_id, k.record.id);
  EXPECT_EQ(outcome->tenant_slug, "acme");
  EXPECT_EQ(outcome->scopes, std::vector<std::string>{"admin:read"});
}

TEST_F(VerifierTest, MalformedAndBadChecksumKeysNeverReachTheStore) {
  KeyWithSecret k = CreateSimple();
  const int before = store_->calls();
  std::string typo = k.full_key;
  typo[20] = typo[20] == 'a' ? 'b' : 'a';
  EXPECT_EQ(Reason(typo), VerifyReason::kMalformed);
  EXPECT_EQ(Reason("lmk_short"), VerifyReason::kMalformed);
  EXPECT_EQ(Reason(""), VerifyReason::kMalformed);
  EXPECT_EQ(Reason(k.full_key.substr(0, k.full_key.size() - 1)),
            VerifyReason::kMalformed);
  EXPECT_EQ(store_->calls(), before);
}

TEST_F(VerifierTest, WarmVerifyDoesNoStoreCall) {
  KeyWithSecret k = CreateSimple();
  EXPECT_EQ(Reason(k.full_key), VerifyReason::kValid);
  const int loads = store_->verify_loads();
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(Reason(k.full_key), VerifyReason::kValid);
  EXPECT_EQ(store_->verify_loads(), loads);
}

TEST_F(VerifierTest, WrongSecretForRealIdIsNotFoundAndNotDead) {
  KeyWithSecret k = CreateSimple();
  auto other = core::GenerateKey(k.record.id);  // same id, other secret
  ASSERT_TRUE(other.ok());
  auto outcome = verifier_->Verify(*other, {"acme", {}, ""});
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->reason, VerifyReason::kNotFound);
  EXPECT_FALSE(outcome->known_dead);
  EXPECT_TRUE(outcome->scopes.empty());
}

TEST_F(VerifierTest, ADecoyIsNotFoundAndMarkedForTheAuditOnly) {
  CreateKeyParams p;
  p.name = "bait";
  p.scopes = {"admin:write"};
  p.decoy = true;
  KeyWithSecret decoy = Create(p);
  for (int warm = 0; warm < 2; ++warm) {  // cold, then from the cache
    auto outcome = verifier_->Verify(decoy.full_key, {"acme", {}, ""});
    ASSERT_TRUE(outcome.ok());
    EXPECT_EQ(outcome->reason, VerifyReason::kNotFound);
    EXPECT_TRUE(outcome->decoy);
    EXPECT_FALSE(outcome->secret_matched);
    EXPECT_FALSE(outcome->known_dead);
    EXPECT_EQ(outcome->tenant_id, root_.tenant_id);
    EXPECT_TRUE(outcome->scopes.empty());
    EXPECT_TRUE(outcome->name.empty());
  }
  // Presented to another tenant: still the decoy's tenant's alert.
  auto elsewhere = verifier_->Verify(decoy.full_key, {"other", {}, ""});
  ASSERT_TRUE(elsewhere.ok());
  EXPECT_EQ(elsewhere->reason, VerifyReason::kNotFound);
  EXPECT_TRUE(elsewhere->decoy);
  // Its id with another secret is an ordinary unknown key.
  auto guessed = core::GenerateKey(decoy.record.id);
  ASSERT_TRUE(guessed.ok());
  auto wrong = verifier_->Verify(*guessed, {"acme", {}, ""});
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ(wrong->reason, VerifyReason::kNotFound);
  EXPECT_FALSE(wrong->decoy);
  // Rotating a decoy is refused.
  EXPECT_EQ(keys_->RotateKey(root_, {}, decoy.record.id, 0).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(VerifierTest, UnknownIdIsNotFound) {
  auto id = core::GenerateKeyId();
  auto key = core::GenerateKey(*id);
  EXPECT_EQ(Reason(*key), VerifyReason::kNotFound);
}

TEST_F(VerifierTest, RotateInvalidatesOldSecretImmediately) {
  KeyWithSecret k = CreateSimple();
  EXPECT_EQ(Reason(k.full_key), VerifyReason::kValid);  // cached now
  auto rotated = keys_->RotateKey(root_, {}, k.record.id, 0);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(rotated->record.id, k.record.id);
  EXPECT_NE(rotated->full_key, k.full_key);
  EXPECT_EQ(Reason(k.full_key), VerifyReason::kRotated);
  EXPECT_EQ(Reason(rotated->full_key), VerifyReason::kValid);
}

TEST_F(VerifierTest, GracePeriodKeepsOldSecretUntilItEnds) {
  SetUpWith(absl::ZeroDuration());  // every verify reads the store
  KeyWithSecret k = CreateSimple();
  auto rotated = keys_->RotateKey(root_, {}, k.record.id, 60);
  ASSERT_TRUE(rotated.ok());
  EXPECT_EQ(Reason(k.full_key), VerifyReason::kValid);
  EXPECT_EQ(Reason(rotated->full_key), VerifyReason::kValid);
  store_->Advance(absl::Seconds(61));
  EXPECT_EQ(Reason(k.full_key), VerifyReason::kRotated);
  EXPECT_EQ(Reason(rotated->full_key), VerifyReason::kValid);
}

TEST_F(VerifierTest, AUseOfAPreviousSecretNamesItsRotation) {
  SetUpWith(absl::ZeroDuration());
  KeyWithSecret k = CreateSimple();
  auto rotated = keys_->RotateKey(root_, {}, k.record.id, 60);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  ASSERT_TRUE(rotated->record.rotated_at.has_value());
  auto old_secret = verifier_->Verify(k.full_key, {"acme", {}, ""});
  ASSERT_TRUE(old_secret.ok()) << old_secret.status();
  EXPECT_EQ(old_secret->reason, VerifyReason::kValid);
  EXPECT_EQ(old_secret->previous_secret_of, rotated->record.rotated_at);
  auto new_secret = verifier_->Verify(rotated->full_key, {"acme", {}, ""});
  ASSERT_TRUE(new_secret.ok()) << new_secret.status();
  EXPECT_EQ(new_secret->reason, VerifyReason::kValid);
  EXPECT_FALSE(new_secret->previous_secret_of.has_value());
  // Past its grace the old secret is refused, not a straggler's use.
  store_->Advance(absl::Seconds(61));
  auto expired = verifier_->Verify(k.full_key, {"acme", {}, ""});
  ASSERT_TRUE(expired.ok()) << expired.status();
  EXPECT_EQ(expired->reason, VerifyReason::kRotated);
  EXPECT_FALSE(expired->previous_secret_of.has_value());
}

TEST_F(VerifierTest, ADecoyBlocksItsPresentersAddressForItsTenantOnly) {
  absl::Time now = absl::Now();
  DecoyTrapOptions trap_options;
  trap_options.block = absl::Minutes(10);
  trap_options.now = [&now] { return now; };
  DecoyTrap trap(trap_options);
  VerifierOptions options;
  options.cache_ttl = absl::Hours(1);
  options.decoy_trap = &trap;
  Verifier verifier(store_.get(), peppers_, options);
  KeyService keys(store_.get(), peppers_, &verifier);
  const KeyWithSecret real = CreateSimple();
  CreateKeyParams bait;
  bait.name = "bait";
  bait.scopes = {"admin:read"};
  bait.decoy = true;
  const KeyWithSecret decoy = Create(bait);
  CreateKeyParams other_root;
  other_root.name = "root";
  other_root.scopes = {"admin:write"};
  auto other = keys.CreateTenant({}, "other2", "", other_root);
  ASSERT_TRUE(other.ok()) << other.status();
  auto verify = [&](absl::string_view key, absl::string_view tenant,
                    absl::string_view ip) {
    auto outcome =
        verifier.Verify(key, {std::string(tenant), {}, std::string(ip)});
    EXPECT_TRUE(outcome.ok()) << outcome.status();
    return outcome.value_or(VerifyOutcome());
  };
  // Before: the real key works from anywhere.
  EXPECT_EQ(verify(real.full_key, "acme", "203.0.113.5").reason,
            VerifyReason::kValid);
  const VerifyOutcome sprung = verify(decoy.full_key, "acme", "203.0.113.5");
  EXPECT_EQ(sprung.reason, VerifyReason::kNotFound);
  EXPECT_TRUE(sprung.decoy);

  // From that address the tenant's keys answer as unknown ones...
  const VerifyOutcome blocked = verify(real.full_key, "acme", "203.0.113.5");
  EXPECT_EQ(blocked.reason, VerifyReason::kNotFound);
  EXPECT_TRUE(blocked.decoy_blocked);
  EXPECT_FALSE(blocked.secret_matched);
  EXPECT_TRUE(blocked.scopes.empty());
  // ... not from another address, nor another tenant's keys from there.
  EXPECT_EQ(verify(real.full_key, "acme", "203.0.113.6").reason,
            VerifyReason::kValid);
  EXPECT_EQ(
      verify(other->initial_key->full_key, "other2", "203.0.113.5").reason,
      VerifyReason::kValid);
  // A verification without a client address neither springs nor is held.
  verify(decoy.full_key, "acme", "");
  EXPECT_EQ(verify(real.full_key, "acme", "").reason, VerifyReason::kValid);
  // The block ends.
  now += absl::Minutes(10);
  EXPECT_EQ(verify(real.full_key, "acme", "203.0.113.5").reason,
            VerifyReason::kValid);
}

TEST_F(VerifierTest, RotationWithoutGraceEndsEarlierGracePeriods) {
  SetUpWith(absl::ZeroDuration());
  KeyWithSecret k = CreateSimple();
  auto planned = keys_->RotateKey(root_, {}, k.record.id, 3600);
  ASSERT_TRUE(planned.ok());
  EXPECT_EQ(Reason(k.full_key), VerifyReason::kValid);  // in its grace
  auto urgent = keys_->RotateKey(root_, {}, k.record.id, 0);
  ASSERT_TRUE(urgent.ok());
  EXPECT_EQ(Reason(k.full_key), VerifyReason::kRotated);
  EXPECT_EQ(Reason(planned->full_key), VerifyReason::kRotated);
  EXPECT_EQ(Reason(urgent->full_key), VerifyReason::kValid);
}

TEST_F(VerifierTest, RevokedKeyIsRevokedAndKnownDead) {
  KeyWithSecret k = CreateSimple();
  EXPECT_EQ(Reason(k.full_key), VerifyReason::kValid);
  ASSERT_TRUE(keys_->RevokeKey(root_, {}, k.record.id).ok());
  auto outcome = verifier_->Verify(k.full_key, {"acme", {}, ""});
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->reason, VerifyReason::kRevoked);
  EXPECT_TRUE(outcome->known_dead);
}

TEST_F(VerifierTest, DeletedKeyIsNotFoundButRecognised) {
  KeyWithSecret k = CreateSimple();
  EXPECT_EQ(Reason(k.full_key), VerifyReason::kValid);
  ASSERT_TRUE(keys_->DeleteKey(root_, {}, k.record.id).ok());
  auto outcome = verifier_->Verify(k.full_key, {"acme", {}, ""});
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->reason, VerifyReason::kNotFound);
  EXPECT_TRUE(outcome->known_dead);
}

TEST_F(VerifierTest, ExpiryIsJudgedOnTheDatabaseClock) {
  SetUpWith(absl::ZeroDuration());
  absl::StatusOr<absl::Time> db_now = store_->Now();
  CreateKeyParams p;
  p.name = "temp";
  p.scopes = {"admin:read"};
  p.expires_at = *db_now + absl::Minutes(5);
  KeyWithSecret k = Create(p);
  // The fake database clock is in 2026-01-01, far from the local clock: the
  // verdict must follow the database clock, not the local one.
  EXPECT_EQ(Reason(k.full_key), VerifyReason::kValid);
  store_->Advance(absl::Minutes(6));
  EXPECT_EQ(Reason(k.full_key), VerifyReason::kExpired);
}

TEST_F(VerifierTest, OwnerAndMetadataComeWithAValidKeyAndAfterAnEdit) {
  CreateKeyParams p;
  p.name = "billing";
  p.scopes = {"admin:read"};
  p.external_id = "svc-billing";
  p.metadata = {{"team", "payments"}};
  KeyWithSecret k = Create(p);
  auto outcome = verifier_->Verify(k.full_key, {"acme", {}, ""});
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->external_id, "svc-billing");
  EXPECT_EQ(outcome->metadata, p.metadata);
  UpdateKeyParams edit;
  edit.update_mask = {"externalId"};
  edit.external_id = "svc-ledger";
  ASSERT_TRUE(keys_->UpdateKey(root_, {}, k.record.id, edit).ok());
  // The edit evicted the cached entry (the cache TTL here is an hour).
  outcome = verifier_->Verify(k.full_key, {"acme", {}, ""});
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->external_id, "svc-ledger");
}

TEST_F(VerifierTest, StatesUnderTheTenantsPolicyComeWithTheKeyWithoutAQuery) {
  storage::KeyPolicy policy;
  policy.rotation_period_days = 1;
  policy.expiry_warning_days = 3;
  {
    testing::FakeDatabase& db = store_->database();
    absl::MutexLock lock(&db.mu);
    db.settings[root_.tenant_id].key_policy = policy;
  }
  const absl::Time now = *store_->Now();
  CreateKeyParams p;
  p.name = "states";
  p.scopes = {"admin:read"};
  p.expires_at = now + absl::Hours(24 * 5);
  KeyWithSecret k = Create(p);
  // Two days later: due for rotation (after one day) and expiring (the last
  // three days before the expiry).
  store_->Advance(absl::Hours(48) + absl::Seconds(1));
  auto outcome = verifier_->Verify(k.full_key, {"acme", {}, ""});
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(outcome->reason, VerifyReason::kValid);
  EXPECT_TRUE(outcome->states.rotation_due);
  EXPECT_EQ(outcome->states.rotation_due_at,
            k.record.created_at + absl::Hours(24));
  EXPECT_TRUE(outcome->states.expiring_soon);
  EXPECT_FALSE(outcome->states.inactive);
  EXPECT_FALSE(outcome->states.disabled);
  // The warm path answers the same states from the cached record and
  // policy, without a store call.
  const int calls = store_->calls();
  outcome = verifier_->Verify(k.full_key, {"acme", {}, ""});
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_TRUE(outcome->states.rotation_due);
  EXPECT_TRUE(outcome->states.expiring_soon);
  EXPECT_EQ(store_->calls(), calls);
  // Another tenant learns nothing about the key.
  VerifyParams other;
  other.tenant_slug = "other";
  outcome = verifier_->Verify(k.full_key, other);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(outcome->reason, VerifyReason::kWrongTenant);
  EXPECT_FALSE(outcome->states.rotation_due_at.has_value());
  EXPECT_FALSE(outcome->states.rotation_due || outcome->states.expiring_soon);
}

// Cache entries share their tenant's slug and policy and their scope set
// with other entries (a compact entry): what one key's entry holds is
// still exactly its own, and a key read after the tenant's policy changed
// gets the new policy, not the one shared by entries read before.
TEST_F(VerifierTest, SharedEntryPartsStayEachKeysOwn) {
  KeyWithSecret reader = CreateSimple({"admin:users"});
  KeyWithSecret twin = CreateSimple({"admin:users"});
  KeyWithSecret wider = CreateSimple({"admin:users", "admin:roles"});
  VerifyParams params;
  params.required_scopes = {"admin:roles"};
  EXPECT_EQ(Reason(reader.full_key, params), VerifyReason::kInsufficientScope);
  EXPECT_EQ(Reason(twin.full_key, params), VerifyReason::kInsufficientScope);
  EXPECT_EQ(Reason(wider.full_key, params), VerifyReason::kValid);
  auto outcome = verifier_->Verify(wider.full_key, {"acme", {}, ""});
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(outcome->scopes, wider.record.scopes);
  EXPECT_FALSE(outcome->states.rotation_due_at.has_value());

  storage::KeyPolicy policy;
  policy.rotation_period_days = 1;
  {
    testing::FakeDatabase& db = store_->database();
    absl::MutexLock lock(&db.mu);
    db.settings[root_.tenant_id].key_policy = policy;
  }
  store_->Advance(absl::Hours(48));
  verifier_->Evict(twin.record.id);
  outcome = verifier_->Verify(twin.full_key, {"acme", {}, ""});
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(outcome->reason, VerifyReason::kValid);
  EXPECT_EQ(outcome->tenant_slug, "acme");
  EXPECT_EQ(outcome->scopes, std::vector<std::string>{"admin:users"});
  EXPECT_TRUE(outcome->states.rotation_due);
  EXPECT_EQ(outcome->states.rotation_due_at,
            twin.record.created_at + absl::Hours(24));
  // Another tenant's keys have their own part.
  VerifyParams other;
  other.tenant_slug = "other";
  EXPECT_EQ(Reason(twin.full_key, other), VerifyReason::kWrongTenant);
}

TEST_F(VerifierTest, KeyOfOtherTenantIsWrongTenantWithoutMetadata) {
  CreateKeyParams p;
  p.name = "k";
  p.scopes = {"admin:read"};
  p.external_id = "owner";
  p.metadata = {{"a", "b"}};
  KeyWithSecret k = Create(p);
  VerifyParams params;
  params.tenant_slug = "other";
  auto outcome = verifier_->Verify(k.full_key, params);
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->reason, VerifyReason::kWrongTenant);
  EXPECT_TRUE(outcome->tenant_slug.empty());
  EXPECT_TRUE(outcome->scopes.empty());
  EXPECT_TRUE(outcome->external_id.empty());
  EXPECT_TRUE(outcome->metadata.empty());
}

TEST_F(VerifierTest, RequiredScopesAreChecked) {
  KeyWithSecret k = CreateSimple({"admin:users"});
  VerifyParams params;
  params.required_scopes = {"admin:users"};
  EXPECT_EQ(Reason(k.full_key, params), VerifyReason::kValid);
  params.required_scopes = {"admin:users", "admin:roles"};
  EXPECT_EQ(Reason(k.full_key, params), VerifyReason::kInsufficientScope);
  KeyWithSecret writer = CreateSimple({"admin:write"});
  EXPECT_EQ(Reason(writer.full_key, params), VerifyReason::kValid);
}

TEST_F(VerifierTest, AllowedCidrsAreEnforced) {
  CreateKeyParams p;
  p.name = "office";
  p.scopes = {"admin:read"};
  p.allowed_cidrs = {"10.1.0.0/16", "2001:db8::/32"};
  KeyWithSecret k = Create(p);
  VerifyParams params;
  params.client_ip = "10.1.2.3";
  EXPECT_EQ(Reason(k.full_key, params), VerifyReason::kValid);
  params.client_ip = "::ffff:10.1.2.3";
  EXPECT_EQ(Reason(k.full_key, params), VerifyReason::kValid);
  params.client_ip = "2001:db8::5";
  EXPECT_EQ(Reason(k.full_key, params), VerifyReason::kValid);
  params.client_ip = "10.2.0.1";
  EXPECT_EQ(Reason(k.full_key, params), VerifyReason::kIpNotAllowed);
  params.client_ip = "";
  EXPECT_EQ(Reason(k.full_key, params), VerifyReason::kIpNotAllowed);
}

TEST_F(VerifierTest, PerKeyRateLimitIsEnforced) {
  CreateKeyParams p;
  p.name = "limited";
  p.scopes = {"admin:read"};
  p.rate_limit_per_minute = 3;
  KeyWithSecret k = Create(p);
  int valid = 0, limited = 0;
  for (int i = 0; i < 5; ++i) {
    VerifyReason r = Reason(k.full_key);
    valid += r == VerifyReason::kValid;
    limited += r == VerifyReason::kRateLimited;
  }
  // A sliding window: no reset at a minute boundary.
  EXPECT_EQ(valid, 3);
  EXPECT_EQ(limited, 2);
}

TEST_F(VerifierTest, RateLimitedOutcomesNameTheLimitAndWhenItAdmits) {
  CreateKeyParams p;
  p.name = "limited";
  p.scopes = {"admin:read"};
  p.rate_limit_per_minute = 1;
  KeyWithSecret k = Create(p);
  VerifyParams params;
  params.tenant_slug = "acme";
  absl::StatusOr<VerifyOutcome> first = verifier_->Verify(k.full_key, params);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->reason, VerifyReason::kValid);
  EXPECT_EQ(first->rate_limit_name, "default");
  EXPECT_EQ(first->rate_limit, 1);
  EXPECT_EQ(first->rate_remaining, 0);
  const absl::Time before = absl::Now();
  absl::StatusOr<VerifyOutcome> second = verifier_->Verify(k.full_key, params);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->reason, VerifyReason::kRateLimited);
  EXPECT_EQ(second->rate_limit_name, "default");
  EXPECT_EQ(second->rate_remaining, 0);
  // The one admitted request leaves the window 60-61 s after it.
  EXPECT_GT(second->rate_reset, before + absl::Seconds(59));
  EXPECT_LE(second->rate_reset, before + absl::Seconds(62));
}

// Cache entries come from a pool shared by the process (slab_pool.h): an
// outcome that shares an entry's limits keeps that entry's slot after the
// entry left the cache and after its Verifier is gone, while new entries
// reuse the slots released meanwhile.
TEST_F(VerifierTest, AnOutcomeKeepsItsEntryAfterTheVerifierIsGone) {
  CreateKeyParams p;
  p.name = "limited";
  p.scopes = {"admin:read"};
  p.rate_limits = {{"burst", 5, absl::Seconds(10)},
                   {"hourly", 100, absl::Hours(1)}};
  KeyWithSecret k = Create(p);
  VerifyParams params;
  params.tenant_slug = "acme";
  absl::StatusOr<VerifyOutcome> kept = verifier_->Verify(k.full_key, params);
  ASSERT_TRUE(kept.ok());
  ASSERT_EQ(kept->reason, VerifyReason::kValid);
  ASSERT_NE(kept->rate_limits, nullptr);
  std::vector<KeyWithSecret> others;
  for (int i = 0; i < 300; ++i) others.push_back(CreateSimple());
  for (const KeyWithSecret& o : others) {
    ASSERT_EQ(Reason(o.full_key), VerifyReason::kValid);
  }
  verifier_->Evict(k.record.id);
  keys_.reset();
  verifier_.reset();  // releases every other entry's slot
  // A new verifier fills slots again, the released ones first.
  verifier_ =
      std::make_unique<Verifier>(store_.get(), peppers_, VerifierOptions{});
  keys_ = std::make_unique<KeyService>(store_.get(), peppers_, verifier_.get());
  for (int round = 0; round < 2; ++round) {
    for (const KeyWithSecret& o : others) {
      ASSERT_EQ(Reason(o.full_key), VerifyReason::kValid);
    }
    verifier_->EvictAll();
  }
  ASSERT_EQ(kept->rate_limits->size(), 2u);
  EXPECT_EQ((*kept->rate_limits)[0].name, "burst");
  EXPECT_EQ((*kept->rate_limits)[0].limit, 5);
  EXPECT_EQ((*kept->rate_limits)[1].name, "hourly");
  EXPECT_EQ((*kept->rate_limits)[1].duration, absl::Hours(1));
  EXPECT_EQ(Reason(k.full_key, params), VerifyReason::kValid);
}

TEST_F(VerifierTest, AnEntryLivesWhileTheCacheOrAnOutcomeHoldsIt) {
  const size_t before = Verifier::live_entries();
  CreateKeyParams p;
  p.name = "limited";
  p.scopes = {"admin:read"};
  p.rate_limits = {{"burst", 5, absl::Seconds(10)}};
  KeyWithSecret limited = Create(p);
  std::vector<KeyWithSecret> plain;
  for (int i = 0; i < 50; ++i) plain.push_back(CreateSimple());
  VerifyParams params;
  params.tenant_slug = "acme";
  std::optional<absl::StatusOr<VerifyOutcome>> kept =
      verifier_->Verify(limited.full_key, params);
  ASSERT_TRUE(kept->ok());
  ASSERT_NE((*kept)->rate_limits, nullptr);
  for (const KeyWithSecret& k : plain) {
    ASSERT_EQ(Reason(k.full_key), VerifyReason::kValid);
  }
  // An unknown id is cached too (a negative entry).
  absl::StatusOr<std::string> unknown =
      core::GenerateKey(*core::GenerateKeyId());
  ASSERT_TRUE(unknown.ok());
  ASSERT_EQ(Reason(*unknown), VerifyReason::kNotFound);
  // Warm verifications take references and give them back.
  for (const KeyWithSecret& k : plain) {
    ASSERT_EQ(Reason(k.full_key), VerifyReason::kValid);
  }
  EXPECT_EQ(Verifier::live_entries(), before + 52);
  // Evicted, the plain key's entry is gone; the limited key's stays for
  // the outcome that shares its limits.
  verifier_->Evict(plain[1].record.id);
  verifier_->Evict(limited.record.id);
  EXPECT_EQ(Verifier::live_entries(), before + 51);
  verifier_->EvictAll();
  EXPECT_EQ(Verifier::live_entries(), before + 1);
  EXPECT_EQ((**kept).rate_limits->at(0).name, "burst");
  // A copy of the limits keeps the entry after the outcome is gone.
  std::shared_ptr<const std::vector<storage::KeyRateLimit>> limits =
      (*kept)->rate_limits;
  kept.reset();
  EXPECT_EQ(Verifier::live_entries(), before + 1);
  limits.reset();
  EXPECT_EQ(Verifier::live_entries(), before);
  // Loaded again, then released with the Verifier.
  ASSERT_EQ(Reason(plain[2].full_key), VerifyReason::kValid);
  EXPECT_EQ(Verifier::live_entries(), before + 1);
  verifier_.reset();
  keys_.reset();
  EXPECT_EQ(Verifier::live_entries(), before);
}

TEST_F(VerifierTest, AReloadReleasesTheEntryItReplaces) {
  SetUpWith(absl::Milliseconds(1));
  const size_t before = Verifier::live_entries();
  KeyWithSecret k = CreateSimple();
  const int loads = store_->verify_loads();
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Reason(k.full_key), VerifyReason::kValid);
    EXPECT_EQ(Verifier::live_entries(), before + 1);
    absl::SleepFor(absl::Milliseconds(5));  // past the cache's time to live
  }
  EXPECT_EQ(store_->verify_loads(), loads + 3);  // each one a reload
}

TEST_F(VerifierTest, EveryNamedLimitMustAdmitAndTheTightestIsReported) {
  CreateKeyParams p;
  p.name = "limited";
  p.scopes = {"admin:read"};
  p.rate_limits = {{"burst", 2, absl::Seconds(10)},
                   {"hourly", 100, absl::Hours(1)}};
  KeyWithSecret k = Create(p);
  VerifyParams params;
  params.tenant_slug = "acme";
  absl::StatusOr<VerifyOutcome> first = verifier_->Verify(k.full_key, params);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->reason, VerifyReason::kValid);
  EXPECT_EQ(first->rate_limit_name, "burst");
  EXPECT_EQ(first->rate_remaining, 1);
  ASSERT_NE(first->rate_limits, nullptr);
  EXPECT_EQ(first->rate_limits->size(), 2u);
  absl::StatusOr<VerifyOutcome> second = verifier_->Verify(k.full_key, params);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->reason, VerifyReason::kValid);
  // The key's limits are shared with the cache entry, not copied per call.
  EXPECT_EQ(second->rate_limits.get(), first->rate_limits.get());
  absl::StatusOr<VerifyOutcome> third = verifier_->Verify(k.full_key, params);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->reason, VerifyReason::kRateLimited);
  EXPECT_EQ(third->rate_limit_name, "burst");
  EXPECT_EQ(third->rate_limit, 2);
}

// Two verifiers (two replicas) over one database, counting through the
// shared counters: a key limited to 5 a minute gets 5 in all, not 5 each.
TEST(SharedRateLimitTest, TwoReplicasShareOneLimit) {
  testing::FakeStores stores;
  std::shared_ptr<const core::PepperSet> peppers =
      *core::PepperSet::Parse(kPepper);
  ClusterWindowsOptions shared;
  shared.replicas = [] { return 2; };
  ClusterWindows windows_a(&stores.counters, shared);
  ClusterWindows windows_b(&stores.counters, shared);
  VerifierOptions a_options;
  a_options.rate_limits = &windows_a;
  VerifierOptions b_options;
  b_options.rate_limits = &windows_b;
  Verifier a(&stores.keys, peppers, a_options);
  Verifier b(&stores.keys, peppers, b_options);
  KeyService keys(&stores.keys, peppers, &a);
  CreateKeyParams first;
  first.name = "root";
  first.scopes = {"admin:write"};
  first.rate_limit_per_minute = 5;
  auto tenant = keys.CreateTenant({}, "acme", "Acme", first);
  ASSERT_TRUE(tenant.ok()) << tenant.status();
  VerifyParams params;
  params.tenant_slug = "acme";
  int valid = 0;
  for (int i = 0; i < 20; ++i) {
    Verifier& v = i % 2 == 0 ? a : b;
    absl::StatusOr<VerifyOutcome> outcome =
        v.Verify(tenant->initial_key->full_key, params);
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    valid += outcome->reason == VerifyReason::kValid;
  }
  // floor(0.05 * 5 / 2) = 0: no overdraft, exactly the limit.
  EXPECT_EQ(valid, 5);
}

// Two verifiers (replicas) over one database, each with its own credits.
class SharedQuotaTest : public ::testing::Test {
 protected:
  SharedQuotaTest()
      : peppers_(*core::PepperSet::Parse(kPepper)),
        credits_a_(&stores_.counters, Options()),
        credits_b_(&stores_.counters, Options()),
        a_(&stores_.keys, peppers_, VerifierOptionsWith(&credits_a_)),
        b_(&stores_.keys, peppers_, VerifierOptionsWith(&credits_b_)),
        keys_(&stores_.keys, peppers_, &a_) {}

  static ClusterCreditsOptions Options() {
    ClusterCreditsOptions options;
    options.replicas = [] { return 2; };
    return options;
  }
  static VerifierOptions VerifierOptionsWith(ClusterCredits* credits) {
    VerifierOptions options;
    options.credits = credits;
    return options;
  }
  // A tenant whose first key has `credits` and `per_minute`.
  KeyWithSecret KeyWith(int64_t credits, int32_t per_minute = 0) {
    CreateKeyParams first;
    first.name = "root";
    first.scopes = {"admin:write"};
    first.rate_limit_per_minute = per_minute;
    first.credits = storage::KeyQuota{credits, 0, absl::ZeroDuration()};
    auto tenant = keys_.CreateTenant({}, "acme", "Acme", first);
    EXPECT_TRUE(tenant.ok()) << tenant.status();
    return *tenant->initial_key;
  }
  VerifyOutcome Verify(Verifier& v, const KeyWithSecret& key,
                       int64_t cost = 1) {
    VerifyParams params;
    params.tenant_slug = "acme";
    params.cost = cost;
    absl::StatusOr<VerifyOutcome> outcome = v.Verify(key.full_key, params);
    EXPECT_TRUE(outcome.ok()) << outcome.status();
    return outcome.ok() ? *outcome : VerifyOutcome();
  }

  testing::FakeStores stores_;
  std::shared_ptr<const core::PepperSet> peppers_;
  ClusterCredits credits_a_;
  ClusterCredits credits_b_;
  Verifier a_;
  Verifier b_;
  KeyService keys_;
};

TEST_F(SharedQuotaTest, TwoReplicasSpendTheBalanceOnce) {
  const KeyWithSecret key = KeyWith(7);
  int valid = 0;
  int exceeded = 0;
  for (int i = 0; i < 20; ++i) {
    const VerifyOutcome outcome = Verify(i % 2 == 0 ? a_ : b_, key);
    valid += outcome.reason == VerifyReason::kValid;
    exceeded += outcome.reason == VerifyReason::kUsageExceeded;
    EXPECT_TRUE(outcome.credits_remaining.has_value());
  }
  EXPECT_EQ(valid, 7);
  EXPECT_EQ(exceeded, 13);
  EXPECT_EQ(a_.outcome_count(VerifyReason::kUsageExceeded) +
                b_.outcome_count(VerifyReason::kUsageExceeded),
            13u);
}

TEST_F(SharedQuotaTest, AnExhaustionIsReportedOnceAcrossReplicas) {
  const KeyWithSecret key = KeyWith(2);
  int reports = 0;
  int exceeded = 0;
  for (int i = 0; i < 12; ++i) {
    const VerifyOutcome outcome = Verify(i % 2 == 0 ? a_ : b_, key);
    exceeded += outcome.reason == VerifyReason::kUsageExceeded;
    if (outcome.report_usage_exceeded) {
      ++reports;
      EXPECT_EQ(outcome.reason, VerifyReason::kUsageExceeded);
    }
  }
  EXPECT_EQ(exceeded, 10);
  // Ten refusals on two replicas: one report (not one per refusal, not one
  // per replica).
  EXPECT_EQ(reports, 1);
  // A new balance is a new exhaustion: reported once again.
  ASSERT_TRUE(stores_.counters.AddCredits(key.record.id, 1).ok());
  credits_a_.Drop(key.record.id);
  credits_b_.Drop(key.record.id);
  a_.Evict(key.record.id);
  b_.Evict(key.record.id);
  reports = 0;
  int valid = 0;
  for (int i = 0; i < 8; ++i) {
    const VerifyOutcome outcome = Verify(i % 2 == 0 ? b_ : a_, key);
    valid += outcome.reason == VerifyReason::kValid;
    reports += outcome.report_usage_exceeded;
  }
  EXPECT_EQ(valid, 1);
  EXPECT_EQ(reports, 1);
}

TEST_F(SharedQuotaTest, CostIsSpentWholeOrNotAtAll) {
  const KeyWithSecret key = KeyWith(5);
  EXPECT_EQ(Verify(a_, key, 0).reason, VerifyReason::kValid);
  VerifyOutcome outcome = Verify(a_, key, 3);
  EXPECT_EQ(outcome.reason, VerifyReason::kValid);
  EXPECT_EQ(outcome.credits_remaining, 2);
  EXPECT_EQ(Verify(a_, key, 3).reason, VerifyReason::kUsageExceeded);
  outcome = Verify(a_, key, 2);
  EXPECT_EQ(outcome.reason, VerifyReason::kValid);
  EXPECT_EQ(outcome.credits_remaining, 0);
}

TEST_F(SharedQuotaTest, RateLimitedRequestsSpendNoCredits) {
  const KeyWithSecret key = KeyWith(5, /*per_minute=*/2);
  std::vector<VerifyReason> reasons;
  for (int i = 0; i < 4; ++i) reasons.push_back(Verify(a_, key).reason);
  EXPECT_EQ(reasons,
            (std::vector<VerifyReason>{
                VerifyReason::kValid, VerifyReason::kValid,
                VerifyReason::kRateLimited, VerifyReason::kRateLimited}));
  credits_a_.FlushReturns(/*all=*/true);
  absl::StatusOr<storage::QuotaState> state =
      stores_.counters.GetQuota(key.record.id);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->remaining, 3);
}

TEST_F(SharedQuotaTest, WithoutSharedCreditsAKeyWithAQuotaFailsClosed) {
  const KeyWithSecret key = KeyWith(5);
  Verifier alone(&stores_.keys, peppers_, VerifierOptions{});
  VerifyParams params;
  params.tenant_slug = "acme";
  absl::StatusOr<VerifyOutcome> outcome = alone.Verify(key.full_key, params);
  EXPECT_TRUE(absl::IsUnavailable(outcome.status())) << outcome.status();
  // Not counted as an outcome: a store failure.
  EXPECT_EQ(alone.outcome_count(VerifyReason::kValid), 0u);
}

TEST(DefaultKeyLimitTest, KeysWithoutLimitsAreHeldToTheReplicasShare) {
  testing::FakeStores stores;
  std::shared_ptr<const core::PepperSet> peppers =
      *core::PepperSet::Parse(kPepper);
  int replicas = 1;
  VerifierOptions options;
  options.default_limit_per_minute = 5;
  options.replicas = [&replicas] { return replicas; };
  Verifier verifier(&stores.keys, peppers, options);
  KeyService keys(&stores.keys, peppers, &verifier);
  CreateKeyParams first;
  first.name = "root";
  first.scopes = {"admin:write"};
  auto tenant = keys.CreateTenant({}, "acme", "Acme", first);
  ASSERT_TRUE(tenant.ok()) << tenant.status();
  Principal root;
  root.kind = Principal::Kind::kSession;
  root.tenant_id = tenant->tenant.id;
  root.scopes = {"admin:write"};
  VerifyParams acme;
  acme.tenant_slug = "acme";
  auto count = [&](const std::string& key, int calls) {
    std::vector<std::string> seen;
    for (int i = 0; i < calls; ++i) {
      absl::StatusOr<VerifyOutcome> outcome = verifier.Verify(key, acme);
      EXPECT_TRUE(outcome.ok()) << outcome.status();
      if (!outcome.ok()) break;
      seen.push_back(absl::StrCat(
          VerifyReasonName(outcome->reason), "/", outcome->rate_limit_name, "/",
          outcome->rate_limit, "/", outcome->rate_remaining));
    }
    return seen;
  };
  EXPECT_EQ(
      count(tenant->initial_key->full_key, 6),
      (std::vector<std::string>{
          "VALID/server/5/4", "VALID/server/5/3", "VALID/server/5/2",
          "VALID/server/5/1", "VALID/server/5/0", "RATE_LIMITED/server/5/0"}));
  // Three replicas: each admits its share, ceil(5 / 3) = 2.
  replicas = 3;
  CreateKeyParams p;
  p.name = "k";
  p.scopes = {"admin:read"};
  auto shared = keys.CreateKey(root, {}, p);
  ASSERT_TRUE(shared.ok()) << shared.status();
  EXPECT_EQ(count(shared->full_key, 3),
            (std::vector<std::string>{"VALID/server/2/1", "VALID/server/2/0",
                                      "RATE_LIMITED/server/2/0"}));
  // A key with a limit of its own is held to it alone.
  p.rate_limit_per_minute = 100;
  auto own = keys.CreateKey(root, {}, p);
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(
      count(own->full_key, 3),
      (std::vector<std::string>{"VALID/default/100/99", "VALID/default/100/98",
                                "VALID/default/100/97"}));
}

// The cache finds each of many entries by its id, and an eviction drops
// that entry alone.
TEST_F(VerifierTest, ManyEntriesAreFoundByIdAndEvictedOneByOne) {
  std::vector<KeyWithSecret> keys;
  for (int i = 0; i < 300; ++i) keys.push_back(CreateSimple());
  const size_t size_before = verifier_->size();
  for (const KeyWithSecret& k : keys) {
    ASSERT_EQ(Reason(k.full_key), VerifyReason::kValid);
  }
  EXPECT_EQ(verifier_->size(), size_before + keys.size());
  const uint64_t misses = verifier_->misses();
  for (const KeyWithSecret& k : keys) {
    auto outcome = verifier_->VerifyCached(k.full_key, {"acme", {}, ""});
    ASSERT_TRUE(outcome.has_value());
    EXPECT_EQ(outcome->key_id, k.record.id);
    EXPECT_EQ(outcome->reason, VerifyReason::kValid);
  }
  for (size_t i = 0; i < keys.size(); i += 2) {
    verifier_->Evict(keys[i].record.id);
  }
  EXPECT_EQ(verifier_->size(), size_before + keys.size() / 2);
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(
        verifier_->VerifyCached(keys[i].full_key, {"acme", {}, ""}).has_value(),
        i % 2 == 1)
        << i;
  }
  EXPECT_EQ(verifier_->misses(), misses);
  // An evicted entry is read again on the next verification.
  EXPECT_EQ(Reason(keys[0].full_key), VerifyReason::kValid);
  EXPECT_EQ(verifier_->misses(), misses + 1);
}

// The server's default limit is counted in the key's cache entry while it
// can be; whatever happens to the entry (eviction, a reload after the TTL,
// EvictAll, the size bound), the key keeps one window.
class ServerWindowTest : public ::testing::Test {
 protected:
  void Start(int32_t limit, absl::Duration ttl, size_t max_entries) {
    peppers_ = *core::PepperSet::Parse(kPepper);
    VerifierOptions options;
    options.default_limit_per_minute = limit;
    options.cache_ttl = ttl;
    options.max_entries = max_entries;
    verifier_ = std::make_unique<Verifier>(&stores_.keys, peppers_, options);
    keys_ =
        std::make_unique<KeyService>(&stores_.keys, peppers_, verifier_.get());
    CreateKeyParams first;
    first.name = "root";
    first.scopes = {"admin:write"};
    auto tenant = keys_->CreateTenant({}, "acme", "Acme", first);
    ASSERT_TRUE(tenant.ok()) << tenant.status();
    root_.kind = Principal::Kind::kSession;
    root_.tenant_id = tenant->tenant.id;
    root_.scopes = {"admin:write"};
  }
  KeyWithSecret NewKey() {
    CreateKeyParams p;
    p.name = "k";
    p.scopes = {"admin:read"};
    auto created = keys_->CreateKey(root_, {}, p);
    EXPECT_TRUE(created.ok()) << created.status();
    return *created;
  }
  // "REASON/remaining" of one verification.
  std::string Take(const KeyWithSecret& key) {
    absl::StatusOr<VerifyOutcome> outcome =
        verifier_->Verify(key.full_key, {"acme", {}, ""});
    EXPECT_TRUE(outcome.ok()) << outcome.status();
    if (!outcome.ok()) return "error";
    EXPECT_EQ(outcome->rate_limit_name, kServerLimitName);
    return absl::StrCat(VerifyReasonName(outcome->reason), "/",
                        outcome->rate_remaining);
  }

  testing::FakeStores stores_;
  std::shared_ptr<const core::PepperSet> peppers_;
  std::unique_ptr<Verifier> verifier_;
  std::unique_ptr<KeyService> keys_;
  Principal root_;
};

TEST_F(ServerWindowTest, EvictionsAndReloadsKeepTheKeysCount) {
  Start(/*limit=*/7, /*ttl=*/absl::Milliseconds(200), /*max_entries=*/1000);
  KeyWithSecret key = NewKey();
  KeyWithSecret other = NewKey();
  EXPECT_EQ(Take(key), "VALID/6");
  EXPECT_EQ(Take(other), "VALID/6");
  verifier_->Evict(key.record.id);
  EXPECT_EQ(verifier_->misses(), 2u);
  EXPECT_EQ(Take(key), "VALID/5");
  EXPECT_EQ(verifier_->misses(), 3u);  // read again, same window
  verifier_->EvictAll();
  EXPECT_EQ(Take(key), "VALID/4");
  EXPECT_EQ(Take(other), "VALID/5");
  // An edit of the key evicts its entry.
  UpdateKeyParams edit;
  edit.update_mask = {"name"};
  edit.name = "renamed";
  ASSERT_TRUE(keys_->UpdateKey(root_, {}, key.record.id, edit).ok());
  EXPECT_EQ(Take(key), "VALID/3");
  // The TTL passes: the entry is read again and replaces the old one.
  absl::SleepFor(absl::Milliseconds(250));
  const uint64_t misses = verifier_->misses();
  EXPECT_EQ(Take(key), "VALID/2");
  EXPECT_EQ(verifier_->misses(), misses + 1);
  EXPECT_EQ(Take(key), "VALID/1");
  EXPECT_EQ(Take(key), "VALID/0");
  EXPECT_EQ(Take(key), "RATE_LIMITED/0");
  verifier_->Evict(key.record.id);
  EXPECT_EQ(Take(key), "RATE_LIMITED/0");
  EXPECT_EQ(Take(other), "VALID/4");
}

TEST_F(ServerWindowTest, TheSizeBoundEvictingAnEntryKeepsItsCount) {
  // At most one entry per shard: a key of the same shard evicts it.
  Start(/*limit=*/1000, /*ttl=*/absl::Hours(1), /*max_entries=*/1);
  KeyWithSecret key = NewKey();
  int remaining = 999;
  EXPECT_EQ(Take(key), absl::StrCat("VALID/", remaining--));
  int evictions = 0;
  for (int i = 0; i < 2000 && evictions < 3; ++i) {
    ASSERT_EQ(Take(NewKey()), "VALID/999");
    const uint64_t misses = verifier_->misses();
    ASSERT_EQ(Take(key), absl::StrCat("VALID/", remaining--)) << i;
    evictions += verifier_->misses() == misses + 1;
  }
  EXPECT_EQ(evictions, 3);
}

// Takes in three slots of one window (the third does not fit the entry)
// and then evictions: the count goes on.
TEST_F(ServerWindowTest, ATakeInAThirdSlotKeepsTheCount) {
  Start(/*limit=*/6, /*ttl=*/absl::Hours(1), /*max_entries=*/1000);
  KeyWithSecret key = NewKey();
  EXPECT_EQ(Take(key), "VALID/5");
  for (int slot = 0; slot < 2; ++slot) {
    // The next one-second slot of the default limit's minute.
    const int64_t ms = absl::ToUnixMillis(absl::Now());
    absl::SleepFor(absl::Milliseconds(1000 - ms % 1000 + 20));
    EXPECT_EQ(Take(key), absl::StrCat("VALID/", 4 - slot));
  }
  verifier_->Evict(key.record.id);
  EXPECT_EQ(Take(key), "VALID/2");
  verifier_->EvictAll();
  EXPECT_EQ(Take(key), "VALID/1");
  EXPECT_EQ(Take(key), "VALID/0");
  EXPECT_EQ(Take(key), "RATE_LIMITED/0");
}

TEST_F(VerifierTest, StoreDownFailsClosedForUncachedKeys) {
  KeyWithSecret cached = CreateSimple();
  KeyWithSecret uncached = CreateSimple();
  EXPECT_EQ(Reason(cached.full_key), VerifyReason::kValid);
  store_->SetUnavailable(true);
  auto outcome = verifier_->Verify(uncached.full_key, {"acme", {}, ""});
  EXPECT_EQ(outcome.status().code(), absl::StatusCode::kUnavailable);
  // Malformed keys are still answered without the store.
  EXPECT_EQ(Reason("nope"), VerifyReason::kMalformed);
  store_->SetUnavailable(false);
  EXPECT_EQ(Reason(uncached.full_key), VerifyReason::kValid);
}

TEST_F(VerifierTest, ReadRacingARotationIsNotCached) {
  KeyWithSecret k = CreateSimple();
  std::string new_key;
  // While the verifier's read of the old state is in flight, the key is
  // rotated (which evicts). The stale read must not be installed.
  store_->SetLoadHook([&] {
    auto rotated = keys_->RotateKey(root_, {}, k.record.id, 0);
    ASSERT_TRUE(rotated.ok());
    new_key = rotated->full_key;
  });
  EXPECT_EQ(Reason(k.full_key), VerifyReason::kValid);  // raced read
  EXPECT_EQ(Reason(k.full_key), VerifyReason::kRotated);
  EXPECT_EQ(Reason(new_key), VerifyReason::kValid);
}

}  // namespace
TEST_F(VerifierTest, StatesAreComputedUnlessTheBenchmarkSwitchTurnsThemOff) {
  CreateKeyParams p;
  p.name = "expiring";
  p.scopes = {"admin:read"};
  absl::StatusOr<absl::Time> now = store_->Now();
  ASSERT_TRUE(now.ok());
  p.expires_at = *now + absl::Hours(24);  // within the default 7-day warning
  KeyWithSecret k = Create(p);
  auto outcome = verifier_->Verify(k.full_key, {"acme", {}, ""});
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_TRUE(outcome->states_computed);
  EXPECT_TRUE(outcome->states.expiring_soon);

  SetUpWith(absl::Hours(1), /*key_states=*/false);
  k = Create(p);
  outcome = verifier_->Verify(k.full_key, {"acme", {}, ""});
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(outcome->reason, VerifyReason::kValid);
  EXPECT_FALSE(outcome->states_computed);
  EXPECT_FALSE(outcome->states.expiring_soon);
}

}  // namespace lumo::service
