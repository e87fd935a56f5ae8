// The one place that chooses a storage backend: from the scheme of the
// database DSN (docs/storage.md). Today only `mysql://` (MySQL/MariaDB,
// storage/mysql). Used by main() and tools; libraries above storage take a
// Backend instead and never name an implementation.
//
// Thread-safe (no shared state beyond what the chosen backend initialises
// once).
#ifndef LUMOKEYS_SERVER_STORAGE_BACKEND_FACTORY_H_
#define LUMOKEYS_SERVER_STORAGE_BACKEND_FACTORY_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/storage/backend.h"

namespace lumo::storage {

struct BackendOptions {
  // `<scheme>://...`; the rest is the backend's own syntax (for mysql://,
  // mysql_options.h ParseMysqlDsn).
  std::string dsn;
  // Replaces a password given in the DSN (read from a file, so that it
  // stays out of `ps`).
  std::optional<std::string> password;
  // Replaces the DSN's connection pool size.
  std::optional<int> pool_size;
};

// The schemes OpenBackend understands, for messages ("mysql://").
std::vector<std::string> SupportedDsnSchemes();

// Checks the DSN without connecting: INVALID_ARGUMENT as OpenBackend.
absl::Status CheckBackendOptions(const BackendOptions& options);

// Opens the backend the DSN's scheme names and checks that the database
// answers. INVALID_ARGUMENT for a DSN without a scheme, a scheme no backend
// has (the message lists the supported ones and never repeats the DSN,
// which may hold a password), or a DSN the backend cannot use;
// UNAVAILABLE when the database cannot be reached or refuses the login.
absl::StatusOr<std::unique_ptr<Backend>> OpenBackend(
    const BackendOptions& options);

// Brings the schema of the DSN's database up to date with the migrations in
// `migrations_dir` (creating the database if needed), without opening the
// stores. `applied` (optional) receives the migrations applied by this
// call. Errors as OpenBackend for the DSN, else the backend's migration
// errors (mysql: migrator.h).
absl::Status MigrateSchema(const BackendOptions& options,
                           const std::string& migrations_dir,
                           std::vector<std::string>* applied);

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_BACKEND_FACTORY_H_
