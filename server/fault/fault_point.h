// Named fault-injection points: one exact step in the code (after the feed
// read and before the heartbeat, just before a COMMIT, ...) where a test can
// hold threads, or make the step fail, to drive a schedule deterministically
// (docs/replication.md, "Schedule tests").
//
// Compiled into the server, off by default. A disarmed point costs one
// relaxed atomic load. Points are armed only through
// server/fault/fault_injection.h, whose library (lumo_fault_testing) only
// test executables link: the server binary holds no code that arms a point,
// and no flag, environment variable or RPC reaches one.
//
// Every point is declared in server/fault/fault_points.h (one catalogue).
// Thread-safe.
#ifndef LUMOKEYS_SERVER_FAULT_FAULT_POINT_H_
#define LUMOKEYS_SERVER_FAULT_FAULT_POINT_H_

#include <atomic>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lumo::fault {

class FaultPoint {
 public:
  constexpr explicit FaultPoint(const char* name) : name_(name) {}
  FaultPoint(const FaultPoint&) = delete;
  FaultPoint& operator=(const FaultPoint&) = delete;

  // The hook. OK when no test armed the point. Otherwise, for a thread
  // whose `scope` (which instance reached the point: a replica's fault
  // scope, a key id) matches an armed rule: blocks while the rule pauses
  // threads, or returns the rule's injected error, which the caller treats
  // exactly like the real failure of that step.
  absl::Status Hit(absl::string_view scope = {}) {
    if (ABSL_PREDICT_TRUE(!armed_.load(std::memory_order_relaxed))) {
      return absl::OkStatus();
    }
    return HitArmed(scope);
  }

  const char* name() const { return name_; }
  // True while a test armed a rule on this point (for any scope). Code that
  // batches the statements before a point sends them first while it is
  // armed, so a held thread is held where the catalogue says.
  bool armed() const { return armed_.load(std::memory_order_relaxed); }

 private:
  friend class Registry;
  absl::Status HitArmed(absl::string_view scope);

  const char* const name_;
  // True while at least one rule is armed on this point.
  std::atomic<bool> armed_{false};
};

}  // namespace lumo::fault

#endif  // LUMOKEYS_SERVER_FAULT_FAULT_POINT_H_
