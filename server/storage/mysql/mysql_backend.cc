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

absl::StatusOr<int64_t> MysqlBackend::ReconcileDerivedState() {
  absl::StatusOr<int64_t> flags = keys_->ReconcilePresenceFlags();
  if (!flags.ok()) return flags.status();
  absl::StatusOr<int64_t> policies = clients_.ReconcileKeyPolicyCopies();
  if (!policies.ok()) return policies.status();
  absl::StatusOr<int64_t> retired = keys_->ReconcileRetiredCopies();
  if (!retired.ok()) return retired.status();
  return *flags + *policies + *retired;
}

absl::StatusOr<Durability> MysqlBackend::CheckDurability() {
  const MysqlOptions& options = pool_->options();
  if (options.other_hosts.empty()) {
    absl::StatusOr<int> flush = keys_->FlushLogAtTrxCommit();
    if (!flush.ok()) return flush.status();
    return Durability{*flush == 1,
                      absl::StrCat("innodb_flush_log_at_trx_commit=", *flush)};
  }
  // Every node of a multi-host DSN may come to serve: each one reachable
  // now must be durable (a node down now is not checked; it is checked
  // when a server starts while it is up).
  size_t answered = 0;
  for (const MysqlHost& host : AllHosts(options)) {
    absl::StatusOr<std::unique_ptr<MysqlKeyStore>> node =
        MysqlKeyStore::Open(OnHost(options, host));
    absl::StatusOr<int> flush = node.ok() ? (*node)->FlushLogAtTrxCommit()
                                          : absl::StatusOr<int>(node.status());
    if (!flush.ok()) continue;
    ++answered;
    if (*flush != 1) {
      return Durability{false, absl::StrCat("innodb_flush_log_at_trx_commit=",
                                            *flush, " on ", HostForLog(host))};
    }
  }
  if (answered == 0) {
    return absl::UnavailableError(
        "no database host answered the durability check");
  }
  return Durability{true, "innodb_flush_log_at_trx_commit=1"};
}

}  // namespace lumo::storage
