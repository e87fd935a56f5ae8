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
#include "lumo/keys/v1/keys.grpc.pb.h"
#include "server/rpc/call.h"
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
      info, service::WithErrorCode(absl::PermissionDeniedError("no"),
                                   "caf\xc3\xa9\tcode"));
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
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Find(context.GetServerTrailingMetadata(), "lumo-error-code"),
            "caf%C3%A9%09code");
  EXPECT_EQ(Find(context.GetServerInitialMetadata(), "x-request-id"),
            "id%09with%01control");
  EXPECT_EQ(Find(context.GetServerTrailingMetadata(), "Not A Key"), "<absent>");
  server->Shutdown();
}

}  // namespace
}  // namespace lumo::rpc
