// BENCHMARK ONLY: the gRPC adapter for lumo.bench.v1.BenchService, the
// baselines tools/bench measures against (docs/benchmarks.md). Registered
// by the App only when AppOptions::bench_service is set (server flag
// --bench_service, off by default). Every method authenticates through the
// Authenticator like any other RPC (service token only).
#ifndef LUMOKEYS_SERVER_BENCH_BENCH_SERVICE_H_
#define LUMOKEYS_SERVER_BENCH_BENCH_SERVICE_H_

#include "absl/status/statusor.h"
#include "lumo/bench/v1/bench.grpc.pb.h"
#include "server/rpc/authenticator.h"
#include "server/rpc/worker_pool.h"
#include "server/service/verifier.h"
#include "server/storage/bench_store.h"
#include "server/storage/key_store.h"

namespace lumo::bench {

// Borrowed pointers; all thread-safe and outliving the service.
struct BenchRpcContext {
  const rpc::Authenticator* auth;
  rpc::WorkerPool* workers;
  storage::BenchStore* store;
  // The verification read of PointSelect's `verify_read`.
  storage::KeyStore* keys;
  service::Verifier* verifier;
};

// Thread-safe.
class BenchServiceImpl final
    : public lumo::bench::v1::BenchService::CallbackService {
 public:
  explicit BenchServiceImpl(BenchRpcContext ctx) : ctx_(ctx) {}

  // Authenticates and replies on the gRPC thread (no worker hop).
  grpc::ServerUnaryReactor* Echo(
      grpc::CallbackServerContext* context,
      const lumo::bench::v1::EchoRequest* request,
      lumo::bench::v1::EchoResponse* response) override;
  // On the worker pool, like every call that reads the database.
  grpc::ServerUnaryReactor* PointSelect(
      grpc::CallbackServerContext* context,
      const lumo::bench::v1::PointSelectRequest* request,
      lumo::bench::v1::PointSelectResponse* response) override;
  grpc::ServerUnaryReactor* InsertCommit(
      grpc::CallbackServerContext* context,
      const lumo::bench::v1::InsertCommitRequest* request,
      lumo::bench::v1::InsertCommitResponse* response) override;
  // Answered on the gRPC thread.
  grpc::ServerUnaryReactor* Stats(
      grpc::CallbackServerContext* context,
      const lumo::bench::v1::StatsRequest* request,
      lumo::bench::v1::StatsResponse* response) override;

 private:
  // The read PointSelect's request names (on a worker thread).
  absl::StatusOr<bool> Select(
      const lumo::bench::v1::PointSelectRequest& request);

  BenchRpcContext ctx_;
};

}  // namespace lumo::bench

#endif  // LUMOKEYS_SERVER_BENCH_BENCH_SERVICE_H_
