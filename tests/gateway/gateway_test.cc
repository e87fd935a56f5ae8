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
  HttpResponse r =
      ErrorResponse(400, "validation_error", "email: not a valid address");
  EXPECT_EQ(r.body,
            "{\"error\":true,\"status\":400,\"code\":\"validation_error\","
            "\"message\":\"email: not a valid address\","
            "\"details\":{\"field\":\"email\"}}");
  struct Case {
    const char* message;
    const char* field;
  } cases[] = {
      {"name must be at most 100 characters", "name"},
      {"expiresAt: must be in the future", "expiresAt"},
      {"unknown field \"digest\" in the request body", "digest"},
      {"invalid value for field \"inners[0].count\" in the request body",
       "inners[0].count"},
      {"unknown query parameter \"bogus\"", "bogus"},
      {"request body is not valid JSON (at byte 3)", ""},
      {"the request is wrong", ""},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(FieldOfValidationMessage(c.message), c.field) << c.message;
  }
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
