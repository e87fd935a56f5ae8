#include "server/rpc/status.h"

#include <map>
#include <memory>
#include <string>

#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "lumo/api/annotations.pb.h"
#include "lumo/keys/v1/keys.grpc.pb.h"
#include "server/core/field_error.h"
#include "server/rpc/call.h"
#include "server/service/errors.h"

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
  // A message the domain layer wrote for clients (it carries an error
  // kind) is kept.
  const absl::Status written = service::WithErrorKind(
      absl::UnavailableError("the change is committed and stands"),
      service::ErrorKind::kUnavailable);
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

TEST(StatusTest, AnErrorKindDecidesTheRestCode) {
  absl::Status status = service::WithErrorKind(
      absl::PermissionDeniedError("scope"), service::ErrorKind::kScopeExceeded);
  EXPECT_EQ(ErrorCodeOf(status), "insufficient_scope");
  EXPECT_EQ(ToGrpcStatus(status).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  struct Case {
    service::ErrorKind kind;
    const char* rest;
  } cases[] = {
      {service::ErrorKind::kInvalidField, "validation_error"},
      {service::ErrorKind::kInvalidRequest, "invalid_request"},
      {service::ErrorKind::kUnauthenticated, "invalid_token"},
      {service::ErrorKind::kPermissionDenied, "permission_denied"},
      {service::ErrorKind::kScopeExceeded, "insufficient_scope"},
      {service::ErrorKind::kNotFound, "resource_not_found"},
      {service::ErrorKind::kDuplicate, "duplicate_resource"},
      {service::ErrorKind::kRateLimited, "rate_limit_exceeded"},
      {service::ErrorKind::kUnavailable, "service_unavailable"},
      {service::ErrorKind::kRegistrationClosed, "registration_not_allowed"},
      {service::ErrorKind::kInvalidRedirectUri, "invalid_redirect_uri"},
      {service::ErrorKind::kInvalidClientMetadata, "invalid_client_metadata"},
  };
  for (const Case& c : cases) {
    // The kind wins over the default of the status code.
    EXPECT_EQ(
        ErrorCodeOf(service::WithErrorKind(absl::InternalError("x"), c.kind)),
        c.rest);
  }
}

// The status details: a lumo.api.ErrorStatus (google.rpc.Status's layout)
// with the REST code and the invalid field in a packed ErrorDetail.
TEST(StatusTest, DetailsCarryTheCodeAndTheInvalidField) {
  const absl::Status status =
      service::InvalidField("expiresAt", "must be in the future");
  const grpc::Status sent = ToGrpcStatus(status);
  lumo::api::ErrorStatus details;
  ASSERT_TRUE(details.ParseFromString(sent.error_details()));
  EXPECT_EQ(details.code(),
            static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(details.message(), "expiresAt: must be in the future");
  ASSERT_EQ(details.details_size(), 1);
  lumo::api::ErrorDetail detail;
  ASSERT_TRUE(details.details(0).UnpackTo(&detail));
  EXPECT_EQ(detail.code(), "validation_error");
  EXPECT_EQ(detail.field(), "expiresAt");

  // No field named: none sent; server-side text stays out of the details.
  lumo::api::ErrorStatus internal;
  ASSERT_TRUE(internal.ParseFromString(
      ToGrpcStatus(absl::InternalError("mysql said: db-7.internal"))
          .error_details()));
  EXPECT_EQ(internal.message(), "internal error");
  ASSERT_TRUE(internal.details(0).UnpackTo(&detail));
  EXPECT_EQ(detail.code(), "internal_error");
  EXPECT_EQ(detail.field(), "");
  EXPECT_EQ(ToGrpcStatus(absl::OkStatus()).error_details(), "");
}

// A KeyService whose GetApiKey answers through Finish (plus one entry under
// an illegal key), served by a real gRPC server: gRPC checks the reply's
// metadata exactly as in production.
class FinishingKeyService : public lumo::keys::v1::KeyService::CallbackService {
 public:
  FinishingKeyService(service::RequestInfo info, absl::Status status)
      : info_(std::move(info)), status_(std::move(status)) {}

  grpc::ServerUnaryReactor* GetApiKey(grpc::CallbackServerContext* context,
                                      const lumo::keys::v1::GetApiKeyRequest*,
                                      lumo::keys::v1::ApiKey*) override {
    AddTrailingMetadataSafely(context, "Not A Key", "x");
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    Finish(context, reactor, info_, status_);
    return reactor;
  }

 private:
  const service::RequestInfo info_;
  const absl::Status status_;
};

std::string Find(const std::multimap<grpc::string_ref, grpc::string_ref>& md,
                 const std::string& key) {
  auto it = md.find(key);
  return it == md.end() ? "<absent>"
                        : std::string(it->second.data(), it->second.size());
}

TEST(StatusTest, ReplyMetadataGrpcWouldRefuseIsEscapedNotFatal) {
  service::RequestInfo info;
  info.request_id =
      "id\twith\x01"
      "control";
  FinishingKeyService service(
      info, service::WithErrorKind(
                core::InvalidFieldError("caf\xc3\xa9\tfield", "no"),
                service::ErrorKind::kInvalidField));
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto stub = lumo::keys::v1::KeyService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));

  grpc::ClientContext context;
  lumo::keys::v1::GetApiKeyRequest request;
  lumo::keys::v1::ApiKey reply;
  const grpc::Status status = stub->GetApiKey(&context, request, &reply);

  // Before, the server process aborted in gRPC ("Illegal header value").
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Find(context.GetServerTrailingMetadata(), "lumo-error-code"),
            "validation_error");
  // Binary details carry any bytes as they are.
  lumo::api::ErrorStatus details;
  ASSERT_TRUE(details.ParseFromString(status.error_details()));
  lumo::api::ErrorDetail detail;
  ASSERT_EQ(details.details_size(), 1);
  ASSERT_TRUE(details.details(0).UnpackTo(&detail));
  EXPECT_EQ(detail.field(), "caf\xc3\xa9\tfield");
  EXPECT_EQ(Find(context.GetServerInitialMetadata(), "x-request-id"),
            "id%09with%01control");
  EXPECT_EQ(Find(context.GetServerTrailingMetadata(), "Not A Key"), "<absent>");
  server->Shutdown();
}

}  // namespace
}  // namespace lumo::rpc
