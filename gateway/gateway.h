// The request path of lumokeys-gateway: match a route from the proto
// annotations, build the request message, call the server through a generic
// stub with the caller's credential, render the reply or map the status to
// the documented error body. No per-route code, no business logic, no
// database: adding an endpoint is adding an annotated RPC.
#ifndef LUMOKEYS_GATEWAY_GATEWAY_H_
#define LUMOKEYS_GATEWAY_GATEWAY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/client_address.h"
#include "gateway/forwarding.h"
#include "gateway/http/http_message.h"
#include "gateway/portal.h"
#include "gateway/transcoding/route_table.h"
#include "gateway/upstream_queue.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/channel.h"
#include "grpcpp/generic/generic_stub.h"

namespace lumo::gateway {

// What the gateway tells an observer about
// each request it handles. The views are valid during Observe only.
struct RequestLabels {
  absl::string_view method;  // as sent
  absl::string_view route;   // the route template, or a fixed name for
                             // built-in and unmatched paths
  absl::string_view tenant;  // the tenant_slug path variable, if any
  absl::string_view request_id;
};

// Sees every request Gateway::Handle answers (metrics, access logs).
// Implementations must be thread-safe.
class GatewayObserver {
 public:
  virtual ~GatewayObserver() = default;
  // Called once per request before it is answered; returns the responder
  // the gateway answers through (normally one wrapping `respond`).
  virtual Responder Observe(const RequestLabels& labels, Responder respond) = 0;
  // An upstream (gRPC) call that did not end with OK.
  virtual void UpstreamError(grpc::StatusCode code) = 0;
};

struct GatewayOptions {
  // Services whose annotated methods become routes.
  std::vector<const google::protobuf::ServiceDescriptor*> services;
  std::shared_ptr<grpc::Channel> upstream;
  // Presented to the server as x-lumo-service-token so that it trusts the
  // forwarded client address; empty: not sent (a development set-up only:
  // lumokeys-gateway refuses to start without one unless told so). Must
  // be legal gRPC metadata (Create checks).
  std::string service_token;
  // Peers whose forwarding header names the client (client_address.h);
  // default: none, the TCP peer is the client. Needs a service token.
  TrustedProxies trusted_proxies;
  absl::Duration upstream_deadline = absl::Seconds(10);
  // Threads that complete unary upstream calls and answer them (render the
  // reply, write the HTTP response): UpstreamQueue. One keeps each reply
  // on the thread that read it; more spread rendering over cores at the
  // price of hand-offs between them.
  int upstream_threads = 1;
  // True when the gateway serves HTTPS (--tls_cert_file),
  // e.g. for Secure / __Host- cookies.
  bool serves_tls = false;
  // Borrowed, may be null; must outlive
  // the gateway and every call it has in flight.
  GatewayObserver* observer = nullptr;
  // The portal's pages (docs/portal.md; null: none are
  // served), and whether browsers reach the gateway over TLS (cookie flags
  // and the expected Origin scheme).
  std::shared_ptr<const Portal> portal;
  bool secure_cookies = false;
};

// The HTTP status and documented error code for a gRPC status code: the
// one table of the mapping (docs/product.md §3.1).
struct HttpError {
  int status;
  const char* code;
};
HttpError HttpErrorFor(grpc::StatusCode code);

// The documented error body: {"error": true, "status", "code", "message",
// "details": {...}}. details is {"field": `field`} for a validation_error
// about one field (`field` non-empty), else {}.
HttpResponse ErrorResponse(int status, absl::string_view code,
                           absl::string_view message,
                           absl::string_view field = {});

// An OAuth-style error body (RFC 6749 §5.2, RFC 7591 §3.2.2):
// {"error": code, "error_description": description}.
HttpResponse RfcErrorResponse(int status, absl::string_view code,
                              absl::string_view description);

// Every service of every LumoKeys proto file (lumo/proto_files.h), from the
// generated pool: what lumokeys-gateway routes (services without annotated
// methods contribute no routes). FAILED_PRECONDITION naming a file whose
// generated code is not linked in.
absl::StatusOr<std::vector<const google::protobuf::ServiceDescriptor*>>
LumoServices();

// Headers on every response of the gateway (security headers; CORS stays
// closed because no Access-Control-* header is ever sent).
HttpHeaders SecurityHeaders();

// Thread-safe: Handle may run concurrently on any number of threads. A
// request that needs no upstream call is answered on the calling thread;
// a unary upstream call is answered on a thread of the gateway's own
// UpstreamQueue, a streamed one on gRPC's callback threads (the responder
// must accept any thread).
//
// Destruction: ~Gateway cancels every upstream call still in flight and
// returns only after each of their callbacks has answered its responder
// (a cancelled call answers 503 service_unavailable), so nothing the
// gateway or its observer owns is used after the gateway is gone. Handle
// must not be called once destruction has begun.
class Gateway {
 public:
  ~Gateway();

  // INVALID_ARGUMENT / FAILED_PRECONDITION when the annotations do not form
  // a valid route table (e.g. two routes conflict), when the service token
  // is not legal gRPC metadata, or with trusted proxies but no service
  // token.
  static absl::StatusOr<std::unique_ptr<Gateway>> Create(
      GatewayOptions options);

  // Serves one request; responds exactly once, possibly from a gRPC thread.
  void Handle(HttpRequest request, Responder respond);

  const RouteTable& routes() const { return routes_; }
  const std::string& openapi_json() const { return openapi_json_; }

 private:
  // One upstream call (gateway.cc) and the set of those in flight.
  struct Call;
  class InFlightCalls;

  Gateway(GatewayOptions options, RouteTable routes, std::string openapi);
  void HandleHealth(HttpRequest request, Responder respond);
  // Serves a matched route (forwarding.h has the steps and their rules):
  // builds the request message, collects the call's metadata, calls the
  // method and answers with the rendered reply or error.
  void Forward(const Route& route, const Variables& variables,
               HttpRequest request, Responder respond);
  // Starts `call` (whose context, request and responder are set) on
  // upstream_queue_; OnCallDone gets its outcome.
  void StartUnary(std::shared_ptr<Call> call, const std::string& method);
  // On a thread of upstream_queue_: the answer to a finished unary call.
  void OnCallDone(const std::shared_ptr<Call>& call);
  // The end of every upstream call's completion: answers through the call's
  // responder and drops the call from in_flight_ (its last use of the
  // gateway).
  void Answer(const std::shared_ptr<Call>& call, HttpResponse response);

  const GatewayOptions options_;
  const RouteTable routes_;
  // The plan of each route, parallel to routes_.routes().
  const std::vector<RoutePlan> plans_;
  // From the protos' field marks: which reply fields are never rendered or
  // only when set.
  const RenderOptions render_options_;
  const ForwardingPolicy policy_;
  const std::string openapi_json_;
  grpc::GenericStub stub_;
  // Completes the unary calls; outlives them (declared before in_flight_,
  // whose calls ~Gateway waits for).
  const std::unique_ptr<UpstreamQueue> upstream_queue_;
  // The upstream calls whose callbacks have not finished yet.
  const std::unique_ptr<InFlightCalls> in_flight_;
};

}  // namespace lumo::gateway

#endif  // LUMOKEYS_GATEWAY_GATEWAY_H_
