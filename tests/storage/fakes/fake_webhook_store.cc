#include "tests/storage/fakes/fake_webhook_store.h"

#include <algorithm>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/core/crypto.h"
#include "server/storage/audit_chain.h"
#include "server/storage/webhook_outbox.h"

namespace lumo::testing {
namespace {

using storage::AuditEvent;
using storage::ClaimedDelivery;
using storage::DeliveryState;
using storage::WebhookDeliveryRecord;
using storage::WebhookEndpointRecord;

absl::Status EndpointNotFound() {
  return absl::NotFoundError("webhook endpoint not found");
}

// The endpoint as readers see it at `now`: the previous secret only while
// it still signs.
WebhookEndpointRecord Visible(const WebhookEndpointRecord& stored,
                              absl::Time now) {
  WebhookEndpointRecord out = stored;
  if (!out.previous_secret_valid_until.has_value() ||
      *out.previous_secret_valid_until <= now) {
    out.previous_secret.reset();
    out.previous_secret_valid_until.reset();
  }
  return out;
}

FakeDatabase::WebhookEndpointRow* Find(FakeDatabase& db, int64_t tenant_id,
                                       absl::string_view id)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(db.mu) {
  if (!storage::IsWebhookEndpointId(id)) return nullptr;
  auto it = db.webhook_endpoints.find(std::string(id));
  if (it == db.webhook_endpoints.end() ||
      it->second.endpoint.tenant_id != tenant_id) {
    return nullptr;
  }
  return &it->second;
}

WebhookDeliveryRecord DeliveryOf(const FakeDatabase& db,
                                 const FakeDatabase::WebhookDeliveryRow& row)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(db.mu) {
  WebhookDeliveryRecord out = row.delivery;
  const storage::WebhookEventRecord& event =
      db.webhook_events.at(row.event_row);
  out.event_id = event.event_id;
  out.event_type = event.type;
  return out;
}

void CancelPending(FakeDatabase& db, absl::string_view endpoint_id)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(db.mu) {
  for (auto& [id, row] : db.webhook_deliveries) {
    if (row.delivery.endpoint_id == endpoint_id &&
        row.delivery.state == DeliveryState::kPending) {
      row.delivery.state = DeliveryState::kCancelled;
      row.lease_token.clear();
    }
  }
}

storage::WebhookEventRecord EventWithSlug(const FakeDatabase& db,
                                          int64_t event_row)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(db.mu) {
  storage::WebhookEventRecord out = db.webhook_events.at(event_row);
  auto tenant = db.tenants.find(out.tenant_id);
  if (tenant != db.tenants.end()) out.tenant_slug = tenant->second.slug;
  return out;
}

}  // namespace

absl::StatusOr<WebhookEndpointRecord> FakeWebhookStore::CreateEndpoint(
    const storage::NewWebhookEndpoint& endpoint, int max_endpoints,
    const AuditEvent& event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (absl::Status s = CheckList(endpoint.event_types, ',', "event_types");
      !s.ok()) {
    return s;
  }
  absl::MutexLock lock(&db_->mu);
  if (db_->tenants.find(endpoint.tenant_id) == db_->tenants.end()) {
    return absl::NotFoundError("tenant not found");
  }
  int count = 0;
  for (const auto& [id, row] : db_->webhook_endpoints) {
    if (row.endpoint.tenant_id == endpoint.tenant_id) ++count;
  }
  if (count >= max_endpoints) {
    return absl::FailedPreconditionError(absl::StrCat(
        "a tenant has at most ", max_endpoints, " webhook endpoints"));
  }
  if (db_->webhook_endpoints.count(endpoint.id) != 0) {
    return absl::AlreadyExistsError("create webhook endpoint: id taken");
  }
  WebhookEndpointRecord& r = db_->webhook_endpoints[endpoint.id].endpoint;
  r.id = endpoint.id;
  r.tenant_id = endpoint.tenant_id;
  r.url = endpoint.url;
  r.description = endpoint.description;
  r.event_types = endpoint.event_types;
  r.enabled = endpoint.enabled;
  r.disabled_reason = endpoint.enabled ? "" : "manual";
  r.secret = endpoint.secret;
  r.secret_prefix = endpoint.secret_prefix;
  r.version = 1;
  r.created_at = r.updated_at = db_->Now();
  const WebhookEndpointRecord out = r;
  db_->AppendAudit(endpoint.tenant_id, storage::NextTransactionChainLane(),
                   event);
  return Visible(out, db_->Now());
}

absl::StatusOr<WebhookEndpointRecord> FakeWebhookStore::GetEndpoint(
    int64_t tenant_id, absl::string_view id) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const FakeDatabase::WebhookEndpointRow* row = Find(*db_, tenant_id, id);
  if (row == nullptr) return EndpointNotFound();
  return Visible(row->endpoint, db_->Now());
}

absl::StatusOr<storage::WebhookEndpointPage> FakeWebhookStore::ListEndpoints(
    int64_t tenant_id, int page, int limit) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (absl::Status s = CheckPaging(page, limit); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  std::vector<WebhookEndpointRecord> all;
  for (const auto& [id, row] : db_->webhook_endpoints) {
    if (row.endpoint.tenant_id == tenant_id) {
      all.push_back(Visible(row.endpoint, db_->Now()));
    }
  }
  std::sort(all.begin(), all.end(),
            [](const WebhookEndpointRecord& a, const WebhookEndpointRecord& b) {
              return std::tie(a.created_at, a.id) <
                     std::tie(b.created_at, b.id);
            });
  storage::WebhookEndpointPage out;
  out.total = static_cast<int64_t>(all.size());
  out.endpoints = PageOf(all, page, limit);
  return out;
}

absl::StatusOr<WebhookEndpointRecord> FakeWebhookStore::UpdateEndpoint(
    int64_t tenant_id, absl::string_view id,
    const storage::WebhookEndpointUpdate& update, const AuditEvent& event,
    bool* changed) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (update.event_types.has_value()) {
    if (absl::Status s = CheckList(*update.event_types, ',', "event_types");
        !s.ok()) {
      return s;
    }
  }
  absl::MutexLock lock(&db_->mu);
  FakeDatabase::WebhookEndpointRow* row = Find(*db_, tenant_id, id);
  if (row == nullptr) return EndpointNotFound();
  WebhookEndpointRecord& r = row->endpoint;
  WebhookEndpointRecord next = r;
  if (update.url.has_value()) next.url = *update.url;
  if (update.description.has_value()) next.description = *update.description;
  if (update.event_types.has_value()) next.event_types = *update.event_types;
  const bool enabling =
      update.enabled.has_value() && *update.enabled && !r.enabled;
  const bool disabling =
      update.enabled.has_value() && !*update.enabled && r.enabled;
  if (changed != nullptr) *changed = false;
  if (next.url == r.url && next.description == r.description &&
      next.event_types == r.event_types && !enabling && !disabling) {
    return Visible(r, db_->Now());
  }
  if (enabling) {
    next.enabled = true;
    next.disabled_reason.clear();
    next.consecutive_failures = 0;
    next.failing_since.reset();
  }
  if (disabling) {
    next.enabled = false;
    next.disabled_reason = "manual";
  }
  next.version = r.version + 1;
  next.updated_at = db_->Now();
  r = next;
  db_->AppendAudit(tenant_id, storage::NextTransactionChainLane(), event);
  if (disabling) CancelPending(*db_, id);
  if (changed != nullptr) *changed = true;
  return Visible(r, db_->Now());
}

absl::StatusOr<WebhookEndpointRecord> FakeWebhookStore::RotateSecret(
    int64_t tenant_id, absl::string_view id,
    const storage::SealedSecret& secret, absl::string_view secret_prefix,
    absl::Duration overlap, const AuditEvent& event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  FakeDatabase::WebhookEndpointRow* row = Find(*db_, tenant_id, id);
  if (row == nullptr) return EndpointNotFound();
  WebhookEndpointRecord& r = row->endpoint;
  const absl::Time now = db_->Now();
  if (overlap > absl::ZeroDuration()) {
    r.previous_secret = r.secret;
    r.previous_secret_valid_until = now + overlap;
  } else {
    r.previous_secret.reset();
    r.previous_secret_valid_until.reset();
  }
  r.secret = secret;
  r.secret_prefix = std::string(secret_prefix);
  r.secret_rotated_at = now;
  r.version += 1;
  r.updated_at = now;
  db_->AppendAudit(tenant_id, storage::NextTransactionChainLane(), event);
  return Visible(r, now);
}

absl::Status FakeWebhookStore::DeleteEndpoint(int64_t tenant_id,
                                              absl::string_view id,
                                              const AuditEvent& event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  if (Find(*db_, tenant_id, id) == nullptr) return EndpointNotFound();
  db_->webhook_endpoints.erase(std::string(id));
  db_->AppendAudit(tenant_id, storage::NextTransactionChainLane(), event);
  for (auto it = db_->webhook_deliveries.begin();
       it != db_->webhook_deliveries.end();) {
    if (it->second.delivery.endpoint_id == id) {
      it = db_->webhook_deliveries.erase(it);
    } else {
      ++it;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<WebhookDeliveryRecord> FakeWebhookStore::EnqueuePing(
    int64_t tenant_id, absl::string_view endpoint_id, const AuditEvent& event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const FakeDatabase::WebhookEndpointRow* row =
      Find(*db_, tenant_id, endpoint_id);
  if (row == nullptr) return EndpointNotFound();
  if (!row->endpoint.enabled) {
    return absl::FailedPreconditionError("the endpoint is disabled");
  }
  db_->AppendAudit(tenant_id, storage::NextTransactionChainLane(), event);
  AuditEvent ping = event;
  storage::NormalizeAuditEvent(ping);
  const absl::Time now = db_->Now();
  const int64_t event_row =
      db_->InsertWebhookEvent(tenant_id, storage::kWebhookPingType, ping, now);
  const int64_t delivery =
      db_->InsertWebhookDelivery(tenant_id, endpoint_id, event_row, now);
  return DeliveryOf(*db_, db_->webhook_deliveries.at(delivery));
}

absl::StatusOr<storage::DeliveryPage> FakeWebhookStore::ListDeliveries(
    int64_t tenant_id, absl::string_view endpoint_id,
    const storage::DeliveryQuery& query) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (absl::Status s = CheckPaging(query.page, query.limit); !s.ok()) return s;
  if (query.before_id.has_value() && query.page != 1) {
    return absl::InvalidArgumentError("a position needs page 1");
  }
  absl::MutexLock lock(&db_->mu);
  if (Find(*db_, tenant_id, endpoint_id) == nullptr) return EndpointNotFound();
  std::vector<WebhookDeliveryRecord> all;    // matching, newest first
  std::vector<WebhookDeliveryRecord> after;  // ... and below the position
  for (auto it = db_->webhook_deliveries.rbegin();
       it != db_->webhook_deliveries.rend(); ++it) {
    const WebhookDeliveryRecord& d = it->second.delivery;
    if (d.tenant_id != tenant_id || d.endpoint_id != endpoint_id) continue;
    if (query.state.has_value() && d.state != *query.state) continue;
    all.push_back(DeliveryOf(*db_, it->second));
    if (!query.before_id.has_value() || d.id < *query.before_id) {
      after.push_back(all.back());
    }
  }
  storage::DeliveryPage out;
  const storage::CountedTotal total =
      storage::TotalOf(query.count, static_cast<int64_t>(all.size()));
  out.total = total.total;
  out.total_kind = total.kind;
  out.deliveries = PageOf(after, query.page, query.limit);
  out.has_more = static_cast<int64_t>(after.size()) >
                 static_cast<int64_t>(query.page) * query.limit;
  return out;
}

absl::StatusOr<int64_t> FakeWebhookStore::PurgeExpired(
    absl::Duration finished_older_than, absl::Duration tallies_older_than) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (finished_older_than <= absl::ZeroDuration() ||
      tallies_older_than <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("retention must be positive");
  }
  absl::MutexLock lock(&db_->mu);
  const absl::Time now = db_->Now();
  const absl::Time finished_before = now - finished_older_than;
  int64_t deleted = 0;
  std::set<int64_t> referenced;  // event rows of the deliveries kept
  for (auto it = db_->webhook_deliveries.begin();
       it != db_->webhook_deliveries.end();) {
    const WebhookDeliveryRecord& d = it->second.delivery;
    if (d.state != DeliveryState::kPending && d.created_at < finished_before) {
      it = db_->webhook_deliveries.erase(it);
      ++deleted;
    } else {
      referenced.insert(it->second.event_row);
      ++it;
    }
  }
  for (auto it = db_->webhook_events.begin();
       it != db_->webhook_events.end();) {
    if (it->second.created_at < finished_before &&
        referenced.count(it->first) == 0) {
      it = db_->webhook_events.erase(it);
      ++deleted;
    } else {
      ++it;
    }
  }
  for (auto it = db_->previous_secret_uses.begin();
       it != db_->previous_secret_uses.end();) {
    if (std::get<1>(it->first) < now - tallies_older_than) {
      it = db_->previous_secret_uses.erase(it);
      ++deleted;
    } else {
      ++it;
    }
  }
  return deleted;
}

absl::StatusOr<storage::WebhookEventRecord> FakeWebhookStore::GetEvent(
    int64_t tenant_id, absl::string_view event_id) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  for (const auto& [row, event] : db_->webhook_events) {
    if (event.tenant_id == tenant_id && event.event_id == event_id) {
      return EventWithSlug(*db_, row);
    }
  }
  return absl::NotFoundError("webhook event not found");
}

absl::StatusOr<std::vector<ClaimedDelivery>> FakeWebhookStore::ClaimDue(
    int max, absl::Duration lease) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (max < 1) return absl::InvalidArgumentError("max must be at least 1");
  absl::MutexLock lock(&db_->mu);
  const absl::Time now = db_->Now();
  std::vector<FakeDatabase::WebhookDeliveryRow*> due;
  for (auto& [id, row] : db_->webhook_deliveries) {
    if (row.delivery.state == DeliveryState::kPending &&
        row.delivery.next_attempt_at <= now) {
      due.push_back(&row);
    }
  }
  std::sort(due.begin(), due.end(),
            [](const FakeDatabase::WebhookDeliveryRow* a,
               const FakeDatabase::WebhookDeliveryRow* b) {
              return std::tie(a->delivery.next_attempt_at, a->delivery.id) <
                     std::tie(b->delivery.next_attempt_at, b->delivery.id);
            });
  if (due.size() > static_cast<size_t>(max)) due.resize(max);
  std::vector<ClaimedDelivery> out;
  for (FakeDatabase::WebhookDeliveryRow* row : due) {
    WebhookDeliveryRecord& d = row->delivery;
    const FakeDatabase::WebhookEndpointRow* endpoint =
        Find(*db_, d.tenant_id, d.endpoint_id);
    if (endpoint == nullptr || !endpoint->endpoint.enabled) {
      d.state = DeliveryState::kCancelled;
      row->lease_token.clear();
      continue;
    }
    absl::StatusOr<std::string> token = core::RandomBase62(22);
    if (!token.ok()) return token.status();
    const WebhookEndpointRecord visible = Visible(endpoint->endpoint, now);
    ClaimedDelivery claim;
    claim.delivery_id = d.id;
    claim.endpoint_id = d.endpoint_id;
    claim.lease_token = *token;
    claim.attempt = d.attempts + 1;
    claim.event = EventWithSlug(*db_, row->event_row);
    claim.url = visible.url;
    claim.secret = visible.secret;
    claim.previous_secret = visible.previous_secret;
    row->lease_token = *token;
    d.attempts += 1;
    d.next_attempt_at = now + lease;
    out.push_back(std::move(claim));
  }
  return out;
}

absl::StatusOr<storage::CompletedAttempt> FakeWebhookStore::CompleteAttempt(
    const ClaimedDelivery& claim, const storage::AttemptOutcome& outcome,
    const storage::FailurePolicy& policy, const AuditEvent& disable_event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  storage::CompletedAttempt out;
  FakeDatabase::WebhookEndpointRow* endpoint =
      Find(*db_, claim.event.tenant_id, claim.endpoint_id);
  auto row = db_->webhook_deliveries.find(claim.delivery_id);
  if (endpoint == nullptr || row == db_->webhook_deliveries.end() ||
      row->second.delivery.state != DeliveryState::kPending ||
      row->second.lease_token != claim.lease_token) {
    return out;
  }
  out.applied = true;
  const absl::Time now = db_->Now();
  WebhookDeliveryRecord& d = row->second.delivery;
  const absl::Time event_created =
      db_->webhook_events.at(row->second.event_row).created_at;
  if (outcome.delivered) {
    out.state = DeliveryState::kDelivered;
  } else if (now - event_created > policy.retry_window) {
    out.state = DeliveryState::kFailed;
  } else {
    out.state = DeliveryState::kPending;
  }
  d.state = out.state;
  row->second.lease_token.clear();
  d.last_attempt_at = now;
  d.last_http_status = outcome.http_status;
  d.last_latency_ms = static_cast<int32_t>(std::min<int64_t>(
      absl::ToInt64Milliseconds(outcome.latency), int64_t{1} << 30));
  d.last_error = outcome.delivered ? "" : outcome.error.substr(0, 255);
  d.delivered_at =
      outcome.delivered ? std::optional<absl::Time>(now) : std::nullopt;
  d.next_attempt_at =
      out.state == DeliveryState::kPending ? now + outcome.retry_in : now;

  WebhookEndpointRecord& e = endpoint->endpoint;
  if (outcome.delivered) {
    e.consecutive_failures = 0;
    e.failing_since.reset();
    return out;
  }
  e.consecutive_failures += 1;
  if (!e.failing_since.has_value()) e.failing_since = now;
  if (e.enabled && e.consecutive_failures >= policy.disable_after_failures &&
      now - *e.failing_since >= policy.disable_after) {
    e.enabled = false;
    e.disabled_reason = "failures";
    e.version += 1;
    e.updated_at = now;
    db_->AppendAudit(e.tenant_id, storage::NextTransactionChainLane(),
                     disable_event);
    CancelPending(*db_, claim.endpoint_id);
    out.endpoint_disabled = true;
  }
  return out;
}

absl::StatusOr<bool> FakeWebhookStore::LeakReported(
    absl::string_view key_id, const core::Digest& digest) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  return db_->leak_reports.count({std::string(key_id),
                                  std::string(core::AsStringView(digest))}) > 0;
}

absl::StatusOr<bool> FakeWebhookStore::RecordLeakReport(
    const storage::LeakedSecretReport& report,
    const storage::AuditEvent& event) {
  if (report.url.size() > 2048 || report.source.size() > 64) {
    return absl::InvalidArgumentError("leak report url or source too long");
  }
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  if (!db_->leak_reports
           .insert({report.key_id,
                    std::string(core::AsStringView(report.secret_digest))})
           .second) {
    return false;
  }
  db_->AppendAudit(report.tenant_id, storage::NextTransactionChainLane(),
                   event);
  return true;
}

}  // namespace lumo::testing
