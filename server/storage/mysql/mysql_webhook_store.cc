#include "server/storage/mysql/mysql_webhook_store.h"

#include <cppconn/datatype.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/crypto.h"
#include "server/storage/audit_chain.h"
#include "server/storage/mysql/mysql_session.h"
#include "server/storage/mysql/mysql_webhook_outbox.h"
#include "server/storage/mysql/select_list.h"
#include "server/storage/webhook_outbox.h"

namespace lumo::storage {
namespace {

// ---------------------------------------------------------------------------
// SQL. Values are always bound; spliced text comes from this file only.

struct EndpointColumns {
  explicit EndpointColumns(SelectList& s)
      : id(s.Add("w.id")),
        tenant_id(s.Add("w.tenant_id")),
        url(s.Add("w.url")),
        description(s.Add("w.description")),
        event_types(s.Add("w.event_types")),
        enabled(s.Add("w.enabled")),
        disabled_reason(s.Add("w.disabled_reason")),
        secret_sealed(s.Add("w.secret_sealed")),
        secret_pepper_version(s.Add("w.secret_pepper_version")),
        secret_prefix(s.Add("w.secret_prefix")),
        previous_secret_sealed(s.Add("w.previous_secret_sealed")),
        previous_secret_pepper_version(
            s.Add("w.previous_secret_pepper_version")),
        previous_secret_valid_until(s.Add("w.previous_secret_valid_until")),
        secret_rotated_at(s.Add("w.secret_rotated_at")),
        consecutive_failures(s.Add("w.consecutive_failures")),
        failing_since(s.Add("w.failing_since")),
        version(s.Add("w.version")),
        created_at(s.Add("w.created_at")),
        updated_at(s.Add("w.updated_at")),
        now(s.Add("UTC_TIMESTAMP(6)")) {}
  int id, tenant_id, url, description, event_types, enabled, disabled_reason,
      secret_sealed, secret_pepper_version, secret_prefix,
      previous_secret_sealed, previous_secret_pepper_version,
      previous_secret_valid_until, secret_rotated_at, consecutive_failures,
      failing_since, version, created_at, updated_at, now;
};

struct EndpointSelect {
  SelectList list;
  EndpointColumns endpoint{list};
  std::string by_id = absl::StrCat("SELECT ", list.sql(),
                                   " FROM webhook_endpoints w"
                                   " WHERE w.tenant_id = ? AND w.id = ?");
  std::string lock = absl::StrCat(by_id, " FOR UPDATE");
};

struct EndpointPageSelect {
  SelectList list;
  EndpointColumns endpoint{list};
  int total = list.Add("COUNT(*) OVER ()");
  std::string sql =
      absl::StrCat("SELECT ", list.sql(),
                   " FROM webhook_endpoints w WHERE w.tenant_id = ?"
                   " ORDER BY w.created_at, w.id LIMIT ? OFFSET ?");
};

struct DeliveryColumns {
  explicit DeliveryColumns(SelectList& s)
      : id(s.Add("d.id")),
        tenant_id(s.Add("d.tenant_id")),
        endpoint_id(s.Add("d.endpoint_id")),
        event_id(s.Add("e.event_id")),
        event_type(s.Add("e.event_type")),
        state(s.Add("d.state")),
        attempts(s.Add("d.attempts")),
        next_attempt_at(s.Add("d.next_attempt_at")),
        last_attempt_at(s.Add("d.last_attempt_at")),
        last_http_status(s.Add("d.last_http_status")),
        last_latency_ms(s.Add("d.last_latency_ms")),
        last_error(s.Add("d.last_error")),
        delivered_at(s.Add("d.delivered_at")),
        created_at(s.Add("d.created_at")) {}
  int id, tenant_id, endpoint_id, event_id, event_type, state, attempts,
      next_attempt_at, last_attempt_at, last_http_status, last_latency_ms,
      last_error, delivered_at, created_at;
};

struct DeliverySelect {
  SelectList list;
  DeliveryColumns delivery{list};
  std::string by_id = absl::StrCat(
      "SELECT ", list.sql(),
      " FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_row"
      " WHERE d.id = ?");
};

// One page of an endpoint's delivery log, newest first, walking the
// (endpoint_id, id) index: the filter, then ids below a position (keyset)
// or an offset (page numbers).
struct DeliveryPageSelect {
  SelectList list;
  DeliveryColumns delivery{list};
  std::string Sql(bool by_state, bool before) const {
    return absl::StrCat(
        "SELECT ", list.sql(),
        " FROM webhook_deliveries d JOIN webhook_events e"
        " ON e.id = d.event_row WHERE d.tenant_id = ? AND d.endpoint_id = ?",
        by_state ? " AND d.state = ?" : "", before ? " AND d.id < ?" : "",
        " ORDER BY d.id DESC LIMIT ? OFFSET ?");
  }
};

struct EventColumns {
  explicit EventColumns(SelectList& s)
      : event_id(s.Add("e.event_id")),
        tenant_id(s.Add("e.tenant_id")),
        tenant_slug(s.Add("COALESCE(t.slug, '')")),
        type(s.Add("e.event_type")),
        action(s.Add("e.action")),
        category(s.Add("e.category")),
        actor_type(s.Add("e.actor_type")),
        actor_id(s.Add("e.actor_id")),
        target_type(s.Add("e.target_type")),
        target_id(s.Add("e.target_id")),
        outcome(s.Add("e.outcome")),
        suspicious(s.Add("e.suspicious")),
        ip_address(s.Add("e.ip_address")),
        user_agent(s.Add("e.user_agent")),
        request_id(s.Add("e.request_id")),
        metadata(s.Add("e.metadata")),
        created_at(s.Add("e.created_at")) {}
  int event_id, tenant_id, tenant_slug, type, action, category, actor_type,
      actor_id, target_type, target_id, outcome, suspicious, ip_address,
      user_agent, request_id, metadata, created_at;
};

struct EventSelect {
  SelectList list;
  EventColumns event{list};
  std::string sql = absl::StrCat(
      "SELECT ", list.sql(),
      " FROM webhook_events e LEFT JOIN tenants t ON t.id = e.tenant_id"
      " WHERE e.tenant_id = ? AND e.event_id = ?");
};

// A claimed delivery with its event and endpoint (the endpoint columns are
// NULL when it is gone).
struct ClaimSelect {
  SelectList list;
  int delivery_id = list.Add("d.id");
  int endpoint_id = list.Add("d.endpoint_id");
  int attempts = list.Add("d.attempts");
  EventColumns event{list};
  int endpoint_enabled = list.Add("w.enabled");
  int url = list.Add("w.url");
  int secret_sealed = list.Add("w.secret_sealed");
  int secret_pepper_version = list.Add("w.secret_pepper_version");
  int previous_secret_sealed = list.Add(
      "IF(w.previous_secret_valid_until > UTC_TIMESTAMP(6),"
      " w.previous_secret_sealed, NULL)");
  int previous_secret_pepper_version =
      list.Add("w.previous_secret_pepper_version");
  std::string sql = absl::StrCat(
      "SELECT ", list.sql(),
      " FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_row"
      " LEFT JOIN tenants t ON t.id = e.tenant_id"
      " LEFT JOIN webhook_endpoints w ON w.id = d.endpoint_id"
      " AND w.tenant_id = d.tenant_id WHERE d.id = ?");
};

constexpr char kInsertEndpointSql[] =
    "INSERT INTO webhook_endpoints (id, tenant_id, url, description,"
    " event_types, enabled, disabled_reason, secret_sealed,"
    " secret_pepper_version, secret_prefix, version, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, UTC_TIMESTAMP(6),"
    " UTC_TIMESTAMP(6))";

absl::Status EndpointNotFound() {
  return absl::NotFoundError("webhook endpoint not found");
}

absl::Status ReadEndpoint(const sql::ResultSet& rs, const EndpointColumns& c,
                          WebhookEndpointRecord* out) {
  out->id = rs.getString(c.id).asStdString();
  out->tenant_id = rs.getInt64(c.tenant_id);
  out->url = rs.getString(c.url).asStdString();
  out->description = rs.getString(c.description).asStdString();
  out->event_types = SplitList(rs.getString(c.event_types), ',');
  out->enabled = rs.getInt(c.enabled) != 0;
  out->disabled_reason = rs.getString(c.disabled_reason).asStdString();
  out->secret.sealed = rs.getString(c.secret_sealed).asStdString();
  out->secret.pepper_version = rs.getInt(c.secret_pepper_version);
  out->secret_prefix = rs.getString(c.secret_prefix).asStdString();
  absl::StatusOr<absl::Time> now = GetTime(rs, c.now);
  if (!now.ok()) return now.status();
  absl::StatusOr<std::optional<absl::Time>> previous_until =
      GetOptionalTime(rs, c.previous_secret_valid_until);
  if (!previous_until.ok()) return previous_until.status();
  out->previous_secret.reset();
  out->previous_secret_valid_until.reset();
  if (!rs.isNull(c.previous_secret_sealed) && previous_until->has_value() &&
      **previous_until > *now) {
    out->previous_secret =
        SealedSecret{rs.getString(c.previous_secret_sealed).asStdString(),
                     rs.getInt(c.previous_secret_pepper_version)};
    out->previous_secret_valid_until = *previous_until;
  }
  absl::StatusOr<std::optional<absl::Time>> rotated =
      GetOptionalTime(rs, c.secret_rotated_at);
  if (!rotated.ok()) return rotated.status();
  out->secret_rotated_at = *rotated;
  out->consecutive_failures = rs.getInt(c.consecutive_failures);
  absl::StatusOr<std::optional<absl::Time>> failing =
      GetOptionalTime(rs, c.failing_since);
  if (!failing.ok()) return failing.status();
  out->failing_since = *failing;
  out->version = rs.getInt64(c.version);
  absl::StatusOr<absl::Time> created = GetTime(rs, c.created_at);
  if (!created.ok()) return created.status();
  out->created_at = *created;
  absl::StatusOr<absl::Time> updated = GetTime(rs, c.updated_at);
  if (!updated.ok()) return updated.status();
  out->updated_at = *updated;
  return absl::OkStatus();
}

absl::StatusOr<DeliveryState> ParseState(absl::string_view text) {
  for (DeliveryState s : {DeliveryState::kPending, DeliveryState::kDelivered,
                          DeliveryState::kFailed, DeliveryState::kCancelled}) {
    if (DeliveryStateName(s) == text) return s;
  }
  return absl::InternalError("unknown webhook delivery state");
}

absl::Status ReadDelivery(const sql::ResultSet& rs, const DeliveryColumns& c,
                          WebhookDeliveryRecord* out) {
  out->id = rs.getInt64(c.id);
  out->tenant_id = rs.getInt64(c.tenant_id);
  out->endpoint_id = rs.getString(c.endpoint_id).asStdString();
  out->event_id = rs.getString(c.event_id).asStdString();
  out->event_type = rs.getString(c.event_type).asStdString();
  absl::StatusOr<DeliveryState> state =
      ParseState(rs.getString(c.state).asStdString());
  if (!state.ok()) return state.status();
  out->state = *state;
  out->attempts = rs.getInt(c.attempts);
  absl::StatusOr<absl::Time> next = GetTime(rs, c.next_attempt_at);
  if (!next.ok()) return next.status();
  out->next_attempt_at = *next;
  absl::StatusOr<std::optional<absl::Time>> last =
      GetOptionalTime(rs, c.last_attempt_at);
  if (!last.ok()) return last.status();
  out->last_attempt_at = *last;
  out->last_http_status = rs.getInt(c.last_http_status);
  out->last_latency_ms = rs.getInt(c.last_latency_ms);
  out->last_error = rs.getString(c.last_error).asStdString();
  absl::StatusOr<std::optional<absl::Time>> delivered =
      GetOptionalTime(rs, c.delivered_at);
  if (!delivered.ok()) return delivered.status();
  out->delivered_at = *delivered;
  absl::StatusOr<absl::Time> created = GetTime(rs, c.created_at);
  if (!created.ok()) return created.status();
  out->created_at = *created;
  return absl::OkStatus();
}

absl::Status ReadEvent(const sql::ResultSet& rs, const EventColumns& c,
                       WebhookEventRecord* out) {
  out->event_id = rs.getString(c.event_id).asStdString();
  out->tenant_id = rs.getInt64(c.tenant_id);
  out->tenant_slug = rs.getString(c.tenant_slug).asStdString();
  out->type = rs.getString(c.type).asStdString();
  AuditEvent& a = out->audit;
  a.action = rs.getString(c.action).asStdString();
  a.category = rs.getString(c.category).asStdString();
  a.actor_type = rs.getString(c.actor_type).asStdString();
  a.actor_id = rs.getString(c.actor_id).asStdString();
  a.target_type = rs.getString(c.target_type).asStdString();
  a.target_id = rs.getString(c.target_id).asStdString();
  a.outcome = rs.getString(c.outcome).asStdString();
  a.suspicious = rs.getInt(c.suspicious) != 0;
  a.ip_address = rs.getString(c.ip_address).asStdString();
  a.user_agent = rs.getString(c.user_agent).asStdString();
  a.request_id = rs.getString(c.request_id).asStdString();
  a.metadata_json = rs.getString(c.metadata).asStdString();
  absl::StatusOr<absl::Time> created = GetTime(rs, c.created_at);
  if (!created.ok()) return created.status();
  out->created_at = *created;
  return absl::OkStatus();
}

// Locks and reads the endpoint. NOT_FOUND when there is none.
absl::Status LockEndpoint(Session& s, int64_t tenant_id, absl::string_view id,
                          WebhookEndpointRecord* out) {
  if (!IsWebhookEndpointId(id)) return EndpointNotFound();
  const EndpointSelect& c = SelectOf<EndpointSelect>();
  s.Step("lock webhook endpoint");
  sql::PreparedStatement& stmt = s.Prepare(c.lock);
  stmt.setInt64(1, tenant_id);
  stmt.setString(2, Str(id));
  std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
  if (!rs->next()) return EndpointNotFound();
  return ReadEndpoint(*rs, c.endpoint, out);
}

absl::Status ReadEndpointBack(Session& s, int64_t tenant_id,
                              absl::string_view id,
                              WebhookEndpointRecord* out) {
  const EndpointSelect& c = SelectOf<EndpointSelect>();
  s.Step("read webhook endpoint");
  sql::PreparedStatement& stmt = s.Prepare(c.by_id);
  stmt.setInt64(1, tenant_id);
  stmt.setString(2, Str(id));
  std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
  if (!rs->next()) {
    // A row this transaction has just written is not visible to it: the
    // transaction is gone. On a Galera node that is a transaction aborted
    // by a conflicting write set from another node (a brute-force abort)
    // whose abort this read did not report (seen once, under concurrent
    // endpoint creations of one tenant through three nodes). Raised as the
    // conflict it is: the callers are retry-safe and run again.
    throw sql::SQLException(
        "the transaction lost its own changes to a concurrent commit", "40001",
        1213);
  }
  return ReadEndpoint(*rs, c.endpoint, out);
}

absl::Status ReadDeliveryById(Session& s, int64_t id,
                              WebhookDeliveryRecord* out) {
  const DeliverySelect& c = SelectOf<DeliverySelect>();
  s.Step("read webhook delivery");
  sql::PreparedStatement& stmt = s.Prepare(c.by_id);
  stmt.setInt64(1, id);
  std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
  if (!rs->next()) return absl::InternalError("delivery not found");
  return ReadDelivery(*rs, c.delivery, out);
}

// Cancels the endpoint's pending deliveries.
void CancelPending(Session& s, absl::string_view endpoint_id) {
  s.Step("cancel webhook deliveries");
  sql::PreparedStatement& stmt = s.Prepare(
      "UPDATE webhook_deliveries SET state = 'cancelled', lease_token = ''"
      " WHERE endpoint_id = ? AND state = 'pending'");
  stmt.setString(1, Str(endpoint_id));
  s.Update(stmt);
}

absl::StatusOr<absl::Time> DatabaseNow(Session& s) {
  s.Step("read the clock");
  sql::PreparedStatement& stmt = s.Prepare("SELECT UTC_TIMESTAMP(6)");
  std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
  rs->next();
  return GetTime(*rs, 1);
}

}  // namespace

MysqlWebhookStore::MysqlWebhookStore(std::shared_ptr<ConnectionPool> pool)
    : pool_(std::move(pool)) {}

MysqlWebhookStore::~MysqlWebhookStore() = default;

absl::StatusOr<WebhookEndpointRecord> MysqlWebhookStore::CreateEndpoint(
    const NewWebhookEndpoint& endpoint, int max_endpoints,
    const AuditEvent& event) {
  absl::StatusOr<std::string> types =
      JoinList(endpoint.event_types, ',', "event_types");
  if (!types.ok()) return types.status();
  WebhookEndpointRecord out;
  absl::Status st = Run(
      *pool_, "create webhook endpoint", OnConflict::kRetry, [&](Session& s) {
        s.Begin();
        // A write to the tenant row, not a locking read: it serialises the
        // creations of one tenant on this node (row lock) and, on a Galera
        // cluster, makes concurrent ones through other nodes conflict at
        // certification, so the retried one counts the other's endpoint
        // (docs/replication.md, "Row locks are local to a node").
        s.Step("lock tenant");
        sql::PreparedStatement& lock = s.Prepare(
            "UPDATE tenants SET webhook_endpoint_creations ="
            " webhook_endpoint_creations + 1 WHERE id = ?");
        lock.setInt64(1, endpoint.tenant_id);
        if (s.Update(lock) == 0) {
          return absl::NotFoundError("tenant not found");
        }
        s.Step("count webhook endpoints");
        sql::PreparedStatement& count = s.Prepare(
            "SELECT COUNT(*) FROM webhook_endpoints WHERE tenant_id = ?");
        count.setInt64(1, endpoint.tenant_id);
        {
          std::unique_ptr<sql::ResultSet> rs = s.Query(count);
          rs->next();
          if (rs->getInt64(1) >= max_endpoints) {
            return absl::FailedPreconditionError(absl::StrCat(
                "a tenant has at most ", max_endpoints, " webhook endpoints"));
          }
        }
        s.Step("insert webhook endpoint");
        sql::PreparedStatement& insert = s.Prepare(kInsertEndpointSql);
        insert.setString(1, endpoint.id);
        insert.setInt64(2, endpoint.tenant_id);
        insert.setString(3, endpoint.url);
        insert.setString(4, endpoint.description);
        insert.setString(5, *types);
        insert.setInt(6, endpoint.enabled ? 1 : 0);
        insert.setString(7, endpoint.enabled ? "" : "manual");
        insert.setString(8, endpoint.secret.sealed);
        insert.setInt(9, endpoint.secret.pepper_version);
        insert.setString(10, endpoint.secret_prefix);
        s.Update(insert);
        if (absl::Status a = InsertAudit(s, endpoint.tenant_id, event);
            !a.ok()) {
          return a;
        }
        if (absl::Status r =
                ReadEndpointBack(s, endpoint.tenant_id, endpoint.id, &out);
            !r.ok()) {
          return r;
        }
        s.Commit();
        return absl::OkStatus();
      });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<WebhookEndpointRecord> MysqlWebhookStore::GetEndpoint(
    int64_t tenant_id, absl::string_view id) {
  if (!IsWebhookEndpointId(id)) return EndpointNotFound();
  WebhookEndpointRecord out;
  absl::Status st = Run(*pool_, "get webhook endpoint", [&](Session& s) {
    const EndpointSelect& c = SelectOf<EndpointSelect>();
    s.Step("read webhook endpoint");
    sql::PreparedStatement& stmt = s.Prepare(c.by_id);
    stmt.setInt64(1, tenant_id);
    stmt.setString(2, Str(id));
    std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
    if (!rs->next()) return EndpointNotFound();
    return ReadEndpoint(*rs, c.endpoint, &out);
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<WebhookEndpointPage> MysqlWebhookStore::ListEndpoints(
    int64_t tenant_id, int page, int limit) {
  if (page < 1) return absl::InvalidArgumentError("page must be at least 1");
  if (limit < 1 || limit > 100) {
    return absl::InvalidArgumentError("limit must be between 1 and 100");
  }
  WebhookEndpointPage out;
  absl::Status st = Run(*pool_, "list webhook endpoints", [&](Session& s) {
    out = WebhookEndpointPage();
    const EndpointPageSelect& c = SelectOf<EndpointPageSelect>();
    s.Step("list webhook endpoints");
    sql::PreparedStatement& stmt = s.Prepare(c.sql);
    stmt.setInt64(1, tenant_id);
    stmt.setInt(2, limit);
    stmt.setInt64(3, static_cast<int64_t>(page - 1) * limit);
    std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
    while (rs->next()) {
      WebhookEndpointRecord e;
      if (absl::Status r = ReadEndpoint(*rs, c.endpoint, &e); !r.ok()) {
        return r;
      }
      out.total = rs->getInt64(c.total);
      out.endpoints.push_back(std::move(e));
    }
    if (out.endpoints.empty() && page > 1) {
      s.Step("count webhook endpoints");
      sql::PreparedStatement& count = s.Prepare(
          "SELECT COUNT(*) FROM webhook_endpoints WHERE tenant_id = ?");
      count.setInt64(1, tenant_id);
      std::unique_ptr<sql::ResultSet> crs = s.Query(count);
      crs->next();
      out.total = crs->getInt64(1);
    }
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<WebhookEndpointRecord> MysqlWebhookStore::UpdateEndpoint(
    int64_t tenant_id, absl::string_view id,
    const WebhookEndpointUpdate& update, const AuditEvent& event,
    bool* changed) {
  std::optional<std::string> types;
  if (update.event_types.has_value()) {
    absl::StatusOr<std::string> joined =
        JoinList(*update.event_types, ',', "event_types");
    if (!joined.ok()) return joined.status();
    types = *std::move(joined);
  }
  WebhookEndpointRecord out;
  bool did_change = false;
  absl::Status st = Run(
      *pool_, "update webhook endpoint", OnConflict::kRetry, [&](Session& s) {
        did_change = false;
        s.Begin();
        WebhookEndpointRecord current;
        if (absl::Status l = LockEndpoint(s, tenant_id, id, &current);
            !l.ok()) {
          return l;
        }
        WebhookEndpointRecord next = current;
        if (update.url.has_value()) next.url = *update.url;
        if (update.description.has_value())
          next.description = *update.description;
        if (update.event_types.has_value())
          next.event_types = *update.event_types;
        const bool enabling =
            update.enabled.has_value() && *update.enabled && !current.enabled;
        const bool disabling =
            update.enabled.has_value() && !*update.enabled && current.enabled;
        if (next.url == current.url &&
            next.description == current.description &&
            next.event_types == current.event_types && !enabling &&
            !disabling) {
          out = current;
          s.Rollback();
          return absl::OkStatus();
        }
        s.Step("update webhook endpoint");
        sql::PreparedStatement& stmt = s.Prepare(
            "UPDATE webhook_endpoints SET url = ?, description = ?,"
            " event_types = ?, enabled = ?, disabled_reason = ?,"
            " consecutive_failures = IF(?, 0, consecutive_failures),"
            " failing_since = IF(?, NULL, failing_since),"
            " version = version + 1, updated_at = UTC_TIMESTAMP(6)"
            " WHERE tenant_id = ? AND id = ?");
        const bool enabled = enabling || (current.enabled && !disabling);
        stmt.setString(1, next.url);
        stmt.setString(2, next.description);
        absl::StatusOr<std::string> joined =
            JoinList(next.event_types, ',', "event_types");
        if (!joined.ok()) return joined.status();
        stmt.setString(3, *joined);
        stmt.setInt(4, enabled ? 1 : 0);
        stmt.setString(5, enabled     ? ""
                          : disabling ? "manual"
                                      : current.disabled_reason);
        stmt.setInt(6, enabling ? 1 : 0);
        stmt.setInt(7, enabling ? 1 : 0);
        stmt.setInt64(8, tenant_id);
        stmt.setString(9, Str(id));
        s.Update(stmt);
        if (absl::Status a = InsertAudit(s, tenant_id, event); !a.ok())
          return a;
        if (disabling) CancelPending(s, id);
        if (absl::Status r = ReadEndpointBack(s, tenant_id, id, &out);
            !r.ok()) {
          return r;
        }
        s.Commit();
        did_change = true;
        return absl::OkStatus();
      });
  if (!st.ok()) return st;
  if (changed != nullptr) *changed = did_change;
  return out;
}

absl::StatusOr<WebhookEndpointRecord> MysqlWebhookStore::RotateSecret(
    int64_t tenant_id, absl::string_view id, const SealedSecret& secret,
    absl::string_view secret_prefix, absl::Duration overlap,
    const AuditEvent& event) {
  WebhookEndpointRecord out;
  absl::Status st =
      Run(*pool_, "rotate webhook secret", OnConflict::kRetry, [&](Session& s) {
        s.Begin();
        WebhookEndpointRecord current;
        if (absl::Status l = LockEndpoint(s, tenant_id, id, &current);
            !l.ok()) {
          return l;
        }
        const bool keep = overlap > absl::ZeroDuration();
        s.Step("rotate webhook secret");
        sql::PreparedStatement& stmt = s.Prepare(
            "UPDATE webhook_endpoints SET"
            " previous_secret_sealed = IF(?, secret_sealed, NULL),"
            " previous_secret_pepper_version = IF(?, secret_pepper_version, "
            "NULL),"
            " previous_secret_valid_until = IF(?, UTC_TIMESTAMP(6) +"
            " INTERVAL ? MICROSECOND, NULL),"
            " secret_sealed = ?, secret_pepper_version = ?, secret_prefix = ?,"
            " secret_rotated_at = UTC_TIMESTAMP(6), version = version + 1,"
            " updated_at = UTC_TIMESTAMP(6) WHERE tenant_id = ? AND id = ?");
        stmt.setInt(1, keep ? 1 : 0);
        stmt.setInt(2, keep ? 1 : 0);
        stmt.setInt(3, keep ? 1 : 0);
        stmt.setInt64(4, absl::ToInt64Microseconds(overlap));
        stmt.setString(5, secret.sealed);
        stmt.setInt(6, secret.pepper_version);
        stmt.setString(7, Str(secret_prefix));
        stmt.setInt64(8, tenant_id);
        stmt.setString(9, Str(id));
        s.Update(stmt);
        if (absl::Status a = InsertAudit(s, tenant_id, event); !a.ok())
          return a;
        if (absl::Status r = ReadEndpointBack(s, tenant_id, id, &out);
            !r.ok()) {
          return r;
        }
        s.Commit();
        return absl::OkStatus();
      });
  if (!st.ok()) return st;
  return out;
}

absl::Status MysqlWebhookStore::DeleteEndpoint(int64_t tenant_id,
                                               absl::string_view id,
                                               const AuditEvent& event) {
  return Run(
      *pool_, "delete webhook endpoint", OnConflict::kRetry, [&](Session& s) {
        s.Begin();
        WebhookEndpointRecord current;
        if (absl::Status l = LockEndpoint(s, tenant_id, id, &current);
            !l.ok()) {
          return l;
        }
        s.Step("delete webhook endpoint");
        sql::PreparedStatement& del = s.Prepare(
            "DELETE FROM webhook_endpoints WHERE tenant_id = ? AND id = ?");
        del.setInt64(1, tenant_id);
        del.setString(2, Str(id));
        s.Update(del);
        if (absl::Status a = InsertAudit(s, tenant_id, event); !a.ok())
          return a;
        s.Step("delete webhook deliveries");
        sql::PreparedStatement& deliveries =
            s.Prepare("DELETE FROM webhook_deliveries WHERE endpoint_id = ?");
        deliveries.setString(1, Str(id));
        s.Update(deliveries);
        s.Commit();
        return absl::OkStatus();
      });
}

absl::StatusOr<WebhookDeliveryRecord> MysqlWebhookStore::EnqueuePing(
    int64_t tenant_id, absl::string_view endpoint_id, const AuditEvent& event) {
  WebhookDeliveryRecord out;
  absl::Status st =
      Run(*pool_, "enqueue webhook ping", OnConflict::kRetry, [&](Session& s) {
        s.Begin();
        WebhookEndpointRecord endpoint;
        if (absl::Status l = LockEndpoint(s, tenant_id, endpoint_id, &endpoint);
            !l.ok()) {
          return l;
        }
        if (!endpoint.enabled) {
          return absl::FailedPreconditionError("the endpoint is disabled");
        }
        if (absl::Status a = InsertAudit(s, tenant_id, event); !a.ok())
          return a;
        absl::StatusOr<absl::Time> now = DatabaseNow(s);
        if (!now.ok()) return now.status();
        AuditEvent ping = event;
        NormalizeAuditEvent(ping);
        OutboxWriter outbox(s);
        absl::StatusOr<int64_t> row =
            outbox.InsertEvent(tenant_id, kWebhookPingType, ping, *now);
        if (!row.ok()) return row.status();
        absl::StatusOr<int64_t> delivery =
            outbox.InsertDelivery(tenant_id, endpoint_id, *row, *now);
        if (!delivery.ok()) return delivery.status();
        if (absl::Status r = ReadDeliveryById(s, *delivery, &out); !r.ok()) {
          return r;
        }
        s.Commit();
        return absl::OkStatus();
      });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<DeliveryPage> MysqlWebhookStore::ListDeliveries(
    int64_t tenant_id, absl::string_view endpoint_id,
    const DeliveryQuery& query) {
  if (query.page < 1) {
    return absl::InvalidArgumentError("page must be at least 1");
  }
  if (query.limit < 1 || query.limit > 100) {
    return absl::InvalidArgumentError("limit must be between 1 and 100");
  }
  if (query.before_id.has_value() && query.page != 1) {
    return absl::InvalidArgumentError("a position needs page 1");
  }
  if (!IsWebhookEndpointId(endpoint_id)) return EndpointNotFound();
  DeliveryPage out;
  absl::Status st = Run(*pool_, "list webhook deliveries", [&](Session& s) {
    out = DeliveryPage();
    s.Step("find webhook endpoint");
    sql::PreparedStatement& exists = s.Prepare(
        "SELECT 1 FROM webhook_endpoints WHERE tenant_id = ? AND id = ?");
    exists.setInt64(1, tenant_id);
    exists.setString(2, Str(endpoint_id));
    {
      std::unique_ptr<sql::ResultSet> rs = s.Query(exists);
      if (!rs->next()) return EndpointNotFound();
    }
    const bool by_state = query.state.has_value();
    const DeliveryPageSelect& c = SelectOf<DeliveryPageSelect>();
    s.Step("list webhook deliveries");
    // One row more than the page says whether another follows.
    sql::PreparedStatement& stmt =
        s.Prepare(c.Sql(by_state, query.before_id.has_value()));
    int p = 1;
    stmt.setInt64(p++, tenant_id);
    stmt.setString(p++, Str(endpoint_id));
    if (by_state) stmt.setString(p++, Str(DeliveryStateName(*query.state)));
    if (query.before_id.has_value()) stmt.setInt64(p++, *query.before_id);
    stmt.setInt(p++, query.limit + 1);
    stmt.setInt64(p++, static_cast<int64_t>(query.page - 1) * query.limit);
    std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
    while (rs->next()) {
      if (out.deliveries.size() == static_cast<size_t>(query.limit)) {
        out.has_more = true;
        break;
      }
      WebhookDeliveryRecord d;
      if (absl::Status r = ReadDelivery(*rs, c.delivery, &d); !r.ok()) {
        return r;
      }
      out.deliveries.push_back(std::move(d));
    }
    if (!query.count.wanted) {
      out.total_kind = TotalKind::kNotCounted;
      return absl::OkStatus();
    }
    // A capped count reads at most cap + 1 index entries.
    s.Step("count webhook deliveries");
    sql::PreparedStatement& count = s.Prepare(
        absl::StrCat("SELECT COUNT(*) FROM (SELECT 1 FROM webhook_deliveries d"
                     " WHERE d.tenant_id = ? AND d.endpoint_id = ?",
                     by_state ? " AND d.state = ?" : "",
                     query.count.cap > 0 ? " LIMIT ?" : "", ") AS matching"));
    p = 1;
    count.setInt64(p++, tenant_id);
    count.setString(p++, Str(endpoint_id));
    if (by_state) count.setString(p++, Str(DeliveryStateName(*query.state)));
    if (query.count.cap > 0) count.setInt64(p++, query.count.cap + 1);
    std::unique_ptr<sql::ResultSet> crs = s.Query(count);
    crs->next();
    const CountedTotal total = TotalOf(query.count, crs->getInt64(1));
    out.total = total.total;
    out.total_kind = total.kind;
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<int64_t> MysqlWebhookStore::PurgeExpired(
    absl::Duration finished_older_than, absl::Duration tallies_older_than) {
  if (finished_older_than <= absl::ZeroDuration() ||
      tallies_older_than <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("retention must be positive");
  }
  // Each statement deletes at most this many rows (index range scans:
  // idx_webhook_deliveries_created, idx_webhook_events_created with the
  // event_row foreign key index, idx_previous_secret_uses_rotated).
  constexpr int kChunk = 1000;
  struct Purge {
    const char* step;
    std::string sql;
    absl::Duration older_than;
  };
  const std::string limit = absl::StrCat(" LIMIT ", kChunk);
  const Purge purges[] = {
      {"purge finished webhook deliveries",
       absl::StrCat("DELETE FROM webhook_deliveries WHERE created_at <"
                    " UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND AND state IN"
                    " ('delivered', 'failed', 'cancelled')",
                    limit),
       finished_older_than},
      {"purge delivered webhook events",
       absl::StrCat("DELETE FROM webhook_events WHERE created_at <"
                    " UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND AND NOT"
                    " EXISTS (SELECT 1 FROM webhook_deliveries d"
                    " WHERE d.event_row = webhook_events.id)",
                    limit),
       finished_older_than},
      {"purge previous secret tallies",
       absl::StrCat("DELETE FROM previous_secret_uses WHERE rotated_at <"
                    " UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND",
                    limit),
       tallies_older_than},
  };
  int64_t deleted = 0;
  for (const Purge& purge : purges) {
    for (;;) {
      uint64_t n = 0;
      absl::Status st = Run(*pool_, purge.step, [&](Session& s) {
        s.Step(purge.step);
        sql::PreparedStatement& stmt = s.Prepare(purge.sql);
        stmt.setInt64(1, absl::ToInt64Microseconds(purge.older_than));
        n = s.Update(stmt);
        return absl::OkStatus();
      });
      if (!st.ok()) return st;
      deleted += static_cast<int64_t>(n);
      if (n < static_cast<uint64_t>(kChunk)) break;
    }
  }
  return deleted;
}

absl::StatusOr<WebhookEventRecord> MysqlWebhookStore::GetEvent(
    int64_t tenant_id, absl::string_view event_id) {
  if (!IsWebhookEventId(event_id)) {
    return absl::NotFoundError("webhook event not found");
  }
  WebhookEventRecord out;
  absl::Status st = Run(*pool_, "get webhook event", [&](Session& s) {
    const EventSelect& c = SelectOf<EventSelect>();
    s.Step("read webhook event");
    sql::PreparedStatement& stmt = s.Prepare(c.sql);
    stmt.setInt64(1, tenant_id);
    stmt.setString(2, Str(event_id));
    std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
    if (!rs->next()) return absl::NotFoundError("webhook event not found");
    return ReadEvent(*rs, c.event, &out);
  });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<std::vector<ClaimedDelivery>> MysqlWebhookStore::ClaimDue(
    int max, absl::Duration lease) {
  if (max < 1) return absl::InvalidArgumentError("max must be at least 1");
  std::vector<ClaimedDelivery> out;
  absl::Status st = Run(
      *pool_, "claim webhook deliveries", OnConflict::kRetry, [&](Session& s) {
        out.clear();
        s.Begin();
        // The first statement of the transaction, and a locking one: the
        // consistent reads below get their snapshot after it, so they see every
        // row it locked.
        s.Step("lock due deliveries");
        sql::PreparedStatement& due = s.Prepare(
            "SELECT id FROM webhook_deliveries WHERE state = 'pending'"
            " AND next_attempt_at <= UTC_TIMESTAMP(6)"
            " ORDER BY next_attempt_at, id LIMIT ? FOR UPDATE SKIP LOCKED");
        due.setInt(1, max);
        std::vector<int64_t> ids;
        {
          std::unique_ptr<sql::ResultSet> rs = s.Query(due);
          while (rs->next()) ids.push_back(rs->getInt64(1));
        }
        if (ids.empty()) {
          s.Rollback();
          return absl::OkStatus();
        }
        const ClaimSelect& c = SelectOf<ClaimSelect>();
        for (int64_t id : ids) {
          s.Step("read claimed delivery");
          sql::PreparedStatement& read = s.Prepare(c.sql);
          read.setInt64(1, id);
          std::unique_ptr<sql::ResultSet> rs = s.Query(read);
          if (!rs->next())
            return absl::InternalError("claimed delivery vanished");
          if (rs->isNull(c.endpoint_enabled) ||
              rs->getInt(c.endpoint_enabled) == 0) {
            rs.reset();
            s.Step("cancel delivery");
            sql::PreparedStatement& cancel = s.Prepare(
                "UPDATE webhook_deliveries SET state = 'cancelled',"
                " lease_token = '' WHERE id = ?");
            cancel.setInt64(1, id);
            s.Update(cancel);
            continue;
          }
          ClaimedDelivery claim;
          claim.delivery_id = id;
          claim.endpoint_id = rs->getString(c.endpoint_id).asStdString();
          claim.attempt = rs->getInt(c.attempts) + 1;
          if (absl::Status r = ReadEvent(*rs, c.event, &claim.event); !r.ok()) {
            return r;
          }
          claim.url = rs->getString(c.url).asStdString();
          claim.secret =
              SealedSecret{rs->getString(c.secret_sealed).asStdString(),
                           rs->getInt(c.secret_pepper_version)};
          if (!rs->isNull(c.previous_secret_sealed)) {
            claim.previous_secret = SealedSecret{
                rs->getString(c.previous_secret_sealed).asStdString(),
                rs->getInt(c.previous_secret_pepper_version)};
          }
          rs.reset();
          absl::StatusOr<std::string> token = core::RandomBase62(22);
          if (!token.ok()) return token.status();
          claim.lease_token = *token;
          s.Step("claim delivery");
          sql::PreparedStatement& take = s.Prepare(
              "UPDATE webhook_deliveries SET lease_token = ?,"
              " attempts = attempts + 1,"
              " next_attempt_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND"
              " WHERE id = ?");
          take.setString(1, claim.lease_token);
          take.setInt64(2, absl::ToInt64Microseconds(lease));
          take.setInt64(3, id);
          s.Update(take);
          out.push_back(std::move(claim));
        }
        s.Commit();
        return absl::OkStatus();
      });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<CompletedAttempt> MysqlWebhookStore::CompleteAttempt(
    const ClaimedDelivery& claim, const AttemptOutcome& outcome,
    const FailurePolicy& policy, const AuditEvent& disable_event) {
  CompletedAttempt out;
  absl::Status st = Run(
      *pool_, "complete webhook attempt", OnConflict::kRetry, [&](Session& s) {
        out = CompletedAttempt();
        s.Begin();
        WebhookEndpointRecord endpoint;
        absl::Status locked = LockEndpoint(s, claim.event.tenant_id,
                                           claim.endpoint_id, &endpoint);
        if (absl::IsNotFound(locked)) {
          s.Rollback();
          return absl::OkStatus();
        }
        if (!locked.ok()) return locked;
        s.Step("lock delivery");
        sql::PreparedStatement& lock = s.Prepare(
            "SELECT d.state, d.lease_token, e.created_at, UTC_TIMESTAMP(6)"
            " FROM webhook_deliveries d JOIN webhook_events e"
            " ON e.id = d.event_row WHERE d.id = ? FOR UPDATE");
        lock.setInt64(1, claim.delivery_id);
        absl::Time event_created, now;
        {
          std::unique_ptr<sql::ResultSet> rs = s.Query(lock);
          if (!rs->next() || rs->getString(1).asStdString() != "pending" ||
              rs->getString(2).asStdString() != claim.lease_token) {
            rs.reset();
            s.Rollback();
            return absl::OkStatus();
          }
          absl::StatusOr<absl::Time> created = GetTime(*rs, 3);
          if (!created.ok()) return created.status();
          absl::StatusOr<absl::Time> clock = GetTime(*rs, 4);
          if (!clock.ok()) return clock.status();
          event_created = *created;
          now = *clock;
        }
        out.applied = true;
        const int latency_ms = static_cast<int>(std::min<int64_t>(
            absl::ToInt64Milliseconds(outcome.latency), 1 << 30));
        std::string error = outcome.error.substr(0, 255);
        if (outcome.delivered) {
          out.state = DeliveryState::kDelivered;
        } else if (now - event_created > policy.retry_window) {
          out.state = DeliveryState::kFailed;
        } else {
          out.state = DeliveryState::kPending;
        }
        s.Step("record attempt");
        sql::PreparedStatement& record = s.Prepare(
            "UPDATE webhook_deliveries SET state = ?, lease_token = '',"
            " last_attempt_at = ?, last_http_status = ?, last_latency_ms = ?,"
            " last_error = ?, delivered_at = ?, next_attempt_at = ?"
            " WHERE id = ?");
        record.setString(1, Str(DeliveryStateName(out.state)));
        if (absl::Status b = BindTime(record, 2, now); !b.ok()) return b;
        record.setInt(3, outcome.http_status);
        record.setInt(4, latency_ms);
        record.setString(5, outcome.delivered ? "" : error);
        if (absl::Status b =
                BindTime(record, 6,
                         outcome.delivered ? std::optional<absl::Time>(now)
                                           : std::nullopt);
            !b.ok()) {
          return b;
        }
        const absl::Time next =
            out.state == DeliveryState::kPending ? now + outcome.retry_in : now;
        if (absl::Status b = BindTime(record, 7, next); !b.ok()) return b;
        record.setInt64(8, claim.delivery_id);
        s.Update(record);

        if (outcome.delivered) {
          s.Step("reset endpoint failures");
          sql::PreparedStatement& reset = s.Prepare(
              "UPDATE webhook_endpoints SET consecutive_failures = 0,"
              " failing_since = NULL WHERE id = ?");
          reset.setString(1, claim.endpoint_id);
          s.Update(reset);
          s.Commit();
          return absl::OkStatus();
        }
        const int32_t failures = endpoint.consecutive_failures + 1;
        const absl::Time failing_since = endpoint.failing_since.value_or(now);
        const bool disable = endpoint.enabled &&
                             failures >= policy.disable_after_failures &&
                             now - failing_since >= policy.disable_after;
        s.Step("count endpoint failure");
        sql::PreparedStatement& fail = s.Prepare(
            "UPDATE webhook_endpoints SET consecutive_failures = ?,"
            " failing_since = ?, enabled = IF(?, 0, enabled),"
            " disabled_reason = IF(?, 'failures', disabled_reason),"
            " version = version + IF(?, 1, 0),"
            " updated_at = IF(?, UTC_TIMESTAMP(6), updated_at) WHERE id = ?");
        fail.setInt(1, failures);
        if (absl::Status b = BindTime(fail, 2, failing_since); !b.ok())
          return b;
        for (int i = 3; i <= 6; ++i) fail.setInt(i, disable ? 1 : 0);
        fail.setString(7, claim.endpoint_id);
        s.Update(fail);
        if (disable) {
          if (absl::Status a =
                  InsertAudit(s, claim.event.tenant_id, disable_event);
              !a.ok()) {
            return a;
          }
          CancelPending(s, claim.endpoint_id);
          out.endpoint_disabled = true;
        }
        s.Commit();
        return absl::OkStatus();
      });
  if (!st.ok()) return st;
  return out;
}

absl::StatusOr<bool> MysqlWebhookStore::LeakReported(
    absl::string_view key_id, const core::Digest& digest) {
  bool found = false;
  absl::Status st = Run(*pool_, "read leak report", [&](Session& s) {
    s.Step("read leak report");
    sql::PreparedStatement& stmt = s.Prepare(
        "SELECT 1 FROM leaked_secret_reports WHERE key_id = ? AND digest "
        "= ?");
    stmt.setString(1, Str(key_id));
    stmt.setString(2, std::string(core::AsStringView(digest)));
    std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
    found = rs->next();
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return found;
}

absl::StatusOr<bool> MysqlWebhookStore::RecordLeakReport(
    const LeakedSecretReport& report, const AuditEvent& event) {
  if (report.url.size() > 2048 || report.source.size() > 64) {
    return absl::InvalidArgumentError("leak report url or source too long");
  }
  absl::Status st =
      Run(*pool_, "record leak report", OnConflict::kRetry, [&](Session& s) {
        s.Begin();
        s.Step("insert leak report");
        sql::PreparedStatement& insert = s.Prepare(
            "INSERT INTO leaked_secret_reports (key_id, digest, tenant_id, "
            "url, source, reported_at) VALUES (?, ?, ?, ?, ?, "
            "UTC_TIMESTAMP(6))");
        insert.setString(1, Str(report.key_id));
        insert.setString(2,
                         std::string(core::AsStringView(report.secret_digest)));
        insert.setInt64(3, report.tenant_id);
        insert.setString(4, Str(report.url));
        insert.setString(5, Str(report.source));
        s.Update(insert);
        if (absl::Status a = InsertAudit(s, report.tenant_id, event); !a.ok()) {
          return a;
        }
        s.Commit();
        return absl::OkStatus();
      });
  // The primary key (key id, digest) admits one report per secret.
  if (absl::IsAlreadyExists(st)) return false;
  if (!st.ok()) return st;
  return true;
}

}  // namespace lumo::storage
