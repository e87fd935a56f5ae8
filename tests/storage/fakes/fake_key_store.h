// An in-memory KeyStore (server/storage/key_store.h) for unit tests of
// domain logic, held to the contract by the key store conformance suite
// (tests/storage/conformance). Its audit events and change-feed rows go to
// the FakeDatabase it shares with the other fakes. Test hooks (clock,
// forced unavailability, call counting) live here, not on the interface.
// Thread-safe.
#ifndef LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_KEY_STORE_H_
#define LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_KEY_STORE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "server/storage/key_store.h"
#include "tests/storage/fakes/fake_database.h"

namespace lumo::testing {

class FakeKeyStore : public storage::KeyStore {
 public:
  // A database of its own, its clock frozen at 2026-01-01 00:00 UTC (unit
  // tests move it with SetNow/Advance).
  FakeKeyStore();
  // Over `db`, shared with other fake stores.
  explicit FakeKeyStore(std::shared_ptr<FakeDatabase> db);

  absl::StatusOr<storage::Tenant> CreateTenant(
      absl::string_view slug, absl::string_view name,
      const storage::NewKey* initial_key,
      const std::vector<storage::AuditEvent>& events) override;
  absl::StatusOr<storage::Tenant> GetTenantBySlug(
      absl::string_view slug) override;
  absl::Status InsertKey(const storage::NewKey& key,
                         const storage::AuditEvent& event) override;
  absl::StatusOr<storage::ApiKeyRecord> GetKey(int64_t tenant_id,
                                               absl::string_view id) override;
  absl::StatusOr<storage::KeyWithPolicy> GetKeyWithPolicy(
      int64_t tenant_id, absl::string_view id) override;
  absl::StatusOr<storage::KeyPage> ListKeys(
      int64_t tenant_id, const storage::ListKeysQuery& query) override;
  using storage::KeyStore::RotateKey;
  absl::StatusOr<storage::ApiKeyRecord> RotateKey(
      int64_t tenant_id, absl::string_view id,
      const storage::StoredSecret& new_secret, absl::Duration grace,
      const storage::RotateOptions& options,
      const storage::AuditEvent& event) override;
  absl::StatusOr<storage::RevokeResult> RevokeKey(
      int64_t tenant_id, absl::string_view id,
      const storage::AuditEvent& event) override;
  absl::StatusOr<storage::DeleteResult> DeleteKey(
      int64_t tenant_id, absl::string_view id,
      const storage::AuditEvent& event) override;
  absl::StatusOr<storage::VerifyRecord> LoadForVerify(
      absl::string_view id) override;
  absl::StatusOr<std::vector<storage::VerifyRecord>> LoadManyForVerify(
      const std::vector<std::string>& ids) override;
  absl::StatusOr<storage::UpdateResult> UpdateKey(
      int64_t tenant_id, absl::string_view id, int64_t expected_version,
      const storage::KeyEdit& edit, const storage::AuditEvent& event) override;
  absl::StatusOr<storage::UpdateResult> EndRetiredSecretGrace(
      int64_t tenant_id, absl::string_view id, const core::Digest& digest,
      const storage::AuditEvent& event) override;
  using storage::KeyStore::SetKeyDisabled;
  absl::StatusOr<storage::UpdateResult> SetKeyDisabled(
      int64_t tenant_id, absl::string_view id, bool disabled,
      std::optional<int64_t> expected_version,
      const storage::AuditEvent& event) override;
  absl::StatusOr<storage::KeyPolicy> GetKeyPolicy(int64_t tenant_id) override;
  absl::StatusOr<storage::KeyPolicyAt> GetKeyPolicyAt(
      int64_t tenant_id) override;
  absl::StatusOr<bool> TakeSweepLease(absl::string_view holder,
                                      absl::Duration lease) override;
  absl::StatusOr<storage::AnnouncementBatch> PendingAnnouncements(
      absl::string_view after_key_id, int limit) override;
  absl::StatusOr<bool> AnnounceKeyState(
      const storage::StateAnnouncement& announcement,
      const storage::AuditEvent& event) override;
  absl::StatusOr<absl::Time> Now() override;
  void SetFeedWriter(absl::string_view writer) override;
  int64_t FeedWriterHead() override;
  std::optional<storage::StreamPosition> DrawFeedSlot() override;

  // Test hooks.
  FakeDatabase& database() { return *db_; }
  // Freezes the clock at `now` / moves it on.
  void SetNow(absl::Time now) { db_->FreezeClock(now); }
  void Advance(absl::Duration d) { db_->AdvanceClock(d); }
  void SetUnavailable(bool unavailable) { db_->SetUnavailable(unavailable); }
  int verify_loads() const { return verify_loads_.load(); }
  // Calls of LoadManyForVerify.
  int verify_batches() const { return verify_batches_.load(); }
  // Calls of every store on the database.
  int calls() const { return db_->calls(); }
  // Every audit event of the database, in the order written.
  std::vector<storage::AuditEvent> events() const;
  // Runs once inside the next LoadForVerify, after the record was read and
  // before it is returned (to interleave a mutation with a cache fill).
  void SetLoadHook(std::function<void()> hook);

 private:
  // Appends a mutation's feed row, in the writer's stream when there is one
  // (the fake's mutations never fail after their feed row: no voids).
  void AppendKeyChange(int64_t tenant_id, absl::string_view key_id,
                       absl::string_view change_type, int64_t version)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_->mu) ABSL_LOCKS_EXCLUDED(feed_mu_);

  const std::shared_ptr<FakeDatabase> db_;
  absl::Mutex feed_mu_;  // after db_->mu
  std::string feed_writer_ ABSL_GUARDED_BY(feed_mu_);
  int64_t feed_wseq_ ABSL_GUARDED_BY(feed_mu_) = 0;
  absl::Mutex hook_mu_;
  std::function<void()> load_hook_ ABSL_GUARDED_BY(hook_mu_);
  std::atomic<int> verify_loads_{0};
  std::atomic<int> verify_batches_{0};
};

}  // namespace lumo::testing

#endif  // LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_KEY_STORE_H_
