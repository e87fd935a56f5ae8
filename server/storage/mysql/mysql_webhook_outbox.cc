#include "server/storage/mysql/mysql_webhook_outbox.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/storage/mysql/select_list.h"
#include "server/storage/webhook_outbox.h"

namespace lumo::storage {
namespace {

struct EnabledEndpointSelect {
  SelectList list;
  int id = list.Add("id");
  int event_types = list.Add("event_types");
  std::string sql = absl::StrCat(
      "SELECT ", list.sql(),
      " FROM webhook_endpoints WHERE tenant_id = ? AND enabled = 1");
};

constexpr char kInsertEventSql[] =
    "INSERT INTO webhook_events (event_id, tenant_id, event_type, action,"
    " category, actor_type, actor_id, target_type, target_id, outcome,"
    " suspicious, ip_address, user_agent, request_id, metadata, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

constexpr char kInsertDeliverySql[] =
    "INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_row,"
    " state, attempts, next_attempt_at, created_at)"
    " VALUES (?, ?, ?, 'pending', 0, ?, ?)";

int64_t LastInsertId(Session& s) {
  sql::PreparedStatement& stmt = s.Prepare("SELECT LAST_INSERT_ID()");
  std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
  rs->next();
  return rs->getInt64(1);
}

}  // namespace

absl::Status OutboxWriter::QueueEndpointsRead(int64_t tenant_id,
                                              const AuditEvent& event) {
  if (tenant_id <= 0 || WebhookEventTypeOf(event).empty()) {
    return absl::OkStatus();
  }
  if (endpoints_->count(tenant_id) > 0 || queued_.count(tenant_id) > 0) {
    return absl::OkStatus();
  }
  const EnabledEndpointSelect& c = SelectOf<EnabledEndpointSelect>();
  SqlValues values;
  values.Int(tenant_id);
  std::shared_ptr<EndpointsOf> endpoints = endpoints_;
  if (absl::Status st = session_.DeferQuery(
          "read webhook endpoints", c.sql, values,
          [endpoints, tenant_id, &c](sql::ResultSet& rs) {
            std::vector<Endpoint>& out = (*endpoints)[tenant_id];
            out.clear();
            while (rs.next()) {
              out.push_back(
                  Endpoint{rs.getString(c.id).asStdString(),
                           SplitList(rs.getString(c.event_types), ',')});
            }
          });
      !st.ok()) {
    return st;
  }
  queued_.insert(tenant_id);
  return absl::OkStatus();
}

absl::StatusOr<const std::vector<OutboxWriter::Endpoint>*>
OutboxWriter::EnabledEndpoints(int64_t tenant_id) {
  auto it = endpoints_->find(tenant_id);
  if (it != endpoints_->end()) return &it->second;
  const EnabledEndpointSelect& c = SelectOf<EnabledEndpointSelect>();
  SqlValues values;
  values.Int(tenant_id);
  absl::StatusOr<std::unique_ptr<sql::ResultSet>> rows =
      session_.QueryWithQueued("read webhook endpoints", c.sql, values);
  if (!rows.ok()) return rows.status();
  std::unique_ptr<sql::ResultSet>& rs = *rows;
  // A read of this tenant still queued ran in the same round trip, before
  // this one: this read replaces what it filled in.
  std::vector<Endpoint>& out = (*endpoints_)[tenant_id];
  out.clear();
  while (rs->next()) {
    out.push_back(Endpoint{rs->getString(c.id).asStdString(),
                           SplitList(rs->getString(c.event_types), ',')});
  }
  return &out;
}

absl::Status OutboxWriter::Add(int64_t tenant_id, const AuditEvent& event,
                               absl::Time created_at) {
  if (tenant_id <= 0) return absl::OkStatus();
  const std::string type = WebhookEventTypeOf(event);
  if (type.empty()) return absl::OkStatus();
  std::vector<const Endpoint*> receivers;
  absl::StatusOr<const std::vector<Endpoint>*> endpoints =
      EnabledEndpoints(tenant_id);
  if (!endpoints.ok()) return endpoints.status();
  for (const Endpoint& e : **endpoints) {
    if (WebhookSubscribes(e.event_types, type)) receivers.push_back(&e);
  }
  if (receivers.empty()) return absl::OkStatus();
  absl::StatusOr<int64_t> row = InsertEvent(tenant_id, type, event, created_at);
  if (!row.ok()) return row.status();
  for (const Endpoint* e : receivers) {
    absl::StatusOr<int64_t> delivery =
        InsertDelivery(tenant_id, e->id, *row, created_at);
    if (!delivery.ok()) return delivery.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> OutboxWriter::InsertEvent(int64_t tenant_id,
                                                  absl::string_view type,
                                                  const AuditEvent& event,
                                                  absl::Time created_at) {
  absl::StatusOr<std::string> event_id = NewWebhookEventId();
  if (!event_id.ok()) return event_id.status();
  session_.Step("insert webhook event");
  sql::PreparedStatement& stmt = session_.Prepare(kInsertEventSql);
  stmt.setString(1, *event_id);
  stmt.setInt64(2, tenant_id);
  stmt.setString(3, Str(type));
  BindAuditFields(stmt, 4, event);
  if (absl::Status st = BindTime(stmt, 16, created_at); !st.ok()) return st;
  session_.Update(stmt);
  return LastInsertId(session_);
}

absl::StatusOr<int64_t> OutboxWriter::InsertDelivery(
    int64_t tenant_id, absl::string_view endpoint_id, int64_t event_row,
    absl::Time due) {
  session_.Step("insert webhook delivery");
  sql::PreparedStatement& stmt = session_.Prepare(kInsertDeliverySql);
  stmt.setInt64(1, tenant_id);
  stmt.setString(2, Str(endpoint_id));
  stmt.setInt64(3, event_row);
  if (absl::Status st = BindTime(stmt, 4, due); !st.ok()) return st;
  if (absl::Status st = BindTime(stmt, 5, due); !st.ok()) return st;
  session_.Update(stmt);
  session_.NoteOutboxWrite();
  return LastInsertId(session_);
}

}  // namespace lumo::storage
