// The webhook outbox on MySQL/MariaDB (docs/webhooks.md "The outbox"): the
// webhook event and its deliveries, inserted in the transaction of the
// audit event they carry. Used by InsertAudit (mysql_session.cc) and the
// batched MysqlAuditStore::AppendEvents. Only storage/mysql includes this
// header.
//
// The endpoints are read with a consistent (non-locking) read and the
// deliveries have no foreign key to them, so an audit append never waits
// on an endpoint row: a delivery inserted for an endpoint that a
// concurrent change disables is cancelled when claimed.
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_WEBHOOK_OUTBOX_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_WEBHOOK_OUTBOX_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/storage/key_store.h"
#include "server/storage/mysql/mysql_session.h"

namespace lumo::storage {

// Adds the webhooks of the audit events of one transaction. Reads each
// tenant's enabled endpoints at most once. Not thread-safe (one per
// transaction).
class OutboxWriter {
 public:
  explicit OutboxWriter(Session& session) : session_(session) {}

  // When `event` (normalized, as stored) is a webhook event: queues the read
  // of the enabled endpoints of `tenant_id` (Session::DeferQuery), so that
  // it goes with the transaction's next round trip instead of one of its
  // own, and Add uses what it read. Reads nothing else; a tenant already
  // read or queued is not queued again.
  absl::Status QueueEndpointsRead(int64_t tenant_id, const AuditEvent& event);

  // When `event` (normalized, as stored) is a webhook event and endpoints
  // of `tenant_id` that are enabled receive its type: one webhook_events
  // row created at `created_at` and one pending delivery per endpoint, due
  // at `created_at`. Throws sql::SQLException like every Session statement.
  absl::Status Add(int64_t tenant_id, const AuditEvent& event,
                   absl::Time created_at);

  // Inserts the event row of `type` for `event` and returns its row id.
  // Throws sql::SQLException.
  absl::StatusOr<int64_t> InsertEvent(int64_t tenant_id, absl::string_view type,
                                      const AuditEvent& event,
                                      absl::Time created_at);
  // One pending delivery of event row `event_row` to `endpoint_id`, due at
  // `due`; returns its id. Throws sql::SQLException.
  absl::StatusOr<int64_t> InsertDelivery(int64_t tenant_id,
                                         absl::string_view endpoint_id,
                                         int64_t event_row, absl::Time due);

 private:
  struct Endpoint {
    std::string id;
    std::vector<std::string> event_types;
  };
  using EndpointsOf = std::map<int64_t, std::vector<Endpoint>>;
  // Read once per tenant: queued (QueueEndpointsRead) or, when it was not,
  // in the round trip that sends the statements the transaction queued
  // before (Session::QueryWithQueued).
  absl::StatusOr<const std::vector<Endpoint>*> EnabledEndpoints(
      int64_t tenant_id);

  Session& session_;
  // Shared with the readers of queued reads, which may run after this
  // writer is gone (a batch sent later, or never).
  std::shared_ptr<EndpointsOf> endpoints_ = std::make_shared<EndpointsOf>();
  std::set<int64_t> queued_;
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_WEBHOOK_OUTBOX_H_
