// The cryptography of webhooks (docs/webhooks.md): the signature header a
// delivery carries, and the sealing (AES-256-GCM) of signing secrets at
// rest. Uses only
// the API BoringSSL and OpenSSL share. Thread-safe (pure functions; sealing
// draws its nonce from the CSPRNG).
#ifndef LUMOKEYS_SERVER_CORE_WEBHOOK_CRYPTO_H_
#define LUMOKEYS_SERVER_CORE_WEBHOOK_CRYPTO_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/crypto.h"

namespace lumo::core {

// The value of the Lumo-Signature header of one attempt:
// "t=<unix_seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>", one v1 per
// secret in the order given (the current secret first, then the previous
// one during a rotation's overlap). The HMAC key is the secret text's bytes.
std::string WebhookSignatureHeader(int64_t unix_seconds, absl::string_view body,
                                   const std::vector<std::string>& secrets);

// AES-256-GCM under `key` (32 bytes) with a fresh random 12-byte nonce and
// `associated_data` authenticated: nonce || ciphertext || 16-byte tag.
// INVALID_ARGUMENT for a key of another length; INTERNAL when the library
// fails.
absl::StatusOr<std::string> Seal(absl::string_view key,
                                 absl::string_view plaintext,
                                 absl::string_view associated_data);

// The plaintext of Seal's output. INVALID_ARGUMENT when the text is too
// short, or when it does not authenticate under `key` and
// `associated_data` (altered, another key, another record).
absl::StatusOr<std::string> Open(absl::string_view key,
                                 absl::string_view sealed,
                                 absl::string_view associated_data);

}  // namespace lumo::core

#endif  // LUMOKEYS_SERVER_CORE_WEBHOOK_CRYPTO_H_
