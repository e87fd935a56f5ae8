// The kinds of error the domain layer returns. A failed status of a service
// may carry one kind (a status payload); the RPC edge (rpc/status.h) maps the
// kind to the documented REST error code (e.g. kInvalidField ->
// "validation_error"), which the domain layer never spells. A status with a
// kind was written for clients: its message is shown to them as it is.
// A validation error about one request field also names that field
// (core/field_error.h). Thread-safe (pure functions).
#ifndef LUMOKEYS_SERVER_SERVICE_ERRORS_H_
#define LUMOKEYS_SERVER_SERVICE_ERRORS_H_

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lumo::service {

enum class ErrorKind {
  // A request field breaks its rule (INVALID_ARGUMENT).
  kInvalidField,
  // The request cannot apply to the resource's state (e.g. rotating a
  // revoked key, deleting a role still assigned).
  kInvalidRequest,
  // No credential, or one that is not valid.
  kUnauthenticated,
  // The caller may not do this for a reason other than scope (an address
  // not allowed, a missing CSRF token).
  kPermissionDenied,
  // The caller's scopes or restrictions do not cover the request.
  kScopeExceeded,
  kNotFound,
  kDuplicate,
  kRateLimited,
  // The key's usage quota (credits) cannot pay for the request.
  kUsageExceeded,
  // A dependency (the database, a replica) did not answer in time.
  kUnavailable,
  // OAuth dynamic client registration (RFC 7591): registration is closed
  // for the tenant, a redirect URI is refused, other client metadata is
  // refused.
  kRegistrationClosed,
  kInvalidRedirectUri,
  kInvalidClientMetadata,
};

// `status` with `kind`; an OK status is returned unchanged.
absl::Status WithErrorKind(absl::Status status, ErrorKind kind);

// The kind `status` carries, if any.
std::optional<ErrorKind> ErrorKindOf(const absl::Status& status);

// INVALID_ARGUMENT kInvalidField naming `field`, with the message
// "<field>: <rule>".
absl::Status InvalidField(absl::string_view field, absl::string_view rule);

// INVALID_ARGUMENT kInvalidField naming `field`, with `message` as given
// (for messages not of the "<field>: <rule>" form, e.g. "email is
// required").
absl::Status InvalidFieldMessage(absl::string_view field,
                                 absl::string_view message);

// `status` (a failed check that names its field, or none) as kInvalidField.
absl::Status AsInvalidField(absl::Status status);

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_ERRORS_H_
