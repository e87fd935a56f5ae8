// The steps of forwarding one REST request to its RPC (Gateway::Forward), in
// the order they run:
//   1. BuildRequestMessage: the request message from the path, query and
//      body, after the checks that keep keys out of URLs;
//   2. CollectUpstreamMetadata: what the call carries besides the message
//      (the caller's credential, the portal session, the client's address
//      and user agent, the request id), with the header-safety rules;
//   3. RenderUpstreamError or 4. RenderReply: the HTTP answer for the
//      call's outcome.
// Each step reads only its arguments and the route's plan (resolved once at
// start-up); none calls the server. Thread-safe: the functions share no
// state, and a RoutePlan is immutable.
#ifndef LUMOKEYS_GATEWAY_FORWARDING_H_
#define LUMOKEYS_GATEWAY_FORWARDING_H_

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "gateway/client_address.h"
#include "gateway/http/http_message.h"
#include "gateway/transcoding/json_render.h"
#include "gateway/transcoding/route_table.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"
#include "lumo/api/annotations.pb.h"

namespace lumo::gateway {

// What forwarding needs of one route, read from its method's descriptors
// and annotations once, at start-up.
struct RoutePlan {
  const Route* route = nullptr;
  // The gRPC method path, "/<service full name>/<method name>".
  std::string rpc_path;
  // Generated prototypes of the request and reply types.
  const google::protobuf::Message* request_prototype = nullptr;
  const google::protobuf::Message* reply_prototype = nullptr;
  // OAuth-style route (RestRule.rfc_style): errors are {"error",
  // "error_description"} and replies the message itself, snake_case.
  bool rfc_style = false;
  lumo::api::SessionCookie session_cookie = lumo::api::SESSION_COOKIE_NONE;
  // The route admits a portal session (AccessRule.principals).
  bool admits_session = false;
  // The reply is a lumo.api.HttpBody: raw bytes, not JSON.
  bool http_body_reply = false;
  // The method streams HttpBody messages: the reply is rendered from the
  // first and the rest of the body is streamed (docs/gateway.md).
  bool server_streaming = false;
  // The request body is a lumo.api.HttpBody field: the raw bytes are
  // forwarded as they came (any content type), not parsed as JSON.
  const google::protobuf::FieldDescriptor* raw_body_field = nullptr;
  // Request headers forwarded verbatim (RestRule.forward_headers).
  std::vector<std::string> forward_headers;
};

// The plan of `route`, whose descriptors come from the generated pool.
RoutePlan PlanRoute(const Route& route);

// A request the gateway answers itself, without calling the server.
struct Refusal {
  int status = 400;
  std::string code;
  std::string message;
  // For a validation error about one request field: its name, shown as
  // details.field.
  std::string field;
  // False: the documented error body even on an OAuth-style route (a
  // refusal that is not about the request's content).
  bool in_route_style = true;
};

// The error body of `refusal` in the route's style: the documented body, or
// on OAuth-style routes {"error", "error_description"}, where any 400 is
// invalid_client_metadata (RFC 7591 §3.2.2).
HttpResponse RefusalResponse(const RoutePlan& plan, const Refusal& refusal);

// Step 1. Fills `message` (of the route's input type) from `request`. Refused
// before any binding: a query string that does not parse (400
// validation_error), a query parameter that names a credential or holds a
// whole key (400 invalid_request: keys never travel in URLs), a body that
// is not application/json (415). Then BuildRequest (transcoder.h): its
// errors are 400 validation_error naming the field they are about. On a
// raw-body route (plan.raw_body_field) the body and its Content-Type go
// into that HttpBody field as they are, unparsed.
std::optional<Refusal> BuildRequestMessage(const RoutePlan& plan,
                                           const Variables& variables,
                                           const HttpRequest& request,
                                           google::protobuf::Message* message);
std::optional<Refusal> BuildRequestMessage(const Route& route,
                                           const Variables& variables,
                                           const HttpRequest& request,
                                           google::protobuf::Message* message);

// The metadata of one upstream call. gRPC aborts the process when a call
// carries a key or a (non-binary) value it refuses, so nothing reaches the
// ClientContext except through AttachTo, which checks every entry against
// gRPC's rule (core/metadata_text.h). Not thread-safe (one per call).
class UpstreamMetadata {
 public:
  // A value from the request forwarded byte for byte (a credential or a
  // token the server compares): false, and nothing added, when gRPC would
  // refuse it.
  bool AddVerbatim(absl::string_view key, absl::string_view value);
  // A value the gateway made (or escaped) itself.
  void Add(absl::string_view key, absl::string_view value);
  // The size of all entries as gRPC accounts it (name + value + 32 each).
  size_t AccountedBytes() const;
  // Adds every entry to `context`; false, adding none, if any is illegal.
  bool AttachTo(grpc::ClientContext& context) const;

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

// How the gateway vouches for what it forwards (from GatewayOptions).
struct ForwardingPolicy {
  // Sent as x-lumo-service-token; empty: not sent, and neither are the
  // client facts the server would only trust with it.
  std::string service_token;
  // Peers whose forwarding header names the client; null or empty: none.
  const TrustedProxies* trusted_proxies = nullptr;
  // Browsers reach the gateway over TLS (cookie names, expected Origin).
  bool secure_cookies = false;
};

// Step 2. The metadata of the call for `request` on `plan`'s route
// (docs/gateway.md, "headers forwarded as metadata"):
//   * Authorization and X-API-Key verbatim, or 400 invalid_request naming
//     the header when gRPC could not carry a value as it is;
//   * with a service token: the token, the client address (from the
//     forwarding header only when the TCP peer is a trusted proxy; 400
//     invalid_request when that header is unusable), the routed method and
//     template, and the user agent escaped and cut to 512 bytes;
//   * the request id;
//   * the route's forward_headers verbatim, or 400 invalid_request naming
//     the header;
//   * on routes that admit sessions, when no key is presented: the
//     tenant's session cookie as x-lumo-session and X-CSRF-Token (first 128
//     bytes, verbatim or 400) as x-lumo-csrf-token. A cookie-borne write and
//     every login must come from the gateway's own pages (CheckBrowserWrite:
//     403 permission_denied, in the documented style on every route);
//   * 431 header_too_large when all of it exceeds what the server accepts.
// `tenant_slug` is the path's tenant ("" when none).
std::optional<Refusal> CollectUpstreamMetadata(const RoutePlan& plan,
                                               const HttpRequest& request,
                                               absl::string_view tenant_slug,
                                               const ForwardingPolicy& policy,
                                               UpstreamMetadata* metadata);

// What the server said about a failed call: the REST code (its
// `lumo-error-code` trailer, else the default for the gRPC code) and the
// invalid field (from the lumo.api.ErrorDetail in the status details; ""
// when none or when the details do not parse).
struct UpstreamError {
  int http_status = 500;
  std::string code;
  std::string field;
  std::string message;
};
UpstreamError ReadUpstreamError(const grpc::Status& status,
                                const grpc::ClientContext& context);

// Step 3. The answer to a call that failed with `status`: the route's error
// style; server-side failures other than 503 say only "internal error"; 429
// gets Retry-After (the server's, else 60). On documented-style routes
// also: the X-RateLimit-* headers the server sent, and on a logout route
// cleared session cookies (a refused logout still forgets stale cookies).
HttpResponse RenderUpstreamError(const RoutePlan& plan,
                                 const grpc::Status& status,
                                 const grpc::ClientContext& context,
                                 absl::string_view tenant_slug,
                                 bool secure_cookies);

// Step 4. The answer to a call that succeeded with `reply_bytes`: the
// route's success status, X-RateLimit-* headers, session cookies set or
// cleared as the route says, and the body: an HttpBody's bytes as they are,
// an OAuth-style reply as the message itself, otherwise the envelope
// rendered with `render_options` (no body for 204). 500 internal_error if
// the bytes are not a reply of the route's type.
HttpResponse RenderReply(const RoutePlan& plan, const std::string& reply_bytes,
                         const grpc::ClientContext& context,
                         absl::string_view tenant_slug, bool secure_cookies,
                         const RenderOptions& render_options);

// The rendering rules the protos' field marks ((lumo.api.field), FieldRule)
// ask for, for every message type reachable from the replies of `services`:
// SECRET_NEVER_SHOWN fields are never rendered; SECRET_SHOWN_ONCE and
// omit_when_unset fields only when set.
RenderOptions RenderOptionsFromFieldRules(
    const std::vector<const google::protobuf::ServiceDescriptor*>& services);

}  // namespace lumo::gateway

#endif  // LUMOKEYS_GATEWAY_FORWARDING_H_
