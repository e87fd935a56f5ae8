#include "gateway/gateway.h"

#include "gtest/gtest.h"

namespace lumo::gateway {
namespace {

TEST(GatewayTest, EveryGrpcCodeMapsToADocumentedStatusAndCode) {
  struct Case {
    grpc::StatusCode code;
    int status;
    const char* rest;
  } cases[] = {
      {grpc::StatusCode::INVALID_ARGUMENT, 400, "validation_error"},
      {grpc::StatusCode::OUT_OF_RANGE, 400, "validation_error"},
      {grpc::StatusCode::FAILED_PRECONDITION, 400, "invalid_request"},
      {grpc::StatusCode::UNAUTHENTICATED, 401, "invalid_token"},
      {grpc::StatusCode::PERMISSION_DENIED, 403, "insufficient_scope"},
      {grpc::StatusCode::NOT_FOUND, 404, "resource_not_found"},
      {grpc::StatusCode::ALREADY_EXISTS, 409, "duplicate_resource"},
      {grpc::StatusCode::ABORTED, 409, "duplicate_resource"},
      {grpc::StatusCode::RESOURCE_EXHAUSTED, 429, "rate_limit_exceeded"},
      {grpc::StatusCode::UNAVAILABLE, 503, "service_unavailable"},
      {grpc::StatusCode::DEADLINE_EXCEEDED, 503, "service_unavailable"},
      {grpc::StatusCode::CANCELLED, 503, "service_unavailable"},
      {grpc::StatusCode::UNIMPLEMENTED, 501, "internal_error"},
      {grpc::StatusCode::INTERNAL, 500, "internal_error"},
      {grpc::StatusCode::UNKNOWN, 500, "internal_error"},
      {grpc::StatusCode::DATA_LOSS, 500, "internal_error"},
  };
  for (const Case& c : cases) {
    HttpError e = HttpErrorFor(c.code);
    EXPECT_EQ(e.status, c.status) << c.code;
    EXPECT_STREQ(e.code, c.rest) << c.code;
  }
}

TEST(GatewayTest, ErrorBodyHasTheDocumentedShape) {
  HttpResponse r = ErrorResponse(404, "resource_not_found", "no \"such\" key");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body,
            "{\"error\":true,\"status\":404,\"code\":\"resource_not_found\","
            "\"message\":\"no \\\"such\\\" key\",\"details\":{}}");
}

TEST(GatewayTest, ValidationErrorsNameTheFieldInDetails) {
  HttpResponse r = ErrorResponse(400, "validation_error",
                                 "email: not a valid address", "email");
  EXPECT_EQ(r.body,
            "{\"error\":true,\"status\":400,\"code\":\"validation_error\","
            "\"message\":\"email: not a valid address\","
            "\"details\":{\"field\":\"email\"}}");
  // The field is given, never read from the message.
  EXPECT_EQ(
      ErrorResponse(400, "validation_error", "email: not a valid address").body,
      "{\"error\":true,\"status\":400,\"code\":\"validation_error\","
      "\"message\":\"email: not a valid address\",\"details\":{}}");
  // Only validation errors name a field.
  EXPECT_EQ(
      ErrorResponse(403, "insufficient_scope", "expiresAt: no", "expiresAt")
          .body,
      "{\"error\":true,\"status\":403,\"code\":\"insufficient_scope\","
      "\"message\":\"expiresAt: no\",\"details\":{}}");
  // A field is JSON text like the rest.
  EXPECT_EQ(ErrorResponse(400, "validation_error", "m", "a\"b\n").body,
            "{\"error\":true,\"status\":400,\"code\":\"validation_error\","
            "\"message\":\"m\",\"details\":{\"field\":\"a\\\"b\\n\"}}");
}

TEST(GatewayTest, RfcErrorBodyUsesOAuthShape) {
  HttpResponse r =
      RfcErrorResponse(400, "invalid_redirect_uri", "redirect_uris[0]: bad");
  EXPECT_EQ(r.body,
            "{\"error\":\"invalid_redirect_uri\",\"error_description\":"
            "\"redirect_uris[0]: bad\"}");
}

}  // namespace
}  // namespace lumo::gateway
