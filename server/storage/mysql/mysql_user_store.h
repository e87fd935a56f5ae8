// UserStore over MySQL/MariaDB (Connector/C++ 1.1); schema
// sql/migrations/0002_users_roles.sql.
#ifndef LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_USER_STORE_H_
#define LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_USER_STORE_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/storage/mysql/connection_pool.h"
#include "server/storage/user_store.h"

namespace lumo::storage {

// Thread-safe: every method may be called concurrently from any thread;
// each call takes a connection from the shared pool for its duration.
//
// Behaviour beyond the UserStore contract:
//   - Server-side prepared statements with bound values only; the spliced
//     SQL fragments (sort column, filters) are fixed text of this file.
//   - Reads that take more than one statement (a user and its roles, a page
//     and its total) run in one transaction, so they see one snapshot.
//   - Mutations run in one REPEATABLE READ transaction that starts with
//     SELECT ... FOR UPDATE on the user or role row; referenced roles are
//     read LOCK IN SHARE MODE, so a role cannot be deleted between being
//     resolved and being assigned. Every error path rolls back.
//   - A reference whose value is not printable ASCII without spaces cannot
//     name a stored row: NOT_FOUND without a query.
//   - Times are the database clock (UTC_TIMESTAMP(6)).
class MysqlUserStore : public UserStore {
 public:
  // `pool` is shared with the other stores of the same database (see
  // MysqlKeyStore::shared_pool()); it must not be null.
  explicit MysqlUserStore(std::shared_ptr<ConnectionPool> pool);
  ~MysqlUserStore() override;

  absl::StatusOr<UserRecord> InsertUser(const NewUser& user,
                                        const AuditEvent& event) override;
  absl::StatusOr<UserRecord> GetUser(int64_t tenant_id,
                                     const UserRef& ref) override;
  absl::StatusOr<UserPage> ListUsers(int64_t tenant_id,
                                     const ListUsersQuery& query) override;
  absl::StatusOr<UserWrite> UpdateUser(int64_t tenant_id, const UserRef& ref,
                                       const UserUpdate& update,
                                       const AuditEvent& event) override;
  absl::StatusOr<UserRecord> DeleteUser(int64_t tenant_id, const UserRef& ref,
                                        const AuditEvent& event,
                                        const PortalAdminGuard& guard) override;

  absl::StatusOr<RoleRecord> InsertRole(const RoleFields& role,
                                        const AuditEvent& event) override;
  absl::StatusOr<RoleRecord> GetRole(int64_t tenant_id,
                                     const RoleRef& ref) override;
  absl::StatusOr<RolePage> ListRoles(int64_t tenant_id,
                                     const ListRolesQuery& query) override;
  absl::StatusOr<RoleRecord> UpdateRole(int64_t tenant_id, const RoleRef& ref,
                                        const RoleFields& fields,
                                        const AuditEvent& event) override;
  absl::StatusOr<RoleRecord> DeleteRole(int64_t tenant_id, const RoleRef& ref,
                                        const AuditEvent& event) override;

 private:
  std::shared_ptr<ConnectionPool> pool_;
};

}  // namespace lumo::storage

#endif  // LUMOKEYS_SERVER_STORAGE_MYSQL_MYSQL_USER_STORE_H_
