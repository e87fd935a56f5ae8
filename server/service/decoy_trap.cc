#include "server/service/decoy_trap.h"

namespace lumo::service {

DecoyTrap::DecoyTrap(DecoyTrapOptions options) : options_(std::move(options)) {}

void DecoyTrap::Sprung(int64_t tenant_id, absl::string_view address) {
  if (options_.block <= absl::ZeroDuration() || address.empty()) return;
  const absl::Time now = options_.now();
  absl::MutexLock lock(&mu_);
  std::pair<int64_t, std::string> key{tenant_id, std::string(address)};
  if (!blocks_.contains(key) && blocks_.size() >= options_.max_tracked) {
    absl::erase_if(blocks_, [now](const auto& b) { return b.second <= now; });
    if (blocks_.size() >= options_.max_tracked) return;
  }
  blocks_[std::move(key)] = now + options_.block;
  size_.store(blocks_.size(), std::memory_order_relaxed);
}

bool DecoyTrap::Blocked(int64_t tenant_id, absl::string_view address) const {
  if (size_.load(std::memory_order_relaxed) == 0 || address.empty()) {
    return false;
  }
  const absl::Time now = options_.now();
  absl::MutexLock lock(&mu_);
  auto it = blocks_.find(std::pair<int64_t, std::string>(tenant_id, address));
  return it != blocks_.end() && now < it->second;
}

}  // namespace lumo::service
