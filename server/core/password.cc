#include "server/core/password.h"

#include <openssl/evp.h>

#include <cstdint>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/core/crypto.h"
#include "server/core/field_error.h"

namespace lumo::core {
namespace {

constexpr size_t kSaltBytes = 16;
constexpr size_t kHashBytes = 32;
// Bounds accepted from stored hashes, so a corrupted row cannot ask for
// terabytes of memory.
constexpr int kMinLog2N = 10;
constexpr int kMaxLog2N = 20;
constexpr int kMaxR = 32;
constexpr int kMaxP = 16;

bool ParamsInRange(const ScryptParams& params) {
  return params.log2_n >= kMinLog2N && params.log2_n <= kMaxLog2N &&
         params.r >= 1 && params.r <= kMaxR && params.p >= 1 &&
         params.p <= kMaxP;
}

absl::StatusOr<std::string> Derive(absl::string_view password,
                                   absl::string_view salt,
                                   const ScryptParams& params, size_t out_len) {
  const uint64_t n = uint64_t{1} << params.log2_n;
  // scrypt needs 128*N*r bytes (+ 128*r*p); the libraries' default ceiling
  // (32 MiB) is below the OWASP cost, so allow what the parameters need.
  const uint64_t max_mem =
      128 * n * static_cast<uint64_t>(params.r) +
      128 * static_cast<uint64_t>(params.r) * static_cast<uint64_t>(params.p) +
      (1 << 20);
  std::string out(out_len, '\0');
  if (EVP_PBE_scrypt(password.data(), password.size(),
                     reinterpret_cast<const uint8_t*>(salt.data()), salt.size(),
                     n, static_cast<uint64_t>(params.r),
                     static_cast<uint64_t>(params.p), max_mem,
                     reinterpret_cast<uint8_t*>(out.data()), out.size()) != 1) {
    return absl::InternalError("scrypt failed");
  }
  return out;
}

}  // namespace

absl::Status ValidatePassword(absl::string_view password) {
  if (password.size() < kMinPasswordBytes) {
    return InvalidFieldError("password",
                             absl::StrCat("password: must be at least ",
                                          kMinPasswordBytes, " characters"));
  }
  if (password.size() > kMaxPasswordBytes) {
    return InvalidFieldError("password",
                             absl::StrCat("password: must be at most ",
                                          kMaxPasswordBytes, " bytes"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> HashPassword(absl::string_view password,
                                         const ScryptParams& params) {
  if (!ParamsInRange(params)) {
    return absl::InvalidArgumentError("scrypt parameters out of range");
  }
  std::string salt(kSaltBytes, '\0');
  if (absl::Status s =
          RandomBytes(reinterpret_cast<uint8_t*>(salt.data()), salt.size());
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::string> hash = Derive(password, salt, params, kHashBytes);
  if (!hash.ok()) return hash.status();
  std::string encoded =
      absl::StrCat("scrypt$", params.log2_n, "$", params.r, "$", params.p, "$",
                   HexEncode(salt), "$", HexEncode(*hash));
  Cleanse(*hash);
  return encoded;
}

absl::StatusOr<bool> VerifyPassword(absl::string_view password,
                                    absl::string_view encoded) {
  const absl::Status malformed =
      absl::InvalidArgumentError("stored password hash is malformed");
  std::vector<absl::string_view> parts = absl::StrSplit(encoded, '$');
  if (parts.size() != 6 || parts[0] != "scrypt") return malformed;
  ScryptParams params;
  if (!absl::SimpleAtoi(parts[1], &params.log2_n) ||
      !absl::SimpleAtoi(parts[2], &params.r) ||
      !absl::SimpleAtoi(parts[3], &params.p) || !ParamsInRange(params)) {
    return malformed;
  }
  absl::StatusOr<std::string> salt = HexDecode(parts[4]);
  absl::StatusOr<std::string> expected = HexDecode(parts[5]);
  if (!salt.ok() || !expected.ok() || salt->empty() || expected->size() < 16 ||
      expected->size() > 64) {
    return malformed;
  }
  absl::StatusOr<std::string> got =
      Derive(password, *salt, params, expected->size());
  if (!got.ok()) return got.status();
  const bool match = ConstantTimeEquals(*got, *expected);
  Cleanse(*got);
  return match;
}

const std::string& DummyPasswordHash() {
  static const std::string* hash = [] {
    absl::StatusOr<std::string> random = RandomBase62(24);
    absl::StatusOr<std::string> h =
        HashPassword(random.ok() ? *random : "dummy-password-unknown-user");
    // A failure leaves a well-formed hash at the same cost whose check
    // fails (the derived bytes never equal zeros in practice).
    return new std::string(h.ok() ? *h
                                  : absl::StrCat("scrypt$17$8$1$",
                                                 std::string(32, '0'), "$",
                                                 std::string(64, '0')));
  }();
  return *hash;
}

absl::StatusOr<std::string> GeneratePassword(size_t n) {
  return RandomBase62(n);
}

}  // namespace lumo::core
