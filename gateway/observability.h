// Metrics and access logs for lumokeys-gateway, as a GatewayObserver:
//   lumo_gateway_requests_total{route,method,status}          counter
//   lumo_gateway_request_duration_seconds{route,method}       histogram
//   lumo_gateway_upstream_errors_total{code}                  counter
// and one JSON access-log line per request at info: method, route (the
// template, never the raw path or query), status, latency_ms, request_id,
// tenant. Header values and bodies are never logged.
//
// Label values are bounded: routes come from the route table (or a few
// fixed names), methods outside the standard set become "other".
//
// Thread-safety: thread-safe.
#ifndef LUMOKEYS_GATEWAY_OBSERVABILITY_H_
#define LUMOKEYS_GATEWAY_OBSERVABILITY_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "gateway/gateway.h"
#include "server/observability/metrics.h"

namespace lumo::gateway {

class GatewayMetrics : public GatewayObserver {
 public:
  // `registry` must outlive this object.
  explicit GatewayMetrics(metrics::Registry& registry);

  Responder Observe(const RequestLabels& labels, Responder respond) override;
  void UpstreamError(grpc::StatusCode code) override;

 private:
  metrics::Counter& RequestsFor(absl::string_view route,
                                absl::string_view method, int status)
      ABSL_LOCKS_EXCLUDED(mu_);
  metrics::Histogram& LatencyFor(absl::string_view route,
                                 absl::string_view method)
      ABSL_LOCKS_EXCLUDED(mu_);

  metrics::Family<metrics::Counter>& requests_;
  metrics::Family<metrics::Histogram>& latency_;
  metrics::Family<metrics::Counter>& upstream_errors_;
  // Caches of the families' series by "route method [status]", so the
  // request path takes a reader lock instead of the family's mutex.
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, metrics::Counter*> requests_cache_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, metrics::Histogram*> latency_cache_
      ABSL_GUARDED_BY(mu_);
};

// The label for an HTTP method: itself for the standard methods, else
// "other".
absl::string_view MethodLabel(absl::string_view method);

}  // namespace lumo::gateway

#endif  // LUMOKEYS_GATEWAY_OBSERVABILITY_H_
