#include "gateway/observability.h"

#include <chrono>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/observability/log.h"

namespace lumo::gateway {
namespace {

// Same bound as the server's access log.
constexpr size_t kMaxTenantInLog = 64;

}  // namespace

absl::string_view MethodLabel(absl::string_view method) {
  for (absl::string_view known :
       {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
    if (method == known) return known;
  }
  return "other";
}

GatewayMetrics::GatewayMetrics(metrics::Registry& registry)
    : requests_(registry.AddCounter(
          "lumo_gateway_requests_total",
          "HTTP requests answered by the gateway's handler, by route "
          "template, method and status",
          {"route", "method", "status"})),
      latency_(registry.AddHistogram(
          "lumo_gateway_request_duration_seconds",
          "Time from a request reaching the handler to its response, by "
          "route template and method",
          {"route", "method"}, metrics::LatencyBuckets())),
      upstream_errors_(registry.AddCounter(
          "lumo_gateway_upstream_errors_total",
          "Calls to lumokeys-server that did not end with OK, by gRPC code "
          "(UNAVAILABLE and DEADLINE_EXCEEDED: the server is unreachable or "
          "slow; the others are its answers)",
          {"code"})) {}

metrics::Counter& GatewayMetrics::RequestsFor(absl::string_view route,
                                              absl::string_view method,
                                              int status) {
  const std::string key = absl::StrCat(route, " ", method, " ", status);
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = requests_cache_.find(key);
    if (it != requests_cache_.end()) return *it->second;
  }
  metrics::Counter& c =
      requests_.WithLabels({route, method, absl::StrCat(status)});
  absl::MutexLock lock(&mu_);
  requests_cache_.emplace(key, &c);
  return c;
}

metrics::Histogram& GatewayMetrics::LatencyFor(absl::string_view route,
                                               absl::string_view method) {
  const std::string key = absl::StrCat(route, " ", method);
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = latency_cache_.find(key);
    if (it != latency_cache_.end()) return *it->second;
  }
  metrics::Histogram& h = latency_.WithLabels({route, method});
  absl::MutexLock lock(&mu_);
  latency_cache_.emplace(key, &h);
  return h;
}

Responder GatewayMetrics::Observe(const RequestLabels& labels,
                                  Responder respond) {
  struct State {
    std::string route;
    std::string method;
    std::string tenant;
    std::string request_id;
    std::chrono::steady_clock::time_point start;
  };
  auto state = std::make_shared<State>();
  state->route = std::string(labels.route);
  state->method = std::string(MethodLabel(labels.method));
  state->tenant = std::string(labels.tenant.substr(0, kMaxTenantInLog));
  state->request_id = std::string(labels.request_id);
  state->start = std::chrono::steady_clock::now();
  return [this, state, respond = std::move(respond)](HttpResponse response) {
    const double seconds = std::chrono::duration<double>(
                               std::chrono::steady_clock::now() - state->start)
                               .count();
    const int status = response.status;
    // Counted before the client can see the response, so a client that
    // scrapes after its response always finds its request counted.
    RequestsFor(state->route, state->method, status).Increment();
    LatencyFor(state->route, state->method).Observe(seconds);
    respond(std::move(response));
    log::Line(log::Level::kInfo, "http")
        .Str("method", state->method)
        .Str("route", state->route)
        .Int("status", status)
        .Num("latency_ms", seconds * 1e3)
        .Str("request_id", state->request_id)
        .Str("tenant", state->tenant);
  };
}

void GatewayMetrics::UpstreamError(grpc::StatusCode code) {
  upstream_errors_.WithLabels({metrics::GrpcCodeName(static_cast<int>(code))})
      .Increment();
}

}  // namespace lumo::gateway
