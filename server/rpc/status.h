// The one place where absl::Status becomes grpc::Status (the codes map 1:1)
// and where the domain's error kinds (service/errors.h) become the
// documented REST error codes, and the one way the server adds metadata to
// its replies.
#ifndef LUMOKEYS_SERVER_RPC_STATUS_H_
#define LUMOKEYS_SERVER_RPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/status.h"

namespace lumo::rpc {

// The gRPC status sent to the client. Server-side failures (UNAVAILABLE,
// DEADLINE_EXCEEDED, ABORTED, INTERNAL, UNKNOWN, DATA_LOSS) carry one fixed
// message per code unless the domain layer wrote the message for clients
// (it then carries an error kind, service::WithErrorKind): driver and
// storage text (user and host names, statement steps) never reaches a
// client. See ClientMessage. A failed status also carries its structured
// detail (ErrorDetailsOf) as the status details, which gRPC sends as the
// `grpc-status-details-bin` trailer.
grpc::Status ToGrpcStatus(const absl::Status& status);

// What a client is told for `status` (see ToGrpcStatus); true in
// `*replaced` when that is not status.message() (the caller then logs the
// original server-side).
std::string ClientMessage(const absl::Status& status, bool* replaced = nullptr);

// The documented REST error code of `status`: the one its error kind maps
// to (service::WithErrorKind; e.g. kInvalidField -> "validation_error"),
// or the default for its code, e.g. UNAUTHENTICATED -> "invalid_token".
// "" for OK.
std::string ErrorCodeOf(const absl::Status& status);

// The serialized lumo.api.ErrorStatus of a failed `status` (code, client
// message, and a lumo.api.ErrorDetail with ErrorCodeOf and the field the
// status names, core/field_error.h); "" for OK.
std::string ErrorDetailsOf(const absl::Status& status);

// Add metadata to the reply of `context` in a form gRPC always sends: a
// value's bytes that gRPC refuses are %XX-escaped
// (core::EscapeMetadataValue) and a key it refuses is dropped (and logged).
// gRPC aborts the process on a reply with illegal metadata, so every
// initial and trailing metadata entry of the server goes through these
// (docs/hardening.md).
void AddInitialMetadataSafely(grpc::ServerContextBase* context,
                              absl::string_view key, absl::string_view value);
void AddTrailingMetadataSafely(grpc::ServerContextBase* context,
                               absl::string_view key, absl::string_view value);

}  // namespace lumo::rpc

#endif  // LUMOKEYS_SERVER_RPC_STATUS_H_
