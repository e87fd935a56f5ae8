// A storage backend: every store the server uses, over one database, and
// the operator tasks that belong to the database (docs/storage.md). The
// layers above storage (service, rpc, app, bench) see only this header and
// the store interfaces it returns; which database implements them is chosen
// once, from the DSN, by OpenBackend (backend_factory.h), which only main()
// and tools call.
//
// Thread-safe: every method may be called from any thread. The stores are
// owned by the backend and live as long as it does; every store shares the
// backend's connections except the change feeds (OpenChangeFeed).
#ifndef LUMOKEYS_SERVER_STORAGE_BACKEND_H_
#define LUMOKEYS_SERVER_STORAGE_BACKEND_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/storage/audit_store.h"
#include "server/storage/bench_store.h"
#include "server/storage/change_feed_store.h"
#include "server/storage/client_store.h"
#include "server/storage/counter_store.h"
#include "server/storage/key_store.h"
#include "server/storage/outbox_signal.h"
#include "server/storage/pepper_usage_store.h"
#include "server/storage/pool_stats.h"
#include "server/storage/portal_store.h"
#include "server/storage/user_store.h"
#include "server/storage/webhook_store.h"

namespace lumo::storage {

// Whether the database keeps an acknowledged commit through a crash.
struct Durability {
  bool durable = true;
  // The setting that decides it, as "name=value" (for messages).
  std::string setting;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual KeyStore& keys() = 0;
  virtual UserStore& users() = 0;
  virtual ClientStore& clients() = 0;
  virtual AuditStore& audit() = 0;
  virtual PortalStore& portal() = 0;
  virtual PepperUsageStore& pepper_usage() = 0;
  virtual WebhookStore& webhooks() = 0;
  // Raised after this process commits webhook deliveries (wake-on-commit
  // of the delivery worker; outbox_signal.h).
  virtual OutboxSignal& outbox_signal() = 0;
  // The counters shared by the replicas (docs/limits.md).
  virtual CounterStore& counters() = 0;
  // BENCHMARK ONLY (bench_store.h).
  virtual BenchStore& bench() = 0;

  // A change feed store with `connections` connections of its own, so that
  // a replica's feed reads and heartbeats never queue behind request
  // traffic (docs/replication.md). Does not connect.
  virtual absl::StatusOr<std::unique_ptr<ChangeFeedStore>> OpenChangeFeed(
      int connections) = 0;

  // The shared connections' figures (zeros for a backend without a pool).
  virtual PoolStats pool_stats() const = 0;

  // Reads whether acknowledged commits survive a database crash. Errors as
  // key_store.h.
  virtual absl::StatusOr<Durability> CheckDurability() = 0;

  // Brings what the backend derives from other rows up to date with rows a
  // server of an earlier release wrote without it (MySQL: the presence
  // flags and the copies the verification read uses, docs/storage.md
  // "Presence flags" and "What the verification read names"); the number
  // of rows corrected.
  // Called when a server starts serving, so that once every replica of a
  // rolling upgrade has restarted nothing is left stale. Errors as
  // key_store.h.
  virtual absl::StatusOr<int64_t> ReconcileDerivedState() = 0;

  // Retention: for every tenant and chain lane, deletes the audit rows
  // older than `days` days (database clock) and moves the lane's base to
  // the last deleted row, so VerifyChain still verifies what is left
  // (docs/audit.md "Retention"). Needs rights the runtime account does not
  // have. Returns the number of rows deleted. INVALID_ARGUMENT for
  // days < 1.
  virtual absl::StatusOr<int64_t> PurgeAuditOlderThanDays(int days) = 0;

  // Usage retention (docs/usage.md "Retention"): deletes the hourly rollup
  // buckets that started more than `hourly_days` days ago and the daily
  // ones more than `daily_days` days ago (database clock), in chunks.
  // Returns the number of rows deleted. INVALID_ARGUMENT when a number of
  // days is below 1.
  virtual absl::StatusOr<int64_t> PurgeUsage(int hourly_days,
                                             int daily_days) = 0;
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_BACKEND_H_
