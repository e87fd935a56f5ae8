#include "server/core/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lumo::core {
namespace {

constexpr char kBase62Alphabet[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
// The largest multiple of 62 that fits in a byte: bytes below it map
// uniformly onto the alphabet with `byte % 62`.
constexpr uint8_t kBase62RejectFrom = 248;

// A non-null pointer for possibly empty input; some OpenSSL versions reject
// a null key even with length 0.
const uint8_t* BytesOf(absl::string_view s) {
  static const uint8_t kEmpty[1] = {0};
  return s.empty() ? kEmpty : reinterpret_cast<const uint8_t*>(s.data());
}

// The digest functions have no error channel: with a fixed, built-in hash
// they fail only on allocation failure, which is fatal like a failed `new`.
[[noreturn]] void DieOnCryptoFailure(const char* what) {
  std::fprintf(stderr, "lumo::core: %s failed\n", what);
  std::abort();
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Incremented in the child after fork(), so that a child never hands out
// bytes its parent buffered (and may also hand out).
std::atomic<uint64_t> g_fork_generation{0};

void OnForkChild() { g_fork_generation.fetch_add(1); }

// Per-thread buffer of CSPRNG output for RandomBase62. OpenSSL 3 pays a
// getpid() system call and several locks on every RAND_bytes call, which
// dominated key generation; refilling 1 KiB at a time amortises that.
// Bytes are wiped as they are handed out, the rest at thread exit.
class RandomPool {
 public:
  RandomPool() {
    static const bool fork_handler_installed =
        pthread_atfork(nullptr, nullptr, &OnForkChild) == 0;
    usable_ = fork_handler_installed;
  }
  RandomPool(const RandomPool&) = delete;
  RandomPool& operator=(const RandomPool&) = delete;
  ~RandomPool() {
    OPENSSL_cleanse(buf_, sizeof(buf_));
    destroyed_ = true;
  }

  // Fills `out` with fresh CSPRNG bytes. INTERNAL if the generator fails.
  static absl::Status Draw(uint8_t* out, size_t n) {
    // After this thread's pool is gone (thread exit), or without fork
    // protection, go to the generator directly.
    if (destroyed_) return RandomBytes(out, n);
    static thread_local RandomPool pool;
    if (!pool.usable_) return RandomBytes(out, n);
    return pool.Take(out, n);
  }

 private:
  absl::Status Take(uint8_t* out, size_t n) {
    const uint64_t generation = g_fork_generation.load();
    if (generation != generation_) {
      OPENSSL_cleanse(buf_, sizeof(buf_));
      pos_ = sizeof(buf_);
      generation_ = generation;
    }
    while (n > 0) {
      if (pos_ == sizeof(buf_)) {
        if (absl::Status s = RandomBytes(buf_, sizeof(buf_)); !s.ok()) {
          return s;
        }
        pos_ = 0;
      }
      const size_t k = std::min(n, sizeof(buf_) - pos_);
      std::copy(buf_ + pos_, buf_ + pos_ + k, out);
      OPENSSL_cleanse(buf_ + pos_, k);
      pos_ += k;
      out += k;
      n -= k;
    }
    return absl::OkStatus();
  }

  static thread_local bool destroyed_;
  bool usable_ = false;
  uint64_t generation_ = 0;
  size_t pos_ = sizeof(buf_);  // next unused byte; sizeof(buf_) when empty
  uint8_t buf_[1024];
};

thread_local bool RandomPool::destroyed_ = false;

}  // namespace

absl::Status RandomBytes(uint8_t* out, size_t n) {
  // RAND_bytes takes an int length in OpenSSL.
  while (n > 0) {
    const size_t chunk = std::min<size_t>(n, INT_MAX);
    if (RAND_bytes(out, static_cast<int>(chunk)) != 1) {
      return absl::InternalError("CSPRNG failure");
    }
    out += chunk;
    n -= chunk;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RandomBase62(size_t n) {
  std::string out;
  out.reserve(n);
  // About 3% of bytes are rejected; draw a little more than needed per round.
  uint8_t buf[128];
  while (out.size() < n) {
    const size_t want = std::min(sizeof(buf), (n - out.size()) * 9 / 8 + 4);
    if (absl::Status s = RandomPool::Draw(buf, want); !s.ok()) {
      OPENSSL_cleanse(buf, sizeof(buf));
      Cleanse(out);
      return s;
    }
    for (size_t i = 0; i < want && out.size() < n; ++i) {
      if (buf[i] < kBase62RejectFrom)
        out.push_back(kBase62Alphabet[buf[i] % 62]);
    }
  }
  OPENSSL_cleanse(buf, sizeof(buf));
  return out;
}

Digest Sha256(absl::string_view data) {
  Digest out;
  if (SHA256(BytesOf(data), data.size(), out.data()) == nullptr) {
    DieOnCryptoFailure("SHA256");
  }
  return out;
}

Digest HmacSha256(absl::string_view key, absl::string_view data) {
  if (key.size() > INT_MAX) DieOnCryptoFailure("HMAC key length");
  Digest out;
  unsigned int out_len = 0;
  // The key length is an int in OpenSSL and a size_t in BoringSSL.
  if (HMAC(EVP_sha256(), BytesOf(key), static_cast<int>(key.size()),
           BytesOf(data), data.size(), out.data(), &out_len) == nullptr ||
      out_len != kDigestSize) {
    DieOnCryptoFailure("HMAC");
  }
  return out;
}

bool ConstantTimeEquals(const Digest& a, const Digest& b) {
  return CRYPTO_memcmp(a.data(), b.data(), kDigestSize) == 0;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

void Cleanse(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(&s[0], s.size());
  s.clear();
}

std::string HexEncode(absl::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.resize(bytes.size() * 2);
  for (size_t i = 0; i < bytes.size(); ++i) {
    const auto b = static_cast<uint8_t>(bytes[i]);
    out[2 * i] = kDigits[b >> 4];
    out[2 * i + 1] = kDigits[b & 0x0F];
  }
  return out;
}

absl::StatusOr<std::string> HexDecode(absl::string_view hex) {
  // The input may be secret (e.g. a pepper), so errors never echo it.
  if (hex.size() % 2 != 0) {
    return absl::InvalidArgumentError("hex string has an odd length");
  }
  std::string out;
  out.resize(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      Cleanse(out);
      return absl::InvalidArgumentError("hex string has a non-hex character");
    }
    out[i] = static_cast<char>((hi << 4) | lo);
  }
  return out;
}

}  // namespace lumo::core
