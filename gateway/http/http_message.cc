#include "gateway/http/http_message.h"

#include <cstdint>
#include <random>

#include "absl/strings/str_cat.h"
#include "server/core/crypto.h"
#include "server/observability/log.h"

namespace lumo::gateway {
namespace {

constexpr size_t kRequestIdLength = 22;
constexpr size_t kMaxRequestIdLength = 128;

// Used only if the CSPRNG fails: request ids need to be unique, not secret.
std::string FallbackRequestId() {
  static constexpr char kAlphabet[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<int> pick(0, 61);
  std::string id(kRequestIdLength, '0');
  for (char& c : id) c = kAlphabet[pick(rng)];
  return id;
}

}  // namespace

const std::string* HttpRequest::Header(absl::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return &value;
  }
  return nullptr;
}

std::vector<absl::string_view> HttpRequest::Headers(
    absl::string_view lower_name) const {
  std::vector<absl::string_view> values;
  for (const auto& [name, value] : headers) {
    if (name == lower_name) values.push_back(value);
  }
  return values;
}

std::string NewRequestId() {
  absl::StatusOr<std::string> id = core::RandomBase62(kRequestIdLength);
  if (!id.ok()) return FallbackRequestId();
  return *std::move(id);
}

bool IsSafeRequestId(absl::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdLength) return false;
  for (char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

absl::string_view ErrorCodeForStatus(int status) {
  switch (status) {
    case 400:
      return "invalid_request";
    case 408:
      return "request_timeout";
    case 413:
      return "payload_too_large";
    case 414:
      return "uri_too_long";
    case 431:
      return "header_too_large";
    case 500:
      return "internal_error";
    case 503:
      return "service_unavailable";
    case 505:
      return "http_version_not_supported";
    default:
      return "error";
  }
}

std::string JsonQuote(absl::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  log::AppendJsonString(out, s);
  return out;
}

HttpResponse DefaultErrorRenderer(int status, absl::string_view code,
                                  absl::string_view message,
                                  absl::string_view /*request_id*/) {
  HttpResponse response;
  response.status = status;
  response.headers.emplace_back("Content-Type", "application/json");
  response.body = absl::StrCat("{\"error\":true,\"status\":", status,
                               ",\"code\":", JsonQuote(code),
                               ",\"message\":", JsonQuote(message), "}");
  return response;
}

}  // namespace lumo::gateway
