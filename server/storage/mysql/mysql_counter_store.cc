#include "server/storage/mysql/mysql_counter_store.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "server/storage/counter_rules.h"
#include "server/storage/mysql/mysql_session.h"
#include "server/storage/mysql/select_list.h"

namespace lumo::storage {
namespace {

constexpr char kClockSql[] = "SELECT UTC_TIMESTAMP(6)";
constexpr char kLockHeadSql[] =
    "SELECT counter_key FROM limit_window_heads WHERE counter_key = ?"
    " FOR UPDATE";
constexpr char kInsertHeadSql[] =
    "INSERT IGNORE INTO limit_window_heads (counter_key) VALUES (?)";
constexpr char kSlotsSql[] =
    "SELECT slot, granted FROM limit_windows WHERE counter_key = ?"
    " ORDER BY slot";
// The upserts bind their values again for the update half rather than
// use VALUES(column), which MySQL 8.0 deprecates.
// expires_us: when no window counts the slot any more (WindowReset), for
// the sweep (migration 0021).
constexpr char kAddToSlotSql[] =
    "INSERT INTO limit_windows (counter_key, slot, granted, expires_us)"
    " VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE granted = granted + ?,"
    " expires_us = ?";
constexpr char kPruneSlotsSql[] =
    "DELETE FROM limit_windows WHERE counter_key = ? AND slot < ?";
constexpr char kReturnToSlotSql[] =
    "UPDATE limit_windows SET granted = GREATEST(0, granted - ?)"
    " WHERE counter_key = ? AND slot = ?";

constexpr char kLockBucketSql[] =
    "SELECT tokens, updated_us FROM limit_buckets WHERE counter_key = ?"
    " FOR UPDATE";
constexpr char kUpsertBucketSql[] =
    "INSERT INTO limit_buckets (counter_key, tokens, updated_us)"
    " VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE tokens = ?, updated_us = ?";

// Known networks of portal accounts.
constexpr char kUpsertKnownNetworkSql[] =
    "INSERT INTO limit_known_networks (account_key, network_key,"
    " last_login_us) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE"
    " last_login_us = ?";
constexpr char kKnownNetworksSql[] =
    "SELECT network_key, last_login_us FROM limit_known_networks"
    " WHERE account_key = ? ORDER BY last_login_us DESC, network_key"
    " FOR UPDATE";
constexpr char kForgetNetworkSql[] =
    "DELETE FROM limit_known_networks WHERE account_key = ?"
    " AND network_key = ?";
// The sweep: a bounded batch per statement (by idx_limit_buckets_updated
// and idx_limit_known_networks_last_login).
constexpr char kSweepBucketsSql[] =
    "DELETE FROM limit_buckets WHERE updated_us < ? LIMIT ";
constexpr char kSweepKnownNetworksSql[] =
    "DELETE FROM limit_known_networks WHERE last_login_us < ? LIMIT ";
// Window slots no window counts (by idx_limit_windows_expires), then the
// heads of counters without slots. The heads are found by a plain read
// (one pass over the heads, each probing the slots' primary key; no row
// locks) and deleted one by one by primary key, each checked again under
// its row lock: a DELETE that scanned the heads itself would lock every
// head it read until it ended, stalling the leases of live counters.
// Autocommit statements.
constexpr char kSweepWindowSlotsSql[] =
    "DELETE FROM limit_windows WHERE expires_us < ? LIMIT ";
constexpr char kFindHeadsWithoutSlotsSql[] =
    "SELECT h.counter_key FROM limit_window_heads h WHERE NOT EXISTS (SELECT 1"
    " FROM limit_windows w WHERE w.counter_key = h.counter_key) LIMIT ";
constexpr char kSweepWindowHeadSql[] =
    "DELETE FROM limit_window_heads WHERE counter_key = ? AND NOT EXISTS"
    " (SELECT 1 FROM limit_windows w"
    " WHERE w.counter_key = limit_window_heads.counter_key)";
// Heads read per pass of the sweep.
constexpr int64_t kHeadSweepBatch = 1000;
constexpr char kIsKnownNetworkSql[] =
    "SELECT last_login_us FROM limit_known_networks WHERE account_key = ?"
    " AND network_key = ? AND last_login_us > ?";

struct QuotaSelect {
  SelectList list;
  int remaining = list.Add("remaining");
  int refill_amount = list.Add("refill_amount");
  int refill_interval_ms = list.Add("refill_interval_ms");
  int period_start_us = list.Add("period_start_us");
  int epoch = list.Add("epoch");
};
constexpr char kKeyTenantSql[] = "SELECT tenant_id FROM api_keys WHERE id = ?";
constexpr char kUpsertQuotaSql[] =
    "INSERT INTO key_quotas (key_id, tenant_id, remaining, refill_amount,"
    " refill_interval_ms, period_start_us, epoch)"
    " VALUES (?, ?, ?, ?, ?, ?, 0)"
    " ON DUPLICATE KEY UPDATE remaining = ?, refill_amount = ?,"
    " refill_interval_ms = ?, period_start_us = ?, epoch = epoch + 1";
constexpr char kUpdateQuotaSql[] =
    "UPDATE key_quotas SET remaining = ?, period_start_us = ?, epoch = ?"
    " WHERE key_id = ?";
constexpr char kDeleteQuotaSql[] = "DELETE FROM key_quotas WHERE key_id = ?";
// The key's presence flag of its quota (docs/storage.md "Presence flags"),
// written in the transaction that adds or deletes the quota row.
constexpr char kSetQuotaFlagSql[] =
    "UPDATE api_keys SET has_quota = ? WHERE id = ? AND has_quota <> ?";

// Identity limits. External ids compare as bytes (utf8mb4_bin), also
// against api_keys.external_id, whose collation may fold case.
constexpr char kIdentityLimitsSql[] =
    "SELECT name, limit_count, duration_ms FROM identity_limits"
    " WHERE tenant_id = ? AND external_id = ? ORDER BY name";
// Serialises the changes of a tenant's identity limits (a locking read of
// absent identity rows would take gap locks that two first changes of
// neighbouring identities deadlock on).
constexpr char kLockTenantSql[] =
    "SELECT id FROM tenants WHERE id = ? FOR UPDATE";
constexpr char kDeleteIdentityLimitsSql[] =
    "DELETE FROM identity_limits WHERE tenant_id = ? AND external_id = ?";
// The tenant's presence flag of identity limits, after a change of them
// (the tenant row is locked: kLockTenantSql).
constexpr char kSetIdentityLimitsFlagSql[] =
    "UPDATE tenants SET has_identity_limits ="
    " EXISTS (SELECT 1 FROM identity_limits WHERE tenant_id = ?) WHERE id = ?";
constexpr char kInsertIdentityLimitSql[] =
    "INSERT INTO identity_limits (tenant_id, external_id, name, limit_count,"
    " duration_ms) VALUES (?, ?, ?, ?, ?)";
constexpr char kIdentityKeysSql[] =
    "SELECT id, version FROM api_keys WHERE tenant_id = ? AND external_id = ?"
    " AND external_id COLLATE utf8mb4_bin = ? AND deleted_at IS NULL"
    " ORDER BY id";

absl::StatusOr<absl::Time> DbNow(Session& s) {
  s.Step("read clock");
  std::unique_ptr<sql::ResultSet> rs = s.Query(s.Prepare(kClockSql));
  if (!rs->next()) return absl::InternalError("clock query returned no row");
  return GetTime(*rs, 1);
}

absl::Time FromMicros(int64_t us) { return absl::FromUnixMicros(us); }
int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }

// Locks the quota row of `key_id` and reads it with the clock; NOT_FOUND
// without a quota.
absl::Status LockQuota(Session& s, absl::string_view key_id, QuotaRow& row,
                       absl::Time& now) {
  const QuotaSelect& c = SelectOf<QuotaSelect>();
  s.Step("lock quota");
  sql::PreparedStatement& stmt =
      s.Prepare("SELECT " + c.list.sql() +
                " FROM key_quotas WHERE key_id = ? FOR UPDATE");
  stmt.setString(1, Str(key_id));
  std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
  if (!rs->next()) return absl::NotFoundError("the key has no quota");
  row.remaining = rs->getInt64(c.remaining);
  row.refill.reset();
  if (!rs->isNull(c.refill_amount)) {
    row.refill = Refill{rs->getInt64(c.refill_amount),
                        absl::Milliseconds(rs->getInt64(c.refill_interval_ms))};
  }
  row.period_start = FromMicros(rs->getInt64(c.period_start_us));
  row.epoch = rs->getInt64(c.epoch);
  absl::StatusOr<absl::Time> t = DbNow(s);
  if (!t.ok()) return t.status();
  now = *t;
  return absl::OkStatus();
}

void StoreQuota(Session& s, absl::string_view key_id, const QuotaRow& row) {
  s.Step("update quota");
  sql::PreparedStatement& stmt = s.Prepare(kUpdateQuotaSql);
  stmt.setInt64(1, row.remaining);
  stmt.setInt64(2, Micros(row.period_start));
  stmt.setInt64(3, row.epoch);
  stmt.setString(4, Str(key_id));
  s.Update(stmt);
}

// Runs `change` on the key's quota row (after any due refill) in one
// transaction and stores the row when `change` or the refill changed it.
absl::Status ChangeQuota(
    ConnectionPool& pool, absl::string_view what, absl::string_view key_id,
    absl::FunctionRef<bool(QuotaRow&, absl::Time)> change) {
  return Run(pool, what, [&](Session& s) -> absl::Status {
    s.Begin();
    QuotaRow row;
    absl::Time now;
    if (absl::Status st = LockQuota(s, key_id, row, now); !st.ok()) {
      s.Rollback();
      return st;
    }
    const bool refilled = ApplyDueRefill(row, now);
    if (change(row, now) || refilled) StoreQuota(s, key_id, row);
    s.Commit();
    return absl::OkStatus();
  });
}

// The tenant of key `key_id` (nullopt: no such key).
std::optional<int64_t> KeyTenant(Session& s, absl::string_view key_id) {
  s.Step("lock key");
  sql::PreparedStatement& find = s.Prepare(kKeyTenantSql);
  find.setString(1, Str(key_id));
  std::unique_ptr<sql::ResultSet> key = s.Query(find);
  if (!key->next()) return std::nullopt;
  return key->getInt64(1);
}

// Inserts the key's quota row, or replaces its balance, refill and period
// start and moves its epoch on by one.
// Sets the presence flag of the key's quota to `has_quota`, in the
// transaction that added or deleted the row.
void SetQuotaFlag(Session& s, absl::string_view key_id, bool has_quota) {
  s.Step("set quota flag");
  sql::PreparedStatement& stmt = s.Prepare(kSetQuotaFlagSql);
  stmt.setInt(1, has_quota ? 1 : 0);
  stmt.setString(2, Str(key_id));
  stmt.setInt(3, has_quota ? 1 : 0);
  s.Update(stmt);
}

// Deletes the key's quota row and clears its presence flag.
void DeleteQuota(Session& s, absl::string_view key_id) {
  s.Step("delete quota");
  sql::PreparedStatement& del = s.Prepare(kDeleteQuotaSql);
  del.setString(1, Str(key_id));
  s.Update(del);
  SetQuotaFlag(s, key_id, false);
}

void UpsertQuota(Session& s, absl::string_view key_id, int64_t tenant_id,
                 int64_t remaining, const std::optional<Refill>& refill,
                 absl::Time period_start) {
  s.Step("upsert quota");
  sql::PreparedStatement& upsert = s.Prepare(kUpsertQuotaSql);
  upsert.setString(1, Str(key_id));
  upsert.setInt64(2, tenant_id);
  for (int offset : {0, 4}) {
    upsert.setInt64(3 + offset, remaining);
    if (refill.has_value()) {
      upsert.setInt64(4 + offset, refill->amount);
      upsert.setInt64(5 + offset, absl::ToInt64Milliseconds(refill->interval));
    } else {
      upsert.setNull(4 + offset, 0);
      upsert.setNull(5 + offset, 0);
    }
    upsert.setInt64(6 + offset, Micros(period_start));
  }
  s.Update(upsert);
  SetQuotaFlag(s, key_id, true);
}

// The identity's limits, by name.
std::vector<KeyRateLimit> ReadIdentityLimits(Session& s, int64_t tenant_id,
                                             absl::string_view external_id) {
  s.Step("read identity limits");
  sql::PreparedStatement& stmt = s.Prepare(kIdentityLimitsSql);
  stmt.setInt64(1, tenant_id);
  stmt.setString(2, Str(external_id));
  std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
  std::vector<KeyRateLimit> out;
  while (rs->next()) {
    out.push_back({rs->getString(1).asStdString(), rs->getInt64(2),
                   absl::Milliseconds(rs->getInt64(3))});
  }
  return out;
}

}  // namespace

absl::StatusOr<WindowLease> MysqlCounterStore::LeaseWindow(
    absl::string_view counter, const WindowSpec& spec, int64_t want,
    int64_t debt) {
  if (absl::Status s = CheckCounterKey(counter); !s.ok()) return s;
  if (absl::Status s = CheckWindowLease(spec, want, debt); !s.ok()) return s;
  WindowLease out;
  // Retry-safe: read and written inside the transaction, `out` afresh. The
  // first leases of a new counter from several replicas at once deadlock on
  // its head row (gap locks of the locking read that finds no row, then the
  // inserts), and on Galera they also lose certification: the random pause
  // between attempts keeps them from meeting again in step.
  absl::Status status =
      Run(*pool_, "lease window", OnConflict::kRetry,
          [&](Session& s) -> absl::Status {
            out = WindowLease();
            s.Begin();
            s.Step("lock counter");
            sql::PreparedStatement& lock = s.Prepare(kLockHeadSql);
            lock.setString(1, Str(counter));
            // A missing head is inserted, then locked; the sweep may
            // delete a head between the two (its counter had no slots),
            // so a few tries.
            for (int attempt = 0; !s.Query(lock)->next(); ++attempt) {
              if (attempt == 3) {
                return absl::InternalError("counter head vanished");
              }
              s.Step("insert counter");
              sql::PreparedStatement& insert = s.Prepare(kInsertHeadSql);
              insert.setString(1, Str(counter));
              s.Update(insert);
              s.Step("lock counter");
            }
            absl::StatusOr<absl::Time> now = DbNow(s);
            if (!now.ok()) return now.status();
            out.db_now = *now;
            out.slot = SlotOf(out.db_now, spec.slot);
            out.slot_end = SlotStart(out.slot + 1, spec.slot);
            const int64_t first = FirstCountedSlot(out.slot);
            s.Step("read slots");
            sql::PreparedStatement& read = s.Prepare(kSlotsSql);
            read.setString(1, Str(counter));
            std::unique_ptr<sql::ResultSet> rs = s.Query(read);
            int64_t used = debt;
            int64_t oldest = out.slot;
            bool stale = false;
            bool seen = false;
            while (rs->next()) {
              const int64_t slot = rs->getInt64(1);
              const int64_t granted = rs->getInt64(2);
              if (slot < first) {
                stale = true;
                continue;
              }
              used += granted;
              if (granted > 0 && !seen) {
                oldest = slot;
                seen = true;
              }
            }
            out.granted = std::clamp<int64_t>(spec.limit - used, 0, want);
            out.used = used + out.granted;
            if (debt + out.granted > 0) {
              s.Step("add to slot");
              sql::PreparedStatement& add = s.Prepare(kAddToSlotSql);
              add.setString(1, Str(counter));
              add.setInt64(2, out.slot);
              add.setInt64(3, debt + out.granted);
              const int64_t expires = Micros(WindowReset(out.slot, spec.slot));
              add.setInt64(4, expires);
              add.setInt64(5, debt + out.granted);
              add.setInt64(6, expires);
              s.Update(add);
            }
            out.reset = WindowReset(oldest, spec.slot);
            if (stale) {
              s.Step("prune slots");
              sql::PreparedStatement& prune = s.Prepare(kPruneSlotsSql);
              prune.setString(1, Str(counter));
              prune.setInt64(2, first);
              s.Update(prune);
            }
            s.Commit();
            return absl::OkStatus();
          });
  if (!status.ok()) return status;
  return out;
}

absl::Status MysqlCounterStore::ReturnWindow(absl::string_view counter,
                                             int64_t slot, int64_t amount) {
  if (absl::Status s = CheckCounterKey(counter); !s.ok()) return s;
  if (amount < 0) return absl::InvalidArgumentError("amount must be >= 0");
  return Run(*pool_, "return window", [&](Session& s) -> absl::Status {
    s.Step("return to slot");
    sql::PreparedStatement& stmt = s.Prepare(kReturnToSlotSql);
    stmt.setInt64(1, amount);
    stmt.setString(2, Str(counter));
    stmt.setInt64(3, slot);
    s.Update(stmt);
    return absl::OkStatus();
  });
}

namespace {

// Locks the bucket row (a missing row is a full bucket, inserted by the
// caller's upsert) and refills it to the database clock.
absl::StatusOr<BucketRow> LockBucket(Session& s, absl::string_view counter,
                                     const BucketSpec& spec) {
  s.Step("lock bucket");
  sql::PreparedStatement& lock = s.Prepare(kLockBucketSql);
  lock.setString(1, Str(counter));
  std::unique_ptr<sql::ResultSet> rs = s.Query(lock);
  std::optional<BucketRow> row;
  if (rs->next()) {
    row = BucketRow{static_cast<double>(rs->getDouble(1)),
                    FromMicros(rs->getInt64(2))};
  }
  absl::StatusOr<absl::Time> now = DbNow(s);
  if (!now.ok()) return now.status();
  return RefilledBucket(row, spec, *now);
}

void StoreBucket(Session& s, absl::string_view counter, const BucketRow& row) {
  s.Step("store bucket");
  sql::PreparedStatement& stmt = s.Prepare(kUpsertBucketSql);
  stmt.setString(1, Str(counter));
  for (int offset : {0, 2}) {
    stmt.setDouble(2 + offset, row.tokens);
    stmt.setInt64(3 + offset, Micros(row.updated));
  }
  s.Update(stmt);
}

}  // namespace

absl::StatusOr<BucketLease> MysqlCounterStore::LeaseBucket(
    absl::string_view counter, const BucketSpec& spec, int64_t want) {
  if (absl::Status s = CheckCounterKey(counter); !s.ok()) return s;
  if (absl::Status s = CheckBucketLease(spec, want); !s.ok()) return s;
  BucketLease out;
  // Retry-safe: read and written inside the transaction, `out` afresh. The
  // first leases of a new bucket from several replicas at once deadlock
  // (the locking reads that find no row take gap locks, then every one of
  // them inserts): one wins, the others run again and find its row. Not
  // retried, such a conflict would fail the lease, and a caller that counts
  // alone when the store fails would let the attempt through.
  absl::Status status =
      Run(*pool_, "lease bucket", OnConflict::kRetry,
          [&](Session& s) -> absl::Status {
            out = BucketLease();
            s.Begin();
            absl::StatusOr<BucketRow> row = LockBucket(s, counter, spec);
            if (!row.ok()) return row.status();
            out.db_now = row->updated;
            out.granted = std::clamp<int64_t>(
                static_cast<int64_t>(std::floor(row->tokens)), 0, want);
            row->tokens -= out.granted;
            out.left = static_cast<int64_t>(std::floor(row->tokens));
            out.next_token_in = NextTokenIn(row->tokens, spec);
            StoreBucket(s, counter, *row);
            s.Commit();
            return absl::OkStatus();
          });
  if (!status.ok()) return status;
  return out;
}

absl::Status MysqlCounterStore::ReturnBucket(absl::string_view counter,
                                             const BucketSpec& spec,
                                             int64_t amount) {
  if (absl::Status s = CheckCounterKey(counter); !s.ok()) return s;
  if (absl::Status s = CheckBucketLease(spec, amount); !s.ok()) return s;
  // Retry-safe like LeaseBucket (a return may create the row too).
  return Run(*pool_, "return bucket", OnConflict::kRetry,
             [&](Session& s) -> absl::Status {
               s.Begin();
               absl::StatusOr<BucketRow> row = LockBucket(s, counter, spec);
               if (!row.ok()) return row.status();
               row->tokens = std::min(spec.capacity, row->tokens + amount);
               StoreBucket(s, counter, *row);
               s.Commit();
               return absl::OkStatus();
             });
}

absl::Status MysqlCounterStore::RememberNetwork(absl::string_view account,
                                                absl::string_view network,
                                                size_t keep,
                                                absl::Duration ttl) {
  if (absl::Status s = CheckKnownNetwork(account, network, keep, ttl);
      !s.ok()) {
    return s;
  }
  return Run(*pool_, "remember network", [&](Session& s) -> absl::Status {
    s.Begin();
    absl::StatusOr<absl::Time> now = DbNow(s);
    if (!now.ok()) return now.status();
    s.Step("store known network");
    sql::PreparedStatement& upsert = s.Prepare(kUpsertKnownNetworkSql);
    upsert.setString(1, Str(account));
    upsert.setString(2, Str(network));
    upsert.setInt64(3, Micros(*now));
    upsert.setInt64(4, Micros(*now));
    s.Update(upsert);
    s.Step("read known networks");
    sql::PreparedStatement& list = s.Prepare(kKnownNetworksSql);
    list.setString(1, Str(account));
    std::vector<std::string> forget;
    {
      std::unique_ptr<sql::ResultSet> rs = s.Query(list);
      for (size_t i = 0; rs->next(); ++i) {
        if (i >= keep || FromMicros(rs->getInt64(2)) <= *now - ttl) {
          forget.push_back(rs->getString(1).asStdString());
        }
      }
    }
    for (const std::string& old : forget) {
      s.Step("forget known network");
      sql::PreparedStatement& del = s.Prepare(kForgetNetworkSql);
      del.setString(1, Str(account));
      del.setString(2, old);
      s.Update(del);
    }
    s.Commit();
    return absl::OkStatus();
  });
}

absl::StatusOr<int64_t> MysqlCounterStore::SweepStale(
    absl::Duration bucket_idle, absl::Duration known_ttl, int64_t limit) {
  if (absl::Status s = CheckSweep(bucket_idle, known_ttl, limit); !s.ok()) {
    return s;
  }
  int64_t deleted = 0;
  absl::Status status =
      Run(*pool_, "sweep counters", [&](Session& s) -> absl::Status {
        deleted = 0;
        absl::StatusOr<absl::Time> now = DbNow(s);
        if (!now.ok()) return now.status();
        const std::pair<const char*, absl::Duration> sweeps[] = {
            {kSweepBucketsSql, bucket_idle},
            {kSweepKnownNetworksSql, known_ttl}};
        for (const auto& [sql_text, age] : sweeps) {
          s.Step("sweep stale counter rows");
          // The batch size is a number this process chose, not input.
          sql::PreparedStatement& stmt =
              s.Prepare(absl::StrCat(sql_text, limit));
          stmt.setInt64(1, Micros(*now - age));
          deleted += static_cast<int64_t>(s.Update(stmt));
        }
        s.Step("sweep window slots");
        sql::PreparedStatement& slots =
            s.Prepare(absl::StrCat(kSweepWindowSlotsSql, limit));
        slots.setInt64(1, Micros(*now));
        deleted += static_cast<int64_t>(s.Update(slots));
        int64_t heads_deleted = 0;
        for (int64_t pass = 0;
             heads_deleted < limit && pass <= limit / kHeadSweepBatch; ++pass) {
          const int64_t batch =
              std::min(kHeadSweepBatch, limit - heads_deleted);
          s.Step("find window heads without slots");
          // The batch size is a number this process chose, not input.
          sql::PreparedStatement& find =
              s.Prepare(absl::StrCat(kFindHeadsWithoutSlotsSql, batch));
          std::vector<std::string> candidates;
          {
            std::unique_ptr<sql::ResultSet> rs = s.Query(find);
            while (rs->next()) {
              candidates.push_back(rs->getString(1).asStdString());
            }
          }
          s.Step("sweep window head");
          for (const std::string& counter : candidates) {
            sql::PreparedStatement& del = s.Prepare(kSweepWindowHeadSql);
            del.setString(1, counter);
            heads_deleted += static_cast<int64_t>(s.Update(del));
          }
          if (static_cast<int64_t>(candidates.size()) < batch) break;
        }
        deleted += heads_deleted;
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return deleted;
}

absl::StatusOr<bool> MysqlCounterStore::IsKnownNetwork(
    absl::string_view account, absl::string_view network, absl::Duration ttl) {
  if (absl::Status s = CheckKnownNetwork(account, network, 1, ttl); !s.ok()) {
    return s;
  }
  bool known = false;
  absl::Status status =
      Run(*pool_, "is known network", [&](Session& s) -> absl::Status {
        absl::StatusOr<absl::Time> now = DbNow(s);
        if (!now.ok()) return now.status();
        s.Step("find known network");
        sql::PreparedStatement& stmt = s.Prepare(kIsKnownNetworkSql);
        stmt.setString(1, Str(account));
        stmt.setString(2, Str(network));
        stmt.setInt64(3, Micros(*now - ttl));
        known = s.Query(stmt)->next();
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return known;
}

absl::StatusOr<QuotaState> MysqlCounterStore::SetQuota(
    absl::string_view key_id, int64_t remaining, std::optional<Refill> refill) {
  if (absl::Status s = CheckQuota(remaining, refill); !s.ok()) return s;
  QuotaState out;
  absl::Status status =
      Run(*pool_, "set quota", [&](Session& s) -> absl::Status {
        s.Begin();
        const std::optional<int64_t> tenant_id = KeyTenant(s, key_id);
        if (!tenant_id.has_value()) {
          s.Rollback();
          return absl::NotFoundError("no such key");
        }
        absl::StatusOr<absl::Time> now = DbNow(s);
        if (!now.ok()) return now.status();
        UpsertQuota(s, key_id, *tenant_id, remaining, refill, *now);
        QuotaRow row;
        absl::Time read_now;
        if (absl::Status st = LockQuota(s, key_id, row, read_now); !st.ok()) {
          return st;
        }
        out = StateOf(row, *now);
        s.Commit();
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return out;
}

absl::Status MysqlCounterStore::ClearQuota(absl::string_view key_id) {
  return Run(*pool_, "clear quota", [&](Session& s) -> absl::Status {
    s.Begin();
    DeleteQuota(s, key_id);
    s.Commit();
    return absl::OkStatus();
  });
}

absl::StatusOr<QuotaState> MysqlCounterStore::GetQuota(
    absl::string_view key_id) {
  QuotaState out;
  absl::Status status = ChangeQuota(*pool_, "read quota", key_id,
                                    [&](QuotaRow& row, absl::Time now) {
                                      out = StateOf(row, now);
                                      return false;
                                    });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<QuotaState> MysqlCounterStore::AddCredits(
    absl::string_view key_id, int64_t delta) {
  QuotaState out;
  absl::Status status = ChangeQuota(
      *pool_, "add credits", key_id, [&](QuotaRow& row, absl::Time now) {
        row.remaining = delta < 0 ? std::max<int64_t>(0, row.remaining + delta)
                                  : row.remaining + delta;
        ++row.epoch;
        out = StateOf(row, now);
        return true;
      });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<CreditsChange> MysqlCounterStore::ChangeCredits(
    absl::string_view key_id, const CreditsUpdate& update,
    absl::FunctionRef<AuditEvent(const CreditsChange&)> audit) {
  if (update.op == CreditsOp::kSet) {
    if (absl::Status s = CheckQuota(update.value, update.refill); !s.ok()) {
      return s;
    }
  }
  CreditsChange out;
  absl::Status status =
      Run(*pool_, "change credits", [&](Session& s) -> absl::Status {
        out = CreditsChange();
        s.Begin();
        const std::optional<int64_t> tenant_id = KeyTenant(s, key_id);
        if (!tenant_id.has_value()) {
          s.Rollback();
          return absl::NotFoundError("no such key");
        }
        out.tenant_id = *tenant_id;
        QuotaRow row;
        absl::Time now;
        absl::Status found = LockQuota(s, key_id, row, now);
        if (!found.ok() && !absl::IsNotFound(found)) return found;
        if (found.ok()) {
          ApplyDueRefill(row, now);
          out.before = StateOf(row, now);
        } else {
          absl::StatusOr<absl::Time> t = DbNow(s);
          if (!t.ok()) return t.status();
          now = *t;
        }
        switch (update.op) {
          case CreditsOp::kSet:
            row.remaining = update.value;
            row.refill = update.refill;
            row.period_start = now;
            row.epoch = out.before.has_value() ? out.before->epoch + 1 : 0;
            UpsertQuota(s, key_id, out.tenant_id, row.remaining, row.refill,
                        now);
            // The upsert moved the stored epoch on by one; the refill
            // applied above (if any) is stored with the row.
            StoreQuota(s, key_id, row);
            out.after = StateOf(row, now);
            break;
          case CreditsOp::kAdd:
            if (!out.before.has_value()) {
              s.Rollback();
              return absl::NotFoundError("the key has no quota");
            }
            row.remaining =
                update.value < 0
                    ? std::max<int64_t>(0, row.remaining + update.value)
                    : row.remaining + update.value;
            ++row.epoch;
            StoreQuota(s, key_id, row);
            out.after = StateOf(row, now);
            break;
          case CreditsOp::kRemove: {
            if (!out.before.has_value()) {
              s.Rollback();
              return absl::OkStatus();
            }
            DeleteQuota(s, key_id);
            break;
          }
        }
        return InsertAuditAndCommit(s, out.tenant_id, audit(out));
      });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<CreditLease> MysqlCounterStore::LeaseCredits(
    absl::string_view key_id, int64_t want) {
  if (want < 0) return absl::InvalidArgumentError("want must be >= 0");
  CreditLease out;
  absl::Status status = ChangeQuota(
      *pool_, "lease credits", key_id, [&](QuotaRow& row, absl::Time now) {
        out = CreditLease();
        out.granted = std::min(want, row.remaining);
        row.remaining -= out.granted;
        out.remaining = row.remaining;
        out.epoch = row.epoch;
        out.next_refill = NextRefill(row);
        out.db_now = now;
        return out.granted > 0;
      });
  if (!status.ok()) return status;
  return out;
}

absl::Status MysqlCounterStore::ReturnCredits(absl::string_view key_id,
                                              int64_t epoch, int64_t amount) {
  if (amount < 0) return absl::InvalidArgumentError("amount must be >= 0");
  absl::Status status = ChangeQuota(*pool_, "return credits", key_id,
                                    [&](QuotaRow& row, absl::Time) {
                                      if (row.epoch != epoch) return false;
                                      row.remaining += amount;
                                      return amount > 0;
                                    });
  return absl::IsNotFound(status) ? absl::OkStatus() : status;
}

absl::StatusOr<std::vector<KeyRateLimit>> MysqlCounterStore::GetIdentityLimits(
    int64_t tenant_id, absl::string_view external_id) {
  if (absl::Status s = CheckIdentityLimits(external_id, {}); !s.ok()) return s;
  std::vector<KeyRateLimit> out;
  absl::Status status =
      Run(*pool_, "read identity limits", [&](Session& s) -> absl::Status {
        out = ReadIdentityLimits(s, tenant_id, external_id);
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<IdentityLimitsChange> MysqlCounterStore::SetIdentityLimits(
    int64_t tenant_id, absl::string_view external_id,
    const std::vector<KeyRateLimit>& limits,
    absl::FunctionRef<AuditEvent(const std::vector<KeyRateLimit>& before)>
        audit) {
  if (absl::Status s = CheckIdentityLimits(external_id, limits); !s.ok()) {
    return s;
  }
  IdentityLimitsChange out;
  absl::Status status =
      Run(*pool_, "set identity limits", [&](Session& s) -> absl::Status {
        out = IdentityLimitsChange();
        s.Begin();
        s.Step("lock tenant");
        sql::PreparedStatement& lock = s.Prepare(kLockTenantSql);
        lock.setInt64(1, tenant_id);
        if (!s.Query(lock)->next()) {
          s.Rollback();
          return absl::NotFoundError("no such tenant");
        }
        out.before = ReadIdentityLimits(s, tenant_id, external_id);
        s.Step("delete identity limits");
        sql::PreparedStatement& del = s.Prepare(kDeleteIdentityLimitsSql);
        del.setInt64(1, tenant_id);
        del.setString(2, Str(external_id));
        s.Update(del);
        for (const KeyRateLimit& l : limits) {
          s.Step("insert identity limit");
          sql::PreparedStatement& ins = s.Prepare(kInsertIdentityLimitSql);
          ins.setInt64(1, tenant_id);
          ins.setString(2, Str(external_id));
          ins.setString(3, Str(l.name));
          ins.setInt64(4, l.limit);
          ins.setInt64(5, absl::ToInt64Milliseconds(l.duration));
          s.Update(ins);
        }
        s.Step("set identity limits flag");
        sql::PreparedStatement& flag = s.Prepare(kSetIdentityLimitsFlagSql);
        flag.setInt64(1, tenant_id);
        flag.setInt64(2, tenant_id);
        s.Update(flag);
        s.Step("list identity keys");
        sql::PreparedStatement& keys = s.Prepare(kIdentityKeysSql);
        keys.setInt64(1, tenant_id);
        keys.setString(2, Str(external_id));
        keys.setString(3, Str(external_id));
        std::unique_ptr<sql::ResultSet> rs = s.Query(keys);
        while (rs->next()) {
          out.keys.push_back({rs->getString(1).asStdString(), rs->getInt64(2)});
        }
        return InsertAuditAndCommit(s, tenant_id, audit(out.before));
      });
  if (!status.ok()) return status;
  return out;
}

}  // namespace lumo::storage
