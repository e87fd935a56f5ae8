#include "tests/storage/fakes/fake_user_store.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace lumo::testing {
namespace {

using storage::RoleRecord;
using storage::RoleRef;
using storage::UserRecord;
using storage::UserRef;
using UserRow = FakeDatabase::UserRow;

absl::Status UserNotFound() { return absl::NotFoundError("user not found"); }
absl::Status RoleNotFound() { return absl::NotFoundError("role not found"); }

// The operations below run inside one store call (`db.mu` held).

RoleRecord* FindRole(FakeDatabase& db, int64_t tenant_id, const RoleRef& ref)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(db.mu) {
  if (ref.kind == RoleRef::Kind::kId) {
    auto it = db.roles.find({tenant_id, ref.value});
    return it == db.roles.end() ? nullptr : &it->second;
  }
  for (auto& [id, role] : db.roles) {
    if (id.first == tenant_id && role.slug == ref.value) return &role;
  }
  return nullptr;
}

UserRecord Record(FakeDatabase& db, const UserRow& row)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(db.mu) {
  UserRecord user = row.user;
  user.roles.clear();
  for (const std::string& id : row.roles) {
    auto it = db.roles.find({row.user.tenant_id, id});
    if (it != db.roles.end()) user.roles.push_back(it->second.slug);
  }
  std::sort(user.roles.begin(), user.roles.end());
  return user;
}

// The role ids `refs` name (deduplicated, in order); FAILED_PRECONDITION
// for the first that names no role of the tenant.
absl::StatusOr<std::vector<std::string>> ResolveRoles(
    FakeDatabase& db, int64_t tenant_id, const std::vector<RoleRef>& refs)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(db.mu) {
  std::vector<std::string> ids;
  for (const RoleRef& ref : refs) {
    const RoleRecord* role = FindRole(db, tenant_id, ref);
    if (role == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("roles: no role '", ref.value, "' in this tenant"));
    }
    if (std::find(ids.begin(), ids.end(), role->id) == ids.end()) {
      ids.push_back(role->id);
    }
  }
  return ids;
}

// The portal-admin rule for a write that blocks (`blocking`), unblocks or
// deletes (`deleting`) `user`.
absl::Status CheckPortalAdminWrite(FakeDatabase& db, const UserRecord& user,
                                   bool blocking, bool deleting,
                                   const storage::PortalAdminGuard& guard)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(db.mu) {
  if (!db.portal_credentials.count({user.tenant_id, user.id})) {
    return absl::OkStatus();
  }
  if (!guard.may_manage_admins) {
    return absl::PermissionDeniedError(
        "blocking, unblocking or deleting a portal admin needs admin:write");
  }
  int other_active = 0;
  for (const auto& [id, hash] : db.portal_credentials) {
    if (id.first != user.tenant_id || id.second == user.id) continue;
    auto it = db.users.find(id);
    if (it != db.users.end() && !it->second.user.blocked) ++other_active;
  }
  if ((blocking || deleting) && !user.blocked && other_active == 0) {
    absl::Status last = absl::FailedPreconditionError(
        absl::StrCat("the tenant's last active portal admin cannot be ",
                     deleting ? "deleted" : "blocked"));
    last.SetPayload(storage::kLastPortalAdminPayload, absl::Cord("1"));
    return last;
  }
  return absl::OkStatus();
}

void Audit(FakeDatabase& db, int64_t tenant_id, storage::AuditEvent event,
           absl::string_view target_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(db.mu) {
  event.target_id = std::string(target_id);
  db.AppendAudit(tenant_id, storage::NextTransactionChainLane(),
                 std::move(event));
}

// Search: a substring of the ASCII field (ignoring case) or of the name, or
// a prefix of the id.
bool SearchMatches(absl::string_view search, absl::string_view ascii_field,
                   absl::string_view name, absl::string_view id) {
  return search.empty() || ContainsIgnoringCase(ascii_field, search) ||
         ContainsIgnoringCase(name, search) || absl::StartsWith(id, search);
}

// Sorts `rows` by `field(row)` then id, in the given direction.
template <typename T, typename Field>
void SortBy(std::vector<T>& rows, bool descending, Field field) {
  std::sort(rows.begin(), rows.end(), [&](const T& a, const T& b) {
    auto ka = std::make_tuple(field(a), a.id);
    auto kb = std::make_tuple(field(b), b.id);
    return descending ? kb < ka : ka < kb;
  });
}

}  // namespace

absl::StatusOr<UserRecord> FakeUserStore::InsertUser(
    const storage::NewUser& user, const storage::AuditEvent& event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (!storage::IsStorableUserToken(user.id) ||
      !storage::IsStorableUserToken(user.email)) {
    return absl::InvalidArgumentError(
        "user id and email must be printable ASCII without spaces");
  }
  absl::MutexLock lock(&db_->mu);
  absl::StatusOr<std::vector<std::string>> role_ids =
      ResolveRoles(*db_, user.tenant_id, user.roles);
  if (!role_ids.ok()) return role_ids.status();
  if (!db_->tenants.count(user.tenant_id)) {
    return absl::NotFoundError("insert user: tenant not found");
  }
  if (db_->users.count({user.tenant_id, user.id}) ||
      db_->FindUser(user.tenant_id, UserRef::Email(user.email)) != nullptr) {
    return absl::AlreadyExistsError("insert user: id or email taken");
  }
  UserRow& row = db_->users[{user.tenant_id, user.id}];
  row.user.id = user.id;
  row.user.tenant_id = user.tenant_id;
  row.user.email = user.email;
  row.user.name = user.name;
  row.user.blocked = user.blocked;
  row.user.created_at = row.user.updated_at = db_->Now();
  row.roles = *std::move(role_ids);
  Audit(*db_, user.tenant_id, event, user.id);
  return Record(*db_, row);
}

absl::StatusOr<UserRecord> FakeUserStore::GetUser(int64_t tenant_id,
                                                  const UserRef& ref) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const UserRow* row = db_->FindUser(tenant_id, ref);
  if (row == nullptr) return UserNotFound();
  return Record(*db_, *row);
}

absl::StatusOr<storage::UserPage> FakeUserStore::ListUsers(
    int64_t tenant_id, const storage::ListUsersQuery& query) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (absl::Status s = CheckPaging(query.page, query.limit); !s.ok()) return s;
  if (query.after.has_value() && query.page != 1) {
    return absl::InvalidArgumentError("page must be 1 with a list position");
  }
  absl::MutexLock lock(&db_->mu);
  std::optional<std::string> role_id;
  if (query.role.has_value()) {
    const RoleRecord* role = FindRole(*db_, tenant_id, *query.role);
    if (role == nullptr) return storage::UserPage();  // matches nobody
    role_id = role->id;
  }
  std::vector<UserRecord> all;
  for (const auto& [id, row] : db_->users) {
    if (id.first != tenant_id) continue;
    if (query.blocked.has_value() && row.user.blocked != *query.blocked) {
      continue;
    }
    if (role_id.has_value() && std::find(row.roles.begin(), row.roles.end(),
                                         *role_id) == row.roles.end()) {
      continue;
    }
    if (!SearchMatches(query.search, row.user.email, row.user.name,
                       row.user.id)) {
      continue;
    }
    all.push_back(Record(*db_, row));
  }
  switch (query.sort_by) {
    case storage::UserSortField::kUpdatedAt:
      SortBy(all, query.descending,
             [](const UserRecord& u) { return u.updated_at; });
      break;
    case storage::UserSortField::kEmail:
      SortBy(all, query.descending,
             [](const UserRecord& u) { return Lower(u.email); });
      break;
    case storage::UserSortField::kName:
      SortBy(all, query.descending,
             [](const UserRecord& u) { return Lower(u.name); });
      break;
    case storage::UserSortField::kCreatedAt:
      SortBy(all, query.descending,
             [](const UserRecord& u) { return u.created_at; });
      break;
  }
  storage::UserPage page;
  const storage::CountedTotal total =
      storage::TotalOf(query.count, static_cast<int64_t>(all.size()));
  page.total = total.total;
  page.total_kind = total.kind;
  if (query.after.has_value()) {
    // The list order's key of a position (SortBy's key).
    auto key = [&](const storage::UserPosition& p) {
      return std::make_tuple(p.time.value_or(absl::InfinitePast()),
                             Lower(p.text), p.id);
    };
    const auto after = key(*query.after);
    std::vector<UserRecord> rest;
    for (UserRecord& user : all) {
      const auto k = key(storage::PositionOf(user, query.sort_by));
      if (query.descending ? k < after : after < k) {
        rest.push_back(std::move(user));
      }
    }
    all = std::move(rest);
  }
  page.users = PageOf(all, query.page, query.limit);
  page.has_more = static_cast<size_t>(query.page) * query.limit < all.size();
  return page;
}

absl::StatusOr<storage::UserWrite> FakeUserStore::UpdateUser(
    int64_t tenant_id, const UserRef& ref, const storage::UserUpdate& update,
    const storage::AuditEvent& event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (update.email.has_value() &&
      !storage::IsStorableUserToken(*update.email)) {
    return absl::InvalidArgumentError(
        "email must be printable ASCII without spaces");
  }
  absl::MutexLock lock(&db_->mu);
  UserRow* row = db_->FindUser(tenant_id, ref);
  if (row == nullptr) return UserNotFound();
  const UserRecord current = Record(*db_, *row);
  const std::string email = update.email.value_or(current.email);
  const std::string name = update.name.value_or(current.name);
  const bool blocked = update.blocked.value_or(current.blocked);
  if (update.blocked.has_value() && blocked != current.blocked) {
    if (absl::Status s =
            CheckPortalAdminWrite(*db_, current, blocked, false, update.guard);
        !s.ok()) {
      return s;
    }
  }
  std::vector<std::string> roles = row->roles;
  if (update.roles.has_value()) {
    absl::StatusOr<std::vector<std::string>> wanted =
        ResolveRoles(*db_, tenant_id, *update.roles);
    if (!wanted.ok()) return wanted.status();
    roles = *std::move(wanted);
  }
  std::vector<std::string> held = row->roles, wanted = roles;
  std::sort(held.begin(), held.end());
  std::sort(wanted.begin(), wanted.end());
  storage::UserWrite result;
  if (email == current.email && name == current.name &&
      blocked == current.blocked && held == wanted) {
    result.user = current;
    return result;
  }
  const UserRow* other = db_->FindUser(tenant_id, UserRef::Email(email));
  if (other != nullptr && other != row) {
    return absl::AlreadyExistsError("update user: email taken");
  }
  row->user.email = email;
  row->user.name = name;
  row->user.blocked = blocked;
  row->user.updated_at = db_->Now();
  row->roles = roles;
  Audit(*db_, tenant_id, event, current.id);
  result.user = Record(*db_, *row);
  result.changed = true;
  return result;
}

absl::StatusOr<UserRecord> FakeUserStore::DeleteUser(
    int64_t tenant_id, const UserRef& ref, const storage::AuditEvent& event,
    const storage::PortalAdminGuard& guard) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const UserRow* row = db_->FindUser(tenant_id, ref);
  if (row == nullptr) return UserNotFound();
  const UserRecord user = Record(*db_, *row);
  if (absl::Status s = CheckPortalAdminWrite(*db_, user, false, true, guard);
      !s.ok()) {
    return s;
  }
  // Its assignments, credential and sessions go with it.
  db_->users.erase({tenant_id, user.id});
  db_->portal_credentials.erase({tenant_id, user.id});
  for (auto it = db_->sessions.begin(); it != db_->sessions.end();) {
    const bool owned =
        it->second.tenant_id == tenant_id && it->second.user_id == user.id;
    it = owned ? db_->sessions.erase(it) : std::next(it);
  }
  Audit(*db_, tenant_id, event, user.id);
  return user;
}

absl::StatusOr<RoleRecord> FakeUserStore::InsertRole(
    const storage::RoleFields& role, const storage::AuditEvent& event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (!storage::IsStorableUserToken(role.id) ||
      !storage::IsStorableUserToken(role.slug)) {
    return absl::InvalidArgumentError(
        "role id and slug must be printable ASCII without spaces");
  }
  if (absl::Status s = CheckList(role.permissions, ' ', "permissions");
      !s.ok()) {
    return s;
  }
  absl::MutexLock lock(&db_->mu);
  if (!db_->tenants.count(role.tenant_id)) {
    return absl::NotFoundError("insert role: tenant not found");
  }
  if (db_->roles.count({role.tenant_id, role.id}) ||
      FindRole(*db_, role.tenant_id, RoleRef::Slug(role.slug)) != nullptr) {
    return absl::AlreadyExistsError("insert role: id or slug taken");
  }
  RoleRecord& record = db_->roles[{role.tenant_id, role.id}];
  record.id = role.id;
  record.tenant_id = role.tenant_id;
  record.slug = role.slug;
  record.name = role.name;
  record.description = role.description;
  record.permissions = role.permissions;
  record.created_at = record.updated_at = db_->Now();
  Audit(*db_, role.tenant_id, event, role.id);
  return record;
}

absl::StatusOr<RoleRecord> FakeUserStore::GetRole(int64_t tenant_id,
                                                  const RoleRef& ref) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const RoleRecord* role = FindRole(*db_, tenant_id, ref);
  if (role == nullptr) return RoleNotFound();
  return *role;
}

absl::StatusOr<storage::RolePage> FakeUserStore::ListRoles(
    int64_t tenant_id, const storage::ListRolesQuery& query) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (absl::Status s = CheckPaging(query.page, query.limit); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  std::vector<RoleRecord> all;
  for (const auto& [id, role] : db_->roles) {
    if (id.first == tenant_id &&
        SearchMatches(query.search, role.slug, role.name, role.id)) {
      all.push_back(role);
    }
  }
  switch (query.sort_by) {
    case storage::RoleSortField::kSlug:
      SortBy(all, query.descending, [](const RoleRecord& r) { return r.slug; });
      break;
    case storage::RoleSortField::kName:
      SortBy(all, query.descending,
             [](const RoleRecord& r) { return Lower(r.name); });
      break;
    case storage::RoleSortField::kCreatedAt:
      SortBy(all, query.descending,
             [](const RoleRecord& r) { return r.created_at; });
      break;
  }
  storage::RolePage page;
  page.total = static_cast<int64_t>(all.size());
  page.roles = PageOf(all, query.page, query.limit);
  return page;
}

absl::StatusOr<RoleRecord> FakeUserStore::UpdateRole(
    int64_t tenant_id, const RoleRef& ref, const storage::RoleFields& fields,
    const storage::AuditEvent& event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  if (!storage::IsStorableUserToken(fields.slug)) {
    return absl::InvalidArgumentError(
        "role slug must be printable ASCII without spaces");
  }
  if (absl::Status s = CheckList(fields.permissions, ' ', "permissions");
      !s.ok()) {
    return s;
  }
  absl::MutexLock lock(&db_->mu);
  RoleRecord* role = FindRole(*db_, tenant_id, ref);
  if (role == nullptr) return RoleNotFound();
  if (role->slug == fields.slug && role->name == fields.name &&
      role->description == fields.description &&
      role->permissions == fields.permissions) {
    return *role;
  }
  const RoleRecord* other =
      FindRole(*db_, tenant_id, RoleRef::Slug(fields.slug));
  if (other != nullptr && other != role) {
    return absl::AlreadyExistsError("update role: slug taken");
  }
  role->slug = fields.slug;
  role->name = fields.name;
  role->description = fields.description;
  role->permissions = fields.permissions;
  role->updated_at = db_->Now();
  Audit(*db_, tenant_id, event, role->id);
  return *role;
}

absl::StatusOr<RoleRecord> FakeUserStore::DeleteRole(
    int64_t tenant_id, const RoleRef& ref, const storage::AuditEvent& event) {
  if (absl::Status s = db_->Begin(); !s.ok()) return s;
  absl::MutexLock lock(&db_->mu);
  const RoleRecord* found = FindRole(*db_, tenant_id, ref);
  if (found == nullptr) return RoleNotFound();
  const RoleRecord role = *found;
  int64_t holders = 0;
  for (const auto& [id, row] : db_->users) {
    if (id.first == tenant_id && std::find(row.roles.begin(), row.roles.end(),
                                           role.id) != row.roles.end()) {
      ++holders;
    }
  }
  if (holders > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the role is assigned to ", holders, holders == 1 ? " user" : " users",
        "; remove it from them first"));
  }
  db_->roles.erase({tenant_id, role.id});
  Audit(*db_, tenant_id, event, role.id);
  return role;
}

}  // namespace lumo::testing
