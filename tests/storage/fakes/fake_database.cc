#include "tests/storage/fakes/fake_database.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/storage/webhook_outbox.h"

namespace lumo::testing {
namespace {

absl::Time WholeMicros(absl::Time t) {
  return absl::FromUnixMicros(absl::ToUnixMicros(t));
}

}  // namespace

FakeDatabase::FakeDatabase() {
  absl::MutexLock lock(&mu);
  for (int lane = 0; lane < storage::kChainLaneCount; ++lane) {
    chain_heads[{0, lane}];
  }
}

void FakeDatabase::FreezeClock(absl::Time at) {
  absl::MutexLock lock(&mu);
  frozen_ = WholeMicros(at);
}

void FakeDatabase::AdvanceClock(absl::Duration d) {
  absl::MutexLock lock(&mu);
  if (frozen_.has_value()) {
    *frozen_ = WholeMicros(*frozen_ + d);
  } else {
    offset_ += d;
  }
}

void FakeDatabase::SetUnavailable(bool unavailable) {
  absl::MutexLock lock(&mu);
  unavailable_ = unavailable;
}

absl::Status FakeDatabase::Begin() const {
  calls_.fetch_add(1);
  absl::MutexLock lock(&mu);
  if (unavailable_) return absl::UnavailableError("fake database is down");
  return absl::OkStatus();
}

absl::Time FakeDatabase::Now() const {
  return frozen_.has_value() ? *frozen_ : WholeMicros(absl::Now() + offset_);
}

const storage::Tenant* FakeDatabase::TenantBySlug(
    absl::string_view slug) const {
  for (const auto& [id, tenant] : tenants) {
    if (tenant.slug == slug) return &tenant;
  }
  return nullptr;
}

storage::Tenant FakeDatabase::InsertTenant(absl::string_view slug,
                                           absl::string_view name) {
  storage::Tenant tenant;
  tenant.id = next_tenant_id_++;
  tenant.slug = std::string(slug);
  tenant.name = std::string(name);
  tenant.created_at = Now();
  tenants[tenant.id] = tenant;
  for (int lane = 0; lane < storage::kChainLaneCount; ++lane) {
    chain_heads[{tenant.id, lane}];
  }
  return tenant;
}

void FakeDatabase::AppendAudit(int64_t tenant_id, int lane,
                               storage::AuditEvent event) {
  storage::NormalizeAuditEvent(event);
  ChainHeadRow& head = chain_heads[{tenant_id, lane}];
  AuditRow row;
  row.stored.id = next_audit_id++;
  row.stored.tenant_id = tenant_id;
  row.stored.lane = lane;
  row.stored.created_at = Now();
  const storage::ChainLink link = storage::AppendToChain(
      &head.last, tenant_id, lane, event, row.stored.created_at);
  row.stored.seq = link.seq;
  row.stored.event = std::move(event);
  row.prev_hash = link.prev_hash;
  row.hash = link.hash;
  row.hash_version = static_cast<int>(link.version);
  const int64_t id = row.stored.id;
  const absl::Time created_at = row.stored.created_at;
  audit[id] = std::move(row);

  const storage::AuditEvent& stored = audit[id].stored.event;
  const std::string type = storage::WebhookEventTypeOf(stored);
  if (tenant_id <= 0 || type.empty()) return;
  std::vector<std::string> receivers;
  for (const auto& [endpoint_id, endpoint_row] : webhook_endpoints) {
    const storage::WebhookEndpointRecord& e = endpoint_row.endpoint;
    if (e.tenant_id == tenant_id && e.enabled &&
        storage::WebhookSubscribes(e.event_types, type)) {
      receivers.push_back(endpoint_id);
    }
  }
  if (receivers.empty()) return;
  const int64_t event_row =
      InsertWebhookEvent(tenant_id, type, stored, created_at);
  for (const std::string& endpoint_id : receivers) {
    InsertWebhookDelivery(tenant_id, endpoint_id, event_row, created_at);
  }
}

int64_t FakeDatabase::InsertWebhookEvent(int64_t tenant_id,
                                         absl::string_view type,
                                         const storage::AuditEvent& event,
                                         absl::Time created_at) {
  storage::WebhookEventRecord record;
  absl::StatusOr<std::string> event_id = storage::NewWebhookEventId();
  record.event_id = event_id.ok() ? *event_id : "";
  record.tenant_id = tenant_id;
  record.type = std::string(type);
  record.audit = event;
  record.created_at = created_at;
  const int64_t row = next_webhook_event_row++;
  webhook_events[row] = std::move(record);
  return row;
}

int64_t FakeDatabase::InsertWebhookDelivery(int64_t tenant_id,
                                            absl::string_view endpoint_id,
                                            int64_t event_row, absl::Time due) {
  WebhookDeliveryRow row;
  row.delivery.id = next_webhook_delivery++;
  row.delivery.tenant_id = tenant_id;
  row.delivery.endpoint_id = std::string(endpoint_id);
  row.delivery.state = storage::DeliveryState::kPending;
  row.delivery.next_attempt_at = due;
  row.delivery.created_at = due;
  row.event_row = event_row;
  const int64_t id = row.delivery.id;
  webhook_deliveries[id] = std::move(row);
  outbox_signal.Raise();
  return id;
}

int64_t FakeDatabase::AppendChange(int64_t tenant_id, absl::string_view key_id,
                                   absl::string_view change_type,
                                   int64_t key_version, bool announcement) {
  FeedRow row;
  row.change.seq = next_feed_seq++;
  row.change.tenant_id = tenant_id;
  row.change.key_id = std::string(key_id);
  row.change.change_type = std::string(change_type);
  row.change.key_version = key_version;
  row.change.created_at = Now();
  row.announcement = announcement;
  const int64_t seq = row.change.seq;
  feed[seq] = std::move(row);
  return seq;
}

FakeDatabase::UserRow* FakeDatabase::FindUser(int64_t tenant_id,
                                              const storage::UserRef& ref) {
  if (ref.kind == storage::UserRef::Kind::kId) {
    auto it = users.find({tenant_id, ref.value});
    return it == users.end() ? nullptr : &it->second;
  }
  const std::string key = Lower(ref.value);
  for (auto& [id, row] : users) {
    if (id.first == tenant_id && Lower(row.user.email) == key) return &row;
  }
  return nullptr;
}

std::string Lower(absl::string_view s) { return absl::AsciiStrToLower(s); }

bool ContainsIgnoringCase(absl::string_view haystack,
                          absl::string_view needle) {
  return absl::StrContains(Lower(haystack), Lower(needle));
}

absl::Status CheckPaging(int page, int limit) {
  if (page < 1) return absl::InvalidArgumentError("page must be at least 1");
  if (limit < 1 || limit > 100) {
    return absl::InvalidArgumentError("limit must be between 1 and 100");
  }
  return absl::OkStatus();
}

absl::Status CheckList(const std::vector<std::string>& values, char sep,
                       absl::string_view field) {
  for (const std::string& v : values) {
    if (v.empty() || v.find(sep) != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " contains an empty value or a '", std::string(1, sep), "'"));
    }
  }
  return absl::OkStatus();
}

storage::KeyPolicy FakeDatabase::KeyPolicyOf(int64_t tenant_id) const {
  auto it = settings.find(tenant_id);
  return it == settings.end() ? storage::KeyPolicy() : it->second.key_policy;
}

}  // namespace lumo::testing
