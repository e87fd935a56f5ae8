// The one place where absl::Status becomes grpc::Status (the codes map 1:1).
#ifndef LUMOKEYS_SERVER_RPC_STATUS_H_
#define LUMOKEYS_SERVER_RPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace lumo::rpc {

grpc::Status ToGrpcStatus(const absl::Status& status);

// The documented REST error code carried by `status` (see
// service::WithErrorCode), or the default for its code, e.g.
// UNAUTHENTICATED -> "invalid_token".
std::string ErrorCodeOf(const absl::Status& status);

}  // namespace lumo::rpc

#endif  // LUMOKEYS_SERVER_RPC_STATUS_H_
