// The read side of the usage rollups (docs/usage.md): one key's series and
// the tenant's overview, over ranges rounded to whole UTC hours or days,
// as dense series (every bucket of the range, zeros included).
//
// Errors: INVALID_ARGUMENT naming `granularity`, `from` or `limit` for a bad
// value or a range that is empty or holds too many buckets; NOT_FOUND for
// an unknown or deleted key, or another tenant's; the stores' codes
// otherwise.
#ifndef LUMOKEYS_SERVER_SERVICE_USAGE_SERVICE_H_
#define LUMOKEYS_SERVER_SERVICE_USAGE_SERVICE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/service/principal.h"
#include "server/storage/audit_store.h"
#include "server/storage/key_store.h"

namespace lumo::service {

// Buckets one range may hold: 31 days of hours, 400 days.
inline constexpr int kMaxHourBuckets = 744;
inline constexpr int kMaxDayBuckets = 400;

struct UsageRangeParams {
  std::string granularity;         // "", "hour" or "day" (any case)
  std::optional<absl::Time> from;  // unset: the default span before `to`
  std::optional<absl::Time> to;    // unset: the end of the current bucket
};

struct UsageCounts {
  int64_t calls = 0;
  int64_t verifications = 0;
  int64_t api_calls = 0;
  int64_t failures = 0;
  std::map<std::string, int64_t> outcomes;  // only outcomes that occurred
};

struct UsageBucket {
  absl::Time start;
  UsageCounts counts;
};

struct UsageSeries {
  storage::UsageGranularity granularity = storage::UsageGranularity::kHour;
  absl::Time from, to;  // rounded to buckets; [from, to)
  UsageCounts totals;
  std::vector<UsageBucket> buckets;  // dense, oldest first
};

struct KeyUsageSummary {
  std::string key_id;  // "" for unattributed failures
  std::string name;    // "" when deleted or unattributed
  bool deleted = false;
  int64_t calls = 0;
  int64_t failures = 0;
};

struct TenantUsage {
  UsageSeries series;
  std::vector<KeyUsageSummary> top_by_calls;
  std::vector<KeyUsageSummary> top_by_failures;
  // Audit events flagged suspicious, per UTC day: every day the series'
  // range touches (an hourly range's days too), zeros included, oldest
  // first.
  std::vector<storage::DayCount> suspicious_per_day;
};

// "hour" or "day".
const char* GranularityName(storage::UsageGranularity g);

// Thread-safe; borrows both stores.
class UsageService {
 public:
  UsageService(storage::AuditStore* audit, storage::KeyStore* keys);

  // Key `key_id` of the caller's tenant.
  absl::StatusOr<UsageSeries> KeyUsage(const Principal& caller,
                                       absl::string_view key_id,
                                       const UsageRangeParams& params);
  // The caller's tenant; `limit` entries per top-keys list (unset: 10,
  // 1..100).
  absl::StatusOr<TenantUsage> TenantOverview(const Principal& caller,
                                             const UsageRangeParams& params,
                                             std::optional<int32_t> limit);

 private:
  // The rounded range of `params` at the database clock.
  absl::StatusOr<storage::UsageQuery> Range(const UsageRangeParams& params);
  absl::StatusOr<UsageSeries> Series(int64_t tenant_id,
                                     const storage::UsageQuery& query);
  absl::StatusOr<std::vector<KeyUsageSummary>> Named(
      int64_t tenant_id, const std::vector<storage::KeyUsageTotal>& totals);

  storage::AuditStore* audit_;
  storage::KeyStore* keys_;
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_USAGE_SERVICE_H_
