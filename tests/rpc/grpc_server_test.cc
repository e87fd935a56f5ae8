// The gRPC surface end to end in one process: real adapters, real
// authenticator, real MySQL store on a fresh MariaDB database.
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/api/annotations.pb.h"
#include "google/api/http.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "lumo/api/annotations.pb.h"
#include "lumo/bench/v1/bench.grpc.pb.h"
#include "lumo/portal/v1/portal.grpc.pb.h"
#include "server/app/app.h"
#include "server/core/crypto.h"
#include "server/core/key_format.h"
#include "server/core/scopes.h"
#include "server/rpc/authenticator.h"
#include "server/rpc/services.h"
#include "server/storage/mysql/connection_pool.h"
#include "server/storage/mysql/mysql_key_store.h"
#include "tests/rpc/in_process_server.h"
#include "tests/storage/test_database.h"

namespace lumo::rpc {
namespace {

using lumo::auth::v1::VerifyApiKeyRequest;
using lumo::auth::v1::VerifyApiKeyResponse;
using lumo::keys::v1::ApiKey;

constexpr const char* kServiceToken = testing::kTestServiceToken;
constexpr const char* kOperatorToken = testing::kTestOperatorToken;

// One server for the whole suite (start-up costs a database).
class GrpcServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // With the benchmark-only service, so that the authorization matrix
    // covers its methods too.
    auto started = testing::InProcessServer::Start(/*bench_service=*/true);
    ASSERT_TRUE(started.ok()) << started.status();
    harness_ = started->release();
    db_ = harness_->db.get();
    app_ = harness_->app.get();
    server_ = harness_->server.get();
    channel_ = &harness_->channel;
  }
  static void TearDownTestSuite() { delete harness_; }

  // Creates a tenant with a first key of `scopes`; returns the full key.
  static std::string NewTenant(const std::string& slug,
                               std::vector<std::string> scopes) {
    auto stub = lumo::ops::v1::OperatorService::NewStub(*channel_);
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-lumo-operator-token", kOperatorToken);
    lumo::ops::v1::CreateTenantRequest req;
    req.set_slug(slug);
    req.mutable_initial_key()->set_name("root");
    for (auto& s : scopes) req.mutable_initial_key()->add_scopes(s);
    lumo::ops::v1::CreateTenantResponse resp;
    grpc::Status st = stub->CreateTenant(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.initial_key().key();
  }

  static std::string UniqueSlug(const std::string& base) {
    static std::atomic<int> n{0};
    return absl::StrCat(base, "-", n.fetch_add(1));
  }

  grpc::Status CreateKey(const std::string& tenant, const std::string& caller,
                         std::vector<std::string> scopes, ApiKey* out) {
    auto stub = lumo::keys::v1::KeyService::NewStub(*channel_);
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + caller);
    lumo::keys::v1::CreateApiKeyRequest req;
    req.set_tenant_slug(tenant);
    req.set_name("made by test");
    for (auto& s : scopes) req.add_scopes(s);
    return stub->CreateApiKey(&ctx, req, out);
  }

  lumo::auth::v1::VerifyReason Verify(const std::string& key,
                                      const std::string& tenant) {
    auto stub = lumo::auth::v1::AuthService::NewStub(*channel_);
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-lumo-service-token", kServiceToken);
    VerifyApiKeyRequest req;
    req.set_key(key);
    req.set_tenant_slug(tenant);
    VerifyApiKeyResponse resp;
    grpc::Status st = stub->VerifyApiKey(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(resp.valid(), resp.reason() == lumo::auth::v1::VALID);
    return resp.reason();
  }

  // GetApiKey with arbitrary metadata; returns the status and error code.
  std::pair<grpc::Status, std::string> Get(
      const std::string& tenant, const std::string& id,
      const std::vector<std::pair<std::string, std::string>>& metadata) {
    auto stub = lumo::keys::v1::KeyService::NewStub(*channel_);
    grpc::ClientContext ctx;
    for (auto& [k, v] : metadata) ctx.AddMetadata(k, v);
    lumo::keys::v1::GetApiKeyRequest req;
    req.set_tenant_slug(tenant);
    req.set_id(id);
    ApiKey resp;
    grpc::Status st = stub->GetApiKey(&ctx, req, &resp);
    std::string code;
    auto it = ctx.GetServerTrailingMetadata().find("lumo-error-code");
    if (it != ctx.GetServerTrailingMetadata().end()) {
      code = std::string(it->second.data(), it->second.size());
    }
    return {st, code};
  }

  static std::string IdOf(const std::string& key) {
    return std::string(core::ParseKey(key).id);
  }

  static inline testing::InProcessServer* harness_ = nullptr;
  static inline testing::TestDatabase* db_ = nullptr;
  static inline app::App* app_ = nullptr;
  static inline grpc::Server* server_ = nullptr;
  static inline std::shared_ptr<grpc::Channel>* channel_ = nullptr;
};

TEST_F(GrpcServerTest, AllThreeKeyPresentationsAuthenticate) {
  const std::string tenant = UniqueSlug("forms");
  const std::string key = NewTenant(tenant, {"admin:read"});
  for (auto header : std::vector<std::pair<std::string, std::string>>{
           {"authorization", "Bearer " + key},
           {"authorization", "ApiKey " + key},
           {"authorization", "bearer " + key},
           {"x-api-key", key}}) {
    auto [st, code] = Get(tenant, IdOf(key), {header});
    EXPECT_TRUE(st.ok()) << header.first << ": " << st.error_message();
  }
}

TEST_F(GrpcServerTest, TwoDifferentKeysAreRefusedEvenIfBothValid) {
  const std::string tenant = UniqueSlug("two");
  const std::string a = NewTenant(tenant, {"admin:write"});
  ApiKey b;
  ASSERT_TRUE(CreateKey(tenant, a, {"admin:read"}, &b).ok());
  auto [st, code] =
      Get(tenant, IdOf(a),
          {{"authorization", "Bearer " + a}, {"x-api-key", b.key()}});
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(code, "invalid_token");
  // The same key twice is one credential.
  auto [same, unused] = Get(
      tenant, IdOf(a), {{"authorization", "Bearer " + a}, {"x-api-key", a}});
  EXPECT_TRUE(same.ok()) << same.error_message();
}

TEST_F(GrpcServerTest, MissingMalformedAndUnknownKeysGetOneAnswer) {
  const std::string tenant = UniqueSlug("bad");
  const std::string key = NewTenant(tenant, {"admin:read"});
  auto unknown = core::GenerateKey(*core::GenerateKeyId());
  std::vector<std::vector<std::pair<std::string, std::string>>> cases = {
      {},
      {{"authorization", "Bearer nonsense"}},
      {{"authorization", "Basic dXNlcjpwYXNz"}},
      {{"authorization", "Bearer " + *unknown}},
      {{"x-api-key", key.substr(0, key.size() - 1)}},
  };
  for (const auto& metadata : cases) {
    auto [st, code] = Get(tenant, IdOf(key), metadata);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(st.error_message(), "missing or invalid API key");
    EXPECT_EQ(code, "invalid_token");
  }
}

TEST_F(GrpcServerTest, OtherTenantIsIndistinguishableFromNoTenant) {
  const std::string a = UniqueSlug("iso-a");
  const std::string b = UniqueSlug("iso-b");
  const std::string key_a = NewTenant(a, {"admin:write"});
  const std::string key_b = NewTenant(b, {"admin:write"});
  // A's key on B's URL vs on a tenant that does not exist.
  auto [on_b, code_b] = Get(b, IdOf(key_b), {{"x-api-key", key_a}});
  auto [on_none, code_none] =
      Get("no-such-tenant", IdOf(key_b), {{"x-api-key", key_a}});
  EXPECT_EQ(on_b.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(on_b.error_code(), on_none.error_code());
  EXPECT_EQ(on_b.error_message(), on_none.error_message());
  EXPECT_EQ(code_b, code_none);
  // B's key id through A's own tenant vs an id that never existed.
  auto [other_id, c1] = Get(a, IdOf(key_b), {{"x-api-key", key_a}});
  auto [no_id, c2] = Get(a, *core::GenerateKeyId(), {{"x-api-key", key_a}});
  EXPECT_EQ(other_id.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(other_id.error_code(), no_id.error_code());
  EXPECT_EQ(other_id.error_message(), no_id.error_message());
  EXPECT_EQ(c1, c2);
}

TEST_F(GrpcServerTest, ScopesGateEveryMethod) {
  const std::string tenant = UniqueSlug("scopes");
  const std::string root = NewTenant(tenant, {"admin:write"});
  ApiKey reader, users;
  ASSERT_TRUE(CreateKey(tenant, root, {"admin:read"}, &reader).ok());
  ASSERT_TRUE(CreateKey(tenant, root, {"admin:users"}, &users).ok());
  ApiKey out;
  grpc::Status st = CreateKey(tenant, reader.key(), {"admin:read"}, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  auto [read_ok, c1] = Get(tenant, IdOf(root), {{"x-api-key", reader.key()}});
  EXPECT_TRUE(read_ok.ok());
  auto [users_get, c2] = Get(tenant, IdOf(root), {{"x-api-key", users.key()}});
  EXPECT_EQ(users_get.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(c2, "insufficient_scope");
}

TEST_F(GrpcServerTest, LifecycleOverGrpc) {
  const std::string tenant = UniqueSlug("life");
  const std::string root = NewTenant(tenant, {"admin:write"});
  ApiKey created;
  ASSERT_TRUE(CreateKey(tenant, root, {"admin:read"}, &created).ok());
  EXPECT_EQ(created.prefix(), "lmk_" + created.id());
  EXPECT_EQ(created.status(), "active");
  EXPECT_EQ(Verify(created.key(), tenant), lumo::auth::v1::VALID);

  auto stub = lumo::keys::v1::KeyService::NewStub(*channel_);
  // Get and List never show the secret.
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-api-key", root);
    lumo::keys::v1::ListApiKeysRequest req;
    req.set_tenant_slug(tenant);
    lumo::keys::v1::ListApiKeysResponse resp;
    ASSERT_TRUE(stub->ListApiKeys(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.meta().total(), 2);
    for (const ApiKey& k : resp.data()) EXPECT_TRUE(k.key().empty());
  }
  ApiKey rotated;
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-api-key", root);
    lumo::keys::v1::RotateApiKeyRequest req;
    req.set_tenant_slug(tenant);
    req.set_id(created.id());
    ASSERT_TRUE(stub->RotateApiKey(&ctx, req, &rotated).ok());
  }
  EXPECT_EQ(rotated.id(), created.id());
  EXPECT_EQ(rotated.version(), created.version() + 1);
  EXPECT_EQ(Verify(created.key(), tenant), lumo::auth::v1::ROTATED);
  EXPECT_EQ(Verify(rotated.key(), tenant), lumo::auth::v1::VALID);
  EXPECT_EQ(Verify(rotated.key(), "someone-else"),
            lumo::auth::v1::WRONG_TENANT);
  for (int i = 0; i < 2; ++i) {  // revoking twice is not an error
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-api-key", root);
    lumo::keys::v1::RevokeApiKeyRequest req;
    req.set_tenant_slug(tenant);
    req.set_id(created.id());
    ApiKey revoked;
    ASSERT_TRUE(stub->RevokeApiKey(&ctx, req, &revoked).ok());
    EXPECT_EQ(revoked.status(), "revoked");
  }
  EXPECT_EQ(Verify(rotated.key(), tenant), lumo::auth::v1::REVOKED);
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-api-key", root);
    lumo::keys::v1::DeleteApiKeyRequest req;
    req.set_tenant_slug(tenant);
    req.set_id(created.id());
    google::protobuf::Empty empty;
    ASSERT_TRUE(stub->DeleteApiKey(&ctx, req, &empty).ok());
  }
  auto [gone, code] = Get(tenant, created.id(), {{"x-api-key", root}});
  EXPECT_EQ(gone.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Verify(rotated.key(), tenant), lumo::auth::v1::NOT_FOUND);
}

// An expiry a key cannot have is refused before the service runs, and the
// refusal names the field as data (lumo.api.ErrorDetail in the status
// details), on both methods that create a key with an expiry.
TEST_F(GrpcServerTest, AnExpiryOutOfRangeNamesTheFieldInTheStatusDetails) {
  const std::string tenant = UniqueSlug("expiry");
  const std::string root = NewTenant(tenant, {"admin:write"});
  // 10000-01-01T00:00:00Z, one second past the last valid Timestamp.
  constexpr int64_t kPastTheLastTimestamp = 253402300800;
  auto expect_expires_at_named = [](const grpc::Status& st) {
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(st.error_message(), "expiresAt: out of range");
    lumo::api::ErrorStatus details;
    ASSERT_TRUE(details.ParseFromString(st.error_details()));
    ASSERT_EQ(details.details_size(), 1);
    lumo::api::ErrorDetail detail;
    ASSERT_TRUE(details.details(0).UnpackTo(&detail));
    EXPECT_EQ(detail.code(), "validation_error");
    EXPECT_EQ(detail.field(), "expiresAt");
  };
  {
    auto stub = lumo::keys::v1::KeyService::NewStub(*channel_);
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-api-key", root);
    lumo::keys::v1::CreateApiKeyRequest req;
    req.set_tenant_slug(tenant);
    req.set_name("too late");
    req.add_scopes("admin:read");
    req.mutable_expires_at()->set_seconds(kPastTheLastTimestamp);
    ApiKey resp;
    expect_expires_at_named(stub->CreateApiKey(&ctx, req, &resp));
  }
  {
    auto stub = lumo::ops::v1::OperatorService::NewStub(*channel_);
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-lumo-operator-token", kOperatorToken);
    lumo::ops::v1::CreateTenantKeyRequest req;
    req.set_tenant_slug(tenant);
    req.set_name("too late");
    req.add_scopes("admin:read");
    req.mutable_expires_at()->set_seconds(kPastTheLastTimestamp);
    ApiKey resp;
    expect_expires_at_named(stub->CreateTenantKey(&ctx, req, &resp));
  }
}

TEST_F(GrpcServerTest, GraceThenImmediateRotationKillsEveryOldSecret) {
  const std::string tenant = UniqueSlug("grace");
  const std::string root = NewTenant(tenant, {"admin:write"});
  ApiKey original;
  ASSERT_TRUE(CreateKey(tenant, root, {"admin:read"}, &original).ok());
  auto rotate = [&](int64_t grace) {
    auto stub = lumo::keys::v1::KeyService::NewStub(*channel_);
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-api-key", root);
    lumo::keys::v1::RotateApiKeyRequest req;
    req.set_tenant_slug(tenant);
    req.set_id(original.id());
    req.set_grace_period_seconds(grace);
    ApiKey out;
    EXPECT_TRUE(stub->RotateApiKey(&ctx, req, &out).ok());
    return out;
  };
  ApiKey planned = rotate(3600);
  EXPECT_TRUE(planned.has_previous_secret_valid_until());
  EXPECT_EQ(Verify(original.key(), tenant), lumo::auth::v1::VALID);
  EXPECT_EQ(Verify(planned.key(), tenant), lumo::auth::v1::VALID);
  ApiKey urgent = rotate(0);
  EXPECT_EQ(Verify(original.key(), tenant), lumo::auth::v1::ROTATED);
  EXPECT_EQ(Verify(planned.key(), tenant), lumo::auth::v1::ROTATED);
  EXPECT_EQ(Verify(urgent.key(), tenant), lumo::auth::v1::VALID);
}

TEST_F(GrpcServerTest, ConcurrentRotationsHaveOneWinnerPerVersion) {
  const std::string tenant = UniqueSlug("race");
  const std::string root = NewTenant(tenant, {"admin:write"});
  ApiKey target;
  ASSERT_TRUE(CreateKey(tenant, root, {"admin:read"}, &target).ok());
  constexpr int kThreads = 8, kEach = 5;
  std::mutex mu;
  std::map<int64_t, std::string> by_version;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      auto stub = lumo::keys::v1::KeyService::NewStub(*channel_);
      for (int i = 0; i < kEach; ++i) {
        grpc::ClientContext ctx;
        ctx.AddMetadata("x-api-key", root);
        lumo::keys::v1::RotateApiKeyRequest req;
        req.set_tenant_slug(tenant);
        req.set_id(target.id());
        ApiKey out;
        grpc::Status st = stub->RotateApiKey(&ctx, req, &out);
        if (!st.ok()) {
          failures++;
          continue;
        }
        std::lock_guard<std::mutex> lock(mu);
        EXPECT_TRUE(by_version.emplace(out.version(), out.key()).second)
            << "two rotations returned version " << out.version();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_EQ(by_version.size(), static_cast<size_t>(kThreads * kEach));
  EXPECT_EQ(by_version.begin()->first, target.version() + 1);
  EXPECT_EQ(by_version.rbegin()->first, target.version() + kThreads * kEach);
  // Only the last secret works; every earlier one, and the original, is dead.
  EXPECT_EQ(Verify(by_version.rbegin()->second, tenant), lumo::auth::v1::VALID);
  EXPECT_NE(Verify(target.key(), tenant), lumo::auth::v1::VALID);
  for (auto it = by_version.begin(); std::next(it) != by_version.end(); ++it) {
    EXPECT_NE(Verify(it->second, tenant), lumo::auth::v1::VALID)
        << "version " << it->first;
  }
}

TEST_F(GrpcServerTest, VerifyAdmitsOnlyInternalServices) {
  const std::string tenant = UniqueSlug("svc");
  const std::string key = NewTenant(tenant, {"admin:write"});
  auto stub = lumo::auth::v1::AuthService::NewStub(*channel_);
  VerifyApiKeyRequest req;
  req.set_key(key);
  std::vector<std::pair<std::string, std::string>> creds[] = {
      {}, {{"x-lumo-service-token", "wrong-token-0000000000"}}};
  for (const auto& metadata : creds) {
    grpc::ClientContext ctx;
    for (auto& [k, v] : metadata) ctx.AddMetadata(k, v);
    VerifyApiKeyResponse resp;
    EXPECT_EQ(stub->VerifyApiKey(&ctx, req, &resp).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  for (auto header : {std::make_pair(std::string("x-api-key"), key),
                      std::make_pair(std::string("x-lumo-operator-token"),
                                     std::string(kOperatorToken))}) {
    grpc::ClientContext ctx;
    ctx.AddMetadata(header.first, header.second);
    VerifyApiKeyResponse resp;
    EXPECT_EQ(stub->VerifyApiKey(&ctx, req, &resp).error_code(),
              grpc::StatusCode::PERMISSION_DENIED)
        << header.first;
  }
}

TEST_F(GrpcServerTest, OperatorServiceNeedsTheOperatorToken) {
  const std::string tenant = UniqueSlug("op");
  const std::string key = NewTenant(tenant, {"admin:write"});
  auto stub = lumo::ops::v1::OperatorService::NewStub(*channel_);
  lumo::ops::v1::GetTenantRequest req;
  req.set_slug(tenant);
  lumo::ops::v1::Tenant resp;
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-api-key", key);
    EXPECT_EQ(stub->GetTenant(&ctx, req, &resp).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-lumo-operator-token", "not-the-operator-token-00");
    EXPECT_EQ(stub->GetTenant(&ctx, req, &resp).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-lumo-operator-token", kOperatorToken);
    ASSERT_TRUE(stub->GetTenant(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.slug(), tenant);
  }
}

// The authorization matrix, generated from the descriptors: every method of
// every service x several credentials; the expected outcome is computed from
// the method's access rule, so a new RPC is covered without editing this.
TEST_F(GrpcServerTest, AuthorizationMatrixFollowsTheAccessAnnotations) {
  const std::string tenant = UniqueSlug("matrix");
  const std::string root = NewTenant(tenant, {"admin:write"});
  std::map<std::string, std::string> keys;  // scope -> key
  for (const std::string& scope : core::AllScopes()) {
    ApiKey k;
    ASSERT_TRUE(CreateKey(tenant, root, {scope}, &k).ok()) << scope;
    keys[scope] = k.key();
  }
  ApiKey revoked_key;
  ASSERT_TRUE(CreateKey(tenant, root, {"admin:write"}, &revoked_key).ok());
  {
    auto stub = lumo::keys::v1::KeyService::NewStub(*channel_);
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-api-key", root);
    lumo::keys::v1::RevokeApiKeyRequest req;
    req.set_tenant_slug(tenant);
    req.set_id(revoked_key.id());
    ApiKey out;
    ASSERT_TRUE(stub->RevokeApiKey(&ctx, req, &out).ok());
  }
  const std::string other_tenant = UniqueSlug("matrix-other");
  const std::string other_key = NewTenant(other_tenant, {"admin:write"});

  // A portal admin in each tenant, and a login
  // that yields a session token and its CSRF token.
  auto portal = lumo::portal::v1::PortalService::NewStub(*channel_);
  const std::string admin_password = "matrix admin password";
  for (const std::string& slug : {tenant, other_tenant}) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-lumo-operator-token", kOperatorToken);
    lumo::portal::v1::SetPortalAdminRequest req;
    req.set_tenant_slug(slug);
    req.set_email("admin@" + slug + ".example");
    req.set_password(admin_password);
    lumo::portal::v1::PortalUser user;
    ASSERT_TRUE(portal->SetPortalAdmin(&ctx, req, &user).ok()) << slug;
  }
  auto login = [&](const std::string& slug) {
    grpc::ClientContext ctx;
    lumo::portal::v1::LoginRequest req;
    req.set_tenant_slug(slug);
    req.set_email("admin@" + slug + ".example");
    req.set_password(admin_password);
    lumo::portal::v1::LoginResponse resp;
    grpc::Status s = portal->Login(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return std::make_pair(resp.session_token(), resp.csrf_token());
  };
  std::pair<std::string, std::string> session = login(tenant);
  const std::string other_session = login(other_tenant).first;

  grpc::GenericStub generic(*channel_);
  google::protobuf::DynamicMessageFactory factory;
  int checked = 0;
  for (const google::protobuf::ServiceDescriptor* service :
       app_->ServiceDescriptors()) {
    for (int m = 0; m < service->method_count(); ++m) {
      const auto* method = service->method(m);
      const auto& rule = method->options().GetExtension(lumo::api::access);
      ASSERT_GT(rule.principals_size(), 0) << method->full_name();
      bool allows_key = false;
      bool allows_anonymous = false;
      bool allows_session = false;
      for (int p : rule.principals()) {
        allows_key |= p == lumo::api::PRINCIPAL_API_KEY;
        allows_anonymous |= p == lumo::api::PRINCIPAL_ANONYMOUS;
        allows_session |= p == lumo::api::PRINCIPAL_SESSION;
      }
      const bool is_read =
          method->options().GetExtension(google::api::http).pattern_case() ==
          google::api::HttpRule::kGet;
      // A method called with the session may end it (Logout): each method
      // that admits sessions gets a fresh one.
      if (allows_session) session = login(tenant);
      std::vector<std::string> any_of(rule.any_of_scopes().begin(),
                                      rule.any_of_scopes().end());
      // A request addressed to the tenant (field names are conventions of
      // our protos: tenant_slug, id).
      std::unique_ptr<google::protobuf::Message> request(
          factory.GetPrototype(method->input_type())->New());
      const auto* reflection = request->GetReflection();
      if (const auto* f =
              method->input_type()->FindFieldByName("tenant_slug")) {
        reflection->SetString(request.get(), f, tenant);
      }
      if (const auto* f = method->input_type()->FindFieldByName("id")) {
        reflection->SetString(request.get(), f, *core::GenerateKeyId());
      }
      // An action filter matching nothing keeps a streamed export to its
      // one first message: the calls below are unary, and a unary client
      // reads one message (a longer stream would wait for it for ever).
      if (const auto* f = method->input_type()->FindFieldByName("action")) {
        reflection->SetString(request.get(), f, "matrix.nothing");
      }
      std::string bytes = request->SerializeAsString();

      struct Case {
        std::string name;
        std::vector<std::pair<std::string, std::string>> metadata;
        // nullopt: authorised (any non-auth status is fine).
        std::optional<grpc::StatusCode> expected;
      };
      // A method that does not admit API keys refuses any key as the wrong
      // kind of credential (PERMISSION_DENIED) without looking it up.
      const grpc::StatusCode bad_key =
          allows_key ? grpc::StatusCode::UNAUTHENTICATED
                     : grpc::StatusCode::PERMISSION_DENIED;
      // A method admitting anonymous callers passes them to its handler,
      // which applies its own policy: only "not refused as unauthenticated
      // by the authenticator" is checked (nullopt).
      // The leaked-key intake admits anonymous callers and authenticates
      // the request itself (the scanner's signature, absent here), so its
      // handler refuses such a call as unauthenticated.
      const bool signed_by_caller =
          method->full_name() ==
          "lumo.webhooks.v1.SecretScanningService.ReportLeakedTokens";
      std::vector<Case> cases = {
          {"no credential",
           {},
           allows_anonymous && !signed_by_caller
               ? std::nullopt
               : std::optional<grpc::StatusCode>(
                     grpc::StatusCode::UNAUTHENTICATED)},
          {"malformed key", {{"x-api-key", "lmk_garbage"}}, bad_key},
          {"revoked key", {{"x-api-key", revoked_key.key()}}, bad_key},
      };
      if (allows_key) {
        cases.push_back({"other tenant's key",
                         {{"x-api-key", other_key}},
                         grpc::StatusCode::UNAUTHENTICATED});
      }
      for (const auto& [scope, key] : keys) {
        std::optional<grpc::StatusCode> expected;
        if (!allows_key || !core::GrantsAny({scope}, any_of)) {
          expected = grpc::StatusCode::PERMISSION_DENIED;
        }
        cases.push_back({"scope " + scope, {{"x-api-key", key}}, expected});
      }
      // A method that does not admit sessions
      // refuses one as the wrong kind of credential; one that does needs
      // the session's CSRF token for anything but a read, and the session
      // must be live and of the addressed tenant. A session together with a
      // key is conflicting. The case with the CSRF token runs last (it may
      // end the session).
      const grpc::StatusCode bad_session =
          allows_session ? grpc::StatusCode::UNAUTHENTICATED
                         : grpc::StatusCode::PERMISSION_DENIED;
      cases.push_back({"unknown session",
                       {{"x-lumo-session", "lps_" + std::string(43, 'A')}},
                       bad_session});
      cases.push_back({"other tenant's session",
                       {{"x-lumo-session", other_session}},
                       bad_session});
      cases.push_back({"session and key",
                       {{"x-lumo-session", session.first}, {"x-api-key", root}},
                       grpc::StatusCode::UNAUTHENTICATED});
      cases.push_back({"session without CSRF token",
                       {{"x-lumo-session", session.first}},
                       allows_session && is_read
                           ? std::nullopt
                           : std::optional<grpc::StatusCode>(
                                 grpc::StatusCode::PERMISSION_DENIED)});
      cases.push_back({"session with a wrong CSRF token",
                       {{"x-lumo-session", session.first},
                        {"x-lumo-csrf-token", other_session}},
                       allows_session && is_read
                           ? std::nullopt
                           : std::optional<grpc::StatusCode>(
                                 grpc::StatusCode::PERMISSION_DENIED)});
      cases.push_back({"session with CSRF token",
                       {{"x-lumo-session", session.first},
                        {"x-lumo-csrf-token", session.second}},
                       allows_session
                           ? std::nullopt
                           : std::optional<grpc::StatusCode>(
                                 grpc::StatusCode::PERMISSION_DENIED)});
      for (const Case& c : cases) {
        grpc::ClientContext ctx;
        for (auto& [k, v] : c.metadata) ctx.AddMetadata(k, v);
        grpc::ByteBuffer reply;
        grpc::Slice slice(bytes);
        grpc::ByteBuffer request_buffer(&slice, 1);
        std::mutex mu;
        std::condition_variable cv;
        bool done = false;
        grpc::Status status;
        generic.UnaryCall(
            &ctx, absl::StrCat("/", service->full_name(), "/", method->name()),
            grpc::StubOptions(), &request_buffer, &reply, [&](grpc::Status s) {
              std::lock_guard<std::mutex> lock(mu);
              status = s;
              done = true;
              cv.notify_one();
            });
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return done; });
        ++checked;
        if (c.expected.has_value()) {
          EXPECT_EQ(status.error_code(), *c.expected)
              << method->full_name() << " / " << c.name;
        } else {
          EXPECT_NE(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
              << method->full_name() << " / " << c.name;
          EXPECT_NE(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
              << method->full_name() << " / " << c.name;
        }
      }
    }
  }
  EXPECT_GT(checked, 50);
}

// The benchmark-only service is in the matrix above when served, and
// answers the service token (and nothing else) with real work.
TEST_F(GrpcServerTest, BenchServiceIsCoveredAndAnswersOnlyTheServiceToken) {
  bool listed = false;
  for (const auto* service : app_->ServiceDescriptors()) {
    listed |= service->full_name() == "lumo.bench.v1.BenchService";
  }
  EXPECT_TRUE(listed);
  auto stub = lumo::bench::v1::BenchService::NewStub(*channel_);
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-lumo-service-token", kServiceToken);
    lumo::bench::v1::EchoRequest req;
    req.set_payload("ping");
    lumo::bench::v1::EchoResponse resp;
    ASSERT_TRUE(stub->Echo(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.payload(), "ping");
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-lumo-service-token", "wrong-token-0123456789");
    lumo::bench::v1::EchoResponse resp;
    EXPECT_EQ(
        stub->Echo(&ctx, lumo::bench::v1::EchoRequest(), &resp).error_code(),
        grpc::StatusCode::UNAUTHENTICATED);
  }
  const std::string root = NewTenant(UniqueSlug("bench"), {"admin:write"});
  uint64_t queries_before = 0;
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-lumo-service-token", kServiceToken);
    lumo::bench::v1::StatsResponse stats;
    ASSERT_TRUE(
        stub->Stats(&ctx, lumo::bench::v1::StatsRequest(), &stats).ok());
    queries_before = stats.db_queries();
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-lumo-service-token", kServiceToken);
    lumo::bench::v1::PointSelectRequest req;
    req.set_id(IdOf(root));
    lumo::bench::v1::PointSelectResponse resp;
    ASSERT_TRUE(stub->PointSelect(&ctx, req, &resp).ok());
    EXPECT_TRUE(resp.found());
  }
  for (const bool known : {true, false}) {
    // The verification read of a key that exists, and of an id that none
    // has: found, and not found without an error.
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-lumo-service-token", kServiceToken);
    lumo::bench::v1::PointSelectRequest req;
    req.set_id(known ? IdOf(root) : "keyNOSUCHKEY");
    req.set_verify_read(true);
    lumo::bench::v1::PointSelectResponse resp;
    ASSERT_TRUE(stub->PointSelect(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.found(), known);
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-lumo-service-token", kServiceToken);
    lumo::bench::v1::InsertCommitResponse resp;
    ASSERT_TRUE(
        stub->InsertCommit(&ctx, lumo::bench::v1::InsertCommitRequest(), &resp)
            .ok());
    EXPECT_EQ(resp.rows(), 1u);
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-lumo-service-token", kServiceToken);
    lumo::bench::v1::StatsResponse stats;
    ASSERT_TRUE(
        stub->Stats(&ctx, lumo::bench::v1::StatsRequest(), &stats).ok());
    // Three SELECTs (the point select and two verification reads), then
    // START TRANSACTION + INSERT + COMMIT (at least: the audit writer may
    // run its own statements on the same pool).
    EXPECT_GE(stats.db_queries(), queries_before + 6);
  }
}

TEST_F(GrpcServerTest, AMethodWithoutAccessRuleFailsTheStartUpCheck) {
  // Every shipped service passes.
  EXPECT_TRUE(CheckAccessAnnotations(app_->ServiceDescriptors()).ok());
  // A service with an unannotated method does not.
  google::protobuf::FileDescriptorProto file;
  file.set_name("unannotated_test.proto");
  file.set_package("lumo.test");
  file.add_dependency("google/protobuf/empty.proto");
  auto* service = file.add_service();
  service->set_name("Naked");
  auto* method = service->add_method();
  method->set_name("Open");
  method->set_input_type(".google.protobuf.Empty");
  method->set_output_type(".google.protobuf.Empty");
  google::protobuf::DescriptorPool pool(
      google::protobuf::DescriptorPool::generated_pool());
  const auto* fd = pool.BuildFile(file);
  ASSERT_NE(fd, nullptr);
  absl::Status st = CheckAccessAnnotations({fd->service(0)});
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("lumo.test.Naked.Open"), std::string::npos);
}

}  // namespace
}  // namespace lumo::rpc
