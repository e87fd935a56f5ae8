#include "server/storage/mysql/mysql_portal_store.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <cstring>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/storage/mysql/mysql_session.h"
#include "server/storage/mysql/select_list.h"

namespace lumo::storage {
namespace {

// A portal admin by tenant slug and email.
struct AdminSelect {
  SelectList list;
  int tenant_id = list.Add("t.id");
  int tenant_slug = list.Add("t.slug");
  int user_id = list.Add("u.id");
  int email = list.Add("u.email");
  int blocked = list.Add("u.blocked");
  int password_hash = list.Add("c.password_hash");
  std::string sql =
      absl::StrCat("SELECT ", list.sql(),
                   " FROM tenants t JOIN users u ON u.tenant_id = t.id"
                   " JOIN portal_credentials c ON c.tenant_id = u.tenant_id"
                   " AND c.user_id = u.id"
                   " WHERE t.slug = ? AND u.email_key = ?");
};

constexpr char kTenantIdSql[] = "SELECT id FROM tenants WHERE slug = ?";

constexpr char kUserBySql[] =
    "SELECT id FROM users WHERE tenant_id = ? AND email_key = ? FOR UPDATE";

constexpr char kInsertUserSql[] =
    "INSERT INTO users (id, tenant_id, email, email_key, name, blocked,"
    " created_at, updated_at)"
    " VALUES (?, ?, ?, ?, '', 0, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))";

constexpr char kUpsertCredentialSql[] =
    "INSERT INTO portal_credentials (tenant_id, user_id, password_hash,"
    " created_at, updated_at)"
    " VALUES (?, ?, ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))"
    " ON DUPLICATE KEY UPDATE password_hash = ?,"
    " updated_at = UTC_TIMESTAMP(6)";

// A changed password ends every session of the user.
constexpr char kDeleteUserSessionsSql[] =
    "DELETE FROM portal_sessions WHERE tenant_id = ? AND user_id = ?";

constexpr char kInsertSessionSql[] =
    "INSERT INTO portal_sessions (token_sha256, csrf_sha256, tenant_id,"
    " user_id, created_at, last_seen_at, expires_at)"
    " VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6),"
    " UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND)";

// A session by token hash, with its user and the clock.
struct SessionSelect {
  SelectList list;
  int tenant_id = list.Add("s.tenant_id");
  int tenant_slug = list.Add("t.slug");
  int user_id = list.Add("s.user_id");
  int email = list.Add("u.email");
  int blocked = list.Add("u.blocked");
  int csrf_sha256 = list.Add("s.csrf_sha256");
  int created_at = list.Add("s.created_at");
  int last_seen_at = list.Add("s.last_seen_at");
  int expires_at = list.Add("s.expires_at");
  int now = list.Add("UTC_TIMESTAMP(6)");
  std::string sql = absl::StrCat(
      "SELECT ", list.sql(),
      " FROM portal_sessions s JOIN tenants t ON t.id = s.tenant_id"
      " JOIN users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id"
      " WHERE s.token_sha256 = ?");
};

constexpr char kTouchSessionSql[] =
    "UPDATE portal_sessions SET last_seen_at = UTC_TIMESTAMP(6)"
    " WHERE token_sha256 = ?";

constexpr char kDeleteSessionSql[] =
    "DELETE FROM portal_sessions WHERE token_sha256 = ?";

constexpr char kSessionOwnerSql[] =
    "SELECT tenant_id FROM portal_sessions WHERE token_sha256 = ? FOR UPDATE";

std::string Bytes(const core::Digest& d) {
  return std::string(core::AsStringView(d));
}

absl::Status NotFound(absl::string_view what) {
  return absl::NotFoundError(what);
}

}  // namespace

absl::StatusOr<PortalAdmin> MysqlPortalStore::FindAdmin(
    absl::string_view tenant_slug, absl::string_view email) {
  PortalAdmin admin;
  absl::Status status =
      Run(*pool_, "find portal admin", [&](Session& s) -> absl::Status {
        s.Step("select admin");
        const AdminSelect& c = SelectOf<AdminSelect>();
        sql::PreparedStatement& stmt = s.Prepare(c.sql);
        stmt.setString(1, Str(tenant_slug));
        stmt.setString(2, absl::AsciiStrToLower(email));
        std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
        if (!rs->next()) return NotFound("portal admin not found");
        admin.tenant_id = rs->getInt64(c.tenant_id);
        admin.tenant_slug = rs->getString(c.tenant_slug).asStdString();
        admin.user_id = rs->getString(c.user_id).asStdString();
        admin.email = rs->getString(c.email).asStdString();
        admin.blocked = rs->getInt(c.blocked) != 0;
        admin.password_hash = rs->getString(c.password_hash).asStdString();
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return admin;
}

absl::StatusOr<std::string> MysqlPortalStore::UpsertAdmin(
    absl::string_view tenant_slug, absl::string_view email,
    absl::string_view new_user_id, absl::string_view password_hash,
    const AuditEvent& event) {
  std::string user_id;
  absl::Status status =
      Run(*pool_, "set portal admin", OnConflict::kRetry,
          [&](Session& s) -> absl::Status {
            s.Begin();
            s.Step("select tenant");
            sql::PreparedStatement& tenant = s.Prepare(kTenantIdSql);
            tenant.setString(1, Str(tenant_slug));
            std::unique_ptr<sql::ResultSet> trs = s.Query(tenant);
            if (!trs->next()) return NotFound("tenant not found");
            const int64_t tenant_id = trs->getInt64(1);
            s.Step("select user");
            sql::PreparedStatement& find = s.Prepare(kUserBySql);
            find.setInt64(1, tenant_id);
            find.setString(2, absl::AsciiStrToLower(email));
            std::unique_ptr<sql::ResultSet> urs = s.Query(find);
            AuditEvent audit = event;
            if (urs->next()) {
              user_id = urs->getString(1).asStdString();
            } else {
              user_id = Str(new_user_id);
              s.Step("insert user");
              sql::PreparedStatement& insert = s.Prepare(kInsertUserSql);
              insert.setString(1, user_id);
              insert.setInt64(2, tenant_id);
              insert.setString(3, Str(email));
              insert.setString(4, absl::AsciiStrToLower(email));
              s.Update(insert);
            }
            s.Step("upsert credential");
            sql::PreparedStatement& cred = s.Prepare(kUpsertCredentialSql);
            cred.setInt64(1, tenant_id);
            cred.setString(2, user_id);
            cred.setString(3, Str(password_hash));
            // Bound again rather than VALUES(password_hash), which MySQL 8.0
            // deprecates.
            cred.setString(4, Str(password_hash));
            s.Update(cred);
            s.Step("end sessions");
            sql::PreparedStatement& end = s.Prepare(kDeleteUserSessionsSql);
            end.setInt64(1, tenant_id);
            end.setString(2, user_id);
            s.Update(end);
            audit.target_type = "user";
            audit.target_id = user_id;
            if (absl::Status st = InsertAudit(s, tenant_id, audit); !st.ok()) {
              return st;
            }
            s.Commit();
            return absl::OkStatus();
          });
  if (!status.ok()) return status;
  return user_id;
}

absl::Status MysqlPortalStore::InsertSession(int64_t tenant_id,
                                             absl::string_view user_id,
                                             const core::Digest& token_sha256,
                                             const core::Digest& csrf_sha256,
                                             absl::Duration absolute_ttl,
                                             const AuditEvent& event) {
  return Run(*pool_, "insert portal session", OnConflict::kRetry,
             [&](Session& s) -> absl::Status {
               s.Begin();
               s.Step("insert session");
               sql::PreparedStatement& stmt = s.Prepare(kInsertSessionSql);
               stmt.setString(1, Bytes(token_sha256));
               stmt.setString(2, Bytes(csrf_sha256));
               stmt.setInt64(3, tenant_id);
               stmt.setString(4, Str(user_id));
               stmt.setInt64(5, absl::ToInt64Microseconds(absolute_ttl));
               s.Update(stmt);
               if (absl::Status st = InsertAudit(s, tenant_id, event);
                   !st.ok()) {
                 return st;
               }
               s.Commit();
               return absl::OkStatus();
             });
}

absl::StatusOr<PortalSessionRecord> MysqlPortalStore::TouchSession(
    const core::Digest& token_sha256, absl::Duration idle_ttl,
    absl::Duration touch_every) {
  PortalSessionRecord record;
  absl::Status status = Run(
      *pool_, "touch portal session", OnConflict::kRetry,
      [&](Session& s) -> absl::Status {
        s.Step("select session");
        const SessionSelect& c = SelectOf<SessionSelect>();
        sql::PreparedStatement& stmt = s.Prepare(c.sql);
        stmt.setString(1, Bytes(token_sha256));
        std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
        if (!rs->next()) return NotFound("session not found");
        record.tenant_id = rs->getInt64(c.tenant_id);
        record.tenant_slug = rs->getString(c.tenant_slug).asStdString();
        record.user_id = rs->getString(c.user_id).asStdString();
        record.email = rs->getString(c.email).asStdString();
        const bool blocked = rs->getInt(c.blocked) != 0;
        std::string csrf = rs->getString(c.csrf_sha256).asStdString();
        if (csrf.size() != record.csrf_sha256.size()) {
          return absl::InternalError("stored CSRF hash has the wrong length");
        }
        std::memcpy(record.csrf_sha256.data(), csrf.data(), csrf.size());
        absl::StatusOr<absl::Time> created = GetTime(*rs, c.created_at);
        absl::StatusOr<absl::Time> seen = GetTime(*rs, c.last_seen_at);
        absl::StatusOr<absl::Time> expires = GetTime(*rs, c.expires_at);
        absl::StatusOr<absl::Time> now = GetTime(*rs, c.now);
        if (!created.ok()) return created.status();
        if (!seen.ok()) return seen.status();
        if (!expires.ok()) return expires.status();
        if (!now.ok()) return now.status();
        record.created_at = *created;
        record.last_seen_at = *seen;
        record.expires_at = *expires;
        record.db_now = *now;
        rs.reset();
        if (blocked || *now >= *expires || *now - *seen >= idle_ttl) {
          s.Step("delete expired session");
          sql::PreparedStatement& del = s.Prepare(kDeleteSessionSql);
          del.setString(1, Bytes(token_sha256));
          s.Update(del);
          return NotFound("session expired");
        }
        if (*now - *seen >= touch_every) {
          s.Step("touch session");
          sql::PreparedStatement& touch = s.Prepare(kTouchSessionSql);
          touch.setString(1, Bytes(token_sha256));
          s.Update(touch);
          record.last_seen_at = *now;
        }
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return record;
}

absl::Status MysqlPortalStore::DeleteSession(const core::Digest& token_sha256,
                                             const AuditEvent* event) {
  return Run(*pool_, "delete portal session", OnConflict::kRetry,
             [&](Session& s) -> absl::Status {
               s.Begin();
               s.Step("lock session");
               sql::PreparedStatement& owner = s.Prepare(kSessionOwnerSql);
               owner.setString(1, Bytes(token_sha256));
               std::unique_ptr<sql::ResultSet> rs = s.Query(owner);
               if (!rs->next()) {
                 s.Rollback();
                 return absl::OkStatus();
               }
               const int64_t tenant_id = rs->getInt64(1);
               rs.reset();
               s.Step("delete session");
               sql::PreparedStatement& del = s.Prepare(kDeleteSessionSql);
               del.setString(1, Bytes(token_sha256));
               s.Update(del);
               if (event != nullptr) {
                 if (absl::Status st = InsertAudit(s, tenant_id, *event);
                     !st.ok()) {
                   return st;
                 }
               }
               s.Commit();
               return absl::OkStatus();
             });
}

}  // namespace lumo::storage
