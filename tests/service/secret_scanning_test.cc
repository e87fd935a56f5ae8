// The leaked-key intake's domain logic (docs/webhooks.md "Leaked-key
// intake") over the in-memory stores: the signature check, each kind of
// token, the tenant's leakResponse, idempotent repeats and the limits.
// The wire format and the real database are covered end to end by
// tests/e2e/webhooks/leak_intake_e2e_test.py.
#include "server/service/secret_scanning.h"

#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/crypto.h"
#include "server/core/key_format.h"
#include "server/service/errors.h"
#include "server/service/key_service.h"
#include "server/service/verifier.h"
#include "tests/core/ecdsa_test_key.h"
#include "tests/storage/fakes/fake_stores.h"

namespace lumo::service {
namespace {

using ::testing::ElementsAre;

constexpr char kPepper[] =
    "1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
using ::lumo::testing::kEcdsaTestBody;
using ::lumo::testing::kEcdsaTestPublicPem;
using ::lumo::testing::kEcdsaTestSignature;

class SecretScanningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    peppers_ = *core::PepperSet::Parse(kPepper);
    verifier_ =
        std::make_unique<Verifier>(&stores_.keys, peppers_, VerifierOptions());
    keys_ =
        std::make_unique<KeyService>(&stores_.keys, peppers_, verifier_.get());
    absl::StatusOr<std::shared_ptr<const ScannerKeySet>> set =
        ScannerKeySet::Make({{"scanner-1", kEcdsaTestPublicPem, true}});
    ASSERT_TRUE(set.ok()) << set.status();
    scanner_keys_.Replace(*set);
    service_ = std::make_unique<SecretScanningService>(
        &scanner_keys_, &stores_.keys, &stores_.clients, &stores_.webhooks,
        keys_.get(), peppers_);
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

  KeyWithSecret NewKey(bool decoy = false) {
    CreateKeyParams p;
    p.name = "leaky";
    p.scopes = {"admin:read"};
    p.decoy = decoy;
    absl::StatusOr<KeyWithSecret> created = keys_->CreateKey(root_, {}, p);
    EXPECT_TRUE(created.ok()) << created.status();
    return *created;
  }

  storage::ApiKeyRecord Stored(absl::string_view id) {
    absl::StatusOr<storage::ApiKeyRecord> key = keys_->GetKey(root_, id);
    EXPECT_TRUE(key.ok()) << key.status();
    return key.value_or(storage::ApiKeyRecord());
  }

  // The verdicts of one report, as labels.
  std::vector<bool> Report(const std::vector<std::string>& tokens) {
    std::vector<LeakedToken> entries;
    for (const std::string& t : tokens) {
      entries.push_back({t, "lumokeys_api_key", "https://example.com/x", "s"});
    }
    absl::StatusOr<std::vector<TokenVerdict>> verdicts =
        service_->Apply(info_, entries);
    EXPECT_TRUE(verdicts.ok()) << verdicts.status();
    std::vector<bool> out;
    for (const TokenVerdict& v :
         verdicts.value_or(std::vector<TokenVerdict>())) {
      out.push_back(v.true_positive);
    }
    return out;
  }

  size_t LeakedEvents() {
    absl::MutexLock lock(&stores_.db->mu);
    size_t n = 0;
    for (const auto& [id, row] : stores_.db->audit) {
      if (row.stored.event.action == "api_key.leaked") ++n;
    }
    return n;
  }

  void SetLeakResponse(absl::string_view response) {
    storage::SettingsUpdate update;
    update.leak_response = std::string(response);
    storage::AuditEvent event;
    event.action = "settings.updated";
    event.category = "settings";
    event.actor_type = "system";
    ASSERT_TRUE(
        stores_.clients.UpdateSettings(root_.tenant_id, update, event, nullptr)
            .ok());
  }

  testing::FakeStores stores_;
  std::shared_ptr<const core::PepperSet> peppers_;
  std::unique_ptr<Verifier> verifier_;
  std::unique_ptr<KeyService> keys_;
  ScannerKeys scanner_keys_;
  std::unique_ptr<SecretScanningService> service_;
  Principal root_;
  RequestInfo info_{"req-1", "192.0.2.10", "GitHub-Secret-Scanning/1"};
};

TEST_F(SecretScanningTest, OnlyAValidSignatureOfTheExactBodyAuthenticates) {
  const std::string body = kEcdsaTestBody;
  EXPECT_TRUE(
      service_->Authenticate("scanner-1", kEcdsaTestSignature, body).ok());
  for (const auto& [id, signature, signed_body] :
       {std::tuple<std::string, std::string, std::string>{
            "scanner-2", kEcdsaTestSignature, body},
        {"", kEcdsaTestSignature, body},
        {"scanner-1", "", body},
        {"scanner-1", "not base64!", body},
        {"scanner-1", kEcdsaTestSignature, body + " "}}) {
    EXPECT_EQ(service_->Authenticate(id, signature, signed_body).code(),
              absl::StatusCode::kUnauthenticated)
        << id << " / " << signature << " / " << signed_body;
  }
  // Without keys (no file configured) everything is refused.
  ScannerKeys none;
  SecretScanningService without(&none, &stores_.keys, &stores_.clients,
                                &stores_.webhooks, keys_.get(), peppers_);
  EXPECT_EQ(without.Authenticate("scanner-1", kEcdsaTestSignature, body).code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(SecretScanningTest, ALiveKeyIsRevokedOnceAndOnlyItsWholeSecretCounts) {
  const KeyWithSecret key = NewKey();
  // Well-formed (checksum right), the key's id with another secret.
  const std::string wrong_secret = *core::GenerateKey(key.record.id);
  ASSERT_NE(wrong_secret, key.full_key);
  // Well-formed, with an id no key has.
  const std::string unknown = *core::GenerateKey("ZZZZZZZZZZZZ");
  // Garbage first: answered without any store call.
  const int calls = stores_.db->calls();
  EXPECT_THAT(Report({"not a key", "lmk_short"}), ElementsAre(false, false));
  EXPECT_EQ(stores_.db->calls(), calls);

  EXPECT_THAT(Report({wrong_secret, unknown, key.full_key}),
              ElementsAre(false, false, true));
  EXPECT_TRUE(Stored(key.record.id).revoked);  // leakResponse revoke
  EXPECT_EQ(LeakedEvents(), 1u);
  // A repeat (the scanner retries) is a true positive that does nothing.
  EXPECT_THAT(Report({key.full_key}), ElementsAre(true));
  EXPECT_EQ(LeakedEvents(), 1u);
}

TEST_F(SecretScanningTest, AThousandTokensAreLookedUpInOneBatch) {
  // Well-formed tokens of ids no key has: one store call for all of them.
  std::vector<std::string> tokens;
  for (size_t i = 0; i < kMaxLeakReportTokens; ++i) {
    tokens.push_back(*core::GenerateKey(absl::StrCat("Zq", 1000000000 + i)));
  }
  const int calls = stores_.db->calls();
  const int batches = stores_.keys.verify_batches();
  const int loads = stores_.keys.verify_loads();
  EXPECT_THAT(Report(tokens), ::testing::Each(::testing::Eq(false)));
  EXPECT_EQ(stores_.db->calls() - calls, 1);
  EXPECT_EQ(stores_.keys.verify_batches() - batches, 1);
  EXPECT_EQ(stores_.keys.verify_loads(), loads);

  // Live keys among them keep their places in the reply.
  const KeyWithSecret first = NewKey();
  const KeyWithSecret second = NewKey();
  tokens[10] = first.full_key;
  tokens[900] = second.full_key;
  std::vector<bool> want(tokens.size(), false);
  want[10] = want[900] = true;
  EXPECT_EQ(Report(tokens), want);
  EXPECT_TRUE(Stored(first.record.id).revoked);
  EXPECT_TRUE(Stored(second.record.id).revoked);
  EXPECT_EQ(stores_.keys.verify_batches() - batches, 2);
  EXPECT_EQ(stores_.keys.verify_loads(), loads);
}

TEST_F(SecretScanningTest, TheTenantsLeakResponseDecides) {
  SetLeakResponse("disable");
  const KeyWithSecret disabled = NewKey();
  EXPECT_THAT(Report({disabled.full_key}), ElementsAre(true));
  EXPECT_TRUE(Stored(disabled.record.id).disabled_at.has_value());
  EXPECT_FALSE(Stored(disabled.record.id).revoked);

  SetLeakResponse("notify");
  const KeyWithSecret told = NewKey();
  EXPECT_THAT(Report({told.full_key}), ElementsAre(true));
  const storage::ApiKeyRecord after = Stored(told.record.id);
  EXPECT_FALSE(after.revoked);
  EXPECT_FALSE(after.disabled_at.has_value());
  EXPECT_EQ(LeakedEvents(), 2u);
}

TEST_F(SecretScanningTest, ARetiredSecretLosesItsGraceAndADecoyStaysADecoy) {
  const KeyWithSecret key = NewKey();
  absl::StatusOr<KeyWithSecret> rotated =
      keys_->RotateKey(root_, {}, key.record.id, 3600);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  ASSERT_TRUE(Stored(key.record.id).previous_secret_valid_until.has_value());
  EXPECT_THAT(Report({key.full_key}), ElementsAre(true));
  const storage::ApiKeyRecord after = Stored(key.record.id);
  EXPECT_FALSE(after.previous_secret_valid_until.has_value());
  EXPECT_FALSE(after.revoked);  // the current secret is untouched

  const KeyWithSecret decoy = NewKey(/*decoy=*/true);
  EXPECT_THAT(Report({decoy.full_key}), ElementsAre(true));
  const storage::ApiKeyRecord bait = Stored(decoy.record.id);
  EXPECT_TRUE(bait.decoy);
  EXPECT_FALSE(bait.revoked);
  EXPECT_EQ(LeakedEvents(), 2u);
}

TEST_F(SecretScanningTest, BothSecretsOfARotatedKeyInOneReport) {
  // The current secret revokes the key; the retired one, later in the same
  // report, then finds a dead key: nothing more to do (no grace to end).
  const KeyWithSecret key = NewKey();
  absl::StatusOr<KeyWithSecret> rotated =
      keys_->RotateKey(root_, {}, key.record.id, 3600);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_THAT(Report({rotated->full_key, key.full_key}),
              ElementsAre(true, true));
  EXPECT_TRUE(Stored(key.record.id).revoked);
  std::vector<std::string> responses;
  size_t grace_ended = 0;
  {
    absl::MutexLock lock(&stores_.db->mu);
    for (const auto& [id, row] : stores_.db->audit) {
      const storage::AuditEvent& e = row.stored.event;
      if (e.action == "api_key.leaked") {
        responses.push_back(e.metadata_json);
      } else if (e.action == "api_key.updated" &&
                 absl::StrContains(e.metadata_json, "previousSecret")) {
        ++grace_ended;
      }
    }
  }
  EXPECT_EQ(grace_ended, 0u);
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_THAT(responses[0], ::testing::HasSubstr("\"response\":\"revoke\""));
  EXPECT_THAT(responses[1], ::testing::HasSubstr("\"response\":\"none\""));
}

TEST_F(SecretScanningTest, MoreThanAThousandTokensChangeNothing) {
  const KeyWithSecret key = NewKey();
  std::vector<LeakedToken> entries(kMaxLeakReportTokens + 1,
                                   LeakedToken{"garbage", "", "", ""});
  entries.back().token = key.full_key;
  absl::StatusOr<std::vector<TokenVerdict>> refused =
      service_->Apply(info_, entries);
  EXPECT_EQ(ErrorKindOf(refused.status()), ErrorKind::kInvalidField);
  EXPECT_FALSE(Stored(key.record.id).revoked);
  EXPECT_EQ(LeakedEvents(), 0u);
}

}  // namespace
}  // namespace lumo::service
