#include "server/service/errors.h"

#include <optional>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "server/core/field_error.h"

namespace lumo::service {
namespace {

// The payload URL under which a status carries its kind, and the stable
// names the payload holds.
constexpr absl::string_view kErrorKindPayload = "lumo.dev/error-kind";

struct KindName {
  ErrorKind kind;
  absl::string_view name;
};
constexpr KindName kKindNames[] = {
    {ErrorKind::kInvalidField, "invalid_field"},
    {ErrorKind::kInvalidRequest, "invalid_request"},
    {ErrorKind::kUnauthenticated, "unauthenticated"},
    {ErrorKind::kPermissionDenied, "permission_denied"},
    {ErrorKind::kScopeExceeded, "scope_exceeded"},
    {ErrorKind::kNotFound, "not_found"},
    {ErrorKind::kDuplicate, "duplicate"},
    {ErrorKind::kRateLimited, "rate_limited"},
    {ErrorKind::kUsageExceeded, "usage_exceeded"},
    {ErrorKind::kUnavailable, "unavailable"},
    {ErrorKind::kRegistrationClosed, "registration_closed"},
    {ErrorKind::kInvalidRedirectUri, "invalid_redirect_uri"},
    {ErrorKind::kInvalidClientMetadata, "invalid_client_metadata"},
};

}  // namespace

absl::Status WithErrorKind(absl::Status status, ErrorKind kind) {
  if (status.ok()) return status;
  for (const KindName& entry : kKindNames) {
    if (entry.kind == kind) {
      status.SetPayload(kErrorKindPayload, absl::Cord(entry.name));
    }
  }
  return status;
}

std::optional<ErrorKind> ErrorKindOf(const absl::Status& status) {
  auto payload = status.GetPayload(kErrorKindPayload);
  if (!payload.has_value()) return std::nullopt;
  for (const KindName& entry : kKindNames) {
    if (*payload == entry.name) return entry.kind;
  }
  return std::nullopt;
}

absl::Status InvalidField(absl::string_view field, absl::string_view rule) {
  return WithErrorKind(
      core::InvalidFieldError(field, absl::StrCat(field, ": ", rule)),
      ErrorKind::kInvalidField);
}

absl::Status InvalidFieldMessage(absl::string_view field,
                                 absl::string_view message) {
  return WithErrorKind(core::InvalidFieldError(field, message),
                       ErrorKind::kInvalidField);
}

absl::Status AsInvalidField(absl::Status status) {
  return WithErrorKind(std::move(status), ErrorKind::kInvalidField);
}

}  // namespace lumo::service
