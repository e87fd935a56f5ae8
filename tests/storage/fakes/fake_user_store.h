// An in-memory UserStore (server/storage/user_store.h) over a FakeDatabase,
// held to the contract by the user store conformance suite. Thread-safe.
#ifndef LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_USER_STORE_H_
#define LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_USER_STORE_H_

#include <memory>

#include "server/storage/user_store.h"
#include "tests/storage/fakes/fake_database.h"

namespace lumo::testing {

class FakeUserStore : public storage::UserStore {
 public:
  explicit FakeUserStore(std::shared_ptr<FakeDatabase> db)
      : db_(std::move(db)) {}

  absl::StatusOr<storage::UserRecord> InsertUser(
      const storage::NewUser& user, const storage::AuditEvent& event) override;
  absl::StatusOr<storage::UserRecord> GetUser(
      int64_t tenant_id, const storage::UserRef& ref) override;
  absl::StatusOr<storage::UserPage> ListUsers(
      int64_t tenant_id, const storage::ListUsersQuery& query) override;
  absl::StatusOr<storage::UserWrite> UpdateUser(
      int64_t tenant_id, const storage::UserRef& ref,
      const storage::UserUpdate& update,
      const storage::AuditEvent& event) override;
  absl::StatusOr<storage::UserRecord> DeleteUser(
      int64_t tenant_id, const storage::UserRef& ref,
      const storage::AuditEvent& event,
      const storage::PortalAdminGuard& guard) override;
  absl::StatusOr<storage::RoleRecord> InsertRole(
      const storage::RoleFields& role,
      const storage::AuditEvent& event) override;
  absl::StatusOr<storage::RoleRecord> GetRole(
      int64_t tenant_id, const storage::RoleRef& ref) override;
  absl::StatusOr<storage::RolePage> ListRoles(
      int64_t tenant_id, const storage::ListRolesQuery& query) override;
  absl::StatusOr<storage::RoleRecord> UpdateRole(
      int64_t tenant_id, const storage::RoleRef& ref,
      const storage::RoleFields& fields,
      const storage::AuditEvent& event) override;
  absl::StatusOr<storage::RoleRecord> DeleteRole(
      int64_t tenant_id, const storage::RoleRef& ref,
      const storage::AuditEvent& event) override;

 private:
  const std::shared_ptr<FakeDatabase> db_;
};

}  // namespace lumo::testing

#endif  // LUMOKEYS_TESTS_STORAGE_FAKES_FAKE_USER_STORE_H_
