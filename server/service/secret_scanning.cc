#include "server/service/secret_scanning.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/core/crypto.h"
#include "server/core/key_format.h"
#include "server/service/audit_json.h"
#include "server/service/errors.h"

namespace lumo::service {
namespace {

absl::Status Refused() {
  return WithErrorKind(
      absl::UnauthenticatedError("the report's signature does not verify"),
      ErrorKind::kUnauthenticated);
}

// `text` cut to at most `max` bytes, never inside a UTF-8 sequence.
std::string CutUtf8(absl::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) {
    --end;
  }
  return std::string(text.substr(0, end));
}

// Which of a key's secrets `token` is, if any.
struct SecretMatch {
  bool found = false;
  bool current = false;
  bool in_grace = false;  // a retired secret still verifying
  core::Digest digest{};
};

SecretMatch MatchSecret(const core::PepperSet& peppers,
                        const storage::VerifyRecord& rec,
                        absl::string_view token) {
  SecretMatch match;
  int version = rec.current.pepper_version;
  absl::StatusOr<core::Digest> mac = peppers.Mac(version, token);
  if (mac.ok() && core::ConstantTimeEquals(*mac, rec.current.digest)) {
    match.found = match.current = true;
    match.digest = rec.current.digest;
    return match;
  }
  for (const storage::RetiredSecret& retired : rec.retired) {
    if (retired.secret.pepper_version != version) {
      version = retired.secret.pepper_version;
      mac = peppers.Mac(version, token);
    }
    if (!mac.ok() || !core::ConstantTimeEquals(*mac, retired.secret.digest)) {
      continue;
    }
    match.found = true;
    match.in_grace = rec.key.db_now < retired.valid_until;
    match.digest = retired.secret.digest;
    return match;
  }
  return match;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const ScannerKeySet>> ScannerKeySet::Make(
    const std::vector<ScannerPublicKey>& keys) {
  auto set = std::make_shared<ScannerKeySet>();
  for (size_t i = 0; i < keys.size(); ++i) {
    const ScannerPublicKey& key = keys[i];
    if (key.key_identifier.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("public_keys[", i, "]: key_identifier is empty"));
    }
    absl::StatusOr<core::EcdsaP256PublicKey> parsed =
        core::EcdsaP256PublicKey::FromPem(key.pem);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "public_keys[", i, "]: key: ", parsed.status().message()));
    }
    if (!set->keys_.emplace(key.key_identifier, *std::move(parsed)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("public_keys[", i, "]: key_identifier repeated"));
    }
  }
  return std::shared_ptr<const ScannerKeySet>(std::move(set));
}

bool ScannerKeySet::Verify(absl::string_view identifier, absl::string_view body,
                           absl::string_view signature_base64) const {
  auto it = keys_.find(identifier);
  if (it == keys_.end()) return false;
  std::string der;
  if (!absl::Base64Unescape(signature_base64, &der) || der.empty()) {
    return false;
  }
  return it->second.Verify(body, der);
}

void ScannerKeys::Replace(std::shared_ptr<const ScannerKeySet> keys) {
  absl::MutexLock lock(&mu_);
  keys_ = std::move(keys);
}

std::shared_ptr<const ScannerKeySet> ScannerKeys::Current() const {
  absl::MutexLock lock(&mu_);
  return keys_;
}

SecretScanningService::SecretScanningService(
    const ScannerKeys* keys, storage::KeyStore* key_store,
    storage::ClientStore* settings, storage::WebhookStore* reports,
    KeyService* key_service, std::shared_ptr<const core::PepperSet> peppers)
    : keys_(keys),
      key_store_(key_store),
      settings_(settings),
      reports_(reports),
      key_service_(key_service),
      peppers_(std::move(peppers)) {}

absl::Status SecretScanningService::Authenticate(
    absl::string_view key_identifier, absl::string_view signature_base64,
    absl::string_view body) const {
  if (key_identifier.empty() || signature_base64.empty()) return Refused();
  std::shared_ptr<const ScannerKeySet> keys = keys_->Current();
  if (keys == nullptr ||
      !keys->Verify(key_identifier, body, signature_base64)) {
    return Refused();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TokenVerdict>> SecretScanningService::Apply(
    const RequestInfo& info, const std::vector<LeakedToken>& tokens) {
  if (tokens.size() > kMaxLeakReportTokens) {
    return InvalidField("body", absl::StrCat("a report holds at most ",
                                             kMaxLeakReportTokens, " tokens"));
  }
  // Garbage and typos cost no query; the ids of the rest are read together.
  std::vector<core::ParsedKey> parsed;
  parsed.reserve(tokens.size());
  std::vector<std::string> ids;
  for (const LeakedToken& token : tokens) {
    parsed.push_back(core::ParseKey(token.token));
    if (parsed.back().result == core::KeyParseResult::kOk) {
      ids.push_back(std::string(parsed.back().id));
    }
  }
  absl::flat_hash_map<std::string, storage::VerifyRecord> records;
  if (!ids.empty()) {
    absl::StatusOr<std::vector<storage::VerifyRecord>> loaded =
        key_store_->LoadManyForVerify(ids);
    if (!loaded.ok()) return loaded.status();
    for (storage::VerifyRecord& rec : *loaded) {
      std::string id = rec.key.id;
      records.emplace(std::move(id), std::move(rec));
    }
  }
  // Keys a true positive of this report may have changed: read again when
  // another entry names them (both secrets of a rotated key in one report).
  absl::flat_hash_set<std::string> changed;
  std::vector<TokenVerdict> verdicts;
  verdicts.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    const LeakedToken& token = tokens[i];
    absl::StatusOr<bool> positive = false;
    auto it = parsed[i].result == core::KeyParseResult::kOk
                  ? records.find(parsed[i].id)
                  : records.end();
    if (it != records.end() && changed.erase(it->first) > 0) {
      absl::StatusOr<storage::VerifyRecord> again =
          key_store_->LoadForVerify(it->first);
      if (!again.ok()) return again.status();
      it->second = *std::move(again);
    }
    if (it != records.end()) {
      positive = ApplyOne(info, token, it->second);
      if (positive.ok() && *positive) changed.insert(it->first);
    }
    if (!positive.ok()) return positive.status();
    TokenVerdict verdict;
    verdict.token_hash =
        core::HexEncode(core::AsStringView(core::Sha256(token.token)));
    verdict.token_type = token.type;
    verdict.true_positive = *positive;
    verdicts.push_back(std::move(verdict));
  }
  return verdicts;
}

absl::StatusOr<bool> SecretScanningService::ApplyOne(
    const RequestInfo& info, const LeakedToken& token,
    const storage::VerifyRecord& rec) {
  // An id alone is someone else's string: only the whole secret counts.
  const SecretMatch match = MatchSecret(*peppers_, rec, token.token);
  if (!match.found) return false;
  const storage::ApiKeyRecord& key = rec.key;
  absl::StatusOr<bool> reported = reports_->LeakReported(key.id, match.digest);
  if (!reported.ok()) return reported.status();
  if (*reported) return true;  // a repeat: nothing again

  const bool dead =
      rec.deleted || key.revoked ||
      (key.expires_at.has_value() && *key.expires_at <= key.db_now);
  // What the report does: "revoke", "disable", "notify" (the tenant's
  // setting), "end_grace" (a retired secret still verifying) or "none" (a
  // dead key or secret, or a decoy, which grants nothing).
  std::string response = "none";
  if (!dead && match.current && !key.decoy) {
    absl::StatusOr<storage::TenantSettings> settings =
        settings_->GetSettings(key.tenant_id);
    if (!settings.ok()) return settings.status();
    response = settings->leak_response;
    if (response == "revoke" || response == "disable") {
      absl::StatusOr<storage::ApiKeyRecord> contained =
          key_service_->ContainLeakedKey(key.tenant_id, info, key.id,
                                         response == "revoke");
      // A disabled-then-revoked race leaves a revoked key: contained too.
      if (!contained.ok() &&
          ErrorKindOf(contained.status()) != ErrorKind::kInvalidRequest) {
        return contained.status();
      }
    }
  } else if (!dead && match.in_grace) {
    absl::StatusOr<bool> ended = key_service_->EndLeakedSecretGrace(
        key.tenant_id, info, key.id, match.digest);
    if (!ended.ok()) return ended.status();
    response = "end_grace";
  }

  storage::LeakedSecretReport report;
  report.key_id = key.id;
  report.tenant_id = key.tenant_id;
  report.secret_digest = match.digest;
  report.url = CutUtf8(token.url, 2048);
  report.source = CutUtf8(token.source, 64);
  storage::AuditEvent event;
  event.action = "api_key.leaked";
  event.category = "api_keys";
  event.actor_type = "system";
  event.actor_id = "secret-scanning";
  event.target_type = "api_key";
  event.target_id = key.id;
  event.suspicious = true;
  event.ip_address = info.ip_address;
  event.user_agent = info.user_agent;
  event.request_id = info.request_id;
  event.metadata_json =
      JsonObject()
          .Add("url", report.url)
          .Add("source", report.source)
          .Add("type", CutUtf8(token.type, 64))
          .Add("response", response)
          .Add("secret", match.current ? "current" : "previous")
          .Build();
  absl::StatusOr<bool> recorded = reports_->RecordLeakReport(report, event);
  if (!recorded.ok()) return recorded.status();
  return true;
}

}  // namespace lumo::service
