// The whole server minus process concerns: every store, domain service and
// gRPC adapter, built from one database pool and registered on a
// grpc::ServerBuilder. main.cc and the integration tests both use it, so the
// tests exercise exactly the wiring that ships.
#ifndef LUMOKEYS_SERVER_APP_APP_H_
#define LUMOKEYS_SERVER_APP_APP_H_

#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/impl/service_type.h"
#include "grpcpp/server_builder.h"
#include "server/core/crypto.h"
#include "server/core/pepper.h"
#include "server/rpc/authenticator.h"
#include "server/rpc/worker_pool.h"
#include "server/service/key_service.h"
#include "server/service/user_service.h"
#include "server/service/verifier.h"
#include "server/storage/mysql/mysql_key_store.h"
// [clients/settings/registration includes] (issue 4)
#include "server/service/client_service.h"
#include "server/service/registration_service.h"
#include "server/storage/mysql/mysql_client_store.h"
#include "server/storage/mysql/mysql_user_store.h"
// [audit includes] (issue 5)
#include "server/service/audit_service.h"
#include "server/service/audit_writer.h"
#include "server/service/usage_auditor.h"
#include "server/storage/mysql/mysql_audit_store.h"
// [portal includes] (issue 6)
#include "server/service/portal_service.h"
#include "server/storage/mysql/mysql_portal_store.h"

namespace lumo::app {

struct AppOptions {
  std::shared_ptr<const core::PepperSet> peppers;
  std::optional<core::Digest> service_token_sha256;
  std::optional<core::Digest> operator_token_sha256;
  absl::Duration verify_cache_ttl = absl::Seconds(30);
  int workers = 32;
  // [audit options] (issue 5)
  service::AuditWriterOptions audit_writer;
  service::UsageAuditorOptions usage_auditor;
  // BENCHMARK ONLY: do not record api_key.used / auth.api_key.failed
  // (lifecycle and admin events are still written in their transactions).
  // Exists to measure what usage auditing costs; never set it in production.
  bool record_usage = true;
  // [portal options] (issue 6): password hashing cost, session lifetimes,
  // login throttling (docs/portal.md).
  service::PortalOptions portal;
};

// Thread-safe once built. Owns everything it creates.
class App {
 public:
  // `store` owns the database pool that every other store shares.
  static absl::StatusOr<std::unique_ptr<App>> Create(
      std::unique_ptr<storage::MysqlKeyStore> store, AppOptions options);
  ~App();

  // Registers every gRPC service on `builder`.
  void RegisterServices(grpc::ServerBuilder& builder);

  // Every service descriptor the app serves (for the start-up annotation
  // check and the authorization-matrix test).
  std::vector<const google::protobuf::ServiceDescriptor*> ServiceDescriptors()
      const;

  storage::MysqlKeyStore& key_store() { return *key_store_; }
  service::Verifier& verifier() { return *verifier_; }
  // [audit accessors] (issue 5)
  service::AuditWriter& audit_writer() { return *audit_writer_; }
  storage::MysqlAuditStore& audit_store() { return *audit_store_; }

 private:
  App() = default;

  std::unique_ptr<storage::MysqlKeyStore> key_store_;
  std::unique_ptr<service::Verifier> verifier_;
  std::unique_ptr<service::KeyService> keys_;
  std::unique_ptr<rpc::Authenticator> auth_;
  std::unique_ptr<rpc::WorkerPool> workers_;
  std::vector<std::unique_ptr<grpc::Service>> services_;

  // [users/roles members] (issue 4): destroyed after workers_ stops.
  std::unique_ptr<storage::MysqlUserStore> user_store_;
  std::unique_ptr<service::UserService> users_;

  // [clients/settings/registration members] (issue 4): destroyed after
  // workers_ stops.
  std::unique_ptr<storage::MysqlClientStore> client_store_;
  std::unique_ptr<service::ClientService> clients_;
  std::unique_ptr<service::RegistrationService> registration_;

  // [audit members] (issue 5): declared last, so destroyed first, after
  // ~App has stopped workers_ and flushed the writer; the auditor goes
  // before the writer it feeds, the writer before its store.
  std::unique_ptr<storage::MysqlAuditStore> audit_store_;
  std::unique_ptr<service::AuditWriter> audit_writer_;
  std::unique_ptr<service::UsageAuditor> usage_;
  // The read side and chain verification; used only by the adapters.
  std::unique_ptr<service::AuditService> audit_service_;

  // [portal members] (issue 6): destroyed after workers_ stops.
  std::unique_ptr<storage::MysqlPortalStore> portal_store_;
  std::unique_ptr<service::PortalService> portal_;
};

}  // namespace lumo::app

#endif  // LUMOKEYS_SERVER_APP_APP_H_
