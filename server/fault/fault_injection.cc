#include "server/fault/fault_injection.h"

#include <string>
#include <utility>

#include "server/fault/registry.h"

namespace lumo::fault {
namespace {

std::shared_ptr<Rule> NewRule(FaultPoint& point, absl::string_view scope,
                              Rule::Kind kind, int times) {
  auto rule = std::make_shared<Rule>();
  rule->point = &point;
  rule->scope = std::string(scope);
  rule->kind = kind;
  rule->remaining = times;
  return rule;
}

}  // namespace

Injection::Injection(std::shared_ptr<Rule> rule) : rule_(std::move(rule)) {
  Registry::Get().Add(rule_);
}

Injection Injection::Pause(FaultPoint& point, absl::string_view scope,
                           int times) {
  return Injection(NewRule(point, scope, Rule::Kind::kPause, times));
}

Injection Injection::Fail(FaultPoint& point, absl::string_view scope,
                          absl::Status error, int times) {
  std::shared_ptr<Rule> rule = NewRule(point, scope, Rule::Kind::kFail, times);
  rule->error = std::move(error);
  return Injection(std::move(rule));
}

Injection Injection::Count(FaultPoint& point, absl::string_view scope) {
  return Injection(NewRule(point, scope, Rule::Kind::kCount, kEveryHit));
}

Injection::Injection(Injection&& other) noexcept
    : rule_(std::move(other.rule_)) {}

Injection& Injection::operator=(Injection&& other) noexcept {
  if (this != &other) {
    Release();
    rule_ = std::move(other.rule_);
  }
  return *this;
}

Injection::~Injection() { Release(); }

void Injection::Release() {
  if (rule_ != nullptr) Registry::Get().Remove(rule_);
}

int Injection::hits() const {
  absl::MutexLock lock(&Registry::Get().mu());
  return rule_->hits;
}

int Injection::paused() const {
  absl::MutexLock lock(&Registry::Get().mu());
  return rule_->paused;
}

bool Injection::WaitPaused(int n, absl::Duration timeout) const {
  return Registry::Get().Await(
      rule_, +[](Rule* r, int k) { return r->paused >= k; }, n, timeout);
}

bool Injection::WaitHits(int n, absl::Duration timeout) const {
  return Registry::Get().Await(
      rule_, +[](Rule* r, int k) { return r->hits >= k; }, n, timeout);
}

}  // namespace lumo::fault
