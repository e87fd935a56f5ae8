#include "server/rpc/status.h"

#include "gtest/gtest.h"
#include "server/service/key_service.h"

namespace lumo::rpc {
namespace {

TEST(StatusTest, CodesMapOneToOneOntoGrpc) {
  for (int code = 0; code <= 16; ++code) {
    absl::Status status(static_cast<absl::StatusCode>(code), "message");
    grpc::Status converted = ToGrpcStatus(status);
    EXPECT_EQ(static_cast<int>(converted.error_code()), code);
    if (code != 0) {
      EXPECT_EQ(converted.error_message(), "message");
    }
  }
}

TEST(StatusTest, DefaultRestCodeFollowsTheStatusCode) {
  struct Case {
    absl::StatusCode code;
    const char* rest;
  } cases[] = {
      {absl::StatusCode::kInvalidArgument, "validation_error"},
      {absl::StatusCode::kFailedPrecondition, "invalid_request"},
      {absl::StatusCode::kUnauthenticated, "invalid_token"},
      {absl::StatusCode::kPermissionDenied, "permission_denied"},
      {absl::StatusCode::kNotFound, "resource_not_found"},
      {absl::StatusCode::kAlreadyExists, "duplicate_resource"},
      {absl::StatusCode::kResourceExhausted, "rate_limit_exceeded"},
      {absl::StatusCode::kUnavailable, "service_unavailable"},
      {absl::StatusCode::kDeadlineExceeded, "service_unavailable"},
      {absl::StatusCode::kInternal, "internal_error"},
      {absl::StatusCode::kDataLoss, "internal_error"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ErrorCodeOf(absl::Status(c.code, "x")), c.rest)
        << absl::StatusCodeToString(c.code);
  }
  EXPECT_EQ(ErrorCodeOf(absl::OkStatus()), "");
}

TEST(StatusTest, AnExplicitErrorCodeWins) {
  absl::Status status = service::WithErrorCode(
      absl::PermissionDeniedError("scope"), "insufficient_scope");
  EXPECT_EQ(ErrorCodeOf(status), "insufficient_scope");
  EXPECT_EQ(ToGrpcStatus(status).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

}  // namespace
}  // namespace lumo::rpc
