// gRPC adapters (callback API) for lumo.webhooks.v1 WebhookService: convert
// messages, call the domain service on the worker pool through
// RunAuthenticated (which enforces each method's (lumo.api.access) rule),
// map statuses.
#ifndef LUMOKEYS_SERVER_RPC_WEBHOOK_SERVICES_H_
#define LUMOKEYS_SERVER_RPC_WEBHOOK_SERVICES_H_

#include "lumo/webhooks/v1/webhooks.grpc.pb.h"
#include "server/rpc/authenticator.h"
#include "server/rpc/worker_pool.h"
#include "server/service/webhook_service.h"

namespace lumo::rpc {

// What the adapters share. Borrowed pointers; all thread-safe.
struct WebhookRpcContext {
  const Authenticator* auth;
  WorkerPool* workers;
  service::WebhookService* webhooks;
};

class WebhookServiceImpl final
    : public lumo::webhooks::v1::WebhookService::CallbackService {
 public:
  explicit WebhookServiceImpl(WebhookRpcContext ctx) : ctx_(ctx) {}

  grpc::ServerUnaryReactor* ListWebhooks(
      grpc::CallbackServerContext* context,
      const lumo::webhooks::v1::ListWebhooksRequest* request,
      lumo::webhooks::v1::ListWebhooksResponse* response) override;
  grpc::ServerUnaryReactor* CreateWebhook(
      grpc::CallbackServerContext* context,
      const lumo::webhooks::v1::CreateWebhookRequest* request,
      lumo::webhooks::v1::Webhook* response) override;
  grpc::ServerUnaryReactor* GetWebhook(
      grpc::CallbackServerContext* context,
      const lumo::webhooks::v1::GetWebhookRequest* request,
      lumo::webhooks::v1::Webhook* response) override;
  grpc::ServerUnaryReactor* UpdateWebhook(
      grpc::CallbackServerContext* context,
      const lumo::webhooks::v1::UpdateWebhookRequest* request,
      lumo::webhooks::v1::Webhook* response) override;
  grpc::ServerUnaryReactor* DeleteWebhook(
      grpc::CallbackServerContext* context,
      const lumo::webhooks::v1::DeleteWebhookRequest* request,
      google::protobuf::Empty* response) override;
  grpc::ServerUnaryReactor* RotateWebhookSecret(
      grpc::CallbackServerContext* context,
      const lumo::webhooks::v1::RotateWebhookSecretRequest* request,
      lumo::webhooks::v1::Webhook* response) override;
  grpc::ServerUnaryReactor* TestWebhook(
      grpc::CallbackServerContext* context,
      const lumo::webhooks::v1::TestWebhookRequest* request,
      lumo::webhooks::v1::WebhookDelivery* response) override;
  grpc::ServerUnaryReactor* ListWebhookDeliveries(
      grpc::CallbackServerContext* context,
      const lumo::webhooks::v1::ListWebhookDeliveriesRequest* request,
      lumo::webhooks::v1::ListWebhookDeliveriesResponse* response) override;

 private:
  WebhookRpcContext ctx_;
};

}  // namespace lumo::rpc

#endif  // LUMOKEYS_SERVER_RPC_WEBHOOK_SERVICES_H_
