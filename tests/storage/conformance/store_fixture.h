// The store conformance suites (docs/storage.md "Conformance"): every store
// contract written once as a typed GoogleTest suite against the interfaces
// of server/storage/, and run against every implementation, listed in
// `Implementations` below: the in-memory fakes (tests/storage/fakes) and
// the MySQL stores on a real MariaDB.
//
// A StoreFixture gives a test the stores of one implementation over one
// database, plus the few things a test needs that no store interface
// offers (letting the backend's clock move on, tampering with stored audit
// rows as a database administrator could). Not thread-safe to create or
// destroy; the stores are thread-safe.
#ifndef LUMOKEYS_TESTS_STORAGE_CONFORMANCE_STORE_FIXTURE_H_
#define LUMOKEYS_TESTS_STORAGE_CONFORMANCE_STORE_FIXTURE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/core/crypto.h"
#include "server/storage/audit_store.h"
#include "server/storage/change_feed_store.h"
#include "server/storage/client_store.h"
#include "server/storage/counter_store.h"
#include "server/storage/key_store.h"
#include "server/storage/outbox_signal.h"
#include "server/storage/pepper_usage_store.h"
#include "server/storage/portal_store.h"
#include "server/storage/user_store.h"
#include "server/storage/webhook_store.h"

namespace lumo::testing {

class StoreFixture {
 public:
  virtual ~StoreFixture() = default;

  virtual storage::KeyStore& keys() = 0;
  virtual storage::UserStore& users() = 0;
  virtual storage::ClientStore& clients() = 0;
  virtual storage::AuditStore& audit() = 0;
  virtual storage::ChangeFeedStore& feed() = 0;
  virtual storage::PortalStore& portal() = 0;
  virtual storage::PepperUsageStore& pepper_usage() = 0;
  virtual storage::WebhookStore& webhooks() = 0;
  virtual storage::OutboxSignal& outbox_signal() = 0;
  virtual storage::CounterStore& counters() = 0;

  // Returns once the backend's clock (KeyStore::Now) is at least `d` past
  // where it was.
  virtual void LetTimePass(absl::Duration d) = 0;
  // Moves key `id`'s creation, rotation and last-use times `d` into the
  // past, as if it had been created (rotated, used) that much earlier.
  virtual void AgeKey(absl::string_view id, absl::Duration d) = 0;
  // Changes the stored ip_address of audit row `id`, leaving its hash.
  virtual void TamperAuditRow(int64_t id, absl::string_view ip) = 0;
  // Deletes audit row `id`.
  virtual void DeleteAuditRow(int64_t id) = 0;
  // Moves the creation time of every audit row of `tenant_id` `d` into the
  // past (the rows are not re-hashed: only a purge may follow).
  virtual void AgeAuditRows(int64_t tenant_id, absl::Duration d) = 0;
  // The audit retention of the implementation's backend
  // (storage::Backend::PurgeAuditOlderThanDays): the rows deleted.
  virtual absl::StatusOr<int64_t> PurgeAudit(int days) = 0;
  // Moves every usage rollup bucket (hourly and daily) of `tenant_id` `d`
  // into the past; `d` a whole number of days keeps the buckets aligned.
  virtual void AgeUsage(int64_t tenant_id, absl::Duration d) = 0;
  // The usage retention of the implementation's backend
  // (storage::Backend::PurgeUsage): the rows deleted.
  virtual absl::StatusOr<int64_t> PurgeUsage(int hourly_days,
                                             int daily_days) = 0;
  // Marks webhook endpoint `id` disabled and changes nothing else: its
  // pending deliveries stay pending. That is the state an outbox append
  // leaves when it commits next to a concurrent disable that could not see
  // its delivery (each read the other's rows before either committed).
  virtual void DisableEndpointOnly(absl::string_view id) = 0;
  // Moves the creation time of every delivery of webhook endpoint `id`, and
  // of the events they deliver, `d` into the past.
  virtual void AgeWebhookRows(absl::string_view id, absl::Duration d) = 0;
  // The rows sliding-window counter `counter` has in the database: its
  // slots and its head (CounterStore::LeaseWindow).
  virtual int64_t WindowRows(absl::string_view counter) = 0;
};

// The implementations, each with a name for test output and a factory of
// fixtures over a new, empty database.
struct FakeImplementation {
  static constexpr char kName[] = "Fake";
  static absl::StatusOr<std::unique_ptr<StoreFixture>> Create();
};
struct MysqlImplementation {
  static constexpr char kName[] = "Mysql";
  static absl::StatusOr<std::unique_ptr<StoreFixture>> Create();
};
using Implementations =
    ::testing::Types<FakeImplementation, MysqlImplementation>;

class ImplementationName {
 public:
  template <typename Impl>
  static std::string GetName(int) {
    return Impl::kName;
  }
};

// A conformance suite whose tests share one fixture (one database): for
// contracts scoped by tenant, each test works in tenants of its own.
template <typename Impl>
class SharedStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<StoreFixture>> fixture = Impl::Create();
    if (fixture.ok()) {
      fixture_ = fixture->release();
    } else {
      error_ = new std::string(fixture.status().ToString());
    }
  }
  static void TearDownTestSuite() {
    delete fixture_;
    fixture_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(fixture_, nullptr) << *error_; }
  StoreFixture& f() { return *fixture_; }

 private:
  static inline StoreFixture* fixture_ = nullptr;
  static inline std::string* error_ = nullptr;
};

// A conformance suite whose every test gets a new database: for contracts
// over the whole database (the change feed, the replicas, pepper usage).
template <typename Impl>
class FreshStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<StoreFixture>> fixture = Impl::Create();
    ASSERT_TRUE(fixture.ok()) << fixture.status();
    fixture_ = *std::move(fixture);
  }
  StoreFixture& f() { return *fixture_; }

 private:
  std::unique_ptr<StoreFixture> fixture_;
};

// ---- Values for the tests.

// `prefix` followed by something no other call returns (lower case).
std::string Unique(absl::string_view prefix);
// A new tenant with a unique slug.
storage::Tenant NewTenant(StoreFixture& f);
// A random digest (a stored secret or token hash).
core::Digest RandomDigest();
// A key of `tenant_id` with a new id and secret under pepper `pepper`.
storage::NewKey NewKey(int64_t tenant_id, absl::string_view name = "key",
                       int pepper = 1);
// An event with `action` and otherwise fixed fields.
storage::AuditEvent Event(absl::string_view action);
// The tenant's events with `action`, oldest first.
std::vector<storage::StoredAuditEvent> EventsOf(StoreFixture& f,
                                                int64_t tenant_id,
                                                absl::string_view action);

}  // namespace lumo::testing

#endif  // LUMOKEYS_TESTS_STORAGE_CONFORMANCE_STORE_FIXTURE_H_
