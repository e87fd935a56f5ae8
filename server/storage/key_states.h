// A key's states under its tenant's policy, on the database clock
// (docs/api-keys.md, "Key states"). The one definition of the state
// predicates: the service shows them, the verifier answers them, the fakes
// filter lists with them, and the MySQL store's list filter and state sweep
// are the same conditions in SQL (held together by the conformance suite).
// Pure functions, thread-safe.
#ifndef LUMOKEYS_SERVER_STORAGE_KEY_STATES_H_
#define LUMOKEYS_SERVER_STORAGE_KEY_STATES_H_

#include <optional>

#include "absl/time/time.h"
#include "server/storage/key_store.h"

namespace lumo::storage {

struct KeyStates {
  // (rotatedAt or createdAt) + rotationPeriodDays; unset without a period.
  std::optional<absl::Time> rotation_due_at;
  bool rotation_due = false;
  bool expiring_soon = false;
  bool inactive = false;
  bool disabled = false;
};

// The instant from which the key counts as inactive: (lastUsedAt or
// createdAt) + inactiveAfterDays; unset without an inactivity period.
inline std::optional<absl::Time> InactiveFrom(const ApiKeyRecord& key,
                                              const KeyPolicy& policy) {
  if (policy.inactive_after_days <= 0) return std::nullopt;
  return key.last_used_at.value_or(key.created_at) +
         absl::Hours(24) * policy.inactive_after_days;
}

// The states of `key` at `now` (a database time). Only an active key (not
// revoked, not expired) is rotation due, expiring or inactive.
inline KeyStates KeyStatesAt(const ApiKeyRecord& key, const KeyPolicy& policy,
                             absl::Time now) {
  KeyStates states;
  states.disabled = key.disabled;
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
  const std::optional<absl::Time> inactive_from = InactiveFrom(key, policy);
  states.inactive = inactive_from.has_value() && *inactive_from <= now;
  return states;
}

// The states of `key` when it was read (key.db_now).
inline KeyStates KeyStatesOf(const ApiKeyRecord& key, const KeyPolicy& policy) {
  return KeyStatesAt(key, policy, key.db_now);
}

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_KEY_STATES_H_
