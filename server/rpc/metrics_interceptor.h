// Per-RPC metrics and access logs for every call of the gRPC server, as a
// server interceptor (so no adapter has to remember them):
//   lumo_grpc_server_requests_total{rpc,code}         counter
//   lumo_grpc_server_request_duration_seconds{rpc}    histogram
// and one JSON access-log line per call (rpc, code, latency_ms, request_id,
// tenant). The tenant is the request's `tenant_slug` field when the request
// message has one that the protos do not mark secret (MayLogField); no
// other field of the request is ever read, so no key or secret can reach
// the log. Lines are at info, except OK answers of
// AuthService.VerifyApiKey and grpc.health, which are at debug (they run
// at tens of thousands per second; the metrics count them).
//
// Thread-safety: the factory is thread-safe; each interceptor belongs to one
// call.
#ifndef LUMOKEYS_SERVER_RPC_METRICS_INTERCEPTOR_H_
#define LUMOKEYS_SERVER_RPC_METRICS_INTERCEPTOR_H_

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/support/server_interceptor.h"
#include "server/observability/metrics.h"

namespace lumo::rpc {

// False for a field the protos mark as a secret ((lumo.api.field).secret,
// annotations.proto): its value must never reach a log line.
bool MayLogField(const google::protobuf::FieldDescriptor& field);

class MetricsInterceptorFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // Every method of `services` is looked up without a lock on the call
  // path (its series are created at its first call); other methods
  // (health, reflection) take a mutex. `registry` must outlive the factory.
  MetricsInterceptorFactory(
      metrics::Registry& registry,
      const std::vector<const google::protobuf::ServiceDescriptor*>& services);

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

  struct MethodMetrics {
    std::string rpc;     // "pkg.Service/Method"
    bool quiet = false;  // OK answers are logged at debug
    const google::protobuf::FieldDescriptor* tenant_field = nullptr;
    const google::protobuf::Descriptor* input_type = nullptr;
    metrics::Family<metrics::Histogram>* latency_family = nullptr;
    metrics::Family<metrics::Counter>* requests = nullptr;
    // Series are created on first use (no zero series for methods never
    // called), then read without a lock.
    std::atomic<metrics::Histogram*> latency{nullptr};
    // Per gRPC code (0..16).
    std::array<std::atomic<metrics::Counter*>, 17> by_code{};
    metrics::Counter& ForCode(int code);
    metrics::Histogram& Latency();
  };

 private:
  MethodMetrics& Prepare(absl::string_view path,
                         const google::protobuf::MethodDescriptor* method);
  MethodMetrics& Lookup(absl::string_view path) ABSL_LOCKS_EXCLUDED(mu_);

  metrics::Family<metrics::Counter>& requests_;
  metrics::Family<metrics::Histogram>& latency_;
  // Read-only after construction.
  absl::flat_hash_map<std::string, std::unique_ptr<MethodMetrics>> known_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<MethodMetrics>> others_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace lumo::rpc

#endif  // LUMOKEYS_SERVER_RPC_METRICS_INTERCEPTOR_H_
