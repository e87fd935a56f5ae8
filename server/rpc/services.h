// gRPC adapters (callback API) for KeyService, AuthService and
// OperatorService: authenticate via the Authenticator, convert messages,
// call the domain services, map statuses. Blocking work runs on a
// WorkerPool; a warm VerifyApiKey is answered on the gRPC thread.
#ifndef LUMOKEYS_SERVER_RPC_SERVICES_H_
#define LUMOKEYS_SERVER_RPC_SERVICES_H_

#include "lumo/auth/v1/auth.grpc.pb.h"
#include "lumo/keys/v1/keys.grpc.pb.h"
#include "lumo/ops/v1/ops.grpc.pb.h"
#include "server/rpc/authenticator.h"
#include "server/rpc/worker_pool.h"
#include "server/service/audit_service.h"
#include "server/service/credit_service.h"
#include "server/service/identity_limit_service.h"
#include "server/service/key_service.h"
#include "server/service/verifier.h"

namespace lumo::rpc {

// Everything the adapters share. Borrowed pointers; all thread-safe.
struct RpcContext {
  const Authenticator* auth;
  service::KeyService* keys;
  service::Verifier* verifier;
  WorkerPool* workers;
  // Chain verification for OperatorService.VerifyAuditChain.
  service::AuditService* audit = nullptr;
  // The credits API of KeyService.
  service::CreditService* credits = nullptr;
  // The identity limits API of KeyService.
  service::IdentityLimitService* identity_limits = nullptr;
};

class KeyServiceImpl final
    : public lumo::keys::v1::KeyService::CallbackService {
 public:
  explicit KeyServiceImpl(RpcContext ctx) : ctx_(ctx) {}

  grpc::ServerUnaryReactor* ListApiKeys(
      grpc::CallbackServerContext* context,
      const lumo::keys::v1::ListApiKeysRequest* request,
      lumo::keys::v1::ListApiKeysResponse* response) override;
  grpc::ServerUnaryReactor* CreateApiKey(
      grpc::CallbackServerContext* context,
      const lumo::keys::v1::CreateApiKeyRequest* request,
      lumo::keys::v1::ApiKey* response) override;
  grpc::ServerUnaryReactor* GetApiKey(
      grpc::CallbackServerContext* context,
      const lumo::keys::v1::GetApiKeyRequest* request,
      lumo::keys::v1::ApiKey* response) override;
  grpc::ServerUnaryReactor* RotateApiKey(
      grpc::CallbackServerContext* context,
      const lumo::keys::v1::RotateApiKeyRequest* request,
      lumo::keys::v1::ApiKey* response) override;
  grpc::ServerUnaryReactor* UpdateApiKey(
      grpc::CallbackServerContext* context,
      const lumo::keys::v1::UpdateApiKeyRequest* request,
      lumo::keys::v1::ApiKey* response) override;
  grpc::ServerUnaryReactor* DisableApiKey(
      grpc::CallbackServerContext* context,
      const lumo::keys::v1::SetApiKeyDisabledRequest* request,
      lumo::keys::v1::ApiKey* response) override;
  grpc::ServerUnaryReactor* EnableApiKey(
      grpc::CallbackServerContext* context,
      const lumo::keys::v1::SetApiKeyDisabledRequest* request,
      lumo::keys::v1::ApiKey* response) override;
  grpc::ServerUnaryReactor* RevokeApiKey(
      grpc::CallbackServerContext* context,
      const lumo::keys::v1::RevokeApiKeyRequest* request,
      lumo::keys::v1::ApiKey* response) override;
  grpc::ServerUnaryReactor* DeleteApiKey(
      grpc::CallbackServerContext* context,
      const lumo::keys::v1::DeleteApiKeyRequest* request,
      google::protobuf::Empty* response) override;
  grpc::ServerUnaryReactor* GetApiKeyCredits(
      grpc::CallbackServerContext* context,
      const lumo::keys::v1::GetApiKeyCreditsRequest* request,
      lumo::keys::v1::ApiKeyCredits* response) override;
  grpc::ServerUnaryReactor* UpdateApiKeyCredits(
      grpc::CallbackServerContext* context,
      const lumo::keys::v1::UpdateApiKeyCreditsRequest* request,
      lumo::keys::v1::ApiKeyCredits* response) override;
  grpc::ServerUnaryReactor* GetIdentityLimits(
      grpc::CallbackServerContext* context,
      const lumo::keys::v1::GetIdentityLimitsRequest* request,
      lumo::keys::v1::IdentityLimits* response) override;
  grpc::ServerUnaryReactor* SetIdentityLimits(
      grpc::CallbackServerContext* context,
      const lumo::keys::v1::SetIdentityLimitsRequest* request,
      lumo::keys::v1::IdentityLimits* response) override;

 private:
  // Disable (`disabled`) or enable.
  grpc::ServerUnaryReactor* SetDisabled(
      grpc::CallbackServerContext* context,
      const google::protobuf::MethodDescriptor& method,
      const lumo::keys::v1::SetApiKeyDisabledRequest* request,
      lumo::keys::v1::ApiKey* response, bool disabled);
  RpcContext ctx_;
};

class AuthServiceImpl final
    : public lumo::auth::v1::AuthService::CallbackService {
 public:
  explicit AuthServiceImpl(RpcContext ctx) : ctx_(ctx) {}

  grpc::ServerUnaryReactor* VerifyApiKey(
      grpc::CallbackServerContext* context,
      const lumo::auth::v1::VerifyApiKeyRequest* request,
      lumo::auth::v1::VerifyApiKeyResponse* response) override;

 private:
  RpcContext ctx_;
};

class OperatorServiceImpl final
    : public lumo::ops::v1::OperatorService::CallbackService {
 public:
  explicit OperatorServiceImpl(RpcContext ctx) : ctx_(ctx) {}

  grpc::ServerUnaryReactor* CreateTenant(
      grpc::CallbackServerContext* context,
      const lumo::ops::v1::CreateTenantRequest* request,
      lumo::ops::v1::CreateTenantResponse* response) override;
  grpc::ServerUnaryReactor* GetTenant(
      grpc::CallbackServerContext* context,
      const lumo::ops::v1::GetTenantRequest* request,
      lumo::ops::v1::Tenant* response) override;
  grpc::ServerUnaryReactor* CreateTenantKey(
      grpc::CallbackServerContext* context,
      const lumo::ops::v1::CreateTenantKeyRequest* request,
      lumo::keys::v1::ApiKey* response) override;
  grpc::ServerUnaryReactor* VerifyAuditChain(
      grpc::CallbackServerContext* context,
      const lumo::ops::v1::VerifyAuditChainRequest* request,
      lumo::ops::v1::VerifyAuditChainResponse* response) override;

 private:
  RpcContext ctx_;
};

}  // namespace lumo::rpc

#endif  // LUMOKEYS_SERVER_RPC_SERVICES_H_
