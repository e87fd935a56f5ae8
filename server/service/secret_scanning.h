// The leaked-key intake (docs/webhooks.md, "Leaked-key intake"): reports of
// published tokens in the secret-scanning partner format, signed by the
// scanner with ECDSA P-256 over the raw body. This layer checks the
// signature against the scanner's published keys and applies each token;
// the JSON of the request and reply is the RPC layer's.
#ifndef LUMOKEYS_SERVER_SERVICE_SECRET_SCANNING_H_
#define LUMOKEYS_SERVER_SERVICE_SECRET_SCANNING_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/core/ecdsa.h"
#include "server/core/pepper.h"
#include "server/service/key_service.h"
#include "server/service/principal.h"
#include "server/storage/client_store.h"
#include "server/storage/key_store.h"
#include "server/storage/webhook_store.h"

namespace lumo::service {

// Limits of one report.
inline constexpr size_t kMaxLeakReportBytes = 1024 * 1024;
inline constexpr size_t kMaxLeakReportTokens = 1000;

// One public key as the scanner publishes it.
struct ScannerPublicKey {
  std::string key_identifier;
  std::string pem;
  bool is_current = false;
};

// The scanner's public keys by identifier. Immutable; thread-safe.
class ScannerKeySet {
 public:
  // INVALID_ARGUMENT naming the entry when a key is not a P-256 PEM public
  // key, an identifier is empty or repeated.
  static absl::StatusOr<std::shared_ptr<const ScannerKeySet>> Make(
      const std::vector<ScannerPublicKey>& keys);

  // Whether `signature_base64` (base64 of an ASN.1 DER ECDSA signature) is
  // the signature of `body` by the key named `identifier`. False for an
  // unknown identifier or anything malformed.
  bool Verify(absl::string_view identifier, absl::string_view body,
              absl::string_view signature_base64) const;

  size_t size() const { return keys_.size(); }

 private:
  absl::flat_hash_map<std::string, core::EcdsaP256PublicKey> keys_;
};

// The key set in force; replaced as a whole (the file reread on SIGHUP).
// Thread-safe.
class ScannerKeys {
 public:
  // No keys: every report is refused.
  ScannerKeys() = default;
  void Replace(std::shared_ptr<const ScannerKeySet> keys)
      ABSL_LOCKS_EXCLUDED(mu_);
  std::shared_ptr<const ScannerKeySet> Current() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const ScannerKeySet> keys_ ABSL_GUARDED_BY(mu_);
};

// One entry of a report: the members the format defines (others ignored).
struct LeakedToken {
  std::string token;
  std::string type;
  std::string url;
  std::string source;
};

// The feedback for one entry.
struct TokenVerdict {
  std::string token_hash;  // hex SHA-256 of the token
  std::string token_type;
  bool true_positive = false;
};

// Thread-safe (holds no mutable state of its own).
class SecretScanningService {
 public:
  SecretScanningService(const ScannerKeys* keys, storage::KeyStore* key_store,
                        storage::ClientStore* settings,
                        storage::WebhookStore* reports, KeyService* key_service,
                        std::shared_ptr<const core::PepperSet> peppers);

  // Checks the request's signature: kUnauthenticated when the identifier or
  // the signature is missing, the identifier is not a key of the current
  // set, or the signature does not verify. Nothing is read or written.
  absl::Status Authenticate(absl::string_view key_identifier,
                            absl::string_view signature_base64,
                            absl::string_view body) const;

  // Applies an authenticated report, token by token in order, and returns
  // one verdict per entry. The keys the entries name are read in one
  // KeyStore::LoadManyForVerify call (a key that an earlier entry's true
  // positive may have changed is read again); entries that cannot be keys
  // cost no read. kInvalidField ("body") for more than
  // kMaxLeakReportTokens entries (nothing done). A store or replica
  // failure stops at that token and is returned: what was applied before
  // stands, and a repeated report (the scanner retries) finishes the work
  // without doing anything twice.
  absl::StatusOr<std::vector<TokenVerdict>> Apply(
      const RequestInfo& info, const std::vector<LeakedToken>& tokens);

 private:
  // One entry whose id some key had, `rec` read before the report was
  // applied: true when its whole secret is one of the key's.
  absl::StatusOr<bool> ApplyOne(const RequestInfo& info,
                                const LeakedToken& token,
                                const storage::VerifyRecord& rec);

  const ScannerKeys* const keys_;
  storage::KeyStore* const key_store_;
  storage::ClientStore* const settings_;
  storage::WebhookStore* const reports_;
  KeyService* const key_service_;
  const std::shared_ptr<const core::PepperSet> peppers_;
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_SECRET_SCANNING_H_
