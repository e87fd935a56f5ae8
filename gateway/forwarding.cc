#include "gateway/forwarding.h"

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gateway/gateway.h"
#include "gateway/portal.h"
#include "gateway/transcoding/transcoder.h"
#include "google/protobuf/util/json_util.h"
#include "server/core/field_error.h"
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

// The 400 message for a header that cannot be forwarded as it is.
std::string RefusedHeaderMessage(absl::string_view header) {
  return absl::StrCat(
      "the ", header,
      " header holds a character that is not allowed there (only printable "
      "ASCII and spaces are: no tabs, control characters or non-ASCII bytes)");
}

Refusal RefusedHeader(absl::string_view header) {
  return Refusal{400, "invalid_request", RefusedHeaderMessage(header)};
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

std::string Metadata(
    const std::multimap<grpc::string_ref, grpc::string_ref>& md,
    absl::string_view key) {
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// Copies the server's per-key rate-limit and credits metadata to the
// X-RateLimit-* and X-Credits-* headers.
void AddRateLimitHeaders(const grpc::ClientContext& context,
                         HttpResponse& response) {
  const auto& md = context.GetServerInitialMetadata();
  for (const auto& [name, header] :
       {std::pair<const char*, const char*>{"x-ratelimit-limit",
                                            "X-RateLimit-Limit"},
        {"x-ratelimit-remaining", "X-RateLimit-Remaining"},
        {"x-ratelimit-reset", "X-RateLimit-Reset"},
        {"x-credits-remaining", "X-Credits-Remaining"},
        {"x-credits-reset", "X-Credits-Reset"}}) {
    std::string value = Metadata(md, name);
    if (!value.empty()) response.headers.emplace_back(header, value);
  }
}

// Retry-After on a 429: the server's, else a minute.
void AddRetryAfter(const grpc::ClientContext& context, HttpResponse& response) {
  std::string retry =
      Metadata(context.GetServerTrailingMetadata(), "retry-after");
  response.headers.emplace_back("Retry-After", retry.empty() ? "60" : retry);
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

// The field of the lumo.api.ErrorDetail in a status's details, or "".
std::string InvalidFieldOfDetails(const std::string& details_bytes) {
  if (details_bytes.empty()) return "";
  lumo::api::ErrorStatus details;
  if (!details.ParseFromString(details_bytes)) return "";
  lumo::api::ErrorDetail detail;
  for (const google::protobuf::Any& any : details.details()) {
    if (any.UnpackTo(&detail)) return detail.field();
  }
  return "";
}

// Adds the fields of `type` and of every message type reachable from it to
// `options` according to their marks; `seen` stops cycles.
void CollectFieldRules(
    const google::protobuf::Descriptor* type,
    absl::flat_hash_set<const google::protobuf::Descriptor*>& seen,
    RenderOptions& options) {
  if (!seen.insert(type).second) return;
  for (int i = 0; i < type->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = type->field(i);
    const lumo::api::FieldRule& rule =
        field->options().GetExtension(lumo::api::field);
    if (rule.secret() == lumo::api::SECRET_NEVER_SHOWN) {
      options.omit_fields.insert(field->full_name());
    } else if (rule.secret() == lumo::api::SECRET_SHOWN_ONCE ||
               rule.omit_when_unset()) {
      options.omit_fields_when_unset.insert(field->full_name());
    }
    if (field->message_type() != nullptr) {
      CollectFieldRules(field->message_type(), seen, options);
    }
  }
}

}  // namespace

RoutePlan PlanRoute(const Route& route) {
  const google::protobuf::MethodDescriptor& method = *route.method;
  const lumo::api::RestRule& rest =
      method.options().GetExtension(lumo::api::rest);
  const lumo::api::AccessRule& access =
      method.options().GetExtension(lumo::api::access);
  google::protobuf::MessageFactory* factory =
      google::protobuf::MessageFactory::generated_factory();
  RoutePlan plan;
  plan.route = &route;
  plan.rpc_path =
      absl::StrCat("/", method.service()->full_name(), "/", method.name());
  plan.request_prototype = factory->GetPrototype(method.input_type());
  plan.reply_prototype = factory->GetPrototype(method.output_type());
  plan.rfc_style = rest.rfc_style();
  plan.session_cookie = rest.session_cookie();
  for (int p : access.principals()) {
    plan.admits_session |= p == lumo::api::PRINCIPAL_SESSION;
  }
  plan.http_body_reply =
      method.output_type() == lumo::api::HttpBody::descriptor();
  plan.server_streaming = method.server_streaming() && plan.http_body_reply;
  if (route.body_field != nullptr &&
      route.body_field->message_type() == lumo::api::HttpBody::descriptor()) {
    plan.raw_body_field = route.body_field;
  }
  plan.forward_headers.assign(rest.forward_headers().begin(),
                              rest.forward_headers().end());
  for (std::string& name : plan.forward_headers) {
    name = absl::AsciiStrToLower(name);
  }
  return plan;
}

HttpResponse RefusalResponse(const RoutePlan& plan, const Refusal& refusal) {
  if (plan.rfc_style && refusal.in_route_style) {
    return RfcErrorResponse(
        refusal.status,
        refusal.status == 400 ? "invalid_client_metadata" : refusal.code,
        refusal.message);
  }
  return ErrorResponse(refusal.status, refusal.code, refusal.message,
                       refusal.field);
}

namespace {

// BuildRequestMessage with the body to parse given apart: `json_body` is
// parsed (and must be JSON when not empty); a raw-body route passes "".
std::optional<Refusal> BuildFromParts(const Route& route,
                                      const Variables& variables,
                                      const HttpRequest& request,
                                      absl::string_view json_body,
                                      google::protobuf::Message* message) {
  absl::StatusOr<QueryParams> query = ParseQueryString(request.query);
  if (!query.ok()) {
    return Refusal{400, "validation_error",
                   std::string(query.status().message()),
                   core::InvalidFieldOf(query.status())};
  }
  for (const auto& [name, value] : *query) {
    if (IsCredentialParameter(name) || LooksLikeFullKey(value)) {
      return Refusal{400, "invalid_request",
                     "API keys are not accepted in the URL; send them in the "
                     "Authorization or X-API-Key header"};
    }
  }
  if (!json_body.empty() &&
      !IsJsonContentType(request.Header("content-type"))) {
    return Refusal{415, "unsupported_media_type",
                   "request bodies must be application/json"};
  }
  if (absl::Status built =
          BuildRequest(route, variables, *query, json_body, message);
      !built.ok()) {
    return Refusal{400, "validation_error", std::string(built.message()),
                   core::InvalidFieldOf(built)};
  }
  return std::nullopt;
}

}  // namespace

std::optional<Refusal> BuildRequestMessage(const RoutePlan& plan,
                                           const Variables& variables,
                                           const HttpRequest& request,
                                           google::protobuf::Message* message) {
  if (plan.raw_body_field == nullptr) {
    return BuildFromParts(*plan.route, variables, request, request.body,
                          message);
  }
  // The path and query bind as on any route; the body is kept as it came.
  if (std::optional<Refusal> refused =
          BuildFromParts(*plan.route, variables, request, "", message)) {
    return refused;
  }
  auto* raw = static_cast<lumo::api::HttpBody*>(
      message->GetReflection()->MutableMessage(message, plan.raw_body_field));
  raw->set_data(request.body);
  if (const std::string* type = request.Header("content-type")) {
    raw->set_content_type(*type);
  }
  return std::nullopt;
}

std::optional<Refusal> BuildRequestMessage(const Route& route,
                                           const Variables& variables,
                                           const HttpRequest& request,
                                           google::protobuf::Message* message) {
  return BuildFromParts(route, variables, request, request.body, message);
}

bool UpstreamMetadata::AddVerbatim(absl::string_view key,
                                   absl::string_view value) {
  if (!core::IsLegalMetadataValue(value)) return false;
  Add(key, value);
  return true;
}

void UpstreamMetadata::Add(absl::string_view key, absl::string_view value) {
  entries_.emplace_back(std::string(key), std::string(value));
}

size_t UpstreamMetadata::AccountedBytes() const {
  size_t total = 0;
  for (const auto& [key, value] : entries_) {
    total += key.size() + value.size() + 32;
  }
  return total;
}

bool UpstreamMetadata::AttachTo(grpc::ClientContext& context) const {
  for (const auto& [key, value] : entries_) {
    if (!core::IsLegalMetadataKey(key) || !core::IsLegalMetadataValue(value)) {
      return false;
    }
  }
  for (const auto& [key, value] : entries_) context.AddMetadata(key, value);
  return true;
}

std::optional<Refusal> CollectUpstreamMetadata(const RoutePlan& plan,
                                               const HttpRequest& request,
                                               absl::string_view tenant_slug,
                                               const ForwardingPolicy& policy,
                                               UpstreamMetadata* metadata) {
  const Route& route = *plan.route;
  // The client address: from the forwarding header only when the TCP peer
  // is a trusted proxy.
  std::string client_ip = request.remote_ip;
  if (policy.trusted_proxies != nullptr && !policy.trusted_proxies->empty()) {
    absl::StatusOr<std::string> client = policy.trusted_proxies->ClientAddress(
        request.remote_ip,
        request.Headers(policy.trusted_proxies->header_key()));
    if (!client.ok()) {
      return Refusal{400, "invalid_request",
                     std::string(client.status().message())};
    }
    client_ip = *std::move(client);
  }

  // Credentials and tokens verbatim, or the request is refused;
  // descriptive text escaped; the rest is the gateway's own.
  for (absl::string_view value : request.Headers("authorization")) {
    if (!metadata->AddVerbatim("authorization", value)) {
      return RefusedHeader("Authorization");
    }
  }
  for (absl::string_view value : request.Headers("x-api-key")) {
    if (!metadata->AddVerbatim("x-api-key", value)) {
      return RefusedHeader("X-API-Key");
    }
  }
  if (!policy.service_token.empty()) {
    metadata->Add("x-lumo-service-token", policy.service_token);
    metadata->Add("x-lumo-client-ip", client_ip);
    // For the server's audit events: the HTTP call as routed.
    metadata->Add("x-lumo-http-method", route.verb);
    metadata->Add("x-lumo-http-route", route.path.text());
    if (const std::string* agent = request.Header("user-agent")) {
      metadata->Add("x-lumo-user-agent",
                    core::EscapeMetadataValue(*agent, kMaxUserAgentBytes));
    }
  }
  metadata->Add("x-request-id", request.request_id);
  for (const std::string& name : plan.forward_headers) {
    for (absl::string_view value : request.Headers(name)) {
      if (!metadata->AddVerbatim(name, value)) return RefusedHeader(name);
    }
  }

  // The session cookie becomes x-lumo-session on routes that admit
  // sessions, unless a key is presented; cookie-borne writes and logins
  // must come from our own pages (docs/portal.md).
  const bool key_presented = request.Header("authorization") != nullptr ||
                             request.Header("x-api-key") != nullptr;
  std::optional<std::string> session;
  if (plan.admits_session && !key_presented && !tenant_slug.empty()) {
    session = CookieValue(
        request, SessionCookieName(tenant_slug, policy.secure_cookies));
  }
  const bool write = request.method != "GET" && request.method != "HEAD";
  if ((session.has_value() && write) ||
      plan.session_cookie == lumo::api::SESSION_COOKIE_SET) {
    if (std::string refused = CheckBrowserWrite(request, policy.secure_cookies);
        !refused.empty()) {
      Refusal refusal{403, "permission_denied", std::move(refused)};
      refusal.in_route_style = false;
      return refusal;
    }
  }
  if (session.has_value()) {
    metadata->Add("x-lumo-session", *session);
    if (const std::string* csrf = request.Header("x-csrf-token")) {
      if (!metadata->AddVerbatim("x-lumo-csrf-token", csrf->substr(0, 128))) {
        return RefusedHeader("X-CSRF-Token");
      }
    }
  }

  if (metadata->AccountedBytes() > kMaxUpstreamMetadataBytes) {
    return Refusal{
        431, "header_too_large",
        "the credential, session and CSRF headers are too large to forward"};
  }
  return std::nullopt;
}

UpstreamError ReadUpstreamError(const grpc::Status& status,
                                const grpc::ClientContext& context) {
  const HttpError error = HttpErrorFor(status.error_code());
  UpstreamError out;
  out.http_status = error.status;
  out.code = Metadata(context.GetServerTrailingMetadata(), "lumo-error-code");
  if (out.code.empty()) out.code = error.code;
  out.field = InvalidFieldOfDetails(status.error_details());
  // Server-side failures say no more (503 keeps its retry advice).
  out.message = error.status >= 500 && error.status != 503
                    ? "internal error"
                    : status.error_message();
  return out;
}

HttpResponse RenderUpstreamError(const RoutePlan& plan,
                                 const grpc::Status& status,
                                 const grpc::ClientContext& context,
                                 absl::string_view tenant_slug,
                                 bool secure_cookies) {
  const UpstreamError error = ReadUpstreamError(status, context);
  if (plan.rfc_style) {
    HttpResponse response =
        RfcErrorResponse(error.http_status, error.code, error.message);
    if (error.http_status == 429) AddRetryAfter(context, response);
    return response;
  }
  HttpResponse response =
      ErrorResponse(error.http_status, error.code, error.message, error.field);
  // A refused logout still forgets the (stale) cookies.
  if (plan.session_cookie == lumo::api::SESSION_COOKIE_CLEAR &&
      !tenant_slug.empty()) {
    ClearSessionCookies(tenant_slug, secure_cookies, response);
  }
  if (error.http_status == 429) AddRetryAfter(context, response);
  AddRateLimitHeaders(context, response);
  return response;
}

HttpResponse RenderReply(const RoutePlan& plan, const std::string& reply_bytes,
                         const grpc::ClientContext& context,
                         absl::string_view tenant_slug, bool secure_cookies,
                         const RenderOptions& render_options) {
  const Route& route = *plan.route;
  std::unique_ptr<google::protobuf::Message> reply(plan.reply_prototype->New());
  if (!reply->ParseFromString(reply_bytes)) {
    return ErrorResponse(500, "internal_error", "internal error");
  }
  HttpResponse response;
  response.status = route.success_status;
  AddRateLimitHeaders(context, response);
  switch (plan.session_cookie) {
    case lumo::api::SESSION_COOKIE_SET:
      SetSessionCookies(tenant_slug, secure_cookies, *reply, response);
      break;
    case lumo::api::SESSION_COOKIE_CLEAR:
      ClearSessionCookies(tenant_slug, secure_cookies, response);
      break;
    default:
      break;
  }
  if (plan.http_body_reply) {
    // Not JSON (e.g. a CSV export): the bytes themselves. The generated
    // factory's prototype of a generated type is that type.
    RenderHttpBody(static_cast<const lumo::api::HttpBody&>(*reply), response);
  } else if (plan.rfc_style) {
    // RFC 7591 & co: the message itself, snake_case.
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    options.always_print_primitive_fields = true;
    response.headers.emplace_back("Content-Type", std::string(kJson));
    (void)google::protobuf::util::MessageToJsonString(*reply, &response.body,
                                                      options);
  } else if (route.success_status != 204) {
    response.headers.emplace_back("Content-Type", std::string(kJson));
    response.body = RenderEnvelope(route, *reply, render_options);
  }
  return response;
}

RenderOptions RenderOptionsFromFieldRules(
    const std::vector<const google::protobuf::ServiceDescriptor*>& services) {
  RenderOptions options;
  absl::flat_hash_set<const google::protobuf::Descriptor*> seen;
  for (const google::protobuf::ServiceDescriptor* service : services) {
    for (int i = 0; i < service->method_count(); ++i) {
      CollectFieldRules(service->method(i)->output_type(), seen, options);
    }
  }
  return options;
}

}  // namespace lumo::gateway
