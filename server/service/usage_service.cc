#include "server/service/usage_service.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/service/errors.h"

namespace lumo::service {
namespace {

using storage::UsageGranularity;

constexpr int32_t kDefaultTopKeys = 10;
constexpr int32_t kMaxTopKeys = 100;

// Adds `count` uses of `channel` / `outcome` to `c`.
void Add(UsageCounts& c, absl::string_view channel, const std::string& outcome,
         int64_t count) {
  c.calls += count;
  if (channel == storage::kUsageChannelVerify) {
    c.verifications += count;
  } else {
    c.api_calls += count;
  }
  if (outcome != storage::kUsageOutcomeValid) c.failures += count;
  c.outcomes[outcome] += count;
}

}  // namespace

const char* GranularityName(UsageGranularity g) {
  return g == UsageGranularity::kDay ? "day" : "hour";
}

UsageService::UsageService(storage::AuditStore* audit, storage::KeyStore* keys)
    : audit_(audit), keys_(keys) {}

absl::StatusOr<storage::UsageQuery> UsageService::Range(
    const UsageRangeParams& params) {
  storage::UsageQuery q;
  const std::string g = absl::AsciiStrToLower(params.granularity);
  if (g.empty() || g == "hour") {
    q.granularity = UsageGranularity::kHour;
  } else if (g == "day") {
    q.granularity = UsageGranularity::kDay;
  } else {
    return InvalidField("granularity", "hour or day");
  }
  const absl::Duration len = storage::UsageBucketLength(q.granularity);
  if (params.to.has_value()) {
    q.to = storage::UsageBucketStart(*params.to, q.granularity);
    if (q.to < *params.to) q.to += len;  // rounded up
  } else {
    absl::StatusOr<absl::Time> now = keys_->Now();
    if (!now.ok()) return now.status();
    q.to = storage::UsageBucketStart(*now, q.granularity) + len;
  }
  if (params.from.has_value()) {
    q.from = storage::UsageBucketStart(*params.from, q.granularity);
  } else {
    q.from =
        q.to - (q.granularity == UsageGranularity::kDay ? 30 * len : 24 * len);
  }
  if (q.from >= q.to) return InvalidField("from", "must be before to");
  const int64_t max = q.granularity == UsageGranularity::kDay ? kMaxDayBuckets
                                                              : kMaxHourBuckets;
  if ((q.to - q.from) / len > max) {
    return InvalidField(
        "from", absl::StrCat("the range holds more than ", max, " ",
                             GranularityName(q.granularity), " buckets"));
  }
  return q;
}

absl::StatusOr<UsageSeries> UsageService::Series(
    int64_t tenant_id, const storage::UsageQuery& query) {
  absl::StatusOr<std::vector<storage::UsageRow>> rows =
      audit_->ReadUsage(tenant_id, query);
  if (!rows.ok()) return rows.status();
  UsageSeries series;
  series.granularity = query.granularity;
  series.from = query.from;
  series.to = query.to;
  const absl::Duration len = storage::UsageBucketLength(query.granularity);
  for (absl::Time t = query.from; t < query.to; t += len) {
    series.buckets.push_back(UsageBucket{t, {}});
  }
  for (const storage::UsageRow& row : *rows) {
    const int64_t index = (row.bucket_start - query.from) / len;
    if (index < 0 || index >= static_cast<int64_t>(series.buckets.size())) {
      continue;  // outside the range: the store's contract says never
    }
    Add(series.buckets[index].counts, row.channel, row.outcome, row.count);
    Add(series.totals, row.channel, row.outcome, row.count);
  }
  return series;
}

absl::StatusOr<UsageSeries> UsageService::KeyUsage(
    const Principal& caller, absl::string_view key_id,
    const UsageRangeParams& params) {
  absl::StatusOr<storage::ApiKeyRecord> key =
      keys_->GetKey(caller.tenant_id, key_id);
  if (!key.ok()) return key.status();
  absl::StatusOr<storage::UsageQuery> q = Range(params);
  if (!q.ok()) return q.status();
  q->key_id = key->id;
  return Series(caller.tenant_id, *q);
}

absl::StatusOr<std::vector<KeyUsageSummary>> UsageService::Named(
    int64_t tenant_id, const std::vector<storage::KeyUsageTotal>& totals) {
  std::vector<KeyUsageSummary> out;
  for (const storage::KeyUsageTotal& t : totals) {
    KeyUsageSummary s;
    s.key_id = t.key_id;
    s.calls = t.calls;
    s.failures = t.failures;
    if (!t.key_id.empty()) {
      absl::StatusOr<storage::ApiKeyRecord> key =
          keys_->GetKey(tenant_id, t.key_id);
      if (key.ok()) {
        s.name = key->name;
      } else if (absl::IsNotFound(key.status())) {
        s.deleted = true;  // counted keys were the tenant's: deleted since
      } else {
        return key.status();
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

absl::StatusOr<TenantUsage> UsageService::TenantOverview(
    const Principal& caller, const UsageRangeParams& params,
    std::optional<int32_t> limit) {
  const int32_t n = limit.value_or(kDefaultTopKeys);
  if (n < 1 || n > kMaxTopKeys) return InvalidField("limit", "1..100");
  absl::StatusOr<storage::UsageQuery> q = Range(params);
  if (!q.ok()) return q.status();
  TenantUsage out;
  absl::StatusOr<UsageSeries> series = Series(caller.tenant_id, *q);
  if (!series.ok()) return series.status();
  out.series = *std::move(series);
  for (bool by_failures : {false, true}) {
    absl::StatusOr<std::vector<storage::KeyUsageTotal>> top =
        audit_->TopUsageKeys(caller.tenant_id, *q, by_failures, n);
    if (!top.ok()) return top.status();
    absl::StatusOr<std::vector<KeyUsageSummary>> named =
        Named(caller.tenant_id, *top);
    if (!named.ok()) return named.status();
    (by_failures ? out.top_by_failures : out.top_by_calls) = *std::move(named);
  }
  // The days the range touches: its first day to the day after its last
  // instant (to is exclusive).
  constexpr storage::UsageGranularity kDay = storage::UsageGranularity::kDay;
  const absl::Time first_day = storage::UsageBucketStart(out.series.from, kDay);
  const absl::Time end_day =
      storage::UsageBucketStart(out.series.to - absl::Microseconds(1), kDay) +
      storage::UsageBucketLength(kDay);
  absl::StatusOr<std::vector<storage::DayCount>> suspicious =
      audit_->CountSuspiciousPerDay(caller.tenant_id, first_day, end_day);
  if (!suspicious.ok()) return suspicious.status();
  auto next = suspicious->begin();
  for (absl::Time day = first_day; day < end_day;
       day += storage::UsageBucketLength(kDay)) {
    storage::DayCount count{day, 0};
    if (next != suspicious->end() && next->day_start == day) {
      count.count = next->count;
      ++next;
    }
    out.suspicious_per_day.push_back(count);
  }
  return out;
}

}  // namespace lumo::service
