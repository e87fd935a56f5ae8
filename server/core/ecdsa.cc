#include "server/core/ecdsa.h"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>

#include <memory>
#include <utility>

#include "absl/status/status.h"

namespace lumo::core {

absl::StatusOr<EcdsaP256PublicKey> EcdsaP256PublicKey::FromPem(
    absl::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  if (bio == nullptr) return absl::InternalError("BIO_new_mem_buf failed");
  EVP_PKEY* raw = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  ERR_clear_error();
  if (raw == nullptr) {
    return absl::InvalidArgumentError("not a PEM public key");
  }
  std::shared_ptr<EVP_PKEY> key(raw, &EVP_PKEY_free);
  if (EVP_PKEY_id(raw) != EVP_PKEY_EC) {
    return absl::InvalidArgumentError("not an elliptic-curve public key");
  }
  EC_KEY* ec = EVP_PKEY_get1_EC_KEY(raw);
  const bool p256 =
      ec != nullptr && EC_KEY_get0_group(ec) != nullptr &&
      EC_GROUP_get_curve_name(EC_KEY_get0_group(ec)) == NID_X9_62_prime256v1;
  EC_KEY_free(ec);
  if (!p256) return absl::InvalidArgumentError("not a P-256 public key");
  return EcdsaP256PublicKey(std::move(key));
}

bool EcdsaP256PublicKey::Verify(absl::string_view message,
                                absl::string_view der_signature) const {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                              &EVP_MD_CTX_free);
  if (ctx == nullptr) return false;
  const bool ok =
      EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                           key_.get()) == 1 &&
      EVP_DigestVerifyUpdate(ctx.get(), message.data(), message.size()) == 1 &&
      EVP_DigestVerifyFinal(
          ctx.get(), reinterpret_cast<const uint8_t*>(der_signature.data()),
          der_signature.size()) == 1;
  ERR_clear_error();
  return ok;
}

}  // namespace lumo::core
