// An in-process fake of the LumoKeys services for client tests: it
// records the metadata and deadline of every call and answers with canned
// replies or a canned error.
#ifndef LUMOKEYS_TESTS_CLIENT_FAKE_SERVER_H_
#define LUMOKEYS_TESTS_CLIENT_FAKE_SERVER_H_

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "lumo/auth/v1/auth.grpc.pb.h"
#include "lumo/keys/v1/keys.grpc.pb.h"
#include "lumo/ops/v1/ops.grpc.pb.h"
#include "lumo/webhooks/v1/webhooks.grpc.pb.h"

namespace lumo::testing {

// What the fake saw of one call.
struct SeenCall {
  std::string method;
  std::multimap<std::string, std::string> metadata;
  // Time left until the call's deadline when it arrived.
  std::chrono::milliseconds time_left{0};
  std::string request_text;  // DebugString of the request
};

// Shared state of the fake services. Thread-safe.
class FakeState {
 public:
  void Record(const grpc::ServerContext& context, std::string method,
              const google::protobuf::Message& request) {
    SeenCall call;
    call.method = std::move(method);
    for (const auto& [key, value] : context.client_metadata()) {
      call.metadata.emplace(std::string(key.data(), key.size()),
                            std::string(value.data(), value.size()));
    }
    call.time_left = std::chrono::duration_cast<std::chrono::milliseconds>(
        context.deadline() - std::chrono::system_clock::now());
    call.request_text = request.DebugString();
    absl::MutexLock lock(&mu_);
    calls_.push_back(std::move(call));
  }

  std::vector<SeenCall> calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  SeenCall last() const {
    absl::MutexLock lock(&mu_);
    return calls_.empty() ? SeenCall{} : calls_.back();
  }
  // Every later call fails with `status` (OK: answer normally).
  void FailWith(grpc::Status status) {
    absl::MutexLock lock(&mu_);
    error_ = std::move(status);
  }
  grpc::Status error() const {
    absl::MutexLock lock(&mu_);
    return error_;
  }

  // Canned replies.
  lumo::keys::v1::ApiKey key_reply;
  lumo::keys::v1::ListApiKeysResponse list_reply;
  lumo::ops::v1::CreateTenantResponse tenant_reply;
  lumo::auth::v1::VerifyApiKeyResponse verify_reply;
  lumo::webhooks::v1::Webhook webhook_reply;
  lumo::webhooks::v1::ListWebhooksResponse webhook_list_reply;
  lumo::webhooks::v1::WebhookDelivery delivery_reply;
  lumo::webhooks::v1::ListWebhookDeliveriesResponse delivery_list_reply;

 private:
  mutable absl::Mutex mu_;
  std::vector<SeenCall> calls_;
  grpc::Status error_ = grpc::Status::OK;
};

class FakeKeyService final : public lumo::keys::v1::KeyService::Service {
 public:
  explicit FakeKeyService(FakeState* state) : state_(state) {}
  grpc::Status ListApiKeys(grpc::ServerContext* c,
                           const lumo::keys::v1::ListApiKeysRequest* r,
                           lumo::keys::v1::ListApiKeysResponse* out) override {
    state_->Record(*c, "ListApiKeys", *r);
    *out = state_->list_reply;
    return state_->error();
  }
  grpc::Status CreateApiKey(grpc::ServerContext* c,
                            const lumo::keys::v1::CreateApiKeyRequest* r,
                            lumo::keys::v1::ApiKey* out) override {
    state_->Record(*c, "CreateApiKey", *r);
    *out = state_->key_reply;
    return state_->error();
  }
  grpc::Status GetApiKey(grpc::ServerContext* c,
                         const lumo::keys::v1::GetApiKeyRequest* r,
                         lumo::keys::v1::ApiKey* out) override {
    state_->Record(*c, "GetApiKey", *r);
    *out = state_->key_reply;
    return state_->error();
  }
  grpc::Status RotateApiKey(grpc::ServerContext* c,
                            const lumo::keys::v1::RotateApiKeyRequest* r,
                            lumo::keys::v1::ApiKey* out) override {
    state_->Record(*c, "RotateApiKey", *r);
    *out = state_->key_reply;
    return state_->error();
  }
  grpc::Status RevokeApiKey(grpc::ServerContext* c,
                            const lumo::keys::v1::RevokeApiKeyRequest* r,
                            lumo::keys::v1::ApiKey* out) override {
    state_->Record(*c, "RevokeApiKey", *r);
    *out = state_->key_reply;
    return state_->error();
  }
  grpc::Status DeleteApiKey(grpc::ServerContext* c,
                            const lumo::keys::v1::DeleteApiKeyRequest* r,
                            google::protobuf::Empty*) override {
    state_->Record(*c, "DeleteApiKey", *r);
    return state_->error();
  }

 private:
  FakeState* state_;
};

class FakeOperatorService final
    : public lumo::ops::v1::OperatorService::Service {
 public:
  explicit FakeOperatorService(FakeState* state) : state_(state) {}
  grpc::Status CreateTenant(grpc::ServerContext* c,
                            const lumo::ops::v1::CreateTenantRequest* r,
                            lumo::ops::v1::CreateTenantResponse* out) override {
    state_->Record(*c, "CreateTenant", *r);
    *out = state_->tenant_reply;
    return state_->error();
  }
  grpc::Status GetTenant(grpc::ServerContext* c,
                         const lumo::ops::v1::GetTenantRequest* r,
                         lumo::ops::v1::Tenant* out) override {
    state_->Record(*c, "GetTenant", *r);
    *out = state_->tenant_reply.tenant();
    return state_->error();
  }
  grpc::Status CreateTenantKey(grpc::ServerContext* c,
                               const lumo::ops::v1::CreateTenantKeyRequest* r,
                               lumo::keys::v1::ApiKey* out) override {
    state_->Record(*c, "CreateTenantKey", *r);
    *out = state_->key_reply;
    return state_->error();
  }

 private:
  FakeState* state_;
};

class FakeWebhookService final
    : public lumo::webhooks::v1::WebhookService::Service {
 public:
  explicit FakeWebhookService(FakeState* state) : state_(state) {}
  grpc::Status ListWebhooks(
      grpc::ServerContext* c, const lumo::webhooks::v1::ListWebhooksRequest* r,
      lumo::webhooks::v1::ListWebhooksResponse* out) override {
    return Answer(c, "ListWebhooks", *r, state_->webhook_list_reply, out);
  }
  grpc::Status CreateWebhook(grpc::ServerContext* c,
                             const lumo::webhooks::v1::CreateWebhookRequest* r,
                             lumo::webhooks::v1::Webhook* out) override {
    return Answer(c, "CreateWebhook", *r, state_->webhook_reply, out);
  }
  grpc::Status GetWebhook(grpc::ServerContext* c,
                          const lumo::webhooks::v1::GetWebhookRequest* r,
                          lumo::webhooks::v1::Webhook* out) override {
    return Answer(c, "GetWebhook", *r, state_->webhook_reply, out);
  }
  grpc::Status UpdateWebhook(grpc::ServerContext* c,
                             const lumo::webhooks::v1::UpdateWebhookRequest* r,
                             lumo::webhooks::v1::Webhook* out) override {
    return Answer(c, "UpdateWebhook", *r, state_->webhook_reply, out);
  }
  grpc::Status DeleteWebhook(grpc::ServerContext* c,
                             const lumo::webhooks::v1::DeleteWebhookRequest* r,
                             google::protobuf::Empty*) override {
    state_->Record(*c, "DeleteWebhook", *r);
    return state_->error();
  }
  grpc::Status RotateWebhookSecret(
      grpc::ServerContext* c,
      const lumo::webhooks::v1::RotateWebhookSecretRequest* r,
      lumo::webhooks::v1::Webhook* out) override {
    return Answer(c, "RotateWebhookSecret", *r, state_->webhook_reply, out);
  }
  grpc::Status TestWebhook(grpc::ServerContext* c,
                           const lumo::webhooks::v1::TestWebhookRequest* r,
                           lumo::webhooks::v1::WebhookDelivery* out) override {
    return Answer(c, "TestWebhook", *r, state_->delivery_reply, out);
  }
  grpc::Status ListWebhookDeliveries(
      grpc::ServerContext* c,
      const lumo::webhooks::v1::ListWebhookDeliveriesRequest* r,
      lumo::webhooks::v1::ListWebhookDeliveriesResponse* out) override {
    return Answer(c, "ListWebhookDeliveries", *r, state_->delivery_list_reply,
                  out);
  }

 private:
  template <typename Reply>
  grpc::Status Answer(grpc::ServerContext* c, std::string method,
                      const google::protobuf::Message& request,
                      const Reply& canned, Reply* out) {
    state_->Record(*c, std::move(method), request);
    *out = canned;
    return state_->error();
  }

  FakeState* state_;
};

class FakeAuthService final : public lumo::auth::v1::AuthService::Service {
 public:
  explicit FakeAuthService(FakeState* state) : state_(state) {}
  grpc::Status VerifyApiKey(
      grpc::ServerContext* c, const lumo::auth::v1::VerifyApiKeyRequest* r,
      lumo::auth::v1::VerifyApiKeyResponse* out) override {
    state_->Record(*c, "VerifyApiKey", *r);
    *out = state_->verify_reply;
    return state_->error();
  }

 private:
  FakeState* state_;
};

// The three fakes plus gRPC's default health service on an in-process
// server.
class FakeServer {
 public:
  FakeServer() : keys_(&state), ops_(&state), auth_(&state), webhooks_(&state) {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.RegisterService(&keys_);
    builder.RegisterService(&ops_);
    builder.RegisterService(&auth_);
    builder.RegisterService(&webhooks_);
    server_ = builder.BuildAndStart();
  }
  ~FakeServer() { server_->Shutdown(); }

  std::shared_ptr<grpc::Channel> Channel() {
    return server_->InProcessChannel(grpc::ChannelArguments());
  }
  grpc::Server& server() { return *server_; }

  FakeState state;

 private:
  FakeKeyService keys_;
  FakeOperatorService ops_;
  FakeAuthService auth_;
  FakeWebhookService webhooks_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace lumo::testing

#endif  // LUMOKEYS_TESTS_CLIENT_FAKE_SERVER_H_
