#include "tests/storage/conformance/store_fixture.h"

#include <atomic>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/core/key_format.h"
#include "server/storage/mysql/mysql_change_feed_store.h"
#include "tests/storage/fakes/fake_stores.h"
#include "tests/storage/mysql_test_backend.h"

namespace lumo::testing {
namespace {

class FakeFixture : public StoreFixture {
 public:
  storage::KeyStore& keys() override { return stores_.keys; }
  storage::UserStore& users() override { return stores_.users; }
  storage::ClientStore& clients() override { return stores_.clients; }
  storage::AuditStore& audit() override { return stores_.audit; }
  storage::ChangeFeedStore& feed() override { return stores_.feed; }
  storage::PortalStore& portal() override { return stores_.portal; }
  storage::PepperUsageStore& pepper_usage() override {
    return stores_.pepper_usage;
  }
  storage::WebhookStore& webhooks() override { return stores_.webhooks; }
  storage::OutboxSignal& outbox_signal() override {
    return stores_.db->outbox_signal;
  }
  storage::CounterStore& counters() override { return stores_.counters; }
  void LetTimePass(absl::Duration d) override { stores_.db->AdvanceClock(d); }
  void AgeKey(absl::string_view id, absl::Duration d) override {
    absl::MutexLock lock(&stores_.db->mu);
    auto it = stores_.db->keys.find(std::string(id));
    ASSERT_NE(it, stores_.db->keys.end()) << id;
    storage::ApiKeyRecord& key = it->second.record;
    key.created_at -= d;
    if (key.rotated_at) *key.rotated_at -= d;
    if (key.last_used_at) *key.last_used_at -= d;
  }
  void TamperAuditRow(int64_t id, absl::string_view ip) override {
    absl::MutexLock lock(&stores_.db->mu);
    auto it = stores_.db->audit.find(id);
    ASSERT_NE(it, stores_.db->audit.end()) << id;
    it->second.stored.event.ip_address = std::string(ip);
  }
  void DeleteAuditRow(int64_t id) override {
    absl::MutexLock lock(&stores_.db->mu);
    ASSERT_EQ(stores_.db->audit.erase(id), 1u) << id;
  }
  void AgeAuditRows(int64_t tenant_id, absl::Duration d) override {
    absl::MutexLock lock(&stores_.db->mu);
    for (auto& [id, row] : stores_.db->audit) {
      if (row.stored.tenant_id == tenant_id) row.stored.created_at -= d;
    }
  }
  absl::StatusOr<int64_t> PurgeAudit(int days) override {
    return stores_.audit.PurgeOlderThanDays(days);
  }
  void AgeUsage(int64_t tenant_id, absl::Duration d) override {
    absl::MutexLock lock(&stores_.db->mu);
    std::map<FakeDatabase::UsageKey, int64_t> aged;
    for (auto it = stores_.db->usage.begin(); it != stores_.db->usage.end();) {
      if (std::get<0>(it->first) != tenant_id) {
        ++it;
        continue;
      }
      FakeDatabase::UsageKey key = it->first;
      std::get<2>(key) -= absl::ToInt64Seconds(d);
      aged[key] = it->second;
      it = stores_.db->usage.erase(it);
    }
    stores_.db->usage.merge(aged);
  }
  absl::StatusOr<int64_t> PurgeUsage(int hourly_days, int daily_days) override {
    return stores_.audit.PurgeUsage(hourly_days, daily_days);
  }
  void DisableEndpointOnly(absl::string_view id) override {
    absl::MutexLock lock(&stores_.db->mu);
    auto it = stores_.db->webhook_endpoints.find(std::string(id));
    ASSERT_NE(it, stores_.db->webhook_endpoints.end()) << id;
    it->second.endpoint.enabled = false;
  }
  void AgeWebhookRows(absl::string_view id, absl::Duration d) override {
    absl::MutexLock lock(&stores_.db->mu);
    for (auto& [row_id, row] : stores_.db->webhook_deliveries) {
      if (row.delivery.endpoint_id != id) continue;
      row.delivery.created_at -= d;
      auto event = stores_.db->webhook_events.find(row.event_row);
      if (event != stores_.db->webhook_events.end()) {
        event->second.created_at -= d;
      }
    }
  }

  int64_t WindowRows(absl::string_view counter) override {
    absl::MutexLock lock(&stores_.db->mu);
    const std::string key(counter);
    auto slots = stores_.db->limit_windows.find(key);
    return (slots == stores_.db->limit_windows.end()
                ? 0
                : static_cast<int64_t>(slots->second.size())) +
           static_cast<int64_t>(stores_.db->limit_window_heads.count(key));
  }

 private:
  FakeStores stores_;
};

class MysqlFixture : public StoreFixture {
 public:
  static absl::StatusOr<std::unique_ptr<StoreFixture>> Create() {
    std::unique_ptr<MysqlFixture> out(new MysqlFixture);
    absl::StatusOr<std::unique_ptr<MysqlTestBackend>> backend =
        MysqlTestBackend::Create();
    if (!backend.ok()) return backend.status();
    out->backend_ = *std::move(backend);
    absl::StatusOr<std::unique_ptr<storage::MysqlChangeFeedStore>> feed =
        storage::MysqlChangeFeedStore::Open(out->backend_->options());
    if (!feed.ok()) return feed.status();
    out->feed_ = *std::move(feed);
    return std::unique_ptr<StoreFixture>(std::move(out));
  }
  ~MysqlFixture() override { feed_.reset(); }

  storage::KeyStore& keys() override { return stores().keys(); }
  storage::UserStore& users() override { return stores().users(); }
  storage::ClientStore& clients() override { return stores().clients(); }
  storage::AuditStore& audit() override { return stores().audit(); }
  storage::ChangeFeedStore& feed() override { return *feed_; }
  storage::PortalStore& portal() override { return stores().portal(); }
  storage::PepperUsageStore& pepper_usage() override {
    return stores().pepper_usage();
  }
  storage::WebhookStore& webhooks() override { return stores().webhooks(); }
  storage::OutboxSignal& outbox_signal() override {
    return stores().outbox_signal();
  }
  storage::CounterStore& counters() override { return stores().counters(); }
  void LetTimePass(absl::Duration d) override {
    absl::StatusOr<absl::Time> start = keys().Now();
    ASSERT_TRUE(start.ok()) << start.status();
    const absl::Time give_up = absl::Now() + d + absl::Seconds(30);
    for (;;) {
      absl::StatusOr<absl::Time> now = keys().Now();
      ASSERT_TRUE(now.ok()) << now.status();
      if (*now >= *start + d) return;
      ASSERT_LT(absl::Now(), give_up) << "the database clock does not move";
      absl::SleepFor(std::min(d, absl::Milliseconds(5)));
    }
  }
  void AgeKey(absl::string_view id, absl::Duration d) override {
    const std::string by = absl::StrCat(
        " - INTERVAL ", absl::ToInt64Microseconds(d), " MICROSECOND");
    ASSERT_TRUE(
        backend_->db()
            .Execute(absl::StrCat("UPDATE api_keys SET created_at = created_at",
                                  by, ", rotated_at = rotated_at", by,
                                  ", last_used_at = last_used_at", by,
                                  " WHERE id = '", id, "'"))
            .ok());
  }
  void TamperAuditRow(int64_t id, absl::string_view ip) override {
    ASSERT_TRUE(backend_->db()
                    .Execute(absl::StrCat("UPDATE audit_events SET ip_address"
                                          " = '",
                                          ip, "' WHERE id = ", id))
                    .ok());
  }
  void DeleteAuditRow(int64_t id) override {
    ASSERT_TRUE(
        backend_->db()
            .Execute(absl::StrCat("DELETE FROM audit_events WHERE id = ", id))
            .ok());
  }
  void AgeAuditRows(int64_t tenant_id, absl::Duration d) override {
    ASSERT_TRUE(backend_->db()
                    .Execute(absl::StrCat(
                        "UPDATE audit_events SET created_at = created_at"
                        " - INTERVAL ",
                        absl::ToInt64Microseconds(d),
                        " MICROSECOND WHERE tenant_id = ", tenant_id))
                    .ok());
  }
  absl::StatusOr<int64_t> PurgeAudit(int days) override {
    return stores().PurgeAuditOlderThanDays(days);
  }
  void AgeUsage(int64_t tenant_id, absl::Duration d) override {
    for (const char* table : {"usage_hourly", "usage_daily"}) {
      ASSERT_TRUE(backend_->db()
                      .Execute(absl::StrCat(
                          "UPDATE ", table,
                          " SET bucket_start = bucket_start - INTERVAL ",
                          absl::ToInt64Microseconds(d),
                          " MICROSECOND WHERE tenant_id = ", tenant_id))
                      .ok());
    }
  }
  absl::StatusOr<int64_t> PurgeUsage(int hourly_days, int daily_days) override {
    return stores().PurgeUsage(hourly_days, daily_days);
  }
  void DisableEndpointOnly(absl::string_view id) override {
    ASSERT_TRUE(backend_->db()
                    .Execute(absl::StrCat("UPDATE webhook_endpoints SET"
                                          " enabled = 0 WHERE id = '",
                                          id, "'"))
                    .ok());
  }
  void AgeWebhookRows(absl::string_view id, absl::Duration d) override {
    const int64_t us = absl::ToInt64Microseconds(d);
    ASSERT_TRUE(backend_->db()
                    .Execute(absl::StrCat(
                        "UPDATE webhook_events e JOIN webhook_deliveries d"
                        " ON d.event_row = e.id SET e.created_at ="
                        " e.created_at - INTERVAL ",
                        us, " MICROSECOND WHERE d.endpoint_id = '", id, "'"))
                    .ok());
    ASSERT_TRUE(backend_->db()
                    .Execute(absl::StrCat(
                        "UPDATE webhook_deliveries SET created_at ="
                        " created_at - INTERVAL ",
                        us, " MICROSECOND WHERE endpoint_id = '", id, "'"))
                    .ok());
  }

  int64_t WindowRows(absl::string_view counter) override {
    int64_t rows = 0;
    for (const char* table : {"limit_windows", "limit_window_heads"}) {
      absl::StatusOr<std::string> n = backend_->db().QueryValue(
          absl::StrCat("SELECT COUNT(*) FROM ", table, " WHERE counter_key = '",
                       counter, "'"));
      EXPECT_TRUE(n.ok()) << n.status();
      int64_t count = 0;
      if (n.ok()) {
        EXPECT_TRUE(absl::SimpleAtoi(*n, &count)) << *n;
      }
      rows += count;
    }
    return rows;
  }

 private:
  MysqlFixture() = default;
  storage::MysqlBackend& stores() { return *backend_->backend(); }

  std::unique_ptr<MysqlTestBackend> backend_;
  std::unique_ptr<storage::MysqlChangeFeedStore> feed_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<StoreFixture>> FakeImplementation::Create() {
  return std::unique_ptr<StoreFixture>(std::make_unique<FakeFixture>());
}

absl::StatusOr<std::unique_ptr<StoreFixture>> MysqlImplementation::Create() {
  return MysqlFixture::Create();
}

std::string Unique(absl::string_view prefix) {
  static std::atomic<int> counter{0};
  return absl::StrCat(
      prefix, counter.fetch_add(1), "-",
      absl::AsciiStrToLower(core::RandomBase62(8).value_or("x")));
}

storage::Tenant NewTenant(StoreFixture& f) {
  const std::string slug = Unique("t");
  absl::StatusOr<storage::Tenant> tenant =
      f.keys().CreateTenant(slug, absl::StrCat("Tenant ", slug), nullptr, {});
  EXPECT_TRUE(tenant.ok()) << tenant.status();
  return tenant.value_or(storage::Tenant());
}

core::Digest RandomDigest() {
  return core::Sha256(core::RandomBase62(32).value_or("random"));
}

storage::NewKey NewKey(int64_t tenant_id, absl::string_view name, int pepper) {
  storage::NewKey key;
  key.id = core::GenerateKeyId().value_or("");
  key.tenant_id = tenant_id;
  key.name = std::string(name);
  key.scopes = {"admin:read"};
  key.created_by_type = "system";
  key.created_by_id = "conformance";
  key.secret = {RandomDigest(), pepper};
  return key;
}

storage::AuditEvent Event(absl::string_view action) {
  storage::AuditEvent e;
  e.action = std::string(action);
  e.category = "configuration";
  e.actor_type = "system";
  e.actor_id = "conformance";
  e.metadata_json = "{}";
  return e;
}

std::vector<storage::StoredAuditEvent> EventsOf(StoreFixture& f,
                                                int64_t tenant_id,
                                                absl::string_view action) {
  storage::AuditQuery q;
  q.limit = 100;
  q.oldest_first = true;
  q.action = std::string(action);
  absl::StatusOr<storage::AuditPage> page = f.audit().ListEvents(tenant_id, q);
  EXPECT_TRUE(page.ok()) << page.status();
  return page.ok() ? page->events : std::vector<storage::StoredAuditEvent>();
}

}  // namespace lumo::testing
