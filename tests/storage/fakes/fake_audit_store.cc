#include "tests/storage/fakes/fake_audit_store.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "server/core/crypto.h"
#include "server/storage/audit_chain.h"

namespace lumo::testing {
namespace {

using storage::StoredAuditEvent;
using AuditRow = FakeDatabase::AuditRow;

// Whether `row` passes the query's filters (paging and order aside).
bool Matches(const AuditRow& row, const storage::AuditQuery& q) {
  const StoredAuditEvent& s = row.stored;
  const storage::AuditEvent& e = s.event;
  const std::pair<const std::string*, const std::string*> exact[] = {
      {&q.action, &e.action},
      {&q.category, &e.category},
      {&q.actor_id, &e.actor_id},
      {&q.target_id, &e.target_id},
      {&q.outcome, &e.outcome}};
  for (const auto& [wanted, value] : exact) {
    if (!wanted->empty() && *wanted != *value) return false;
  }
  if (q.suspicious.has_value() && e.suspicious != *q.suspicious) return false;
  if (q.after_id.has_value() && s.id <= *q.after_id) return false;
  if (q.start.has_value() && s.created_at < *q.start) return false;
  if (q.end.has_value() && s.created_at >= *q.end) return false;
  if (q.after_cursor.has_value()) {
    // Unchained rows (seq 0) are no position of any lane.
    if (s.seq == 0 || s.lane < 0 || s.lane >= storage::kChainLaneCount ||
        s.seq <= q.after_cursor->lane_seqs[s.lane]) {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::Status FakeAuditStore::AppendEvents(
    const std::vector<storage::PendingAuditEvent>& events) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (events.empty()) return absl::OkStatus();
  absl::MutexLock lock(&db_->mu);
  // Tenants in ascending order, events in order within each.
  std::map<int64_t, std::vector<const storage::PendingAuditEvent*>> by_tenant;
  for (const storage::PendingAuditEvent& e : events) {
    int64_t tenant_id = e.tenant_id;
    if (tenant_id == 0 && !e.tenant_slug.empty()) {
      const storage::Tenant* tenant = db_->TenantBySlug(e.tenant_slug);
      if (tenant != nullptr) tenant_id = tenant->id;
    }
    by_tenant[tenant_id].push_back(&e);
  }
  for (const auto& [tenant_id, list] : by_tenant) {
    for (const storage::PendingAuditEvent* e : list) {
      db_->AppendAudit(tenant_id, storage::kWriterChainLane, e->event);
      const storage::StoredAuditEvent& stored =
          db_->audit.rbegin()->second.stored;
      const absl::Time at = stored.created_at;
      if (const auto& use = e->previous_secret_use;
          use.has_value() && use->count > 0) {
        FakeDatabase::PreviousSecretTally& tally = db_->previous_secret_uses[{
            use->key_id, use->rotated_at, stored.event.ip_address,
            stored.event.user_agent}];
        tally.tenant_id = tenant_id;
        tally.last_seen_at = std::max(tally.last_seen_at, at);
        tally.uses += use->count;
      }
      if (!e->usage.has_value()) continue;
      for (storage::UsageGranularity g : {storage::UsageGranularity::kHour,
                                          storage::UsageGranularity::kDay}) {
        db_->usage[{tenant_id, g == storage::UsageGranularity::kDay ? 1 : 0,
                    absl::ToUnixSeconds(storage::UsageBucketStart(at, g)),
                    e->usage->key_id, e->usage->channel, e->usage->outcome}] +=
            e->usage->count;
      }
    }
  }
  const absl::Time now = db_->Now();
  for (const storage::PendingAuditEvent& e : events) {
    if (e.used_key_id.empty()) continue;
    auto it = db_->keys.find(e.used_key_id);
    if (it == db_->keys.end()) continue;
    std::optional<absl::Time>& last = it->second.record.last_used_at;
    last = std::max(last.value_or(now), now);
  }
  return absl::OkStatus();
}

absl::StatusOr<storage::ChainVerification> FakeAuditStore::VerifyChain(
    int64_t tenant_id) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  std::set<int> lanes;
  for (const auto& [key, head] : db_->chain_heads) {
    if (key.first == tenant_id) lanes.insert(key.second);
  }
  int64_t first_chained = 0;
  for (const auto& [id, row] : db_->audit) {
    if (row.stored.tenant_id != tenant_id || row.stored.seq == 0) continue;
    lanes.insert(row.stored.lane);
    if (first_chained == 0) first_chained = id;
  }
  storage::ChainVerifier verifier;
  for (int lane : lanes) {
    auto head = db_->chain_heads.find({tenant_id, lane});
    const FakeDatabase::ChainHeadRow bounds = head == db_->chain_heads.end()
                                                  ? FakeDatabase::ChainHeadRow()
                                                  : head->second;
    verifier.BeginLane(lane, bounds.base, bounds.last);
    std::vector<const AuditRow*> rows;
    for (const auto& [id, row] : db_->audit) {
      if (row.stored.tenant_id == tenant_id && row.stored.lane == lane &&
          row.stored.seq > bounds.base.seq) {
        rows.push_back(&row);
      }
    }
    std::sort(rows.begin(), rows.end(),
              [](const AuditRow* a, const AuditRow* b) {
                return a->stored.seq < b->stored.seq;
              });
    for (const AuditRow* row : rows) {
      if (!verifier.AddRow(
              {row->stored, row->prev_hash, row->hash, row->hash_version})) {
        break;
      }
    }
    if (!verifier.EndLane()) break;
  }
  if (verifier.ok()) {
    for (const auto& [id, row] : db_->audit) {
      if (row.stored.tenant_id == tenant_id && row.stored.seq == 0 &&
          id > first_chained) {
        verifier.UnchainedRow(id);
        break;
      }
    }
  }
  return verifier.Finish();
}

absl::StatusOr<storage::AuditPage> FakeAuditStore::ListEvents(
    int64_t tenant_id, const storage::AuditQuery& q) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (q.page < 1 || q.limit < 0 || q.limit > 100) {
    return absl::InvalidArgumentError("page or limit out of range");
  }
  if (q.after_position.has_value() && q.page != 1) {
    return absl::InvalidArgumentError("page must be 1 with a list position");
  }
  if (q.after_cursor.has_value()) {
    const std::vector<int64_t>& after = q.after_cursor->lane_seqs;
    if (after.size() != static_cast<size_t>(storage::kChainLaneCount) ||
        std::any_of(after.begin(), after.end(),
                    [](int64_t seq) { return seq < 0; })) {
      return absl::InvalidArgumentError(
          "afterCursor: not a position of this audit log");
    }
  }
  absl::MutexLock lock(&db_->mu);
  std::vector<StoredAuditEvent> matching;
  storage::AuditPage page;
  for (const auto& [id, row] : db_->audit) {
    if (row.stored.tenant_id != tenant_id || !Matches(row, q)) continue;
    ++page.total;
    if (row.stored.event.suspicious) ++page.suspicious_total;
    matching.push_back(row.stored);
  }
  const bool oldest_first = q.oldest_first || q.after_cursor.has_value();
  if (!oldest_first) std::reverse(matching.begin(), matching.end());
  if (q.limit > 0) {
    const storage::CountedTotal total = storage::TotalOf(q.count, page.total);
    if (q.count.cap > 0 || !q.count.wanted) page.suspicious_total = 0;
    page.total = total.total;
    page.total_kind = total.kind;
    if (q.after_position.has_value()) {
      const int64_t after = *q.after_position;
      matching.erase(std::remove_if(matching.begin(), matching.end(),
                                    [&](const StoredAuditEvent& e) {
                                      return oldest_first ? e.id <= after
                                                          : e.id >= after;
                                    }),
                     matching.end());
    }
    page.events = PageOf(matching, q.page, q.limit);
    page.has_more = static_cast<size_t>(q.page) * q.limit < matching.size();
  }
  if (q.after_cursor.has_value()) {
    storage::AuditCursor next = *q.after_cursor;
    for (const StoredAuditEvent& e : page.events) {
      next.lane_seqs[e.lane] = std::max(next.lane_seqs[e.lane], e.seq);
    }
    page.next_cursor = std::move(next);
  } else if (q.want_cursor) {
    storage::AuditCursor next;
    next.lane_seqs.assign(storage::kChainLaneCount, 0);
    for (const auto& [key, head] : db_->chain_heads) {
      if (key.first == tenant_id && key.second >= 0 &&
          key.second < storage::kChainLaneCount) {
        next.lane_seqs[key.second] = head.last.seq;
      }
    }
    page.next_cursor = std::move(next);
  }
  return page;
}

absl::StatusOr<StoredAuditEvent> FakeAuditStore::GetEvent(int64_t tenant_id,
                                                          int64_t id) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  auto it = db_->audit.find(id);
  if (it == db_->audit.end() || it->second.stored.tenant_id != tenant_id) {
    return absl::NotFoundError("no such audit event");
  }
  return it->second.stored;
}

absl::StatusOr<storage::ExportBound> FakeAuditStore::ReadExportBound(
    int64_t tenant_id) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  // Appends take db_->mu for their whole batch, so none is in flight here.
  absl::MutexLock lock(&db_->mu);
  storage::ExportBound bound;
  bound.lanes.lane_seqs.assign(storage::kChainLaneCount, 0);
  for (const auto& [key, head] : db_->chain_heads) {
    if (key.first == tenant_id && key.second >= 0 &&
        key.second < storage::kChainLaneCount) {
      bound.lanes.lane_seqs[key.second] = head.last.seq;
    }
  }
  for (const auto& [id, row] : db_->audit) {
    if (row.stored.tenant_id == tenant_id) bound.max_id = id;
  }
  return bound;
}

absl::StatusOr<storage::ExportPageRows> FakeAuditStore::ExportPage(
    int64_t tenant_id, const storage::AuditQuery& q,
    const storage::ExportBound& bound, int64_t after_id, int limit) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (limit < 1 || limit > 10000) {
    return absl::InvalidArgumentError("limit out of range");
  }
  const std::vector<int64_t>& lanes = bound.lanes.lane_seqs;
  if (lanes.size() != static_cast<size_t>(storage::kChainLaneCount) ||
      std::any_of(lanes.begin(), lanes.end(),
                  [](int64_t seq) { return seq < 0; }) ||
      bound.max_id < 0 || after_id < 0) {
    return absl::InvalidArgumentError("not an export bound of this audit log");
  }
  storage::AuditQuery filters = q;
  filters.after_id.reset();
  filters.after_cursor.reset();
  const int64_t window_end =
      std::min(bound.max_id, after_id + storage::kExportScanIds);
  absl::MutexLock lock(&db_->mu);
  storage::ExportPageRows out;
  for (auto it = db_->audit.upper_bound(after_id);
       it != db_->audit.end() && it->first <= window_end &&
       static_cast<int>(out.rows.size()) < limit;
       ++it) {
    const AuditRow& row = it->second;
    const StoredAuditEvent& s = row.stored;
    if (s.tenant_id != tenant_id || !Matches(row, filters)) continue;
    const bool within = s.seq == 0 ? s.id <= bound.max_id
                                   : s.lane >= 0 &&
                                         s.lane < storage::kChainLaneCount &&
                                         s.seq <= lanes[s.lane];
    if (!within) continue;
    storage::StoredChainRow chained;
    chained.row = s;
    chained.prev_hash = row.prev_hash;
    chained.hash = row.hash;
    chained.hash_version = row.hash_version;
    out.rows.push_back(std::move(chained));
  }
  out.next_after_id = out.rows.size() == static_cast<size_t>(limit)
                          ? out.rows.back().row.id
                          : window_end;
  out.done = out.next_after_id >= bound.max_id;
  return out;
}

absl::StatusOr<int64_t> FakeAuditStore::PurgeOlderThanDays(int days) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (days < 1) return absl::InvalidArgumentError("days must be at least 1");
  absl::MutexLock lock(&db_->mu);
  const absl::Time cutoff = db_->Now() - absl::Hours(24) * days;
  int64_t deleted = 0;
  for (auto& [key, head] : db_->chain_heads) {
    const auto& [tenant_id, lane] = key;
    // The newest chained row of the lane old enough to go.
    const AuditRow* cut = nullptr;
    for (const auto& [id, row] : db_->audit) {
      const StoredAuditEvent& s = row.stored;
      if (s.tenant_id == tenant_id && s.lane == lane && s.seq != 0 &&
          s.created_at < cutoff &&
          (cut == nullptr || s.seq > cut->stored.seq)) {
        cut = &row;
      }
    }
    if (cut == nullptr || !cut->hash.has_value()) continue;
    head.base = {cut->stored.seq, *cut->hash};
    const int64_t cut_seq = cut->stored.seq;
    for (auto it = db_->audit.begin(); it != db_->audit.end();) {
      const StoredAuditEvent& s = it->second.stored;
      const bool purge = s.tenant_id == tenant_id && s.lane == lane &&
                         s.seq != 0 && s.seq <= cut_seq;
      if (purge) ++deleted;
      it = purge ? db_->audit.erase(it) : std::next(it);
    }
  }
  return deleted;
}

absl::StatusOr<int64_t> FakeAuditStore::PurgeUsage(int hourly_days,
                                                   int daily_days) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (hourly_days < 1 || daily_days < 1) {
    return absl::InvalidArgumentError("days must be at least 1");
  }
  absl::MutexLock lock(&db_->mu);
  const absl::Time now = db_->Now();
  int64_t deleted = 0;
  for (auto it = db_->usage.begin(); it != db_->usage.end();) {
    const int days = std::get<1>(it->first) == 1 ? daily_days : hourly_days;
    const absl::Time start = absl::FromUnixSeconds(std::get<2>(it->first));
    const bool purge = start < now - absl::Hours(24) * days;
    if (purge) ++deleted;
    it = purge ? db_->usage.erase(it) : std::next(it);
  }
  return deleted;
}

}  // namespace lumo::testing

namespace lumo::testing {
namespace {

// Calls `f(key id, channel, outcome, bucket start, count)` for every rollup
// row of the tenant in the query's range and granularity (key_id honoured
// when `with_key`).
template <typename F>
void ForEachUsage(const FakeDatabase& db, int64_t tenant_id,
                  const storage::UsageQuery& q, bool with_key, F f)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(db.mu) {
  const int g = q.granularity == storage::UsageGranularity::kDay ? 1 : 0;
  for (const auto& [k, count] : db.usage) {
    const auto& [tenant, gran, bucket, key_id, channel, outcome] = k;
    if (tenant != tenant_id || gran != g) continue;
    const absl::Time start = absl::FromUnixSeconds(bucket);
    if (start < q.from || start >= q.to) continue;
    if (with_key && q.key_id.has_value() && *q.key_id != key_id) continue;
    f(key_id, channel, outcome, start, count);
  }
}

}  // namespace

absl::StatusOr<std::vector<storage::UsageRow>> FakeAuditStore::ReadUsage(
    int64_t tenant_id, const storage::UsageQuery& query) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (query.from >= query.to) {
    return absl::InvalidArgumentError("usage range: from must be before to");
  }
  absl::MutexLock lock(&db_->mu);
  std::map<std::tuple<absl::Time, std::string, std::string>, int64_t> sums;
  ForEachUsage(
      *db_, tenant_id, query, true,
      [&](const std::string&, const std::string& channel,
          const std::string& outcome, absl::Time start, int64_t count) {
        sums[{start, channel, outcome}] += count;
      });
  std::vector<storage::UsageRow> rows;
  for (const auto& [k, count] : sums) {
    if (count == 0) continue;
    rows.push_back({std::get<0>(k), std::get<1>(k), std::get<2>(k), count});
  }
  return rows;
}

absl::StatusOr<std::vector<storage::KeyUsageTotal>>
FakeAuditStore::TopUsageKeys(int64_t tenant_id,
                             const storage::UsageQuery& query, bool by_failures,
                             int limit) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (query.from >= query.to || limit < 1) {
    return absl::InvalidArgumentError("usage range or limit out of range");
  }
  absl::MutexLock lock(&db_->mu);
  std::map<std::string, storage::KeyUsageTotal> totals;
  ForEachUsage(*db_, tenant_id, query, false,
               [&](const std::string& key_id, const std::string&,
                   const std::string& outcome, absl::Time, int64_t count) {
                 storage::KeyUsageTotal& t = totals[key_id];
                 t.key_id = key_id;
                 t.calls += count;
                 if (outcome != storage::kUsageOutcomeValid) {
                   t.failures += count;
                 }
               });
  std::vector<storage::KeyUsageTotal> out;
  for (const auto& [key_id, t] : totals) {
    if (by_failures ? t.failures == 0 : t.calls == 0) continue;
    out.push_back(t);
  }
  std::sort(out.begin(), out.end(),
            [by_failures](const storage::KeyUsageTotal& a,
                          const storage::KeyUsageTotal& b) {
              const int64_t x = by_failures ? a.failures : a.calls;
              const int64_t y = by_failures ? b.failures : b.calls;
              if (x != y) return x > y;
              return a.key_id < b.key_id;
            });
  if (out.size() > static_cast<size_t>(limit)) out.resize(limit);
  return out;
}

absl::StatusOr<std::vector<storage::DayCount>>
FakeAuditStore::CountSuspiciousPerDay(int64_t tenant_id, absl::Time from,
                                      absl::Time to) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  using storage::UsageGranularity;
  if (from >= to ||
      storage::UsageBucketStart(from, UsageGranularity::kDay) != from ||
      storage::UsageBucketStart(to, UsageGranularity::kDay) != to) {
    return absl::InvalidArgumentError("from and to must be UTC midnights");
  }
  absl::MutexLock lock(&db_->mu);
  std::map<absl::Time, int64_t> days;
  for (const auto& [id, row] : db_->audit) {
    const StoredAuditEvent& s = row.stored;
    if (s.tenant_id != tenant_id || !s.event.suspicious ||
        s.created_at < from || s.created_at >= to) {
      continue;
    }
    ++days[storage::UsageBucketStart(s.created_at, UsageGranularity::kDay)];
  }
  std::vector<storage::DayCount> out;
  for (const auto& [day, count] : days) out.push_back({day, count});
  return out;
}

absl::StatusOr<std::vector<storage::PreviousSecretUser>>
FakeAuditStore::ListPreviousSecretUsers(int64_t tenant_id,
                                        absl::string_view key_id,
                                        absl::Time rotated_at, int limit) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (limit < 1 || limit > 100) {
    return absl::InvalidArgumentError("limit must be 1..100");
  }
  absl::MutexLock lock(&db_->mu);
  std::vector<storage::PreviousSecretUser> out;
  for (const auto& [k, tally] : db_->previous_secret_uses) {
    const auto& [id, rotated, ip, agent] = k;
    if (id != key_id || rotated != rotated_at || tally.tenant_id != tenant_id) {
      continue;
    }
    out.push_back({ip, agent, tally.last_seen_at, tally.uses});
  }
  // Ties as the MySQL store breaks them: address, then the agent's digest.
  std::sort(out.begin(), out.end(),
            [](const storage::PreviousSecretUser& a,
               const storage::PreviousSecretUser& b) {
              if (a.last_seen_at != b.last_seen_at) {
                return a.last_seen_at > b.last_seen_at;
              }
              if (a.ip_address != b.ip_address) {
                return a.ip_address < b.ip_address;
              }
              return core::Sha256(a.user_agent) < core::Sha256(b.user_agent);
            });
  if (out.size() > static_cast<size_t>(limit)) out.resize(limit);
  return out;
}

}  // namespace lumo::testing
