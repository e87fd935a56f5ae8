#include "server/service/webhook_service.h"

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/service/errors.h"
#include "tests/storage/fakes/fake_stores.h"

namespace lumo::service {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kPeppers[] =
    "1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
    "2:202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f\n";

WebhookAddressPolicy Strict() { return WebhookAddressPolicy(); }

absl::StatusCode UrlCode(absl::string_view url,
                         const WebhookAddressPolicy& policy = Strict()) {
  return ValidateWebhookUrl(url, policy).code();
}

TEST(WebhookUrlTest, HttpsToPublicHostsOnlyUnlessTheOperatorAllows) {
  EXPECT_EQ(UrlCode("https://hooks.example.com/lumo?x=1"),
            absl::StatusCode::kOk);
  EXPECT_EQ(UrlCode("https://93.184.216.34:8443/in"), absl::StatusCode::kOk);
  EXPECT_EQ(UrlCode("https://[2606:4700::1111]/in"), absl::StatusCode::kOk);
  // Names are checked when a delivery resolves them, not here.
  EXPECT_EQ(UrlCode("https://localhost/in"), absl::StatusCode::kOk);

  EXPECT_EQ(UrlCode("http://127.0.0.1:9000/in"),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(UrlCode("http://hooks.example.com/in"),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(UrlCode("ftp://hooks.example.com/in"),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(UrlCode("https://user:pw@hooks.example.com/"),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(UrlCode("https://hooks.example.com/#frag"),
            absl::StatusCode::kInvalidArgument);
  for (const char* refused :
       {"https://127.0.0.1/", "https://10.0.0.7/", "https://192.168.1.1/",
        "https://169.254.169.254/latest/meta-data", "https://[::1]/",
        "https://[fd00:ec2::254]/", "https://[::ffff:10.0.0.1]/",
        "https://100.64.0.1/", "https://0.0.0.0/"}) {
    absl::Status s = ValidateWebhookUrl(refused, Strict());
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << refused;
    EXPECT_EQ(ErrorKindOf(s), ErrorKind::kInvalidField) << refused;
    EXPECT_THAT(std::string(s.message()), StartsWith("url: ")) << refused;
  }

  WebhookAddressPolicy loopback;
  loopback.allow_http = true;
  loopback.allowed_cidrs.push_back(*core::Cidr::Parse("127.0.0.1/32"));
  EXPECT_EQ(UrlCode("http://127.0.0.1:9000/in", loopback),
            absl::StatusCode::kOk);
  EXPECT_EQ(UrlCode("https://127.0.0.1:9000/in", loopback),
            absl::StatusCode::kOk);
  EXPECT_EQ(UrlCode("https://127.0.0.2/in", loopback),
            absl::StatusCode::kInvalidArgument);
  // http stays loopback-only whatever the operator allows.
  EXPECT_EQ(UrlCode("http://hooks.example.com/in", loopback),
            absl::StatusCode::kInvalidArgument);
}

class WebhookServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    peppers_ = *core::PepperSet::Parse(kPeppers);
    service_ = std::make_unique<WebhookService>(&stores_.webhooks, peppers_,
                                                WebhookOptions());
    caller_ = Tenant("acme");
    other_ = Tenant("globex");
  }

  Principal Tenant(absl::string_view slug) {
    absl::MutexLock lock(&stores_.db->mu);
    const storage::Tenant t = stores_.db->InsertTenant(slug, slug);
    Principal p;
    p.tenant_id = t.id;
    p.tenant_slug = t.slug;
    p.key_id = "AbCdEfGhIjKl";
    p.scopes = {"admin:webhooks"};
    return p;
  }

  WebhookParams Params() {
    WebhookParams p;
    p.url = "https://hooks.example.com/lumo";
    p.description = "SIEM";
    p.event_types = {"audit.suspicious", "api_key.leaked", "audit.suspicious"};
    return p;
  }

  // Every audit row's text, to look for secrets.
  std::string AllAuditText() {
    absl::MutexLock lock(&stores_.db->mu);
    std::string all;
    for (const auto& [id, row] : stores_.db->audit) {
      const storage::AuditEvent& e = row.stored.event;
      absl::StrAppend(&all, e.action, e.metadata_json, e.target_id, "\n");
    }
    return all;
  }

  testing::FakeStores stores_;
  std::shared_ptr<const core::PepperSet> peppers_;
  std::unique_ptr<WebhookService> service_;
  Principal caller_;
  Principal other_;
};

TEST_F(WebhookServiceTest, CreateShowsTheSecretOnceAndKeepsItSealed) {
  absl::StatusOr<WebhookWithSecret> created =
      service_->Create(caller_, {}, Params());
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_THAT(created->record.id, StartsWith("whk_"));
  EXPECT_EQ(created->record.id.size(), 20u);
  EXPECT_THAT(created->secret, StartsWith("whsec_"));
  EXPECT_EQ(created->secret.size(), 6 + 43u);
  EXPECT_EQ(created->record.secret_prefix, created->secret.substr(0, 10));
  EXPECT_THAT(created->record.event_types,
              ElementsAre("api_key.leaked", "audit.suspicious"));
  EXPECT_TRUE(created->record.enabled);
  // Sealed under the current pepper; opens for this endpoint only.
  EXPECT_EQ(created->record.secret.pepper_version, 2);
  EXPECT_FALSE(absl::StrContains(created->record.secret.sealed,
                                 created->secret.substr(6)));
  absl::StatusOr<std::string> opened =
      service_->OpenSecret(created->record.secret, created->record.id);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, created->secret);
  EXPECT_EQ(service_->OpenSecret(created->record.secret, "whk_AAAAAAAAAAAAAAAA")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);

  absl::StatusOr<storage::WebhookEndpointRecord> got =
      service_->Get(caller_, created->record.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->url, "https://hooks.example.com/lumo");
  absl::Status hidden = service_->Get(other_, created->record.id).status();
  EXPECT_EQ(hidden.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrorKindOf(hidden), ErrorKind::kNotFound);

  const std::string audit = AllAuditText();
  EXPECT_THAT(audit, HasSubstr("webhook.created"));
  EXPECT_FALSE(absl::StrContains(audit, created->secret.substr(6)));
}

TEST_F(WebhookServiceTest, BadInputNamesItsFieldAndWritesNothing) {
  WebhookParams unknown = Params();
  unknown.event_types = {"api_key.exploded"};
  absl::Status s = service_->Create(caller_, {}, unknown).status();
  EXPECT_EQ(ErrorKindOf(s), ErrorKind::kInvalidField);
  EXPECT_THAT(std::string(s.message()), StartsWith("eventTypes: "));
  WebhookParams ping = Params();
  ping.event_types = {"ping"};
  EXPECT_EQ(service_->Create(caller_, {}, ping).status().code(),
            absl::StatusCode::kInvalidArgument);
  WebhookParams control = Params();
  control.description = "bad\x01";
  s = service_->Create(caller_, {}, control).status();
  EXPECT_EQ(ErrorKindOf(s), ErrorKind::kInvalidField);
  EXPECT_THAT(std::string(s.message()), StartsWith("description "));
  WebhookParams private_host = Params();
  private_host.url = "https://10.1.2.3/hook";
  EXPECT_EQ(service_->Create(caller_, {}, private_host).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<storage::WebhookEndpointPage> listed =
      service_->List(caller_, std::nullopt, std::nullopt);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->total, 0);
  EXPECT_EQ(AllAuditText(), "");
  EXPECT_EQ(service_->List(caller_, 1, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(WebhookServiceTest, TheTwentyFirstEndpointIsAnInvalidRequest) {
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(service_->Create(caller_, {}, Params()).ok()) << i;
  }
  absl::Status s = service_->Create(caller_, {}, Params()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrorKindOf(s), ErrorKind::kInvalidRequest);
}

TEST_F(WebhookServiceTest, RotationKeepsTheOldSecretSigningForTheOverlap) {
  absl::StatusOr<WebhookWithSecret> created =
      service_->Create(caller_, {}, Params());
  ASSERT_TRUE(created.ok()) << created.status();
  absl::StatusOr<WebhookWithSecret> rotated =
      service_->RotateSecret(caller_, {}, created->record.id, std::nullopt);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_NE(rotated->secret, created->secret);
  ASSERT_TRUE(rotated->record.previous_secret.has_value());
  ASSERT_TRUE(rotated->record.previous_secret_valid_until.has_value());
  EXPECT_EQ(*rotated->record.previous_secret_valid_until -
                *rotated->record.secret_rotated_at,
            kDefaultSecretOverlap);
  absl::StatusOr<std::string> previous = service_->OpenSecret(
      *rotated->record.previous_secret, created->record.id);
  ASSERT_TRUE(previous.ok()) << previous.status();
  EXPECT_EQ(*previous, created->secret);

  absl::Status s =
      service_->RotateSecret(caller_, {}, created->record.id, 7 * 24 * 3600 + 1)
          .status();
  EXPECT_THAT(std::string(s.message()), StartsWith("gracePeriodSeconds: "));
  EXPECT_EQ(
      service_->RotateSecret(other_, {}, created->record.id, 0).status().code(),
      absl::StatusCode::kNotFound);
  EXPECT_FALSE(absl::StrContains(AllAuditText(), rotated->secret.substr(6)));
}

TEST_F(WebhookServiceTest, TheDeliveryLogPagesWithTokens) {
  absl::StatusOr<WebhookWithSecret> created =
      service_->Create(caller_, {}, Params());
  ASSERT_TRUE(created.ok()) << created.status();
  absl::StatusOr<WebhookWithSecret> other =
      service_->Create(caller_, {}, Params());
  ASSERT_TRUE(other.ok()) << other.status();
  const std::string id = created->record.id;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(service_->Test(caller_, {}, id).ok());
  }
  DeliveryListParams params;
  params.limit = 2;
  storage::DeliveryQuery applied;
  absl::StatusOr<storage::DeliveryPage> first =
      service_->ListDeliveries(caller_, id, params, &applied);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->total, 3);  // the first page counts
  ASSERT_EQ(first->deliveries.size(), 2u);
  const std::string token = WebhookService::NextDeliveryPageToken(
      caller_.tenant_id, id, applied, *first);
  ASSERT_FALSE(token.empty());
  params.page_token = token;
  absl::StatusOr<storage::DeliveryPage> second =
      service_->ListDeliveries(caller_, id, params, &applied);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->total_kind, storage::TotalKind::kNotCounted);
  ASSERT_EQ(second->deliveries.size(), 1u);
  EXPECT_LT(second->deliveries[0].id, first->deliveries[1].id);
  EXPECT_EQ(WebhookService::NextDeliveryPageToken(caller_.tenant_id, id,
                                                  applied, *second),
            "");

  // A token is bound to its endpoint and filter, and excludes page numbers.
  absl::Status foreign =
      service_->ListDeliveries(caller_, other->record.id, params, &applied)
          .status();
  EXPECT_THAT(std::string(foreign.message()), StartsWith("pageToken: "));
  params.status = "pending";
  absl::Status filtered =
      service_->ListDeliveries(caller_, id, params, &applied).status();
  EXPECT_THAT(std::string(filtered.message()), StartsWith("pageToken: "));
  params.status.clear();
  params.page = 2;
  absl::Status both =
      service_->ListDeliveries(caller_, id, params, &applied).status();
  EXPECT_THAT(std::string(both.message()), StartsWith("page: "));
}

TEST_F(WebhookServiceTest, TestingQueuesAPingAndTheLogShowsIt) {
  absl::StatusOr<WebhookWithSecret> created =
      service_->Create(caller_, {}, Params());
  ASSERT_TRUE(created.ok()) << created.status();
  absl::StatusOr<storage::WebhookDeliveryRecord> ping =
      service_->Test(caller_, {}, created->record.id);
  ASSERT_TRUE(ping.ok()) << ping.status();
  EXPECT_EQ(ping->event_type, "ping");
  storage::DeliveryQuery applied;
  DeliveryListParams pending;
  pending.status = "pending";
  absl::StatusOr<storage::DeliveryPage> log =
      service_->ListDeliveries(caller_, created->record.id, pending, &applied);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->total, 1);
  DeliveryListParams lost;
  lost.status = "lost";
  absl::Status bad =
      service_->ListDeliveries(caller_, created->record.id, lost, &applied)
          .status();
  EXPECT_THAT(std::string(bad.message()), StartsWith("status: "));

  WebhookPatch off;
  off.enabled = false;
  ASSERT_TRUE(service_->Update(caller_, {}, created->record.id, off).ok());
  absl::Status refused =
      service_->Test(caller_, {}, created->record.id).status();
  EXPECT_EQ(ErrorKindOf(refused), ErrorKind::kInvalidRequest);
}

TEST(WebhookPayloadTest, RendersTheStoredEventWithoutAnythingElse) {
  storage::WebhookEventRecord e;
  e.event_id = "evt_0123456789abcdefghijkl";
  e.tenant_slug = "acme";
  e.type = "api_key.revoked";
  e.created_at = absl::FromUnixMicros(1796543210123456);
  e.audit.action = "api_key.revoked";
  e.audit.category = "api_keys";
  e.audit.actor_type = "api_key";
  e.audit.actor_id = "AbCdEfGhIjKl";
  e.audit.target_type = "api_key";
  e.audit.target_id = "XyZ123456789";
  e.audit.outcome = "success";
  e.audit.ip_address = "203.0.113.9";
  e.audit.user_agent = "curl/8 \"quoted\"";
  e.audit.request_id = "req-1";
  e.audit.metadata_json = R"({"name":"ci"})";
  EXPECT_EQ(WebhookPayload(e, "whk_0123456789abcdef"),
            R"({"id":"evt_0123456789abcdefghijkl","type":"api_key.revoked",)"
            R"("createdAt":"2026-12-06T07:46:50.123456Z","tenant":"acme",)"
            R"("data":{"action":"api_key.revoked","category":"api_keys",)"
            R"("actor":{"type":"api_key","id":"AbCdEfGhIjKl"},)"
            R"("target":{"type":"api_key","id":"XyZ123456789",)"
            R"("prefix":"lmk_XyZ123456789"},"outcome":"success",)"
            R"("suspicious":false,"ipAddress":"203.0.113.9",)"
            R"("userAgent":"curl/8 \"quoted\"","requestId":"req-1",)"
            R"("metadata":{"name":"ci"}}})");

  storage::WebhookEventRecord ping;
  ping.event_id = "evt_0123456789abcdefghijkm";
  ping.tenant_slug = "acme";
  ping.type = "ping";
  ping.created_at = absl::FromUnixSeconds(0);
  EXPECT_EQ(WebhookPayload(ping, "whk_0123456789abcdef"),
            R"({"id":"evt_0123456789abcdefghijkm","type":"ping",)"
            R"("createdAt":"1970-01-01T00:00:00.000000Z","tenant":"acme",)"
            R"("data":{"webhookId":"whk_0123456789abcdef"}})");
}

}  // namespace
}  // namespace lumo::service
