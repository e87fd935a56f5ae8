// Domain logic of tenant users and roles (docs/product.md §3.2,
// docs/admin-api.md "Users and roles"): validation, public ids, id-or-email /
// id-or-slug addressing, audit events. Knows neither gRPC nor SQL.
//
// Every method acts in the caller's tenant (`caller.tenant_id`); a user or
// role of another tenant is NOT_FOUND exactly like a missing one.
//
// Error contract (the kind is attached with WithErrorKind, errors.h):
//   INVALID_ARGUMENT kInvalidField: a bad field (named as the status's
//     field; the message starts with it), including a role reference that
//     names no role of the tenant;
//   NOT_FOUND kNotFound: no such user / role;
//   ALREADY_EXISTS kDuplicate: the email (ignoring case) or the role slug is
//     taken in the tenant;
//   FAILED_PRECONDITION kInvalidRequest: deleting a role that users hold;
//     blocking or deleting the tenant's last active portal admin;
//   PERMISSION_DENIED kScopeExceeded: blocking, unblocking or deleting a
//     portal admin without admin:write (API keys only);
//   UNAVAILABLE / DEADLINE_EXCEEDED / ABORTED: the store could not answer
//     (retry).
#ifndef LUMOKEYS_SERVER_SERVICE_USER_SERVICE_H_
#define LUMOKEYS_SERVER_SERVICE_USER_SERVICE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/service/paging.h"
#include "server/service/principal.h"
#include "server/storage/user_store.h"

namespace lumo::service {

// A user's writable fields: the body of a create or a full replace.
struct UserParams {
  std::string email;  // required
  std::string name;
  bool blocked = false;
  std::vector<std::string> roles;  // role slugs or ids
};

// A partial update: unset fields stay as they are.
struct UserPatch {
  std::optional<std::string> email;
  std::optional<std::string> name;
  std::optional<bool> blocked;
};

struct ListUsersParams {
  std::optional<int32_t> page;   // unset: 1
  std::optional<int32_t> limit;  // unset: 25
  std::string search;
  std::string sort_by;   // "", createdAt, updatedAt, email, name
  std::string sort_dir;  // "", ASC, DESC (any case)
  std::string role;      // "" or a role slug or id
  std::optional<bool> blocked;
  // A meta.nextPageToken of an earlier page of the same query (ListUsers
  // only).
  std::string page_token;
  // Count the total (default: without page_token only).
  std::optional<bool> include_total;
};

// A role's writable fields: the body of a create or a full replace.
struct RoleParams {
  std::string slug;
  std::string name;
  std::string description;
  std::vector<std::string> permissions;
};

struct ListRolesParams {
  std::optional<int32_t> page;
  std::optional<int32_t> limit;
  std::string search;
  std::string sort_by;  // "", createdAt, slug, name
  std::string sort_dir;
};

// Page and limit as applied, for the reply's `meta`.

inline constexpr size_t kMaxEmailLength = 254;
inline constexpr size_t kMaxRolesPerUser = 50;
inline constexpr size_t kMaxPermissionsPerRole = 100;

// Thread-safe (holds no mutable state of its own).
class UserService {
 public:
  // `store` must outlive the service.
  explicit UserService(storage::UserStore* store);

  // `ref` arguments are a user id or an email (users), a role id or a slug
  // (roles), as in the REST paths.

  absl::StatusOr<storage::UserRecord> CreateUser(const Principal& caller,
                                                 const RequestInfo& info,
                                                 const UserParams& params);
  absl::StatusOr<storage::UserRecord> GetUser(const Principal& caller,
                                              absl::string_view ref);
  absl::StatusOr<storage::UserPage> ListUsers(const Principal& caller,
                                              const ListUsersParams& params,
                                              Paging* paging);
  // Full replace: every field takes the value in `params`.
  absl::StatusOr<storage::UserRecord> ReplaceUser(const Principal& caller,
                                                  const RequestInfo& info,
                                                  absl::string_view ref,
                                                  const UserParams& params);
  absl::StatusOr<storage::UserRecord> PatchUser(const Principal& caller,
                                                const RequestInfo& info,
                                                absl::string_view ref,
                                                const UserPatch& patch);
  absl::Status DeleteUser(const Principal& caller, const RequestInfo& info,
                          absl::string_view ref);
  // Idempotent: setting the current state writes nothing.
  absl::StatusOr<storage::UserRecord> SetBlocked(const Principal& caller,
                                                 const RequestInfo& info,
                                                 absl::string_view ref,
                                                 bool blocked);
  // Replaces the user's role set.
  absl::StatusOr<storage::UserRecord> SetRoles(
      const Principal& caller, const RequestInfo& info, absl::string_view ref,
      const std::vector<std::string>& roles);

  absl::StatusOr<storage::RoleRecord> CreateRole(const Principal& caller,
                                                 const RequestInfo& info,
                                                 const RoleParams& params);
  absl::StatusOr<storage::RoleRecord> GetRole(const Principal& caller,
                                              absl::string_view ref);
  absl::StatusOr<storage::RolePage> ListRoles(const Principal& caller,
                                              const ListRolesParams& params,
                                              Paging* paging);
  absl::StatusOr<storage::RoleRecord> UpdateRole(const Principal& caller,
                                                 const RequestInfo& info,
                                                 absl::string_view ref,
                                                 const RoleParams& params);
  absl::Status DeleteRole(const Principal& caller, const RequestInfo& info,
                          absl::string_view ref);
  // The holders of a role; `params.role` is ignored. NOT_FOUND when the
  // role does not exist.
  absl::StatusOr<storage::UserPage> ListRoleUsers(const Principal& caller,
                                                  absl::string_view ref,
                                                  const ListUsersParams& params,
                                                  Paging* paging);

 private:
  absl::StatusOr<storage::UserRecord> Update(const Principal& caller,
                                             absl::string_view ref,
                                             storage::UserUpdate update,
                                             const storage::AuditEvent& event);

  storage::UserStore* const store_;
};

// Syntax checks, exposed for tests. INVALID_ARGUMENT naming `field`.
//
// An email: at most 254 characters, `local@domain`; the local part 1-64
// characters of RFC 5322 atext and dots (no leading, trailing or doubled
// dot; no quoted strings); the domain at least two dot-separated labels of
// [A-Za-z0-9-] (1-63 each, no leading or trailing '-'), the last not all
// digits (no address literals).
absl::Status ValidateEmail(absl::string_view field, absl::string_view email);
// A permission name: 1-100 characters of [A-Za-z0-9:._*/-].
bool IsValidPermission(absl::string_view permission);

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_USER_SERVICE_H_
