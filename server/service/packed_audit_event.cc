#include "server/service/packed_audit_event.h"

#include <cstring>
#include <optional>
#include <string>
#include <type_traits>

#include "absl/time/time.h"
#include "server/service/audit_json.h"

namespace lumo::service {
namespace {

constexpr uint8_t kSuspicious = 1;
constexpr uint8_t kHasUsage = 2;
constexpr uint8_t kHasPrevious = 4;
constexpr uint8_t kSummary = 8;

// Every string field there can be: thirteen always, three of the usage
// count's and one of the previous-secret use's.
constexpr int kMaxStrings = 17;

// The fixed part: the tenant id, then the flag byte; a summary's count
// follows it.
constexpr size_t kTenantIdBytes = sizeof(int64_t);
constexpr size_t kHeaderBytes = kTenantIdBytes + 1;
constexpr size_t kSummaryCountAt = kHeaderBytes;

static_assert(std::is_trivially_copyable_v<absl::Time>,
              "times are packed as their bytes");

// Points `out` at the string fields of `e` in their packed order, the
// optional parts' only when present; returns how many. `Event` is
// PendingAuditEvent, const or not, and `Str` std::string with the same
// constness.
template <typename Event, typename Str>
int StringFields(Event& e, Str* out[kMaxStrings]) {
  int n = 0;
  out[n++] = &e.tenant_slug;
  out[n++] = &e.event.action;
  out[n++] = &e.event.category;
  out[n++] = &e.event.actor_type;
  out[n++] = &e.event.actor_id;
  out[n++] = &e.event.target_type;
  out[n++] = &e.event.target_id;
  out[n++] = &e.event.outcome;
  out[n++] = &e.event.ip_address;
  out[n++] = &e.event.user_agent;
  out[n++] = &e.event.request_id;
  out[n++] = &e.event.metadata_json;
  out[n++] = &e.used_key_id;
  if (e.usage.has_value()) {
    out[n++] = &e.usage->key_id;
    out[n++] = &e.usage->channel;
    out[n++] = &e.usage->outcome;
  }
  if (e.previous_secret_use.has_value()) {
    out[n++] = &e.previous_secret_use->key_id;
  }
  return n;
}

size_t VarintLength(size_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

char* PutVarint(size_t v, char* p) {
  while (v >= 0x80) {
    *p++ = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

size_t GetVarint(const char*& p) {
  size_t v = 0;
  for (int shift = 0;; shift += 7) {
    const auto byte = static_cast<unsigned char>(*p++);
    v |= static_cast<size_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return v;
  }
}

template <typename T>
char* Put(const T& value, char* p) {
  std::memcpy(p, &value, sizeof(T));
  return p + sizeof(T);
}

template <typename T>
T Get(const char*& p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  p += sizeof(T);
  return value;
}

}  // namespace

PackedAuditEvent::PackedAuditEvent(const storage::PendingAuditEvent& event)
    : PackedAuditEvent(event, /*summary=*/false) {}

PackedAuditEvent PackedAuditEvent::Summary(
    const storage::PendingAuditEvent& event) {
  return PackedAuditEvent(event, /*summary=*/true);
}

void PackedAuditEvent::set_count(int64_t count) {
  Put(count, bytes_.get() + kSummaryCountAt);
}

PackedAuditEvent::PackedAuditEvent(const storage::PendingAuditEvent& event,
                                   bool summary) {
  const std::string* fields[kMaxStrings];
  const int n = StringFields(event, fields);
  // same[i]: an earlier field with the same bytes, or -1.
  int same[kMaxStrings];
  size_t size = kHeaderBytes;
  if (summary) size += sizeof(int64_t);
  if (event.usage.has_value()) size += sizeof(int64_t);
  if (event.previous_secret_use.has_value()) {
    size += sizeof(int64_t) + sizeof(absl::Time);
  }
  for (int i = 0; i < n; ++i) {
    same[i] = -1;
    if (!fields[i]->empty()) {
      for (int j = 0; j < i; ++j) {
        if (*fields[j] == *fields[i]) {
          same[i] = j;
          break;
        }
      }
    }
    size += same[i] >= 0
                ? VarintLength(2 * same[i] + 1)
                : VarintLength(2 * fields[i]->size()) + fields[i]->size();
  }

  bytes_.reset(new char[size]);  // every byte is written below
  size_ = size;
  char* p = bytes_.get();
  p = Put(event.tenant_id, p);
  uint8_t flags = 0;
  if (event.event.suspicious) flags |= kSuspicious;
  if (event.usage.has_value()) flags |= kHasUsage;
  if (event.previous_secret_use.has_value()) flags |= kHasPrevious;
  if (summary) flags |= kSummary;
  *p++ = static_cast<char>(flags);
  if (summary) p = Put(int64_t{1}, p);
  if (event.usage.has_value()) p = Put(event.usage->count, p);
  if (event.previous_secret_use.has_value()) {
    p = Put(event.previous_secret_use->count, p);
    p = Put(event.previous_secret_use->rotated_at, p);
  }
  for (int i = 0; i < n; ++i) {
    if (same[i] >= 0) {
      p = PutVarint(2 * same[i] + 1, p);
    } else {
      p = PutVarint(2 * fields[i]->size(), p);
      std::memcpy(p, fields[i]->data(), fields[i]->size());
      p += fields[i]->size();
    }
  }
}

int64_t PackedAuditEvent::tenant_id() const {
  const char* p = bytes_.get();
  return Get<int64_t>(p);
}

storage::PendingAuditEvent PackedAuditEvent::Unpack() const {
  storage::PendingAuditEvent event;
  const char* p = bytes_.get();
  event.tenant_id = Get<int64_t>(p);
  const auto flags = static_cast<uint8_t>(*p++);
  event.event.suspicious = (flags & kSuspicious) != 0;
  std::optional<int64_t> summary_count;
  if ((flags & kSummary) != 0) summary_count = Get<int64_t>(p);
  if ((flags & kHasUsage) != 0) {
    event.usage.emplace();
    event.usage->count = Get<int64_t>(p);
  }
  if ((flags & kHasPrevious) != 0) {
    event.previous_secret_use.emplace();
    event.previous_secret_use->count = Get<int64_t>(p);
    event.previous_secret_use->rotated_at = Get<absl::Time>(p);
  }
  std::string* fields[kMaxStrings];
  const int n = StringFields(event, fields);
  for (int i = 0; i < n; ++i) {
    const size_t code = GetVarint(p);
    if ((code & 1) != 0) {
      *fields[i] = *fields[code >> 1];
    } else {
      fields[i]->assign(p, code >> 1);
      p += code >> 1;
    }
  }
  if (summary_count.has_value()) {
    event.event.metadata_json =
        WithCountMember(event.event.metadata_json, *summary_count);
    if (event.usage.has_value()) event.usage->count = *summary_count;
    if (event.previous_secret_use.has_value()) {
      event.previous_secret_use->count = *summary_count;
    }
  }
  return event;
}

}  // namespace lumo::service
