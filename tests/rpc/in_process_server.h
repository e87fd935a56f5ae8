// A whole LumoKeys server in the test process: a fresh migrated database,
// the App wiring that main.cc uses, and a gRPC server on 127.0.0.1:0.
#ifndef LUMOKEYS_TESTS_RPC_IN_PROCESS_SERVER_H_
#define LUMOKEYS_TESTS_RPC_IN_PROCESS_SERVER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"
#include "grpcpp/server.h"
#include "server/app/app.h"
#include "server/storage/mysql/mysql_backend.h"
#include "tests/storage/test_database.h"

namespace lumo::testing {

inline constexpr char kTestPepper[] =
    "1:5f0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
inline constexpr char kTestServiceToken[] = "service-token-0123456789abcdef";
inline constexpr char kTestOperatorToken[] = "operator-token-0123456789abcdef";

struct InProcessServer {
  // The tokens above, 8 workers, default audit options. With
  // `bench_service`, also the benchmark-only BenchService (off in
  // production by default).
  static absl::StatusOr<std::unique_ptr<InProcessServer>> Start(
      bool bench_service = false);
  // Shuts the server down, then destroys the app (flushing its audit
  // writer), then drops the database.
  ~InProcessServer();

  std::unique_ptr<TestDatabase> db;
  std::unique_ptr<app::App> app;
  // The app's backend (owned by `app`), for tests that need MySQL hooks.
  storage::MysqlBackend* backend = nullptr;
  std::unique_ptr<grpc::Server> server;
  std::shared_ptr<grpc::Channel> channel;
};

}  // namespace lumo::testing

#endif  // LUMOKEYS_TESTS_RPC_IN_PROCESS_SERVER_H_
