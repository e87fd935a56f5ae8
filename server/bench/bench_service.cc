#include "server/bench/bench_service.h"

#include "server/rpc/call.h"

namespace lumo::bench {
namespace {

using service::Principal;
using service::RequestInfo;

// Authenticates on the gRPC thread; on failure finishes the call and
// returns false.
bool AuthenticateInline(const rpc::Authenticator& auth,
                        grpc::CallbackServerContext* context,
                        grpc::ServerUnaryReactor* reactor,
                        const google::protobuf::MethodDescriptor& method,
                        const RequestInfo& info) {
  absl::StatusOr<Principal> caller =
      auth.Authenticate(*context, method, "", info);
  if (caller.ok()) return true;
  rpc::Finish(context, reactor, info, caller.status());
  return false;
}

}  // namespace

grpc::ServerUnaryReactor* BenchServiceImpl::Echo(
    grpc::CallbackServerContext* context,
    const lumo::bench::v1::EchoRequest* request,
    lumo::bench::v1::EchoResponse* response) {
  static const auto& method = rpc::Method("lumo.bench.v1.BenchService.Echo");
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  RequestInfo info = ctx_.auth->DescribeRequest(*context);
  if (!AuthenticateInline(*ctx_.auth, context, reactor, method, info)) {
    return reactor;
  }
  response->set_payload(request->payload());
  rpc::Finish(context, reactor, info, absl::OkStatus());
  return reactor;
}

absl::StatusOr<bool> BenchServiceImpl::Select(
    const lumo::bench::v1::PointSelectRequest& request) {
  if (request.verify_read()) {
    absl::StatusOr<storage::VerifyRecord> record =
        ctx_.keys->LoadForVerify(request.id());
    if (absl::IsNotFound(record.status())) return false;
    if (!record.ok()) return record.status();
    return true;
  }
  return request.c_client() ? ctx_.store->PointSelectCClient(request.id())
                            : ctx_.store->PointSelect(request.id());
}

grpc::ServerUnaryReactor* BenchServiceImpl::PointSelect(
    grpc::CallbackServerContext* context,
    const lumo::bench::v1::PointSelectRequest* request,
    lumo::bench::v1::PointSelectResponse* response) {
  static const auto& method =
      rpc::Method("lumo.bench.v1.BenchService.PointSelect");
  return rpc::RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, "", false,
      [this, request, response](const Principal&,
                                const RequestInfo&) -> absl::Status {
        absl::StatusOr<bool> found = Select(*request);
        if (!found.ok()) return found.status();
        response->set_found(*found);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* BenchServiceImpl::InsertCommit(
    grpc::CallbackServerContext* context,
    const lumo::bench::v1::InsertCommitRequest* /*request*/,
    lumo::bench::v1::InsertCommitResponse* response) {
  static const auto& method =
      rpc::Method("lumo.bench.v1.BenchService.InsertCommit");
  return rpc::RunAuthenticated(
      *ctx_.auth, *ctx_.workers, context, method, "", false,
      [this, response](const Principal&, const RequestInfo&) -> absl::Status {
        absl::StatusOr<uint64_t> rows = ctx_.store->InsertCommit();
        if (!rows.ok()) return rows.status();
        response->set_rows(*rows);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* BenchServiceImpl::Stats(
    grpc::CallbackServerContext* context,
    const lumo::bench::v1::StatsRequest* /*request*/,
    lumo::bench::v1::StatsResponse* response) {
  static const auto& method = rpc::Method("lumo.bench.v1.BenchService.Stats");
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  RequestInfo info = ctx_.auth->DescribeRequest(*context);
  if (!AuthenticateInline(*ctx_.auth, context, reactor, method, info)) {
    return reactor;
  }
  response->set_db_queries(ctx_.store->queries_executed());
  response->set_db_statements(ctx_.store->statements_executed());
  response->set_verify_cache_entries(ctx_.verifier->size());
  rpc::Finish(context, reactor, info, absl::OkStatus());
  return reactor;
}

}  // namespace lumo::bench
