#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "fake_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lumokeys_client.h"

namespace lumo::client {
namespace {

using ::lumo::testing::FakeServer;
using ::testing::HasSubstr;
using ::testing::Not;

// A syntactically plausible key; the secret part is what must never leak.
const std::string kSecret = "S3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tAbCdEf";
const std::string kKey = "lmk_AbCdEfGhIjKl_" + kSecret;

ClientOptions Options() {
  ClientOptions options;
  options.api_key = kKey;
  options.operator_token = "op-token";
  options.service_token = "svc-token";
  options.timeout = absl::Seconds(3);
  return options;
}

std::vector<std::string> Values(
    const std::multimap<std::string, std::string>& metadata,
    const std::string& key) {
  std::vector<std::string> out;
  auto [begin, end] = metadata.equal_range(key);
  for (auto it = begin; it != end; ++it) out.push_back(it->second);
  return out;
}

TEST(ClientTest, KeyServiceSendsBearerKeyOnlyAndADeadline) {
  FakeServer fake;
  Client client(Options(), fake.Channel());
  lumo::keys::v1::GetApiKeyRequest request;
  request.set_tenant_slug("acme");
  request.set_id("AbCdEfGhIjKl");
  fake.state.key_reply.set_id("AbCdEfGhIjKl");

  const auto reply = client.GetApiKey(request);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->id(), "AbCdEfGhIjKl");

  const auto call = fake.state.last();
  EXPECT_EQ(call.method, "GetApiKey");
  EXPECT_THAT(Values(call.metadata, "authorization"),
              ::testing::ElementsAre("Bearer " + kKey));
  EXPECT_TRUE(Values(call.metadata, "x-lumo-operator-token").empty());
  EXPECT_TRUE(Values(call.metadata, "x-lumo-service-token").empty());
  EXPECT_EQ(Values(call.metadata, "x-request-id").size(), 1u);
  EXPECT_GT(call.time_left.count(), 1000);
  EXPECT_LE(call.time_left.count(), 3000);
}

TEST(ClientTest, OperatorServiceSendsOperatorTokenOnly) {
  FakeServer fake;
  Client client(Options(), fake.Channel());
  lumo::ops::v1::CreateTenantRequest request;
  request.set_slug("acme");
  ASSERT_TRUE(client.CreateTenant(request).ok());
  ASSERT_TRUE(client.GetTenant({}).ok());
  ASSERT_TRUE(client.CreateTenantKey({}).ok());
  for (const auto& call : fake.state.calls()) {
    EXPECT_THAT(Values(call.metadata, "x-lumo-operator-token"),
                ::testing::ElementsAre("op-token"))
        << call.method;
    EXPECT_TRUE(Values(call.metadata, "authorization").empty());
    EXPECT_TRUE(Values(call.metadata, "x-lumo-service-token").empty());
  }
}

TEST(ClientTest, AuthServiceSendsServiceTokenOnly) {
  FakeServer fake;
  Client client(Options(), fake.Channel());
  fake.state.verify_reply.set_valid(true);
  fake.state.verify_reply.set_reason(lumo::auth::v1::VALID);
  lumo::auth::v1::VerifyApiKeyRequest request;
  request.set_key(kKey);
  const auto reply = client.VerifyApiKey(request);
  ASSERT_TRUE(reply.ok());
  EXPECT_TRUE(reply->valid());
  const auto call = fake.state.last();
  EXPECT_THAT(Values(call.metadata, "x-lumo-service-token"),
              ::testing::ElementsAre("svc-token"));
  EXPECT_TRUE(Values(call.metadata, "authorization").empty());
}

TEST(ClientTest, MissingCredentialIsNotSent) {
  FakeServer fake;
  ClientOptions options;
  Client client(options, fake.Channel());
  ASSERT_TRUE(client.ListApiKeys({}).ok());
  const auto call = fake.state.last();
  EXPECT_TRUE(Values(call.metadata, "authorization").empty());
}

TEST(ClientTest, EveryMethodReachesItsRpc) {
  FakeServer fake;
  Client client(Options(), fake.Channel());
  EXPECT_TRUE(client.ListApiKeys({}).ok());
  EXPECT_TRUE(client.CreateApiKey({}).ok());
  EXPECT_TRUE(client.GetApiKey({}).ok());
  EXPECT_TRUE(client.RotateApiKey({}).ok());
  EXPECT_TRUE(client.RevokeApiKey({}).ok());
  EXPECT_TRUE(client.DeleteApiKey({}).ok());
  std::vector<std::string> methods;
  for (const auto& call : fake.state.calls()) methods.push_back(call.method);
  EXPECT_THAT(methods, ::testing::ElementsAre("ListApiKeys", "CreateApiKey",
                                              "GetApiKey", "RotateApiKey",
                                              "RevokeApiKey", "DeleteApiKey"));
}

TEST(ClientTest, ErrorsKeepTheirCodeAndGetARequestId) {
  FakeServer fake;
  Client client(Options(), fake.Channel());
  fake.state.FailWith(grpc::Status(grpc::StatusCode::NOT_FOUND, "no key"));
  const auto reply = client.GetApiKey({});
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(reply.status().message(), "no key");
  EXPECT_EQ(RequestIdOf(reply.status()),
            Values(fake.state.last().metadata, "x-request-id").at(0));
}

TEST(ClientTest, ServerMessagesAreScrubbedOfKeysAndTokens) {
  FakeServer fake;
  Client client(Options(), fake.Channel());
  fake.state.FailWith(
      grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                   absl::StrCat("bad key ", kKey, " / op-token / svc-token")));
  const auto reply = client.ListApiKeys({});
  ASSERT_FALSE(reply.ok());
  const std::string message(reply.status().message());
  EXPECT_THAT(message, Not(HasSubstr(kSecret)));
  EXPECT_THAT(message, Not(HasSubstr("op-token")));
  EXPECT_THAT(message, Not(HasSubstr("svc-token")));
  EXPECT_THAT(message, HasSubstr("lmk_AbCdEfGhIjKl_[REDACTED]"));
}

TEST(ClientTest, InvalidOptionsFailWithoutEchoingSecrets) {
  FakeServer fake;
  ClientOptions options = Options();
  options.api_key = "lmk_with space";
  Client client(options, fake.Channel());
  const auto reply = client.ListApiKeys({});
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(reply.status().message(), Not(HasSubstr("with space")));
  EXPECT_TRUE(fake.state.calls().empty());

  ClientOptions no_timeout = Options();
  no_timeout.timeout = absl::ZeroDuration();
  EXPECT_EQ(Client(no_timeout, fake.Channel()).GetApiKey({}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ClientTest, UnreachableServerIsUnavailableWithinTheTimeout) {
  ClientOptions options = Options();
  options.address = "127.0.0.1:1";
  options.timeout = absl::Seconds(2);
  Client client(options);
  const absl::Time start = absl::Now();
  const auto reply = client.ListApiKeys({});
  ASSERT_FALSE(reply.ok());
  EXPECT_THAT(reply.status().code(),
              ::testing::AnyOf(absl::StatusCode::kUnavailable,
                               absl::StatusCode::kDeadlineExceeded));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST(ClientTest, HealthCheck) {
  FakeServer fake;
  Client client(Options(), fake.Channel());
  EXPECT_TRUE(client.CheckHealth().ok());
  fake.server().GetHealthCheckService()->SetServingStatus("lumo.x", false);
  const absl::Status status = client.CheckHealth("lumo.x");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("NOT_SERVING"));
  EXPECT_EQ(client.CheckHealth("lumo.unknown").code(),
            absl::StatusCode::kNotFound);
}

TEST(ClientTest, ConcurrentCallsFromManyThreads) {
  FakeServer fake;
  const Client client(Options(), fake.Channel());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        if (!client.GetApiKey({}).ok()) ++failures;
        if (!client.VerifyApiKey({}).ok()) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  const auto calls = fake.state.calls();
  EXPECT_EQ(calls.size(), 400u);
  std::set<std::string> ids;
  for (const auto& call : calls) {
    ids.insert(Values(call.metadata, "x-request-id").at(0));
  }
  EXPECT_EQ(ids.size(), calls.size()) << "request ids must be unique";
}

TEST(RedactKeyMaterialTest, KeepsOnlyThePublicPart) {
  EXPECT_EQ(RedactKeyMaterial("x " + kKey + " y"),
            "x lmk_AbCdEfGhIjKl_[REDACTED] y");
  EXPECT_EQ(RedactKeyMaterial(kKey + kKey),
            "lmk_AbCdEfGhIjKl_[REDACTED]lmk_AbCdEfGhIjKl_[REDACTED]");
  EXPECT_EQ(RedactKeyMaterial("(" + kKey + ")"),
            "(lmk_AbCdEfGhIjKl_[REDACTED])");
  EXPECT_EQ(RedactKeyMaterial("prefix lmk_AbCdEfGhIjKl only"),
            "prefix lmk_AbCdEfGhIjKl only");
  EXPECT_EQ(RedactKeyMaterial("lmk_short_abc"), "lmk_short_abc");
  EXPECT_EQ(RedactKeyMaterial("lmk_"), "lmk_");
  EXPECT_EQ(RedactKeyMaterial("lmk_AbCdEfGhIjKl_"), "lmk_AbCdEfGhIjKl_");
  EXPECT_EQ(RedactKeyMaterial(""), "");
}

TEST(FromGrpcStatusTest, MapsCodes) {
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
  EXPECT_EQ(
      FromGrpcStatus(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no"))
          .code(),
      absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(FromGrpcStatus(
                grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "revoked"))
                .code(),
            absl::StatusCode::kFailedPrecondition);
  // A code no gRPC version defines. 20, not 99: an unscoped enum without a
  // fixed type only holds the values of its bit range (-32..31 here), and
  // UBSan rightly rejects loading 99 from a grpc::StatusCode.
  EXPECT_EQ(
      FromGrpcStatus(grpc::Status(static_cast<grpc::StatusCode>(20), "odd"))
          .code(),
      absl::StatusCode::kUnknown);
}

}  // namespace
}  // namespace lumo::client
