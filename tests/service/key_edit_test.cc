// KeyService edits, disable and enable (docs/api-keys.md, "Managing a key
// over years") over the in-memory fakes, with a barrier that records what
// each call waited for.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/service/change_barrier.h"
#include "server/service/key_service.h"
#include "server/storage/key_states.h"
#include "tests/storage/fakes/fake_key_store.h"

namespace lumo::service {
namespace {

using storage::KeyStates;
using storage::KeyStatesOf;
using ::testing::ElementsAre;
using testing::FakeDatabase;
using testing::FakeKeyStore;
using ::testing::HasSubstr;

constexpr char kPepper[] =
    "1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";

// Records every wait; fails them while `fail` is set.
class RecordingBarrier : public ChangeBarrier {
 public:
  absl::Status AwaitChange(const ChangeRef& change,
                           absl::Duration mutation_took) override {
    waits.push_back(absl::StrCat(change.change_type, "@", change.key_version,
                                 change.wrote_feed_row ? "" : " again"));
    if (fail) return absl::UnavailableError("replica did not acknowledge");
    return absl::OkStatus();
  }
  std::vector<std::string> waits;
  bool fail = false;
};

class KeyEditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    peppers_ = *core::PepperSet::Parse(kPepper);
    verifier_ =
        std::make_unique<Verifier>(&store_, peppers_, VerifierOptions{});
    keys_ = std::make_unique<KeyService>(&store_, peppers_, verifier_.get(),
                                         &barrier_);
    CreateKeyParams first;
    first.name = "root";
    first.scopes = {"admin:write"};
    auto tenant = keys_->CreateTenant({}, "acme", "", first);
    ASSERT_TRUE(tenant.ok()) << tenant.status();
    root_.tenant_id = tenant->tenant.id;
    root_.tenant_slug = "acme";
    root_.key_id = tenant->initial_key->record.id;
    root_.scopes = {"admin:write"};
    CreateKeyParams p;
    p.name = "ci";
    p.scopes = {"admin:read", "admin:users"};
    p.allowed_cidrs = {"10.0.0.0/8"};
    p.rate_limit_per_minute = 100;
    auto key = keys_->CreateKey(root_, {}, p);
    ASSERT_TRUE(key.ok()) << key.status();
    key_ = key->record;
    full_ = key->full_key;
  }

  UpdateKeyParams Mask(std::vector<std::string> paths) {
    UpdateKeyParams p;
    p.update_mask = std::move(paths);
    return p;
  }

  std::vector<storage::AuditEvent> Events(const std::string& action) {
    std::vector<storage::AuditEvent> out;
    for (const storage::AuditEvent& e : store_.events()) {
      if (e.action == action) out.push_back(e);
    }
    return out;
  }

  FakeKeyStore store_;
  RecordingBarrier barrier_;
  std::shared_ptr<const core::PepperSet> peppers_;
  std::unique_ptr<Verifier> verifier_;
  std::unique_ptr<KeyService> keys_;
  Principal root_;
  storage::ApiKeyRecord key_;
  std::string full_;
};

TEST_F(KeyEditTest, EditChangesOnlyTheMaskedFieldsAuditsBeforeAfterAndWaits) {
  UpdateKeyParams p = Mask({"name", "scopes", "metadata"});
  p.name = "ci-renamed";
  p.scopes = {"admin:read"};
  p.metadata = {{"team", "<b>payments</b>"}};
  p.rate_limit_per_minute = 5;  // not in the mask: ignored
  absl::StatusOr<storage::ApiKeyRecord> edited =
      keys_->UpdateKey(root_, {}, key_.id, p);
  ASSERT_TRUE(edited.ok()) << edited.status();
  EXPECT_EQ(edited->name, "ci-renamed");
  EXPECT_THAT(edited->scopes, ElementsAre("admin:read"));
  EXPECT_EQ(edited->rate_limit_per_minute, 100);
  EXPECT_EQ(edited->metadata, p.metadata);
  EXPECT_EQ(edited->version, key_.version + 1);
  EXPECT_THAT(barrier_.waits, ElementsAre(absl::StrCat("updated@", 2)));

  std::vector<storage::AuditEvent> events = Events("api_key.updated");
  ASSERT_EQ(events.size(), 1u);
  const std::string& m = events[0].metadata_json;
  EXPECT_THAT(m, HasSubstr(R"("name":{"before":"ci","after":"ci-renamed"})"));
  EXPECT_THAT(
      m,
      HasSubstr(
          R"("scopes":{"before":["admin:read","admin:users"],"after":["admin:read"]})"));
  EXPECT_THAT(m, HasSubstr(R"("metadata":{"before":{},"after":{"team":)"));
  EXPECT_EQ(m.find("rateLimitPerMinute"), std::string::npos);
  EXPECT_EQ(m.find(full_), std::string::npos);
}

TEST_F(KeyEditTest, AnEditThatChangesNothingWritesNothingButWaitsAgain) {
  UpdateKeyParams p = Mask({"name"});
  p.name = key_.name;
  absl::StatusOr<storage::ApiKeyRecord> edited =
      keys_->UpdateKey(root_, {}, key_.id, p);
  ASSERT_TRUE(edited.ok()) << edited.status();
  EXPECT_EQ(edited->version, key_.version);
  EXPECT_TRUE(Events("api_key.updated").empty());
  EXPECT_THAT(barrier_.waits, ElementsAre("updated@1 again"));
}

TEST_F(KeyEditTest, AFailedWaitReportsUnavailableAndTheEditStands) {
  barrier_.fail = true;
  UpdateKeyParams p = Mask({"rateLimitPerMinute"});
  p.rate_limit_per_minute = 1;
  absl::Status st = keys_->UpdateKey(root_, {}, key_.id, p).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorKindOf(st), ErrorKind::kUnavailable);
  EXPECT_EQ(keys_->GetKey(root_, key_.id)->rate_limit_per_minute, 1);
}

TEST_F(KeyEditTest, BadMasksAndValuesAreRefusedNamingTheFieldAndChangeNothing) {
  struct Case {
    UpdateKeyParams params;
    std::string field;
  };
  std::vector<Case> cases;
  cases.push_back({Mask({}), "updateMask"});
  cases.push_back({Mask({"secret"}), "updateMask"});
  cases.push_back({Mask({"name", "name"}), "updateMask"});
  cases.push_back({Mask({"name"}), "name"});  // empty name
  UpdateKeyParams scopes = Mask({"scopes"});
  cases.push_back({scopes, "scopes"});  // empty scopes
  UpdateKeyParams cidrs = Mask({"allowedCidrs"});
  for (int i = 0; i < 33; ++i) cidrs.allowed_cidrs.push_back("10.0.0.0/8");
  cases.push_back({cidrs, "allowedCidrs"});
  UpdateKeyParams limit = Mask({"rateLimitPerMinute"});
  limit.rate_limit_per_minute = -1;
  cases.push_back({limit, "rateLimitPerMinute"});
  UpdateKeyParams past = Mask({"expiresAt"});
  past.expires_at = *store_.Now() - absl::Seconds(1);
  cases.push_back({past, "expiresAt"});
  UpdateKeyParams owner = Mask({"externalId"});
  owner.external_id = std::string(129, 'x');
  cases.push_back({owner, "externalId"});
  UpdateKeyParams many = Mask({"metadata"});
  for (int i = 0; i < 21; ++i) many.metadata[absl::StrCat("k", i)] = "v";
  cases.push_back({many, "metadata"});
  UpdateKeyParams big = Mask({"metadata"});
  big.metadata["a"] = std::string(4096, 'x');
  cases.push_back({big, "metadata"});
  UpdateKeyParams control = Mask({"metadata"});
  control.metadata["a"] = "line\nbreak";
  cases.push_back({control, "metadata"});
  UpdateKeyParams badkey = Mask({"metadata"});
  badkey.metadata["a b"] = "v";
  cases.push_back({badkey, "metadata"});

  for (const Case& c : cases) {
    absl::Status st = keys_->UpdateKey(root_, {}, key_.id, c.params).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_EQ(ErrorKindOf(st), ErrorKind::kInvalidField) << c.field;
    EXPECT_TRUE(absl::StartsWith(st.message(), c.field))
        << c.field << ": " << st.message();
  }
  EXPECT_EQ(keys_->GetKey(root_, key_.id)->version, key_.version);
  EXPECT_TRUE(Events("api_key.updated").empty());
  EXPECT_TRUE(barrier_.waits.empty());
}

TEST_F(KeyEditTest, AKeyCannotEscalateOrLoosenThroughAnEdit) {
  // The key itself (admin:read, admin:users, 10/8, 100/min) edits a child.
  Principal self = root_;
  self.key_id = key_.id;
  self.scopes = key_.scopes;
  self.key_allowed_cidrs = key_.allowed_cidrs;
  self.key_rate_limit_per_minute = key_.rate_limit_per_minute;
  CreateKeyParams c;
  c.name = "child";
  c.scopes = {"admin:read"};
  c.allowed_cidrs = {"10.1.0.0/16"};
  c.rate_limit_per_minute = 10;
  auto child = keys_->CreateKey(self, {}, c);
  ASSERT_TRUE(child.ok()) << child.status();

  UpdateKeyParams up = Mask({"scopes"});
  up.scopes = {"admin:write"};
  absl::Status st = keys_->UpdateKey(self, {}, child->record.id, up).status();
  EXPECT_EQ(ErrorKindOf(st), ErrorKind::kScopeExceeded) << st;
  UpdateKeyParams wide = Mask({"allowedCidrs"});
  st = keys_->UpdateKey(self, {}, child->record.id, wide).status();
  EXPECT_EQ(ErrorKindOf(st), ErrorKind::kScopeExceeded) << st;
  EXPECT_TRUE(absl::StartsWith(st.message(), "allowedCidrs")) << st;
  UpdateKeyParams unlimited = Mask({"rateLimitPerMinute"});
  st = keys_->UpdateKey(self, {}, child->record.id, unlimited).status();
  EXPECT_EQ(ErrorKindOf(st), ErrorKind::kScopeExceeded) << st;
  // The root key's scopes are not held by `self`: it cannot edit it.
  UpdateKeyParams rename = Mask({"name"});
  rename.name = "mine now";
  st = keys_->UpdateKey(self, {}, root_.key_id, rename).status();
  EXPECT_EQ(ErrorKindOf(st), ErrorKind::kScopeExceeded) << st;
  // A restriction within its own is fine.
  UpdateKeyParams narrower = Mask({"allowedCidrs", "rateLimitPerMinute"});
  narrower.allowed_cidrs = {"10.1.2.0/24"};
  narrower.rate_limit_per_minute = 5;
  EXPECT_TRUE(keys_->UpdateKey(self, {}, child->record.id, narrower).ok());
}

TEST_F(KeyEditTest, NamedLimitsAreReplacedWholeAuditedAndWaitedFor) {
  UpdateKeyParams p = Mask({"rateLimits"});
  p.rate_limits = {{"hourly", 500, absl::Hours(1)},
                   {"burst", 5, absl::Seconds(1)}};
  absl::StatusOr<storage::ApiKeyRecord> edited =
      keys_->UpdateKey(root_, {}, key_.id, p);
  ASSERT_TRUE(edited.ok()) << edited.status();
  const std::vector<storage::KeyRateLimit> sorted = {
      {"burst", 5, absl::Seconds(1)}, {"hourly", 500, absl::Hours(1)}};
  EXPECT_EQ(edited->rate_limits, sorted);
  EXPECT_EQ(edited->rate_limit_per_minute, 100);  // not in the mask
  EXPECT_EQ(keys_->GetKey(root_, key_.id)->rate_limits, sorted);
  EXPECT_THAT(barrier_.waits, ElementsAre("updated@2"));
  std::vector<storage::AuditEvent> events = Events("api_key.updated");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(
      events[0].metadata_json,
      HasSubstr(
          R"("rateLimits":{"before":[],"after":[{"name":"burst","limit":5,"durationSeconds":1},{"name":"hourly","limit":500,"durationSeconds":3600}]})"));

  // The same limits in another order change nothing (and still wait).
  std::swap(p.rate_limits[0], p.rate_limits[1]);
  edited = keys_->UpdateKey(root_, {}, key_.id, p);
  ASSERT_TRUE(edited.ok()) << edited.status();
  EXPECT_EQ(edited->version, 2);
  EXPECT_EQ(Events("api_key.updated").size(), 1u);

  // Bad lists are refused naming the field, and change nothing.
  std::vector<std::pair<std::vector<storage::KeyRateLimit>, std::string>> bad =
      {{{{"burst", 0, absl::Seconds(1)}}, "rateLimits[0].limit"},
       {{{"x", 1, absl::Seconds(1)}, {"x", 2, absl::Seconds(2)}},
        "rateLimits[1].name"},
       {{{"Bad Name", 1, absl::Seconds(1)}}, "rateLimits[0].name"},
       {{{"long", 1, absl::Hours(24 * 366)}}, "rateLimits[0].durationSeconds"},
       // "default" is the per-minute limit's name, which the key has.
       {{{"default", 1, absl::Seconds(1)}}, "rateLimits[0].name"}};
  for (const auto& [limits, field] : bad) {
    UpdateKeyParams b = Mask({"rateLimits"});
    b.rate_limits = limits;
    absl::Status st = keys_->UpdateKey(root_, {}, key_.id, b).status();
    EXPECT_EQ(ErrorKindOf(st), ErrorKind::kInvalidField) << field << st;
    EXPECT_TRUE(absl::StartsWith(st.message(), field)) << field << ": " << st;
  }
  // Removing the per-minute limit frees the name "default".
  UpdateKeyParams both = Mask({"rateLimitPerMinute", "rateLimits"});
  both.rate_limits = {{"default", 30, absl::Minutes(1)}};
  edited = keys_->UpdateKey(root_, {}, key_.id, both);
  ASSERT_TRUE(edited.ok()) << edited.status();
  EXPECT_EQ(edited->rate_limit_per_minute, 0);
  EXPECT_EQ(edited->version, 3);
  // An empty list removes them.
  edited = keys_->UpdateKey(root_, {}, key_.id, Mask({"rateLimits"}));
  ASSERT_TRUE(edited.ok()) << edited.status();
  EXPECT_TRUE(edited->rate_limits.empty());
}

TEST_F(KeyEditTest, AKeyWithNamedLimitsCannotLoosenThemOnAnotherKey) {
  // A key limited to 10 an hour edits a child it made.
  Principal self = root_;
  self.key_id = key_.id;
  self.scopes = key_.scopes;
  self.key_allowed_cidrs = key_.allowed_cidrs;
  self.key_rate_limits = {{"hourly", 10, absl::Hours(1)}};
  CreateKeyParams c;
  c.name = "child";
  c.scopes = {"admin:read"};
  c.allowed_cidrs = {"10.1.0.0/16"};
  c.rate_limits = {{"hourly", 10, absl::Hours(1)}};
  auto child = keys_->CreateKey(self, {}, c);
  ASSERT_TRUE(child.ok()) << child.status();
  // 1 a minute allows 60 an hour: looser than 10 an hour.
  UpdateKeyParams loose = Mask({"rateLimits"});
  loose.rate_limits = {{"minute", 1, absl::Minutes(1)}};
  absl::Status st =
      keys_->UpdateKey(self, {}, child->record.id, loose).status();
  EXPECT_EQ(ErrorKindOf(st), ErrorKind::kScopeExceeded) << st;
  EXPECT_TRUE(absl::StartsWith(st.message(), "rateLimits")) << st;
  st = keys_->UpdateKey(self, {}, child->record.id, Mask({"rateLimits"}))
           .status();
  EXPECT_EQ(ErrorKindOf(st), ErrorKind::kScopeExceeded) << st;
  EXPECT_EQ(keys_->GetKey(root_, child->record.id)->rate_limits, c.rate_limits);
  UpdateKeyParams tighter = Mask({"rateLimits"});
  tighter.rate_limits = {{"hourly", 4, absl::Hours(1)}};
  EXPECT_TRUE(keys_->UpdateKey(self, {}, child->record.id, tighter).ok());
}

TEST_F(KeyEditTest, RevokedAndDeletedKeysCannotBeEdited) {
  ASSERT_TRUE(keys_->RevokeKey(root_, {}, key_.id).ok());
  UpdateKeyParams p = Mask({"name"});
  p.name = "x";
  absl::Status st = keys_->UpdateKey(root_, {}, key_.id, p).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrorKindOf(st), ErrorKind::kInvalidRequest);
  EXPECT_EQ(
      ErrorKindOf(keys_->SetKeyDisabled(root_, {}, key_.id, true).status()),
      ErrorKind::kInvalidRequest);
  ASSERT_TRUE(keys_->DeleteKey(root_, {}, key_.id).ok());
  st = keys_->UpdateKey(root_, {}, key_.id, p).status();
  EXPECT_EQ(ErrorKindOf(st), ErrorKind::kNotFound);
}

TEST_F(KeyEditTest, DisabledKeyIsRefusedByVerifyUntilEnabled) {
  auto verify = [&] {
    absl::StatusOr<VerifyOutcome> outcome =
        verifier_->Verify(full_, {"acme", {}, "10.1.2.3"});
    EXPECT_TRUE(outcome.ok()) << outcome.status();
    return outcome.ok() ? outcome->reason : VerifyReason::kMalformed;
  };
  EXPECT_EQ(verify(), VerifyReason::kValid);
  absl::StatusOr<storage::ApiKeyRecord> off =
      keys_->SetKeyDisabled(root_, {}, key_.id, true);
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_TRUE(off->disabled);
  EXPECT_EQ(KeyStatusName(*off), "disabled");
  EXPECT_EQ(verify(), VerifyReason::kDisabled);
  // Counted under its own reason (and under no other counter).
  EXPECT_EQ(verifier_->outcome_count(VerifyReason::kDisabled), 1u);
  EXPECT_EQ(verifier_->bad_checksum_count(), 0u);
  // Again: no second event, but waited for again.
  ASSERT_TRUE(keys_->SetKeyDisabled(root_, {}, key_.id, true).ok());
  EXPECT_EQ(Events("api_key.disabled").size(), 1u);
  ASSERT_TRUE(keys_->SetKeyDisabled(root_, {}, key_.id, false).ok());
  EXPECT_EQ(verify(), VerifyReason::kValid);
  EXPECT_EQ(Events("api_key.enabled").size(), 1u);
  EXPECT_THAT(barrier_.waits,
              ElementsAre("disabled@2", "disabled@2 again", "enabled@3"));
}

TEST_F(KeyEditTest, TheTenantPolicyBoundsCreatedAndEditedExpiries) {
  storage::KeyPolicy policy;
  policy.max_lifetime_days = 30;
  {
    FakeDatabase& db = store_.database();
    absl::MutexLock lock(&db.mu);
    db.settings[root_.tenant_id].key_policy = policy;
  }
  const absl::Time now = *store_.Now();
  CreateKeyParams p;
  p.name = "policy";
  p.scopes = {"admin:read"};
  absl::Status st = keys_->CreateKey(root_, {}, p).status();
  EXPECT_EQ(ErrorKindOf(st), ErrorKind::kInvalidField) << st;
  EXPECT_TRUE(absl::StartsWith(st.message(), "expiresAt")) << st;
  p.expires_at = now + absl::Hours(24 * 31);
  st = keys_->CreateKey(root_, {}, p).status();
  EXPECT_EQ(ErrorKindOf(st), ErrorKind::kInvalidField) << st;
  p.expires_at = now + absl::Hours(24 * 30);
  absl::StatusOr<KeyWithSecret> created = keys_->CreateKey(root_, {}, p);
  ASSERT_TRUE(created.ok()) << created.status();

  // Edit: no removal of the expiry, no extension past the cap; renaming a
  // key that predates the policy (key_, without expiry) is fine.
  UpdateKeyParams never = Mask({"expiresAt"});
  st = keys_->UpdateKey(root_, {}, created->record.id, never).status();
  EXPECT_EQ(ErrorKindOf(st), ErrorKind::kInvalidField) << st;
  UpdateKeyParams longer = Mask({"expiresAt"});
  longer.expires_at = now + absl::Hours(24 * 40);
  st = keys_->UpdateKey(root_, {}, created->record.id, longer).status();
  EXPECT_EQ(ErrorKindOf(st), ErrorKind::kInvalidField) << st;
  UpdateKeyParams shorter = Mask({"expiresAt"});
  shorter.expires_at = now + absl::Hours(24 * 10);
  EXPECT_TRUE(keys_->UpdateKey(root_, {}, created->record.id, shorter).ok());
  UpdateKeyParams rename = Mask({"name"});
  rename.name = "old key, renamed";
  EXPECT_TRUE(keys_->UpdateKey(root_, {}, key_.id, rename).ok());

  policy.max_lifetime_days = 0;
  policy.require_expiry = true;
  {
    FakeDatabase& db = store_.database();
    absl::MutexLock lock(&db.mu);
    db.settings[root_.tenant_id].key_policy = policy;
  }
  p.expires_at.reset();
  st = keys_->CreateKey(root_, {}, p).status();
  EXPECT_EQ(ErrorKindOf(st), ErrorKind::kInvalidField) << st;
  p.expires_at = now + absl::Hours(24 * 3000);
  EXPECT_TRUE(keys_->CreateKey(root_, {}, p).ok());
}

TEST_F(KeyEditTest, RotationRenewsAnExpiredKeyAndFollowsTheMaximumLifetime) {
  const absl::Time now = *store_.Now();
  CreateKeyParams p;
  p.name = "short";
  p.scopes = {"admin:read"};
  p.expires_at = now + absl::Hours(1);
  absl::StatusOr<KeyWithSecret> k = keys_->CreateKey(root_, {}, p);
  ASSERT_TRUE(k.ok()) << k.status();
  store_.Advance(absl::Hours(2));
  // Expired: a plain rotation is refused, one with a new expiry renews.
  absl::Status st = keys_->RotateKey(root_, {}, k->record.id, 0).status();
  EXPECT_EQ(ErrorKindOf(st), ErrorKind::kInvalidRequest) << st;
  absl::StatusOr<KeyWithSecret> renewed = keys_->RotateKey(
      root_, {}, k->record.id, 0, *store_.Now() + absl::Hours(24));
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(KeyStatusName(renewed->record), "active");
  EXPECT_EQ(Events("api_key.renewed").size(), 1u);
  EXPECT_THAT(Events("api_key.renewed")[0].metadata_json,
              HasSubstr("\"expiresAt\":{\"before\":"));
  auto verify = [&](const std::string& full) {
    absl::StatusOr<VerifyOutcome> o =
        verifier_->Verify(full, {"acme", {}, "10.1.2.3"});
    return o.ok() ? o->reason : VerifyReason::kMalformed;
  };
  EXPECT_EQ(verify(renewed->full_key), VerifyReason::kValid);
  EXPECT_EQ(verify(k->full_key), VerifyReason::kRotated);

  // Under a maximum lifetime a rotation sets expiry = now + the cap.
  storage::KeyPolicy policy;
  policy.max_lifetime_days = 30;
  {
    FakeDatabase& db = store_.database();
    absl::MutexLock lock(&db.mu);
    db.settings[root_.tenant_id].key_policy = policy;
  }
  absl::StatusOr<KeyWithSecret> capped =
      keys_->RotateKey(root_, {}, key_.id, 0);
  ASSERT_TRUE(capped.ok()) << capped.status();
  EXPECT_EQ(capped->record.expires_at, *store_.Now() + absl::Hours(24 * 30));
  st = keys_
           ->RotateKey(root_, {}, key_.id, 0,
                       *store_.Now() + absl::Hours(24 * 31))
           .status();
  EXPECT_EQ(ErrorKindOf(st), ErrorKind::kInvalidField) << st;
}

TEST(KeyStatesTest, StatesFollowThePolicyOnTheRecordsClock) {
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  const absl::Duration day = absl::Hours(24);
  storage::ApiKeyRecord key;
  key.created_at = t0;
  key.db_now = t0 + day * 10;
  storage::KeyPolicy policy;  // defaults: only a 7-day expiry warning
  KeyStates s = KeyStatesOf(key, policy);
  EXPECT_FALSE(s.rotation_due_at.has_value());
  EXPECT_FALSE(s.rotation_due || s.expiring_soon || s.inactive || s.disabled);

  policy.rotation_period_days = 10;
  policy.inactive_after_days = 11;
  key.expires_at = t0 + day * 17;
  s = KeyStatesOf(key, policy);
  EXPECT_EQ(s.rotation_due_at, t0 + day * 10);
  EXPECT_TRUE(s.rotation_due);   // due exactly now
  EXPECT_TRUE(s.expiring_soon);  // 7 days left
  EXPECT_FALSE(s.inactive);      // 10 of 11 days
  key.rotated_at = t0 + day * 5;
  key.last_used_at = t0 - day;  // before creation cannot happen; older wins
  key.db_now = t0 + day * 10 + absl::Seconds(1);
  s = KeyStatesOf(key, policy);
  EXPECT_EQ(s.rotation_due_at, t0 + day * 15);
  EXPECT_FALSE(s.rotation_due);
  EXPECT_TRUE(s.inactive);
  EXPECT_FALSE(
      KeyStatesOf(key, storage::KeyPolicy{false, 0, 0, 6, 0}).expiring_soon);
  // Revoked or expired keys are neither due, expiring nor inactive.
  key.revoked = true;
  s = KeyStatesOf(key, policy);
  EXPECT_FALSE(s.rotation_due || s.expiring_soon || s.inactive);
  key.revoked = false;
  key.db_now = *key.expires_at;
  s = KeyStatesOf(key, policy);
  EXPECT_FALSE(s.rotation_due || s.expiring_soon || s.inactive);
  key.disabled = true;
  EXPECT_TRUE(KeyStatesOf(key, policy).disabled);
}

}  // namespace
}  // namespace lumo::service
