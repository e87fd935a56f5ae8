// ECDSA P-256 / SHA-256 signature verification, for requests signed by a
// party that publishes its public keys (the secret-scanning intake,
// docs/webhooks.md "Leaked-key intake"). Uses only the API OpenSSL and
// BoringSSL share.
#ifndef LUMOKEYS_SERVER_CORE_ECDSA_H_
#define LUMOKEYS_SERVER_CORE_ECDSA_H_

#include <openssl/evp.h>

#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lumo::core {

// A P-256 public key. Immutable and thread-safe once made; copies share
// the key.
class EcdsaP256PublicKey {
 public:
  // From a PEM "PUBLIC KEY" block (SubjectPublicKeyInfo). INVALID_ARGUMENT
  // when the text holds no such key or the key is not on P-256.
  static absl::StatusOr<EcdsaP256PublicKey> FromPem(absl::string_view pem);

  // Whether `der_signature` (an ASN.1 DER ECDSA-Sig-Value) is this key's
  // signature of SHA-256(`message`). Any malformed signature is false.
  bool Verify(absl::string_view message, absl::string_view der_signature) const;

 private:
  explicit EcdsaP256PublicKey(std::shared_ptr<EVP_PKEY> key)
      : key_(std::move(key)) {}
  std::shared_ptr<EVP_PKEY> key_;
};

}  // namespace lumo::core

#endif  // LUMOKEYS_SERVER_CORE_ECDSA_H_
