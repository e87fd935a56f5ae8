#include "server/rpc/status.h"

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <string>

#include "absl/time/clock.h"
#include "lumo/api/annotations.pb.h"
#include "server/core/field_error.h"
#include "server/core/metadata_text.h"
#include "server/observability/log.h"
#include "server/rpc/call.h"
#include "server/service/errors.h"

namespace lumo::rpc {
namespace {

// The REST error code of each kind of domain error (docs/product.md §3.1
// and, for the OAuth routes, RFC 7591 §3.2.2).
const char* RestCodeOf(service::ErrorKind kind) {
  switch (kind) {
    case service::ErrorKind::kInvalidField:
      return "validation_error";
    case service::ErrorKind::kInvalidRequest:
      return "invalid_request";
    case service::ErrorKind::kUnauthenticated:
      return "invalid_token";
    case service::ErrorKind::kPermissionDenied:
      return "permission_denied";
    case service::ErrorKind::kScopeExceeded:
      return "insufficient_scope";
    case service::ErrorKind::kNotFound:
      return "resource_not_found";
    case service::ErrorKind::kDuplicate:
      return "duplicate_resource";
    case service::ErrorKind::kRateLimited:
      return "rate_limit_exceeded";
    case service::ErrorKind::kUsageExceeded:
      return "usage_exceeded";
    case service::ErrorKind::kUnavailable:
      return "service_unavailable";
    case service::ErrorKind::kRegistrationClosed:
      return "registration_not_allowed";
    case service::ErrorKind::kInvalidRedirectUri:
      return "invalid_redirect_uri";
    case service::ErrorKind::kInvalidClientMetadata:
      return "invalid_client_metadata";
  }
  return "internal_error";
}

}  // namespace

std::string ClientMessage(const absl::Status& status, bool* replaced) {
  if (replaced != nullptr) *replaced = false;
  const bool written_for_clients = service::ErrorKindOf(status).has_value();
  absl::string_view generic;
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
      generic = "the service is temporarily unavailable; try again later";
      break;
    case absl::StatusCode::kDeadlineExceeded:
      generic = "the request did not complete in time; try again later";
      break;
    case absl::StatusCode::kAborted:
      generic = "the request conflicted with another one; try again";
      break;
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDataLoss:
      generic = "internal error";
      break;
    default:
      return std::string(status.message());
  }
  if (written_for_clients) return std::string(status.message());
  if (replaced != nullptr) *replaced = status.message() != generic;
  return std::string(generic);
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      ClientMessage(status), ErrorDetailsOf(status));
}

absl::Status ServerBusy() {
  return service::WithErrorKind(
      absl::UnavailableError("server is overloaded or shutting down"),
      service::ErrorKind::kUnavailable);
}

std::string ErrorCodeOf(const absl::Status& status) {
  if (std::optional<service::ErrorKind> kind = service::ErrorKindOf(status)) {
    return RestCodeOf(*kind);
  }
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return "";
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return "validation_error";
    case absl::StatusCode::kFailedPrecondition:
      return "invalid_request";
    case absl::StatusCode::kUnauthenticated:
      return "invalid_token";
    case absl::StatusCode::kPermissionDenied:
      return "permission_denied";
    case absl::StatusCode::kNotFound:
      return "resource_not_found";
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return "duplicate_resource";
    case absl::StatusCode::kResourceExhausted:
      return "rate_limit_exceeded";
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return "service_unavailable";
    default:
      return "internal_error";
  }
}

std::string ErrorDetailsOf(const absl::Status& status) {
  if (status.ok()) return "";
  lumo::api::ErrorDetail detail;
  detail.set_code(ErrorCodeOf(status));
  detail.set_field(core::InvalidFieldOf(status));
  lumo::api::ErrorStatus details;
  details.set_code(static_cast<int32_t>(status.code()));
  details.set_message(ClientMessage(status));
  details.add_details()->PackFrom(detail);
  return details.SerializeAsString();
}

namespace {

// The key and value as gRPC accepts them, or false when the key is illegal
// (a programming error: keys are constants).
bool LegalEntry(absl::string_view key, absl::string_view value,
                std::string* key_out, std::string* value_out) {
  if (!core::IsLegalMetadataKey(key)) {
    lumo::log::Line(lumo::log::Level::kError,
                    "dropped reply metadata with an illegal key")
        .Str("key", core::EscapeMetadataValue(key, 64));
    return false;
  }
  *key_out = std::string(key);
  *value_out = core::EscapeMetadataValue(value);
  return true;
}

}  // namespace

void AddInitialMetadataSafely(grpc::ServerContextBase* context,
                              absl::string_view key, absl::string_view value) {
  std::string k, v;
  if (LegalEntry(key, value, &k, &v)) context->AddInitialMetadata(k, v);
}

void AddTrailingMetadataSafely(grpc::ServerContextBase* context,
                               absl::string_view key, absl::string_view value) {
  std::string k, v;
  if (LegalEntry(key, value, &k, &v)) context->AddTrailingMetadata(k, v);
}

const google::protobuf::MethodDescriptor& Method(const char* full_name) {
  const google::protobuf::MethodDescriptor* m =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
          full_name);
  if (m == nullptr) abort();
  return *m;
}

namespace {

// Calls `add` with each limit value of a reply (docs/limits.md "What callers
// see"): the quota's credits and the tightest rate limit, when the key has
// them.
void ForEachLimitValue(
    const service::VerifyOutcome* outcome,
    const std::function<void(absl::string_view, int64_t)>& add) {
  if (outcome == nullptr) return;
  if (outcome->credits_remaining.has_value()) {
    add("x-credits-remaining", *outcome->credits_remaining);
    if (outcome->credits_reset.has_value()) {
      add("x-credits-reset", absl::ToUnixSeconds(*outcome->credits_reset));
    }
  }
  if (outcome->rate_limit > 0) {
    add("x-ratelimit-limit", outcome->rate_limit);
    add("x-ratelimit-remaining", outcome->rate_remaining);
    add("x-ratelimit-reset", absl::ToUnixSeconds(outcome->rate_reset));
  }
}

}  // namespace

void AddReplyInitialMetadata(grpc::CallbackServerContext* context,
                             const service::RequestInfo& info,
                             const service::VerifyOutcome* outcome) {
  AddInitialMetadataSafely(context, "x-request-id", info.request_id);
  // The limits' values go out as initial metadata (which the gateway turns
  // into headers) and again as trailing metadata (FinalStatus).
  ForEachLimitValue(outcome, [context](absl::string_view key, int64_t value) {
    AddInitialMetadataSafely(context, key, std::to_string(value));
  });
}

void Finish(grpc::CallbackServerContext* context,
            grpc::ServerUnaryReactor* reactor, const service::RequestInfo& info,
            const absl::Status& status, const service::VerifyOutcome* outcome) {
  AddReplyInitialMetadata(context, info, outcome);
  reactor->Finish(FinalStatus(context, info, status, outcome));
}

grpc::Status FinalStatus(grpc::CallbackServerContext* context,
                         const service::RequestInfo& info,
                         const absl::Status& status,
                         const service::VerifyOutcome* outcome) {
  ForEachLimitValue(outcome, [context](absl::string_view key, int64_t value) {
    AddTrailingMetadataSafely(context, key, std::to_string(value));
  });
  const bool usage_exceeded =
      service::ErrorKindOf(status) == service::ErrorKind::kUsageExceeded;
  if (usage_exceeded && outcome != nullptr &&
      outcome->credits_remaining.has_value() &&
      outcome->credits_reset.has_value()) {
    // Until the refill (whole seconds, at least one).
    const int64_t wait =
        std::max<int64_t>(1, absl::ToUnixSeconds(*outcome->credits_reset) -
                                 absl::ToUnixSeconds(absl::Now()));
    AddTrailingMetadataSafely(context, "retry-after", std::to_string(wait));
  }
  if (outcome != nullptr && outcome->rate_limit > 0 &&
      status.code() == absl::StatusCode::kResourceExhausted &&
      !usage_exceeded) {
    const int64_t wait =
        std::max<int64_t>(1, absl::ToUnixSeconds(outcome->rate_reset) -
                                 absl::ToUnixSeconds(absl::Now()));
    AddTrailingMetadataSafely(context, "retry-after", std::to_string(wait));
  }
  if (outcome != nullptr && outcome->rate_limit <= 0 &&
      outcome->retry_after > absl::ZeroDuration() &&
      status.code() == absl::StatusCode::kResourceExhausted) {
    // Refused by the failure throttle (whole seconds, at least one).
    AddTrailingMetadataSafely(
        context, "retry-after",
        std::to_string(std::max<int64_t>(
            1, absl::ToInt64Seconds(
                   absl::Ceil(outcome->retry_after, absl::Seconds(1))))));
  }
  if (!status.ok()) {
    AddTrailingMetadataSafely(context, "lumo-error-code", ErrorCodeOf(status));
  }
  bool replaced = false;
  std::string message = ClientMessage(status, &replaced);
  if (replaced) {
    // The details stay in the server's log, under the request id.
    log::Line(log::Level::kWarning, "request failed")
        .Str("request_id", info.request_id)
        .Str("code", absl::StatusCodeToString(status.code()))
        .Str("error", status.message());
  }
  return status.ok()
             ? grpc::Status::OK
             : grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                            std::move(message), ErrorDetailsOf(status));
}

}  // namespace lumo::rpc
