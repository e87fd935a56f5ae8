// A key's states under its tenant's policy, on the database clock
// (docs/api-keys.md, "Key states"). Pure functions, thread-safe.
#ifndef LUMOKEYS_SERVER_SERVICE_KEY_STATES_H_
#define LUMOKEYS_SERVER_SERVICE_KEY_STATES_H_

#include <optional>

#include "absl/time/time.h"
#include "server/storage/key_store.h"

namespace lumo::service {

struct KeyStates {
  // (rotatedAt or createdAt) + rotationPeriodDays; unset without a period.
  std::optional<absl::Time> rotation_due_at;
  bool rotation_due = false;
  bool expiring_soon = false;
  bool inactive = false;
  bool disabled = false;
};

// The states of `key` at key.db_now. Only an active key (not revoked, not
// expired) is rotation due, expiring or inactive.
KeyStates KeyStatesOf(const storage::ApiKeyRecord& key,
                      const storage::KeyPolicy& policy);

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_KEY_STATES_H_
