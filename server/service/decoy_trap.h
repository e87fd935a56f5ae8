// The optional throttling of addresses that presented a decoy key
// (docs/webhooks.md "Decoy keys"): after a decoy of tenant T is presented
// from address A, every key of T presented from A answers as an unknown key
// for `block`, so whoever found the decoy cannot go on to try the tenant's
// real keys from there. Keys of other tenants are not affected (a shared
// NAT address hurts only the tenant that set the trap).
//
// In-process, like the failure throttle: each replica blocks the addresses
// its own verifications saw present a decoy. Memory is bounded by
// `max_tracked` blocks; when full, expired blocks are dropped first and a
// new block that still finds no room is not recorded (the decoy's critical
// audit event and webhook are written regardless).
//
// Thread-safe. Blocked() costs one relaxed atomic load while nothing is
// blocked.
#ifndef LUMOKEYS_SERVER_SERVICE_DECOY_TRAP_H_
#define LUMOKEYS_SERVER_SERVICE_DECOY_TRAP_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace lumo::service {

struct DecoyTrapOptions {
  absl::Duration block = absl::ZeroDuration();  // zero: nothing is blocked
  size_t max_tracked = 100'000;
  // The clock (tests inject one).
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

class DecoyTrap {
 public:
  explicit DecoyTrap(DecoyTrapOptions options);

  // A decoy of `tenant_id` was presented from `address` ("" is ignored:
  // a verification that names no client address blocks nothing).
  void Sprung(int64_t tenant_id, absl::string_view address)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Whether keys of `tenant_id` presented from `address` answer as unknown.
  bool Blocked(int64_t tenant_id, absl::string_view address) const
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const DecoyTrapOptions options_;
  mutable absl::Mutex mu_;
  // (tenant, address) -> end of the block.
  absl::flat_hash_map<std::pair<int64_t, std::string>, absl::Time> blocks_
      ABSL_GUARDED_BY(mu_);
  std::atomic<size_t> size_{0};  // blocks_.size(), readable without mu_
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_DECOY_TRAP_H_
