// The storage interface of the pepper coverage check (docs/operations.md,
// "Pepper rotation"): which pepper versions the stored secrets use. Domain
// logic (server/service/pepper_coverage.h) depends only on this header; the
// MySQL backend is storage/mysql/mysql_pepper_usage_store.h.
//
// Error contract: UNAVAILABLE when the database cannot be reached;
// DEADLINE_EXCEEDED when the statement hit its ceiling; INTERNAL for
// anything unexpected.
#ifndef LUMOKEYS_SERVER_STORAGE_PEPPER_USAGE_STORE_H_
#define LUMOKEYS_SERVER_STORAGE_PEPPER_USAGE_STORE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace lumo::storage {

// How many stored secrets use one pepper version. "Live" secrets are
// accepted today or may be: losing their pepper breaks them. "Dead" secrets
// are refused anyway; their pepper only lets the service recognise them
// (REVOKED, ROTATED, EXPIRED instead of NOT_FOUND). Deleted keys and their
// rotated-away secrets are not counted: a deleted key answers NOT_FOUND
// whatever secret is presented.
struct PepperVersionUsage {
  int version = 0;
  // Keys neither revoked, deleted nor expired.
  int64_t live_keys = 0;
  // Rotated-away secrets within their grace period, of live keys.
  int64_t live_retired_secrets = 0;
  // OAuth client secrets (confidential clients, active or not: an inactive
  // client can be activated again).
  int64_t client_secrets = 0;
  // Sealed webhook signing secrets (docs/webhooks.md): every endpoint's
  // current one, and a previous one while it still signs. The sealing key
  // is derived from the pepper: without it no delivery can be signed.
  int64_t webhook_secrets = 0;
  // Revoked or expired keys.
  int64_t dead_keys = 0;
  // Rotated-away secrets past their grace period, or of dead keys.
  int64_t dead_retired_secrets = 0;

  int64_t live() const {
    return live_keys + live_retired_secrets + client_secrets + webhook_secrets;
  }
  int64_t dead() const { return dead_keys + dead_retired_secrets; }
};

// Thread-safe.
class PepperUsageStore {
 public:
  virtual ~PepperUsageStore() = default;

  // Every pepper version some counted secret uses, ascending by version,
  // counted at the database's current time.
  virtual absl::StatusOr<std::vector<PepperVersionUsage>> PepperUsage() = 0;
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_PEPPER_USAGE_STORE_H_
