#include "tests/rpc/in_process_server.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "server/core/crypto.h"
#include "server/core/pepper.h"
#include "server/storage/mysql/connection_pool.h"

namespace lumo::testing {

absl::StatusOr<std::unique_ptr<InProcessServer>> InProcessServer::Start(
    bool bench_service) {
  storage::InitMysqlDriver();
  auto out = std::make_unique<InProcessServer>();
  absl::StatusOr<std::unique_ptr<TestDatabase>> db = TestDatabase::Create();
  if (!db.ok()) return db.status();
  out->db = *std::move(db);
  auto backend = storage::MysqlBackend::Open(out->db->options());
  if (!backend.ok()) return backend.status();
  out->backend = backend->get();
  app::AppOptions options;
  options.peppers = *core::PepperSet::Parse(kTestPepper);
  options.service_token_sha256 = core::Sha256(kTestServiceToken);
  options.operator_token_sha256 = core::Sha256(kTestOperatorToken);
  options.workers = 8;
  options.bench_service = bench_service;
  // Portal logins in these tests check access rules, not hashing cost:
  // scrypt at N=2^12 instead of the OWASP 2^17 default (portal_unit_test
  // asserts that default).
  options.portal.scrypt.log2_n = 12;
  auto app = app::App::Create(*std::move(backend), options);
  if (!app.ok()) return app.status();
  out->app = *std::move(app);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  out->app->RegisterServices(builder);
  out->server = builder.BuildAndStart();
  if (out->server == nullptr || port == 0) {
    return absl::UnavailableError("cannot start the in-process server");
  }
  out->channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                     grpc::InsecureChannelCredentials());
  return out;
}

InProcessServer::~InProcessServer() {
  if (server != nullptr) server->Shutdown();
  server.reset();
  app.reset();
  db.reset();
}

}  // namespace lumo::testing
