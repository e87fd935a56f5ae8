// The one place where absl::Status becomes grpc::Status (the codes map 1:1),
// and the one way the server adds metadata to its replies.
#ifndef LUMOKEYS_SERVER_RPC_STATUS_H_
#define LUMOKEYS_SERVER_RPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/status.h"

namespace lumo::rpc {

grpc::Status ToGrpcStatus(const absl::Status& status);

// The documented REST error code carried by `status` (see
// service::WithErrorCode), or the default for its code, e.g.
// UNAUTHENTICATED -> "invalid_token".
std::string ErrorCodeOf(const absl::Status& status);

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
