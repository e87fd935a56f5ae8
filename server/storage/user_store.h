// The storage interface of tenant users and roles. Domain logic
// (server/service/user_service.h) depends only on this header; the MySQL
// backend is storage/mysql/mysql_user_store.h.
//
// Every method is scoped by the tenant id: a user or role of another tenant
// behaves exactly like one that does not exist.
//
// Error contract (all methods): INVALID_ARGUMENT when a value does not fit
// the schema (too long, not ASCII where ASCII is stored, a list value
// containing the separator) or a list query is out of range; ABORTED on a
// deadlock (retry); UNAVAILABLE when the database cannot be reached (retry
// later); DEADLINE_EXCEEDED when a statement or lock wait hit its ceiling;
// INTERNAL for anything unexpected. Method comments list the other codes.
//
// Every mutation writes the AuditEvent it is given in the same transaction
// as the change, and only when something changed; the store sets the
// event's target_id to the id of the user or role written (a caller that
// addressed it by email or slug does not know the id beforehand).
#ifndef LUMOKEYS_SERVER_STORAGE_USER_STORE_H_
#define LUMOKEYS_SERVER_STORAGE_USER_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/storage/key_store.h"
#include "server/storage/list_page.h"

namespace lumo::storage {

// Whether `s` can be a stored user or role id, email or slug: printable
// ASCII without spaces, at most 254 characters. Anything else names no row
// (and must not reach a comparison that pads with spaces, where "x " would
// equal "x").
inline bool IsStorableUserToken(absl::string_view s) {
  if (s.empty() || s.size() > 254) return false;
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return false;
  }
  return true;
}

// Names one user: by id, or by email (compared ignoring ASCII case).
struct UserRef {
  enum class Kind { kId, kEmail };
  Kind kind = Kind::kId;
  std::string value;

  static UserRef Id(absl::string_view id) {
    return {Kind::kId, std::string(id)};
  }
  static UserRef Email(absl::string_view email) {
    return {Kind::kEmail, std::string(email)};
  }
};

// Names one role: by id or by slug.
struct RoleRef {
  enum class Kind { kId, kSlug };
  Kind kind = Kind::kId;
  std::string value;

  static RoleRef Id(absl::string_view id) {
    return {Kind::kId, std::string(id)};
  }
  static RoleRef Slug(absl::string_view slug) {
    return {Kind::kSlug, std::string(slug)};
  }
};

struct UserRecord {
  std::string id;
  int64_t tenant_id = 0;
  std::string email;
  std::string name;
  bool blocked = false;
  std::vector<std::string> roles;  // role slugs, ascending
  absl::Time created_at;
  absl::Time updated_at;
};

struct NewUser {
  std::string id;
  int64_t tenant_id = 0;
  std::string email;
  std::string name;
  bool blocked = false;
  std::vector<RoleRef> roles;
};

// How a write that blocks, unblocks or deletes a user treats portal admins
// (users with portal credentials, docs/admin-api.md "Portal admins").
struct PortalAdminGuard {
  // The caller may block, unblock or delete portal admins; otherwise such a
  // write of a portal admin is PERMISSION_DENIED.
  bool may_manage_admins = false;
};

// Payload URL marking the FAILED_PRECONDITION of a write refused because it
// would block or delete the tenant's last active portal admin (to tell it
// from a role reference that names no role).
inline constexpr absl::string_view kLastPortalAdminPayload =
    "lumo.dev/last-portal-admin";

// The fields to change; unset ones stay as they are.
struct UserUpdate {
  std::optional<std::string> email;
  std::optional<std::string> name;
  std::optional<bool> blocked;
  // The complete new set of roles.
  std::optional<std::vector<RoleRef>> roles;
  // Applies when `blocked` changes the user's state.
  PortalAdminGuard guard;
};

struct UserWrite {
  UserRecord user;
  // False when the update matched the stored values (nothing was written).
  bool changed = false;
};

enum class UserSortField { kCreatedAt, kUpdatedAt, kEmail, kName };

// A position in a user list: the sort value of a listed user and its id
// (the order is the sort value, then the id). Built by PositionOf.
struct UserPosition {
  std::optional<absl::Time> time;  // kCreatedAt, kUpdatedAt
  std::string text;                // kEmail (lower-cased), kName
  std::string id;
};

struct ListUsersQuery {
  int page = 1;    // 1-based; must be 1 with `after`
  int limit = 25;  // 1..100
  // Set: only the users after this position (keyset paging).
  std::optional<UserPosition> after;
  // The total's count (UserPage::total).
  CountRequest count;
  // Case-insensitive substring of the email or the name, or a prefix of
  // the id.
  std::string search;
  UserSortField sort_by = UserSortField::kCreatedAt;
  bool descending = true;
  // Only holders of this role (none: any). A role that does not exist
  // matches nobody.
  std::optional<RoleRef> role;
  std::optional<bool> blocked;
};

struct UserPage {
  std::vector<UserRecord> users;
  int64_t total = 0;  // matching users over all pages (see total_kind)
  TotalKind total_kind = TotalKind::kExact;
  bool has_more = false;  // matching users follow the last one returned
};

// The position of `user` in a list sorted by `sort_by` (emails compare
// ASCII-lower-cased, as stored in the email key).
inline UserPosition PositionOf(const UserRecord& user, UserSortField sort_by) {
  UserPosition position;
  position.id = user.id;
  switch (sort_by) {
    case UserSortField::kUpdatedAt:
      position.time = user.updated_at;
      break;
    case UserSortField::kEmail:
      position.text = absl::AsciiStrToLower(user.email);
      break;
    case UserSortField::kName:
      position.text = user.name;
      break;
    case UserSortField::kCreatedAt:
      position.time = user.created_at;
      break;
  }
  return position;
}

struct RoleRecord {
  std::string id;
  int64_t tenant_id = 0;
  std::string slug;
  std::string name;
  std::string description;
  std::vector<std::string> permissions;  // in the order given
  absl::Time created_at;
  absl::Time updated_at;
};

// A new role (with id) or the full replacement of a role's fields (id and
// tenant id ignored).
struct RoleFields {
  std::string id;
  int64_t tenant_id = 0;
  std::string slug;
  std::string name;
  std::string description;
  std::vector<std::string> permissions;
};

enum class RoleSortField { kCreatedAt, kSlug, kName };

struct ListRolesQuery {
  int page = 1;    // 1-based
  int limit = 25;  // 1..100
  // Case-insensitive substring of the slug or the name, or a prefix of the
  // id.
  std::string search;
  RoleSortField sort_by = RoleSortField::kCreatedAt;
  bool descending = true;
};

struct RolePage {
  std::vector<RoleRecord> roles;
  int64_t total = 0;
};

// Thread-safe: every method may be called concurrently from any thread.
class UserStore {
 public:
  virtual ~UserStore() = default;

  // Inserts the user with its roles and `event`, in one transaction.
  // ALREADY_EXISTS when the email (ignoring case) or the id is taken in the
  // tenant; FAILED_PRECONDITION when a role does not exist in the tenant
  // (the message names the reference); NOT_FOUND when the tenant does not
  // exist.
  virtual absl::StatusOr<UserRecord> InsertUser(const NewUser& user,
                                                const AuditEvent& event) = 0;

  // NOT_FOUND when there is no such user in the tenant.
  virtual absl::StatusOr<UserRecord> GetUser(int64_t tenant_id,
                                             const UserRef& ref) = 0;

  virtual absl::StatusOr<UserPage> ListUsers(int64_t tenant_id,
                                             const ListUsersQuery& query) = 0;

  // Applies `update` holding the user's row lock; when a value differs,
  // bumps updated_at and writes `event`, in one transaction. NOT_FOUND as
  // GetUser; ALREADY_EXISTS when the new email belongs to another user;
  // FAILED_PRECONDITION for a role as InsertUser.
  // Portal admins: when `update.blocked` changes the state of a portal
  // admin, PERMISSION_DENIED unless `update.guard.may_manage_admins`, and
  // FAILED_PRECONDITION ("last active portal admin") when it would block the
  // tenant's only unblocked portal admin. The check holds the row locks of
  // every portal admin of the tenant, so concurrent blocks cannot both pass.
  virtual absl::StatusOr<UserWrite> UpdateUser(int64_t tenant_id,
                                               const UserRef& ref,
                                               const UserUpdate& update,
                                               const AuditEvent& event) = 0;

  // Deletes the user and its role assignments, writing `event`, in one
  // transaction. Returns the deleted user.
  // NOT_FOUND as GetUser; for a portal admin, PERMISSION_DENIED and
  // FAILED_PRECONDITION as a block in UpdateUser.
  virtual absl::StatusOr<UserRecord> DeleteUser(
      int64_t tenant_id, const UserRef& ref, const AuditEvent& event,
      const PortalAdminGuard& guard) = 0;

  // ALREADY_EXISTS when the slug or the id is taken in the tenant;
  // NOT_FOUND when the tenant does not exist.
  virtual absl::StatusOr<RoleRecord> InsertRole(const RoleFields& role,
                                                const AuditEvent& event) = 0;

  // NOT_FOUND when there is no such role in the tenant.
  virtual absl::StatusOr<RoleRecord> GetRole(int64_t tenant_id,
                                             const RoleRef& ref) = 0;

  virtual absl::StatusOr<RolePage> ListRoles(int64_t tenant_id,
                                             const ListRolesQuery& query) = 0;

  // Replaces slug, name, description and permissions holding the role's row
  // lock; writes `event` when a value differs. NOT_FOUND as GetRole;
  // ALREADY_EXISTS when the new slug belongs to another role.
  virtual absl::StatusOr<RoleRecord> UpdateRole(int64_t tenant_id,
                                                const RoleRef& ref,
                                                const RoleFields& fields,
                                                const AuditEvent& event) = 0;

  // Deletes the role and writes `event`, in one transaction. Returns the
  // deleted role. NOT_FOUND as GetRole; FAILED_PRECONDITION when a user
  // still holds it (nothing is written).
  virtual absl::StatusOr<RoleRecord> DeleteRole(int64_t tenant_id,
                                                const RoleRef& ref,
                                                const AuditEvent& event) = 0;
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_USER_STORE_H_
