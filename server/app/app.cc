#include "server/app/app.h"

#include <utility>

#include "server/rpc/audit_services.h"
#include "server/rpc/client_services.h"
#include "server/rpc/portal_services.h"
#include "server/rpc/services.h"
#include "server/rpc/user_services.h"

namespace lumo::app {

absl::StatusOr<std::unique_ptr<App>> App::Create(
    std::unique_ptr<storage::MysqlKeyStore> store, AppOptions options) {
  std::unique_ptr<App> app(new App);
  app->key_store_ = std::move(store);
  service::VerifierOptions verifier_options;
  verifier_options.cache_ttl = options.verify_cache_ttl;
  app->verifier_ = std::make_unique<service::Verifier>(
      app->key_store_.get(), options.peppers, verifier_options);
  app->keys_ = std::make_unique<service::KeyService>(
      app->key_store_.get(), options.peppers, app->verifier_.get());
  app->auth_ = std::make_unique<rpc::Authenticator>(
      app->verifier_.get(), options.service_token_sha256,
      options.operator_token_sha256);
  app->workers_ =
      std::make_unique<rpc::WorkerPool>(options.workers, /*max_queue=*/10000);

  // [audit read side] (issue 5): before the adapters that use it.
  app->audit_store_ = std::make_unique<storage::MysqlAuditStore>(
      app->key_store_->shared_pool());
  app->audit_service_ = std::make_unique<service::AuditService>(
      app->audit_store_.get(), app->key_store_.get());

  rpc::RpcContext ctx{app->auth_.get(), app->keys_.get(), app->verifier_.get(),
                      app->workers_.get(), app->audit_service_.get()};
  app->services_.push_back(std::make_unique<rpc::KeyServiceImpl>(ctx));
  app->services_.push_back(std::make_unique<rpc::AuthServiceImpl>(ctx));
  app->services_.push_back(std::make_unique<rpc::OperatorServiceImpl>(ctx));

  // [users/roles wiring] (issue 4)
  app->user_store_ =
      std::make_unique<storage::MysqlUserStore>(app->key_store_->shared_pool());
  app->users_ = std::make_unique<service::UserService>(app->user_store_.get());
  {
    rpc::UserRpcContext user_ctx{app->auth_.get(), app->users_.get(),
                                 app->workers_.get()};
    app->services_.push_back(std::make_unique<rpc::UserServiceImpl>(user_ctx));
    app->services_.push_back(std::make_unique<rpc::RoleServiceImpl>(user_ctx));
  }

  // [clients/settings/registration wiring] (issue 4)
  app->client_store_ = std::make_unique<storage::MysqlClientStore>(
      app->key_store_->shared_pool());
  app->clients_ = std::make_unique<service::ClientService>(
      app->client_store_.get(), options.peppers);
  app->registration_ = std::make_unique<service::RegistrationService>(
      app->key_store_.get(), app->client_store_.get(), app->clients_.get(),
      service::IpRateLimiterOptions());
  {
    rpc::ClientRpcContext client_ctx{app->auth_.get(), app->workers_.get(),
                                     app->clients_.get(),
                                     app->registration_.get()};
    app->services_.push_back(
        std::make_unique<rpc::ClientServiceImpl>(client_ctx));
    app->services_.push_back(
        std::make_unique<rpc::SettingsServiceImpl>(client_ctx));
    app->services_.push_back(
        std::make_unique<rpc::RegistrationServiceImpl>(client_ctx));
  }

  // [audit wiring] (issue 5)
  app->audit_writer_ = std::make_unique<service::AuditWriter>(
      app->audit_store_.get(), options.audit_writer);
  app->usage_ = std::make_unique<service::UsageAuditor>(
      app->audit_writer_.get(), options.usage_auditor);
  if (options.record_usage) app->auth_->set_usage_auditor(app->usage_.get());
  app->services_.push_back(
      std::make_unique<rpc::AuditServiceImpl>(rpc::AuditRpcContext{
          app->auth_.get(), app->workers_.get(), app->audit_service_.get()}));

  // [portal wiring] (issue 6)
  app->portal_store_ = std::make_unique<storage::MysqlPortalStore>(
      app->key_store_->shared_pool());
  app->portal_ = std::make_unique<service::PortalService>(
      app->portal_store_.get(), options.portal);
  app->portal_->set_audit_writer(app->audit_writer_.get());
  app->auth_->set_portal(app->portal_.get());
  app->services_.push_back(
      std::make_unique<rpc::PortalServiceImpl>(rpc::PortalRpcContext{
          app->auth_.get(), app->workers_.get(), app->portal_.get()}));

  if (absl::Status ok = rpc::CheckAccessAnnotations(app->ServiceDescriptors());
      !ok.ok()) {
    return ok;
  }
  return app;
}

App::~App() {
  // Runs queued work before the services and stores it uses go away.
  workers_.reset();
  // [audit shutdown] (issue 5): producers are gone; write what is queued.
  if (auth_ != nullptr) auth_->set_usage_auditor(nullptr);
  if (audit_writer_ != nullptr) audit_writer_->Stop();
}

void App::RegisterServices(grpc::ServerBuilder& builder) {
  for (const auto& service : services_) builder.RegisterService(service.get());
}

std::vector<const google::protobuf::ServiceDescriptor*>
App::ServiceDescriptors() const {
  // A service's descriptor is found from the name of its first method.
  std::vector<const google::protobuf::ServiceDescriptor*> out;
  for (const char* name : {
           "lumo.keys.v1.KeyService",
           "lumo.auth.v1.AuthService",
           "lumo.ops.v1.OperatorService",
           // [service names] (issue 4)
           "lumo.admin.v1.ClientService",
           "lumo.admin.v1.SettingsService",
           "lumo.admin.v1.RegistrationService",
           "lumo.admin.v1.UserService",
           "lumo.admin.v1.RoleService",
           // [audit service names] (issue 5)
           "lumo.audit.v1.AuditService",
           // [portal service names] (issue 6)
           "lumo.portal.v1.PortalService",
       }) {
    const auto* d =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
            name);
    if (d != nullptr) out.push_back(d);
  }
  return out;
}

}  // namespace lumo::app
