// The one place where absl::Status becomes grpc::Status (the codes map 1:1).
#ifndef LUMOKEYS_SERVER_RPC_STATUS_H_
#define LUMOKEYS_SERVER_RPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace lumo::rpc {

// The gRPC status sent to the client. Server-side failures (UNAVAILABLE,
// DEADLINE_EXCEEDED, ABORTED, INTERNAL, UNKNOWN, DATA_LOSS) carry one fixed
// message per code unless the domain layer wrote the message for clients
// (it then carries a REST error code, service::WithErrorCode): driver and
// storage text (user and host names, statement steps) never reaches a
// client. See ClientMessage.
grpc::Status ToGrpcStatus(const absl::Status& status);

// What a client is told for `status` (see ToGrpcStatus); true in
// `*replaced` when that is not status.message() (the caller then logs the
// original server-side).
std::string ClientMessage(const absl::Status& status, bool* replaced = nullptr);

// The documented REST error code carried by `status` (see
// service::WithErrorCode), or the default for its code, e.g.
// UNAUTHENTICATED -> "invalid_token".
std::string ErrorCodeOf(const absl::Status& status);

}  // namespace lumo::rpc

#endif  // LUMOKEYS_SERVER_RPC_STATUS_H_
