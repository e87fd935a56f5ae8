// An in-memory WebhookStore (server/storage/webhook_store.h) over a
// FakeDatabase, held to the contract by the webhook store conformance
// suite. The outbox itself is filled by FakeDatabase::AppendAudit, as the
// MySQL audit appends fill theirs. Thread-safe.
#ifndef LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_WEBHOOK_STORE_H_
#define LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_WEBHOOK_STORE_H_

#include <memory>
#include <vector>

#include "server/storage/webhook_store.h"
#include "tests/storage/fakes/fake_database.h"

namespace lumo::testing {

class FakeWebhookStore : public storage::WebhookStore {
 public:
  explicit FakeWebhookStore(std::shared_ptr<FakeDatabase> db)
      : db_(std::move(db)) {}

  absl::StatusOr<storage::WebhookEndpointRecord> CreateEndpoint(
      const storage::NewWebhookEndpoint& endpoint, int max_endpoints,
      const storage::AuditEvent& event) override;
  absl::StatusOr<storage::WebhookEndpointRecord> GetEndpoint(
      int64_t tenant_id, absl::string_view id) override;
  absl::StatusOr<storage::WebhookEndpointPage> ListEndpoints(
      int64_t tenant_id, int page, int limit) override;
  absl::StatusOr<storage::WebhookEndpointRecord> UpdateEndpoint(
      int64_t tenant_id, absl::string_view id,
      const storage::WebhookEndpointUpdate& update,
      const storage::AuditEvent& event, bool* changed) override;
  absl::StatusOr<storage::WebhookEndpointRecord> RotateSecret(
      int64_t tenant_id, absl::string_view id,
      const storage::SealedSecret& secret, absl::string_view secret_prefix,
      absl::Duration overlap, const storage::AuditEvent& event) override;
  absl::Status DeleteEndpoint(int64_t tenant_id, absl::string_view id,
                              const storage::AuditEvent& event) override;
  absl::StatusOr<storage::WebhookDeliveryRecord> EnqueuePing(
      int64_t tenant_id, absl::string_view endpoint_id,
      const storage::AuditEvent& event) override;
  absl::StatusOr<storage::DeliveryPage> ListDeliveries(
      int64_t tenant_id, absl::string_view endpoint_id,
      const storage::DeliveryQuery& query) override;
  absl::StatusOr<storage::WebhookEventRecord> GetEvent(
      int64_t tenant_id, absl::string_view event_id) override;
  absl::StatusOr<std::vector<storage::ClaimedDelivery>> ClaimDue(
      int max, absl::Duration lease) override;
  absl::StatusOr<storage::CompletedAttempt> CompleteAttempt(
      const storage::ClaimedDelivery& claim,
      const storage::AttemptOutcome& outcome,
      const storage::FailurePolicy& policy,
      const storage::AuditEvent& disable_event) override;
  absl::StatusOr<int64_t> PurgeExpired(
      absl::Duration finished_older_than,
      absl::Duration tallies_older_than) override;
  absl::StatusOr<bool> LeakReported(absl::string_view key_id,
                                    const core::Digest& digest) override;
  absl::StatusOr<bool> RecordLeakReport(
      const storage::LeakedSecretReport& report,
      const storage::AuditEvent& event) override;

 private:
  std::shared_ptr<FakeDatabase> db_;
};

}  // namespace lumo::testing

#endif  // LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_WEBHOOK_STORE_H_
