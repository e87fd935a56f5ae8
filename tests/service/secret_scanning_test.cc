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
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/crypto.h"
#include "server/core/key_format.h"
#include "server/service/errors.h"
#include "server/service/key_service.h"
#include "server/service/verifier.h"
#include "tests/storage/fakes/fake_stores.h"

namespace lumo::service {
namespace {

using ::testing::ElementsAre;

constexpr char kPepper[] =
    "1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
// A P-256 key pair made by the openssl CLI and its signature of kBody
// (openssl dgst -sha256 -sign), base64 (the one core's ecdsa_test uses).
constexpr char kPublicPem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEA79/V1mQz0H4BXvuH4+s6eEpu8QJ\n"
    "mMJjwbJOjWO85bXPKR4VrvU0wvpVThbG7kMUT8qfh5jDHwy8XKHO+CvmOg==\n"
    "-----END PUBLIC KEY-----\n";
constexpr char kBody[] = "[{\"token\":\"lmk_x\"}]";
constexpr char kSignature[] =
    "MEUCIQCOWussk0KG9ZzsawaY//FBHJW4buayTY6rv/vKkH4tKwIgT8XO6hxF1ZYyN9OkLE/"
    "m7l6xXtE85U4X/15q8gMmLNU=";

class SecretScanningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    peppers_ = *core::PepperSet::Parse(kPepper);
    verifier_ =
        std::make_unique<Verifier>(&stores_.keys, peppers_, VerifierOptions());
    keys_ =
        std::make_unique<KeyService>(&stores_.keys, peppers_, verifier_.get());
    absl::StatusOr<std::shared_ptr<const ScannerKeySet>> set =
        ScannerKeySet::Make({{"scanner-1", kPublicPem, true}});
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
  const std::string body = kBody;
  EXPECT_TRUE(service_->Authenticate("scanner-1", kSignature, body).ok());
  for (const auto& [id, signature, signed_body] :
       {std::tuple<std::string, std::string, std::string>{"scanner-2",
                                                          kSignature, body},
        {"", kSignature, body},
        {"scanner-1", "", body},
        {"scanner-1", "not base64!", body},
        {"scanner-1", kSignature, body + " "}}) {
    EXPECT_EQ(service_->Authenticate(id, signature, signed_body).code(),
              absl::StatusCode::kUnauthenticated)
        << id << " / " << signature << " / " << signed_body;
  }
  // Without keys (no file configured) everything is refused.
  ScannerKeys none;
  SecretScanningService without(&none, &stores_.keys, &stores_.clients,
                                &stores_.webhooks, keys_.get(), peppers_);
  EXPECT_EQ(without.Authenticate("scanner-1", kSignature, body).code(),
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
