// gRPC adapters (callback API) for lumo.admin.v1.UserService and
// RoleService: authenticate against each method's access annotation (see
// call.h), convert messages, call service::UserService. All work runs on
// the WorkerPool.
#ifndef LUMOKEYS_SERVER_RPC_USER_SERVICES_H_
#define LUMOKEYS_SERVER_RPC_USER_SERVICES_H_

#include "google/protobuf/empty.pb.h"
#include "lumo/admin/v1/roles.grpc.pb.h"
#include "lumo/admin/v1/users.grpc.pb.h"
#include "server/rpc/authenticator.h"
#include "server/rpc/worker_pool.h"
#include "server/service/user_service.h"

namespace lumo::rpc {

// What the user and role adapters need. Borrowed pointers; all thread-safe.
struct UserRpcContext {
  const Authenticator* auth;
  service::UserService* users;
  WorkerPool* workers;
};

// Thread-safe.
class UserServiceImpl final
    : public lumo::admin::v1::UserService::CallbackService {
 public:
  explicit UserServiceImpl(UserRpcContext ctx) : ctx_(ctx) {}

  grpc::ServerUnaryReactor* ListUsers(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::ListUsersRequest* request,
      lumo::admin::v1::ListUsersResponse* response) override;
  grpc::ServerUnaryReactor* CreateUser(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::CreateUserRequest* request,
      lumo::admin::v1::User* response) override;
  grpc::ServerUnaryReactor* GetUser(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::GetUserRequest* request,
      lumo::admin::v1::User* response) override;
  grpc::ServerUnaryReactor* ReplaceUser(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::ReplaceUserRequest* request,
      lumo::admin::v1::User* response) override;
  grpc::ServerUnaryReactor* PatchUser(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::PatchUserRequest* request,
      lumo::admin::v1::User* response) override;
  grpc::ServerUnaryReactor* DeleteUser(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::DeleteUserRequest* request,
      google::protobuf::Empty* response) override;
  grpc::ServerUnaryReactor* BlockUser(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::BlockUserRequest* request,
      lumo::admin::v1::User* response) override;
  grpc::ServerUnaryReactor* UnblockUser(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::UnblockUserRequest* request,
      lumo::admin::v1::User* response) override;
  grpc::ServerUnaryReactor* SetUserRoles(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::SetUserRolesRequest* request,
      lumo::admin::v1::User* response) override;

 private:
  UserRpcContext ctx_;
};

// Thread-safe.
class RoleServiceImpl final
    : public lumo::admin::v1::RoleService::CallbackService {
 public:
  explicit RoleServiceImpl(UserRpcContext ctx) : ctx_(ctx) {}

  grpc::ServerUnaryReactor* ListRoles(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::ListRolesRequest* request,
      lumo::admin::v1::ListRolesResponse* response) override;
  grpc::ServerUnaryReactor* CreateRole(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::CreateRoleRequest* request,
      lumo::admin::v1::Role* response) override;
  grpc::ServerUnaryReactor* GetRole(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::GetRoleRequest* request,
      lumo::admin::v1::Role* response) override;
  grpc::ServerUnaryReactor* UpdateRole(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::UpdateRoleRequest* request,
      lumo::admin::v1::Role* response) override;
  grpc::ServerUnaryReactor* DeleteRole(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::DeleteRoleRequest* request,
      google::protobuf::Empty* response) override;
  grpc::ServerUnaryReactor* ListRoleUsers(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::ListRoleUsersRequest* request,
      lumo::admin::v1::ListUsersResponse* response) override;

 private:
  UserRpcContext ctx_;
};

}  // namespace lumo::rpc

#endif  // LUMOKEYS_SERVER_RPC_USER_SERVICES_H_
