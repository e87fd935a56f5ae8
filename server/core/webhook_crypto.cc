#include "server/core/webhook_crypto.h"

#include <openssl/evp.h>

#include <memory>

#include "absl/strings/str_cat.h"

namespace lumo::core {
namespace {

constexpr int kNonceSize = 12;
constexpr int kTagSize = 16;

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

const uint8_t* Bytes(absl::string_view s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

}  // namespace

std::string WebhookSignatureHeader(int64_t unix_seconds, absl::string_view body,
                                   const std::vector<std::string>& secrets) {
  const std::string stamp = absl::StrCat(unix_seconds);
  const std::string signed_text = absl::StrCat(stamp, ".", body);
  std::string header = absl::StrCat("t=", stamp);
  for (const std::string& secret : secrets) {
    absl::StrAppend(&header, ",v1=",
                    HexEncode(AsStringView(HmacSha256(secret, signed_text))));
  }
  return header;
}

absl::StatusOr<std::string> Seal(absl::string_view key,
                                 absl::string_view plaintext,
                                 absl::string_view associated_data) {
  if (key.size() != 32) {
    return absl::InvalidArgumentError("sealing needs a 32-byte key");
  }
  std::string out(kNonceSize + plaintext.size() + kTagSize, '\0');
  uint8_t* nonce = reinterpret_cast<uint8_t*>(out.data());
  if (absl::Status st = RandomBytes(nonce, kNonceSize); !st.ok()) return st;
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  uint8_t* body = nonce + kNonceSize;
  if (!ctx ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr,
                         nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceSize,
                          nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, Bytes(key), nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, Bytes(associated_data),
                        static_cast<int>(associated_data.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), body, &len, Bytes(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), body + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize,
                          body + plaintext.size()) != 1) {
    return absl::InternalError("AES-GCM sealing failed");
  }
  return out;
}

absl::StatusOr<std::string> Open(absl::string_view key,
                                 absl::string_view sealed,
                                 absl::string_view associated_data) {
  if (key.size() != 32) {
    return absl::InvalidArgumentError("opening needs a 32-byte key");
  }
  if (sealed.size() < static_cast<size_t>(kNonceSize + kTagSize)) {
    return absl::InvalidArgumentError("sealed text too short");
  }
  const size_t body_size = sealed.size() - kNonceSize - kTagSize;
  std::string out(body_size, '\0');
  std::string tag(sealed.substr(kNonceSize + body_size));
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  uint8_t* plain = reinterpret_cast<uint8_t*>(out.data());
  if (!ctx ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr,
                         nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceSize,
                          nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, Bytes(key),
                         Bytes(sealed)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, Bytes(associated_data),
                        static_cast<int>(associated_data.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), plain, &len, Bytes(sealed) + kNonceSize,
                        static_cast<int>(body_size)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize,
                          tag.data()) != 1) {
    return absl::InternalError("AES-GCM opening failed");
  }
  if (EVP_DecryptFinal_ex(ctx.get(), plain + len, &len) != 1) {
    Cleanse(out);
    return absl::InvalidArgumentError("sealed text does not authenticate");
  }
  return out;
}

}  // namespace lumo::core
