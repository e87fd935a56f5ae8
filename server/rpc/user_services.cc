#include "server/rpc/user_services.h"

#include <string>
#include <utility>
#include <vector>

#include "server/rpc/call.h"
#include "server/rpc/convert.h"
#include "server/rpc/paging.h"

namespace lumo::rpc {
namespace {

namespace pb = ::lumo::admin::v1;
using service::Principal;
using service::RequestInfo;

// ------------------------------------------------------------- conversions

void ToProto(const storage::UserRecord& r, pb::User* out) {
  out->set_id(r.id);
  out->set_email(r.email);
  out->set_name(r.name);
  out->set_blocked(r.blocked);
  for (const std::string& role : r.roles) out->add_roles(role);
  ToTimestamp(r.created_at, out->mutable_created_at());
  ToTimestamp(r.updated_at, out->mutable_updated_at());
}

void ToProto(const storage::RoleRecord& r, pb::Role* out) {
  out->set_id(r.id);
  out->set_slug(r.slug);
  out->set_name(r.name);
  out->set_description(r.description);
  for (const std::string& p : r.permissions) out->add_permissions(p);
}

void FillMeta(int64_t total, const service::Paging& paging,
              lumo::api::PageMeta* meta) {
  FillPageMeta(total, paging.page, paging.limit, meta);
}

void ToProto(const storage::UserPage& page, const service::Paging& paging,
             pb::ListUsersResponse* out) {
  for (const storage::UserRecord& user : page.users) {
    ToProto(user, out->add_data());
  }
  FillPageMeta(
      KeysetPageMeta{page.total, page.total_kind, paging.page, paging.by_token,
                     paging.limit, page.has_more, paging.next_page_token},
      out->mutable_meta());
}

std::vector<std::string> ToVector(
    const google::protobuf::RepeatedPtrField<std::string>& values) {
  return std::vector<std::string>(values.begin(), values.end());
}

template <typename Request>
service::UserParams UserParamsOf(const Request& request) {
  service::UserParams params;
  params.email = request.email();
  params.name = request.name();
  params.blocked = request.blocked();
  params.roles = ToVector(request.roles());
  return params;
}

template <typename Request>
service::RoleParams RoleParamsOf(const Request& request) {
  service::RoleParams params;
  params.slug = request.slug();
  params.name = request.name();
  params.description = request.description();
  params.permissions = ToVector(request.permissions());
  return params;
}

// Paging, search and sort of ListUsersRequest and ListRoleUsersRequest.
template <typename Request>
service::ListUsersParams ListUsersParamsOf(const Request& request) {
  service::ListUsersParams params;
  if (request.has_page()) params.page = request.page();
  if (request.has_limit()) params.limit = request.limit();
  params.search = request.search();
  params.sort_by = request.sort_by();
  params.sort_dir = request.sort_dir();
  return params;
}

// A handler that replies with one user.
template <typename Fn>
absl::Status ReplyUser(Fn fn, pb::User* response) {
  absl::StatusOr<storage::UserRecord> user = fn();
  if (!user.ok()) return user.status();
  ToProto(*user, response);
  return absl::OkStatus();
}

template <typename Fn>
absl::Status ReplyRole(Fn fn, pb::Role* response) {
  absl::StatusOr<storage::RoleRecord> role = fn();
  if (!role.ok()) return role.status();
  ToProto(*role, response);
  return absl::OkStatus();
}

}  // namespace

// --------------------------------------------------------------- UserService

grpc::ServerUnaryReactor* UserServiceImpl::ListUsers(
    grpc::CallbackServerContext* context, const pb::ListUsersRequest* request,
    pb::ListUsersResponse* response) {
  static const auto& method = Method("lumo.admin.v1.UserService.ListUsers");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo&) -> absl::Status {
        service::ListUsersParams params = ListUsersParamsOf(*request);
        params.role = request->role();
        if (request->has_blocked()) params.blocked = request->blocked();
        params.page_token = request->page_token();
        if (request->has_include_total()) {
          params.include_total = request->include_total();
        }
        service::Paging paging;
        absl::StatusOr<storage::UserPage> page =
            ctx_.users->ListUsers(caller, params, &paging);
        if (!page.ok()) return page.status();
        ToProto(*page, paging, response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* UserServiceImpl::CreateUser(
    grpc::CallbackServerContext* context, const pb::CreateUserRequest* request,
    pb::User* response) {
  static const auto& method = Method("lumo.admin.v1.UserService.CreateUser");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo& info) -> absl::Status {
        return ReplyUser(
            [&] {
              return ctx_.users->CreateUser(caller, info,
                                            UserParamsOf(*request));
            },
            response);
      });
}

grpc::ServerUnaryReactor* UserServiceImpl::GetUser(
    grpc::CallbackServerContext* context, const pb::GetUserRequest* request,
    pb::User* response) {
  static const auto& method = Method("lumo.admin.v1.UserService.GetUser");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo&) -> absl::Status {
        return ReplyUser(
            [&] { return ctx_.users->GetUser(caller, request->id()); },
            response);
      });
}

grpc::ServerUnaryReactor* UserServiceImpl::ReplaceUser(
    grpc::CallbackServerContext* context, const pb::ReplaceUserRequest* request,
    pb::User* response) {
  static const auto& method = Method("lumo.admin.v1.UserService.ReplaceUser");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo& info) -> absl::Status {
        return ReplyUser(
            [&] {
              return ctx_.users->ReplaceUser(caller, info, request->id(),
                                             UserParamsOf(*request));
            },
            response);
      });
}

grpc::ServerUnaryReactor* UserServiceImpl::PatchUser(
    grpc::CallbackServerContext* context, const pb::PatchUserRequest* request,
    pb::User* response) {
  static const auto& method = Method("lumo.admin.v1.UserService.PatchUser");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo& info) -> absl::Status {
        service::UserPatch patch;
        if (request->has_email()) patch.email = request->email();
        if (request->has_name()) patch.name = request->name();
        if (request->has_blocked()) patch.blocked = request->blocked();
        return ReplyUser(
            [&] {
              return ctx_.users->PatchUser(caller, info, request->id(), patch);
            },
            response);
      });
}

grpc::ServerUnaryReactor* UserServiceImpl::DeleteUser(
    grpc::CallbackServerContext* context, const pb::DeleteUserRequest* request,
    google::protobuf::Empty* /*response*/) {
  static const auto& method = Method("lumo.admin.v1.UserService.DeleteUser");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request](const Principal& caller,
                      const RequestInfo& info) -> absl::Status {
        return ctx_.users->DeleteUser(caller, info, request->id());
      });
}

grpc::ServerUnaryReactor* UserServiceImpl::BlockUser(
    grpc::CallbackServerContext* context, const pb::BlockUserRequest* request,
    pb::User* response) {
  static const auto& method = Method("lumo.admin.v1.UserService.BlockUser");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo& info) -> absl::Status {
        return ReplyUser(
            [&] {
              return ctx_.users->SetBlocked(caller, info, request->id(), true);
            },
            response);
      });
}

grpc::ServerUnaryReactor* UserServiceImpl::UnblockUser(
    grpc::CallbackServerContext* context, const pb::UnblockUserRequest* request,
    pb::User* response) {
  static const auto& method = Method("lumo.admin.v1.UserService.UnblockUser");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo& info) -> absl::Status {
        return ReplyUser(
            [&] {
              return ctx_.users->SetBlocked(caller, info, request->id(), false);
            },
            response);
      });
}

grpc::ServerUnaryReactor* UserServiceImpl::SetUserRoles(
    grpc::CallbackServerContext* context,
    const pb::SetUserRolesRequest* request, pb::User* response) {
  static const auto& method = Method("lumo.admin.v1.UserService.SetUserRoles");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo& info) -> absl::Status {
        return ReplyUser(
            [&] {
              return ctx_.users->SetRoles(caller, info, request->id(),
                                          ToVector(request->roles()));
            },
            response);
      });
}

// --------------------------------------------------------------- RoleService

grpc::ServerUnaryReactor* RoleServiceImpl::ListRoles(
    grpc::CallbackServerContext* context, const pb::ListRolesRequest* request,
    pb::ListRolesResponse* response) {
  static const auto& method = Method("lumo.admin.v1.RoleService.ListRoles");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo&) -> absl::Status {
        service::ListRolesParams params;
        if (request->has_page()) params.page = request->page();
        if (request->has_limit()) params.limit = request->limit();
        params.search = request->search();
        params.sort_by = request->sort_by();
        params.sort_dir = request->sort_dir();
        service::Paging paging;
        absl::StatusOr<storage::RolePage> page =
            ctx_.users->ListRoles(caller, params, &paging);
        if (!page.ok()) return page.status();
        for (const storage::RoleRecord& role : page->roles) {
          ToProto(role, response->add_data());
        }
        FillMeta(page->total, paging, response->mutable_meta());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* RoleServiceImpl::CreateRole(
    grpc::CallbackServerContext* context, const pb::CreateRoleRequest* request,
    pb::Role* response) {
  static const auto& method = Method("lumo.admin.v1.RoleService.CreateRole");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo& info) -> absl::Status {
        return ReplyRole(
            [&] {
              return ctx_.users->CreateRole(caller, info,
                                            RoleParamsOf(*request));
            },
            response);
      });
}

grpc::ServerUnaryReactor* RoleServiceImpl::GetRole(
    grpc::CallbackServerContext* context, const pb::GetRoleRequest* request,
    pb::Role* response) {
  static const auto& method = Method("lumo.admin.v1.RoleService.GetRole");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo&) -> absl::Status {
        return ReplyRole(
            [&] { return ctx_.users->GetRole(caller, request->id()); },
            response);
      });
}

grpc::ServerUnaryReactor* RoleServiceImpl::UpdateRole(
    grpc::CallbackServerContext* context, const pb::UpdateRoleRequest* request,
    pb::Role* response) {
  static const auto& method = Method("lumo.admin.v1.RoleService.UpdateRole");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo& info) -> absl::Status {
        return ReplyRole(
            [&] {
              return ctx_.users->UpdateRole(caller, info, request->id(),
                                            RoleParamsOf(*request));
            },
            response);
      });
}

grpc::ServerUnaryReactor* RoleServiceImpl::DeleteRole(
    grpc::CallbackServerContext* context, const pb::DeleteRoleRequest* request,
    google::protobuf::Empty* /*response*/) {
  static const auto& method = Method("lumo.admin.v1.RoleService.DeleteRole");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request](const Principal& caller,
                      const RequestInfo& info) -> absl::Status {
        return ctx_.users->DeleteRole(caller, info, request->id());
      });
}

grpc::ServerUnaryReactor* RoleServiceImpl::ListRoleUsers(
    grpc::CallbackServerContext* context,
    const pb::ListRoleUsersRequest* request, pb::ListUsersResponse* response) {
  static const auto& method = Method("lumo.admin.v1.RoleService.ListRoleUsers");
  return RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, request->tenant_slug(), true,
      [this, request, response](const Principal& caller,
                                const RequestInfo&) -> absl::Status {
        service::Paging paging;
        absl::StatusOr<storage::UserPage> page = ctx_.users->ListRoleUsers(
            caller, request->id(), ListUsersParamsOf(*request), &paging);
        if (!page.ok()) return page.status();
        ToProto(*page, paging, response);
        return absl::OkStatus();
      });
}

}  // namespace lumo::rpc
