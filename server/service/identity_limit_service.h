// The identity limits API (docs/limits.md "Identity limits"): read and
// replace the named rate limits shared by every key of one identity
// (tenant, externalId). A change is audited (identity.limits_updated, the
// limits before and after) in its transaction, evicts this replica's cached
// records of the identity's keys and is announced on the change feed for
// each of them and waited for like a key edit: once Set returns, every
// live replica counts the identity's keys against the new limits.
//
// Who may: callers holding the scopes of the RPC (admin:read /
// admin:write) of the tenant; an API key may not change the limits of its
// own identity.
//
// Thread-safe.
#ifndef LUMOKEYS_SERVER_SERVICE_IDENTITY_LIMIT_SERVICE_H_
#define LUMOKEYS_SERVER_SERVICE_IDENTITY_LIMIT_SERVICE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/service/change_barrier.h"
#include "server/service/principal.h"
#include "server/service/verifier.h"
#include "server/storage/counter_store.h"
#include "server/storage/key_store.h"

namespace lumo::service {

class IdentityLimitService {
 public:
  // `verifier` may be null (no cache to evict), and `barrier` (no other
  // replica to tell).
  IdentityLimitService(storage::CounterStore* counters, Verifier* verifier,
                       ChangeBarrier* barrier = nullptr);

  // The identity's limits by name (empty: none). INVALID_ARGUMENT
  // kInvalidField `externalId` for an empty or malformed external id.
  absl::StatusOr<std::vector<storage::KeyRateLimit>> Get(
      const Principal& caller, absl::string_view external_id);

  // Replaces the identity's limits (empty: none) and returns them by name.
  // INVALID_ARGUMENT kInvalidField naming `externalId` or the bad
  // `rateLimits` field (the rules of a key's named limits);
  // PERMISSION_DENIED kScopeExceeded for an API key of that identity;
  // UNAVAILABLE kUnavailable when the other replicas did not acknowledge
  // the change in time (it stands; retrying it waits again).
  absl::StatusOr<std::vector<storage::KeyRateLimit>> Set(
      const Principal& caller, const RequestInfo& info,
      absl::string_view external_id, std::vector<storage::KeyRateLimit> limits);

 private:
  storage::CounterStore* const counters_;
  Verifier* const verifier_;
  ChangeBarrier* const barrier_;
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_IDENTITY_LIMIT_SERVICE_H_
