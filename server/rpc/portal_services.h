// gRPC adapter (callback API) for lumo.portal.v1.PortalService: portal
// login, logout and session (docs/portal.md). Every call goes through
// RunAuthenticated, which enforces the method's (lumo.api.access) rule.
#ifndef LUMOKEYS_SERVER_RPC_PORTAL_SERVICES_H_
#define LUMOKEYS_SERVER_RPC_PORTAL_SERVICES_H_

#include "lumo/portal/v1/portal.grpc.pb.h"
#include "server/rpc/authenticator.h"
#include "server/rpc/worker_pool.h"
#include "server/service/portal_service.h"

namespace lumo::rpc {

// Borrowed pointers; all thread-safe.
struct PortalRpcContext {
  const Authenticator* auth;
  WorkerPool* workers;
  service::PortalService* portal;
};

class PortalServiceImpl final
    : public lumo::portal::v1::PortalService::CallbackService {
 public:
  explicit PortalServiceImpl(PortalRpcContext ctx) : ctx_(ctx) {}

  grpc::ServerUnaryReactor* Login(
      grpc::CallbackServerContext* context,
      const lumo::portal::v1::LoginRequest* request,
      lumo::portal::v1::LoginResponse* response) override;
  grpc::ServerUnaryReactor* Logout(
      grpc::CallbackServerContext* context,
      const lumo::portal::v1::LogoutRequest* request,
      google::protobuf::Empty* response) override;
  grpc::ServerUnaryReactor* GetSession(
      grpc::CallbackServerContext* context,
      const lumo::portal::v1::GetSessionRequest* request,
      lumo::portal::v1::SessionInfo* response) override;
  grpc::ServerUnaryReactor* SetPortalAdmin(
      grpc::CallbackServerContext* context,
      const lumo::portal::v1::SetPortalAdminRequest* request,
      lumo::portal::v1::PortalUser* response) override;

 private:
  PortalRpcContext ctx_;
};

}  // namespace lumo::rpc

#endif  // LUMOKEYS_SERVER_RPC_PORTAL_SERVICES_H_
