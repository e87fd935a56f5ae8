// The storage interface of the audit log (docs/audit.md): batched
// appends of usage and authentication events, the per-tenant hash chain
// check, and the read side. Lifecycle events are not written here: they go
// through the owning store's transaction (InsertAudit in storage/mysql).
//
// Error contract as key_store.h (INVALID_ARGUMENT, ABORTED, UNAVAILABLE,
// DEADLINE_EXCEEDED, INTERNAL); method comments list the other codes. No
// status message ever contains event content.
#ifndef LUMOKEYS_SERVER_STORAGE_AUDIT_STORE_H_
#define LUMOKEYS_SERVER_STORAGE_AUDIT_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/crypto.h"
#include "server/storage/key_store.h"
#include "server/storage/list_page.h"

namespace lumo::storage {

// Usage channels (docs/usage.md): AuthService.VerifyApiKey answers, and
// admin API calls authenticated by a key.
inline constexpr char kUsageChannelVerify[] = "verify";
inline constexpr char kUsageChannelApi[] = "api";
// The outcome of a use that succeeded; every other outcome is a failure
// reason ("revoked", "not_found", ...).
inline constexpr char kUsageOutcomeValid[] = "valid";

// What one audit event adds to the usage rollups (docs/usage.md).
struct UsageCount {
  std::string key_id;   // the tenant's key; "" for unattributed failures
  std::string channel;  // kUsageChannelVerify or kUsageChannelApi
  std::string outcome;  // kUsageOutcomeValid or a reason, at most 32 chars
  int64_t count = 1;    // uses the event stands for (a summary's count)
};

enum class UsageGranularity { kHour, kDay };

// The length of one bucket of `g`.
inline absl::Duration UsageBucketLength(UsageGranularity g) {
  return g == UsageGranularity::kDay ? absl::Hours(24) : absl::Hours(1);
}

// The start of the UTC hour or day holding `t`.
inline absl::Time UsageBucketStart(absl::Time t, UsageGranularity g) {
  const int64_t len = absl::ToInt64Seconds(UsageBucketLength(g));
  int64_t s = absl::ToUnixSeconds(t);  // floor
  s -= ((s % len) + len) % len;
  return absl::FromUnixSeconds(s);
}

// Rollup buckets of one tenant (optionally of one key) in [from, to);
// `from` and `to` are bucket boundaries (UTC hours or days).
struct UsageQuery {
  UsageGranularity granularity = UsageGranularity::kHour;
  absl::Time from;
  absl::Time to;
  std::optional<std::string> key_id;  // unset: every key, summed
};

// The count of one (bucket, channel, outcome), summed over the query's keys.
struct UsageRow {
  absl::Time bucket_start;
  std::string channel;
  std::string outcome;
  int64_t count = 0;
};

// One key's totals over a range (TopUsageKeys).
struct KeyUsageTotal {
  std::string key_id;  // "" for unattributed failures
  int64_t calls = 0;
  int64_t failures = 0;  // calls whose outcome is not valid
};

// The number of events of one UTC day (CountSuspiciousPerDay).
struct DayCount {
  absl::Time day_start;  // UTC midnight
  int64_t count = 0;
};

// A use of a key authenticated by one of its retired secrets while that
// secret was in its grace period (docs/webhooks.md "Rotation stragglers"):
// tallied per key, rotation, client address and user agent (the event's).
struct PreviousSecretUse {
  std::string key_id;
  // The key's rotated_at when the use was verified: the rotation whose
  // grace period the use falls in.
  absl::Time rotated_at;
  int64_t count = 1;  // uses the event stands for (a summary's count)
};

// One client that presented a rotated key's previous secret
// (AuditStore::ListPreviousSecretUsers).
struct PreviousSecretUser {
  std::string ip_address;
  std::string user_agent;
  absl::Time last_seen_at;
  int64_t count = 0;
};

// One event for the batched writer.
struct PendingAuditEvent {
  // 0 with a non-empty `tenant_slug`: the store resolves the slug (an
  // unknown slug files the event under the platform pseudo-tenant 0).
  int64_t tenant_id = 0;
  std::string tenant_slug;
  AuditEvent event;
  // Non-empty: the key whose last_used_at this use moves forward.
  std::string used_key_id;
  // Set: what the event adds to the usage rollups of its tenant.
  std::optional<UsageCount> usage;
  // Set: the use was authenticated by a retired secret in its grace period.
  std::optional<PreviousSecretUse> previous_secret_use;
};

// An audit row as stored.
struct StoredAuditEvent {
  int64_t id = 0;
  int64_t tenant_id = 0;
  int64_t seq = 0;  // 0 for rows written before the chain existed
  int lane = 0;     // the chain lane the row belongs to
  AuditEvent event;
  absl::Time created_at;
};

// A stored row with its chain fields, as a verifier and an export read it
// (StoredChainRow is what lets an export's reader check the chain itself).
struct StoredChainRow {
  StoredAuditEvent row;  // id, tenant, seq, lane, event, created_at
  // Unset when the stored value is missing or not a digest (and for rows
  // written before the chain existed).
  std::optional<core::Digest> prev_hash;
  std::optional<core::Digest> hash;
  int hash_version = 0;  // as stored
};

// A follower's position in one tenant's audit log: for each chain lane
// (index = lane), the highest seq already read. Within a lane, seqs are
// given and committed in order (the lane's head is locked from the append
// to the commit), so "everything after this position" misses nothing that
// commits later, unlike "ids above N" (ids are taken at insert time and
// transactions commit in any order). Produced and checked by the store;
// opaque above it.
struct AuditCursor {
  std::vector<int64_t> lane_seqs;
};

// Outcome of walking every chain lane of one tenant (docs/audit.md "Chain
// lanes"): lanes in ascending order, each from its base to its head.
struct ChainVerification {
  bool ok = true;
  int64_t rows_checked = 0;  // over all lanes
  int lanes_checked = 0;     // lanes that verified to their head
  int64_t last_seq = 0;      // the highest seq verified in any lane
  int broken_lane = 0;       // when !ok: the lane of the break
  // When !ok: the first row that does not verify (0 when the break is not a
  // row, e.g. the head does not match the last row) and why.
  int64_t broken_id = 0;
  int64_t broken_seq = 0;
  std::string problem;
};

// The upper bound of a streamed export (docs/usage.md "Streaming audit
// export"): each chain lane's last seq once every append in flight when the
// bound was read has committed, and the highest id of the tenant's rows
// then (for rows outside the chains, whose seq is unset). A row belongs to
// the export when its seq is at most its lane's bound, or, without a seq,
// when its id is at most `max_id`; rows committed later are never included.
struct ExportBound {
  AuditCursor lanes;   // index = lane
  int64_t max_id = 0;  // rows without a seq
};

// Ids an export page scans at most (AuditStore::ExportPage).
inline constexpr int64_t kExportScanIds = 50000;

// One page of an export.
struct ExportPageRows {
  std::vector<StoredChainRow> rows;
  // Where the next page starts (its after_id): the last row's id when the
  // page is full, else the end of the window scanned.
  int64_t next_after_id = 0;
  // No row of the export has an id above next_after_id.
  bool done = false;
};

struct AuditQuery {
  int page = 1;    // 1-based
  int limit = 25;  // 1..100; 0: count only (no events returned)
  // Order by id: newest first unless set.
  bool oldest_first = false;
  // Empty / unset: no filter.
  std::string action;
  std::string category;
  std::string actor_id;
  std::string target_id;
  std::string outcome;
  std::optional<bool> suspicious;
  std::optional<absl::Time> start;  // inclusive
  std::optional<absl::Time> end;    // exclusive
  std::optional<int64_t> after_id;  // only events with a greater id
  // Only events after this position; implies oldest first, page 1.
  std::optional<AuditCursor> after_cursor;
  // Fill AuditPage::next_cursor (always filled with after_cursor).
  bool want_cursor = false;
  // Set: only events after this event id in the list's order (below it
  // newest first, above it oldest first): keyset paging through the
  // (tenant_id, id) index; page must be 1.
  std::optional<int64_t> after_position;
  // The total's count when events are listed (limit > 0); a count-only
  // query (limit 0) always counts exactly.
  CountRequest count;
};

struct AuditPage {
  std::vector<StoredAuditEvent> events;  // in the query's order
  int64_t total = 0;  // matching events over all pages (see total_kind)
  TotalKind total_kind = TotalKind::kExact;
  // Matching events with suspicious set: counted by an exact count only
  // (count-only queries, or a count without cap); 0 otherwise.
  int64_t suspicious_total = 0;
  // Listed queries: there are matching events after the last one returned.
  bool has_more = false;
  // With after_cursor: that position moved past the events returned.
  // Otherwise, when asked for: the position after every event committed
  // when the page was read (read in the same snapshot as the page).
  std::optional<AuditCursor> next_cursor;
};

// Thread-safe: every method may be called concurrently from any thread.
class AuditStore {
 public:
  virtual ~AuditStore() = default;

  // Appends `events` (in order, per tenant) to their tenants' chains in one
  // transaction with the database clock as their timestamp, then moves
  // last_used_at of every distinct `used_key_id` forward to that time (one
  // statement, after the commit: a key row lock is never held while a chain
  // head is). In the same transaction, adds the `usage` counts of the
  // events to the hourly and daily rollups of their tenants, in the hour
  // and day (UTC) of that timestamp (docs/usage.md), and the
  // `previous_secret_use` tallies: per (key, rotated_at, ip_address,
  // user_agent) the count is added and the last-seen time moves to that
  // timestamp. Either every event and its counts are written or none.
  virtual absl::Status AppendEvents(
      const std::vector<PendingAuditEvent>& events) = 0;

  // Walks the tenant's chain in sequence order: sequence continuity from the
  // recorded base, prev_hash linkage, each row's hash, and the head.
  virtual absl::StatusOr<ChainVerification> VerifyChain(int64_t tenant_id) = 0;

  // INVALID_ARGUMENT for a page or limit out of range, a page other than 1
  // with after_position, or an after_cursor that is not a position of this
  // log (wrong number of lanes).
  virtual absl::StatusOr<AuditPage> ListEvents(int64_t tenant_id,
                                               const AuditQuery& query) = 0;
  // NOT_FOUND when there is no such event in the tenant.
  virtual absl::StatusOr<StoredAuditEvent> GetEvent(int64_t tenant_id,
                                                    int64_t id) = 0;
  // The tenant's export bound (ExportBound): waits for the appends to the
  // tenant's lanes that are in flight to commit (or roll back), then reads
  // every lane's head and the highest id.
  virtual absl::StatusOr<ExportBound> ReadExportBound(int64_t tenant_id) = 0;
  // One page of an export: the tenant's rows within `bound` matching the
  // filters of `filters` (action, category, actor, target, outcome,
  // suspicious, start, end; its paging, sort and cursor fields are ignored)
  // whose id is in (after_id, after_id + kExportScanIds], at most `limit`
  // (1..10,000) of them, by id ascending, with their chain fields. Each
  // page scans a bounded window of ids, so a filter matching few rows of a
  // large log costs many short statements rather than one long one.
  // INVALID_ARGUMENT for a limit out of range or a bound that is not one
  // of this log's.
  virtual absl::StatusOr<ExportPageRows> ExportPage(int64_t tenant_id,
                                                    const AuditQuery& filters,
                                                    const ExportBound& bound,
                                                    int64_t after_id,
                                                    int limit) = 0;

  // The tenant's rollup rows in [query.from, query.to) at the query's
  // granularity, ordered by bucket, channel, outcome; rows with a zero
  // count are not returned. INVALID_ARGUMENT when from >= to.
  virtual absl::StatusOr<std::vector<UsageRow>> ReadUsage(
      int64_t tenant_id, const UsageQuery& query) = 0;

  // The `limit` keys (unattributed failures as key "") with the most calls
  // in the range (by_failures: the most failures; keys with none are then
  // left out), ties by key id ascending. `query.key_id` is ignored.
  // INVALID_ARGUMENT when from >= to or limit < 1.
  virtual absl::StatusOr<std::vector<KeyUsageTotal>> TopUsageKeys(
      int64_t tenant_id, const UsageQuery& query, bool by_failures,
      int limit) = 0;

  // The tenant's audit events flagged suspicious, per UTC day, for the days
  // in [from, to) (UTC midnights), oldest first; days without any are not
  // returned. INVALID_ARGUMENT when from >= to or either is not a midnight.
  virtual absl::StatusOr<std::vector<DayCount>> CountSuspiciousPerDay(
      int64_t tenant_id, absl::Time from, absl::Time to) = 0;

  // The clients that presented a previous secret of the tenant's key
  // `key_id` during the grace period of its rotation at `rotated_at` (the
  // tallies AppendEvents writes): at most `limit` (1..100), the most
  // recently seen first, ties by address then user agent ascending.
  // INVALID_ARGUMENT for a limit out of range.
  virtual absl::StatusOr<std::vector<PreviousSecretUser>>
  ListPreviousSecretUsers(int64_t tenant_id, absl::string_view key_id,
                          absl::Time rotated_at, int limit) = 0;
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_AUDIT_STORE_H_
