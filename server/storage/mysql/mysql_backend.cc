#include "server/storage/mysql/mysql_backend.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/storage/mysql/mysql_change_feed_store.h"

namespace lumo::storage {

absl::StatusOr<std::unique_ptr<MysqlBackend>> MysqlBackend::Open(
    const MysqlOptions& options) {
  absl::StatusOr<std::unique_ptr<MysqlKeyStore>> keys =
      MysqlKeyStore::Open(options);
  if (!keys.ok()) return keys.status();
  return std::unique_ptr<MysqlBackend>(new MysqlBackend(*std::move(keys)));
}

MysqlBackend::MysqlBackend(std::unique_ptr<MysqlKeyStore> keys)
    : pool_(keys->shared_pool()),
      keys_(std::move(keys)),
      users_(pool_),
      clients_(pool_),
      audit_(pool_),
      portal_(pool_),
      pepper_usage_(pool_),
      webhooks_(pool_),
      counters_(pool_),
      bench_(pool_) {}

absl::StatusOr<std::unique_ptr<ChangeFeedStore>> MysqlBackend::OpenChangeFeed(
    int connections) {
  absl::StatusOr<std::unique_ptr<MysqlChangeFeedStore>> feed =
      MysqlChangeFeedStore::Open(pool_->options(), connections);
  if (!feed.ok()) return feed.status();
  return std::unique_ptr<ChangeFeedStore>(*std::move(feed));
}

absl::StatusOr<Durability> MysqlBackend::CheckDurability() {
  absl::StatusOr<int> flush = keys_->FlushLogAtTrxCommit();
  if (!flush.ok()) return flush.status();
  return Durability{*flush == 1,
                    absl::StrCat("innodb_flush_log_at_trx_commit=", *flush)};
}

}  // namespace lumo::storage
