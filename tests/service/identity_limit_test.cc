// Identity limits (docs/limits.md "Identity limits"): named rate limits
// shared by every key of one (tenant, externalId), set through
// IdentityLimitService and enforced by the Verifier, over the fakes.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/field_error.h"
#include "server/service/cluster_windows.h"
#include "server/service/errors.h"
#include "server/service/identity_limit_service.h"
#include "server/service/key_service.h"
#include "server/service/verifier.h"
#include "tests/storage/fakes/fake_stores.h"

namespace lumo::service {
namespace {

using ::testing::HasSubstr;

constexpr char kPepper[] =
    "1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";

// Records the keys announced; fails while `fail` is set.
class AnnouncementBarrier : public ChangeBarrier {
 public:
  absl::Status AwaitChange(const ChangeRef& change, absl::Duration) override {
    announced.push_back(absl::StrCat(change.key_id, "@", change.key_version,
                                     " ", change.change_type));
    return fail ? absl::UnavailableError("no acknowledgement")
                : absl::OkStatus();
  }
  std::vector<std::string> announced;
  bool fail = false;
};

class IdentityLimitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    peppers_ = *core::PepperSet::Parse(kPepper);
    // Counted like in the server: through the shared counters (one
    // replica: every token is this one's).
    VerifierOptions options;
    options.rate_limits = &windows_;
    verifier_ = std::make_unique<Verifier>(&stores_.keys, peppers_, options);
    keys_ =
        std::make_unique<KeyService>(&stores_.keys, peppers_, verifier_.get());
    identities_ = std::make_unique<IdentityLimitService>(
        &stores_.counters, verifier_.get(), &barrier_);
    CreateKeyParams first;
    first.name = "root";
    first.scopes = {"admin:write"};
    auto tenant = keys_->CreateTenant({}, "acme", "Acme", first);
    ASSERT_TRUE(tenant.ok()) << tenant.status();
    root_.kind = Principal::Kind::kApiKey;
    root_.tenant_id = tenant->tenant.id;
    root_.tenant_slug = "acme";
    root_.key_id = tenant->initial_key->record.id;
    root_.scopes = {"admin:write"};
  }

  KeyWithSecret Create(const std::string& external_id) {
    CreateKeyParams p;
    p.name = "k";
    p.scopes = {"admin:read"};
    p.external_id = external_id;
    auto created = keys_->CreateKey(root_, {}, p);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? *created : KeyWithSecret();
  }
  VerifyOutcome Verify(const KeyWithSecret& key) {
    return VerifyWith(*verifier_, key);
  }
  VerifyOutcome VerifyWith(Verifier& verifier, const KeyWithSecret& key) {
    auto outcome = verifier.Verify(key.full_key, {"acme", {}, ""});
    EXPECT_TRUE(outcome.ok()) << outcome.status();
    return outcome.ok() ? *outcome : VerifyOutcome();
  }
  absl::StatusOr<std::vector<storage::KeyRateLimit>> Set(
      const std::string& external_id,
      std::vector<storage::KeyRateLimit> limits) {
    return identities_->Set(root_, {}, external_id, std::move(limits));
  }

  testing::FakeStores stores_;
  std::shared_ptr<const core::PepperSet> peppers_;
  ClusterWindows windows_{&stores_.counters, ClusterWindowsOptions{}};
  AnnouncementBarrier barrier_;
  std::unique_ptr<Verifier> verifier_;
  std::unique_ptr<KeyService> keys_;
  std::unique_ptr<IdentityLimitService> identities_;
  Principal root_;
};

TEST_F(IdentityLimitTest, TheKeysOfOneIdentityShareItsLimits) {
  const KeyWithSecret a = Create("user-7");
  const KeyWithSecret b = Create("user-7");
  const KeyWithSecret other = Create("user-8");
  ASSERT_TRUE(Set("user-7", {{"minute", 3, absl::Minutes(1)}}).ok());

  int valid = 0;
  for (int i = 0; i < 6; ++i) {
    const VerifyOutcome outcome = Verify(i % 2 == 0 ? a : b);
    if (outcome.reason == VerifyReason::kValid) {
      ++valid;
    } else {
      EXPECT_EQ(outcome.reason, VerifyReason::kRateLimited);
    }
    EXPECT_EQ(outcome.rate_limit_name, "identity:minute");
    EXPECT_EQ(outcome.rate_limit, 3);
  }
  EXPECT_EQ(valid, 3);  // not 3 per key
  // Another identity counts apart.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Verify(other).reason, VerifyReason::kValid);
  }
}

// A verifier counting in its own process (no shared counters) shares the
// identity's windows between its keys too, whatever shards the keys fall in.
TEST_F(IdentityLimitTest, ProcessLocalWindowsAreSharedByTheIdentityToo) {
  Verifier local(&stores_.keys, peppers_, VerifierOptions{});
  std::vector<KeyWithSecret> keys;
  for (int i = 0; i < 8; ++i) keys.push_back(Create("user-7"));
  ASSERT_TRUE(Set("user-7", {{"minute", 5, absl::Minutes(1)}}).ok());
  int valid = 0;
  for (int round = 0; round < 2; ++round) {
    for (const KeyWithSecret& key : keys) {
      valid += VerifyWith(local, key).reason == VerifyReason::kValid;
    }
  }
  EXPECT_EQ(valid, 5);
}

TEST_F(IdentityLimitTest, AKeyLimitAndTheIdentityLimitBothHold) {
  CreateKeyParams p;
  p.name = "tight";
  p.scopes = {"admin:read"};
  p.external_id = "user-7";
  p.rate_limits = {{"minute", 2, absl::Minutes(1)}};
  auto tight = keys_->CreateKey(root_, {}, p);
  ASSERT_TRUE(tight.ok()) << tight.status();
  const KeyWithSecret loose = Create("user-7");
  ASSERT_TRUE(Set("user-7", {{"minute", 5, absl::Minutes(1)}}).ok());

  // The tight key stops at its own 2; the identity's 5 are shared.
  EXPECT_EQ(Verify(*tight).reason, VerifyReason::kValid);
  const VerifyOutcome second = Verify(*tight);
  EXPECT_EQ(second.reason, VerifyReason::kValid);
  EXPECT_EQ(second.rate_limit_name, "minute");  // the tightest: 0 left of 2
  EXPECT_EQ(second.rate_remaining, 0);
  EXPECT_EQ(Verify(*tight).reason, VerifyReason::kRateLimited);
  int valid = 0;
  for (int i = 0; i < 5; ++i)
    valid += Verify(loose).reason == VerifyReason::kValid;
  EXPECT_EQ(valid, 3);  // 5 - the tight key's 2
}

TEST_F(IdentityLimitTest, AChangeReachesCachedKeysAndIsAnnouncedForEach) {
  const KeyWithSecret a = Create("user-7");
  const KeyWithSecret b = Create("user-7");
  Create("user-8");
  // Cached without identity limits.
  EXPECT_EQ(Verify(a).reason, VerifyReason::kValid);
  EXPECT_EQ(Verify(b).reason, VerifyReason::kValid);

  absl::StatusOr<std::vector<storage::KeyRateLimit>> set =
      Set("user-7",
          {{"minute", 4, absl::Minutes(1)}, {"burst", 1, absl::Seconds(10)}});
  ASSERT_TRUE(set.ok()) << set.status();
  // By name.
  EXPECT_EQ(*set, (std::vector<storage::KeyRateLimit>{
                      {"burst", 1, absl::Seconds(10)},
                      {"minute", 4, absl::Minutes(1)}}));
  std::vector<std::string> want = {absl::StrCat(a.record.id, "@1 updated"),
                                   absl::StrCat(b.record.id, "@1 updated")};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(barrier_.announced, want);
  // The cached entries were evicted: the new limits hold at once.
  EXPECT_EQ(Verify(a).reason, VerifyReason::kValid);
  const VerifyOutcome refused = Verify(b);
  EXPECT_EQ(refused.reason, VerifyReason::kRateLimited);
  EXPECT_EQ(refused.rate_limit_name, "identity:burst");

  // Audited with the limits before and after.
  std::vector<storage::AuditEvent> events;
  for (const storage::AuditEvent& e : stores_.keys.events()) {
    if (e.action == "identity.limits_updated") events.push_back(e);
  }
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].target_type, "identity");
  EXPECT_EQ(events[0].target_id, "user-7");
  EXPECT_EQ(events[0].actor_id, root_.key_id);
  EXPECT_EQ(events[0].metadata_json,
            "{\"before\":[],\"after\":[{\"name\":\"burst\",\"limit\":1,"
            "\"durationSeconds\":10},{\"name\":\"minute\",\"limit\":4,"
            "\"durationSeconds\":60}]}");

  auto got = identities_->Get(root_, "user-7");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, *set);

  // Removing them lifts them, also from cached keys.
  ASSERT_TRUE(Set("user-7", {}).ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Verify(b).reason, VerifyReason::kValid);

  // Not acknowledged: the change stands, the caller hears UNAVAILABLE.
  barrier_.fail = true;
  absl::StatusOr<std::vector<storage::KeyRateLimit>> unacked =
      Set("user-7", {{"minute", 9, absl::Minutes(1)}});
  EXPECT_TRUE(absl::IsUnavailable(unacked.status())) << unacked.status();
  EXPECT_EQ(identities_->Get(root_, "user-7")->size(), 1u);
}

TEST_F(IdentityLimitTest, BadInputIsRefusedNamingTheFieldAndChangesNothing) {
  const KeyWithSecret a = Create("user-7");
  auto field_of = [](const absl::Status& s) {
    EXPECT_EQ(ErrorKindOf(s), ErrorKind::kInvalidField) << s;
    return core::InvalidFieldOf(s);
  };
  absl::Status s = Set("", {{"minute", 1, absl::Minutes(1)}}).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_EQ(field_of(s), "externalId");
  s = Set("user\x01", {{"minute", 1, absl::Minutes(1)}}).status();
  EXPECT_EQ(field_of(s), "externalId") << s;
  s = Set("user-7", {{"minute", 0, absl::Minutes(1)}}).status();
  EXPECT_EQ(field_of(s), "rateLimits[0].limit") << s;
  s = Set("user-7", {{"ok", 1, absl::Minutes(1)}, {"x", 1, absl::Seconds(0)}})
          .status();
  EXPECT_EQ(field_of(s), "rateLimits[1].durationSeconds") << s;
  s = Set("user-7", {{"Bad", 1, absl::Minutes(1)}}).status();
  EXPECT_EQ(field_of(s), "rateLimits[0].name") << s;
  std::vector<storage::KeyRateLimit> eleven;
  for (int i = 0; i < 11; ++i) {
    eleven.push_back({absl::StrCat("l", i), 1, absl::Minutes(1)});
  }
  s = Set("user-7", eleven).status();
  EXPECT_EQ(field_of(s), "rateLimits") << s;
  EXPECT_EQ(field_of(identities_->Get(root_, "").status()), "externalId");

  EXPECT_TRUE(identities_->Get(root_, "user-7")->empty());
  EXPECT_TRUE(barrier_.announced.empty());
  for (const storage::AuditEvent& e : stores_.keys.events()) {
    EXPECT_NE(e.action, "identity.limits_updated");
  }
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Verify(a).reason, VerifyReason::kValid);
}

TEST_F(IdentityLimitTest, AKeyCannotChangeTheLimitsOfItsOwnIdentity) {
  Principal key = root_;
  key.key_id = "other";
  key.key_external_id = "user-7";
  absl::StatusOr<std::vector<storage::KeyRateLimit>> s =
      identities_->Set(key, {}, "user-7", {});
  EXPECT_TRUE(absl::IsPermissionDenied(s.status())) << s.status();
  EXPECT_THAT(s.status().message(), HasSubstr("its identity"));
  // Another identity's limits it may change, and a portal session any.
  EXPECT_TRUE(identities_->Set(key, {}, "user-8", {}).ok());
  Principal session = root_;
  session.kind = Principal::Kind::kSession;
  session.key_external_id.clear();
  EXPECT_TRUE(identities_->Set(session, {}, "user-7", {}).ok());
}

}  // namespace
}  // namespace lumo::service
