#include "server/fault/fault_point.h"

#include <algorithm>
#include <utility>

#include "server/fault/registry.h"

namespace lumo::fault {

absl::Status FaultPoint::HitArmed(absl::string_view scope) {
  return Registry::Get().Hit(*this, scope);
}

Registry& Registry::Get() {
  static Registry* const registry = new Registry();
  return *registry;
}

void Registry::Add(std::shared_ptr<Rule> rule) {
  absl::MutexLock lock(&mu_);
  rule->point->armed_.store(true, std::memory_order_relaxed);
  rules_.push_back(std::move(rule));
}

void Registry::Remove(const std::shared_ptr<Rule>& rule) {
  absl::MutexLock lock(&mu_);
  rule->released = true;
  rules_.erase(std::remove(rules_.begin(), rules_.end(), rule), rules_.end());
  const bool still_armed = std::any_of(
      rules_.begin(), rules_.end(),
      [&](const std::shared_ptr<Rule>& r) { return r->point == rule->point; });
  rule->point->armed_.store(still_armed, std::memory_order_relaxed);
}

bool Registry::Await(const std::shared_ptr<Rule>& rule,
                     bool (*done)(Rule*, int), int n, absl::Duration timeout) {
  struct Args {
    Rule* rule;
    bool (*done)(Rule*, int);
    int n;
  } args{rule.get(), done, n};
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(
      absl::Condition(
          +[](Args* a) { return a->done(a->rule, a->n); }, &args),
      timeout);
}

absl::Status Registry::Hit(FaultPoint& point, absl::string_view scope) {
  absl::MutexLock lock(&mu_);
  for (const std::shared_ptr<Rule>& rule : rules_) {
    if (rule->point != &point || rule->remaining == 0) continue;
    if (!rule->scope.empty() && rule->scope != scope) continue;
    if (rule->remaining > 0) --rule->remaining;
    ++rule->hits;
    switch (rule->kind) {
      case Rule::Kind::kCount:
        continue;  // observe only; a later rule may still act
      case Rule::Kind::kFail:
        return rule->error;
      case Rule::Kind::kPause: {
        std::shared_ptr<Rule> held = rule;  // outlives a Remove
        ++held->paused;
        mu_.Await(absl::Condition(&held->released));
        --held->paused;
        return absl::OkStatus();
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace lumo::fault
