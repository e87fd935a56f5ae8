// The audit trail end to end in one process: real adapters, authenticator,
// batched writer and MySQL stores on a fresh MariaDB database.
#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "lumo/auth/v1/auth.grpc.pb.h"
#include "lumo/keys/v1/keys.grpc.pb.h"
#include "lumo/ops/v1/ops.grpc.pb.h"
#include "server/app/app.h"
#include "server/core/crypto.h"
#include "server/core/key_format.h"
#include "server/service/audit_json.h"
#include "server/service/audit_writer.h"
#include "server/storage/mysql/mysql_audit_store.h"
#include "server/storage/mysql/mysql_backend.h"
#include "server/storage/mysql/mysql_session.h"
#include "tests/rpc/in_process_server.h"
#include "tests/storage/test_database.h"

namespace lumo {
namespace {

using lumo::keys::v1::ApiKey;

constexpr const char* kServiceToken = testing::kTestServiceToken;
constexpr const char* kOperatorToken = testing::kTestOperatorToken;

class AuditTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto started = testing::InProcessServer::Start();
    ASSERT_TRUE(started.ok()) << started.status();
    harness_ = started->release();
    db_ = harness_->db.get();
    app_ = harness_->app.get();
    backend_ = harness_->backend;
    server_ = harness_->server.get();
    channel_ = &harness_->channel;
  }
  static void TearDownTestSuite() { delete harness_; }

  static std::string UniqueSlug(const std::string& base) {
    static std::atomic<int> n{0};
    return absl::StrCat(base, "-", n.fetch_add(1));
  }

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

  static grpc::Status CreateKey(const std::string& tenant,
                                const std::string& caller,
                                std::vector<std::string> scopes, ApiKey* out,
                                std::vector<std::string> cidrs = {}) {
    auto stub = lumo::keys::v1::KeyService::NewStub(*channel_);
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + caller);
    lumo::keys::v1::CreateApiKeyRequest req;
    req.set_tenant_slug(tenant);
    req.set_name("made by test");
    for (auto& s : scopes) req.add_scopes(s);
    for (auto& c : cidrs) req.add_allowed_cidrs(c);
    return stub->CreateApiKey(&ctx, req, out);
  }

  static grpc::Status Rotate(const std::string& tenant,
                             const std::string& caller, const std::string& id,
                             ApiKey* out) {
    auto stub = lumo::keys::v1::KeyService::NewStub(*channel_);
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + caller);
    lumo::keys::v1::RotateApiKeyRequest req;
    req.set_tenant_slug(tenant);
    req.set_id(id);
    return stub->RotateApiKey(&ctx, req, out);
  }

  static grpc::Status Revoke(const std::string& tenant,
                             const std::string& caller, const std::string& id) {
    auto stub = lumo::keys::v1::KeyService::NewStub(*channel_);
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + caller);
    lumo::keys::v1::RevokeApiKeyRequest req;
    req.set_tenant_slug(tenant);
    req.set_id(id);
    ApiKey out;
    return stub->RevokeApiKey(&ctx, req, &out);
  }

  static grpc::Status Delete(const std::string& tenant,
                             const std::string& caller, const std::string& id) {
    auto stub = lumo::keys::v1::KeyService::NewStub(*channel_);
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + caller);
    lumo::keys::v1::DeleteApiKeyRequest req;
    req.set_tenant_slug(tenant);
    req.set_id(id);
    google::protobuf::Empty out;
    return stub->DeleteApiKey(&ctx, req, &out);
  }

  // GetApiKey of `id` presenting `key` (from `ip` via the service token when
  // non-empty).
  static grpc::Status Get(const std::string& tenant, const std::string& key,
                          const std::string& id, const std::string& ip = "") {
    auto stub = lumo::keys::v1::KeyService::NewStub(*channel_);
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + key);
    if (!ip.empty()) {
      ctx.AddMetadata("x-lumo-service-token", kServiceToken);
      ctx.AddMetadata("x-lumo-client-ip", ip);
      ctx.AddMetadata("x-lumo-http-method", "GET");
      ctx.AddMetadata("x-lumo-http-route",
                      "/t/{tenant_slug}/api/v1/admin/api-keys/{id}");
    }
    lumo::keys::v1::GetApiKeyRequest req;
    req.set_tenant_slug(tenant);
    req.set_id(id);
    ApiKey out;
    return stub->GetApiKey(&ctx, req, &out);
  }

  static lumo::auth::v1::VerifyReason Verify(
      const std::string& key, const std::string& tenant,
      const std::string& client_ip = "192.0.2.10") {
    auto stub = lumo::auth::v1::AuthService::NewStub(*channel_);
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-lumo-service-token", kServiceToken);
    lumo::auth::v1::VerifyApiKeyRequest req;
    req.set_key(key);
    req.set_tenant_slug(tenant);
    req.set_client_ip(client_ip);
    lumo::auth::v1::VerifyApiKeyResponse resp;
    grpc::Status st = stub->VerifyApiKey(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.reason();
  }

  static std::string IdOf(const std::string& key) {
    return std::string(core::ParseKey(key).id);
  }

  static std::string TenantId(const std::string& slug) {
    return *db_->QueryValue(
        absl::StrCat("SELECT id FROM tenants WHERE slug = '", slug, "'"));
  }

  // COUNT(*) of the tenant's events matching `where`.
  static int Count(const std::string& slug, const std::string& where) {
    app_->audit_writer().Flush();
    auto v = db_->QueryValue(absl::StrCat(
        "SELECT COUNT(*) FROM audit_events WHERE tenant_id = ", TenantId(slug),
        " AND ", where));
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? std::stoi(*v) : -1;
  }

  static inline testing::InProcessServer* harness_ = nullptr;
  static inline testing::TestDatabase* db_ = nullptr;
  static inline app::App* app_ = nullptr;
  static inline storage::MysqlBackend* backend_ = nullptr;
  static inline grpc::Server* server_ = nullptr;
  static inline std::shared_ptr<grpc::Channel>* channel_ = nullptr;
};

TEST_F(AuditTest, EveryLifecycleRpcWritesExactlyOneEvent) {
  const std::string t = UniqueSlug("life");
  const std::string root = NewTenant(t, {"admin:write"});
  ApiKey k;
  ASSERT_TRUE(CreateKey(t, root, {"admin:read"}, &k).ok());
  ApiKey rotated;
  ASSERT_TRUE(Rotate(t, root, k.id(), &rotated).ok());
  ASSERT_TRUE(Revoke(t, root, k.id()).ok());
  ASSERT_TRUE(Revoke(t, root, k.id()).ok());  // no second event
  ASSERT_TRUE(Delete(t, root, k.id()).ok());
  for (const char* action : {"api_key.created", "api_key.rotated",
                             "api_key.revoked", "api_key.deleted"}) {
    EXPECT_EQ(Count(t, absl::StrCat("action = '", action, "' AND target_id = '",
                                    k.id(), "'")),
              1)
        << action;
  }
}

TEST_F(AuditTest, AFailedChangeLeavesNeitherChangeNorEvent) {
  const std::string t = UniqueSlug("rollback");
  const std::string root = NewTenant(t, {"admin:write"});
  ApiKey k;
  ASSERT_TRUE(CreateKey(t, root, {"admin:read"}, &k).ok());
  ASSERT_TRUE(Revoke(t, root, k.id()).ok());
  const std::string version = *db_->QueryValue(
      absl::StrCat("SELECT version FROM api_keys WHERE id = '", k.id(), "'"));
  ApiKey out;
  EXPECT_EQ(Rotate(t, root, k.id(), &out).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(
      Count(t, absl::StrCat("action = 'api_key.rotated' AND target_id = '",
                            k.id(), "'")),
      0);
  EXPECT_EQ(*db_->QueryValue(absl::StrCat(
                "SELECT version FROM api_keys WHERE id = '", k.id(), "'")),
            version);
  // The failed call itself is recorded as a use (outcome failure).
  EXPECT_EQ(Count(t, absl::StrCat("action = 'api_key.used' AND actor_id = '",
                                  IdOf(root),
                                  "' AND outcome = 'failure' AND metadata LIKE "
                                  "'%RotateApiKey%'")),
            1);
}

TEST_F(AuditTest, KeyUseIsRecordedWithRouteIpAndRequestId) {
  const std::string t = UniqueSlug("use");
  const std::string root = NewTenant(t, {"admin:write"});
  ASSERT_TRUE(Get(t, root, IdOf(root), "198.51.100.7").ok());
  EXPECT_EQ(
      Count(t, absl::StrCat(
                   "action = 'api_key.used' AND actor_id = '", IdOf(root),
                   "' AND ip_address = '198.51.100.7' AND outcome = "
                   "'success' AND request_id <> '' AND JSON_VALUE(metadata,"
                   " '$.httpRoute') = '/t/{tenant_slug}/api/v1/admin/"
                   "api-keys/{id}' AND JSON_VALUE(metadata, '$.httpMethod')"
                   " = 'GET' AND JSON_VALUE(metadata, '$.rpc') = "
                   "'lumo.keys.v1.KeyService.GetApiKey'")),
      1);
}

TEST_F(AuditTest, SustainedVerifyLoadRecordsEveryCallOnce) {
  const std::string t = UniqueSlug("load");
  const std::string root = NewTenant(t, {"admin:read"});
  constexpr int kThreads = 4;
  constexpr int kCalls = 750;
  std::vector<std::thread> threads;
  std::atomic<int> valid{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      auto stub = lumo::auth::v1::AuthService::NewStub(*channel_);
      for (int j = 0; j < kCalls; ++j) {
        grpc::ClientContext ctx;
        ctx.AddMetadata("x-lumo-service-token", kServiceToken);
        lumo::auth::v1::VerifyApiKeyRequest req;
        req.set_key(root);
        req.set_tenant_slug(t);
        lumo::auth::v1::VerifyApiKeyResponse resp;
        if (stub->VerifyApiKey(&ctx, req, &resp).ok() && resp.valid()) ++valid;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(valid.load(), kThreads * kCalls);
  app_->audit_writer().Flush();
  // Every valid verification is counted exactly once, in summaries of at
  // most one window each (docs/audit.md "Verification summaries").
  EXPECT_EQ(*db_->QueryValue(absl::StrCat(
                "SELECT SUM(JSON_VALUE(metadata, '$.count')) FROM "
                "audit_events WHERE tenant_id = ",
                TenantId(t),
                " AND action = 'api_key.used' AND JSON_VALUE(metadata, "
                "'$.rpc') = 'lumo.auth.v1.AuthService.VerifyApiKey'")),
            std::to_string(kThreads * kCalls));
  EXPECT_LT(Count(t, "action = 'api_key.used'"), kThreads * kCalls / 10);
  EXPECT_EQ(app_->audit_writer().stats().dropped, 0u);
}

// Writes `n` summarized events under `key` for `tenant`.
void EnqueueSummarized(service::AuditWriter& writer, int64_t tenant,
                       const std::string& key, int n) {
  for (int i = 0; i < n; ++i) {
    storage::PendingAuditEvent e;
    e.tenant_id = tenant;
    e.event.action = "test.summary";
    e.event.category = "authentication";
    e.event.actor_type = "system";
    e.event.actor_id = key;
    e.event.request_id = absl::StrCat("req-", key, "-", i);
    e.event.metadata_json = service::JsonObject().Add("k", key).Build();
    EXPECT_TRUE(writer.EnqueueSummarized(key, [&] { return std::move(e); }));
  }
}

TEST_F(AuditTest, SummariesFoldOneKeysEventsPerWindow) {
  storage::MysqlAuditStore store(backend_->shared_pool());
  service::AuditWriterOptions options;
  options.flush_interval = absl::Milliseconds(10);
  options.summary_window = absl::Milliseconds(300);
  const std::string t = UniqueSlug("summary");
  NewTenant(t, {"admin:read"});
  const int64_t tenant = std::stoll(TenantId(t));
  service::AuditWriter writer(&store, options);
  EnqueueSummarized(writer, tenant, "a", 5);
  EnqueueSummarized(writer, tenant, "b", 3);
  EXPECT_EQ(writer.stats().open_summaries, 2u);
  EXPECT_EQ(writer.stats().summarized, 6u);
  // Without any Flush: the windows end and the summaries are written.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (Count(t, "action = 'test.summary'") < 2 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(Count(t,
                  "action = 'test.summary' AND actor_id = 'a' AND "
                  "JSON_VALUE(metadata, '$.count') = 5 AND request_id = "
                  "'req-a-0' AND JSON_VALUE(metadata, '$.k') = 'a'"),
            1);
  EXPECT_EQ(Count(t,
                  "action = 'test.summary' AND actor_id = 'b' AND "
                  "JSON_VALUE(metadata, '$.count') = 3"),
            1);
  // A later use of the same key opens a new summary.
  EnqueueSummarized(writer, tenant, "a", 2);
  writer.Flush();  // queues open summaries at once
  EXPECT_EQ(writer.stats().open_summaries, 0u);
  EXPECT_EQ(Count(t,
                  "action = 'test.summary' AND actor_id = 'a' AND "
                  "JSON_VALUE(metadata, '$.count') = 2 AND request_id = "
                  "'req-a-0'"),
            1);
  EXPECT_EQ(Count(t, "action = 'test.summary'"), 3);
  auto chain = store.VerifyChain(tenant);
  ASSERT_TRUE(chain.ok()) << chain.status();
  EXPECT_TRUE(chain->ok) << chain->problem;
}

TEST_F(AuditTest, SummariesWithoutWindowOrRoomAreWrittenOneByOne) {
  storage::MysqlAuditStore store(backend_->shared_pool());
  const std::string t = UniqueSlug("nosummary");
  NewTenant(t, {"admin:read"});
  const int64_t tenant = std::stoll(TenantId(t));
  {
    service::AuditWriterOptions options;
    options.summary_window = absl::ZeroDuration();
    service::AuditWriter writer(&store, options);
    EnqueueSummarized(writer, tenant, "zero", 3);
    writer.Flush();
  }
  EXPECT_EQ(Count(t,
                  "action = 'test.summary' AND actor_id = 'zero' AND "
                  "JSON_VALUE(metadata, '$.count') = 1"),
            3);
  {
    service::AuditWriterOptions options;
    options.summary_window = absl::Hours(1);
    options.max_summaries = 1;
    service::AuditWriter writer(&store, options);
    EnqueueSummarized(writer, tenant, "open", 4);
    // No room for a second open summary: queued on their own.
    EnqueueSummarized(writer, tenant, "full", 2);
    EXPECT_EQ(writer.stats().open_summaries, 1u);
    // Destroying the writer (Stop) writes the open summary.
  }
  EXPECT_EQ(Count(t,
                  "action = 'test.summary' AND actor_id = 'open' AND "
                  "JSON_VALUE(metadata, '$.count') = 4"),
            1);
  EXPECT_EQ(Count(t,
                  "action = 'test.summary' AND actor_id = 'full' AND "
                  "JSON_VALUE(metadata, '$.count') = 1"),
            2);
}

TEST_F(AuditTest, LastUsedAtMovesWithCoalescedWrites) {
  const std::string t = UniqueSlug("lastused");
  const std::string root = NewTenant(t, {"admin:read"});
  EXPECT_EQ(*db_->QueryValue(absl::StrCat(
                "SELECT last_used_at IS NULL FROM api_keys WHERE id = '",
                IdOf(root), "'")),
            "1");
  app_->audit_writer().Flush();
  const uint64_t statements = backend_->audit_store().last_used_statements();
  const uint64_t keys = backend_->audit_store().last_used_keys();
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(Verify(root, t), lumo::auth::v1::VALID);
  }
  app_->audit_writer().Flush();
  EXPECT_EQ(*db_->QueryValue(absl::StrCat(
                "SELECT last_used_at IS NOT NULL FROM api_keys WHERE id = '",
                IdOf(root), "'")),
            "1");
  // 200 uses in at most a few flushes: one key row per flush, never 200.
  const uint64_t flushes =
      backend_->audit_store().last_used_statements() - statements;
  EXPECT_GE(flushes, 1u);
  EXPECT_LE(flushes, 20u);
  EXPECT_EQ(backend_->audit_store().last_used_keys() - keys, flushes);
}

TEST_F(AuditTest, OverflowIsCountedAndRecorded) {
  storage::MysqlAuditStore store(backend_->shared_pool());
  service::AuditWriterOptions options;
  options.max_queue = 5;
  options.max_batch = 1000;
  options.flush_interval = absl::Seconds(30);
  const std::string t = UniqueSlug("overflow");
  NewTenant(t, {"admin:read"});
  const int64_t tenant = std::stoll(TenantId(t));
  {
    service::AuditWriter writer(&store, options);
    int accepted = 0;
    for (int i = 0; i < 12; ++i) {
      storage::PendingAuditEvent e;
      e.tenant_id = tenant;
      e.event.action = "test.event";
      e.event.category = "authentication";
      e.event.actor_type = "system";
      accepted += writer.Enqueue(e) ? 1 : 0;
    }
    EXPECT_EQ(accepted, 5);
    writer.Flush();
    EXPECT_EQ(writer.stats().dropped, 7u);
  }
  EXPECT_EQ(Count(t, "action = 'test.event'"), 5);
  EXPECT_EQ(Count(t,
                  "action = 'audit.dropped' AND "
                  "JSON_VALUE(metadata, '$.dropped') = 7"),
            1);
}

TEST_F(AuditTest, SuspiciousRulesTriggerOnTheirCasesOnly) {
  const std::string t = UniqueSlug("susp");
  const std::string root = NewTenant(t, {"admin:write"});
  // Normal traffic: nothing suspicious.
  ASSERT_TRUE(Get(t, root, IdOf(root)).ok());
  EXPECT_EQ(Count(t, "suspicious = 1"), 0);

  // A rotated-away secret.
  ApiKey k, rotated;
  ASSERT_TRUE(CreateKey(t, root, {"admin:read"}, &k).ok());
  ASSERT_TRUE(Rotate(t, root, k.id(), &rotated).ok());
  EXPECT_FALSE(Get(t, k.key(), k.id()).ok());
  EXPECT_EQ(Count(t, absl::StrCat("suspicious = 1 AND actor_id = '", k.id(),
                                  "' AND JSON_VALUE(metadata, '$.reason') = "
                                  "'rotated'")),
            1);
  // A revoked key, through VerifyApiKey.
  ApiKey r;
  ASSERT_TRUE(CreateKey(t, root, {"admin:read"}, &r).ok());
  ASSERT_TRUE(Revoke(t, root, r.id()).ok());
  EXPECT_EQ(Verify(r.key(), t), lumo::auth::v1::REVOKED);
  EXPECT_EQ(Count(t, absl::StrCat("suspicious = 1 AND actor_id = '", r.id(),
                                  "' AND JSON_VALUE(metadata, '$.reason') = "
                                  "'revoked'")),
            1);
  // Scope denied: an admin:read key rotating.
  ApiKey out;
  EXPECT_EQ(Rotate(t, rotated.key(), rotated.id(), &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Count(t, absl::StrCat("suspicious = 1 AND category = "
                                  "'authorization' AND actor_id = '",
                                  rotated.id(),
                                  "' AND JSON_VALUE(metadata, '$.reason') = "
                                  "'insufficient_scope'")),
            1);
  // Outside the allowed CIDRs.
  ApiKey c;
  ASSERT_TRUE(CreateKey(t, root, {"admin:read"}, &c, {"10.0.0.0/8"}).ok());
  ASSERT_TRUE(Get(t, c.key(), c.id(), "10.1.2.3").ok());
  EXPECT_FALSE(Get(t, c.key(), c.id(), "203.0.113.9").ok());
  EXPECT_EQ(Count(t, absl::StrCat("suspicious = 1 AND actor_id = '", c.id(),
                                  "' AND JSON_VALUE(metadata, '$.reason') = "
                                  "'ip_not_allowed'")),
            1);
  EXPECT_EQ(Count(t, absl::StrCat("suspicious = 1 AND actor_id = '", c.id(),
                                  "' AND ip_address = '10.1.2.3'")),
            0);
  // A burst of wrong secrets on one key id from a fresh address: the first
  // 9 are ordinary, from the 10th on suspicious. The windows are fixed
  // minutes: stay clear of a boundary.
  if (absl::ToUnixSeconds(absl::Now()) % 60 > 50)
    absl::SleepFor(absl::Seconds(11));
  for (int i = 0; i < 12; ++i) {
    auto wrong = core::GenerateKey(IdOf(root));
    ASSERT_TRUE(wrong.ok());
    EXPECT_EQ(Verify(*wrong, t, "192.0.2.99"), lumo::auth::v1::NOT_FOUND);
  }
  EXPECT_EQ(Count(t, absl::StrCat("actor_id = '", IdOf(root),
                                  "' AND action = 'auth.api_key.failed'")),
            12);
  EXPECT_EQ(Count(t, absl::StrCat("actor_id = '", IdOf(root),
                                  "' AND action = 'auth.api_key.failed' AND "
                                  "suspicious = 1 AND metadata LIKE "
                                  "'%burst%'")),
            3);
}

TEST_F(AuditTest, HashChainVerifiesAndNamesTheTamperedRow) {
  const std::string t = UniqueSlug("chain");
  const std::string root = NewTenant(t, {"admin:write"});
  for (int i = 0; i < 5; ++i) {
    ApiKey k;
    ASSERT_TRUE(CreateKey(t, root, {"admin:read"}, &k).ok());
    ASSERT_EQ(Verify(k.key(), t), lumo::auth::v1::VALID);
  }
  app_->audit_writer().Flush();
  const int64_t tenant = std::stoll(TenantId(t));
  auto ok = backend_->audit_store().VerifyChain(tenant);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ok->ok) << ok->problem;
  EXPECT_GE(ok->rows_checked, 15);
  // Tamper with one row as the database administrator.
  const std::string victim = *db_->QueryValue(absl::StrCat(
      "SELECT id FROM audit_events WHERE tenant_id = ", tenant,
      " AND action = 'api_key.used' AND chain_lane = 0 ORDER BY seq LIMIT 1"
      " OFFSET 2"));
  ASSERT_TRUE(db_->Execute(absl::StrCat(
                               "UPDATE audit_events SET ip_address = '1.2.3.4' "
                               "WHERE id = ",
                               victim))
                  .ok());
  auto broken = backend_->audit_store().VerifyChain(tenant);
  ASSERT_TRUE(broken.ok()) << broken.status();
  EXPECT_FALSE(broken->ok);
  EXPECT_EQ(absl::StrCat(broken->broken_id), victim) << broken->problem;
  // Other tenants' chains are unaffected.
  const std::string other = UniqueSlug("chain-other");
  NewTenant(other, {"admin:read"});
  auto fine = backend_->audit_store().VerifyChain(std::stoll(TenantId(other)));
  ASSERT_TRUE(fine.ok());
  EXPECT_TRUE(fine->ok) << fine->problem;
}

TEST_F(AuditTest, DeletedRowIsDetected) {
  const std::string t = UniqueSlug("chain-del");
  const std::string root = NewTenant(t, {"admin:write"});
  // Three admin calls: three api_key.used rows on the writer's lane 0.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Get(t, root, IdOf(root)).ok());
  app_->audit_writer().Flush();
  const int64_t tenant = std::stoll(TenantId(t));
  const std::string victim = *db_->QueryValue(
      absl::StrCat("SELECT id FROM audit_events WHERE tenant_id = ", tenant,
                   " AND chain_lane = 0 ORDER BY seq LIMIT 1 OFFSET 1"));
  const std::string next = *db_->QueryValue(
      absl::StrCat("SELECT id FROM audit_events WHERE tenant_id = ", tenant,
                   " AND chain_lane = 0 ORDER BY seq LIMIT 1 OFFSET 2"));
  ASSERT_TRUE(
      db_->Execute(absl::StrCat("DELETE FROM audit_events WHERE id = ", victim))
          .ok());
  auto broken = backend_->audit_store().VerifyChain(tenant);
  ASSERT_TRUE(broken.ok());
  EXPECT_FALSE(broken->ok);
  EXPECT_EQ(absl::StrCat(broken->broken_id), next) << broken->problem;
}

// Chain lanes (docs/audit.md): concurrent lifecycle transactions of one
// tenant append to different chains, every chain verifies, and a change in
// any lane, its head or its last row is found.
TEST_F(AuditTest, ConcurrentLifecycleWritesUseSeveralLanesThatAllVerify) {
  const std::string t = UniqueSlug("lanes");
  const std::string root = NewTenant(t, {"admin:write"});
  constexpr int kThreads = 8;
  constexpr int kCreates = 5;
  std::vector<std::thread> threads;
  std::atomic<int> created{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < kCreates; ++j) {
        ApiKey k;
        grpc::Status st = CreateKey(t, root, {"admin:read"}, &k);
        if (st.ok()) {
          ++created;
        } else {
          ADD_FAILURE() << st.error_code() << " " << st.error_message();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(created.load(), kThreads * kCreates);
  app_->audit_writer().Flush();
  const int64_t tenant = std::stoll(TenantId(t));
  const int lanes = std::stoi(*db_->QueryValue(absl::StrCat(
      "SELECT COUNT(DISTINCT chain_lane) FROM audit_events WHERE tenant_id = ",
      tenant, " AND action = 'api_key.created'")));
  EXPECT_GE(lanes, 2);
  EXPECT_EQ(Count(t, "action = 'api_key.created' AND chain_lane = 0"), 0);
  auto ok = backend_->audit_store().VerifyChain(tenant);
  ASSERT_TRUE(ok.ok()) << ok.status();
  ASSERT_TRUE(ok->ok) << ok->problem;
  EXPECT_EQ(
      ok->rows_checked,
      std::stoll(*db_->QueryValue(absl::StrCat(
          "SELECT COUNT(*) FROM audit_events WHERE tenant_id = ", tenant))));
  EXPECT_GE(ok->lanes_checked, lanes + 1);  // + the writer's lane 0

  // Tamper with a created event (a transaction lane).
  const std::string row = *db_->QueryValue(absl::StrCat(
      "SELECT CONCAT(id, ' ', chain_lane) FROM audit_events WHERE tenant_id = ",
      tenant, " AND action = 'api_key.created' ORDER BY id DESC LIMIT 1"));
  const std::string id = row.substr(0, row.find(' '));
  const int lane = std::stoi(row.substr(row.find(' ') + 1));
  ASSERT_GT(lane, 0);
  ASSERT_TRUE(db_->Execute(absl::StrCat("UPDATE audit_events SET outcome = "
                                        "'failure' WHERE id = ",
                                        id))
                  .ok());
  auto broken = backend_->audit_store().VerifyChain(tenant);
  ASSERT_TRUE(broken.ok());
  EXPECT_FALSE(broken->ok);
  EXPECT_EQ(absl::StrCat(broken->broken_id), id) << broken->problem;
  EXPECT_EQ(broken->broken_lane, lane);
  ASSERT_TRUE(db_->Execute(absl::StrCat("UPDATE audit_events SET outcome = "
                                        "'success' WHERE id = ",
                                        id))
                  .ok());
  auto restored = backend_->audit_store().VerifyChain(tenant);
  ASSERT_TRUE(restored.ok());
  EXPECT_TRUE(restored->ok) << restored->problem;

  // The lane's last row deleted: its head no longer matches.
  const std::string last = *db_->QueryValue(
      absl::StrCat("SELECT id FROM audit_events WHERE tenant_id = ", tenant,
                   " AND chain_lane = ", lane, " ORDER BY seq DESC LIMIT 1"));
  ASSERT_TRUE(
      db_->Execute(absl::StrCat("DELETE FROM audit_events WHERE id = ", last))
          .ok());
  auto truncated = backend_->audit_store().VerifyChain(tenant);
  ASSERT_TRUE(truncated.ok());
  EXPECT_FALSE(truncated->ok);
  EXPECT_EQ(truncated->broken_lane, lane) << truncated->problem;

  // A lane's head deleted: its rows are still walked, and fail at the end.
  const std::string t2 = UniqueSlug("lanes-head");
  NewTenant(t2, {"admin:read"});
  const int64_t tenant2 = std::stoll(TenantId(t2));
  const std::string lane2 = *db_->QueryValue(absl::StrCat(
      "SELECT chain_lane FROM audit_events WHERE tenant_id = ", tenant2,
      " AND chain_lane > 0 LIMIT 1"));
  ASSERT_TRUE(db_->Execute(absl::StrCat("DELETE FROM audit_chain_heads WHERE "
                                        "tenant_id = ",
                                        tenant2, " AND lane = ", lane2))
                  .ok());
  auto headless = backend_->audit_store().VerifyChain(tenant2);
  ASSERT_TRUE(headless.ok());
  EXPECT_FALSE(headless->ok);
  EXPECT_EQ(absl::StrCat(headless->broken_lane), lane2) << headless->problem;
}

// A follower's cursor (ListEvents after_cursor) sees an event whose
// transaction took its id before a higher id committed, and commits only
// after the follower read past that higher id: each event exactly once.
// Polling by id (after_id) misses it; the test shows both.
TEST_F(AuditTest, FollowerCursorSeesEventsThatCommitOutOfIdOrder) {
  const std::string t = UniqueSlug("follow");
  NewTenant(t, {"admin:read"});
  const int64_t tenant = std::stoll(TenantId(t));
  storage::MysqlAuditStore& store = backend_->audit_store();
  auto event = [](const std::string& action) {
    storage::AuditEvent e;
    e.action = action;
    e.category = "configuration";
    e.actor_type = "system";
    e.metadata_json = "{}";
    return e;
  };
  auto list_after = [&](const storage::AuditCursor& cursor) {
    storage::AuditQuery q;
    q.limit = 100;
    q.after_cursor = cursor;
    absl::StatusOr<storage::AuditPage> page = store.ListEvents(tenant, q);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? *std::move(page) : storage::AuditPage();
  };
  auto actions = [](const storage::AuditPage& page) {
    std::vector<std::string> out;
    for (const auto& e : page.events) out.push_back(e.event.action);
    return out;
  };

  storage::AuditQuery first;
  first.limit = 1;
  first.want_cursor = true;
  absl::StatusOr<storage::AuditPage> start = store.ListEvents(tenant, first);
  ASSERT_TRUE(start.ok()) << start.status();
  ASSERT_TRUE(start->next_cursor.has_value());
  ASSERT_FALSE(start->events.empty());  // the tenant's creation events
  const int64_t start_id = start->events.front().id;

  storage::AuditPage while_open, after_commit;
  int64_t late_id = 0, early_id = 0;
  absl::Status st = storage::Run(
      *backend_->shared_pool(), "test: open transaction",
      [&](storage::Session& s) -> absl::Status {
        s.Begin();
        // A lifecycle transaction's event: takes its id now.
        if (absl::Status a =
                storage::InsertAudit(s, tenant, event("test.late"));
            !a.ok()) {
          return a;
        }
        // Sent now: a queued statement would take its id with the COMMIT
        // (docs/storage.md "Statement batches").
        s.Flush();
        // A batched event takes a higher id and commits first.
        if (absl::Status a = store.AppendEvents({storage::PendingAuditEvent{
                tenant, "", event("test.early"), ""}});
            !a.ok()) {
          return a;
        }
        while_open = list_after(*start->next_cursor);
        s.Commit();
        return absl::OkStatus();
      });
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_THAT(actions(while_open), ::testing::ElementsAre("test.early"));
  ASSERT_TRUE(while_open.next_cursor.has_value());
  ASSERT_EQ(while_open.events.size(), 1u);
  early_id = while_open.events[0].id;

  after_commit = list_after(*while_open.next_cursor);
  EXPECT_THAT(actions(after_commit), ::testing::ElementsAre("test.late"));
  ASSERT_EQ(after_commit.events.size(), 1u);
  late_id = after_commit.events[0].id;
  EXPECT_LT(late_id, early_id);  // the interleaving this test is about
  EXPECT_GT(late_id, start_id);
  ASSERT_TRUE(after_commit.next_cursor.has_value());
  EXPECT_TRUE(list_after(*after_commit.next_cursor).events.empty());

  // Polling by id from the early event's id never returns the late one.
  storage::AuditQuery by_id;
  by_id.limit = 100;
  by_id.oldest_first = true;
  by_id.after_id = early_id;
  absl::StatusOr<storage::AuditPage> missed = store.ListEvents(tenant, by_id);
  ASSERT_TRUE(missed.ok());
  EXPECT_TRUE(missed->events.empty());

  // A cursor that is not one of this log's positions is refused.
  storage::AuditQuery bad;
  bad.after_cursor = storage::AuditCursor{{1, 2, 3}};
  EXPECT_EQ(store.ListEvents(tenant, bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The usage rollups (docs/usage.md): every key use through the real
// adapters lands in usage_hourly and usage_daily under its key, channel and
// outcome, with unattributable failures under the tenant alone.
TEST_F(AuditTest, UsageRollupsCountEveryKeyUseByChannelAndOutcome) {
  const std::string t = UniqueSlug("usage");
  const std::string root = NewTenant(t, {"admin:write"});
  ApiKey reader, revoked;
  ASSERT_TRUE(CreateKey(t, root, {"admin:read"}, &reader).ok());
  ASSERT_TRUE(CreateKey(t, root, {"admin:read"}, &revoked).ok());
  ASSERT_TRUE(Revoke(t, root, revoked.id()).ok());
  // verify/valid: 30 from two addresses (folded into summaries).
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(Verify(reader.key(), t, i % 2 ? "192.0.2.1" : "192.0.2.2"),
              lumo::auth::v1::VALID);
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Verify(revoked.key(), t), lumo::auth::v1::REVOKED);
  }
  // A wrong secret on an existing key: counted under that key.
  auto wrong = core::GenerateKey(reader.id());
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ(Verify(*wrong, t), lumo::auth::v1::NOT_FOUND);
  // An id that names no key: counted under the tenant alone.
  auto unknown = core::GenerateKey("zzzzzzzzzzzz");
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(Verify(*unknown, t), lumo::auth::v1::NOT_FOUND);
  // api/valid twice and api/insufficient_scope once, all by the reader.
  ASSERT_TRUE(Get(t, reader.key(), reader.id()).ok());
  ASSERT_TRUE(Get(t, reader.key(), IdOf(root)).ok());
  ApiKey out;
  EXPECT_EQ(Rotate(t, reader.key(), reader.id(), &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // A portal session that is not one is no key use: not counted.
  {
    auto stub = lumo::keys::v1::KeyService::NewStub(*channel_);
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-lumo-session", "not-a-session");
    lumo::keys::v1::GetApiKeyRequest req;
    req.set_tenant_slug(t);
    req.set_id(reader.id());
    ApiKey got;
    EXPECT_FALSE(stub->GetApiKey(&ctx, req, &got).ok());
  }
  app_->audit_writer().Flush();
  EXPECT_GE(Count(t, "JSON_VALUE(metadata, '$.reason') = 'bad_session'"), 1)
      << "the refused session is audited (but not counted as a key use)";

  for (const char* table : {"usage_hourly", "usage_daily"}) {
    SCOPED_TRACE(table);
    absl::StatusOr<std::vector<std::vector<std::string>>> rows = db_->Query(
        absl::StrCat("SELECT key_id, channel, outcome, SUM(uses) FROM ", table,
                     " WHERE tenant_id = ", TenantId(t),
                     " GROUP BY key_id, channel, outcome"
                     " ORDER BY key_id, channel, outcome"));
    ASSERT_TRUE(rows.ok()) << rows.status();
    std::vector<std::string> got;
    for (const auto& r : *rows) got.push_back(absl::StrJoin(r, " "));
    const std::string root_id = IdOf(root);
    std::vector<std::string> want = {
        " verify not_found 1",
        absl::StrCat(reader.id(), " api insufficient_scope 1"),
        absl::StrCat(reader.id(), " api valid 2"),
        absl::StrCat(reader.id(), " verify not_found 1"),
        absl::StrCat(reader.id(), " verify valid 30"),
        absl::StrCat(revoked.id(), " verify revoked 3"),
        // The root key made CreateApiKey twice and RevokeApiKey once.
        absl::StrCat(root_id, " api valid 3"),
    };
    std::sort(got.begin(), got.end());
    std::sort(want.begin(), want.end());
    EXPECT_EQ(got, want);
  }
}

TEST_F(AuditTest, NoSecretEverReachesTheAuditTable) {
  const std::string t = UniqueSlug("secrets");
  const std::string root = NewTenant(t, {"admin:write"});
  std::vector<std::string> secrets = {root};
  for (int i = 0; i < 3; ++i) {
    ApiKey k, r;
    ASSERT_TRUE(CreateKey(t, root, {"admin:read"}, &k).ok());
    ASSERT_TRUE(Rotate(t, root, k.id(), &r).ok());
    Verify(k.key(), t);
    Verify(r.key(), t);
    Get(t, k.key(), k.id());
    secrets.push_back(k.key());
    secrets.push_back(r.key());
  }
  app_->audit_writer().Flush();
  auto rows = db_->Query(
      "SELECT CONCAT_WS('|', action, actor_id, target_id, ip_address, "
      "user_agent, request_id, metadata) FROM audit_events");
  ASSERT_TRUE(rows.ok());
  ASSERT_FALSE(rows->empty());
  for (const auto& row : *rows) {
    for (const std::string& secret : secrets) {
      // The secret part: everything after "lmk_<id>_".
      const std::string secret_part = secret.substr(17);
      EXPECT_EQ(row[0].find(secret_part), std::string::npos) << row[0];
    }
  }
}

}  // namespace
}  // namespace lumo
