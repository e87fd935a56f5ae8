#include "server/storage/mysql/mysql_key_store.h"

#include <cppconn/datatype.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "server/fault/fault_points.h"
#include "server/storage/counter_rules.h"
#include "server/storage/mysql/datetime.h"
#include "server/storage/mysql/key_policy_columns.h"
#include "server/storage/mysql/keyset.h"
#include "server/storage/mysql/mysql_audit_chain.h"
#include "server/storage/mysql/mysql_session.h"
#include "server/storage/mysql/retired_copy.h"
#include "server/storage/mysql/select_list.h"
#include "server/storage/mysql/sql_error.h"

namespace lumo::storage {

namespace {

// ---------------------------------------------------------------------------
// SQL. Values are always bound; the only spliced text is from this file.

// NULL when `condition` holds, else `subquery`.
std::string Unless(absl::string_view condition, absl::string_view subquery) {
  return absl::StrCat("IF(", condition, ", NULL, ", subquery, ")");
}

// True when the key has no retired secrets: its copy of them
// (retired_copy.h) is current and empty.
constexpr char kNoRetiredSecrets[] =
    "k.retired_copy_version = k.version AND k.retired_copy IS NULL";

// The parts of a key that few keys have, each read by a correlated
// subquery over `k` (api_keys). The verification read leaves them out for
// the keys whose presence flags say they have none (RareSelect).
//
// The key's named limits: "name:limit:duration ms" items joined by ','.
//
// A record read (KeyColumns kRecord) guards each with the key's presence
// flag (Unless): IF evaluates only the branch it takes, so the subquery runs
// only for a key that may have such rows; a flag that is 0 means no such
// row (docs/storage.md "Presence flags").
constexpr char kRateLimitsColumn[] =
    "(SELECT GROUP_CONCAT(CONCAT(l.name, ':', l.limit_count, ':',"
    " l.duration_ms) ORDER BY l.name SEPARATOR ',') FROM key_limits l"
    " WHERE l.key_id = k.id)";
// The key's quota: remaining:refill amount:refill interval ms, the balance
// after any refill due now (sessions run in UTC).
constexpr char kQuotaColumn[] =
    "(SELECT CONCAT(IF(q.refill_interval_ms IS NOT NULL AND"
    " UNIX_TIMESTAMP(NOW(6)) * 1000000 >="
    " q.period_start_us + q.refill_interval_ms * 1000,"
    " q.refill_amount, q.remaining), ':', COALESCE(q.refill_amount, 0),"
    " ':', COALESCE(q.refill_interval_ms, 0)) FROM key_quotas q"
    " WHERE q.key_id = k.id)";
// The limits of the key's identity (docs/limits.md "Identity limits");
// external ids compare as bytes.
constexpr char kIdentityLimitsColumn[] =
    "(SELECT GROUP_CONCAT(CONCAT(il.name, ':', il.limit_count, ':',"
    " il.duration_ms) ORDER BY il.name SEPARATOR ',') FROM identity_limits il"
    " WHERE il.tenant_id = k.tenant_id AND k.external_id <> ''"
    " AND il.external_id = k.external_id COLLATE utf8mb4_bin)";

// Which api_keys columns a read selects: kRecord every column of an
// ApiKeyRecord; kVerify what verification uses (VerifyRecord's contract in
// server/storage/key_store.h), without the named limits and quota (a later
// RareSelect reads them for the keys whose presence flags name them) and
// without the creator and the revocation and disabling times. Connector/C++
// binds and converts every column a row carries, so each one left out is
// CPU saved on every cold verification.
enum class KeyColumnSet { kRecord, kVerify };

// The api_keys columns of a record read; a column the set leaves out has
// index 0 (SelectList columns count from 1) and ReadKeyColumns leaves its
// field as it was.
struct KeyColumns {
  explicit KeyColumns(SelectList& s, KeyColumnSet set = KeyColumnSet::kRecord)
      : id(s.Add("k.id")),
        tenant_id(s.Add("k.tenant_id")),
        name(s.Add("k.name")),
        external_id(s.Add("k.external_id")),
        metadata(s.Add("k.metadata")),
        scopes(s.Add("k.scopes")),
        allowed_cidrs(s.Add("k.allowed_cidrs")),
        rate_limit_per_minute(s.Add("k.rate_limit_per_minute")),
        rate_limits(
            AddFor(s, set, Unless("k.has_limits = 0", kRateLimitsColumn))),
        quota(AddFor(s, set, Unless("k.has_quota = 0", kQuotaColumn))),
        revoked(s.Add("k.revoked")),
        disabled(s.Add("k.disabled")),
        decoy(s.Add("k.decoy")),
        version(s.Add("k.version")),
        created_by_type(AddFor(s, set, "k.created_by_type")),
        created_by_id(AddFor(s, set, "k.created_by_id")),
        created_at(s.Add("k.created_at")),
        last_used_at(s.Add("k.last_used_at")),
        expires_at(s.Add("k.expires_at")),
        rotated_at(s.Add("k.rotated_at")),
        revoked_at(AddFor(s, set, "k.revoked_at")),
        disabled_at(AddFor(s, set, "k.disabled_at")) {}
  int id, tenant_id, name, external_id, metadata, scopes, allowed_cidrs,
      rate_limit_per_minute, rate_limits, quota, revoked, disabled, decoy,
      version, created_by_type, created_by_id, created_at, last_used_at,
      expires_at, rotated_at, revoked_at, disabled_at;

 private:
  // `expression` when `set` is kRecord; 0 (not selected) for kVerify.
  static int AddFor(SelectList& s, KeyColumnSet set,
                    absl::string_view expression) {
    return set == KeyColumnSet::kRecord ? s.Add(expression) : 0;
  }
};

// Latest end of a grace period still running.
std::string GraceColumn() {
  return Unless(kNoRetiredSecrets,
                "(SELECT MAX(r.valid_until) FROM api_key_retired_secrets r"
                " WHERE r.tenant_id = k.tenant_id AND r.key_id = k.id"
                " AND r.valid_until > UTC_TIMESTAMP(6))");
}

// A record: the key columns, the latest running grace period and the clock.
struct RecordColumns {
  RecordColumns(SelectList& s, absl::string_view grace_column,
                absl::string_view clock)
      : key(s), grace(s.Add(grace_column)), now(s.Add(clock)) {}
  KeyColumns key;
  int grace;
  int now;
};

// GetKey.
struct RecordSelect {
  SelectList list;
  RecordColumns record{list, GraceColumn(), "UTC_TIMESTAMP(6)"};
  std::string sql = absl::StrCat("SELECT ", list.sql(),
                                 " FROM api_keys k"
                                 " WHERE k.tenant_id = ? AND k.id = ?"
                                 " AND k.deleted_at IS NULL");
};

// GetKeyWithPolicy: GetKey's record and the tenant's key policy.
struct RecordWithPolicySelect {
  SelectList list;
  RecordColumns record{list, GraceColumn(), "UTC_TIMESTAMP(6)"};
  KeyPolicyColumns policy{list, "ts"};
  std::string sql = absl::StrCat(
      "SELECT ", list.sql(),
      " FROM api_keys k LEFT JOIN tenant_settings ts"
      " ON ts.tenant_id = k.tenant_id"
      " WHERE k.tenant_id = ? AND k.id = ? AND k.deleted_at IS NULL");
};

// The locking read that starts every mutation. The grace column counts only
// the retired secrets a rotation keeps (the newest kMaxRetiredSecrets - 1),
// and the clock is read with SYSDATE(6), which is evaluated after the row
// lock is granted, so serialised mutations see increasing times. It also
// reads the current secret.
struct LockSelect {
  SelectList list;
  RecordColumns record{
      list,
      Unless(kNoRetiredSecrets,
             absl::StrCat(
                 "(SELECT MAX(r.valid_until) FROM api_key_retired_secrets r"
                 " WHERE r.tenant_id = k.tenant_id AND r.key_id = k.id"
                 " AND r.valid_until > UTC_TIMESTAMP(6)"
                 " AND r.key_version > k.version - ",
                 kMaxRetiredSecrets, ")")),
      "SYSDATE(6)"};
  int digest = list.Add("k.digest");
  int pepper_version = list.Add("k.pepper_version");
  // The retired secrets' copy (retired_copy.h) and whether it is current.
  int retired_copy = list.Add("k.retired_copy");
  int retired_copy_current = list.Add("k.retired_copy_version = k.version");
  std::string sql =
      absl::StrCat("SELECT ", list.sql(),
                   " FROM api_keys k WHERE k.tenant_id = ? AND k.id = ?"
                   " AND k.deleted_at IS NULL FOR UPDATE");
};

// A page of ListKeys, over the page's rows only (keyset.h).
struct PageSelect {
  SelectList list;
  RecordColumns record{list, GraceColumn(), "UTC_TIMESTAMP(6)"};
};

// Bits of a key's presence flags (VerifySelect::rare_parts): which parts
// that few keys have this key may have (docs/storage.md "Presence flags").
constexpr int kRateLimitsPart = 1;
constexpr int kQuotaPart = 2;
constexpr int kIdentityLimitsPart = 4;
constexpr int kAllRareParts =
    kRateLimitsPart | kQuotaPart | kIdentityLimitsPart;

// Not a presence flag: the key's copy of its retired secrets is not current
// (a server of an earlier release changed the key), so they are read from
// their table (RetiredSelect).
constexpr int kRetiredPart = 8;

// LoadForVerify: the key with its tenant and secrets, one row per key. The
// retired secrets come from the key row's copy of them (retired_copy.h)
// while it is current; the reader sorts them. Joining their table made
// every cold verification a join MariaDB executes row by row instead of a
// statement whose tables are all found by primary key, which it answers
// while optimising it (docs/storage.md "What the verification read
// names").
//
// The key's named limits, its quota and its identity's limits are left
// out: `rare_parts` says which of them the key may have, and RareSelect
// reads only those, for the keys that have any. MariaDB's cost per call
// follows the number of tables a statement names, whether or not it finds
// rows in them (docs/benchmarks.md "Cold verification: the read is the
// bound"), and most keys have none of these parts.
struct VerifySelect {
  SelectList list;
  KeyColumns key{list, KeyColumnSet::kVerify};
  int tenant_slug = list.Add("t.slug");
  int deleted = list.Add("k.deleted_at IS NOT NULL");
  int digest = list.Add("k.digest");
  int pepper_version = list.Add("k.pepper_version");
  int retired_copy = list.Add("k.retired_copy");
  int now = list.Add("UTC_TIMESTAMP(6)");
  // The tenant row's copy of its key policy (migration 0023).
  KeyPolicyColumns policy{list, "t"};
  int rare_parts = list.Add(absl::StrCat(
      "IF(k.has_limits <> 0, ", kRateLimitsPart, ", 0) + IF(k.has_quota <> 0, ",
      kQuotaPart,
      ", 0) + IF(t.has_identity_limits <> 0 AND k.external_id <> '', ",
      kIdentityLimitsPart, ", 0) + IF(k.retired_copy_version = k.version, 0, ",
      kRetiredPart, ")"));
  std::string from =
      absl::StrCat("SELECT ", list.sql(),
                   " FROM api_keys k JOIN tenants t ON t.id = k.tenant_id");
  std::string sql = absl::StrCat(from, " WHERE k.id = ?");
  // LoadManyForVerify: kVerifyBatchChunk ids (repeated to fill), a row for
  // each in no order.
  std::string many_sql = absl::StrCat(
      from, " WHERE k.id IN (?",
      absl::StrJoin(
          std::vector<std::string>(MysqlKeyStore::kVerifyBatchChunk - 1, ", ?"),
          ""),
      ")");
};

// The parts VerifySelect left out that a key's presence flags name
// (`parts`, kRateLimitsPart etc.): one row, NULL for a part not asked for
// or absent. A statement per combination, so that each names only the
// tables it reads.
struct RareSelect {
  explicit RareSelect(int parts)
      : rate_limits(
            list.Add(parts & kRateLimitsPart ? kRateLimitsColumn : "NULL")),
        quota(list.Add(parts & kQuotaPart ? kQuotaColumn : "NULL")),
        identity_limits(list.Add(
            parts & kIdentityLimitsPart ? kIdentityLimitsColumn : "NULL")),
        sql(absl::StrCat("SELECT ", list.sql(),
                         " FROM api_keys k WHERE k.id = ?")) {}
  SelectList list;
  int rate_limits, quota, identity_limits;
  std::string sql;
};

// A key's retired secrets from their table, when its copy is not current.
struct RetiredSelect {
  SelectList list;
  int digest = list.Add("r.digest");
  int pepper_version = list.Add("r.pepper_version");
  int valid_until = list.Add("r.valid_until");
  int key_version = list.Add("r.key_version");
  std::string sql = absl::StrCat("SELECT ", list.sql(),
                                 " FROM api_key_retired_secrets r"
                                 " WHERE r.tenant_id = ? AND r.key_id = ?");
};

// The RareSelect of `parts` (1 to kAllRareParts): built at first use
// (thread-safe), never destroyed.
const RareSelect& RareSelectOf(int parts) {
  static const std::vector<const RareSelect*>* const selects = [] {
    auto* all = new std::vector<const RareSelect*>;
    for (int p = 0; p <= kAllRareParts; ++p) all->push_back(new RareSelect(p));
    return all;
  }();
  return *(*selects)[parts & kAllRareParts];
}

// A tenant row.
struct TenantSelect {
  SelectList list;
  int id = list.Add("id");
  int slug = list.Add("slug");
  int name = list.Add("name");
  int created_at = list.Add("created_at");
};

constexpr char kInsertChangeSql[] =
    "INSERT INTO key_changes (writer, wseq, tenant_id, key_id, change_type,"
    " key_version, created_at) VALUES (?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6))";

constexpr char kInsertKeyLimitSql[] =
    "INSERT INTO key_limits (key_id, tenant_id, name, limit_count,"
    " duration_ms) VALUES (?, ?, ?, ?, ?)";

constexpr char kDeleteKeyLimitsSql[] =
    "DELETE FROM key_limits WHERE tenant_id = ? AND key_id = ?";

constexpr char kInsertKeyQuotaSql[] =
    "INSERT INTO key_quotas (key_id, tenant_id, remaining, refill_amount,"
    " refill_interval_ms, period_start_us, epoch)"
    " VALUES (?, ?, ?, ?, ?, CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED),"
    " 0)";

constexpr char kInsertKeySql[] =
    "INSERT INTO api_keys (id, tenant_id, name, digest, pepper_version,"
    " scopes, allowed_cidrs, rate_limit_per_minute, revoked, version,"
    " created_by_type, created_by_id, created_at, expires_at, external_id,"
    " metadata, decoy, has_limits, has_quota)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 1, ?, ?, COALESCE(?, "
    "UTC_TIMESTAMP(6)),"
    " ?, ?, ?, ?, ?, ?)";

// ---------------------------------------------------------------------------
// Values.

// Key ids are base62; CHAR comparisons ignore trailing spaces, so anything
// else could alias a real id.
bool IsWellFormedKeyId(absl::string_view id) {
  if (id.empty() || id.size() > 12) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string DigestBytes(const core::Digest& d) {
  return std::string(core::AsStringView(d));
}

absl::Status ReadDigest(const sql::SQLString& bytes, core::Digest* out) {
  if (bytes.length() != out->size()) {
    return absl::InternalError("stored digest has the wrong length");
  }
  std::memcpy(out->data(), bytes.c_str(), out->size());
  return absl::OkStatus();
}

std::optional<absl::Time> OptionalMax(std::optional<absl::Time> a,
                                      std::optional<absl::Time> b) {
  if (!a.has_value()) return b;
  if (!b.has_value()) return a;
  return std::max(*a, *b);
}

// A column of "name:limit:duration ms" items joined by ',' (NULL: none).
absl::Status ReadLimitList(const sql::ResultSet& rs, int column,
                           std::vector<KeyRateLimit>* out) {
  out->clear();
  if (rs.isNull(column)) return absl::OkStatus();
  for (const std::string& item : SplitList(rs.getString(column), ',')) {
    const std::vector<std::string> parts = absl::StrSplit(item, ':');
    int64_t limit = 0;
    int64_t ms = 0;
    if (parts.size() != 3 || !absl::SimpleAtoi(parts[1], &limit) ||
        !absl::SimpleAtoi(parts[2], &ms)) {
      return absl::InternalError("a stored rate limit does not parse");
    }
    out->push_back({parts[0], limit, absl::Milliseconds(ms)});
  }
  return absl::OkStatus();
}

// A kQuotaColumn (NULL: none).
absl::Status ReadQuota(const sql::ResultSet& rs, int column,
                       std::optional<KeyQuota>* out) {
  out->reset();
  if (rs.isNull(column)) return absl::OkStatus();
  const std::vector<std::string> parts =
      absl::StrSplit(rs.getString(column).asStdString(), ':');
  KeyQuota quota;
  int64_t ms = 0;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &quota.remaining) ||
      !absl::SimpleAtoi(parts[1], &quota.refill_amount) ||
      !absl::SimpleAtoi(parts[2], &ms)) {
    return absl::InternalError("a stored quota does not parse");
  }
  quota.refill_interval = absl::Milliseconds(ms);
  *out = quota;
  return absl::OkStatus();
}

// Reads the key columns of the current row.
absl::Status ReadKeyColumns(const sql::ResultSet& rs, const KeyColumns& c,
                            ApiKeyRecord* key) {
  key->id = rs.getString(c.id).asStdString();
  key->tenant_id = rs.getInt64(c.tenant_id);
  key->name = rs.getString(c.name).asStdString();
  key->external_id = rs.getString(c.external_id).asStdString();
  absl::StatusOr<core::StringMap> metadata =
      core::DecodeStringMapJson(rs.getString(c.metadata).asStdString());
  if (!metadata.ok()) {
    return absl::InternalError("stored key metadata is not a JSON object");
  }
  key->metadata = *std::move(metadata);
  key->scopes = SplitList(rs.getString(c.scopes), ' ');
  key->allowed_cidrs = SplitList(rs.getString(c.allowed_cidrs), ',');
  key->rate_limit_per_minute = rs.getInt(c.rate_limit_per_minute);
  if (c.rate_limits != 0) {
    if (absl::Status st = ReadLimitList(rs, c.rate_limits, &key->rate_limits);
        !st.ok()) {
      return st;
    }
  }
  if (c.quota != 0) {
    if (absl::Status st = ReadQuota(rs, c.quota, &key->quota); !st.ok()) {
      return st;
    }
  }
  key->revoked = rs.getInt(c.revoked) != 0;
  key->disabled = rs.getInt(c.disabled) != 0;
  key->decoy = rs.getInt(c.decoy) != 0;
  key->version = rs.getInt64(c.version);
  if (c.created_by_type != 0) {
    key->created_by_type = rs.getString(c.created_by_type).asStdString();
    key->created_by_id = rs.getString(c.created_by_id).asStdString();
  }
  absl::StatusOr<absl::Time> created = GetTime(rs, c.created_at);
  if (!created.ok()) return created.status();
  key->created_at = *created;
  const std::pair<std::optional<absl::Time>*, int> optional_times[] = {
      {&key->last_used_at, c.last_used_at},
      {&key->expires_at, c.expires_at},
      {&key->rotated_at, c.rotated_at},
      {&key->revoked_at, c.revoked_at},
      {&key->disabled_at, c.disabled_at}};
  for (const auto& [field, column] : optional_times) {
    if (column == 0) continue;  // not selected
    absl::StatusOr<std::optional<absl::Time>> t = GetOptionalTime(rs, column);
    if (!t.ok()) return t.status();
    *field = *t;
  }
  return absl::OkStatus();
}

// Reads a record row: the key columns, the grace column and the clock.
absl::Status ReadRecord(const sql::ResultSet& rs, const RecordColumns& c,
                        ApiKeyRecord* key) {
  if (absl::Status s = ReadKeyColumns(rs, c.key, key); !s.ok()) return s;
  absl::StatusOr<std::optional<absl::Time>> grace =
      GetOptionalTime(rs, c.grace);
  if (!grace.ok()) return grace.status();
  key->previous_secret_valid_until = *grace;
  absl::StatusOr<absl::Time> now = GetTime(rs, c.now);
  if (!now.ok()) return now.status();
  key->db_now = *now;
  return absl::OkStatus();
}

absl::StatusOr<Tenant> ReadTenant(const sql::ResultSet& rs) {
  const TenantSelect& c = SelectOf<TenantSelect>();
  Tenant tenant;
  tenant.id = rs.getInt64(c.id);
  tenant.slug = rs.getString(c.slug).asStdString();
  tenant.name = rs.getString(c.name).asStdString();
  absl::StatusOr<absl::Time> created = GetTime(rs, c.created_at);
  if (!created.ok()) return created.status();
  tenant.created_at = *created;
  return tenant;
}

bool IsExpired(const ApiKeyRecord& key) {
  return key.expires_at.has_value() && *key.expires_at <= key.db_now;
}

absl::Status NotFound() { return absl::NotFoundError("API key not found"); }

// Locks the key row (FOR UPDATE) and reads it, in the round trip that sends
// what the transaction queued before (its START TRANSACTION); `secret`
// (optional) receives the current secret. NOT_FOUND when there is no such live
// key in the tenant.
// `retired_copy`, when given, is set to the key's retired secrets from its
// row's copy (retired_copy.h) when that is current and parses, and reset
// otherwise.
absl::Status LockKey(
    Session& session, int64_t tenant_id, absl::string_view id,
    ApiKeyRecord* key, StoredSecret* secret,
    std::optional<std::vector<CopiedRetiredSecret>>* retired_copy = nullptr);

// The change-feed row of a mutation, queued (sent with the COMMIT). Always
// the transaction's last statement before COMMIT: its seq is allocated here and
// stays an open gap for every replica until the COMMIT, so nothing that can
// wait (the audit lane lock, other row locks) may come after it
// (docs/replication.md). `slot` is its position in the writer's stream (none:
// the legacy stream only).
absl::Status InsertChange(Session& session,
                          const std::optional<StreamPosition>& slot,
                          int64_t tenant_id, absl::string_view key_id,
                          absl::string_view change_type, int64_t version) {
  SqlValues values;
  if (slot.has_value()) {
    values.Text(slot->writer).Int(slot->wseq);
  } else {
    values.Text("").Null();
  }
  values.Int(tenant_id).Text(key_id).Text(change_type).Int(version);
  return session.Defer("insert key change", kInsertChangeSql, values);
}

// The end every key mutation shares once its row is updated: the audit
// event, then the change-feed row (the last statement, see InsertChange) at
// the stream position `draw_slot` returns (drawn only then), then COMMIT, with
// the writer fault points between them. The statements queued before (the
// key row's own) are sent with the audit lane lock; the audit row and its
// chain head with the webhook endpoints read; the feed row with the COMMIT. The
// session's transaction is committed only when every step succeeded.
absl::Status AuditChangeAndCommit(
    Session& session,
    absl::FunctionRef<std::optional<StreamPosition>()> draw_slot,
    int64_t tenant_id, absl::string_view key_id, const AuditEvent& event,
    absl::string_view change_type, int64_t version) {
  if (absl::Status st = fault::kWriterBeforeAudit.Hit(key_id); !st.ok()) {
    return st;
  }
  if (absl::Status st = InsertAudit(session, tenant_id, event); !st.ok()) {
    return st;
  }
  if (absl::Status st = InsertChange(session, draw_slot(), tenant_id, key_id,
                                     change_type, version);
      !st.ok()) {
    return st;
  }
  // The feed row goes with the COMMIT; a test holding the point holds the
  // writer between the two (fault_points.h).
  if (fault::kWriterBeforeCommit.armed()) session.Flush();
  if (absl::Status st = fault::kWriterBeforeCommit.Hit(key_id); !st.ok()) {
    return st;
  }
  session.Commit();
  return absl::OkStatus();
}

// Whether a mutation changed the key's retired secrets (their table), so
// that the key row's copy of them (retired_copy.h) must be built again;
// kWritten: it changed them and its own assignments write the copy and
// retired_copy_version.
enum class RetiredSecrets { kUnchanged, kChanged, kWritten };

// The assignments that keep the key row's copy of its retired secrets
// current through a version bump from `old_version`, and their values
// (added to `values`). kChanged builds the copy again from the table (the
// mutation's own changes to it come first in its transaction, with the key
// row locked) and marks it current. kUnchanged carries a current copy to
// the new version; a copy that was not current (a server of an earlier
// release changed the key) stays not current (0 is no key's version).
std::string RetiredCopyAssignments(RetiredSecrets retired, int64_t old_version,
                                   SqlValues& values) {
  if (retired == RetiredSecrets::kWritten) return "";
  if (retired == RetiredSecrets::kChanged) {
    values.Int(old_version + 1);
    return absl::StrCat("retired_copy = ", kRetiredCopyExpression,
                        ", retired_copy_version = ?, ");
  }
  values.Int(old_version).Int(old_version + 1);
  return "retired_copy_version = IF(retired_copy_version = ?, ?, 0), ";
}

// The version bump every mutation of an existing key ends with: `set`
// (assignments ending in ", ", values in `values`), the retired secrets'
// copy (RetiredCopyAssignments) and version = old_version + 1 on the key
// row locked by LockKey, which must be the one row updated (INTERNAL
// "<what>: the locked row did not update" otherwise); then
// AuditChangeAndCommit.
absl::Status BumpVersionAuditAndCommit(
    Session& session,
    absl::FunctionRef<std::optional<StreamPosition>()> draw_slot,
    int64_t tenant_id, absl::string_view key_id, int64_t old_version,
    absl::string_view set, SqlValues values, RetiredSecrets retired,
    absl::string_view what, const AuditEvent& event,
    absl::string_view change_type) {
  const std::string copy = RetiredCopyAssignments(retired, old_version, values);
  values.Int(old_version + 1).Int(tenant_id).Text(key_id).Int(old_version);
  if (absl::Status st = session.DeferChecked(
          "update key",
          absl::StrCat("UPDATE api_keys SET ", set, copy,
                       "version = ? WHERE tenant_id = ? AND id = ?"
                       " AND version = ?"),
          values, 1,
          absl::InternalError(
              absl::StrCat(what, ": the locked row did not update")));
      !st.ok()) {
    return st;
  }
  return AuditChangeAndCommit(session, draw_slot, tenant_id, key_id, event,
                              change_type, old_version + 1);
}

// Queues the key's named limits (checked by CheckKeyRateLimits), one row
// each.
absl::Status InsertKeyLimits(Session& session, int64_t tenant_id,
                             absl::string_view id,
                             const std::vector<KeyRateLimit>& limits) {
  for (const KeyRateLimit& l : limits) {
    SqlValues limit;
    limit.Text(id).Int(tenant_id).Text(l.name).Int(l.limit).Int(
        absl::ToInt64Milliseconds(l.duration));
    if (absl::Status s =
            session.Defer("insert key limit", kInsertKeyLimitSql, limit);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status InsertKeyRow(Session& session, int64_t tenant_id,
                          const NewKey& key) {
  if (!IsWellFormedKeyId(key.id)) {
    return absl::InvalidArgumentError("key id must be 1-12 base62 characters");
  }
  if (absl::Status s = CheckKeyRateLimits(key.rate_limits); !s.ok()) return s;
  if (key.quota.has_value()) {
    if (absl::Status s = CheckKeyQuota(*key.quota); !s.ok()) return s;
  }
  absl::StatusOr<std::string> scopes = JoinList(key.scopes, ' ', "scopes");
  if (!scopes.ok()) return scopes.status();
  absl::StatusOr<std::string> cidrs =
      JoinList(key.allowed_cidrs, ',', "allowed_cidrs");
  if (!cidrs.ok()) return cidrs.status();

  SqlValues row;
  row.Text(key.id)
      .Int(tenant_id)
      .Text(key.name)
      .Bytes(DigestBytes(key.secret.digest))
      .Int(key.secret.pepper_version)
      .Text(*scopes)
      .Text(*cidrs)
      .Int(key.rate_limit_per_minute)
      .Text(key.created_by_type)
      .Text(key.created_by_id);
  if (absl::Status s = row.Time(key.created_at); !s.ok()) return s;
  if (absl::Status s = row.Time(key.expires_at); !s.ok()) return s;
  row.Text(key.external_id)
      .Text(core::EncodeStringMapJson(key.metadata))
      .Int(key.decoy ? 1 : 0)
      .Int(key.rate_limits.empty() ? 0 : 1)  // presence flags
      .Int(key.quota.has_value() ? 1 : 0);
  if (absl::Status s = session.Defer("insert key", kInsertKeySql, row);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          InsertKeyLimits(session, tenant_id, key.id, key.rate_limits);
      !s.ok()) {
    return s;
  }
  if (key.quota.has_value()) {
    SqlValues quota;
    quota.Text(key.id).Int(tenant_id).Int(key.quota->remaining);
    if (std::optional<Refill> refill = RefillOf(*key.quota)) {
      quota.Int(refill->amount)
          .Int(absl::ToInt64Milliseconds(refill->interval));
    } else {
      quota.Null().Null();
    }
    if (absl::Status s =
            session.Defer("insert key quota", kInsertKeyQuotaSql, quota);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status LockKey(
    Session& session, int64_t tenant_id, absl::string_view id,
    ApiKeyRecord* key, StoredSecret* secret,
    std::optional<std::vector<CopiedRetiredSecret>>* retired_copy) {
  const LockSelect& c = SelectOf<LockSelect>();
  SqlValues values;
  values.Int(tenant_id).Text(id);
  absl::StatusOr<std::unique_ptr<sql::ResultSet>> rows =
      session.QueryWithQueued("lock key", c.sql, values);
  if (!rows.ok()) return rows.status();
  sql::ResultSet* const rs = rows->get();
  if (!rs->next()) return NotFound();
  if (absl::Status s = ReadRecord(*rs, c.record, key); !s.ok()) return s;
  if (secret != nullptr) {
    if (absl::Status s = ReadDigest(rs->getString(c.digest), &secret->digest);
        !s.ok()) {
      return s;
    }
    secret->pepper_version = rs->getInt(c.pepper_version);
  }
  if (retired_copy != nullptr) {
    retired_copy->reset();
    if (rs->getInt(c.retired_copy_current) == 0) return absl::OkStatus();
    if (rs->isNull(c.retired_copy)) {
      retired_copy->emplace();  // none retired
      return absl::OkStatus();
    }
    const sql::SQLString copy = rs->getString(c.retired_copy);
    absl::StatusOr<std::vector<CopiedRetiredSecret>> parsed =
        ParseRetiredCopy(absl::string_view(copy.c_str(), copy.length()));
    if (parsed.ok()) *retired_copy = *std::move(parsed);
  }
  return absl::OkStatus();
}

// The list order (docs/admin-api.md, "Paging large lists"): the sort
// column, then the id. Never used (NULL last use) sorts as the oldest,
// never expires (NULL expiry) as the latest.
KeysetOrder OrderOf(const ListKeysQuery& query) {
  KeysetOrder order;
  order.id_column = "k.id";
  order.descending = query.descending;
  switch (query.sort_by) {
    case KeySortField::kName:
      order.column = "k.name";
      break;
    case KeySortField::kLastUsedAt:
      order.column = "k.last_used_at";
      order.nullable = true;
      order.nulls_low = true;
      break;
    case KeySortField::kExpiresAt:
      order.column = "k.expires_at";
      order.nullable = true;
      order.nulls_low = false;
      break;
    case KeySortField::kCreatedAt:
    default:
      order.column = "k.created_at";
      break;
  }
  return order;
}

// Neither revoked nor expired.
constexpr char kLiveKey[] =
    " AND k.revoked = 0 AND (k.expires_at IS NULL"
    " OR k.expires_at > UTC_TIMESTAMP(6))";

std::string StatusCondition(KeyStatusFilter status) {
  switch (status) {
    case KeyStatusFilter::kActive:
      return absl::StrCat(kLiveKey, " AND k.disabled = 0");
    case KeyStatusFilter::kDisabled:
      return absl::StrCat(kLiveKey, " AND k.disabled = 1");
    case KeyStatusFilter::kRevoked:
      return " AND k.revoked = 1";
    case KeyStatusFilter::kExpired:
      // Revoked wins over expired, as in the API's status field.
      return " AND k.revoked = 0 AND k.expires_at <= UTC_TIMESTAMP(6)";
    case KeyStatusFilter::kAny:
    default:
      return "";
  }
}

// The state filters: KeyStatesAt (server/storage/key_states.h) in SQL, with
// the tenant's settings outer-joined as `ts` (kStatePolicyJoin) and the
// KeyPolicy defaults for a tenant without a settings row.
constexpr char kStatePolicyJoin[] =
    " LEFT JOIN tenant_settings ts ON ts.tenant_id = k.tenant_id";

std::string StateCondition(KeyStateFilter state) {
  const KeyPolicy defaults;
  switch (state) {
    case KeyStateFilter::kRotationDue:
      return absl::StrCat(
          kLiveKey, " AND COALESCE(ts.key_rotation_period_days, ",
          defaults.rotation_period_days,
          ") > 0 AND COALESCE(k.rotated_at, k.created_at) + INTERVAL"
          " COALESCE(ts.key_rotation_period_days, ",
          defaults.rotation_period_days, ") DAY <= UTC_TIMESTAMP(6)");
    case KeyStateFilter::kExpiring:
      return absl::StrCat(
          kLiveKey, " AND COALESCE(ts.key_expiry_warning_days, ",
          defaults.expiry_warning_days,
          ") > 0 AND k.expires_at <= UTC_TIMESTAMP(6) + INTERVAL"
          " COALESCE(ts.key_expiry_warning_days, ",
          defaults.expiry_warning_days, ") DAY");
    case KeyStateFilter::kInactive:
      return absl::StrCat(
          kLiveKey, " AND COALESCE(ts.key_inactive_after_days, ",
          defaults.inactive_after_days,
          ") > 0 AND COALESCE(k.last_used_at, k.created_at) + INTERVAL"
          " COALESCE(ts.key_inactive_after_days, ",
          defaults.inactive_after_days, ") DAY <= UTC_TIMESTAMP(6)");
    case KeyStateFilter::kDisabled:
      return " AND k.disabled = 1";
    case KeyStateFilter::kAny:
    default:
      return "";
  }
}

// The announced-date column of each swept state.
const char* AnnouncedColumn(AnnouncedState state) {
  switch (state) {
    case AnnouncedState::kRotationDue:
      return "rotation_due_announced_for";
    case AnnouncedState::kExpiring:
      return "expiring_announced_for";
    case AnnouncedState::kInactive:
      return "inactive_announced_for";
  }
  return "rotation_due_announced_for";
}

// PendingAnnouncements: per live key, the date each state is for when it
// is on (NULL when off) and what was last announced; only keys with one
// that differs. The state conditions are StateCondition's.
struct PendingSelect {
  SelectList list;
  int tenant_id = list.Add("x.tenant_id");
  int id = list.Add("x.id");
  int due_for = list.Add("x.due_for");
  int due_announced = list.Add("x.rotation_due_announced_for");
  int expiring_for = list.Add("x.expiring_for");
  int expiring_announced = list.Add("x.expiring_announced_for");
  int inactive_for = list.Add("x.inactive_for");
  int inactive_announced = list.Add("x.inactive_announced_for");
  std::string sql = absl::StrCat(
      "SELECT ", list.sql(),
      " FROM (SELECT k.tenant_id, k.id, k.rotation_due_announced_for,"
      " k.expiring_announced_for, k.inactive_announced_for,"
      " CASE WHEN 1 = 1",
      StateCondition(KeyStateFilter::kRotationDue),
      " THEN COALESCE(k.rotated_at, k.created_at) + INTERVAL"
      " COALESCE(ts.key_rotation_period_days, ",
      KeyPolicy().rotation_period_days,
      ") DAY END AS due_for,"
      " CASE WHEN 1 = 1",
      StateCondition(KeyStateFilter::kExpiring),
      " THEN k.expires_at END AS expiring_for,"
      " CASE WHEN 1 = 1",
      StateCondition(KeyStateFilter::kInactive),
      " THEN COALESCE(k.last_used_at, k.created_at) END AS inactive_for"
      " FROM api_keys k",
      kStatePolicyJoin,
      " WHERE k.id > ? AND k.deleted_at IS NULL AND k.decoy = 0", kLiveKey,
      ") x WHERE (x.due_for IS NOT NULL"
      " AND NOT x.due_for <=> x.rotation_due_announced_for)"
      " OR (x.expiring_for IS NOT NULL"
      " AND NOT x.expiring_for <=> x.expiring_announced_for)"
      " OR (x.inactive_for IS NOT NULL"
      " AND NOT x.inactive_for <=> x.inactive_announced_for)"
      " ORDER BY x.id LIMIT ?");
};

constexpr char kSearchCondition[] =
    " AND (k.name LIKE ? ESCAPE '!'"
    " OR k.id COLLATE utf8mb4_unicode_ci LIKE ? ESCAPE '!'"
    " OR k.external_id = ?)";

// The patterns for a search: a case-insensitive substring of the name or of
// the id, or the whole external id. A search that starts with the display
// prefix `lmk_` also matches ids by prefix, and is cut after the id so that a
// pasted full key never reaches the database.
struct SearchPatterns {
  std::string name;
  std::string id;
  std::string external_id;  // compared whole
};
SearchPatterns SearchPatternsFor(absl::string_view search) {
  if (absl::StartsWith(search, "lmk_") && search.size() > 4) {
    absl::string_view id = search.substr(4);
    id = id.substr(0, std::min<size_t>(id.find('_'), 12));
    const std::string display = absl::StrCat("lmk_", id);
    return {absl::StrCat("%", EscapeLike(display), "%"),
            absl::StrCat(EscapeLike(id), "%"), display};
  }
  std::string contains = absl::StrCat("%", EscapeLike(search), "%");
  return {contains, contains, std::string(search)};
}

// Reads a VerifySelect row into `record`: the key, its tenant, current
// secret and policy, its presence flags in `rare_parts`, and its retired
// secrets from the key row's copy, each one's key version in
// `retired_versions` (SortRetired puts them in order). A copy that is not
// current, or does not parse, adds kRetiredPart to `rare_parts` instead:
// the secrets are then read from their table.
absl::Status ReadVerifyRow(const sql::ResultSet& rs, const VerifySelect& c,
                           VerifyRecord* record, int* rare_parts,
                           std::vector<int64_t>* retired_versions) {
  *rare_parts = rs.getInt(c.rare_parts);
  if (absl::Status st = ReadKeyColumns(rs, c.key, &record->key); !st.ok()) {
    return st;
  }
  record->tenant_slug = rs.getString(c.tenant_slug).asStdString();
  record->deleted = rs.getInt(c.deleted) != 0;
  if (absl::Status st =
          ReadDigest(rs.getString(c.digest), &record->current.digest);
      !st.ok()) {
    return st;
  }
  record->current.pepper_version = rs.getInt(c.pepper_version);
  absl::StatusOr<absl::Time> now = GetTime(rs, c.now);
  if (!now.ok()) return now.status();
  record->key.db_now = *now;
  record->policy = ReadKeyPolicy(rs, c.policy);
  if ((*rare_parts & kRetiredPart) != 0 || rs.isNull(c.retired_copy)) {
    return absl::OkStatus();  // not current, or none retired
  }
  const sql::SQLString copy = rs.getString(c.retired_copy);
  absl::StatusOr<std::vector<CopiedRetiredSecret>> copied =
      ParseRetiredCopy(absl::string_view(copy.c_str(), copy.length()));
  if (!copied.ok()) {
    *rare_parts |= kRetiredPart;
    return absl::OkStatus();
  }
  for (const CopiedRetiredSecret& secret : *copied) {
    record->retired.push_back(secret.retired);
    retired_versions->push_back(secret.key_version);
  }
  return absl::OkStatus();
}

// Reads `record`'s retired secrets from their table (RetiredSelect), each
// one's key version in `retired_versions`, replacing any read before.
absl::Status ReadRetiredTable(Session& s, VerifyRecord* record,
                              std::vector<int64_t>* retired_versions) {
  const RetiredSelect& c = SelectOf<RetiredSelect>();
  sql::PreparedStatement& stmt = s.Prepare(c.sql);
  stmt.setInt64(1, record->key.tenant_id);
  stmt.setString(2, Str(record->key.id));
  std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
  record->retired.clear();
  retired_versions->clear();
  while (rs->next()) {
    RetiredSecret retired;
    if (absl::Status st =
            ReadDigest(rs->getString(c.digest), &retired.secret.digest);
        !st.ok()) {
      return st;
    }
    retired.secret.pepper_version = rs->getInt(c.pepper_version);
    absl::StatusOr<absl::Time> until = GetTime(*rs, c.valid_until);
    if (!until.ok()) return until.status();
    retired.valid_until = *until;
    record->retired.push_back(retired);
    retired_versions->push_back(rs->getInt64(c.key_version));
  }
  return absl::OkStatus();
}

// Reads the parts of `record`'s key that its presence flags `rare_parts`
// name (VerifySelect left them out). A statement of its own, after the
// key's: a change between the two is published by the change feed like any
// change after a read.
absl::Status ReadRareParts(Session& s, int rare_parts, VerifyRecord* record) {
  const RareSelect& c = RareSelectOf(rare_parts);
  sql::PreparedStatement& stmt = s.Prepare(c.sql);
  stmt.setString(1, Str(record->key.id));
  std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
  if (!rs->next()) return absl::OkStatus();  // the key is gone: none
  if (absl::Status st =
          ReadLimitList(*rs, c.rate_limits, &record->key.rate_limits);
      !st.ok()) {
    return st;
  }
  if (absl::Status st = ReadQuota(*rs, c.quota, &record->key.quota); !st.ok()) {
    return st;
  }
  return ReadLimitList(*rs, c.identity_limits, &record->identity_limits);
}

// Orders `record`'s retired secrets newest first (by the key versions
// ReadVerifyRow collected beside them), keeps kMaxRetiredSecrets, and sets
// the key's grace end from those it keeps (a secret no longer checked
// extends nothing).
void SortRetired(VerifyRecord* record,
                 const std::vector<int64_t>& retired_versions) {
  std::vector<size_t> order(record->retired.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return retired_versions[a] > retired_versions[b];
  });
  std::vector<RetiredSecret> sorted;
  sorted.reserve(std::min(order.size(), size_t{kMaxRetiredSecrets}));
  for (size_t i : order) {
    if (sorted.size() == size_t{kMaxRetiredSecrets}) break;
    sorted.push_back(record->retired[i]);
  }
  record->retired = std::move(sorted);
  for (const RetiredSecret& retired : record->retired) {
    if (retired.valid_until > record->key.db_now) {
      record->key.previous_secret_valid_until = OptionalMax(
          record->key.previous_secret_valid_until, retired.valid_until);
    }
  }
}

// Completes a record ReadVerifyRow read: its retired secrets from their
// table when `rare_parts` says so, in order, then the rare parts its
// presence flags name. The statements after the key's are not its
// snapshot: a change between them is published by the change feed like any
// change after a read.
absl::Status CompleteVerifyRecord(Session& s, int rare_parts,
                                  std::vector<int64_t> retired_versions,
                                  VerifyRecord* record) {
  if ((rare_parts & kRetiredPart) != 0) {
    if (absl::Status st = ReadRetiredTable(s, record, &retired_versions);
        !st.ok()) {
      return st;
    }
  }
  SortRetired(record, retired_versions);
  if ((rare_parts & kAllRareParts) == 0) return absl::OkStatus();
  return ReadRareParts(s, rare_parts, record);
}

}  // namespace

// ---------------------------------------------------------------------------
// MysqlKeyStore

absl::StatusOr<std::unique_ptr<MysqlKeyStore>> MysqlKeyStore::Open(
    const MysqlOptions& options) {
  if (options.database.empty()) {
    return absl::InvalidArgumentError("the key store needs a database name");
  }
  absl::StatusOr<std::unique_ptr<ConnectionPool>> pool =
      ConnectionPool::Create(options);
  if (!pool.ok()) return pool.status();
  {
    // Connect once now so that configuration errors surface at start-up.
    absl::StatusOr<ConnectionLease> lease = (*pool)->Acquire();
    if (!lease.ok()) return lease.status();
  }
  return std::unique_ptr<MysqlKeyStore>(new MysqlKeyStore(*std::move(pool)));
}

MysqlKeyStore::MysqlKeyStore(std::shared_ptr<ConnectionPool> pool)
    : pool_(std::move(pool)) {}

MysqlKeyStore::~MysqlKeyStore() = default;

void MysqlKeyStore::SetFeedWriter(absl::string_view writer) {
  absl::MutexLock lock(&feed_mu_);
  feed_writer_ = std::string(writer);
}

int64_t MysqlKeyStore::FeedWriterHead() {
  absl::MutexLock lock(&feed_mu_);
  return feed_wseq_;
}

std::optional<StreamPosition> MysqlKeyStore::DrawFeedSlot() {
  absl::MutexLock lock(&feed_mu_);
  if (feed_writer_.empty()) return std::nullopt;
  return StreamPosition{feed_writer_, ++feed_wseq_};
}

std::optional<StreamPosition> MysqlKeyStore::Draw(FeedSlots& slots) {
  absl::MutexLock lock(&feed_mu_);
  if (feed_writer_.empty()) return std::nullopt;
  slots.current = ++feed_wseq_;
  slots.drawn.push_back(slots.current);
  return StreamPosition{feed_writer_, slots.current};
}

void MysqlKeyStore::CloseUnusedSlots(const FeedSlots& slots, bool succeeded) {
  std::string writer;
  std::vector<int64_t> holes;
  {
    absl::MutexLock lock(&feed_mu_);
    if (feed_writer_.empty()) return;
    writer = feed_writer_;
    holes.swap(pending_voids_);
  }
  // The last attempt's position committed when the call succeeded; every
  // other position drawn is a hole of this stream.
  for (int64_t wseq : slots.drawn) {
    if (!(succeeded && wseq == slots.current)) holes.push_back(wseq);
  }
  std::vector<int64_t> failed;
  for (int64_t wseq : holes) {
    if (!InsertVoidRow(*pool_, writer, wseq).ok()) failed.push_back(wseq);
  }
  if (failed.empty()) return;
  absl::MutexLock lock(&feed_mu_);
  pending_voids_.insert(pending_voids_.end(), failed.begin(), failed.end());
}

absl::StatusOr<Tenant> MysqlKeyStore::CreateTenant(
    absl::string_view slug, absl::string_view name, const NewKey* initial_key,
    const std::vector<AuditEvent>& events) {
  Tenant tenant;
  FeedSlots slots;
  absl::Status status = Run(
      *pool_, "create tenant", OnConflict::kRetry,
      [&](Session& s) -> absl::Status {
        slots.current = 0;
        s.Begin();
        s.Step("insert tenant");
        sql::PreparedStatement& insert = s.Prepare(
            "INSERT INTO tenants (slug, name, created_at)"
            " VALUES (?, ?, UTC_TIMESTAMP(6))");
        insert.setString(1, Str(slug));
        insert.setString(2, Str(name));
        s.Update(insert);

        s.Step("read tenant");
        sql::PreparedStatement& read = s.Prepare(
            absl::StrCat("SELECT ", SelectOf<TenantSelect>().list.sql(),
                         " FROM tenants WHERE id = LAST_INSERT_ID()"));
        std::unique_ptr<sql::ResultSet> rs = s.Query(read);
        if (!rs->next()) return absl::InternalError("created tenant not found");
        absl::StatusOr<Tenant> created = ReadTenant(*rs);
        if (!created.ok()) return created.status();
        tenant = *std::move(created);
        rs.reset();
        CreateChainHeads(s, tenant.id);

        if (initial_key != nullptr) {
          if (absl::Status st = InsertKeyRow(s, tenant.id, *initial_key);
              !st.ok()) {
            return st;
          }
        }
        for (const AuditEvent& event : events) {
          if (absl::Status st = InsertAudit(s, tenant.id, event); !st.ok()) {
            return st;
          }
        }
        if (initial_key != nullptr) {
          if (absl::Status st = InsertChange(s, Draw(slots), tenant.id,
                                             initial_key->id, "created", 1);
              !st.ok()) {
            return st;
          }
        }
        s.Commit();
        return absl::OkStatus();
      });
  CloseUnusedSlots(slots, status.ok());
  if (!status.ok()) return status;
  return tenant;
}

absl::StatusOr<Tenant> MysqlKeyStore::GetTenantBySlug(absl::string_view slug) {
  Tenant tenant;
  absl::Status status =
      Run(*pool_, "get tenant", [&](Session& s) -> absl::Status {
        sql::PreparedStatement& stmt = s.Prepare(
            absl::StrCat("SELECT ", SelectOf<TenantSelect>().list.sql(),
                         " FROM tenants WHERE slug = ?"));
        stmt.setString(1, Str(slug));
        std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
        if (!rs->next()) return absl::NotFoundError("tenant not found");
        absl::StatusOr<Tenant> found = ReadTenant(*rs);
        if (!found.ok()) return found.status();
        tenant = *std::move(found);
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return tenant;
}

absl::Status MysqlKeyStore::InsertKey(const NewKey& key,
                                      const AuditEvent& event) {
  FeedSlots slots;
  absl::Status status = Run(
      *pool_, "insert key", OnConflict::kRetry,
      [&](Session& s) -> absl::Status {
        slots.current = 0;
        s.Begin();
        if (absl::Status st = InsertKeyRow(s, key.tenant_id, key); !st.ok()) {
          return st;
        }
        if (absl::Status st = InsertAudit(s, key.tenant_id, event); !st.ok()) {
          return st;
        }
        if (absl::Status st = InsertChange(s, Draw(slots), key.tenant_id,
                                           key.id, "created", 1);
            !st.ok()) {
          return st;
        }
        s.Commit();
        return absl::OkStatus();
      });
  CloseUnusedSlots(slots, status.ok());
  if (status.code() == absl::StatusCode::kFailedPrecondition) {
    // The foreign key to tenants failed.
    return absl::NotFoundError("insert key: tenant not found");
  }
  return status;
}

absl::StatusOr<ApiKeyRecord> MysqlKeyStore::GetKey(int64_t tenant_id,
                                                   absl::string_view id) {
  if (!IsWellFormedKeyId(id)) return NotFound();
  ApiKeyRecord key;
  absl::Status status = Run(*pool_, "get key", [&](Session& s) -> absl::Status {
    const RecordSelect& c = SelectOf<RecordSelect>();
    sql::PreparedStatement& stmt = s.Prepare(c.sql);
    stmt.setInt64(1, tenant_id);
    stmt.setString(2, Str(id));
    std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
    if (!rs->next()) return NotFound();
    return ReadRecord(*rs, c.record, &key);
  });
  if (!status.ok()) return status;
  return key;
}

absl::StatusOr<KeyWithPolicy> MysqlKeyStore::GetKeyWithPolicy(
    int64_t tenant_id, absl::string_view id) {
  if (!IsWellFormedKeyId(id)) return NotFound();
  KeyWithPolicy read;
  absl::Status status = Run(*pool_, "get key", [&](Session& s) -> absl::Status {
    const RecordWithPolicySelect& c = SelectOf<RecordWithPolicySelect>();
    sql::PreparedStatement& stmt = s.Prepare(c.sql);
    stmt.setInt64(1, tenant_id);
    stmt.setString(2, Str(id));
    std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
    if (!rs->next()) return NotFound();
    read.policy = ReadKeyPolicy(*rs, c.policy);
    return ReadRecord(*rs, c.record, &read.key);
  });
  if (!status.ok()) return status;
  return read;
}

absl::StatusOr<KeyPage> MysqlKeyStore::ListKeys(int64_t tenant_id,
                                                const ListKeysQuery& query) {
  if (query.page < 1) {
    return absl::InvalidArgumentError("page must be at least 1");
  }
  if (query.after.has_value() && query.page != 1) {
    return absl::InvalidArgumentError("page must be 1 with a list position");
  }
  if (query.limit < 1 || query.limit > 100) {
    return absl::InvalidArgumentError("limit must be between 1 and 100");
  }
  const bool by_state = query.state != KeyStateFilter::kAny;
  const PageSelect& cols = SelectOf<PageSelect>();
  KeysetList list;
  list.outer_select = absl::StrCat("SELECT ", cols.list.sql());
  list.inner_columns = "k.*";
  list.alias = "k";
  list.from_where =
      absl::StrCat(" FROM api_keys k", by_state ? kStatePolicyJoin : "",
                   " WHERE k.tenant_id = ? AND k.deleted_at IS NULL",
                   query.decoys ? " AND k.decoy = 1" : " AND k.decoy = 0",
                   StatusCondition(query.status), StateCondition(query.state));
  list.where_values = {tenant_id};
  if (!query.search.empty()) {
    SearchPatterns patterns = SearchPatternsFor(query.search);
    list.from_where += kSearchCondition;
    list.where_values.push_back(std::move(patterns.name));
    list.where_values.push_back(std::move(patterns.id));
    list.where_values.push_back(std::move(patterns.external_id));
  }
  const KeysetOrder order = OrderOf(query);
  std::optional<KeysetPosition> after;
  if (query.after.has_value()) {
    after = KeysetPosition{std::nullopt, query.after->id};
    if (query.sort_by == KeySortField::kName) {
      after->value = query.after->name;
    } else if (query.after->time.has_value()) {
      after->value = *query.after->time;
    }
  }
  const int64_t offset =
      static_cast<int64_t>(query.page - 1) * static_cast<int64_t>(query.limit);

  KeyPage page;
  absl::Status status =
      Run(*pool_, "list keys", [&](Session& s) -> absl::Status {
        page = KeyPage();
        CountedTotal total;
        absl::Status read = ReadCountedPage(
            s, list, order, after, offset, query.limit, query.count,
            [&](sql::ResultSet& rs) -> absl::Status {
              ApiKeyRecord key;
              if (absl::Status st = ReadRecord(rs, cols.record, &key);
                  !st.ok()) {
                return st;
              }
              page.keys.push_back(std::move(key));
              return absl::OkStatus();
            },
            &page.has_more, &total);
        page.total = total.total;
        page.total_kind = total.kind;
        return read;
      });
  if (!status.ok()) return status;
  return page;
}

absl::StatusOr<ApiKeyRecord> MysqlKeyStore::RotateKey(
    int64_t tenant_id, absl::string_view id, const StoredSecret& new_secret,
    absl::Duration grace, const RotateOptions& options,
    const AuditEvent& event) {
  if (grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("grace period must not be negative");
  }
  if (!IsWellFormedKeyId(id)) return NotFound();
  ApiKeyRecord key;
  FeedSlots slots;
  absl::Status status = Run(
      *pool_, "rotate key", OnConflict::kRetry,
      [&](Session& s) -> absl::Status {
        slots.current = 0;
        key = ApiKeyRecord();
        s.Begin();
        StoredSecret old_secret;
        std::optional<std::vector<CopiedRetiredSecret>> copy;
        if (absl::Status st =
                LockKey(s, tenant_id, id, &key, &old_secret, &copy);
            !st.ok()) {
          return st;
        }
        if (key.revoked) {
          return absl::FailedPreconditionError(
              "a revoked key cannot be rotated");
        }
        if (options.expected_version.has_value() &&
            *options.expected_version != key.version) {
          return absl::AbortedError("rotate key: the key changed meanwhile");
        }
        if (absl::Status st = CheckRotation(key, options); !st.ok()) {
          return st;
        }
        if (options.expires_at.has_value())
          key.expires_at = *options.expires_at;
        const absl::Time now = key.db_now;
        const absl::Time valid_until = now + grace;
        const int64_t old_version = key.version;

        SqlValues retire;
        retire.Text(id)
            .Int(old_version)
            .Int(tenant_id)
            .Bytes(DigestBytes(old_secret.digest))
            .Int(old_secret.pepper_version);
        if (absl::Status st = retire.Time(now); !st.ok()) return st;
        if (absl::Status st = retire.Time(valid_until); !st.ok()) return st;
        if (absl::Status st = s.Defer(
                "retire secret",
                "INSERT INTO api_key_retired_secrets (key_id, key_version,"
                " tenant_id, digest, pepper_version, retired_at, valid_until)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                retire);
            !st.ok()) {
          return st;
        }

        // A rotation also ends earlier grace periods that would outlast its
        // own: a grace-0 rotation (suspected leak) kills every old secret.
        // The locked read's grace column is the latest valid_until among
        // the retired secrets this rotation keeps (the older ones are
        // pruned below), so when it is not later than the new bound there
        // is nothing to cap and the statement is skipped.
        const bool cap_needed = key.previous_secret_valid_until.has_value() &&
                                *key.previous_secret_valid_until > valid_until;
        if (cap_needed) {
          SqlValues cap;
          if (absl::Status st = cap.Time(valid_until); !st.ok()) return st;
          cap.Int(tenant_id).Text(id).Int(old_version);
          if (absl::Status st = cap.Time(valid_until); !st.ok()) return st;
          if (absl::Status st = s.Defer(
                  "cap earlier grace periods",
                  "UPDATE api_key_retired_secrets SET valid_until = ?"
                  " WHERE tenant_id = ? AND key_id = ? AND key_version < ?"
                  " AND valid_until > ?",
                  cap);
              !st.ok()) {
            return st;
          }
        }

        // Keep the newest kMaxRetiredSecrets: versions are distinct integers,
        // so those above old_version - kMaxRetiredSecrets are at most that
        // many.
        if (old_version > kMaxRetiredSecrets) {
          SqlValues prune;
          prune.Int(tenant_id).Text(id).Int(old_version - kMaxRetiredSecrets);
          if (absl::Status st = s.Defer(
                  "prune retired secrets",
                  "DELETE FROM api_key_retired_secrets"
                  " WHERE tenant_id = ? AND key_id = ? AND key_version <= ?",
                  prune);
              !st.ok()) {
            return st;
          }
        }

        SqlValues set;
        set.Bytes(DigestBytes(new_secret.digest))
            .Int(new_secret.pepper_version);
        if (absl::Status st = set.Time(now); !st.ok()) return st;
        if (absl::Status st = set.Time(key.expires_at); !st.ok()) return st;
        // With a current copy, the new one is made here, as the statements
        // above change the table; otherwise MariaDB builds it from the
        // table.
        std::string assignments =
            "digest = ?, pepper_version = ?, rotated_at = ?, expires_at = ?, ";
        RetiredSecrets retired = RetiredSecrets::kChanged;
        if (copy.has_value()) {
          CopiedRetiredSecret now_retired;
          now_retired.retired.secret = old_secret;
          now_retired.retired.valid_until = valid_until;
          now_retired.key_version = old_version;
          set.Text(FormatRetiredCopy(CopyAfterRotation(
                       *std::move(copy), now_retired, cap_needed)))
              .Int(old_version + 1);
          absl::StrAppend(&assignments,
                          "retired_copy = ?, retired_copy_version = ?, ");
          retired = RetiredSecrets::kWritten;
        }
        if (absl::Status st = BumpVersionAuditAndCommit(
                s, [&] { return Draw(slots); }, tenant_id, id, old_version,
                assignments, std::move(set), retired, "rotate key", event,
                "rotated");
            !st.ok()) {
          return st;
        }

        key.version = old_version + 1;
        key.rotated_at = now;
        // Capped grace periods end at valid_until at the latest.
        if (cap_needed) key.previous_secret_valid_until.reset();
        if (valid_until > now) {
          key.previous_secret_valid_until =
              OptionalMax(key.previous_secret_valid_until, valid_until);
        }
        return absl::OkStatus();
      });
  CloseUnusedSlots(slots, status.ok());
  if (!status.ok()) return status;
  return key;
}

absl::StatusOr<RevokeResult> MysqlKeyStore::RevokeKey(int64_t tenant_id,
                                                      absl::string_view id,
                                                      const AuditEvent& event) {
  if (!IsWellFormedKeyId(id)) return NotFound();
  RevokeResult result;
  FeedSlots slots;
  absl::Status status = Run(
      *pool_, "revoke key", OnConflict::kRetry,
      [&](Session& s) -> absl::Status {
        slots.current = 0;
        result = RevokeResult();
        s.Begin();
        if (absl::Status st = LockKey(s, tenant_id, id, &result.key, nullptr);
            !st.ok()) {
          return st;
        }
        if (result.key.revoked) {
          // Already revoked: nothing to write.
          s.Step("rollback");
          s.Rollback();
          return absl::OkStatus();
        }
        const absl::Time now = result.key.db_now;
        const int64_t old_version = result.key.version;
        SqlValues set;
        if (absl::Status st = set.Time(now); !st.ok()) return st;
        if (absl::Status st = BumpVersionAuditAndCommit(
                s, [&] { return Draw(slots); }, tenant_id, id, old_version,
                "revoked = 1, revoked_at = ?, ", std::move(set),
                RetiredSecrets::kUnchanged, "revoke key", event, "revoked");
            !st.ok()) {
          return st;
        }
        result.key.revoked = true;
        result.key.revoked_at = now;
        result.key.version = old_version + 1;
        result.changed = true;
        return absl::OkStatus();
      });
  CloseUnusedSlots(slots, status.ok());
  if (!status.ok()) return status;
  return result;
}

absl::StatusOr<UpdateResult> MysqlKeyStore::UpdateKey(int64_t tenant_id,
                                                      absl::string_view id,
                                                      int64_t expected_version,
                                                      const KeyEdit& edit,
                                                      const AuditEvent& event) {
  if (edit.empty()) {
    return absl::InvalidArgumentError("update key: the edit changes nothing");
  }
  if (!IsWellFormedKeyId(id)) return NotFound();
  if (edit.rate_limits) {
    if (absl::Status s = CheckKeyRateLimits(*edit.rate_limits); !s.ok()) {
      return s;
    }
  }
  UpdateResult result;
  FeedSlots slots;
  absl::Status status = Run(
      *pool_, "update key", OnConflict::kRetry,
      [&](Session& s) -> absl::Status {
        slots.current = 0;
        result = UpdateResult();
        s.Begin();
        ApiKeyRecord& key = result.key;
        if (absl::Status st = LockKey(s, tenant_id, id, &key, nullptr);
            !st.ok()) {
          return st;
        }
        if (key.revoked) {
          return absl::FailedPreconditionError(
              "a revoked key cannot be edited");
        }
        if (key.version != expected_version) {
          return absl::AbortedError("update key: the key changed meanwhile");
        }
        if (edit.expires_at.has_value() && IsExpired(key)) {
          return absl::FailedPreconditionError(
              "the expiry of an expired key cannot be edited; rotate the key "
              "with a new expiry to renew it");
        }
        ApplyEdit(edit, &key);
        absl::StatusOr<std::string> scopes =
            JoinList(key.scopes, ' ', "scopes");
        if (!scopes.ok()) return scopes.status();
        absl::StatusOr<std::string> cidrs =
            JoinList(key.allowed_cidrs, ',', "allowed_cidrs");
        if (!cidrs.ok()) return cidrs.status();
        const int64_t old_version = key.version;

        SqlValues set;
        set.Text(key.name).Text(*scopes).Text(*cidrs).Int(
            key.rate_limit_per_minute);
        if (absl::Status st = set.Time(key.expires_at); !st.ok()) return st;
        set.Text(key.external_id).Text(core::EncodeStringMapJson(key.metadata));
        // The presence flag of the limits the key has after the edit (the
        // locked read selected those it had), edited or not.
        set.Int(key.rate_limits.empty() ? 0 : 1);
        if (edit.rate_limits) {
          // The key row is locked (LockKey): its limits are replaced in
          // this transaction, before the version bump that publishes them.
          SqlValues key_of;
          key_of.Int(tenant_id).Text(id);
          if (absl::Status st =
                  s.Defer("delete key limits", kDeleteKeyLimitsSql, key_of);
              !st.ok()) {
            return st;
          }
          if (absl::Status st =
                  InsertKeyLimits(s, tenant_id, id, key.rate_limits);
              !st.ok()) {
            return st;
          }
        }
        if (absl::Status st = BumpVersionAuditAndCommit(
                s, [&] { return Draw(slots); }, tenant_id, id, old_version,
                "name = ?, scopes = ?, allowed_cidrs = ?,"
                " rate_limit_per_minute = ?, expires_at = ?, external_id = ?,"
                " metadata = ?, has_limits = ?, ",
                std::move(set), RetiredSecrets::kUnchanged, "update key", event,
                "updated");
            !st.ok()) {
          return st;
        }
        key.version = old_version + 1;
        result.changed = true;
        return absl::OkStatus();
      });
  CloseUnusedSlots(slots, status.ok());
  if (!status.ok()) return status;
  return result;
}

absl::StatusOr<UpdateResult> MysqlKeyStore::SetKeyDisabled(
    int64_t tenant_id, absl::string_view id, bool disabled,
    std::optional<int64_t> expected_version, const AuditEvent& event) {
  if (!IsWellFormedKeyId(id)) return NotFound();
  UpdateResult result;
  FeedSlots slots;
  absl::Status status = Run(
      *pool_, disabled ? "disable key" : "enable key", OnConflict::kRetry,
      [&](Session& s) -> absl::Status {
        slots.current = 0;
        result = UpdateResult();
        s.Begin();
        ApiKeyRecord& key = result.key;
        if (absl::Status st = LockKey(s, tenant_id, id, &key, nullptr);
            !st.ok()) {
          return st;
        }
        if (key.revoked) {
          return absl::FailedPreconditionError(
              disabled ? "a revoked key cannot be disabled"
                       : "a revoked key cannot be enabled");
        }
        if (expected_version.has_value() && *expected_version != key.version) {
          return absl::AbortedError("the key changed since it was checked");
        }
        if (key.disabled == disabled) {
          s.Step("rollback");
          s.Rollback();
          return absl::OkStatus();
        }
        const int64_t old_version = key.version;
        const std::optional<absl::Time> disabled_at =
            disabled ? std::optional<absl::Time>(key.db_now) : std::nullopt;
        SqlValues set;
        set.Int(disabled ? 1 : 0);
        if (absl::Status st = set.Time(disabled_at); !st.ok()) return st;
        if (absl::Status st = BumpVersionAuditAndCommit(
                s, [&] { return Draw(slots); }, tenant_id, id, old_version,
                "disabled = ?, disabled_at = ?, ", std::move(set),
                RetiredSecrets::kUnchanged,
                disabled ? "disable key" : "enable key", event,
                disabled ? "disabled" : "enabled");
            !st.ok()) {
          return st;
        }
        key.disabled = disabled;
        key.disabled_at = disabled_at;
        key.version = old_version + 1;
        result.changed = true;
        return absl::OkStatus();
      });
  CloseUnusedSlots(slots, status.ok());
  if (!status.ok()) return status;
  return result;
}

absl::StatusOr<UpdateResult> MysqlKeyStore::EndRetiredSecretGrace(
    int64_t tenant_id, absl::string_view id, const core::Digest& digest,
    const AuditEvent& event) {
  if (!IsWellFormedKeyId(id)) return NotFound();
  UpdateResult result;
  FeedSlots slots;
  absl::Status status =
      Run(*pool_, "end retired secret grace", OnConflict::kRetry,
          [&](Session& s) -> absl::Status {
            slots.current = 0;
            result = UpdateResult();
            ApiKeyRecord& key = result.key;
            s.Begin();
            if (absl::Status st = LockKey(s, tenant_id, id, &key, nullptr);
                !st.ok()) {
              return st;
            }
            const absl::Time now = key.db_now;
            s.Step("end grace");
            sql::PreparedStatement& end = s.Prepare(
                "UPDATE api_key_retired_secrets SET valid_until = ?"
                " WHERE tenant_id = ? AND key_id = ? AND digest = ?"
                " AND valid_until > ?");
            if (absl::Status st = BindTime(end, 1, now); !st.ok()) return st;
            end.setInt64(2, tenant_id);
            end.setString(3, Str(id));
            end.setString(4, DigestBytes(digest));
            if (absl::Status st = BindTime(end, 5, now); !st.ok()) return st;
            if (s.Update(end) == 0) {
              s.Step("rollback");
              s.Rollback();
              return absl::OkStatus();
            }
            const int64_t old_version = key.version;
            if (absl::Status st = BumpVersionAuditAndCommit(
                    s, [&] { return Draw(slots); }, tenant_id, id, old_version,
                    "", SqlValues(), RetiredSecrets::kChanged, "end grace",
                    event, "updated");
                !st.ok()) {
              return st;
            }
            key.version = old_version + 1;
            result.changed = true;
            return absl::OkStatus();
          });
  CloseUnusedSlots(slots, status.ok());
  if (!status.ok()) return status;
  // The grace column of the locked read may name the ended secret.
  absl::StatusOr<ApiKeyRecord> fresh = GetKey(tenant_id, id);
  if (fresh.ok()) result.key = *std::move(fresh);
  return result;
}

absl::StatusOr<DeleteResult> MysqlKeyStore::DeleteKey(int64_t tenant_id,
                                                      absl::string_view id,
                                                      const AuditEvent& event) {
  if (!IsWellFormedKeyId(id)) return NotFound();
  DeleteResult result;
  FeedSlots slots;
  absl::Status status =
      Run(*pool_, "delete key", OnConflict::kRetry,
          [&](Session& s) -> absl::Status {
            slots.current = 0;
            result = DeleteResult();
            s.Begin();
            ApiKeyRecord key;
            absl::Status locked = LockKey(s, tenant_id, id, &key, nullptr);
            if (absl::IsNotFound(locked)) {
              // Deleted already (a retry)? Then nothing to write.
              s.Step("read deleted key");
              sql::PreparedStatement& deleted = s.Prepare(
                  "SELECT version FROM api_keys WHERE tenant_id = ? AND id = ?"
                  " AND deleted_at IS NOT NULL");
              deleted.setInt64(1, tenant_id);
              deleted.setString(2, Str(id));
              std::unique_ptr<sql::ResultSet> rs = s.Query(deleted);
              const bool found = rs->next();
              if (found) result.version = rs->getInt64(1);
              rs.reset();
              s.Step("rollback");
              s.Rollback();
              return found ? absl::OkStatus() : locked;
            }
            if (!locked.ok()) return locked;
            s.Step("update key");
            // The retired secrets' copy as RetiredCopyAssignments'
            // kUnchanged carries it.
            sql::PreparedStatement& update = s.Prepare(
                "UPDATE api_keys SET deleted_at = ?, retired_copy_version ="
                " IF(retired_copy_version = ?, ?, 0), version = ?"
                " WHERE tenant_id = ? AND id = ? AND version = ?");
            if (absl::Status st = BindTime(update, 1, key.db_now); !st.ok()) {
              return st;
            }
            update.setInt64(2, key.version);
            update.setInt64(3, key.version + 1);
            update.setInt64(4, key.version + 1);
            update.setInt64(5, tenant_id);
            update.setString(6, Str(id));
            update.setInt64(7, key.version);
            if (s.Update(update) != 1) {
              return absl::InternalError(
                  "delete key: the locked row did not update");
            }
            if (absl::Status st = AuditChangeAndCommit(
                    s, [&] { return Draw(slots); }, tenant_id, id, event,
                    "deleted", key.version + 1);
                !st.ok()) {
              return st;
            }
            result.changed = true;
            result.version = key.version + 1;
            return absl::OkStatus();
          });
  CloseUnusedSlots(slots, status.ok());
  if (!status.ok()) return status;
  return result;
}

absl::StatusOr<VerifyRecord> MysqlKeyStore::LoadForVerify(
    absl::string_view id) {
  if (!IsWellFormedKeyId(id)) return NotFound();
  const VerifySelect& c = SelectOf<VerifySelect>();
  VerifyRecord record;
  absl::Status status =
      Run(*pool_, "load key", [&](Session& s) -> absl::Status {
        record = VerifyRecord();
        sql::PreparedStatement& stmt = s.Prepare(c.sql);
        stmt.setString(1, Str(id));
        std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
        if (!rs->next()) return NotFound();
        std::vector<int64_t> versions;
        int rare_parts = 0;
        if (absl::Status st =
                ReadVerifyRow(*rs, c, &record, &rare_parts, &versions);
            !st.ok()) {
          return st;
        }
        rs.reset();
        return CompleteVerifyRecord(s, rare_parts, std::move(versions),
                                    &record);
      });
  if (!status.ok()) return status;
  return record;
}

absl::StatusOr<std::vector<VerifyRecord>> MysqlKeyStore::LoadManyForVerify(
    const std::vector<std::string>& ids) {
  std::vector<std::string> wanted;
  for (const std::string& id : ids) {
    if (IsWellFormedKeyId(id)) wanted.push_back(id);
  }
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  const VerifySelect& c = SelectOf<VerifySelect>();
  std::vector<VerifyRecord> records;
  absl::Status status =
      Run(*pool_, "load keys", [&](Session& s) -> absl::Status {
        records.clear();
        // The retired secrets' key versions and the presence flags, per
        // record.
        std::vector<std::vector<int64_t>> versions;
        std::vector<int> rare_parts;
        for (size_t start = 0; start < wanted.size();
             start += kVerifyBatchChunk) {
          const size_t end =
              std::min(wanted.size(), start + size_t{kVerifyBatchChunk});
          sql::PreparedStatement& stmt = s.Prepare(c.many_sql);
          // A short last chunk repeats its last id: one statement text.
          for (int i = 0; i < kVerifyBatchChunk; ++i) {
            stmt.setString(i + 1, wanted[std::min(start + i, end - 1)]);
          }
          std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
          // One row per key found, in no order.
          while (rs->next()) {
            records.emplace_back();
            versions.emplace_back();
            rare_parts.push_back(0);
            if (absl::Status st =
                    ReadVerifyRow(*rs, c, &records.back(), &rare_parts.back(),
                                  &versions.back());
                !st.ok()) {
              return st;
            }
          }
        }
        for (size_t i = 0; i < records.size(); ++i) {
          if (absl::Status st = CompleteVerifyRecord(
                  s, rare_parts[i], std::move(versions[i]), &records[i]);
              !st.ok()) {
            return st;
          }
        }
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return records;
}

absl::StatusOr<KeyPolicy> MysqlKeyStore::GetKeyPolicy(int64_t tenant_id) {
  struct PolicySelect {
    SelectList list;
    KeyPolicyColumns policy{list};
    std::string sql = absl::StrCat("SELECT ", list.sql(),
                                   " FROM tenant_settings WHERE tenant_id = ?");
  };
  KeyPolicy policy;
  absl::Status status =
      Run(*pool_, "get key policy", [&](Session& s) -> absl::Status {
        const PolicySelect& c = SelectOf<PolicySelect>();
        sql::PreparedStatement& stmt = s.Prepare(c.sql);
        stmt.setInt64(1, tenant_id);
        std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
        policy = rs->next() ? ReadKeyPolicy(*rs, c.policy) : KeyPolicy();
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return policy;
}

absl::StatusOr<KeyPolicyAt> MysqlKeyStore::GetKeyPolicyAt(int64_t tenant_id) {
  // One row whether or not the tenant has a settings row (the defaults
  // then), with the clock.
  struct PolicyAtSelect {
    SelectList list;
    KeyPolicyColumns policy{list, "ts"};
    int now = list.Add("UTC_TIMESTAMP(6)");
    std::string sql =
        absl::StrCat("SELECT ", list.sql(),
                     " FROM (SELECT 1 AS one) d LEFT JOIN tenant_settings ts"
                     " ON ts.tenant_id = ?");
  };
  KeyPolicyAt read;
  absl::Status status =
      Run(*pool_, "get key policy", [&](Session& s) -> absl::Status {
        const PolicyAtSelect& c = SelectOf<PolicyAtSelect>();
        sql::PreparedStatement& stmt = s.Prepare(c.sql);
        stmt.setInt64(1, tenant_id);
        std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
        if (!rs->next()) return absl::InternalError("no policy row");
        read.policy = ReadKeyPolicy(*rs, c.policy);
        absl::StatusOr<absl::Time> now = GetTime(*rs, c.now);
        if (!now.ok()) return now.status();
        read.db_now = *now;
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return read;
}

absl::StatusOr<bool> MysqlKeyStore::TakeSweepLease(absl::string_view holder,
                                                   absl::Duration lease) {
  if (holder.empty() || holder.size() > 64) {
    return absl::InvalidArgumentError("a lease holder is 1-64 bytes");
  }
  if (lease <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("a lease must be positive");
  }
  bool held = false;
  absl::Status status = Run(
      *pool_, "take sweep lease", OnConflict::kRetry,
      [&](Session& s) -> absl::Status {
        held = false;
        s.Begin();
        // The one row exists from the first call on, expired.
        sql::PreparedStatement& seed = s.Prepare(
            "INSERT IGNORE INTO key_state_sweep_lease (id, holder, expires_at)"
            " VALUES (1, '', '1970-01-01 00:00:01')");
        s.Update(seed);
        s.Step("lock lease");
        sql::PreparedStatement& lock = s.Prepare(
            "SELECT holder = ? OR expires_at <= UTC_TIMESTAMP(6)"
            " FROM key_state_sweep_lease WHERE id = 1 FOR UPDATE");
        lock.setString(1, Str(holder));
        std::unique_ptr<sql::ResultSet> rs = s.Query(lock);
        if (!rs->next() || rs->getInt(1) == 0) {
          s.Rollback();
          return absl::OkStatus();
        }
        s.Step("renew lease");
        sql::PreparedStatement& take = s.Prepare(
            "UPDATE key_state_sweep_lease SET holder = ?, expires_at ="
            " UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND WHERE id = 1");
        take.setString(1, Str(holder));
        take.setInt64(2, absl::ToInt64Microseconds(lease));
        s.Update(take);
        s.Commit();
        held = true;
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return held;
}

absl::StatusOr<AnnouncementBatch> MysqlKeyStore::PendingAnnouncements(
    absl::string_view after_key_id, int limit) {
  if (limit < 1 || limit > 1000) {
    return absl::InvalidArgumentError("limit must be between 1 and 1000");
  }
  const PendingSelect& c = SelectOf<PendingSelect>();
  AnnouncementBatch batch;
  absl::Status status =
      Run(*pool_, "pending key states", [&](Session& s) -> absl::Status {
        batch = AnnouncementBatch();
        sql::PreparedStatement& stmt = s.Prepare(c.sql);
        stmt.setString(1, Str(after_key_id));
        stmt.setInt(2, limit);
        std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
        int rows = 0;
        while (rs->next()) {
          ++rows;
          const int64_t tenant_id = rs->getInt64(c.tenant_id);
          const std::string id = rs->getString(c.id).asStdString();
          struct Column {
            AnnouncedState state;
            int for_date, announced;
          };
          for (const Column& col :
               {Column{AnnouncedState::kRotationDue, c.due_for,
                       c.due_announced},
                Column{AnnouncedState::kExpiring, c.expiring_for,
                       c.expiring_announced},
                Column{AnnouncedState::kInactive, c.inactive_for,
                       c.inactive_announced}}) {
            absl::StatusOr<std::optional<absl::Time>> for_date =
                GetOptionalTime(*rs, col.for_date);
            if (!for_date.ok()) return for_date.status();
            absl::StatusOr<std::optional<absl::Time>> announced =
                GetOptionalTime(*rs, col.announced);
            if (!announced.ok()) return announced.status();
            if (!for_date->has_value() || *for_date == *announced) continue;
            StateAnnouncement a;
            a.tenant_id = tenant_id;
            a.key_id = id;
            a.state = col.state;
            a.for_date = **for_date;
            a.announced_for = *announced;
            batch.announcements.push_back(std::move(a));
          }
          if (rows == limit) batch.last_key_id = id;
        }
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return batch;
}

absl::StatusOr<bool> MysqlKeyStore::AnnounceKeyState(const StateAnnouncement& a,
                                                     const AuditEvent& event) {
  if (!IsWellFormedKeyId(a.key_id)) return false;
  const std::string sql =
      absl::StrCat("UPDATE api_keys SET ", AnnouncedColumn(a.state),
                   " = ? WHERE tenant_id = ? AND id = ? AND deleted_at IS NULL"
                   " AND revoked = 0 AND ",
                   AnnouncedColumn(a.state), " <=> ?");
  bool written = false;
  absl::Status status = Run(
      *pool_, "announce key state", OnConflict::kRetry,
      [&](Session& s) -> absl::Status {
        written = false;
        s.Begin();
        sql::PreparedStatement& update = s.Prepare(sql);
        if (absl::Status st = BindTime(update, 1, a.for_date); !st.ok()) {
          return st;
        }
        update.setInt64(2, a.tenant_id);
        update.setString(3, Str(a.key_id));
        if (absl::Status st = BindTime(update, 4, a.announced_for); !st.ok()) {
          return st;
        }
        if (s.Update(update) != 1) {
          s.Rollback();
          return absl::OkStatus();
        }
        if (absl::Status st = InsertAudit(s, a.tenant_id, event); !st.ok()) {
          return st;
        }
        s.Commit();
        written = true;
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return written;
}

absl::StatusOr<absl::Time> MysqlKeyStore::Now() {
  absl::Time now;
  absl::Status status =
      Run(*pool_, "read clock", [&](Session& s) -> absl::Status {
        sql::PreparedStatement& stmt = s.Prepare("SELECT UTC_TIMESTAMP(6)");
        std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
        if (!rs->next())
          return absl::InternalError("clock query returned no row");
        absl::StatusOr<absl::Time> t = GetTime(*rs, 1);
        if (!t.ok()) return t.status();
        now = *t;
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return now;
}

absl::StatusOr<int64_t> MysqlKeyStore::ReconcilePresenceFlags() {
  // The same statements as the migration that added the flags.
  static constexpr const char* kReconcile[] = {
      "UPDATE api_keys SET has_limits = 1"
      " WHERE has_limits = 0 AND id IN (SELECT key_id FROM key_limits)",
      "UPDATE api_keys SET has_quota = 1"
      " WHERE has_quota = 0 AND id IN (SELECT key_id FROM key_quotas)",
      "UPDATE tenants SET has_identity_limits = 1"
      " WHERE has_identity_limits = 0"
      " AND id IN (SELECT tenant_id FROM identity_limits)",
  };
  int64_t set = 0;
  for (const char* sql : kReconcile) {
    absl::Status status =
        Run(*pool_, "reconcile presence flags", [&](Session& s) {
          set += static_cast<int64_t>(s.Update(s.Prepare(sql)));
          return absl::OkStatus();
        });
    if (!status.ok()) return status;
  }
  return set;
}

absl::StatusOr<int64_t> MysqlKeyStore::ReconcileRetiredCopies() {
  // Keys whose copy is not current, found by a consistent read in id order,
  // kChunk at a time. Each chunk's rows are locked before its copies are
  // built: every writer of the retired secrets, of every release, locks the
  // key row first, so the copies are built from their latest committed
  // secrets (the transaction's first consistent read comes after the lock).
  constexpr int kChunk = 500;
  int64_t corrected = 0;
  std::string after;
  while (true) {
    std::vector<std::string> ids;
    absl::Status status =
        Run(*pool_, "find stale retired copies", [&](Session& s) {
          ids.clear();
          sql::PreparedStatement& find = s.Prepare(absl::StrCat(
              "SELECT id FROM api_keys WHERE id > ?"
              " AND retired_copy_version <> version ORDER BY id LIMIT ",
              kChunk));
          find.setString(1, Str(after));
          std::unique_ptr<sql::ResultSet> rs = s.Query(find);
          while (rs->next()) ids.push_back(rs->getString(1).asStdString());
          return absl::OkStatus();
        });
    if (!status.ok()) return status;
    if (ids.empty()) return corrected;
    after = ids.back();
    const std::string in = absl::StrCat(
        "(?",
        absl::StrJoin(std::vector<std::string>(ids.size() - 1, ", ?"), ""),
        ")");
    status = Run(
        *pool_, "rebuild retired copies", OnConflict::kRetry,
        [&](Session& s) -> absl::Status {
          s.Begin();
          s.Step("lock keys");
          std::unique_ptr<sql::PreparedStatement> lock =
              s.PrepareUncached(absl::StrCat(
                  "SELECT id FROM api_keys WHERE id IN ", in, " FOR UPDATE"));
          for (size_t i = 0; i < ids.size(); ++i) {
            lock->setString(static_cast<int>(i + 1), ids[i]);
          }
          s.Query(*lock).reset();
          s.Step("rebuild copies");
          std::unique_ptr<sql::PreparedStatement> rebuild =
              s.PrepareUncached(absl::StrCat(
                  "UPDATE api_keys SET retired_copy = ", kRetiredCopyExpression,
                  ", retired_copy_version = version WHERE id IN ", in,
                  " AND retired_copy_version <> version"));
          for (size_t i = 0; i < ids.size(); ++i) {
            rebuild->setString(static_cast<int>(i + 1), ids[i]);
          }
          const uint64_t rebuilt = s.Update(*rebuild);
          s.Commit();
          corrected += static_cast<int64_t>(rebuilt);
          return absl::OkStatus();
        });
    if (!status.ok()) return status;
  }
}

absl::StatusOr<int> MysqlKeyStore::FlushLogAtTrxCommit() {
  int value = 0;
  absl::Status status =
      Run(*pool_, "read durability settings", [&](Session& s) -> absl::Status {
        sql::PreparedStatement& stmt =
            s.Prepare("SELECT @@innodb_flush_log_at_trx_commit");
        std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
        if (!rs->next()) return absl::InternalError("no result");
        value = rs->getInt(1);
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return value;
}

}  // namespace lumo::storage
