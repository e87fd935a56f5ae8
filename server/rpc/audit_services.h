// gRPC adapter (callback API) for lumo.audit.v1.AuditService: the read side
// of the audit log and the usage rollups. Converts messages, calls
// service::AuditService on the worker pool through RunAuthenticated (which
// enforces each method's (lumo.api.access) rule), renders exports.
#ifndef LUMOKEYS_SERVER_RPC_AUDIT_SERVICES_H_
#define LUMOKEYS_SERVER_RPC_AUDIT_SERVICES_H_

#include "lumo/api/annotations.pb.h"
#include "lumo/audit/v1/audit.grpc.pb.h"
#include "server/rpc/authenticator.h"
#include "server/rpc/worker_pool.h"
#include "server/service/audit_service.h"
#include "server/service/usage_service.h"

namespace lumo::rpc {

// What the adapter needs. Borrowed pointers; all thread-safe.
struct AuditRpcContext {
  const Authenticator* auth;
  WorkerPool* workers;
  service::AuditService* audit;
  service::UsageService* usage;
};

class AuditServiceImpl final
    : public lumo::audit::v1::AuditService::CallbackService {
 public:
  explicit AuditServiceImpl(AuditRpcContext ctx) : ctx_(ctx) {}

  grpc::ServerUnaryReactor* ListAuditLogs(
      grpc::CallbackServerContext* context,
      const lumo::audit::v1::ListAuditLogsRequest* request,
      lumo::audit::v1::ListAuditLogsResponse* response) override;
  grpc::ServerUnaryReactor* GetAuditSummary(
      grpc::CallbackServerContext* context,
      const lumo::audit::v1::GetAuditSummaryRequest* request,
      lumo::audit::v1::AuditSummary* response) override;
  grpc::ServerUnaryReactor* ExportAuditLogs(
      grpc::CallbackServerContext* context,
      const lumo::audit::v1::ExportAuditLogsRequest* request,
      lumo::api::HttpBody* response) override;
  grpc::ServerWriteReactor<lumo::api::HttpBody>* StreamAuditExport(
      grpc::CallbackServerContext* context,
      const lumo::audit::v1::ExportAuditLogsRequest* request) override;
  grpc::ServerUnaryReactor* GetAuditLog(
      grpc::CallbackServerContext* context,
      const lumo::audit::v1::GetAuditLogRequest* request,
      lumo::audit::v1::AuditEvent* response) override;
  grpc::ServerUnaryReactor* GetApiKeyUsage(
      grpc::CallbackServerContext* context,
      const lumo::audit::v1::GetApiKeyUsageRequest* request,
      lumo::audit::v1::ApiKeyUsage* response) override;
  grpc::ServerUnaryReactor* GetTenantUsage(
      grpc::CallbackServerContext* context,
      const lumo::audit::v1::GetTenantUsageRequest* request,
      lumo::audit::v1::TenantUsage* response) override;

 private:
  AuditRpcContext ctx_;
};

}  // namespace lumo::rpc

#endif  // LUMOKEYS_SERVER_RPC_AUDIT_SERVICES_H_
