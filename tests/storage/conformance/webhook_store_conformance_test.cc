// The WebhookStore contract (server/storage/webhook_store.h): endpoints,
// the outbox that audit appends fill in their own transaction, claims and
// attempt outcomes, run against every implementation.
#include <algorithm>
#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/crypto.h"
#include "server/core/key_format.h"
#include "server/storage/webhook_outbox.h"
#include "server/storage/webhook_store.h"
#include "tests/storage/conformance/store_fixture.h"

namespace lumo::testing {
namespace {

using storage::DeliveryState;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

storage::NewWebhookEndpoint Endpoint(int64_t tenant_id,
                                     std::vector<std::string> types = {},
                                     bool enabled = true) {
  storage::NewWebhookEndpoint e;
  e.id = absl::StrCat("whk_", core::RandomBase62(16).value_or(""));
  e.tenant_id = tenant_id;
  e.url = "https://hooks.example.com/lumo";
  e.description = "SIEM";
  e.event_types = std::move(types);
  e.enabled = enabled;
  // Sealed secrets are binary: NUL and high bytes must survive.
  e.secret = storage::SealedSecret{
      absl::StrCat(std::string("\x01\x00\xff", 3), Unique("sealed")), 1};
  e.secret_prefix = "whsec_abcd";
  return e;
}

// Creates `e` (at most 20 per tenant) or fails the test.
storage::WebhookEndpointRecord Create(StoreFixture& f,
                                      const storage::NewWebhookEndpoint& e) {
  absl::StatusOr<storage::WebhookEndpointRecord> created =
      f.webhooks().CreateEndpoint(e, 20, Event("webhook.created"));
  EXPECT_TRUE(created.ok()) << created.status();
  return created.value_or(storage::WebhookEndpointRecord());
}

std::vector<storage::WebhookDeliveryRecord> DeliveriesOf(
    StoreFixture& f, int64_t tenant_id, absl::string_view endpoint_id) {
  storage::DeliveryQuery q;
  q.limit = 100;
  absl::StatusOr<storage::DeliveryPage> page =
      f.webhooks().ListDeliveries(tenant_id, endpoint_id, q);
  EXPECT_TRUE(page.ok()) << page.status();
  return page.ok() ? page->deliveries
                   : std::vector<storage::WebhookDeliveryRecord>();
}

storage::AuditEvent Suspicious(absl::string_view action) {
  storage::AuditEvent e = Event(action);
  e.category = "authentication";
  e.outcome = "failure";
  e.suspicious = true;
  e.ip_address = "203.0.113.9";
  e.user_agent = "scanner/1.0";
  e.metadata_json = R"({"reason":"rotated"})";
  return e;
}

template <typename Impl>
class WebhookStoreConformanceTest : public SharedStoreTest<Impl> {};
TYPED_TEST_SUITE(WebhookStoreConformanceTest, Implementations,
                 ImplementationName);

// Claims are database-wide: these tests get a database of their own.
template <typename Impl>
class WebhookClaimConformanceTest : public FreshStoreTest<Impl> {};
TYPED_TEST_SUITE(WebhookClaimConformanceTest, Implementations,
                 ImplementationName);

TYPED_TEST(WebhookStoreConformanceTest, EndpointsAreKeptInTheirTenant) {
  StoreFixture& f = this->f();
  const storage::Tenant a = NewTenant(f);
  const storage::Tenant b = NewTenant(f);
  const storage::NewWebhookEndpoint e =
      Endpoint(a.id, {"api_key.revoked", "audit.suspicious"});
  const storage::WebhookEndpointRecord created = Create(f, e);
  EXPECT_EQ(created.id, e.id);

  absl::StatusOr<storage::WebhookEndpointRecord> got =
      f.webhooks().GetEndpoint(a.id, e.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->url, e.url);
  EXPECT_EQ(got->description, "SIEM");
  EXPECT_THAT(got->event_types,
              ElementsAre("api_key.revoked", "audit.suspicious"));
  EXPECT_TRUE(got->enabled);
  EXPECT_EQ(got->disabled_reason, "");
  EXPECT_EQ(got->secret.sealed, e.secret.sealed);  // bytes kept exactly
  EXPECT_EQ(got->secret.pepper_version, 1);
  EXPECT_EQ(got->secret_prefix, "whsec_abcd");
  EXPECT_FALSE(got->previous_secret.has_value());
  EXPECT_EQ(got->consecutive_failures, 0);
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(EventsOf(f, a.id, "webhook.created").size(), 1u);

  EXPECT_EQ(f.webhooks().GetEndpoint(b.id, e.id).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(f.webhooks().GetEndpoint(a.id, "whk_nope").status().code(),
            absl::StatusCode::kNotFound);
  absl::StatusOr<storage::WebhookEndpointPage> listed =
      f.webhooks().ListEndpoints(a.id, 1, 10);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->total, 1);
  ASSERT_EQ(listed->endpoints.size(), 1u);
  EXPECT_EQ(listed->endpoints[0].id, e.id);
  absl::StatusOr<storage::WebhookEndpointPage> other =
      f.webhooks().ListEndpoints(b.id, 1, 10);
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->total, 0);
  EXPECT_EQ(f.webhooks().ListEndpoints(a.id, 1, 0).status().code(),
            absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(f.webhooks()
                .CreateEndpoint(e, 20, Event("webhook.created"))
                .status()
                .code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(EventsOf(f, a.id, "webhook.created").size(), 1u);
}

TYPED_TEST(WebhookStoreConformanceTest, ATenantHasAtMostTheGivenNumber) {
  StoreFixture& f = this->f();
  const storage::Tenant a = NewTenant(f);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(f.webhooks()
                    .CreateEndpoint(Endpoint(a.id), 2, Event("webhook.created"))
                    .ok());
  }
  EXPECT_EQ(f.webhooks()
                .CreateEndpoint(Endpoint(a.id), 2, Event("webhook.created"))
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(EventsOf(f, a.id, "webhook.created").size(), 2u);
  // Another tenant is not counted.
  const storage::Tenant b = NewTenant(f);
  EXPECT_TRUE(f.webhooks()
                  .CreateEndpoint(Endpoint(b.id), 2, Event("webhook.created"))
                  .ok());
}

TYPED_TEST(WebhookStoreConformanceTest, UpdatesChangeWhatIsSetOnly) {
  StoreFixture& f = this->f();
  const storage::Tenant a = NewTenant(f);
  const storage::WebhookEndpointRecord e = Create(f, Endpoint(a.id));

  storage::WebhookEndpointUpdate same;
  same.url = e.url;
  same.enabled = true;
  bool changed = true;
  absl::StatusOr<storage::WebhookEndpointRecord> unchanged =
      f.webhooks().UpdateEndpoint(a.id, e.id, same, Event("webhook.updated"),
                                  &changed);
  ASSERT_TRUE(unchanged.ok()) << unchanged.status();
  EXPECT_FALSE(changed);
  EXPECT_EQ(unchanged->version, 1);
  EXPECT_THAT(EventsOf(f, a.id, "webhook.updated"), IsEmpty());

  storage::WebhookEndpointUpdate update;
  update.description = "pager";
  update.event_types = std::vector<std::string>{"api_key.leaked"};
  absl::StatusOr<storage::WebhookEndpointRecord> updated =
      f.webhooks().UpdateEndpoint(a.id, e.id, update, Event("webhook.updated"),
                                  &changed);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_TRUE(changed);
  EXPECT_EQ(updated->url, e.url);
  EXPECT_EQ(updated->description, "pager");
  EXPECT_THAT(updated->event_types, ElementsAre("api_key.leaked"));
  EXPECT_EQ(updated->version, 2);

  storage::WebhookEndpointUpdate disable;
  disable.enabled = false;
  updated = f.webhooks().UpdateEndpoint(a.id, e.id, disable,
                                        Event("webhook.updated"), &changed);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_FALSE(updated->enabled);
  EXPECT_EQ(updated->disabled_reason, "manual");
  storage::WebhookEndpointUpdate enable;
  enable.enabled = true;
  updated = f.webhooks().UpdateEndpoint(a.id, e.id, enable,
                                        Event("webhook.updated"), &changed);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_TRUE(updated->enabled);
  EXPECT_EQ(updated->disabled_reason, "");
  EXPECT_EQ(EventsOf(f, a.id, "webhook.updated").size(), 3u);

  const storage::Tenant b = NewTenant(f);
  EXPECT_EQ(f.webhooks()
                .UpdateEndpoint(b.id, e.id, update, Event("webhook.updated"),
                                &changed)
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TYPED_TEST(WebhookStoreConformanceTest, ARotatedSecretSignsDuringTheOverlap) {
  StoreFixture& f = this->f();
  const storage::Tenant a = NewTenant(f);
  const storage::NewWebhookEndpoint e = Endpoint(a.id);
  Create(f, e);
  const storage::SealedSecret second{"second", 2};
  absl::StatusOr<storage::WebhookEndpointRecord> rotated =
      f.webhooks().RotateSecret(a.id, e.id, second, "whsec_2222",
                                absl::Milliseconds(300),
                                Event("webhook.secret_rotated"));
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(rotated->secret.sealed, "second");
  EXPECT_EQ(rotated->secret.pepper_version, 2);
  EXPECT_EQ(rotated->secret_prefix, "whsec_2222");
  ASSERT_TRUE(rotated->previous_secret.has_value());
  EXPECT_EQ(rotated->previous_secret->sealed, e.secret.sealed);
  ASSERT_TRUE(rotated->previous_secret_valid_until.has_value());
  ASSERT_TRUE(rotated->secret_rotated_at.has_value());
  EXPECT_EQ(*rotated->previous_secret_valid_until,
            *rotated->secret_rotated_at + absl::Milliseconds(300));
  EXPECT_EQ(rotated->version, 2);

  f.LetTimePass(absl::Milliseconds(300));
  absl::StatusOr<storage::WebhookEndpointRecord> later =
      f.webhooks().GetEndpoint(a.id, e.id);
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_FALSE(later->previous_secret.has_value());

  // A rotation without overlap drops the previous secret at once.
  ASSERT_TRUE(f.webhooks()
                  .RotateSecret(a.id, e.id, second, "whsec_2222",
                                absl::Hours(1), Event("webhook.secret_rotated"))
                  .ok());
  rotated = f.webhooks().RotateSecret(a.id, e.id, {"third", 2}, "whsec_3333",
                                      absl::ZeroDuration(),
                                      Event("webhook.secret_rotated"));
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_FALSE(rotated->previous_secret.has_value());
  EXPECT_EQ(EventsOf(f, a.id, "webhook.secret_rotated").size(), 3u);
}

TYPED_TEST(WebhookStoreConformanceTest,
           AuditEventsFillTheOutboxOfEnabledSubscribedEndpoints) {
  StoreFixture& f = this->f();
  const storage::Tenant a = NewTenant(f);
  const storage::WebhookEndpointRecord all = Create(f, Endpoint(a.id));
  const storage::WebhookEndpointRecord revoked_only =
      Create(f, Endpoint(a.id, {"api_key.revoked"}));
  const storage::WebhookEndpointRecord off =
      Create(f, Endpoint(a.id, {}, /*enabled=*/false));
  const storage::Tenant b = NewTenant(f);
  const storage::WebhookEndpointRecord other_tenant = Create(f, Endpoint(b.id));

  // A lifecycle transaction: the key and its event, and the webhook.
  const storage::NewKey key = NewKey(a.id);
  storage::AuditEvent created = Event("api_key.created");
  created.category = "api_keys";
  created.target_type = "api_key";
  created.target_id = key.id;
  created.metadata_json = R"({"name":"key"})";
  ASSERT_TRUE(f.keys().InsertKey(key, created).ok());
  // Not webhook events: an ordinary use, an admin write.
  ASSERT_TRUE(
      f.audit().AppendEvents({{a.id, "", Event("api_key.used"), ""}}).ok());
  ASSERT_TRUE(
      f.keys()
          .CreateTenant(Unique("t"), "T", nullptr, {Event("tenant.created")})
          .ok());
  // A suspicious event through the batched writer.
  ASSERT_TRUE(
      f.audit()
          .AppendEvents({{a.id, "", Suspicious("auth.api_key.failed"), ""}})
          .ok());

  std::vector<storage::WebhookDeliveryRecord> to_all =
      DeliveriesOf(f, a.id, all.id);
  ASSERT_EQ(to_all.size(), 2u);
  // Newest first.
  EXPECT_EQ(to_all[0].event_type, "audit.suspicious");
  EXPECT_EQ(to_all[1].event_type, "api_key.created");
  for (const storage::WebhookDeliveryRecord& d : to_all) {
    EXPECT_EQ(d.state, DeliveryState::kPending);
    EXPECT_EQ(d.attempts, 0);
    EXPECT_EQ(d.endpoint_id, all.id);
    EXPECT_TRUE(storage::IsWebhookEventId(d.event_id)) << d.event_id;
    EXPECT_EQ(d.next_attempt_at, d.created_at);
  }
  EXPECT_NE(to_all[0].event_id, to_all[1].event_id);
  EXPECT_THAT(DeliveriesOf(f, a.id, revoked_only.id), IsEmpty());
  EXPECT_THAT(DeliveriesOf(f, a.id, off.id), IsEmpty());
  EXPECT_THAT(DeliveriesOf(f, b.id, other_tenant.id), IsEmpty());

  // The event keeps the audit event's facts, at the audit event's time.
  absl::StatusOr<storage::WebhookEventRecord> event =
      f.webhooks().GetEvent(a.id, to_all[1].event_id);
  ASSERT_TRUE(event.ok()) << event.status();
  EXPECT_EQ(event->type, "api_key.created");
  EXPECT_EQ(event->tenant_slug, a.slug);
  EXPECT_EQ(event->audit.action, "api_key.created");
  EXPECT_EQ(event->audit.target_id, key.id);
  EXPECT_EQ(event->audit.metadata_json, R"({"name":"key"})");
  const std::vector<storage::StoredAuditEvent> audit =
      EventsOf(f, a.id, "api_key.created");
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(event->created_at, audit[0].created_at);
  absl::StatusOr<storage::WebhookEventRecord> suspicious =
      f.webhooks().GetEvent(a.id, to_all[0].event_id);
  ASSERT_TRUE(suspicious.ok()) << suspicious.status();
  EXPECT_TRUE(suspicious->audit.suspicious);
  EXPECT_EQ(suspicious->audit.ip_address, "203.0.113.9");
  EXPECT_EQ(suspicious->audit.user_agent, "scanner/1.0");
  EXPECT_EQ(f.webhooks().GetEvent(b.id, to_all[0].event_id).status().code(),
            absl::StatusCode::kNotFound);

  // A failed change leaves neither its audit event nor a webhook.
  EXPECT_EQ(f.keys().InsertKey(key, created).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(DeliveriesOf(f, a.id, all.id).size(), 2u);
}

// The wake-on-commit signal: raised once deliveries are committed, never for
// a transaction that wrote none or did not commit.
TYPED_TEST(WebhookStoreConformanceTest, CommittedDeliveriesRaiseTheSignal) {
  StoreFixture& f = this->f();
  std::atomic<int> raised{0};
  f.outbox_signal().Listen([&raised] { ++raised; });
  const storage::Tenant a = NewTenant(f);
  const storage::NewKey first = NewKey(a.id);
  ASSERT_TRUE(f.keys().InsertKey(first, Event("api_key.created")).ok());
  EXPECT_EQ(raised.load(), 0) << "no endpoint: no delivery";
  const storage::WebhookEndpointRecord all = Create(f, Endpoint(a.id));
  EXPECT_EQ(raised.load(), 0) << "webhook.created is no webhook event";

  const storage::NewKey second = NewKey(a.id);
  ASSERT_TRUE(f.keys().InsertKey(second, Event("api_key.created")).ok());
  EXPECT_GT(raised.load(), 0) << "a lifecycle transaction";
  int before = raised.load();
  EXPECT_EQ(f.keys().InsertKey(second, Event("api_key.created")).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(raised.load(), before) << "a failed transaction";
  ASSERT_TRUE(
      f.audit()
          .AppendEvents({{a.id, "", Suspicious("auth.api_key.failed"), ""}})
          .ok());
  EXPECT_GT(raised.load(), before) << "the batched writer";
  before = raised.load();
  ASSERT_TRUE(
      f.webhooks().EnqueuePing(a.id, all.id, Event("webhook.tested")).ok());
  EXPECT_GT(raised.load(), before) << "a ping";
  f.outbox_signal().Listen(nullptr);
  EXPECT_EQ(DeliveriesOf(f, a.id, all.id).size(), 3u);
}

TYPED_TEST(WebhookStoreConformanceTest, APingGoesToItsEndpointOnly) {
  StoreFixture& f = this->f();
  const storage::Tenant a = NewTenant(f);
  const storage::WebhookEndpointRecord target =
      Create(f, Endpoint(a.id, {"api_key.leaked"}));
  const storage::WebhookEndpointRecord bystander = Create(f, Endpoint(a.id));
  absl::StatusOr<storage::WebhookDeliveryRecord> ping =
      f.webhooks().EnqueuePing(a.id, target.id, Event("webhook.tested"));
  ASSERT_TRUE(ping.ok()) << ping.status();
  EXPECT_EQ(ping->event_type, "ping");
  EXPECT_EQ(ping->endpoint_id, target.id);
  EXPECT_EQ(ping->state, DeliveryState::kPending);
  EXPECT_EQ(DeliveriesOf(f, a.id, target.id).size(), 1u);
  EXPECT_THAT(DeliveriesOf(f, a.id, bystander.id), IsEmpty());
  EXPECT_EQ(EventsOf(f, a.id, "webhook.tested").size(), 1u);

  storage::WebhookEndpointUpdate disable;
  disable.enabled = false;
  bool changed = false;
  ASSERT_TRUE(f.webhooks()
                  .UpdateEndpoint(a.id, target.id, disable,
                                  Event("webhook.updated"), &changed)
                  .ok());
  EXPECT_EQ(f.webhooks()
                .EnqueuePing(a.id, target.id, Event("webhook.tested"))
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  // Disabling cancelled the pending ping.
  std::vector<storage::WebhookDeliveryRecord> log =
      DeliveriesOf(f, a.id, target.id);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].state, DeliveryState::kCancelled);
  const storage::Tenant b = NewTenant(f);
  EXPECT_EQ(f.webhooks()
                .EnqueuePing(b.id, bystander.id, Event("webhook.tested"))
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TYPED_TEST(WebhookStoreConformanceTest, ALeakedSecretIsRecordedOnce) {
  StoreFixture& f = this->f();
  const storage::Tenant a = NewTenant(f);
  storage::LeakedSecretReport report;
  report.key_id = core::GenerateKeyId().value();
  report.tenant_id = a.id;
  report.secret_digest = core::Sha256(Unique("secret"));
  report.url = "https://github.com/acme/app/blob/main/.env";
  report.source = "content";
  absl::StatusOr<bool> reported =
      f.webhooks().LeakReported(report.key_id, report.secret_digest);
  ASSERT_TRUE(reported.ok()) << reported.status();
  EXPECT_FALSE(*reported);

  absl::StatusOr<bool> recorded =
      f.webhooks().RecordLeakReport(report, Event("api_key.leaked"));
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  EXPECT_TRUE(*recorded);
  reported = f.webhooks().LeakReported(report.key_id, report.secret_digest);
  ASSERT_TRUE(reported.ok()) << reported.status();
  EXPECT_TRUE(*reported);
  EXPECT_EQ(EventsOf(f, a.id, "api_key.leaked").size(), 1u);

  // The same secret again: nothing written.
  recorded = f.webhooks().RecordLeakReport(report, Event("api_key.leaked"));
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  EXPECT_FALSE(*recorded);
  EXPECT_EQ(EventsOf(f, a.id, "api_key.leaked").size(), 1u);

  // Another secret of the same key is another report.
  storage::LeakedSecretReport other = report;
  other.secret_digest = core::Sha256(Unique("secret"));
  EXPECT_FALSE(*f.webhooks().LeakReported(other.key_id, other.secret_digest));
  recorded = f.webhooks().RecordLeakReport(other, Event("api_key.leaked"));
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  EXPECT_TRUE(*recorded);
  EXPECT_EQ(EventsOf(f, a.id, "api_key.leaked").size(), 2u);

  // Values that do not fit change nothing.
  storage::LeakedSecretReport too_long = report;
  too_long.secret_digest = core::Sha256(Unique("secret"));
  too_long.url = std::string(2049, 'u');
  EXPECT_EQ(f.webhooks()
                .RecordLeakReport(too_long, Event("api_key.leaked"))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EventsOf(f, a.id, "api_key.leaked").size(), 2u);
}

TYPED_TEST(WebhookStoreConformanceTest, APagePastTheEndIsEmptyButCounts) {
  StoreFixture& f = this->f();
  const storage::Tenant a = NewTenant(f);
  const storage::WebhookEndpointRecord e = Create(f, Endpoint(a.id));
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(
        f.webhooks().EnqueuePing(a.id, e.id, Event("webhook.tested")).ok());
  }
  const size_t all = DeliveriesOf(f, a.id, e.id).size();
  ASSERT_GE(all, 2u);
  storage::DeliveryQuery q;
  q.limit = 1;
  q.page = static_cast<int>(all) + 3;
  absl::StatusOr<storage::DeliveryPage> past =
      f.webhooks().ListDeliveries(a.id, e.id, q);
  ASSERT_TRUE(past.ok()) << past.status();
  EXPECT_THAT(past->deliveries, IsEmpty());
  EXPECT_EQ(past->total, static_cast<int64_t>(all));
  q.page = static_cast<int>(all);
  absl::StatusOr<storage::DeliveryPage> last =
      f.webhooks().ListDeliveries(a.id, e.id, q);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->deliveries.size(), 1u);
  EXPECT_EQ(last->total, static_cast<int64_t>(all));
  // With a state filter the count is of that state.
  q.page = 5;
  q.state = DeliveryState::kPending;
  past = f.webhooks().ListDeliveries(a.id, e.id, q);
  ASSERT_TRUE(past.ok()) << past.status();
  EXPECT_THAT(past->deliveries, IsEmpty());
  EXPECT_EQ(past->total, static_cast<int64_t>(all));
  q.state = DeliveryState::kFailed;
  past = f.webhooks().ListDeliveries(a.id, e.id, q);
  ASSERT_TRUE(past.ok()) << past.status();
  EXPECT_EQ(past->total, 0);
}

TYPED_TEST(WebhookStoreConformanceTest, TheDeliveryLogPagesByPosition) {
  StoreFixture& f = this->f();
  const storage::Tenant a = NewTenant(f);
  const storage::WebhookEndpointRecord e = Create(f, Endpoint(a.id));
  const storage::WebhookEndpointRecord other = Create(f, Endpoint(a.id));
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        f.webhooks().EnqueuePing(a.id, e.id, Event("webhook.tested")).ok());
    ASSERT_TRUE(
        f.webhooks().EnqueuePing(a.id, other.id, Event("webhook.tested")).ok());
  }
  const std::vector<storage::WebhookDeliveryRecord> all =
      DeliveriesOf(f, a.id, e.id);
  ASSERT_EQ(all.size(), 5u);
  // Walk by position, two at a time: every delivery once, newest first.
  storage::DeliveryQuery q;
  q.limit = 2;
  q.count.wanted = false;
  std::vector<int64_t> walked;
  std::vector<bool> more;
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<storage::DeliveryPage> page =
        f.webhooks().ListDeliveries(a.id, e.id, q);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_EQ(page->total_kind, storage::TotalKind::kNotCounted);
    for (const auto& d : page->deliveries) walked.push_back(d.id);
    more.push_back(page->has_more);
    if (!page->has_more) break;
    q.before_id = page->deliveries.back().id;
  }
  std::vector<int64_t> expected;
  for (const auto& d : all) expected.push_back(d.id);
  EXPECT_EQ(walked, expected);
  EXPECT_EQ(more, (std::vector<bool>{true, true, false}));

  // A capped count stops at its cap; the total ignores the position.
  q.before_id = all[1].id;
  q.count = storage::CountRequest{true, 3};
  absl::StatusOr<storage::DeliveryPage> capped =
      f.webhooks().ListDeliveries(a.id, e.id, q);
  ASSERT_TRUE(capped.ok()) << capped.status();
  EXPECT_EQ(capped->total, 3);
  EXPECT_EQ(capped->total_kind, storage::TotalKind::kAtLeast);
  ASSERT_EQ(capped->deliveries.size(), 2u);
  EXPECT_EQ(capped->deliveries[0].id, all[2].id);
  q.count = storage::CountRequest{true, 10};
  absl::StatusOr<storage::DeliveryPage> exact =
      f.webhooks().ListDeliveries(a.id, e.id, q);
  ASSERT_TRUE(exact.ok()) << exact.status();
  EXPECT_EQ(exact->total, 5);
  EXPECT_EQ(exact->total_kind, storage::TotalKind::kExact);

  // With a status filter, only that state is walked and counted.
  q.state = DeliveryState::kDelivered;
  absl::StatusOr<storage::DeliveryPage> none =
      f.webhooks().ListDeliveries(a.id, e.id, q);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_THAT(none->deliveries, IsEmpty());
  EXPECT_EQ(none->total, 0);
  EXPECT_FALSE(none->has_more);

  q.state.reset();
  q.page = 2;
  EXPECT_EQ(f.webhooks().ListDeliveries(a.id, e.id, q).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TYPED_TEST(WebhookStoreConformanceTest, DeletingRemovesTheDeliveryLog) {
  StoreFixture& f = this->f();
  const storage::Tenant a = NewTenant(f);
  const storage::WebhookEndpointRecord e = Create(f, Endpoint(a.id));
  ASSERT_TRUE(
      f.webhooks().EnqueuePing(a.id, e.id, Event("webhook.tested")).ok());
  ASSERT_TRUE(
      f.webhooks().DeleteEndpoint(a.id, e.id, Event("webhook.deleted")).ok());
  EXPECT_EQ(f.webhooks().GetEndpoint(a.id, e.id).status().code(),
            absl::StatusCode::kNotFound);
  storage::DeliveryQuery q;
  EXPECT_EQ(f.webhooks().ListDeliveries(a.id, e.id, q).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(
      f.webhooks().DeleteEndpoint(a.id, e.id, Event("webhook.deleted")).code(),
      absl::StatusCode::kNotFound);
  EXPECT_EQ(EventsOf(f, a.id, "webhook.deleted").size(), 1u);
}

// The key management events (edit, disable, enable, renewal) and the state
// sweep's announcements are webhook events of their own types. A fresh
// database: the sweep reads every tenant's keys.
TYPED_TEST(WebhookClaimConformanceTest, KeyManagementAndStateEventsAreSent) {
  StoreFixture& f = this->f();
  const storage::Tenant a = NewTenant(f);
  const storage::WebhookEndpointRecord all = Create(f, Endpoint(a.id));
  storage::SettingsUpdate policy;
  policy.key_rotation_period_days = 30;
  ASSERT_TRUE(
      f.clients()
          .UpdateSettings(a.id, policy, Event("settings.updated"), nullptr)
          .ok());
  const storage::NewKey key = NewKey(a.id);
  ASSERT_TRUE(f.keys().InsertKey(key, Event("api_key.created")).ok());
  storage::KeyEdit edit;
  edit.name = "renamed";
  ASSERT_TRUE(
      f.keys().UpdateKey(a.id, key.id, 1, edit, Event("api_key.updated")).ok());
  ASSERT_TRUE(f.keys()
                  .SetKeyDisabled(a.id, key.id, true, Event("api_key.disabled"))
                  .ok());
  ASSERT_TRUE(f.keys()
                  .SetKeyDisabled(a.id, key.id, false, Event("api_key.enabled"))
                  .ok());
  ASSERT_TRUE(f.keys()
                  .RotateKey(a.id, key.id, {RandomDigest(), 1},
                             absl::ZeroDuration(), Event("api_key.renewed"))
                  .ok());
  f.AgeKey(key.id, absl::Hours(24 * 31));
  absl::StatusOr<storage::AnnouncementBatch> batch =
      f.keys().PendingAnnouncements("", 1000);
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_EQ(batch->announcements.size(), 1u);
  ASSERT_TRUE(f.keys()
                  .AnnounceKeyState(batch->announcements[0],
                                    Event("api_key.rotation_due"))
                  .ok());
  // Settings changes are not webhook events.
  std::vector<std::string> types;
  for (const storage::WebhookDeliveryRecord& d :
       DeliveriesOf(f, a.id, all.id)) {
    types.push_back(d.event_type);
  }
  std::sort(types.begin(), types.end());
  EXPECT_THAT(types, ElementsAre("api_key.created", "api_key.disabled",
                                 "api_key.enabled", "api_key.renewed",
                                 "api_key.rotation_due", "api_key.updated"));
}

TYPED_TEST(WebhookClaimConformanceTest, RetentionPurgesFinishedRowsOnly) {
  StoreFixture& f = this->f();
  const storage::Tenant a = NewTenant(f);
  const storage::WebhookEndpointRecord e = Create(f, Endpoint(a.id));
  const storage::WebhookEndpointRecord g = Create(f, Endpoint(a.id));
  for (const auto* endpoint : {&e, &e, &e, &g}) {
    ASSERT_TRUE(f.webhooks()
                    .EnqueuePing(a.id, endpoint->id, Event("webhook.tested"))
                    .ok());
  }
  // e: one delivered, one failed for good, one still pending (claimed);
  // g: one cancelled by disabling its endpoint.
  absl::StatusOr<std::vector<storage::ClaimedDelivery>> claimed =
      f.webhooks().ClaimDue(10, absl::Seconds(60));
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  ASSERT_EQ(claimed->size(), 4u);
  std::vector<const storage::ClaimedDelivery*> of_e;
  const storage::ClaimedDelivery* of_g = nullptr;
  for (const storage::ClaimedDelivery& c : *claimed) {
    if (c.endpoint_id == e.id) {
      of_e.push_back(&c);
    } else {
      of_g = &c;
    }
  }
  ASSERT_EQ(of_e.size(), 3u);
  ASSERT_NE(of_g, nullptr);
  storage::AttemptOutcome ok;
  ok.delivered = true;
  ok.http_status = 200;
  storage::AttemptOutcome failed;
  failed.error = "HTTP 503";
  failed.http_status = 503;
  failed.retry_in = absl::Hours(1);
  storage::FailurePolicy give_up;
  give_up.retry_window = absl::ZeroDuration();
  const storage::AuditEvent disable = Event("webhook.disabled");
  ASSERT_TRUE(
      f.webhooks().CompleteAttempt(*of_e[0], ok, give_up, disable).ok());
  absl::StatusOr<storage::CompletedAttempt> gave_up =
      f.webhooks().CompleteAttempt(*of_e[1], failed, give_up, disable);
  ASSERT_TRUE(gave_up.ok()) << gave_up.status();
  ASSERT_EQ(gave_up->state, DeliveryState::kFailed);
  ASSERT_TRUE(
      f.webhooks()
          .CompleteAttempt(*of_g, failed, storage::FailurePolicy(), disable)
          .ok());
  storage::WebhookEndpointUpdate off;
  off.enabled = false;
  bool changed = false;
  ASSERT_TRUE(
      f.webhooks()
          .UpdateEndpoint(a.id, g.id, off, Event("webhook.updated"), &changed)
          .ok());
  ASSERT_EQ(DeliveriesOf(f, a.id, g.id)[0].state, DeliveryState::kCancelled);
  // Tallies of an old rotation and of a recent one.
  const absl::Time now = f.keys().Now().value_or(absl::Now());
  auto tally = [&](absl::Time rotated_at) {
    storage::PendingAuditEvent use;
    use.tenant_id = a.id;
    use.event = Event("previous.used");
    use.previous_secret_use =
        storage::PreviousSecretUse{"keyRRRRRRRRR", rotated_at, 1};
    return use;
  };
  const absl::Time old_rotation =
      absl::FromUnixMicros(absl::ToUnixMicros(now - absl::Hours(24 * 8)));
  const absl::Time new_rotation =
      absl::FromUnixMicros(absl::ToUnixMicros(now - absl::Hours(1)));
  ASSERT_TRUE(
      f.audit().AppendEvents({tally(old_rotation), tally(new_rotation)}).ok());

  // Everything so far is ten days old; a delivery made now is not.
  f.AgeWebhookRows(e.id, absl::Hours(24 * 10));
  f.AgeWebhookRows(g.id, absl::Hours(24 * 10));
  ASSERT_TRUE(
      f.webhooks().EnqueuePing(a.id, e.id, Event("webhook.tested")).ok());
  absl::StatusOr<std::vector<storage::ClaimedDelivery>> recent =
      f.webhooks().ClaimDue(10, absl::Seconds(60));
  ASSERT_TRUE(recent.ok()) << recent.status();
  ASSERT_EQ(recent->size(), 1u);
  ASSERT_TRUE(
      f.webhooks().CompleteAttempt((*recent)[0], ok, give_up, disable).ok());

  EXPECT_EQ(f.webhooks()
                .PurgeExpired(absl::ZeroDuration(), absl::Hours(1))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  const absl::Duration week = absl::Hours(24 * 7);
  absl::StatusOr<int64_t> purged = f.webhooks().PurgeExpired(week, week);
  ASSERT_TRUE(purged.ok()) << purged.status();
  // Deliveries: delivered, failed, cancelled; their three events; one
  // tally.
  EXPECT_EQ(*purged, 3 + 3 + 1);
  std::vector<storage::WebhookDeliveryRecord> left_e =
      DeliveriesOf(f, a.id, e.id);
  ASSERT_EQ(left_e.size(), 2u);
  EXPECT_EQ(left_e[0].state, DeliveryState::kDelivered);  // the recent one
  EXPECT_EQ(left_e[1].state, DeliveryState::kPending);    // old but pending
  EXPECT_THAT(DeliveriesOf(f, a.id, g.id), IsEmpty());
  // The pending delivery's event is still there to be sent.
  absl::StatusOr<storage::WebhookEventRecord> kept =
      f.webhooks().GetEvent(a.id, left_e[1].event_id);
  EXPECT_TRUE(kept.ok()) << kept.status();
  absl::StatusOr<std::vector<storage::PreviousSecretUser>> old_users =
      f.audit().ListPreviousSecretUsers(a.id, "keyRRRRRRRRR", old_rotation, 10);
  ASSERT_TRUE(old_users.ok()) << old_users.status();
  EXPECT_THAT(*old_users, IsEmpty());
  absl::StatusOr<std::vector<storage::PreviousSecretUser>> new_users =
      f.audit().ListPreviousSecretUsers(a.id, "keyRRRRRRRRR", new_rotation, 10);
  ASSERT_TRUE(new_users.ok()) << new_users.status();
  EXPECT_EQ(new_users->size(), 1u);

  absl::StatusOr<int64_t> again = f.webhooks().PurgeExpired(week, week);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 0);
}

TYPED_TEST(WebhookClaimConformanceTest, AClaimHoldsItsDeliveriesForTheLease) {
  StoreFixture& f = this->f();
  const storage::Tenant a = NewTenant(f);
  const storage::WebhookEndpointRecord e = Create(f, Endpoint(a.id));
  ASSERT_TRUE(
      f.webhooks().EnqueuePing(a.id, e.id, Event("webhook.tested")).ok());

  absl::StatusOr<std::vector<storage::ClaimedDelivery>> first =
      f.webhooks().ClaimDue(10, absl::Milliseconds(400));
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->size(), 1u);
  const storage::ClaimedDelivery& claim = (*first)[0];
  EXPECT_EQ(claim.attempt, 1);
  EXPECT_EQ(claim.endpoint_id, e.id);
  EXPECT_EQ(claim.url, e.url);
  EXPECT_EQ(claim.secret.sealed, e.secret.sealed);
  EXPECT_FALSE(claim.previous_secret.has_value());
  EXPECT_EQ(claim.event.type, "ping");
  EXPECT_EQ(claim.event.tenant_slug, a.slug);
  EXPECT_FALSE(claim.lease_token.empty());

  absl::StatusOr<std::vector<storage::ClaimedDelivery>> during =
      f.webhooks().ClaimDue(10, absl::Milliseconds(400));
  ASSERT_TRUE(during.ok()) << during.status();
  EXPECT_THAT(*during, IsEmpty());

  // The lease ends: the delivery is claimed again, as the next attempt,
  // and the first claim no longer holds.
  f.LetTimePass(absl::Milliseconds(400));
  absl::StatusOr<std::vector<storage::ClaimedDelivery>> again =
      f.webhooks().ClaimDue(10, absl::Seconds(60));
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].attempt, 2);
  EXPECT_NE((*again)[0].lease_token, claim.lease_token);
  storage::AttemptOutcome ok;
  ok.delivered = true;
  ok.http_status = 200;
  absl::StatusOr<storage::CompletedAttempt> stale =
      f.webhooks().CompleteAttempt(claim, ok, storage::FailurePolicy(),
                                   Event("webhook.disabled"));
  ASSERT_TRUE(stale.ok()) << stale.status();
  EXPECT_FALSE(stale->applied);
  absl::StatusOr<storage::CompletedAttempt> done = f.webhooks().CompleteAttempt(
      (*again)[0], ok, storage::FailurePolicy(), Event("webhook.disabled"));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_TRUE(done->applied);
  EXPECT_EQ(done->state, DeliveryState::kDelivered);
  std::vector<storage::WebhookDeliveryRecord> log = DeliveriesOf(f, a.id, e.id);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].state, DeliveryState::kDelivered);
  EXPECT_EQ(log[0].attempts, 2);
  EXPECT_EQ(log[0].last_http_status, 200);
  EXPECT_TRUE(log[0].delivered_at.has_value());
  // Delivered is final: nothing is claimed any more.
  f.LetTimePass(absl::Milliseconds(10));
  absl::StatusOr<std::vector<storage::ClaimedDelivery>> after =
      f.webhooks().ClaimDue(10, absl::Seconds(60));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_THAT(*after, IsEmpty());
}

TYPED_TEST(WebhookClaimConformanceTest, ConcurrentClaimsNeverShareADelivery) {
  StoreFixture& f = this->f();
  const storage::Tenant a = NewTenant(f);
  const storage::WebhookEndpointRecord e = Create(f, Endpoint(a.id));
  constexpr int kDeliveries = 60;
  for (int i = 0; i < kDeliveries; ++i) {
    ASSERT_TRUE(
        f.webhooks().EnqueuePing(a.id, e.id, Event("webhook.tested")).ok());
  }
  absl::Mutex mu;
  std::vector<int64_t> claimed;
  std::vector<std::thread> claimers;
  for (int t = 0; t < 4; ++t) {
    claimers.emplace_back([&] {
      for (;;) {
        absl::StatusOr<std::vector<storage::ClaimedDelivery>> got =
            f.webhooks().ClaimDue(3, absl::Hours(1));
        ASSERT_TRUE(got.ok()) << got.status();
        if (got->empty()) return;
        absl::MutexLock lock(&mu);
        for (const storage::ClaimedDelivery& c : *got) {
          claimed.push_back(c.delivery_id);
        }
      }
    });
  }
  for (std::thread& t : claimers) t.join();
  std::set<int64_t> distinct(claimed.begin(), claimed.end());
  EXPECT_EQ(distinct.size(), claimed.size()) << "a delivery was claimed twice";
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kDeliveries));
}

TYPED_TEST(WebhookClaimConformanceTest, FailuresRetryThenGiveUpOrDisable) {
  StoreFixture& f = this->f();
  const storage::Tenant a = NewTenant(f);
  const storage::WebhookEndpointRecord failing = Create(f, Endpoint(a.id));
  const storage::WebhookEndpointRecord watcher =
      Create(f, Endpoint(a.id, {"webhook.disabled"}));
  ASSERT_TRUE(
      f.webhooks().EnqueuePing(a.id, failing.id, Event("webhook.tested")).ok());

  storage::FailurePolicy policy;
  policy.retry_window = absl::Hours(1);
  policy.disable_after_failures = 2;
  policy.disable_after = absl::ZeroDuration();
  storage::AttemptOutcome refused;
  refused.http_status = 503;
  refused.error = "HTTP 503";
  refused.retry_in = absl::Milliseconds(100);

  absl::StatusOr<std::vector<storage::ClaimedDelivery>> claim =
      f.webhooks().ClaimDue(10, absl::Seconds(60));
  ASSERT_TRUE(claim.ok()) << claim.status();
  ASSERT_EQ(claim->size(), 1u);
  storage::AuditEvent disabled = Event("webhook.disabled");
  disabled.target_type = "webhook";
  disabled.target_id = failing.id;
  absl::StatusOr<storage::CompletedAttempt> first =
      f.webhooks().CompleteAttempt((*claim)[0], refused, policy, disabled);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->applied);
  EXPECT_EQ(first->state, DeliveryState::kPending);
  EXPECT_FALSE(first->endpoint_disabled);
  std::vector<storage::WebhookDeliveryRecord> log =
      DeliveriesOf(f, a.id, failing.id);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].last_http_status, 503);
  EXPECT_EQ(log[0].last_error, "HTTP 503");
  ASSERT_TRUE(log[0].last_attempt_at.has_value());
  EXPECT_EQ(log[0].next_attempt_at,
            *log[0].last_attempt_at + absl::Milliseconds(100));
  absl::StatusOr<storage::WebhookEndpointRecord> endpoint =
      f.webhooks().GetEndpoint(a.id, failing.id);
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  EXPECT_EQ(endpoint->consecutive_failures, 1);
  EXPECT_TRUE(endpoint->failing_since.has_value());

  // Not due before retry_in has passed.
  absl::StatusOr<std::vector<storage::ClaimedDelivery>> early =
      f.webhooks().ClaimDue(10, absl::Seconds(60));
  ASSERT_TRUE(early.ok()) << early.status();
  if (!early->empty()) {
    // Only possible when the clock already passed next_attempt_at.
    absl::StatusOr<absl::Time> now = f.keys().Now();
    ASSERT_TRUE(now.ok());
    EXPECT_GE(*now, log[0].next_attempt_at);
    claim = early;
  } else {
    f.LetTimePass(absl::Milliseconds(100));
    claim = f.webhooks().ClaimDue(10, absl::Seconds(60));
    ASSERT_TRUE(claim.ok()) << claim.status();
  }
  ASSERT_EQ(claim->size(), 1u);
  EXPECT_EQ((*claim)[0].attempt, 2);
  absl::StatusOr<storage::CompletedAttempt> second =
      f.webhooks().CompleteAttempt((*claim)[0], refused, policy, disabled);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->endpoint_disabled);
  endpoint = f.webhooks().GetEndpoint(a.id, failing.id);
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  EXPECT_FALSE(endpoint->enabled);
  EXPECT_EQ(endpoint->disabled_reason, "failures");
  EXPECT_EQ(endpoint->consecutive_failures, 2);
  log = DeliveriesOf(f, a.id, failing.id);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].state, DeliveryState::kCancelled);
  // The disabling is audited, and that event goes to the other endpoint.
  EXPECT_EQ(EventsOf(f, a.id, "webhook.disabled").size(), 1u);
  std::vector<storage::WebhookDeliveryRecord> told =
      DeliveriesOf(f, a.id, watcher.id);
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0].event_type, "webhook.disabled");

  // Re-enabling resets the count.
  storage::WebhookEndpointUpdate enable;
  enable.enabled = true;
  bool changed = false;
  endpoint = f.webhooks().UpdateEndpoint(a.id, failing.id, enable,
                                         Event("webhook.updated"), &changed);
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  EXPECT_EQ(endpoint->consecutive_failures, 0);
  EXPECT_FALSE(endpoint->failing_since.has_value());

  // A delivery whose event is older than the retry window is given up.
  ASSERT_TRUE(
      f.webhooks().EnqueuePing(a.id, failing.id, Event("webhook.tested")).ok());
  f.LetTimePass(absl::Milliseconds(50));
  claim = f.webhooks().ClaimDue(10, absl::Seconds(60));
  ASSERT_TRUE(claim.ok()) << claim.status();
  // The watcher's webhook.disabled delivery is due too; find the ping.
  auto ping = std::find_if(claim->begin(), claim->end(),
                           [&](const storage::ClaimedDelivery& c) {
                             return c.endpoint_id == failing.id;
                           });
  ASSERT_NE(ping, claim->end());
  policy.retry_window = absl::Milliseconds(10);
  policy.disable_after_failures = 100;
  absl::StatusOr<storage::CompletedAttempt> last =
      f.webhooks().CompleteAttempt(*ping, refused, policy, disabled);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->state, DeliveryState::kFailed);
  storage::DeliveryQuery failed;
  failed.state = DeliveryState::kFailed;
  absl::StatusOr<storage::DeliveryPage> failed_page =
      f.webhooks().ListDeliveries(a.id, failing.id, failed);
  ASSERT_TRUE(failed_page.ok()) << failed_page.status();
  EXPECT_EQ(failed_page->total, 1);
}

TYPED_TEST(WebhookClaimConformanceTest, ADisabledEndpointsDueRowsAreNotSent) {
  StoreFixture& f = this->f();
  const storage::Tenant a = NewTenant(f);
  const storage::WebhookEndpointRecord e = Create(f, Endpoint(a.id));
  ASSERT_TRUE(
      f.webhooks().EnqueuePing(a.id, e.id, Event("webhook.tested")).ok());
  storage::WebhookEndpointUpdate disable;
  disable.enabled = false;
  bool changed = false;
  ASSERT_TRUE(f.webhooks()
                  .UpdateEndpoint(a.id, e.id, disable, Event("webhook.updated"),
                                  &changed)
                  .ok());
  absl::StatusOr<std::vector<storage::ClaimedDelivery>> claim =
      f.webhooks().ClaimDue(10, absl::Seconds(60));
  ASSERT_TRUE(claim.ok()) << claim.status();
  EXPECT_THAT(*claim, IsEmpty());
}

// A delivery can stay pending for an endpoint already disabled (an outbox
// append racing the disable): the claim cancels it instead of sending it.
TYPED_TEST(WebhookClaimConformanceTest,
           APendingDeliveryOfADisabledEndpointIsCancelledByTheClaim) {
  StoreFixture& f = this->f();
  const storage::Tenant a = NewTenant(f);
  const storage::WebhookEndpointRecord off = Create(f, Endpoint(a.id));
  const storage::WebhookEndpointRecord on = Create(f, Endpoint(a.id));
  ASSERT_TRUE(
      f.webhooks().EnqueuePing(a.id, off.id, Event("webhook.tested")).ok());
  ASSERT_TRUE(
      f.webhooks().EnqueuePing(a.id, on.id, Event("webhook.tested")).ok());
  f.DisableEndpointOnly(off.id);
  std::vector<storage::WebhookDeliveryRecord> log =
      DeliveriesOf(f, a.id, off.id);
  ASSERT_FALSE(log.empty());
  for (const storage::WebhookDeliveryRecord& d : log) {
    ASSERT_EQ(d.state, DeliveryState::kPending);
  }

  absl::StatusOr<std::vector<storage::ClaimedDelivery>> claim =
      f.webhooks().ClaimDue(100, absl::Seconds(60));
  ASSERT_TRUE(claim.ok()) << claim.status();
  bool sent_to_on = false;
  for (const storage::ClaimedDelivery& c : *claim) {
    EXPECT_NE(c.endpoint_id, off.id) << "sent to a disabled endpoint";
    if (c.endpoint_id == on.id) sent_to_on = true;
  }
  EXPECT_TRUE(sent_to_on);
  log = DeliveriesOf(f, a.id, off.id);
  ASSERT_FALSE(log.empty());
  for (const storage::WebhookDeliveryRecord& d : log) {
    EXPECT_EQ(d.state, DeliveryState::kCancelled);
  }
}

}  // namespace
}  // namespace lumo::testing
