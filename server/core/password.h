// Password hashing for portal administrators: scrypt (RFC 7914) through
// EVP_PBE_scrypt, which OpenSSL 3 and BoringSSL both provide, with a random
// per-password salt. Thread-safe (pure functions; each call allocates its
// own scrypt working memory, 128 * N * r bytes: 128 MiB at the default).
//
// Encoded form (ASCII, self-describing so the cost can be raised later
// without invalidating stored hashes):
//   scrypt$<log2 N>$<r>$<p>$<salt hex>$<hash hex>
#ifndef LUMOKEYS_SERVER_CORE_PASSWORD_H_
#define LUMOKEYS_SERVER_CORE_PASSWORD_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lumo::core {

struct ScryptParams {
  // OWASP Password Storage Cheat Sheet: N=2^17, r=8, p=1.
  int log2_n = 17;
  int r = 8;
  int p = 1;
};

// Accepted password lengths, in bytes. The upper bound keeps one login from
// hashing megabytes.
inline constexpr size_t kMinPasswordBytes = 12;
inline constexpr size_t kMaxPasswordBytes = 1024;

// INVALID_ARGUMENT ("password: ...", naming the field "password",
// core/field_error.h) unless the length is within bounds.
absl::Status ValidatePassword(absl::string_view password);

// A new encoded hash of `password` with a fresh 16-byte salt. INTERNAL if
// the CSPRNG or scrypt fails; INVALID_ARGUMENT for out-of-range params.
absl::StatusOr<std::string> HashPassword(absl::string_view password,
                                         const ScryptParams& params = {});

// True when `password` matches `encoded` (constant-time compare of the
// derived bytes). INVALID_ARGUMENT when `encoded` is not a hash this
// function understands (never echoes it).
absl::StatusOr<bool> VerifyPassword(absl::string_view password,
                                    absl::string_view encoded);

// A fixed, valid encoded hash at `params` of a random password, made once
// per process: verifying against it costs the same as a real verification,
// so unknown accounts take as long as wrong passwords.
const std::string& DummyPasswordHash();

// A random password of `n` base62 characters (for bootstrap).
absl::StatusOr<std::string> GeneratePassword(size_t n = 24);

}  // namespace lumo::core

#endif  // LUMOKEYS_SERVER_CORE_PASSWORD_H_
