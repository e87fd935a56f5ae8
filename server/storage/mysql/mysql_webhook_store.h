// WebhookStore over MySQL/MariaDB (Connector/C++ 1.1). Schema:
// sql/migrations/0014_webhooks_leaks_decoys.sql.
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_WEBHOOK_STORE_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_WEBHOOK_STORE_H_

#include <memory>
#include <vector>

#include "server/storage/mysql/connection_pool.h"
#include "server/storage/webhook_store.h"

namespace lumo::storage {

// Thread-safe: every method may be called concurrently from any thread;
// each call takes a connection from the shared pool for its duration.
//
// Behaviour beyond the WebhookStore contract:
//   - Claims use SELECT ... FOR UPDATE SKIP LOCKED on the due deliveries
//     (MariaDB >= 10.6, MySQL >= 8.0), as the first statement of their
//     transaction, so the reads after it see every committed row.
//   - Creating an endpoint locks the tenant row, which serialises the
//     endpoint count check of concurrent creations.
//   - Times come from the database clock (UTC_TIMESTAMP(6)).
class MysqlWebhookStore : public WebhookStore {
 public:
  explicit MysqlWebhookStore(std::shared_ptr<ConnectionPool> pool);
  ~MysqlWebhookStore() override;

  absl::StatusOr<WebhookEndpointRecord> CreateEndpoint(
      const NewWebhookEndpoint& endpoint, int max_endpoints,
      const AuditEvent& event) override;
  absl::StatusOr<WebhookEndpointRecord> GetEndpoint(
      int64_t tenant_id, absl::string_view id) override;
  absl::StatusOr<WebhookEndpointPage> ListEndpoints(int64_t tenant_id, int page,
                                                    int limit) override;
  absl::StatusOr<WebhookEndpointRecord> UpdateEndpoint(
      int64_t tenant_id, absl::string_view id,
      const WebhookEndpointUpdate& update, const AuditEvent& event,
      bool* changed) override;
  absl::StatusOr<WebhookEndpointRecord> RotateSecret(
      int64_t tenant_id, absl::string_view id, const SealedSecret& secret,
      absl::string_view secret_prefix, absl::Duration overlap,
      const AuditEvent& event) override;
  absl::Status DeleteEndpoint(int64_t tenant_id, absl::string_view id,
                              const AuditEvent& event) override;
  absl::StatusOr<WebhookDeliveryRecord> EnqueuePing(
      int64_t tenant_id, absl::string_view endpoint_id,
      const AuditEvent& event) override;
  absl::StatusOr<DeliveryPage> ListDeliveries(
      int64_t tenant_id, absl::string_view endpoint_id,
      const DeliveryQuery& query) override;
  absl::StatusOr<WebhookEventRecord> GetEvent(
      int64_t tenant_id, absl::string_view event_id) override;
  absl::StatusOr<std::vector<ClaimedDelivery>> ClaimDue(
      int max, absl::Duration lease) override;
  absl::StatusOr<CompletedAttempt> CompleteAttempt(
      const ClaimedDelivery& claim, const AttemptOutcome& outcome,
      const FailurePolicy& policy, const AuditEvent& disable_event) override;
  absl::StatusOr<int64_t> PurgeExpired(
      absl::Duration finished_older_than,
      absl::Duration tallies_older_than) override;
  absl::StatusOr<bool> LeakReported(absl::string_view key_id,
                                    const core::Digest& digest) override;
  absl::StatusOr<bool> RecordLeakReport(const LeakedSecretReport& report,
                                        const AuditEvent& event) override;

 private:
  const std::shared_ptr<ConnectionPool> pool_;
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_WEBHOOK_STORE_H_
