// The MySQL/MariaDB storage backend: every store over one connection pool
// (the change feeds over pools of their own), plus the durability check,
// the retention purge and the schema migrator. Chosen by OpenBackend for
// `mysql://` DSNs; tests build it directly.
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_BACKEND_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_BACKEND_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/storage/backend.h"
#include "server/storage/mysql/connection_pool.h"
#include "server/storage/mysql/mysql_audit_store.h"
#include "server/storage/mysql/mysql_bench_store.h"
#include "server/storage/mysql/mysql_client_store.h"
#include "server/storage/mysql/mysql_counter_store.h"
#include "server/storage/mysql/mysql_key_store.h"
#include "server/storage/mysql/mysql_options.h"
#include "server/storage/mysql/mysql_pepper_usage_store.h"
#include "server/storage/mysql/mysql_portal_store.h"
#include "server/storage/mysql/mysql_user_store.h"
#include "server/storage/mysql/mysql_webhook_store.h"

namespace lumo::storage {

// Thread-safe.
class MysqlBackend : public Backend {
 public:
  // Opens the pool and checks that the database answers (as
  // MysqlKeyStore::Open).
  static absl::StatusOr<std::unique_ptr<MysqlBackend>> Open(
      const MysqlOptions& options);

  KeyStore& keys() override { return *keys_; }
  UserStore& users() override { return users_; }
  ClientStore& clients() override { return clients_; }
  AuditStore& audit() override { return audit_; }
  PortalStore& portal() override { return portal_; }
  PepperUsageStore& pepper_usage() override { return pepper_usage_; }
  WebhookStore& webhooks() override { return webhooks_; }
  OutboxSignal& outbox_signal() override { return pool_->outbox_signal(); }
  CounterStore& counters() override { return counters_; }
  BenchStore& bench() override { return bench_; }
  absl::StatusOr<std::unique_ptr<ChangeFeedStore>> OpenChangeFeed(
      int connections) override;
  PoolStats pool_stats() const override { return pool_->stats(); }
  // innodb_flush_log_at_trx_commit must be 1.
  absl::StatusOr<Durability> CheckDurability() override;
  // The presence flags, the key policy copies and the retired secrets'
  // copies (docs/storage.md).
  absl::StatusOr<int64_t> ReconcileDerivedState() override;
  absl::StatusOr<int64_t> PurgeAuditOlderThanDays(int days) override {
    return audit_.PurgeOlderThanDays(days);
  }
  absl::StatusOr<int64_t> PurgeUsage(int hourly_days, int daily_days) override {
    return audit_.PurgeUsage(hourly_days, daily_days);
  }

  // The concrete stores and the pool, for tests (query counters, holding
  // connections, test-only hooks).
  MysqlKeyStore& key_store() { return *keys_; }
  MysqlAuditStore& audit_store() { return audit_; }
  const std::shared_ptr<ConnectionPool>& shared_pool() const { return pool_; }
  const MysqlOptions& options() const { return pool_->options(); }

 private:
  explicit MysqlBackend(std::unique_ptr<MysqlKeyStore> keys);

  // Declared first: destroyed after every store that uses it.
  const std::shared_ptr<ConnectionPool> pool_;
  std::unique_ptr<MysqlKeyStore> keys_;
  MysqlUserStore users_;
  MysqlClientStore clients_;
  MysqlAuditStore audit_;
  MysqlPortalStore portal_;
  MysqlPepperUsageStore pepper_usage_;
  MysqlWebhookStore webhooks_;
  MysqlCounterStore counters_;
  MysqlBenchStore bench_;
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_BACKEND_H_
