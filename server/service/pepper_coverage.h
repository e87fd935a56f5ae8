// Pepper coverage: whether a pepper set holds every pepper version that the
// stored secrets were hashed with (docs/operations.md, "Pepper rotation").
// A version missing from the set breaks every secret hashed with it: live
// keys, rotated-away secrets in their grace period and OAuth client secrets
// stop verifying, and dead secrets (revoked, expired, rotated away) are
// answered NOT_FOUND instead of REVOKED, EXPIRED or ROTATED. The server
// checks its pepper file at start-up (refusing to start in the first case,
// warning in the second), and `lumokeys-server check-peppers` runs the
// same check for an operator before a pepper version is retired.
#ifndef LUMOKEYS_SERVER_SERVICE_PEPPER_COVERAGE_H_
#define LUMOKEYS_SERVER_SERVICE_PEPPER_COVERAGE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/core/pepper.h"
#include "server/storage/pepper_usage_store.h"

namespace lumo::service {

// The outcome of one check. A value type.
struct PepperCoverage {
  struct Row {
    int version = 0;
    bool in_set = false;
    bool current = false;               // the set's current version
    storage::PepperVersionUsage usage;  // zero counts when nothing uses it
  };
  // One row per version in the set or in use, ascending.
  std::vector<Row> rows;

  // A version the set lacks is used by a live secret (see
  // storage::PepperVersionUsage): starting with this set would break them.
  bool refused() const;
  // Versions the set lacks are used by dead secrets only.
  bool degraded() const;

  // Why the set is refused, naming each missing version and its live
  // secrets; empty unless refused().
  std::string RefusalMessage() const;
  // What changes for the dead secrets of missing versions; empty when no
  // missing version is used by a dead secret.
  std::string WarningMessage() const;
  // A table (one line per row) and the verdict, for an operator; ends with
  // a newline.
  std::string Report() const;
};

// Compares `peppers` with what `store` says the stored secrets use. Errors
// are the store's.
absl::StatusOr<PepperCoverage> CheckPepperCoverage(
    const core::PepperSet& peppers, storage::PepperUsageStore& store);

// The same comparison for given usage (ascending by version); for tests and
// callers that already hold the usage.
PepperCoverage ComparePepperCoverage(
    const std::vector<int>& set_versions,
    const std::vector<storage::PepperVersionUsage>& usage);

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_PEPPER_COVERAGE_H_
