#include "server/webhooks/delivery_worker.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/crypto.h"
#include "tests/storage/fakes/fake_stores.h"

namespace lumo::webhooks {
namespace {

using ::testing::StartsWith;

constexpr char kPeppers[] =
    "1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
// Generous: only a failing test waits this long.
constexpr absl::Duration kPatience = absl::Seconds(30);

// Records every request and answers with a settable result.
class RecordingSender : public Sender {
 public:
  SendResult Send(const SendRequest& request) override {
    absl::MutexLock lock(&mu_);
    requests_.push_back(request);
    return answer_;
  }
  void Answer(SendResult answer) {
    absl::MutexLock lock(&mu_);
    answer_ = std::move(answer);
  }
  std::vector<SendRequest> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  // Waits until at least `n` requests arrived.
  bool WaitFor(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return requests_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), kPatience);
  }

 private:
  absl::Mutex mu_;
  std::vector<SendRequest> requests_ ABSL_GUARDED_BY(mu_);
  SendResult answer_ ABSL_GUARDED_BY(mu_) = {true, 200, {}, ""};
};

std::string Header(const SendRequest& r, absl::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return "";
}

// The receivers' recipe (docs/webhooks.md): every v1 over "<t>.<body>".
bool SignedBy(const SendRequest& r, absl::string_view secret) {
  std::string t;
  std::vector<std::string> v1;
  for (absl::string_view part :
       absl::StrSplit(Header(r, "Lumo-Signature"), ',')) {
    std::pair<std::string, std::string> kv =
        absl::StrSplit(part, absl::MaxSplits('=', 1));
    if (kv.first == "t") t = kv.second;
    if (kv.first == "v1") v1.push_back(kv.second);
  }
  const std::string expected = core::HexEncode(core::AsStringView(
      core::HmacSha256(secret, absl::StrCat(t, ".", r.body))));
  for (const std::string& s : v1) {
    if (s == expected) return true;
  }
  return false;
}

TEST(RetryDelayTest, DoublesUpToTheMaximumWithinTheJitterBand) {
  const absl::Duration base = absl::Seconds(10);
  const absl::Duration max = absl::Hours(1);
  EXPECT_EQ(RetryDelay(1, base, max, 1.0), absl::Seconds(10));
  EXPECT_EQ(RetryDelay(1, base, max, 0.0), absl::Seconds(5));
  EXPECT_EQ(RetryDelay(2, base, max, 1.0), absl::Seconds(20));
  EXPECT_EQ(RetryDelay(4, base, max, 1.0), absl::Seconds(80));
  EXPECT_EQ(RetryDelay(9, base, max, 1.0), absl::Seconds(2560));
  EXPECT_EQ(RetryDelay(10, base, max, 1.0), absl::Hours(1));
  EXPECT_EQ(RetryDelay(500, base, max, 0.0), absl::Minutes(30));
}

class DeliveryWorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    service_ = std::make_unique<service::WebhookService>(
        &stores_.webhooks, *core::PepperSet::Parse(kPeppers),
        service::WebhookOptions());
    absl::MutexLock lock(&stores_.db->mu);
    tenant_ = stores_.db->InsertTenant("acme", "Acme");
    caller_.tenant_id = tenant_.id;
    caller_.tenant_slug = tenant_.slug;
    caller_.key_id = "AbCdEfGhIjKl";
  }

  std::unique_ptr<DeliveryWorker> Worker(
      DeliveryWorkerOptions options,
      absl::Duration poll_interval = absl::Milliseconds(5)) {
    options.poll_interval = poll_interval;
    auto worker = std::make_unique<DeliveryWorker>(
        &stores_.webhooks, service_.get(), &sender_, options);
    worker->Start();
    return worker;
  }

  service::WebhookWithSecret Endpoint() {
    service::WebhookParams p;
    p.url = "https://hooks.example.com/in";
    absl::StatusOr<service::WebhookWithSecret> e =
        service_->Create(caller_, {}, p);
    EXPECT_TRUE(e.ok()) << e.status();
    return *std::move(e);
  }

  // A key lifecycle event of the tenant, through a store transaction.
  void KeyCreated(absl::string_view key_id) {
    storage::NewKey key;
    key.id = std::string(key_id);
    key.tenant_id = tenant_.id;
    key.name = "ci";
    key.scopes = {"admin:read"};
    key.created_by_type = "system";
    storage::AuditEvent event;
    event.action = "api_key.created";
    event.category = "api_keys";
    event.actor_type = "system";
    event.target_type = "api_key";
    event.target_id = std::string(key_id);
    ASSERT_TRUE(stores_.keys.InsertKey(key, event).ok());
  }

  std::vector<storage::WebhookDeliveryRecord> Log(absl::string_view id) {
    storage::DeliveryQuery q;
    q.limit = 100;
    absl::StatusOr<storage::DeliveryPage> page =
        stores_.webhooks.ListDeliveries(tenant_.id, id, q);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? page->deliveries
                     : std::vector<storage::WebhookDeliveryRecord>();
  }

  // Polls the delivery log until `done` holds for it.
  template <typename Pred>
  bool LogBecomes(absl::string_view id, Pred done) {
    const absl::Time give_up = absl::Now() + kPatience;
    while (absl::Now() < give_up) {
      if (done(Log(id))) return true;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return false;
  }

  testing::FakeStores stores_;
  std::unique_ptr<service::WebhookService> service_;
  RecordingSender sender_;
  storage::Tenant tenant_;
  service::Principal caller_;
};

TEST_F(DeliveryWorkerTest, SendsEachEventSignedWithItsIdsAndRecordsIt) {
  const service::WebhookWithSecret endpoint = Endpoint();
  std::unique_ptr<DeliveryWorker> worker = Worker({});
  KeyCreated("KeyAAAAAAAAA");
  ASSERT_TRUE(sender_.WaitFor(1));
  ASSERT_TRUE(LogBecomes(endpoint.record.id, [](const auto& log) {
    return log.size() == 1 &&
           log[0].state == storage::DeliveryState::kDelivered;
  }));
  worker->Stop();

  const std::vector<SendRequest> sent = sender_.requests();
  ASSERT_EQ(sent.size(), 1u);
  const SendRequest& r = sent[0];
  EXPECT_EQ(r.url, "https://hooks.example.com/in");
  EXPECT_TRUE(SignedBy(r, endpoint.secret)) << Header(r, "Lumo-Signature");
  EXPECT_FALSE(SignedBy(r, "whsec_someoneelse"));
  const std::vector<storage::WebhookDeliveryRecord> log =
      Log(endpoint.record.id);
  EXPECT_EQ(Header(r, "Lumo-Event-Id"), log[0].event_id);
  EXPECT_EQ(Header(r, "Lumo-Delivery-Id"), absl::StrCat(log[0].id));
  EXPECT_EQ(Header(r, "Lumo-Delivery-Attempt"), "1");
  EXPECT_THAT(r.body,
              StartsWith(absl::StrCat("{\"id\":\"", log[0].event_id,
                                      "\",\"type\":\"api_key.created\"")));
  EXPECT_FALSE(absl::StrContains(r.body, endpoint.secret));
  EXPECT_EQ(log[0].attempts, 1);
  EXPECT_EQ(log[0].last_http_status, 200);
}

// With a poll interval far beyond the test's patience, only the wake at
// commit (the store's outbox signal) delivers the second event in time:
// it is committed after the worker's claim that found the first.
TEST_F(DeliveryWorkerTest, ACommitWakesTheWorkerBeforeItsNextPoll) {
  Endpoint();
  DeliveryWorkerOptions options;
  options.threads = 1;
  std::unique_ptr<DeliveryWorker> worker = Worker(options, absl::Hours(1));
  stores_.db->outbox_signal.Listen([w = worker.get()] { w->Wake(); });
  KeyCreated("KeyAAAAAAAAA");
  ASSERT_TRUE(sender_.WaitFor(1));
  KeyCreated("KeyBBBBBBBBB");
  EXPECT_TRUE(sender_.WaitFor(2)) << "the second event waited for the poll";
  stores_.db->outbox_signal.Listen(nullptr);
  worker->Stop();
}

// The worker purges finished deliveries past the retention while it runs,
// and keeps younger ones.
TEST_F(DeliveryWorkerTest, FinishedDeliveriesArePurgedAfterTheRetention) {
  const service::WebhookWithSecret endpoint = Endpoint();
  const std::string id = endpoint.record.id;
  DeliveryWorkerOptions options;
  options.retention = absl::Hours(24);
  options.purge_interval = absl::Milliseconds(5);
  std::unique_ptr<DeliveryWorker> worker = Worker(options);
  KeyCreated("KeyAAAAAAAAA");
  ASSERT_TRUE(LogBecomes(id, [](const auto& log) {
    return log.size() == 1 &&
           log[0].state == storage::DeliveryState::kDelivered;
  }));
  const int64_t old_id = Log(id)[0].id;
  {
    // Two days old, as if delivered then.
    absl::MutexLock lock(&stores_.db->mu);
    stores_.db->webhook_deliveries.at(old_id).delivery.created_at -=
        absl::Hours(48);
  }
  KeyCreated("KeyBBBBBBBBB");
  EXPECT_TRUE(LogBecomes(id, [old_id](const auto& log) {
    return log.size() == 1 && log[0].id != old_id &&
           log[0].state == storage::DeliveryState::kDelivered;
  })) << "the old delivery was not purged, or the new one went too";
  worker->Stop();
}

TEST_F(DeliveryWorkerTest, DuringAnOverlapBothSecretsSign) {
  const service::WebhookWithSecret endpoint = Endpoint();
  absl::StatusOr<service::WebhookWithSecret> rotated =
      service_->RotateSecret(caller_, {}, endpoint.record.id, 3600);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  std::unique_ptr<DeliveryWorker> worker = Worker({});
  ASSERT_TRUE(service_->Test(caller_, {}, endpoint.record.id).ok());
  ASSERT_TRUE(sender_.WaitFor(1));
  worker->Stop();
  const SendRequest r = sender_.requests()[0];
  EXPECT_TRUE(SignedBy(r, rotated->secret));
  EXPECT_TRUE(SignedBy(r, endpoint.secret));
  EXPECT_THAT(r.body, ::testing::HasSubstr("\"type\":\"ping\""));
}

TEST_F(DeliveryWorkerTest, FailuresAreRetriedThenTheEndpointIsDisabled) {
  const service::WebhookWithSecret endpoint = Endpoint();
  sender_.Answer({false, 503, absl::Milliseconds(3), "HTTP 503"});
  DeliveryWorkerOptions options;
  options.base_backoff = absl::Milliseconds(1);
  options.max_backoff = absl::Milliseconds(4);
  options.failure.disable_after_failures = 3;
  options.failure.disable_after = absl::ZeroDuration();
  std::unique_ptr<DeliveryWorker> worker = Worker(options);
  KeyCreated("KeyBBBBBBBBB");
  ASSERT_TRUE(LogBecomes(endpoint.record.id, [](const auto& log) {
    return log.size() == 1 &&
           log[0].state == storage::DeliveryState::kCancelled;
  }));
  worker->Stop();
  const std::vector<storage::WebhookDeliveryRecord> log =
      Log(endpoint.record.id);
  EXPECT_EQ(log[0].attempts, 3);
  EXPECT_EQ(log[0].last_http_status, 503);
  EXPECT_EQ(log[0].last_error, "HTTP 503");
  const std::vector<SendRequest> sent = sender_.requests();
  ASSERT_EQ(sent.size(), 3u);
  for (size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(Header(sent[i], "Lumo-Delivery-Attempt"), absl::StrCat(i + 1));
    EXPECT_EQ(sent[i].body, sent[0].body);  // the same bytes every attempt
  }
  absl::StatusOr<storage::WebhookEndpointRecord> disabled =
      service_->Get(caller_, endpoint.record.id);
  ASSERT_TRUE(disabled.ok());
  EXPECT_FALSE(disabled->enabled);
  EXPECT_EQ(disabled->disabled_reason, "failures");
}

}  // namespace
}  // namespace lumo::webhooks
