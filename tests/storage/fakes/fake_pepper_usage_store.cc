#include "tests/storage/fakes/fake_pepper_usage_store.h"

#include <map>

namespace lumo::testing {

absl::StatusOr<std::vector<storage::PepperVersionUsage>>
FakePepperUsageStore::PepperUsage() {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const absl::Time now = db_->Now();
  std::map<int, storage::PepperVersionUsage> by_version;
  auto at = [&](int version) -> storage::PepperVersionUsage& {
    storage::PepperVersionUsage& u = by_version[version];
    u.version = version;
    return u;
  };
  for (const auto& [id, row] : db_->keys) {
    // A deleted key answers NOT_FOUND whatever secret it is shown.
    if (row.deleted) continue;
    const storage::ApiKeyRecord& k = row.record;
    const bool live =
        !k.revoked && (!k.expires_at.has_value() || *k.expires_at > now);
    ++(live ? at(row.current.pepper_version).live_keys
            : at(row.current.pepper_version).dead_keys);
    for (const auto& [version, retired] : row.retired) {
      storage::PepperVersionUsage& u = at(retired.secret.pepper_version);
      ++(live && retired.valid_until > now ? u.live_retired_secrets
                                           : u.dead_retired_secrets);
    }
  }
  for (const auto& [id, row] : db_->clients) {
    if (row.secret.has_value()) ++at(row.secret->pepper_version).client_secrets;
  }
  for (const auto& [id, row] : db_->webhook_endpoints) {
    const storage::WebhookEndpointRecord& e = row.endpoint;
    ++at(e.secret.pepper_version).webhook_secrets;
    if (e.previous_secret.has_value() &&
        e.previous_secret_valid_until.value_or(absl::InfinitePast()) > now) {
      ++at(e.previous_secret->pepper_version).webhook_secrets;
    }
  }
  std::vector<storage::PepperVersionUsage> out;
  for (const auto& [version, usage] : by_version) out.push_back(usage);
  return out;
}

}  // namespace lumo::testing
