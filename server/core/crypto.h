// Cryptographic primitives, written only against the API that BoringSSL and
// OpenSSL share (SHA256, HMAC, HMAC_CTX, RAND_bytes, CRYPTO_memcmp,
// OPENSSL_cleanse), so the same source builds with either.
// All functions are thread-safe.
#ifndef LUMOKEYS_SERVER_CORE_CRYPTO_H_
#define LUMOKEYS_SERVER_CORE_CRYPTO_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lumo::core {

inline constexpr size_t kDigestSize = 32;
using Digest = std::array<uint8_t, kDigestSize>;

// Fills `out` from the OS CSPRNG. INTERNAL if the generator fails.
absl::Status RandomBytes(uint8_t* out, size_t n);

// `n` characters drawn uniformly from the base62 alphabet (rejection
// sampling over CSPRNG bytes). INTERNAL if the generator fails.
absl::StatusOr<std::string> RandomBase62(size_t n);

Digest Sha256(absl::string_view data);

// One-shot HMAC-SHA256. For hot paths use PepperSet::Mac, which reuses a
// keyed context per thread.
Digest HmacSha256(absl::string_view key, absl::string_view data);

// Constant-time equality (CRYPTO_memcmp). The string overload leaks only
// whether the lengths differ.
bool ConstantTimeEquals(const Digest& a, const Digest& b);
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// Overwrites the string's bytes (OPENSSL_cleanse) and clears it.
void Cleanse(std::string& s);

// Lower-case hex of the bytes.
std::string HexEncode(absl::string_view bytes);
// INVALID_ARGUMENT on odd length or non-hex characters.
absl::StatusOr<std::string> HexDecode(absl::string_view hex);

inline absl::string_view AsStringView(const Digest& d) {
  return absl::string_view(reinterpret_cast<const char*>(d.data()), d.size());
}

}  // namespace lumo::core

#endif  // LUMOKEYS_SERVER_CORE_CRYPTO_H_
