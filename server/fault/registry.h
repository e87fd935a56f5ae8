// Internal to server/fault: the armed rules of every FaultPoint. Only
// fault_point.cc (the hook's slow path) and fault_injection.cc (the test
// API) include it.
#ifndef LUMOKEYS_SERVER_FAULT_REGISTRY_H_
#define LUMOKEYS_SERVER_FAULT_REGISTRY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/fault/fault_point.h"

namespace lumo::fault {

// What one armed rule does to the threads it matches. Every field but the
// first three is guarded by Registry::mu().
struct Rule {
  enum class Kind { kPause, kFail, kCount };
  FaultPoint* point = nullptr;
  std::string scope;  // empty: any scope
  Kind kind = Kind::kCount;
  absl::Status error;  // kFail
  int remaining = -1;  // hits that still trigger; -1: every hit
  int hits = 0;        // hits that triggered
  int paused = 0;      // threads held right now (kPause)
  bool released = false;
};

// Thread-safe. One per process.
class Registry {
 public:
  static Registry& Get();

  absl::Mutex& mu() { return mu_; }
  void Add(std::shared_ptr<Rule> rule) ABSL_LOCKS_EXCLUDED(mu_);
  // Disarms `rule` and lets the threads it holds go.
  void Remove(const std::shared_ptr<Rule>& rule) ABSL_LOCKS_EXCLUDED(mu_);
  // True once `done` holds (checked under mu()), false after `timeout`.
  bool Await(const std::shared_ptr<Rule>& rule, bool (*done)(Rule*, int), int n,
             absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);

  absl::Status Hit(FaultPoint& point, absl::string_view scope)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Mutex mu_;
  std::vector<std::shared_ptr<Rule>> rules_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lumo::fault

#endif  // LUMOKEYS_SERVER_FAULT_REGISTRY_H_
