#include "server/core/pepper.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/core/crypto.h"

namespace lumo::core {
namespace {

constexpr size_t kMinSecretBytes = 32;

// Serials start at 1 and are never reused, so a thread-local cache entry can
// never be mistaken for a context of a later set at the same address.
std::atomic<uint64_t> g_next_serial{1};

// Per-thread cache of keyed HMAC contexts, keyed by (set serial, version).
// Entries of destroyed sets are never matched again (their serial is gone);
// they are evicted when the table is full and freed at thread exit.
class HmacContextCache {
 public:
  // Generous for a process that holds one or two sets with a few versions
  // each; a miss only costs a key schedule.
  static constexpr size_t kMaxEntries = 16;

  HmacContextCache() = default;
  HmacContextCache(const HmacContextCache&) = delete;
  HmacContextCache& operator=(const HmacContextCache&) = delete;
  ~HmacContextCache() {
    for (Entry& e : entries_) HMAC_CTX_free(e.ctx);  // also wipes the state
    destroyed_ = true;
  }

  // True after this thread's cache was destroyed (a Mac from another
  // thread-local destructor at thread exit).
  static bool destroyed() { return destroyed_; }

  // The context keyed with `secret` for (serial, version), ready for
  // HMAC_Update; null if a context cannot be allocated or keyed.
  HMAC_CTX* Get(uint64_t serial, int version, absl::string_view secret) {
    ++tick_;
    for (Entry& e : entries_) {
      if (e.serial == serial && e.version == version) {
        e.last_used = tick_;
        // Resets to the keyed state: no key schedule.
        if (HMAC_Init_ex(e.ctx, nullptr, 0, nullptr, nullptr) != 1) {
          return nullptr;
        }
        return e.ctx;
      }
    }
    HMAC_CTX* ctx = HMAC_CTX_new();
    if (ctx == nullptr) return nullptr;
    // The key length is an int in OpenSSL and a size_t in BoringSSL.
    if (HMAC_Init_ex(ctx, secret.data(), static_cast<int>(secret.size()),
                     EVP_sha256(), nullptr) != 1) {
      HMAC_CTX_free(ctx);
      return nullptr;
    }
    if (entries_.size() >= kMaxEntries) {
      auto lru = entries_.begin();
      for (auto it = entries_.begin(); it != entries_.end(); ++it) {
        if (it->last_used < lru->last_used) lru = it;
      }
      HMAC_CTX_free(lru->ctx);
      entries_.erase(lru);
    }
    entries_.push_back(Entry{serial, version, tick_, ctx});
    return ctx;
  }

 private:
  struct Entry {
    uint64_t serial;
    int version;
    uint64_t last_used;
    HMAC_CTX* ctx;  // owned
  };

  static thread_local bool destroyed_;
  std::vector<Entry> entries_;
  uint64_t tick_ = 0;
};

thread_local bool HmacContextCache::destroyed_ = false;

absl::Status LineError(int line, absl::string_view rule) {
  return absl::InvalidArgumentError(
      absl::StrCat("pepper file line ", line, ": ", rule));
}

}  // namespace

absl::StatusOr<std::shared_ptr<const PepperSet>> PepperSet::Parse(
    absl::string_view contents) {
  // Not make_shared: the constructor is private.
  std::shared_ptr<PepperSet> set(new PepperSet());
  // Owned by the set from here on, so a failed parse still wipes it.
  set->snapshots_.push_back(std::make_unique<Snapshot>());
  Snapshot& snapshot = *set->snapshots_.back();
  int line_number = 0;
  while (!contents.empty()) {
    ++line_number;
    const size_t eol = contents.find('\n');
    absl::string_view line = contents.substr(0, eol);
    contents.remove_prefix(eol == absl::string_view::npos ? contents.size()
                                                          : eol + 1);
    line = absl::StripAsciiWhitespace(line);  // also a CR of a CRLF file
    if (line.empty() || line[0] == '#') continue;

    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) {
      return LineError(line_number, "expected <version>:<hex secret>");
    }
    const absl::string_view version_text = line.substr(0, colon);
    int version = 0;
    if (version_text.empty() || version_text.size() > 9 ||
        version_text.find_first_not_of("0123456789") !=
            absl::string_view::npos ||
        !absl::SimpleAtoi(version_text, &version) || version <= 0) {
      return LineError(line_number,
                       "version must be a positive integer below 10^9");
    }
    if (snapshot.secrets.count(version) > 0) {
      return LineError(line_number,
                       absl::StrCat("duplicate version ", version));
    }
    // HexDecode's messages never contain the input.
    absl::StatusOr<std::string> secret = HexDecode(line.substr(colon + 1));
    if (!secret.ok()) {
      return LineError(line_number,
                       "secret must be an even number of hex digits");
    }
    if (secret->size() < kMinSecretBytes) {
      Cleanse(*secret);
      return LineError(line_number,
                       "secret must be at least 32 bytes (64 hex digits)");
    }
    snapshot.secrets.emplace(version, std::move(*secret));
  }
  if (snapshot.secrets.empty()) {
    return absl::InvalidArgumentError("pepper file contains no pepper");
  }
  snapshot.current_version = snapshot.secrets.rbegin()->first;
  set->snapshot_.store(&snapshot, std::memory_order_release);
  set->serial_ = g_next_serial.fetch_add(1, std::memory_order_relaxed);
  return std::shared_ptr<const PepperSet>(std::move(set));
}

absl::StatusOr<std::shared_ptr<const PepperSet>> PepperSet::LoadFile(
    const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::ErrnoToStatus(errno,
                               absl::StrCat("cannot open pepper file ", path));
  }
  // Reserving up front avoids reallocations that would leave unwiped copies
  // of the secrets in freed memory.
  std::string contents;
  struct stat st;
  if (fstat(fd, &st) == 0 && st.st_size > 0 && st.st_size < (1 << 20)) {
    contents.reserve(static_cast<size_t>(st.st_size) + 1);
  }
  char buf[4096];
  absl::Status status;
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = absl::ErrnoToStatus(
          errno, absl::StrCat("cannot read pepper file ", path));
      break;
    }
    if (n == 0) break;
    contents.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  OPENSSL_cleanse(buf, sizeof(buf));
  if (!status.ok()) {
    Cleanse(contents);
    return status;
  }
  absl::StatusOr<std::shared_ptr<const PepperSet>> set = Parse(contents);
  Cleanse(contents);
  if (!set.ok()) {
    return absl::Status(set.status().code(),
                        absl::StrCat(path, ": ", set.status().message()));
  }
  return set;
}

absl::StatusOr<std::shared_ptr<PepperSet>> PepperSet::LoadReloadableFile(
    const std::string& path) {
  absl::StatusOr<std::shared_ptr<const PepperSet>> set = LoadFile(path);
  if (!set.ok()) return set.status();
  // Every set is created non-const (Parse), so this cast is sound.
  return std::const_pointer_cast<PepperSet>(*std::move(set));
}

absl::Status PepperSet::Reload(const std::string& path) {
  absl::StatusOr<std::shared_ptr<const PepperSet>> loaded = LoadFile(path);
  if (!loaded.ok()) return loaded.status();
  const Snapshot& next = (*loaded)->snapshot();
  std::lock_guard<std::mutex> lock(reload_mu_);
  for (const auto& [version, secret] : snapshot().secrets) {
    const auto it = next.secrets.find(version);
    if (it == next.secrets.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": pepper version ", version,
          " is missing; a reload may only add versions (keys hashed under "
          "it would stop verifying)"));
    }
    if (it->second.size() != secret.size() ||
        CRYPTO_memcmp(it->second.data(), secret.data(), secret.size()) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": pepper version ", version,
          " has a different secret; a version's secret never changes"));
    }
  }
  // Copied, not moved: the loaded set wipes its own copy when it dies.
  snapshots_.push_back(std::make_unique<Snapshot>(next));
  snapshot_.store(snapshots_.back().get(), std::memory_order_release);
  return absl::OkStatus();
}

// Also runs for a set that failed to parse, wiping what was read so far.
PepperSet::~PepperSet() {
  for (auto& snapshot : snapshots_) {
    for (auto& [version, secret] : snapshot->secrets) Cleanse(secret);
  }
}

bool PepperSet::HasVersion(int version) const {
  return snapshot().secrets.count(version) > 0;
}

std::vector<int> PepperSet::Versions() const {
  std::vector<int> versions;
  for (const auto& [version, secret] : snapshot().secrets) {
    versions.push_back(version);
  }
  return versions;
}

absl::StatusOr<Digest> PepperSet::Mac(int version,
                                      absl::string_view data) const {
  const Snapshot& snapshot = this->snapshot();
  const auto it = snapshot.secrets.find(version);
  if (it == snapshot.secrets.end()) {
    return absl::NotFoundError(
        absl::StrCat("no pepper with version ", version));
  }
  if (HmacContextCache::destroyed()) {
    return HmacSha256(it->second, data);
  }
  static thread_local HmacContextCache cache;
  HMAC_CTX* ctx = cache.Get(serial_, version, it->second);
  Digest out;
  unsigned int out_len = 0;
  if (ctx == nullptr ||
      HMAC_Update(ctx, reinterpret_cast<const uint8_t*>(data.data()),
                  data.size()) != 1 ||
      HMAC_Final(ctx, out.data(), &out_len) != 1 || out_len != kDigestSize) {
    return absl::InternalError("HMAC failure");
  }
  return out;
}

absl::StatusOr<std::string> GeneratePepperFile() {
  std::string secret(kMinSecretBytes, '\0');
  if (absl::Status s =
          RandomBytes(reinterpret_cast<uint8_t*>(&secret[0]), secret.size());
      !s.ok()) {
    return s;
  }
  std::string hex = HexEncode(secret);
  Cleanse(secret);
  std::string file = absl::StrCat("1:", hex, "\n");
  Cleanse(hex);
  return file;
}

}  // namespace lumo::core
