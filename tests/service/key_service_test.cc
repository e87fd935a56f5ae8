#include "server/service/key_service.h"

#include <memory>
#include <set>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "server/core/key_format.h"
#include "tests/storage/fakes/fake_key_store.h"

namespace lumo::service {
namespace {

using testing::FakeKeyStore;

constexpr char kPepper[] =
    "1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";

class KeyServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    peppers_ = *core::PepperSet::Parse(kPepper);
    verifier_ =
        std::make_unique<Verifier>(&store_, peppers_, VerifierOptions{});
    keys_ = std::make_unique<KeyService>(&store_, peppers_, verifier_.get());
    root_ = MakeTenant("acme", {"admin:write"});
    other_ = MakeTenant("other", {"admin:write"});
  }

  Principal MakeTenant(const std::string& slug,
                       std::vector<std::string> scopes) {
    CreateKeyParams first;
    first.name = "root";
    first.scopes = scopes;
    auto tenant = keys_->CreateTenant({}, slug, "", first);
    EXPECT_TRUE(tenant.ok()) << tenant.status();
    Principal p;
    p.tenant_id = tenant->tenant.id;
    p.tenant_slug = slug;
    p.key_id = tenant->initial_key->record.id;
    p.scopes = scopes;
    return p;
  }

  CreateKeyParams Params(std::string name = "ci",
                         std::vector<std::string> scopes = {"admin:read"}) {
    CreateKeyParams p;
    p.name = std::move(name);
    p.scopes = std::move(scopes);
    return p;
  }

  absl::StatusCode CreateCode(const CreateKeyParams& p) {
    return keys_->CreateKey(root_, {}, p).status().code();
  }

  FakeKeyStore store_;
  std::shared_ptr<const core::PepperSet> peppers_;
  std::unique_ptr<Verifier> verifier_;
  std::unique_ptr<KeyService> keys_;
  Principal root_;
  Principal other_;
};

TEST_F(KeyServiceTest, CreateReturnsFullKeyOnceAndStoresOnlyItsDigest) {
  RequestInfo info;
  info.request_id = "req-1";
  info.ip_address = "10.0.0.1";
  info.user_agent = "curl/8";
  auto created = keys_->CreateKey(root_, info, Params());
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(core::ParseKey(created->full_key).result,
            core::KeyParseResult::kOk);
  EXPECT_EQ(core::ParseKey(created->full_key).id, created->record.id);
  EXPECT_EQ(created->record.name, "ci");
  EXPECT_EQ(created->record.created_by_type, "api_key");
  EXPECT_EQ(created->record.created_by_id, root_.key_id);
  auto fetched = keys_->GetKey(root_, created->record.id);
  ASSERT_TRUE(fetched.ok());
  EXPECT_EQ(fetched->id, created->record.id);
  // The audit event names actor and target and carries no secret.
  // A copy: events() returns a snapshot by value.
  const storage::AuditEvent event = store_.events().back();
  EXPECT_EQ(event.action, "api_key.created");
  EXPECT_EQ(event.category, "api_keys");
  EXPECT_EQ(event.actor_type, "api_key");
  EXPECT_EQ(event.actor_id, root_.key_id);
  EXPECT_EQ(event.target_id, created->record.id);
  EXPECT_EQ(event.request_id, "req-1");
  EXPECT_EQ(event.ip_address, "10.0.0.1");
  EXPECT_EQ(event.metadata_json.find(created->full_key.substr(17)),
            std::string::npos);
}

// The create reply is built from what was written (no read-back): it is
// what a get returns right after, field for field.
TEST_F(KeyServiceTest, CreateRepliesWithWhatAGetThenReturns) {
  CreateKeyParams p = Params("reply", {"admin:read", "admin:audit"});
  p.expires_at = absl::Now() + absl::Hours(30);
  p.allowed_cidrs = {"10.0.0.0/8", "192.168.1.0/24"};
  p.rate_limit_per_minute = 90;
  p.external_id = "svc-reply";
  p.metadata = {{"team", "payments"}};
  p.rate_limits = {{"hourly", 5000, absl::Hours(1)},
                   {"burst", 20, absl::Seconds(1)}};
  p.credits = storage::KeyQuota{100, 0, absl::ZeroDuration()};
  auto created = keys_->CreateKey(root_, {}, p);
  ASSERT_TRUE(created.ok()) << created.status();
  auto got = keys_->GetKey(root_, created->record.id);
  ASSERT_TRUE(got.ok()) << got.status();
  const storage::ApiKeyRecord& r = created->record;
  EXPECT_EQ(r.id, got->id);
  EXPECT_EQ(r.tenant_id, got->tenant_id);
  EXPECT_EQ(r.name, got->name);
  EXPECT_EQ(r.scopes, got->scopes);
  EXPECT_EQ(r.allowed_cidrs, got->allowed_cidrs);
  EXPECT_EQ(r.rate_limit_per_minute, got->rate_limit_per_minute);
  EXPECT_EQ(r.rate_limits, got->rate_limits);
  EXPECT_EQ(r.quota, got->quota);
  EXPECT_EQ(r.external_id, got->external_id);
  EXPECT_EQ(r.metadata, got->metadata);
  EXPECT_EQ(r.version, got->version);
  EXPECT_EQ(r.created_by_type, got->created_by_type);
  EXPECT_EQ(r.created_by_id, got->created_by_id);
  EXPECT_EQ(r.created_at, got->created_at);
  EXPECT_EQ(r.expires_at, got->expires_at);
  EXPECT_FALSE(r.revoked);
  EXPECT_FALSE(r.disabled);
  EXPECT_FALSE(r.last_used_at.has_value());
  EXPECT_FALSE(r.rotated_at.has_value());
  EXPECT_LE(r.created_at, r.db_now);
}

TEST_F(KeyServiceTest, CreateValidatesEveryField) {
  EXPECT_EQ(CreateCode(Params("")), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateCode(Params(std::string(101, 'x'))),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateCode(Params(std::string(100, 'x'))), absl::StatusCode::kOk);
  EXPECT_EQ(CreateCode(Params("bad\nname")),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateCode(Params("\xff\xfe")), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateCode(Params("ok", {})), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateCode(Params("ok", {"admin:everything"})),
            absl::StatusCode::kInvalidArgument);
  CreateKeyParams p = Params();
  p.allowed_cidrs = {"10.0.0.0/33"};
  EXPECT_EQ(CreateCode(p), absl::StatusCode::kInvalidArgument);
  p.allowed_cidrs = {"10.0.0.1/8"};  // host bits set
  EXPECT_EQ(CreateCode(p), absl::StatusCode::kInvalidArgument);
  p = Params();
  p.expires_at = *store_.Now() - absl::Seconds(1);
  EXPECT_EQ(CreateCode(p), absl::StatusCode::kInvalidArgument);
  p = Params();
  p.rate_limit_per_minute = -1;
  EXPECT_EQ(CreateCode(p), absl::StatusCode::kInvalidArgument);
}

TEST_F(KeyServiceTest, InvalidCreateWritesNothing) {
  const size_t events = store_.events().size();
  EXPECT_FALSE(keys_->CreateKey(root_, {}, Params("")).ok());
  EXPECT_EQ(store_.events().size(), events);
  storage::ListKeysQuery q;
  auto page = keys_->ListKeys(root_, {}, &q);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 1);  // only the root key
}

TEST_F(KeyServiceTest, KeyCannotGrantScopesItDoesNotHold) {
  auto reader = keys_->CreateKey(root_, {}, Params("reader", {"admin:users"}));
  ASSERT_TRUE(reader.ok());
  Principal users = root_;
  users.key_id = reader->record.id;
  users.scopes = {"admin:users"};
  auto escalated = keys_->CreateKey(users, {}, Params("x", {"admin:write"}));
  EXPECT_EQ(escalated.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(
      keys_->CreateKey(users, {}, Params("x", {"admin:users"})).status().code(),
      absl::StatusCode::kOk);
  // Nor rotate a key with broader scopes than its own.
  EXPECT_EQ(keys_->RotateKey(users, {}, root_.key_id, 0).status().code(),
            absl::StatusCode::kPermissionDenied);
  // admin:write grants every resource scope.
  EXPECT_EQ(CreateCode(Params("x", {"admin:users", "admin:audit"})),
            absl::StatusCode::kOk);
}

// The principal an API key authenticates as (what the Authenticator
// builds from a valid verification of `record`).
Principal KeyPrincipal(const Principal& tenant,
                       const storage::ApiKeyRecord& record) {
  Principal p = tenant;
  p.key_id = record.id;
  p.scopes = record.scopes;
  p.key_expires_at = record.expires_at;
  p.key_allowed_cidrs = record.allowed_cidrs;
  p.key_rate_limit_per_minute = record.rate_limit_per_minute;
  p.key_rate_limits = record.rate_limits;
  return p;
}

TEST_F(KeyServiceTest, NamedRateLimitsAreValidatedAndStored) {
  auto refused = [&](std::vector<storage::KeyRateLimit> limits,
                     int32_t per_minute = 0) -> std::string {
    CreateKeyParams p = Params();
    p.rate_limits = std::move(limits);
    p.rate_limit_per_minute = per_minute;
    absl::Status st = keys_->CreateKey(root_, {}, p).status();
    if (!absl::IsInvalidArgument(st)) return "accepted: " + st.ToString();
    EXPECT_EQ(ErrorKindOf(st), ErrorKind::kInvalidField);
    return std::string(st.message().substr(0, st.message().find(':')));
  };
  const absl::Duration s = absl::Seconds(1);
  EXPECT_EQ(refused({{"burst", 0, s}}), "rateLimits[0].limit");
  EXPECT_EQ(refused({{"burst", -5, s}}), "rateLimits[0].limit");
  EXPECT_EQ(refused({{"burst", 1'000'000'001, s}}), "rateLimits[0].limit");
  EXPECT_EQ(refused({{"ok", 1, s}, {"burst", 1, absl::Milliseconds(500)}}),
            "rateLimits[1].durationSeconds");
  EXPECT_EQ(refused({{"burst", 1, absl::Hours(24 * 365) + s}}),
            "rateLimits[0].durationSeconds");
  EXPECT_EQ(refused({{"Burst", 1, s}}), "rateLimits[0].name");
  EXPECT_EQ(refused({{"", 1, s}}), "rateLimits[0].name");
  EXPECT_EQ(refused({{std::string(33, 'a'), 1, s}}), "rateLimits[0].name");
  EXPECT_EQ(refused({{"a", 1, s}, {"a", 2, s}}), "rateLimits[1].name");
  EXPECT_EQ(refused({{"default", 1, s}}, 10), "rateLimits[0].name");
  std::vector<storage::KeyRateLimit> eleven;
  for (int i = 0; i < 11; ++i) eleven.push_back({absl::StrCat("l", i), 1, s});
  EXPECT_EQ(refused(eleven), "rateLimits");
  // Nothing of the refused requests was stored.
  storage::ListKeysQuery query;
  auto listed = keys_->ListKeys(root_, ListKeysParams{}, &query);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->total, 1);

  CreateKeyParams good = Params();
  good.rate_limits = {{"hourly", 5000, absl::Hours(1)},
                      {"burst", 20, s},
                      {"default", 3, absl::Hours(24 * 365)}};
  auto created = keys_->CreateKey(root_, {}, good);
  ASSERT_TRUE(created.ok()) << created.status();
  auto got = keys_->GetKey(root_, created->record.id);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->rate_limits.size(), 3u);
  EXPECT_EQ(got->rate_limits[0].name, "burst");
  EXPECT_EQ(got->rate_limits[1].name, "default");
  EXPECT_EQ(got->rate_limits[2].name, "hourly");
}

TEST_F(KeyServiceTest, NamedLimitsAreInherited) {
  CreateKeyParams restricted = Params("restricted", {"admin:write"});
  restricted.rate_limits = {{"burst", 10, absl::Seconds(1)},
                            {"daily", 1000, absl::Hours(24)}};
  auto parent_key = keys_->CreateKey(root_, {}, restricted);
  ASSERT_TRUE(parent_key.ok()) << parent_key.status();
  const Principal parent = KeyPrincipal(root_, parent_key->record);
  auto code = [&](std::vector<storage::KeyRateLimit> limits,
                  int32_t per_minute = 0) {
    CreateKeyParams p = Params();
    p.rate_limits = std::move(limits);
    p.rate_limit_per_minute = per_minute;
    return keys_->CreateKey(parent, {}, p).status().code();
  };
  // No limits, or one of the parent's limits without a tighter match.
  EXPECT_EQ(code({}), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(code({{"burst", 10, absl::Seconds(1)}}),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(
      code({{"burst", 11, absl::Seconds(1)}, {"daily", 1000, absl::Hours(24)}}),
      absl::StatusCode::kPermissionDenied);
  // A short limit does not bound a long window by its rate alone: 1 a
  // minute allows 1440 a day, more than the parent's 1000.
  EXPECT_EQ(code({}, 1), absl::StatusCode::kPermissionDenied);
  // The same limits, or one limit that keeps both windows in bounds.
  EXPECT_EQ(
      code({{"burst", 10, absl::Seconds(1)}, {"daily", 1000, absl::Hours(24)}}),
      absl::StatusCode::kOk);
  EXPECT_EQ(code({{"slow", 10, absl::Hours(24)}}), absl::StatusCode::kOk);
  // The per-minute limit counts as a limit of 60 s (within the burst).
  EXPECT_EQ(code({{"daily", 5, absl::Hours(24)}}, 1), absl::StatusCode::kOk);
}

TEST_F(KeyServiceTest, AKeyWithAQuotaCreatesKeysWithFewerCredits) {
  auto parent_key =
      keys_->CreateKey(root_, {}, Params("metered", {"admin:write"}));
  ASSERT_TRUE(parent_key.ok()) << parent_key.status();
  Principal parent = KeyPrincipal(root_, parent_key->record);
  // What the authenticator reports for a key with a quota: 5 left.
  parent.key_credits_remaining = 5;
  auto create = [&](std::optional<storage::KeyQuota> credits) {
    CreateKeyParams p = Params();
    p.credits = credits;
    return keys_->CreateKey(parent, {}, p).status();
  };
  const absl::Status none = create(std::nullopt);
  EXPECT_TRUE(absl::IsPermissionDenied(none)) << none;
  EXPECT_EQ(ErrorKindOf(none), ErrorKind::kScopeExceeded);
  EXPECT_TRUE(absl::StartsWith(none.message(), "credits:")) << none;
  EXPECT_TRUE(absl::IsPermissionDenied(
      create(storage::KeyQuota{6, 0, absl::ZeroDuration()})));
  EXPECT_TRUE(absl::IsPermissionDenied(
      create(storage::KeyQuota{5, 5, absl::Hours(1)})));
  EXPECT_TRUE(create(storage::KeyQuota{5, 0, absl::ZeroDuration()}).ok());
  EXPECT_TRUE(create(storage::KeyQuota{0, 0, absl::ZeroDuration()}).ok());
  // A key without a quota is not bound by this rule.
  parent.key_credits_remaining.reset();
  EXPECT_TRUE(create(std::nullopt).ok());
}

TEST_F(KeyServiceTest, RestrictedKeyCanOnlyMintKeysAsRestrictedAsItself) {
  const absl::Time now = *store_.Now();
  CreateKeyParams restricted = Params("restricted", {"admin:write"});
  restricted.expires_at = now + absl::Hours(1);
  restricted.allowed_cidrs = {"127.0.0.0/8", "2001:db8::/32"};
  restricted.rate_limit_per_minute = 10;
  auto parent_key = keys_->CreateKey(root_, {}, restricted);
  ASSERT_TRUE(parent_key.ok()) << parent_key.status();
  const Principal parent = KeyPrincipal(root_, parent_key->record);

  auto within = [&] {
    CreateKeyParams p = Params("child", {"admin:read"});
    p.expires_at = now + absl::Minutes(30);
    p.allowed_cidrs = {"127.0.0.1/32", "2001:db8:1::/48"};
    p.rate_limit_per_minute = 10;
    return p;
  };
  auto refused_field = [&](const CreateKeyParams& p) -> std::string {
    absl::Status st = keys_->CreateKey(parent, {}, p).status();
    if (st.code() != absl::StatusCode::kPermissionDenied) {
      return std::string("not denied: ") + st.ToString();
    }
    EXPECT_EQ(ErrorKindOf(st), ErrorKind::kScopeExceeded);
    return std::string(st.message().substr(0, st.message().find(':')));
  };
  ASSERT_TRUE(keys_->CreateKey(parent, {}, within()).ok());

  // Expiry: none, or later than the parent's.
  CreateKeyParams p = within();
  p.expires_at.reset();
  EXPECT_EQ(refused_field(p), "expiresAt");
  p.expires_at = now + absl::Hours(2);
  EXPECT_EQ(refused_field(p), "expiresAt");
  p.expires_at = parent_key->record.expires_at;  // the same instant is fine
  EXPECT_TRUE(keys_->CreateKey(parent, {}, p).ok());

  // CIDRs: none (any address), a wider block, one outside, another family.
  p = within();
  p.allowed_cidrs.clear();
  EXPECT_EQ(refused_field(p), "allowedCidrs");
  p.allowed_cidrs = {"0.0.0.0/0"};
  EXPECT_EQ(refused_field(p), "allowedCidrs");
  p.allowed_cidrs = {"126.0.0.0/7"};  // wider than 127.0.0.0/8
  EXPECT_EQ(refused_field(p), "allowedCidrs");
  p.allowed_cidrs = {"127.0.0.1/32", "10.0.0.1/32"};
  EXPECT_EQ(refused_field(p), "allowedCidrs");
  p.allowed_cidrs = {"2001:db9::/48"};
  EXPECT_EQ(refused_field(p), "allowedCidrs");
  p.allowed_cidrs = {"127.0.0.0/8"};  // the parent's own block
  EXPECT_TRUE(keys_->CreateKey(parent, {}, p).ok());

  // Rate limit: none, or looser.
  p = within();
  p.rate_limit_per_minute = 0;
  EXPECT_EQ(refused_field(p), "rateLimitPerMinute");
  p.rate_limit_per_minute = 11;
  EXPECT_EQ(refused_field(p), "rateLimitPerMinute");
  p.rate_limit_per_minute = 1;
  EXPECT_TRUE(keys_->CreateKey(parent, {}, p).ok());

  // Rotating hands out a new secret of the target: the same rule holds for
  // the target's restrictions (the root key has none).
  auto rotate = keys_->RotateKey(parent, {}, root_.key_id, 0);
  EXPECT_EQ(rotate.status().code(), absl::StatusCode::kPermissionDenied);
  auto child = keys_->CreateKey(parent, {}, within());
  ASSERT_TRUE(child.ok());
  EXPECT_TRUE(keys_->RotateKey(parent, {}, child->record.id, 0).ok());
  EXPECT_TRUE(keys_->RotateKey(parent, {}, parent.key_id, 0).ok());

  // Portal sessions (and the operator) are not bound.
  Principal session = root_;
  session.kind = Principal::Kind::kSession;
  session.key_id.clear();
  session.key_expires_at = now + absl::Minutes(1);  // ignored for sessions
  EXPECT_TRUE(keys_->CreateKey(session, {}, Params("free")).ok());
  // An unrestricted key may create restricted or unrestricted keys.
  EXPECT_TRUE(keys_->CreateKey(root_, {}, Params("free")).ok());
}

TEST_F(KeyServiceTest, OtherTenantsKeyBehavesLikeAMissingOne) {
  auto mine = keys_->CreateKey(root_, {}, Params());
  ASSERT_TRUE(mine.ok());
  auto missing_id = core::GenerateKeyId();
  const std::string& id = mine->record.id;
  auto get_other = keys_->GetKey(other_, id);
  auto get_missing = keys_->GetKey(other_, *missing_id);
  EXPECT_EQ(get_other.status(), get_missing.status());
  EXPECT_EQ(get_other.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(keys_->RotateKey(other_, {}, id, 0).status(),
            keys_->RotateKey(other_, {}, *missing_id, 0).status());
  EXPECT_EQ(keys_->RevokeKey(other_, {}, id).status(),
            keys_->RevokeKey(other_, {}, *missing_id).status());
  EXPECT_EQ(keys_->DeleteKey(other_, {}, id),
            keys_->DeleteKey(other_, {}, *missing_id));
  EXPECT_TRUE(keys_->GetKey(root_, id).ok());
}

TEST_F(KeyServiceTest, RevokeIsPermanentIdempotentAndAuditedOnce) {
  auto k = keys_->CreateKey(root_, {}, Params());
  ASSERT_TRUE(k.ok());
  const size_t events = store_.events().size();
  auto first = keys_->RevokeKey(root_, {}, k->record.id);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(KeyStatusName(*first), "revoked");
  auto second = keys_->RevokeKey(root_, {}, k->record.id);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(store_.events().size(), events + 1);
  EXPECT_EQ(store_.events().back().action, "api_key.revoked");
  EXPECT_EQ(keys_->RotateKey(root_, {}, k->record.id, 0).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(KeyServiceTest, DeleteRemovesFromGetAndList) {
  auto k = keys_->CreateKey(root_, {}, Params());
  ASSERT_TRUE(k.ok());
  ASSERT_TRUE(keys_->DeleteKey(root_, {}, k->record.id).ok());
  EXPECT_EQ(keys_->GetKey(root_, k->record.id).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(keys_->DeleteKey(root_, {}, k->record.id).code(),
            absl::StatusCode::kNotFound);
  storage::ListKeysQuery q;
  auto page = keys_->ListKeys(root_, {}, &q);
  ASSERT_TRUE(page.ok());
  for (const auto& r : page->keys) EXPECT_NE(r.id, k->record.id);
  EXPECT_EQ(store_.events().back().action, "api_key.deleted");
}

TEST_F(KeyServiceTest, RotateValidatesGracePeriod) {
  EXPECT_EQ(keys_->RotateKey(root_, {}, root_.key_id, -1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      keys_->RotateKey(root_, {}, root_.key_id, kMaxGracePeriodSeconds + 1)
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
}

TEST_F(KeyServiceTest, MalformedIdsAreNotFoundWithoutAStoreCall) {
  const int calls = store_.calls();
  EXPECT_EQ(keys_->GetKey(root_, "' OR 1=1 --").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(
      keys_->RevokeKey(root_, {}, std::string(10000, 'a')).status().code(),
      absl::StatusCode::kNotFound);
  EXPECT_EQ(store_.calls(), calls);
}

TEST_F(KeyServiceTest, ListRejectsAbsurdPaging) {
  storage::ListKeysQuery q;
  ListKeysParams p;
  p.limit = 101;
  EXPECT_EQ(keys_->ListKeys(root_, p, &q).status().code(),
            absl::StatusCode::kInvalidArgument);
  p.limit = -5;
  EXPECT_EQ(keys_->ListKeys(root_, p, &q).status().code(),
            absl::StatusCode::kInvalidArgument);
  p.limit = 0;  // explicit zero is refused, not defaulted
  EXPECT_EQ(keys_->ListKeys(root_, p, &q).status().code(),
            absl::StatusCode::kInvalidArgument);
  p = {};
  p.page = -1;
  EXPECT_EQ(keys_->ListKeys(root_, p, &q).status().code(),
            absl::StatusCode::kInvalidArgument);
  p = {};
  p.sort_by = "digest";
  EXPECT_EQ(keys_->ListKeys(root_, p, &q).status().code(),
            absl::StatusCode::kInvalidArgument);
  p = {};
  p.sort_dir = "sideways";
  EXPECT_EQ(keys_->ListKeys(root_, p, &q).status().code(),
            absl::StatusCode::kInvalidArgument);
  p = {};
  p.sort_dir = "asc";
  EXPECT_TRUE(keys_->ListKeys(root_, p, &q).ok());
  EXPECT_FALSE(q.descending);
}

TEST_F(KeyServiceTest, DuplicateTenantSlugIsAlreadyExists) {
  auto again = keys_->CreateTenant({}, "acme", "", std::nullopt);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(
      keys_->CreateTenant({}, "Bad Slug", "", std::nullopt).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST_F(KeyServiceTest, ManyCreatedKeysHaveDistinctIds) {
  std::set<std::string> ids;
  for (int i = 0; i < 200; ++i) {
    auto k = keys_->CreateKey(root_, {}, Params());
    ASSERT_TRUE(k.ok());
    ids.insert(k->record.id);
  }
  EXPECT_EQ(ids.size(), 200u);
}

}  // namespace
}  // namespace lumo::service
