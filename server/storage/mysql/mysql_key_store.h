// KeyStore over MySQL/MariaDB (Connector/C++ 1.1). The only KeyStore that
// touches a real database; the schema is sql/migrations/.
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_KEY_STORE_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_KEY_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/storage/change_feed_store.h"
#include "server/storage/key_store.h"
#include "server/storage/mysql/connection_pool.h"
#include "server/storage/mysql/mysql_options.h"

namespace lumo::storage {

// Thread-safe: every method may be called concurrently from any thread;
// each call takes a connection from the store's pool for its duration.
//
// Behaviour beyond the KeyStore contract:
//   - Every statement is a server-side prepared statement with bound values;
//     only whitelisted fragments (sort column, status filter) are spliced
//     into SQL text.
//   - Mutations run in one REPEATABLE READ transaction that starts with
//     SELECT ... FOR UPDATE on the key row; every error path rolls back.
//   - Times come from the database clock: UTC_TIMESTAMP(6), and in
//     mutations SYSDATE(6) read after the row lock is granted, so the times
//     of serialised mutations of one key increase with its version.
//   - A lost connection (server restart, KILL, idle timeout) is retried once
//     on a fresh connection when nothing can have been committed, so the
//     caller does not see it; a connection lost during COMMIT is reported as
//     UNAVAILABLE (the outcome is unknown).
//   - Error codes besides those of key_store.h: INVALID_ARGUMENT when a
//     value does not fit the schema (too long, invalid UTF-8, a time outside
//     years 1000-9999, metadata that is not JSON, a key id that is not
//     1-12 base62 characters on insert) or a list query is out of range
//     (page < 1, limit outside 1..100); ABORTED when the database chose
//     this transaction as a deadlock victim (retry).
class MysqlKeyStore : public KeyStore {
 public:
  // Opens the pool and checks that the database answers. UNAVAILABLE when
  // it cannot be reached or refuses the login; INVALID_ARGUMENT for
  // unusable options (options.database must be set).
  static absl::StatusOr<std::unique_ptr<MysqlKeyStore>> Open(
      const MysqlOptions& options);

  ~MysqlKeyStore() override;

  absl::StatusOr<Tenant> CreateTenant(
      absl::string_view slug, absl::string_view name, const NewKey* initial_key,
      const std::vector<AuditEvent>& events) override;
  absl::StatusOr<Tenant> GetTenantBySlug(absl::string_view slug) override;
  absl::Status InsertKey(const NewKey& key, const AuditEvent& event) override;
  absl::StatusOr<ApiKeyRecord> GetKey(int64_t tenant_id,
                                      absl::string_view id) override;
  absl::StatusOr<KeyWithPolicy> GetKeyWithPolicy(int64_t tenant_id,
                                                 absl::string_view id) override;
  absl::StatusOr<KeyPage> ListKeys(int64_t tenant_id,
                                   const ListKeysQuery& query) override;
  using KeyStore::RotateKey;
  absl::StatusOr<ApiKeyRecord> RotateKey(int64_t tenant_id,
                                         absl::string_view id,
                                         const StoredSecret& new_secret,
                                         absl::Duration grace,
                                         const RotateOptions& options,
                                         const AuditEvent& event) override;
  absl::StatusOr<RevokeResult> RevokeKey(int64_t tenant_id,
                                         absl::string_view id,
                                         const AuditEvent& event) override;
  absl::StatusOr<DeleteResult> DeleteKey(int64_t tenant_id,
                                         absl::string_view id,
                                         const AuditEvent& event) override;
  absl::StatusOr<UpdateResult> UpdateKey(int64_t tenant_id,
                                         absl::string_view id,
                                         int64_t expected_version,
                                         const KeyEdit& edit,
                                         const AuditEvent& event) override;
  absl::StatusOr<UpdateResult> EndRetiredSecretGrace(
      int64_t tenant_id, absl::string_view id, const core::Digest& digest,
      const AuditEvent& event) override;
  using KeyStore::SetKeyDisabled;
  absl::StatusOr<UpdateResult> SetKeyDisabled(
      int64_t tenant_id, absl::string_view id, bool disabled,
      std::optional<int64_t> expected_version,
      const AuditEvent& event) override;
  absl::StatusOr<VerifyRecord> LoadForVerify(absl::string_view id) override;
  // One statement per kVerifyBatchChunk distinct well-formed ids (none for
  // none), in one session.
  absl::StatusOr<std::vector<VerifyRecord>> LoadManyForVerify(
      const std::vector<std::string>& ids) override;
  static constexpr int kVerifyBatchChunk = 250;
  absl::StatusOr<KeyPolicy> GetKeyPolicy(int64_t tenant_id) override;
  absl::StatusOr<KeyPolicyAt> GetKeyPolicyAt(int64_t tenant_id) override;
  absl::StatusOr<bool> TakeSweepLease(absl::string_view holder,
                                      absl::Duration lease) override;
  absl::StatusOr<AnnouncementBatch> PendingAnnouncements(
      absl::string_view after_key_id, int limit) override;
  absl::StatusOr<bool> AnnounceKeyState(const StateAnnouncement& announcement,
                                        const AuditEvent& event) override;
  absl::StatusOr<absl::Time> Now() override;
  void SetFeedWriter(absl::string_view writer) override;
  int64_t FeedWriterHead() override;
  std::optional<StreamPosition> DrawFeedSlot() override;

  // @@innodb_flush_log_at_trx_commit: anything but 1 can lose acknowledged
  // commits on a crash. Errors as key_store.h.
  absl::StatusOr<int> FlushLogAtTrxCommit();

  // Sets the presence flags (docs/storage.md "Presence flags") of the keys
  // and tenants that have rows their flag does not show: rows a server of
  // an earlier release added. Three statements, each driven by the rows of
  // the small table (key_limits, key_quotas, identity_limits); the number
  // of flags set. Errors as key_store.h.
  absl::StatusOr<int64_t> ReconcilePresenceFlags();

  // Builds again the copy of their retired secrets (retired_copy.h) of the
  // keys whose copy is not current: keys a server of an earlier release
  // changed, or changed before the copy existed. Chunks of 500 keys, each
  // locked while its copies are built. The number of copies built. Errors
  // as key_store.h.
  absl::StatusOr<int64_t> ReconcileRetiredCopies();

  // Round trips made on behalf of callers so far (connection set-up
  // excluded; a statement batch, such as START TRANSACTION and SAVEPOINT
  // sent with a transaction's first statement, counts once). LoadForVerify
  // is exactly one.
  uint64_t queries_executed() const { return pool_->queries_executed(); }
  PoolStats pool_stats() const { return pool_->stats(); }
  // The store's pool, for tests (holding leases, counting connections).
  ConnectionPool* pool() { return pool_.get(); }
  // The pool, for other stores of the same database to share.
  std::shared_ptr<ConnectionPool> shared_pool() const { return pool_; }

 private:
  // The stream positions one store call drew (one per attempt whose body
  // reached its feed row) and the one its latest attempt drew (0: none).
  struct FeedSlots {
    std::vector<int64_t> drawn;
    int64_t current = 0;
  };

  explicit MysqlKeyStore(std::shared_ptr<ConnectionPool> pool);

  // The next position of the writer's stream, recorded in `slots`; none
  // without a writer.
  std::optional<StreamPosition> Draw(FeedSlots& slots)
      ABSL_LOCKS_EXCLUDED(feed_mu_);
  // Writes void rows for the positions of `slots` that did not commit (all
  // of them unless the call `succeeded`, then all but the latest attempt's),
  // and for earlier ones whose void could not be written; keeps those that
  // fail again for the next call.
  void CloseUnusedSlots(const FeedSlots& slots, bool succeeded)
      ABSL_LOCKS_EXCLUDED(feed_mu_);

  std::shared_ptr<ConnectionPool> pool_;
  absl::Mutex feed_mu_;
  std::string feed_writer_ ABSL_GUARDED_BY(feed_mu_);
  int64_t feed_wseq_ ABSL_GUARDED_BY(feed_mu_) = 0;
  std::vector<int64_t> pending_voids_ ABSL_GUARDED_BY(feed_mu_);
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_KEY_STORE_H_
