#include "server/rpc/status.h"

#include "gtest/gtest.h"
#include "server/service/key_service.h"

namespace lumo::rpc {
namespace {

bool IsServerSide(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDataLoss:
      return true;
    default:
      return false;
  }
}

TEST(StatusTest, CodesMapOneToOneOntoGrpc) {
  for (int code = 0; code <= 16; ++code) {
    absl::Status status(static_cast<absl::StatusCode>(code), "message");
    grpc::Status converted = ToGrpcStatus(status);
    EXPECT_EQ(static_cast<int>(converted.error_code()), code);
    if (code != 0 && !IsServerSide(status.code())) {
      EXPECT_EQ(converted.error_message(), "message");
    }
  }
}

TEST(StatusTest, ServerSideFailuresNeverCarryDriverText) {
  // What a connection failure of the database driver says.
  const std::string driver =
      "cannot connect to the database: Access denied for user "
      "'lumokeys'@'db-7.internal' (using password: YES) (mysql error 1045)";
  for (int code = 1; code <= 16; ++code) {
    const absl::Status status(static_cast<absl::StatusCode>(code), driver);
    if (!IsServerSide(status.code())) continue;
    const grpc::Status sent = ToGrpcStatus(status);
    EXPECT_EQ(sent.error_message().find("lumokeys"), std::string::npos);
    EXPECT_EQ(sent.error_message().find("db-7"), std::string::npos);
    EXPECT_EQ(sent.error_message().find("mysql"), std::string::npos);
    EXPECT_FALSE(sent.error_message().empty());
    bool replaced = false;
    ClientMessage(status, &replaced);
    EXPECT_TRUE(replaced) << code;
  }
  // A message the domain layer wrote for clients (it carries its REST
  // code) is kept.
  const absl::Status written = service::WithErrorCode(
      absl::UnavailableError("the change is committed and stands"),
      "service_unavailable");
  EXPECT_EQ(ToGrpcStatus(written).error_message(),
            "the change is committed and stands");
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
