// gRPC adapters (callback API) for lumo.admin.v1 ClientService,
// SettingsService and RegistrationService: convert messages, call the
// domain services on the worker pool through RunAuthenticated (which
// enforces each method's (lumo.api.access) rule), map statuses.
#ifndef LUMOKEYS_SERVER_RPC_CLIENT_SERVICES_H_
#define LUMOKEYS_SERVER_RPC_CLIENT_SERVICES_H_

#include "lumo/admin/v1/clients.grpc.pb.h"
#include "lumo/admin/v1/registration.grpc.pb.h"
#include "lumo/admin/v1/settings.grpc.pb.h"
#include "server/rpc/authenticator.h"
#include "server/rpc/worker_pool.h"
#include "server/service/client_service.h"
#include "server/service/registration_service.h"

namespace lumo::rpc {

// What the adapters share. Borrowed pointers; all thread-safe.
struct ClientRpcContext {
  const Authenticator* auth;
  WorkerPool* workers;
  service::ClientService* clients;
  service::RegistrationService* registration;
};

class ClientServiceImpl final
    : public lumo::admin::v1::ClientService::CallbackService {
 public:
  explicit ClientServiceImpl(ClientRpcContext ctx) : ctx_(ctx) {}

  grpc::ServerUnaryReactor* ListClients(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::ListClientsRequest* request,
      lumo::admin::v1::ListClientsResponse* response) override;
  grpc::ServerUnaryReactor* CreateClient(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::CreateClientRequest* request,
      lumo::admin::v1::OAuthClient* response) override;
  grpc::ServerUnaryReactor* GetClient(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::GetClientRequest* request,
      lumo::admin::v1::OAuthClient* response) override;
  grpc::ServerUnaryReactor* ReplaceClient(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::ReplaceClientRequest* request,
      lumo::admin::v1::OAuthClient* response) override;
  grpc::ServerUnaryReactor* PatchClient(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::PatchClientRequest* request,
      lumo::admin::v1::OAuthClient* response) override;
  grpc::ServerUnaryReactor* DeleteClient(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::DeleteClientRequest* request,
      google::protobuf::Empty* response) override;
  grpc::ServerUnaryReactor* RotateClientSecret(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::RotateClientSecretRequest* request,
      lumo::admin::v1::OAuthClient* response) override;
  grpc::ServerUnaryReactor* EnableClient(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::SetClientActiveRequest* request,
      lumo::admin::v1::OAuthClient* response) override;
  grpc::ServerUnaryReactor* DisableClient(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::SetClientActiveRequest* request,
      lumo::admin::v1::OAuthClient* response) override;

 private:
  ClientRpcContext ctx_;
};

class SettingsServiceImpl final
    : public lumo::admin::v1::SettingsService::CallbackService {
 public:
  explicit SettingsServiceImpl(ClientRpcContext ctx) : ctx_(ctx) {}

  grpc::ServerUnaryReactor* GetSettings(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::GetSettingsRequest* request,
      lumo::admin::v1::TenantSettings* response) override;
  grpc::ServerUnaryReactor* UpdateSettings(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::UpdateSettingsRequest* request,
      lumo::admin::v1::TenantSettings* response) override;

 private:
  ClientRpcContext ctx_;
};

class RegistrationServiceImpl final
    : public lumo::admin::v1::RegistrationService::CallbackService {
 public:
  explicit RegistrationServiceImpl(ClientRpcContext ctx) : ctx_(ctx) {}

  // On RESOURCE_EXHAUSTED the trailing metadata carries `retry-after`
  // (seconds).
  grpc::ServerUnaryReactor* RegisterClient(
      grpc::CallbackServerContext* context,
      const lumo::admin::v1::RegisterClientRequest* request,
      lumo::admin::v1::RegisterClientResponse* response) override;

 private:
  ClientRpcContext ctx_;
};

}  // namespace lumo::rpc

#endif  // LUMOKEYS_SERVER_RPC_CLIENT_SERVICES_H_
