// MySQL/MariaDB backend of storage/pepper_usage_store.h.
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_PEPPER_USAGE_STORE_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_PEPPER_USAGE_STORE_H_

#include <memory>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "server/storage/mysql/connection_pool.h"
#include "server/storage/pepper_usage_store.h"

namespace lumo::storage {

// Thread-safe (every call leases its own connection). One statement that
// reads every api_keys, api_key_retired_secrets and oauth_clients row (no
// index on the pepper version): meant for start-up and operator checks,
// not for a request path.
class MysqlPepperUsageStore : public PepperUsageStore {
 public:
  explicit MysqlPepperUsageStore(std::shared_ptr<ConnectionPool> pool)
      : pool_(std::move(pool)) {}

  absl::StatusOr<std::vector<PepperVersionUsage>> PepperUsage() override;

 private:
  std::shared_ptr<ConnectionPool> pool_;
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_PEPPER_USAGE_STORE_H_
