// The server-side secret ("pepper") that keys are HMACed with before they
// are stored (docs/product.md §2.2). It lives in a file, never in the database.
//
// File format: one pepper per line, `<version>:<hex>`; the version is a
// positive integer, the secret at least 32 bytes (64 hex digits). Blank
// lines and lines starting with `#` are ignored. The highest version is the
// current one (used for new secrets); older versions remain usable for
// verifying digests stored with them. Example:
//
//   # lumokeys pepper set
//   1:8f1c...(64+ hex digits)
//   2:03ab...
#ifndef LUMOKEYS_SERVER_CORE_PEPPER_H_
#define LUMOKEYS_SERVER_CORE_PEPPER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/crypto.h"

namespace lumo::core {

// A set of peppers that can only grow. Thread-safe: Mac() may be called
// from any number of threads, also while Reload() runs; each thread keeps
// its own keyed HMAC context per pepper, so a warm Mac costs one HMAC of the
// data, not a key schedule. A version's secret never changes within a set,
// so those contexts stay valid across reloads.
class PepperSet {
 public:
  // Parses the file format above. INVALID_ARGUMENT names the line number of
  // the first bad line (never its content); an empty set is invalid.
  static absl::StatusOr<std::shared_ptr<const PepperSet>> Parse(
      absl::string_view contents);
  // Reads and parses `path`. NOT_FOUND / PERMISSION_DENIED when the file
  // cannot be read; otherwise as Parse.
  static absl::StatusOr<std::shared_ptr<const PepperSet>> LoadFile(
      const std::string& path);

  // As LoadFile, for a set that the caller will Reload(); it converts to
  // the shared_ptr<const PepperSet> that the services hold.
  static absl::StatusOr<std::shared_ptr<PepperSet>> LoadReloadableFile(
      const std::string& path);

  ~PepperSet();
  PepperSet(const PepperSet&) = delete;
  PepperSet& operator=(const PepperSet&) = delete;

  int current_version() const { return snapshot().current_version; }
  bool HasVersion(int version) const;
  // Every version in the set, ascending.
  std::vector<int> Versions() const;

  // Re-reads `path` (the pepper rotation step, docs/operations.md): every
  // version already in the set must still be there with the same secret
  // (keys hashed under it must keep verifying), new versions are added and
  // the highest becomes current, so new secrets use it from then on.
  // INVALID_ARGUMENT (a version missing or changed), or LoadFile's errors;
  // on error the set is unchanged. Concurrent Mac() calls see either the
  // old or the new set.
  absl::Status Reload(const std::string& path);

  // HMAC-SHA256(pepper[version], data). NOT_FOUND if the version is not in
  // the set.
  absl::StatusOr<Digest> Mac(int version, absl::string_view data) const;

 private:
  struct Snapshot {
    int current_version = 0;
    std::map<int, std::string> secrets;  // version -> raw secret bytes
  };

  PepperSet() = default;
  const Snapshot& snapshot() const {
    return *snapshot_.load(std::memory_order_acquire);
  }

  // Per-set identity used to find this set's contexts in thread-local
  // storage; never reused within a process.
  uint64_t serial_ = 0;
  // The published snapshot; each Reload publishes a new one. Readers never
  // lock: every snapshot stays alive (in snapshots_) until the set dies.
  std::atomic<const Snapshot*> snapshot_{nullptr};
  std::mutex reload_mu_;  // serialises Reload; guards snapshots_
  std::vector<std::unique_ptr<Snapshot>> snapshots_;
};

// A newly generated pepper file (one version, 32 random bytes) for dev
// set-ups: "1:<64 hex>\n".
absl::StatusOr<std::string> GeneratePepperFile();

}  // namespace lumo::core

#endif  // LUMOKEYS_SERVER_CORE_PEPPER_H_
