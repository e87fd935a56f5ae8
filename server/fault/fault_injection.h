// Arming fault points, for tests only (library lumo_fault_testing, which no
// production target links). See fault_point.h.
//
//   auto hold = fault::Injection::Pause(fault::kTailerBeforeHeartbeat, "r2");
//   ASSERT_TRUE(hold.WaitPaused(1, absl::Seconds(10)));
//   ...                  // replica r2 sits between its feed read and its
//   hold.Release();      // heartbeat until here
//
// An Injection is a move-only handle on one rule; destroying it disarms the
// rule and lets every thread it holds go. Rules on one point are tried in
// the order they were armed; the first one that matches a hit acts on it
// (a Count rule counts and lets the next one act). Thread-safe.
#ifndef LUMOKEYS_SERVER_FAULT_FAULT_INJECTION_H_
#define LUMOKEYS_SERVER_FAULT_FAULT_INJECTION_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/fault/fault_point.h"

namespace lumo::fault {

struct Rule;

class Injection {
 public:
  static constexpr int kEveryHit = -1;

  // Holds the next `times` threads that reach `point` with `scope` (empty:
  // any scope) until Release().
  static Injection Pause(FaultPoint& point, absl::string_view scope = {},
                         int times = 1);
  // The next `times` matching hits return `error`.
  static Injection Fail(FaultPoint& point, absl::string_view scope,
                        absl::Status error, int times = 1);
  // Counts matching hits; changes nothing.
  static Injection Count(FaultPoint& point, absl::string_view scope = {});

  Injection(Injection&& other) noexcept;
  Injection& operator=(Injection&& other) noexcept;
  Injection(const Injection&) = delete;
  Injection& operator=(const Injection&) = delete;
  ~Injection();

  // Matching hits this rule acted on (or counted) so far.
  int hits() const;
  // Threads held right now.
  int paused() const;
  // True once at least `n` threads are held / `n` hits happened; false when
  // `timeout` passed first.
  bool WaitPaused(int n, absl::Duration timeout) const;
  bool WaitHits(int n, absl::Duration timeout) const;
  // Disarms the rule and lets the threads it holds go. Idempotent.
  void Release();

 private:
  explicit Injection(std::shared_ptr<Rule> rule);
  std::shared_ptr<Rule> rule_;
};

}  // namespace lumo::fault

#endif  // LUMOKEYS_SERVER_FAULT_FAULT_INJECTION_H_
