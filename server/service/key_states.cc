#include "server/service/key_states.h"

namespace lumo::service {

KeyStates KeyStatesOf(const storage::ApiKeyRecord& key,
                      const storage::KeyPolicy& policy) {
  KeyStates states;
  states.disabled = key.disabled;
  const absl::Time now = key.db_now;
  const absl::Duration day = absl::Hours(24);
  if (policy.rotation_period_days > 0) {
    states.rotation_due_at = key.rotated_at.value_or(key.created_at) +
                             day * policy.rotation_period_days;
  }
  const bool expired = key.expires_at.has_value() && *key.expires_at <= now;
  if (key.revoked || expired) return states;
  states.rotation_due =
      states.rotation_due_at.has_value() && *states.rotation_due_at <= now;
  states.expiring_soon =
      key.expires_at.has_value() && policy.expiry_warning_days > 0 &&
      *key.expires_at <= now + day * policy.expiry_warning_days;
  states.inactive = policy.inactive_after_days > 0 &&
                    key.last_used_at.value_or(key.created_at) +
                            day * policy.inactive_after_days <=
                        now;
  return states;
}

}  // namespace lumo::service
