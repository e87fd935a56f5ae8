#include "gateway/gateway.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "gateway/openapi.h"
#include "gateway/transcoding/json_render.h"
#include "gateway/transcoding/transcoder.h"
#include "google/protobuf/message.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "lumo/api/annotations.pb.h"
#include "lumo/proto_files.h"
#include "server/core/key_format.h"
#include "server/core/metadata_text.h"

namespace lumo::gateway {
namespace {

constexpr absl::string_view kJson = "application/json; charset=utf-8";

// The user agent reaches the server's audit events cut to this many bytes
// (after escaping).
constexpr size_t kMaxUserAgentBytes = 512;

// The most metadata one upstream call may carry, counted as gRPC counts it
// (name + value + 32 per entry). The server refuses a call whose metadata
// exceeds gRPC's default 8 KiB (RESOURCE_EXHAUSTED, which would read as
// 429); this leaves room for gRPC's own entries.
constexpr size_t kMaxUpstreamMetadataBytes = 6 * 1024;

// The metadata of one upstream call. gRPC aborts the process when a call
// carries a key or a (non-binary) value it refuses, so nothing reaches the
// ClientContext except through AttachTo, which checks every entry against
// gRPC's rule (core/metadata_text.h). Not thread-safe (one per call).
class UpstreamMetadata {
 public:
  // A value from the request forwarded byte for byte (a credential or a
  // token the server compares): false, and nothing added, when gRPC would
  // refuse it.
  bool AddVerbatim(absl::string_view key, absl::string_view value) {
    if (!core::IsLegalMetadataValue(value)) return false;
    Add(key, value);
    return true;
  }
  // A value the gateway made (or escaped) itself.
  void Add(absl::string_view key, absl::string_view value) {
    entries_.emplace_back(std::string(key), std::string(value));
  }
  // The size of all entries as gRPC accounts it.
  size_t AccountedBytes() const {
    size_t total = 0;
    for (const auto& [key, value] : entries_) {
      total += key.size() + value.size() + 32;
    }
    return total;
  }
  // Adds every entry to `context`; false, adding none, if any is illegal.
  bool AttachTo(grpc::ClientContext& context) const {
    for (const auto& [key, value] : entries_) {
      if (!core::IsLegalMetadataKey(key) ||
          !core::IsLegalMetadataValue(value)) {
        return false;
      }
    }
    for (const auto& [key, value] : entries_) context.AddMetadata(key, value);
    return true;
  }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

// The 400 message for a header that cannot be forwarded as it is.
std::string RefusedHeaderMessage(absl::string_view header) {
  return absl::StrCat(
      "the ", header,
      " header holds a character that is not allowed there (only printable "
      "ASCII and spaces are: no tabs, control characters or non-ASCII bytes)");
}

// Query parameter names that would carry a credential: refused outright so
// that keys never travel in URLs (and so never in access logs).
bool IsCredentialParameter(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  return lower == "api_key" || lower == "apikey" || lower == "api-key" ||
         lower == "key" || lower == "x-api-key" || lower == "access_token" ||
         lower == "token";
}

// A value that is a whole LumoKeys key (even with a bad checksum).
bool LooksLikeFullKey(absl::string_view value) {
  return core::ParseKey(value).result != core::KeyParseResult::kMalformed ||
         (absl::StartsWith(value, "lmk_") && value.size() >= 40);
}

bool IsJsonContentType(const std::string* value) {
  if (value == nullptr) return false;
  std::string v = absl::AsciiStrToLower(*value);
  absl::string_view type = v;
  absl::string_view params;
  if (size_t semi = type.find(';'); semi != absl::string_view::npos) {
    params = absl::StripAsciiWhitespace(type.substr(semi + 1));
    type = type.substr(0, semi);
  }
  type = absl::StripAsciiWhitespace(type);
  if (type != "application/json") return false;
  if (params.empty()) return true;
  std::string p(params);
  p.erase(std::remove(p.begin(), p.end(), ' '), p.end());
  return p == "charset=utf-8";
}

std::string BufferToString(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

std::string Metadata(
    const std::multimap<grpc::string_ref, grpc::string_ref>& md,
    absl::string_view key) {
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// One-time secrets (the full key in create/rotate replies) appear only when
// set: Get and List never show a `key` member at all.
const RenderOptions& SecretFieldOptions() {
  static const RenderOptions* options = [] {
    auto* o = new RenderOptions;
    o->omit_fields_when_unset = {"lumo.keys.v1.ApiKey.key",
                                 "lumo.admin.v1.OAuthClient.client_secret",
                                 // Only on replies that asked for one.
                                 "lumo.api.PageMeta.next_cursor"};
    // The session token and CSRF token travel only as
    // cookies (portal.h), never in a body.
    o->omit_fields = {"lumo.portal.v1.LoginResponse.session_token",
                      "lumo.portal.v1.LoginResponse.csrf_token"};
    return o;
  }();
  return *options;
}

// Copies the server's per-key rate-limit metadata to X-RateLimit-* headers.
void AddRateLimitHeaders(const grpc::ClientContext& context,
                         HttpResponse& response) {
  const auto& md = context.GetServerInitialMetadata();
  for (const auto& [name, header] :
       {std::pair<const char*, const char*>{"x-ratelimit-limit",
                                            "X-RateLimit-Limit"},
        {"x-ratelimit-remaining", "X-RateLimit-Remaining"},
        {"x-ratelimit-reset", "X-RateLimit-Reset"}}) {
    std::string value = Metadata(md, name);
    if (!value.empty()) response.headers.emplace_back(header, value);
  }
}

// A reply of type lumo.api.HttpBody: `data` as the body, with its content
// type (printable ASCII, else application/octet-stream) and, when a filename
// is given, a download disposition with the name cut to [A-Za-z0-9._-].
void RenderHttpBody(const lumo::api::HttpBody& body, HttpResponse& response) {
  std::string type = body.content_type();
  for (char c : type) {
    if (c < 0x20 || c > 0x7e) {
      type.clear();
      break;
    }
  }
  if (type.empty()) type = "application/octet-stream";
  response.headers.emplace_back("Content-Type", type);
  if (!body.filename().empty()) {
    std::string name = body.filename().substr(0, 128);
    for (char& c : name) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
          c != '_' && c != '-') {
        c = '_';
      }
    }
    response.headers.emplace_back(
        "Content-Disposition",
        absl::StrCat("attachment; filename=\"", name, "\""));
  }
  response.body = body.data();
}

// Everything one upstream call needs to stay alive until its callback.
struct Call {
  grpc::ClientContext context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer reply;
  Responder respond;
  const Route* route = nullptr;
  // For the session cookies of the reply.
  std::string tenant_slug;
  bool secure_cookies = false;
};

}  // namespace

HttpError HttpErrorFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return {400, "validation_error"};
    case grpc::StatusCode::FAILED_PRECONDITION:
      return {400, "invalid_request"};
    case grpc::StatusCode::UNAUTHENTICATED:
      return {401, "invalid_token"};
    case grpc::StatusCode::PERMISSION_DENIED:
      return {403, "insufficient_scope"};
    case grpc::StatusCode::NOT_FOUND:
      return {404, "resource_not_found"};
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::ABORTED:
      return {409, "duplicate_resource"};
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return {429, "rate_limit_exceeded"};
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
      return {503, "service_unavailable"};
    case grpc::StatusCode::UNIMPLEMENTED:
      return {501, "internal_error"};
    default:
      return {500, "internal_error"};
  }
}

std::string FieldOfValidationMessage(absl::string_view message) {
  // `... field "x" ...` / `... parameter "x" ...` (the transcoder's form).
  for (absl::string_view marker : {"field \"", "parameter \""}) {
    size_t at = message.find(marker);
    if (at == absl::string_view::npos) continue;
    absl::string_view rest = message.substr(at + marker.size());
    size_t end = rest.find('"');
    if (end != absl::string_view::npos && end > 0 && end <= 100) {
      return std::string(rest.substr(0, end));
    }
  }
  // `x: ...` or `x must|is|contains|has ...` (the services' form).
  size_t n = 0;
  while (n < message.size() && n < 100 &&
         (absl::ascii_isalnum(static_cast<unsigned char>(message[n])) ||
          message[n] == '_' || message[n] == '.' || message[n] == '[' ||
          message[n] == ']')) {
    ++n;
  }
  if (n == 0) return "";
  absl::string_view rest = message.substr(n);
  for (absl::string_view follow :
       {":", " must ", " is ", " contains ", " has ", " needs "}) {
    if (absl::StartsWith(rest, follow))
      return std::string(message.substr(0, n));
  }
  return "";
}

HttpResponse ErrorResponse(int status, absl::string_view code,
                           absl::string_view message) {
  HttpResponse response;
  response.status = status;
  response.headers.emplace_back("Content-Type", std::string(kJson));
  std::string details = "{}";
  if (code == "validation_error") {
    std::string field = FieldOfValidationMessage(message);
    if (!field.empty())
      details = absl::StrCat("{\"field\":", JsonQuote(field), "}");
  }
  response.body = absl::StrCat(
      "{\"error\":true,\"status\":", status, ",\"code\":", JsonQuote(code),
      ",\"message\":", JsonQuote(message), ",\"details\":", details, "}");
  return response;
}

HttpResponse RfcErrorResponse(int status, absl::string_view code,
                              absl::string_view description) {
  HttpResponse response;
  response.status = status;
  response.headers.emplace_back("Content-Type", std::string(kJson));
  response.body =
      absl::StrCat("{\"error\":", JsonQuote(code),
                   ",\"error_description\":", JsonQuote(description), "}");
  return response;
}

absl::StatusOr<std::vector<const google::protobuf::ServiceDescriptor*>>
LumoServices() {
  std::vector<const google::protobuf::ServiceDescriptor*> services;
  for (const char* name : lumo::kProtoFiles) {
    const google::protobuf::FileDescriptor* file =
        google::protobuf::DescriptorPool::generated_pool()->FindFileByName(
            name);
    if (file == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("proto file not linked: ", name));
    }
    for (int i = 0; i < file->service_count(); ++i) {
      services.push_back(file->service(i));
    }
  }
  return services;
}

HttpHeaders SecurityHeaders() {
  return {
      {"X-Content-Type-Options", "nosniff"},
      {"Referrer-Policy", "no-referrer"},
      {"Cache-Control", "no-store"},
      {"X-Frame-Options", "DENY"},
      {"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"},
  };
}

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Create(
    GatewayOptions options) {
  if (!core::IsLegalMetadataValue(options.service_token)) {
    return absl::InvalidArgumentError(
        "the service token holds characters gRPC metadata cannot carry "
        "(only printable ASCII is allowed)");
  }
  if (!options.trusted_proxies.empty() && options.service_token.empty()) {
    return absl::FailedPreconditionError(
        "trusted proxies need a service token: without one the server does "
        "not accept the forwarded client address");
  }
  absl::StatusOr<RouteTable> routes = RouteTable::Build(options.services);
  if (!routes.ok()) return routes.status();
  std::string openapi = BuildOpenApiDocument(*routes);
  return std::unique_ptr<Gateway>(
      new Gateway(std::move(options), *std::move(routes), std::move(openapi)));
}

Gateway::Gateway(GatewayOptions options, RouteTable routes, std::string openapi)
    : options_(std::move(options)),
      routes_(std::move(routes)),
      openapi_json_(std::move(openapi)),
      stub_(options_.upstream) {}

void Gateway::Handle(HttpRequest request, Responder respond) {
  // Hands the request's labels to the
  // observer, which may wrap the responder.
  auto observe = [&](absl::string_view route, absl::string_view tenant) {
    if (options_.observer == nullptr) return;
    respond = options_.observer->Observe(
        RequestLabels{request.method, route, tenant, request.request_id},
        std::move(respond));
  };
  // The portal's static pages and assets.
  if (options_.portal != nullptr) {
    if (std::optional<HttpResponse> page = options_.portal->Serve(request)) {
      respond(*std::move(page));
      return;
    }
  }
  // Routes that do not reach the server.
  if (request.method == "GET" || request.method == "HEAD") {
    if (request.path == "/livez") {
      observe("/livez", "");
      // Liveness of the gateway process alone: no upstream call.
      HttpResponse response;
      response.headers.emplace_back("Content-Type", std::string(kJson));
      response.body = "{\"status\":\"ok\"}";
      respond(std::move(response));
      return;
    }
    if (request.path == "/healthz") {
      observe("/healthz", "");
      HandleHealth(std::move(request), std::move(respond));
      return;
    }
    if (request.path == "/openapi.json" ||
        (absl::StartsWith(request.path, "/t/") &&
         absl::EndsWith(request.path, "/api/v1/openapi.json") &&
         std::count(request.path.begin(), request.path.end(), '/') == 5)) {
      observe(request.path == "/openapi.json"
                  ? "/openapi.json"
                  : "/t/{tenant_slug}/api/v1/openapi.json",
              "");
      HttpResponse response;
      response.headers.emplace_back("Content-Type", std::string(kJson));
      response.body = openapi_json_;
      respond(std::move(response));
      return;
    }
  }

  MatchResult match = routes_.Match(request.method, request.path);
  if (match.outcome == MatchOutcome::kMatched) {
    absl::string_view tenant;
    for (const auto& [name, value] : match.variables) {
      if (name == "tenant_slug") tenant = value;
    }
    observe(match.route->path.text(), tenant);
  } else {
    observe("unmatched", "");
  }
  switch (match.outcome) {
    case MatchOutcome::kMatched:
      Forward(*match.route, match.variables, std::move(request),
              std::move(respond));
      return;
    case MatchOutcome::kMalformedPath:
      respond(ErrorResponse(400, "invalid_request", match.error));
      return;
    case MatchOutcome::kNotFound:
      respond(ErrorResponse(404, "resource_not_found", "no such endpoint"));
      return;
    case MatchOutcome::kMethodNotAllowed: {
      HttpResponse response = ErrorResponse(
          405, "invalid_request", "method not allowed on this endpoint");
      response.headers.emplace_back("Allow",
                                    absl::StrJoin(match.allowed_verbs, ", "));
      respond(std::move(response));
      return;
    }
  }
}

void Gateway::HandleHealth(HttpRequest request, Responder respond) {
  auto call = std::make_shared<Call>();
  call->respond = std::move(respond);
  call->context.set_deadline(std::chrono::system_clock::now() +
                             std::chrono::seconds(2));
  // grpc.health.v1.HealthCheckRequest{service: ""} is the empty message.
  grpc::Slice empty("");
  call->request = grpc::ByteBuffer(&empty, 1);
  stub_.UnaryCall(
      &call->context, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
      &call->request, &call->reply, [call](grpc::Status status) {
        // HealthCheckResponse{status: SERVING} is field 1 = 1.
        const bool serving =
            status.ok() && BufferToString(call->reply) == "\x08\x01";
        HttpResponse response;
        response.status = serving ? 200 : 503;
        response.headers.emplace_back("Content-Type", std::string(kJson));
        response.body =
            absl::StrCat("{\"status\":\"", serving ? "ok" : "unavailable",
                         "\",\"gateway\":\"ok\",\"upstream\":\"",
                         serving ? "serving" : "not_serving", "\"}");
        call->respond(std::move(response));
      });
}

void Gateway::Forward(const Route& route, const Variables& variables,
                      HttpRequest request, Responder respond) {
  // Errors found here use the route's error style; on OAuth-style routes a
  // malformed request is invalid_client_metadata (RFC 7591 §3.2.2).
  const bool rfc =
      route.method->options().GetExtension(lumo::api::http).rfc_style();
  auto fail = [&](int status, absl::string_view code,
                  absl::string_view message) {
    if (rfc) {
      respond(RfcErrorResponse(
          status, status == 400 ? "invalid_client_metadata" : code, message));
    } else {
      respond(ErrorResponse(status, code, message));
    }
  };
  absl::StatusOr<QueryParams> query = ParseQueryString(request.query);
  if (!query.ok()) {
    fail(400, "validation_error", query.status().message());
    return;
  }
  for (const auto& [name, value] : *query) {
    if (IsCredentialParameter(name) || LooksLikeFullKey(value)) {
      fail(400, "invalid_request",
           "API keys are not accepted in the URL; send them in the "
           "Authorization or X-API-Key header");
      return;
    }
  }
  if (!request.body.empty() &&
      !IsJsonContentType(request.Header("content-type"))) {
    fail(415, "unsupported_media_type",
         "request bodies must be application/json");
    return;
  }

  const google::protobuf::Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(
          route.method->input_type());
  std::unique_ptr<google::protobuf::Message> message(prototype->New());
  if (absl::Status built =
          BuildRequest(route, variables, *query, request.body, message.get());
      !built.ok()) {
    fail(400, "validation_error", built.message());
    return;
  }

  // [client address] (docs/gateway.md): from the forwarding header only
  // when the TCP peer is a trusted proxy.
  std::string client_ip = request.remote_ip;
  if (!options_.trusted_proxies.empty()) {
    absl::StatusOr<std::string> client = options_.trusted_proxies.ClientAddress(
        request.remote_ip,
        request.Headers(options_.trusted_proxies.header_key()));
    if (!client.ok()) {
      fail(400, "invalid_request", client.status().message());
      return;
    }
    client_ip = *std::move(client);
  }

  // [headers forwarded as metadata] (docs/gateway.md): credentials and
  // tokens verbatim, or the request is refused; descriptive text escaped;
  // the rest is the gateway's own.
  UpstreamMetadata metadata;
  for (absl::string_view value : request.Headers("authorization")) {
    if (!metadata.AddVerbatim("authorization", value)) {
      fail(400, "invalid_request", RefusedHeaderMessage("Authorization"));
      return;
    }
  }
  for (absl::string_view value : request.Headers("x-api-key")) {
    if (!metadata.AddVerbatim("x-api-key", value)) {
      fail(400, "invalid_request", RefusedHeaderMessage("X-API-Key"));
      return;
    }
  }
  if (!options_.service_token.empty()) {
    metadata.Add("x-lumo-service-token", options_.service_token);
    metadata.Add("x-lumo-client-ip", client_ip);
    // For the server's audit events: the HTTP call as routed.
    metadata.Add("x-lumo-http-method", route.verb);
    metadata.Add("x-lumo-http-route", route.path.text());
    if (const std::string* agent = request.Header("user-agent")) {
      metadata.Add("x-lumo-user-agent",
                   core::EscapeMetadataValue(*agent, kMaxUserAgentBytes));
    }
  }
  metadata.Add("x-request-id", request.request_id);

  // The session cookie becomes `x-lumo-session`
  // on routes that admit sessions, unless a key is presented; cookie-borne
  // writes and logins must come from our own pages (docs/portal.md).
  std::string tenant_slug = TenantSlugOfPath(request.path);
  {
    const lumo::api::HttpRule& http_rule =
        route.method->options().GetExtension(lumo::api::http);
    const lumo::api::AccessRule& access =
        route.method->options().GetExtension(lumo::api::access);
    bool admits_session = false;
    for (int p : access.principals()) {
      admits_session |= p == lumo::api::PRINCIPAL_SESSION;
    }
    const bool key_presented = request.Header("authorization") != nullptr ||
                               request.Header("x-api-key") != nullptr;
    std::optional<std::string> session;
    if (admits_session && !key_presented && !tenant_slug.empty()) {
      session = CookieValue(
          request, SessionCookieName(tenant_slug, options_.secure_cookies));
    }
    const bool write = request.method != "GET" && request.method != "HEAD";
    if ((session.has_value() && write) ||
        http_rule.session_cookie() == lumo::api::SESSION_COOKIE_SET) {
      if (std::string refused =
              CheckBrowserWrite(request, options_.secure_cookies);
          !refused.empty()) {
        respond(ErrorResponse(403, "permission_denied", refused));
        return;
      }
    }
    if (session.has_value()) {
      metadata.Add("x-lumo-session", *session);
      if (const std::string* csrf = request.Header("x-csrf-token")) {
        if (!metadata.AddVerbatim("x-lumo-csrf-token", csrf->substr(0, 128))) {
          fail(400, "invalid_request", RefusedHeaderMessage("X-CSRF-Token"));
          return;
        }
      }
    }
  }

  if (metadata.AccountedBytes() > kMaxUpstreamMetadataBytes) {
    fail(431, "header_too_large",
         "the credential, session and CSRF headers are too large to forward");
    return;
  }

  auto call = std::make_shared<Call>();
  call->route = &route;
  call->tenant_slug = std::move(tenant_slug);
  call->secure_cookies = options_.secure_cookies;
  grpc::ClientContext& ctx = call->context;
  if (!metadata.AttachTo(ctx)) {
    // Unreachable: every entry above is legal by construction. Refusing
    // beats gRPC's abort of the whole process.
    respond(ErrorResponse(500, "internal_error", "internal error"));
    return;
  }
  call->respond = std::move(respond);
  ctx.set_deadline(std::chrono::system_clock::now() +
                   absl::ToChronoMilliseconds(options_.upstream_deadline));

  std::string bytes = message->SerializeAsString();
  grpc::Slice slice(bytes);
  call->request = grpc::ByteBuffer(&slice, 1);
  const std::string rpc_name = absl::StrCat(
      "/", route.method->service()->full_name(), "/", route.method->name());
  stub_.UnaryCall(
      &ctx, rpc_name, grpc::StubOptions(), &call->request, &call->reply,
      [call, observer = options_.observer](grpc::Status status) {
        if (!status.ok() && observer != nullptr) {
          observer->UpstreamError(status.error_code());
        }
        const Route& route = *call->route;
        const bool rfc =
            route.method->options().GetExtension(lumo::api::http).rfc_style();
        if (!status.ok() && rfc) {
          HttpError error = HttpErrorFor(status.error_code());
          std::string code = Metadata(call->context.GetServerTrailingMetadata(),
                                      "lumo-error-code");
          if (code.empty()) code = error.code;
          HttpResponse response =
              RfcErrorResponse(error.status, code,
                               error.status >= 500 && error.status != 503
                                   ? "internal error"
                                   : status.error_message());
          if (error.status == 429) {
            std::string retry = Metadata(
                call->context.GetServerTrailingMetadata(), "retry-after");
            response.headers.emplace_back("Retry-After",
                                          retry.empty() ? "60" : retry);
          }
          call->respond(std::move(response));
          return;
        }
        if (!status.ok()) {
          HttpError error = HttpErrorFor(status.error_code());
          std::string code = Metadata(call->context.GetServerTrailingMetadata(),
                                      "lumo-error-code");
          if (code.empty()) code = error.code;
          std::string message = status.error_message();
          if (error.status >= 500 && error.status != 503) {
            message = "internal error";
          }
          HttpResponse response = ErrorResponse(error.status, code, message);
          // A refused logout still forgets
          // the (stale) cookies.
          if (route.method->options()
                      .GetExtension(lumo::api::http)
                      .session_cookie() == lumo::api::SESSION_COOKIE_CLEAR &&
              !call->tenant_slug.empty()) {
            ClearSessionCookies(call->tenant_slug, call->secure_cookies,
                                response);
          }
          if (error.status == 429) {
            std::string retry = Metadata(
                call->context.GetServerTrailingMetadata(), "retry-after");
            response.headers.emplace_back("Retry-After",
                                          retry.empty() ? "60" : retry);
          }
          AddRateLimitHeaders(call->context, response);
          call->respond(std::move(response));
          return;
        }
        const google::protobuf::Message* reply_type =
            google::protobuf::MessageFactory::generated_factory()->GetPrototype(
                route.method->output_type());
        std::unique_ptr<google::protobuf::Message> reply(reply_type->New());
        if (!reply->ParseFromString(BufferToString(call->reply))) {
          call->respond(ErrorResponse(500, "internal_error", "internal error"));
          return;
        }
        HttpResponse response;
        response.status = route.success_status;
        AddRateLimitHeaders(call->context, response);
        // Session cookies.
        switch (route.method->options()
                    .GetExtension(lumo::api::http)
                    .session_cookie()) {
          case lumo::api::SESSION_COOKIE_SET:
            SetSessionCookies(call->tenant_slug, call->secure_cookies, *reply,
                              response);
            break;
          case lumo::api::SESSION_COOKIE_CLEAR:
            ClearSessionCookies(call->tenant_slug, call->secure_cookies,
                                response);
            break;
          default:
            break;
        }
        if (route.method->output_type() == lumo::api::HttpBody::descriptor()) {
          // Not JSON (e.g. a CSV export): the bytes themselves.
          // The generated factory's prototype of a generated
          // type is that type.
          RenderHttpBody(static_cast<const lumo::api::HttpBody&>(*reply),
                         response);
        } else if (rfc) {
          // RFC 7591 & co: the message itself, snake_case.
          google::protobuf::util::JsonPrintOptions options;
          options.preserve_proto_field_names = true;
          options.always_print_primitive_fields = true;
          response.headers.emplace_back("Content-Type", std::string(kJson));
          (void)google::protobuf::util::MessageToJsonString(
              *reply, &response.body, options);
        } else if (route.success_status != 204) {
          response.headers.emplace_back("Content-Type", std::string(kJson));
          response.body = RenderEnvelope(route, *reply, SecretFieldOptions());
        }
        call->respond(std::move(response));
      });
}

}  // namespace lumo::gateway
