#include "server/storage/mysql/mysql_user_store.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "server/storage/mysql/keyset.h"
#include "server/storage/mysql/mysql_session.h"
#include "server/storage/mysql/select_list.h"

namespace lumo::storage {
namespace {

// ---------------------------------------------------------------------------
// SQL. Values are always bound; the only spliced text is from this file.

// The users columns every user read selects.
struct UserColumns {
  explicit UserColumns(SelectList& s)
      : id(s.Add("u.id")),
        tenant_id(s.Add("u.tenant_id")),
        email(s.Add("u.email")),
        name(s.Add("u.name")),
        blocked(s.Add("u.blocked")),
        created_at(s.Add("u.created_at")),
        updated_at(s.Add("u.updated_at")) {}
  int id, tenant_id, email, name, blocked, created_at, updated_at;
};

// The roles columns every role read selects.
struct RoleColumns {
  explicit RoleColumns(SelectList& s)
      : id(s.Add("r.id")),
        tenant_id(s.Add("r.tenant_id")),
        slug(s.Add("r.slug")),
        name(s.Add("r.name")),
        description(s.Add("r.description")),
        permissions(s.Add("r.permissions")),
        created_at(s.Add("r.created_at")),
        updated_at(s.Add("r.updated_at")) {}
  int id, tenant_id, slug, name, description, permissions, created_at,
      updated_at;
};

// One row (Get, the read of a mutation) and a page row (with the number of
// matching rows) of each.
struct UserSelect {
  SelectList list;
  UserColumns user{list};
};
struct UserPageSelect {
  SelectList list;
  UserColumns user{list};
};
struct RoleSelect {
  SelectList list;
  RoleColumns role{list};
};
struct RolePageSelect {
  SelectList list;
  RoleColumns role{list};
  int total = list.Add("COUNT(*) OVER ()");
};

// The role slugs of users.
struct AssignedSlugSelect {
  SelectList list;
  int user_id = list.Add("ur.user_id");
  int slug = list.Add("r.slug");
};

// A tenant's portal admins.
struct PortalAdminSelect {
  SelectList list;
  int id = list.Add("u.id");
  int blocked = list.Add("u.blocked");
};

constexpr char kInsertUserSql[] =
    "INSERT INTO users (id, tenant_id, email, email_key, name, blocked,"
    " created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))";

constexpr char kUpdateUserSql[] =
    "UPDATE users SET email = ?, email_key = ?, name = ?, blocked = ?,"
    " updated_at = UTC_TIMESTAMP(6) WHERE tenant_id = ? AND id = ?";

constexpr char kInsertAssignmentSql[] =
    "INSERT INTO user_roles (tenant_id, user_id, role_id, created_at)"
    " VALUES (?, ?, ?, UTC_TIMESTAMP(6))";

constexpr char kInsertRoleSql[] =
    "INSERT INTO roles (id, tenant_id, slug, name, description, permissions,"
    " created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))";

constexpr char kUpdateRoleSql[] =
    "UPDATE roles SET slug = ?, name = ?, description = ?, permissions = ?,"
    " updated_at = UTC_TIMESTAMP(6) WHERE tenant_id = ? AND id = ?";

// A value bound to a statement assembled at run time.
using Param = std::variant<int64_t, std::string>;

void BindAll(sql::PreparedStatement& stmt, const std::vector<Param>& params) {
  int index = 1;
  for (const Param& p : params) {
    if (const int64_t* i = std::get_if<int64_t>(&p)) {
      stmt.setInt64(index++, *i);
    } else {
      stmt.setString(index++, std::get<std::string>(p));
    }
  }
}

// ---------------------------------------------------------------------------
// Values.

bool IsAscii(absl::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

absl::Status UserNotFound() { return absl::NotFoundError("user not found"); }
absl::Status RoleNotFound() { return absl::NotFoundError("role not found"); }

const char* UserRefColumn(const UserRef& ref) {
  return ref.kind == UserRef::Kind::kEmail ? "u.email_key" : "u.id";
}
std::string UserRefValue(const UserRef& ref) {
  return ref.kind == UserRef::Kind::kEmail ? absl::AsciiStrToLower(ref.value)
                                           : ref.value;
}
const char* RoleRefColumn(const RoleRef& ref) {
  return ref.kind == RoleRef::Kind::kSlug ? "r.slug" : "r.id";
}

absl::Status ReadUserColumns(const sql::ResultSet& rs, const UserColumns& c,
                             UserRecord* user) {
  user->id = rs.getString(c.id).asStdString();
  user->tenant_id = rs.getInt64(c.tenant_id);
  user->email = rs.getString(c.email).asStdString();
  user->name = rs.getString(c.name).asStdString();
  user->blocked = rs.getInt(c.blocked) != 0;
  absl::StatusOr<absl::Time> created = GetTime(rs, c.created_at);
  if (!created.ok()) return created.status();
  user->created_at = *created;
  absl::StatusOr<absl::Time> updated = GetTime(rs, c.updated_at);
  if (!updated.ok()) return updated.status();
  user->updated_at = *updated;
  return absl::OkStatus();
}

absl::Status ReadRoleColumns(const sql::ResultSet& rs, const RoleColumns& c,
                             RoleRecord* role) {
  role->id = rs.getString(c.id).asStdString();
  role->tenant_id = rs.getInt64(c.tenant_id);
  role->slug = rs.getString(c.slug).asStdString();
  role->name = rs.getString(c.name).asStdString();
  role->description = rs.getString(c.description).asStdString();
  role->permissions = SplitList(rs.getString(c.permissions), ' ');
  absl::StatusOr<absl::Time> created = GetTime(rs, c.created_at);
  if (!created.ok()) return created.status();
  role->created_at = *created;
  absl::StatusOr<absl::Time> updated = GetTime(rs, c.updated_at);
  if (!updated.ok()) return updated.status();
  role->updated_at = *updated;
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Statements shared by several operations; each runs in the caller's
// session (and transaction).

// Fills the role slugs of `users` with one query.
void ReadRoleSlugs(Session& s, int64_t tenant_id,
                   std::vector<UserRecord*> users) {
  if (users.empty()) return;
  const AssignedSlugSelect& c = SelectOf<AssignedSlugSelect>();
  std::string sql =
      absl::StrCat("SELECT ", c.list.sql(),
                   " FROM user_roles ur JOIN roles r"
                   " ON r.tenant_id = ur.tenant_id AND r.id = ur.role_id"
                   " WHERE ur.tenant_id = ? AND ur.user_id IN (?");
  for (size_t i = 1; i < users.size(); ++i) sql += ", ?";
  sql += ") ORDER BY r.slug";
  s.Step("read user roles");
  // One user (Get, mutations) is the common, cacheable shape; a page has
  // up to 100 variants, which are not cached.
  std::unique_ptr<sql::PreparedStatement> owned;
  sql::PreparedStatement* stmt;
  if (users.size() == 1) {
    stmt = &s.Prepare(sql);
  } else {
    owned = s.PrepareUncached(sql);
    stmt = owned.get();
  }
  absl::flat_hash_map<std::string, UserRecord*> by_id;
  std::vector<Param> params = {tenant_id};
  for (UserRecord* user : users) {
    user->roles.clear();
    by_id[user->id] = user;
    params.push_back(user->id);
  }
  BindAll(*stmt, params);
  std::unique_ptr<sql::ResultSet> rs = s.Query(*stmt);
  while (rs->next()) {
    auto it = by_id.find(rs->getString(c.user_id).asStdString());
    if (it != by_id.end()) {
      it->second->roles.push_back(rs->getString(c.slug).asStdString());
    }
  }
}

// Reads one user with its roles; with `lock`, holds its row lock (FOR
// UPDATE) until the transaction ends. NOT_FOUND when there is none.
absl::Status ReadUser(Session& s, int64_t tenant_id, const UserRef& ref,
                      bool lock, UserRecord* user) {
  if (!IsStorableUserToken(ref.value)) return UserNotFound();
  s.Step(lock ? "lock user" : "read user");
  const UserSelect& c = SelectOf<UserSelect>();
  sql::PreparedStatement& stmt = s.Prepare(absl::StrCat(
      "SELECT ", c.list.sql(), " FROM users u WHERE u.tenant_id = ? AND ",
      UserRefColumn(ref), " = ?", lock ? " FOR UPDATE" : ""));
  stmt.setInt64(1, tenant_id);
  stmt.setString(2, UserRefValue(ref));
  std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
  if (!rs->next()) return UserNotFound();
  if (absl::Status st = ReadUserColumns(*rs, c.user, user); !st.ok()) {
    return st;
  }
  rs.reset();
  ReadRoleSlugs(s, tenant_id, {user});
  return absl::OkStatus();
}

// The tenant's portal admins (users with portal credentials) and whether
// each is blocked, holding their row locks (credential and user rows), so
// that the "last active portal admin" check cannot race another block or
// delete. Taken before the target user's own lock (one order everywhere).
struct PortalAdmins {
  std::vector<std::pair<std::string, bool>> admins;  // id, blocked

  bool Contains(absl::string_view id) const {
    for (const auto& [admin, blocked] : admins) {
      if (admin == id) return true;
    }
    return false;
  }
  int ActiveOtherThan(absl::string_view id) const {
    int n = 0;
    for (const auto& [admin, blocked] : admins) n += !blocked && admin != id;
    return n;
  }
};

PortalAdmins LockPortalAdmins(Session& s, int64_t tenant_id) {
  s.Step("lock portal admins");
  const PortalAdminSelect& c = SelectOf<PortalAdminSelect>();
  sql::PreparedStatement& stmt = s.Prepare(
      absl::StrCat("SELECT ", c.list.sql(),
                   " FROM portal_credentials pc JOIN users u"
                   " ON u.tenant_id = pc.tenant_id AND u.id = pc.user_id"
                   " WHERE pc.tenant_id = ? ORDER BY u.id FOR UPDATE"));
  stmt.setInt64(1, tenant_id);
  std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
  PortalAdmins out;
  while (rs->next()) {
    out.admins.emplace_back(rs->getString(c.id).asStdString(),
                            rs->getInt(c.blocked) != 0);
  }
  return out;
}

// The portal-admin rule for a write that changes whether `user` is blocked
// (`blocking`: to blocked) or deletes it (`deleting`).
absl::Status CheckPortalAdminWrite(const PortalAdmins& admins,
                                   const UserRecord& user, bool blocking,
                                   bool deleting,
                                   const PortalAdminGuard& guard) {
  if (!admins.Contains(user.id)) return absl::OkStatus();
  if (!guard.may_manage_admins) {
    return absl::PermissionDeniedError(
        "blocking, unblocking or deleting a portal admin needs admin:write");
  }
  if ((blocking || deleting) && !user.blocked &&
      admins.ActiveOtherThan(user.id) == 0) {
    absl::Status last = absl::FailedPreconditionError(
        absl::StrCat("the tenant's last active portal admin cannot be ",
                     deleting ? "deleted" : "blocked"));
    last.SetPayload(kLastPortalAdminPayload, absl::Cord("1"));
    return last;
  }
  return absl::OkStatus();
}

// Reads one role; with `lock`, holds its row lock (FOR UPDATE).
absl::Status ReadRole(Session& s, int64_t tenant_id, const RoleRef& ref,
                      bool lock, RoleRecord* role) {
  if (!IsStorableUserToken(ref.value)) return RoleNotFound();
  s.Step(lock ? "lock role" : "read role");
  const RoleSelect& c = SelectOf<RoleSelect>();
  sql::PreparedStatement& stmt = s.Prepare(absl::StrCat(
      "SELECT ", c.list.sql(), " FROM roles r WHERE r.tenant_id = ? AND ",
      RoleRefColumn(ref), " = ?", lock ? " FOR UPDATE" : ""));
  stmt.setInt64(1, tenant_id);
  stmt.setString(2, ref.value);
  std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
  if (!rs->next()) return RoleNotFound();
  return ReadRoleColumns(*rs, c.role, role);
}

// Marks the status returned for a role reference that names no role, so
// that it can be told from a failed foreign key on the tenant.
struct UnknownRole {
  bool seen = false;
  absl::Status Report(const RoleRef& ref) {
    seen = true;
    return absl::FailedPreconditionError(
        absl::StrCat("roles: no role '", ref.value, "' in this tenant"));
  }
};

// The role ids `refs` name (deduplicated, in order), each read LOCK IN
// SHARE MODE so that it cannot be deleted before the transaction ends.
// FAILED_PRECONDITION (via `unknown`) for the first reference that names
// no role of the tenant.
absl::StatusOr<std::vector<std::string>> ResolveRoles(
    Session& s, int64_t tenant_id, const std::vector<RoleRef>& refs,
    UnknownRole& unknown) {
  std::vector<std::string> ids;
  for (const RoleRef& ref : refs) {
    if (!IsStorableUserToken(ref.value)) return unknown.Report(ref);
    s.Step("resolve role");
    sql::PreparedStatement& stmt = s.Prepare(
        absl::StrCat("SELECT r.id FROM roles r WHERE r.tenant_id = ? AND ",
                     RoleRefColumn(ref), " = ? LOCK IN SHARE MODE"));
    stmt.setInt64(1, tenant_id);
    stmt.setString(2, ref.value);
    std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
    if (!rs->next()) return unknown.Report(ref);
    std::string id = rs->getString(1).asStdString();
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) {
      ids.push_back(std::move(id));
    }
  }
  return ids;
}

std::vector<std::string> AssignedRoleIds(Session& s, int64_t tenant_id,
                                         absl::string_view user_id) {
  s.Step("read assignments");
  sql::PreparedStatement& stmt = s.Prepare(
      "SELECT role_id FROM user_roles WHERE tenant_id = ? AND user_id = ?");
  stmt.setInt64(1, tenant_id);
  stmt.setString(2, Str(user_id));
  std::unique_ptr<sql::ResultSet> rs = s.Query(stmt);
  std::vector<std::string> ids;
  while (rs->next()) ids.push_back(rs->getString(1).asStdString());
  return ids;
}

void InsertAssignments(Session& s, int64_t tenant_id, absl::string_view user_id,
                       const std::vector<std::string>& role_ids) {
  for (const std::string& role_id : role_ids) {
    s.Step("insert assignment");
    sql::PreparedStatement& stmt = s.Prepare(kInsertAssignmentSql);
    stmt.setInt64(1, tenant_id);
    stmt.setString(2, Str(user_id));
    stmt.setString(3, role_id);
    s.Update(stmt);
  }
}

void DeleteAssignments(Session& s, int64_t tenant_id, absl::string_view user_id,
                       const std::vector<std::string>& role_ids) {
  for (const std::string& role_id : role_ids) {
    s.Step("delete assignment");
    sql::PreparedStatement& stmt = s.Prepare(
        "DELETE FROM user_roles WHERE tenant_id = ? AND user_id = ?"
        " AND role_id = ?");
    stmt.setInt64(1, tenant_id);
    stmt.setString(2, Str(user_id));
    stmt.setString(3, role_id);
    s.Update(stmt);
  }
}

// Writes `event` about the user or role `target_id`.
absl::Status Audit(Session& s, int64_t tenant_id, const AuditEvent& event,
                   absl::string_view target_id) {
  AuditEvent copy = event;
  copy.target_id = std::string(target_id);
  return InsertAudit(s, tenant_id, copy);
}

// ---------------------------------------------------------------------------
// Lists.

// One page of a list query: `columns` (whose `total` is the window count)
// selected by `from_where` with `params`, ordered by `order_by`.
struct PageQuery {
  const SelectList* columns;
  int total_column;
  std::string from_where;
  std::vector<Param> params;
  std::string order_by;
};

absl::Status CheckPaging(int page, int limit) {
  if (page < 1) return absl::InvalidArgumentError("page must be at least 1");
  if (limit < 1 || limit > 100) {
    return absl::InvalidArgumentError("limit must be between 1 and 100");
  }
  return absl::OkStatus();
}

// Runs the page (`read_row` per row) and returns the total number of
// matching rows. A page past the end costs one more query for the total.
absl::StatusOr<int64_t> RunPage(
    Session& s, const PageQuery& q, int page, int limit,
    absl::FunctionRef<absl::Status(const sql::ResultSet&)> read_row) {
  const int64_t offset =
      static_cast<int64_t>(page - 1) * static_cast<int64_t>(limit);
  s.Step("list page");
  // Filter, sort and search variants: not cached, to keep the server's
  // prepared-statement count bounded.
  std::unique_ptr<sql::PreparedStatement> stmt = s.PrepareUncached(
      absl::StrCat("SELECT ", q.columns->sql(), q.from_where, " ORDER BY ",
                   q.order_by, " LIMIT ? OFFSET ?"));
  std::vector<Param> params = q.params;
  params.push_back(static_cast<int64_t>(limit));
  params.push_back(offset);
  BindAll(*stmt, params);
  std::unique_ptr<sql::ResultSet> rs = s.Query(*stmt);
  int64_t total = 0;
  bool any = false;
  while (rs->next()) {
    if (absl::Status st = read_row(*rs); !st.ok()) return st;
    total = rs->getInt64(q.total_column);
    any = true;
  }
  if (any || offset == 0) return total;
  // Past the last page: the window count came with no row.
  s.Step("count");
  std::unique_ptr<sql::PreparedStatement> count =
      s.PrepareUncached(absl::StrCat("SELECT COUNT(*)", q.from_where));
  BindAll(*count, q.params);
  std::unique_ptr<sql::ResultSet> counted = s.Query(*count);
  return counted->next() ? counted->getInt64(1) : 0;
}

// The LIKE patterns of a search over an ASCII column (lower-cased) and a
// text column, and an id prefix. A non-ASCII search cannot match the ASCII
// columns: their patterns are '' (which matches no stored value).
struct SearchPatterns {
  std::string ascii;
  std::string text;
  std::string id_prefix;
};
SearchPatterns SearchPatternsFor(absl::string_view search) {
  SearchPatterns p;
  p.text = absl::StrCat("%", EscapeLike(search), "%");
  if (IsAscii(search)) {
    p.ascii = absl::StrCat("%", EscapeLike(absl::AsciiStrToLower(search)), "%");
    p.id_prefix = absl::StrCat(EscapeLike(search), "%");
  }
  return p;
}

std::string Direction(bool descending) { return descending ? " DESC" : " ASC"; }

// The sort column of a user list (an index of (tenant_id, column)).
const char* UserSortColumn(UserSortField sort_by) {
  switch (sort_by) {
    case UserSortField::kUpdatedAt:
      return "u.updated_at";
    case UserSortField::kEmail:
      return "u.email_key";
    case UserSortField::kName:
      return "u.name";
    case UserSortField::kCreatedAt:
      break;
  }
  return "u.created_at";
}

std::string RoleOrderBy(const ListRolesQuery& query) {
  const std::string dir = Direction(query.descending);
  const char* column = "r.created_at";
  switch (query.sort_by) {
    case RoleSortField::kSlug:
      column = "r.slug";
      break;
    case RoleSortField::kName:
      column = "r.name";
      break;
    case RoleSortField::kCreatedAt:
      break;
  }
  return absl::StrCat(column, dir, ", r.id", dir);
}

}  // namespace

// ---------------------------------------------------------------------------
// MysqlUserStore: users

MysqlUserStore::MysqlUserStore(std::shared_ptr<ConnectionPool> pool)
    : pool_(std::move(pool)) {}

MysqlUserStore::~MysqlUserStore() = default;

absl::StatusOr<UserRecord> MysqlUserStore::InsertUser(const NewUser& user,
                                                      const AuditEvent& event) {
  if (!IsStorableUserToken(user.id) || !IsStorableUserToken(user.email)) {
    return absl::InvalidArgumentError(
        "user id and email must be printable ASCII without spaces");
  }
  UserRecord record;
  UnknownRole unknown;
  absl::Status status =
      Run(*pool_, "insert user", OnConflict::kRetry,
          [&](Session& s) -> absl::Status {
            unknown = UnknownRole();
            s.Begin();
            absl::StatusOr<std::vector<std::string>> role_ids =
                ResolveRoles(s, user.tenant_id, user.roles, unknown);
            if (!role_ids.ok()) return role_ids.status();
            s.Step("insert user");
            sql::PreparedStatement& insert = s.Prepare(kInsertUserSql);
            insert.setString(1, user.id);
            insert.setInt64(2, user.tenant_id);
            insert.setString(3, user.email);
            insert.setString(4, absl::AsciiStrToLower(user.email));
            insert.setString(5, user.name);
            insert.setInt(6, user.blocked ? 1 : 0);
            s.Update(insert);
            InsertAssignments(s, user.tenant_id, user.id, *role_ids);
            if (absl::Status st = Audit(s, user.tenant_id, event, user.id);
                !st.ok()) {
              return st;
            }
            if (absl::Status st = ReadUser(
                    s, user.tenant_id, UserRef::Id(user.id), false, &record);
                !st.ok()) {
              return st;
            }
            s.Commit();
            return absl::OkStatus();
          });
  if (absl::IsFailedPrecondition(status) && !unknown.seen) {
    // The foreign key to tenants failed.
    return absl::NotFoundError("insert user: tenant not found");
  }
  if (!status.ok()) return status;
  return record;
}

absl::StatusOr<UserRecord> MysqlUserStore::GetUser(int64_t tenant_id,
                                                   const UserRef& ref) {
  if (!IsStorableUserToken(ref.value)) return UserNotFound();
  UserRecord user;
  absl::Status status =
      Run(*pool_, "get user", [&](Session& s) -> absl::Status {
        // One snapshot for the row and its roles.
        s.Begin();
        if (absl::Status st = ReadUser(s, tenant_id, ref, false, &user);
            !st.ok()) {
          return st;
        }
        s.Commit();
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return user;
}

absl::StatusOr<UserPage> MysqlUserStore::ListUsers(
    int64_t tenant_id, const ListUsersQuery& query) {
  if (absl::Status st = CheckPaging(query.page, query.limit); !st.ok()) {
    return st;
  }
  if (query.after.has_value() && query.page != 1) {
    return absl::InvalidArgumentError("page must be 1 with a list position");
  }
  if (query.role.has_value() && !IsStorableUserToken(query.role->value)) {
    return UserPage();  // names no role: matches nobody
  }
  const UserPageSelect& cols = SelectOf<UserPageSelect>();
  KeysetList q;
  q.outer_select = absl::StrCat("SELECT ", cols.list.sql());
  q.inner_columns = "u.*";
  q.alias = "u";
  q.from_where = " FROM users u WHERE u.tenant_id = ?";
  q.where_values.push_back(tenant_id);
  if (query.blocked.has_value()) {
    q.from_where += " AND u.blocked = ?";
    q.where_values.push_back(static_cast<int64_t>(*query.blocked ? 1 : 0));
  }
  if (query.role.has_value()) {
    absl::StrAppend(&q.from_where,
                    " AND EXISTS (SELECT 1 FROM user_roles ur JOIN roles r"
                    " ON r.tenant_id = ur.tenant_id AND r.id = ur.role_id"
                    " WHERE ur.tenant_id = u.tenant_id AND ur.user_id = u.id"
                    " AND ",
                    RoleRefColumn(*query.role), " = ?)");
    q.where_values.push_back(query.role->value);
  }
  if (!query.search.empty()) {
    const SearchPatterns p = SearchPatternsFor(query.search);
    q.from_where +=
        " AND (u.email_key LIKE ? ESCAPE '!' OR u.name LIKE ? ESCAPE '!'"
        " OR u.id LIKE ? ESCAPE '!')";
    q.where_values.push_back(p.ascii);
    q.where_values.push_back(p.text);
    q.where_values.push_back(p.id_prefix);
  }
  KeysetOrder order;
  order.column = UserSortColumn(query.sort_by);
  order.id_column = "u.id";
  order.descending = query.descending;
  std::optional<KeysetPosition> after;
  if (query.after.has_value()) {
    after = KeysetPosition{std::nullopt, query.after->id};
    if (query.sort_by == UserSortField::kEmail ||
        query.sort_by == UserSortField::kName) {
      after->value = query.after->text;
    } else if (query.after->time.has_value()) {
      after->value = *query.after->time;
    }
  }
  const int64_t offset =
      static_cast<int64_t>(query.page - 1) * static_cast<int64_t>(query.limit);

  UserPage page;
  absl::Status status =
      Run(*pool_, "list users", [&](Session& s) -> absl::Status {
        page = UserPage();
        s.Begin();
        CountedTotal total;
        absl::Status read = ReadCountedPage(
            s, q, order, after, offset, query.limit, query.count,
            [&](sql::ResultSet& rs) -> absl::Status {
              UserRecord user;
              if (absl::Status st = ReadUserColumns(rs, cols.user, &user);
                  !st.ok()) {
                return st;
              }
              page.users.push_back(std::move(user));
              return absl::OkStatus();
            },
            &page.has_more, &total);
        if (!read.ok()) return read;
        page.total = total.total;
        page.total_kind = total.kind;
        std::vector<UserRecord*> users;
        for (UserRecord& user : page.users) users.push_back(&user);
        ReadRoleSlugs(s, tenant_id, users);
        s.Commit();
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return page;
}

absl::StatusOr<UserWrite> MysqlUserStore::UpdateUser(int64_t tenant_id,
                                                     const UserRef& ref,
                                                     const UserUpdate& update,
                                                     const AuditEvent& event) {
  if (!IsStorableUserToken(ref.value)) return UserNotFound();
  if (update.email.has_value() && !IsStorableUserToken(*update.email)) {
    return absl::InvalidArgumentError(
        "email must be printable ASCII without spaces");
  }
  UserWrite result;
  absl::Status status =
      Run(*pool_, "update user", OnConflict::kRetry,
          [&](Session& s) -> absl::Status {
            result = UserWrite();
            UnknownRole unknown;
            s.Begin();
            std::optional<PortalAdmins> admins;
            if (update.blocked.has_value()) {
              admins = LockPortalAdmins(s, tenant_id);
            }
            UserRecord current;
            if (absl::Status st = ReadUser(s, tenant_id, ref, true, &current);
                !st.ok()) {
              return st;
            }
            const std::string email = update.email.value_or(current.email);
            const std::string name = update.name.value_or(current.name);
            const bool blocked = update.blocked.value_or(current.blocked);
            if (admins.has_value() && blocked != current.blocked) {
              if (absl::Status st = CheckPortalAdminWrite(
                      *admins, current, blocked, false, update.guard);
                  !st.ok()) {
                s.Rollback();
                return st;
              }
            }
            bool changed = email != current.email || name != current.name ||
                           blocked != current.blocked;
            std::vector<std::string> added;
            std::vector<std::string> removed;
            if (update.roles.has_value()) {
              absl::StatusOr<std::vector<std::string>> wanted =
                  ResolveRoles(s, tenant_id, *update.roles, unknown);
              if (!wanted.ok()) return wanted.status();
              const std::vector<std::string> held =
                  AssignedRoleIds(s, tenant_id, current.id);
              const absl::flat_hash_set<std::string> held_set(held.begin(),
                                                              held.end());
              const absl::flat_hash_set<std::string> wanted_set(wanted->begin(),
                                                                wanted->end());
              for (const std::string& id : *wanted) {
                if (!held_set.contains(id)) added.push_back(id);
              }
              for (const std::string& id : held) {
                if (!wanted_set.contains(id)) removed.push_back(id);
              }
              changed |= !added.empty() || !removed.empty();
            }
            if (!changed) {
              s.Rollback();
              result.user = std::move(current);
              return absl::OkStatus();
            }
            s.Step("update user");
            sql::PreparedStatement& stmt = s.Prepare(kUpdateUserSql);
            stmt.setString(1, email);
            stmt.setString(2, absl::AsciiStrToLower(email));
            stmt.setString(3, name);
            stmt.setInt(4, blocked ? 1 : 0);
            stmt.setInt64(5, tenant_id);
            stmt.setString(6, current.id);
            if (s.Update(stmt) != 1) {
              return absl::InternalError(
                  "update user: the locked row did not update");
            }
            DeleteAssignments(s, tenant_id, current.id, removed);
            InsertAssignments(s, tenant_id, current.id, added);
            if (absl::Status st = Audit(s, tenant_id, event, current.id);
                !st.ok()) {
              return st;
            }
            if (absl::Status st = ReadUser(
                    s, tenant_id, UserRef::Id(current.id), false, &result.user);
                !st.ok()) {
              return st;
            }
            s.Commit();
            result.changed = true;
            return absl::OkStatus();
          });
  if (!status.ok()) return status;
  return result;
}

absl::StatusOr<UserRecord> MysqlUserStore::DeleteUser(
    int64_t tenant_id, const UserRef& ref, const AuditEvent& event,
    const PortalAdminGuard& guard) {
  if (!IsStorableUserToken(ref.value)) return UserNotFound();
  UserRecord user;
  absl::Status status = Run(
      *pool_, "delete user", OnConflict::kRetry,
      [&](Session& s) -> absl::Status {
        user = UserRecord();
        s.Begin();
        const PortalAdmins admins = LockPortalAdmins(s, tenant_id);
        if (absl::Status st = ReadUser(s, tenant_id, ref, true, &user);
            !st.ok()) {
          return st;
        }
        if (absl::Status st =
                CheckPortalAdminWrite(admins, user, false, true, guard);
            !st.ok()) {
          s.Rollback();
          return st;
        }
        // Assignments go with it (ON DELETE CASCADE).
        s.Step("delete user");
        sql::PreparedStatement& stmt =
            s.Prepare("DELETE FROM users WHERE tenant_id = ? AND id = ?");
        stmt.setInt64(1, tenant_id);
        stmt.setString(2, user.id);
        if (s.Update(stmt) != 1) {
          return absl::InternalError(
              "delete user: the locked row did not delete");
        }
        if (absl::Status st = Audit(s, tenant_id, event, user.id); !st.ok()) {
          return st;
        }
        s.Commit();
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return user;
}

// ---------------------------------------------------------------------------
// MysqlUserStore: roles

absl::StatusOr<RoleRecord> MysqlUserStore::InsertRole(const RoleFields& role,
                                                      const AuditEvent& event) {
  if (!IsStorableUserToken(role.id) || !IsStorableUserToken(role.slug)) {
    return absl::InvalidArgumentError(
        "role id and slug must be printable ASCII without spaces");
  }
  absl::StatusOr<std::string> permissions =
      JoinList(role.permissions, ' ', "permissions");
  if (!permissions.ok()) return permissions.status();
  RoleRecord record;
  absl::Status status =
      Run(*pool_, "insert role", OnConflict::kRetry,
          [&](Session& s) -> absl::Status {
            s.Begin();
            s.Step("insert role");
            sql::PreparedStatement& insert = s.Prepare(kInsertRoleSql);
            insert.setString(1, role.id);
            insert.setInt64(2, role.tenant_id);
            insert.setString(3, role.slug);
            insert.setString(4, role.name);
            insert.setString(5, role.description);
            insert.setString(6, *permissions);
            s.Update(insert);
            if (absl::Status st = Audit(s, role.tenant_id, event, role.id);
                !st.ok()) {
              return st;
            }
            if (absl::Status st = ReadRole(
                    s, role.tenant_id, RoleRef::Id(role.id), false, &record);
                !st.ok()) {
              return st;
            }
            s.Commit();
            return absl::OkStatus();
          });
  if (absl::IsFailedPrecondition(status)) {
    // The foreign key to tenants failed.
    return absl::NotFoundError("insert role: tenant not found");
  }
  if (!status.ok()) return status;
  return record;
}

absl::StatusOr<RoleRecord> MysqlUserStore::GetRole(int64_t tenant_id,
                                                   const RoleRef& ref) {
  if (!IsStorableUserToken(ref.value)) return RoleNotFound();
  RoleRecord role;
  absl::Status status =
      Run(*pool_, "get role", [&](Session& s) -> absl::Status {
        return ReadRole(s, tenant_id, ref, false, &role);
      });
  if (!status.ok()) return status;
  return role;
}

absl::StatusOr<RolePage> MysqlUserStore::ListRoles(
    int64_t tenant_id, const ListRolesQuery& query) {
  if (absl::Status st = CheckPaging(query.page, query.limit); !st.ok()) {
    return st;
  }
  PageQuery q;
  const RolePageSelect& cols = SelectOf<RolePageSelect>();
  q.columns = &cols.list;
  q.total_column = cols.total;
  q.from_where = " FROM roles r WHERE r.tenant_id = ?";
  q.params.push_back(tenant_id);
  if (!query.search.empty()) {
    const SearchPatterns p = SearchPatternsFor(query.search);
    q.from_where +=
        " AND (r.slug LIKE ? ESCAPE '!' OR r.name LIKE ? ESCAPE '!'"
        " OR r.id LIKE ? ESCAPE '!')";
    q.params.push_back(p.ascii);
    q.params.push_back(p.text);
    q.params.push_back(p.id_prefix);
  }
  q.order_by = RoleOrderBy(query);

  RolePage page;
  absl::Status status =
      Run(*pool_, "list roles", [&](Session& s) -> absl::Status {
        page = RolePage();
        s.Begin();
        absl::StatusOr<int64_t> total = RunPage(
            s, q, query.page, query.limit,
            [&](const sql::ResultSet& rs) -> absl::Status {
              RoleRecord role;
              if (absl::Status st = ReadRoleColumns(rs, cols.role, &role);
                  !st.ok()) {
                return st;
              }
              page.roles.push_back(std::move(role));
              return absl::OkStatus();
            });
        if (!total.ok()) return total.status();
        page.total = *total;
        s.Commit();
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return page;
}

absl::StatusOr<RoleRecord> MysqlUserStore::UpdateRole(int64_t tenant_id,
                                                      const RoleRef& ref,
                                                      const RoleFields& fields,
                                                      const AuditEvent& event) {
  if (!IsStorableUserToken(ref.value)) return RoleNotFound();
  if (!IsStorableUserToken(fields.slug)) {
    return absl::InvalidArgumentError(
        "role slug must be printable ASCII without spaces");
  }
  absl::StatusOr<std::string> permissions =
      JoinList(fields.permissions, ' ', "permissions");
  if (!permissions.ok()) return permissions.status();
  RoleRecord role;
  absl::Status status = Run(
      *pool_, "update role", OnConflict::kRetry,
      [&](Session& s) -> absl::Status {
        role = RoleRecord();
        s.Begin();
        if (absl::Status st = ReadRole(s, tenant_id, ref, true, &role);
            !st.ok()) {
          return st;
        }
        if (role.slug == fields.slug && role.name == fields.name &&
            role.description == fields.description &&
            role.permissions == fields.permissions) {
          s.Rollback();
          return absl::OkStatus();
        }
        s.Step("update role");
        sql::PreparedStatement& stmt = s.Prepare(kUpdateRoleSql);
        stmt.setString(1, fields.slug);
        stmt.setString(2, fields.name);
        stmt.setString(3, fields.description);
        stmt.setString(4, *permissions);
        stmt.setInt64(5, tenant_id);
        stmt.setString(6, role.id);
        if (s.Update(stmt) != 1) {
          return absl::InternalError(
              "update role: the locked row did not update");
        }
        if (absl::Status st = Audit(s, tenant_id, event, role.id); !st.ok()) {
          return st;
        }
        const std::string id = role.id;
        if (absl::Status st =
                ReadRole(s, tenant_id, RoleRef::Id(id), false, &role);
            !st.ok()) {
          return st;
        }
        s.Commit();
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return role;
}

absl::StatusOr<RoleRecord> MysqlUserStore::DeleteRole(int64_t tenant_id,
                                                      const RoleRef& ref,
                                                      const AuditEvent& event) {
  if (!IsStorableUserToken(ref.value)) return RoleNotFound();
  RoleRecord role;
  absl::Status status = Run(
      *pool_, "delete role", OnConflict::kRetry,
      [&](Session& s) -> absl::Status {
        role = RoleRecord();
        s.Begin();
        if (absl::Status st = ReadRole(s, tenant_id, ref, true, &role);
            !st.ok()) {
          return st;
        }
        // A locking read: sees assignments committed after our snapshot.
        s.Step("count holders");
        sql::PreparedStatement& count = s.Prepare(
            "SELECT COUNT(*) FROM user_roles WHERE tenant_id = ?"
            " AND role_id = ? LOCK IN SHARE MODE");
        count.setInt64(1, tenant_id);
        count.setString(2, role.id);
        std::unique_ptr<sql::ResultSet> rs = s.Query(count);
        const int64_t holders = rs->next() ? rs->getInt64(1) : 0;
        rs.reset();
        if (holders > 0) {
          return absl::FailedPreconditionError(
              absl::StrCat("the role is assigned to ", holders,
                           holders == 1 ? " user" : " users",
                           "; remove it from them first"));
        }
        s.Step("delete role");
        sql::PreparedStatement& stmt =
            s.Prepare("DELETE FROM roles WHERE tenant_id = ? AND id = ?");
        stmt.setInt64(1, tenant_id);
        stmt.setString(2, role.id);
        if (s.Update(stmt) != 1) {
          return absl::InternalError(
              "delete role: the locked row did not delete");
        }
        if (absl::Status st = Audit(s, tenant_id, event, role.id); !st.ok()) {
          return st;
        }
        s.Commit();
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return role;
}

}  // namespace lumo::storage
